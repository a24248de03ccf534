"""The results page of `toolkit reproduce`: tables, verdicts, plots and strips from the runs it trained."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import time

import numpy as np
import torch

import toolkit
from toolkit.aeai.config import ABLATIONS
from toolkit.evaluate.compare import DISSOLVE_NAME
from toolkit.evaluate.config import ENDS_MEANING, SUMMARY, Ends
from toolkit.experiments.bench import describe_machine
from toolkit.experiments.reproduce_plan import (
    BASELINES,
    CONVERGED_WITHIN,
    PAPER_FIGURE_6,
    RECONSTRUCTION,
    STRIP_STEPS,
    STRIPS,
    DatasetSection,
    ReproduceConfig,
    ablation_worse_on,
    aeai_beaten_by,
    mean_scores,
)


def _stat(values: list[float], fmt: str) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(np.mean(values))} ± {fmt.format(np.std(values, ddof=1))}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} s" if value < 600 else f"{value / 60:.1f} min"


def _seeds(seeds: range) -> str:
    if len(seeds) == 0:
        return "none"
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"


def versions() -> dict[str, str]:
    """Versions of what produced the numbers; bpy (which rendered the data) when it is installed."""
    found = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    found["toolkit"] = toolkit.__version__
    if importlib.util.find_spec("bpy") is not None:
        found["bpy"] = importlib.metadata.version("bpy")
    return found


def summary_table(section: DatasetSection) -> list[str]:
    """Mean ± std (sample std) over seeds of every one-number summary, one row per name, then the reference rows;
    a run that does not reconstruct (see `DatasetSection.unconverged`) is marked."""
    values = section.values()
    columns = {**SUMMARY, RECONSTRUCTION: ("test reconstruction MSE", "{:.5f}")}
    columns = {k: v for k, v in columns.items() if any(k in row for row in values.values())}
    unconverged = section.unconverged()
    lines = [
        "| method | seeds | " + " | ".join(title for title, _ in columns.values()) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for name, row in values.items():
        cells = [_stat(row.get(key, []), fmt) for key, (_, fmt) in columns.items()]
        seeds = sum(r.name == name for r in section.records)
        shown = f"{name} (not converged)" if name in unconverged else name
        lines.append(f"| {shown} | {seeds} | " + " | ".join(cells) + " |")
    for name, result in section.references:
        row = {**result["summary"], RECONSTRUCTION: result["reconstruction_mse"].get("test")}
        cells = [_stat([] if row.get(key) is None else [row[key]], fmt) for key, (_, fmt) in columns.items()]
        lines.append(f"| *{name} (reference)* | — | " + " | ".join(cells) + " |")
    return lines


def verdicts(
    values: dict[str, dict[str, list[float]]], unconverged: dict[str, float], dissolve: dict | None
) -> list[str]:
    """The acceptance questions, answered from each name's scores over its seeds (test intervals): a win or a
    loss counts when the means differ by more than two seed standard deviations (`beyond_noise`)."""
    if "aeai" not in values:
        return ["- AEAI was not run: no verdicts."]
    means = mean_scores(values)
    lines = []
    for name, ratio in unconverged.items():
        lines.append(
            f"- {name} **did not converge**: its test reconstruction MSE is {ratio:.1f}x the plain AE's at the "
            f"same budget (the rule: at most {CONVERGED_WITHIN:g}x); it is left out of the comparison below."
        )
    if any(name in means for name in BASELINES):
        beaten = aeai_beaten_by(values, set(unconverged))
        answer = f"**no** (matched or beaten by {', '.join(beaten)})" if beaten else "**yes**"
        lines.append(
            "- AEAI's interval MSE at the largest interval is below every converged baseline's by more than two "
            f"seed standard deviations: {answer}"
        )
    if dissolve is not None:
        failing = [name for name, row in means.items() if row["interval_mse"] >= dissolve["interval_mse"]]
        answer = f"**no**: {', '.join(failing)} do(es) not" if failing else "**yes**"
        lines.append(f"- Every method beats the pixel cross-dissolve on interval MSE: {answer}")
    for ablation in ABLATIONS:
        if ablation in means:
            worse = [SUMMARY[k][0] for k in ablation_worse_on(values, ablation)]
            answer = f"**yes** ({', '.join(worse)})" if worse else "**no**"
            lines.append(
                f"- {ablation} is worse than full AEAI by more than two seed standard deviations on at least one "
                f"summary measure: {answer}"
            )
    return lines


def runs_table(sections: list[DatasetSection]) -> list[str]:
    lines = [
        "| run | epochs | optimizer steps | final test MSE | training wall time | evaluation time |",
        "|---|---|---|---|---|---|",
    ]
    for section in sections:
        for r in section.records:
            m = r.metrics
            lines.append(
                f"| {section.dataset}/{r.name}-seed{r.seed} | {m.get('epoch')} | {m.get('step')} | "
                f"{m.get('test_mse', float('nan')):.5f} | {_seconds(r.train_seconds)} | "
                f"{_seconds(r.evaluation['seconds'] + r.validation['seconds'])} |"
            )
    return lines


def paper_table(sections: list[DatasetSection]) -> list[str]:
    """Our mean interval MSE beside the paper's figure 6, absolute and relative to AEAI."""
    means = {s.dataset: s.means() for s in sections}
    header = "| method | paper, COIL-100 | paper / AEAI |"
    for dataset in means:
        header += f" ours, {dataset} | ours / AEAI |"
    lines = [header, "|---|---|---|" + "---|---|" * len(means)]
    for name, paper in PAPER_FIGURE_6.items():
        cells = [f"{paper:.4f}", f"{paper / PAPER_FIGURE_6['aeai']:.2f}"]
        for table in means.values():
            ours = table.get(name, {}).get("interval_mse")
            aeai = table.get("aeai", {}).get("interval_mse")
            cells += [
                "—" if ours is None else f"{ours:.4f}",
                "—" if ours is None or aeai is None else f"{ours / aeai:.2f}",
            ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def dataset_lines(cfg: ReproduceConfig, section: DatasetSection) -> list[str]:
    data, first = section.data, section.records[0]
    grid = first.evaluation["result"]["grid"]
    axes = ", ".join(f"{a['name']} ({a['values']} values, step {a['step']:g})" for a in grid["axes"])
    if section.label is None:
        subject = f"all {data.n} images"
    else:
        subject = f"object {section.label} ({data.label_names[section.label]}) only"
    mse_seed0 = {
        r.name: r.validation["result"]["summary"]["interval_mse"]
        for r in section.records
        if r.seed == 0 and r.name in BASELINES
    }
    folder = cfg.out.with_suffix("").name
    pairs = ", ".join(f"{i}→{j}" for i, j in section.strip_pairs.tolist())
    lines = [
        f"## {section.dataset}",
        "",
        f"`{data.path}`: {data.n} images, {data.image_size}x{data.image_size}; trained and measured on {subject}: "
        f"{grid['images']} images on the grid {axes}. Rendered with: {data.describe_settings()}.",
        "",
    ]
    if section.strongest is not None:
        lines += [
            f"Strongest baseline after seed 0 (lowest interval MSE on the validation intervals): "
            f"**{section.strongest}** ({mse_seed0[section.strongest]:.5f}); it and AEAI ran with "
            f"{_seeds(range(cfg.seeds))}.",
            "",
        ]
    lines += ["### One-number summaries (lower is better in every column)", "", *summary_table(section), ""]
    dissolve = next((r["summary"] for n, r in section.references if n == DISSOLVE_NAME), None)
    lines += ["### Verdicts", "", *verdicts(section.values(), section.unconverged(), dissolve), ""]
    lines += ["### Plots (seed 0 of every method)", ""]
    lines += [f"![{p.stem}]({folder}/{section.dataset}/{p.name})" for p in section.plots]
    lines += [
        "",
        f"### Interpolation strips (seed 0; test pairs {pairs}; {STRIP_STEPS} frames; last row: pixel dissolve)",
        "",
        f"![strips]({folder}/{section.dataset}/{STRIPS})",
        "",
    ]
    return lines


def render_page(cfg: ReproduceConfig, sections: list[DatasetSection], device, seconds: float) -> str:
    """The Markdown results page."""
    machine = describe_machine(str(device))
    hardware = f"{machine['cpu']}, {machine['cores_available']} cores, {machine['torch_threads']} torch threads"
    if "gpu" in machine:
        hardware += f", GPU {machine['gpu']}"
    records = [r for s in sections for r in s.records]
    trained = sum(r.train_seconds or 0.0 for r in records)
    evaluated = sum(r.evaluation["seconds"] + r.validation["seconds"] for r in records)
    e = cfg.evaluation
    sizes = ", ".join(f"{s.dataset} {s.data.image_size}x{s.data.image_size}" for s in sections)
    epochs = ", ".join(f"{s.dataset} {cfg.epochs(s.dataset)}" for s in sections)
    lines = [
        "# Results: AEAI, its baselines and its ablations",
        "",
        f"Written by `toolkit reproduce` on {time.strftime('%Y-%m-%d %H:%M')}. Every number on this page was "
        f"computed by that command from the runs in `{cfg.runs}`; run it again to continue or regenerate it.",
        "",
        "## Setup",
        "",
        f"- Command: `{cfg.command_line()}`",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
        f"- Hardware: {hardware}; device {device}; {machine['platform']}",
        f"- Image size: {sizes}. Epochs: {epochs} (batch {cfg.batch_size}; optimizer steps per run in the "
        "table at the end). Every other training setting: AEAI's toolkit defaults (tuned with toolkit sweep on "
        "the pole's validation intervals; README) and the baselines' authors' defaults.",
        "- Seeds: seed 0 for every method and ablation; more for AEAI, its ablations and the strongest baseline "
        f"(chosen per dataset after seed 0): {_seeds(range(1, cfg.seeds))}. Mean ± sample std where there are "
        "several seeds; the verdicts count a difference only beyond two seed standard deviations (the larger of the "
        "two rows').",
        f"- Split: `--split {cfg.split}` with test fraction {cfg.test_fraction:g}: every grid line (the pole: each "
        "elevation; the turntable object: its one turntable) holds out one contiguous arc of azimuths from a "
        "seeded start, so whole intervals lie outside training; a random split (the paper's) leaves almost "
        "every in-between view of a long interval in training.",
        f"- Evaluation (`toolkit evaluate`'s measures), reported on `--ends {e.ends}`: "
        f"{ENDS_MEANING[e.ends]}. Interval MSE per alpha at {e.max_interval:g} degrees (per length from "
        f"{e.min_interval:g}), alpha retrieval and ACAI smoothness at {e.retrieval_interval:g} (the paper's "
        "figure 7), with the share of retrievals that land off the interval reported, not clipped. Choices (the "
        f"strongest baseline) are made on `--ends validation`: {ENDS_MEANING[Ends.validation]}. At most "
        f"{e.max_intervals} intervals per parameter at the largest length, {e.curve_intervals} at each shorter one. "
        "The turntable is measured on the trained object only. 'interval MSE' is the mean MSE of the in-between "
        "frames at the largest interval of each parameter, weighted by frames. Reference rows: the pixel "
        "cross-dissolve (what a method must beat) and the ground truth (each measure's floor on this data).",
        f"- Convergence: a run whose test reconstruction MSE exceeds {CONVERGED_WITHIN:g}x the plain AE's at the "
        "same budget is marked *not converged* and left out of the verdicts against AEAI.",
        f"- Wall time: training {_seconds(trained)}, evaluation {_seconds(evaluated)} over all {len(records)} runs "
        f"(summed over resumed sessions); this invocation {_seconds(seconds)}.",
    ]
    left_out = [name for name in (*BASELINES, *ABLATIONS) if name not in cfg.methods]
    if left_out:
        lines.append(f"- Not run (left out with `--methods`, so neither trained nor compared): {', '.join(left_out)}.")
    lines.append("")
    for section in sections:
        lines += dataset_lines(cfg, section)
    lines += [
        "## Comparison with the paper's figure 6",
        "",
        "The paper's values are its mean interval MSE over alpha on COIL-100 at L = 80, read off figure 6 by eye; "
        "its datasets differ from ours (real photographs vs. our renders, other objects and image sizes), so "
        "only the order of the methods and their ratios to AEAI compare, not the values. The paper's beta-VAE "
        "is `vae` here.",
        "",
        *paper_table(sections),
        "",
        "## Runs",
        "",
        *runs_table(sections),
        "",
    ]
    return "\n".join(lines)
