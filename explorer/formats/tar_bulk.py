"""Runs of plain tar headers read together, their fields decoded by numpy.

Most headers of a real layer are plain: no PAX or GNU record before them, octal numbers of
the usual width, an unsigned checksum. ``tar_index`` reads a layer held in memory header by
header; where it meets a long run of plain headers it hands the run here. Each header's size
says where the next one is: where entries are small, that is worked out for every block of
a window at once and the chain followed from block to block, and every field of the headers
found is then decoded with a few array operations (half a million headers in two thirds of
the time). What this module does not read the usual way (a field of another form, a prefix,
a name with bytes after its NUL, a checksum that does not add up) it decodes with
``tar_index``'s own functions, and a run ends at anything else: the careful reader goes on
from there, so both give the same members, and the same errors at the same bytes.
"""

from __future__ import annotations

import mmap
import sys
from itertools import repeat
from typing import Any

from explorer.formats import tar_index as ti
from explorer.formats.tar_index import BLOCK, TarMember

AFTER = 1 << 15  # entries of a layer read header by header first (a smaller layer is read so whole)
# The entries left in a layer, by the bytes left and the entries so far, for runs to pay:
# numpy's import (80 to 100 ms) only over a hundred thousand, its arrays' set-up over a few.
LEFT, LEFT_FIRST = 1 << 14, 100_000
MIN_RUN = 512  # plain headers worth the arrays' set-up; a shorter run is left to the careful reader
ROWS = 16384  # headers decoded at once (8 MB of them)
_PLAIN = frozenset(b"01234567\0")  # the types that stand alone (a record before an entry is another type)
_NO_DATA = frozenset(b"123456")  # as in Go's archive/tar: no data, whatever the size field says
# The usual width of each number: (first byte, digits) of mode, uid, gid, size, mtime and
# checksum, each followed by a NUL (the checksum by a NUL and a space).
_NUMBERS = ((100, 7), (108, 7), (116, 7), (124, 11), (136, 11), (148, 6))
_OWNER = (1 << 21) - 1  # a uid or gid of seven octal digits


def usable(buf: Any, limits: ti.Budgets) -> bool:
    """Whether a buffer's runs can be read here (bytes or an mmap, and names' budgets that a
    plain header's 100 bytes cannot pass: every such run is within them)."""
    return type(buf) in (bytes, mmap.mmap) and min(limits.name, limits.link, limits.depth) > 256


def worth(entries: int, pos: int, end: int) -> bool:
    """Whether the rest of a layer (``end`` bytes, ``entries`` of them in the first ``pos``)
    holds enough entries to pay for reading it in runs."""
    left = (end - pos) * entries // max(pos, 1)
    return left >= (LEFT if "numpy" in sys.modules else LEFT_FIRST)


