"""The turntable scene: COIL-100-like views of objects built from Blender primitives and modifiers.

Each object stands on a turntable against black and is seen by a fixed camera slightly above; the lights
stay with the camera, as in COIL-100, so turning the object changes both its outline and its shading.
No object has a symmetry under a turn about the turntable's axis, in its shape or in its pattern (a
texture in its own coordinates, shifted off the axis and shaded darker on one side), so that, as with
COIL-100's objects, no two of its views are alike: a test view never has a twin among the training views.
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


def _patterned(
    name: str,
    color: tuple,
    second: tuple,
    pattern: str,
    scale: float,
    *,
    offset: tuple = (0.11, 0.23, 0.07),
    shade: float = 0.3,
    towards: float = 35.0,
    extent: float = 0.5,
    wrap: float = 0.0,
    badge: tuple | None = None,
    badge_at: tuple = (0.0, 0.0, 0.0),
    badge_radius: float = 0.15,
    **bsdf: float,
):
    """A material whose base colour alternates between two colours by a texture in object coordinates.

    No view may repeat as the object turns, so neither may its surface: the texture is shifted by `offset`,
    so that the object's axis is no centre of symmetry of the checker or the stripes, and it is shaded along
    the horizontal direction `towards` degrees from the object's +X towards +Y, from `shade` times its colour
    at -extent to its full colour at +extent, so that one side is darker than the other. The direction lies
    off the object's axes, so that neither does the shading have the mirror symmetry most shapes here have.
    `wrap` > 0 wraps a 2D texture (brick) round the vertical axis at the radius `wrap`, as a label round a
    can; else the texture reads x, y (and z). A `badge` colour paints the surface within `badge_radius` of
    the point `badge_at`: a one-sided marking, for a surface whose texture alone would repeat as it turns.
    """
    material = principled_material(name, color, **bsdf)
    nodes, links = material.node_tree.nodes, material.node_tree.links
    coordinates = nodes.new("ShaderNodeTexCoord").outputs["Object"]
    texture = nodes.new(
        {"checker": "ShaderNodeTexChecker", "brick": "ShaderNodeTexBrick"}.get(pattern, "ShaderNodeTexWave")
    )
    texture.inputs["Scale"].default_value = scale
    shifted = nodes.new("ShaderNodeVectorMath")
    shifted.operation = "ADD"
    shifted.inputs[1].default_value = offset
    xyz = nodes.new("ShaderNodeSeparateXYZ")
    links.new(coordinates, xyz.inputs["Vector"])
    if wrap > 0:  # (arc length round the axis, height)
        angle = nodes.new("ShaderNodeMath")
        angle.operation = "ARCTAN2"
        links.new(xyz.outputs["Y"], angle.inputs[0])
        links.new(xyz.outputs["X"], angle.inputs[1])
        arc = nodes.new("ShaderNodeMath")
        arc.operation = "MULTIPLY"
        arc.inputs[1].default_value = wrap
        links.new(angle.outputs["Value"], arc.inputs[0])
        unrolled = nodes.new("ShaderNodeCombineXYZ")
        links.new(arc.outputs["Value"], unrolled.inputs["X"])
        links.new(xyz.outputs["Z"], unrolled.inputs["Y"])
        links.new(unrolled.outputs["Vector"], shifted.inputs[0])
    else:
        links.new(coordinates, shifted.inputs[0])
    links.new(shifted.outputs["Vector"], texture.inputs["Vector"])
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
    if badge is not None:
        distance = nodes.new("ShaderNodeVectorMath")
        distance.operation = "DISTANCE"
        distance.inputs[1].default_value = badge_at
        links.new(coordinates, distance.inputs[0])
        inside = nodes.new("ShaderNodeMath")
        inside.operation = "LESS_THAN"
        inside.inputs[1].default_value = badge_radius
        links.new(distance.outputs["Value"], inside.inputs[0])
        painted = nodes.new("ShaderNodeMix")
        painted.data_type = "RGBA"
        painted.inputs["B"].default_value = (*badge, 1.0)
        links.new(inside.outputs["Value"], painted.inputs["Factor"])
        links.new(colour_out, painted.inputs["A"])
        colour_out = painted.outputs["Result"]
    ramp = nodes.new("ShaderNodeMapRange")  # clamped: shade .. 1 over -extent .. +extent
    ramp.inputs["From Min"].default_value = -extent
    ramp.inputs["From Max"].default_value = extent
    ramp.inputs["To Min"].default_value = shade
    ramp.inputs["To Max"].default_value = 1.0
    along = nodes.new("ShaderNodeVectorMath")
    along.operation = "DOT_PRODUCT"
    along.inputs[1].default_value = (math.cos(math.radians(towards)), math.sin(math.radians(towards)), 0.0)
    links.new(coordinates, along.inputs[0])
    links.new(along.outputs["Value"], ramp.inputs["Value"])
    shaded = nodes.new("ShaderNodeMix")
    shaded.data_type = "RGBA"
    shaded.blend_type = "MULTIPLY"
    shaded.inputs["Factor"].default_value = 1.0
    links.new(colour_out, shaded.inputs["A"])
    links.new(ramp.outputs["Result"], shaded.inputs["B"])
    links.new(shaded.outputs["Result"], nodes["Principled BSDF"].inputs["Base Color"])
    return material


def _modifier(obj, kind: str, **settings: object):
    modifier = obj.modifiers.new(kind.lower(), kind)
    for key, value in settings.items():
        setattr(modifier, key, value)
    return modifier


def _reshape(obj, move: Callable[[float, float, float], tuple[float, float, float]]) -> None:
    """Move every vertex of the object's mesh, in its own coordinates (before its scale and modifiers)."""
    for vertex in obj.data.vertices:
        vertex.co = move(*vertex.co)
    obj.data.update()  # else a mesh without modifiers would render unchanged


