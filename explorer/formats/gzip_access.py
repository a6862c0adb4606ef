"""Random access into gzip layers from saved access points, so a preview deep in a big layer
never inflates the layer from its start, not even after a reopen.

rapidgzip inflates a layer once and exports its access points (every few MiB of output, the
compressed bit offset and the 32 KiB window before it: about 2 MB for a 100 MB layer);
imported again, it starts inflating at the point just before any offset. The points are kept
in memory with the layer's scan and, while the index cache is on, in the cache folder by the
blob's digest, so every image and every reopen that has the same blob finds them. rapidgzip
was measured for this against indexed_gzip: on a 98 MB layer it built the points in 0.42 s
against 0.86 s and released the interpreter lock meanwhile (indexed_gzip held it for the
whole 0.86 s, which would have frozen the window). The load itself keeps ISA-L, faster still
(0.37 s) and building the points after it costs the user nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from typing import Callable, Sequence

from explorer.formats import compression
from explorer.formats.cache import cache_dir, keep_under, remove
from explorer.formats.container import Container, LayerScan
from explorer.model.errors import Cancelled

try:
    import rapidgzip
except ImportError:  # not built for this platform: previews inflate from the nearest in-memory checkpoint
    rapidgzip = None

MIN_TAR = 2 * compression.CHECKPOINT_EVERY  # smaller layers inflate to any offset about as fast
MAX_BYTES = 512 << 20  # the access points kept on disk, least recently used dropped first
_DIGEST = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")
MAGIC = b"layer-explorer access points\n"  # then the sha256 of the points, then the points
RECENT_BYTES = 32 << 20  # saved points held after use, the most recent first
_recent: "OrderedDict[str, bytes]" = OrderedDict()
_recent_lock = threading.Lock()  # previews run in threads


def available() -> bool:
    """Whether access points can be made and used here."""
    return rapidgzip is not None


def worth_it(container: Container, scan: LayerScan) -> bool:
    """Whether a layer gains from access points: gzip, big, and stored where any byte can be
    read directly (a file, a folder, the blob cache; not a compressed archive's stream)."""
    return (rapidgzip is not None and scan.compression == compression.GZIP and (scan.tar_size or 0) > MIN_TAR
            and getattr(container, "random_access", False))


def buildable(container: Container, blob: str) -> bool:
    """Whether the blob is at hand to be read whole (a registry's may have left the blob cache:
    building would download it unasked)."""
    is_local = getattr(container, "is_local", None)
    return is_local is None or is_local(blob)


def folder() -> str:
    """Where access points are kept, by blob digest."""
    return os.path.join(cache_dir(), "access")


def _file(scan: LayerScan) -> str | None:
    match = _DIGEST.match(scan.blob_digest or "")
    return os.path.join(folder(), match.group(1)) if match else None


def on_disk(scan: LayerScan) -> bool:
    """Whether access points are saved for the layer's blob (without reading them)."""
    path = _file(scan)
    return path is not None and os.path.exists(path)


def saved(scan: LayerScan) -> bytes | None:
    """The layer's access points: those in memory, else those saved for its blob, when their
    checksum holds (a damaged file is removed). Saved ones are read for each use, the last few
    kept: a few MB a layer, they would add up in the window's memory on a big image."""
    if scan.access is not None:
        return scan.access
    path = _file(scan)
    if path is None:
        return None
    with _recent_lock:
        points = _recent.get(path)
        if points is not None:
            _recent.move_to_end(path)
            return points
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    head = len(MAGIC) + 32
    if len(data) < head or data[:len(MAGIC)] != MAGIC or hashlib.sha256(data[head:]).digest() != data[len(MAGIC):head]:
        remove(path)  # a bit flipped in a window would give wrong bytes, not an error
        return None
    try:
        os.utime(path)  # recently used: kept longest
    except OSError:
        pass  # (a read-only cache: the points still serve)
    points = data[head:]
    with _recent_lock:  # the last few used, so previews one after another in a layer read none
        _recent[path] = points
        while sum(len(p) for p in _recent.values()) > RECENT_BYTES and len(_recent) > 1:
            _recent.popitem(last=False)
    return points


def forget(scan: LayerScan) -> None:
    """Drop a layer's access points, from memory and disk (they did not fit its blob)."""
    scan.access = None
    path = _file(scan)
    if path is not None:
        with _recent_lock:
            _recent.pop(path, None)
        remove(path)


def build(container: Container, blob: str, stop: Callable[[], bool] = lambda: False) -> bytes:
    """Inflate a gzip layer once and return its access points; ``stop`` is asked before each
    read of the blob (its container may be about to close) and ends the build with ``Cancelled``."""
    with rapidgzip.RapidgzipFile(_BlobFile(container, blob, stop), parallelization=1) as gz:
        gz.seek(0, io.SEEK_END)
        out = io.BytesIO()
        gz.export_index(out)
    return out.getvalue()


def keep(scans: list[LayerScan], points: bytes, disk: bool) -> None:
    """Keep the access points of one blob (``scans``: the layers that list it): with ``disk``,
    once in the cache folder behind a checksum; in memory when they cannot be saved there (the
    cache is off, or cannot be written)."""
    path = _file(scans[0]) if disk else None
    if path is None or not _write(path, MAGIC + hashlib.sha256(points).digest() + points):
        for scan in scans:
            scan.access = points


def missing(container: Container, blobs: Sequence[str], scans: Sequence[LayerScan]) -> dict[str, list[LayerScan]]:
    """The blobs whose access points are worth making and not made yet, each with the scans of
    the layers that list it (a blob listed twice is inflated once)."""
    todo: dict[str, list[LayerScan]] = {}
    for blob, scan in zip(blobs, scans):
        if worth_it(container, scan) and scan.access is None and not on_disk(scan) and buildable(container, blob):
            todo.setdefault(blob, []).append(scan)
    return todo


def make(container: Container, todo: dict[str, list[LayerScan]], disk: bool, stop: Callable[[], bool] = lambda: False) -> None:
    """Build and keep the access points ``missing`` named, one blob after another; ``stop``
    ends it between reads (and nothing more is kept once it says so)."""
    for blob, scans in todo.items():
        points = build(container, blob, stop)
        if stop():  # the container may be closing: what was read may not be its blob
            return
        keep(scans, points, disk)


def _write(path: str, data: bytes) -> bool:
    """Write a file whole or not at all (whether it was); a full disk only costs the saving."""
    tmp = ""
    where = os.path.dirname(path)
    try:
        os.makedirs(where, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".partial-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        tmp = ""
    except OSError:
        return False
    finally:
        if tmp:
            remove(tmp)
    try:
        entries = list(os.scandir(where))
        stale = time.time() - 3600  # half-written by a window that was killed meanwhile
        for e in entries:
            if e.name.startswith(".partial-") and e.stat().st_mtime < stale:
                remove(e.path)
        keep_under((e.path for e in entries if not e.name.startswith(".")), MAX_BYTES)
    except OSError:
        pass
    return os.path.exists(path)  # (unless the limit took it at once)


def reader(container: Container, blob: str, points: bytes, offset: int) -> Callable[[int], bytes]:
    """A reader of the layer's tar from ``offset``, started at the access point before it."""
    gz = rapidgzip.RapidgzipFile(_BlobFile(container, blob), parallelization=1)
    try:
        gz.import_index(io.BytesIO(points))
        gz.seek(offset)
    except BaseException:
        gz.close()
        raise

    def read(size: int = compression.CHUNK) -> bytes:
        try:
            return gz.read(size)
        except (ValueError, RuntimeError) as exc:  # rapidgzip's words for corrupt data
            raise compression.DecompressError(f"corrupt gzip data ({exc})") from None

    return read


def layer_reader(container: Container, blob: str, scan: LayerScan, offset: int) -> Callable[[int], bytes]:
    """A reader of a layer's tar from ``offset``: from its access points when it has them (and
    they fit the blob: else they are dropped), else from the checkpoints of its scan, which a
    big gzip layer first extends as far as ``offset``, so later reads start near their files."""
    points = saved(scan) if worth_it(container, scan) else None
    if points is not None:
        try:
            return reader(container, blob, points, offset)
        except (ValueError, RuntimeError, compression.DecompressError):  # points that do not fit the blob
            forget(scan)
    if scan.compression == compression.GZIP and (scan.tar_size or 0) > 2 * compression.CHECKPOINT_EVERY:
        # (an index read from the cache, or a layer scanned by a worker process, has none yet)
        scan.checkpoints = compression.extend_checkpoints(lambda s: container.raw_reader(blob, s), scan.checkpoints, offset)
    return container.layer_reader(blob, scan, offset)


class _BlobFile(io.RawIOBase):
    """A blob as a seekable file, for rapidgzip: each seek starts a new raw reader there (the
    containers that offer random access read at any offset directly)."""

    def __init__(self, container: Container, blob: str, stop: Callable[[], bool] = lambda: False) -> None:
        super().__init__()
        self._open_at = lambda at: container.raw_reader(blob, at)
        self._stop = stop
        self._size = container.size(blob)
        self._pos = 0
        self._read: Callable[[int], bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        at = max(0, base + offset)
        if at != self._pos:
            self._pos, self._read = at, None
        return at

    def readinto(self, buffer) -> int:
        if self._stop():
            raise Cancelled("cancelled")
        if self._read is None:
            self._read = self._open_at(self._pos)
        data = self._read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._pos += n
        return n
