"""Open from a local engine: the images Docker or Podman holds, filtered by name."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from explorer.formats.engine import DOCKER, PODMAN, Engine, LocalContainer, LocalImage
from explorer.model.errors import ExplorerError
from explorer.ui.format import human_size
from explorer.ui.table_model import ImageTableModel
from explorer.ui.workers import BackgroundCall

Index = QModelIndex | QPersistentModelIndex


def _when(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M") if stamp else ""


def image_rows(images: list[LocalImage]) -> list[tuple[str, tuple[str, ...]]]:
    """One row per tag (untagged images by id): (name to open, cells)."""
    return [(tag, (tag, i.id.split(":")[-1][:12], human_size(i.size), _when(i.created)))
            for i in images for tag in (i.tags or (i.id[7:19],))]


def container_rows(containers: list[LocalContainer]) -> list[tuple[str, tuple[str, ...]]]:
    """One row per container, running or stopped."""
    return [(c.name, (c.name, c.image, c.state, _when(c.created))) for c in containers]


class EngineListModel(ImageTableModel):
    """What an engine holds, as rows of text; the first cell's name is what gets opened."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        super().__init__(None)
        self.COLUMNS = columns
        self.rows: list[tuple[str, tuple[str, ...]]] = []

    def set_rows(self, rows: list[tuple[str, tuple[str, ...]]]) -> None:
        """Show another list."""
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        name, cells = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return cells[index.column()]
        if role == Qt.ItemDataRole.UserRole:
            return name
        return None


class EngineDialog(QDialog):
    """Pick an image (or, with ``containers``, a container) of the local Docker or Podman engine."""

    def __init__(self, parent: QWidget | None = None, containers: bool = False) -> None:
        super().__init__(parent)
        self.containers = containers
        self.setObjectName("containerDialog" if containers else "engineDialog")
        self.setWindowTitle("Open a container" if containers else "Open from a local engine")
        self.resize(720, 440)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.engine = QComboBox(objectName="engineChoice")
        self.engine.addItem("Docker", DOCKER)
        self.engine.addItem("Podman", PODMAN)
        self.engine.currentIndexChanged.connect(self.refresh)
        self.filter = QLineEdit(objectName="engineFilter")
        self.filter.setPlaceholderText("Filter by name")
        row.addWidget(self.engine)
        row.addWidget(self.filter, 1)
        layout.addLayout(row)
        self.model = EngineListModel(("Container", "Image", "State", "Created") if containers
                                     else ("Image", "Id", "Size", "Created"))
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(0)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView(objectName="engineImages")
        self.table.setAccessibleName("Images in the engine")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(lambda _i: self.accept())
        layout.addWidget(self.table, 1)
        self.status = QLabel("", objectName="engineStatus")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.background = BackgroundCall(self)
        self.background.result.connect(self._listed)
        self.refresh()

    def refresh(self) -> None:
        """Ask the chosen engine for its images (in the background)."""
        engine = self.engine.currentData()
        self.status.setText(f"asking {engine}…")

        containers = self.containers

        def work(_m):
            try:
                client = Engine(engine)
                return engine, container_rows(client.containers()) if containers else image_rows(client.images())
            except ExplorerError as exc:
                return engine, str(exc)

        self.background.run("images", work)

    def _listed(self, value: object) -> None:
        engine, images = value  # type: ignore[misc]
        if engine != self.engine.currentData():
            return
        if isinstance(images, str):
            self.model.set_rows([])
            self.status.setText(images)
            return
        self.model.set_rows(images)
        self.status.setText(f"{len(images)} {'container' if self.containers else 'image'}(s) in {engine}")
        self.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)
        if self.proxy.rowCount():
            self.table.selectRow(0)

    def source(self) -> str | None:
        """``docker://NAME`` for the selected image."""
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        name = self.proxy.index(index.row(), 0).data(Qt.ItemDataRole.UserRole)
        if self.containers:
            return f"{'container' if self.engine.currentData() == DOCKER else 'podman-container'}://{name}"
        return f"{self.engine.currentData()}://{name}"
