"""The layers table: one row for "all layers", then one per layer."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from explorer.image.loader import Image
from explorer.ui.roles import ALIGNMENT, DISPLAY, RIGHT, TOOLTIP, USER
from explorer.ui.table_model import ImageTableModel
from explorer.ui.format import human_size, short_command, short_count

ALL_LAYERS_ROW = 0
COLUMNS = ("#", "Size", "Stored", "Changes", "Digest", "Created by")
CHANGES, DIGEST, COMMAND = 3, 4, 5
Index = QModelIndex | QPersistentModelIndex


def stored_text(image: Image) -> str:
    """The bytes an image's layers take stored, or "…" while a layer's is not known yet (a
    docker-archive's manifest gives none: they are known once the layers are read)."""
    if image.pending and not all(l.blob_size for l in image.layers):
        return "…"
    return human_size(sum(l.blob_size for l in image.layers))


class LayerTableModel(ImageTableModel):
    """Layers of one image; row 0 stands for the final image (all layers applied)."""

    COLUMNS = COLUMNS
    ROLES = frozenset((DISPLAY, TOOLTIP, ALIGNMENT, USER))

    @staticmethod
    def layer_of_row(row: int) -> int | None:
        """The layer index a row stands for (None: all layers)."""
        return None if row == ALL_LAYERS_ROW else row - 1

    @staticmethod
    def row_of_layer(layer: int | None) -> int:
        """The row that stands for a layer index."""
        return ALL_LAYERS_ROW if layer is None else layer + 1

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt API)
        if parent.isValid() or self.image is None:
            return 0
        return len(self.image.layers) + 1

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.image is None:
            return None
        row, col = index.row(), index.column()
        if row == ALL_LAYERS_ROW:
            return self._all_layers(col, role)
        layer = self.image.layers[row - 1]
        if role == DISPLAY:
            if col == 0:
                return str(layer.index)
            if col == COMMAND:
                return short_command(layer.created_by, 2000) if layer.created_by else "(no history)"
            if col == DIGEST:  # (the stored digest is known before the layer is read, when the manifest has it)
                return (layer.digest[7:19] if layer.digest.startswith("sha256:") else layer.digest[:12]) or ("…" if self.image.pending else "")
            if col == 2 and (layer.blob_size or not self.image.pending):
                return human_size(layer.blob_size)
            if self.image.pending:  # known once the layer is read
                return "…"
            if col == 1:
                return human_size(layer.size)
            return f"+{short_count(layer.added)} ~{short_count(layer.modified)} −{short_count(layer.removed)}"
        if role == TOOLTIP:
            if col == COMMAND:
                return layer.created_by or "The image's history does not say which step made this layer."
            if col == DIGEST:
                return f"blob digest: {layer.digest}\ndiff_id: {layer.diff_id}\nmedia type: {layer.media_type}"
            if col == CHANGES:
                return f"{layer.added:,} added, {layer.modified:,} modified, {layer.removed:,} removed"
            if col in (1, 2):
                return f"{layer.size:,} bytes of files; stored as {layer.blob_size:,} bytes ({layer.compression})"
        if role == ALIGNMENT and col in (0, 1, 2):
            return RIGHT
        if role == USER:
            return layer.index
        return None

    def _all_layers(self, col: int, role: int) -> Any:
        image = self.image
        assert image is not None
        if role == DISPLAY:
            if col == 0:
                return "all"
            if col == 1:  # the final files, as the status bar and the strip label them
                return "…" if image.pending or image.file_bytes < 0 else human_size(image.file_bytes)
            if col == 2:
                return stored_text(image)
            if col == COMMAND:
                return "All layers: the final image"
            return ""
        if role == TOOLTIP:
            text = "The merged filesystem with every layer applied: what a container started from the image sees."
            if not image.pending and image.file_bytes >= 0:
                text += (f"\nFinal files: {image.file_bytes:,} bytes. The layers' files add up to "
                         f"{sum(l.size for l in image.layers):,} bytes, counting what later layers replaced or removed; "
                         f"stored in layers: {sum(l.blob_size for l in image.layers):,} bytes.")
            return text
        if role == ALIGNMENT and col in (0, 1, 2):
            return RIGHT
        if role == USER:
            return -1
        return None
