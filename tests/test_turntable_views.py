"""Every turntable object looks different after a quarter and after a half turn.

An object with a rotational symmetry, in its shape or in its texture, gives views that repeat as it turns:
with 72 views of a box, view(theta) and view(theta + 180) were the same image, so a test view had a twin
among the training views and interpolation measures meant nothing. COIL-100's objects mostly have no such
symmetry; neither may ours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli
from toolkit.datasets import open_dataset
from toolkit.render.turntable import OBJECTS

STEP = 45  # views at 0, 45, ..., 315 degrees
VIEWS = 360 // STEP
SIZE = 32
SAMPLES = 64  # 80 images in about 3 s on 2 cores: few enough to be fast, enough to keep the noise low
# Mean absolute difference (pixels in [0, 1]) between view(theta) and view(theta + 90) or view(theta + 180),
# at 32 px and 64 samples. Measured: the smallest over all objects and angles is 0.034 (teal_bean, +90 at
# theta 135; of the 8 default objects: 0.037, brick_mug, +90 at theta 0), while rendering noise, the same view
# rendered with seeds 0 and 1, is at most 0.012 (copper_cage, a glossy metal; the others 0.008 at most). The
# objects of before, a box, a torus and a twisted bar among them, measured 0.000 at +180. The margin lies
# between the two, about 1.7 times from each.
MARGIN = 0.02


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> dict[int, np.ndarray]:
    """seed -> images (object, view, row, column, channel) in [0, 1], for seeds 0 and 1."""
    pytest.importorskip("bpy")
    folder = tmp_path_factory.mktemp("turntable_views")
    rendered = {}
    for seed in (0, 1):
        out = folder / f"seed{seed}.h5"
        result = run_cli(
            "render-turntable",
            *("--objects", str(len(OBJECTS)), "--step", str(STEP), "--size", str(SIZE)),
            *("--samples", str(SAMPLES), "--seed", str(seed), "--out", str(out)),
        )
        assert result.returncode == 0, result.stderr
        d = open_dataset(Path(out))
        assert d.label_names == list(OBJECTS)
        assert d.params[:VIEWS, 0].tolist() == [STEP * k for k in range(VIEWS)]
        images = d.read_images().astype(np.float64) / 255.0
        rendered[seed] = images.reshape(len(OBJECTS), VIEWS, SIZE, SIZE, 3)
    return rendered


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


@pytest.mark.render
def test_turntable_views_differ_a_quarter_and_a_half_turn_apart(views: dict[int, np.ndarray]) -> None:
    images = views[0]
    alike = []
    for k, name in enumerate(OBJECTS):
        for t in range(VIEWS):
            for turn in (90, 180):
                other = (t + turn // STEP) % VIEWS
                difference = _difference(images[k, t], images[k, other])
                if difference <= MARGIN:
                    alike.append(f"{name} at {STEP * t} and {STEP * other} deg: {difference:.4f}")
    assert not alike, f"views closer than {MARGIN}: " + "; ".join(alike)


@pytest.mark.render
def test_turntable_margin_is_well_above_render_noise(views: dict[int, np.ndarray]) -> None:
    # The same views with another seed differ by noise alone: the margin above must stay clear of it.
    noise = {
        name: max(_difference(views[0][k, t], views[1][k, t]) for t in range(VIEWS)) for k, name in enumerate(OBJECTS)
    }
    assert max(noise.values()) < 0.75 * MARGIN, noise
