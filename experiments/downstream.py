"""Does augmentation help a downstream model? The same small CNN trained with each kind of extra data.

On any dataset file: train on every k-th value of one factor (or a fraction of the images), test on the
held-out ones, predicting a factor, the class or the pole's light direction (see downstream_targets). The
built-in tasks are two such protocols. Task "pole": regress the light direction, trained on every 4th
azimuth (all elevations); metric: mean angle between predicted and true directions. Task "turntable":
classify the object from views 30 degrees apart; metric: error rate. The interpolation models are trained
on the sparse training images only, so no test image reaches them. Arms:
  real         the sparse real images only
  photometric  + albumentations photometric transforms of the real images (labels unchanged)
  mixup        + pixel-space cross-dissolves of the same pairs and alphas the latent arms use (the same
               generator, seed and settings, with a model whose latent is the pixels)
  ae           + decoded latent interpolations of a plain autoencoder
  aeai         + decoded latent interpolations of AEAI
  aeai-no-d, aeai-no-c, aeai-no-s   (on request) the same with one of AEAI's terms dropped, as the paper's
               ablations: which term helps or hurts the downstream model
  run:NAME     + decoded interpolations of a run trained beforehand (--runs)
Each arm gets a verdict (verdict.py: the paired change against real only and its 95 % interval), and the
images of each augmented arm a label-fidelity score (augment/fidelity.py: how far a CNN trained on the real
training images finds them from the labels they were given).
Every arm gets the same CNN, the same number of optimisation steps and the same seeds; in arms with extra
data half of every batch is real and half extra, so the arms differ only in what the extra half holds.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from toolkit.aeai.config import TrainConfig, method_settings
from toolkit.aeai.run import load_run
from toolkit.augment.fidelity import ScorerConfig, fidelity_summary, fit_cnn, predict, train_scorer
from toolkit.augment.generate import AugmentConfig, generate
from toolkit.datasets import DatasetInfo, DatasetSpec, H5Writer, open_dataset
from toolkit.datasets.torch_dataset import to_float
from toolkit.errors import UserError
from toolkit.evaluate.dissolve import PixelDissolve
from toolkit.experiments.downstream_eta import BenchmarkClock, Phase
from toolkit.experiments.downstream_plan import RUN_ARM, DownstreamConfig
from toolkit.experiments.downstream_targets import (
    Target,
    default_max_gap,
    make_target,
    sparse_split,
    split_factor_of,
)
from toolkit.experiments.runs import train_or_resume
from toolkit.experiments.verdict import verdicts
from toolkit.files import write_json
from toolkit.progress import Log, Progress, ProgressFactory, no_progress


def _photometric():
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations as A

    return A.Compose(
        [
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.8),
            A.RandomGamma(gamma_limit=(80, 120), p=0.5),
            A.HueSaturationValue(hue_shift_limit=5, sat_shift_limit=10, val_shift_limit=10, p=0.5),
            A.GaussNoise(std_range=(0.01, 0.04), p=0.5),
        ]
    )


def photometric_images(images: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n photometric variants of randomly chosen real images; returns (images, index of each source)."""
    rng = np.random.default_rng(seed)
    pipeline = _photometric()
    pipeline.set_random_seed(seed)
    source = rng.integers(0, len(images), size=n)
    return np.stack([pipeline(image=images[k])["image"] for k in source]), source


