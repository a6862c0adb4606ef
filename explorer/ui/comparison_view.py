"""A comparison tab: two images' layers side by side and the difference of their files, in
the same tree widget with filters, search, details and a content diff."""

from __future__ import annotations

import html
from typing import Any, Container

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSplitter,
    QTableView,
    QTextBrowser,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from explorer.model.packages import LayerPackages
from explorer.image.compare import CHANGES, Comparison, ancestors_of, chain_summary
from explorer.image.content import BINARY, ContentError, kind_of, load_version, unified_diff
from explorer.model.errors import ExplorerError
from explorer.formats.source import Source
from explorer.tree import names
from explorer.tree.diff import ADDED, MODIFIED, REMOVED, UNCHANGED
from explorer.tree.views import GLOB, REGEX, SUBSTRING, Row, matcher
from explorer.ui import resources
from explorer.ui.file_tree_model import FileTreeModel, follow
from explorer.ui.format import human_size, mode_string
from explorer.ui.table_model import ImageTableModel
from explorer.ui.widgets import rich_label
from explorer.ui.workers import BackgroundCall

Index = QModelIndex | QPersistentModelIndex


class DiffTreeView:
    """The difference of two final filesystems, shaped like a ``TreeView`` for the tree model."""

    layer = None
    mode = "diff"

    def __init__(self, cmp: Comparison) -> None:
        self.cmp = cmp
        self.diffs = cmp.files
        self._relevant = cmp.files.relevant()
        self.tree = cmp.b.tree

    def row(self, path: str) -> Row | None:
        if path not in self._relevant:
            return None
        shown = self.diffs.shown(path)
        if shown is not None:
            change, entry = shown
            return Row(path, names.split(path)[1], entry, change)
        for tree in (self.cmp.b.tree, self.cmp.a.tree):
            entry = tree.entry_at(path)
            if entry is not None:  # hard links as that image has them
                return Row(path, names.split(path)[1], tree.effective(entry), UNCHANGED)
        return None

    def holds(self, path: str, kind: str, _change: str) -> bool:
        """Whether the row of ``path`` (of type ``kind``) can have rows below it: a folder on
        either side (a folder in A that is a file in B shows what A held under it)."""
        if kind == "dir":
            return True
        if self.diffs.change(path) != MODIFIED:
            return False  # (a removed row shows A's entry already)
        before = self.cmp.a.tree.entry_at(path)
        return before is not None and before.type == "dir"

    def children(self, path: str, wanted: Container[str] | None = None) -> list[Row]:
        """Rows inside ``path``, unsorted; only of the paths in ``wanted`` when given."""
        kids = set(self.cmp.a.tree.kids.get(path, ())) | set(self.cmp.b.tree.kids.get(path, ()))
        paths = (names.join(path, n) for n in kids)
        rows = (self.row(p) for p in paths if wanted is None or p in wanted)
        return [r for r in rows if r is not None]

    def has_children(self, path: str, visible: set[str] | None = None) -> bool:
        """Whether ``children(path)`` would show anything; stops at the first child found."""
        kids = set(self.cmp.a.tree.kids.get(path, ())) | set(self.cmp.b.tree.kids.get(path, ()))
        return any((visible is None or child in visible) and self.row(child) is not None
                   for child in (names.join(path, n) for n in kids))

    def totals(self) -> dict[str, int]:
        """Bytes below each folder, of the entries shown (B's side, or A's for removed ones)."""
        return self.diffs.totals()


class LayerPairModel(ImageTableModel):
    """Layer k of A beside layer k of B, and whether they are the same layer in the same chain."""

    COLUMNS = ("#", "A", "B", "")

    def __init__(self, cmp: Comparison) -> None:
        super().__init__(None)
        self.cmp = cmp

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else max(len(self.cmp.a.layers), len(self.cmp.b.layers))

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        k, col = index.row(), index.column()
        a = self.cmp.a.layers[k] if k < len(self.cmp.a.layers) else None
        b = self.cmp.b.layers[k] if k < len(self.cmp.b.layers) else None
        shared = k < self.cmp.diverge_at
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return str(k)
            if col in (1, 2):
                layer = a if col == 1 else b
                return f"{layer.diff_id[7:19]} {human_size(layer.size)}" if layer else "—"
            if shared:
                return "shared"
            if a is None or b is None:  # past the end of the shorter chain
                return "only in B" if a is None else "only in A"
            return "same layer, other chain" if a.diff_id == b.diff_id else "differs"
        if role == Qt.ItemDataRole.ToolTipRole and col in (1, 2):
            layer = a if col == 1 else b
            return f"{layer.diff_id}\n{layer.created_by}" if layer else None
        if role == Qt.ItemDataRole.ForegroundRole and col == 3:
            return resources.change_colour(ADDED if shared else MODIFIED)
        return None


