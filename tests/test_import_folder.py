"""`toolkit import-folder` on a user's own images: a folder of mixed sizes and formats imported, trained on,
evaluated and augmented end to end; every kind of bad folder refused in one line; non-finite parameters and
output names a command cannot write refused by every command."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from helpers import invoke_cli, write_dataset
from toolkit.datasets import open_dataset
from toolkit.datasets.folder import square_image

AZIMUTHS = list(range(0, 360, 30))
ELEVATIONS = [45, 60, 75]
MATERIALS = ["matte", "shiny"]
# Source sizes and formats: square PNGs of two sizes, a landscape JPEG, a 16-bit grey PNG, a transparent PNG.
FORMATS = [((40, 40), "png", "RGB"), ((48, 36), "jpg", "RGB"), ((64, 64), "png", "RGB"), ((64, 64), "png", "I;16")]
FORMATS.append(((40, 40), "PNG", "RGBA"))


def lit_disc(width: int, height: int, elevation: float, azimuth: float, shiny: bool) -> np.ndarray:
    """A sphere on a grey floor under a distant light: shading and shadow move with (elevation, azimuth)."""
    side = min(width, height)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    x, y = (x - (width - 1) / 2) / (0.35 * side), (y - (height - 1) / 2) / (0.35 * side)
    el, az = np.radians(elevation), np.radians(azimuth)
    light = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    shift = 1.2 / np.tan(el)  # the shadow falls away from the light, longer when the light is low
    shadow = (x + shift * light[0]) ** 2 + (y + shift * light[1]) ** 2 < 1
    value = np.where(shadow, 0.25, 0.55) * np.ones_like(x)
    r2 = x**2 + y**2
    z = np.sqrt(np.clip(1 - r2, 0, 1))
    lambert = np.clip(x * light[0] + y * light[1] + z * light[2], 0, 1)
    sphere = 0.1 + 0.8 * lambert + (0.6 * lambert**30 if shiny else 0)
    value = np.where(r2 < 1, sphere, value)
    tint = np.array([1.0, 0.75, 0.5]) if shiny else np.array([0.5, 0.8, 1.0])
    return (np.clip(value[..., None] * tint, 0, 1) * 255).round().astype(np.uint8)


def save(pixels: np.ndarray, path: Path, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        Image.fromarray(pixels.mean(axis=2).astype(np.uint16) * 257).save(path)  # 16-bit grey
    elif mode == "RGBA":
        alpha = np.full(pixels.shape[:2], 255, np.uint8)
        alpha[:2] = 0  # a transparent top border: black once imported
        Image.fromarray(np.dstack([pixels, alpha])).save(path)
    else:
        Image.fromarray(pixels).save(path, quality=95)


def make_folder(folder: Path) -> list[dict]:
    """12 azimuths x 3 elevations x 2 materials, in subfolders per material; the CSV rows, as written."""
    rows = []
    for k, (material, elevation, azimuth) in enumerate(
        (m, e, a) for m in MATERIALS for e in ELEVATIONS for a in AZIMUTHS
    ):
        (w, h), ext, mode = FORMATS[k % len(FORMATS)]
        name = f"{material}/e{elevation}_a{azimuth:03d}.{ext}"
        save(lit_disc(w, h, elevation, azimuth, material == "shiny"), folder / name, mode)
        rows.append({"file_name": name, "azimuth_deg": azimuth, "elevation_deg": elevation, "material": material})
    write_csv(folder, rows)
    return rows


def write_csv(folder: Path, rows: list[dict]) -> None:
    with (folder / "metadata.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


IMPORT = ["--size", "32", "--periodic", "azimuth_deg:360", "--label", "material"]


def test_a_folder_of_mixed_images_trains_evaluates_and_augments(tmp_path: Path) -> None:
    rows = make_folder(tmp_path / "photos")
    data, run = tmp_path / "photos.h5", tmp_path / "run"
    done = invoke_cli("import-folder", str(tmp_path / "photos"), "--out", str(data), *IMPORT)
    assert done.returncode == 0, done.stderr
    d = open_dataset(data)
    assert d.n == 72 and d.image_size == 32
    assert d.param_names == ["azimuth_deg", "elevation_deg"] and d.periods.tolist() == [360.0, 0.0]
    np.testing.assert_array_equal(d.params, [[r["azimuth_deg"], r["elevation_deg"]] for r in rows])  # CSV order
    assert d.label_names == ["matte", "shiny"]
    np.testing.assert_array_equal(d.labels, [MATERIALS.index(r["material"]) for r in rows])
    assert d.settings["fit"] == "crop" and d.settings["periodic"] == {"azimuth_deg": 360.0}
    assert d.settings["image_size"] == 32 and d.settings["folder"] == str((tmp_path / "photos").resolve())
    images = d.read_images()
    with Image.open(tmp_path / "photos" / rows[1]["file_name"]) as im:  # the 48x36 JPEG: centre-cropped
        np.testing.assert_array_equal(images[1], square_image(im.convert("RGB"), 32))
    assert images[4, 0].max() == 0 and images[4, 5].min() > 0  # RGBA: the transparent border on black
    assert len({im.tobytes() for im in images}) == 72  # every view differs

    tiny = ["--width", "4", "--latent", "8", "--device", "cpu"]
    trained = invoke_cli("train", "--data", str(data), "--epochs", "2", "--batch-size", "8", "--out", str(run), *tiny)
    assert trained.returncode == 0, trained.stderr
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]

    out = tmp_path / "evaluation"
    measures = ["--min-interval", "60", "--interval", "90", "--retrieval-interval", "60", "--no-references"]
    evaluated = invoke_cli("evaluate", str(run), "--out", str(out), *measures, "--device", "cpu")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads((out / "report.json").read_text())
    grid = report["runs"][0]["grid"]
    assert grid["labels"] == ["matte", "shiny"] and grid["images"] == 72
    assert {a["name"]: (a["step"], a["periodic"]) for a in grid["axes"]} == {
        "azimuth_deg": (30.0, True),
        "elevation_deg": (15.0, False),
    }
    assert report["runs"][0]["axes"]["azimuth_deg"]["per_length"]["length"] == [60.0, 90.0]

    aug = tmp_path / "aug.h5"
    augmented = invoke_cli("augment", "--run", str(run), "--n", "20", "--out", str(aug), "--max-gap", "30", *tiny[-2:])
    assert augmented.returncode == 0, augmented.stderr
    a = open_dataset(aug)
    assert a.n == 20 and a.label_names == d.label_names and a.param_names == d.param_names
    source = a.extra["source_index"]
    np.testing.assert_array_equal(a.labels, d.labels[source[:, 0]])
    gap = np.abs((d.params[source[:, 1], 0] - d.params[source[:, 0], 0] + 180) % 360 - 180)
    assert (gap <= 30).all()  # neighbours: the periodic azimuth's gap measured around the circle
    assert ((a.params[:, 0] >= 0) & (a.params[:, 0] < 360)).all()  # interpolated azimuths wrap
    assert ((a.params[:, 1] >= 45) & (a.params[:, 1] <= 75)).all()

    random_folder = tmp_path / "random"  # factors at random values: no grid for the interval measures
    rng = np.random.default_rng(0)
    random_rows = [{"file_name": f"{k}.png", "spin": float(rng.uniform(0, 360))} for k in range(12)]
    for row in random_rows:
        save(lit_disc(32, 32, 60, row["spin"], False), random_folder / row["file_name"], "RGB")
    write_csv(random_folder, random_rows)
    assert invoke_cli("import-folder", str(random_folder), "--out", str(tmp_path / "random.h5")).returncode == 0
    evaluated = invoke_cli("evaluate", str(run), "--data", str(tmp_path / "random.h5"), "--out", str(out))
    assert evaluated.returncode == 1 and "Traceback" not in evaluated.stderr
    assert "'spin' is not on a regular grid" in evaluated.stderr
    assert "interval measures need images at evenly spaced values" in evaluated.stderr


def test_letterbox_pads_with_black_and_own_size_is_the_default(tmp_path: Path) -> None:
    folder = tmp_path / "wide"
    save(np.full((20, 40, 3), 200, np.uint8), folder / "a.png", "RGB")
    write_csv(folder, [{"file_name": "a.png", "x": 1}])
    done = invoke_cli(
        "import-folder", str(folder), "--out", str(tmp_path / "w.h5"), "--size", "16", "--fit", "letterbox"
    )
    assert done.returncode == 0, done.stderr
    image = open_dataset(tmp_path / "w.h5").read_images()[0]
    assert image[:4].max() == 0 and image[-4:].max() == 0 and (image[5:11] == 200).all()  # bands above and below
    refused = invoke_cli("import-folder", str(folder), "--out", str(tmp_path / "x.h5"))
    assert refused.returncode == 1 and "not all square and of one size (40x20): give --size N" in refused.stderr
    square = tmp_path / "square"
    save(np.zeros((24, 24, 3), np.uint8), square / "a.jpeg", "RGB")
    write_csv(square, [{"file_name": "a.jpeg", "x": 1}])
    assert invoke_cli("import-folder", str(square), "--out", str(tmp_path / "s.h5")).returncode == 0
    d = open_dataset(tmp_path / "s.h5")
    assert d.image_size == 24 and d.label_names == ["0"] and d.labels.tolist() == [0]


def small_folder(folder: Path) -> list[dict]:
    rows = [{"file_name": f"v{k}.png", "azimuth_deg": 90 * k, "elevation_deg": 45} for k in range(4)]
    for row in rows:
        save(np.full((16, 16, 3), 40 * int(row["file_name"][1]), np.uint8), folder / row["file_name"], "RGB")
    write_csv(folder, rows)
    return rows


def _csv_edit(edit):
    def spoil(folder: Path) -> None:
        rows = list(csv.DictReader((folder / "metadata.csv").read_text().splitlines()))
        edit(rows)  # in place
        write_csv(folder, rows)

    return spoil


def _link_outside(folder: Path) -> None:
    outside = folder.parent / "elsewhere.png"
    save(np.zeros((16, 16, 3), np.uint8), outside, "RGB")
    (folder / "v3.png").unlink()
    (folder / "v3.png").symlink_to(outside)


BAD_FOLDERS = {
    "folder-missing": (shutil.rmtree, [], "no such folder"),
    "no-metadata": (lambda f: (f / "metadata.csv").unlink(), [], "no metadata.csv"),
    "no-file-name-column": (
        lambda f: (f / "metadata.csv").write_text("name,azimuth_deg\nv0.png,0\n"),
        [],
        "metadata.csv has no file_name column (its columns: name, azimuth_deg)",
    ),
    "empty-csv": (lambda f: (f / "metadata.csv").write_text(""), [], "metadata.csv is empty"),
    "header-only": (
        lambda f: (f / "metadata.csv").write_text("file_name,azimuth_deg\n"),
        [],
        "metadata.csv lists no images",
    ),
    "listed-file-missing": (lambda f: (f / "v2.png").unlink(), [], "1 listed file(s) missing (v2.png)"),
    "corrupt-image": (
        lambda f: (f / "v1.png").write_bytes((f / "v1.png").read_bytes()[:60]),
        [],
        "1 unreadable image(s) (v1.png)",
    ),
    "not-an-image": (lambda f: (f / "v1.png").write_text("hello"), [], "1 unreadable image(s) (v1.png)"),
    "listed-twice": (
        _csv_edit(lambda rows: rows.append({**rows[0], "azimuth_deg": "45"})),
        [],
        "1 file(s) listed twice (v0.png at lines 2 and 6)",
    ),
    "non-numeric": (
        _csv_edit(lambda rows: rows[2].update(elevation_deg="high")),
        [],
        "1 non-numeric factor value(s) (elevation_deg='high' at line 4)",
    ),
    "not-finite": (
        _csv_edit(lambda rows: (rows[0].update(azimuth_deg="nan"), rows[3].update(azimuth_deg="inf"))),
        [],
        "2 non-finite factor value(s) (azimuth_deg=nan at line 2, azimuth_deg=inf at line 5)",
    ),
    "image-without-row": (
        lambda f: save(np.zeros((16, 16, 3), np.uint8), f / "extra" / "new.JPG", "RGB"),
        [],
        "1 image(s) without a row in metadata.csv (extra/new.JPG)",
    ),
    "unknown-periodic-column": (
        lambda f: None,
        ["--periodic", "azimuth:360"],
        "--periodic column 'azimuth' is not in metadata.csv (its columns: file_name, azimuth_deg, elevation_deg)",
    ),
    "unknown-label-column": (lambda f: None, ["--label", "object"], "--label column 'object' is not in metadata.csv"),
    "link-outside": (_link_outside, [], "1 link(s) pointing outside the folder (v3.png)"),
    "path-outside": (
        _csv_edit(lambda rows: rows[3].update(file_name="../elsewhere.png")),
        [],
        "1 file name(s) pointing outside the folder (../elsewhere.png)",
    ),
    "bad-periodic-option": (lambda f: None, ["--periodic", "azimuth_deg"], "--periodic expects COLUMN:PERIOD"),
    "size-too-small": (lambda f: None, ["--size", "4"], "--size must lie in 8..4096, got 4"),
}


@pytest.mark.parametrize("case", BAD_FOLDERS)
def test_a_bad_folder_is_refused_in_one_line_and_nothing_is_written(tmp_path: Path, case: str) -> None:
    spoil, options, message = BAD_FOLDERS[case]
    folder = tmp_path / "folder"
    small_folder(folder)
    spoil(folder)
    out = tmp_path / "out" / "data.h5"
    result = invoke_cli("import-folder", str(folder), "--out", str(out), *options)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()  # the reading progress, then the error
    assert lines[-1].startswith("error:") and sum("error" in line for line in lines) == 1, result.stderr
    assert not out.exists() and not list(out.parent.glob("*.partial"))


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    small_folder(folder)
    (folder / "v1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    _csv_edit(lambda rows: rows[0].update(elevation_deg="?"))(folder)
    save(np.zeros((16, 16, 3), np.uint8), folder / "stray.png", "RGB")
    result = invoke_cli("import-folder", str(folder), "--out", str(tmp_path / "x.h5"), "--label", "colour")
    assert result.returncode == 1
    for part in ("--label column 'colour'", "non-numeric", "without a row", "unreadable image(s) (v1.png)"):
        assert part in result.stderr, result.stderr


def test_non_finite_params_are_refused_by_commands_that_read_the_file(tmp_path: Path) -> None:
    path = write_dataset(tmp_path / "nan.h5")
    with h5py.File(path, "a") as f:
        f["params"][5, 0] = np.nan
        f["params"][9, 0] = np.inf
    for command in (["info", str(path)], ["train", "--data", str(path), "--out", str(tmp_path / "run")]):
        result = invoke_cli(*command)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"{path}: parameter 'azimuth_deg' is nan at row 5" in result.stderr, result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "command, out, message",
    [
        (["interpolate", "RUN"], "strip.txt", "must end in .png, .jpg, .jpeg or .gif"),
        (["import-coil", "DIR"], "coil.png", "a dataset file must end in .h5 or .hdf5"),
        (["import-folder", "DIR"], "data.csv", "a dataset file must end in .h5 or .hdf5"),
        (["augment", "--run", "RUN"], "aug", "a dataset file must end in .h5 or .hdf5"),
        (["merge", "a.h5"], "merged.h5.tmp", "a dataset file must end in .h5 or .hdf5"),
    ],
)
def test_an_output_name_the_command_cannot_write_is_refused_first(
    tmp_path: Path, command: list[str], out: str, message: str
) -> None:
    # RUN and DIR do not exist: the name is refused before anything is opened or created.
    result = invoke_cli(*command, "--out", str(tmp_path / "new" / out))
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "new").exists()
