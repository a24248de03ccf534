"""What `toolkit sweep` tries: its settings, the grid of knob values, run names, the search order, the winner's
command line and the table. Torch-free, so that the command line parses and refuses bad grids at once.

A knob is any TrainConfig field, by its name (`lambda_a`, `lr`, a D setting added later): `name=lo:hi` is a log
range (lo, lo x 10, ... up to hi, or `points_per_decade` values a decade), `name=0,0.01,0.1` a list. Each
configuration (one value per knob, the fixed settings for the rest) trains into RUNS/<hash>-<values>, the hash
being of every setting that changes what is learned, so that the same configuration always finds its run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
import shlex
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.aeai.config import TrainConfig
from toolkit.errors import UserError
from toolkit.evaluate.config import SUMMARY, Ends, EvalConfig
from toolkit.render.grid import Shard

STRATEGIES = ("grid", "coordinate")
SCORE = "interval_mse"  # on the validation intervals; lower is better (as for every SUMMARY measure)
# Fields a sweep holds fixed, and why: these set which images are training (and so which validation intervals
# score a run) or do not change what is learned, so they are neither knobs nor part of a run's name.
SCORED_ON = ("data", "split", "test_fraction", "seed", "label")
NOT_LEARNED = ("device", "compile", "sample_every", "checkpoint_every")
OWN_OPTIONS = ("data", "method", "epochs", "batch_size", "split", "test_fraction", "seed", "label", "device")
MAX_VALUES = 100  # per knob: a range beyond this is surely a typo
REPORT = {"json": "sweep.json", "md": "sweep.md", "png": "sweep.png"}

_TYPES = typing.get_type_hints(TrainConfig)
DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


@dataclass(frozen=True)
class Knob:
    """One swept TrainConfig field and the values it takes, in the order they are tried."""

    name: str
    values: tuple


@dataclass
class SweepConfig:
    """What `toolkit sweep` trains and how it scores; `fixed` holds the TrainConfig fields every run shares."""

    knobs: tuple[Knob, ...]
    fixed: dict = field(default_factory=lambda: {"split": "arc", "test_fraction": 0.25})
    strategy: str = "coordinate"
    shard: Shard = field(default_factory=Shard)
    runs: Path = Path("runs/sweep")
    device: str = "auto"
    # The score's intervals: validation ones, every image of which is a training image (never the test split).
    evaluation: EvalConfig = field(default_factory=lambda: EvalConfig(ends=Ends.validation))
    join: bool = False  # score every configuration's finished run and write the report; train nothing

    def validate(self) -> None:
        """Raise a UserError naming the first bad setting."""
        if self.strategy not in STRATEGIES:
            raise UserError(f"--strategy must be one of {', '.join(STRATEGIES)}, got '{self.strategy}'")
        if not self.knobs:
            raise UserError("nothing to sweep: give at least one --grid NAME=VALUES, e.g. --grid lambda_a=1e-3:1e1")
        if self.strategy == "coordinate" and self.shard.count > 1:
            raise UserError(
                "--shard needs --strategy grid: the coordinate search is sequential (each knob's values are tried "
                "at the best values found so far), so its configurations cannot be split up front"
            )
        if self.join and (self.strategy == "coordinate" or self.shard.count > 1):
            raise UserError(
                "--join scores the runs of every shard of a --strategy grid sweep: give it with --strategy grid and "
                "without --shard (the coordinate search needs no join: rerun it to continue)"
            )
        if self.evaluation.ends != Ends.validation:
            raise UserError("a sweep scores on the validation intervals only; the test split is for reporting")
        names = [k.name for k in self.knobs]
        for name in names:
            if names.count(name) > 1:
                raise UserError(f"--grid {name} is given twice; put all its values in one --grid")
            if name in self.fixed:
                raise UserError(f"{name} is both swept (--grid) and fixed; drop one of them")
        for knob in self.knobs:
            for value in knob.values:
                check_settings({**self.fixed, knob.name: value}, f"--grid {knob.name}={format_value(value)}: ")
        check_settings(self.fixed, "")
        self.evaluation.validate()

    def points(self) -> list[dict]:
        """Every configuration of the full grid as {knob: value}, in a fixed order (the last knob fastest)."""
        names = [k.name for k in self.knobs]
        return [dict(zip(names, values, strict=True)) for values in itertools.product(*(k.values for k in self.knobs))]

    def base_values(self) -> dict:
        """Where the coordinate search starts: each knob at its fixed or default value."""
        base = TrainConfig(**self.fixed)  # resolves the method's learning rate
        return {k.name: getattr(base, k.name) for k in self.knobs}

    def settings(self, values: dict) -> dict:
        """The TrainConfig fields one configuration sets (the rest keep their defaults)."""
        return {**self.fixed, **values}

    def train_config(self, values: dict) -> TrainConfig:
        """The training settings of one configuration, data resolved so that a run finds its file from anywhere."""
        settings = self.settings(values)
        data = str(Path(settings.get("data", DEFAULTS["data"])).resolve())
        return TrainConfig(**{**settings, "data": data, "device": self.device})

    def run_dir(self, values: dict) -> Path:
        """The configuration's folder: an existing one of the same hash (another sweep over other knobs trained
        the same settings under another readable suffix), else a new name."""
        name = run_name(self.train_config(values).to_dict(), values)
        same = sorted(self.runs.glob(f"{name.split('-', 1)[0]}-*")) if self.runs.is_dir() else []
        return same[0] if same else self.runs / name


def field_type(name: str) -> tuple[type, bool]:
    """(int, float, bool or str; whether None is allowed) of a TrainConfig field."""
    if name not in _TYPES:
        raise UserError(f"unknown setting '{name}'; TrainConfig fields are: {', '.join(DEFAULTS)}")
    kind = _TYPES[name]
    optional = False
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        optional, kind = len(args) < len(typing.get_args(kind)), args[0]
    return (kind if kind in (int, float, bool) else str), optional


def parse_value(name: str, text: str) -> object:
    """One value of field `name` from text: '1e-2' for a float, '3' for an int, 'none' where None is allowed."""
    kind, optional = field_type(name)
    text = text.strip()
    if optional and text.lower() in ("none", "null"):
        return None
    try:
        if kind is bool:
            flags = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False}
            return flags[text.lower()]
        if kind is int:
            number = float(text)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if kind is float:
            number = float(text)
            if not math.isfinite(number):
                raise ValueError
            return number
    except (ValueError, KeyError, OverflowError):
        raise UserError(f"{name} takes {kind.__name__} values, got '{text}'") from None
    if not text:
        raise UserError(f"{name}: empty value")
    return text


def log_range(name: str, low: float, high: float, points_per_decade: int) -> list:
    """low, low x 10^(1/p), ... up to high (included when on that lattice), 3 significant digits."""
    kind, _ = field_type(name)
    if kind not in (int, float):
        raise UserError(f"--grid {name}: a log range needs a numeric setting; give a list such as a,b,c")
    if not (0 < low <= high and math.isfinite(high)):
        raise UserError(f"--grid {name}={low:g}:{high:g}: a log range needs 0 < low <= high (for 0, give a list)")
    steps = math.floor(math.log10(high / low) * points_per_decade + 1e-9)
    if steps + 1 > MAX_VALUES:
        raise UserError(f"--grid {name}: {steps + 1} values; at most {MAX_VALUES} per knob")
    values = [float(f"{low * 10 ** (j / points_per_decade):.3g}") for j in range(steps + 1)]
    if kind is int:
        values = [round(v) for v in values]
    return list(dict.fromkeys(values))  # int rounding can repeat a value


def parse_grid(text: str, points_per_decade: int = 1) -> Knob:
    """'lambda_a=1e-3:1e1' (log range) or 'lambda_s=0,0.01,0.1' (list) -> Knob; a one-line error otherwise."""
    if points_per_decade < 1:
        raise UserError(f"--points-per-decade must be at least 1, got {points_per_decade}")
    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise UserError(f"--grid expects NAME=LOW:HIGH or NAME=V1,V2,..., e.g. lambda_a=1e-3:1e1, got '{text}'")
    if name in SCORED_ON:
        raise UserError(f"--grid {name}: {name} sets which images score a run, so it is fixed for a sweep")
    if name in NOT_LEARNED:
        raise UserError(f"--grid {name}: {name} does not change what is learned; there is nothing to sweep")
    if not values.strip():
        raise UserError(f"--grid {name}= is empty: give LOW:HIGH or a list of values")
    try:
        found = _grid_values(name, values, points_per_decade)
    except UserError as e:
        raise UserError(e if str(e).startswith("--grid") else f"--grid {e}") from None
    if not found:
        raise UserError(f"--grid {name}={values}: no values")
    return Knob(name, tuple(found))


def _grid_values(name: str, values: str, points_per_decade: int) -> list:
    field_type(name)  # an unknown name is the first thing to say
    if ":" in values:
        ends = values.split(":")
        if len(ends) != 2:
            raise UserError(f"--grid {name}={values}: a log range is LOW:HIGH, e.g. 1e-3:1e1")
        low, high = (parse_value(name, v) for v in ends)
        if low is None or high is None:
            raise UserError(f"--grid {name}={values}: a log range needs numbers")
        return log_range(name, float(low), float(high), points_per_decade)
    return list(dict.fromkeys(parse_value(name, v) for v in values.split(",") if v.strip()))


def parse_setting(text: str) -> tuple[str, object]:
    """'--set lr=2e-4' -> ('lr', 0.0002): a fixed TrainConfig field without an option of its own here."""
    name, sep, value = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep:
        raise UserError(f"--set expects NAME=VALUE, e.g. lr=2e-4, got '{text}'")
    if name in OWN_OPTIONS:
        raise UserError(f"--set {name}: use --{name.replace('_', '-')} instead")
    try:
        return name, parse_value(name, value)
    except UserError as e:
        raise UserError(f"--set {e}") from None


def check_settings(settings: dict, prefix: str) -> None:
    """TrainConfig's own validation of `settings`, its message behind `prefix`."""
    try:
        TrainConfig(**settings).validate()
    except UserError as e:
        raise UserError(f"{prefix}{e}") from None


