"""Files the library writes: atomically (temp file, fsync, ``os.replace``), and where its cache lives."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

__all__ = ["atomic_write", "cache_root", "shown_path"]


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    """Call ``write(f)`` on a temporary file next to ``path``, fsync it and ``os.replace`` it into place.

    If ``write`` raises, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some network file systems
        pass
    finally:
        os.close(fd)


def cache_root() -> Path:
    """The library's cache folder: $DDPM_EDU_CACHE, else ~/.cache/ddpm_edu.

    It holds the book's trained models (:mod:`ddpm_edu.lab.modelcache`), FID's reference statistics and
    onnxruntime-web for the live samplers.
    """
    return Path(os.environ.get("DDPM_EDU_CACHE") or "~/.cache/ddpm_edu").expanduser()


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as text for messages and pages, with the home folder written ``~``.

    The book's pages then show ``~/.cache/ddpm_edu/...`` instead of the build machine's home, and the
    text still works where the library reads it, since every path it takes is ``expanduser``-ed.
    """
    path, home = Path(path), Path.home()
    try:
        return str(Path("~") / path.relative_to(home))
    except ValueError:  # not under the home folder
        return str(path)

