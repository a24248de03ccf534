"""TensorBoard events of a run (the optional `tensorboard` extra): every metric as a scalar, the grid as an image."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from toolkit.aeai.config import TrainConfig
from toolkit.aeai.tensorboard import EventLog
from toolkit.aeai.trainer import train


def test_training_writes_scalars_and_the_interpolation_grid(tiny_dataset: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = TrainConfig(
        data=str(tiny_dataset), epochs=2, batch_size=8, latent=8, width=4, device="cpu", sample_every=1
    )
    result = train(config, tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    numeric = {name for name, value in result.metrics.items() if name != "epoch"}
    assert {"L_R", "L_A", "L_C", "L_S", "D_acc", "loss", "test_mse", "step"} <= numeric <= set(tags["scalars"])
    assert [event.step for event in events.Scalars("L_R")] == [1, 2]
    assert events.Scalars("test_mse")[-1].value == pytest.approx(result.metrics["test_mse"])
    assert tags["images"] == ["interpolation"]
    grid = events.Images("interpolation")
    assert [image.step for image in grid] == [1, 2] and grid[0].width > grid[0].height > 0


def test_a_resumed_log_drops_what_was_logged_after_the_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with EventLog(tmp_path) as log:  # killed after epoch 3, its checkpoint holds epoch 1
        for epoch in (1, 2, 3):
            log.scalars(epoch, {"epoch": epoch, "loss": float(epoch)})
    with EventLog(tmp_path, after_epoch=1) as log:
        log.scalars(2, {"epoch": 2, "loss": 20.0})
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(1, 1.0), (2, 20.0)]


def test_without_tensorboard_the_log_does_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # importing it now raises ImportError
    with EventLog(tmp_path) as log:
        assert not log.enabled
        log.scalars(1, {"loss": 1.0})
        log.images(1, "grid", torch.zeros(2, 3, 8, 8))
    with EventLog(tmp_path, enabled=False) as log:
        assert not log.enabled
    assert not (tmp_path / "tensorboard").exists()
