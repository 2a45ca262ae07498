from pathlib import Path

import numpy as np
import pytest

from hpsearch.objectives.config import TrainConfig
from hpsearch.objectives.data import load_raw, load_test_split, long_tail_counts, make_splits
from hpsearch.objectives.errors import DataError
from tests.cifar_files import write_cifar


@pytest.mark.parametrize("tar", [False, True], ids=["folder", "tar.gz"])
@pytest.mark.parametrize("bytes_keys", [True, False], ids=["py2-pickle", "py3-pickle"])
def test_both_layouts_load_the_same_images(tmp_path: Path, tar: bool, bytes_keys: bool) -> None:
    reference = load_raw(write_cifar(tmp_path / "ref", tar=False), "train")
    split = load_raw(write_cifar(tmp_path / "x", tar=tar, bytes_keys=bytes_keys), "train")
    assert split.images.shape == (400, 3, 32, 32) and split.images.dtype == np.uint8
    assert np.array_equal(split.images, reference.images) and np.array_equal(split.labels, reference.labels)


def test_validation_split_is_stratified_seeded_and_disjoint(cifar_dir: Path) -> None:
    config = TrainConfig(val_fraction=0.25, split_seed=3)
    a, b = make_splits(config, cifar_dir), make_splits(config.replace(seed=99), cifar_dir)
    assert np.bincount(a.val.labels).tolist() == [10] * 10  # balanced: a quarter of 40 per class
    assert np.bincount(a.train.labels).tolist() == [30] * 10
    assert np.array_equal(a.val.images, b.val.images)  # the training seed does not move the split
    other = make_splits(config.replace(split_seed=4), cifar_dir)
    assert not np.array_equal(a.val.images, other.val.images)
    train_rows = {img.tobytes() for img in a.train.images}
    assert not any(img.tobytes() in train_rows for img in a.val.images)


def test_long_tail_thins_only_training_with_the_exponential_profile(cifar_dir: Path) -> None:
    config = TrainConfig(val_fraction=0.25, imbalance_ratio=10)
    splits = make_splits(config, cifar_dir)
    counts = np.bincount(splits.train.labels, minlength=10)
    expected = [int(30 * 10 ** (-i / 9)) for i in range(10)]
    assert counts.tolist() == expected
    assert counts[0] / counts[-1] == pytest.approx(10, rel=0.05)
    assert np.bincount(splits.val.labels).tolist() == [10] * 10


def test_long_tail_profile_ratio() -> None:
    counts = long_tail_counts([4500] * 10, 100)
    assert counts[0] == 4500 and counts[-1] == 45 and counts == sorted(counts, reverse=True)


def test_fraction_and_class_subset(cifar_dir: Path) -> None:
    splits = make_splits(TrainConfig(val_fraction=0.25, data_fraction=0.5, classes=(3, 5)), cifar_dir)
    assert splits.num_classes == 2 and splits.class_names == ("cat", "dog")
    assert np.bincount(splits.train.labels).tolist() == [15, 15]
    assert set(load_test_split(TrainConfig(classes=(3, 5)), cifar_dir).labels.tolist()) == {0, 1}


def test_missing_and_malformed_folders_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no CIFAR-10"):
        load_raw(tmp_path, "train")
    root = write_cifar(tmp_path / "broken")
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match=r"data_batch_3.*cannot unpickle"):
        load_raw(root, "train")
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"data_batch_3.*missing"):
        load_raw(root, "train")