class ComparisonView(QWidget):
    """One comparison (a tab of the main window)."""

    filtered = Signal(int)  # the differing paths the newest search or filter shows

    def __init__(self, a_source: Source, b_source: Source, cmp: Comparison, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("comparisonView")
        self.a_source, self.b_source, self.cmp = a_source, b_source, cmp
        self.view = DiffTreeView(cmp)
        self.background = BackgroundCall(self)
        self.background.result.connect(self._on_result)
        self.filtering = BackgroundCall(self)  # a million paths are matched off the GUI thread
        self.filtering.result.connect(self._filtered)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.summary = rich_label("comparisonSummary")
        layout.addWidget(self.summary)
        self.layers = QTableView(objectName="layerPairs")
        self.layers.setAccessibleName("Layers of both images")
        self.layers.setModel(LayerPairModel(cmp))
        self.layers.verticalHeader().hide()
        self.layers.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.layers.horizontalHeader()
        for column, width in ((0, 30), (1, 110), (2, 110)):
            header.resizeSection(column, width)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.layers.setWordWrap(False)
        self.tree_model = FileTreeModel(self.view)
        self.tree_model.set_totals(self.view.totals())
        self.file_tree = QTreeView(objectName="comparisonTree")
        self.file_tree.setAccessibleName("Files that differ")
        self.file_tree.setModel(self.tree_model)
        follow(self.file_tree, self.tree_model)
        self.file_tree.setUniformRowHeights(True)
        self.file_tree.setSortingEnabled(True)
        self.file_tree.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        tree_header = self.file_tree.header()
        tree_header.setStretchLastSection(False)
        tree_header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column, width in ((1, 78), (2, 92), (3, 70), (4, 48), (5, 78)):
            tree_header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            tree_header.resizeSection(column, width)
        self.file_tree.selectionModel().currentChanged.connect(self._selected)
        self.details = QTextBrowser(objectName="comparisonDetails")
        self.details.setAccessibleName("Differences of the selected path")
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        middle = QWidget()
        mid = QVBoxLayout(middle)
        mid.setContentsMargins(0, 0, 0, 0)
        mid.addLayout(self._controls())
        mid.addWidget(self.file_tree, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.layers)
        split.addWidget(middle)
        split.addWidget(self.details)
        split.setSizes([300, 600, 400])
        layout.addWidget(split, 1)
        self._fill_summary()
        if len(self.view.diffs) <= 2000:
            self.file_tree.expandAll()

    def _controls(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Hide:"))
        self.hide_boxes: dict[str, QCheckBox] = {}
        for change, label in ((ADDED, "only in B"), (REMOVED, "only in A"), (MODIFIED, "modified")):
            box = QCheckBox(label, objectName=f"hide_{change}")
            box.toggled.connect(self._filter)
            self.hide_boxes[change] = box
            row.addWidget(box)
        self.search_box = QLineEdit(objectName="comparisonSearch")
        self.search_box.setPlaceholderText("Search paths")
        self.search_box.setClearButtonEnabled(True)
        self._timer = QTimer(self, singleShot=True, interval=250)
        self._timer.timeout.connect(self._filter)
        self.search_box.textChanged.connect(lambda _t: self._timer.start())
        self.search_kind = QComboBox()
        for label, kind in (("Substring", SUBSTRING), ("Glob", GLOB), ("Regex", REGEX)):
            self.search_kind.addItem(label, kind)
        self.search_kind.currentIndexChanged.connect(self._filter)
        row.addWidget(self.search_box, 1)
        row.addWidget(self.search_kind)
        return row

    def _fill_summary(self) -> None:
        c = self.cmp
        counts = c.files.counts()
        def who(img, src):
            return html.escape(f"{', '.join(img.tags) or img.config_digest[:19]} ({img.platform}) from {src.info.path}")
        self.summary.setText(
            f"<b>A</b>: {who(c.a, self.a_source)}<br><b>B</b>: {who(c.b, self.b_source)}<br>"
            f"{len(c.shared)} shared layer(s); {chain_summary(len(c.shared), len(c.a.layers), len(c.b.layers))}. "
            f"A pull of B having A skips {human_size(c.pull_skip_bytes)}. "
            f"Files: {counts[ADDED]} only in B, {counts[MODIFIED]} modified, {counts[REMOVED]} only in A."
            + _packages_line(c.packages))
        self.summary.setToolTip(_packages_list(c.packages))

    def _filter(self) -> None:
        hide = {c for c, b in self.hide_boxes.items() if b.isChecked()}
        text = self.search_box.text().strip()
        try:
            match = matcher(text, self.search_kind.currentData()) if text else None
        except Exception:
            return  # a pattern being typed
        files = self.cmp.files
        hidden = {CHANGES.index(change) for change in hide}

        def work(monitor) -> tuple[int, set[str]] | None:
            if not hide and match is None:
                return None  # everything (after any search still running: it is replaced)
            keep = []
            for i, (path, code) in enumerate(zip(files.paths, files.codes)):
                if not i & 0x3FFF:
                    monitor.tick(i)  # a newer search or filter stops this one
                if code not in hidden and (match is None or match(path)):
                    keep.append(path)
            return len(keep), ancestors_of(iter(keep))

        self.filtering.run("filter", work)

    def _filtered(self, value: tuple[int, set[str]] | None) -> None:
        """Show what the newest search or filter kept."""
        if value is None:
            self.tree_model.set_visible(None)
            self.filtered.emit(len(self.cmp.files))
            return
        kept, visible = value
        self.tree_model.set_visible(visible)
        if kept <= 2000:
            self.file_tree.expandAll()
        self.filtered.emit(kept)

    def _selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        path = current.internalPointer().row.path
        d = self.view.diffs.get(path)
        if d is None:
            self.details.setPlainText(f"{path}\nthe same in both images (a folder holding differences)")
            return
        rows = []
        for label, e in (("A", d.a), ("B", d.b)):
            if e is None:
                rows.append(f"<tr><th>{label}</th><td colspan=4>absent</td></tr>")
            else:
                rows.append(f"<tr><th>{label}</th><td>{html.escape(e.type)}</td><td>{mode_string(e)}</td>"
                            f"<td>{e.uid}:{e.gid}</td><td>{e.size:,} B</td><td>{html.escape(e.target or '')}</td></tr>")
        self.details.setHtml(f"<b>{html.escape(path)}</b>: {resources.LABELS.get(d.change, d.change)}"
                             f"<table cellspacing=6>{''.join(rows)}</table><p>reading contents…</p>")
        self._head = "".join(rows)
        a_src, b_src, cmp = self.a_source, self.b_source, self.cmp

        def work(_m):
            try:
                va = load_version(a_src, cmp.a, d.a) if d.a is not None else None
                vb = load_version(b_src, cmp.b, d.b) if d.b is not None else None
            except (ContentError, ExplorerError, OSError) as exc:
                return d, str(exc)
            return d, (va, vb)

        self.background.run("sides", work)

    def _on_result(self, value: object) -> None:
        d, result = value  # type: ignore[misc]
        current = self.file_tree.currentIndex()
        if not current.isValid() or current.internalPointer().row.path != d.path:
            return
        if isinstance(result, str):
            body = html.escape(result)
        else:
            va, vb = result
            if va is None or vb is None:
                body = "Only one image has this path."
            elif BINARY in (kind_of(va.entry, va.data), kind_of(vb.entry, vb.data)):
                body = f"binary: sha256 {va.digest[:16]}… in A, {vb.digest[:16]}… in B"
            else:
                lines = list(unified_diff(va, vb))
                self.last_diff = "\n".join(lines)
                body = "<pre>" + html.escape(self.last_diff or "the contents are identical") + "</pre>"
        self.details.setHtml(f"<b>{html.escape(d.path)}</b>: {resources.LABELS.get(d.change, d.change)}"
                             f"<table cellspacing=6>{self._head}</table>{body}")

    last_diff = ""

    def title(self) -> str:
        """The tab title."""
        def short(img):
            return img.tags[0] if img.tags else img.config_digest[7:19]
        a, b = short(self.cmp.a), short(self.cmp.b)
        if a == b:  # the same name: the platforms (or positions) tell them apart
            a, b = f"{a} ({self.cmp.a.platform})", self.cmp.b.platform
        return f"{a} ↔ {b}"

    def status_text(self) -> str:
        """What the status bar says."""
        return f"comparing {len(self.cmp.files):,} differing paths"

    def close_source(self) -> None:
        """Release both archives (the same one may be on both sides), and stop what reads them."""
        self.background.cancel_all()
        self.filtering.cancel_all()
        self.a_source.close()
        if self.b_source is not self.a_source:
            self.b_source.close()


def _packages_line(p: LayerPackages) -> str:
    """The package differences in a sentence, upgrades named with both versions."""
    if not p:
        return ""
    upgrades = ", ".join(html.escape(f"{c.package.name} {c.old} → {c.package.version}") for c in p.changed[:5])
    more = f" and {len(p.changed) - 5} more" if len(p.changed) > 5 else ""
    return (f"<br>Packages: {len(p.added)} only in B, {len(p.changed)} at another version"
            + (f" ({upgrades}{more})" if upgrades else "") + f", {len(p.removed)} only in A (hover for the list).")


def _packages_list(p: LayerPackages) -> str:
    """Every package difference, a line each."""
    return "\n".join([f"+ {c.package.name} {c.package.version} ({c.package.manager})" for c in p.added]
                     + [f"~ {c.package.name} {c.old} -> {c.package.version} ({c.package.manager})" for c in p.changed]
                     + [f"- {c.package.name} {c.package.version} ({c.package.manager})" for c in p.removed])
