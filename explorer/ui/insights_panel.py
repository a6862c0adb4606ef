"""Why the image is big and which step to change: dive's numbers, the waste behind them,
advice, secrets left in lower layers, a chart of layer sizes and a treemap."""

from __future__ import annotations

import html

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHeaderView,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from explorer.image.loader import Image
from explorer.ui.charts import LayerChart, Treemap
from explorer.ui.format import human_size
from explorer.image.packages import insights
from explorer.ui.widgets import rich_label, titled
from explorer.ui.waste_model import WasteTableModel


class InsightsPanel(QWidget):
    """The Insights tab of one image."""

    show_file = Signal(str, int)  # path, layer where it can be seen
    show_layer = Signal(int)

    def __init__(self, image: Image, totals: dict[str, int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("insightsPanel")
        self.image = image
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.summary = rich_label("insightsSummary")
        layout.addWidget(self.summary)
        self.secrets = rich_label("insightsSecrets")
        self.secrets.setStyleSheet("QLabel { background: #ad1457; color: white; padding: 6px; border-radius: 4px; }")
        layout.addWidget(self.secrets)
        left = QSplitter(Qt.Orientation.Vertical)
        self.advice = QListWidget(objectName="adviceList")
        self.advice.setAccessibleName("Advice")
        self.advice.setWordWrap(True)
        self.advice.itemActivated.connect(self._advice_clicked)
        self.advice.itemClicked.connect(self._advice_clicked)
        left.addWidget(titled("Advice (biggest saving first)", self.advice))
        self.waste_model = WasteTableModel(image)
        self.waste_table = QTableView(objectName="wasteTable")
        self.waste_table.setAccessibleName("Wasted files")
        self.waste_table.setModel(self.waste_model)
        self.waste_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.waste_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.waste_table.verticalHeader().hide()
        self.waste_table.setWordWrap(False)
        self.waste_table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a path's file name is at its end
        self.waste_table.verticalHeader().setDefaultSectionSize(self.waste_table.fontMetrics().height() + 8)
        header = self.waste_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        for column, width in ((1, 44), (2, 72)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        self.waste_table.activated.connect(self._waste_clicked)
        self.waste_table.clicked.connect(self._waste_clicked)
        left.addWidget(titled("Wasted files (click to see the file in its layer)", self.waste_table))
        right = QSplitter(Qt.Orientation.Vertical)
        self.chart = LayerChart()
        self.chart.set_image(image)
        self.chart.layer_clicked.connect(self.show_layer)
        # a row per layer: many layers scroll rather than squeeze
        self.chart_scroll = QScrollArea(objectName="layerChartScroll")
        self.chart_scroll.setWidget(self.chart)
        self.chart_scroll.setWidgetResizable(True)
        self.chart_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.chart_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        right.addWidget(titled("Layer sizes (click a row to see its layer)", self.chart_scroll))
        self.treemap = Treemap()
        self.treemap.set_image(image, totals)
        self.treemap.path_clicked.connect(lambda p: self.show_file.emit(p, -1))
        right.addWidget(titled("The final filesystem by size: folders hold their files, coloured by layer", self.treemap))
        right.setStretchFactor(1, 1)
        right.setSizes([min(self.chart.minimumSizeHint().height() + 30, 320), 400])
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(right)
        body.setSizes([500, 500])
        layout.addWidget(body, 1)
        self._fill()


    def _fill(self) -> None:
        img = self.image
        e, w = img.efficiency, img.waste
        parts = []
        if e is not None:
            parts.append(f"<span style='font-size:16pt'><b>Efficiency {e.score:.1%}</b></span> &nbsp; "
                         f"dive would report {human_size(e.wasted_bytes)} wasted ({e.user_wasted_percent:.1%} of the layers above the base)")
        if w is not None:
            parts.append(f"{human_size(w.bytes)} stored in layers that the final image does not need, "
                         f"in {len(w.files):,} file versions")
            best = max(range(len(w.merge_savings)), key=lambda k: w.merge_savings[k], default=None)
            if best is not None and w.merge_savings[best]:
                parts.append(f"Merging layers {best} and {best + 1} would save {human_size(w.merge_savings[best])}.")
        self.summary.setText("<br>".join(parts))
        if img.secrets:
            rows = "".join(f"<li><b>{html.escape(s.path)}</b>: still readable in layer {s.layer} (removed in layer "
                           f"{s.removed_in}); {html.escape(s.why)}</li>" for s in img.secrets[:20])
            self.secrets.setText(f"<b>⚠ {len(img.secrets)} possible secret(s) left in lower layers.</b> Anyone who pulls "
                                 f"the image can read them, even though a later step deleted them:<ul>{rows}</ul>")
            self.secrets.show()
        else:
            self.secrets.hide()
        for a in img.advice:
            item = QListWidgetItem(f"{a.title} — saves {human_size(a.bytes)}\n{a.detail}")
            item.setData(Qt.ItemDataRole.UserRole, (a.paths[0] if a.paths else "", a.layer))
            item.setToolTip("\n".join(a.paths[:20]))
            self.advice.addItem(item)
        if not img.advice:
            self.advice.addItem("No advice: nothing in this image is stored twice or deleted later.")
        if img.packages is not None and img.packages.installed:  # (after the savings: these notes name no saving of their own)
            wasted = ((f.path, f.layer, f.size) for f in img.waste.files) if img.waste is not None else ()
            for text, layer in insights(img.tree, img.packages, [l.size for l in img.layers], wasted):
                item = QListWidgetItem(f"Packages: {text}")
                item.setData(Qt.ItemDataRole.UserRole, ("", layer))
                self.advice.addItem(item)

    def _waste_clicked(self, index: QModelIndex) -> None:
        path, layer = index.data(Qt.ItemDataRole.UserRole)
        self.show_file.emit(path, layer)

    def _advice_clicked(self, item: QListWidgetItem) -> None:
        value = item.data(Qt.ItemDataRole.UserRole)
        if value:
            path, layer = value
            if path:
                self.show_file.emit(path, layer if layer is not None else -1)
            elif layer is not None:
                self.show_layer.emit(layer)
