"""TensorBoard event files for a run, when the optional `tensorboard` package is installed.

`EventLog(run_dir)` writes to `run_dir/tensorboard/` through torch's `SummaryWriter`: each epoch's metrics line
as scalars (every numeric value: loss terms, diagnostics, test MSE, speed) and the interpolation grid as an
image, all over the epoch as metrics.jsonl has them. Without
tensorboard (`pip install '.[tensorboard]'` adds it) every method does nothing, so training never depends on it.
Watch a run, or all of them side by side, with `tensorboard --logdir runs`.
"""

from __future__ import annotations

import numbers
from pathlib import Path

from torch import Tensor

FOLDER = "tensorboard"


class EventLog:
    """Scalars and images for TensorBoard in `run_dir/tensorboard/`; a silent no-op without tensorboard, or when
    not `enabled` (the ranks other than 0 under torchrun). A context manager: leaving it closes the file.

    `after_epoch`: the epoch a resumed run continues from; what an earlier process logged after it (epochs it
    ran past its last checkpoint before a kill) is dropped, as the metrics file drops those lines.
    """

    def __init__(self, run_dir: Path, enabled: bool = True, after_epoch: int = 0) -> None:
        self._writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch raises it when the tensorboard package is missing
            return
        self._writer = SummaryWriter(
            log_dir=str(Path(run_dir) / FOLDER), purge_step=after_epoch + 1 if after_epoch else None
        )

    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def scalars(self, epoch: int, metrics: dict) -> None:
        """Every numeric value of a metrics line but the epoch itself (the axis), each its own curve."""
        if self._writer is None:
            return
        for name, value in metrics.items():
            if name != "epoch" and isinstance(value, numbers.Real) and not isinstance(value, bool):
                self._writer.add_scalar(name, float(value), global_step=epoch)
        self._writer.flush()  # each epoch is on disk for a TensorBoard already watching

    def images(self, epoch: int, tag: str, grid: Tensor, columns: int = 8) -> None:
        """A grid of images (N, 3, S, S) in [0, 1], `columns` a row, as one image at `epoch`."""
        if self._writer is None:
            return
        from torchvision.utils import make_grid

        picture = make_grid(grid.detach().float().clamp(0, 1).cpu(), nrow=columns, padding=2, pad_value=1.0)
        self._writer.add_image(tag, picture, global_step=epoch)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
