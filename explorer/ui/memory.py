"""The heap's free pages given back to the system once the window's work is done."""

from __future__ import annotations

import ctypes
import sys
from typing import Callable

from PySide6.QtCore import QCoreApplication, QTimer

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
# which 271 MB in use. Its trimming gives the free pages back (7 ms at that size).
_TRIM = _malloc_trim()
_timers: list[QTimer] = []


def give_back_soon() -> None:
    """Give the heap's free pages back once no walk has ended for ``IDLE_MS`` (each call
    starts the wait again)."""
    if _TRIM is None:
        return
    if not _timers:
        app = QCoreApplication.instance()
        if app is None:
            return
        timer = QTimer(app)
        timer.setSingleShot(True)
        timer.timeout.connect(lambda: _TRIM(0))
        _timers.append(timer)
    _timers[0].start(IDLE_MS)
