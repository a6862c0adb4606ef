"""The Inspect tab: the config as a form, the identifiers, and the raw JSON documents (as a
foldable tree and as highlighted text with search)."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtGui import QFontDatabase, QTextDocument
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from PySide6.QtCore import Qt

from explorer.image.inspect import documents, inspect_object
from explorer.image.loader import Image
from explorer.formats.source import Source


def _value(text: str, lines: int = 1) -> QWidget:
    """A read-only field that can be selected and copied."""
    if lines > 1:
        box = QPlainTextEdit(text, readOnly=True)
        box.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        box.setMaximumHeight(18 * min(lines, 8) + 24)
        return box
    field = QLineEdit(text, readOnly=True)
    field.setCursorPosition(0)
    return field


class InspectPanel(QWidget):
    """Everything ``docker image inspect`` says, readable and copyable, beside the documents."""

    def __init__(self, source: Source, image: Image, parent: QWidget | None = None, size: int | None = None) -> None:
        """``size``: the image's ``Size``, when worked out already (it reads every path)."""
        super().__init__(parent)
        self.setObjectName("inspectPanel")
        self.obj = inspect_object(source, image, size)
        self.docs = documents(source, image)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self._form())
        split.addWidget(self._documents())
        split.setSizes([620, 420])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)

    def _form(self) -> QWidget:
        o = self.obj
        c: dict[str, Any] = o["Config"] or {}
        form_widget = QWidget(objectName="inspectForm")
        form = QFormLayout(form_widget)
        rows: list[tuple[str, str, int]] = [
            ("Image id", o["Id"], 1),
            ("Manifest digest", o["ManifestDigest"] or "—", 1),
            ("Repo tags", "\n".join(o["RepoTags"]) or "—", len(o["RepoTags"])),
            ("Repo digests", "\n".join(o["RepoDigests"]) or "—", len(o["RepoDigests"])),
            ("Created", o["Created"] or "—", 1),
            ("Author", o["Author"] or "—", 1),
            ("OS / arch / variant", f"{o['Os']} / {o['Architecture']} / {o['Variant'] or '—'}", 1),
            ("User", c.get("User") or "—", 1),
            ("Working dir", c.get("WorkingDir") or "—", 1),
            ("Entrypoint", json.dumps(c.get("Entrypoint")), 1),
            ("Cmd", json.dumps(c.get("Cmd")), 1),
            ("Env", "\n".join(c.get("Env") or []) or "—", len(c.get("Env") or [])),
            ("Exposed ports", ", ".join(sorted(c.get("ExposedPorts") or {})) or "—", 1),
            ("Volumes", ", ".join(sorted(c.get("Volumes") or {})) or "—", 1),
            ("Labels", "\n".join(f"{k}={v}" for k, v in sorted((c.get("Labels") or {}).items())) or "—", len(c.get("Labels") or {})),
            ("Stop signal", c.get("StopSignal") or "—", 1),
            ("Healthcheck", json.dumps(c.get("Healthcheck")) if c.get("Healthcheck") else "—", 1),
            ("RootFS type", o["RootFS"]["Type"], 1),
        ]
        self.fields: dict[str, QWidget] = {}
        for label, text, lines in rows:
            widget = _value(text, lines)
            self.fields[label] = widget
            form.addRow(label + ":", widget)
        for i, (d, chain, blob) in enumerate(zip(o["RootFS"]["Layers"], o["ChainIDs"], o["LayerBlobs"])):
            text = f"diff_id {d}\nchain id {chain}\nblob {blob['Digest']}\n{blob['MediaType'] or blob['Compression']}, {blob['Size']:,} bytes"
            widget = _value(text, 4)
            self.fields[f"Layer {i}"] = widget
            form.addRow(f"Layer {i}:", widget)
        scroll = QScrollArea()
        scroll.setWidget(form_widget)
        scroll.setWidgetResizable(True)
        return scroll

    def _documents(self) -> QWidget:
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        self.which = QComboBox(objectName="documentChoice")
        self.which.addItems(list(self.docs))
        self.find = QLineEdit(objectName="documentSearch")
        self.find.setPlaceholderText("Find in the document (Enter: next)")
        self.find.returnPressed.connect(self.find_next)
        top.addWidget(QLabel("Document:"))
        top.addWidget(self.which, 1)
        top.addWidget(self.find, 1)
        v.addLayout(top)
        self.views = QTabWidget()
        self.tree = QTreeWidget(objectName="documentTree")
        self.tree.setAccessibleName("Document outline")
        self.tree.setHeaderLabels(["Key", "Value"])
        self.text = QTextBrowser(objectName="documentText")
        self.text.setAccessibleName("Document text")
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.views.addTab(self.tree, "Tree (fold and unfold)")
        self.views.addTab(self.text, "Text (as stored)")
        v.addWidget(self.views, 1)
        self.which.currentTextChanged.connect(self.show_document)
        if self.docs:
            self.show_document(self.which.currentText())
        return box

    def show_document(self, label: str) -> None:
        """Show one document in both views."""
        raw = self.docs.get(label, "")
        from explorer.ui.preview_panel import highlight

        coloured = highlight("doc.json", raw, language="json")
        if coloured:
            self.text.setHtml(coloured)
        else:
            self.text.setPlainText(raw)
        self.tree.clear()
        try:
            data = json.loads(raw)
        except ValueError:
            return
        self._fill(self.tree.invisibleRootItem(), data)
        self.tree.expandToDepth(1)
        self.tree.resizeColumnToContents(0)

    def _fill(self, parent: QTreeWidgetItem, data: Any) -> None:
        items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
        for key, value in items:
            leaf = not isinstance(value, (dict, list))
            item = QTreeWidgetItem([str(key), json.dumps(value) if leaf else f"{len(value)} item(s)"])
            parent.addChild(item)
            if not leaf:
                self._fill(item, value)

    def find_next(self) -> bool:
        """Find the search text in the text view (wrapping round)."""
        text = self.find.text()
        if not text:
            return False
        self.views.setCurrentWidget(self.text)
        if self.text.find(text):
            return True
        cursor = self.text.textCursor()
        cursor.movePosition(cursor.MoveOperation.Start)
        self.text.setTextCursor(cursor)
        return self.text.find(text, QTextDocument.FindFlag(0))
