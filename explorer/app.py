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
    _close_on_signals(app)
    if "--demo" in args:
        window.open_sample()
    window.open_paths([a for a in args if a != "--demo"])
    code = app.exec()
    from explorer.ui.workers import wait_for_background

    # Let background work end before the interpreter does (an index being saved among it:
    # cut off, it would leave only a partial file); what has not started is dropped.
    wait_for_background(10_000)
    return code


def _close_on_signals(app) -> None:
    """End on SIGTERM (a logout, ``kill``) or Ctrl+C as on File > Quit: the windows close, so
    an index being saved is completed and the copies kept of engine streams (an image's size
    each) are deleted, where the default would end the process on the spot."""
    import signal

    from PySide6.QtCore import QTimer

    def close(_signum, _frame) -> None:
        app.closeAllWindows()
        app.quit()

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, close)
    # Python runs a signal handler only when it next gets control; Qt's loop is C++, so wake it
    # a few times a second (a no-op call, nothing measurable).
    waker = QTimer(app, interval=250)
    waker.timeout.connect(lambda: None)
    waker.start()
