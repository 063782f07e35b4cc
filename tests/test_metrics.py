"""ddpm_edu.eval.metrics: the energy distance against its closed form for Gaussians, the digits classifier score,
and FID offline on the CIFAR-10 fixture (random Inception weights of the real architecture, network blocked)."""

import math
import socket
import sys
import time

import numpy as np
import pytest
import torch
from conftest import write_fake_cifar10

from ddpm_edu.eval import metrics
from ddpm_edu.lab import fastmode

REPS, N = 20, 300  # replicates of the estimate, and points per set in each


def replicated(a: float, b: float, seed: int) -> tuple[float, float]:
    """Mean and standard error of REPS independent estimates of D(N(a, 1), N(b, 1)) from N points each."""
    g = torch.Generator().manual_seed(seed)
    est = torch.tensor([metrics.energy_distance(a + torch.randn(N, generator=g, dtype=torch.float64),
                                                b + torch.randn(N, generator=g, dtype=torch.float64))
                        for _ in range(REPS)])
    return float(est.mean()), float(est.std() / math.sqrt(REPS))


def gaussian_energy_distance(a: float, b: float) -> float:
    """Closed form: X - Y ~ N(mu, 2) with mu = a - b, so E|X - Y| is a folded normal's mean,
    2/sqrt(pi) exp(-mu^2 / 4) + mu erf(mu / 2); and E|X - X'| = E|Y - Y'| = 2 / sqrt(pi)."""
    mu = a - b
    e_xy = 2 / math.sqrt(math.pi) * math.exp(-(mu**2) / 4) + mu * math.erf(mu / 2)
    return e_xy - 2 / math.sqrt(math.pi)


@pytest.mark.parametrize("a, b", [(0.0, 0.0), (0.0, 1.0), (0.5, -1.5)])
def test_energy_distance_matches_the_closed_form_for_gaussians(a, b):
    mean, se = replicated(a, b, seed=int(10 * (a + 3 * b)) + 7)
    assert abs(mean - gaussian_energy_distance(a, b)) < 5 * se, (mean, se, gaussian_energy_distance(a, b))


