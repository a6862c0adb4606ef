"""Compression sniffed from magic bytes, and streaming decompressors for each kind.

Names and media types lie (a decompressed copy often keeps its ``+gzip`` media type), so
only the first bytes of a blob decide how it is read.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import zlib
from typing import Callable

import zstandard

try:  # zlib-ng inflates about 1.7 times as fast as zlib here, and its state can be copied
    from zlib_ng import zlib_ng as _inflate  # (checkpoints need that; ISA-L's cannot be)
except ImportError:  # a platform without its wheel: the standard library's zlib
    _inflate = zlib  # type: ignore[assignment]
try:  # ISA-L inflates faster still, for streams that need no checkpoints
    from isal import isal_zlib as _straight
except ImportError:
    _straight = _inflate  # type: ignore[assignment]

NONE, GZIP, ZSTD, XZ, BZIP2 = "none", "gzip", "zstd", "xz", "bzip2"

_MAGIC = (
    (b"\x1f\x8b", GZIP),
    (b"\x28\xb5\x2f\xfd", ZSTD),
    (b"\xfd7zXZ\x00", XZ),
    (b"BZh", BZIP2),
)
CHUNK = 1 << 20


class DecompressError(Exception):
    """The compressed stream is corrupt or cut short."""


class BombError(DecompressError):
    """The stream expands past the ratio a real layer would (LAYER_EXPLORER_MAX_RATIO raises it)."""

    hint = "raise LAYER_EXPLORER_MAX_RATIO above that ratio if the image is genuine: a big file of zeros can do that"


def sniff(head: bytes) -> str:
    """The compression a stream starting with ``head`` uses (``none`` for anything unknown)."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return NONE


Checkpoint = tuple[int, int, object]  # (compressed offset, uncompressed offset, inflate state)
CHECKPOINT_EVERY = 4 << 20


_ERRORS = (zlib.error, _inflate.error, _straight.error)


class _GzipReader:
    """Streams concatenated gzip members (eStargz is many members) through zlib-ng (or zlib).

    With a ``checkpoints`` list it records, every few MiB of output, a copy of the inflate
    state and where it stands, so a later read deep in the stream can start near its target
    instead of at byte 0 (the way indexed_gzip does it).
    """

    def __init__(self, read: Callable[[int], bytes], checkpoints: list[Checkpoint] | None = None,
                 start: Checkpoint | None = None) -> None:
        self._read = read
        self._pending = b""
        self._done = False
        self._cps = checkpoints
        # states are copied only for checkpoints: without them the fastest inflater serves
        self._zlib = _inflate if checkpoints is not None else _straight
        if start is None:
            self._d = self._zlib.decompressobj(31)
            self._started = False  # whether the current member has consumed input
            self.fed, self.out_pos = 0, 0
        else:
            self.fed, self.out_pos, state = start
            self._d = state.copy()
            self._started = True
        self._last = self.out_pos

    def read(self, size: int = CHUNK) -> bytes:
        out = b""
        while not out and not self._done:
            if self._pending:
                data, self._pending = self._pending, b""
            else:
                data = self._read(CHUNK)
                self.fed += len(data)
            if not data:
                if not self._d.eof and (self._d.unconsumed_tail or self._started):
                    raise DecompressError("gzip stream cut short")
                self._done = True
                break
            if not self._started:
                data = data.lstrip(b"\0")  # zero padding between or after gzip members
                if not data:
                    continue
            self._started = True
            try:
                out = self._d.decompress(data, size)
            except _ERRORS as exc:
                raise DecompressError(f"corrupt gzip data ({exc})") from None
            # End of member first: when a member's output exactly fills ``size`` zlib may report
            # the next member's bytes both as unconsumed_tail and as unused_data, and feeding the
            # tail back to the finished member would loop for ever.
            if self._d.eof:
                rest = self._d.unused_data
                self._d = self._zlib.decompressobj(31)
                self._started = False
                self._pending = rest
            elif self._d.unconsumed_tail:
                self._pending = self._d.unconsumed_tail
            self.out_pos += len(out)
            if self._cps is not None and self.out_pos - self._last >= CHECKPOINT_EVERY and self._started:
                self._cps.append((self.fed - len(self._pending), self.out_pos, self._d.copy()))
                self._last = self.out_pos
        return out


def resume_gzip(read_from: Callable[[int], Callable[[int], bytes]], checkpoints: list[Checkpoint], offset: int) -> tuple[Callable[[int], bytes], int]:
    """A reader of a gzip blob's output from the last checkpoint at or before ``offset``.

    ``read_from(n)`` gives a reader of the raw blob from byte n. Returns the reader and the
    output offset it starts at.
    """
    best = None
    for cp in checkpoints:  # few hundred at most; they are in order
        if cp[1] > offset:
            break
        best = cp
    if best is None:
        return _GzipReader(read_from(0)).read, 0
    return _GzipReader(read_from(best[0]), start=best).read, best[1]


