"""Cost arithmetic: epoch-equivalents, sums, and what pruned, diverged and failed trials count."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpsearch.search.run.cost import Cost, epoch_equivalents, recorded, stored_cost, total, trial_cost

EQUIVALENTS = [
    # epochs, data_fraction, width, full-data width-64 epochs
    (1, 1.0, 64, 1.0),
    (30, 1.0, 64, 30.0),
    (8, 0.2, 64, 1.6),
    (4, 0.02, 8, 4 * 0.02 / 64),  # the demo: a 1/8-width network on 2% of the data
    (10, 0.5, 128, 20.0),  # twice the width: four times the work per image
    (0, 0.5, 64, 0.0),
]


@pytest.mark.parametrize(("epochs", "fraction", "width", "expected"), EQUIVALENTS)
def test_epoch_equivalents_scale_with_data_and_width_squared(epochs: int, fraction: float, width: int,
                                                             expected: float) -> None:
    assert epoch_equivalents(epochs, fraction, width) == pytest.approx(expected)


def test_a_pruned_trial_counts_the_epochs_it_ran_and_saved_the_rest() -> None:
    config = {"epochs": 8, "data_fraction": 0.2, "width": 64}
    pruned = trial_cost(config, 2, 30.0, pruned=True)
    assert pruned.epochs == 2 and pruned.epoch_equivalents == pytest.approx(0.4)
    assert pruned.saved == pytest.approx(1.2)  # the 6 epochs it never ran
    done = trial_cost(config, 8, 120.0)
    assert done.epoch_equivalents == pytest.approx(1.6) and done.saved == 0


costs = st.builds(
    lambda epochs, ran, fraction, width, seconds, pruned: trial_cost(
        {"epochs": epochs, "data_fraction": fraction, "width": width}, min(ran, epochs), seconds, pruned=pruned),
    st.integers(1, 50), st.integers(0, 50), st.floats(0.01, 1.0), st.sampled_from([4, 8, 16, 32, 64, 128]),
    st.floats(0, 1e5), st.booleans())


@given(st.lists(costs, max_size=30))
def test_totals_equal_the_sum_of_the_trials_costs(trials: list[Cost]) -> None:
    t = total(trials)
    assert t.trials == len(trials)
    assert t.epochs == sum(c.epochs for c in trials)
    assert math.isclose(t.device_seconds, sum(c.device_seconds for c in trials), rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(t.epoch_equivalents, sum(c.epoch_equivalents for c in trials), rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(t.saved, sum(c.saved for c in trials), rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(t.device_hours * 3600, t.device_seconds, rel_tol=1e-9, abs_tol=1e-9)


CONFIG = {"epochs": 10, "data_fraction": 0.5, "width": 32}


def test_a_stored_trial_uses_what_it_recorded() -> None:
    attrs = {"config": CONFIG, "cost": recorded(trial_cost(CONFIG, 3, 42.0)), "history": [{"seconds": 1.0}] * 3}
    cost = stored_cost(attrs, pruned=True, wall_seconds=999.0)
    assert (cost.epochs, cost.device_seconds) == (3, 42.0)
    assert cost.epoch_equivalents == pytest.approx(3 * 0.5 / 4) and cost.saved == pytest.approx(7 * 0.5 / 4)


def test_a_trial_whose_worker_died_counts_the_epochs_of_its_history() -> None:
    attrs = {"config": CONFIG, "history": [{"epoch": 1, "seconds": 5.0}, {"epoch": 2, "seconds": 6.0}]}
    cost = stored_cost(attrs, pruned=False, wall_seconds=100.0)
    assert (cost.trials, cost.epochs, cost.device_seconds) == (1, 2, 11.0)
    assert cost.epoch_equivalents == pytest.approx(2 * 0.5 / 4) and cost.saved == 0  # a retry runs the rest


def test_a_trial_that_never_trained_costs_its_wall_time_only() -> None:
    assert stored_cost({"fail_reason": "bad config"}, pruned=False, wall_seconds=0.5) == Cost(1, 0, 0.5)
    no_history = stored_cost({"config": CONFIG}, pruned=False, wall_seconds=7.0)  # e.g. the LR range test
    assert (no_history.epochs, no_history.device_seconds, no_history.epoch_equivalents) == (0, 7.0, 0.0)
