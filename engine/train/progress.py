"""Rich progress bars for population training: networks done, the current block's epoch, its
mean training loss and test accuracy, and throughput in network-epochs per second."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from engine.train.block import Block


def network_progress() -> Progress:
    """The bars of a run over networks (training, importing): a description, the bar, a
    free-text ``detail`` field, time spent and time left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )


class TrainProgress:
    """Two bars: all networks of this run, and the block being trained."""

    def __init__(self, networks: int, epochs: int):
        self.epochs = epochs
        self.progress = network_progress()
        self.networks_task = self.progress.add_task(
            "networks", total=max(networks, 1), detail=f"0/{networks}"
        )
        self.networks = networks
        self.done = 0
        self.network_epochs = 0.0
        self.started = time.perf_counter()

    def __enter__(self) -> TrainProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def start_block(self, block: Block, first_epoch: float) -> TaskID:
        """Add the block's bar, at the epoch it resumes from."""
        self.block_start = first_epoch
        self.block_size = block.size
        task = self.progress.add_task(
            f"{block.group.name} {block.start}:{block.stop}",
            total=self.epochs,
            detail=f"epoch {first_epoch:g}/{self.epochs}",
        )
        # add_task's ``completed`` is typed int; a resumed block starts at a fractional epoch.
        self.progress.update(task, completed=first_epoch)
        return task

    def update_block(self, task: TaskID, epoch: float, loss: float, accuracy: float) -> None:
        block_size = self.block_size
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = (self.network_epochs + block_size * (epoch - self.block_start)) / elapsed
        self.progress.update(
            task,
            completed=epoch,
            detail=(
                f"epoch {epoch:.4g}/{self.epochs}  loss {loss:.3f}  test acc {accuracy:.3f}  "
                f"{rate:.1f} net-epochs/s"
            ),
        )

    def finish_block(self, task: TaskID, block: Block) -> None:
        self.network_epochs += block.size * (self.epochs - self.block_start)
        self.done += block.size
        self.progress.remove_task(task)
        self.progress.update(
            self.networks_task, completed=self.done, detail=f"{self.done}/{self.networks}"
        )
