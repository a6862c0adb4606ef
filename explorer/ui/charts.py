"""Two pictures of where the bytes are: a row per layer with the part later wasted hatched, and a
treemap of the final filesystem, folders holding their entries, coloured by layer. Drawn with QPainter."""

from __future__ import annotations

import heapq
import html
import math
from typing import NamedTuple, Sequence

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFontMetricsF,
    QHelpEvent,
    QHideEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from explorer.image.loader import Image
from explorer.model.values import DIR, HARDLINK, LayerInfo
from explorer.tree.index import stored_at
from explorer.tree.steps import Steps, drain
from explorer.ui.format import human_size, short_command
from explorer.ui.workers import Slices

# Paul Tol's colour-blind safe hues without red, orange and pink: those stay for waste alone.
LAYER_COLOURS = ["#4477aa", "#88ccee", "#44aa99", "#117733", "#999933", "#ddcc77", "#7766bb"]
WASTE_COLOURS = {False: "#cc3311", True: "#ff7a5c"}
WASTE_PATTERN = Qt.BrushStyle.BDiagPattern
LUMP_COLOUR = "#9e9e9e"
_new = tuple.__new__


def layer_colour(layer: int, dark: bool = False) -> QColor:
    """The colour that stands for a layer in both charts (never the waste colour)."""
    base = QColor(LAYER_COLOURS[layer % len(LAYER_COLOURS)])
    cycle = (layer // len(LAYER_COLOURS)) % 3  # many layers: lighter, then darker, variants
    colour = base.lighter(135) if cycle == 1 else base.darker(135) if cycle == 2 else base
    return colour.lighter(125) if dark and colour.lightness() < 80 else colour


def waste_colour(dark: bool = False) -> QColor:
    """The colour of the hatching that marks bytes a later layer wastes."""
    return QColor(WASTE_COLOURS[dark])


def _is_dark(widget: QWidget) -> bool:
    return widget.palette().color(QPalette.ColorRole.Window).lightness() < 128


def _ink_on(colour: QColor) -> QColor:
    """Black or white, whichever reads better on ``colour``."""
    luma = 0.299 * colour.red() + 0.587 * colour.green() + 0.114 * colour.blue()
    return QColor("#000000" if luma > 140 else "#ffffff")


def _faint(colour: QColor, alpha: int) -> QColor:
    out = QColor(colour)
    out.setAlpha(alpha)
    return out


def nice_ticks(top: float, count: int) -> list[float]:
    """Round values from 0 past ``top`` in about ``count`` steps (1, 2, 2.5 or 5 times 10^n)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def tick_text(value: float) -> str:
    """An axis value: ``50 MB`` rather than ``50.0 MB``."""
    return human_size(value).replace(".0 ", " ")


class ChartLabel(NamedTuple):
    """A piece of text the layer chart draws, where it draws it."""

    layer: int
    rect: QRectF
    text: str


class _Row(NamedTuple):
    bar: QRectF
    waste: QRectF | None
    step: ChartLabel
    size: ChartLabel


class LayerChart(QWidget):
    """A row per layer: its number, build step and size, a bar with the part later wasted hatched."""

    layer_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("layerChart")
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.MinimumExpanding)
        self.image: Image | None = None
        self._hover: int | None = None

    def set_image(self, image: Image) -> None:
        """Chart another image."""
        self.image = image
        self.updateGeometry()
        self.update()

    # -- geometry: one place, used by painting, hovering and the tests ------------------------

    def _metrics(self) -> tuple[QFontMetricsF, float, float]:
        """Font metrics, row height and the height of the legend and axis above the rows."""
        fm = QFontMetricsF(self.font())
        return fm, math.ceil(fm.height()) + 8, 2 * (math.ceil(fm.height()) + 6)

    def _layers(self) -> list[LayerInfo]:
        return self.image.layers if self.image is not None else []

    def _wasted(self, k: int) -> int:
        waste = self.image.waste if self.image is not None else None
        return min(waste.per_layer[k], self._layers()[k].size) if waste and k < len(waste.per_layer) else 0

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        _, row, head = self._metrics()
        return QSize(260, int(head + row * len(self._layers()) + 6))

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(520, self.minimumSizeHint().height())

    def _scale(self, fm: QFontMetricsF, width: float) -> tuple[float, float, float, list[float]]:
        """(left of the bars, their full width, bytes at that width, axis ticks)."""
        layers = self._layers()
        size_w = max(fm.horizontalAdvance(self._size_text(k)) for k in range(len(layers))) + 12
        label_w = min(max(width * 0.38, 90.0), 380.0)
        bar_w = width - 6 - label_w - size_w - 6
        if bar_w < 60:  # narrow: the step text gives way first
            label_w = max(40.0, label_w - (60 - bar_w))
            bar_w = max(20.0, width - 12 - label_w - size_w)
        top = max((l.size for l in layers), default=0)
        fits = int(bar_w // (fm.horizontalAdvance(tick_text(top * 10 or 1)) + 24))
        # of the tick counts whose labels fit, the one whose last tick wastes least width
        counts = range(min(2, max(fits, 1)), max(1, min(6, fits)) + 1)
        ticks = min((nice_ticks(top, count) for count in counts), key=lambda t: (t[-1], len(t)))
        return 6 + label_w, bar_w, ticks[-1], ticks

    def _size_text(self, k: int) -> str:
        wasted = self._wasted(k)
        text = human_size(self._layers()[k].size)
        return f"{text}  ({human_size(wasted)} wasted)" if wasted else text

    def _rows(self) -> list[_Row]:
        layers = self._layers()
        if not layers:
            return []
        fm, row_h, head = self._metrics()
        left, bar_w, full, _ = self._scale(fm, self.width())
        text_h = math.ceil(fm.height())
        num_w = fm.horizontalAdvance(str(len(layers) - 1)) + 10
        rows = []
        for k, layer in enumerate(layers):
            y = head + k * row_h
            text_y = y + (row_h - text_h) / 2
            step = short_command(layer.created_by, 10_000) or "(no build step recorded)"
            step = fm.elidedText(step, Qt.TextElideMode.ElideMiddle, left - 6 - num_w - 8)
            length = bar_w * layer.size / full if full else 0.0
            bar = QRectF(left, y + 3, max(length, 1.0 if layer.size else 0.0), row_h - 6)
            wasted = self._wasted(k)
            waste = None
            if wasted:  # the end of the bar: what a later layer throws away
                wl = max(bar_w * wasted / full, 2.0)
                waste = QRectF(bar.right() - wl, bar.top(), wl, bar.height())
            size_text = self._size_text(k)
            rows.append(_Row(
                bar, waste,
                ChartLabel(k, QRectF(6, text_y, left - 12, text_h), f"{k}  {step}"),
                ChartLabel(k, QRectF(bar.right() + 6, text_y, fm.horizontalAdvance(size_text) + 2, text_h), size_text),
            ))
        return rows

    def label_rects(self) -> list[ChartLabel]:
        """Every label of the rows (number and step, then size), with the rect it is drawn in."""
        return [label for row in self._rows() for label in (row.step, row.size)]

    def bar_rects(self) -> list[QRectF]:
        """The bar of each layer."""
        return [row.bar for row in self._rows()]

    def row_at(self, pos: QPointF) -> int | None:
        """The layer whose row is at ``pos`` (label or bar)."""
        _, row_h, head = self._metrics()
        k = math.floor((pos.y() - head) / row_h)
        return k if 0 <= k < len(self._layers()) and 0 <= pos.x() < self.width() else None

    def tooltip_at(self, pos: QPointF) -> str:
        """What hovering at ``pos`` tells (rich text), or ''."""
        k = self.row_at(pos)
        if k is None:
            return ""
        layer = self._layers()[k]
        wasted = self._wasted(k)
        step = " ".join(layer.created_by.split()) or "(no build step recorded)"
        if len(step) > 4000:
            step = step[:4000] + "…"
        later = f"<br>{human_size(wasted)} of it wasted by later layers (hatched)" if wasted else "<br>nothing of it wasted later"
        return (f"<b>Layer {k}</b>: {human_size(layer.size)}{later}"
                f"<p style='white-space:pre-wrap'><tt>{html.escape(step)}</tt></p>")

    # -- drawing -------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        layers = self._layers()
        if not layers:
            return
        p = QPainter(self)
        dark = _is_dark(self)
        pal = self.palette()
        ink = pal.color(QPalette.ColorRole.WindowText)
        fm, row_h, head = self._metrics()
        left, bar_w, full, ticks = self._scale(fm, self.width())
        rows = self._rows()
        bottom = head + row_h * len(layers)
        line_h = math.ceil(fm.height()) + 6
        self._legend(p, fm, dark, ink, line_h)
        # the axis along the top, so it stays in view over a long list of layers
        p.setPen(QPen(_faint(ink, 60), 1))
        for value in ticks:
            x = left + bar_w * value / full if full else left
            p.drawLine(QPointF(x, head - 3), QPointF(x, bottom))
        p.setPen(ink)
        for value in ticks:
            x = left + bar_w * value / full if full else left
            text = tick_text(value)
            w = fm.horizontalAdvance(text)
            x0 = min(max(x - w / 2, left - 4), self.width() - w - 2)
            p.drawText(QRectF(x0, line_h, w + 2, line_h - 4), Qt.AlignmentFlag.AlignCenter, text)
        if self._hover is not None:
            hover = QRectF(0, head + self._hover * row_h, self.width(), row_h)
            p.fillRect(hover, _faint(pal.color(QPalette.ColorRole.Highlight), 50))
        hatch = QBrush(waste_colour(dark), WASTE_PATTERN)
        base = pal.color(QPalette.ColorRole.Base)
        num_w = fm.horizontalAdvance(str(len(layers) - 1)) + 10
        for k, row in enumerate(rows):
            p.fillRect(row.bar, layer_colour(k, dark))
            if row.waste is not None:
                p.fillRect(row.waste, base)
                p.fillRect(row.waste, hatch)
                p.setPen(QPen(waste_colour(dark), 1))
                p.drawRect(row.waste.adjusted(0.5, 0.5, -0.5, -0.5))
            p.setPen(ink)
            number, _, step = row.step.text.partition("  ")  # the number right-aligned in a column
            p.drawText(QRectF(row.step.rect.x(), row.step.rect.y(), num_w - 8, row.step.rect.height()),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, number)
            p.drawText(row.step.rect.adjusted(num_w, 0, 0, 0), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, step)
            p.drawText(row.size.rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, row.size.text)
        p.end()

    def _legend(self, p: QPainter, fm: QFontMetricsF, dark: bool, ink: QColor, line_h: float) -> None:
        """Two swatches: what the bar and what its hatched end mean."""
        x, y = 6.0, (line_h - 10) / 2
        for text, hatched in (("layer size", False), ("later wasted (hatched)", True)):
            swatch = QRectF(x, y, 18, 10)
            if hatched:
                p.fillRect(swatch, self.palette().color(QPalette.ColorRole.Base))
                p.fillRect(swatch, QBrush(waste_colour(dark), WASTE_PATTERN))
                p.setPen(waste_colour(dark))
                p.drawRect(swatch.adjusted(0.5, 0.5, -0.5, -0.5))
            else:
                p.fillRect(swatch, layer_colour(0, dark))
            p.setPen(ink)
            w = fm.horizontalAdvance(text) + 2
            p.drawText(QRectF(x + 24, 0, w, line_h), Qt.AlignmentFlag.AlignVCenter, text)
            x += 24 + w + 18

    # -- the mouse -----------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            k = self.row_at(QPointF(event.pos()))
            if k is not None:
                _, row_h, head = self._metrics()
                area = QRectF(0, head + k * row_h, self.width(), row_h).toAlignedRect()
                QToolTip.showText(event.globalPos(), self.tooltip_at(QPointF(event.pos())), self, area)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        k = self.row_at(event.position())
        if k != self._hover:
            self._hover = k
            self.setCursor(Qt.CursorShape.PointingHandCursor if k is not None else Qt.CursorShape.ArrowCursor)
            self.update()

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt API)
        self._hover = None
        self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        k = self.row_at(event.position())
        if k is not None and event.button() == Qt.MouseButton.LeftButton:
            self.layer_clicked.emit(k)


# -- the treemap --------------------------------------------------------------------------------

FILE_BOX, FOLDER_BOX, MORE_BOX = 0, 1, 2
MIN_LEAF = 3.0  # px²: entries smaller than this are drawn as one box per folder
MIN_BOX = 7000.0  # px²: the least a small entry gets, so that small folders stay visible ...
FLOOR_SHARE = 3  # ... but all such minimums together take at most 1/(1+3) of a folder
CELL = 24  # px: side of a cell of the hover grid
LEGEND_LINES = 3  # a longer legend of layers keeps those with the most bytes on the map


class TreemapBox(NamedTuple):
    """One rectangle of the treemap: a file, a folder, or the smaller entries of a folder lumped."""

    x: float
    y: float
    w: float
    h: float
    size: int
    path: str  # for lumped entries: their folder
    layer: int  # the layer that wrote the file; -1 for folders and lumps
    kind: int  # FILE_BOX, FOLDER_BOX or MORE_BOX
    count: int  # entries lumped together
    depth: int

    @property
    def rect(self) -> QRectF:
        """The box as a QRectF."""
        return QRectF(self.x, self.y, self.w, self.h)

    @property
    def is_dir(self) -> bool:
        """Whether the box is a folder."""
        return self.kind == FOLDER_BOX


def squarify(weights: Sequence[float], x: float, y: float, w: float, h: float) -> list[tuple[float, float, float, float]]:
    """Rectangles for ``weights`` (biggest first) tiling (x, y, w, h), as near square as possible."""
    # A row along the shorter side grows while its worst aspect ratio improves (Bruls, Huizing
    # and van Wijk); each weight is looked at once or twice, so a folder of many entries is linear.
    total = sum(weights)
    out: list[tuple[float, float, float, float]] = []
    if total <= 0 or w <= 0 or h <= 0:
        return out
    scale = w * h / total
    areas = [weight * scale for weight in weights]
    i, n = 0, len(areas)
    while i < n:
        side2 = min(w, h) ** 2
        first = areas[i] * side2
        row, worst_before, j = 0.0, math.inf, i
        while j < n:
            area = areas[j]
            s2 = (row + area) ** 2
            if area <= 0:
                break
            wide, thin = first / s2, s2 / (side2 * area)
            worst = wide if wide > thin else thin
            if worst > worst_before:
                break
            row, worst_before, j = row + area, worst, j + 1
        j = max(j, i + 1)  # a weight of zero still takes its (empty) place
        if w >= h:  # a column at the left
            thick, yy = row / h if h > 0 else 0.0, y
            for area in areas[i:j]:
                hh = area / thick if thick else 0.0
                out.append((x, yy, thick, hh))
                yy += hh
            x, w = x + thick, w - thick
        else:  # a row at the top
            thick, xx = row / w if w > 0 else 0.0, x
            for area in areas[i:j]:
                ww = area / thick if thick else 0.0
                out.append((xx, y, ww, thick))
                xx += ww
            y, h = y + thick, h - thick
        i = j
    return out


LIST_BUDGET = 150_000  # entries listed for one layout at most: the biggest folders first (a
# million-entry image listed every one, 1.6 s, for boxes too small to show; the rest are lumps)


class TreemapLayout(NamedTuple):
    """The boxes for one size, parents before what they hold; the layers with a file box; and
    how many entries each folder laid out holds."""

    size: tuple[int, int]
    boxes: list[TreemapBox]
    shown: list[int]
    entries: dict[str, int]


LIST_STEP = 8192  # entries listed between two looks at the event loop (a few milliseconds)


def _listed_steps(image: Image, totals: dict[str, int], folder: str) -> Steps[list[tuple[int, str, int, int]]]:
    """A folder's entries that take room, as (bytes, name, layer, kind), in the order it lists
    them: read as stored, with no entry made but for the names of a hard-linked file (its
    bytes count under one of its names only)."""
    tree = image.tree
    got, stored = tree.stored_in(folder)
    last = tree.layer_count - 1
    prefix = folder if folder == "/" else folder + "/"
    kids = []
    for i, (name, value) in enumerate(zip(got, stored)):
        if not i % LIST_STEP and i:
            yield
        e = stored_at(value, last) if value is not None else None
        if e is None:
            continue
        kind = e[1]
        if kind == DIR:
            size = totals.get(prefix + name, 0)
            if size > 0:
                kids.append((size, name, -1, FOLDER_BOX))
            continue
        if kind == HARDLINK:
            entry = tree.entry_at(prefix + name)
            if entry is None or tree.effective(entry).type == HARDLINK:
                continue
        if e[5] > 0:
            kids.append((e[5], name, e[8], FILE_BOX))
    return kids


def lay_out_steps(image: Image, totals: dict[str, int], size: tuple[int, int], height: float,
                  band: float) -> Steps[TreemapLayout]:
    """The treemap of ``image`` for a widget of ``size``, its map ``height`` px tall (the
    legend below) with folder names in bands of ``band`` px, as a walk (``Slices``: on the
    GUI thread a few milliseconds at a time, as every folder it opens is read): the biggest
    boxes are opened first, each folder read from the index as stored (nothing kept), until
    ``LIST_BUDGET`` entries are listed."""
    boxes: list[TreemapBox] = []
    layers: set[int] = set()
    entries: dict[str, int] = {}
    budget = LIST_BUDGET
    # the biggest boxes first, so that a budget spent leaves only small folders unopened
    heap = [(-size[0] * height, 0, "/", 0.0, 0.0, float(size[0]), height, 0)]
    order = 1
    while heap and budget > 0:
        _area, _n, folder, x, y, w, h, depth = heapq.heappop(heap)
        kids = yield from _listed_steps(image, totals, folder)
        yield
        n = len(kids)
        budget -= n
        entries[folder] = n
        total = sum(kid[0] for kid in kids)
        area = w * h
        if total <= 0 or area < MIN_LEAF:
            continue
        floor = total * min(1 / (n * FLOOR_SHARE), MIN_BOX / area)
        scale = area / (total + floor * n)
        # those big enough for a box of their own, biggest first (the rest are one box: sorting
        # only these is what keeps a folder of 100,000 small files quick)
        kept = [kid for kid in kids if (kid[0] + floor) * scale >= MIN_LEAF]
        kept.sort(key=lambda kid: -kid[0])
        keep = len(kept)
        weights = [kid[0] + floor for kid in kept]
        rest = total - sum(kid[0] for kid in kept)
        if keep < n:
            weights.append(rest + floor * (n - keep))
        rects = squarify(weights, x, y, w, h)
        prefix = folder if folder == "/" else folder + "/"
        for rect, (bytes_, name, layer, kind) in zip(rects, kept):
            path = prefix + name
            boxes.append(_new(TreemapBox, (*rect, bytes_, path, layer, kind, 0, depth)))  # a box is its rect and its entry
            layers.add(layer)
            if kind == FOLDER_BOX:
                bx, by, bw, bh = rect
                if bw > 4 and bh > 4:  # its entries inside, under a band with its name when it fits
                    top = band if bw >= 40 and bh >= 2.2 * band else 1.0
                    inner = (bw - 2) * (bh - top - 1)
                    heapq.heappush(heap, (-inner, order, path, bx + 1, by + top, bw - 2, bh - top - 1, depth + 1))
                    order += 1
        if keep < n and len(rects) > keep:
            boxes.append(_new(TreemapBox, rects[keep] + (rest, folder, -1, MORE_BOX, n - keep, depth)))
    layers.discard(-1)
    return TreemapLayout(size, boxes, sorted(layers), entries)


def _or_failure(steps: Steps[TreemapLayout]) -> Steps[TreemapLayout | str]:
    """A layout's walk, or what stopped it (a damaged index file), said in a sentence."""
    try:
        return (yield from steps)
    except (ValueError, EOFError, TypeError, OSError, IndexError, KeyError) as exc:
        return f"the image's index is damaged ({type(exc).__name__}: {exc}); open the image again"


class Treemap(QWidget):
    """The final filesystem as nested boxes sized by bytes, files coloured by the layer that wrote them."""

    path_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # the layout reads every folder it opens: between events, a few milliseconds at a time
        # (in a thread, it held the lock every call into Python waits for: 150 ms at once)
        self._layouts = Slices(self)
        self.setObjectName("treemap")
        self.setMinimumSize(200, 160)
        self.image: Image | None = None
        self.totals: dict[str, int] = {}
        self._boxes: list[TreemapBox] = []
        self._entries: dict[str, int] = {}  # entries in each folder laid out
        self._failed = ""  # why the last layout could not be made (a damaged index file)
        self._laid_out_for: tuple[int, int] | None = None
        self._asked: tuple[int, int] | None = None  # the size a layout is being made for
        self._grid: list[list[int]] | None = None
        self._cols = 0
        self._shown: list[int] = []
        self._pixmap: QPixmap | None = None

    def set_image(self, image: Image, totals: dict[str, int]) -> None:
        """Map another image (``totals``: bytes below each folder of the final image)."""
        self.image, self.totals = image, totals
        self._boxes, self._entries, self._shown = [], {}, []
        self._forget()

    def _forget(self) -> None:
        """Lay out and draw again at the next paint (a layout under way is for what was)."""
        self._layouts.cancel("layout")
        self._laid_out_for, self._asked, self._grid, self._pixmap = None, None, None, None
        self._failed = ""
        self.update()

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 (Qt API)
        self._layouts.cancel_all()  # (its page closed, or its tab)
        self._asked = None
        super().hideEvent(event)

    @property
    def boxes(self) -> list[TreemapBox]:
        """Every box for the current size, parents before what they hold."""
        self._ensure_layout()
        return self._boxes

    def shown_layers(self) -> list[int]:
        """The layers whose files have a box, in order (the legend's entries)."""
        self._ensure_layout()
        return self._shown

    # -- layout --------------------------------------------------------------------------------

    def _legend_lines(self, layers: Sequence[int], width: float, lumps: bool = True,
                      more: int = 0) -> list[list[tuple[float, str, QColor | None]]]:
        """The legend wrapped to ``width``: per line, (x, text, swatch colour) of each entry."""
        fm = QFontMetricsF(self.font())
        dark = _is_dark(self)
        entries: list[tuple[str, QColor | None]] = [(str(k), layer_colour(k, dark)) for k in layers]
        if more:
            entries.append((f"+{more} more (hover a box for its layer)", None))
        if lumps:
            entries.append(("smaller entries", QColor(LUMP_COLOUR)))
        lines: list[list[tuple[float, str, QColor | None]]] = [[]]
        x = 4 + fm.horizontalAdvance("Layers:") + 8
        for text, colour in entries:
            w = (16 if colour is not None else 0) + fm.horizontalAdvance(text) + 10
            if x + w > width and lines[-1]:
                lines.append([])
                x = 4.0
            lines[-1].append((x, text, colour))
            x += w
        return lines

    def _legend(self) -> list[list[tuple[float, str, QColor | None]]]:
        """The legend of the layers shown; when many, those with the most bytes on the map."""
        width, lumps = self.width(), any(box.kind == MORE_BOX for box in self._boxes)
        lines = self._legend_lines(self._shown, width, lumps)
        if len(lines) <= LEGEND_LINES:
            return lines
        area: dict[int, float] = {}
        for b in self._boxes:
            if b.kind == FILE_BOX:
                area[b.layer] = area.get(b.layer, 0.0) + b.w * b.h
        ranked = sorted(self._shown, key=lambda k: -area.get(k, 0.0))
        keep = len(ranked)
        while keep and len(lines) > LEGEND_LINES:
            keep -= 1
            lines = self._legend_lines(sorted(ranked[:keep]), width, lumps, len(ranked) - keep)
        return lines

    def _legend_height(self) -> float:
        if self.image is None:
            return 0.0
        # room for every layer that stored bytes: the ones shown are among them
        layers = [k for k, layer in enumerate(self.image.layers) if layer.size > 0]
        line_h = math.ceil(QFontMetricsF(self.font()).height()) + 4
        return min(len(self._legend_lines(layers, self.width())), LEGEND_LINES) * line_h + 4

    def _header(self) -> float:
        return math.ceil(QFontMetricsF(self.font()).height()) + 2

    def _geometry(self) -> tuple[tuple[int, int], float, float]:
        """The widget's size, the map's height (the legend below it) and a name band's."""
        return (self.width(), self.height()), self.height() - self._legend_height(), self._header()

    def _ensure_layout(self) -> None:
        """Lay the boxes out for the current size now, here (only when it changed)."""
        size, height, band = self._geometry()
        if self._laid_out_for == size:
            return
        if self.image is None:
            self._use(TreemapLayout(size, [], [], {}))
            return
        self._layouts.cancel("layout")
        self._asked = None
        self._use(drain(lay_out_steps(self.image, self.totals, size, height, band)))

    def _use(self, layout: TreemapLayout) -> None:
        self._boxes, self._shown, self._entries = layout.boxes, layout.shown, layout.entries
        self._laid_out_for, self._grid = layout.size, None

    def _ask_layout(self) -> None:
        """Have the boxes for the current size laid out in the background (``_laid_out``)."""
        size, height, band = self._geometry()
        if self._asked == size:
            return
        self._asked = size
        image, totals = self.image, self.totals
        if image is None:
            self._use(TreemapLayout(size, [], [], {}))
            return
        self._layouts.run("layout", _or_failure(lay_out_steps(image, totals, size, height, band)),
                          then=self._laid_out)

    def _laid_out(self, layout: TreemapLayout | str) -> None:
        if isinstance(layout, str):  # it failed: said in place of the map, not asked again at this size
            self._failed = layout
            layout = TreemapLayout(self._asked or (self.width(), self.height()), [], [], {})
        if layout.size != (self.width(), self.height()):
            return  # resized meanwhile: the paint this asked for asks again
        self._use(layout)
        self._pixmap = None
        self.update()

    def _lookup(self) -> list[list[int]]:
        """A grid of cells, each with the boxes over it in layout order (built at the first hover)."""
        if self._grid is None:
            # a spare column and row: a box's far edge may reach one cell past the widget
            self._cols = cols = self.width() // CELL + 2
            grid: list[list[int]] = [[] for _ in range(cols * (self.height() // CELL + 2))]
            for i, (x, y, w, h, *_) in enumerate(self._boxes):
                c0, r0 = int(x / CELL), int(y / CELL)
                c1, r1 = int((x + w) / CELL), int((y + h) / CELL)
                if c0 == c1 and r0 == r1:  # most boxes are small: one cell
                    grid[r0 * cols + c0].append(i)
                    continue
                for r in range(r0 * cols, r1 * cols + 1, cols):
                    for cell in range(r + c0, r + c1 + 1):
                        grid[cell].append(i)
            self._grid = grid
        return self._grid

    def box_at(self, pos: QPointF) -> TreemapBox | None:
        """The innermost box under a point (None while the boxes for this size are being laid out)."""
        if self._laid_out_for != (self.width(), self.height()):
            return None
        px, py = pos.x(), pos.y()
        if not (0 <= px < self.width() and 0 <= py < self.height()):
            return None
        boxes = self._boxes
        for i in reversed(self._lookup()[int(py // CELL) * self._cols + int(px // CELL)]):
            b = boxes[i]  # a box comes after the folders holding it: the first hit is the innermost
            if b.x <= px < b.x + b.w and b.y <= py < b.y + b.h:
                return b
        return None

    def tooltip_at(self, pos: QPointF) -> str:
        """What hovering at ``pos`` tells: path, size and layer, or ''."""
        box = self.box_at(pos)
        if box is None or self.image is None:
            return ""
        if box.kind == MORE_BOX:
            return f"{box.count:,} smaller entries in {box.path}\n{human_size(box.size)} together"
        if box.kind == FOLDER_BOX:
            held = self._entries.get(box.path)
            return f"{box.path}/\n{human_size(box.size)}" + (f" in {held:,} entries" if held is not None else "")
        step = self.image.layers[box.layer].created_by if 0 <= box.layer < len(self.image.layers) else ""
        return f"{box.path}\n{human_size(box.size)}, from layer {box.layer}: {short_command(step, 80)}"

    # -- drawing -------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        if self._pixmap is None or self._pixmap.deviceIndependentSize().toSize() != self.size():
            if self._laid_out_for != (self.width(), self.height()):
                self._ask_layout()  # drawn once its boxes come (while resizing: the last size's)
                self._paint_waiting(p)
                p.end()
                return
            self._pixmap = self._render()
        p.drawPixmap(0, 0, self._pixmap)
        p.end()

    def _paint_waiting(self, p: QPainter) -> None:
        """What shows while the boxes are laid out: the last picture stretched, or a line."""
        if self._pixmap is not None:
            p.drawPixmap(self.rect(), self._pixmap)
            return
        p.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Window))
        p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        p.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter, "Mapping the filesystem…")

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt API)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._forget()
        super().changeEvent(event)

    def _render(self) -> QPixmap:
        """The whole picture, drawn once per size, image and palette (its boxes laid out)."""
        dpr = self.devicePixelRatioF()
        pix = QPixmap(self.size() * dpr)
        if pix.isNull():
            return pix
        pix.setDevicePixelRatio(dpr)
        pal = self.palette()
        dark = _is_dark(self)
        window, ink = pal.color(QPalette.ColorRole.Window), pal.color(QPalette.ColorRole.WindowText)
        pix.fill(window)
        p = QPainter(pix)
        fm = QFontMetricsF(self.font())
        band, line = self._header(), fm.height()
        # deeper folders a shade further from the window colour, so nesting shows
        shades = [window.lighter(130 + 25 * d) if dark else window.darker(106 + 7 * d) for d in range(12)]
        colours = {k: layer_colour(k, dark) for k in self._shown}
        inks = {k: _ink_on(c) for k, c in colours.items()}
        lump = QColor(LUMP_COLOUR)
        fill, Rect = p.fillRect, QRectF
        labels = []
        for b in self._boxes:
            x, y, w, h = b.x, b.y, b.w, b.h
            if w >= 4 and h >= 4:  # a gap, in the colour of what holds it, parts neighbours
                w, h = w - 1, h - 1
            if b.kind == FILE_BOX:
                fill(Rect(x, y, w, h), colours[b.layer])
            elif b.kind == FOLDER_BOX:
                fill(Rect(x, y, w, h), shades[min(b.depth, 11)])
            else:
                fill(Rect(x, y, w, h), lump)
            if w >= 40 and h >= line:
                labels.append(b)
        for b in labels:
            name = b.path.rsplit("/", 1)[-1] or "/"
            if b.kind == FOLDER_BOX:
                if b.h < 2.2 * band:
                    continue
                p.setPen(ink)
                text = f"{name}/  {human_size(b.size)}"
                p.drawText(Rect(b.x + 3, b.y, b.w - 6, band), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                           fm.elidedText(text, Qt.TextElideMode.ElideRight, b.w - 6))
                continue
            p.setPen(inks.get(b.layer, QColor("#000000")))
            text = name if b.kind == FILE_BOX else f"{b.count:,} more"
            if b.h >= 2 * line + 4:
                text += f"\n{human_size(b.size)}"
            p.drawText(Rect(b.x + 3, b.y + 1, b.w - 6, b.h - 2), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                       "\n".join(fm.elidedText(t, Qt.TextElideMode.ElideRight, b.w - 6) for t in text.split("\n")))
        if not self._boxes and self.image is not None:
            p.setPen(ink)
            p.drawText(QRectF(0, 0, self.width(), self.height() - self._legend_height()),
                       Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       f"The map could not be drawn: {self._failed}" if self._failed
                       else "The final image holds no file bytes to map.")
        self._paint_legend(p, fm, ink)
        p.end()
        return pix

    def _paint_legend(self, p: QPainter, fm: QFontMetricsF, ink: QColor) -> None:
        """Layer numbers with their swatches, wrapped under the map."""
        if self.image is None:
            return
        line_h = math.ceil(fm.height()) + 4
        y = self.height() - self._legend_height() + 4
        p.setPen(ink)
        p.drawText(QRectF(4, y, fm.horizontalAdvance("Layers:") + 4, line_h), Qt.AlignmentFlag.AlignVCenter, "Layers:")
        for line in self._legend():
            for x, text, colour in line:
                if colour is not None:
                    p.fillRect(QRectF(x, y + (line_h - 12) / 2, 12, 12), colour)
                    x += 16
                p.drawText(QRectF(x, y, fm.horizontalAdvance(text) + 4, line_h), Qt.AlignmentFlag.AlignVCenter, text)
            y += line_h

    # -- the mouse -----------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            box = self.box_at(QPointF(event.pos()))
            text = self.tooltip_at(QPointF(event.pos()))
            if box is not None and text:
                # the tip stays while the mouse is over this box (a folder: its name band, as
                # what it holds has tips of its own); elsewhere the widget asks again
                area = box.rect if box.kind != FOLDER_BOX else QRectF(box.x, box.y, box.w, self._header())
                QToolTip.showText(event.globalPos(), text, self, area.toAlignedRect())
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        box = self.box_at(event.position())
        if box is not None and event.button() == Qt.MouseButton.LeftButton:
            self.path_clicked.emit(box.path)
