"""The left of the Files page: the layer list, the selected layer's strip, the build history.

Its one job is choosing a layer: a row of either table does, the two stay in step, and the
panel says which layer was chosen (``layer_chosen``; None is all layers, the final image).
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHeaderView, QMenu, QSplitter

from explorer.image.loader import Image
from explorer.ui.history_model import HistoryTableModel
from explorer.ui.layer_model import CHANGES, DIGEST, LayerTableModel
from explorer.ui.layer_strip import LayerStrip
from explorer.ui.widgets import side_table, text_width, titled, widget_shortcut


CHANGES_SAMPLE = "+9999 ~99 −99"  # the Changes column's width before an image says more


class LayersPanel(QSplitter):
    """Layers above, the chosen layer's strip, history below; choosing a row chooses a layer."""

    layer_chosen = Signal(object)  # int | None
    save_layer = Signal()  # the layer menu's "Save layer tar…"

    def __init__(self, image: Image) -> None:
        super().__init__(Qt.Orientation.Vertical, objectName="leftSplitter")
        self.image = image
        self.layer_model = LayerTableModel(image)
        self.layer_list = side_table("layerList", "Layers", self.layer_model)
        header = self.layer_list.horizontalHeader()
        for column, sample in ((0, "all"), (1, "999.9 MB"), (2, "999.9 MB"), (CHANGES, CHANGES_SAMPLE)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, text_width(self, sample))
        self._fit_changes()
        self.layer_list.setColumnHidden(DIGEST, True)  # the strip below shows both digests in full
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)  # the command takes what is left
        self.layer_list.selectionModel().currentRowChanged.connect(self._layer_row_changed)
        self.layer_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.layer_list.customContextMenuRequested.connect(self._layer_menu)
        widget_shortcut(self.layer_list, self.copy_layer_digest)

        self.history_model = HistoryTableModel(image)
        self.history_panel = side_table("historyPanel", "Build history", self.history_model)
        header = self.history_panel.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(0, text_width(self, "12 months ago"))
        header.resizeSection(2, text_width(self, "999.9 MB"))
        self._hide_empty_comments()
        self.history_panel.selectionModel().currentRowChanged.connect(self._history_row_changed)

        self.layer_strip = LayerStrip()
        self.addWidget(titled("&Layers", self.layer_list))
        self.addWidget(self.layer_strip)
        self.addWidget(titled("&History", self.history_panel))
        self.setCollapsible(1, False)

    @property
    def layer(self) -> int | None:
        """The layer whose row is current (None: all layers)."""
        row = self.layer_list.currentIndex().row()
        return self.layer_model.layer_of_row(row) if row >= 0 else None

    def set_image(self, image: Image) -> None:
        """Show another image (the loaded one in place of its preview)."""
        self.image = image
        self.layer_model.set_image(image)
        self.history_model.set_image(image)
        self._hide_empty_comments()
        self._fit_changes()

    def _fit_changes(self) -> None:
        """Widen the Changes column to its widest count (counts past 9,999 are short: 142k)."""
        header = self.layer_list.horizontalHeader()
        widest = self.layer_list.sizeHintForColumn(CHANGES)  # (Qt measures the rows)
        if widest > header.sectionSize(CHANGES):
            header.resizeSection(CHANGES, widest)

    def select_layer(self, layer: int | None) -> bool:
        """Make ``layer``'s row current; False when it already was (nothing is said then)."""
        row = self.layer_model.row_of_layer(layer)
        if self.layer_list.currentIndex().row() == row:
            return False
        self.layer_list.selectRow(row)  # comes back through _layer_row_changed
        return True

    def step(self, delta: int) -> None:
        """The next (+1) or previous (-1) row; before layer 0 comes "all layers"."""
        rows = self.layer_model.rowCount()
        current = self.layer_list.currentIndex().row()
        self.layer_list.selectRow(max(0, min(rows - 1, current + delta)))

    def copy_layer_digest(self) -> None:
        """Copy the selected layer's digest to the clipboard."""
        layer = self.layer
        if layer is not None:
            QGuiApplication.clipboard().setText(self.image.layers[layer].digest)

    def _hide_empty_comments(self) -> None:
        # most images record no comments: the column would only take room from the step
        self.history_panel.setColumnHidden(3, not any(h.comment for h in self.image.history))

    def _layer_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        layer = self.layer_model.layer_of_row(current.row())
        self.layer_strip.show_layer(self.image, layer)
        history_row = self.history_model.row_of_layer(layer)
        selection = self.history_panel.selectionModel()
        current_step = self.history_panel.currentIndex().row()
        stays = (current_step >= 0 and self.image.history[current_step].layer is None
                 and self._layer_before_step(current_step) == layer)
        if stays:
            pass  # an empty step was chosen: it shows this layer's filesystem, keep it selected
        elif history_row is not None and current_step != history_row:
            selection.setCurrentIndex(
                self.history_model.index(history_row, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
            )
        elif history_row is None:
            selection.clearSelection()  # "all layers", or a layer no step is known to have made
            selection.setCurrentIndex(QModelIndex(), QItemSelectionModel.SelectionFlag.NoUpdate)
        self.layer_chosen.emit(layer)

    def _history_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        step = self.image.history[current.row()]
        layer = step.layer if step.layer is not None else self._layer_before_step(current.row())
        if layer is not None and layer != self.layer:
            self.select_layer(layer)  # an empty step shows the filesystem as it stood then

    def _layer_before_step(self, row: int) -> int | None:
        """The last layer made at or before a history step (None when none was)."""
        for h in reversed(self.image.history[: row + 1]):
            if h.layer is not None:
                return h.layer
        return None

    def _layer_menu(self, pos) -> None:
        layer = self.layer
        menu = QMenu(self)
        copy = menu.addAction("Copy digest", self.copy_layer_digest)
        copy.setEnabled(layer is not None)
        diff_id = menu.addAction("Copy diff_id", lambda: QGuiApplication.clipboard().setText(self.image.layers[layer].diff_id))
        diff_id.setEnabled(layer is not None)
        save = menu.addAction("Save layer tar…", self.save_layer.emit)
        save.setEnabled(layer is not None)
        menu.exec(self.layer_list.viewport().mapToGlobal(pos))
