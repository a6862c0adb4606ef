"""What the layers and history tables have in common: one image, fixed columns."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from explorer.image.loader import Image
from explorer.ui.roles import answer

Index = QModelIndex | QPersistentModelIndex


class ImageTableModel(QAbstractTableModel):
    """A table about one image, with the column titles in ``COLUMNS``."""

    COLUMNS: tuple[str, ...] = ()
    # The roles ``data`` answers (None: any): a painted cell is asked for seven, most of them
    # never answered by these tables.
    ROLES: frozenset[int] | None = None

    def __init__(self, image: Image | None = None) -> None:
        super().__init__()
        self.image = image

    def set_image(self, image: Image | None) -> None:
        """Show another image."""
        self.beginResetModel()
        self.image = image
        self.endResetModel()

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self.COLUMNS)

    def multiData(self, index: Index, roles: Any) -> None:  # noqa: N802 (Qt API)
        """A cell's roles in one call, asking ``data`` only for those it answers."""
        answered = self.ROLES
        answer(roles, lambda role: self.data(index, role) if answered is None or role in answered else None)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self.COLUMNS):
            return self.COLUMNS[section]
        return None
