"""ddpm_edu.eval.fid: FID offline on the CIFAR-10 fixture (random Inception weights of the real architecture,
network blocked), the weights' bounded download, and the readers of sample files."""

import dataclasses
import math
import socket
import sys
import time
import urllib.error

import numpy as np
import pytest
import torch
from conftest import write_fake_cifar10

from ddpm_edu.data import download
from ddpm_edu.eval import fid


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
    monkeypatch.delenv(fid.FID_WEIGHTS_ENV, raising=False)
    return attempts


class Pickled:
    """An object that only a full unpickler rebuilds (weights_only=True refuses its class)."""


def write_pngs(x: torch.Tensor, folder) -> None:
    from PIL import Image

    folder.mkdir()
    for i, img in enumerate(x):  # (3, H, W) uint8
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i:05d}.png")


@pytest.mark.slow
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
        fid_self = fid.fid(tmp_path / "samples", **run)
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
        fid_inverted = fid.fid(255 - ref, **run)  # a uint8 tensor of clearly different images
    assert seen == [len(ref)]  # only the samples went through Inception: the reference came from the cache
    assert math.isfinite(fid_inverted) and fid_inverted > tol and fid_inverted > fid_self
    assert offline == []  # no connection was attempted, not even a DNS lookup


def test_fid_without_weights_offline_fails_at_once_and_says_what_to_fetch(small_cifar, offline):
    root, ref = small_cifar
    t0 = time.monotonic()
    with pytest.raises(fid.FIDError) as e:
        fid.fid(ref, reference_root=root, verify_md5=False)
    assert time.monotonic() - t0 < fid.FID_PROBE_TIMEOUT_S  # the probe was refused: no wait at all
    msg = str(e.value)
    for needle in (fid.FID_WEIGHTS_FILE, fid.FID_WEIGHTS_URL, fid.FID_WEIGHTS_ENV, "weights=PATH",
                   "--weights PATH", "cannot be reached"):
        assert needle in msg, needle
    assert offline == [("github.com", 443)]  # one probe of the weights' server, no download tried


def test_fid_weights_wait_for_a_silent_network_is_bounded(small_cifar, offline, monkeypatch):
    """A network that swallows packets (the probe never answers) costs the probe's timeout, not a hang."""
    root, ref = small_cifar
    def stall(*args, **kwargs):
        time.sleep(5)
        raise OSError("no answer")  # after the test: the probe's thread ends quietly

    monkeypatch.setattr(socket, "create_connection", stall)
    monkeypatch.setattr(fid, "FID_PROBE_TIMEOUT_S", 0.2)
    t0 = time.monotonic()
    with pytest.raises(fid.FIDError, match="cannot be reached"):
        fid.fid(ref, reference_root=root, verify_md5=False)
    assert time.monotonic() - t0 < 2.0


def test_fid_weights_download_runs_under_a_socket_timeout_and_a_failure_says_what_to_do(small_cifar, offline,
                                                                                      monkeypatch):
    """The server answers the probe, then the transfer fails (as a stalled one does when the timeout fires)."""
    root, ref = small_cifar
    calls = []

    def stalled(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix, socket.getdefaulttimeout()))
        raise urllib.error.URLError(TimeoutError("timed out"))

    monkeypatch.setattr(download, "reachable", lambda host, port, timeout: True)
    monkeypatch.setattr(torch.hub, "download_url_to_file", stalled)
    before = socket.getdefaulttimeout()
    with pytest.raises(fid.FIDError) as e:
        fid.fid(ref, reference_root=root, verify_md5=False)
    assert calls == [(fid.FID_WEIGHTS_URL, fid.FID_WEIGHTS_SHA256, fid.FID_DOWNLOAD_TIMEOUT_S)]
    assert socket.getdefaulttimeout() == before
    msg = str(e.value)
    for needle in ("the download failed: URLError", "timed out", fid.FID_WEIGHTS_URL, fid.FID_WEIGHTS_ENV,
                   "weights=PATH"):
        assert needle in msg, needle


