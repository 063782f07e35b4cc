"""ddpm_edu.lab.figs: make_all regenerates the README's figures from the plot functions, and the trajectory GIFs."""

import matplotlib
import numpy as np
import pytest

from ddpm_edu.lab import figs

REQUIRED = {
    "px_pz.png", "bad_noise.png", "fixed_noise_fast.png", "fixed_noise_slow.png",
    "betas_alpha_bars.png", "schedules.png", "forward_steps.png",
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("figs") / "nested"
    before = dict(matplotlib.rcParams)
    paths = figs.make_all(out, gifs=False)  # the GIFs sample trained models: tested below on tiny ones
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
    again = figs.make_all(tmp_path, gifs=False)
    for p in again:
        a, b = iio.imread(p), iio.imread(out / p.name)
        assert a.shape == b.shape and np.array_equal(a, b), p.name


def test_make_all_accepts_a_string_path(tmp_path, monkeypatch):
    monkeypatch.setattr(figs, "FIGURES", {"px_pz.png": figs.FIGURES["px_pz.png"]})
    paths = figs.make_all(str(tmp_path / "s"), gifs=False)
    assert [p.name for p in paths] == ["px_pz.png"]


def test_trajectory_gif_loops_with_real_frame_delays(tmp_path, cache_dir):
    from conftest import tiny_config
    from PIL import Image

    cfg = tiny_config("sample.frames=5", "sample.fps=4")  # tiny U-Net, T = 50, 4 samples
    path = figs.trajectory_gif(cfg, tmp_path / "out" / "t.gif")
    assert [p.name for p in path.parent.iterdir()] == ["t.gif"]  # the final PNG grid is not left behind
    with Image.open(path) as im:
        assert im.n_frames == 5 and im.info["duration"] == 250 and im.info["loop"] == 0  # 1000 / fps ms, looping
    assert any(cache_dir.iterdir())  # the model came through the cache


def test_make_all_writes_the_trajectory_gifs(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(figs, "FIGURES", {})
    monkeypatch.setattr(figs, "trajectory_gif", lambda cfg, path: seen.append((cfg.name, path.name)) or path)
    paths = figs.make_all(tmp_path)
    assert sorted(seen) == sorted((preset, name) for name, preset in figs.GIFS.items())
    assert {p.name for p in paths} == {"digits_trajectory.gif", "toy2d_trajectory.gif"}
