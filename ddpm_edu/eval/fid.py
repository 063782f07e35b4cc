"""FID (Heusel et al. 2017), the paper's measure of CIFAR-10 samples (Ho et al. 2020, Table 1: 3.17); chapter 9.

With (mu_s, Sigma_s) and (mu_r, Sigma_r) the mean and covariance of Inception-v3 pool features
(2048-D) of the samples and of the CIFAR-10 training set::

    FID = ||mu_s - mu_r||^2 + tr(Sigma_s + Sigma_r - 2 (Sigma_s Sigma_r)^(1/2)).

:func:`fid` is an optional extra (``pip install "ddpm-edu[fid]"``): torch-fidelity computes it with
its port of the TensorFlow Inception graph that the paper's numbers come from. The reference images
come from our own loader, :func:`ddpm_edu.data.cifar10.load_cifar10`, so torch-fidelity never downloads
CIFAR-10. It needs the Inception weights (about 95 MB): a local file (``weights=`` or
``$DDPM_EDU_FID_WEIGHTS``), the copy in torch's hub cache, or a download through
:func:`ddpm_edu.data.download.bounded_download`, which is tried only after the server has answered
within seconds. Offline, without a local copy, it fails at once and says which file to fetch and
where to put it. The samples are read by :func:`load_images`: a folder of PNGs, an .npz or a tensor.

A FID compares with the paper's only when the samples come from the paper's process and sampler:
T = 1000 linear betas from 1e-4 to 0.02, and Algorithm 2 over all T steps with sigma_t^2 = beta_t and
x0_hat clipped to [-1, 1]. :func:`paper_sampler` sets that sampler on a config, and
:func:`paper_fid_problems` says what keeps a config's FID from comparing (a DDIM sampler, for one).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ddpm_edu.data.download import bounded_download
from ddpm_edu.training.config import Config

__all__ = [
    "PAPER_FID_CIFAR10", "PAPER_FID_SAMPLES", "FID_WEIGHTS_URL", "FID_WEIGHTS_FILE", "FID_WEIGHTS_SHA256",
    "FID_WEIGHTS_ENV", "FID_INSTALL", "FIDError", "fid", "fid_weights", "load_images",
    "PAPER_SAMPLER", "PAPER_PROCESS", "paper_sampler", "paper_fid_problems",
]

PAPER_FID_CIFAR10 = 3.17  # Ho et al. 2020, Table 1: unconditional CIFAR-10, samples against the training set
PAPER_FID_SAMPLES = 50_000  # how many samples the paper's FID was computed from
PAPER_SAMPLER = {"sampler": "ddpm", "variance": "beta", "clip_x0": 1.0}  # Alg. 2, all T steps, sigma_t^2 = beta_t, clipped
PAPER_PROCESS = {"schedule": "linear", "T": 1000, "beta_1": 1e-4, "beta_T": 0.02}  # Ho et al., sec. 4
FID_WEIGHTS_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                   "weights-inception-2015-12-05-6726825d.pth")  # torch-fidelity's port of TF's 2015-12-05 Inception
FID_WEIGHTS_FILE = FID_WEIGHTS_URL.rsplit("/", 1)[1]
FID_WEIGHTS_SHA256 = "6726825d"  # the published file's sha256 starts so (torch.hub's file-name convention)
FID_WEIGHTS_ENV = "DDPM_EDU_FID_WEIGHTS"  # a local copy of the weights, for offline machines
FID_INSTALL = 'pip install "ddpm-edu[fid]"'
FID_PROBE_TIMEOUT_S = 5.0  # how long the weights' server has to answer before FID gives up
FID_DOWNLOAD_TIMEOUT_S = 30.0  # socket timeout while downloading: a stalled transfer fails instead of hanging


def paper_sampler(cfg: Config) -> Config:
    """``cfg`` with the sampler behind the paper's FID: Algorithm 2 over all T steps, sigma_t^2 = beta_t,
    x0_hat clipped to [-1, 1] (:data:`PAPER_SAMPLER`). The other sample settings are kept."""
    return cfg.replace(sample=dataclasses.replace(cfg.sample, **PAPER_SAMPLER))


def paper_fid_problems(cfg: Config) -> dict[str, str]:
    """Why a FID of samples drawn with ``cfg`` does not compare with PAPER_FID_CIFAR10, by config key ({}: it does).

    Checked: the data set, the forward process (:data:`PAPER_PROCESS`) and the sampler (:data:`PAPER_SAMPLER`).
    A DDIM sampler, the beta_tilde variance or no clipping change the samples, and so the FID. DDIM has
    no sigma_t^2 to choose, so for it ``sample.variance`` is not reported: its sampler already is.
    """
    sampler = dict(PAPER_SAMPLER) if cfg.sample.sampler == "ddpm" else {
        k: v for k, v in PAPER_SAMPLER.items() if k != "variance"}
    want = {"data.dataset": "cifar10", **{f"diffusion.{k}": v for k, v in PAPER_PROCESS.items()},
            **{f"sample.{k}": v for k, v in sampler.items()}}
    problems = {}
    for key, value in want.items():
        section, name = key.split(".")
        got = getattr(getattr(cfg, section), name)
        if got != value:
            problems[key] = f"the paper's FID used {key} = {value!r}, this config has {got!r}"
    return problems


class FIDError(RuntimeError):
    """FID cannot be computed (the extra, the weights or the samples are missing); the message says what to do."""


def fid(
    samples: str | os.PathLike | Tensor,
    *,
    reference_root: str | os.PathLike,
    weights: str | os.PathLike | None = None,
    verify_md5: bool = True,
    download: bool = True,
    device: str = "auto",
    batch_size: int = 64,
    cache: bool = True,
) -> float:
    """FID of ``samples`` against the CIFAR-10 training set under ``reference_root``; the paper's is PAPER_FID_CIFAR10.

    FID = ||mu_s - mu_r||^2 + tr(Sigma_s + Sigma_r - 2 (Sigma_s Sigma_r)^(1/2)) over Inception pool features (2048-D).
    samples: whatever :func:`load_images` reads, 32x32 RGB. The reference is
    ``load_cifar10(reference_root, download=download, verify_md5=verify_md5)``, (50000, 3, 32, 32) uint8.
    weights: the Inception weights file (default: :func:`fid_weights` finds or downloads it).
    device: ``"auto"`` (CUDA when available), ``"cuda"`` or ``"cpu"``. With ``cache`` the reference's
    features and (mu, Sigma) are kept under ``<cache root>/fid`` (its size for CIFAR-10 is in bench/RESULTS.md), keyed by
    its images and the weights, so later calls only run the samples through Inception. The number is
    comparable with the paper's only for the published weights and PAPER_FID_SAMPLES samples: with
    fewer samples FID is biased upwards.
    """
    from ddpm_edu.data.cifar10 import load_cifar10

    tfid = _torch_fidelity()  # first, so that a missing extra is reported before any work
    x = load_images(samples)  # (N, 3, H, W) uint8
    ref = load_cifar10(reference_root, download=download, verify_md5=verify_md5)  # (N_r, 3, 32, 32) uint8
    if x.shape[1:] != ref.shape[1:]:
        raise FIDError(f"the samples are {tuple(x.shape[1:])} images and the reference {tuple(ref.shape[1:])}. FID "
                       f"needs one sample per file at the data's size (a samples.png of 'ddpm-edu sample' is a grid).")
    path = fid_weights(weights)
    digest = _sha256(path)
    if not digest.startswith(FID_WEIGHTS_SHA256):
        warnings.warn(f"{path} is not the published Inception ({FID_WEIGHTS_FILE}): its FID is not comparable "
                      f"with the paper's {PAPER_FID_CIFAR10}.", stacklevel=2)
    kwargs = _fid_kwargs(path, device, batch_size, cache, f"ddpm-edu-cifar10-{_sha256_tensor(ref)[:16]}-{digest[:16]}")
    metrics = tfid.calculate_metrics(input1=_UInt8Images(x), input2=_UInt8Images(ref), **kwargs)
    return float(metrics[tfid.KEY_METRIC_FID])


def _fid_kwargs(weights: Path, device: str, batch_size: int, cache: bool, reference_name: str) -> dict:
    """The options of ``torch_fidelity.calculate_metrics``: FID on the 2048-D pool features of the TF-compatible
    Inception, from a local weights file, no worker processes, quiet, the reference's statistics cached."""
    from ddpm_edu.data.files import cache_root

    if device not in ("auto", "cuda", "cpu"):
        raise ValueError(f"device must be 'auto', 'cuda' or 'cpu', got {device!r}")
    cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise FIDError("device='cuda' was asked for, but torch sees no CUDA device; use device='cpu' or 'auto'.")
    return dict(fid=True, feature_extractor="inception-v3-compat", feature_layer_fid="2048",
                feature_extractor_weights_path=str(weights), cuda=cuda, batch_size=batch_size,
                save_cpu_ram=True,  # in-memory tensors: DataLoader workers would only cost processes
                verbose=False, cache=cache, cache_root=str(cache_root() / "fid"), input2_cache_name=reference_name)


