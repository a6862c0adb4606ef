"""The one place that names icon and stylesheet files, and draws the change markers."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources as importlib_resources
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QApplication

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


def change_colour(change: str) -> QColor | None:
    """Foreground colour for a change kind (None: the palette's own)."""
    code = _COLOURS[is_dark()].get(change)
    return QColor(code) if code else None


@lru_cache(maxsize=16)
def _change_icon(change: str, dark: bool) -> QIcon:
    """A small marker: filled circle with +, ~ or − (distinct shapes, not just colours)."""
    size = 16
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    colour = QColor(_COLOURS[dark].get(change, "#888888"))
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(colour)
    if change == MODIFIED:
        p.drawRoundedRect(QRectF(1.5, 1.5, 13, 13), 3, 3)  # a square for modified
    elif change == REMOVED:
        path = QPainterPath()  # a diamond for removed
        path.moveTo(8, 0.5)
        path.lineTo(15.5, 8)
        path.lineTo(8, 15.5)
        path.lineTo(0.5, 8)
        path.closeSubpath()
        p.drawPath(path)
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
    p.end()
    return QIcon(pix)


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
