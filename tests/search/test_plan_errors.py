"""Plan mistakes: each is one line naming the key path and how to fix it; YAML errors name their line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpsearch.search.plan.plan import Plan, PlanError, load_plan_file
from tests.search.test_plan import PLAN, edit


def set_in(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value

    return change


def drop(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        for key in path[:-1]:
            d = d[key]
        del d[path[-1]]

    return change


def stages(*items: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return set_in(["stages"], list(items))


COARSE = {"name": "coarse", "n_trials": 8}
FINAL = {"name": "final", "kind": "final", "top": 2}
LR_TEST = {"name": "lr", "kind": "lr_range_test"}

BAD = [
    pytest.param(set_in(["nmae"], "x"), "plan.yaml: unknown key 'nmae'", id="unknown-top-key"),
    pytest.param(drop(["stages"]), "plan.yaml: missing 'stages'", id="no-stages"),
    pytest.param(
        set_in(["name"], "my plan"), "plan.yaml: name: 'my plan' is not a safe name", id="bad-plan-name"
    ),
    pytest.param(
        set_in(["objective"], "resnet"), "plan.yaml: objective: 'resnet' is neither", id="bad-objective"
    ),
    pytest.param(set_in(["base", "lrr"], 0.1), "plan.yaml: base: unknown key 'lrr'", id="unknown-base-key"),
    pytest.param(
        set_in(["space", "lr", "lgo"], True), "plan.yaml: space.lr: unknown key 'lgo'", id="unknown-space-key"
    ),
    pytest.param(
        set_in(["space", "lr", "high"], 1e-4), "plan.yaml: space.lr: low 0.001 > high 0.0001", id="low>high"
    ),
    pytest.param(
        set_in(["space", "lr", "low"], 0), "plan.yaml: space.lr.low: log scale needs low > 0", id="log-low-0"
    ),
    pytest.param(
        set_in(["space", "optimizer", "choices"], []),
        "plan.yaml: space.optimizer.choices: must be a non-empty",
        id="empty-choices",
    ),
    pytest.param(
        set_in(["stages", 0, "n_trails"], 8),
        "plan.yaml: stages[0].n_trails: unknown key",
        id="unknown-stage-key",
    ),
    pytest.param(
        set_in(["stages", 1, "sampler"], "tpee"),
        "plan.yaml: stages[1].sampler: unknown sampler 'tpee'; choose from ['gp', 'qmc', 'random', 'tpe']",
        id="unknown-sampler",
    ),
    pytest.param(
        set_in(["stages", 0, "pruner"], {"name": "hyperbnad"}),
        "plan.yaml: stages[0].pruner: unknown pruner",
        id="unknown-pruner",
    ),
    pytest.param(drop(["stages", 0, "n_trials"]), "plan.yaml: stages[0]: missing 'n_trials'", id="no-budget"),
    pytest.param(
        set_in(["stages", 0, "n_trials"], 0),
        "plan.yaml: stages[0].n_trials: must be an integer >= 1",
        id="zero-budget",
    ),
    pytest.param(
        set_in(["stages", 1, "name"], "coarse"),
        "plan.yaml: stages[1].name: 'coarse' is used twice",
        id="duplicate-stage",
    ),
    pytest.param(
        set_in(["stages", 0, "name"], "coarse.1"),
        "plan.yaml: stages[0].name: 'coarse.1' is not a safe name",
        id="bad-stage-name",
    ),
    pytest.param(
        stages(COARSE, FINAL, {**COARSE, "name": "fine"}),
        "plan.yaml: stages[1].kind: a final stage must be the last",
        id="final-not-last",
    ),
    pytest.param(
        stages(COARSE, LR_TEST, FINAL),
        "plan.yaml: stages[1].kind: an lr_range_test stage must be the first",
        id="lr-test-not-first",
    ),
    pytest.param(
        stages(LR_TEST, FINAL), "plan.yaml: stages[1].kind: a final stage re-trains", id="final-needs-search"
    ),
    pytest.param(stages(FINAL), "plan.yaml: stages[0].kind: a final stage re-trains", id="final-alone"),
    pytest.param(stages(LR_TEST), "plan.yaml: stages: no search stage", id="no-search-stage"),
    pytest.param(
        stages({**FINAL, "n_trials": 4}),
        "plan.yaml: stages[0].n_trials: is not used by a final stage",
        id="budget-on-final",
    ),
    pytest.param(
        stages({**COARSE, "top": 2}),
        "plan.yaml: stages[0].top: is not used by a search stage",
        id="top-on-search",
    ),
    pytest.param(
        stages(COARSE, {**FINAL, "top": 9}),
        "plan.yaml: stages[1].top: 9 > the previous stage's 8 trials",
        id="top-beyond-previous-budget",
    ),
    pytest.param(
        stages(COARSE, {**FINAL, "seeds": 0}),
        "plan.yaml: stages[1].seeds: must be an integer >= 1",
        id="zero-seeds",
    ),
    pytest.param(
        set_in(["stages", 0, "narrow"], {"top_k": 2}),
        "plan.yaml: stages[0].narrow: there is no previous",
        id="narrow-on-first-stage",
    ),
    pytest.param(
        stages(LR_TEST, {**COARSE, "carry": 1}),
        "plan.yaml: stages[1].carry: there is no previous",
        id="carry-after-lr-test",
    ),
    pytest.param(
        set_in(["stages", 1, "carry"], 5),
        "plan.yaml: stages[1].carry: must be an integer in [0, 4]",
        id="carry-beyond-budget",
    ),
    pytest.param(
        set_in(["stages", 1, "narrow"], {"top_k": 2, "top_fraction": 0.5}),
        "plan.yaml: stages[1].narrow: give exactly one of",
        id="narrow-both-tops",
    ),
    pytest.param(
        set_in(["stages", 0, "overrides"], {"lr": 0.1}),
        "plan.yaml: stages[0].overrides.lr: 'lr' is searched",
        id="override-in-space",
    ),
    pytest.param(
        set_in(["stages", 0, "overrides"], {"epoch": 2}),
        "plan.yaml: stages[0].overrides: unknown key 'epoch'",
        id="override-unknown",
    ),
    pytest.param(
        set_in(["stages", 0, "overrides"], {"data_fraction": 2.0}),
        "plan.yaml: stages[0].overrides: data_fraction must be in (0, 1]",
        id="override-invalid",
    ),
    pytest.param(
        set_in(["stages", 0, "kind"], "grid"),
        "plan.yaml: stages[0].kind: unknown stage kind 'grid'",
        id="unknown-kind",
    ),
    pytest.param(
        drop(["space", "lr"]),
        "plan.yaml: stages[0].kind: an lr_range_test stage sets the LR bounds",
        id="lr-test-needs-lr",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_plan_is_one_line_naming_the_key_path(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    data = edit(change)
    if message.endswith("sets the LR bounds"):
        data["stages"].insert(0, LR_TEST)
    with pytest.raises(PlanError) as e:
        Plan.from_dict(data, "plan.yaml")
    assert "\n" not in str(e.value)
    assert message in str(e.value), str(e.value)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("name: x\nstages:\n  - name: a\n    n_trials: [8\n")
    with pytest.raises(PlanError, match=r"plan.yaml: invalid YAML at line \d+: .*; fix the syntax") as e:
        load_plan_file(path)
    assert "\n" not in str(e.value)


def test_duplicate_yaml_key_is_an_error_not_a_silent_override(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(PLAN) + "seed: 4\n")
    with pytest.raises(PlanError, match=r"invalid YAML at line \d+: duplicate key 'seed'"):
        load_plan_file(path)


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="does not exist"):
        load_plan_file(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(PlanError, match=r"list\.yaml: expected a plan mapping"):
        load_plan_file(tmp_path / "list.yaml")