def test_fid_weights_from_the_environment_or_refused(random_inception, offline, monkeypatch, tmp_path):
    monkeypatch.setenv(fid.FID_WEIGHTS_ENV, str(random_inception))
    assert fid.fid_weights() == random_inception
    assert fid.fid_weights(random_inception) == random_inception
    with pytest.raises(fid.FIDError, match="nowhere.pth, does not exist"):
        fid.fid_weights(tmp_path / "nowhere.pth")
    pickled = tmp_path / "code.pth"
    torch.save({"w": torch.zeros(1), "obj": Pickled()}, pickled)  # unpickling it would import and run code
    with pytest.raises(fid.FIDError, match="weights_only=True"):
        fid.fid_weights(pickled)
    assert offline == []


def test_fid_without_the_extra_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # import torch_fidelity now raises ImportError
    with pytest.raises(fid.FIDError) as e:
        fid.fid(tmp_path, reference_root=tmp_path / "no-cifar")  # reported before any data is read
    assert fid.FID_INSTALL in str(e.value) and 'pip install "ddpm-edu[fid]"' in str(e.value)


def test_load_images_reads_pngs_npz_and_tensors_alike(tmp_path):
    from ddpm_edu.data.images import to_uint8

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (5, 3, 32, 32), generator=g, dtype=torch.uint8)
    write_pngs(x, tmp_path / "pngs")
    np.savez(tmp_path / "hwc.npz", x.permute(0, 2, 3, 1).numpy())  # (N, H, W, 3) as arr_0
    np.savez(tmp_path / "chw.npz", samples=x.numpy())
    for src in (tmp_path / "pngs", tmp_path / "hwc.npz", tmp_path / "chw.npz", x):
        assert torch.equal(fid.load_images(src), x), src
    xf = torch.rand((4, 3, 8, 8), generator=g) * 2 - 1  # floats in [-1, 1]
    assert torch.equal(fid.load_images(xf), torch.from_numpy(to_uint8(xf)).permute(0, 3, 1, 2))


def test_load_images_refuses_a_grid_and_too_few_images(tmp_path):
    from PIL import Image

    d = tmp_path / "sampled"
    d.mkdir()
    Image.new("RGB", (32, 32)).save(d / "a.png")
    Image.new("RGB", (133, 133)).save(d / "samples.png")  # what 'ddpm-edu sample' writes: a grid
    with pytest.raises(fid.FIDError, match="not all one size"):
        fid.load_images(d)
    with pytest.raises(fid.FIDError, match="at least 2"):
        fid.load_images(torch.zeros((1, 3, 32, 32), dtype=torch.uint8))
    (tmp_path / "empty").mkdir()
    with pytest.raises(fid.FIDError, match="no PNG files"):
        fid.load_images(tmp_path / "empty")
    with pytest.raises(fid.FIDError, match="neither a folder"):
        fid.load_images(tmp_path / "missing")


def test_paper_sampler_makes_a_preset_comparable_and_every_other_setting_is_named():
    from ddpm_edu.training.config import load_config

    paper = load_config("cifar10")
    assert set(fid.paper_fid_problems(paper)) == {"sample.sampler"}  # the preset's grids use DDIM
    fixed = fid.paper_sampler(paper)
    assert fid.paper_fid_problems(fixed) == {}
    s = fixed.sample  # Algorithm 2 with sigma_t^2 = beta_t and x0_hat clipped to [-1, 1]; the rest kept
    assert (s.sampler, s.variance, s.clip_x0) == ("ddpm", "beta", 1.0)
    assert (s.num_samples, s.frames, fixed.diffusion, fixed.model) == (
        paper.sample.num_samples, paper.sample.frames, paper.diffusion, paper.model)
    for variance in ("beta", "beta_tilde"):  # DDIM has no sigma_t^2: its sampler is the one problem
        ddim = paper.replace(sample=dataclasses.replace(fixed.sample, sampler="ddim", steps=100, variance=variance))
        assert set(fid.paper_fid_problems(ddim)) == {"sample.sampler"}
    tilde = paper.replace(sample=dataclasses.replace(fixed.sample, variance="beta_tilde"))
    assert set(fid.paper_fid_problems(tilde)) == {"sample.variance"}
    unclipped = paper.replace(sample=dataclasses.replace(fixed.sample, clip_x0=None))
    assert "None" in fid.paper_fid_problems(unclipped)["sample.clip_x0"]
    small = fid.paper_sampler(load_config("cifar10", overrides=["diffusion.T=100"]))
    assert set(fid.paper_fid_problems(small)) == {"diffusion.T"}
    digits = fid.paper_sampler(load_config("digits"))
    assert "data.dataset" in fid.paper_fid_problems(digits)
