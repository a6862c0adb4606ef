"""The status bar's part while a load runs: its stage and bytes, and a Cancel button."""

from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

from explorer.model.progress import Progress
from explorer.ui.workers import LoadController


class LoadProgress:
    """A progress bar and Cancel, shown while ``loader`` is busy; the stage said in ``label``
    too. ``idle`` is called when the loader has nothing left to do (the label is then the
    window's again)."""

    def __init__(self, bar: QStatusBar, label: QLabel, loader: LoadController, idle: Callable[[], None]) -> None:
        self._label, self._loader, self._idle = label, loader, idle
        self.progress = QProgressBar(objectName="loadProgress")
        self.progress.setMaximumWidth(420)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel", objectName="cancelLoad")
        self.cancel_button.clicked.connect(lambda: loader.cancel())
        self.cancel_button.hide()
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        loader.progress.connect(self._on_progress)
        loader.busy_changed.connect(self._on_busy)

    def _on_progress(self, progress: Progress) -> None:
        stage, layer, layers, done, total = progress.stage, progress.layer, progress.layers, progress.done, progress.total
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(min(1000, int(done * 1000 / total)))
            self.progress.setFormat(f"{stage}: {done / 1e6:.0f} of {total / 1e6:.0f} MB")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(stage)
        # a busy bar shows no text in many styles: say it in the status bar too
        where = f" (layer {layer + 1} of {layers})" if layers and "layer" not in stage else ""
        self._label.setText(f"{stage}{where}" + (f": {done / 1e6:.0f} of {total / 1e6:.0f} MB" if total > 0 else ""))
        self.progress.setToolTip(f"{stage} (layer {layer + 1} of {layers})" if layers else stage)

    def _on_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)
            self.progress.setFormat("opening…")
        elif not self._loader.busy:
            self._idle()
