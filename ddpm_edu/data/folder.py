"""A folder of your own images as a training set: found, decoded once, and cached as uint8.

The command line (``data.dataset: folder``, ``data.root: PATH``) and the page "Train on your own
images". :func:`load_folder` finds every file under the folder whose name ends in one of
:data:`IMAGE_EXTENSIONS` (in any case, in subfolders too; names that start with a dot are left out),
and turns each one into a square uint8 image of ``image_size`` pixels with Pillow:

1. the camera's EXIF orientation is applied;
2. transparency (RGBA, LA, a palette or a colour key) is composited over a white background,
   then the image becomes greyscale (``L``, channels = 1) or ``RGB`` (channels = 3);
3. the short side is resized to ``image_size`` (bicubic, which Pillow antialiases when it
   shrinks), and the centre square is cut out.

The images are decoded once: the result goes to ``<cache_root()>/folders/<folder>-<key>.npz``, where
the key hashes the sorted relative file names, their sizes and modification times, ``image_size`` and
``channels``. A later epoch, a resumed run or a second run on the same folder reads that file and
decodes nothing. When the folder changes, its new file replaces the old one, so the cache holds one
file per folder, size and number of channels. Random horizontal flips are the batch stream's, as for CIFAR-10
(:class:`~ddpm_edu.data.stream.BatchIterator`), so exact resume is unchanged.

Bad input stops with a :class:`~ddpm_edu.data.DataError` that names it (the trainer loads its data
before it creates a run folder, so a refused folder leaves no run behind): a missing folder, or one
without images, names the folder and the extensions looked for; files that Pillow cannot read are
named with the reason, unless ``skip_bad``, which leaves them out and warns with their number. Images
smaller than ``image_size`` are upscaled, with one warning that counts them. The cache records the
unreadable files and the upscaled count too, so a cached folder is refused or warned about alike.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ddpm_edu.data import DEFAULT_ROOT, FOLDER_CHANNELS, FOLDER_SIZE, DataError
from ddpm_edu.data.files import atomic_write, cache_root, shown_path

__all__ = ["IMAGE_EXTENSIONS", "BACKGROUND", "PROGRESS_FROM", "folder_problems", "find_images", "folder_key",
           "decode_image", "load_folder"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")  # compared in lower case

BACKGROUND = 255  # transparent pixels are composited over white

PROGRESS_FROM = 100  # show a progress bar while decoding at least this many files

_CACHE_FORMAT = 1  # part of the cache key: a change in how images are decoded gets new cache files

_LISTED = 5  # bad files named in a message; the others are counted


def folder_problems(dataset: str, root: str, image_size: int | None, channels: int | None,
                    skip_bad: bool) -> dict[str, str]:
    """What is wrong with the folder settings of a ``data:`` section, by key ({} when nothing is).

    With ``dataset = folder``, ``root`` must name the folder (not the CIFAR-10 default); with any
    other data set, ``image_size``, ``channels`` and ``skip_bad`` must be left unset.
    """
    if dataset == "folder":
        if Path(root).expanduser() == Path(DEFAULT_ROOT).expanduser():
            return {"root": f"data.dataset=folder needs the folder of your images, e.g. --set data.root=~/my_photos "
                            f"({DEFAULT_ROOT}, the default, is where CIFAR-10 goes)"}
        return {}
    bad = {"image_size": image_size is not None, "channels": channels is not None, "skip_bad": skip_bad}
    return {k: f"only for data.dataset=folder; {dataset} has a fixed size and format" for k, b in bad.items() if b}


def find_images(root: str | os.PathLike) -> tuple[Path, list[str]]:
    """The folder and its images: (root resolved, sorted relative POSIX paths of the image files).

    Raises :class:`~ddpm_edu.data.DataError` naming the folder and the extensions when the folder is
    missing, is a file, or holds no image file.
    """
    root = Path(root).expanduser().resolve()
    looked_for = f"{', '.join(IMAGE_EXTENSIONS)} in any case, in it and its subfolders"
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise DataError(f"data.root = {shown_path(root)} {what}. Point data.root at the folder that holds "
                        f"your images ({looked_for}), e.g. --set data.root=~/my_photos.")
    found, others = [], 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # .ipynb_checkpoints, .thumbnails, ...
        for name in files:
            if name.startswith("."):  # hidden files, macOS's ._IMG_0001.jpg
                continue
            if name.lower().endswith(IMAGE_EXTENSIONS):
                found.append((Path(folder) / name).relative_to(root).as_posix())
            else:
                others += 1
    if not found:
        held = f"only {others} other file{'s' if others != 1 else ''}" if others else "no files"
        raise DataError(f"data.root = {shown_path(root)} holds no images ({held}); looked for {looked_for}.")
    return root, sorted(found)


def folder_key(root: Path, files: list[str], image_size: int, channels: int) -> str:
    """The cache key: a hash of the relative names, sizes and modification times, ``image_size`` and ``channels``."""
    stats = [(name, (root / name).stat()) for name in files]
    listing = [[name, st.st_size, st.st_mtime_ns] for name, st in stats]
    text = json.dumps({"format": _CACHE_FORMAT, "image_size": image_size, "channels": channels, "files": listing})
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def decode_image(path: str | os.PathLike, image_size: int, channels: int) -> tuple[np.ndarray, bool]:
    """One image file as uint8 (channels, image_size, image_size), and whether it had to be upscaled.

    Raises OSError, ValueError or SyntaxError (Pillow's errors) when the file cannot be read.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
    im = _to_channels(im, channels)
    small = min(im.size) < image_size
    x = np.asarray(_resize_and_crop(im, image_size), dtype=np.uint8)  # (S, S) or (S, S, 3)
    return (x[None] if x.ndim == 2 else x.transpose(2, 0, 1)).copy(), small  # (C, S, S)


def _to_channels(im, channels: int):
    """``im`` as L (channels = 1) or RGB (3): 16-bit grey scaled to 8 bits, transparency over :data:`BACKGROUND`."""
    from PIL import Image

    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit greyscale PNGs
        a = np.asarray(im, dtype=np.float64)
        a = a / 257.0 if a.max() > 255 else a
        im = Image.fromarray(np.clip(a.round(), 0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        im = Image.alpha_composite(Image.new("RGBA", im.size, (BACKGROUND,) * 4), im.convert("RGBA"))
    return im.convert("L" if channels == 1 else "RGB")


def _resize_and_crop(im, size: int):
    """Resize so that the short side is ``size`` (bicubic), then cut out the centre ``size`` x ``size``."""
    from PIL import Image

    w, h = im.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    if new != (w, h):
        im = im.resize(new, Image.BICUBIC)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    return im.crop((left, top, left + size, top + size))


def load_folder(
    root: str | os.PathLike,
    image_size: int = FOLDER_SIZE,
    channels: int = FOLDER_CHANNELS,
    *,
    skip_bad: bool = False,
    progress: bool = True,
) -> Tensor:
    """Every image under ``root`` as uint8 (N, channels, image_size, image_size), decoded once and cached.

    ``skip_bad``: leave out files that cannot be read (with a warning that counts them) instead of
    raising :class:`~ddpm_edu.data.DataError`. ``progress``: a progress bar while decoding many files.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if image_size < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size!r}")
    root, files = find_images(root)
    where = hashlib.sha256(f"{root}|{image_size}|{channels}".encode()).hexdigest()[:12]  # this folder's files
    cache = cache_root() / "folders" / f"{where}-{folder_key(root, files, image_size, channels)}.npz"
    if cache.is_file():
        images, bad, small = _read_cache(cache)
    else:  # the list of bad files is cached too: a rerun with data.skip_bad=true decodes nothing
        images, bad, small = _decode_all(root, files, image_size, channels, progress)
        atomic_write(cache, lambda f: _write_cache(f, images, bad, small))
        for old in cache.parent.glob(f"{where}-*.npz"):  # the folder as it was before
            if old != cache:
                old.unlink(missing_ok=True)
    _report(root, len(files), bad, small, skip_bad, image_size)
    return torch.from_numpy(images)


def _decode_all(root: Path, files: list[str], image_size: int, channels: int,
                progress: bool) -> tuple[np.ndarray, list[list[str]], int]:
    """(the images that could be read, (N, C, S, S) uint8; [name, reason] of the others; how many were upscaled)."""
    from PIL import Image, UnidentifiedImageError
    from tqdm.auto import tqdm

    unreadable = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)  # Pillow's refusals
    images, bad, small = [], [], 0
    bar = tqdm(files, desc=f"decoding {shown_path(root)}", unit="image",
               disable=not progress or len(files) < PROGRESS_FROM, dynamic_ncols=True)
    for name in bar:
        try:
            x, upscaled = decode_image(root / name, image_size, channels)
        except unreadable as e:
            why = "not an image file that Pillow can read" if isinstance(e, UnidentifiedImageError) else e
            bad.append([name, f"{type(e).__name__}: {why}"])
            continue
        images.append(x)
        small += upscaled
    stacked = np.stack(images) if images else np.zeros((0, channels, image_size, image_size), np.uint8)
    return stacked, bad, small


def _report(root: Path, n_files: int, bad: list[list[str]], small: int, skip_bad: bool, image_size: int) -> None:
    """Raise for unreadable files (unless ``skip_bad``) and for a folder left empty; warn about skips and upscaling."""
    shown = shown_path(root)
    if bad:
        names = "; ".join(f"{shown}/{name} ({why})" for name, why in bad[:_LISTED])
        more = f"; and {len(bad) - _LISTED} more" if len(bad) > _LISTED else ""
        if not skip_bad:
            them = "it" if len(bad) == 1 else "them"
            raise DataError(f"{len(bad)} of the {n_files} image files in {shown} cannot be read: {names}{more}. "
                            f"Remove or repair {them}, or set data.skip_bad=true to train without {them}.")
        if len(bad) == n_files:
            raise DataError(f"none of the {n_files} image files in {shown} can be read: {names}{more}.")
        warnings.warn(f"data.skip_bad: skipped {len(bad)} of the {n_files} image files in {shown} that cannot "
                      f"be read: {names}{more}", stacklevel=3)
    if small:
        n = n_files - len(bad)
        warnings.warn(f"{small} of the {n} images in {shown} {'is' if small == 1 else 'are'} smaller than "
                      f"{image_size} pixels on the short side and {'was' if small == 1 else 'were'} upscaled, "
                      f"which blurs them", stacklevel=3)


def _write_cache(f: io.BufferedWriter, images: np.ndarray, bad: list[list[str]], small: int) -> None:
    np.savez(f, images=images, bad=np.array(json.dumps(bad)), small=np.array(small))


def _read_cache(path: Path) -> tuple[np.ndarray, list[list[str]], int]:
    with np.load(path, allow_pickle=False) as z:
        return z["images"], json.loads(str(z["bad"])), int(z["small"])
