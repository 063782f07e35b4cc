"""ddpm_edu.data.images: the uint8 mapping, image grids, PNG and GIF files."""

import numpy as np
import pytest
import torch
from PIL import Image

from ddpm_edu.data import images


def test_to_uint8_maps_the_range_and_clips():
    x = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0]).reshape(1, 1, 5)
    assert images.to_uint8(x).tolist() == [[0, 0, 128, 255, 255]]  # round((x + 1) * 127.5), clipped
    assert images.to_uint8(torch.zeros(3, 2, 4)).shape == (2, 4, 3)  # CHW -> HWC
    assert images.to_uint8(torch.zeros(5, 1, 2, 4)).shape == (5, 2, 4)  # one channel -> HW
    assert images.to_uint8(torch.zeros(1, 2, 2, dtype=torch.float64)).dtype == np.uint8


def test_to_uint8_is_exact_on_the_uint8_levels():
    levels = torch.arange(256, dtype=torch.float64)
    x = (levels / 127.5 - 1).reshape(1, 1, 256)  # the 256 values that map back to each level
    assert images.to_uint8(x)[0].tolist() == levels.long().tolist()


def test_image_grid_tiles_the_batch_with_white_padding():
    x = torch.stack([torch.full((3, 2, 2), v) for v in (-1.0, 0.0, 1.0, -1.0)])  # (4, 3, 2, 2)
    grid = images.image_grid(x, nrow=2, padding=1)
    assert grid.shape == (2 * 2 + 3, 2 * 2 + 3, 3) and grid.dtype == np.uint8
    assert (grid[0] == 255).all() and (grid[:, 0] == 255).all()  # the padding is white
    assert (grid[1:3, 1:3] == 0).all() and (grid[1:3, 4:6] == 128).all()  # first row: images 0 and 1
    assert (grid[4:6, 1:3] == 255).all() and (grid[4:6, 4:6] == 0).all()  # second row: images 2 and 3
    assert images.image_grid(x[:, :1]).shape == (7, 7)  # one channel stays one channel; nrow = ceil(sqrt(4))
    with pytest.raises(ValueError, match="B, C, H, W"):
        images.image_grid(x[0])


def test_save_image_grid_writes_the_grid_as_png(tmp_path):
    import imageio.v3 as iio

    x = torch.rand(5, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    p = images.save_image_grid(x, tmp_path / "sub" / "g.png", nrow=3)
    assert np.array_equal(iio.imread(p), images.image_grid(x, 3))  # PNG is lossless
    assert [q.name for q in p.parent.iterdir()] == ["g.png"]  # no temporary file left behind


def test_save_gif_keeps_every_frame_with_a_real_delay(tmp_path):
    still = np.zeros((16, 40, 3), dtype=np.uint8)
    path = images.save_gif([still] * 6, tmp_path / "a.gif", fps=5)  # identical frames: writers would merge them
    im = Image.open(path)
    assert im.n_frames == 6
    assert im.info["duration"] == 200 and im.info["loop"] == 0  # 1000 / fps milliseconds, looping
    assert im.size == (40, 16 + 3)  # the frame and its progress strip
    with pytest.raises(ValueError, match="fps"):
        images.save_gif([still], tmp_path / "b.gif", fps=0)
    with pytest.raises(ValueError, match="frame"):
        images.save_gif([], tmp_path / "c.gif")


def test_save_gif_without_progress_bar_stores_the_frames_as_they_are(tmp_path):
    frames = [np.full((4, 6), v, dtype=np.uint8) for v in (0, 255, 0)]
    im = Image.open(images.save_gif(frames, tmp_path / "a.gif", fps=10, progress_bar=False))
    assert im.size == (6, 4) and im.n_frames == 3 and im.info["duration"] == 100
    seen = []
    for k in range(im.n_frames):
        im.seek(k)
        seen.append(np.asarray(im.convert("L")))
    assert [int(f.mean()) for f in seen] == [0, 255, 0]


def test_trajectory_frames_grid_every_recorded_state():
    states = [(t, torch.full((4, 1, 3, 3), v)) for t, v in ((10, -1.0), (5, 0.0), (0, 1.0))]
    frames = images.trajectory_frames(states, nrow=2)
    assert len(frames) == 3 and all(f.dtype == np.uint8 for f in frames)
    for f, (_, x) in zip(frames, states):
        assert np.array_equal(f, images.image_grid(x, 2))


def test_scatter_rgb_draws_points_inside_the_frame():
    img = images.scatter_rgb(torch.zeros(50, 2), "t = 0", lim=2.0)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    far = images.scatter_rgb(torch.full((50, 2), 10.0), "t = 0", lim=2.0)  # every point outside the axes
    assert (img != far).any()  # the points at the origin are drawn; the far ones are not
