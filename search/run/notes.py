"""Notes and artifacts that optuna-dashboard shows: per trial (config, host, why it stopped, curves), per stage.

Everything here raises normally; the worker's call sites catch, log and carry on, so a note never fails a trial.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import optuna_dashboard
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.trial import FrozenTrial

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.result import EpochRecord
from hpsearch.search.plan.agreement import Agreement
from hpsearch.search.plan.narrow import what_changed
from hpsearch.search.plan.plan import Stage
from hpsearch.search.plan.space import Space, space_to_data
from hpsearch.search.record import TrialRecord
from hpsearch.storage.stores import store_of

log = logging.getLogger(__name__)

_DEFAULTS = TrainConfig().to_dict()
FIDELITY_KEYS = ("epochs", "data_fraction", "width", "batch_size", "seed")  # shown right after the searched params
CURVES_NAME = "curves-trial-{number}.png"
# optuna-dashboard's storage format of a note (its `_note` module; tests/watch/test_notes.py checks that they
# agree): study system attributes, the body in chunks of NOTE_CHUNK characters under NOTE_STR_KEY + index, and
# its version under NOTE_VER_KEY. A study's own note has no trial id in its keys.
NOTE_CHUNK = 2045
NOTE_VER_KEY = "dashboard:{trial_id}:note_ver"
NOTE_STR_KEY = "dashboard:{trial_id}:note_str:"


def note_ver_key(trial_id: int) -> str:
    """The study system attribute that holds the version of trial `trial_id`'s note."""
    return NOTE_VER_KEY.format(trial_id=trial_id)


def note_chunks(body: str, trial_id: int) -> dict[str, str]:
    """A trial's note body as optuna-dashboard stores it: study system attributes of bounded length, by key."""
    prefix = NOTE_STR_KEY.format(trial_id=trial_id)
    return {f"{prefix}{i}": body[start:start + NOTE_CHUNK] for i, start in enumerate(range(0, len(body), NOTE_CHUNK))}


def annotate_trial(study: optuna.Study, trial: optuna.Trial, record: TrialRecord, reason: str | None,
                   artifact_dir: Path, *, stage: str | None = None, first: bool = False) -> None:
    """Curves artifact and note of a trial that is still running: a finished trial takes no new artifact."""
    if record.history:
        upload_curves(study, trial, record.history, artifact_dir)
    write_trial_note(study, trial, reason, record=record, stage=stage, first=first)


def write_trial_note(study: optuna.Study, trial: optuna.Trial | FrozenTrial, reason: str | None, *,
                     record: TrialRecord | None = None, stage: str | None = None, first: bool = False) -> None:
    """A markdown note on the trial: searched params, fidelity, the rest of the config, host, time, outcome.

    `record` is the trial's record (read from the trial when not given). `stage` names the stage (read from the
    study when not given). `first` says that the trial has no note yet and that this process alone writes it,
    as for the worker that claimed it: the note is then written without optuna-dashboard's read of every note
    in the study, a cost that grows with the stage.
    """
    rec = record if record is not None else TrialRecord.of(trial)
    config: dict[str, Any] = dict(rec.config) if rec.config is not None else {}
    searched = list(trial.params)
    stage = stage or study.user_attrs.get("stage", study.study_name)
    lines = [f"## Trial {trial.number} of stage {stage}", ""]
    status = rec.status or _state_name(trial)
    lines.append(f"**Outcome:** {status}" + (f" — {reason}" if reason else ""))
    lines.append("")
    lines += _resume_lines(rec)
    where = f"**Host:** `{rec.worker.get('host', '?')}` · **device:** `{rec.worker.get('device', '?')}`"
    if rec.seconds is not None:
        where += f" · **time:** {rec.seconds:.1f} s"
    lines += [where, ""]
    rows = [(k, trial.params.get(k, config.get(k)), "searched") for k in searched]
    rows += [(k, config[k], "fidelity") for k in FIDELITY_KEYS if k in config and k not in searched]
    # The rest only where it differs from the defaults: what sets this run apart, and a short note (the
    # dashboard re-reads every note of a stage on each save). The full config is the `config` attribute.
    rows += [(k, v, "set") for k, v in config.items()
             if k not in searched and k not in FIDELITY_KEYS and (k not in _DEFAULTS or v != _DEFAULTS[k])
             and k != "device"]
    lines += _table(("key", "value", "role"), ((k, _fmt(v), tag) for k, v, tag in rows))
    lines += ["", "Every other key has its default; the full config is the trial's `config` attribute."]
    body = "\n".join(lines) + "\n"
    if first:
        save_first_note(study, store_of(study).trial_id(trial), body)
    else:
        optuna_dashboard.save_note(_live(study, trial), body)


