"""Samples from a trained network, drawn as its config says and written as a PNG grid and a trajectory GIF.

Chapters 8 and 9, the trainer's periodic samples and ``ddpm-edu sample``. The samplers themselves
(Algorithm 2 and DDIM) are in :mod:`ddpm_edu.sampling`; this module picks one from ``cfg.sample``,
records the trajectory and writes the files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from .build import build_schedule
from .config import Config
from .data import data_shape
from .losses import eps_from_v
from .sampling import TrajectoryRecorder, ddim_sample, ddim_timesteps, sample
from .schedules import Schedule

__all__ = ["eps_model", "generate", "write_samples"]


def eps_model(model: Callable[[Tensor, Tensor], Tensor], cfg: Config, s: Schedule) -> Callable[[Tensor, Tensor], Tensor]:
    """The network as an eps predictor: itself for target eps, eps = sqrt(1-ab) x_t + sqrt(ab) v for target v."""
    if cfg.diffusion.target == "eps":
        return model
    return lambda xt, t: eps_from_v(xt, t, model(xt, t).float(), s)


@torch.no_grad()
def generate(
    model: nn.Module,
    cfg: Config,
    *,
    num_samples: int | None = None,
    seed: int | None = None,
    frames: int | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> tuple[Tensor, TrajectoryRecorder]:
    """Draw ``num_samples`` (default ``cfg.sample.num_samples``) with the sampler of ``cfg.sample``.

    Returns (x0 (N, *data shape), the recorder holding about ``frames`` states of the trajectory).
    The noise comes from a generator seeded with ``seed`` (default: the config's seed + 3).
    """
    sc, device = cfg.sample, torch.device(device)
    s = build_schedule(cfg)
    g = torch.Generator(device).manual_seed(cfg.seed + 3 if seed is None else seed)
    f = eps_model(model, cfg, s)
    shape = (num_samples or sc.num_samples, *data_shape(cfg))
    was_training = model.training
    model.eval()
    try:
        if sc.sampler == "ddim":
            rec = TrajectoryRecorder(len(ddim_timesteps(s.T, sc.steps)), frames or sc.frames)
            x = ddim_sample(f, shape, s, sc.steps, sc.eta, generator=g, clip_x0=sc.clip_x0, callback=rec,
                            device=device, progress=progress)
        else:
            rec = TrajectoryRecorder(s.T, frames or sc.frames)
            x = sample(f, shape, s, generator=g, variance=sc.variance, clip_x0=sc.clip_x0, callback=rec,
                       device=device, progress=progress)
    finally:
        model.train(was_training)
    return x, rec


def write_samples(x: Tensor, rec: TrajectoryRecorder, png: str | os.PathLike, gif: str | os.PathLike,
                  fps: float) -> tuple[Path, Path]:
    """Write the final samples as a PNG (an image grid or a 2-D scatter) and the trajectory as a looping GIF.

    Images smaller than 32 px are enlarged by an integer factor (nearest neighbour) so they can be seen.
    """
    from .images import save_gif, save_image_grid, save_png, trajectory_frames
    from .viz import scatter_rgb

    if x.dim() == 4:
        k = max(1, 32 // x.shape[-1])  # show 8x8 digits 4x larger (nearest neighbour); CIFAR-10 as it is
        big = x.repeat_interleave(k, -1).repeat_interleave(k, -2)
        frames = [f.repeat(k, 0).repeat(k, 1) for f in trajectory_frames(rec.frames)]
        return save_image_grid(big, png), save_gif(frames, gif, fps=fps)
    lim = max(1.0, 1.4 * float(x.detach().float().abs().flatten().quantile(0.99)))  # frame the data, not the noise
    frames = [scatter_rgb(xt, f"t = {t}", lim) for t, xt in rec.frames]
    return save_png(scatter_rgb(x, "samples", lim), png), save_gif(frames, gif, fps=fps)
