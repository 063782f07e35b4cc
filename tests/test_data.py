"""Data: the real torchvision CIFAR-10 loader on a fixture in the genuine format, offline errors,
digits, a batch stream whose order is reproducible and resumable, and the photograph of chapters 2-5."""

from __future__ import annotations

import socket
import time
import urllib.error

import pytest
import torch

from ddpm_edu.data import DataError
from ddpm_edu.data import cifar10, digits, download, photo, standin, stream, toy
from ddpm_edu.training import build
from ddpm_edu.training.config import load_config


def test_cifar10_goes_through_torchvision(fake_cifar, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    root, arrays = fake_cifar
    calls = []
    real_load = tv_cifar.pickle.load
    monkeypatch.setattr(tv_cifar.pickle, "load", lambda f, **kw: calls.append(f.name) or real_load(f, **kw))
    x = cifar10.load_cifar10(root, download=False, verify_md5=False)
    assert x.dtype == torch.uint8 and x.shape == (80, 3, 32, 32)
    expected = torch.cat([torch.from_numpy(arrays[f"data_batch_{i}"]) for i in range(1, 6)])
    assert torch.equal(x, expected)  # channel order and image order survive torchvision's HWC round trip
    assert len(calls) == 6  # five training batches and batches.meta, unpickled by torchvision itself


def test_cifar10_checks_md5_by_default(fake_cifar):
    root, _ = fake_cifar
    with pytest.raises(DataError, match="integrity check.*verify_md5=false"):
        cifar10.load_cifar10(root, download=False)


def test_standin_images_are_crops_of_the_two_photographs_in_cifar10_format(tmp_path):
    import numpy as np

    folder = standin.write_standin_cifar10(tmp_path, per_batch=2, seed=1)  # image k: photograph k % 2
    assert sorted(p.name for p in folder.iterdir()) == sorted(cifar10.CIFAR10_FILES)
    x = cifar10.load_cifar10(tmp_path, download=False, verify_md5=False)  # torchvision reads them
    assert x.dtype == torch.uint8 and x.shape == (10, 3, 32, 32)
    photos = []
    for name in ("china.jpg", "flower.jpg"):
        img = torch.from_numpy(np.array(photo._sample_image(name))).permute(2, 0, 1).float()[None]
        small = torch.nn.functional.interpolate(img, scale_factor=1 / 3, mode="area")[0].round().clamp(0, 255)
        photos.append(small.to(torch.uint8))
    for k in range(4):  # image k is a 32x32 window of photograph k % 2, found by exhaustive search
        windows = photos[k % 2].unfold(1, 32, 1).unfold(2, 32, 1)  # (3, h-31, w-31, 32, 32)
        hits = (windows == x[k][:, None, None]).all(-1).all(-1).all(0)
        assert hits.any(), f"stand-in image {k} is not a crop of its photograph"
    assert not torch.equal(x[0], x[2])  # different crops


def test_the_cifar10_writer_refuses_what_the_format_cannot_hold(tmp_path):
    import numpy as np

    ok = {name: np.zeros((2, 3, 32, 32), np.uint8) for name in cifar10.CIFAR10_FILES[:-1]}
    with pytest.raises(ValueError, match="keys"):
        cifar10.write_cifar10_files(tmp_path, {k: v for k, v in ok.items() if k != "test_batch"})
    with pytest.raises(ValueError, match="data_batch_1: images must be uint8 of shape"):
        cifar10.write_cifar10_files(tmp_path, {**ok, "data_batch_1": np.zeros((2, 3, 32, 32), np.float32)})


def _assert_actionable(msg: str, root) -> None:
    folder = f"{root.resolve()}/cifar-10-batches-py"
    for needle in (folder, "data_batch_1", "data_batch_5", "test_batch", "batches.meta", "data.root",
                   "--config digits", "--config toy2d", cifar10.CIFAR10_URL):
        assert needle in msg, needle


def test_offline_without_network_is_quick_and_actionable(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "reachable", lambda host, port, timeout: False)  # no route to the server
    t0 = time.perf_counter()
    with pytest.raises(DataError) as e:
        cifar10.load_cifar10(tmp_path / "data")
    assert time.perf_counter() - t0 < 10
    _assert_actionable(str(e.value), tmp_path / "data")
    assert "cannot be reached" in str(e.value)


def test_failed_download_is_quick_and_actionable(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    def fail(*args, **kwargs):
        assert socket.getdefaulttimeout() == cifar10.DOWNLOAD_TIMEOUT_S  # the download runs under a socket timeout
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download, "reachable", lambda host, port, timeout: True)
    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", fail)
    before = socket.getdefaulttimeout()
    t0 = time.perf_counter()
    with pytest.raises(DataError) as e:
        cifar10.load_cifar10(tmp_path / "data")
    assert time.perf_counter() - t0 < 10
    assert socket.getdefaulttimeout() == before
    _assert_actionable(str(e.value), tmp_path / "data")
    assert "download failed" in str(e.value) and "URLError" in str(e.value)


def test_download_false_is_actionable(tmp_path):
    with pytest.raises(DataError) as e:
        cifar10.load_cifar10(tmp_path, download=False)
    _assert_actionable(str(e.value), tmp_path)


def test_digits():
    x = digits.load_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == torch.float32
    assert x.min() == -1.0 and x.max() == 1.0  # raw values 0..16 -> v / 8 - 1


def test_stream_is_reproducible_and_scaled():
    data = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    a = [next(it) for it in [stream.BatchIterator(data, 4, seed=7)] for _ in range(6)]
    b = [next(it) for it in [stream.BatchIterator(data, 4, seed=7)] for _ in range(6)]
    c = [next(it) for it in [stream.BatchIterator(data, 4, seed=8)] for _ in range(6)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    allowed = data.float() / 127.5 - 1
    for x in a:  # each row is one of the images, scaled to [-1, 1]
        assert x.shape == (4, 3, 4, 4) and x.min() >= -1 and x.max() <= 1
        assert all(any(torch.allclose(row, img) for img in allowed) for row in x)


def test_each_epoch_is_a_permutation_without_repeats():
    data = torch.arange(12, dtype=torch.float32).view(12, 1)
    it = stream.BatchIterator(data, 5, seed=0)  # 2 batches per epoch, 2 examples dropped
    epoch0 = torch.cat([next(it), next(it)]).flatten().tolist()
    assert len(set(epoch0)) == 10 and it.epoch == 0
    next(it)
    assert it.epoch == 1


def test_state_restores_the_exact_order_across_epochs():
    data = torch.randint(0, 256, (9, 3, 4, 4), dtype=torch.uint8)
    it = stream.BatchIterator(data, 4, seed=3, hflip=True)
    for _ in range(3):
        next(it)
    state = it.state_dict()
    rest = [next(it) for _ in range(7)]
    fresh = stream.BatchIterator(data, 4, seed=99, hflip=True)  # another seed: the state must override it
    fresh.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(rest, [next(fresh) for _ in range(7)]))


def test_flips_happen_and_are_only_flips():
    data = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).view(2, 3, 4, 4)  # left-right asymmetric
    it = stream.BatchIterator(data, 2, seed=0, hflip=True)
    seen_flipped = seen_plain = False
    for _ in range(20):
        for row in next(it):
            imgs = data.float() / 127.5 - 1
            plain = any(torch.equal(row, im) for im in imgs)
            flipped = any(torch.equal(row, im.flip(-1)) for im in imgs)
            assert plain or flipped
            seen_plain |= plain
            seen_flipped |= flipped
    assert seen_plain and seen_flipped


