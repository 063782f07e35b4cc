"""Shared fixtures: a tiny CIFAR-10 in the genuine on-disk format, an isolated model cache, small configs.

The fake CIFAR-10 follows what ``torchvision.datasets.CIFAR10`` reads: ``cifar-10-batches-py/``
with ``data_batch_1..5`` and ``test_batch`` (pickled dicts with ``data``: uint8 (N, 3072) in
channel-major order R, G, B planes of 32x32, ``labels``, ``batch_label``, ``filenames``) and
``batches.meta`` (``label_names``, ``num_cases_per_batch``, ``num_vis``). The real files were
pickled by Python 2, whose str keys come back as str under the ``encoding="latin1"`` that
torchvision uses (they only look like ``b'data'`` under ``encoding="bytes"``), so we write str
keys with pickle protocol 2.

Its md5 sums cannot match the published ones. Rather than patch torchvision, the loader has an
explicit switch, ``data.verify_md5: false``, under which torchvision's own CIFAR10 class runs
with md5 sums of None (its ``check_integrity`` then checks that each file exists); everything
else - unpickling, stacking, reshaping - is torchvision's code. A test checks that the default
(``verify_md5: true``) rejects these files.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

PER_BATCH = 16  # images per data batch: 80 training images in all
LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def fake_cifar_images(n: int, seed: int) -> np.ndarray:
    """n distinct, left-right asymmetric uint8 images (n, 3, 32, 32): a ramp plus noise, so flips are visible."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, 32, dtype=np.float64)[None, None, None, :]  # brighter to the right
    noise = rng.integers(0, 55, size=(n, 3, 32, 32))
    return (ramp + noise).astype(np.uint8)


def write_fake_cifar10(root: Path, per_batch: int = PER_BATCH) -> dict[str, np.ndarray]:
    """Write <root>/cifar-10-batches-py in CIFAR-10's python format; returns the image arrays per file."""
    from ddpm_edu.data.cifar10 import write_cifar10_files

    names = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
    arrays = {name: fake_cifar_images(per_batch, seed=i) for i, name in enumerate(names)}
    write_cifar10_files(root, arrays, label_names=LABEL_NAMES)
    return arrays


@pytest.fixture(scope="session")
def fake_cifar(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """(root, arrays): a tiny CIFAR-10 under root/cifar-10-batches-py, shared by the session (read-only)."""
    root = tmp_path_factory.mktemp("cifar")
    return root, write_fake_cifar10(root)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """Point the model cache ($DDPM_EDU_CACHE) at a temporary folder."""
    d = tmp_path / "cache"
    monkeypatch.setenv("DDPM_EDU_CACHE", str(d))
    return d


def tiny_unet_overrides() -> list[str]:
    """--set overrides for a U-Net that trains in milliseconds per step (dropout on, to exercise the RNG)."""
    return ["model.preset=null", "model.ch=16", "model.ch_mult=[1,2]", "model.num_res_blocks=1",
            "model.attn_resolutions=[4]", "model.dropout=0.1", "diffusion.T=50", "diffusion.schedule=linear",
            "diffusion.beta_T=0.2", "train.warmup=3", "train.progress=false", "train.device=cpu",
            "train.precision=fp32", "sample.num_samples=4", "sample.frames=5", "sample.sampler=ddpm"]


def cli_command() -> list[str]:
    """The installed console script if present, else ``python -m ddpm_edu``."""
    script = Path(sys.executable).with_name("ddpm-edu")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ddpm_edu"]


def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """The environment for CLI subprocesses: cache in tmp, no W&B, one thread, fast mode off (the CLI ignores it)."""
    env = dict(os.environ)
    # One intra-op thread: the test models are tiny, and two busy processes with two OpenMP threads
    # each on two cores slow each other down many times over.
    env.update(DDPM_EDU_CACHE=str(tmp_path / "cache"), WANDB_MODE="disabled", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    env.pop("DDPM_EDU_FAST", None)
    return env


@pytest.fixture
def one_thread():
    """Run a test with one torch intra-op thread (tiny models train faster so), restoring the count after."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def no_host_reads(monkeypatch) -> list[str]:
    """Make every read of a tensor's value on the host (item, tolist, bool, float, int) fail, and record it:
    on a GPU each of those waits for the device. Use inside ``monkeypatch.context()``."""
    import torch

    reads: list[str] = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        def fail(self, *a, _name=name, **k):
            reads.append(_name)
            raise AssertionError(f"Tensor.{_name}() read a value back inside the step loop")
        monkeypatch.setattr(torch.Tensor, name, fail)
    return reads


def tiny_config(*extra: str, steps: int = 6):
    """A digits config with a tiny U-Net: a few milliseconds per step; ``extra`` are more overrides."""
    from ddpm_edu.training.config import load_config

    return load_config("digits", tiny_unet_overrides() + [
        f"train.steps={steps}", "data.batch_size=16", "train.log_every=1", "train.ckpt_every=0",
        "train.sample_every=0", "train.keep_last=100", *extra])


def load_script(path: Path):
    """A script that is not part of the package (bench/*.py, tools/*.py), imported as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
