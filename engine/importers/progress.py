"""The rich progress bar of an import: networks written and the source's megabytes per second."""

from __future__ import annotations

import time

from engine.train.progress import network_progress


class ImportProgress:
    """One bar over the networks an import owns; blocks already in the store count at once."""

    def __init__(self, networks: int, name: str):
        self.progress = network_progress()
        self.networks = networks
        self.done = 0
        self.task = self.progress.add_task(
            f"import {name}", total=max(networks, 1), detail=f"0/{networks}"
        )
        self.started = time.perf_counter()

    def __enter__(self) -> ImportProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, networks: int, bytes_read: int) -> None:
        """``networks`` more are in the store; ``bytes_read`` of the source converted so far."""
        self.done += networks
        rate = bytes_read / 1e6 / max(time.perf_counter() - self.started, 1e-9)
        self.progress.update(
            self.task,
            completed=self.done,
            detail=f"{self.done}/{self.networks} networks  {rate:.0f} MB/s",
        )
