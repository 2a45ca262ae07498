"""CIFAR-10 in its official python on-disk format: loading, the validation split, subsets and the long tail."""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.errors import DataError

FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
NUM_CLASSES = 10
# Per-channel statistics of the CIFAR-10 training images (RGB, 0..1 scale).
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class Split:
    """Images as uint8 N x 3 x 32 x 32 and int64 labels in 0..k-1."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=num_classes)


@dataclass(frozen=True)
class CifarSplits:
    """The training and validation splits one TrainConfig asks for; the test set is not here."""

    train: Split
    val: Split
    num_classes: int
    class_names: tuple[str, ...]


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """`--data-dir`, else `$HPSEARCH_DATA_DIR`, else `~/.cache/hpsearch/data`."""
    if data_dir is None:
        data_dir = os.environ.get("HPSEARCH_DATA_DIR") or Path.home() / ".cache" / "hpsearch" / "data"
    return Path(data_dir).expanduser()


def ensure_data(data_dir: str | Path | None, download: bool = False) -> Path:
    """Return a folder holding CIFAR-10; with `download`, fetch the official archive when it is missing."""
    root = resolve_data_dir(data_dir)
    if (root / FOLDER).is_dir() or (root / ARCHIVE).is_file():
        return root
    if root.name == FOLDER and root.is_dir():
        return root.parent
    if not download:
        raise DataError(
            f"no CIFAR-10 in {str(root)!r}: expected {FOLDER}/ or {ARCHIVE} there; "
            "point --data-dir or HPSEARCH_DATA_DIR at the folder holding it, or add --download"
        )
    from torchvision.datasets.utils import download_url  # only users on the internet get here

    root.mkdir(parents=True, exist_ok=True)
    download_url("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", str(root), ARCHIVE)
    return root


def load_raw(root: str | Path, which: str) -> Split:
    """Read the full `train` (50,000) or `test` (10,000) set from a folder or the .tar.gz archive."""
    root = Path(root)
    names = TRAIN_FILES if which == "train" else (TEST_FILE,)
    stat = _fingerprint(root)
    return _load_raw_cached(str(root), names, stat)


def class_names(root: str | Path) -> tuple[str, ...]:
    """The label names from batches.meta, or the standard ones when it is absent."""
    try:
        meta = _read_members(Path(root), ("batches.meta",))[0]
        return tuple(str(n) for n in meta["label_names"])
    except DataError:
        return ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def data_hash(root: str | Path) -> str:
    """A short content hash of the data files, recorded with exports so a reproduction can check it."""
    root = Path(root)
    digest = hashlib.sha256()
    folder = root / FOLDER
    files = [folder / n for n in (*TRAIN_FILES, TEST_FILE)] if folder.is_dir() else [root / ARCHIVE]
    for path in files:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def make_splits(config: TrainConfig, root: str | Path) -> CifarSplits:
    """Apply the class subset, the stratified validation split, the long tail and the data fraction.

    Cached per process: a worker running many trials on the same data fidelity splits it once.
    """
    root = Path(root)
    key = (config.classes, config.val_fraction, config.split_seed, config.imbalance_ratio, config.data_fraction)
    return _make_splits_cached(str(root), _fingerprint(root), key)


@functools.lru_cache(maxsize=8)
def _make_splits_cached(root: str, _stat: Any, key: tuple[Any, ...]) -> CifarSplits:
    classes_opt, val_fraction, split_seed, imbalance_ratio, data_fraction = key
    full = load_raw(root, "train")
    names = class_names(root)
    classes = classes_opt if classes_opt is not None else tuple(range(NUM_CLASSES))
    rng = np.random.default_rng(split_seed)
    train_idx: list[np.ndarray] = []
    val_idx: list[np.ndarray] = []
    per_class = [np.flatnonzero(full.labels == c) for c in classes]
    smallest = min(len(ix) for ix in per_class)
    n_val = max(1, round(val_fraction * smallest))  # the same count for every class: balanced
    for ix in per_class:
        ix = rng.permutation(ix)
        val_idx.append(ix[:n_val])
        train_idx.append(ix[n_val:])
    keep = long_tail_counts([len(ix) for ix in train_idx], imbalance_ratio)
    keep = [max(1, round(k * data_fraction)) for k in keep]
    train_idx = [ix[:k] for ix, k in zip(train_idx, keep, strict=True)]
    remap = np.full(NUM_CLASSES, -1, dtype=np.int64)
    remap[list(classes)] = np.arange(len(classes))
    return CifarSplits(
        train=_take(full, np.concatenate(train_idx), remap),
        val=_take(full, np.concatenate(val_idx), remap),
        num_classes=len(classes),
        class_names=tuple(names[c] for c in classes),
    )


def load_test_split(config: TrainConfig, root: str | Path) -> Split:
    """The held-out test set, restricted to the config's classes; only `hpsearch train --test` reads it."""
    full = load_raw(root, "test")
    classes = config.classes if config.classes is not None else tuple(range(NUM_CLASSES))
    remap = np.full(NUM_CLASSES, -1, dtype=np.int64)
    remap[list(classes)] = np.arange(len(classes))
    return _take(full, np.flatnonzero(np.isin(full.labels, classes)), remap)


