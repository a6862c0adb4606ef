"""A fast tar header reader: lists members and their data offsets without reading file data.

Python's ``tarfile`` keeps a TarInfo object per member and is slow per header; image layers
can hold hundreds of thousands of entries, so this reader parses only what the explorer
needs and seeks (or, on a stream, skips) over file data.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import struct
import zlib
from typing import BinaryIO, Callable, Iterator, NamedTuple
from urllib.parse import unquote_to_bytes

from explorer.model.secrets import SNIFF_MAX, Sniffer

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
CHUNK = 1 << 20
# A PAX or GNU long-name record larger than this is not a name but an attack or corruption.
MAX_META = 16 << 20
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SPARSE = -2  # the offset given to sparse files, whose stored bytes are a map plus runs
KEEP_BUDGET = 256 << 20  # bytes of kept files per tar (see ``_scan``): beyond, they are read again


def _budget(name: str, default: int) -> int:
    """A limit on names, from the environment (``LAYER_EXPLORER_<NAME>``) or its default."""
    try:
        return max(1, int(os.environ.get(f"LAYER_EXPLORER_{name}", default)))
    except ValueError:
        return default


class Budgets(NamedTuple):
    """Limits on what one layer's tar may hold, from the environment as it is when a scan
    starts (``budgets``)."""

    # Entry names and link targets past these are not paths but attacks: a 60,000-level name
    # took gigabytes to place, a link target of a million "./" minutes to follow. Real images
    # stay far below (Linux itself refuses paths over 4,096 bytes).
    name: int
    depth: int
    link: int  # symlink(2) itself refuses longer targets
    # Entries one layer may have: a few MB of gzip can hold millions of empty headers, each
    # about a kilobyte of index once loaded. The largest real layers seen hold a few hundred
    # thousand.
    entries: int
    # Bytes of all the names (and link targets) one layer holds: 30,000 distinct 60 KB names
    # fit in 2 MB of zstd and took 7 GB to list. A million real paths come to about 100 MB.
    paths: int


def budgets() -> Budgets:
    """The limits, as the environment sets them now (``LAYER_EXPLORER_MAX_...``)."""
    return Budgets(_budget("MAX_NAME_BYTES", 64 << 10), _budget("MAX_NAME_DEPTH", 4096), _budget("MAX_LINK_BYTES", 4096),
                   _budget("MAX_ENTRIES", 1_000_000), _budget("MAX_PATHS_MB", 256) << 20)


# name, mode, uid, gid, size, mtime, checksum, (type), linkname, magic, (...), prefix
_HEADER_FIELDS = struct.Struct("100s8s8s8s12s12s8sx100s6s82x155s")
_REGULAR = frozenset("07\0")


class TarFormatError(Exception):
    """The bytes are not a valid tar stream (or are cut short); the message says where."""


class TarMember(NamedTuple):
    """One tar entry as stored: name not normalised, sizes and offsets in the tar stream."""

    name: str
    type: str  # the tar type flag: '0' file, '1' hardlink, '2' symlink, '5' dir, ...
    mode: int
    uid: int
    gid: int
    size: int  # bytes of data stored in the tar
    mtime: float
    linkname: str
    offset: int  # where the data starts in the (uncompressed) tar stream
    xattrs: dict[str, bytes] | None
    digest: str | None  # sha256 of the data, when the scan hashed it
    header_offset: int


def _number(field: bytes) -> int:
    """Decode a tar numeric field: octal text, or GNU base-256 when the high bit is set."""
    if field and field[0] & 0x80:
        value = int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        if field[0] & 0x40:  # negative in two's complement
            value -= 1 << (8 * len(field) - 1)
        return value
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _cstring(field: bytes) -> bytes:
    """The bytes of a NUL-terminated header field."""
    end = field.find(b"\0")
    return field if end < 0 else field[:end]


def header_checksum_ok(header: bytes) -> bool:
    """Whether a header's stored checksum matches (signed or unsigned sum, as tar allows)."""
    try:
        stored = _number(header[148:156])
    except ValueError:
        return False
    body = header[:148] + b"        " + header[156:]
    if sum(body) == stored:
        return True
    return sum(b - 256 if b > 127 else b for b in body) == stored


def _checksum_quick(header: bytes, field: bytes) -> bool:
    """The header checksum, checked with C-speed adler32 (its low half is a byte sum mod 65521)."""
    try:
        expect = _adler_expected(field)
    except ValueError:
        return header_checksum_ok(header)
    if (zlib.adler32(header) & 0xFFFF) % 65521 == expect and header.isascii():
        return True
    return header_checksum_ok(header)  # old tars sum signed bytes; and sums near the modulus