def select_shard(points: list[dict], shard: Shard) -> list[tuple[int, dict]]:
    """(k, point) of shard i/n: every configuration k with k % n == i - 1, so the shards partition the grid."""
    return [(k, p) for k, p in enumerate(points) if k % shard.count == shard.index - 1]


def format_value(value: object) -> str:
    """A value as the command line and run names spell it: 0.01, 1e-05, 3, true."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def run_name(config: dict, values: dict) -> str:
    """'<8 hex>-lambda_a0.01-lambda_s0.1': a hash of every learned setting, then the knob values to read."""
    learned = {k: v for k, v in config.items() if k not in NOT_LEARNED}
    digest = hashlib.sha256(json.dumps(learned, sort_keys=True).encode()).hexdigest()[:8]
    readable = "-".join(f"{name}{format_value(value)}" for name, value in values.items())
    return f"{digest}-{re.sub(r'[^A-Za-z0-9._-]', '_', readable)[:80]}"


def coordinate_search(cfg: SweepConfig, score: Callable[[dict], float | None]) -> list[tuple[dict, float | None]]:
    """Coordinate-wise search: from the base values, for each knob in turn try all its values with the other
    knobs at the best found so far, and keep the best; returns every (point, score) tried, in order."""
    tried: dict[str, tuple[dict, float | None]] = {}
    best: dict | None = None

    def key(point: dict) -> str:
        return json.dumps(point, sort_keys=True)

    def value(point: dict | None) -> float:
        found = tried[key(point)][1] if point is not None else None
        return math.inf if found is None else found

    current = cfg.base_values()
    for knob in cfg.knobs:
        for candidate in ({**current, knob.name: v} for v in knob.values):
            if key(candidate) not in tried:
                tried[key(candidate)] = (candidate, score(candidate))
            if best is None or value(candidate) < value(best):
                best = candidate
        current = dict(best)
    return list(tried.values())


def planned_count(cfg: SweepConfig) -> int:
    """How many configurations the strategy trains at most (the coordinate search may repeat a point)."""
    if cfg.strategy == "grid":
        return math.prod(len(k.values) for k in cfg.knobs)
    return sum(len(k.values) for k in cfg.knobs)


def train_command(settings: dict) -> str:
    """`toolkit train ...` with the options whose values differ from TrainConfig's defaults."""
    parts = ["toolkit train"]
    for name, value in settings.items():
        if name in NOT_LEARNED or value == DEFAULTS.get(name) or value is None:
            continue
        option = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            parts.append(option if value else f"--no-{option[2:]}")
        else:
            parts.append(f"{option} {shlex.quote(format_value(value))}")
    return " ".join(parts)


