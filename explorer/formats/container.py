"""The outer archive: a tar file on disk, a folder, or a compressed tar read as one stream.

Each kind answers the same questions (which names exist, the bytes of a small JSON file,
the index of a layer blob), so the format readers never know which kind they have.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import posixpath
import stat
from dataclasses import dataclass, field
from itertools import islice
from typing import Callable, Iterator

from explorer.formats import compression
from explorer.formats.compression import BombError, DecompressError, HashingReader
from explorer.formats.packages import is_package_file
from explorer.model.errors import SourceError
from explorer.model.progress import Monitor
from explorer.model.secrets import SECRET_CONTENT
from explorer.formats.tar_index import (
    BLOCK,
    TarFormatError,
    TarMember,
    looks_like_tar,
    scan_buffer,
    scan_stream,
    scan_stream_with_data,
)

# JSON documents (manifests, configs, indexes) larger than this are not what they claim to be.
MAX_DOCUMENT = 64 << 20
STREAM_DOCUMENT = 16 << 20  # a JSON member of a compressed stream kept in memory, at most...
STREAM_DOCUMENTS = 256 << 20  # ...and all of them together


@dataclass
class LayerScan:
    """The members of one layer blob, and what reading it told about the blob."""

    members: list[TarMember]
    compression: str
    blob_size: int
    blob_digest: str | None = None  # computed when the blob had to be read anyway
    tar_size: int | None = None
    warnings: list[str] = field(default_factory=list)
    checkpoints: list[compression.Checkpoint] = field(default_factory=list)  # gzip resume points
    flagged: dict[int, bytes] | None = None  # small files that look like secrets (data offset -> match)
    kept: dict[int, bytes] | None = None  # package databases kept as they streamed by (data offset -> bytes)
    access: bytes | None = None  # gzip access points, once made (see ``gzip_access``)


def clean_name(name: str) -> str:
    """Normalise a member name of the outer archive: no ``./``, no leading or trailing ``/``."""
    name = posixpath.normpath("/" + name).lstrip("/")
    return "" if name == "." else name


class Container:
    """Common interface of the outer archive kinds."""

    path: str
    compression: str = compression.NONE
    random_access = False  # whether ``raw_reader`` starts at any byte of a blob without reading up to it

    def names(self) -> set[str]:
        """Every file name in the archive (normalised)."""
        raise NotImplementedError

    def has(self, name: str) -> bool:
        """Whether a file of that name exists (after following links)."""
        return self.resolve(name) in self.names()

    def resolve(self, name: str) -> str:
        """Follow the archive's own symlinks and hardlinks to the stored file."""
        return clean_name(name)

    def read_document(self, name: str) -> bytes:
        """The bytes of a small file (a JSON document)."""
        raise NotImplementedError

    def size(self, name: str) -> int:
        """Stored size of a file."""
        raise NotImplementedError

    def scan_layer(self, name: str, monitor: Monitor) -> LayerScan:
        """Index the layer tar stored under ``name``."""
        raise NotImplementedError

    def raw_reader(self, name: str, start: int) -> Callable[[int], bytes]:
        """A reader of a blob's stored bytes from byte ``start``."""
        raise NotImplementedError

    def layer_reader(self, name: str, scan: LayerScan, offset: int) -> Callable[[int], bytes]:
        """A reader of a layer's uncompressed tar from ``offset``.

        Plain blobs are read in place; gzip blobs resume from the nearest checkpoint the
        scan recorded; other compressions are decompressed from the start.
        """
        if scan.compression == compression.NONE:
            return self.raw_reader(name, offset)
        if scan.compression == compression.GZIP and scan.checkpoints:
            read, at = compression.resume_gzip(lambda s: self.raw_reader(name, s), scan.checkpoints, offset)
            compression.skip(read, offset - at)
            return read
        read = compression.open_reader(scan.compression, self.raw_reader(name, 0))
        compression.skip(read, offset)
        return read

    def read_layer(self, name: str, scan: LayerScan, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of a layer's uncompressed tar."""
        with self._read_errors(name):
            data = compression.read_exactly(self.layer_reader(name, scan, offset), size)
        if len(data) != size:
            raise self._cut_short(name)
        return data

    def layer_digest(self, name: str, scan: LayerScan, offset: int, size: int) -> str:
        """sha256 of ``size`` bytes at ``offset`` of a layer's tar, a megabyte at a time: a big
        file is never held whole (copying one holds the interpreter lock, and the window)."""
        hasher = hashlib.sha256()
        with self._read_errors(name):
            read, left = self.layer_reader(name, scan, offset), size
            while left > 0:
                chunk = read(min(left, compression.CHUNK))
                if not chunk:
                    raise self._cut_short(name)
                hasher.update(chunk)
                left -= len(chunk)
        return hasher.hexdigest()

    @contextlib.contextmanager
    def _read_errors(self, name: str) -> Iterator[None]:
        """Damaged layer data, said as such."""
        try:
            yield
        except (DecompressError, TarFormatError) as exc:
            raise scan_layer_errors(self.path, name, exc) from None

    def _cut_short(self, name: str) -> SourceError:
        return SourceError(self.path, f"layer {name} is cut short", "the archive is truncated or changed since it was opened")

    def close(self) -> None:
        """Release files and maps."""


def _scan_range(buf: mmap.mmap | bytes, start: int, end: int, where: str, monitor: Monitor) -> LayerScan:
    """Index a layer blob held in ``buf[start:end]``: headers only when it is a plain tar."""
    head = bytes(buf[start : min(end, start + BLOCK)])
    kind = compression.sniff(head)
    size = end - start
    if kind == compression.NONE:
        if size == 0:
            return LayerScan([], kind, 0, warnings=[f"layer blob {where} is empty (0 bytes); read as an empty layer"])
        if not looks_like_tar(bytes(buf[start : min(end, start + BLOCK)])):
            raise SourceError(monitor.source, f"layer blob {where} is not a tar archive")
        members: list[TarMember] = []
        released = start - start % mmap.PAGESIZE
        scan = scan_buffer(buf, start, end)
        while chunk := list(islice(scan, 0x4000)):  # (taken a chunk at a time: a call less an entry)
            members += chunk
            at = chunk[-1].header_offset  # (where the scan is: a sparse file's data offset is no place)
            monitor.tick(at)
            released = _release(buf, released, start + at)
        _release(buf, released, end)
        return LayerScan(members, kind, size, tar_size=size)
    blob = HashingReader(compression.buffer_reader(buf, start, end))
    return _scan_compressed(kind, blob, size, where, monitor)


def _release(buf: mmap.mmap | bytes, start: int, upto: int) -> int:
    """Unmap pages already read: the page cache keeps them, our resident size does not.

    Headers of small files sit on nearly every page, so without this a headers-only scan of
    a 1 GB archive would count the whole file in the process's memory.
    """
    upto -= upto % mmap.PAGESIZE
    if isinstance(buf, mmap.mmap) and upto > start and hasattr(mmap, "MADV_DONTNEED"):
        buf.madvise(mmap.MADV_DONTNEED, start, upto - start)
        return upto
    return start


# Whether scans keep gzip resume points: a worker process turns this off, since inflate states
# cannot be sent back (previews rebuild them when first needed) and without them a faster
# inflater serves.
CHECKPOINTS = True


def _scan_compressed(kind: str, blob: HashingReader, size: int, where: str, monitor: Monitor) -> LayerScan:
    """Decompress a layer blob once, hashing each file's content on the way."""
    checkpoints: list[compression.Checkpoint] = []
    # The diff_id is not hashed here: only `--verify` pays for that.
    tar = HashingReader(compression.open_reader(kind, blob.read, checkpoints if CHECKPOINTS else None), hash=False,
                        guard=compression.bomb_guard(blob, f"layer {where}"))
    members = []
    flagged: dict[int, bytes] = {}
    kept: dict[int, bytes] = {}
    for member in scan_stream(tar.read, hash_files=True, sniff=SECRET_CONTENT, flagged=flagged,
                              keep=is_package_file, kept=kept):
        members.append(member)
        if len(members) & 0x3FF == 0:
            monitor.tick(blob.count)
    tar.drain()  # trailing bytes after the end marker still count for the digests
    blob.drain()
    if blob.count != size:
        raise DecompressError(f"layer blob {where} has {size} bytes but its stream ended at {blob.count}")
    return LayerScan(members, kind, size, blob_digest=blob.digest(), tar_size=tar.count, checkpoints=checkpoints,
                     flagged=flagged, kept=kept)


def scan_file(source: str, path: str, name: str, monitor: Monitor) -> LayerScan:
    """Index a layer blob that is a file of its own (a layout folder, the blob cache)."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return _scan_range(b"", 0, 0, name, monitor)
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _scan_range(buf, 0, len(buf), name, monitor)
    except OSError as exc:
        raise SourceError(source, f"cannot read layer blob {name}: {exc.strerror or exc}") from None
    except (TarFormatError, DecompressError) as exc:
        raise scan_layer_errors(source, name, exc) from None


def scan_layer_errors(source: str, where: str, exc: Exception) -> SourceError:
    """Turn a low-level read error in a layer into a source error that names the layer."""
    if isinstance(exc, BombError):  # (its message names the layer: it is not damaged, only refused)
        return SourceError(source, str(exc), exc.hint)
    return SourceError(source, f"layer {where} is damaged: {exc}", "the archive may be truncated or corrupt")


class TarFileContainer(Container):
    """An uncompressed tar on disk, mapped into memory so headers are read in place."""

    random_access = True

    def __init__(self, path: str, monitor: Monitor) -> None:
        self.path = path
        self._file = open(path, "rb")
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:
            self._file.close()
            raise SourceError(path, "the file is empty", "expected a container image archive") from None
        self._members: dict[str, TarMember] = {}
        try:
            for member in scan_buffer(self._map):
                self._members[clean_name(member.name)] = member
        except TarFormatError as exc:
            self.close()
            raise SourceError(path, f"broken tar archive: {exc}", "the file may be truncated or corrupt") from None
        self._files = {n for n, m in self._members.items() if m.type != "5"}

    def names(self) -> set[str]:
        return self._files

    def resolve(self, name: str) -> str:
        name = clean_name(name)
        for _ in range(40):  # a link loop must not hang us
            member = self._members.get(name)
            if member is None or member.type not in "12":
                return name
            if member.type == "2":
                name = clean_name(posixpath.join(posixpath.dirname(name), member.linkname))
            else:
                name = clean_name(member.linkname)
        raise SourceError(self.path, f"too many levels of links at {name}")

    def _member(self, name: str) -> TarMember:
        member = self._members.get(self.resolve(name))
        if member is None or member.type not in "07":
            raise SourceError(self.path, f"{name} is missing from the archive")
        return member

    def read_document(self, name: str) -> bytes:
        member = self._member(name)
        if member.size > MAX_DOCUMENT:
            raise SourceError(self.path, f"{name} is {member.size} bytes, too large for a JSON document")
        if member.offset + member.size > len(self._map):
            raise SourceError(self.path, f"{name} is cut short", "the archive is truncated")
        return self._map[member.offset : member.offset + member.size]

    def size(self, name: str) -> int:
        return self._member(name).size

    def scan_layer(self, name: str, monitor: Monitor) -> LayerScan:
        member = self._member(name)
        end = member.offset + member.size
        if end > len(self._map):
            raise SourceError(self.path, f"layer {name} is cut short", "the archive is truncated")
        try:
            return _scan_range(self._map, member.offset, end, name, monitor)
        except (TarFormatError, DecompressError) as exc:
            raise scan_layer_errors(self.path, name, exc) from None

    def raw_reader(self, name: str, start: int) -> Callable[[int], bytes]:
        member = self._member(name)
        end = min(member.offset + member.size, len(self._map))
        pos = [min(member.offset + start, end)]
        fd = self._file.fileno()

        def read(size: int = 1 << 20) -> bytes:
            # pread, not the map: pages read here would otherwise stay in our resident size
            n = min(size, end - pos[0])
            if n <= 0:
                return b""
            data = os.pread(fd, n, pos[0])
            pos[0] += len(data)
            return data

        return read

    def close(self) -> None:
        if getattr(self, "_map", None) is not None:
            try:
                self._map.close()
            except BufferError:
                pass  # a view is still alive; the map goes when it does
            self._map = None  # type: ignore[assignment]
        self._file.close()


class FolderContainer(Container):
    """A folder on disk (an OCI image layout): each name is a file below the root."""

    random_access = True

    def __init__(self, path: str) -> None:
        self.path = path
        self._root = os.path.abspath(path)

    def _file(self, name: str) -> str:
        name = clean_name(name)
        full = os.path.join(self._root, name)
        # Never read outside the folder, even through a symlink planted in it.
        if os.path.commonpath([os.path.realpath(full), os.path.realpath(self._root)]) != os.path.realpath(self._root):
            raise SourceError(self.path, f"{name} points outside the folder")
        return full

    def names(self) -> set[str]:
        found = set()
        for top, _dirs, files in os.walk(self._root):
            rel = os.path.relpath(top, self._root)
            for f in files:
                found.add(clean_name(f if rel == "." else f"{rel}/{f}"))
        return found

    def has(self, name: str) -> bool:
        try:
            return os.path.exists(self._file(name))
        except SourceError:
            return False

    def read_document(self, name: str) -> bytes:
        full = self._regular(name)
        try:
            if os.path.getsize(full) > MAX_DOCUMENT:
                raise SourceError(self.path, f"{name} is too large for a JSON document")
            with open(full, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise SourceError(self.path, f"{name} is missing from the folder") from None
        except OSError as exc:
            raise SourceError(self.path, f"cannot read {name}: {exc.strerror}") from None

    def size(self, name: str) -> int:
        try:
            return os.path.getsize(self._regular(name))
        except OSError:
            raise SourceError(self.path, f"{name} is missing from the folder") from None

    def _regular(self, name: str) -> str:
        """The file for a name, refusing anything but a regular file (a FIFO would hang us)."""
        full = self._file(name)
        try:
            st = os.stat(full)
        except FileNotFoundError:
            raise SourceError(self.path, f"{name} is missing from the folder") from None
        except OSError as exc:
            raise SourceError(self.path, f"cannot read {name}: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise SourceError(self.path, f"{name} is not a regular file")
        return full

    def scan_layer(self, name: str, monitor: Monitor) -> LayerScan:
        return scan_file(self.path, self._regular(name), name, monitor)

    def raw_reader(self, name: str, start: int) -> Callable[[int], bytes]:
        try:
            f = open(self._regular(name), "rb")
            f.seek(start)
        except OSError as exc:
            raise SourceError(self.path, f"cannot read {name}: {exc.strerror}") from None
        return f.read  # the file closes when the reader is dropped


class StreamContainer(Container):
    """A compressed tar (``docker save | gzip``): read once, indexing every layer on the way.

    The JSON that names the layers may come last in the stream, so every blob that looks
    like a layer is indexed as it passes, and the format reader picks the ones it needs.
    """

    def __init__(self, path: str, kind: str, monitor: Monitor, opener: Callable[[], Callable[[int], bytes]] | None = None,
                 what: str = "") -> None:
        self.path = path
        self.compression = kind
        # A fresh reader of the (still compressed) stream each time: the file, or a new
        # request to an engine when the stream comes from one.
        self._opener = opener or (lambda: open(path, "rb").read)
        self._docs: dict[str, bytes] = {}
        self._kept = 0  # bytes of documents held
        self._layers: dict[str, LayerScan] = {}
        self._sizes: dict[str, int] = {}
        self._links: dict[str, tuple[str, str]] = {}
        self._broken: dict[str, Exception] = {}
        what = what or f"{kind}-compressed archive"
        try:
            outer = HashingReader(self._opener(), hash=False)
            inner = HashingReader(compression.open_reader(kind, outer.read), hash=False,
                                  guard=compression.bomb_guard(outer, "the archive") if kind != compression.NONE else None)
            self._walk(inner.read, monitor, outer)
        except BombError as exc:
            raise SourceError(path, str(exc), exc.hint) from None
        except (TarFormatError, DecompressError) as exc:
            raise SourceError(path, f"broken {what}: {exc}", "the file may be truncated or corrupt") from None
        except OSError as exc:
            raise SourceError(path, f"reading the {what} failed: {exc}") from None

    def _walk(self, read: Callable[[int], bytes], monitor: Monitor, outer: HashingReader) -> None:
        for member, data in scan_stream_with_data(read):
            monitor.tick(outer.count)
            name = clean_name(member.name)
            if member.type in "12":
                self._links[name] = (member.type, member.linkname)
                continue
            if member.type not in "07":
                continue
            self._sizes[name] = member.size
            head = data(BLOCK)
            kind = compression.sniff(head)
            if kind != compression.NONE or looks_like_tar(head):
                try:
                    self._layers[name] = self._scan_member(kind, head, data, member.size, name, monitor)
                except (TarFormatError, DecompressError) as exc:
                    # Maybe not a layer at all (a compressed SBOM): fail only if it is asked for.
                    self._broken[name] = exc.with_traceback(None)
            elif member.size == 0 or (member.size <= STREAM_DOCUMENT and head.lstrip()[:1] in (b"{", b"[")
                                      and self._kept + member.size <= STREAM_DOCUMENTS):
                # only what can be a JSON document is kept in memory: a stream is read once,
                # and 80 other members of 60 MiB each took 4.9 GB
                self._docs[name] = head + _read_all(data)
                self._kept += member.size

    def _scan_member(self, kind: str, head: bytes, data: Callable[[int], bytes], size: int, name: str, monitor: Monitor) -> LayerScan:
        """Index one layer as it streams past."""
        reader = _Prefixed(head, data)
        blob = HashingReader(reader.read)
        if kind == compression.NONE:
            flagged: dict[int, bytes] = {}
            kept: dict[int, bytes] = {}
            members = list(scan_stream(blob.read, hash_files=True, sniff=SECRET_CONTENT, flagged=flagged,
                                       keep=is_package_file, kept=kept))
            blob.drain()
            return LayerScan(members, kind, size, blob_digest=blob.digest(), tar_size=size, flagged=flagged, kept=kept)
        return _scan_compressed(kind, blob, size, name, monitor)

    def names(self) -> set[str]:
        return set(self._sizes)

    def resolve(self, name: str) -> str:
        name = clean_name(name)
        for _ in range(40):
            link = self._links.get(name)
            if link is None:
                return name
            kind, target = link
            base = posixpath.dirname(name) if kind == "2" else ""
            name = clean_name(posixpath.join(base, target))
        raise SourceError(self.path, f"too many levels of links at {name}")

    def read_document(self, name: str) -> bytes:
        real = self.resolve(name)
        if real in self._docs:
            return self._docs[real]
        raise SourceError(self.path, f"{name} is missing from the archive")

    def size(self, name: str) -> int:
        real = self.resolve(name)
        if real not in self._sizes:
            raise SourceError(self.path, f"{name} is missing from the archive")
        return self._sizes[real]

    def raw_reader(self, name: str, start: int) -> Callable[[int], bytes]:
        # No random access into a compressed archive: stream it again to the member.
        return _stream_member(self.path, self._opener, self.compression, self.resolve(name), start)

    def scan_layer(self, name: str, monitor: Monitor) -> LayerScan:
        real = self.resolve(name)
        if real in self._layers:
            return self._layers[real]
        if real in self._broken:
            raise scan_layer_errors(self.path, name, self._broken[real])
        if self._docs.get(real) == b"":
            return LayerScan([], compression.NONE, 0, warnings=[f"layer blob {name} is empty (0 bytes); read as an empty layer"])
        if real in self._docs:
            raise SourceError(self.path, f"layer blob {name} is not a tar archive")
        raise SourceError(self.path, f"layer blob {name} is missing from the archive")


def _stream_member(path: str, opener: Callable[[], Callable[[int], bytes]], kind: str, name: str, start: int) -> Callable[[int], bytes]:
    """Read an outer stream again up to one member; a reader of its data from ``start``."""
    walker = scan_stream_with_data(compression.open_reader(kind, opener()))
    for member, data in walker:
        if clean_name(member.name) == name and member.type in "07":
            compression.skip(data, start)

            def read(size: int = 1 << 20, _keep=walker) -> bytes:
                return data(size)

            return read
    raise SourceError(path, f"{name} is missing from the archive", "it may have changed since it was opened")


class _Prefixed:
    """A reader that first returns bytes already peeked, then the rest of the stream."""

    def __init__(self, head: bytes, read: Callable[[int], bytes]) -> None:
        self._head = head
        self._read = read

    def read(self, size: int = 1 << 20) -> bytes:
        if self._head:
            out, self._head = self._head, b""
            return out
        return self._read(size)


def _read_all(read: Callable[[int], bytes]) -> bytes:
    """Everything a reader has left."""
    parts = []
    while chunk := read(1 << 20):
        parts.append(chunk)
    return b"".join(parts)
