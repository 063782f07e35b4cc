"""What came after DDPM, placed against the chapters of this book: chapter 11's table and map.

Each entry names a successor, the paper (a key of ``references.bib``), what it changes, and the
chapters of this book it builds on. :func:`successor_rows` gives the rows of the chapter's table and
:func:`ddpm_edu.lab.plots.beyond.plot_successor_map` draws the same entries as a map, so the two
cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Successor", "SUCCESSORS", "CHAPTERS", "successor_rows"]

# The chapters a successor can build on: number -> short title, as the map labels them.
CHAPTERS: dict[int, str] = {
    3: "VP and VE noise",
    4: "schedules",
    6: "posterior, variances",
    7: "ELBO, targets, score",
    8: "DDPM and DDIM sampling",
    9: "a U-Net on images",
}


@dataclass(frozen=True)
class Successor:
    """One successor of DDPM."""

    name: str              # as the map and the table show it
    cite: str              # its key in references.bib
    year: int              # year of publication
    changes: str           # what it changes, in a few words
    chapters: tuple[int, ...]  # the chapters of this book it builds on (keys of CHAPTERS)


SUCCESSORS: tuple[Successor, ...] = (
    Successor("Score SDEs", "song2021score", 2021,
              "continuous time: VP and VE SDEs, a probability-flow ODE", (3, 7, 8)),
    Successor("Improved DDPM", "nichol2021improved", 2021,
              "cosine schedule, learned variance between beta_tilde and beta", (4, 6, 7)),
    Successor("Analytic-DPM", "bao2022analytic", 2022,
              "the best fixed variance, computed from E||eps*||^2", (6, 7)),
    Successor("EDM", "karras2022elucidating", 2022,
              "the noise level as the clock, a preconditioned network, Heun steps", (3, 7, 8)),
    Successor("Latent diffusion", "rombach2022high", 2022,
              "diffusion in an autoencoder's latent space", (9,)),
    Successor("Flow matching, rectified flow", "lipman2023flow", 2023,
              "straight paths between noise and data, a velocity target", (3, 7, 8)),
)


def successor_rows() -> list[dict[str, str]]:
    """The table of chapter 11: one row per successor, for ``ddpm_edu.lab.tables.markdown_table``."""
    return [{"successor": f"{s.name} ({s.year})", "what changes": s.changes,
             "builds on chapters": ", ".join(str(c) for c in s.chapters)} for s in SUCCESSORS]