def _resume_lines(rec: TrialRecord) -> list[str]:
    """"resumed from epoch k after <reason>", or why a checkpoint was not used."""
    lines = []
    if rec.resumed_from_epoch is not None:
        why = (rec.retry_of or {}).get("reason", "an interruption")
        lines += [f"**Resumed** from epoch {rec.resumed_from_epoch} after {why}", ""]
    if rec.checkpoint_ignored is not None:
        lines += [f"**Checkpoint not used:** {rec.checkpoint_ignored}; trained from scratch", ""]
    return lines


def save_first_note(study: optuna.Study, trial_id: int, body: str) -> None:
    """Version 1 of a trial's note, in optuna-dashboard's storage format, without reading the other notes.

    `save_note` reads all of the study's system attributes to find the note's next version; for a trial's
    first note the version is known. The format is optuna-dashboard's own (tests read it back with its
    `get_note`): the body in chunks, then the version (one transaction on PostgreSQL; elsewhere in this
    order, so a reader never sees a version without its body).
    """
    store_of(study).write_study_system(study, {**note_chunks(body, trial_id), note_ver_key(trial_id): 1})


def upload_curves(study: optuna.Study, trial: optuna.Trial | FrozenTrial, history: Sequence[EpochRecord],
                  artifact_dir: Path) -> str:
    """Train and validation curves as a PNG, uploaded as an artifact of the trial; returns the artifact id."""
    if not history:
        raise ValueError(f"trial {trial.number} has no epochs yet; nothing to plot")
    from hpsearch.objectives.plots import plot_curves  # matplotlib only where curves are drawn

    Path(artifact_dir).mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(artifact_dir))
    with tempfile.TemporaryDirectory() as tmp:
        path = plot_curves([list(history)], Path(tmp) / CURVES_NAME.format(number=trial.number),
                           title=f"{study.study_name} trial {trial.number}")
        return upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=_live(study, trial),
                               mimetype="image/png")


def write_stage_note(study: optuna.Study, stage: Stage, parent_space: Space | None, space: Space,
                     agreement: Agreement | None = None) -> None:
    """A markdown note on the stage's study: budget, fidelity, sampler, pruner, narrowing, carry, spaces, and how
    well the previous search stage's ranking held within its runs (`agreement`, where measured)."""
    lines = [f"## Stage {stage.name} ({stage.kind})", ""]
    facts: list[tuple[str, str]] = [("budget", f"{stage.n_trials} trials")]
    facts.append(("fidelity overrides", _fmt(stage.overrides) if stage.overrides else "none (the base config)"))
    facts += [(label, _fmt(value)) for label, value in stage.facts()]
    if agreement is not None:
        facts.append(("previous stage's ranking, middle against end of its runs", agreement.describe()))
    lines += [*_table(("", ""), facts), "", "### Search space", ""]
    this = space_to_data(space)
    parent = space_to_data(parent_space) if parent_space is not None else {}
    names = list(parent) + [n for n in this if n not in parent]
    if parent_space is None:
        lines += _table(("param", "parent", "this stage"),
                        ((n, _describe(parent.get(n)), _describe(this.get(n))) for n in names))
    else:
        def change(name: str) -> str:
            old = parent_space[name].distribution if name in parent_space else None
            return what_changed(old, space[name].distribution if name in space else None)

        lines += _table(("param", "parent", "this stage", "narrowing"),
                        ((n, _describe(parent.get(n)), _describe(this.get(n)), change(n)) for n in names))
    optuna_dashboard.save_note(study, "\n".join(lines) + "\n")


def _live(study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> optuna.Trial:
    """A handle on a stored trial that optuna-dashboard's API accepts (it takes live trials only)."""
    return store_of(study).live(study, trial)


def _state_name(trial: optuna.Trial | FrozenTrial) -> str:
    if isinstance(trial, FrozenTrial):
        return trial.state.name.lower()
    return "running"


def _describe(spec: Mapping[str, Any] | None) -> str:
    if spec is None:
        return "—"
    if spec["type"] == "categorical":
        text = "{" + ", ".join(str(c) for c in spec["choices"]) + "}"
    else:
        text = f"[{_fmt(spec['low'])}, {_fmt(spec['high'])}]" + (" log" if spec.get("log") else "")
    if spec.get("condition"):
        text += " if " + ", ".join(f"{k} in {v}" for k, v in spec["condition"].items())
    return text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)


def _table(header: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> list[str]:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return out