class _RawReader:
    """The file-like face zstandard's stream reader wants over a ``read(n)`` function."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self.read = read


def extend_checkpoints(read_from: Callable[[int], Callable[[int], bytes]], checkpoints: list[Checkpoint],
                       upto: int) -> list[Checkpoint]:
    """``checkpoints`` of a gzip blob, extended from the last one as far as output offset
    ``upto`` (a new list: readers of the old one may be using it meanwhile)."""
    points = list(checkpoints)
    if points and points[-1][1] + CHECKPOINT_EVERY > upto:
        return points
    start = points[-1] if points else None
    reader = _GzipReader(read_from(start[0] if start else 0), points, start)
    while reader.out_pos < upto and reader.read(CHUNK):
        pass
    return points


class _ZstdFrames:
    """Follows the frame and block headers of zstd data as it passes, to tell at its end whether
    the last frame was whole: zstandard's stream reader ends a cut stream without a word."""

    def __init__(self) -> None:
        self.state, self.need, self.head, self.skip, self.checksum = "magic", 4, b"", 0, False

    def feed(self, data: bytes) -> None:
        at, end = 0, len(data)
        while at < end:
            if self.skip:  # block contents and header fields: only their length matters
                take = min(self.skip, end - at)
                self.skip -= take
                at += take
                continue
            take = min(self.need - len(self.head), end - at)
            self.head += data[at:at + take]
            at += take
            if len(self.head) == self.need:
                self._step(self.head)
                self.head = b""

    def _step(self, head: bytes) -> None:
        value = int.from_bytes(head, "little")
        if self.state == "magic":
            if value & 0xFFFFFFF0 == 0x184D2A50:  # a skippable frame: its size follows
                self.state, self.need = "skippable", 4
            else:  # (a wrong magic is the decompressor's to report)
                self.state, self.need = "frame", 1
        elif self.state == "skippable":
            self.skip, self.state, self.need = value, "magic", 4
        elif self.state == "frame":  # the frame header descriptor says how long the header is
            single, self.checksum = value >> 5 & 1, bool(value >> 2 & 1)
            self.skip = (0 if single else 1) + (0, 1, 2, 4)[value & 3] + (single, 2, 4, 8)[value >> 6]
            self.state, self.need = "block", 3
        else:  # a block header: last-block flag, type, size (an RLE block stores one byte)
            self.skip = 1 if value >> 1 & 3 == 1 else value >> 3
            if value & 1:
                self.skip += 4 if self.checksum else 0
                self.state, self.need = "magic", 4

    def whole(self) -> bool:
        """Whether the data so far ends where a frame ends."""
        return self.state == "magic" and not self.head and not self.skip


class _ZstdReader:
    """Streams zstd frames (several frames in a row are allowed), refusing a cut one."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._frames = _ZstdFrames()

        def watched(n: int) -> bytes:
            data = read(n)
            self._frames.feed(data)
            return data

        self._r = zstandard.ZstdDecompressor().stream_reader(_RawReader(watched), read_across_frames=True)

    def read(self, size: int = CHUNK) -> bytes:
        try:
            out = self._r.read(size)
        except zstandard.ZstdError as exc:
            raise DecompressError(f"corrupt zstd data ({exc})") from None
        if not out and size and not self._frames.whole():
            raise DecompressError("zstd stream cut short")
        return out


class _StdlibReader:
    """Streams xz or bzip2 through the standard library's incremental decompressors."""

    def __init__(self, read: Callable[[int], bytes], factory: Callable[[], object], name: str) -> None:
        self._read = read
        self._factory = factory
        self._d = factory()
        self._name = name
        self._done = False

    def read(self, size: int = CHUNK) -> bytes:
        out = b""
        while not out and not self._done:
            if self._d.eof:  # type: ignore[attr-defined]
                rest = self._d.unused_data  # type: ignore[attr-defined]
                if not rest:
                    rest = self._read(CHUNK)
                if not rest:
                    self._done = True
                    break
                self._d = self._factory()
                data = rest
            elif self._d.needs_input:  # type: ignore[attr-defined]
                data = self._read(CHUNK)
                if not data:
                    raise DecompressError(f"{self._name} stream cut short")
            else:
                data = b""
            try:
                out = self._d.decompress(data, size)  # type: ignore[attr-defined]
            except (OSError, EOFError, ValueError, lzma.LZMAError) as exc:  # LZMAError is none of the others
                raise DecompressError(f"corrupt {self._name} data ({exc})") from None
        return out


