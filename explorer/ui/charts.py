"""Two pictures of where the bytes are: layer sizes (with their waste) and a treemap of the
final filesystem coloured by the layer each file comes from. Drawn with QPainter."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QToolTip, QWidget

from explorer.image.loader import Image
from explorer.model.values import DIR, HARDLINK
from explorer.tree import names
from explorer.ui.format import human_size

# Distinct hues for layers, repeating for images with many layers.
LAYER_HUES = [210, 30, 120, 280, 0, 180, 60, 330, 240, 90, 150, 300]
MIN_AREA = 36.0  # rectangles smaller than this (px²) are not split further
MAX_DEPTH = 6
MAX_CHILDREN = 400
MIN_LEAF = 6.0  # px²: smaller entries are lumped together


def layer_colour(layer: int, dark: bool = False) -> QColor:
    """The colour that stands for a layer in both charts."""
    hue = LAYER_HUES[layer % len(LAYER_HUES)]
    lightness = 150 if not dark else 110
    return QColor.fromHsl(hue, 140, lightness - 12 * ((layer // len(LAYER_HUES)) % 3))


class LayerChart(QWidget):
    """A bar per layer: its size, with the part later wasted hatched."""

    layer_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("layerChart")
        self.setMinimumHeight(140)
        self.image: Image | None = None
        self._bars: list[tuple[QRectF, int]] = []

    def set_image(self, image: Image) -> None:
        """Chart another image."""
        self.image = image
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        if self.image is None or not self.image.layers:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().color(QPalette.ColorRole.Text)
        layers = self.image.layers
        waste = self.image.waste.per_layer if self.image.waste else [0] * len(layers)
        top = max(max(l.size for l in layers), 1)
        w, h = self.width(), self.height()
        margin, label_h = 8, 18
        slot = (w - 2 * margin) / len(layers)
        bar_w = max(2.0, min(60.0, slot * 0.7))
        self._bars = []
        dark = self.palette().color(QPalette.ColorRole.Window).lightness() < 128
        for i, layer in enumerate(layers):
            x = margin + i * slot + (slot - bar_w) / 2
            full = (h - 2 * label_h - margin) * layer.size / top
            rect = QRectF(x, h - label_h - full, bar_w, max(full, 1.0))
            p.fillRect(rect, layer_colour(i, dark))
            wasted = (h - 2 * label_h - margin) * min(waste[i], layer.size) / top
            if wasted >= 1:
                p.fillRect(QRectF(x, h - label_h - full, bar_w, wasted), QColor(200, 40, 90, 170))
            self._bars.append((rect.adjusted(0, -h, 0, 0), i))
            p.setPen(text)
            if slot > 24:
                p.drawText(QRectF(x - 10, h - label_h, bar_w + 20, label_h), Qt.AlignmentFlag.AlignCenter, str(i))
                p.drawText(QRectF(x - 20, h - label_h - full - label_h, bar_w + 40, label_h),
                           Qt.AlignmentFlag.AlignCenter, human_size(layer.size))
        p.end()

    def _bar_at(self, pos: QPointF) -> int | None:
        for rect, i in self._bars:
            if rect.contains(pos):
                return i
        return None

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        i = self._bar_at(event.position())
        if i is not None and self.image is not None:
            layer = self.image.layers[i]
            waste = self.image.waste.per_layer[i] if self.image.waste else 0
            QToolTip.showText(event.globalPosition().toPoint(),
                              f"layer {i}: {human_size(layer.size)}, of which {human_size(waste)} wasted later\n{layer.created_by[:200]}", self)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        i = self._bar_at(event.position())
        if i is not None:
            self.layer_clicked.emit(i)


@dataclass
class _Box:
    rect: QRectF
    path: str
    size: int
    layer: int
    is_dir: bool


def squarify(sizes: list[tuple[object, float]], rect: QRectF) -> list[tuple[object, QRectF]]:
    """Lay out (item, size) pairs in ``rect`` as near-square rectangles (Bruls et al.).

    Items are taken biggest first; the row's sum, largest and smallest are kept as it grows,
    so a folder of many entries is laid out in linear time.
    """
    items = sorted(((k, s) for k, s in sizes if s > 0), key=lambda item: -item[1])
    total = sum(s for _, s in items)
    if not items or total <= 0 or rect.width() <= 0 or rect.height() <= 0:
        return []
    scale = rect.width() * rect.height() / total
    out: list[tuple[object, QRectF]] = []
    x, y, w, h = rect.x(), rect.y(), rect.width(), rect.height()
    row: list[tuple[object, float]] = []
    row_sum = row_max = row_min = 0.0

    def worst(total_: float, biggest: float, smallest: float, side: float) -> float:
        if total_ <= 0 or side <= 0 or smallest <= 0:
            return float("inf")
        return max(side * side * biggest / (total_ * total_), (total_ * total_) / (side * side * smallest))

    for k, size in items:
        area = size * scale
        side = min(w, h)
        if row and worst(row_sum + area, max(row_max, area), min(row_min, area), side) > worst(row_sum, row_max, row_min, side):
            x, y, w, h = _place(row, x, y, w, h, out)
            row, row_sum, row_max, row_min = [], 0.0, 0.0, 0.0
        row.append((k, area))
        row_sum += area
        row_max = max(row_max, area)
        row_min = area if row_min == 0 else min(row_min, area)
    if row:
        _place(row, x, y, w, h, out)
    return out


def _place(row, x, y, w, h, out):
    s = sum(a for _, a in row)
    if w >= h:  # a column on the left
        col_w = s / h if h else 0
        yy = y
        for k, a in row:
            hh = a / col_w if col_w else 0
            out.append((k, QRectF(x, yy, col_w, hh)))
            yy += hh
        return x + col_w, y, w - col_w, h
    row_h = s / w if w else 0
    xx = x
    for k, a in row:
        ww = a / row_h if row_h else 0
        out.append((k, QRectF(xx, y, ww, row_h)))
        xx += ww
    return x, y + row_h, w, h - row_h


class Treemap(QWidget):
    """The final filesystem as nested rectangles sized by bytes, coloured by layer."""

    path_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("treemap")
        self.setMinimumSize(200, 160)
        self.setMouseTracking(True)
        self.image: Image | None = None
        self.totals: dict[str, int] = {}
        self.boxes: list[_Box] = []
        self._laid_out_for = (0, 0)

    def set_image(self, image: Image, totals: dict[str, int]) -> None:
        """Map another image (``totals``: bytes below each folder of the final image)."""
        self.image, self.totals = image, totals
        self._laid_out_for = (0, 0)
        self.update()

    def _layout(self) -> None:
        """Compute the rectangles for the current size (only when it changed)."""
        if self._laid_out_for == (self.width(), self.height()) or self.image is None:
            return
        self._laid_out_for = (self.width(), self.height())
        self.boxes = []
        tree = self.image.tree
        stack = [("/", QRectF(0, 0, self.width(), self.height()), 0)]
        while stack:
            folder, rect, depth = stack.pop()
            kids = []
            for name in tree.kids.get(folder, ()):
                path = names.join(folder, name)
                e = tree.entry_at(path)
                if e is None:
                    continue
                e = tree.effective(e)  # a file's bytes take room under one of its names only
                size = self.totals.get(path, 0) if e.type == DIR else 0 if e.type == HARDLINK else e.size
                if size > 0:
                    kids.append(((path, e), float(size)))
            # too many, or too small to see: the biggest entries, and the rest as one grey box
            kids.sort(key=lambda k: -k[1])
            total = sum(size for _, size in kids) or 1.0
            area = rect.width() * rect.height()
            keep = 0
            while keep < len(kids) and keep < MAX_CHILDREN and kids[keep][1] / total * area >= MIN_LEAF:
                keep += 1
            if keep < len(kids):
                rest = sum(size for _, size in kids[keep:])
                kids = kids[:keep] + [((f"{folder} ({len(kids) - keep:,} smaller entries)", None), rest)]
            for (path, e), r in squarify(kids, rect.adjusted(1, 1, -1, -1)):  # type: ignore[misc]
                if e is None:
                    self.boxes.append(_Box(r, path, 0, -1, False))
                    continue
                is_dir = e.type == DIR
                size = self.totals.get(path, 0) if is_dir else e.size
                self.boxes.append(_Box(r, path, size, e.layer, is_dir))
                if is_dir and depth < MAX_DEPTH and r.width() * r.height() >= MIN_AREA * 4:
                    stack.append((path, r, depth + 1))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        self._layout()
        p = QPainter(self)
        dark = self.palette().color(QPalette.ColorRole.Window).lightness() < 128
        edge = QPen(self.palette().color(QPalette.ColorRole.Window))
        colours: dict[int, QColor] = {-1: QColor(128, 128, 128)}
        for box in self.boxes:
            if box.is_dir:
                continue  # folders are drawn by what they hold
            colour = colours.get(box.layer)
            if colour is None:
                colour = colours[box.layer] = layer_colour(box.layer, dark)
            p.fillRect(box.rect, colour)
            p.setPen(edge)
            p.drawRect(box.rect)
        p.setPen(self.palette().color(QPalette.ColorRole.Text))
        for box in self.boxes:
            if box.rect.width() > 60 and box.rect.height() > 14 and not box.is_dir:
                p.drawText(box.rect.adjusted(2, 1, -2, -1), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                           box.path.rsplit("/", 1)[-1])
        p.end()

    def box_at(self, pos: QPointF) -> _Box | None:
        """The smallest rectangle under a point."""
        found = None
        for box in self.boxes:
            if box.rect.contains(pos) and (found is None or box.rect.width() * box.rect.height() <= found.rect.width() * found.rect.height()):
                found = box
        return found

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        box = self.box_at(event.position())
        if box is not None:
            QToolTip.showText(event.globalPosition().toPoint(), f"{box.path}\n{human_size(box.size)}, from layer {box.layer}", self)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        box = self.box_at(event.position())
        if box is not None:
            self.path_clicked.emit(box.path)
