"""The turntable scene: COIL-100-like views of objects built from Blender primitives and modifiers.

Each object stands on a turntable against black and is seen by a fixed camera slightly above; the lights
stay with the camera, as in COIL-100, so turning the object changes both its outline and its shading.
Every object carries a pattern in its own coordinates, so that even round ones look different as they turn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np

from toolkit.errors import UserError
from toolkit.render.grid import Grid, turntable_azimuths
from toolkit.render.scene import Scene, SetState, add_object, look_from, principled_material

CAMERA_DISTANCE = 2.3
CAMERA_ELEVATION_DEG = 25.0
TARGET_HEIGHT = 0.45  # the camera aims at the middle of a unit-high object


def _patterned(name: str, color: tuple, second: tuple, pattern: str, scale: float, **bsdf: float):
    """A material whose base colour alternates between two colours by a texture in object coordinates."""
    material = principled_material(name, color, **bsdf)
    nodes, links = material.node_tree.nodes, material.node_tree.links
    coordinates = nodes.new("ShaderNodeTexCoord")
    texture = nodes.new(
        {"checker": "ShaderNodeTexChecker", "brick": "ShaderNodeTexBrick"}.get(pattern, "ShaderNodeTexWave")
    )
    texture.inputs["Scale"].default_value = scale
    links.new(coordinates.outputs["Object"], texture.inputs["Vector"])
    if pattern == "stripes":
        mix = nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        mix.inputs["A"].default_value = (*color, 1.0)
        mix.inputs["B"].default_value = (*second, 1.0)
        links.new(texture.outputs["Fac"], mix.inputs["Factor"])
        colour_out = mix.outputs["Result"]
    else:
        texture.inputs["Color1"].default_value = (*color, 1.0)
        texture.inputs["Color2"].default_value = (*second, 1.0)
        colour_out = texture.outputs["Color"]
    links.new(colour_out, nodes["Principled BSDF"].inputs["Base Color"])
    return material


def _modifier(obj, kind: str, **settings: object):
    modifier = obj.modifiers.new(kind.lower(), kind)
    for key, value in settings.items():
        setattr(modifier, key, value)
    return modifier


def _red_block(mesh, material):
    obj = add_object(
        mesh.primitive_cube_add,
        material("red_block", (0.7, 0.05, 0.04), (0.9, 0.9, 0.85), "checker", 3.0, roughness=0.35),
        size=0.7,
        location=(0, 0, 0.35),
    )
    obj.scale = (1.0, 0.6, 1.0)
    _modifier(obj, "BEVEL", width=0.06, segments=3)
    return obj


def _gold_monkey(mesh, material):
    obj = add_object(
        mesh.primitive_monkey_add,
        material("gold_monkey", (0.9, 0.6, 0.2), (0.6, 0.3, 0.1), "stripes", 4.0, roughness=0.3, metallic=1.0),
        size=0.9,
        location=(0, 0, 0.45),
    )
    _modifier(obj, "SUBSURF", levels=1, render_levels=1)
    return obj


def _blue_torus(mesh, material):
    return add_object(
        mesh.primitive_torus_add,
        material("blue_torus", (0.05, 0.15, 0.7), (0.9, 0.8, 0.1), "stripes", 3.0, roughness=0.25),
        major_radius=0.4,
        minor_radius=0.13,
        location=(0, 0, 0.53),
        rotation=(math.pi / 2, 0, 0),
    )


def _green_twist(mesh, material):
    obj = add_object(
        mesh.primitive_cube_add,
        material("green_twist", (0.1, 0.5, 0.12), (0.02, 0.15, 0.03), "checker", 4.0, roughness=0.45),
        size=1.0,
        location=(0, 0, 0.5),
    )
    obj.scale = (0.35, 0.22, 1.0)
    _modifier(obj, "SUBSURF", subdivision_type="SIMPLE", levels=3, render_levels=3)
    _modifier(obj, "SIMPLE_DEFORM", deform_method="TWIST", angle=math.radians(120), deform_axis="Z")
    return obj


def _brick_can(mesh, material):
    obj = add_object(
        mesh.primitive_cylinder_add,
        material("brick_can", (0.75, 0.3, 0.08), (0.9, 0.85, 0.7), "brick", 2.5, roughness=0.8),
        radius=0.33,
        depth=0.85,
        location=(0, 0, 0.425),
        vertices=48,
    )
    _modifier(obj, "BEVEL", width=0.03, segments=2)
    return obj


def _copper_cage(mesh, material):
    obj = add_object(
        mesh.primitive_ico_sphere_add,
        material("copper_cage", (0.95, 0.45, 0.25), (0.5, 0.2, 0.1), "checker", 2.0, roughness=0.25, metallic=1.0),
        radius=0.45,
        subdivisions=1,
        location=(0, 0, 0.45),
    )
    obj.scale = (1.0, 0.75, 1.0)
    _modifier(obj, "WIREFRAME", thickness=0.05)
    return obj


def _lumpy_stone(mesh, material):
    import bpy

    obj = add_object(
        mesh.primitive_uv_sphere_add,
        material("lumpy_stone", (0.45, 0.4, 0.35), (0.25, 0.2, 0.17), "stripes", 6.0, roughness=0.9),
        radius=0.4,
        location=(0, 0, 0.35),
        segments=48,
        ring_count=24,
    )
    obj.scale = (1.3, 0.8, 0.9)
    clouds = bpy.data.textures.new("stone_clouds", "CLOUDS")
    clouds.noise_scale = 0.35
    _modifier(obj, "DISPLACE", texture=clouds, strength=0.15)
    return obj


def _white_stairs(mesh, material):
    obj = add_object(
        mesh.primitive_cube_add,
        material("white_stairs", (0.85, 0.85, 0.85), (0.35, 0.1, 0.5), "checker", 5.0, roughness=0.5),
        size=0.25,
        location=(-0.375, 0, 0.125),
    )
    obj.scale = (1.0, 2.0, 1.0)
    _modifier(obj, "ARRAY", count=4, relative_offset_displace=(1.0, 0.0, 1.0))
    return obj


def _purple_cone(mesh, material):
    obj = add_object(
        mesh.primitive_cone_add,
        material("purple_cone", (0.4, 0.05, 0.55), (0.95, 0.95, 0.95), "stripes", 2.5, roughness=0.4),
        radius1=0.4,
        radius2=0.05,
        depth=0.9,
        location=(0, 0, 0.45),
        vertices=48,
    )
    _modifier(obj, "BEVEL", width=0.03, segments=2)
    return obj


def _teal_capsule(mesh, material):
    obj = add_object(
        mesh.primitive_uv_sphere_add,
        material("teal_capsule", (0.05, 0.5, 0.5), (0.9, 0.5, 0.6), "checker", 3.0, roughness=0.15),
        radius=0.5,
        location=(0, 0, 0.5),
    )
    obj.scale = (0.45, 0.3, 1.0)
    _modifier(obj, "SUBSURF", levels=1, render_levels=1)
    return obj


# name -> builder(mesh, material): adds the object with `bpy.ops.mesh` and a `_patterned` material.
OBJECTS: dict[str, Callable] = {
    "red_block": _red_block,
    "gold_monkey": _gold_monkey,
    "blue_torus": _blue_torus,
    "green_twist": _green_twist,
    "brick_can": _brick_can,
    "copper_cage": _copper_cage,
    "lumpy_stone": _lumpy_stone,
    "white_stairs": _white_stairs,
    "purple_cone": _purple_cone,
    "teal_capsule": _teal_capsule,
}
DEFAULT_OBJECTS = 8


def build_turntable(n_objects: int) -> SetState:
    """Create the first `n_objects` objects on a turntable, the camera and lights; return the poser."""
    import bpy

    scene = bpy.context.scene
    scene.cycles.max_bounces = 4
    scene.world = bpy.data.worlds.new("black")
    scene.world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
    turntable = bpy.data.objects.new("turntable", None)
    scene.collection.objects.link(turntable)
    objects = []
    for make in list(OBJECTS.values())[:n_objects]:
        obj = make(bpy.ops.mesh, _patterned)
        obj.parent = turntable
        objects.append(obj)

    elevation = math.radians(CAMERA_ELEVATION_DEG)
    camera_data = bpy.data.cameras.new("camera")
    camera_data.lens = 50
    camera = bpy.data.objects.new("camera", camera_data)
    camera.location = (
        0.0,
        -CAMERA_DISTANCE * math.cos(elevation),
        TARGET_HEIGHT + CAMERA_DISTANCE * math.sin(elevation),
    )
    look_from(camera, (0.0, -math.cos(elevation), math.sin(elevation)))
    scene.collection.objects.link(camera)
    scene.camera = camera
    # Key light high on the camera's left, a weaker fill on its right: the classic product-shot pair.
    for name, energy, position in (("key", 220.0, (-2.0, -2.0, 2.5)), ("fill", 70.0, (2.5, -1.5, 1.0))):
        light_data = bpy.data.lights.new(name, "AREA")
        light_data.energy = energy
        light_data.size = 1.5
        light = bpy.data.objects.new(name, light_data)
        light.location = position
        look_from(light, tuple(c - t for c, t in zip(position, (0, 0, TARGET_HEIGHT), strict=True)))
        scene.collection.objects.link(light)

    def set_state(params: np.ndarray, label: int) -> None:
        for k, obj in enumerate(objects):
            obj.hide_render = k != label
        turntable.rotation_euler = (0.0, 0.0, math.radians(float(params[0])))

    return set_state


def turntable_samples(image_size: int) -> int:
    """Samples per pixel: area lights and glossy surfaces need more than the pole's hard sun."""
    return max(16, image_size // 2)


def turntable_scene(n_objects: int = DEFAULT_OBJECTS) -> Scene:
    """The turntable scene's description with the first `n_objects` objects."""
    if not 1 <= n_objects <= len(OBJECTS):
        raise UserError(f"--objects must lie in 1..{len(OBJECTS)}, got {n_objects}")
    return Scene(
        name="turntable",
        param_names=["azimuth_deg"],
        periods=[360.0],
        label_names=list(OBJECTS)[:n_objects],
        build=partial(build_turntable, n_objects),
        options={"objects": n_objects},
    )


def turntable_grid(n_objects: int, step: float = 5.0) -> Grid:
    """The rows, object outer and azimuth inner: `360 / step` views of each object."""
    azimuths = turntable_azimuths(step)
    params = np.array([[a] for _ in range(n_objects) for a in azimuths], dtype=np.float32)
    labels = np.repeat(np.arange(n_objects, dtype=np.int64), len(azimuths))
    return Grid(params=params, labels=labels, description={"azimuth_deg": azimuths})