class _UInt8Images(torch.utils.data.Dataset):
    """Images (N, 3, H, W) uint8 as a data set of (3, H, W) uint8 tensors: the input torch-fidelity reads."""

    def __init__(self, x: Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> Tensor:
        return self.x[i]


def _torch_fidelity():
    """The torch_fidelity module, imported on first use; FIDError naming the extra when it is not installed."""
    try:
        import torch_fidelity
    except ImportError as e:
        raise FIDError(f"FID needs the optional package torch-fidelity, which is not installed ({e}). "
                       f"Install the extra with: {FID_INSTALL}") from None
    return torch_fidelity


def load_images(samples: str | os.PathLike | Tensor) -> Tensor:
    """Images for FID as uint8 (N, 3, H, W), N >= 2.

    samples: a folder (every ``*.png`` below it, sorted by path, one image per file, all one size), an
    ``.npz`` file (its only array, or ``arr_0``: (N, H, W, 3) or (N, 3, H, W) uint8), or a tensor
    (N, 3, H, W) of uint8, or of floats in [-1, 1] (mapped as :func:`ddpm_edu.data.images.to_uint8` does).
    """
    if isinstance(samples, Tensor):
        x = samples.detach().cpu()
        if x.dtype != torch.uint8:
            from ddpm_edu.data.images import to_uint8

            x = torch.from_numpy(to_uint8(x)).movedim(-1, -3) if x.dim() == 4 and x.shape[1] == 3 else x
    else:
        path = Path(samples).expanduser()
        if path.is_dir():
            x = _read_pngs(path)
        elif path.suffix == ".npz" and path.is_file():
            x = _read_npz(path)
        else:
            raise FIDError(f"{path} is neither a folder of PNG files nor an .npz file.")
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3 or len(x) < 2:
        raise FIDError(f"FID needs at least 2 RGB images (N, 3, H, W); got {x.dtype} of shape {tuple(x.shape)}.")
    return x


def _read_pngs(folder: Path) -> Tensor:
    """Every PNG below ``folder`` as uint8 (N, 3, H, W), in the order of their sorted paths."""
    from PIL import Image

    files = sorted(folder.rglob("*.png"))
    if not files:
        raise FIDError(f"{folder} holds no PNG files; FID needs one sample per file.")
    arrays = [np.asarray(Image.open(f).convert("RGB")) for f in files]  # (H, W, 3) each
    sizes = {a.shape for a in arrays}
    if len(sizes) > 1:
        raise FIDError(f"the PNG files in {folder} are not all one size: {sorted(sizes)}. FID needs one sample "
                       f"per file (a samples.png of 'ddpm-edu sample' is a grid).")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (N, H, W, 3) -> (N, 3, H, W)


def _read_npz(path: Path) -> Tensor:
    """The images of an .npz file (its only array, or ``arr_0``) as (N, 3, H, W): channels last are moved first."""
    with np.load(path) as z:
        names = list(z.keys())
        if len(names) != 1 and "arr_0" not in names:
            raise FIDError(f"{path} holds several arrays ({names}) and none is arr_0; which are the samples?")
        a = z[names[0] if len(names) == 1 else "arr_0"]
    if a.ndim == 4 and a.shape[-1] == 3 and a.shape[1] != 3:
        a = a.transpose(0, 3, 1, 2)  # (N, H, W, 3) -> (N, 3, H, W)
    return torch.from_numpy(np.ascontiguousarray(a))


def fid_weights(weights: str | os.PathLike | None = None) -> Path:
    """The Inception weights file for FID: ``weights``, else ``$DDPM_EDU_FID_WEIGHTS``, else torch's hub cache.

    When the hub cache lacks it, it is downloaded there, but only after its server has answered within
    FID_PROBE_TIMEOUT_S, and under a socket timeout: offline, FIDError comes within seconds and says which
    file to fetch and how to point at it. The file must load with ``torch.load(weights_only=True)``.
    """
    given = weights or os.environ.get(FID_WEIGHTS_ENV)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise FIDError(_weights_message(f"the file given, {path}, does not exist"))
    else:
        path = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE
        if not path.is_file():
            _download_weights(path)
    try:  # torch-fidelity unpickles the file without restriction: refuse anything that is not plain tensors
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise FIDError(f"{path} is not a file of Inception weights that loads with weights_only=True "
                       f"({type(e).__name__}). Use {FID_WEIGHTS_FILE} from {FID_WEIGHTS_URL}.") from None
    return path


def _download_weights(path: Path) -> None:
    """Download the published weights to ``path`` (hash-checked), with a bounded wait; FIDError if it fails."""

    def fetch() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(FID_WEIGHTS_URL, str(path), hash_prefix=FID_WEIGHTS_SHA256, progress=False)

    bounded_download(FID_WEIGHTS_URL, fetch, probe_timeout=FID_PROBE_TIMEOUT_S, timeout=FID_DOWNLOAD_TIMEOUT_S,
                     error=lambda reason: FIDError(_weights_message(reason)))


def _weights_message(reason: str) -> str:
    cached = Path(torch.hub.get_dir()) / "checkpoints"
    return (
        f"FID needs the Inception-v3 weights {FID_WEIGHTS_FILE} (about 95 MB), and {reason}. Download "
        f"{FID_WEIGHTS_URL} on a machine with internet, then point at the copy: pass it as "
        f"fid(..., weights=PATH) or 'ddpm-edu fid --weights PATH', or set ${FID_WEIGHTS_ENV}=PATH, or put it "
        f"into {cached}/, where it is found without a download."
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256_tensor(x: Tensor) -> str:
    return hashlib.sha256(x.contiguous().numpy().data).hexdigest()
