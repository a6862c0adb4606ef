"""What the window shows with no image open: a drop target, Open, the sample, recent files."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget

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
        hint = QLabel("docker save, podman save, OCI archives and folders — plain, .gz, .zst, .xz or .bz2")
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
        inner.addWidget(QLabel("Recent:"))
        self.recent = QListWidget(objectName="recentList")
        self.recent.setAccessibleName("Recent files")
        self.recent.setMaximumHeight(140)
        self.recent.itemActivated.connect(lambda item: self.open_recent.emit(item.text()))
        self.recent.itemDoubleClicked.connect(lambda item: self.open_recent.emit(item.text()))
        inner.addWidget(self.recent)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(drop, 3)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

    def set_recent(self, paths: list[str]) -> None:
        """Show the recent files."""
        self.recent.clear()
        self.recent.addItems(paths)
