"""`toolkit train`: train AEAI (or a baseline) on a dataset file into a run directory."""

from __future__ import annotations

import dataclasses
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from toolkit.aeai.config import D_AUGMENT, DEFAULT_LRS, DEFAULT_STEPS, SAMPLE_GRIDS, SPLITS, TrainConfig
from toolkit.cli.options import DeviceChoice
from toolkit.cli.progress import console, progress_bar
from toolkit.errors import UserError

D = TrainConfig()  # the paper's defaults, shown in --help; options left out keep them
LRS = ", ".join(f"{name} {lr:g}" for name, lr in DEFAULT_LRS.items())
CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))
FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(TrainConfig)}  # "int", "float | None", ...
FILE_EXTRAS = ("image_size", "data_path")  # what a run's config.json holds besides the TrainConfig fields
SplitChoice = StrEnum("SplitChoice", {name: name for name in SPLITS})  # what --split accepts
DAugmentChoice = StrEnum("DAugmentChoice", {name: name for name in D_AUGMENT})  # what --d-augment accepts


def _plain(value: object) -> object:
    """An option's value as TrainConfig (and config.json) keeps it: paths and choices as plain strings."""
    return str(value) if isinstance(value, Path | StrEnum) else value


def _check_type(path: Path, name: str, value: object) -> object:
    """`value` of field `name` as its option would give it (an int where a float goes becomes a float); a value of
    the wrong JSON type is a one-line UserError."""
    parts = [part.strip() for part in FIELD_TYPES[name].split("|")]
    kinds = [{"int": int, "float": float, "str": str, "bool": bool, "None": type(None)}.get(p) for p in parts]
    if None in kinds:
        return value  # a type this check does not know: TrainConfig.validate has the last word
    if type(value) is int and float in kinds and int not in kinds:
        return float(value)
    if type(value) not in kinds:  # type(): a JSON true is no int here
        raise UserError(f"--config {path}: {name} must be {FIELD_TYPES[name]}, got {json.dumps(value)}")
    return value


def config_from_file(path: Path, given: dict) -> TrainConfig:
    """The TrainConfig of a saved config.json (a run's, or one written by hand), the options given on the command
    line (`given`) replacing its values; a missing or bad file, or an unknown key, is a one-line UserError."""
    try:
        saved = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"--config {path}: not a readable JSON file ({e})") from None
    if not isinstance(saved, dict):
        raise UserError(f"--config {path}: expected a JSON object of settings, got {type(saved).__name__}")
    unknown = sorted(set(saved) - set(CONFIG_FIELDS) - set(FILE_EXTRAS))
    if unknown:
        raise UserError(
            f"--config {path}: unknown setting(s) {', '.join(unknown)}; a config holds toolkit train's options "
            f"(as field names: batch_size, lambda_a, ...) and {', '.join(FILE_EXTRAS)}"
        )
    settings = {name: _check_type(path, name, value) for name, value in saved.items() if name in CONFIG_FIELDS}
    data_path = saved.get("data_path")
    if "data" not in given and isinstance(data_path, str) and Path(data_path).is_file():
        settings["data"] = data_path  # absolute: the run's very file, from whatever folder
    if "epochs" in given or "steps" in given:  # one budget, the command line's, whether --epochs or --steps
        settings = {name: value for name, value in settings.items() if name not in ("epochs", "steps")}
    method = settings.get("method", D.method)
    if "method" in given and "lr" not in given and settings.get("lr") == DEFAULT_LRS.get(method):
        settings.pop("lr")  # the old method's default rate, recorded as such: the new method takes its own
    return TrainConfig(**{**settings, **given})