def train_and_score(
    target: Target,
    real: tuple[Tensor, Tensor],
    extra: tuple[Tensor, Tensor] | None,
    test: tuple[Tensor, Tensor],
    cfg: DownstreamConfig,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> float:
    """Train the CNN for `cfg.steps` steps and return its test score (lower is better)."""
    model = fit_cnn(target.outputs, real, extra, target.loss, cfg.steps, cfg.batch_size, cfg.lr, seed, progress)
    return target.score(predict(model, test[0]), test[1])


@dataclass
class ArmResult:
    arm: str
    scores: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        return float(np.std(self.scores, ddof=1)) if len(self.scores) > 1 else 0.0


def summary_table(results: list[ArmResult], metric: str, fidelity: dict | None = None) -> str:
    """A Markdown table: mean +- std per arm, the paired change against real only with its 95 % interval, the
    label error of the arm's images; then one conclusion per arm."""
    found = {r.arm: r.scores for r in results}
    judged = {v.arm: v for v in verdicts(found)}
    fidelity = fidelity or {}
    lines = [
        f"| arm | {metric} | vs real only (95 % CI, paired seeds) | label error | seeds |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        v = judged.get(r.arm)
        change = "—" if v is None else v.amount
        error = f"{fidelity[r.arm]['mean']:.3g}" if r.arm in fidelity else "—"
        lines.append(f"| {r.arm} | {r.mean:.2f} ± {r.std:.2f} | {change} | {error} | {len(r.scores)} |")
    if judged:
        lines += ["", *(f"- {v.conclusion}" for v in judged.values())]
    return "\n".join(lines)


def write_subset(data: DatasetInfo, rows: np.ndarray, out: Path) -> DatasetInfo:
    """A dataset file holding only `rows` of `data` (the sparse training images the interpolators see)."""
    if out.exists():
        return open_dataset(out)
    spec = DatasetSpec(
        data.image_size,
        data.param_names,
        data.periods.tolist(),
        data.label_names,
        {**data.settings, "subset_of": str(data.path.resolve()), "subset_rows": int(len(rows))},
    )
    writer = H5Writer(out, spec)
    for start in range(0, len(rows), 256):
        chunk = rows[start : start + 256]
        writer.append(data.read_images(chunk), data.params[chunk], data.labels[chunk])
    return open_dataset(writer.close())


def train_interpolator(
    arm: str, subset: Path, run_dir: Path, cfg: DownstreamConfig, device: str, progress: Progress | None
) -> Path:
    """Train the arm's model (a method or an AEAI ablation) on the sparse subset into `run_dir`, continuing a
    run that was interrupted."""
    # No interp_epochs: the train command's default budget (and its sparse checkpoints for many tiny epochs).
    config = TrainConfig(data=str(subset), epochs=cfg.interp_epochs, seed=0, device=device, **method_settings(arm))
    train_or_resume(config, run_dir, progress)
    return run_dir


def extra_path(work: Path, arm: str) -> Path:
    return work / f"extra-{arm.replace(RUN_ARM, 'run-')}.h5"


def run_arms(cfg: DownstreamConfig) -> dict[str, Path]:
    """The arms of the trained runs given with --runs, by name: "run:" and the run folder's name."""
    arms: dict[str, Path] = {}
    for run in map(Path, cfg.runs):
        if not run.is_dir():
            raise UserError(f"{run}: no such run folder (--runs)")
        name = RUN_ARM + run.resolve().name  # runs/latest is named after the run it points at
        if name in arms:
            raise UserError(f"--runs names two runs called {name[len(RUN_ARM) :]}: {arms[name]} and {run}")
        arms[name] = run
    return arms


def arm_model(arm: str, subset: DatasetInfo, work: Path, cfg: DownstreamConfig, device: str, phase) -> tuple:
    """The model whose interpolations fill the arm's extra half, and its provenance."""
    if arm == "mixup":
        return PixelDissolve(), {"method": "pixel-mixup"}
    if arm.startswith(RUN_ARM):
        run = run_arms(cfg)[arm]
    else:
        with phase(f"train {arm}", "img") as update:
            run = train_interpolator(arm, subset.path, work / f"interp-{arm}", cfg, device, update)
    loaded = load_run(run, device=device)
    if loaded.image_size != subset.image_size:
        raise UserError(f"{run}: trained on {loaded.image_size}px images, the benchmark's are {subset.image_size}px")
    return loaded.model, {"method": loaded.method, "run": str(run.resolve())}


def make_extra(
    arm: str, subset: DatasetInfo, work: Path, cfg: DownstreamConfig, max_gap: float, device: str, phase
) -> Path:
    """The augmented file of a latent or mixup arm: `cfg.n_extra` images between neighbour pairs."""
    out = extra_path(work, arm)
    if out.exists():
        return out
    model, provenance = arm_model(arm, subset, work, cfg, device, phase)
    augment = AugmentConfig(n=cfg.n_extra, seed=0, max_gap=max_gap)
    rows = np.arange(subset.n)  # every row of the subset is a sparse training image
    with phase(f"extra {arm}", "img") as update:
        return generate(model, subset, rows, out, augment, provenance, torch.device(device), progress=update)


def check_plan(work: Path, plan: dict) -> None:
    """Refuse a folder holding another benchmark's results (other data, protocol or CNN settings)."""
    path = work / "plan.json"
    if path.exists():
        before = json.loads(path.read_text())
        changed = sorted(k for k in set(before) | set(plan) if before.get(k) != plan.get(k))
        if changed:
            raise UserError(
                f"{work} holds a benchmark of other settings ({', '.join(changed)}); use another --out or delete it"
            )
    else:
        write_json(path, plan)


def read_scores(path: Path) -> dict[tuple[str, int], float]:
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            done[(row["arm"], row["seed"])] = row["score"]
    return done


def plan_phases(cfg: DownstreamConfig, arms: list[str], work: Path, done: dict) -> list[Phase]:
    """What is left to run, for the benchmark's ETA."""
    phases = []
    for arm in arms:
        if arm not in ("real", "photometric") and not extra_path(work, arm).exists():
            if arm != "mixup" and not arm.startswith(RUN_ARM):
                phases.append(Phase(f"train {arm}", "interp", cfg.interp_epochs or 1))  # all alike
            phases.append(Phase(f"extra {arm}", "extra", cfg.n_extra))
        phases += [Phase(f"{arm} seed {s}", "cnn", cfg.steps) for s in range(cfg.seeds) if (arm, s) not in done]
    if cfg.scorer_steps and not (work / "fidelity.json").exists():
        phases.append(Phase("fidelity scorer", "cnn", cfg.scorer_steps))
    return phases


def timed_phases(clock: BenchmarkClock, bar: ProgressFactory):
    """A progress-bar factory whose bars also show the whole benchmark's ETA."""

    @contextlib.contextmanager
    def phase(name: str, unit: str):
        clock.start(name)
        with bar(name, unit) as update:

            def tick(done: int, total: int | None = None, **fields: object) -> None:
                clock.advance(done, total)
                update(done, total, **fields, benchmark_eta=clock.text())

            yield tick
        clock.finish()

    return phase


def label_fidelity(
    work: Path, subset: DatasetInfo, test: tuple, arms: list[str], extras: dict, cfg: DownstreamConfig, phase
) -> tuple[dict, dict]:
    """Per arm, the label error of its extra images by a scorer trained on the real training images (cached)."""
    path = work / "fidelity.json"
    cached = json.loads(path.read_text()) if path.exists() else {}
    wanted = [arm for arm in arms if arm in extras]
    if cached.get("scorer_steps") == cfg.scorer_steps and all(arm in cached["arms"] for arm in wanted):
        return cached["scorer"], {arm: cached["arms"][arm] for arm in wanted}
    with phase("fidelity scorer", "step") as update:
        scorer = train_scorer(
            (subset.read_images(), subset.params, subset.labels),
            test,
            subset.periods,
            subset.param_names,
            len(subset.label_names),
            ScorerConfig(steps=cfg.scorer_steps),
            update,
        )
    results = {arm: fidelity_summary(scorer, *extras[arm]) for arm in wanted}
    write_json(path, {"scorer_steps": cfg.scorer_steps, "scorer": scorer.describe(), "arms": results})
    return scorer.describe(), results


def run_benchmark(
    data_path: Path,
    work: Path,
    cfg: DownstreamConfig,
    device: str = "cpu",
    log: Log = print,
    bar: ProgressFactory = no_progress,
) -> dict:
    """Run every arm for every seed; results so far are kept in `work`, so a rerun continues."""
    cfg.validate()
    data = open_dataset(data_path)
    protocol = cfg.protocol(data.path.stem)
    if protocol.train_fraction is None:
        protocol = replace(protocol, split_factor=split_factor_of(data, protocol))
    train_rows, test_rows = sparse_split(data, protocol)
    target = make_target(data, protocol.target, train_rows)
    max_gap = cfg.max_gap or default_max_gap(data, train_rows)
    work.mkdir(parents=True, exist_ok=True)
    plan = {"data": str(data.path.resolve()), "protocol": asdict(protocol), "max_gap": max_gap}
    check_plan(
        work, {**plan, **{k: getattr(cfg, k) for k in ("steps", "batch_size", "lr", "n_extra", "interp_epochs")}}
    )
    subset = write_subset(data, train_rows, work / "sparse-train.h5")
    log(f"{protocol.name}: {len(train_rows)} sparse training images, {len(test_rows)} test images")
    trained = run_arms(cfg)
    arms = [*cfg.arms, *trained]
    for run in trained.values():
        trained_on = load_run(run).data_path
        if trained_on.resolve() != subset.path.resolve():
            log(f"  warning: {run} was trained on {trained_on}, not on {subset.path}: images the CNN is tested on "
                "may have reached its interpolator")  # fmt: skip

    def tensors(images: np.ndarray, params: np.ndarray, labels: np.ndarray) -> tuple[Tensor, Tensor]:
        return to_float(images), target.encode(params, labels)

    real = tensors(subset.read_images(), subset.params, subset.labels)
    test_arrays = (data.read_images(test_rows), data.params[test_rows], data.labels[test_rows])
    test = tensors(*test_arrays)
    scores_path = work / "scores.jsonl"
    done = read_scores(scores_path)
    clock = BenchmarkClock(plan_phases(cfg, arms, work, done))
    phase = timed_phases(clock, bar)
    results, extras = [], {}
    for arm in arms:
        extra = None
        if arm == "photometric":
            images, source = photometric_images(subset.read_images(), cfg.n_extra, seed=0)
            extra = tensors(images, subset.params[source], subset.labels[source])
            extras[arm] = (lambda rows, images=images: images[rows], subset.params[source], subset.labels[source])
        elif arm != "real":
            made = open_dataset(make_extra(arm, subset, work, cfg, max_gap, device, phase))
            extra = tensors(made.read_images(), made.params, made.labels)
            extras[arm] = (made.read_images, made.params, made.labels)
        scores = []
        for seed in range(cfg.seeds):
            if (arm, seed) not in done:
                with phase(f"{arm} seed {seed}", "step") as update:
                    score = train_and_score(target, real, extra, test, cfg, seed, update)
                with open(scores_path, "a") as f:
                    f.write(json.dumps({"arm": arm, "seed": seed, "score": score}) + "\n")
                done[(arm, seed)] = score
            scores.append(done[(arm, seed)])
            log(f"  {arm:12s} seed {seed}: {scores[-1]:.3f}")
        results.append(ArmResult(arm, scores))
    scorer, fidelity = {}, {}
    if cfg.scorer_steps and extras:
        scorer, fidelity = label_fidelity(work, subset, test_arrays, arms, extras, cfg, phase)
    judged = verdicts({r.arm: r.scores for r in results})
    return {
        "task": protocol.name,
        "data": str(data.path),
        "protocol": asdict(protocol),
        "metric": target.metric,
        "config": asdict(cfg),
        "max_gap": max_gap,
        "train_images": int(len(train_rows)),
        "test_images": int(len(test_rows)),
        "arms": {r.arm: {"mean": r.mean, "std": r.std, "scores": r.scores} for r in results},
        "verdicts": {v.arm: v.as_dict() for v in judged},
        "label_fidelity": {"scorer": scorer, "arms": fidelity},
        "table": summary_table(results, target.metric, fidelity),
    }
