"""Strips, bilinear grids and GIFs: exact frames from known models, layouts with the expected sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from test_evaluate import POLE_ELEVATIONS, Oracle, write_grid_dataset

from toolkit.datasets import open_dataset
from toolkit.evaluate import pictures as vis
from toolkit.evaluate.dissolve import PixelDissolve


def test_decoded_pairs_follow_the_oracle_along_the_interval(tmp_path: Path) -> None:
    data = open_dataset(write_grid_dataset(tmp_path / "turntable.h5", azimuth_step=30.0))
    first, second = data.read_images(np.array([11, 1])), data.read_images(np.array([1, 3]))  # 330->30, 30->90
    frames = vis.decode_pairs(Oracle(data), first, second, np.linspace(0, 1, 3), "cpu")
    assert frames.shape == (2, 3, 16, 16, 3)
    np.testing.assert_array_equal(frames[0, 1], data.read_images(np.array([0]))[0])  # across 360: 0 degrees
    np.testing.assert_array_equal(frames[1, 1], data.read_images(np.array([2]))[0])  # 60 degrees


def test_dissolve_is_the_pixel_average() -> None:
    black, white = np.zeros((1, 8, 8, 3), np.uint8), np.full((1, 8, 8, 3), 200, np.uint8)
    frames = vis.dissolve_pairs(black, white, np.array([0.0, 0.5, 1.0]))
    assert frames[0, :, 0, 0, 0].tolist() == [0, 100, 200]
    grid = vis.dissolve_bilinear(np.concatenate([black, white, white, white]), 3)
    assert grid.shape == (3, 3, 8, 8, 3) and grid[0, 1, 0, 0, 0] == 100 and grid[2, 2, 0, 0, 0] == 200


def test_bilinear_grid_of_the_oracle_walks_both_parameters(tmp_path: Path) -> None:
    data = open_dataset(write_grid_dataset(tmp_path / "pole.h5", POLE_ELEVATIONS[:3], azimuth_step=45.0))
    # rows: elevation index * 8 + azimuth index; corners (45, 0), (45, 90), (55, 0), (55, 90)
    corners = data.read_images(np.array([0, 2, 16, 18]))
    frames = vis.decode_bilinear(Oracle(data), corners, 3, "cpu")
    np.testing.assert_array_equal(frames[1, 1], data.read_images(np.array([9]))[0])  # (50, 45): the centre
    image = vis.grid_image([frames, vis.dissolve_bilinear(corners, 3)], corners, scale=2, gap=2)
    assert image.size == (2 * (3 * 34 + 8), 3 * 34)


def test_strip_and_gif_layouts(tmp_path: Path) -> None:
    data = open_dataset(write_grid_dataset(tmp_path / "turntable.h5", azimuth_step=30.0))
    first, second = data.read_images(np.array([0, 3])), data.read_images(np.array([4, 7]))
    alphas = np.linspace(0, 1, 5)
    rows = [("oracle", vis.decode_pairs(Oracle(data), first, second, alphas, "cpu"))]
    rows.append(("dissolve", vis.decode_pairs(PixelDissolve(), first, second, alphas, "cpu")))
    strip = vis.save_image(vis.strip_image(first, second, rows, scale=2), tmp_path / "strip.png")
    with Image.open(strip) as image:
        width, height = image.size
    assert height == 2 * (2 * (32 + 4) + 8)  # two pairs, each two rows of 32-pixel cells
    assert width > 7 * 32
    gif = vis.save_gif(vis.gif_frames(rows[0][1][0], scale=1), tmp_path / "a.gif")
    with Image.open(gif) as image:
        assert image.n_frames == 8  # 5 there, 3 back