def _adler_expected(field: bytes) -> int:
    """The low half of adler32 that a header must have for its checksum ``field`` to hold
    (the sum of every byte, the field's own as eight spaces). -1, which none has, for a stored
    sum past the modulus: those, and headers with a byte of 128 or more (whose sum may pass
    it: every byte under 128 keeps it at most 65,024), are summed exactly instead, as a sum
    65,521 off the true one would pass here. ``ValueError`` for a field that is no number."""
    stored = int(field.rstrip(b"\0 "), 8)
    return (stored + (zlib.adler32(field) & 0xFFFF) - 256) % 65521 if stored < 65521 else -1


def looks_like_tar(head: bytes) -> bool:
    """Whether the first bytes of a stream look like a tar header (magic or a valid checksum)."""
    if len(head) < BLOCK:
        return False
    block = head[:BLOCK]
    if block == ZERO_BLOCK:
        return True  # an empty archive: only the end marker
    if block[257:262] == b"ustar":
        return header_checksum_ok(block)
    return header_checksum_ok(block) and block[0] != 0


def _parse_pax(data: bytes, where: int) -> dict[str, bytes]:
    """Parse PAX extended-header records ("<len> <key>=<value>\\n")."""
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # padding after the last record
            break
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarFormatError(f"malformed PAX record at byte {where + pos}") from None
        if space < 0 or length <= 0 or pos + length > len(data):
            raise TarFormatError(f"malformed PAX record at byte {where + pos}")
        record = data[space + 1 : pos + length]
        if not record.endswith(b"\n") or b"=" not in record:
            raise TarFormatError(f"malformed PAX record at byte {where + pos}")
        key, _, value = record[:-1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value
        pos += length
    return records


def _xattrs_from_pax(pax: dict[str, bytes]) -> dict[str, bytes] | None:
    """Extended attributes carried in PAX records (SCHILY and LIBARCHIVE spellings)."""
    found: dict[str, bytes] = {}
    for key, value in pax.items():
        if key.startswith("SCHILY.xattr."):
            found[key[13:]] = value
        elif key.startswith("LIBARCHIVE.xattr."):
            name = unquote_to_bytes(key[17:]).decode("utf-8", "surrogateescape")
            try:
                found[name] = base64.b64decode(value + b"=" * (-len(value) % 4))
            except ValueError:
                found[name] = value
    return found or None


class _Source:
    """Where the scanner gets blocks: a memory buffer (mmap) or a stream."""

    pos: int

    def block(self) -> bytes:
        raise NotImplementedError

    def data(self, size: int) -> bytes:
        raise NotImplementedError

    def skip(self, size: int, hasher: "hashlib._Hash | None") -> None:
        raise NotImplementedError


class _BufferSource(_Source):
    """Blocks sliced from a buffer that holds the whole tar (bytes or an mmap range)."""

    def __init__(self, buf: bytes | memoryview, start: int, end: int) -> None:
        self.buf = buf
        self.base = start
        self.pos = 0
        self.end = end - start

    def block(self) -> bytes:
        at = self.base + self.pos
        if self.pos + BLOCK > self.end:
            if self.pos >= self.end:
                return b""
            raise TarFormatError(f"truncated tar header at byte {self.pos}")
        self.pos += BLOCK
        return self.buf[at : at + BLOCK]

    def data(self, size: int) -> bytes:
        if self.pos + size > self.end:
            raise TarFormatError(f"tar entry data cut short at byte {self.end}")
        at = self.base + self.pos
        self.pos += (size + BLOCK - 1) // BLOCK * BLOCK
        return bytes(self.buf[at : at + size])

    def skip(self, size: int, hasher: "hashlib._Hash | None") -> None:
        if self.pos + size > self.end:
            raise TarFormatError(f"tar entry data cut short at byte {self.end}")
        if hasher is not None:
            at = self.base + self.pos
            hasher.update(memoryview(self.buf)[at : at + size])
        self.pos += (size + BLOCK - 1) // BLOCK * BLOCK
        # Padding may be missing at the very end of a stream; that is harmless.
        if self.pos > self.end:
            self.pos = self.end


class _StreamSource(_Source):
    """Blocks read from a stream in large chunks, for compressed or piped data."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self.read = read
        self.buf = b""
        self.at = 0  # index into buf
        self.pos = 0  # offset in the stream of buf[at]
        self.eof = False

    def _fill(self, need: int) -> bool:
        """Make at least ``need`` bytes available from ``at``; False at end of stream."""
        while len(self.buf) - self.at < need and not self.eof:
            chunk = self.read(max(CHUNK, need))
            if not chunk:
                self.eof = True
                break
            self.buf = self.buf[self.at :] + chunk
            self.at = 0
        return len(self.buf) - self.at >= need

    def limited(self, end: int) -> Callable[[int], bytes]:
        """A reader of the stream up to offset ``end`` (one member's data)."""

        def read(size: int = CHUNK) -> bytes:
            want = min(size, end - self.pos)
            if want <= 0:
                return b""
            if not self._fill(want):
                raise TarFormatError(f"tar entry data cut short at byte {self.pos + len(self.buf) - self.at}")
            out = self.buf[self.at : self.at + want]
            self.at += len(out)
            self.pos += len(out)
            return out

        return read

    def finish(self, offset: int, size: int) -> None:
        """Skip what is left of a member's data and its padding."""
        left = offset + size - self.pos
        if left > 0:
            self._consume(left, None, tolerate_short=False)
        pad = -size % BLOCK
        if pad:
            self._consume(pad, None, tolerate_short=True)

    def block(self) -> bytes:
        if not self._fill(BLOCK):
            if len(self.buf) == self.at:
                return b""
            raise TarFormatError(f"truncated tar header at byte {self.pos}")
        b = self.buf[self.at : self.at + BLOCK]
        self.at += BLOCK
        self.pos += BLOCK
        return b

    def data(self, size: int) -> bytes:
        padded = (size + BLOCK - 1) // BLOCK * BLOCK
        if not self._fill(size):
            raise TarFormatError(f"tar entry data cut short at byte {self.pos + len(self.buf) - self.at}")
        out = self.buf[self.at : self.at + size]
        self._consume(padded, None, tolerate_short=True)
        return out

    def skip(self, size: int, hasher: "hashlib._Hash | None") -> None:
        self._consume(size, hasher, tolerate_short=False)
        pad = -size % BLOCK
        if pad:
            self._consume(pad, None, tolerate_short=True)

    def _consume(self, size: int, hasher: "hashlib._Hash | None", tolerate_short: bool) -> None:
        left = size
        while left:
            avail = len(self.buf) - self.at
            if avail == 0:
                chunk = b"" if self.eof else self.read(CHUNK)
                if not chunk:
                    self.eof = True
                    if tolerate_short:
                        return
                    raise TarFormatError(f"tar entry data cut short at byte {self.pos}")
                self.buf, self.at = chunk, 0
                avail = len(chunk)
            take = min(avail, left)
            if hasher is not None:
                hasher.update(memoryview(self.buf)[self.at : self.at + take])
            self.at += take
            self.pos += take
            left -= take


def scan_buffer(buf: bytes | memoryview, start: int = 0, end: int | None = None) -> Iterator[TarMember]:
    """List the members of a tar held in ``buf[start:end]`` (an mmap works), reading headers only."""
    return _scan(_BufferSource(buf, start, len(buf) if end is None else end), hash_files=False)


def scan_stream(stream: BinaryIO | Callable[[int], bytes], hash_files: bool = True,
                sniff: "Sniffer | None" = None, flagged: dict[int, bytes] | None = None,
                keep: Callable[[str], bool] | None = None, kept: dict[int, bytes] | None = None) -> Iterator[TarMember]:
    """List the members of a tar read from a stream; optionally hash each regular file's data.

    With ``sniff``, small files whose bytes match it are noted in ``flagged`` (data offset ->
    match); with ``keep``, the files whose name it accepts are kept whole in ``kept``: their
    bytes pass by only once, and reading them again later would mean decompressing again.
    """
    read = stream if callable(stream) else stream.read
    return _scan(_StreamSource(read), hash_files=hash_files, sniff=sniff, flagged=flagged, keep=keep, kept=kept)


def scan_stream_with_data(read: Callable[[int], bytes]) -> Iterator[tuple[TarMember, Callable[[int], bytes]]]:
    """Walk a tar stream, handing out each member with a reader of its data.

    What the consumer leaves unread is skipped when it asks for the next member.
    """
    return _scan(_StreamSource(read), hash_files=False, hand_out=True)  # type: ignore[return-value]


NUMBERS = 1 << 16  # modes, owners and times kept for sharing, at most
BULK = True  # whether runs of plain headers in a buffer are read together (``tar_bulk``)


def _too_long(name: bytes, link: bytes, symlink: bool, at: int, limits: Budgets) -> None:
    """Refuse an entry whose name or link target is past the budget, saying how to raise it
    (a symlink's target has a budget of its own, a hard link's is a name's)."""
    link_max, setting = (limits.link, "MAX_LINK_BYTES") if symlink else (limits.name, "MAX_NAME_BYTES")
    if name.count(b"/") > limits.depth:
        what = f"an entry name {name.count(b'/'):,} folders deep, more than {limits.depth:,} (LAYER_EXPLORER_MAX_NAME_DEPTH)"
    elif len(link) > link_max:
        what = f"a link target of {len(link):,} bytes, more than {link_max:,} (LAYER_EXPLORER_{setting})"
    else:
        what = f"an entry name of {len(name):,} bytes, more than {limits.name:,} (LAYER_EXPLORER_MAX_NAME_BYTES)"
    raise TarFormatError(f"{what} at byte {at}; raise that limit if the image is genuine")


def _numbers(mode: bytes, uid: bytes, gid: bytes, size: bytes, mtime: bytes, at: int, hdr: bytes) -> tuple[int, int, int, int, int]:
    """The slow, careful decoding of a header's numbers (base-256, odd padding, errors)."""
    try:
        return _number(mode), _number(uid), _number(gid), _number(size), _number(mtime)
    except ValueError:
        if not header_checksum_ok(hdr):
            raise TarFormatError(f"corrupt tar header at byte {at} (bad checksum)") from None
        raise TarFormatError(f"malformed number in tar header at byte {at}") from None


def _decode_numbers(mode: bytes, uid: bytes, gid: bytes, size: bytes, mtime: bytes, at: int, hdr: bytes,
                    owners: dict[bytes, tuple[int, int, int]]) -> tuple[int, int, int, int, int]:
    """A header's mode (its permission bits), uid, gid, size and mtime from their fields; its
    mode and owner kept in ``owners`` by their raw bytes (while it holds fewer than ``NUMBERS``)."""
    try:  # the common case: NUL-terminated octal text
        numbers = (int(mode.rstrip(b"\0"), 8), int(uid.rstrip(b"\0"), 8), int(gid.rstrip(b"\0"), 8),
                   int(size.rstrip(b"\0"), 8), int(mtime.rstrip(b"\0"), 8))
    except ValueError:
        numbers = _numbers(mode, uid, gid, size, mtime, at, hdr)
    mode_n, uid_n, gid_n, size_n, mtime_n = numbers
    mode_n &= 0o7777
    if len(owners) < NUMBERS:
        owners[hdr[100:124]] = (mode_n, uid_n, gid_n)
    return mode_n, uid_n, gid_n, size_n, mtime_n


def _scan(src: _Source, hash_files: bool, hand_out: bool = False,
          sniff: "Sniffer | None" = None, flagged: dict[int, bytes] | None = None,
          keep: Callable[[str], bool] | None = None, kept: dict[int, bytes] | None = None) -> Iterator[TarMember]:
    """Walk tar headers, folding PAX and GNU long-name records into the member they describe.

    With ``keep``, the bytes of files whose name it accepts are kept in ``kept`` (data offset
    -> bytes), up to ``KEEP_BUDGET`` in all: read once as they pass, not again later."""
    budget = KEEP_BUDGET
    limits = budgets()
    max_name, max_depth, max_link, max_entries, max_paths = limits
    unpack = _HEADER_FIELDS.unpack_from
    new = tuple.__new__  # building the named tuple directly is twice as fast as calling it
    pax: dict[str, bytes] | None = None
    global_pax: dict[str, bytes] = {}
    long_name: bytes | None = None
    long_link: bytes | None = None
    first = True
    entries = named = 0
    # A build stamps most files alike: a header's mode and owner (its bytes 100 to 124) are
    # decoded once for each form they take and looked up after, and a time is kept as one
    # object for each value (56 bytes an entry less in the index).
    owners: dict[bytes, tuple[int, int, int]] = {}
    times: dict[float, float] = {}
    # A buffer's blocks are sliced and skipped here, not by a call each.
    buffered = type(src) is _BufferSource
    buf, base, end = (src.buf, src.base, src.end) if buffered else (b"", 0, 0)  # type: ignore[attr-defined]
    adler = zlib.adler32
    sums: dict[bytes, int] = {}
    # Long runs of plain headers in a buffer are read together (``tar_bulk``) where a layer
    # has shown itself big enough to pay for it (``tar_bulk.worth``); up to ``careful_until``,
    # inside a run too short to pay, and up to ``tar_bulk.AFTER`` entries, here.
    from explorer.formats import tar_bulk  # (it reads fields with this module's functions)

    bulk = BULK and buffered and not hash_files and not hand_out and tar_bulk.usable(buf, limits)
    careful_until = BLOCK
    while True:
        header_at = src.pos
        if bulk and entries >= tar_bulk.AFTER and header_at >= careful_until and pax is None and long_name is None and long_link is None \
                and not global_pax:
            run = tar_bulk.walk(buf, base, header_at, end, tar_bulk.ROWS) if tar_bulk.worth(entries, header_at, end) else None
            if run is None:
                careful_until = end  # (what is left of the layer is read here)
            elif len(run) < tar_bulk.MIN_RUN:
                careful_until = tar_bulk.after(buf, base, run[-1], end) if run else header_at + BLOCK
            else:
                try:
                    got, names = tar_bulk.decode(buf, base, run)
                except TarFormatError:
                    careful_until = end  # (read here, it fails where it should, after the members before)
                    continue
                if entries + len(got) > max_entries or named + names > max_paths:
                    careful_until = end  # (read here, it stops where the budget is passed)
                    continue
                entries += len(got)
                named += names
                src.pos = tar_bulk.after(buf, base, run[-1], end)
                yield from got
                continue
        if buffered and header_at + BLOCK <= end:
            hdr = buf[base + header_at : base + header_at + BLOCK]
            src.pos = header_at + BLOCK
        else:
            hdr = src.block()
        if not hdr or hdr == ZERO_BLOCK:
            return  # the end marker, or a stream that ends on a header boundary without one
        name, mode, uid, gid, size, mtime, chk, link, magic, prefix = unpack(hdr)
        owner = owners.get(hdr[100:124])
        try:  # the common case: NUL-terminated octal text
            size_n = int(size.rstrip(b"\0"), 8)
            mtime_n: float = int(mtime.rstrip(b"\0"), 8)
            # ``_checksum_quick`` inline, with what each checksum field makes of it worked out
            # once (a layer's headers share a few thousand)
            expect = sums.get(chk)
            if expect is None:
                expect = _adler_expected(chk)
                if len(sums) < NUMBERS:
                    sums[chk] = expect
            summed = (adler(hdr) & 0xFFFF) % 65521 == expect and hdr.isascii()
        except ValueError:
            owner = None
            summed = False
        if not summed and not _checksum_quick(hdr, chk):
            if first:
                raise TarFormatError("not a tar archive (bad header checksum at byte 0)")
            raise TarFormatError(f"corrupt tar header at byte {header_at} (bad checksum)")
        first = False
        kind = chr(hdr[156])
        if owner is None:
            mode_n, uid_n, gid_n, size_n, mtime_n = _decode_numbers(mode, uid, gid, size, mtime, header_at, hdr, owners)
        else:
            mode_n, uid_n, gid_n = owner
        if len(times) < NUMBERS:
            mtime_n = times.setdefault(mtime_n, mtime_n)
        else:
            mtime_n = times.get(mtime_n, mtime_n)
        if kind in "xXgLK":
            if size_n > MAX_META or size_n < 0:
                raise TarFormatError(f"tar meta record of {size_n} bytes at byte {header_at}")
            payload = src.data(size_n)
            if kind == "x" or kind == "X":
                pax = _parse_pax(payload, header_at)
            elif kind == "g":
                global_pax.update(_parse_pax(payload, header_at))
            elif kind == "L":
                long_name = _cstring(payload)
            else:
                long_link = _cstring(payload)
            continue
        if long_name is not None:
            raw_name = long_name
            long_name = None
        else:
            cut = name.find(b"\0")
            raw_name = name if cut < 0 else name[:cut]
            if magic == b"ustar\0" and prefix[0]:
                raw_name = _cstring(prefix) + b"/" + raw_name
        if long_link is not None:
            raw_link = long_link
            long_link = None
        else:
            raw_link = _cstring(link) if link[0] else b""
        xattrs = None
        real_size = None  # a sparse file's size: its stored bytes are not its content
        if pax is not None or global_pax:
            merged = {**global_pax, **(pax or {})}
            pax = None
            raw_name = merged.get("GNU.sparse.name", merged.get("path", raw_name))
            raw_link = merged.get("linkpath", raw_link)
            try:
                size_n = int(merged.get("size", size_n))
                uid_n = int(merged.get("uid", uid_n))
                gid_n = int(merged.get("gid", gid_n))
                if "mtime" in merged:
                    mtime_n = float(merged["mtime"])
                    if not math.isfinite(mtime_n):
                        mtime_n = 0
                sparse = merged.get("GNU.sparse.realsize", merged.get("GNU.sparse.size"))
                if sparse is not None:
                    real_size = int(sparse)
            except ValueError:
                raise TarFormatError(f"malformed PAX number for the entry at byte {header_at}") from None
            xattrs = _xattrs_from_pax(merged)
        link_max = max_link if kind == "2" else max_name
        if len(raw_name) > max_name or len(raw_link) > link_max or (len(raw_name) > max_depth and raw_name.count(b"/") > max_depth):
            _too_long(raw_name, raw_link, kind == "2", header_at, limits)  # (after PAX: it names them most often)
        named += len(raw_name) + len(raw_link)
        if named > max_paths:
            raise TarFormatError(f"the names of one layer add up to more than {max_paths >> 20:,} MiB "
                                 f"(LAYER_EXPLORER_MAX_PATHS_MB) at byte {header_at}; raise that limit if the image is genuine")
        if kind == "S":  # old GNU sparse: the map may go on in extension blocks
            kind = "0"
            try:
                real_size = _number(hdr[483:495])
            except ValueError:
                raise TarFormatError(f"malformed sparse header at byte {header_at}") from None
            extended = hdr[482]
            while extended:
                ext = src.block()
                if len(ext) < BLOCK:
                    raise TarFormatError(f"truncated sparse header at byte {header_at}")
                extended = ext[504]
        if size_n < 0 or (real_size is not None and real_size < 0):
            raise TarFormatError(f"negative size in tar header at byte {header_at}")
        if kind == "\0":
            kind = "0"
        # Like Go's archive/tar: these types carry no data, whatever the size field says.
        regular = kind in _REGULAR
        data_size = 0 if kind in "123456" else size_n
        shown_size = (size_n if real_size is None else real_size) if regular else 0
        offset = src.pos
        digest = None
        text_name = raw_name.decode("utf-8", "surrogateescape")
        text_link = raw_link.decode("utf-8", "surrogateescape") if raw_link else ""
        if hand_out:
            assert isinstance(src, _StreamSource)
            member = new(TarMember, (text_name, kind, mode_n, uid_n, gid_n, shown_size,
                                     mtime_n, text_link, offset, xattrs, None, header_at))
            yield member, src.limited(offset + data_size)  # type: ignore[misc]
            src.finish(offset, data_size)
            continue
        if real_size is not None:
            if data_size:
                src.skip(data_size, None)
            offset = SPARSE  # the content is not one run of bytes: never read it by offset
        elif hash_files and regular:
            if keep is not None and 0 < data_size <= budget and kept is not None and keep(text_name):
                data = src.data(data_size)
                digest = hashlib.sha256(data).hexdigest()
                kept[offset] = data
                budget -= data_size
            elif sniff is not None and 0 < data_size <= SNIFF_MAX:
                data = src.data(data_size)
                digest = hashlib.sha256(data).hexdigest()
                found = sniff.search(data)
                if found and flagged is not None:
                    flagged[offset] = found.group(0)
            elif data_size:
                hasher = hashlib.sha256()
                src.skip(data_size, hasher)
                digest = hasher.hexdigest()
            else:
                digest = EMPTY_SHA256
        elif data_size:
            if buffered:  # (``_BufferSource.skip`` without a hasher, inline)
                if offset + data_size > end:
                    raise TarFormatError(f"tar entry data cut short at byte {end}")
                src.pos = min(offset + (data_size + BLOCK - 1) // BLOCK * BLOCK, end)
            else:
                src.skip(data_size, None)
        entries += 1
        if entries > max_entries:
            raise TarFormatError(f"more than {max_entries:,} entries in one layer (LAYER_EXPLORER_MAX_ENTRIES) at byte "
                                 f"{header_at}; raise that limit if the image is genuine")
        yield new(TarMember, (text_name, kind, mode_n, uid_n, gid_n, shown_size,
                              mtime_n, text_link, offset, xattrs, digest, header_at))
