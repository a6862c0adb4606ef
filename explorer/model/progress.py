"""Progress and cancellation for long work, without any GUI dependency."""

from __future__ import annotations

from typing import Callable

from explorer.model.errors import Cancelled

# progress(stage, layer_index, layer_count, bytes_done, bytes_total)
ProgressFn = Callable[[str, int, int, int, int], None]


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
            self._progress(self.stage, self.layer, self.layers, done, self.total)
