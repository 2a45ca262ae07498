"""Imports only go down: search -> objectives, storage; objectives and storage know nothing above them.
Inside search, the sub-packages form layers: cli -> watch -> run -> plan -> the modules at the top of search/.

Static: every import in the packages' files is parsed with `ast`, including imports inside functions and
`importlib.import_module("...")` calls with a literal name, so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# package folder -> module prefixes its files must not import
FORBIDDEN = {
    "objectives": ("optuna", "optuna_dashboard", "hpsearch.search", "hpsearch.storage"),
    "storage": ("hpsearch.search", "hpsearch.objectives"),
}


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, a file of `hpsearch.<package>`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: level 1 is this package, 2 is hpsearch
                base = ["hpsearch", package][: 3 - node.level]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            found.append((node.lineno, node.args[0].value))
    return found


def _is_dynamic_import(call: ast.Call) -> bool:
    """`importlib.import_module("x")`, `import_module("x")` or `__import__("x")` with a literal name."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
    literal = bool(call.args) and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
    return literal and name in ("import_module", "__import__")


def violations(package: str) -> list[str]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    out = []
    for path in files:
        for line, module in imported_modules(path.read_text(), package):
            for prefix in FORBIDDEN[package]:
                if module == prefix or module.startswith(prefix + "."):
                    out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_it(package: str) -> None:
    found = violations(package)
    assert not found, "imports against the layering (search -> objectives, storage):\n" + "\n".join(found)


def test_the_check_sees_lazy_relative_and_dynamic_imports() -> None:
    source = '''
import os
def later():
    import optuna.trial
    from hpsearch.search.plan import plan
    from ..storage import open_storage
    from . import config
    importlib.import_module("hpsearch.search.cli")
'''
    modules = {m for _, m in imported_modules(source, "objectives")}
    assert {"optuna.trial", "hpsearch.search.plan", "hpsearch.storage.open_storage", "hpsearch.objectives.config",
            "hpsearch.search.cli", "os"} <= modules


# search's sub-packages, lowest first: each imports only from those before it (and itself); the modules at the
# top of search/ (errors, record, invocation) import none of them.
SEARCH_LAYERS = ("plan", "run", "watch", "cli")


def search_violations() -> list[str]:
    out = []
    for path in sorted((ROOT / "search").rglob("*.py")):
        rel = path.relative_to(ROOT / "search")
        if rel.name == "__main__.py":
            continue
        own = rel.parts[0] if len(rel.parts) > 1 else None
        allowed = SEARCH_LAYERS[: SEARCH_LAYERS.index(own) + 1] if own else ()
        package = "search" if own is None else f"search.{own}"
        for line, module in imported_modules(path.read_text(), package):
            parts = module.split(".")
            if parts[:2] != ["hpsearch", "search"] or len(parts) < 3 or parts[2] not in SEARCH_LAYERS:
                continue
            if parts[2] not in allowed:
                out.append(f"search/{rel}:{line} imports {module}")
    return out


def test_search_subpackages_import_only_downward() -> None:
    found = search_violations()
    assert not found, "imports against search's layers (cli -> watch -> run -> plan):\n" + "\n".join(found)


def test_search_has_no_loose_modules_but_its_base() -> None:
    loose = sorted(p.name for p in (ROOT / "search").glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "errors.py", "invocation.py", "record.py"], loose


def test_bench_does_not_import_the_tests() -> None:
    found = [f"{path.relative_to(ROOT)}:{line} imports {module}"
             for path in sorted((ROOT / "bench").glob("*.py"))
             for line, module in imported_modules(path.read_text(), "bench")
             if module == "tests" or module.startswith("tests.")]
    assert not found, "bench/ runs from a checkout without tests/:\n" + "\n".join(found)


# What only the trial stores (storage/stores/) may touch: Optuna's internals, the stores' own modules (claims,
# batched writes, enqueue-once, heartbeats, stale trials, journal locks) and the checks of which backend is in use.
# search/ reads and writes trials through a store's verbs and what `hpsearch.storage.stores` exports.
STORE_MODULES = tuple(f"hpsearch.storage.stores.{p.stem}" for p in sorted((ROOT / "storage" / "stores").glob("*.py"))
                      if p.stem != "__init__")
INTERNALS = "hpsearch.storage.optuna_internals"
STORE_ONLY = (INTERNALS, *STORE_MODULES, "optuna.storages.GrpcStorageProxy", "optuna.storages.RDBStorage",
              "optuna.storages.JournalStorage", "optuna.storages.journal.JournalStorage")


def test_only_the_stores_import_optunas_internals() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}"
             for package in ("search", "storage", "objectives")
             for path in sorted((ROOT / package).rglob("*.py"))
             if (ROOT / "storage" / "stores") not in path.parents and path.name != "optuna_internals.py"
             for line, module in imported_modules(path.read_text(), package)
             if module == INTERNALS or module.startswith(INTERNALS + ".")]
    assert not found, "only storage/stores/ may import storage/optuna_internals.py:\n" + "\n".join(found)


def test_search_reaches_the_storage_only_through_its_store() -> None:
    found = [f"{path.relative_to(ROOT)}:{line} imports {module}"
             for path in sorted((ROOT / "search").rglob("*.py"))
             for line, module in imported_modules(path.read_text(), "search")
             if any(module == name or module.startswith(name + ".") for name in STORE_ONLY)]
    assert not found, "search/ reaches below the trial stores:\n" + "\n".join(found)
