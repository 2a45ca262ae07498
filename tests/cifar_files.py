"""Tiny datasets written in CIFAR-10's official on-disk format, so the real loader reads them."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def images_for(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noise around a per-class colour, so a small network can learn something in a few steps."""
    base = (np.arange(10)[:, None] * np.array([25, 70, 130]) % 256).astype(np.int16)
    noise = rng.integers(-40, 41, size=(len(labels), 3, 1024))
    return np.clip(base[labels][:, :, None] + noise, 0, 255).astype(np.uint8).reshape(len(labels), 3072)


def write_cifar(root: Path, per_class_train: int = 40, per_class_test: int = 10, *, tar: bool = False,
                bytes_keys: bool = True, seed: int = 0) -> Path:
    """Write `root/cifar-10-batches-py/` (or the .tar.gz) with shuffled, balanced classes; return root."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    train_labels = rng.permutation(np.repeat(np.arange(10), per_class_train))
    test_labels = rng.permutation(np.repeat(np.arange(10), per_class_test))
    chunks = np.array_split(np.arange(len(train_labels)), 5)

    def dump(name: str, obj: dict) -> None:
        # The official files are Python 2 pickles with bytes keys; the loader must accept both.
        if bytes_keys:
            obj = {k.encode(): v for k, v in obj.items()}
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))

    for i, idx in enumerate(chunks, start=1):
        y = train_labels[idx]
        dump(f"data_batch_{i}", {"data": images_for(y, rng), "labels": y.tolist(), "batch_label": f"batch {i}"})
    dump("test_batch", {"data": images_for(test_labels, rng), "labels": test_labels.tolist()})
    dump("batches.meta", {"label_names": NAMES, "num_cases_per_batch": len(chunks[0])})
    if tar:
        with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as archive:
            archive.add(folder, arcname="cifar-10-batches-py")
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
    return root