def _join(obj, *parts):
    """Join `parts` (objects just added, each with its own material) into `obj`, which keeps its modifiers."""
    import bpy

    bpy.ops.object.select_all(action="DESELECT")
    for each in (obj, *parts):
        each.select_set(True)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.join()
    return obj


# Every object below lacks any symmetry under a turn about the vertical axis (half or quarter turns
# included) in its shape as well as in its texture (`_patterned`), so that no two of its views are alike,
# as with COIL-100's objects.


def _red_block(mesh, material):
    """A block whose top slopes down from the -x end to half height at the +x end."""
    obj = add_object(
        mesh.primitive_cube_add,
        material("red_block", (0.7, 0.05, 0.04), (0.9, 0.9, 0.85), "checker", 3.0, extent=0.35, roughness=0.35),
        size=0.7,
        location=(0, 0, 0.35),
    )
    _reshape(obj, lambda x, y, z: (x, y, z - 0.35 if z > 0 and x > 0 else z))
    obj.scale = (1.0, 0.6, 1.0)
    _modifier(obj, "BEVEL", width=0.06, segments=3)
    return obj


def _gold_monkey(mesh, material):
    """Suzanne with her head tilted to one side: the tilt leaves her no vertical mirror plane."""
    obj = add_object(
        mesh.primitive_monkey_add,
        material(
            "gold_monkey", (0.9, 0.6, 0.2), (0.6, 0.3, 0.1), "stripes", 4.0, extent=0.6, roughness=0.3, metallic=1.0
        ),
        size=0.9,
        location=(0, 0, 0.45),
        rotation=(0, math.radians(25), 0),
    )
    _modifier(obj, "SUBSURF", levels=1, render_levels=1)
    return obj


def _blue_torus(mesh, material):
    """An upright ring, thick on its +x side and thin on its -x side, like a signet ring."""
    major, minor = 0.4, 0.13

    def thicken(x: float, y: float, z: float) -> tuple[float, float, float]:
        # The torus lies in its own xy plane: scale each vertex's offset from the ring's centre line.
        radius = math.hypot(x, y)
        cx, cy = major * x / radius, major * y / radius
        k = 1.0 + 0.6 * x / radius
        return cx + k * (x - cx), cy + k * (y - cy), k * z

    obj = add_object(
        mesh.primitive_torus_add,
        material("blue_torus", (0.05, 0.15, 0.7), (0.9, 0.8, 0.1), "stripes", 3.0, extent=0.55, roughness=0.25),
        major_radius=major,
        minor_radius=minor,
        location=(0, 0, 0.53),
        rotation=(math.pi / 2, 0, 0),
    )
    _reshape(obj, thicken)
    return obj


def _green_twist(mesh, material):
    """A twisted bar of trapezoidal section (wide at -x, narrow at +x) whose top leans out to +x."""
    obj = add_object(
        mesh.primitive_cube_add,
        material("green_twist", (0.1, 0.5, 0.12), (0.02, 0.15, 0.03), "checker", 4.0, roughness=0.45),
        size=1.0,
        location=(0, 0, 0.5),
    )
    _reshape(obj, lambda x, y, z: (x + 0.8 * (z + 0.5), 0.35 * y if x > 0 else y, z))
    obj.scale = (0.4, 0.3, 1.0)
    _modifier(obj, "SUBSURF", subdivision_type="SIMPLE", levels=3, render_levels=3)
    _modifier(obj, "SIMPLE_DEFORM", deform_method="TWIST", angle=math.radians(120), deform_axis="Z")
    return obj


