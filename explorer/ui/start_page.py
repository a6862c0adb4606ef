"""What the window shows with no image open: a drop target, Open, the sample, recent files."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from explorer.ui import resources


class StartPage(QWidget):
    """The welcome page."""

    open_file = Signal()
    open_folder = Signal()
    open_sample = Signal()
    open_recent = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("startPage")
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        drop = QFrame(objectName="dropTarget")
        drop.setFrameShape(QFrame.Shape.StyledPanel)
        drop.setStyleSheet("#dropTarget { border: 2px dashed palette(mid); border-radius: 12px; }")
        inner = QVBoxLayout(drop)
        icon = QLabel()
        icon.setPixmap(resources.app_icon().pixmap(72, 72))
        icon.setAlignment(Qt.AlignmentFlag.AlignCenter)
        inner.addWidget(icon)
        title = QLabel("<h2>Drop an image archive here</h2>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        inner.addWidget(title)
        hint = QLabel("docker save, podman save, OCI archives and folders — plain, .gz, .zst, .xz or .bz2<br>"
                      "or File &gt; Open from engine (Docker, Podman) / registry")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        inner.addWidget(hint)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for text, signal, name in (("&Open archive…", self.open_file, "openButton"),
                                   ("Open &folder…", self.open_folder, "openFolderButton"),
                                   ("Open &sample image", self.open_sample, "sampleButton")):
            b = QPushButton(text, objectName=name)
            b.clicked.connect(signal)
            buttons.addWidget(b)
        buttons.addStretch(1)
        inner.addLayout(buttons)
        self.recent_title = QLabel("<b>Recent</b>")
        inner.addWidget(self.recent_title)
        self.recent = QListWidget(objectName="recentList")
        self.recent.setAccessibleName("Recent files")
        self.recent.setMaximumHeight(140)
        self.recent.itemActivated.connect(self._chosen)
        self.recent.itemDoubleClicked.connect(self._chosen)
        inner.addWidget(self.recent)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(drop, 3)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

    def set_recent(self, paths: list[str]) -> None:
        """Show the recent sources: the name first, then where it is; gone files dimmed."""
        self.recent.clear()
        dim = self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        for path in paths:
            item = QListWidgetItem(_recent_text(path))
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(path)
            if "://" not in path and not os.path.exists(path):
                item.setForeground(dim)
                item.setToolTip(f"{path}\n(no longer there)")
            self.recent.addItem(item)
        self.recent.setVisible(bool(paths))
        self.recent_title.setVisible(bool(paths))

    def _chosen(self, item: QListWidgetItem) -> None:
        self.open_recent.emit(item.data(Qt.ItemDataRole.UserRole))


def _recent_text(path: str) -> str:
    """``name — folder`` for a file, the reference itself for an engine or registry image."""
    if "://" in path:
        return path
    folder, _, name = path.rstrip("/").rpartition("/")
    return f"{name}   —   {folder or '/'}"
