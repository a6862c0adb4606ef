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
from explorer.tree.diff import ADDED, MODIFIED, REMOVED
from explorer.tree.explain import (CONTENT_CHANGED, CONTENT_SAME, CONTENT_UNKNOWN, MODE, MTIME, OWNER, TARGET, TYPE,
                                   XATTRS, Difference, Step, last_step, removal, step_differences)
from explorer.tree.index import LayerTree, Version
from explorer.tree.resolve import link_target
from explorer.tree.views import Row
from explorer.ui import resources
from explorer.ui.format import human_size, mode_string, mtime_string, not_yet, short_command

FIELDS = ("Path", "Change", "Type", "Size", "Mode", "Owner", "Modified", "Link target", "Layer", "Package",
          "Extended attributes")


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
            value.setTextFormat(Qt.TextFormat.PlainText)  # names from the image are never markup
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
        self.history.setAccessibleName("History of this path")
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
        gone = removal(image.tree, row.path, layer) if row.change == REMOVED else None
        state = f" (removed in layer {gone.layer}; shown as it was)" if gone is not None else ""
        self.title.setText(row.path + state)
        v = self.values
        v["Change"].setText(change_text(image.tree, row, layer))
        v["Type"].setText(e.type)
        v["Size"].setText(f"{human_size(e.size)} ({e.size:,} bytes)" if e.type != DIR else "directory")
        v["Mode"].setText(f"{mode_string(e)}  ({e.mode:04o})")
        v["Owner"].setText(f"{e.uid}:{e.gid}")
        v["Modified"].setText(mtime_string(e.mtime))
        v["Link target"].setText(_link_text(image, e, layer))
        shown = gone.layer if gone is not None else e.layer  # the layer the tree's Layer column names
        info = image.layers[shown] if 0 <= shown < len(image.layers) else None
        v["Layer"].setText(f"{shown}: {short_command(info.created_by, 70)}" if info else str(shown))
        v["Package"].setText(_package_text(image, row.path))
        xattrs = ", ".join(f"{k} ({len(val)} bytes)" for k, val in sorted((e.xattrs or {}).items()))
        v["Extended attributes"].setText(xattrs or "none")
        self.history.clear()
        before: Entry | None = None
        for version in image.tree.history(row.path):
            layer_info = image.layers[version.layer]
            label = {"unchanged": "written again, unchanged"}.get(version.change, resources.LABELS.get(version.change, version.change))
            item = QListWidgetItem(f"layer {version.layer}: {label} — {short_command(layer_info.created_by, 60) or 'no history'}")
            item.setData(Qt.ItemDataRole.UserRole, version.layer)
            item.setToolTip("\n".join(t for t in (_version_text(image.tree, before, version), layer_info.created_by) if t))
            before = version.entry
            icon = resources.change_icon(version.change) or resources.blank_icon()  # keep rows aligned
            item.setIcon(icon)
            self.history.addItem(item)

    def _activated(self, item: QListWidgetItem) -> None:
        self.jump_to_layer.emit(int(item.data(Qt.ItemDataRole.UserRole)), self._path)


def change_text(tree: LayerTree, row: Row, layer: int | None) -> str:
    """What the last layer to touch a row's path did to it: "Removed in layer 3 (it was added in layer 1)"."""
    gone = removal(tree, row.path, layer) if row.change == REMOVED else None
    if gone is not None:
        origin = [f"it was added in layer {gone.added}"] if gone.added is not None else []
        if gone.written is not None and gone.written != gone.added:
            origin.append(f"last written in layer {gone.written}")
        return f"Removed in layer {gone.layer}" + (f" ({', '.join(origin)})" if origin else "")
    step = last_step(tree, row.path, layer)
    return _step_text(step, step_differences(tree, step)) if step is not None else ""


def _version_text(tree: LayerTree, before: Entry | None, version: Version) -> str:
    """``change_text`` of one version of the history, given the entry before it."""
    step = Step(version.layer, version.change, before, version.entry)
    if version.change == REMOVED:
        return f"Removed in layer {version.layer}"
    return _step_text(step, step_differences(tree, step))


def _step_text(step: Step, found: list[Difference]) -> str:
    """A sentence for one step and what it changed."""
    if step.change == ADDED:
        return f"Added in layer {step.layer}"
    parts = [difference_text(d) for d in found]
    if step.change == MODIFIED:
        return f"Changed in layer {step.layer}" + (f": {', '.join(parts)}" if parts else "")
    # written again as it was: its bytes are the same, so only what the rules ignore can differ
    parts = [difference_text(d) for d in found if d.what not in (CONTENT_SAME, CONTENT_UNKNOWN)]
    return f"Written again in layer {step.layer}, unchanged" + (f" ({', '.join(parts)})" if parts else "")


def difference_text(d: Difference) -> str:
    """One difference in a few words: ``mode 0644 -> 0640``, ``content changed (size 6 B -> 10 B)``."""
    if d.what == MODE:
        return f"mode {d.before & 0o7777:04o} -> {d.after & 0o7777:04o}"
    if d.what in (OWNER, TYPE, TARGET):
        return f"{d.what} {d.before} -> {d.after}"
    if d.what == CONTENT_CHANGED:
        sizes = f"same size, {human_size(d.after)}" if d.before == d.after else f"size {_sizes(d.before, d.after)}"
        return f"content changed ({sizes})"
    if d.what == CONTENT_SAME:
        return "content unchanged"
    if d.what == CONTENT_UNKNOWN:
        return f"content not compared (same size, {human_size(d.after)})"
    if d.what == XATTRS:
        return _xattrs_text(d.before, d.after)
    if d.what == MTIME:
        return f"modified time {mtime_string(d.before)} -> {mtime_string(d.after)}"
    return d.what


def _sizes(a: int, b: int) -> str:
    """Two sizes, in bytes when rounding would make them look the same."""
    if human_size(a) == human_size(b):
        return f"{a:,} -> {b:,} bytes"
    return f"{human_size(a)} -> {human_size(b)}"


def _xattrs_text(before: dict[str, bytes], after: dict[str, bytes]) -> str:
    """Which extended attributes came, went or changed."""
    parts = []
    for label, keys in (("added", after.keys() - before.keys()), ("removed", before.keys() - after.keys()),
                        ("changed", {k for k in before.keys() & after.keys() if before[k] != after[k]})):
        if keys:
            parts.append(f"{label} {', '.join(sorted(keys))}")
    return f"extended attributes {'; '.join(parts)}"


def _link_text(image: Image, e: Entry, layer: int | None) -> str:
    """A link's target and what it is in the image: where a symlink leads, a hard link's other names."""
    if e.type == SYMLINK:
        return f"{e.target}\n{link_target(image.tree, e, layer).describe()}"
    if e.type == HARDLINK:
        more = [p for p in image.tree.linked_names(e, layer) if p not in (e.path, e.target)]
        return f"{e.target} (the same file{'; also ' + ', '.join(more[:5]) if more else ''})"
    return ""


def _package_text(image: Image, path: str) -> str:
    """The package of the final image that lists a file, as its manager says."""
    report = image.packages
    at = report.owner.get(path) if report is not None else None
    if at is None and not image.analysed:
        return not_yet(image.unaccounted)
    if at is None:
        return "none (no package database lists it)" if report is not None and report.installed else "—"
    p = report.installed[at]
    return f"{p.package.name} {p.package.version} ({p.package.manager}), last installed or changed in layer {p.layer}"
