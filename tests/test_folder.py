"""A folder of images as a training set: finding, converting, cropping, the cache, bad input, and the command end to end.

The folders are generated here: mixed sizes and modes (L, RGB, RGBA, P), a subfolder, an upper-case
.JPG, a corrupt .png, a text file and hidden files. Expected pixels come from numpy slicing and from
the closed forms of the conversions (ITU-R 601 luma, compositing over white), not from a previous run.
"""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli_command, subprocess_env, tiny_unet_overrides
from PIL import Image

from ddpm_edu.data import DataError
from ddpm_edu.data import folder as F
from ddpm_edu.data.files import shown_path
from ddpm_edu.training import checkpoint as ck
from ddpm_edu.training.config import ConfigError, load_config

RNG = np.random.default_rng(0)


def noise(h: int, w: int, c: int | None = 3) -> np.ndarray:
    return RNG.integers(0, 256, (h, w) if c is None else (h, w, c), dtype=np.uint8)


def write_mixed_folder(root: Path) -> dict[str, str]:
    """Images of every kind the loader meets, and files it must leave alone; returns {relative path: what}."""
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(noise(24, 40)).save(root / "wide.png")  # RGB, landscape
    Image.fromarray(noise(48, 32, None)).save(root / "grey.png")  # L, portrait
    Image.fromarray(noise(36, 36, 4)).save(root / "alpha.png")  # RGBA
    Image.fromarray(noise(40, 40)).convert("P").save(root / "sub" / "palette.bmp")  # P
    Image.fromarray(noise(48, 64)).save(root / "sub" / "deeper" / "photo.JPG", format="JPEG")  # upper case
    Image.fromarray(noise(20, 16)).save(root / "small.webp")  # smaller than 32: upscaled
    good = Image.fromarray(noise(32, 32))
    good.save(root / "broken.png")
    (root / "broken.png").write_bytes((root / "broken.png").read_bytes()[:60])  # a truncated PNG
    (root / "notes.txt").write_text("not an image")
    (root / "._photo.jpg").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")  # hidden: left out
    (root / ".thumbs").mkdir()
    good.save(root / ".thumbs" / "t.png")  # in a hidden folder: left out
    return {"alpha.png": "RGBA", "broken.png": "corrupt", "grey.png": "L", "small.webp": "RGB",
            "sub/deeper/photo.JPG": "RGB", "sub/palette.bmp": "P", "wide.png": "RGB"}