def open_reader(kind: str, read: Callable[[int], bytes], checkpoints: list[Checkpoint] | None = None) -> Callable[[int], bytes]:
    """A ``read(n)`` function yielding the decompressed bytes of a ``kind`` stream."""
    if kind == NONE:
        return read
    if kind == GZIP:
        return _GzipReader(read, checkpoints).read
    if kind == ZSTD:
        return _ZstdReader(read).read
    if kind == XZ:
        return _StdlibReader(read, lzma.LZMADecompressor, "xz").read
    if kind == BZIP2:
        return _StdlibReader(read, bz2.BZ2Decompressor, "bzip2").read
    raise ValueError(kind)


class HashingReader:
    """Wraps ``read(n)``, hashing and counting every byte that passes through."""

    def __init__(self, read: Callable[[int], bytes], hash: bool = True,
                 guard: Callable[[int], None] | None = None, algorithm: str = "sha256") -> None:
        self._read = read
        self.algorithm = algorithm
        self.hasher = hashlib.new(algorithm) if hash else None
        self.count = 0
        self._guard = guard

    def read(self, size: int = CHUNK) -> bytes:
        data = self._read(size)
        if data:
            if self.hasher is not None:
                self.hasher.update(data)
            self.count += len(data)
            if self._guard is not None:
                self._guard(self.count)
        return data

    def drain(self) -> None:
        """Read to the end, so the hash and count cover the whole stream."""
        while self.read(CHUNK):
            pass

    def digest(self) -> str:
        """The ``<algorithm>:<hex>`` digest of what has been read."""
        assert self.hasher is not None
        return f"{self.algorithm}:{self.hasher.hexdigest()}"


BOMB_RATIO = 1000  # no real layer expands a thousand times (unless LAYER_EXPLORER_MAX_RATIO says so)...
BOMB_MIN = 256 << 20  # ...beyond this size (zero-filled files do compress very well, but not that well)
# A slower bomb stays under that ratio and takes minutes to inflate: past a few gigabytes, a
# layer may expand at most this much (LAYER_EXPLORER_MAX_RATIO raises it for a genuine one).
SLOW_BOMB_MIN = 2 << 30


def _slow_ratio() -> int:
    try:
        return max(1, int(os.environ.get("LAYER_EXPLORER_MAX_RATIO", "100")))
    except ValueError:
        return 100


def bomb_guard(compressed: "HashingReader", what: str) -> Callable[[int], None]:
    """A check that stops a stream expanding absurdly (1 KB that would become 10 GB), or
    expanding far over gigabytes (870:1 to 20 GB: minutes of work for a few MB)."""
    slow = _slow_ratio()
    fast = max(BOMB_RATIO, slow)  # (set above it, the variable lifts this one too)

    def guard(expanded: int) -> None:
        stored = max(compressed.count, 1)
        if expanded > BOMB_MIN and expanded > fast * stored:
            raise BombError(f"{what} expands more than {fast} times its stored size "
                            f"({compressed.count:,} bytes to over {expanded:,}); refusing a decompression bomb")
        if expanded > SLOW_BOMB_MIN and expanded > slow * stored:
            raise BombError(f"{what} expands more than {slow} times its stored size past "
                            f"{SLOW_BOMB_MIN >> 30} GiB ({compressed.count:,} bytes to over {expanded:,}); "
                            "refusing a decompression bomb (LAYER_EXPLORER_MAX_RATIO raises the limit)")
    return guard


def skip(read: Callable[[int], bytes], count: int) -> None:
    """Read and drop ``count`` bytes."""
    while count > 0:
        chunk = read(min(count, CHUNK))
        if not chunk:
            raise DecompressError("stream ended before the requested offset")
        count -= len(chunk)


def read_exactly(read: Callable[[int], bytes], count: int) -> bytes:
    """Read ``count`` bytes (fewer only at the end of the stream)."""
    parts, left = [], count
    while left > 0:
        chunk = read(min(left, CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def buffer_reader(buf: bytes | memoryview, start: int, end: int) -> Callable[[int], bytes]:
    """A ``read(n)`` over ``buf[start:end]`` (an mmap range), copying only what is asked.

    It slices the map rather than a memoryview of it: a view left alive by a decompressor
    that is collected late would stop the map from closing.
    """
    state = [start]

    def read(size: int = CHUNK) -> bytes:
        at = state[0]
        stop = min(end, at + size)
        state[0] = stop
        return buf[at:stop]

    return read