def test_ranks_read_disjoint_shards_of_one_global_order():
    """W processes with the same seed, each keeping its rows of every global batch, together read exactly
    the batches of one process, across epochs (and flips); their state is that one process's state."""
    from ddpm_edu.training.distributed import World

    data = torch.linspace(-1, 1, 23 * 2).reshape(23, 1, 1, 2)  # 23 examples: 2 batches of 10 per epoch, 3 dropped
    one = stream.BatchIterator(data, 10, seed=5, hflip=True)
    ranks = [stream.BatchIterator(data, 10, seed=5, hflip=True, rows=World(rank=r, size=2).rows(10)) for r in (0, 1)]
    for _ in range(5):  # into the third epoch
        parts = [next(it) for it in ranks]
        assert all(p.shape[0] == 5 for p in parts)
        assert torch.equal(torch.cat(parts), next(one))
    for it in ranks:
        s, ref = it.state_dict(), one.state_dict()
        assert (s["epoch"], s["pos"]) == (ref["epoch"], ref["pos"]) == (2, 10)
        assert all(torch.equal(s[k], ref[k]) for k in ("perm", "flips", "generator"))


def test_make_batches_refuses_a_global_batch_that_does_not_split():
    from ddpm_edu.training.distributed import DistributedError, World

    cfg = load_config("digits", ["data.batch_size=10"])
    with pytest.raises(DistributedError, match="split evenly over the 3 processes"):
        build.make_batches(cfg, world=World(rank=0, size=3))
    assert build.make_batches(cfg, world=World(rank=1, size=2)).rows == slice(5, 10)


def test_batch_larger_than_data_is_an_error():
    with pytest.raises(DataError, match="larger than the data set"):
        stream.BatchIterator(torch.zeros(3, 2), 4)


def test_make_batches_for_cifar_fixture(fake_cifar):
    root, _ = fake_cifar
    cfg = load_config("cifar10", [f"data.root={root}", "data.verify_md5=false", "data.batch_size=8"])
    it = build.make_batches(cfg, "cpu")
    x = next(it)
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert it.hflip


def test_make_batches_digits_are_never_flipped():
    it = build.make_batches(load_config("digits"), "cpu")
    assert not it.hflip and next(it).shape == (128, 1, 8, 8)


