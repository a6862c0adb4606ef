"""The heap's free pages given back to the system once the window's work is done."""

from __future__ import annotations

import ctypes
import sys
import weakref
from typing import Callable

import shiboken6
from PySide6.QtCore import QCoreApplication, QThread, QTimer

IDLE_MS = 1000  # how long after the last walk ends: a user at work starts new ones before


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where there is no such call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # (another C library: it keeps its own ways)
        return None


# glibc keeps what Python frees in its heap for later use, and the pages stay the process's:
# after visiting every page and view of the million-entry image the window held 352 MB, of
# which 271 MB in use. Its trimming gives the free pages back (0.4 to 7 ms at that size).
_TRIM = _malloc_trim()
_timers: list[QTimer] = []
_working: "weakref.WeakSet[object]" = weakref.WeakSet()  # what has walks under way


def at_work(owner: object) -> None:
    """``owner`` has work under way: no trimming until it is done."""
    _working.add(owner)
    timer = _timer()
    if timer is not None:
        timer.stop()


def done(owner: object | None = None) -> None:
    """``owner``'s work is done (None: something was let go of): once nothing has any for
    ``IDLE_MS``, give the heap's free pages back (each call starts the wait again)."""
    if owner is not None:
        _working.discard(owner)
    timer = _timer()
    if timer is not None and not _working:
        timer.start(IDLE_MS)


def _timer() -> QTimer | None:
    """The one timer, made in the GUI thread (None off it, without an application, or with
    no way to trim)."""
    app = QCoreApplication.instance()
    if _TRIM is None or app is None or QThread.currentThread() != app.thread():
        return None
    if not _timers or not shiboken6.isValid(_timers[0]):  # (its application may have gone)
        timer = QTimer(app)
        timer.setSingleShot(True)
        timer.timeout.connect(_trim)
        _timers[:] = [timer]
    return _timers[0]


def _trim() -> None:
    if not _working and _TRIM is not None:
        _TRIM(0)
