"""ddpm_edu.figs: make_all regenerates the README's figures from the plot functions."""

import matplotlib
import numpy as np
import pytest

from ddpm_edu import figs

REQUIRED = {
    "px_pz.png", "bad_noise.png", "fixed_noise_fast.png", "fixed_noise_slow.png",
    "betas_alpha_bars.png", "schedules.png", "forward_steps.png",
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("figs") / "nested"
    before = dict(matplotlib.rcParams)
    paths = figs.make_all(out)
    assert dict(matplotlib.rcParams) == before
    return out, paths


def test_make_all_writes_every_required_png(written):
    out, paths = written
    assert {p.name for p in paths} >= REQUIRED
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # nothing else left behind
    for p in paths:
        assert p.parent == out and p.read_bytes().startswith(b"\x89PNG")
        assert 5_000 < p.stat().st_size < 250_000, (p.name, p.stat().st_size)


def test_figures_are_deterministic(written, tmp_path):
    import imageio.v3 as iio

    out, _ = written
    again = figs.make_all(tmp_path)
    for p in again:
        a, b = iio.imread(p), iio.imread(out / p.name)
        assert a.shape == b.shape and np.array_equal(a, b), p.name


def test_make_all_accepts_a_string_path(tmp_path, monkeypatch):
    monkeypatch.setattr(figs, "FIGURES", {"px_pz.png": figs.FIGURES["px_pz.png"]})
    paths = figs.make_all(str(tmp_path / "s"))
    assert [p.name for p in paths] == ["px_pz.png"]