def test_toy_points():
    cfg = load_config("toy2d")
    x = toy.load_toy(cfg.data.toy, 100, seed=1)
    assert x.shape == (100, 2) and torch.equal(x, toy.load_toy(cfg.data.toy, 100, seed=1))
    assert next(build.make_batches(cfg)).shape == (cfg.data.batch_size, 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_resident_batches_never_wait_for_the_gpu():
    """Within an epoch a batch of a GPU-resident data set is sliced, gathered and flipped on the GPU;
    torch's sync debug mode turns any wait (a blocking copy, a value read back) into an error."""
    data = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8, device="cuda")
    it = stream.BatchIterator(data, 4, seed=0, device="cuda", hflip=True, channels_last=True)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        batches = [next(it) for _ in range(len(it))]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert it.epoch == 0 and all(b.is_cuda and b.shape == (4, 3, 8, 8) for b in batches)


@pytest.mark.parametrize("size", [1, 16, 33])
def test_photo_shape_range_and_dtype(size):
    x = photo.photo(size)
    assert x.shape == (3, size, size) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    if size > 1:
        assert x.std() > 0.1  # a photograph, not a constant


def test_photo_is_deterministic_and_not_aliased():
    a = photo.photo(8)
    a.zero_()
    assert not torch.equal(a, photo.photo(8))  # the cached source image was not modified
    assert torch.equal(photo.photo(8), photo.photo(8))
    assert not torch.equal(photo.photo(8, "flower.jpg"), photo.photo(8))


def test_photo_at_full_size_is_the_centre_crop_rescaled():
    from sklearn.datasets import load_sample_image

    img = torch.tensor(load_sample_image("china.jpg")).permute(2, 0, 1).float()  # (3, 427, 640)
    m = img.shape[1]
    left = (img.shape[2] - m) // 2
    expected = img[:, :, left : left + m] / 127.5 - 1  # v in 0..255 -> v / 127.5 - 1 in [-1, 1]
    torch.testing.assert_close(photo.photo(m), expected, atol=1e-5, rtol=0)  # resizing to its own size changes nothing


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_photo_rejects_bad_size(bad):
    with pytest.raises(ValueError, match="size"):
        photo.photo(bad)


def test_shown_path_writes_the_home_folder_as_a_tilde(monkeypatch, tmp_path):
    from pathlib import Path

    from ddpm_edu.data.files import shown_path

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    inside = tmp_path / "home" / ".cache" / "ddpm_edu" / "run"
    assert shown_path(inside) == "~/.cache/ddpm_edu/run"
    assert Path(shown_path(inside)).expanduser() == inside  # the text leads back to the same folder
    assert shown_path(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")


# --------------------------------------------------------------------------- labels (chapter 10)
def test_digit_labels_belong_to_their_images():
    """Each image is nearest to the mean image of its own label far more often than chance (10 %)."""
    x, y = digits.load_digits().flatten(1), digits.load_digit_labels()
    assert y.shape == (1797,) and y.dtype == torch.int64 and sorted(y.unique().tolist()) == list(range(10))
    means = torch.stack([x[y == k].mean(0) for k in range(10)])  # (10, 64)
    nearest = torch.cdist(x, means).argmin(1)
    assert (nearest == y).double().mean() > 0.85


def test_cifar10_labels_come_through_torchvision(fake_cifar):
    """The fixture labels image k of every file k mod 10 (cifar10.write_cifar10_files); torchvision reads them."""
    root, arrays = fake_cifar
    x, y = cifar10.load_cifar10(root, download=False, verify_md5=False, labels=True)
    assert torch.equal(x, cifar10.load_cifar10(root, download=False, verify_md5=False))
    per_file = len(arrays["data_batch_1"])
    assert y.dtype == torch.int64 and y.tolist() == [k % 10 for k in range(per_file)] * 5


def test_a_labelled_stream_gathers_labels_with_the_images_and_keeps_the_order():
    data = torch.arange(30, dtype=torch.float32).view(30, 1) / 30  # example i is i / 30
    labels = torch.arange(30) % 7
    plain, labelled = stream.BatchIterator(data, 8, seed=3), stream.BatchIterator(data, 8, seed=3, labels=labels)
    for _ in range(9):  # across epochs
        x, y = next(labelled)
        assert torch.equal(x, next(plain))  # the same order as without labels
        assert torch.equal(y, (x[:, 0] * 30).round().long() % 7)  # each label is its own image's
    state = labelled.state_dict()
    again = stream.BatchIterator(data, 8, seed=99, labels=labels)
    again.load_state_dict(state)
    a, b = next(labelled), next(again)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(DataError, match=r"labels must be \(30,\).*\(29,\)"):
        stream.BatchIterator(data, 8, labels=labels[:29])


def test_make_batches_with_labels():
    it = build.make_batches(load_config("digits-guided"), "cpu")
    x, y = next(it)
    assert x.shape == (128, 1, 8, 8) and y.shape == (128,) and y.dtype == torch.int64 and 0 <= y.min() <= y.max() <= 9
    assert isinstance(next(build.make_batches(load_config("digits"), "cpu")), torch.Tensor)  # no labels: images only


def test_make_batches_for_labelled_cifar_fixture(fake_cifar):
    root, _ = fake_cifar
    cfg = load_config("cifar10", [f"data.root={root}", "data.verify_md5=false", "data.batch_size=8", "data.labels=true"])
    x, y = next(build.make_batches(cfg, "cpu"))
    assert x.shape == (8, 3, 32, 32) and y.shape == (8,) and y.max() <= 9
