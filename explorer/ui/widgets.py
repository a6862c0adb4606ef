"""Small pieces of layout the panels share."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


def titled(title: str, widget: QWidget) -> QWidget:
    """A widget under a bold title (the title is its buddy, for keyboard access)."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    label = QLabel(f"<b>{html.escape(title)}</b>")
    label.setBuddy(widget)
    layout.addWidget(label)
    layout.addWidget(widget, 1)
    return box


def rich_label(name: str) -> QLabel:
    """A wrapping label for rich text, named for tests and stylesheets."""
    label = QLabel(objectName=name)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    return label
