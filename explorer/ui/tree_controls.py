"""Above and below the file tree: the view's mode, which changes to hide, the path search, and
the legend of the change marks. They say what the user chose; the view applies it."""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QHBoxLayout, QLabel, QLineEdit, QMenu, QRadioButton,
                               QToolButton, QVBoxLayout, QWidget)

from explorer.tree.diff import ADDED, MODIFIED, REMOVED, UNCHANGED
from explorer.tree.views import DIFF, GLOB, MERGED, REGEX, SUBSTRING
from explorer.ui import resources

SEARCH_PAUSE = 250  # ms of no typing before a search starts


class TreeControls(QWidget):
    """The two rows above the tree: merged or changes, rows to hide; the path search."""

    mode_chosen = Signal(str)  # MERGED or DIFF
    filters_changed = Signal()  # what to hide, or the search (after a pause in typing)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        rows = QVBoxLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.merged_button = QRadioButton("&Merged view", objectName="mergedMode")
        self.diff_button = QRadioButton("Layer &changes only", objectName="diffMode")
        self.merged_button.setChecked(True)
        self.merged_button.setToolTip("What a container sees after the selected layer (Ctrl+D toggles)")
        self.diff_button.setToolTip("Only what the selected layer added, modified or removed (Ctrl+D toggles)")
        group = QButtonGroup(self)
        group.addButton(self.merged_button)
        group.addButton(self.diff_button)
        self.diff_button.toggled.connect(lambda on: self.mode_chosen.emit(DIFF if on else MERGED))
        row.addWidget(self.merged_button)
        row.addWidget(self.diff_button)
        row.addStretch(1)
        # A menu rather than four check boxes: beside the two modes they clipped both at 1366 px.
        self.hide_button = QToolButton(objectName="hideButton")
        self.hide_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.hide_button.setAccessibleName("Hide rows by change")
        # room for the menu's arrow, which the style draws over the end of the text otherwise ("Hide…")
        self.hide_button.setStyleSheet("QToolButton { padding-right: 14px; }")
        menu = QMenu(self.hide_button)
        self.hide_boxes: dict[str, QAction] = {}
        for change in (ADDED, MODIFIED, REMOVED, UNCHANGED):
            action = menu.addAction(resources.change_icon(change) or resources.blank_icon(), resources.LABELS[change])
            action.setObjectName(f"hide_{change}")
            action.setCheckable(True)
            action.toggled.connect(lambda _on: self.filters_changed.emit())
            action.toggled.connect(self._hide_label)
            self.hide_boxes[change] = action
        self.hide_button.setMenu(menu)
        self._hide_label()
        row.addWidget(self.hide_button)
        rows.addLayout(row)
        row = QHBoxLayout()
        self.search_kind = QComboBox(objectName="searchKind")
        self.search_kind.addItem("Substring", SUBSTRING)
        self.search_kind.addItem("Glob", GLOB)
        self.search_kind.addItem("Regex", REGEX)
        self.search_kind.currentIndexChanged.connect(lambda _i: self.filters_changed.emit())
        self.search_box = QLineEdit(objectName="searchBox")
        self.search_box.setPlaceholderText("Search paths (Ctrl+F)")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.setMinimumWidth(160)
        self.search_timer = QTimer(self, singleShot=True, interval=SEARCH_PAUSE)
        self.search_timer.timeout.connect(lambda: self.filters_changed.emit())
        self.search_box.textChanged.connect(lambda _t: self.search_timer.start())
        self.search_status = QLabel("", objectName="searchStatus")
        self.search_status.setFixedWidth(170)  # a changing message must not shift the search box
        row.addWidget(self.search_box, 1)
        row.addWidget(self.search_kind)
        row.addWidget(self.search_status)
        rows.addLayout(row)

    def inputs(self) -> list[QWidget | QAction]:
        """What the user sets here (disabled while the files are still being read)."""
        return [self.search_box, self.search_kind, self.merged_button, self.diff_button, *self.hide_boxes.values()]

    def _hide_label(self) -> None:
        """The Hide button names what it hides."""
        hidden = [resources.LABELS[c] for c, a in self.hide_boxes.items() if a.isChecked()]
        self.hide_button.setText(f"Hide: {', '.join(hidden)}" if hidden else "Hide…")


def legend() -> QWidget:
    """The marks of added, modified and removed rows, in their colours."""
    widget = QWidget(objectName="legend")
    row = QHBoxLayout(widget)
    row.setContentsMargins(2, 0, 2, 0)
    for change in (ADDED, MODIFIED, REMOVED):
        icon = QLabel()
        icon.setPixmap(resources.change_icon(change).pixmap(14, 14))
        text = QLabel(resources.LABELS[change] + ("  (struck through)" if change == REMOVED else ""))
        colour = resources.change_colour(change)
        if colour is not None:
            text.setStyleSheet(f"color: {colour.name()}")
        row.addWidget(icon)
        row.addWidget(text)
        row.addSpacing(10)
    row.addStretch(1)
    return widget



