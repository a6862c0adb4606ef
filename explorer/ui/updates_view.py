"""The Updates tab (versions of one image: what each update downloads) and the Fleet tab (many
images: the layers they share)."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QMouseEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QListWidget, QSizePolicy, QSplitter, QTableView,
                               QVBoxLayout, QWidget)

from explorer.ui.charts import layer_colour, waste_colour
from explorer.image.elsewhere import PATHS_SHOWN
from explorer.image.updates import changed_files
from explorer.ui.format import human_size
from explorer.ui.widgets import rich_label, titled

Index = QModelIndex | QPersistentModelIndex
ROW = 26  # pixels a step takes in the timeline


class TimelineChart(QWidget):
    """A bar per update: the bytes really changed, and those re-downloaded unchanged (hatched)."""

    step_clicked = Signal(int)

    def __init__(self, report: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="updatesTimeline")
        self.report = report
        self.setMouseTracking(True)
        self.setMinimumHeight(ROW * max(1, len(report["steps"])) + 30)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    @staticmethod
    def split(step: dict[str, Any]) -> tuple[int, int]:
        """(bytes really changed, bytes re-downloaded unchanged) of one update, as stored: each
        downloaded layer's blob shared out by the part of it that changed."""
        changed = 0
        for layer in step["layers"]:
            if layer["new"] and layer["changed_bytes"]:
                changed += min(layer["blob_size"], layer["changed_bytes"])
        return changed, max(0, step["download_bytes"] - changed)

    def _label(self, step: dict[str, Any]) -> str:
        versions = self.report["versions"]

        def name(i: int) -> str:
            tags = versions[i]["tags"]
            return tags[0].rsplit(":", 1)[-1] if tags else f"#{i}"

        return f"{name(step['from'])} → {name(step['to'])}"

    def rows(self) -> list[tuple[QRectF, int]]:
        """Where each step's bar is, with the step's index."""
        top = max((s["download_bytes"] for s in self.report["steps"]), default=0) or 1
        left = self.fontMetrics().horizontalAdvance("x" * 16) + 12
        width = max(10, self.width() - left - self.fontMetrics().horizontalAdvance("999.9 MB downloaded") - 20)
        return [(QRectF(left, 20 + i * ROW, width * s["download_bytes"] / top, ROW - 8), i)
                for i, s in enumerate(self.report["steps"])]

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        text = self.palette().color(QPalette.ColorRole.Text)
        p.setPen(text)
        p.drawText(4, 14, "each update: really changed ■   re-downloaded unchanged ▨")
        for rect, i in self.rows():
            step = self.report["steps"][i]
            changed, unchanged = self.split(step)
            total = max(1, step["download_bytes"])
            p.setPen(text)
            p.drawText(QRectF(4, rect.top(), rect.left() - 8, rect.height()), Qt.AlignmentFlag.AlignVCenter, self._label(step))
            real = QRectF(rect.left(), rect.top(), rect.width() * changed / total, rect.height())
            rest = QRectF(real.right(), rect.top(), rect.width() - real.width(), rect.height())
            p.fillRect(real, layer_colour(0, self.palette().color(QPalette.ColorRole.Window).lightness() < 128))
            p.fillRect(rest, QBrush(waste_colour(), Qt.BrushStyle.BDiagPattern))
            p.setPen(waste_colour())
            p.drawRect(rest)
            p.setPen(text)
            p.drawText(QRectF(rect.right() + 6, rect.top(), 200, rect.height()), Qt.AlignmentFlag.AlignVCenter,
                       f"{human_size(step['download_bytes'])} downloaded")
        p.end()

    def step_at(self, x: float, y: float) -> int | None:
        """The step whose row is at a point."""
        for rect, i in self.rows():
            if rect.top() <= y <= rect.bottom():
                return i
        return None

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        i = self.step_at(event.position().x(), event.position().y())
        if i is None:
            self.setToolTip("")
            return
        step = self.report["steps"][i]
        changed, unchanged = self.split(step)
        self.setToolTip(f"{self._label(step)}: {human_size(step['download_bytes'])} downloaded, about "
                        f"{human_size(changed)} of it really changed and {human_size(unchanged)} re-downloaded "
                        f"unchanged; {human_size(step['reused_bytes'])} reused.\nClick to compare the two versions.")

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        i = self.step_at(event.position().x(), event.position().y())
        if i is not None:
            self.step_clicked.emit(i)


