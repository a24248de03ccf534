"""The trainer and run directories: learning, checkpoints, resume, labels, NaN and Ctrl-C, load_run, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import run_cli, write_dataset
from toolkit.aeai import run as run_dir_module
from toolkit.aeai import trainer
from toolkit.aeai.config import TrainConfig
from toolkit.aeai.methods import METHODS
from toolkit.aeai.run import load_checkpoint, load_run, save_checkpoint
from toolkit.aeai.trainer import TrainingDiverged, reconstruction_mse, train
from toolkit.datasets import open_dataset
from toolkit.errors import UserError


def tiny(data: Path, **overrides) -> TrainConfig:
    """Tiny nets on 32x32 images: a step takes milliseconds."""
    settings = {"data": str(data), "epochs": 2, "batch_size": 8, "latent": 8, "width": 4, "device": "cpu"}
    return TrainConfig(**{**settings, **overrides})


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", ["aeai", "ae"])
def test_a_few_steps_reduce_the_reconstruction_loss(method: str) -> None:
    torch.manual_seed(0)
    m = METHODS[method](TrainConfig(method=method, latent=8, width=4, lr=1e-3), 32)
    optimizers = m.configure_optimizers()
    # Smooth images (random 4x4 colours, upsampled): learnable, unlike pixel noise whose best fit is its mean.
    x = torch.nn.functional.interpolate(torch.rand(16, 3, 4, 4), size=32, mode="bilinear")
    losses = [m.training_step(x, optimizers)["L_R"].item() for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_run_directory_explains_itself(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "runs" / "first"
    result = train(tiny(tiny_dataset, sample_every=1), run)
    assert result.epoch == 2 and not result.interrupted
    config = json.loads((run / "config.json").read_text())
    assert config["image_size"] == 32 and config["lambda_s"] == TrainConfig().lambda_s
    assert Path(config["data_path"]).is_absolute()
    split = json.loads((run / "split.json").read_text())
    assert sorted(split["train"] + split["test"]) == list(range(16)) and len(split["test"]) == 3
    lines = metrics(run)
    assert [line["epoch"] for line in lines] == [1, 2]
    for key in ("L_R", "L_A", "L_C", "L_S", "D_loss", "D_acc", "test_mse", "images_per_s"):
        assert np.isfinite(lines[-1][key]), key
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert (tmp_path / "runs" / "latest").resolve() == run.resolve()


def test_checkpoint_round_trip_restores_identical_outputs(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    last = train(tiny(tiny_dataset, epochs=1), run).metrics
    loaded = load_run(run)
    assert not loaded.model.training and loaded.method == "aeai" and loaded.image_size == 32 and loaded.epoch == 1
    images = torch.from_numpy(open_dataset(tiny_dataset).read_images(loaded.split.test)).permute(0, 3, 1, 2)
    # The metrics line was computed by the in-memory model before it was saved: same number, bit for bit.
    assert reconstruction_mse(loaded.model, images.contiguous()) == last["test_mse"]
    x = torch.rand(4, 3, 32, 32)
    copy = tmp_path / "copy.pt"
    save_checkpoint(copy, {**load_checkpoint(run / "checkpoint.pt"), "epoch": 7})
    again = load_run(run).model
    assert torch.equal(again.decode(again.encode(x)), loaded.model.decode(loaded.model.encode(x)))
    assert load_checkpoint(copy)["epoch"] == 7


@pytest.mark.parametrize("d_augment", ["off", "adaptive"])
def test_resume_continues_epochs_and_metrics_identically(d_augment: str, tiny_dataset: Path, tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(tiny(tiny_dataset, epochs=3, d_augment=d_augment), straight)
    train(tiny(tiny_dataset, epochs=2, d_augment=d_augment), resumed)
    result = train(trainer.resume_config(resumed, {"epochs": 3}), resumed, resume=True)
    assert result.epoch == 3
    assert [line["epoch"] for line in metrics(resumed)] == [1, 2, 3]
    for a, b in zip(metrics(straight), metrics(resumed), strict=True):
        assert a["test_mse"] == b["test_mse"] and a["L_S"] == b["L_S"]
        # ADA's probability is part of the checkpoint: a resumed run augments as the straight one did.
        assert a.get("D_augment_p") == b.get("D_augment_p") and (d_augment == "off") == ("D_augment_p" not in a)


def test_checkpoint_every_saves_at_its_epochs_and_the_last(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved: list[int] = []
    monkeypatch.setattr(run_dir_module, "save_checkpoint", lambda path, state: saved.append(int(state["epoch"])))
    train(tiny(tiny_dataset, epochs=5, checkpoint_every=2), tmp_path / "run")
    assert saved == [2, 4, 5]
    assert len(metrics(tmp_path / "run")) == 5  # every epoch still logs its line


def test_resume_refuses_changed_settings(tiny_dataset: Path, tmp_path: Path) -> None:
    train(tiny(tiny_dataset, epochs=1), tmp_path / "run")
    with pytest.raises(UserError, match="lambda_s"):
        trainer.resume_config(tmp_path / "run", {"lambda_s": 0.5})
    with pytest.raises(UserError, match="already holds a trained run"):
        train(tiny(tiny_dataset, epochs=1), tmp_path / "run")


def test_resume_takes_the_same_data_file_by_another_path_and_refuses_another_file(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    train(tiny(tiny_dataset, epochs=1), tmp_path / "run")
    relative = os.path.relpath(tiny_dataset)
    assert trainer.resume_config(tmp_path / "run", {"data": relative}).data == relative
    copy = tmp_path / "copy.h5"
    shutil.copy(tiny_dataset, copy)
    with pytest.raises(UserError, match="data"):
        trainer.resume_config(tmp_path / "run", {"data": str(copy)})


def test_resume_ignores_the_settings_of_other_methods(tiny_dataset: Path, tmp_path: Path) -> None:
    # A baseline's run must survive a change of AEAI's defaults; its own settings still count.
    train(tiny(tiny_dataset, epochs=1, method="vae"), tmp_path / "run")
    config = trainer.resume_config(tmp_path / "run", {"lambda_a": 0.5, "r1": 3.0, "epochs": 2})
    assert config.epochs == 2 and config.lambda_a == TrainConfig().lambda_a
    with pytest.raises(UserError, match="beta"):
        trainer.resume_config(tmp_path / "run", {"beta": 1.0})


def test_label_selects_only_that_objects_images(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "two.h5", n_labels=3, n_views=8)
    run = tmp_path / "run"
    train(tiny(data, epochs=1, label=2), run)
    split = load_run(run).split
    labels = open_dataset(data).labels
    rows = np.concatenate([split.train, split.test])
    assert len(rows) == 8 and set(labels[rows].tolist()) == {2}
    with pytest.raises(UserError, match="--label 5: no images"):
        train(tiny(data, epochs=1, label=5), tmp_path / "other")


def poison_smoothness_from(monkeypatch: pytest.MonkeyPatch, bad_step: int) -> None:
    """Make L_S NaN from training step `bad_step` on (the tiny set trains one step an epoch: step k is epoch k)."""
    from toolkit.aeai.methods import aeai

    calls = []
    real = aeai.smoothness_loss

    def poisoned(dx: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return real(dx) * (float("nan") if len(calls) >= bad_step else 1.0)

    monkeypatch.setattr(aeai, "smoothness_loss", poisoned)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison_smoothness_from(monkeypatch, 2)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"L_S became nan in epoch 2.*last good checkpoint \(epoch 1\)"):
        train(tiny(tiny_dataset, epochs=3), run)
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1
    assert [line["epoch"] for line in metrics(run)] == [1]


@pytest.mark.parametrize(("bad_epoch", "kept"), [(5, 3), (2, None)])
def test_divergence_names_the_checkpoint_on_disk(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_epoch: int, kept: int | None
) -> None:
    """With --checkpoint-every 3 the epoch before the bad one was never saved: the message names what was."""
    poison_smoothness_from(monkeypatch, bad_epoch)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=f"L_S became nan in epoch {bad_epoch};") as diverged:
        train(tiny(tiny_dataset, epochs=6, checkpoint_every=3), run, progress=lambda *args, **numbers: None)
    message = str(diverged.value)
    assert [line["epoch"] for line in metrics(run)] == list(range(1, bad_epoch))
    if kept is None:
        assert not (run / "checkpoint.pt").exists() and "no checkpoint was written" in message
    else:
        held = load_checkpoint(run / "checkpoint.pt")["epoch"]
        assert held == kept and f"the last good checkpoint (epoch {held}) is kept in {run / 'checkpoint.pt'}" in message


def test_ctrl_c_saves_and_stops_cleanly(tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from toolkit.aeai.methods.aeai import AEAI

    steps = []
    real = AEAI.training_step

    def step_then_ctrl_c(self, x, optimizers):
        steps.append(1)
        if len(steps) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as a user's Ctrl-C, in the middle of epoch 2
        return real(self, x, optimizers)

    monkeypatch.setattr(AEAI, "training_step", step_then_ctrl_c)
    run = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)  # Python's own handler, or SIG_IGN under nohup / a background job
    result = train(tiny(tiny_dataset, epochs=5), run)
    assert result.interrupted and result.epoch == 1
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1
    assert signal.getsignal(signal.SIGINT) == before  # the trainer's handler is gone again


def test_load_run_errors_are_one_line(tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such run directory"):
        load_run(tmp_path / "nope")
    run = tmp_path / "run"
    train(tiny(tiny_dataset, epochs=1), run)
    good = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_run(run)
    torch.save({"format": 1, "model": {}, "evil": object()}, run / "checkpoint.pt")
    with pytest.raises(UserError, match="pickled Python objects"):
        load_run(run)
    (run / "checkpoint.pt").unlink()
    with pytest.raises(UserError, match="no checkpoint"):
        load_run(run)


def test_cli_trains_resumes_and_reports_mistakes(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run = tmp_path / "run"
    args = ["--data", str(tiny_dataset), "--out", str(run), "--width", "4", "--latent", "8", "--batch-size", "8"]
    done = run_cli("train", *args, "--epochs", "1", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    done = run_cli("train", "--resume", "--out", str(run), "--epochs", "2")
    assert done.returncode == 0, done.stderr
    assert [line["epoch"] for line in metrics(run)] == [1, 2]
    bad = run_cli("train", "--resume", "--out", str(run), "--lambda-a", "0")
    assert bad.returncode == 1 and "lambda_a" in bad.stderr and "Traceback" not in bad.stderr
    nothing = run_cli("train", cwd=tmp_path)  # the default data/pole.h5 is not there
    assert nothing.returncode == 1 and "data/pole.h5: no such file" in nothing.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_channels_last_training(tiny_dataset: Path, tmp_path: Path) -> None:
    result = train(tiny(tiny_dataset, device="cuda", epochs=2), tmp_path / "run")
    assert np.isfinite(result.metrics["test_mse"])
    assert next(load_run(tmp_path / "run", device="cuda").model.parameters()).is_cuda


def test_a_saved_config_without_a_newer_field_loads_as_it_was_trained() -> None:
    fresh = TrainConfig(d_augment="adaptive")
    assert TrainConfig.from_dict(fresh.to_dict()) == fresh  # a config that names it keeps it
    saved = {k: v for k, v in fresh.to_dict().items() if k != "d_augment"}
    assert TrainConfig.from_dict(saved).d_augment == "off"  # written before the field existed: D unaugmented
    assert TrainConfig.from_dict(fresh.to_dict() | {"smoothness": "excess"}) == fresh  # a key no longer known