def test_energy_distance_is_symmetric_and_uses_u_statistics_within_sets():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 2, generator=g), torch.randn(150, 2, generator=g) + 0.3
    assert metrics.energy_distance(x, y) == pytest.approx(metrics.energy_distance(y, x), rel=1e-12)
    # A set against itself: with S the sum of all n^2 distances, the cross term is S / n^2 (diagonal
    # included) and each within term S / (n (n - 1)) (diagonal left out), so D = S / n^2 - S / (n (n - 1)).
    d = torch.cdist(x.double(), x.double())
    assert metrics.energy_distance(x, x) == pytest.approx(float(d.mean() - d.sum() / (200 * 199)), rel=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.energy_distance(x[:1], y)


def test_classifier_is_accurate_on_held_out_digits():
    x_train, y_train, x_test, y_test = metrics.digits_split()
    assert len(x_test) == pytest.approx(metrics.HELD_OUT * 1797, abs=1)
    assert set(y_test.tolist()) == set(range(10))
    assert metrics.classifier_accuracy() > 0.9  # pixel-wise logistic regression gets ~0.97 on these digits


def test_real_digits_are_mostly_confident_and_the_per_pixel_gaussian_is_not():
    _, _, x_test, _ = metrics.digits_split()
    real = metrics.digits_score(x_test)
    floor = metrics.digits_score(metrics.pixel_gaussian_digits(1000, torch.Generator().manual_seed(0)))
    assert real.n == len(x_test) and sum(real.histogram) == real.n and real.classes_present == 10
    assert real.confident > 0.7 and floor.confident < 0.3, (real, floor)
    assert real.confident_se == pytest.approx(math.sqrt(real.confident * (1 - real.confident) / real.n))


def test_pixel_gaussian_has_the_digits_per_pixel_moments():
    from ddpm_edu.data.digits import load_digits

    d = load_digits()
    n = 4000
    x = metrics.pixel_gaussian_digits(n, torch.Generator().manual_seed(1))
    assert x.shape == (n, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    inner = (d.std(0) > 0.2) & (d.mean(0).abs() < 0.2)  # pixels that clamping to [-1, 1] barely touches
    se = d.std(0) / math.sqrt(n)  # standard error of a per-pixel mean
    assert ((x.mean(0) - d.mean(0)).abs()[inner] < 5 * se[inner]).all()


def test_digits_probs_rejects_other_shapes():
    with pytest.raises(ValueError, match="8, 8"):
        metrics.digits_probs(torch.zeros(3, 64))


def test_eval_samples_shrinks_in_fast_mode(monkeypatch):
    monkeypatch.setenv("DDPM_EDU_FAST", "1")
    small = fastmode.eval_samples("digits"), fastmode.eval_samples("toy2d")
    monkeypatch.setenv("DDPM_EDU_FAST", "0")
    full = fastmode.eval_samples("digits"), fastmode.eval_samples("toy2d")
    assert all(a < b for a, b in zip(small, full))
    with pytest.raises(ValueError, match="dataset"):
        fastmode.eval_samples("cifar10")


# --------------------------------------------------------------------------- FID, offline
# The real Inception weights cannot be downloaded here. A file of the same architecture, in the format
# torch-fidelity loads (the state dict of its FeatureExtractorInceptionV3), with seeded random parameters
# exercises every code path; only the numbers differ from the published network's.
@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """A weights file for torch-fidelity's Inception v3: its own module's state dict, seeded He-normal convolutions."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    class Unloaded(fe.FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, *args, **kwargs):  # keep the freshly built parameters
            return None

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})  # the constructor would download
        net = Unloaded("inception-v3-compat", ["2048"])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):  # variance 2 / fan_in keeps the activations' scale through ReLUs
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2 / m.weight[0].numel()))
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def small_cifar(tmp_path_factory):
    """(root, training images): the fixture's CIFAR-10 files with 2 images per batch, 10 training images
    (each image costs an Inception pass)."""
    from ddpm_edu.data.cifar10 import load_cifar10

    root = tmp_path_factory.mktemp("cifar-small")
    write_fake_cifar10(root, per_batch=2)
    return root, load_cifar10(root, verify_md5=False)


@pytest.fixture
def offline(monkeypatch, tmp_path) -> list:
    """Block the network (connections and DNS) and record every attempt; empty hub cache and model cache,
    no $DDPM_EDU_FID_WEIGHTS."""
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args[-1] if args else kwargs)
        raise OSError("the network is blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no copy of the weights in the hub cache
    monkeypatch.setenv("DDPM_EDU_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(metrics.FID_WEIGHTS_ENV, raising=False)
    return attempts


class Pickled:
    """An object that only a full unpickler rebuilds (weights_only=True refuses its class)."""


def write_pngs(x: torch.Tensor, folder) -> None:
    from PIL import Image

    folder.mkdir()
    for i, img in enumerate(x):  # (3, H, W) uint8
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i:05d}.png")


def test_fid_is_zero_against_itself_and_positive_against_other_images(random_inception, small_cifar, offline,
                                                                      monkeypatch, tmp_path, one_thread):
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    root, ref = small_cifar
    # Inception resizes every image to 299 x 299, seconds per image here. 75 x 75, the smallest input
    # Inception v3 takes, runs every layer at 1/16 of the cost; the features differ, the code path does not.
    monkeypatch.setattr(fe.FeatureExtractorInceptionV3, "INPUT_IMAGE_SIZE", 75)
    seen: list[int] = []
    forward = fe.FeatureExtractorInceptionV3.forward
    monkeypatch.setattr(fe.FeatureExtractorInceptionV3, "forward",
                        lambda self, x: seen.append(len(x)) or forward(self, x))  # count the images it sees
    write_pngs(ref, tmp_path / "samples")
    run = dict(reference_root=root, weights=random_inception, verify_md5=False, device="cpu")

    with pytest.warns(UserWarning, match="not comparable"):  # random weights are not the published ones
        fid_self = metrics.fid(tmp_path / "samples", **run)
    assert sum(seen) == 2 * len(ref)  # the PNG folder and the reference
    # The reference's (mu, Sigma) were cached. Identical images give identical features, so FID is
    # 2 tr(Sigma) - 2 sum_i sqrt(mu_i) with mu_i the eigenvalues of Sigma Sigma, 0 in exact arithmetic. The
    # eigen solver is backward stable: each mu_i is off by about eps ||Sigma||^2, so each sqrt(mu_i) by at
    # most sqrt(eps) ||Sigma|| (the worst case, mu_i = 0), and the d = 2048 of them by d sqrt(eps) tr(Sigma).
    (stats,) = (tmp_path / "cache" / "fid").glob("*stat-fid-2048.pt")
    sigma = torch.load(stats, weights_only=False)["sigma"]  # (2048, 2048) float64
    tol = sigma.shape[0] * math.sqrt(np.finfo(np.float64).eps) * np.trace(sigma)
    assert math.isfinite(fid_self) and abs(fid_self) <= tol, (fid_self, tol)

    seen.clear()
    with pytest.warns(UserWarning, match="not comparable"):
        fid_inverted = metrics.fid(255 - ref, **run)  # a uint8 tensor of clearly different images
    assert seen == [len(ref)]  # only the samples went through Inception: the reference came from the cache
    assert math.isfinite(fid_inverted) and fid_inverted > tol and fid_inverted > fid_self
    assert offline == []  # no connection was attempted, not even a DNS lookup


def test_fid_without_weights_offline_fails_at_once_and_says_what_to_fetch(small_cifar, offline):
    root, ref = small_cifar
    t0 = time.monotonic()
    with pytest.raises(metrics.FIDError) as e:
        metrics.fid(ref, reference_root=root, verify_md5=False)
    assert time.monotonic() - t0 < metrics.FID_PROBE_TIMEOUT_S  # the probe was refused: no wait at all
    msg = str(e.value)
    for needle in (metrics.FID_WEIGHTS_FILE, metrics.FID_WEIGHTS_URL, metrics.FID_WEIGHTS_ENV, "weights=PATH",
                   "--weights PATH", "cannot be reached"):
        assert needle in msg, needle
    assert offline == [("github.com", 443)]  # one probe of the weights' server, no download tried


def test_fid_weights_wait_for_a_silent_network_is_bounded(small_cifar, offline, monkeypatch):
    """A network that swallows packets (the probe never answers) costs the probe's timeout, not a hang."""
    root, ref = small_cifar
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: time.sleep(5))
    monkeypatch.setattr(metrics, "FID_PROBE_TIMEOUT_S", 0.2)
    t0 = time.monotonic()
    with pytest.raises(metrics.FIDError, match="cannot be reached"):
        metrics.fid(ref, reference_root=root, verify_md5=False)
    assert time.monotonic() - t0 < 2.0


def test_fid_weights_from_the_environment_or_refused(random_inception, offline, monkeypatch, tmp_path):
    monkeypatch.setenv(metrics.FID_WEIGHTS_ENV, str(random_inception))
    assert metrics.fid_weights() == random_inception
    assert metrics.fid_weights(random_inception) == random_inception
    with pytest.raises(metrics.FIDError, match="nowhere.pth, does not exist"):
        metrics.fid_weights(tmp_path / "nowhere.pth")
    pickled = tmp_path / "code.pth"
    torch.save({"w": torch.zeros(1), "obj": Pickled()}, pickled)  # unpickling it would import and run code
    with pytest.raises(metrics.FIDError, match="weights_only=True"):
        metrics.fid_weights(pickled)
    assert offline == []


def test_fid_without_the_extra_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # import torch_fidelity now raises ImportError
    with pytest.raises(metrics.FIDError) as e:
        metrics.fid(tmp_path, reference_root=tmp_path / "no-cifar")  # reported before any data is read
    assert metrics.FID_INSTALL in str(e.value) and 'pip install "ddpm-edu[fid]"' in str(e.value)


def test_load_images_reads_pngs_npz_and_tensors_alike(tmp_path):
    from ddpm_edu.data.images import to_uint8

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (5, 3, 32, 32), generator=g, dtype=torch.uint8)
    write_pngs(x, tmp_path / "pngs")
    np.savez(tmp_path / "hwc.npz", x.permute(0, 2, 3, 1).numpy())  # (N, H, W, 3) as arr_0
    np.savez(tmp_path / "chw.npz", samples=x.numpy())
    for src in (tmp_path / "pngs", tmp_path / "hwc.npz", tmp_path / "chw.npz", x):
        assert torch.equal(metrics.load_images(src), x), src
    xf = torch.rand((4, 3, 8, 8), generator=g) * 2 - 1  # floats in [-1, 1]
    assert torch.equal(metrics.load_images(xf), torch.from_numpy(to_uint8(xf)).permute(0, 3, 1, 2))


def test_load_images_refuses_a_grid_and_too_few_images(tmp_path):
    from PIL import Image

    d = tmp_path / "sampled"
    d.mkdir()
    Image.new("RGB", (32, 32)).save(d / "a.png")
    Image.new("RGB", (133, 133)).save(d / "samples.png")  # what 'ddpm-edu sample' writes: a grid
    with pytest.raises(metrics.FIDError, match="not all one size"):
        metrics.load_images(d)
    with pytest.raises(metrics.FIDError, match="at least 2"):
        metrics.load_images(torch.zeros((1, 3, 32, 32), dtype=torch.uint8))
    (tmp_path / "empty").mkdir()
    with pytest.raises(metrics.FIDError, match="no PNG files"):
        metrics.load_images(tmp_path / "empty")
    with pytest.raises(metrics.FIDError, match="neither a folder"):
        metrics.load_images(tmp_path / "missing")
