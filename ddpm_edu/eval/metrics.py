"""Sample quality, measured: a classifier score for generated digits, the energy distance for 2-D points, FID.

Chapter 8 compares samplers and their settings with the first two; chapter 9 compares CIFAR-10 samples
with the paper through FID.

Digits. A logistic-regression classifier is fitted once per process on a fixed 75 % of
scikit-learn's 8x8 digits (:func:`digits_split`) and judged on the other 25 %. A sample counts
as *confident* when the classifier's largest class probability exceeds 0.9. Held-out real
digits give the ceiling of that fraction and chapter 1's per-pixel Gaussian
(:func:`pixel_gaussian_digits`) the floor; the class histogram shows whether every digit is
generated.

2-D points. The energy distance between the laws of X and Y (Szekely and Rizzo 2013), halved::

    D(X, Y) = E||X - Y|| - 1/2 E||X - X'|| - 1/2 E||Y - Y'||  >= 0,

zero exactly when the two laws agree. :func:`energy_distance` estimates it with U-statistics
(the within-set means leave out the zero diagonal), so the estimate is unbiased.

FID (Heusel et al. 2017), the paper's measure of CIFAR-10 samples (Ho et al. 2020, Table 1: 3.17).
With (mu_s, Sigma_s) and (mu_r, Sigma_r) the mean and covariance of Inception-v3 pool features
(2048-D) of the samples and of the CIFAR-10 training set::

    FID = ||mu_s - mu_r||^2 + tr(Sigma_s + Sigma_r - 2 (Sigma_s Sigma_r)^(1/2)).

:func:`fid` is an optional extra (``pip install "ddpm-edu[fid]"``): torch-fidelity computes it with
its port of the TensorFlow Inception graph that the paper's numbers come from. The reference images
come from our own loader, :func:`ddpm_edu.data.cifar10.load_cifar10`, so torch-fidelity never downloads
CIFAR-10. It needs the Inception weights (about 95 MB): a local file (``weights=`` or
``$DDPM_EDU_FID_WEIGHTS``), the copy in torch's hub cache, or a download, which is tried only after
the server has answered within seconds. Offline, without a local copy, it fails at once and says
which file to fetch and where to put it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "CONFIDENT", "HELD_OUT", "digits_split", "digits_classifier", "classifier_accuracy", "digits_probs",
    "DigitsScore", "digits_score", "pixel_gaussian_digits", "energy_distance", "eval_samples",
    "PAPER_FID_CIFAR10", "PAPER_FID_SAMPLES", "FID_WEIGHTS_URL", "FID_WEIGHTS_ENV", "FIDError", "fid",
    "fid_weights", "load_images",
]

CONFIDENT = 0.9  # a sample is "confident" when max_k p(k | x) > CONFIDENT
HELD_OUT = 0.25  # share of the digits held out from the classifier's training
SPLIT_SEED = 0



# --------------------------------------------------------------------------- digits
@functools.lru_cache(maxsize=1)
def digits_split() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The fixed, class-stratified split of the 1797 digits: (x_train, y_train, x_test, y_test).

    x: (N, 1, 8, 8) floats in [-1, 1] (as :func:`ddpm_edu.data.digits.load_digits`), y: (N,) int64 labels.
    """
    from sklearn.datasets import load_digits as _sk_digits
    from sklearn.model_selection import train_test_split

    from ddpm_edu.data.digits import load_digits

    x, y = load_digits(), torch.from_numpy(_sk_digits().target).long()
    i_train, i_test = train_test_split(np.arange(len(y)), test_size=HELD_OUT, random_state=SPLIT_SEED,
                                       stratify=y.numpy())
    i_train, i_test = torch.from_numpy(i_train), torch.from_numpy(i_test)
    return x[i_train], y[i_train], x[i_test], y[i_test]


@functools.lru_cache(maxsize=1)
def digits_classifier():
    """A multinomial logistic regression on the 64 pixels of the training part, fitted once per process."""
    from sklearn.linear_model import LogisticRegression

    x_train, y_train, _, _ = digits_split()
    return LogisticRegression(C=1.0, max_iter=2000).fit(x_train.flatten(1).double().numpy(), y_train.numpy())


def digits_probs(x: Tensor) -> Tensor:
    """Class probabilities p(k | x), (B, 10), for images x: (B, 1, 8, 8).

    Pixels are first clamped to [-1, 1], the range in which images are shown and saved.
    """
    if x.shape[1:] != (1, 8, 8):
        raise ValueError(f"expected digits of shape (B, 1, 8, 8), got {tuple(x.shape)}")
    feats = x.detach().double().cpu().clamp(-1, 1).flatten(1).numpy()
    return torch.from_numpy(digits_classifier().predict_proba(feats))


def classifier_accuracy() -> float:
    """The classifier's accuracy on the held-out digits."""
    _, _, x_test, y_test = digits_split()
    return float((digits_probs(x_test).argmax(1) == y_test).double().mean())


