"""Text for people: sizes, modes, times. Shared by the panels."""

from __future__ import annotations

import stat
from datetime import datetime, timezone

from explorer.model.values import BLOCK, CHAR, DIR, FIFO, HARDLINK, SYMLINK, Entry
from explorer.model.text import human_size, parse_time, short_command, short_count

__all__ = ["human_size", "not_yet", "mode_string", "parse_time", "relative_time", "exact_time", "short_command", "short_count"]

_TYPE_CHAR = {DIR: "d", SYMLINK: "l", HARDLINK: "h", CHAR: "c", BLOCK: "b", FIFO: "p"}


def not_yet(unaccounted: str) -> str:
    """What stands for what an image's accounting tells (its packages) until it comes, or
    when it never will (``unaccounted``: why)."""
    return "not worked out" if unaccounted else "…"


def mode_string(entry: Entry) -> str:
    """``drwxr-xr-x``-style permissions (``h`` marks a hardlink, as GNU tar lists it)."""
    text = stat.filemode(entry.mode)[1:]
    return _TYPE_CHAR.get(entry.type, "-") + text


def relative_time(text: str, now: datetime | None = None) -> str:
    """``3 days ago`` for a config time."""
    when = parse_time(text)
    if when is None:
        return text or "unknown"
    seconds = ((now or datetime.now(timezone.utc)) - when).total_seconds()
    if seconds < 0:
        return "in the future"
    for unit, span in (("year", 31_536_000), ("month", 2_592_000), ("day", 86_400), ("hour", 3600), ("minute", 60)):
        if seconds >= span:
            n = int(seconds // span)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "just now"


def exact_time(text: str) -> str:
    """The full time, in UTC, for tooltips."""
    when = parse_time(text)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else (text or "unknown")


def mtime_string(t: float) -> str:
    """A file's modification time."""
    try:
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(t)
