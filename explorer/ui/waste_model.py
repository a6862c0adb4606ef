"""The wasted-files table of the Insights view: biggest first, with the reason."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from explorer.ui.format import human_size
from explorer.ui.table_model import ImageTableModel

Index = QModelIndex | QPersistentModelIndex
MAX_ROWS = 500  # the top of the list is what a user acts on


class WasteTableModel(ImageTableModel):
    """Each wasted file: path, the layer that stores it, its size and why it is waste."""

    COLUMNS = ("Path", "Layer", "Size", "Why")

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt API)
        if parent.isValid() or self.image is None or self.image.waste is None:
            return 0
        return min(len(self.image.waste.files), MAX_ROWS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.image is None or self.image.waste is None:
            return None
        f = self.image.waste.files[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (f.path, str(f.layer), human_size(f.size), f.reason)[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{f.path}\n{f.size:,} bytes stored in layer {f.layer}: {f.reason}"
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (1, 2):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.UserRole:
            return (f.path, f.layer)
        return None
