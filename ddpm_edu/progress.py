"""Progress bars of the samplers and the trainer: live where someone watches, one final line on a built page.

In Jupyter and Colab :mod:`tqdm.auto` draws a widget that moves while the cell runs, and in a
terminal a text bar. A page of the built book has no kernel: a widget there is frozen at the state
it was first drawn in ("0%"), and a text bar is no better, since myst-nb keeps each carriage-return
frame of it as a line (or an output block) of its own. So when the book's build executes a chapter,
a bar draws nothing while it runs and prints its final state once, when it closes::

    toy2d: 100%|##########| 3000/3000 [01:10<00:00, 42.5step/s, loss=0.3127, lr=1.00e-03]

The build says so through the environment: the Sphinx hook :mod:`ddpm_edu.web.sphinxext` calls
:func:`mark_book_build`, and the kernels that Jupyter Book starts inherit ``$DDPM_EDU_BOOK_BUILD``.
A bar made with ``leave=False`` (the samplers') leaves no line, as its widget leaves none.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from tqdm.std import tqdm

BOOK_BUILD = "DDPM_EDU_BOOK_BUILD"  # "1" while the book's build executes the chapters


def in_book_build() -> bool:
    """True when this process runs under the book's build (``$DDPM_EDU_BOOK_BUILD`` is "1")."""
    return os.environ.get(BOOK_BUILD, "") == "1"


def mark_book_build() -> None:
    """Tell the kernels started from this process that their output goes on a static page."""
    os.environ[BOOK_BUILD] = "1"


def progress_bar(iterable: Iterable | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar: ``tqdm.auto``'s, or under the book's build a text bar that prints only its final line.

    ``kwargs`` are tqdm's (``total``, ``initial``, ``desc``, ``unit``, ``leave``, ``disable``, ...).
    """
    if not in_book_build():
        from tqdm.auto import tqdm

        return tqdm(iterable, **kwargs)
    from tqdm.std import tqdm

    kwargs.pop("dynamic_ncols", None)  # no terminal to measure: the default 10-character bar
    return tqdm(iterable, file=FinalLine(sys.stdout), ascii=True, **kwargs)


class FinalLine(io.TextIOBase):
    """A stream for tqdm that passes on only the lines that end in a newline, without trailing blanks.

    tqdm redraws a text bar as ``"\\r" + state`` and, when it closes with ``leave=True``, writes
    ``"\\n"`` after the last state; with ``leave=False`` it ends with ``"\\r"`` instead. So exactly
    the final state of a kept bar reaches ``out``, and nothing of a bar that is not kept.
    """

    def __init__(self, out: TextIO):
        super().__init__()
        self.out, self.line = out, ""

    def write(self, s: str) -> int:
        for part in re.split(r"(\r|\n)", s):
            if part == "\r":  # tqdm redraws the line: forget what it showed
                self.line = ""
            elif part == "\n":
                if self.line.strip():
                    self.out.write(self.line.rstrip() + "\n")
                self.line = ""
            else:
                self.line += part
        return len(s)

    def flush(self) -> None:
        self.out.flush()