def walk(buf: Any, base: int, pos: int, end: int, most: int) -> list[int]:
    """The offsets (from ``base``) of the plain headers from ``pos`` on, at most ``most``:
    the run stops before any other header, the end marker, or an entry whose data would run
    past ``end``. Where entries are small, a window of blocks at a time (``_chained``)."""
    found = _walked(buf, base, pos, end, min(most, PROBE))
    if len(found) == PROBE < most:
        pos = after(buf, base, found[-1], end)
        span = pos - found[0]  # (of the probe's entries)
        if span <= PROBE * DENSE:
            import numpy as np

            _chained(np, buf, base, pos, end, most, found, span // PROBE)
    return found


PROBE = 64  # headers walked one by one first: they tell whether the entries are small
# Entries this small on average: every page holds headers, all of it is read anyway (bigger,
# the blocks of a window are the files' own, which a header-by-header walk leaves unread)
DENSE = 8 * BLOCK
WINDOW = 1 << 15  # blocks looked at once, at most (16 MB)
FIRST_WINDOW = 1 << 11  # and the first time (1 MB): each window after may be four times the last


def _walked(buf: Any, base: int, pos: int, end: int, most: int) -> list[int]:
    """``walk``, one header at a time."""
    found: list[int] = []
    append = found.append
    plain, no_data = _PLAIN, _NO_DATA
    while pos + BLOCK <= end and len(found) < most:
        at = base + pos
        kind = buf[at + 156]
        if kind not in plain or buf[at] == 0:
            break
        try:
            size = 0 if kind in no_data else int(buf[at + 124 : at + 136].rstrip(b"\0"), 8)
        except ValueError:
            break
        data = pos + BLOCK
        if size < 0 or data + size > end:
            break  # (the careful reader says what is wrong)
        append(pos)
        pos = min(data + (size + BLOCK - 1) // BLOCK * BLOCK, end)
    return found


def _chained(np: Any, buf: Any, base: int, pos: int, end: int, most: int, found: list[int], size: int) -> None:
    """``walk`` from ``pos`` on, adding to ``found``: for every block of a window, where the
    next header would be if it were one (its size field, when it has the usual form: any
    other stops the run), then the chain of them followed from ``pos``, a step a header.
    ``size``: the entries' bytes on average so far (a window holds about what is wanted)."""
    whole = np.frombuffer(buf, dtype=np.uint8)
    try:
        skew = base % BLOCK
        rows = whole[skew : skew + (len(whole) - skew) // BLOCK * BLOCK].reshape(-1, BLOCK)
        zero = (base - skew) // BLOCK  # the row of the tar's first block
        last = zero + end // BLOCK  # the rows a header may be in (its 512 bytes before ``end``)
        plain, no_data = (np.zeros(256, dtype=bool) for _ in range(2))
        plain[list(_PLAIN)] = True
        no_data[list(_NO_DATA)] = True
        reach = FIRST_WINDOW  # (the probe may have met a few small files among big ones)
        while len(found) < most:
            first = zero + pos // BLOCK
            wanted = (most - len(found)) * size // BLOCK * 5 // 4 + 64
            window = rows[first : min(first + min(wanted, reach), last)]
            if not len(window):
                return
            fields = window[:, 124:157]  # (a copy of the bytes read here: the rest of each block is not)
            fields = fields - np.uint8(48)  # (a byte under "0" wraps above 7)
            kind = fields[:, 32] + np.uint8(48)
            sized = np.zeros(len(window), dtype=np.int64)
            for column in range(11):
                sized <<= 3
                sized += fields[:, column]
            sized[no_data[kind]] = 0
            here = np.arange(len(window), dtype=np.int64)
            usual = plain[kind] & (window[:, 0] != 0) & (fields[:, :11] < 8).all(axis=1) & (fields[:, 11] == 208)
            usual &= (here + (first - zero + 1)) * BLOCK + sized <= end  # (its data within the tar)
            steps = np.where(usual, here + 1 + (sized + BLOCK - 1) // BLOCK, -1).tolist()
            taken: list[int] = []
            append = taken.append
            r, left, count = 0, most - len(found), len(steps)
            while left and r < count:
                step = steps[r]
                if step < 0:
                    break
                append(r)
                left -= 1
                r = step
            found.extend(((np.asarray(taken, dtype=np.int64) + (first - zero)) * BLOCK).tolist())
            if not left or r < count or len(taken) * DENSE < count * BLOCK:
                return  # (the run stops at row r, has all it may take, or its entries are no longer small)
            pos = (first - zero + r) * BLOCK
            size = r * BLOCK // len(taken)
            reach = min(reach * 4, WINDOW)
    finally:
        del whole, rows  # (an mmap with arrays over it cannot be closed)


def after(buf: Any, base: int, pos: int, end: int) -> int:
    """Where the entry whose header is at ``pos`` (a plain one, from ``walk``) ends."""
    at = base + pos
    kind = buf[at + 156]
    size = 0 if kind in _NO_DATA else int(buf[at + 124 : at + 136].rstrip(b"\0"), 8)
    return min(pos + BLOCK + (size + BLOCK - 1) // BLOCK * BLOCK, end)


def decode(buf: Any, base: int, offsets: list[int]) -> tuple[list[TarMember], int]:
    """The members whose plain headers are at ``offsets`` (from ``base``), and the bytes their
    names and link targets add up to."""
    import numpy as np

    whole = np.frombuffer(buf, dtype=np.uint8)
    try:
        skew = base % BLOCK  # (the blocks of a tar held at ``base`` start there)
        rows = whole[skew : skew + (len(whole) - skew) // BLOCK * BLOCK].reshape(-1, BLOCK)
        at = np.asarray(offsets, dtype=np.int64)
        headers = rows[(at + (base - skew)) // BLOCK]  # (a copy: the buffer is let go below)
    finally:
        del whole, rows  # (an mmap with arrays over it cannot be closed)
    return _members(np, headers, at)


def _digits(np: Any) -> Any:
    """Which of a header's bytes 100 to 155 are digits of its numbers."""
    digit = np.zeros(56, dtype=bool)
    for first, width in _NUMBERS:
        digit[first - 100 : first - 100 + width] = True
    return digit


def _members(np: Any, headers: Any, at: Any) -> tuple[list[TarMember], int]:
    """The members of a block of headers at ``at``."""
    fields = headers[:, 100:156] - np.uint8(48)  # (a byte under "0" wraps above 7)
    usual = ~((fields > 7) & _digits(np)).any(axis=1)
    usual &= (headers[:, [107, 115, 123, 135, 147, 154]] == 0).all(axis=1) & (headers[:, 155] == 32)
    numbers = np.zeros((len(headers), len(_NUMBERS)), dtype=np.int64)
    for column, (first, width) in enumerate(_NUMBERS):  # (digit by digit: a column at a time is quickest)
        number = numbers[:, column]
        for byte in range(first - 100, first - 100 + width):
            number <<= 3
            number += fields[:, byte]
    summed = headers.sum(axis=1, dtype=np.uint32).astype(np.int64)
    summed -= headers[:, 148:156].sum(axis=1, dtype=np.uint32)
    usual &= summed + 8 * 32 == numbers[:, 5]
    # a ustar prefix: read one by one
    usual &= ~((headers[:, 345] != 0) & (headers[:, 257:263] == np.frombuffer(b"ustar\0", np.uint8)).all(axis=1))
    kinds = headers[:, 156].tobytes().decode("latin-1").replace("\0", "0")
    mode = numbers[:, 0] & 0o7777
    regular = np.isin(headers[:, 156], np.frombuffer(b"07\0", np.uint8))
    shown = np.where(regular, numbers[:, 3], 0).tolist()
    # One object for each mode and owner, and each time, as the careful reader keeps them
    kept, which = np.unique((mode << 42) | (numbers[:, 1] << 21) | numbers[:, 2], return_inverse=True)
    which = which.ravel().tolist()
    keys = kept.tolist()
    modes, uids, gids = ([(k >> shift) & mask for k in keys] for shift, mask in ((42, 0o7777), (21, _OWNER), (0, _OWNER)))
    modes, uids, gids = (list(map(column.__getitem__, which)) for column in (modes, uids, gids))
    kept, which = np.unique(numbers[:, 4], return_inverse=True)
    times = list(map(kept.tolist().__getitem__, which.ravel().tolist()))
    raw_names = headers[:, :100].copy().view("S100").ravel().tolist()  # (to the last byte not NUL)
    raw_links = headers[:, 157:257].copy().view("S100").ravel().tolist()
    offsets = at.tolist()
    odd = set(np.flatnonzero(~usual).tolist())
    if b"\0" in b"".join(raw_names) or b"\0" in b"".join(raw_links):  # a field that goes on after its NUL
        odd.update(i for i, (n, l) in enumerate(zip(raw_names, raw_links)) if b"\0" in n or b"\0" in l)
    for i in sorted(odd):  # the careful reader's own decoding, for the headers of another form
        hdr = headers[i].tobytes()
        name, mode_f, uid, gid, size, mtime, chk, link, magic, prefix = ti._HEADER_FIELDS.unpack_from(hdr)
        if not ti._checksum_quick(hdr, chk):
            raise ti.TarFormatError(f"corrupt tar header at byte {offsets[i]} (bad checksum)")
        modes[i], uids[i], gids[i], size_n, times[i] = ti._decode_numbers(mode_f, uid, gid, size, mtime, offsets[i],
                                                                          hdr, {})
        if size_n < 0:  # (any type: the careful reader refuses it, where it is)
            raise ti.TarFormatError(f"negative size in tar header at byte {offsets[i]}")
        shown[i] = size_n if kinds[i] in ti._REGULAR else 0
        raw_names[i] = ti._cstring(name)
        if magic == b"ustar\0" and prefix[0]:
            raw_names[i] = ti._cstring(prefix) + b"/" + raw_names[i]
        raw_links[i] = ti._cstring(link) if link[0] else b""
    named = sum(map(len, raw_names)) + sum(map(len, raw_links))
    nothing = repeat(None)
    rows = zip(_text(raw_names), kinds, modes, uids, gids, shown, times, _text(raw_links), (at + BLOCK).tolist(),
               nothing, nothing, offsets)
    return list(map(tuple.__new__, repeat(TarMember), rows)), named


def _text(raw: list[bytes]) -> list[str]:
    """Names as the careful reader decodes them (UTF-8, other bytes kept as escapes): at once,
    joined by the one byte no name holds."""
    joined = b"\0".join(raw)
    if joined.isascii():
        return joined.decode("ascii").split("\0")
    return [r.decode("utf-8", "surrogateescape") for r in raw]
