"""How far a stage's ranking holds within its runs (search/plan/agreement.py): Spearman's rho against scipy's, its
invariances, which steps it pairs, and where a campaign shows it (the next stage's attribute, note and report)."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import optuna_dashboard
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState, create_trial
from scipy import stats

from hpsearch.search.plan.agreement import LOW, MIN_PAIRS, Agreement, ranking_agreement, spearman
from hpsearch.search.plan.plan import Plan
from hpsearch.search.plan.stage_logic import AGREEMENT, previous_agreement
from hpsearch.search.run.campaign import Campaign
from hpsearch.search.run.notes import write_stage_note
from hpsearch.search.watch.report import write_report
from tests.campaign.helpers import PLAN
from tests.watch.helpers import journal, run_campaign

values = st.floats(-10, 10, allow_nan=False).map(lambda v: round(v, 1))  # rounded: ties happen


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(values, values), min_size=3, max_size=30))
def test_spearman_is_scipys(pairs: list[tuple[float, float]]) -> None:
    x, y = [a for a, _ in pairs], [b for _, b in pairs]
    ours, theirs = spearman(x, y), stats.spearmanr(x, y).statistic
    if math.isnan(theirs):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(theirs, abs=1e-9)
        assert -1 <= ours <= 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=MIN_PAIRS, max_size=20, unique=True).map(
    lambda v: [x / 1000 for x in v]))
def test_rho_ignores_the_scale_and_sees_the_order(xs: list[float]) -> None:
    assert spearman(xs, [math.exp(3 * x) for x in xs]) == pytest.approx(1.0)
    assert spearman(xs, [-x for x in xs]) == pytest.approx(-1.0)
    curves = [{1: x, 2: x * 0.5 + 0.1, 4: 10 * x + 1} for x in xs]
    agreement = ranking_agreement(curves)
    assert agreement is not None and agreement.rho == pytest.approx(1.0)
    assert (agreement.mid, agreement.last, agreement.pairs) == (2, 4, len(xs))


def test_pairs_only_trials_that_reached_the_end_at_the_latest_step_enough_reported() -> None:
    # Six runs of 8 steps report every step; two report 1..3 only (cut early): they pair nothing. Step 4 is
    # half of 8; step 3 is what the short runs also have, but the latest step at most half the run is 4.
    ended = [{s: i + 0.01 * s for s in range(1, 9)} for i in range(6)]
    short = [{s: 100.0 for s in range(1, 4)} for _ in range(2)]
    agreement = ranking_agreement(ended + short)
    assert agreement == Agreement(rho=pytest.approx(1.0), pairs=6, mid=4, last=8)
    # Fewer than MIN_PAIRS with both steps: nothing measured. Non-finite values do not count.
    assert ranking_agreement(ended[: MIN_PAIRS - 1] + short) is None
    assert ranking_agreement([{1: float("nan"), 2: float("inf")}] * 10) is None
    assert ranking_agreement([{1: 0.5}] * 10) is None  # one step: no middle to compare with
    assert ranking_agreement([{1: 0.5, 2: float(i)} for i in range(10)]) is None  # no spread in the middle


def test_a_noisy_ranking_is_called_low() -> None:
    crossed = [{1: float(i), 2: float((i * 7) % 10)} for i in range(10)]
    agreement = ranking_agreement(crossed)
    assert agreement is not None and agreement.rho < LOW and agreement.low
    assert "little better than chance" in agreement.describe()
    steady = ranking_agreement([{1: float(i), 2: float(i)} for i in range(10)])
    assert steady is not None and not steady.low and "chance" not in steady.describe()
    assert Agreement.from_data(agreement.to_data()) == agreement


def test_measured_only_after_a_search_stage_on_its_completed_trials() -> None:
    plan = Plan.from_dict(PLAN)
    done = [create_trial(state=TrialState.COMPLETE, value=float(i), intermediate_values={1: i, 2: i, 3: float(i)})
            for i in range(6)]
    cut = [create_trial(state=TrialState.PRUNED, value=0.0, intermediate_values={1: -i, 2: -i, 3: -i})
           for i in range(6)]
    assert previous_agreement(plan, 0, done) is None
    measured = previous_agreement(plan, 1, done + cut)
    assert measured is not None and measured.pairs == 6 and measured.rho == pytest.approx(1.0)
    assert previous_agreement(plan, 2, done) is not None  # the final stage: how the fine stage ranked


def test_the_next_stage_records_it_and_its_note_and_the_report_show_it(tmp_path: Path) -> None:
    space = {**PLAN["space"], "lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}}  # none diverge
    data = {**PLAN, "name": "agree", "space": space, "stages": [
        {"name": "coarse", "n_trials": 8, "overrides": {"epochs": 4}, "sampler": "random", "pruner": "none"},
        {"name": "final", "kind": "final", "top": 1, "seeds": 1, "overrides": {"epochs": 4}}]}
    storage = journal(tmp_path / "j.journal")
    run_campaign(storage, tmp_path / "artifacts", data)
    final = optuna.load_study(study_name="agree.final", storage=storage)
    coarse = optuna.load_study(study_name="agree.coarse", storage=storage)
    completed = len(coarse.get_trials(states=(TrialState.COMPLETE,)))  # a diverging LR ends a run early
    assert completed >= MIN_PAIRS
    recorded = Agreement.from_data(final.user_attrs[AGREEMENT])
    assert (recorded.pairs, recorded.mid, recorded.last) == (completed, 2, 4)
    assert (f"rho = {recorded.rho:.2f} between steps 2 and 4 over {completed} completed trials"
            in optuna_dashboard.get_note(final))
    assert AGREEMENT not in coarse.user_attrs  # the first stage has nothing before it
    assert Campaign(storage, Plan.from_dict(data)).stage(1) is not None
    text = write_report(storage, "agree", tmp_path / "out", "hpsearch report agree", None).read_text()
    assert text.count("The previous stage's ranking, middle against end of its runs: rho = ") == 1


def test_the_note_row_reads_as_a_sentence() -> None:
    plan = Plan.from_dict(PLAN)
    study = optuna.create_study(direction="maximize")
    write_stage_note(study, plan.stages[1], None, plan.space, Agreement(0.12, 22, 4, 8))
    note = optuna_dashboard.get_note(study)
    assert ("| previous stage's ranking, middle against end of its runs | rho = 0.12 between steps 4 and 8 over 22 "
            "completed trials (low: ") in note