@dataclass(frozen=True)
class DigitsScore:
    """How a batch of images looks to the digits classifier."""

    confident: float  # fraction of images with max_k p(k | x) > CONFIDENT
    histogram: tuple[int, ...]  # how many images are labelled 0, 1, ..., 9
    n: int  # number of images

    @property
    def classes_present(self) -> int:
        """How many of the 10 digits occur at least once among the labels."""
        return sum(c > 0 for c in self.histogram)

    @property
    def confident_se(self) -> float:
        """Standard error of ``confident``, a binomial proportion: sqrt(p (1 - p) / n)."""
        return (self.confident * (1 - self.confident) / self.n) ** 0.5


def digits_score(x: Tensor) -> DigitsScore:
    """The confident fraction and the class histogram of images x: (B, 1, 8, 8) in [-1, 1]."""
    p = digits_probs(x)
    conf, label = p.max(1)
    hist = torch.bincount(label, minlength=10)
    return DigitsScore(float((conf > CONFIDENT).double().mean()), tuple(int(c) for c in hist), len(p))


def pixel_gaussian_digits(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Chapter 1's baseline generator: n draws of N(mu_px, diag(sigma_px^2)), (n, 1, 8, 8), clamped to [-1, 1].

    mu_px and sigma_px are the per-pixel mean and standard deviation of all 1797 digits.
    """
    from ddpm_edu.data.digits import load_digits

    digits = load_digits()  # (1797, 1, 8, 8)
    mu_px, sigma_px = digits.mean(0), digits.std(0)
    return (mu_px + sigma_px * torch.randn((n, 1, 8, 8), generator=generator)).clamp(-1, 1)


# --------------------------------------------------------------------------- 2-D points
def energy_distance(x: Tensor, y: Tensor) -> float:
    """Unbiased estimate of D = E||X - Y|| - 1/2 E||X - X'|| - 1/2 E||Y - Y'|| from x: (n, d) and y: (m, d).

    A 1-D input (n,) is read as n points on the line. Computed in float64.
    """
    x, y = (v.detach().double().cpu() for v in (x, y))
    x, y = (v[:, None] if v.dim() == 1 else v for v in (x, y))
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"energy_distance needs at least 2 points in each set, got {n} and {m}")
    dist = functools.partial(torch.cdist, compute_mode="donot_use_mm_for_euclid_dist")  # exact 0 on the diagonal
    xy = dist(x, y).mean()
    xx = dist(x, x).sum() / (n * (n - 1))  # the diagonal is 0: a mean over i != j
    yy = dist(y, y).sum() / (m * (m - 1))
    return float(xy - 0.5 * xx - 0.5 * yy)


# --------------------------------------------------------------------------- FID (optional extra, online)
PAPER_FID_CIFAR10 = 3.17  # Ho et al. 2020, Table 1: unconditional CIFAR-10, samples against the training set
PAPER_FID_SAMPLES = 50_000  # how many samples the paper's FID was computed from
FID_WEIGHTS_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                   "weights-inception-2015-12-05-6726825d.pth")  # torch-fidelity's port of TF's 2015-12-05 Inception
FID_WEIGHTS_FILE = FID_WEIGHTS_URL.rsplit("/", 1)[1]
FID_WEIGHTS_SHA256 = "6726825d"  # the published file's sha256 starts so (torch.hub's file-name convention)
FID_WEIGHTS_ENV = "DDPM_EDU_FID_WEIGHTS"  # a local copy of the weights, for offline machines
FID_INSTALL = 'pip install "ddpm-edu[fid]"'
FID_PROBE_TIMEOUT_S = 5.0  # how long the weights' server has to answer before FID gives up
FID_DOWNLOAD_TIMEOUT_S = 30.0  # socket timeout while downloading: a stalled transfer fails instead of hanging


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
    features and (mu, Sigma) are kept under ``<cache root>/fid`` (about 0.45 GB for CIFAR-10), keyed by
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
    """Download the published weights to ``path`` with a bounded wait (a probe, then a socket timeout)."""
    from urllib.parse import urlparse

    from ddpm_edu.data.download import reachable

    host = urlparse(FID_WEIGHTS_URL).hostname
    if not reachable(host, 443, FID_PROBE_TIMEOUT_S):
        raise FIDError(_weights_message(f"{host} cannot be reached: no internet?"))
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(FID_DOWNLOAD_TIMEOUT_S)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(FID_WEIGHTS_URL, str(path), hash_prefix=FID_WEIGHTS_SHA256, progress=False)
    except Exception as e:  # URLError, timeouts, a wrong hash...
        raise FIDError(_weights_message(f"the download failed: {type(e).__name__}: {e}")) from None
    finally:
        socket.setdefaulttimeout(old)


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