def train(
    data: Annotated[Path | None, typer.Option(help=f"Dataset file (.h5). Default: {D.data}.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run directory. Default: runs/TIME-METHOD (with --resume: runs/latest).")
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A config.json to start from (a run's: its settings and dataset); options given here override "
            "it, options left out take its values.",
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            help="Training method: aeai (the paper), ae (plain autoencoder), vae (beta-VAE), aae, acai, amr, gaia. "
            f"Default: {D.method}."
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(help="Total epochs (with --resume: train on up to this many), instead of --steps."),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            help="Optimizer steps, rounded up to whole epochs; the budget when --epochs is not given. "
            f"Default: {DEFAULT_STEPS} (the pole: 120 epochs; one 58-image object: 1680)."
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help=f"Images per step; AEAI pairs them (half as many pairs). Default: {D.batch_size}."),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            help="Adam learning rate for all of the method's networks (gaia: the sum of its balanced rates). "
            f"Default: the method's own: {LRS}."
        ),
    ] = None,
    latent: Annotated[int | None, typer.Option(help=f"Latent dimension. Default: {D.latent} (paper).")] = None,
    width: Annotated[
        int | None, typer.Option(help=f"Feature maps of the first conv block. Default: {D.width} (paper).")
    ] = None,
    lambda_a: Annotated[
        float | None,
        typer.Option(help=f"aeai: weight of the adversarial loss; 0: no discriminator. Default: {D.lambda_a:g}."),
    ] = None,
    lambda_c: Annotated[
        float | None,
        typer.Option(help=f"aeai: weight of the cycle-consistency loss; 0: ablation. Default: {D.lambda_c:g}."),
    ] = None,
    lambda_s: Annotated[
        float | None, typer.Option(help=f"aeai: weight of the smoothness loss; 0: ablation. Default: {D.lambda_s:g}.")
    ] = None,
    alpha_grid: Annotated[
        int | None,
        typer.Option(
            help="aeai: M > 0: sum the losses over alpha = n/M, n = 0..M (the paper's equations). "
            "Default: 0, one alpha ~ U(0,1) per pair."
        ),
    ] = None,
    r1: Annotated[
        float | None,
        typer.Option(help=f"aeai: weight of the R1 gradient penalty on D's real images; 0: none. Default: {D.r1:g}."),
    ] = None,
    d_augment: Annotated[
        DAugmentChoice | None,
        typer.Option(
            help="aeai: DiffAugment (translation, cutout) of what D sees, real and fake: off; always; or adaptive, "
            "each image with a probability that ADA's controller moves to hold E[sign D(real)] at --ada-target. "
            f"Default: {D.d_augment}."
        ),
    ] = None,
    ada_target: Annotated[
        float | None,
        typer.Option(help=f"aeai: --d-augment adaptive's target for E[sign D(real)]. Default: {D.ada_target:g}."),
    ] = None,
    d_beta1: Annotated[
        float | None, typer.Option(help=f"aeai: Adam's beta1 for the discriminator. Default: {D.d_beta1:g}.")
    ] = None,
    diagnostics_every: Annotated[
        int | None,
        typer.Option(
            help="aeai: steps between measurements of each term's gradient norm at the decoder (logged as "
            f"grad_L_R, ...). Default: {D.diagnostics_every}."
        ),
    ] = None,
    perceptual: Annotated[
        Path | None, typer.Option(help="VGG16 weights file: use the perceptual loss for L_R instead of L2.")
    ] = None,
    label: Annotated[int | None, typer.Option(help="Train on the images of this label only (one object).")] = None,
    split: Annotated[
        SplitChoice | None,
        typer.Option(
            help="random: the paper's split; arc: per grid line (object, elevation) one held-out arc of azimuths, "
            f"so that whole test intervals are unseen in training (evaluate --ends test). Default: {D.split}."
        ),
    ] = None,
    test_fraction: Annotated[
        float | None,
        typer.Option(help=f"Share of the images held out for test. Default: {D.test_fraction:g} (paper)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help=f"Seed of the split, the initialisation and the sampling. Default: {D.seed}.")
    ] = None,
    sample_every: Annotated[
        int | None,
        typer.Option(
            help=f"Epochs between interpolation grids (samples/epoch_XXX.png). Default: about {SAMPLE_GRIDS} a run."
        ),
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(
            help="Epochs between checkpoints (a kill loses at most these; Ctrl-C saves at once). "
            "Default: every epoch up to 100 epochs, then about 100 checkpoints a run."
        ),
    ] = None,
    device: Annotated[
        DeviceChoice | None, typer.Option(help="auto, cpu or cuda. Default: auto (cuda when available).")
    ] = None,
    compile: Annotated[
        bool | None,
        typer.Option("--compile/--no-compile", help="torch.compile the nets (worth it on CUDA). Default: off."),
    ] = None,
    beta: Annotated[
        float | None, typer.Option(help=f"vae: weight of the KL term (Higgins et al.). Default: {D.beta:g}.")
    ] = None,
    acai_lambda: Annotated[
        float | None,
        typer.Option(help=f"acai: weight of the critic term in the autoencoder's loss. Default: {D.acai_lambda:g}."),
    ] = None,
    acai_gamma: Annotated[
        float | None,
        typer.Option(
            help=f"acai: the critic learns to output 0 on gamma x + (1 - gamma) g(f(x)). Default: {D.acai_gamma:g}."
        ),
    ] = None,
    amr_lambda: Annotated[
        float | None, typer.Option(help=f"amr: weight of the L1 reconstruction. Default: {D.amr_lambda:g}.")
    ] = None,
    amr_beta: Annotated[
        float | None,
        typer.Option(help=f"amr: weight of the consistency loss L1(f(g(z_mix)), z_mix). Default: {D.amr_beta:g}."),
    ] = None,
    amr_d_steps: Annotated[
        int | None,
        typer.Option(help=f"amr: discriminator steps per autoencoder step. Default: {D.amr_d_steps}."),
    ] = None,
    gaia_slope: Annotated[
        float | None,
        typer.Option(help=f"gaia: slope of the sigmoids balancing D and G. Default: {D.gaia_slope:g}."),
    ] = None,
    gaia_distance: Annotated[
        float | None,
        typer.Option(help=f"gaia: weight of the pairwise-distance loss. Default: {D.gaia_distance:g}."),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out (or runs/latest).")] = False,
) -> None:
    """Train AEAI (the paper's four losses) or a baseline and write a run directory: config, split, metrics,
    checkpoint, grids. Options named after a method (vae:, acai:, ...) apply to that method only."""
    options = dict(locals())  # the parameters by name: each TrainConfig field has an option of its name
    from toolkit.aeai.distributed import ranks_from_environment
    from toolkit.aeai.trainer import resume_config
    from toolkit.aeai.trainer import train as run_training

    # Every TrainConfig option defaults to None, so a value here is one the command line gave.
    given = {name: _plain(options[name]) for name in CONFIG_FIELDS if options.get(name) is not None}
    if resume and config_file is not None:
        raise UserError("--config starts a new run; --resume continues a run with its own config: use one of them")
    if resume:
        out = (out if out is not None else Path("runs/latest")).resolve()
        config = resume_config(out, given)
    elif config_file is not None:
        config = config_from_file(config_file, given)
    else:
        config = TrainConfig(**given)

    def warn(message: str) -> None:
        console.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)  # one line

    with progress_bar("train") as update:
        result = run_training(config, out, resume=resume, progress=update, warn=warn)
    if not ranks_from_environment().is_main:
        return  # under torchrun, rank 0 reports for all
    m = result.metrics
    summary = f", test MSE {m['test_mse']:.5f}" if "test_mse" in m else ""
    if result.interrupted:
        console.print(
            f"interrupted: saved epoch {result.epoch} to {result.run_dir}; "
            f"continue with --resume --out {result.run_dir}"
        )
        raise SystemExit(130)  # not typer.Exit: the generic "run the same command again" hint is wrong here
    console.print(f"trained {result.epoch} epochs into {result.run_dir}{summary}")
