"""The selected layer in full, under the layer list: its whole build step, digests and sizes."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QPalette, QResizeEvent, QTextOption
from PySide6.QtWidgets import QFormLayout, QFrame, QLabel, QPlainTextEdit, QSizePolicy, QVBoxLayout, QWidget

from explorer.image.loader import Image
from explorer.ui.format import exact_time, human_size, not_yet, relative_time, short_command
from explorer.ui.layer_model import stored_text

COMMAND_LINES = 3  # the step's text shows this many lines before it scrolls


class ElidedLabel(QLabel):
    """One line that elides in the middle when it does not fit; the full text is its tooltip."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName=name)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextFormat(Qt.TextFormat.PlainText)  # names from the image are never markup
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.DefaultContextMenu)

    def set_full_text(self, text: str) -> None:
        """Show ``text``, elided in the middle as the width needs."""
        self._full = text
        self.setToolTip(text)
        self._fit()

    def full_text(self) -> str:
        """The text before eliding."""
        return self._full

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        self.setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle, max(self.width(), 40)))


class LayerStrip(QFrame):
    """What the layer list cannot show in its cells: the step, both digests, the time, every size."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="layerStrip")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)  # set apart from the tables around it
        self.setBackgroundRole(QPalette.ColorRole.AlternateBase)
        self.setAccessibleName("Selected layer")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 4)
        outer.setSpacing(2)
        self.heading = QLabel(objectName="layerHeading")
        self.heading.setWordWrap(True)
        self.heading.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.heading)
        self.command = QPlainTextEdit(objectName="layerCommand")
        self.command.setReadOnly(True)
        self.command.setAccessibleName("Build step of the selected layer")
        self.command.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.command.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.command.setFrameShape(QFrame.Shape.NoFrame)
        self.command.setTabChangesFocus(True)
        line = self.command.fontMetrics().lineSpacing()
        margin = int(self.command.document().documentMargin())
        self.command.setFixedHeight(line * COMMAND_LINES + 2 * margin)
        outer.addWidget(self.command)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setHorizontalSpacing(8)
        form.setVerticalSpacing(1)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.fields: dict[str, ElidedLabel] = {}
        self.titles: dict[str, QLabel] = {}
        for key in ("created", "sizes", "changes", "packages", "digest", "diff_id"):
            self.fields[key] = ElidedLabel(f"layer_{key}")
            self.titles[key] = QLabel()
            form.addRow(self.titles[key], self.fields[key])
        outer.addLayout(form)

    def show_layer(self, image: Image, layer: int | None) -> None:
        """Describe a layer (None: the final image, all layers applied)."""
        if layer is None:
            self._show_image(image)
            return
        info = image.layers[layer]
        step = image.history[info.history] if info.history is not None and info.history < len(image.history) else None
        self._titles("Created", "Size", "Changes", "Packages", "Digest", "diff_id")
        self.heading.setText(f"<b>Layer {layer}</b> of {len(image.layers)}")
        self.command.setPlainText(short_command(info.created_by, 1 << 20) if info.created_by
                                  else "The image's history does not say which step made this layer.")
        created = step.created if step is not None else ""
        self.fields["created"].set_full_text(f"{exact_time(created)} ({relative_time(created)})" if created else "not recorded")
        if image.pending:
            self.fields["sizes"].set_full_text(f"… in files · {_stored(info.blob_size, info.compression)}")
            self.fields["changes"].set_full_text("… (the layer is still being read)")
        else:
            self.fields["sizes"].set_full_text(f"{human_size(info.size)} in files · {_stored(info.blob_size, info.compression)}")
            self.fields["changes"].set_full_text(f"+{info.added:,} added · ~{info.modified:,} modified · −{info.removed:,} removed")
        self.fields["packages"].set_full_text(_layer_packages(image, layer))
        self.fields["digest"].set_full_text(info.digest or "not recorded")
        self.fields["diff_id"].set_full_text(info.diff_id or "not recorded")

    def _titles(self, *titles: str) -> None:
        for label, title in zip(self.titles.values(), titles):
            label.setText(f"{title}:")

    def _show_image(self, image: Image) -> None:
        self._titles("Created", "Size", "Files", "Packages", "Config", "Platform")
        self.heading.setText(f"<b>All layers</b>: the final image ({len(image.layers)} layers)")
        self.command.setPlainText(", ".join(image.tags) or "untagged")
        self.fields["created"].set_full_text(f"{exact_time(image.created)} ({relative_time(image.created)})"
                                             if image.created else "not recorded")
        stored = stored_text(image)
        if image.pending or image.file_bytes < 0:
            self.fields["sizes"].set_full_text(f"final files … · stored in layers {stored}")
            self.fields["changes"].set_full_text("…")
        else:
            self.fields["sizes"].set_full_text(f"final files {human_size(image.file_bytes)} · "
                                               f"stored in layers {stored}")
            self.fields["changes"].set_full_text(f"{image.file_count:,} entries in the final filesystem")
        report = image.packages
        self.fields["packages"].set_full_text(
            f"{len(report.installed)} installed, {human_size(sum(i.size for i in report.installed))} of files"
            if report is not None and report.installed else "none found" if image.analysed and not image.pending
            else not_yet(image.unaccounted))
        self.fields["digest"].set_full_text(image.config_digest or "not recorded")
        self.fields["diff_id"].set_full_text(image.platform or "unknown platform")


def _layer_packages(image: Image, layer: int) -> str:
    """What a layer did to the packages, and the bytes it wrote that no package lists."""
    report = image.packages
    if image.pending or not image.analysed:
        return not_yet(image.unaccounted)
    if report is None or layer >= len(report.layers) or not (report.installed or any(report.layers)):
        return "no package database in this image"
    did, size = report.layers[layer], image.layers[layer].size
    return (f"+{len(did.added)} ~{len(did.changed)} −{len(did.removed)} · "
            f"{human_size(max(0, size - did.owned_bytes))} not from a package")


def _stored(blob_size: int, compression: str) -> str:
    """How a layer is stored, e.g. ``559.6 kB stored (gzip)``."""
    if not blob_size:
        return "stored size unknown"
    how = compression if compression and compression != "none" else "uncompressed"
    return f"{human_size(blob_size)} stored ({how})"