@dataclass
class SweepRecord:
    """One trained and scored configuration."""

    values: dict  # knob -> value
    run_dir: Path
    epoch: int
    summary: dict  # the validation summary (interval_mse, alpha_iqr, ...; see SUMMARY)
    metrics: dict  # the last line of metrics.jsonl (losses, D accuracy, test reconstruction MSE: not for choosing)

    @property
    def score(self) -> float:
        found = self.summary.get(SCORE)
        return math.inf if found is None else found


def ranked(records: list[SweepRecord]) -> list[SweepRecord]:
    """Best (lowest validation interval MSE) first; ties keep the order they were tried in."""
    return sorted(records, key=lambda r: r.score)


def _cell(value: object, form: str = "{:.4g}") -> str:
    if value is None:
        return "—"
    return form.format(value) if isinstance(value, float) else format_value(value)


def metric_columns(records: list[SweepRecord]) -> list[str]:
    """The last-epoch metrics the table shows: D accuracies (as many as the method logs) and test MSE."""
    seen = dict.fromkeys(k for r in records for k in r.metrics)
    return [k for k in seen if k.startswith("D_acc")] + (["test_mse"] if "test_mse" in seen else [])


def table_markdown(cfg: SweepConfig, records: list[SweepRecord]) -> str:
    """The sweep as a Markdown page: what was fixed, then one row per configuration, best first."""
    knobs = [k.name for k in cfg.knobs]
    metrics = metric_columns(records)
    header = ["rank", *knobs, f"val. {SUMMARY[SCORE][0]}", SUMMARY["alpha_iqr"][0], *metrics, "epochs", "run"]
    lines = [
        f"# Sweep ({cfg.strategy}): {len(records)} configurations",
        "",
        f"Score: {SUMMARY[SCORE][0]} at {cfg.evaluation.max_interval:g} on the validation intervals (every image a "
        "training image); lower is better. Test reconstruction MSE (test_mse) is shown, never used for choosing.",
        "",
        "Fixed: " + (", ".join(f"{k}={format_value(v)}" for k, v in cfg.fixed.items()) or "(defaults)"),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for rank, record in enumerate(ranked(records), 1):
        row = [str(rank), *(_cell(record.values[k]) for k in knobs)]
        row += [_cell(record.summary.get(SCORE), "{:.5f}"), _cell(record.summary.get("alpha_iqr"), "{:.3f}")]
        row += [_cell(record.metrics.get(k)) for k in metrics] + [str(record.epoch), f"`{record.run_dir.name}`"]
        lines.append("| " + " | ".join(row) + " |")
    best = ranked(records)[0]
    lines += ["", "Best, as a command:", "", f"    {train_command(cfg.settings(best.values))}", ""]
    return "\n".join(lines)


def report_json(cfg: SweepConfig, records: list[SweepRecord]) -> dict:
    """Every configuration with its settings and scores, the best one and its command."""
    best = ranked(records)[0]
    return {
        "strategy": cfg.strategy,
        "score": f"validation {SCORE} at {cfg.evaluation.max_interval:g} (lower is better)",
        "fixed": cfg.fixed,
        "knobs": {k.name: list(k.values) for k in cfg.knobs},
        "evaluation": dataclasses.asdict(cfg.evaluation),
        "best": {"run": best.run_dir.name, "values": best.values, "command": train_command(cfg.settings(best.values))},
        "configurations": [
            {
                "run": r.run_dir.name,
                "values": r.values,
                "settings": cfg.settings(r.values),
                "epoch": r.epoch,
                "validation": r.summary,
                "metrics": r.metrics,
            }
            for r in ranked(records)
        ],
    }