def long_tail_counts(counts: list[int], ratio: float) -> list[int]:
    """Exponential profile: class i keeps counts[i] * ratio^(-i/(k-1)), so largest / smallest = ratio."""
    k = len(counts)
    if ratio == 1 or k < 2:
        return list(counts)
    top = counts[0]
    return [min(c, max(1, int(top * ratio ** (-i / (k - 1))))) for i, c in enumerate(counts)]


def _take(split: Split, idx: np.ndarray, remap: np.ndarray) -> Split:
    idx = np.sort(idx)  # a stable order; training shuffles every epoch anyway
    return Split(images=split.images[idx], labels=remap[split.labels[idx]])


def _fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Sizes and mtimes, so the in-process cache notices a rebuilt folder."""
    paths = [root / FOLDER / n for n in (*TRAIN_FILES, TEST_FILE)] + [root / ARCHIVE]
    return tuple((p.name, s.st_size, s.st_mtime_ns) for p in paths if p.exists() for s in [p.stat()])


@functools.lru_cache(maxsize=4)
def _load_raw_cached(root: str, names: tuple[str, ...], _stat: Any) -> Split:
    batches = _read_members(Path(root), names)
    images, labels = [], []
    for name, batch in zip(names, batches, strict=True):
        data, y = batch.get("data"), batch.get("labels")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise DataError(
                f"{name} in {root!r} has no uint8 N x 3072 'data' array: not CIFAR-10's python format; "
                "re-extract cifar-10-python.tar.gz"
            )
        if y is None or len(y) != len(data):
            raise DataError(f"{name} in {root!r} has {len(data)} images but no matching 'labels'; re-extract it")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(y, dtype=np.int64))
    out = Split(images=np.concatenate(images), labels=np.concatenate(labels))
    if out.labels.min() < 0 or out.labels.max() >= NUM_CLASSES:
        raise DataError(f"labels in {root!r} fall outside 0..9: not CIFAR-10; check the data folder")
    return out


def _read_members(root: Path, names: tuple[str, ...]) -> list[dict[str, Any]]:
    folder = root / FOLDER
    if folder.is_dir():
        out = []
        for name in names:
            path = folder / name
            if not path.is_file():
                raise DataError(f"{str(path)!r} is missing: the CIFAR-10 folder is incomplete; re-extract the archive")
            with path.open("rb") as f:
                out.append(_unpickle(f, str(path)))
        return out
    archive = root / ARCHIVE
    if not archive.is_file():
        raise DataError(f"no CIFAR-10 in {str(root)!r}: expected {FOLDER}/ or {ARCHIVE}; pass --data-dir")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            out = []
            for name in names:
                try:
                    member = tar.extractfile(f"{FOLDER}/{name}")
                except KeyError:
                    member = None
                if member is None:
                    raise DataError(f"{str(archive)!r} has no {FOLDER}/{name}: not the CIFAR-10 python archive")
                out.append(_unpickle(member, f"{archive}:{name}"))
            return out
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{str(archive)!r} is not a readable .tar.gz ({e}); download it again") from None


def _unpickle(f: IO[bytes], where: str) -> dict[str, Any]:
    try:
        obj = pickle.load(f, encoding="bytes")
    except Exception:
        raise DataError(f"{where!r} is not a CIFAR-10 batch (cannot unpickle it); re-extract the archive") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where!r} is not a CIFAR-10 batch (expected a dict); re-extract the archive")
    # The official files were pickled by Python 2: their keys are bytes.
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}
