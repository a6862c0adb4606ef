"""The one place that names icon and stylesheet files, and draws the change markers and entry icons."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPainterPath, QPalette, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QApplication

from explorer.model.values import DIR, HARDLINK, SYMLINK
from explorer.tree.diff import ADDED, MODIFIED, REMOVED, UNCHANGED

APP_ICON = "layer-explorer.svg"
SAMPLE_IMAGE = "sample-image.tar"


def resource_path(name: str) -> Path:
    """A file of ``resources/``: installed inside the package, or beside it in a checkout."""
    try:
        found = importlib_resources.files("explorer.resources") / name
        if found.is_file():
            return Path(str(found))
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "resources" / name


def sample_image() -> Path:
    """The bundled sample image archive."""
    return resource_path(SAMPLE_IMAGE)


@lru_cache(maxsize=1)
def app_icon() -> QIcon:
    """The application icon."""
    return QIcon(str(resource_path(APP_ICON)))


def is_dark() -> bool:
    """Whether the current palette is a dark theme."""
    return QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


# Colours chosen to stay apart for the common colour-vision deficiencies (blue/orange/
# magenta rather than green/red), with a lighter set for dark themes; shapes carry the
# meaning as well, so colour is never the only cue.
_COLOURS = {
    False: {ADDED: "#1565c0", MODIFIED: "#b35c00", REMOVED: "#ad1457"},
    True: {ADDED: "#64b5f6", MODIFIED: "#ffb74d", REMOVED: "#f48fb1"},
}
LABELS = {ADDED: "added", MODIFIED: "modified", REMOVED: "removed", UNCHANGED: "unchanged"}


def _points(*xy: tuple[float, float]) -> QPolygonF:
    """A closed shape of an icon, corner by corner."""
    return QPolygonF([QPointF(x, y) for x, y in xy])


def change_colour(change: str) -> QColor | None:
    """Foreground colour for a change kind (None: the palette's own)."""
    code = _COLOURS[is_dark()].get(change)
    return QColor(code) if code else None


@lru_cache(maxsize=16)
def _change_icon(change: str, dark: bool) -> QIcon:
    """A small marker: filled circle with +, ~ or − (distinct shapes, not just colours)."""
    return _drawn_icon(lambda p, _size: _paint_marker(p, change, dark))


def _paint_marker(p: QPainter, change: str, dark: bool, halo: QColor | None = None) -> None:
    """The change marker in a 16x16 square of the painter; ``halo`` rings it, to stand out on an icon."""
    colour = QColor(_COLOURS[dark].get(change, "#888888"))
    p.setPen(QPen(halo, 2.5) if halo is not None else Qt.PenStyle.NoPen)
    p.setBrush(colour)
    if change == MODIFIED:
        p.drawRoundedRect(QRectF(1.5, 1.5, 13, 13), 3, 3)  # a square for modified
    elif change == REMOVED:
        p.drawPolygon(_points((8, 0.5), (15.5, 8), (8, 15.5), (0.5, 8)))  # a diamond for removed
    else:
        p.drawEllipse(QRectF(1.5, 1.5, 13, 13))  # a circle for added
    p.setPen(QPen(QColor("#000000" if dark else "#ffffff"), 2))
    if change in (ADDED, REMOVED):
        p.drawLine(QPointF(4.5, 8), QPointF(11.5, 8))
    if change == ADDED:
        p.drawLine(QPointF(8, 4.5), QPointF(8, 11.5))
    if change == MODIFIED:
        font = QFont()
        font.setPixelSize(12)
        font.setBold(True)
        p.setFont(font)
        p.drawText(QRectF(0, -1, 16, 16), Qt.AlignmentFlag.AlignCenter, "~")


def change_icon(change: str) -> QIcon | None:
    """Marker icon for a change kind (None for unchanged)."""
    if change not in (ADDED, MODIFIED, REMOVED):
        return None
    return _change_icon(change, is_dark())


@lru_cache(maxsize=1)
def blank_icon() -> QIcon:
    """An empty 16x16 icon, to keep rows with and without a marker aligned."""
    pix = QPixmap(16, 16)
    pix.fill(Qt.GlobalColor.transparent)
    return QIcon(pix)


# -- entry kinds -------------------------------------------------------------------------------

# What an entry's icon shows: its type (DIR, FILE, SYMLINK, HARDLINK), or what the type alone
# does not say: a file anyone may run, a link to nothing, a device, fifo or socket.
EXECUTABLE, DANGLING, SPECIAL = "executable", "dangling", "special"
# Ink and paper per theme (dark: light lines on a dark page), and the few colours that mark
# a kind; the shapes differ too, so no kind is told by colour alone.
_INK = {False: "#4b525b", True: "#c8cdd4"}
_PAPER = {False: "#ffffff", True: "#2f343a"}
_FOLDER = {False: ("#f2bd4f", "#9c6b0c"), True: ("#c8963b", "#f0c86c")}  # fill, outline
_LINK = {False: "#00796b", True: "#4db6ac"}
_BROKEN = {False: "#d32f2f", True: "#ff6b6b"}
_RUN = {False: "#2e7d32", True: "#81c784"}
_CHIP = {False: "#d5dae0", True: "#59616b"}
_SIZES = (16, 32)  # 32 for high-density screens


def _drawn_icon(paint: Callable[[QPainter, int], None]) -> QIcon:
    """An icon of ``paint(painter, size)`` (which draws in a 16x16 square) at each of ``_SIZES``."""
    icon = QIcon()
    for size in _SIZES:
        pix = QPixmap(size, size)
        pix.fill(Qt.GlobalColor.transparent)
        p = QPainter(pix)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.scale(size / 16, size / 16)
        paint(p, size)
        p.end()
        icon.addPixmap(pix)
    return icon


def _page(p: QPainter, dark: bool, x: float = 3.5, y: float = 1.5, dashed: bool = False) -> None:
    """A sheet with a folded corner, 9 wide and 13 high, its top-left corner at (x, y)."""
    pen = QPen(QColor(_INK[dark]), 1)
    if dashed:
        pen.setDashPattern([2, 1.5])
    p.setPen(pen)
    p.setBrush(QColor(_PAPER[dark]))
    p.drawPolygon(_points((x, y), (x + 6, y), (x + 9, y + 3), (x + 9, y + 13), (x, y + 13)))  # a sheet, corner folded
    p.drawPolyline([QPointF(x + 6, y), QPointF(x + 6, y + 3), QPointF(x + 9, y + 3)])


def _text_lines(p: QPainter, dark: bool) -> None:
    """The lines of text on a plain file's sheet."""
    ink = QColor(_INK[dark])
    ink.setAlphaF(0.55)
    p.setPen(QPen(ink, 1))
    for y in (7.5, 9.5, 11.5):
        p.drawLine(QPointF(5.5, y), QPointF(10.5, y))


def _folder(p: QPainter, dark: bool) -> None:
    """A folder with its tab at the top left."""
    fill, outline = _FOLDER[dark]
    p.setPen(QPen(QColor(outline), 1))
    p.setBrush(QColor(fill))
    p.drawPolygon(_points((1.5, 2.5), (6, 2.5), (7.5, 4.5), (14.5, 4.5), (14.5, 13.5), (1.5, 13.5)))  # the tab
    p.setBrush(QColor(fill).lighter(112))
    p.drawRect(QRectF(1.5, 6.5, 13, 7))


def _run_mark(p: QPainter, dark: bool) -> None:
    """A "play" triangle on the sheet: anyone may run this file."""
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(_RUN[dark]))
    p.drawPolygon([QPointF(5.5, 6), QPointF(5.5, 13), QPointF(11, 9.5)])


