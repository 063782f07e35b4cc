"""Samples from a trained network, drawn as its config says and written as a PNG grid and a trajectory GIF.

Chapters 8 and 9, the trainer's periodic samples and ``ddpm-edu sample``. The samplers themselves
(Algorithm 2 and DDIM) are in :mod:`ddpm_edu.sampling`; this module picks one from ``cfg.sample``,
records the trajectory and writes the files. A conditional model (chapter 10) samples one class with
``label``, and ``guidance`` w steers it with classifier-free guidance (:mod:`ddpm_edu.guidance`);
without a label it samples unconditionally.

For FID (50,000 samples), :func:`write_sample_files` writes one PNG per sample, ``000000.png``,
``000001.png``, ... (the folder layout that torch-fidelity and clean-fid read), and
:func:`pack_npz` packs them into one ``samples.npz`` (``arr_0``: uint8 (N, H, W, C), the layout of
the guided-diffusion evaluator). The samples are drawn in chunks of ``batch``; chunk k has its own
seed (:func:`chunk_seed`) and is drawn by process k mod W, so W processes (torchrun) share the work,
sample i is the same for every W, and a rerun draws only the chunks with a missing file and writes
only the missing files. ``sampling.json`` in the folder records the settings; a rerun with other
settings is refused rather than mixed in.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ddpm_edu.data.files import atomic_write
from ddpm_edu.guidance import check_guidance, guided_model
from ddpm_edu.losses import eps_from_v
from ddpm_edu.sampling import TrajectoryRecorder, ddim_sample, ddim_timesteps, sample
from ddpm_edu.schedules import Schedule
from ddpm_edu.training.build import build_schedule, data_shape
from ddpm_edu.training.config import Config, ConfigError, config_to_dict
from ddpm_edu.training.distributed import SINGLE, World

__all__ = ["eps_model", "sampling_model", "generate", "write_samples", "chunk_seed", "sample_file", "check_settings",
           "write_sample_files", "pack_npz", "sampling_settings"]


def eps_model(model: Callable[..., Tensor], cfg: Config, s: Schedule) -> Callable[..., Tensor]:
    """The network as an eps predictor: itself for target eps, eps = sqrt(1-ab) x_t + sqrt(ab) v for target v.

    Called as the network is, ``(x_t, t)``, or ``(x_t, t, y)`` for a conditional one.
    """
    if cfg.diffusion.target == "eps":
        return model
    return lambda xt, t, *y: eps_from_v(xt, t, model(xt, t, *y).float(), s)


def sampling_model(model: nn.Module, cfg: Config, s: Schedule, label: int | None = None,
                   guidance: float | None = None) -> Callable[[Tensor, Tensor], Tensor]:
    """The ``model(x_t, t)`` a sampler drives: the network's eps (:func:`eps_model`), for class ``label`` with
    guidance weight ``guidance`` (default 0: purely conditional) when a label is given.

    A label or guidance for a model without classes, a label outside them, or guidance without a label is a
    ConfigError (see :func:`ddpm_edu.guidance.guidance_problems`).
    """
    try:
        check_guidance(label, guidance, getattr(model, "num_classes", None))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    f = eps_model(model, cfg, s)
    return f if label is None else guided_model(f, label, guidance or 0.0)


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
    label: int | None = None,
    guidance: float | None = None,
) -> tuple[Tensor, TrajectoryRecorder]:
    """Draw ``num_samples`` (default ``cfg.sample.num_samples``) with the sampler of ``cfg.sample``.

    Returns (x0 ``(N, *data_shape)``, the recorder holding about ``frames`` states of the trajectory).
    The noise comes from a generator seeded with ``seed`` (default: the config's seed + 3). ``label`` and
    ``guidance``: samples of one class of a conditional model, guided with weight w (see :func:`sampling_model`).
    """
    sc, device = cfg.sample, torch.device(device)
    s = build_schedule(cfg)
    f = sampling_model(model, cfg, s, label, guidance)
    g = torch.Generator(device).manual_seed(cfg.seed + 3 if seed is None else seed)
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
    from ddpm_edu.data.images import (
        save_gif,
        save_image_grid,
        save_png,
        scatter_rgb,
        trajectory_frames,
    )

    if x.dim() == 4:
        k = max(1, 32 // x.shape[-1])  # show 8x8 digits 4x larger (nearest neighbour); CIFAR-10 as it is
        big = x.repeat_interleave(k, -1).repeat_interleave(k, -2)
        frames = [f.repeat(k, 0).repeat(k, 1) for f in trajectory_frames(rec.frames)]
        return save_image_grid(big, png), save_gif(frames, gif, fps=fps)
    lim = max(1.0, 1.4 * float(x.detach().float().abs().flatten().quantile(0.99)))  # frame the data, not the noise
    frames = [scatter_rgb(xt, f"t = {t}", lim) for t, xt in rec.frames]
    return save_png(scatter_rgb(x, "samples", lim), png), save_gif(frames, gif, fps=fps)


# --------------------------------------------------------------------------- many samples as files (FID)
def chunk_seed(seed: int, k: int) -> int:
    """The seed of chunk k: numpy's SeedSequence([seed, k]), so chunks (and runs with other seeds) draw independent noise."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def sample_file(out: str | os.PathLike, i: int) -> Path:
    """``out/000042.png``: the file of sample i."""
    return Path(out) / f"{i:06d}.png"


def check_settings(out: str | os.PathLike, settings: dict, world: World = SINGLE) -> None:
    """Refuse a folder whose ``sampling.json`` records other settings; rank 0 then writes it (after a barrier).

    ``settings``: everything that decides what sample i is (weights, sampler, seed, batch), as plain data.
    """
    path = Path(out) / "sampling.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        diffs = sorted(k for k in saved.keys() | settings.keys() if saved.get(k) != settings.get(k))
        if diffs:
            raise ConfigError(
                f"{out} holds samples drawn with other settings ({', '.join(diffs)} differ from {path}); a rerun "
                f"fills in missing files only with the same settings. Use another --out, or the same options."
            )
    world.barrier()  # every process has read the old file before it is written
    if world.is_main and not path.is_file():
        atomic_write(path, lambda f: f.write(json.dumps(settings, indent=1).encode()))


def write_sample_files(model: nn.Module, cfg: Config, out: str | os.PathLike, num_samples: int, *, batch: int,
                       seed: int, world: World = SINGLE, device: torch.device | str = "cpu",
                       label: int | None = None, guidance: float | None = None) -> list[int]:
    """Write samples 0..num_samples-1 as ``out/000000.png`` ...; returns the indices this process wrote.

    Chunk k (samples k*batch ..) is drawn by process k mod W with :func:`chunk_seed` (seed, k); only
    chunks with a missing file are drawn, and only the missing files are written. ``label`` and
    ``guidance`` as in :func:`generate`.
    """
    from ddpm_edu.data.images import save_png, to_uint8

    if len(data_shape(cfg)) != 3:
        raise ConfigError(f"sample files are images; data.dataset={cfg.data.dataset} has points. Use --format grid.")
    written: list[int] = []
    for k in range(world.rank, math.ceil(num_samples / batch), world.size):
        first, last = k * batch, min(num_samples, (k + 1) * batch)
        missing = [i for i in range(first, last) if not sample_file(out, i).is_file()]
        if missing:
            x, _ = generate(model, cfg, num_samples=last - first, seed=chunk_seed(seed, k), frames=2, device=device,
                            label=label, guidance=guidance)
            for i in missing:
                save_png(to_uint8(x[i - first]), sample_file(out, i))  # (H, W[, C]) uint8
            written += missing
    return written


def pack_npz(out: str | os.PathLike, num_samples: int) -> Path:
    """Pack ``out/000000.png`` ... into ``out/samples.npz``: ``arr_0`` uint8 (N, H, W, C), written atomically."""
    import imageio.v3 as iio

    images = np.stack([iio.imread(sample_file(out, i)) for i in range(num_samples)])
    images = images[..., None] if images.ndim == 3 else images  # grey (N, H, W) -> (N, H, W, 1)
    return atomic_write(Path(out) / "samples.npz", lambda f: np.savez(f, arr_0=images))


def sampling_settings(cfg: Config, weights: str | os.PathLike, seed: int, batch: int, label: int | None = None,
                      guidance: float | None = None) -> dict:
    """What decides sample i, for ``sampling.json``: the weights file, the sampler, the diffusion, seed and
    batch, and the class and guidance weight when a label is given."""
    d = config_to_dict(cfg)
    out = {"weights": str(Path(weights).resolve()), "sample": {k: v for k, v in d["sample"].items()
                                                             if k not in ("num_samples", "frames", "fps")},
           "diffusion": d["diffusion"], "seed": seed, "batch": batch}
    if label is not None:  # unconditional settings stay as before, so their folders still match
        out.update(label=label, guidance=guidance or 0.0)
    return out
