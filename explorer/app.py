"""Qt application set-up: ``create_main_window()`` and ``main(argv)``."""

from __future__ import annotations

import linecache
import sys
from typing import Sequence

from explorer.ui.main_window import MainWindow


def create_main_window() -> MainWindow:
    """A new main window; the caller owns the QApplication."""
    window = MainWindow()
    # PySide6 reads the source of each module imported after it (to tell whether it uses its
    # ``__feature__`` switches), and the lines stay in ``linecache``: 140,000 lines in 257
    # lists, which each full pass of the cycle collector walked (a third of its work).
    linecache.clearcache()
    return window


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
    from explorer.image.load_worker import cool_down
    from explorer.ui.workers import wait_for_background

    # Let background work end before the interpreter does (an index being saved among it:
    # cut off, it would leave only a partial file); what has not started is dropped.
    wait_for_background(10_000)
    cool_down()
    return code


def _close_on_signals(app) -> None:
    """End on SIGTERM (a logout, ``kill``) or Ctrl+C as on File > Quit: the windows close, so
    an index being saved is completed and the copies kept of engine streams (an image's size
    each) are deleted, where the default would end the process on the spot. A second signal
    ends it at once (a close that hangs)."""
    import signal
    import socket

    from PySide6.QtCore import QSocketNotifier, QTimer

    def finish() -> None:
        app.closeAllWindows()
        app.quit()

    def close(_signum, _frame) -> None:
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, signal.SIG_DFL)
        # Not here: the handler runs between any two lines of this thread's Python (a walk
        # saving the index among them); the event loop runs the close at its next turn.
        QTimer.singleShot(0, finish)

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, close)
    # Python runs a handler only when it next runs bytecode, and Qt's loop is C++: the signal's
    # number, written to this socket, wakes the loop, whose slot then lets Python run it.
    try:
        wake, woken = socket.socketpair()
        for end in (wake, woken):
            end.setblocking(False)
        signal.set_wakeup_fd(woken.fileno(), warn_on_full_buffer=False)
    except (OSError, ValueError):
        return
    notifier = QSocketNotifier(wake.fileno(), QSocketNotifier.Type.Read, app)
    notifier.activated.connect(lambda *_a: _drain(wake))
    app._signal_wake = (wake, woken, notifier)  # kept as long as the application


def _drain(sock) -> None:
    try:
        while sock.recv(64):
            pass
    except OSError:  # (nothing more to read)
        pass