def _link_badge(p: QPainter, dark: bool) -> None:
    """A bent arrow in a small box at the bottom left: this entry leads elsewhere."""
    colour = QColor(_LINK[dark])
    p.setPen(QPen(colour, 1))
    p.setBrush(QColor(_PAPER[dark]))
    p.drawRoundedRect(QRectF(0.5, 8.5, 7, 7), 1.5, 1.5)
    arrow = QPainterPath()
    arrow.moveTo(2.5, 14)
    arrow.lineTo(2.5, 12.5)
    arrow.quadTo(2.5, 11, 4, 11)
    arrow.lineTo(5, 11)
    p.setPen(QPen(colour, 1.3))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawPath(arrow)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(colour)
    p.drawPolygon([QPointF(4.5, 9.2), QPointF(6.8, 11), QPointF(4.5, 12.8)])


def _broken_mark(p: QPainter, dark: bool) -> None:
    """A red cross at the top right, ringed in the page colour: the link leads to nothing."""
    for colour, width in ((_PAPER[dark], 3.6), (_BROKEN[dark], 1.8)):
        pen = QPen(QColor(colour), width)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        p.drawLine(QPointF(10, 1), QPointF(15, 6))
        p.drawLine(QPointF(15, 1), QPointF(10, 6))


def _chip(p: QPainter, dark: bool) -> None:
    """A chip with pins: a device, fifo or socket, which has no content of its own."""
    p.setPen(QPen(QColor(_INK[dark]), 1))
    for y in (5.5, 8, 10.5):
        p.drawLine(QPointF(1.5, y), QPointF(3.5, y))
        p.drawLine(QPointF(12.5, y), QPointF(14.5, y))
    p.setBrush(QColor(_CHIP[dark]))
    p.drawRoundedRect(QRectF(3.5, 3.5, 9, 9), 1.5, 1.5)
    p.setBrush(QColor(_INK[dark]))
    p.drawEllipse(QPointF(5.8, 5.8), 0.8, 0.8)


