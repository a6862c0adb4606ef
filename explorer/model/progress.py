"""Progress and cancellation for long work, without any GUI dependency."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from explorer.model.errors import Cancelled


@dataclass(frozen=True, slots=True)
class Progress:
    """Where long work stands: a stage (reading layer 2 of 5), and bytes done of its total."""

    stage: str
    layer: int  # the layer being worked on, counted from 0
    layers: int  # how many there are (0: not a per-layer stage)
    done: int
    total: int  # 0 when unknown


ProgressFn = Callable[[Progress], None]


def throttled(report: ProgressFn, every: float = 0.05) -> ProgressFn:
    """``report`` called at most every ``every`` seconds, and at each new stage."""
    last = [0.0, ""]

    def throttle(progress: Progress) -> None:
        now = time.monotonic()
        if now - last[0] >= every or progress.stage != last[1]:
            last[0], last[1] = now, progress.stage
            report(progress)

    return throttle


class Monitor:
    """Carries a progress callback and a cancel flag through the loaders.

    The GUI's worker sets ``cancelled`` from another thread; the loaders call ``tick`` often
    and stop with ``Cancelled`` at the next one.
    """

    def __init__(self, source: str = "", progress: ProgressFn | None = None) -> None:
        self.source = source
        self.cancelled = False
        self._progress = progress
        self.stage = ""
        self.layer = 0
        self.layers = 0
        self.total = 0

    def begin(self, stage: str, layer: int = 0, layers: int = 0, total: int = 0) -> None:
        """Start a stage (e.g. reading layer 2 of 5, of ``total`` bytes)."""
        self.stage, self.layer, self.layers, self.total = stage, layer, layers, total
        self.tick(0)

    def tick(self, done: int) -> None:
        """Report bytes done in the current stage; raise ``Cancelled`` if asked to stop."""
        if self.cancelled:
            raise Cancelled("cancelled")
        if self._progress is not None:
            self._progress(Progress(self.stage, self.layer, self.layers, done, self.total))

    def relay(self, progress: Progress) -> None:
        """Pass on progress reported elsewhere (by a worker process); raise ``Cancelled`` if asked to stop."""
        if self.cancelled:
            raise Cancelled("cancelled")
        self.stage, self.layer, self.layers, self.total = progress.stage, progress.layer, progress.layers, progress.total
        if self._progress is not None:
            self._progress(progress)
