"""Qt application set-up: ``create_main_window()`` and ``main(argv)``."""

from __future__ import annotations

import sys
from typing import Sequence

from explorer.ui.main_window import MainWindow


def create_main_window() -> MainWindow:
    """A new main window; the caller owns the QApplication."""
    return MainWindow()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the window; ``argv`` holds the sources to open (or ``--demo``)."""
    from PySide6.QtWidgets import QApplication

    from explorer.ui import resources

    args = list(sys.argv[1:] if argv is None else argv)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "layer-explorer"])
    app.setApplicationName("Layer Explorer")
    app.setOrganizationName("layer-explorer")
    app.setDesktopFileName("layer-explorer")
    app.setWindowIcon(resources.app_icon())
    window = create_main_window()
    window.show()
    if "--demo" in args:
        window.open_sample()
    window.open_paths([a for a in args if a != "--demo"])
    code = app.exec()
    from explorer.ui.workers import wait_for_background

    # Let background work end before the interpreter does (an index being saved among it:
    # cut off, it would leave only a partial file); what has not started is dropped.
    wait_for_background(10_000)
    return code