def _paint_kind(p: QPainter, kind: str, dark: bool) -> None:
    """The icon of one entry kind in a 16x16 square."""
    if kind == DIR:
        _folder(p, dark)
    elif kind == SPECIAL:
        _chip(p, dark)
    elif kind == HARDLINK:  # two sheets: one file under two names
        _page(p, dark, 5.5, 0.5)
        _page(p, dark, 2.5, 2.5)
        p.setPen(QPen(QColor(_LINK[dark]), 1.3))
        p.drawLine(QPointF(4.5, 9.5), QPointF(9.5, 9.5))
        p.drawLine(QPointF(4.5, 12), QPointF(9.5, 12))
    else:
        _page(p, dark, dashed=kind == DANGLING)
        if kind == EXECUTABLE:
            _run_mark(p, dark)
        else:
            _text_lines(p, dark)
        if kind in (SYMLINK, DANGLING):
            _link_badge(p, dark)
        if kind == DANGLING:
            _broken_mark(p, dark)


def _paint_badge(p: QPainter, change: str, dark: bool, size: int) -> None:
    """The change marker at half size in the bottom-right quarter, ringed in the page colour."""
    halo = QColor(_PAPER[dark])
    if size >= 32:  # room for the marker as it is drawn full size
        p.translate(8, 8)
        p.scale(0.5, 0.5)
        _paint_marker(p, change, dark, halo=halo)
        return
    # eight pixels: the shape alone (a glyph inside it blurs into a ring at this size)
    p.setPen(QPen(halo, 1.2))
    p.setBrush(QColor(_COLOURS[dark][change]))
    if change == MODIFIED:
        p.drawRoundedRect(QRectF(8.5, 8.5, 7, 7), 1.5, 1.5)
    elif change == REMOVED:
        p.drawPolygon([QPointF(12, 7.8), QPointF(16.2, 12), QPointF(12, 16.2), QPointF(7.8, 12)])
    else:
        p.drawEllipse(QRectF(8.2, 8.2, 7.6, 7.6))


@lru_cache(maxsize=64)
def _entry_icon(kind: str, change: str, dark: bool) -> QIcon:
    """``entry_icon`` for one theme."""
    def paint(p: QPainter, size: int) -> None:
        _paint_kind(p, kind, dark)
        if change in (ADDED, MODIFIED, REMOVED):
            _paint_badge(p, change, dark, size)
    return _drawn_icon(paint)


def entry_icon(kind: str, change: str = UNCHANGED) -> QIcon:
    """An entry kind's icon (DIR, FILE, EXECUTABLE, SYMLINK, DANGLING, HARDLINK, SPECIAL), change marked."""
    return _entry_icon(kind, change, is_dark())
