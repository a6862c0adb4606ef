"""Extraction from the window: progress with Cancel, a result listing what was left out."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Callable

from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from explorer.image.content import ContentError
from explorer.model.errors import ExplorerError
from explorer.image.elsewhere import extract_selected
from explorer.image.extract import ExtractOptions, ExtractResult, extract, write_layer_tar
from explorer.image.loader import Image
from explorer.model.values import Entry
from explorer.model.progress import Monitor
from explorer.formats.source import Source
from explorer.ui.workers import Task, TaskSignals, throttled_progress

DRAG_LIMIT = 256 << 20  # bigger files are extracted with Extract…, not dragged
_drag_dir: str | None = None


class Extraction(QObject):
    """One extraction running in the background, with its progress dialog."""

    finished = Signal(object)  # ExtractResult, int (bytes of a layer tar), or None when it failed
    failed = Signal(str)

    def __init__(self, parent: QWidget, title: str, work: Callable[[Monitor], object]) -> None:
        super().__init__(parent)
        self.parent_widget = parent
        self.signals = TaskSignals()
        self.monitor = Monitor(title, throttled_progress(self.signals, 1))
        self.dialog = QProgressDialog(title, "Cancel", 0, 0, parent)
        self.dialog.setObjectName("extractProgress")
        self.dialog.setMinimumDuration(300)
        self.dialog.canceled.connect(self.cancel)
        self.signals.progress.connect(lambda _t, p: self.dialog.setLabelText(f"{title}\n{p.stage}: {p.done / 1e6:.1f} MB"))
        self.signals.done.connect(self._done)
        self.signals.failed.connect(self._failed)
        self.result: object = None
        QThreadPool.globalInstance().start(Task(1, work, self.monitor, self.signals))

    def cancel(self) -> None:
        """Stop at the next file (files already written stay; a half-written one is removed)."""
        self.monitor.cancelled = True

    def _done(self, _token: int, result: object) -> None:
        self.dialog.reset()
        self.result = result
        self.finished.emit(result)
        if isinstance(result, ExtractResult):
            _report(self.parent_widget, result)

    def _failed(self, _token: int, message: str, cancelled: bool) -> None:
        self.dialog.reset()
        text = "Extraction cancelled; what was written so far stays." if cancelled else message
        self.failed.emit(text)
        self.finished.emit(None)
        box = QMessageBox(QMessageBox.Icon.Warning if cancelled else QMessageBox.Icon.Critical,
                          "Extraction", text, QMessageBox.StandardButton.Ok, self.parent_widget)
        box.setObjectName("extractResult")
        box.setModal(False)
        box.show()


def _report(parent: QWidget, result: ExtractResult) -> None:
    """Say what was written and list what was left out, with reasons."""
    summary = result.summary()
    text = summary[:1].upper() + summary[1:] + "."  # (not ``capitalize``: it would lower the folder's name)
    box = QMessageBox(QMessageBox.Icon.Information, "Extraction finished", text, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("extractResult")
    said = []
    if result.skipped:
        said.append("what was skipped, and why")  # (the summary counts them)
    if result.changed:
        said.append(f"{len(result.changed):,} written without their setuid/setgid bit")
    if said:
        box.setInformativeText("See the details: " + "; ".join(said) + ".")
        box.setDetailedText("\n".join([*(f"{p}: left out: {reason}" for p, reason in result.skipped),
                                        *(f"{p}: {how}" for p, how in result.changed)]))
    box.setModal(False)
    box.show()


def run_extraction(parent: QWidget, source: Source, image: Image, path: str, layer: int | None, only_layer: bool,
                   target: str, options: ExtractOptions | None = None) -> Extraction:
    """Extract ``path`` as the view at ``layer`` shows it (or as ``layer`` stored it, with
    ``only_layer``) into ``target``, in the background (``elsewhere.extract_selected``)."""
    return Extraction(parent, f"Extracting {path} into {target}",
                      lambda m: extract_selected(source, image, path, layer, only_layer, target, options, m))


def run_layer_save(parent: QWidget, source: Source, image: Image, layer: int, target: str) -> Extraction:
    """Save a layer's tar in the background."""
    return Extraction(parent, f"Saving layer {layer} to {target}",
                      lambda m: write_layer_tar(source, image, layer, target, m))


def drag_copy(source: Source, image: Image, entry: Entry) -> str | None:
    """A temporary copy of one file, for dragging it out (removed when the app quits)."""
    global _drag_dir
    if entry.type not in ("file", "hardlink") or entry.size > DRAG_LIMIT:
        return None
    if _drag_dir is None:
        _drag_dir = tempfile.mkdtemp(prefix="layer-explorer-drag-")
        atexit.register(shutil.rmtree, _drag_dir, True)
    folder = tempfile.mkdtemp(dir=_drag_dir)
    try:
        extract(source, image, iter([entry]), folder, base=entry.path)
    except (ContentError, ExplorerError, OSError):
        return None
    path = os.path.join(folder, entry.path.rsplit("/", 1)[-1])
    return path if os.path.isfile(path) else None
