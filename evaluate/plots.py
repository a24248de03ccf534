"""The paper's figures 6-8 drawn from `evaluate` results.

Plots take a list of (name, result) pairs, `result` being what `measures.evaluate_model` returns, and draw
all runs into the same axes so methods compare at a glance.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window: works headless and in worker processes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from toolkit.files import atomic_write  # noqa: E402

Results = list[tuple[str, dict]]
MARKERS = ["o", "v", "s", "*", "P", "D", "X", "^"]
LINESTYLES = ["-", "--", ":", "-."]  # one per parameter axis
IQR_COLOR = "#fdbf8f"  # the paper's orange band


def _save(fig: plt.Figure, path: Path) -> Path:
    path = Path(path)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _floats(values: list[float | None]) -> np.ndarray:
    """JSON numbers to plot, null (no value) as NaN, which matplotlib leaves out."""
    return np.array([np.nan if v is None else v for v in values], float)


def _axes_with(results: Results, key: str) -> list[str]:
    """Parameter axes (in first-seen order) for which some run has `key`."""
    names: list[str] = []
    for _, result in results:
        for axis, entry in result["axes"].items():
            if key in entry and axis not in names:
                names.append(axis)
    return names


def plot_interval_mse(results: Results, path: Path) -> Path:
    """Figure 6: MSE mean and std per alpha at the largest interval, and mean MSE per interval length."""
    axes_names = _axes_with(results, "mse")
    fig = plt.figure(figsize=(13, 12))
    grid = fig.add_gridspec(2, 2)
    mean_ax, std_ax, length_ax = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    for k, (name, result) in enumerate(results):
        color, marker = f"C{k % 10}", MARKERS[k % len(MARKERS)]
        for j, axis in enumerate(axes_names):
            entry = result["axes"].get(axis, {})
            label = f"{name} ({axis})" if len(axes_names) > 1 else name
            style = {"color": color, "marker": marker, "linestyle": LINESTYLES[j % 4], "linewidth": 2.5}
            if "mse" in entry:
                mean_ax.plot(entry["alpha"], entry["mse"]["mean"], label=label, **style)
                std_ax.plot(entry["alpha"], entry["mse"]["std"], label=label, **style)
            curve = entry.get("per_length")
            if curve:
                y = [np.nan if v is None else v for v in curve["mse_mean"]]
                length_ax.plot(curve["length"], y, label=label, **style)
    for ax, title, xlabel, ylabel in (
        (mean_ax, "MSE-MEAN vs Alpha", "Alpha", "MSE (Mean)"),
        (std_ax, "MSE-STD vs Alpha", "Alpha", "MSE (STD)"),
        (length_ax, "MSE-MEAN vs Interval Size", "Interval Size (Degrees)", "Average MSE"),
    ):
        ax.set_title(title, fontsize=16)
        ax.set_xlabel(xlabel, fontsize=13)
        ax.set_ylabel(ylabel, fontsize=13)
        ax.grid(alpha=0.3)
    for ax in (mean_ax, std_ax, length_ax):
        values = np.concatenate([line.get_ydata() for line in ax.get_lines()] or [np.zeros(0)]).astype(float)
        values = values[np.isfinite(values) & (values > 0)]
        if len(values) and values.max() > 20 * values.min():
            ax.set_yscale("log")  # a failed run 100x above the others would flatten them all on a linear axis
    entries = len(length_ax.get_lines())
    # Many runs (a reproduction: 10 methods x 2 parameters): the legend goes beside the curves, not over them.
    if entries > 8:
        length_ax.legend(fontsize=10, ncols=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        length_ax.legend(fontsize=12)
    return _save(fig, path)


def plot_alpha_retrieval(results: Results, path: Path) -> Path:
    """Figure 7: median predicted alpha with its interquartile band and the fraction of retrievals that fell off
    the interval, one panel per run and parameter."""
    axes_names = _axes_with(results, "alpha_retrieval")
    rows, cols = len(results), len(axes_names)
    fig, panels = plt.subplots(rows, cols, figsize=(6 * cols, 5 * rows), squeeze=False)
    for r, (name, result) in enumerate(results):
        for c, axis in enumerate(axes_names):
            ax = panels[r, c]
            entry = result["axes"].get(axis, {})
            ax.set_title(f"{name} ({axis})" if cols > 1 else name, fontsize=15)
            ax.plot([0, 1], [0, 1], color="red", linewidth=1.2, label="Perfect alpha prediction")
            if "alpha_retrieval" in entry:
                retrieval = entry["alpha_retrieval"]
                alpha = retrieval["alpha"]
                q25, median, q75 = (_floats(retrieval[key]) for key in ("q25", "median", "q75"))
                ax.fill_between(alpha, q25, q75, color=IQR_COLOR, label="IQR")
                ax.scatter(alpha, median, color="C0", zorder=3, label="Predicted median alpha")
                off = retrieval["off_interval"]
                ax.plot(alpha, off, color="0.4", linestyle="--", label="Fraction retrieved off the interval")
                iqr = "-" if retrieval["mean_iqr"] is None else f"{retrieval['mean_iqr']:.3f}"
                ax.text(
                    0.02,
                    0.92,
                    f"L = {retrieval['interval']:g}, mean IQR {iqr}, off {retrieval['off_interval_fraction']:.1%}",
                    transform=ax.transAxes,
                )
            ax.set_xlim(-0.1, 1.1)
            ax.set_ylim(-0.1, 1.1)
            ax.set_xlabel("True Alpha", fontsize=13)
            ax.set_ylabel("Predicted Alpha", fontsize=13)
    panels[0, -1].legend(loc="lower right", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def plot_parameter_distance(results: Results, path: Path) -> Path | None:
    """Figure 8: parameter distance of each frame's nearest image to source and target; None without it."""
    axes_names = _axes_with(results, "parameter_distance")
    if not axes_names:
        return None
    rows, cols = len(results), len(axes_names)
    fig, panels = plt.subplots(rows, cols, figsize=(6 * cols, 4.5 * rows), squeeze=False)
    for r, (name, result) in enumerate(results):
        for c, axis in enumerate(axes_names):
            ax = panels[r, c]
            entry = result["axes"].get(axis, {})
            ax.set_title(f"{name} ({axis})", fontsize=15)
            if "parameter_distance" not in entry:
                continue
            dist, alpha = entry["parameter_distance"], entry["alpha"]
            ax.plot(alpha, dist["ideal_source"], "r:", linewidth=2, label="Perfect interpolation smoothness")
            ax.plot(alpha, dist["ideal_target"], "r:", linewidth=2)
            ax.plot(alpha, dist["source"], color="C0", linewidth=2.5, label="Distance from source")
            ax.plot(alpha, dist["target"], color="C1", linewidth=2.5, label="Distance from target")
            ax.text(0.35, 0.03, f"RMS deviation {dist['rms_deviation']:.2f}", transform=ax.transAxes)
            ax.set_xlabel("Alpha", fontsize=13)
            ax.set_ylabel("L2 Parameter Distance", fontsize=13)
    panels[0, -1].legend(loc="center right", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_all(results: Results, out_dir: Path) -> list[Path]:
    """Every plot for these runs into `out_dir`; returns the files written."""
    out_dir = Path(out_dir)
    written = [
        plot_interval_mse(results, out_dir / "interval_mse.png"),
        plot_alpha_retrieval(results, out_dir / "alpha_retrieval.png"),
        plot_parameter_distance(results, out_dir / "parameter_distance.png"),
    ]
    return [p for p in written if p is not None]
