"""Trial checkpoints in an Optuna artifact store, found again by the trial's retry; the final stage's weights.

A worker hands the objective a `TrialCheckpoint` (the plain-Python hook of `objectives/checkpoint.py`). Each
save writes a new artifact, records its id in the trial's system attribute `POINTER`, and only then removes
the previous artifact: a reader follows the pointer to a whole checkpoint or to none. Optuna's retry of a
failed or stale trial copies the failed trial's system attributes, so the retry starts with its predecessor's
latest pointer and resumes from there. A finished trial's checkpoint is removed; the final stage keeps the
trained weights instead, as a trial artifact (`weights-trial<N>-seed<S>.pt`, a `state_dict`) that
optuna-dashboard lists and `hpsearch export --weights` downloads.
"""

from __future__ import annotations

import io
import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

from hpsearch.storage.stores import store_of

log = logging.getLogger(__name__)

POINTER = "hpsearch:checkpoint"  # trial system attribute: {"artifact_id", "epoch", "bytes"} of the latest one
WEIGHTS_PREFIX = "weights-"
WEIGHTS_NAME = WEIGHTS_PREFIX + "trial{number}-seed{seed}.pt"


def open_store(folder: Path) -> FileSystemArtifactStore:
    """The filesystem artifact store in `folder` (the dashboard's store by default), created when missing."""
    folder.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(folder))


def pointed(trial: FrozenTrial) -> str | None:
    """The artifact id of `trial`'s latest checkpoint, if it has one."""
    pointer = trial.system_attrs.get(POINTER)
    return pointer.get("artifact_id") if isinstance(pointer, dict) else None


class TrialCheckpoint:
    """The checkpoint hook of one claimed trial: `load()` its (or its predecessor's) latest, `save()` a new one.

    `final_epoch` is the run's last epoch: a state saved after it is not written (the trial ends at once and
    nothing would resume from it); with `keep_weights` its model weights are held for `keep_weights_artifact`.
    Failures to write raise OSError, which the objective logs and trains on without the checkpoint.
    """

    def __init__(self, store: Any, trial: optuna.Trial, *, final_epoch: int, keep_weights: bool = False) -> None:
        self.store, self.trial = store, trial
        self.trials = store_of(trial.study)
        self.trial_id = self.trials.trial_id(trial)
        self.current = pointed(self.trials.copy_of(trial))  # inherited from the predecessor, if any
        self.final_epoch, self.keep_weights = final_epoch, keep_weights
        self.weights: dict[str, Any] | None = None
        self.reason: str | None = None

    def load(self) -> dict[str, Any] | None:
        self.reason = None
        if self.current is None:
            return None
        try:
            return _read(self.store, self.current)
        except ArtifactNotFound:
            self.reason = f"checkpoint {self.current} is not in the artifact store (removed, or another store)"
        except Exception as e:  # truncated, corrupt, not a checkpoint: start afresh, never crash the worker
            text = str(e).strip()
            detail = text.splitlines()[0].split(". ")[0][:160] if text else type(e).__name__
            self.reason = f"checkpoint {self.current} cannot be read (truncated or corrupt: {detail})"
        return None

    def save(self, state: dict[str, Any]) -> None:
        if state.get("epoch") == self.final_epoch and state.get("partial") is None:
            if self.keep_weights and isinstance(state.get("model"), dict):
                self.weights = {k: v.detach().to("cpu", copy=True) for k, v in state["model"].items()}
            return
        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        size = buffer.tell()
        buffer.seek(0)
        new = f"checkpoint-{uuid.uuid4().hex}.pt"
        try:
            self.store.write(new, buffer)
            self.trials.write_system(self.trial_id, POINTER,
                                     {"artifact_id": new, "epoch": state.get("epoch"), "bytes": size})
        except Exception as e:  # the store or the database refused: the previous checkpoint stays the one
            _remove(self.store, new)
            # Optuna's text for a failed commit guesses at invalid data; during an outage it only misleads.
            down = isinstance(e, (*self.trials.outage, ConnectionError))
            detail = "the storage is unreachable" if down else f"{type(e).__name__}: {e}"
            raise OSError(f"checkpoint of trial {self.trial.number} not kept ({detail})") from e
        old, self.current = self.current, new
        if old is not None:
            _remove(self.store, old)

    def discard(self) -> None:
        """Remove the latest checkpoint: the trial has ended and nothing will resume it."""
        if self.current is not None:
            _remove(self.store, self.current)
            self.current = None

    def keep_weights_artifact(self, seed: int) -> str | None:
        """Upload the held final weights as an artifact of the (still running) trial; its id, or None."""
        if self.weights is None:
            return None
        import torch

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / WEIGHTS_NAME.format(number=self.trial.number, seed=seed)
            torch.save(self.weights, path)
            return upload_artifact(artifact_store=self.store, file_path=str(path), study_or_trial=self.trial)


def discard_checkpoint(store: Any, trial: FrozenTrial) -> None:
    """Remove a failed trial's checkpoint once no retry will take it (retries used up)."""
    artifact = pointed(trial)
    if artifact is not None:
        _remove(store, artifact)


def weights_artifacts(storage: BaseStorage, trial: FrozenTrial) -> list[tuple[str, str]]:
    """(artifact id, file name) of the weights kept for `trial`."""
    metas = get_all_artifact_meta(trial, storage=storage)
    return [(m.artifact_id, m.filename) for m in metas if m.filename.startswith(WEIGHTS_PREFIX)]


def _read(store: Any, artifact_id: str) -> Any:
    import torch

    with store.open_reader(artifact_id) as reader:
        data = reader.read()
    # weights_only: a checkpoint is data, never code, even from a shared store.
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _remove(store: Any, artifact_id: str) -> None:
    try:
        store.remove(artifact_id)
    except ArtifactNotFound:
        pass
    except Exception as e:  # a leftover file costs disk, not correctness
        log.warning("could not remove checkpoint %s: %s", artifact_id, e)
