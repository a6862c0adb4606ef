"""The details of the selected path: its metadata and its history across layers."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QSizePolicy,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.image.loader import Image
from explorer.model.values import DIR, HARDLINK, SYMLINK, Entry
from explorer.tree.diff import REMOVED
from explorer.tree.resolve import link_target
from explorer.tree.views import Row
from explorer.ui import resources
from explorer.ui.format import human_size, mode_string, mtime_string, short_command

FIELDS = ("Path", "Type", "Size", "Mode", "Owner", "Modified", "Link target", "Layer", "Extended attributes")


class DetailsPanel(QWidget):
    """Metadata of one entry and every layer that added, changed or removed it."""

    jump_to_layer = Signal(int, str)  # layer, path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("detailsPanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.title = QLabel("No file selected")
        self.title.setWordWrap(True)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        layout.addWidget(self.title)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.values: dict[str, QLabel] = {}
        for name in FIELDS[1:]:
            value = QLabel("")
            value.setWordWrap(True)
            # long unbroken text (ADD file:<64 hex>) must wrap or clip, never widen the panel
            value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            value.setMinimumWidth(10)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.values[name] = value
            form.addRow(name + ":", value)
        layout.addLayout(form)
        layout.addWidget(QLabel("History of this path (click to go to the layer):"))
        self.history = QListWidget()
        self.history.setObjectName("pathHistory")
        self.history.itemActivated.connect(self._activated)
        self.history.itemClicked.connect(self._activated)
        layout.addWidget(self.history, 1)
        self._path = ""

    def clear(self) -> None:
        """Show nothing."""
        self.title.setText("No file selected")
        for v in self.values.values():
            v.setText("")
        self.history.clear()
        self._path = ""

    def show_row(self, image: Image, row: Row, layer: int | None = None) -> None:
        """Show one row of the tree after ``layer``."""
        e: Entry = row.entry
        self._path = row.path
        state = " (removed in this layer; shown as it was)" if row.change == REMOVED else ""
        self.title.setText(row.path + state)
        v = self.values
        v["Type"].setText(e.type)
        v["Size"].setText(f"{human_size(e.size)} ({e.size:,} bytes)" if e.type != DIR else "directory")
        v["Mode"].setText(f"{mode_string(e)}  ({e.mode:04o})")
        v["Owner"].setText(f"{e.uid}:{e.gid}")
        v["Modified"].setText(mtime_string(e.mtime))
        v["Link target"].setText(_link_text(image, e, layer))
        layer = image.layers[e.layer] if 0 <= e.layer < len(image.layers) else None
        v["Layer"].setText(f"{e.layer}: {short_command(layer.created_by, 70)}" if layer else str(e.layer))
        xattrs = ", ".join(f"{k} ({len(val)} bytes)" for k, val in sorted((e.xattrs or {}).items()))
        v["Extended attributes"].setText(xattrs or "none")
        self.history.clear()
        for version in image.tree.history(row.path):
            layer_info = image.layers[version.layer]
            label = {"unchanged": "written again, unchanged"}.get(version.change, resources.LABELS.get(version.change, version.change))
            item = QListWidgetItem(f"layer {version.layer}: {label} — {short_command(layer_info.created_by, 60) or 'no history'}")
            item.setData(Qt.ItemDataRole.UserRole, version.layer)
            item.setToolTip(layer_info.created_by)
            icon = resources.change_icon(version.change) or resources.blank_icon()  # keep rows aligned
            item.setIcon(icon)
            self.history.addItem(item)

    def _activated(self, item: QListWidgetItem) -> None:
        self.jump_to_layer.emit(int(item.data(Qt.ItemDataRole.UserRole)), self._path)


def _link_text(image: Image, e: Entry, layer: int | None) -> str:
    """A link's target and what it is in the image: where a symlink leads, a hard link's other names."""
    if e.type == SYMLINK:
        return f"{e.target}\n{link_target(image.tree, e, layer).describe()}"
    if e.type == HARDLINK:
        more = [p for p in image.tree.linked_names(e, layer) if p not in (e.path, e.target)]
        return f"{e.target} (the same file{'; also ' + ', '.join(more[:5]) if more else ''})"
    return ""
