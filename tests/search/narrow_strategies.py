"""Hypothesis strategies for the narrowing tests: spaces (conditional ones too), trials in them, narrowing rules."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hpsearch.search.plan.narrow import NarrowRule
from hpsearch.search.plan.space import Space, is_active, parse_space


def rule(**kw: Any) -> NarrowRule:
    return NarrowRule(**{"top_k": None, "top_fraction": None, "margin": 0.0, "min_width": 0.0, **kw})


@st.composite
def spaces(draw: st.DrawFn) -> Space:
    lr_low = draw(st.floats(1e-4, 1.0))
    warm_low = draw(st.floats(0.0, 5.0))
    batch_log = draw(st.booleans())
    batch_step = 1 if batch_log else draw(st.integers(1, 4))
    batch_low = draw(st.integers(2, 64))
    choices = draw(st.permutations(["sgd", "adamw", "nadam"]))[: draw(st.integers(1, 3))]
    mom_low = draw(st.floats(0.0, 0.95))
    return parse_space(
        {
            "lr": {
                "type": "float",
                "low": lr_low,
                "high": lr_low * draw(st.floats(1.0, 1e4)),
                "log": draw(st.booleans()),
            },
            "warmup_epochs": {
                "type": "float",
                "low": warm_low,
                "high": warm_low + draw(st.floats(0.0, 10.0)),
            },
            "batch_size": {
                "type": "int",
                "low": batch_low,
                "high": batch_low + batch_step * draw(st.integers(0, 100)),
                "log": batch_log,
                "step": batch_step,
            },
            "optimizer": {"type": "categorical", "choices": choices},
            "momentum": {
                "type": "float",
                "low": mom_low,
                "high": draw(st.floats(mom_low, 0.99)),
                "condition": {
                    "optimizer": draw(st.permutations(choices))[: draw(st.integers(1, len(choices)))]
                },
            },
        }
    )


def values_in(d: Any) -> st.SearchStrategy[Any]:
    if isinstance(d, CategoricalDistribution):
        return st.sampled_from(d.choices)
    if isinstance(d, IntDistribution):
        return st.integers(0, (d.high - d.low) // d.step).map(lambda k: d.low + k * d.step)
    if d.log:
        return st.floats(math.log(d.low), math.log(d.high)).map(
            lambda x: min(d.high, max(d.low, math.exp(x)))
        )
    return st.floats(d.low, d.high)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Space, list[dict[str, Any]], NarrowRule]:
    space = draw(spaces())
    trials = []
    for _ in range(draw(st.integers(0, 12))):
        trial: dict[str, Any] = {}
        for p in space:
            if is_active(p, trial):
                trial[p.name] = draw(values_in(p.distribution))
        trials.append(trial)
    top = draw(
        st.one_of(
            st.builds(dict, top_k=st.integers(1, 12)), st.builds(dict, top_fraction=st.floats(0.01, 1.0))
        )
    )
    return space, trials, rule(**top, margin=draw(st.floats(0.0, 2.0)), min_width=draw(st.floats(0.0, 1.0)))


def width(d: FloatDistribution | IntDistribution) -> float:
    return math.log(d.high) - math.log(d.low) if d.log else d.high - d.low


def contains(d: Any, v: Any) -> bool:
    if isinstance(d, CategoricalDistribution):
        return v in d.choices
    return d.low <= v <= d.high and (not isinstance(d, IntDistribution) or (v - d.low) % d.step == 0)


def within_a_hair_of_an_edge(space: Space, trial: dict[str, Any]) -> bool:
    for p in space:
        d, v = p.distribution, trial.get(p.name)
        if isinstance(d, CategoricalDistribution) or not isinstance(v, (int, float)) or v in (d.low, d.high):
            continue
        to = math.log if d.log else float
        lo, hi, x = to(d.low), to(d.high), to(v)
        if min(x - lo, hi - x) <= 1e-6 * (hi - lo):
            return True
    return False