@pytest.fixture
def mixed(tmp_path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "photos"
    return root, write_mixed_folder(root)


def load_quietly(*args, **kw) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return F.load_folder(*args, **kw)


# --------------------------------------------------------------------------- finding and decoding
def test_finds_images_recursively_in_any_case_and_nothing_else(mixed):
    root, kinds = mixed
    found_root, files = F.find_images(root)
    assert found_root == root.resolve() and files == sorted(kinds)


@pytest.mark.parametrize("channels", [1, 3])
def test_a_mixed_folder_loads_as_uint8_squares_that_the_stream_scales_to_the_unit_range(mixed, cache_dir, channels):
    from ddpm_edu.data.stream import BatchIterator

    root, kinds = mixed
    x = load_quietly(root, 32, channels, skip_bad=True, progress=False)
    assert x.shape == (len(kinds) - 1, channels, 32, 32) and x.dtype == torch.uint8  # all but broken.png
    batch = next(BatchIterator(x, len(x), seed=0, hflip=True))
    assert batch.dtype == torch.float32 and batch.min() >= -1 and batch.max() <= 1
    assert batch.min() == -1 and batch.max() == 1  # uniform noise reaches 0 and 255


def test_centre_crop_is_the_middle_of_the_image(tmp_path):
    """Short side already at the size: no resize, and the crop is plain slicing (an odd margin rounds down)."""
    wide, tall = noise(8, 13), noise(11, 8, None)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    Image.fromarray(tall).save(tmp_path / "tall.png")
    x, small = F.decode_image(tmp_path / "wide.png", 8, 3)
    assert not small and np.array_equal(x, wide[:, 2:10].transpose(2, 0, 1))  # (13 - 8) // 2 = 2 columns off the left
    x, _ = F.decode_image(tmp_path / "tall.png", 8, 1)
    assert np.array_equal(x[0], tall[1:9])  # (11 - 8) // 2 = 1 row off the top


def test_resize_scales_the_short_side_then_crops_the_centre(tmp_path):
    """A 20x60 image of three 20x20 squares (red, green, blue) at size 10 is resized to 10x30: its centre is green."""
    img = np.zeros((20, 60, 3), np.uint8)
    for k in range(3):
        img[:, 20 * k : 20 * (k + 1), k] = 255
    Image.fromarray(img).save(tmp_path / "rgb.png")
    x, small = F.decode_image(tmp_path / "rgb.png", 10, 3)
    assert not small and x.shape == (3, 10, 10)
    assert (x[1, :, 2:8] == 255).all() and (x[[0, 2], :, 2:8] == 0).all()  # away from the edges: pure green
    Image.fromarray(np.full((6, 9, 3), (10, 200, 30), np.uint8)).save(tmp_path / "flat.png")
    x, small = F.decode_image(tmp_path / "flat.png", 12, 3)  # upscaled: a flat colour stays flat
    assert small and x.shape == (3, 12, 12) and all((x[c] == v).all() for c, v in enumerate((10, 200, 30)))


def test_modes_convert_by_their_closed_forms(tmp_path):
    r, g, b = 200, 100, 50
    Image.new("RGB", (8, 8), (r, g, b)).save(tmp_path / "rgb.png")
    x, _ = F.decode_image(tmp_path / "rgb.png", 8, 1)
    assert (x == round(0.299 * r + 0.587 * g + 0.114 * b)).all()  # ITU-R 601-2 luma
    Image.new("L", (8, 8), 77).save(tmp_path / "grey.png")
    x, _ = F.decode_image(tmp_path / "grey.png", 8, 3)
    assert (x == 77).all()  # grey to RGB: three equal channels
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3], rgba[:4, ..., 3], rgba[4:, ..., 3] = (0, 0, 200), 0, 102  # top: transparent; bottom: alpha 0.4
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    x, _ = F.decode_image(tmp_path / "rgba.png", 8, 3)
    assert (x[:, :4] == 255).all()  # transparent over white is white
    blend = [round(a * 0.4 + F.BACKGROUND * 0.6) for a in (0, 0, 200)]  # c alpha + white (1 - alpha)
    assert all(abs(int(x[c, 4:].min()) - v) <= 1 and abs(int(x[c, 4:].max()) - v) <= 1 for c, v in enumerate(blend))
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    pal.paste(0, (0, 0, 8, 4))
    pal.save(tmp_path / "pal.png", transparency=0)  # palette index 0 is transparent
    x, _ = F.decode_image(tmp_path / "pal.png", 8, 3)
    assert (x[:, :4] == 255).all() and all((x[c, 4:] == v).all() for c, v in enumerate((10, 20, 30)))


