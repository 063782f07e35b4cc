"""Regenerate the README's figures, ``figs/*.png`` and ``figs/*.gif``, with the code the chapters use.

``python -m ddpm_edu figs --out DIR`` (the CLI) calls :func:`make_all`. Every PNG comes from a
:mod:`ddpm_edu.lab.plots` plot function with its own Agg canvas and a seeded ``torch.Generator``, so the
files are reproducible and nothing here needs a display or changes global matplotlib state.
The two GIFs are chapter 8's sampling trajectories, drawn from the book's cached models
(:func:`ddpm_edu.lab.modelcache.load_or_train`, which trains them once if the cache is cold).

=========================  ==========  ===============================================
file                       chapter     plot function
=========================  ==========  ===============================================
px_pz.png                  1           :func:`~ddpm_edu.lab.plots.forward.plot_px_pz`
bad_noise.png              2           :func:`~ddpm_edu.lab.plots.forward.plot_naive_noise`
fixed_noise_fast.png       3           :func:`~ddpm_edu.lab.plots.forward.plot_fixed_noise`, nu = 0.1
fixed_noise_slow.png       3           :func:`~ddpm_edu.lab.plots.forward.plot_fixed_noise`, nu = 0.01
betas_alpha_bars.png       4           :func:`~ddpm_edu.lab.plots.forward.plot_schedules`, DDPM linear
schedules.png              4           :func:`~ddpm_edu.lab.plots.forward.plot_schedules`, four kinds
forward_steps.png          5           :func:`~ddpm_edu.lab.plots.forward.plot_forward_steps`
digits_trajectory.gif      8           :func:`trajectory_gif`, the ``digits`` preset
toy2d_trajectory.gif       8           :func:`trajectory_gif`, the ``toy2d`` preset
=========================  ==========  ===============================================
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import torch
from matplotlib.figure import Figure

from ddpm_edu.data.photo import photo
from ddpm_edu.lab.plots import (
    plot_fixed_noise,
    plot_forward_steps,
    plot_naive_noise,
    plot_px_pz,
    plot_schedules,
    save_figure,
)
from ddpm_edu.schedules import KINDS, Schedule
from ddpm_edu.training.config import Config, load_config

__all__ = ["FIGURES", "GIFS", "make_all", "trajectory_gif"]

MU_DATA, SIGMA_DATA = 2.0, 0.7  # the 1-D "data" distribution of chapter 1: N(mu_data, sigma_data^2)
FIXED_TS = (0, 10, 50, 100, 250, 1000)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _px_pz() -> Figure:
    g = _gen(0)
    data = MU_DATA + SIGMA_DATA * torch.randn(5000, generator=g, dtype=torch.float64)
    mu_data_hat, sigma_data_hat = data.mean(), data.std()  # the maximum-likelihood fit (up to n / (n - 1))
    z = torch.randn(5000, generator=g, dtype=torch.float64)
    return plot_px_pz(z, mu_data_hat + sigma_data_hat * z, data, MU_DATA, SIGMA_DATA)


FIGURES: dict[str, Callable[[], Figure]] = {
    "px_pz.png": _px_pz,
    "bad_noise.png": lambda: plot_naive_noise(photo(), 0.1, (0, 10, 100, 500, 1000), _gen(1)),
    "fixed_noise_fast.png": lambda: plot_fixed_noise(photo(), 0.1, FIXED_TS, _gen(2)),
    "fixed_noise_slow.png": lambda: plot_fixed_noise(photo(), 0.01, FIXED_TS, _gen(2)),
    "betas_alpha_bars.png": lambda: plot_schedules(
        {"linear, DDPM": Schedule.linear(1000, 1e-4, 0.02)}, panels=("beta", "alpha_bar"), beta_scale="linear"
    ),
    "schedules.png": lambda: plot_schedules({k: Schedule.make(k) for k in KINDS}),
    "forward_steps.png": lambda: plot_forward_steps(
        photo(), Schedule.linear(), (0, 250, 500, 750, 1000), torch.randn(photo().shape, generator=_gen(3))
    ),
}


GIFS: dict[str, str] = {  # file name -> preset whose sampling trajectory it shows (chapter 8)
    "digits_trajectory.gif": "digits",
    "toy2d_trajectory.gif": "toy2d",
}


def trajectory_gif(cfg: Config, path: str | os.PathLike, seed: int = 1) -> Path:
    """Chapter 8: sample the cached model of ``cfg`` as ``cfg.sample`` says and write its trajectory as a GIF.

    The model comes from :func:`ddpm_edu.lab.modelcache.load_or_train`; samples and frames from
    :func:`ddpm_edu.training.generate.generate` (noise seeded with ``seed``), the file from
    :func:`ddpm_edu.training.generate.write_samples` (a looping GIF at ``cfg.sample.fps``).
    """
    from ddpm_edu.lab.modelcache import load_or_train
    from ddpm_edu.training.generate import generate, write_samples

    x, rec = generate(load_or_train(cfg), cfg, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:  # write_samples also writes the final grid: not kept here
        return write_samples(x, rec, Path(tmp) / "samples.png", path, fps=cfg.sample.fps)[1]


def make_all(out_dir: str | os.PathLike = "figs", dpi: float = 75, gifs: bool = True) -> list[Path]:
    """Write every figure in :data:`FIGURES` to ``out_dir`` as PNG, and with ``gifs`` every trajectory
    in :data:`GIFS`; return their paths.

    The modest default dpi keeps each file under about 200 KB: noise does not compress.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [save_figure(make(), out / name, dpi=dpi) for name, make in FIGURES.items()]
    if gifs:
        paths += [trajectory_gif(load_config(preset), out / name) for name, preset in GIFS.items()]
    return paths
