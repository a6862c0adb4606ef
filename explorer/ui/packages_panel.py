"""The Packages page: what the image's package managers installed, per image and per layer."""

from __future__ import annotations

from typing import Any, NamedTuple

from PySide6.QtCore import (QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSignalBlocker, QSortFilterProxyModel, Qt,
                            Signal)
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QTableView,
                               QVBoxLayout, QWidget)

from explorer.image.loader import Image
from explorer.model.packages import InstalledPackage, Package, PackageReport
from explorer.ui.format import human_size, short_command

COLUMNS = ("Name", "Version", "Manager", "Size", "Files", "Layer", "What happened")
NAME, VERSION, MANAGER, SIZE, FILES, LAYER, WHAT = range(len(COLUMNS))
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
PACKAGE_ROLE = Qt.ItemDataRole.UserRole
Index = QModelIndex | QPersistentModelIndex
FINAL = -1  # the scope that lists the final image's packages


class PackageRow(NamedTuple):
    """One row: a package, what it weighs in the final image (None: not there), and what happened."""

    package: Package
    installed: InstalledPackage | None
    what: str
    layer: int | None


def rows_for(report: PackageReport, scope: int) -> list[PackageRow]:
    """The rows of the final image (``FINAL``) or of what layer ``scope`` did."""
    final = {i.package.key: i for i in report.installed}
    if scope == FINAL:
        return [PackageRow(i.package, i, _last_change(report, i), i.layer) for i in report.installed]
    did = report.layers[scope]

    def weight(p: Package) -> InstalledPackage | None:
        found = final.get(p.key)
        return found if found is not None and found.package.version == p.version else None

    return ([PackageRow(c.package, weight(c.package), _where("added", c.package), scope) for c in did.added]
            + [PackageRow(c.package, weight(c.package), _where(f"changed from {c.old}", c.package), scope)
               for c in did.changed]
            + [PackageRow(c.package, None, _where("removed", c.package), scope) for c in did.removed])


def _last_change(report: PackageReport, i: InstalledPackage) -> str:
    """``installed in layer K``, or ``changed in layer K (from V)`` when that layer changed it."""
    did = report.layers[i.layer] if 0 <= i.layer < len(report.layers) else None
    old = next((c.old for c in did.changed if c.package.key == i.package.key), None) if did else None
    return _where(f"installed in layer {i.layer}" if old is None else f"changed in layer {i.layer} (from {old})",
                  i.package)


def _where(text: str, p: Package) -> str:
    """What happened, and where, for managers that keep copies in several places (pip, npm)."""
    return f"{text} · {p.where}" if p.where else text