def test_sixteen_bit_grey_is_scaled_to_eight_bits(tmp_path):
    a = np.array([[0, 257 * 100], [65535, 257 * 7]], dtype=np.uint16).repeat(2, 0).repeat(2, 1)  # (4, 4)
    Image.fromarray(a).save(tmp_path / "deep.png")
    x, _ = F.decode_image(tmp_path / "deep.png", 4, 1)
    assert np.array_equal(x[0], (a // 257).astype(np.uint8))


def test_exif_orientation_is_applied(tmp_path):
    a = noise(8, 10)
    exif = Image.Exif()
    exif[0x0112] = 3  # Orientation: rotate 180
    Image.fromarray(a).save(tmp_path / "turned.png", exif=exif)
    x, _ = F.decode_image(tmp_path / "turned.png", 8, 3)
    assert np.array_equal(x, a[::-1, ::-1][:, 1:9].transpose(2, 0, 1))


# --------------------------------------------------------------------------- the cache
def test_the_cache_decodes_once_and_notices_a_changed_folder(mixed, cache_dir, monkeypatch):
    root, kinds = mixed
    decoded = []
    real = F.decode_image
    monkeypatch.setattr(F, "decode_image", lambda path, *a: decoded.append(Path(path).name) or real(path, *a))
    first = load_quietly(root, 16, 3, skip_bad=True)
    assert len(decoded) == len(kinds)
    again = load_quietly(root, 16, 3, skip_bad=True)  # a later epoch, a resumed run, another run
    assert len(decoded) == len(kinds) and torch.equal(first, again)
    assert len(list((cache_dir / "folders").glob("*.npz"))) == 1
    with pytest.raises(DataError, match="broken.png"):  # the cached list of bad files still refuses them
        F.load_folder(root, 16, 3)
    assert len(decoded) == len(kinds)
    load_quietly(root, 8, 3, skip_bad=True)  # another size: decoded again
    load_quietly(root, 16, 1, skip_bad=True)  # another number of channels
    assert len(decoded) == 3 * len(kinds)
    os.utime(root / "wide.png", ns=(0, 10**18))  # a file changed
    load_quietly(root, 16, 3, skip_bad=True)
    assert len(decoded) == 4 * len(kinds)
    Image.fromarray(noise(32, 32)).save(root / "sub" / "new.png")  # a file added
    assert len(load_quietly(root, 16, 3, skip_bad=True)) == len(first) + 1
    assert len(decoded) == 5 * len(kinds) + 1
    assert len(list((cache_dir / "folders").glob("*.npz"))) == 3  # the new file replaced the old one for (16, 3)


# --------------------------------------------------------------------------- bad input
def test_a_missing_empty_or_imageless_folder_names_the_folder_and_the_extensions(tmp_path, cache_dir):
    (tmp_path / "empty").mkdir()
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("x")
    (tmp_path / "texts" / "b.gif").write_bytes(b"GIF89a")
    (tmp_path / "file.png").write_bytes(b"")
    for name, what in [("nowhere", "does not exist"), ("file.png", "is a file, not a folder"),
                       ("empty", "holds no images (no files)"), ("texts", "holds no images (only 2 other files)")]:
        with pytest.raises(DataError) as e:
            F.load_folder(tmp_path / name)
        msg = str(e.value)
        assert shown_path(tmp_path / name) in msg and what in msg, msg
        assert all(ext in msg for ext in (".png", ".jpg", ".jpeg", ".webp", ".bmp")) and "subfolders" in msg, msg
    assert not cache_dir.exists()


def test_an_unreadable_file_is_named_and_skip_bad_counts_the_skipped(mixed, cache_dir):
    root, kinds = mixed
    with pytest.raises(DataError) as e:
        F.load_folder(root)
    msg = str(e.value)
    assert f"1 of the {len(kinds)} image files" in msg and "data.skip_bad=true" in msg
    assert f"{shown_path(root)}/broken.png (OSError: " in msg, msg  # the file, and why Pillow refused it
    with pytest.warns(UserWarning) as record:
        x = F.load_folder(root, skip_bad=True)
    skipped = [str(w.message) for w in record if "skip_bad" in str(w.message)]
    assert len(skipped) == 1 and f"skipped 1 of the {len(kinds)}" in skipped[0] and "broken.png" in skipped[0]
    assert len(x) == len(kinds) - 1


def test_a_folder_of_only_bad_files_is_an_error_even_when_skipping(tmp_path, cache_dir):
    (tmp_path / "bad").mkdir()
    for k in range(3):
        (tmp_path / "bad" / f"{k}.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.raises(DataError, match="none of the 3 image files"):
        F.load_folder(tmp_path / "bad", skip_bad=True)


def test_small_images_are_upscaled_with_one_warning_that_counts_them(tmp_path, cache_dir):
    for k, (h, w) in enumerate([(10, 40), (32, 20), (40, 40), (64, 48)]):
        Image.fromarray(noise(h, w)).save(tmp_path / f"{k}.png")
    with pytest.warns(UserWarning) as record:
        x = F.load_folder(tmp_path, 32)
    assert x.shape == (4, 3, 32, 32)
    (msg,) = [str(w.message) for w in record if issubclass(w.category, UserWarning)]  # one warning
    assert msg.startswith(f"2 of the 4 images in {shown_path(tmp_path)} are smaller than 32 pixels"), msg
    assert "upscaled" in msg
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.load_folder(tmp_path, 10)  # all large enough at 10: no warning


def test_config_needs_a_root_for_a_folder_and_folder_keys_only_for_folders():
    with pytest.raises(ConfigError) as e:
        load_config("folder")
    assert "data.root" in str(e.value) and "--set data.root=" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_config("digits", ["data.image_size=16", "data.channels=1", "data.skip_bad=true"])
    assert all(f"data.{k}: only for data.dataset=folder" in str(e.value) for k in ("image_size", "channels", "skip_bad"))
    with pytest.raises(ConfigError, match="data.channels"):
        load_config("folder", ["data.root=/x", "data.channels=2"])
    with pytest.raises(ConfigError, match="model.ch_mult: image_size=36 must be divisible by 2\\^3"):
        load_config("folder", ["data.root=/x", "data.image_size=36"])
    cfg = load_config("folder", ["data.root=~/my_photos", "data.image_size=64", "data.channels=1"])
    from ddpm_edu.training.build import build_model, data_shape

    assert data_shape(cfg) == (1, 64, 64) and build_model(cfg).conv_in.in_channels == 1
    assert data_shape(load_config("folder", ["data.root=/x"])) == (3, 32, 32)  # the preset: 32x32 RGB


# --------------------------------------------------------------------------- the command, end to end
def _train(tmp_path: Path, root: Path, run: str, steps: int) -> subprocess.CompletedProcess:
    overrides = tiny_unet_overrides() + [
        f"data.root={root}", "data.image_size=8", "data.skip_bad=true", "data.batch_size=4", f"train.steps={steps}",
        "train.log_every=1", "train.ckpt_every=0", "train.sample_every=0", "train.warmup=4", "model.attn_resolutions=[4]"]
    args = ["train", "--config", "folder", *[a for o in overrides for a in ("--set", o)], "--run-dir", str(tmp_path / run)]
    return subprocess.run(cli_command() + args, env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=600)


@pytest.mark.multiprocess
def test_the_command_trains_on_a_folder_and_resumes_exactly(mixed, tmp_path):
    root, kinds = mixed
    N, K = 6, 3
    straight = _train(tmp_path, root, "a", N)
    assert straight.returncode == 0, straight.stderr
    assert "ddpm-edu train: warning: data.skip_bad: skipped 1 of the 7 image files" in straight.stderr
    assert "broken.png" in straight.stderr and "UserWarning" not in straight.stderr  # one line, no code location
    first = _train(tmp_path, root, "b", K)
    second = _train(tmp_path, root, "b", N)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert len(list((tmp_path / "cache" / "folders").glob("*.npz"))) == 1  # decoded once for the three runs

    a = ck.load_checkpoint(tmp_path / "a" / "checkpoints" / f"step_{N:08d}.pt")
    b = ck.load_checkpoint(tmp_path / "b" / "checkpoints" / f"step_{N:08d}.pt")
    losses = [[json.loads(line)["loss"] for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in "ab"]
    assert len(losses[0]) == N and losses[0] == losses[1]
    for key in ("model", "ema"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    for k in ("epoch", "pos", "perm", "flips"):
        assert torch.equal(torch.as_tensor(a["data"][k]), torch.as_tensor(b["data"][k])), k
    assert a["data"]["flips"].any() and a["data"]["n"] == len(kinds) - 1  # flipped like CIFAR-10; broken.png skipped
    grid = Image.open(tmp_path / "a" / "samples" / f"step_{N:08d}.png")
    assert grid.mode == "RGB"
