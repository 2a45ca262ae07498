"""The report explains thin data in sentences; Optuna's importance warnings never reach the terminal."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
import pytest

from hpsearch.search.cli import main
from hpsearch.search.watch import report_plots
from tests.watch.conftest import Campaign


def conditional_study(n_adamw: int) -> optuna.Study:
    """Momentum is searched only with SGD; `n_adamw` of the eight trials leave it unset."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for i in range(8):
        trial = study.ask()
        lr = trial.suggest_float("lr", 1e-3, 1.0, log=True)
        momentum = trial.suggest_float("momentum", 0.5, 0.99) if i >= n_adamw else 0.0
        study.tell(trial, lr + momentum / 10 + i / 100)
    return study


def test_a_thin_conditional_regime_is_a_sentence_under_the_figure_not_a_warning() -> None:
    study = conditional_study(n_adamw=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that escapes fails the test
        figure, note = report_plots.param_importances(study)
    assert figure is not None
    assert "momentum is a conditional parameter" in note and "rough estimate" in note


def test_enough_trials_in_every_regime_add_no_caveat() -> None:
    figure, note = report_plots.param_importances(conditional_study(n_adamw=0))
    assert figure is not None and note == ""


@pytest.mark.slow
def test_hpsearch_report_prints_no_warning(campaign: Campaign, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert main(["report", "watch", "--storage", str(campaign.path), "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "Warning" not in captured.err and "Warning" not in captured.out
    assert "<h3>Parameter importances</h3>" in (tmp_path / "watch-report.html").read_text()


def test_each_known_evaluator_warning_reads_as_a_sentence() -> None:
    thin = report_plots.importance_caveat("Some regimes for parameter `lr` have less than 2 trials. The importance "
                                           "of the parameter may be inaccurate.")
    same = report_plots.importance_caveat("Target and region quantiles select the same set of trials. Parameter "
                                           "importances will be equal.")
    other = report_plots.importance_caveat("Something new. ")
    assert thin.startswith("lr is a conditional parameter") and "`" not in thin
    assert same.startswith("Too few completed trials")
    assert other == "Optuna's importance evaluator notes: Something new."