class PackagesModel(QAbstractTableModel):
    """Packages as rows; sizes and counts sort as numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[PackageRow] = []
        self.keys: list[tuple[Any, ...]] = []  # each row's sort keys, a column's each

    def set_rows(self, rows: list[PackageRow]) -> None:
        """Show other rows."""
        self.beginResetModel()
        self.rows = rows
        # (made once: a sort asks for two keys a comparison, thousands for a few hundred rows)
        self.keys = [(p.name, p.version, p.manager, w.size if w else -1, w.files if w else -1,
                      -1 if layer is None else layer, what)
                     for p, w, what, layer in rows]
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(COLUMNS):
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        at, col = index.row(), index.column()
        if role == SORT_ROLE:
            return self.keys[at][col]
        row = self.rows[at]
        p, weight = row.package, row.installed
        if role == Qt.ItemDataRole.DisplayRole:
            if col == SIZE:
                return human_size(weight.size) if weight else ""
            if col == FILES:
                return f"{weight.files:,}" if weight else ""
            if col == LAYER:
                return "" if row.layer is None else str(row.layer)
            return self.keys[at][col]
        if role == Qt.ItemDataRole.ToolTipRole:
            where = f"\nin {p.where}" if p.where else ""
            arch = f" ({p.arch})" if p.arch else ""
            return f"{p.manager} package {p.name} {p.version}{arch}{where}\n{len(p.paths):,} paths listed"
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (SIZE, FILES, LAYER):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == PACKAGE_ROLE:
            return row
        return None


class PackagesPanel(QWidget):
    """Packages of the final image or of one layer, sortable and searchable."""

    show_files = Signal(object)  # PackageRow: show its files in the Files page
    show_layer = Signal(int)

    def __init__(self, image: Image, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="packagesPanel")
        self.image = image
        found = image.packages
        # no database in any layer: say so rather than "0 packages"
        self.report = found if found is not None and (found.installed or any(found.layers)) else None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        self.scope = QComboBox(objectName="packageScope")
        self.scope.setAccessibleName("Which packages")
        self.search = QLineEdit(objectName="packageSearch", placeholderText="Search packages by name")
        self.search.setClearButtonEnabled(True)
        top.addWidget(QLabel("&Show:", buddy=self.scope))
        top.addWidget(self.scope, 1)
        top.addWidget(self.search, 1)
        layout.addLayout(top)
        self.summary = QLabel(objectName="packageSummary", wordWrap=True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.summary)
        self.model = PackagesModel()
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterKeyColumn(NAME)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.table = QTableView(objectName="packageTable")
        self.table.setAccessibleName("Packages")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setTabKeyNavigation(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(WHAT, QHeaderView.ResizeMode.Stretch)
        for column, sample in ((VERSION, "1:2.39.5-0+deb12u3"), (MANAGER, "Manager"), (SIZE, "999.9 MB"),
                               (FILES, "99,999"), (LAYER, "Layer")):
            header.resizeSection(column, self.fontMetrics().horizontalAdvance(sample) + 24)
        layout.addWidget(self.table, 1)
        self.hint = QLabel("Double-click a package (or press Enter) to see its files in the Files page.",
                           objectName="packageHint")
        layout.addWidget(self.hint)
        self.table.activated.connect(self._activated)
        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.scope.currentIndexChanged.connect(self._scope_changed)
        self._fill_scopes()

    def _fill_scopes(self) -> None:
        report = self.report
        if report is None:
            self.scope.addItem("Not read yet" if self.image.pending else "No package database was read", FINAL)
            self._scope_changed()
            return
        with QSignalBlocker(self.scope):  # (the first item made current would list and sort them once more)
            self.scope.addItem(f"The final image: {len(report.installed)} packages", FINAL)
            for k, did in enumerate(report.layers):
                step = short_command(self.image.layers[k].created_by, 60) if k < len(self.image.layers) else ""
                self.scope.addItem(f"Layer {k}: +{len(did.added)} ~{len(did.changed)} −{len(did.removed)}  {step}", k)
        self._scope_changed()

    def show_scope(self, scope: int) -> None:
        """List the final image's packages (``FINAL``) or what layer ``scope`` did."""
        at = self.scope.findData(scope)
        if at >= 0:
            self.scope.setCurrentIndex(at)

    def _scope_changed(self) -> None:
        scope = self.scope.currentData()
        report = self.report
        if report is None:
            self.model.set_rows([])
            self.summary.setText("The packages are read with the layers; they show when the files do."
                                 if self.image.pending else
                                 "No package manager's database (dpkg, rpm, apk, pip, npm) was found in this image.")
            return
        self.model.set_rows(rows_for(report, FINAL if scope is None else scope))
        self.table.sortByColumn(SIZE if scope in (None, FINAL) else NAME,
                                Qt.SortOrder.DescendingOrder if scope in (None, FINAL) else Qt.SortOrder.AscendingOrder)
        self.summary.setText(self._summary(scope))

    def _summary(self, scope: int | None) -> str:
        report = self.report
        assert report is not None
        if scope in (None, FINAL):
            managers: dict[str, int] = {}
            for i in report.installed:
                managers[i.package.manager] = managers.get(i.package.manager, 0) + i.size
            total = sum(managers.values())
            split = ", ".join(f"{m} {human_size(n)}" for m, n in sorted(managers.items(), key=lambda x: -x[1]))
            return (f"{len(report.installed)} packages hold {human_size(total)} of the final image's "
                    f"{human_size(max(self.image.file_bytes, 0))} in files" + (f" ({split})." if split else "."))
        did, info = report.layers[scope], self.image.layers[scope]
        rest = max(0, info.size - did.owned_bytes)
        return (f"Layer {scope} wrote {human_size(info.size)}: {human_size(did.owned_bytes)} are files of packages, "
                f"{human_size(rest)} not from a package (the application's own files, caches, logs). "
                f"{len(did.added)} added, {len(did.changed)} upgraded, {len(did.removed)} removed.")

    def _activated(self, index: QModelIndex) -> None:
        row = index.data(PACKAGE_ROLE)
        if row is not None:
            self.show_files.emit(row)
