"""The history table: every build step, like ``docker history`` (oldest first)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from explorer.ui.roles import ALIGNMENT, DISPLAY, FOREGROUND, RIGHT, TOOLTIP, USER
from explorer.ui.table_model import ImageTableModel
from explorer.ui.format import exact_time, human_size, relative_time, short_command

COLUMNS = ("Created", "Created by", "Size", "Comment")
Index = QModelIndex | QPersistentModelIndex


class HistoryTableModel(ImageTableModel):
    """History entries of one image; empty-layer steps are dimmed."""

    COLUMNS = COLUMNS
    ROLES = frozenset((DISPLAY, TOOLTIP, FOREGROUND, ALIGNMENT, USER))

    def row_of_layer(self, layer: int | None) -> int | None:
        """The history row that made a layer, if the mapping is known."""
        if self.image is None or layer is None:
            return None
        for h in self.image.history:
            if h.layer == layer:
                return h.index
        return None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() or self.image is None else len(self.image.history)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.image is None:
            return None
        h = self.image.history[index.row()]
        col = index.column()
        if role == DISPLAY:
            if col == 0:
                return relative_time(h.created)
            if col == 1:
                return short_command(h.created_by, 2000) or "(no command recorded)"
            if col == 2:
                if h.layer is None:
                    return "0 B" if h.empty_layer else "?"
                return "…" if self.image.pending else human_size(self.image.layers[h.layer].size)
            return h.comment
        if role == TOOLTIP:
            if col == 0:
                return exact_time(h.created)
            if col == 1:
                where = f"layer {h.layer}" if h.layer is not None else ("no layer (metadata only)" if h.empty_layer else "layer unknown")
                return f"{h.created_by}\n\n{where}" + (f"\nauthor: {h.author}" if h.author else "")
            return None
        if role == FOREGROUND and h.empty_layer:
            return QApplication.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        if role == ALIGNMENT and col == 2:
            return RIGHT
        if role == USER:
            return h.layer
        return None
