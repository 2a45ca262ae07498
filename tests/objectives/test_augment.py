import torch

from hpsearch.objectives import augment
from hpsearch.objectives.data import Split
from hpsearch.objectives.loader import Augmentation, DeviceLoader


def known_image() -> torch.Tensor:
    return torch.arange(3 * 32 * 32, dtype=torch.int32).view(1, 3, 32, 32)


def test_crop_moves_pixels_by_the_shift_with_reflect_padding() -> None:
    img = known_image()
    out = augment.crop_at(img, torch.tensor([3]), torch.tensor([-2]), padding=4)
    # Interior: out[y, x] = img[y - 2, x + 3].
    assert torch.equal(out[0, :, 2:, :29], img[0, :, :30, 3:])
    # Top border reflects rows 2, 1 (the edge row is not repeated); right border reflects columns 30, 29, 28.
    assert torch.equal(out[0, :, 0, :29], img[0, :, 2, 3:])
    assert torch.equal(out[0, :, 1, :29], img[0, :, 1, 3:])
    assert torch.equal(out[0, :, 2:, 29:], img[0, :, :30, [30, 29, 28]])


def test_zero_shift_is_identity_and_matches_torch_reflect_pad() -> None:
    img = torch.randint(0, 255, (16, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(augment.crop_at(img, torch.zeros(16, dtype=torch.long), torch.zeros(16, dtype=torch.long)), img)
    dx, dy = torch.randint(-4, 5, (16,)), torch.randint(-4, 5, (16,))
    padded = torch.nn.functional.pad(img.float(), (4, 4, 4, 4), mode="reflect")
    expected = torch.stack([padded[i, :, 4 + dy[i]:36 + dy[i], 4 + dx[i]:36 + dx[i]] for i in range(16)])
    assert torch.equal(augment.crop_at(img, dx, dy).float(), expected)


def test_flip_mirrors_exactly_the_masked_images() -> None:
    img = known_image().repeat(2, 1, 1, 1)
    out = augment.flip_where(img, torch.tensor([True, False]))
    assert torch.equal(out[0, :, :, 0], img[0, :, :, 31]) and torch.equal(out[0, :, 5, 10], img[0, :, 5, 21])
    assert torch.equal(out[1], img[1])


def test_cutout_zeroes_one_square_per_image() -> None:
    g = torch.Generator().manual_seed(0)
    out = augment.random_cutout(torch.ones(8, 3, 32, 32), g, 8)
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert bool(((zeros > 0) & (zeros <= 64)).all())
    assert torch.equal(out[:, 0] == 0, out[:, 2] == 0)  # the same square in every channel


def test_loader_covers_the_split_each_epoch_and_normalises() -> None:
    labels = torch.arange(100) % 10
    split = Split(images=torch.randint(0, 255, (100, 3, 32, 32), dtype=torch.uint8).numpy(), labels=labels.numpy())
    loader = DeviceLoader(split, 32, torch.device("cpu"), shuffle=True, seed=1)
    seen = torch.cat([y for _, y in loader])
    assert len(loader) == 4 and sorted(seen.tolist()) == sorted(labels.tolist())
    x, _ = next(iter(DeviceLoader(split, 100, torch.device("cpu"))))
    assert x.dtype == torch.float32 and abs(float(x.mean())) < 0.6
    train = DeviceLoader(split, 32, torch.device("cpu"), augmentation=Augmentation(), shuffle=True, drop_last=True)
    assert len(train) == 3 and all(x.shape == (32, 3, 32, 32) for x, _ in train)
