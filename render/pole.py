"""The pole scene: a thin vertical pole on a light plane, lit by one distant light, seen from straight above.

The light comes from elevation theta and azimuth phi (degrees). Azimuth 0 lights from the image's right
(+x), 90 from its top (+y). The shadow points away from the light and is POLE_HEIGHT * cot(theta) long;
the orthographic camera keeps lengths on the plane proportional in the image.
"""

from __future__ import annotations

import math

import numpy as np

from toolkit.render.grid import Grid, check_range, parse_values
from toolkit.render.scene import (
    Scene,
    SetState,
    add_object,
    look_from,
    principled_material,
)

POLE_HEIGHT = 0.8  # the view spans 2 units: the longest shadow (theta 45) reaches 80% of the way to the edge
POLE_RADIUS = 0.04  # about 2.5 pixels wide at 64x64: thin, but never lost between pixels
VIEW_WIDTH = 2.0
SUN_STRENGTH = 3.0  # the lit plane sits near 205/255 at theta 45 and 235/255 at theta 80, never clipped
FILL = 0.06  # flat glow standing in for sky light: shadows stay dark grey (about 60/255) and noise-free

PARAM_NAMES = ["elevation_deg", "azimuth_deg"]
PERIODS = [0.0, 360.0]
DEFAULT_ELEVATIONS = "45:80:5"
DEFAULT_AZIMUTHS = "0:355:5"


def build_pole() -> SetState:
    """Create the plane, the pole, the sun and the camera; return the function that moves the sun."""
    import bpy

    plane_material = principled_material("plane", (0.8, 0.8, 0.8), roughness=1.0, emission=FILL)
    add_object(bpy.ops.mesh.primitive_plane_add, plane_material, size=2 * VIEW_WIDTH)
    pole_material = principled_material("pole", (0.6, 0.05, 0.03), roughness=0.6, emission=FILL)
    add_object(
        bpy.ops.mesh.primitive_cylinder_add,
        pole_material,
        radius=POLE_RADIUS,
        depth=POLE_HEIGHT,
        location=(0, 0, POLE_HEIGHT / 2),
        vertices=24,
    )
    scene = bpy.context.scene
    # Direct light only: bounces off the red pole would sprinkle pink noise on the plane for no visible gain.
    scene.cycles.max_bounces = 0
    scene.world = bpy.data.worlds.new("black")
    scene.world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
    sun_data = bpy.data.lights.new("sun", "SUN")
    sun_data.energy = SUN_STRENGTH
    sun_data.angle = 0.0  # a point-like sun: crisp shadow edges, and nothing for the sampler to average
    sun = bpy.data.objects.new("sun", sun_data)
    scene.collection.objects.link(sun)
    camera_data = bpy.data.cameras.new("camera")
    camera_data.type = "ORTHO"
    camera_data.ortho_scale = VIEW_WIDTH
    camera = bpy.data.objects.new("camera", camera_data)
    camera.location = (0.0, 0.0, 5.0)  # looking straight down -Z, image up = +y
    scene.collection.objects.link(camera)
    scene.camera = camera

    def set_state(params: np.ndarray, label: int) -> None:
        theta, phi = math.radians(float(params[0])), math.radians(float(params[1]))
        look_from(sun, (math.cos(theta) * math.cos(phi), math.cos(theta) * math.sin(phi), math.sin(theta)))

    return set_state


def pole_scene() -> Scene:
    """The pole scene's description."""
    return Scene(name="pole", param_names=PARAM_NAMES, periods=PERIODS, label_names=["pole"], build=build_pole)


def pole_samples(image_size: int) -> int:
    """Samples per pixel: the scene is noise-free, samples only resolve the shadow's edges."""
    return max(4, image_size // 8)


def pole_grid(elevations: str = DEFAULT_ELEVATIONS, azimuths: str = DEFAULT_AZIMUTHS) -> Grid:
    """The rows, elevation outer and azimuth inner, from option texts such as '45:80:5' or '0,90,180'."""
    elevation_values = parse_values(elevations, "--elevations")
    azimuth_values = parse_values(azimuths, "--azimuths")
    # Elevation 0 is allowed: a grazing light, its shadow leaves the picture.
    check_range(elevation_values, 0, 90, "--elevations")
    check_range(azimuth_values, 0, 360, "--azimuths", high_included=False)
    params = np.array([(e, a) for e in elevation_values for a in azimuth_values], dtype=np.float32)
    return Grid(
        params=params,
        labels=np.zeros(len(params), dtype=np.int64),
        description={"elevation_deg": elevation_values, "azimuth_deg": azimuth_values},
    )
