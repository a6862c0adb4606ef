"""Help > Keyboard shortcuts: every menu action with its keys, and the keys that belong to panes."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHeaderView, QMenu, QMenuBar, QTableView, QVBoxLayout, QWidget

# Keys that no menu lists: they act on the pane that has the focus.
PANE_KEYS = (
    ("Tab / Shift+Tab", "Next / previous pane: layers, history, search, files, side panel", "Window"),
    ("Ctrl+C", "Copy the selected path (files) or the layer's digest (layers)", "Files, Layers"),
    ("Up / Down, Page Up / Page Down", "Move through layers, steps or files", "Any list"),
    ("Left / Right", "Close / open a folder", "Files"),
    ("Enter", "Open the chosen recent file, image or step", "Lists"),
    ("Alt + underlined letter", "The button, tab or mode with that letter", "Window"),
)


def menu_actions(bar: QMenuBar) -> list[tuple[str, QAction]]:
    """Every action of the menu bar, with the path of menus that holds it."""
    found: list[tuple[str, QAction]] = []

    def walk(menu: QMenu, where: str) -> None:
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu(), f"{where} > {_plain(action.text())}")
            elif not action.isSeparator():
                found.append((where, action))

    for top in bar.actions():
        if top.menu() is not None:
            walk(top.menu(), _plain(top.text()))
    return found


def _plain(text: str) -> str:
    """Menu text without its mnemonic marks and ellipsis."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…")


class ShortcutsDialog(QDialog):
    """A table of keys: what each does and where."""

    def __init__(self, bar: QMenuBar, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="shortcutsDialog")
        self.setWindowTitle("Keyboard shortcuts")
        self.model = QStandardItemModel(0, 3, self)
        self.model.setHorizontalHeaderLabels(["Keys", "Action", "Where"])
        for where, action in menu_actions(bar):
            if where.endswith("Open recent"):
                continue  # files, not actions
            keys = " or ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
            self._add(keys or "—", _plain(action.text()), where)
        for keys, what, where in PANE_KEYS:
            self._add(keys, what, where)
        self.table = QTableView(objectName="shortcutsTable")
        self.table.setAccessibleName("Keyboard shortcuts")
        self.table.setModel(self.model)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(2, Qt.SortOrder.AscendingOrder)  # by menu: File's keys, then View's...
        self.table.setTabKeyNavigation(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(760, 560)

    def _add(self, keys: str, what: str, where: str) -> None:
        items = [QStandardItem(keys), QStandardItem(what), QStandardItem(where)]
        for item in items:
            item.setEditable(False)
        items[0].setData(keys, Qt.ItemDataRole.AccessibleTextRole)
        self.model.appendRow(items)
