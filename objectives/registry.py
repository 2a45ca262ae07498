"""Registries are plain dicts from a name to a small factory; this fills them through a decorator."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def registrar(registry: dict[str, T], kind: str) -> Callable[[str], Callable[[T], T]]:
    """`register = registrar(OPTIMIZERS, "optimizer")`, then `@register("sgd")`; a second `sgd` is refused."""

    def register(name: str) -> Callable[[T], T]:
        def add(factory: T) -> T:
            if name in registry:
                raise ValueError(f"{kind} {name!r} is already registered")
            registry[name] = factory
            return factory

        return add

    return register
