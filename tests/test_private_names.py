"""Optuna's private parts are touched in one module only: `storage/optuna_internals.py`; the tests use it too.

Static: every tracked Python file of the packages (and bench/) is parsed with `ast`. Outside the door, a file
may not import a private module or name of optuna or optuna_dashboard, read a leading-underscore attribute of
anything but `self` / `cls` (the project's own classes use those for their own state), reach one through
`getattr` and friends, or name a private Optuna module in a string (a logger's name).
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("objectives", "search", "storage", "bench")
DOOR = "storage/optuna_internals.py"
THIRD_PARTY = ("optuna", "optuna_dashboard")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _third_party(module: str) -> bool:
    return module.split(".")[0] in THIRD_PARTY


def private_uses(source: str) -> list[tuple[int, str]]:
    """(line, what) of each use of a private name of Optuna or optuna-dashboard in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names
                      if _third_party(a.name) and any(_private(p) for p in a.name.split("."))]
        elif isinstance(node, ast.ImportFrom) and node.module and _third_party(node.module):
            names = [a.name for a in node.names]
            if any(_private(p) for p in node.module.split(".")) or any(_private(n) for n in names):
                found.append((node.lineno, f"from {node.module} import {', '.join(names)}"))
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "setattr", "hasattr"):
            name = node.args[1] if len(node.args) > 1 else None
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and _private(name.value):
                found.append((node.lineno, ast.unparse(node)))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and _third_party(node.value)
              and any(_private(p) for p in node.value.split("."))):
            found.append((node.lineno, repr(node.value)))
    return found


def test_only_the_door_touches_optuna_private_names() -> None:
    tracked = subprocess.run(["git", "ls-files", "--", *FOLDERS], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    files = [f for f in tracked if f.endswith(".py")]
    assert DOOR in files or (ROOT / DOOR).exists(), f"{DOOR} is missing"
    assert len(files) > 20, f"found only {files}: is this a git checkout?"
    out = [f"{f}:{line} {what}" for f in files if f != DOOR
           for line, what in private_uses((ROOT / f).read_text())]
    assert not out, f"Optuna's private names outside {DOOR} (add an accessor there, with a test):\n" + "\n".join(out)


def test_the_tests_reach_optuna_internals_through_the_door_too() -> None:
    """Tests read a trial's id, a study's storage and the like through the same accessors, so an Optuna upgrade
    that moves one breaks the door's test, by name, not a hundred tests. Their messages may name a private
    module (the door's test says which one changed), so strings are not checked here."""
    tracked = subprocess.run(["git", "ls-files", "--", "tests"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    files = [f for f in tracked if f.endswith(".py") and f != "tests/test_private_names.py"]
    assert len(files) > 20, f"found only {files}: is this a git checkout?"
    out = [f"{f}:{line} {what}" for f in files
           for line, what in private_uses((ROOT / f).read_text()) if not what.startswith(("'", '"'))]
    assert not out, "Optuna's private names in tests (use storage/optuna_internals.py):\n" + "\n".join(out)


def test_the_check_sees_each_kind_of_use() -> None:
    source = '''
import optuna.storages._rdb.models
from optuna.storages._rdb import models
from optuna.storages import BaseStorage, _CachedStorage
from optuna_dashboard._note import split_body
from hpsearch.search.plan.plan import _private_helper_of_ours
def f(study, self):
    study._storage.get_trial(trial._trial_id)
    self._own_state
    getattr(study, "_study_id")
    logging.getLogger("optuna.samplers._qmc")
    x.__dict__
'''
    uses = [what for _, what in private_uses(source)]
    assert uses.count("study._storage") == 1 and "trial._trial_id" in uses
    assert "import optuna.storages._rdb.models" in uses
    assert "from optuna.storages._rdb import models" in uses
    assert "from optuna.storages import BaseStorage, _CachedStorage" in uses
    assert "from optuna_dashboard._note import split_body" in uses
    assert "getattr(study, '_study_id')" in uses
    assert "'optuna.samplers._qmc'" in uses
    assert not any("_own_state" in u or "__dict__" in u or "_private_helper_of_ours" in u for u in uses)
