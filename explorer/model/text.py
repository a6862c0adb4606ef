"""Text from an image made safe to print: control characters shown as escapes, never sent raw."""

from __future__ import annotations

import re
from datetime import datetime, timezone

# C0 and C1 controls, DEL, and the bidirectional overrides that can reorder what a terminal
# shows: a name holding them could fake lines, colours or whole reports.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}


def printable(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\e``, ``\\x07``);
    lone surrogates from undecodable names as ``\\xNN`` of their byte."""
    text = _UNSAFE.sub(lambda m: _NAMED.get(m.group(0)) or f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 0x100
                       else f"\\u{ord(m.group(0)):04x}", text)
    if any("\ud800" <= c <= "\udfff" for c in text):  # no terminal can print these
        text = "".join(c if not "\ud800" <= c <= "\udfff" else f"\\x{ord(c) - 0xdc00:02x}" if c >= "\udc80"
                       else f"\\u{ord(c):04x}" for c in text)
    return text


def printable_lines(lines: list[str]) -> str:
    """Lines joined for a terminal, each made printable (a newline inside one is data)."""
    return "\n".join(printable(line) for line in lines) + "\n"


def human_size(n: float) -> str:
    """Bytes as people read them (1.9 MB)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def counted(n: int, word: str, plural: str = "") -> str:
    """``1 file``, ``2,048 files``: a count and its word (``plural`` where it is not the word and an s)."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def short_count(n: int) -> str:
    """A count for a narrow column, rounded half up: 9,999 as it is, 14,500 as 15k, 1,250,000 as 1.3M."""
    if n < 10_000:
        return str(n)
    if n < 999_500:
        return f"{(n + 500) // 1000}k"
    tenths = (n + 50_000) // 100_000
    return f"{tenths // 10}.{tenths % 10}M"


def short_command(text: str, width: int = 80) -> str:
    """A build step on one line: ``/bin/sh -c #(nop)`` noise removed, long text elided."""
    t = " ".join(text.split())
    for noise in ("/bin/sh -c #(nop) ", "/bin/sh -c "):
        if t.startswith(noise):
            t = ("RUN " if noise == "/bin/sh -c " else "") + t[len(noise):]
            break
    return t if len(t) <= width else t[: width - 1] + "…"


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time from a config (nanoseconds tolerated), or None."""
    if not text:
        return None
    t = text.strip().replace("Z", "+00:00")
    if "." in t:  # Python reads at most microseconds
        head, _, rest = t.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        tz = rest[len(digits):]
        t = f"{head}.{digits[:6]}{tz}"
    try:
        value = datetime.fromisoformat(t)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
