"""Compare two versions of a path from its history: unified or side-by-side, text or binary."""

from __future__ import annotations

import html

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QRadioButton, QTextBrowser, QVBoxLayout, QWidget

from explorer.image.content import BINARY, TEXT, ContentError, VersionContent, kind_of, load_version, side_by_side, unified_diff
from explorer.model.errors import ExplorerError
from explorer.image.loader import Image
from explorer.formats.source import Source
from explorer.ui import resources
from explorer.ui.format import human_size
from explorer.ui.workers import BackgroundCall
from explorer.tree.diff import ADDED, REMOVED


class ComparePanel(QWidget):
    """Two versions of the selected path, chosen from the layers that wrote it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("comparePanel")
        self.background = BackgroundCall(self)
        self.background.result.connect(self._on_result)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        # one version a row: side by side, a narrow side panel clipped the second
        versions = QFormLayout()
        self.old = QComboBox(objectName="compareOld")
        self.new = QComboBox(objectName="compareNew")
        for box, name in ((self.old, "Older version"), (self.new, "Newer version")):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(12)
            box.setAccessibleName(name)
        versions.addRow("&From:", self.old)
        versions.addRow("&To:", self.new)
        layout.addLayout(versions)
        modes = QHBoxLayout()
        self.unified = QRadioButton("Unified", objectName="compareUnified")
        self.split = QRadioButton("Side by side", objectName="compareSideBySide")
        self.unified.setChecked(True)
        modes.addWidget(self.unified)
        modes.addWidget(self.split)
        modes.addStretch(1)
        layout.addLayout(modes)
        self.output = QTextBrowser(objectName="compareOutput")
        self.output.setAccessibleName("Comparison of the selected path")
        self.output.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.output.setLineWrapMode(QTextBrowser.LineWrapMode.NoWrap)
        layout.addWidget(self.output, 1)
        self.old.currentIndexChanged.connect(self._changed)
        self.new.currentIndexChanged.connect(self._changed)
        self.unified.toggled.connect(self._changed)
        self._source: Source | None = None
        self._image: Image | None = None
        self._path = ""
        self._filling = False
        self.last_text = ""  # the plain text of the last comparison (for copying and tests)

    def clear(self) -> None:
        """Compare nothing."""
        self._path = ""
        self._fill([])
        self.output.setPlainText("Select a file that more than one layer wrote to compare its versions.")

    def show_path(self, source: Source, image: Image, path: str, layer: int | None) -> None:
        """Offer the versions of ``path``; start with this layer's against the one before it."""
        self._source, self._image, self._path = source, image, path
        versions = [v for v in image.tree.history(path) if v.entry is not None]
        self._fill(versions)
        if len(versions) < 2:
            self.output.setPlainText("Only one layer wrote this path: there is nothing to compare."
                                     if versions else "Nothing to compare.")
            return
        at = len(versions) - 1
        if layer is not None:
            at = max((i for i, v in enumerate(versions) if v.layer <= layer), default=1)
        at = max(at, 1)
        self._filling = True
        self.old.setCurrentIndex(at - 1)
        self.new.setCurrentIndex(at)
        self._filling = False
        self._changed()

    def _fill(self, versions: list) -> None:
        self._filling = True
        for box in (self.old, self.new):
            box.clear()
            for v in versions:
                icon = resources.change_icon(v.change if v.change != REMOVED else ADDED)
                text = f"layer {v.layer}: {resources.LABELS.get(v.change, v.change)}, {human_size(v.entry.size)}"
                if icon is not None:
                    box.addItem(icon, text, v.entry)
                else:
                    box.addItem(text, v.entry)
        self._filling = False

    def _changed(self) -> None:
        if self._filling or self.old.count() < 2 or self._source is None:
            return
        a, b = self.old.currentData(), self.new.currentData()
        if a is None or b is None:
            return
        source, image = self._source, self._image
        side = self.split.isChecked()
        self.output.setPlainText("comparing…")

        def work(_m):
            try:
                return (a, b, side, load_version(source, image, a), load_version(source, image, b))
            except (ContentError, ExplorerError, OSError) as exc:
                return (a, b, side, str(exc), None)

        self.background.run("compare", work)

    def _on_result(self, value: object) -> None:
        a, b, side, old, new = value  # type: ignore[misc]
        if a is not self.old.currentData() or b is not self.new.currentData():
            return
        if new is None:
            self.output.setPlainText(str(old))
            return
        kinds = {kind_of(old.entry, old.data), kind_of(new.entry, new.data)}
        meta = _metadata_changes(old, new)
        if old.digest and old.digest == new.digest and old.entry.type == new.entry.type:
            text = "The contents are identical." + (f" Only the metadata changed: {meta}." if meta else "")
            self.output.setPlainText(text)
            self.last_text = text
        elif BINARY in kinds or not kinds <= {TEXT, "empty", "link"}:
            self._binary(old, new)
        elif side:
            self._side_by_side(old, new)
        else:
            self._unified(old, new)

    def _binary(self, old: VersionContent, new: VersionContent) -> None:
        """A table of sizes and digests: bytes are not shown line by line."""
        rows = [("", f"layer {old.layer}", f"layer {new.layer}"),
                ("size", f"{old.entry.size:,} bytes", f"{new.entry.size:,} bytes"),
                ("sha256", old.digest or "-", new.digest or "-"),
                ("mode", f"{old.entry.mode:04o}", f"{new.entry.mode:04o}"),
                ("owner", f"{old.entry.uid}:{old.entry.gid}", f"{new.entry.uid}:{new.entry.gid}")]
        same = old.digest and old.digest == new.digest
        body = "".join(f"<tr><th align=left>{html.escape(r[0])}</th><td>{html.escape(r[1])}</td><td>{html.escape(r[2])}</td></tr>" for r in rows)
        verdict = "The contents are identical." if same else "The contents differ (binary data)."
        self.output.setHtml(f"<p>{verdict}</p><table cellspacing=6>{body}</table>")
        self.last_text = verdict

    def _unified(self, old: VersionContent, new: VersionContent) -> None:
        lines = list(unified_diff(old, new))
        if not lines:
            self.output.setPlainText("The contents are identical." if old.data == new.data else "No text differences.")
            self.last_text = self.output.toPlainText()
            return
        colours = {"+": resources.change_colour(ADDED), "-": resources.change_colour(REMOVED)}
        out = []
        for line in lines:
            colour = colours.get(line[:1]) if not line.startswith(("+++", "---")) else None
            text = html.escape(line)
            out.append(f'<span style="color:{colour.name()}">{text}</span>' if colour is not None else text)
        self.output.setHtml("<pre>" + "\n".join(out) + "</pre>")
        self.last_text = "\n".join(lines)

    def _side_by_side(self, old: VersionContent, new: VersionContent) -> None:
        rows = side_by_side(old, new)
        added, removed = resources.change_colour(ADDED), resources.change_colour(REMOVED)
        cells = []
        for mark, a, b in rows:
            left = html.escape(a) or "&nbsp;"
            right = html.escape(b) or "&nbsp;"
            if mark in "-~" and removed is not None:
                left = f'<span style="color:{removed.name()}">{left}</span>'
            if mark in "+~" and added is not None:
                right = f'<span style="color:{added.name()}">{right}</span>'
            cells.append(f"<tr><td><pre>{left}</pre></td><td>{mark}</td><td><pre>{right}</pre></td></tr>")
        header = f"<tr><th>layer {old.layer}</th><th></th><th>layer {new.layer}</th></tr>"
        self.output.setHtml(f"<table cellspacing=4>{header}{''.join(cells)}</table>")
        self.last_text = "\n".join(f"{m} {a} | {b}" for m, a, b in rows)


def _metadata_changes(old: VersionContent, new: VersionContent) -> str:
    """``mode 0644 → 0640, owner 0:0 → 1000:1000`` (empty when nothing but content changed)."""
    a, b = old.entry, new.entry
    parts = []
    if a.mode != b.mode:
        parts.append(f"mode {a.mode:04o} → {b.mode:04o}")
    if (a.uid, a.gid) != (b.uid, b.gid):
        parts.append(f"owner {a.uid}:{a.gid} → {b.uid}:{b.gid}")
    if a.type != b.type:
        parts.append(f"type {a.type} → {b.type}")
    return ", ".join(parts)
