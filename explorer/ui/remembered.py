"""What the window remembers between runs (in ``QSettings``): recent sources, the last folder,
its size and place, and how its panes were split."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QWidget

MAX_RECENT = 10


def last_dir(settings: QSettings) -> str:
    """The folder a file dialog opens in: where the last image came from."""
    return str(settings.value("lastDir", os.path.expanduser("~")))


def set_last_dir(settings: QSettings, path: str) -> None:
    """Remember the folder of a source being opened, for the next file dialog."""
    settings.setValue("lastDir", str(Path(path).parent))


def recent_files(settings: QSettings) -> list[str]:
    """Recently opened sources, newest first."""
    value = settings.value("recentFiles", [])
    if isinstance(value, str):  # (one value reads back as a string)
        value = [value]
    return [str(v) for v in (value or [])]


def add_recent(settings: QSettings, path: str) -> None:
    """Put a source first among the recent ones (a file by its absolute path)."""
    path = path if "://" in path else os.path.abspath(path)
    recent = [path] + [p for p in recent_files(settings) if p != path]
    settings.setValue("recentFiles", recent[:MAX_RECENT])


def restore_geometry(settings: QSettings, window: QWidget) -> None:
    """The window's last size and place, or a default that suits the screen."""
    geometry = settings.value("geometry")
    if geometry is not None and window.restoreGeometry(geometry) and not _cramped(window):
        return
    screen = QApplication.primaryScreen()
    room = screen.availableGeometry().size() if screen is not None else None
    # The default: roomy, and the whole of a small screen (1366x768 is still common).
    if room is None:
        window.resize(1400, 860)
    elif room.width() <= 1440 or room.height() <= 900:
        window.resize(room)
    else:
        window.resize(min(1600, int(room.width() * 0.85)), min(1000, int(room.height() * 0.85)))


def save_geometry(settings: QSettings, window: QWidget) -> None:
    """Remember the window's size and place (``restore_geometry``)."""
    settings.setValue("geometry", window.saveGeometry())


def _cramped(window: QWidget) -> bool:
    """Whether a restored size is far smaller than the screen allows: Qt shrinks one saved
    on a screen of another size (or an offscreen run) to the widgets' bare minimum."""
    screen = window.screen() or QApplication.primaryScreen()
    if screen is None:
        return False
    room = screen.availableGeometry()
    return window.width() < min(640, room.width() * 0.5) or window.height() < min(420, room.height() * 0.5)


def save_panes(settings: QSettings, view) -> None:
    """How an image view's panes are split (``view``: an ImageView)."""
    settings.setValue("panes/files", view.splitter.saveState())
    settings.setValue("panes/left", view.left_splitter.saveState())


def restore_panes(settings: QSettings, view, window: QWidget) -> None:
    """Split a new image view's panes as the last one was, or in proportions of the window."""
    width = max(window.width(), 900)
    view.splitter.setSizes([int(width * 0.39), int(width * 0.38), int(width * 0.23)])
    strip = view.layer_strip.sizeHint().height()
    rest = max(window.height() - strip - 160, 300)
    view.left_splitter.setSizes([int(rest * 0.45), strip, int(rest * 0.55)])
    for key, splitter in (("panes/files", view.splitter), ("panes/left", view.left_splitter)):
        state = settings.value(key)
        if state is not None:
            splitter.restoreState(state)
