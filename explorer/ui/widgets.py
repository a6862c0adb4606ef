"""Small pieces of layout the panels share."""

from __future__ import annotations

import html

from PySide6.QtCore import QAbstractItemModel, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QAbstractItemView, QLabel, QTableView, QVBoxLayout, QWidget


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


def widget_shortcut(widget: QWidget, slot) -> QShortcut:
    """Ctrl+C for one widget only (two window-wide Ctrl+C would cancel each other out)."""
    shortcut = QShortcut(QKeySequence(QKeySequence.StandardKey.Copy), widget)
    shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
    shortcut.activated.connect(slot)
    return shortcut


def text_width(widget: QWidget, sample: str) -> int:
    """A column width that shows ``sample`` whole in ``widget``'s font, with the cell's margins."""
    return widget.fontMetrics().horizontalAdvance(sample) + 18


def side_table(name: str, accessible: str, model: QAbstractItemModel) -> QTableView:
    """A table of the side panels showing ``model``: whole rows, one line each, no row numbers."""
    table = QTableView(objectName=name)
    table.setAccessibleName(accessible)
    table.setModel(model)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a step's start and end say the most
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().hide()
    # one line of text a row: Qt's default row height leaves the tables half empty space
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    table.setWordWrap(False)
    table.horizontalHeader().setHighlightSections(False)
    return table


def paint_later(widget: QWidget) -> None:
    """Paint ``widget`` at the next turn of the event loop, not with what changes now: what
    came meanwhile (a key, a timer) is handled between the two, and each wait is shorter. Its
    pixels stay as they were until then; the timer is set first, so nothing raised after this
    call can leave the widget unpainted."""
    widget.setUpdatesEnabled(False)
    QTimer.singleShot(1, widget, lambda: widget.setUpdatesEnabled(True))