def _brick_mug(mesh, material):
    """An open brick-patterned mug with a white glazed handle and, on another side, a round blue badge."""
    import bmesh
    import bpy

    radius = 0.3
    handle, badge = math.radians(40), math.radians(250)  # round from +x; the badge faces the camera at 0 deg
    obj = add_object(
        mesh.primitive_cylinder_add,
        material(
            "brick_mug",
            (0.75, 0.3, 0.08),
            (0.9, 0.85, 0.7),
            "brick",
            2.5,
            wrap=radius,
            badge=(0.05, 0.15, 0.6),
            badge_at=(radius * math.cos(badge), radius * math.sin(badge), 0.05),
            badge_radius=0.2,
            roughness=0.8,
        ),
        radius=radius,
        depth=0.75,
        location=(0, 0, 0.375),
        vertices=48,
    )
    shape = bmesh.new()
    shape.from_mesh(obj.data)
    bmesh.ops.delete(shape, geom=[f for f in shape.faces if f.normal.z > 0.9], context="FACES_ONLY")
    shape.to_mesh(obj.data)
    shape.free()
    mesh.primitive_torus_add(
        major_radius=0.2,
        minor_radius=0.05,
        location=((radius + 0.03) * math.cos(handle), (radius + 0.03) * math.sin(handle), 0.4),
        rotation=(math.pi / 2, 0, handle),
        major_segments=32,
        minor_segments=10,
    )
    bpy.context.object.data.materials.append(principled_material("brick_mug_handle", (0.85, 0.85, 0.8), roughness=0.3))
    _join(obj, bpy.context.object)
    _modifier(obj, "SOLIDIFY", thickness=0.03, offset=-1.0)
    return obj


def _copper_cage(mesh, material):
    """A wire cage shaped as a teardrop seen from above: round at +x, pointed at -x."""
    obj = add_object(
        mesh.primitive_ico_sphere_add,
        material(
            "copper_cage", (0.95, 0.45, 0.25), (0.5, 0.2, 0.1), "checker", 2.0, extent=0.5, roughness=0.25, metallic=1.0
        ),
        radius=0.45,
        subdivisions=1,
        location=(0, 0, 0.45),
    )
    _reshape(obj, lambda x, y, z: (1.15 * x, y * max(0.2, 0.7 + (0.6 if x > 0 else 0.9) * x / 0.45), z))
    _modifier(obj, "WIREFRAME", thickness=0.05, use_even_offset=False)  # even offset spikes at the sharp tip
    return obj


def _lumpy_stone(mesh, material):
    """A lumpy egg-shaped stone, fat at +x."""
    import bpy

    obj = add_object(
        mesh.primitive_uv_sphere_add,
        material("lumpy_stone", (0.45, 0.4, 0.35), (0.25, 0.2, 0.17), "stripes", 6.0, extent=0.5, roughness=0.9),
        radius=0.4,
        location=(0, 0, 0.35),
        segments=48,
        ring_count=24,
    )
    _reshape(obj, lambda x, y, z: (x, y * (1.0 + 0.5 * x / 0.4), z * (1.0 + 0.35 * x / 0.4)))
    obj.scale = (1.3, 0.8, 0.9)
    clouds = bpy.data.textures.new("stone_clouds", "CLOUDS")
    clouds.noise_scale = 0.35
    _modifier(obj, "DISPLACE", texture=clouds, strength=0.15)
    return obj


def _white_stairs(mesh, material):
    """Four steps rising towards +x."""
    obj = add_object(
        mesh.primitive_cube_add,
        material("white_stairs", (0.85, 0.85, 0.85), (0.35, 0.1, 0.5), "checker", 5.0, extent=0.5, roughness=0.5),
        size=0.25,
        location=(-0.375, 0, 0.125),
    )
    obj.scale = (1.0, 2.0, 1.0)
    _modifier(obj, "ARRAY", count=4, relative_offset_displace=(1.0, 0.0, 1.0))
    return obj


def _purple_cone(mesh, material):
    """An oblique cone on an oval base: its tip leans out over the base's edge, off the oval's axes."""
    obj = add_object(
        mesh.primitive_cone_add,
        material("purple_cone", (0.4, 0.05, 0.55), (0.95, 0.95, 0.95), "stripes", 2.5, roughness=0.4),
        radius1=0.4,
        radius2=0.05,
        depth=0.9,
        location=(0, 0, 0.45),
        vertices=48,
    )
    _reshape(obj, lambda x, y, z: (x + 0.25 * (z + 0.45) / 0.9, 0.75 * y + 0.2 * (z + 0.45) / 0.9, z))
    _modifier(obj, "BEVEL", width=0.03, segments=2)
    return obj


def _teal_bean(mesh, material):
    """A capsule bent into a bean, its ends curving out to +x, the top end also to +y."""
    obj = add_object(
        mesh.primitive_uv_sphere_add,
        material("teal_bean", (0.05, 0.5, 0.5), (0.9, 0.5, 0.6), "checker", 3.0, roughness=0.15),
        radius=0.5,
        location=(0, 0, 0.5),
    )
    _reshape(obj, lambda x, y, z: (x + 0.5 * (z / 0.5) ** 2, y + 0.4 * z, z))
    obj.scale = (0.45, 0.3, 1.0)
    _modifier(obj, "SUBSURF", levels=1, render_levels=1)
    return obj


# name -> builder(mesh, material): adds the object with `bpy.ops.mesh` and a `_patterned` material.
OBJECTS: dict[str, Callable] = {
    "red_block": _red_block,
    "gold_monkey": _gold_monkey,
    "blue_torus": _blue_torus,
    "green_twist": _green_twist,
    "brick_mug": _brick_mug,
    "copper_cage": _copper_cage,
    "lumpy_stone": _lumpy_stone,
    "white_stairs": _white_stairs,
    "purple_cone": _purple_cone,
    "teal_bean": _teal_bean,
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
