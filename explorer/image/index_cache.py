"""The index cache: a loaded image saved compactly, so reopening it is instant.

One file per (source, image), named by a key made of the source's real path, size,
modification time and inode (a changed archive gets a new key, so it is never served
stale) and the format version. Each file carries a checksum of its payload: a corrupt,
truncated or old-version file is detected, removed and rebuilt, never trusted.

A file is a body of chunks (one per folder, the path table, the columns any layer's folder
sizes are added up from, a layer's changes in parts, the wasted files), then a head (the
image without its files, the first screen's folder sizes, and where each chunk lies) and a
trailer that says where the head starts and where the two parts hashed on their own end
(below): reopening decodes the head only, and each folder
when it is first looked at. The head comes last so that a child process can
write the folders' chunks while its parent works out what the head says (``FilesElsewhere``;
on a big image the parent then writes the last folders the child has not reached); the
checksum is over the digests of those two parts (the second empty when the child wrote them
all) and the rest.

A folder's chunk holds its names and, for each, its entry as a tuple (the path left out,
extended attributes as pairs) or its versions as one flat tuple (layer, change, entry,
...): tuples of atomic values, which the window's cycle collector stops tracking once they
are decoded (``explorer.tree.index.several`` tells the two apart).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import marshal
import mmap
import multiprocessing
import os
import struct
import tempfile
import threading
import time
import uuid
from itertools import accumulate
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from explorer.formats.cache import cache_dir, keep_under, left_behind, remove
from explorer.formats.container import LayerScan
from explorer.image.loader import Image
from explorer.image.parallel import spare_core, stop
from explorer.model.values import HistoryEntry, ImageRef, LayerInfo
from explorer.formats.source import REGISTRY_SCHEMES, Source
from explorer.formats.spool import kept_file
from explorer.model.packages import InstalledPackage, LayerPackages, Package, PackageChange, PackageReport
from explorer.tree.advice import Advice, Secret
from explorer.tree.efficiency import Efficiency
from explorer.tree.index import LayerStats, LayerTree
from explorer.tree.columns import ColumnWriter
from explorer.tree.lazy import Chunks, LazyChanges, LazyKids, LazyRecords, LazyVersions
from explorer.tree.pathtable import PART_PATHS, MappedPages, Part, PathTable, encode_parts
from explorer.tree.views import MERGED, FolderSizes, TreeView
from explorer.tree.waste import Waste, WastedFile

VERSION = 23
CHANGES_PART = 32768  # changes a chunk: a few milliseconds to decode
MAGIC = b"layer-explorer index\n"
START = len(MAGIC) + 32  # where the body starts: after the magic and the checksum
DEFAULT_MAX = 2 << 30
_new = tuple.__new__


def enabled() -> bool:
    """Off when ``LAYER_EXPLORER_NO_INDEX_CACHE`` is set (the CLI's ``--no-cache``, the window's setting)."""
    return not os.environ.get("LAYER_EXPLORER_NO_INDEX_CACHE")


def folder() -> str:
    """Where the indexes are kept."""
    return os.path.join(cache_dir(), "index")


def key_for(source: Source, ref: ImageRef) -> str | None:
    """The cache key of an image, or None when its source cannot be keyed (a stream read once)."""
    path = source.info.path
    if kept_file(getattr(source, "container", None)) and ref.config_digest:
        # An engine's image, kept in a file: its ID is the digest of its config, which names
        # every layer's content; the blobs' names say where the copy keeps them.
        ident: list[Any] = ["engine", ref.config_digest, [layer.blob for layer in getattr(ref.locator, "layers", ())]]
    elif "://" in path:
        if not path.startswith(REGISTRY_SCHEMES) or not ref.manifest_digest:
            return None
        ident = [path.split("://", 1)[1].split("/", 1)[0], ref.manifest_digest]  # content-addressed
    else:
        try:
            folder = os.path.isdir(path)
            target = os.path.join(path, "index.json") if folder else path
            st = os.stat(target)
            # ctime too: any write changes it, and no one can set it back as mtime can be
            ident = [os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
            if folder:  # a layout folder's blobs can be rewritten one by one, index.json untouched
                for layer in getattr(ref.locator, "layers", ()):
                    blob = os.stat(os.path.join(path, layer.blob))
                    ident.append([layer.blob, blob.st_size, blob.st_mtime_ns, blob.st_ctime_ns, blob.st_ino])
        except OSError:
            return None
    raw = json.dumps([VERSION, ident, ref.index, ref.config_digest, ref.platform])
    return hashlib.sha256(raw.encode()).hexdigest()


def load(source: Source, ref: ImageRef) -> Image | None:
    """The cached image, or None (missing, changed, corrupt or from another version).

    The file is mapped, checked whole, and only its head decoded here; the folders are
    decoded as they are looked at (``explorer.tree.lazy``).
    """
    key = key_for(source, ref) if enabled() else None
    if key is None:
        return None
    path = os.path.join(folder(), key)
    image = open_index(path, key, source, ref)
    if image is None:
        remove(path)  # damaged or stale: rebuild rather than trust
    else:
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: evicted last
    return image


def open_index(path: str, key: str, source: Source, ref: ImageRef, written: bytes | None = None) -> Image | None:
    """Map the index file at ``path`` and decode its head: None when it is missing, damaged,
    of another version, or made for another ``key`` (the source changed since). ``written``:
    the checksum the process that has just written the file read back from it (``checksum``);
    a file that still holds it is not hashed again (90 ms at a million entries)."""
    try:
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            data = memoryview(mapped)
    except (OSError, ValueError):  # ValueError: empty, cannot be mapped
        return None
    start = START
    end = len(data) - TRAILER.size  # where the head ends
    if end < start or data[: len(MAGIC)] != MAGIC:
        return None
    head_size, mid, split = TRAILER.unpack_from(data, end)
    if not start <= mid <= split <= end - head_size:
        return None
    if written is None or written != data[len(MAGIC):start]:
        whole = hashlib.sha256(_digest(mapped, data, start, mid).digest() + _digest(mapped, data, mid, split).digest())
        whole.update(data[split:])
        if whole.digest() != data[len(MAGIC):start]:
            return None
    try:
        head = marshal.loads(data[end - head_size:end])
        if head["version"] != VERSION or head["key"] != key:
            return None
        pages = MappedPages(mapped, start) if MappedPages.possible(mapped) else None
        return _image(head, data[start:end - head_size], source, ref, pages)
    except (ValueError, KeyError, TypeError, IndexError, EOFError, struct.error):
        return None


_WINDOW = 16 << 20  # bytes hashed at a time (a multiple of any page size)


def _digest(mapped: mmap.mmap, data: memoryview, start: int, end: int) -> Any:
    """The SHA-256 of ``data[start:end]``, a window at a time, each window's pages let go of
    once hashed: they stay in the page cache, but no longer count as this process's memory
    (a reopened million-entry index had added its 140 MB to the window's)."""
    digest = hashlib.sha256()
    release = getattr(mapped, "madvise", None) if hasattr(mmap, "MADV_DONTNEED") else None
    for at in range(start, end, _WINDOW):
        digest.update(data[at:min(at + _WINDOW, end)])
        if release is not None:
            aligned = at - at % mmap.PAGESIZE
            with contextlib.suppress(OSError, ValueError):
                release(mmap.MADV_DONTNEED, aligned, min(at + _WINDOW, end) - aligned)
    return digest


def checksum(path: str) -> bytes | None:
    """The checksum an index file holds (not checked here), for ``open_index``'s ``written``."""
    try:
        with open(path, "rb") as f:
            f.seek(len(MAGIC))
            return f.read(32)
    except OSError:
        return None


def save(source: Source, image: Image, where: str | None = None, key: str | None = None) -> str | None:
    """Store a loaded image in ``where`` (by default the cache's folder) under ``key`` (by
    default the image's cache key); the file's path, or None when nothing was written (quietly
    skipped when the folder cannot be written)."""
    if where is None:
        where = folder() if enabled() else None
    if key is None and where is not None:
        key = key_for(source, image.ref)
    if key is None or where is None:
        return None
    tmp = ""
    try:
        os.makedirs(where, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=where, prefix=_partial())
        with os.fdopen(fd, "wb") as f:
            sink = _Sink(f)
            body = _encode_files(image.tree, _first_view(image), image.file_count, image.file_bytes, sink.put)
            end = START + body.size
            _finish(f, sink.digest.digest() + NOTHING, _tail(image, key, body, _waste_chunk(image), (end, end)))
        return _keep(tmp, where, key)
    except (OSError, ValueError):
        return None
    finally:  # failed half way: no partial file left
        if tmp and os.path.exists(tmp):
            remove(tmp)


def _keep(tmp: str, where: str, key: str) -> str:
    """Give a written file its name (complete or absent, never half-written), keeping the
    cache under its limit; the file's path."""
    written = os.path.join(where, key)
    os.replace(tmp, written)
    evict(where=where, spare=written)
    return written


class _Sink:
    """Where the files' chunks go: written after the file's start (its magic and room for its
    checksum first), and hashed on the way."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.digest = hashlib.sha256()
        f.write(MAGIC + bytes(32))  # the checksum, once the rest is written

    def put(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.f.write(chunk)


NOTHING = hashlib.sha256().digest()  # the digest of a second part that is empty


def _finish(f: Any, digests: bytes, tail: bytes) -> None:
    """Write what follows the files, then the checksum: over the digests of the two parts of
    the files and the rest (so they and the rest can be written by several processes)."""
    f.write(tail)
    f.seek(len(MAGIC))
    whole = hashlib.sha256(digests)
    whole.update(tail)
    f.write(whole.digest())


def _copy(source: int, target: int, length: int) -> None:
    """The first ``length`` bytes of the file ``source`` into ``target`` (file descriptors),
    by the kernel where it can (no trip through this process's memory), else read and written."""
    at = 0
    try:
        while at < length:
            copied = os.copy_file_range(source, target, length - at, at, at)
            if not copied:
                break
            at += copied
    except (AttributeError, OSError):  # (no such call, or not between these files)
        pass
    while at < length:
        data = os.pread(source, min(_WINDOW, length - at), at)
        if not data:
            raise OSError("the index being copied is shorter than its head says")
        os.pwrite(target, data, at)
        at += len(data)


PARTIAL = ".partial-"


def _partial() -> str:
    """The start of a file being written: with the writer's process id, so a sweep can tell
    one being written from one a killed process left (``evict``)."""
    return f"{PARTIAL}{os.getpid()}-"


def shown_name(where: str) -> str:
    """A new name in ``where`` for the files' index a loading process writes for this process
    to show before the accounting (``FilesElsewhere.shown``): this process's, so a sweep leaves
    it while this process lives, though its writer has ended."""
    return os.path.join(where, f"{_partial()}shown-{uuid.uuid4().hex}")


SHARE_AT = 100_000  # paths: from here on, the parent takes its share of the folders the child has not reached
BLOCK = 0.2  # of the paths between the child and the parent's last block: the next block the parent takes
LEAST = 10_000  # paths between them: fewer, and the child writes them (each block costs a little to add up)
LOCKED = 5.0  # seconds the parent waits for the lock it shares with the child


class FilesElsewhere:
    """The files' part of an image's index, encoded and written by a forked child while this
    process works out the rest (the accounting, dive's numbers); ``finish`` then adds the
    rest and names the file. For a process with no thread but its main one.

    On a big image the child took longer than the accounting beside it, a core idle meanwhile:
    so ``finish`` writes every layer's changes, then takes the last folders the child has not
    reached, a block at a time from the end (``BLOCK`` of the paths between them), until it
    meets the child, which writes the others. ``shown``, called before the accounting, does
    that at once and finishes an index of the files alone; ``finish`` then copies its files.
    Another child would share no work with this process's: both would copy most of the pages
    they share with it as they read the entries."""

    def __init__(self, tree: LayerTree, where: str) -> None:
        self.tree = tree
        self.proc: Any = None
        self.tmp = ""
        self._said: Any = None
        self.where = where
        self._claim: Any = None  # (lock, [folders the child has started, folders it may start])
        self.taken: int | None = None  # the first folder this process wrote, if it took any
        self.blocks: list[str] = []  # the files of what this process wrote of them
        self._stage: tuple[int, bytes, Body, tuple[int, int]] | None = None  # what ``shown`` wrote: its file, held open, and its layout
        if threading.active_count() > 1:
            return  # a fork must not copy other threads (a scan pool's): the caller saves it itself
        try:
            os.makedirs(where, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(dir=where, prefix=_partial())
        except OSError:
            return
        try:
            context = multiprocessing.get_context("fork")
            self._said, out = context.Pipe(duplex=False)
            if len(tree.versions) >= SHARE_AT and spare_core():
                self._claim = (context.Lock(), context.RawArray("q", [0, len(tree.kids)]))
        except (OSError, ValueError):  # no descriptors, no fork: the caller saves it itself
            os.close(fd)
            self.cancel()
            return
        try:
            self.proc = context.Process(target=_files_child, args=(tree, self._claim, fd, out, self._said),
                                        name="layer-explorer index", daemon=True)
            self.proc.start()
        except BaseException as exc:
            self.proc = None
            self.cancel()
            if not isinstance(exc, (OSError, ValueError, RuntimeError)):
                raise
        finally:
            out.close()
            os.close(fd)  # the child has its own

    def shown(self, image: Image, key: str, name: str) -> str | None:
        """The index of ``image`` as it is before its accounting (``analysed`` False), complete
        but not named as an index: at ``name`` (``shown_name``, chosen by the caller), for the
        caller to map and show the files from while the rest is worked out, and then remove;
        ``finish`` then writes the whole index from it (its files copied, not written again).
        None when the child could not write its part (``finish`` then says so)."""
        if self.proc is None:
            return None
        try:
            stage = self._written(image, key, (b"", 0, 0))
        except (OSError, ValueError, TypeError, IndexError):
            stage = None
        if stage is None:
            self.cancel()
            return None
        try:  # (held open: ``finish`` copies from it)
            self._stage = (os.open(self.tmp, os.O_RDONLY), *stage)
            # From here on the file is the caller's, under its name: removed here once the
            # whole index was written, or swept as this process's once it had ended, it could
            # go before a busy caller had opened it (a small image's accounting takes
            # milliseconds), and the files were then not shown early.
            os.replace(self.tmp, name)
        except OSError:
            self.cancel()
            return None
        self.tmp = ""
        return name

    def finish(self, image: Image, key: str) -> str | None:
        """The index file, complete and named; None when the child could not write its part."""
        if self._stage is not None:
            return self._whole(image, key)
        if self.proc is None:
            self.cancel()
            return None
        written = None
        try:
            if self._written(image, key, _waste_chunk(image)) is None:  # (the wasted files' chunk made while the child still writes)
                return None
            written, self.tmp = _keep(self.tmp, self.where, key), ""
            return written
        except (OSError, ValueError, TypeError, IndexError):
            return None
        finally:
            self._drop_blocks()
            if written is None:
                self.cancel()
            # else the child has said all and ends by itself: the caller's ``cancel`` reaps it
            # once it has passed the index on (giving back its pages took 0.1 to 0.2 s)

    def _written(self, image: Image, key: str, chunk: tuple[bytes, int, int]) -> tuple[bytes, Body, tuple[int, int]] | None:
        """The child's part and this process's made one file, ``image``'s head and ``chunk``
        (the wasted files) after them: the two parts' digests, the body, and where the two
        parts end; None when the child could not write its part."""
        blocks = self._share()
        self.taken = blocks[0][0] if blocks else None
        try:
            said = marshal.loads(self._said.recv_bytes())
        except (EOFError, OSError, ValueError, TypeError):
            return None  # (``cancel`` stops the child: it may be blocked writing)
        whole = said[0] == "whole"
        mid = START + said[2]  # where the child's part ends
        if whole == bool(blocks):
            return None
        with open(self.tmp, "r+b") as f:
            if f.seek(0, os.SEEK_END) != mid:
                return None
            if whole:
                digests, body, rest = said[1] + NOTHING, Body(*said[2:]), b""
            else:
                digests, body, rest = _joined(self.tree, said[1], said[2:], blocks, f)
            hashed = (mid, START + body.size - len(rest))
            _finish(f, digests, rest + _tail(image, key, body, chunk, hashed))
        self._drop_blocks()  # (their room given back at once: they are copied in)
        return digests, body, hashed

    def _whole(self, image: Image, key: str) -> str | None:
        """The whole index, named: the files of the one ``shown`` wrote, then ``image``'s
        wasted files and head. None when it could not be written."""
        fd, digests, body, hashed = self._stage  # type: ignore[misc]
        self._stage = None
        end = START + body.size  # where the files end
        written = tmp = ""
        try:
            out, tmp = tempfile.mkstemp(dir=self.where, prefix=_partial())
            with os.fdopen(out, "wb") as f:
                _copy(fd, f.fileno(), end)
                f.seek(end)
                whole = hashlib.sha256(digests)
                for at in range(hashed[1], end, _WINDOW):  # (the rest is hashed with the tail)
                    whole.update(os.pread(fd, min(_WINDOW, end - at), at))
                tail = _tail(image, key, body, _waste_chunk(image), hashed)
                f.write(tail)
                whole.update(tail)
                f.seek(len(MAGIC))
                f.write(whole.digest())
            written, tmp = _keep(tmp, self.where, key), ""
            return written
        except (OSError, ValueError, TypeError, IndexError):
            return None
        finally:
            os.close(fd)
            if tmp:
                remove(tmp)
            if not written:
                self.cancel()

    def _share(self) -> list[tuple[int, tuple, str]]:
        """The blocks of folders this process took from the child and wrote, in their order,
        then every layer's changes (none when it took none): the number of each one's first
        folder, what ``_joined`` takes of it, and the file it is written in (held on disk, not
        in memory: half the index's folders, 70 MB at a million entries)."""
        if self._claim is None:
            return []
        tree = self.tree
        # the changes first, so that the blocks it takes then make up for them
        with self._block() as (f, path):
            changes, size = _encode_changes(tree, f.write, 0)
        nothing = (ColumnWriter(tree.layer_count, tree.links, tree.shared_file).state(), FolderSizes(tree).state())
        last = (len(tree.kids), (size, {}, 0, [], changes, *nothing), path)
        items = list(tree.kids.items())
        before = list(accumulate(map(len, tree.kids.values()), initial=0))  # paths before each folder
        blocks = []
        while self.proc.is_alive() and (taken := self._take(before)) is not None:  # (a child gone says nothing)
            first, end = taken
            with self._block() as (f, path):
                blocks.append((first, _Part(tree, items[first:end], f.write).told(f.write, False), path))
        blocks.reverse()
        return blocks + [last] if blocks else []

    @contextlib.contextmanager
    def _block(self) -> Iterator[tuple[Any, str]]:
        """A new file for a block this process writes (removed once copied into the index, or by ``cancel``)."""
        fd, path = tempfile.mkstemp(dir=self.where, prefix=_partial())
        self.blocks.append(path)
        with os.fdopen(fd, "wb") as f:
            yield f, path

    def _take(self, before: list[int]) -> tuple[int, int] | None:
        """Claim the next block of folders (``BLOCK`` of the paths between the child and this
        process's last block): its first folder and the one after it; None once too few are
        left between them (the child writes those)."""
        lock, claim = self._claim
        if not lock.acquire(timeout=LOCKED):  # (a child killed while it held it)
            return None
        try:
            started, end = claim[0], claim[1]  # (the child has started the folders before ``started``)
            left = before[end] - before[started]
            if left < max(LEAST, 1):
                return None
            at = end - 1
            while at > started + 1 and before[end] - before[at] < left * BLOCK:  # (the child keeps one folder at least)
                at -= 1
            if at <= started:
                return None
            claim[1] = at
        finally:
            lock.release()
        return at, end

    def cancel(self) -> None:
        """Stop the child (killed: once the index is finished, it has said all) and remove its
        file and the blocks' files, if unfinished."""
        proc, self.proc = self.proc, None
        stop(proc, self._said)
        if self._stage is not None:
            os.close(self._stage[0])
            self._stage = None
        if self.tmp:
            remove(self.tmp)
            self.tmp = ""
        self._drop_blocks()

    def _drop_blocks(self) -> None:
        """Remove the files of the blocks this process wrote."""
        for path in self.blocks:
            remove(path)
        self.blocks = []


def _files_child(tree: LayerTree, claim: Any, fd: int, out: Any, said: Any) -> None:
    """In the forked child: write the files' part, then say its digest and layout (``whole``);
    or, when the parent has claimed the last folders (``claim``), the part of those before
    them, then what it gathered of them for the parent (``part``)."""
    said.close()  # the parent's end
    try:
        with os.fdopen(fd, "wb") as f:
            sink = _Sink(f)
            if claim is None:
                told = ("whole", *_encode_files(tree, TreeView(tree, None, MERGED), -1, -1, sink.put))
            else:
                stopped: list[bool] = []
                part = _Part(tree, _unclaimed(tree.kids.items(), claim, stopped), sink.put)
                if stopped:
                    told = ("part", *part.told(sink.put, with_changes=False))  # (the parent writes the changes)
                else:  # none claimed: the whole part, as one writer makes it
                    told = ("whole", *_ended(tree, TreeView(tree, None, MERGED), (-1, -1), part.body(), part.placed,
                                             part.listed, part.sizes, part.columns, sink.put, with_changes=True))
        # (said once the file is closed: the parent checks its size as soon as it hears)
        out.send_bytes(marshal.dumps((told[0], sink.digest.digest(), *told[1:])))
    except BaseException:  # noqa: BLE001 (the parent, told nothing, saves the index itself)
        os._exit(1)


def _unclaimed(items: Iterable[tuple[str, list[str]]], claim: Any, stopped: list[bool]) -> Iterator[tuple[str, list[str]]]:
    """The folders of ``items`` until the first the parent has claimed (then ``stopped`` says so)."""
    lock, shared = claim
    for number, item in enumerate(items):
        with lock:
            if number >= shared[1]:
                stopped.append(True)
                return
            shared[0] = number + 1
        yield item


class _Part:
    """The folders ``items`` names, written by one process (``put``), and what it gathered of
    them: their sizes, their columns, their paths."""

    def __init__(self, tree: LayerTree, items: Iterable[tuple[str, list[str]]], put: Callable[[bytes], None]) -> None:
        self.tree = tree
        self.sizes, self.columns = FolderSizes(tree), ColumnWriter(tree.layer_count, tree.links, tree.shared_file)
        self.listed: list[str] = []  # paths not yet in a part of the path table
        self.table: list[Part] = []
        self.offset, self.placed, self.folders = _encode_folders(tree, items, self.sizes, self.columns, put,
                                                                 self.listed, self.table)

    def body(self) -> Body:
        """Where its folders and the path table's parts so far are."""
        return Body(self.offset, self.folders, {}, [], None, 0, 0, self.table, None)

    def told(self, put: Callable[[bytes], None], with_changes: bool) -> tuple:
        """Its paths' last part of the path table (and ``with_changes``, every layer's changes)
        handed to ``put``, then what ``_joined`` takes of it, as marshal-able values."""
        offset = _put_parts(self.listed, len(self.listed), self.offset, self.table, put)
        changes, offset = _encode_changes(self.tree, put, offset) if with_changes else ([], offset)
        return offset, self.folders, self.placed, self.table, changes, self.columns.state(), self.sizes.state()


def _joined(tree: LayerTree, digest: bytes, child: tuple, blocks: list[tuple[int, tuple, str]],
            f: Any) -> tuple[bytes, Body, bytes]:
    """The child's part (``f``: its file, at its end; ``digest``: its digest) and the blocks
    this process wrote, copied after it and made one: the two parts' digests, the body, and
    what follows them (the rest of the path table, with the strays' paths, and the columns), hashed
    with the tail."""
    theirs = hashlib.sha256()
    for _, (length, *_), path in blocks:
        with open(path, "rb") as block:
            while data := block.read(_WINDOW):
                theirs.update(data)
                f.write(data)
            if block.tell() != length:
                raise OSError("a block of the index is not as long as its writer said")
    folders: dict[str, tuple[int, int, int]] = {}
    table: list[Part] = []
    changes: list[list[tuple[int, int]]] = []
    placed = moved = 0
    sizes, columns = FolderSizes(tree), ColumnWriter(tree.layer_count, tree.links, tree.shared_file)
    for length, held, count, parts, layers, gathered, counted in [child, *(told for _, told, _ in blocks)]:
        folders.update((name, (at + moved, n, alive)) for name, (at, n, alive) in held.items())
        table += [(at + moved, n, k) for at, n, k in parts]
        changes += [[(at + moved, n) for at, n in layer] for layer in layers]
        placed += count
        columns.absorb(gathered)
        sizes.absorb(counted)
        moved += length
    rest: list[bytes] = []
    body = _ended(tree, TreeView(tree, None, MERGED), (-1, -1), Body(moved, folders, {}, changes, None, 0, 0, table, None),
                  placed, [], sizes, columns, rest.append, with_changes=False)
    return digest + theirs.digest(), body, b"".join(rest)


def evict(limit: int | None = None, where: str | None = None, spare: str | None = None) -> None:
    """Keep the index cache under its size limit, least recently used dropped first (never
    ``spare``, the file just written: whoever wrote it is about to open it)."""
    limit = limit if limit is not None else int(os.environ.get("LAYER_EXPLORER_INDEX_CACHE_MAX", DEFAULT_MAX))
    try:
        if spare is not None:
            limit = max(0, limit - os.stat(spare).st_size)
        files = [e for e in os.scandir(where or folder()) if e.is_file() and e.path != spare]
        now = time.time()
        kept = []
        for e in files:
            if e.name.startswith(PARTIAL):  # not an index yet: a loading process's (or a window's, to map)
                if left_behind(e.name, e.stat().st_mtime, now, 3600):  # a save cut off (its writer killed)
                    remove(e.path)
            elif e.name.endswith(".sizes"):  # layers' sizes kept beside an index by earlier versions
                remove(e.path)
            else:
                kept.append(e.path)
        keep_under(kept, limit)
    except OSError:
        pass


def _plain_version(v: Any, path: str) -> Any:
    """A path's versions as marshal-able tuples, without the path itself (the key says it:
    a third less to decode), which ``LayerTree`` puts back when it makes them entries."""
    if type(v) is list:  # (flat: the cycle collector stops tracking a tuple of atomic values, never a list)
        flat: list = []
        for layer, change, e in v:
            flat += (layer, change, None if e is None else _pathless(e, path))
        return tuple(flat)
    return _pathless(v, path)


def _alive(versions: list, layers: int) -> int:
    """The layers a path of several versions is there at, a bit a layer."""
    bits = 0
    for i, (layer, _change, entry) in enumerate(versions):
        if entry is not None:
            until = versions[i + 1][0] if i + 1 < len(versions) else layers
            bits |= ((1 << until) - 1) >> layer << layer
    return bits


def _pathless(e: Any, path: str) -> tuple:
    """A stored entry as the index file holds it: without its path when the key says it, and
    its extended attributes as (name, value) pairs (a tuple holding a dict stays tracked by
    the cycle collector, and so would the mapping of decoded paths it is put in)."""
    plain = (None, *e[1:]) if e[0] == path else tuple(e)
    return plain if plain[10] is None else (*plain[:10], tuple(plain[10].items()), *plain[11:])


class Body(NamedTuple):
    """Where an index's files and changes lie, once written, and what the head says of them."""

    size: int  # bytes of their chunks
    folders: dict[str, tuple[int, int, int]]  # folder -> (offset, length) of its chunk, and the layers it has a child at (bits)
    strays: dict[str, Any]  # paths in the head: the root, and any its folder does not list
    changes: list[list[tuple[int, int]]]  # per layer, its parts
    totals: Any  # the first screen's folder sizes
    file_count: int
    file_bytes: int
    paths: list[Part]  # the path table's parts (``explorer.tree.pathtable``)
    columns: tuple | None  # where the columns lie (``explorer.tree.columns.Layout``), if written


def _first_view(image: Image) -> TreeView:
    """The image's view of its final filesystem, merged (made when it has none)."""
    view = image.first_view
    if view is None or view.layer is not None or view.mode != MERGED:
        view = TreeView(image.tree, None, MERGED)
    return view


def _encode_files(tree: LayerTree, view: TreeView, file_count: int, file_bytes: int,
                  put: Callable[[bytes], None]) -> Body:
    """Every folder's chunk and every layer's changes, handed to ``put`` in order, and where
    each is; the first screen's folder sizes with them (reopening then needs no walk)."""
    # The final view's sizes are counted a folder at a time on the way (the walk visits every
    # path anyway: a walk of their own took a fifth of the time here)
    sizes = FolderSizes(tree) if view.needs_totals() else None
    if sizes is None:
        view.totals()
    listed: list[str] = []  # paths not yet in a part of the path table
    table: list[Part] = []
    columns = ColumnWriter(tree.layer_count, tree.links, tree.shared_file)
    offset, placed, folders = _encode_folders(tree, tree.kids.items(), sizes, columns, put, listed, table)
    return _ended(tree, view, (file_count, file_bytes), Body(offset, folders, {}, [], None, 0, 0, table, None),
                  placed, listed, sizes, columns, put, with_changes=True)


def _encode_folders(tree: LayerTree, items: Iterable[tuple[str, list[str]]], sizes: FolderSizes | None,
                    columns: ColumnWriter, put: Callable[[bytes], None], listed: list[str],
                    table: list[Part]) -> tuple[int, int, dict[str, tuple[int, int, int]]]:
    """The chunks of the folders ``items`` names (with their children), handed to ``put``, at
    offsets from 0 (a part's own); their paths into ``listed``, and the path table's parts it
    fills into ``table``. The offset after them, how many paths they hold, and where each
    chunk is."""
    versions = tree.versions
    offset = 0
    folders: dict[str, tuple[int, int, int]] = {}
    placed = 0
    layers = tree.layer_count
    every_layer = (1 << layers) - 1
    for name, children in items:
        prefix = name if name == "/" else name + "/"
        values = []
        add = values.append
        list_path = listed.append
        first = layers  # the first layer a child one layer wrote is there from
        alive = 0  # the layers the others are there at (a bit a layer)
        for child in children:
            path = prefix + child
            v = versions.get(path)
            if v is None:
                add(None)
            elif type(v) is list:
                list_path(path)
                add(_plain_version(v, path))
                alive |= _alive(v, layers)
            else:  # ``_pathless``, inline: most paths, a million calls on a big image
                list_path(path)
                add(((None, *v[1:]) if v[0] == path else tuple(v)) if v[10] is None else _pathless(v, path))
                if v[8] < first:
                    first = v[8]
        if sizes is not None:
            sizes.add(name, prefix, children, values)
        placed += len(values) - values.count(None)
        order = columns.folder(name, prefix, children, values)
        if order is not None:  # (the path table lists the folder's paths in the columns' order)
            del listed[len(listed) - len(order):]
            listed += [prefix + children[i] for i in order]
        chunk = marshal.dumps((tuple(children), values))  # (tuples: out of the cycle collector's sight once decoded)
        folders[name] = (offset, len(chunk), alive | (every_layer >> first << first))
        put(chunk)
        offset += len(chunk)
        if len(listed) >= PART_PATHS:
            offset = _put_parts(listed, len(listed) - len(listed) % PART_PATHS, offset, table, put)
    return offset, placed, folders


def _ended(tree: LayerTree, view: TreeView, files: tuple[int, int], body: Body, placed: int, listed: list[str],
           sizes: FolderSizes | None, columns: ColumnWriter, put: Callable[[bytes], None], with_changes: bool) -> Body:
    """``body``, whose folders are written (``placed`` paths in them; ``listed``: those of its
    paths not in the path table yet), completed: the paths no folder lists, the rest of the
    path table, the columns, the sizes, and (``with_changes``) every layer's changes, handed
    to ``put`` from ``body.size`` on. ``files``: the count and bytes of regular files, if known
    (else -1, -1: counted)."""
    versions = tree.versions
    # The root, and any path its folder does not list, travel in the head. Applying layers
    # lists every other path in its folder, so they are found by counting, not by a set of
    # every path (100 MB at a million); the search below is for an index that breaks that.
    strays = {"/": _plain_version(versions["/"], "/")} if "/" in versions else {}
    if placed + len(strays) != len(versions):
        listed_anywhere = {(n if n == "/" else n + "/") + c for n, children in tree.kids.items() for c in children}
        for path, v in versions.items():
            if path not in listed_anywhere:
                strays[path] = _plain_version(v, path)
        if sizes is not None:  # (an index that breaks the rule: counted as any view counts)
            view.totals()
            sizes = None
    table = list(body.paths)
    listed += (path for path in strays if path != "/")
    offset = _put_parts(listed, len(listed), body.size, table, put)
    layout, offset = columns.finish(put, offset, START)
    totals = sizes.give(view) if sizes is not None else view.totals()
    file_count, file_bytes = files
    if file_count < 0 or file_bytes < 0:
        file_count, file_bytes = view.entries, view.file_bytes
    changes = body.changes
    if with_changes:
        changes, offset = _encode_changes(tree, put, offset)
    return Body(offset, body.folders, strays, changes, totals, file_count, file_bytes, table,
                tuple(layout) if layout is not None else None)


def _encode_changes(tree: LayerTree, put: Callable[[bytes], None], offset: int) -> tuple[list[list[tuple[int, int]]], int]:
    """Every layer's changes, in parts, handed to ``put`` from ``offset`` on: where each part
    is, and the offset after them."""
    changes = []
    for layer in tree.changes:
        parts = []  # a layer's changes in parts: decoding 300,000 at once held the window 45 ms
        for start in range(0, max(len(layer), 1), CHANGES_PART):
            end = start + CHANGES_PART
            chunk = marshal.dumps((layer.paths[start:end], bytes(layer.kinds[start:end]), bytes(layer.folders[start:end])))
            parts.append((offset, len(chunk)))
            put(chunk)
            offset += len(chunk)
        changes.append(parts)
    return changes, offset


def _put_parts(listed: list[str], upto: int, offset: int, table: list[Part], put: Callable[[bytes], None]) -> int:
    """Hand the first ``upto`` paths of ``listed`` to ``put`` as parts of the path table
    (taking them off the list); the offset after them."""
    for start in range(0, upto, PART_PATHS):
        for chunk, count in encode_parts(listed[start:min(start + PART_PATHS, upto)]):
            table.append((offset, len(chunk), count))
            put(chunk)
            offset += len(chunk)
    del listed[:upto]
    return offset


TRAILER = struct.Struct("<QQQ")  # the head's size, and where the two parts hashed on their own end


WASTE_FIRST = 1000  # wasted files (the biggest) decoded on their own: the Insights tab lists 500


def _waste_chunk(image: Image) -> tuple[bytes, int, int]:
    """The wasted files' chunk, which follows the files (empty without waste), with the
    length of its first part and how many it holds: it needs nothing of the files, so it can
    be made while they are still being written."""
    if image.waste is None:
        return b"", 0, 0
    # hundreds of thousands on a big image, and only the Insights tab reads them, its table
    # the first 500 (all of them at once, 213,000 records took 0.38 s); marshal takes plain
    # tuples only
    records = list(map(tuple, image.waste.files))  # (version 2 was quicker, but wrote each kind's text again for each)
    first = marshal.dumps(records[:WASTE_FIRST])
    return first + marshal.dumps(records[WASTE_FIRST:]), len(first), min(len(records), WASTE_FIRST)


def _tail(image: Image, key: str, body: Body, waste: tuple[bytes, int, int], hashed: tuple[int, int]) -> bytes:
    """What follows the files: the wasted files' chunk (``_waste_chunk``), the head, and the
    trailer (``hashed``: where in the file the two parts hashed on their own end)."""
    chunk, first, held = waste
    wasted = (body.size, len(chunk), len(image.waste.files), first, held) if image.waste is not None else (0, 0, 0, 0, 0)
    head = marshal.dumps(_head(image, key, body, wasted))
    return chunk + head + TRAILER.pack(len(head), *hashed)


def _head(image: Image, key: str, body: Body, wasted: tuple[int, int, int, int, int]) -> dict[str, Any]:
    """Everything but the files, and where the body keeps them."""
    tree, eff, waste = image.tree, image.efficiency, image.waste
    return {
        "version": VERSION,
        "key": key,
        "tree": (tree.layer_count, len(tree.versions), body.strays, body.folders, body.changes,
                 [tuple(s) for s in tree.stats], tree.warnings, tree.unsafe, tree.hardlink_data, tree.links),
        "image": (image.tags, image.config_digest, image.platform, image.created, image.config,
                  [_fields(l) for l in image.layers], [_fields(h) for h in image.history], image.warnings,
                  [(s.compression, s.blob_size, s.blob_digest, s.tar_size, s.warnings, s.flagged) for s in image.scans],
                  image.blobs, body.file_count, body.file_bytes),
        "efficiency": (eff.score, eff.wasted_bytes, eff.user_wasted_percent, marshal.dumps(eff.files)) if eff else None,
        "waste": (waste.bytes, wasted, waste.per_layer, waste.merge_savings) if waste else None,
        "advice": [_fields(a) for a in image.advice],
        "secrets": [_fields(s) for s in image.secrets],
        "packages": _plain_packages(image.packages),
        "totals": body.totals,
        "paths": body.paths,
        "columns": body.columns,
    }


def _plain_packages(report: PackageReport | None) -> Any:
    """The package report as marshal-able tuples."""
    if report is None:
        return None
    pkg = _fields

    def changes(items: tuple[PackageChange, ...]) -> list[tuple]:
        return [(pkg(c.package), c.old) for c in items]

    return ([(pkg(i.package), i.layer, i.files, i.size) for i in report.installed],
            [(changes(l.added), changes(l.removed), changes(l.changed), l.owned_bytes) for l in report.layers],
            list(report.warnings), report.owner)


def _packages(plain: Any) -> PackageReport | None:
    """``_plain_packages`` undone."""
    if plain is None:
        return None
    installed, layers, warnings, owner = plain

    def changes(items: list[tuple]) -> tuple[PackageChange, ...]:
        return tuple(PackageChange(Package(*p), old) for p, old in items)

    return PackageReport(tuple(InstalledPackage(Package(*p), *rest) for p, *rest in installed),
                         tuple(LayerPackages(changes(a), changes(r), changes(c), o) for a, r, c, o in layers),
                         tuple(warnings), owner)


def _dive_files(encoded: bytes) -> list[dict]:
    """dive's wasteful files as the head keeps them (encoded apart, decoded when asked for)."""
    try:
        files = marshal.loads(encoded)
    except (EOFError, ValueError, TypeError):
        return []
    return files if type(files) is list and all(type(f) is dict for f in files) else []


def _fields(obj: Any) -> tuple:
    from dataclasses import fields

    return tuple(getattr(obj, f.name) for f in fields(obj))


def _image(data: dict[str, Any], body: memoryview, source: Source, ref: ImageRef,
           pages: MappedPages | None = None) -> Image:
    """Rebuild an image from its head; its folders stay in ``body`` until looked at."""
    count, paths, strays, folders, changes, stats, warnings, unsafe, hardlink_data, links = data["tree"]
    wasted = data["waste"][1] if data["waste"] else (0, 0, 0, 0, 0)
    if not wasted[3] <= wasted[1] or not wasted[4] <= wasted[2]:
        raise ValueError("the wasted files' first part is bigger than them all")
    if not all(type(span) is tuple and len(span) == 3 and all(type(n) is int and n >= 0 for n in span) for span in folders.values()):
        raise ValueError("a folder's place or layers are not numbers")
    for offset, length, *_ in list(folders.values()) + [span for parts in changes for span in parts] + [wasted[:2]]:
        if offset < 0 or offset + length > len(body):
            raise ValueError("a chunk lies outside the file")
    tree = LayerTree(count)
    chunks = Chunks(body, folders, paths, strays, PathTable(body, data["paths"], pages), data["columns"], pages)
    tree.versions, tree.kids, tree.changes = LazyVersions(chunks), LazyKids(chunks), LazyChanges(body, changes, pages)  # type: ignore[assignment]
    tree._plain = True  # entries become Entry tuples when first used: the window shows at once
    tree.stats = [_new(LayerStats, s) for s in stats]
    tree.warnings, tree.unsafe, tree.hardlink_data, tree.links = warnings, unsafe, hardlink_data, links
    _tags, digest, platform, created, config, layers, history, warns, scans, blobs, count_files, file_bytes = data["image"]
    eff = data["efficiency"]
    if eff and (len(eff) != 4 or type(eff[3]) is not bytes):
        raise ValueError("dive's numbers are not as written")
    waste = data["waste"]
    view = TreeView(tree, None, MERGED)
    view.use_totals(data["totals"])
    return Image(  # the tags the source gives now: one image saved under another name is still the same index
        source=source.info, ref=ref, tags=ref.tags, config_digest=digest, platform=platform, created=created, config=config,
        layers=[LayerInfo(*l) for l in layers], history=[HistoryEntry(*h) for h in history], tree=tree, warnings=warns,
        scans=[LayerScan([], c, size, blob_digest=bd, tar_size=ts, warnings=w, flagged=fl) for c, size, bd, ts, w, fl in scans],
        blobs=blobs, file_count=count_files, file_bytes=file_bytes,
        efficiency=Efficiency(*eff[:3], functools.partial(_dive_files, eff[3])) if eff else None,
        waste=Waste(waste[0], LazyRecords(body, wasted[:2], wasted[2], WastedFile, wasted[3:], pages), waste[2], waste[3])  # type: ignore[arg-type]
        if waste else None,
        advice=[Advice(*a) for a in data["advice"]],
        secrets=[Secret(*s) for s in data["secrets"]],
        packages=_packages(data["packages"]),
        first_view=view,
        from_cache=True,
    )