class GridModel(QAbstractTableModel):
    """Rows of images (versions or fleet members), a column per layer position or distinct
    layer; each cell says whether the layer is new or reused (or which images use it)."""

    def __init__(self, rows: list[str], columns: list[str], cells: list[list[str]], tips: list[list[str]]) -> None:
        super().__init__()
        self.row_names, self.column_names, self.cells, self.tips = rows, columns, cells, tips

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self.row_names)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.column_names)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        names = self.column_names if orientation == Qt.Orientation.Horizontal else self.row_names
        return names[section] if 0 <= section < len(names) else None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        text = self.cells[index.row()][index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return text
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tips[index.row()][index.column()]
        if role == Qt.ItemDataRole.BackgroundRole and text:
            return QColor(waste_colour()).lighter(170) if text.startswith("new") else QColor(layer_colour(index.column())).lighter(130)
        if role == Qt.ItemDataRole.ForegroundRole and text:
            return QColor("#000000")
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        return None


def _grid_view(model: GridModel, name: str) -> QTableView:
    view = QTableView(objectName=name)
    view.setAccessibleName(name)
    view.setModel(model)
    view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    view.setTabKeyNavigation(False)
    return view


def _version_name(v: dict[str, Any], i: int) -> str:
    return f"{i}: {v['tags'][0] if v['tags'] else v['config_digest'][7:19]}"


class UpdatesView(QWidget):
    """Versions of one image: a timeline of updates, the layer grid and the advice."""

    compare_step = Signal(int, int)  # version indices: from, to

    def __init__(self, report: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="updatesView")
        self.report = report
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        steps, versions = report["steps"], report["versions"]
        download = sum(s["download_bytes"] for s in steps)
        changed = sum(TimelineChart.split(s)[0] for s in steps)
        self.summary = rich_label("updatesSummary")
        self.summary.setText(
            f"<b>{len(versions)} versions, {len(steps)} updates.</b> A user following every update downloads "
            f"{human_size(download)} in all, of which about {human_size(changed)} really changed and "
            f"{human_size(download - changed)} was re-downloaded unchanged.")
        layout.addWidget(self.summary)
        self.timeline = TimelineChart(report)
        self.timeline.step_clicked.connect(lambda i: self.compare_step.emit(steps[i]["from"], steps[i]["to"]))
        layout.addWidget(titled("Each update (click one to compare its two versions)", self.timeline))
        depth = max(len(v["layers"]) for v in versions)
        cells, tips = [], []
        for i, v in enumerate(versions):
            step = steps[i - 1] if i else None
            row, tip = [], []
            for k in range(depth):
                if k >= len(v["layers"]):
                    row.append("")
                    tip.append("")
                    continue
                layer = v["layers"][k]
                if step is None:
                    row.append(human_size(layer["blob_size"]))
                    tip.append(f"layer {k}: {layer['diff_id']}")
                    continue
                s = step["layers"][k]
                row.append(f"new {human_size(s['blob_size'])}" if s["new"] else "reused")
                tip.append(f"layer {k}: {layer['diff_id']}\n" + (
                    f"downloaded ({human_size(s['blob_size'])}); {changed_files(s)}"
                    + "".join(f"\n  {p}" for p in s["changed_paths"][:PATHS_SHOWN]) if s["new"] else "reused: not downloaded"))
            cells.append(row)
            tips.append(tip)
        self.grid_model = GridModel([_version_name(v, i) for i, v in enumerate(versions)],
                                    [f"layer {k}" for k in range(depth)], cells, tips)
        self.grid = _grid_view(self.grid_model, "Layers of each version")
        self.advice = QListWidget(objectName="updatesAdvice")
        self.advice.setAccessibleName("Advice for updates")
        self.advice.setWordWrap(True)
        for a in report["advice"]:
            self.advice.addItem(f"{a['kind']}: {a['detail']}")
        if not report["advice"]:
            self.advice.addItem("No advice: each update downloads about what changed.")
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(titled("Layers of each version (new: downloaded by that update)", self.grid))
        body.addWidget(titled("Advice", self.advice))
        layout.addWidget(body, 1)

    def title(self) -> str:
        """The tab's title."""
        first = self.report["versions"][0]
        return f"updates of {first['tags'][0].rsplit(':', 1)[0] if first['tags'] else 'an image'}"

    def status_text(self) -> str:
        """What the status bar says."""
        return f"{len(self.report['versions'])} versions, {len(self.report['steps'])} updates"

    def close_source(self) -> None:
        """Nothing stays open: the images were closed once measured."""


class FleetView(QWidget):
    """Many images: what they store together and alone, their bases, who shares which layer."""

    def __init__(self, report: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="fleetView")
        self.report = report
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        images = report["images"]
        self.summary = rich_label("fleetSummary")
        bases = "".join(f"<li><b>{html.escape(b['name'] or 'unnamed base')}</b>: {len(b['layers'])} layers, "
                        f"{human_size(b['bytes'])}, used by {html.escape(', '.join(_image_name(images, n) for n in b['used_by']))}</li>"
                        for b in report["bases"])
        self.summary.setText(
            f"<b>{len(images)} images</b> take {human_size(report['total_bytes'])} stored one by one, "
            f"{human_size(report['unique_bytes'])} with each layer stored once: "
            f"{human_size(report['shared_bytes'])} shared." + (f"<br>Bases:<ul>{bases}</ul>" if bases else ""))
        layout.addWidget(self.summary)
        layers = [l for l in report["layers"]]
        cells = [[("used" if n in l["used_by"] else "") for l in layers] for n in range(len(images))]
        tips = [[f"{l['diff_id']}\n{human_size(l['blob_size'])} stored; used by {len(l['used_by'])} image(s)"
                 for l in layers] for _n in range(len(images))]
        self.matrix_model = GridModel([_image_name(images, n) for n in range(len(images))],
                                      [f"{l['diff_id'][7:15]} ({len(l['used_by'])}×)" for l in layers], cells, tips)
        self.matrix = _grid_view(self.matrix_model, "Layers each image uses")
        layout.addWidget(titled("Layers each image uses (most shared first)", self.matrix), 1)
        self.note = QLabel("A layer used by several images is stored and pulled once.")
        layout.addWidget(self.note)

    def title(self) -> str:
        """The tab's title."""
        return f"fleet of {len(self.report['images'])} images"

    def close_source(self) -> None:
        """Nothing stays open: the images were closed once measured."""

    def status_text(self) -> str:
        """What the status bar says."""
        return (f"{len(self.report['images'])} images, {human_size(self.report['unique_bytes'])} stored once, "
                f"{human_size(self.report['shared_bytes'])} shared")


def _image_name(images: list[dict[str, Any]], n: int) -> str:
    """How an image is named in the tab (plain text: escape it for rich text)."""
    img = images[n]
    return f"{n}: {img['tags'][0] if img['tags'] else img['config_digest'][7:19]}"
