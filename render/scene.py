"""What a scene is (a small, picklable description) and the Blender helpers every scene shares.

A `Scene` names its parameters and labels and holds a `build` function. `build()` runs inside a render
worker, creates the objects, light and camera in an empty Blender scene, and returns `set_state(params,
label)`, which poses the scene for one row of the grid. The runner knows nothing else about scenes.

bpy is imported inside functions only: the CLI process validates input and writes files without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit.errors import UserError

SetState = Callable[[np.ndarray, int], None]


@dataclass(frozen=True)
class Scene:
    """A scene description: parameter and label names, options recorded in the file, and its builder."""

    name: str
    param_names: list[str]
    periods: list[float]  # one per parameter; 360 for an azimuth, 0 when not periodic
    label_names: list[str]
    build: Callable[[], SetState]  # module-level (or a partial of one) so that it pickles into workers
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RenderSettings:
    """How Cycles renders: all of it is recorded in the file, since all of it changes the pixels."""

    image_size: int
    samples: int
    denoiser: str  # "none" or "oidn"
    seed: int
    device: str  # "auto", "cpu" or "gpu"


def reset_blender() -> None:
    """An empty scene: no default cube, light or camera, factory preferences."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)


def configure_cycles(settings: RenderSettings, threads: int) -> str:
    """Set up Cycles for deterministic renders; returns the device actually used ('cpu', 'optix', 'cuda')."""
    import bpy

    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    cycles = scene.cycles
    cycles.samples = settings.samples
    # Fixed sample count and seed: every pixel's random sequence is then a function of the seed alone,
    # not of timing or of how many threads or workers share the job.
    cycles.use_adaptive_sampling = False
    cycles.seed = settings.seed
    cycles.use_animated_seed = False
    # Each pixel averages only what falls inside it: a wider filter smears samples from its neighbours,
    # which shows as grain along the pole's shadow at a few samples.
    cycles.pixel_filter_type = "BOX"
    cycles.filter_width = 1.0
    cycles.use_denoising = settings.denoiser == "oidn"
    if cycles.use_denoising:
        cycles.denoiser = "OPENIMAGEDENOISE"
    render = scene.render
    render.resolution_x = render.resolution_y = settings.image_size
    render.resolution_percentage = 100
    render.threads_mode = "FIXED"
    render.threads = threads
    render.dither_intensity = 0.0  # dithering adds noise to the 8-bit pixels
    # Keep scene data between renders (only the pose changes): about 10% less CPU an image, same pixels.
    render.use_persistent_data = True
    scene.view_settings.view_transform = "Standard"  # the plain sRGB curve, not AgX's filmic contrast
    scene.view_settings.look = "None"
    image = render.image_settings
    image.file_format = "PNG"
    image.color_mode = "RGB"
    image.color_depth = "8"
    image.compression = (
        0  # the PNG is read back at once and overwritten by the next render: compressing it only costs time
    )
    return _select_device(settings.device)


def _select_device(requested: str) -> str:
    import bpy

    if requested == "cpu":
        bpy.context.scene.cycles.device = "CPU"
        return "cpu"
    preferences = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("OPTIX", "CUDA"):
        try:
            preferences.compute_device_type = backend
        except TypeError:
            continue  # this Blender build lacks the backend
        preferences.refresh_devices()
        gpus = [d for d in preferences.devices if d.type == backend]
        if gpus:
            for device in preferences.devices:
                device.use = device.type == backend
            bpy.context.scene.cycles.device = "GPU"
            return backend.lower()
    if requested == "gpu":
        raise UserError("--device gpu: no CUDA or OptiX GPU is visible to Blender; use --device cpu or auto")
    bpy.context.scene.cycles.device = "CPU"
    return "cpu"


def render_to_array(scratch: Path) -> np.ndarray:
    """Render the current scene; uint8 RGB (H, W, 3), top row first."""
    import bpy
    from PIL import Image

    bpy.context.scene.render.filepath = str(scratch)
    bpy.ops.render.render(write_still=True)
    with Image.open(scratch) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def principled_material(
    name: str,
    color: tuple[float, float, float],
    roughness: float = 0.5,
    metallic: float = 0.0,
    emission: float = 0.0,
):
    """A Principled BSDF material; `emission` adds a flat glow of its own colour (noise-free fill light)."""
    import bpy

    material = bpy.data.materials.new(name)
    bsdf = material.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*color, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    bsdf.inputs["Metallic"].default_value = metallic
    if emission > 0:
        bsdf.inputs["Emission Color"].default_value = (*color, 1.0)
        bsdf.inputs["Emission Strength"].default_value = emission
    return material


def add_object(mesh_op: Callable[..., object], material, **kwargs):
    """Add a mesh primitive (a `bpy.ops.mesh.primitive_*_add`) with one material; returns the object."""
    import bpy

    mesh_op(**kwargs)
    obj = bpy.context.object
    obj.data.materials.append(material)
    return obj


def look_from(obj, direction: tuple[float, float, float]) -> None:
    """Turn a light or camera placed along `direction` from its target so that it faces the target (-Z)."""
    from mathutils import Vector

    obj.rotation_euler = Vector(direction).to_track_quat("Z", "Y").to_euler()


DENOISERS = ("none", "oidn")
DEVICES = ("auto", "cpu", "gpu")
MIN_SIZE = 16
MAX_SIZE = 4096  # Cycles would try to allocate a frame of any size and hang or run out of memory


def make_render_settings(
    image_size: int, samples: int | None, denoiser: str, seed: int, device: str, default_samples: Callable[[int], int]
) -> RenderSettings:
    """Checked settings; `samples=None` takes the scene's default for the image size."""
    if image_size < MIN_SIZE:
        raise UserError(f"--size must be at least {MIN_SIZE}, got {image_size}")
    if image_size > MAX_SIZE:
        raise UserError(f"--size must be at most {MAX_SIZE}, got {image_size}")
    if samples is None:
        samples = default_samples(image_size)
    if samples < 1:
        raise UserError(f"--samples must be at least 1, got {samples}")
    if denoiser not in DENOISERS:
        raise UserError(f"--denoiser must be one of {', '.join(DENOISERS)}, got '{denoiser}'")
    if device not in DEVICES:
        raise UserError(f"--device must be one of {', '.join(DEVICES)}, got '{device}'")
    if seed < 0:
        raise UserError(f"--seed must be 0 or more, got {seed}")
    return RenderSettings(image_size=image_size, samples=samples, denoiser=denoiser, seed=seed, device=device)
