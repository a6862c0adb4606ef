"""The index cache: a loaded image saved compactly, so reopening it is instant.

One file per (source, image), named by a key made of the source's real path, size,
modification time and inode (a changed archive gets a new key, so it is never served
stale) and the format version. Each file carries a checksum of its payload: a corrupt,
truncated or old-version file is detected, removed and rebuilt, never trusted.

A file is a head (the image without its files, the first screen's folder sizes, and where
each folder's chunk lies) and a body of chunks, one per folder and one per layer's changes:
reopening decodes the head only, and each folder when it is first looked at.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import mmap
import os
import struct
import tempfile
import time
from typing import Any, NamedTuple

from explorer.formats.cache import cache_dir, keep_under, remove
from explorer.formats.container import LayerScan
from explorer.image.loader import Image
from explorer.model.values import HistoryEntry, ImageRef, LayerInfo
from explorer.formats.source import REGISTRY_SCHEMES, Source
from explorer.formats.spool import kept_file
from explorer.model.packages import InstalledPackage, LayerPackages, Package, PackageChange, PackageReport
from explorer.tree.advice import Advice, Secret
from explorer.tree.efficiency import Efficiency
from explorer.tree.index import LayerStats, LayerTree
from explorer.tree.steps import EVERY, Steps, drain
from explorer.tree.lazy import Chunks, LazyChanges, LazyKids, LazyRecords, LazyVersions
from explorer.tree.views import MERGED, TreeView
from explorer.tree.waste import Waste, WastedFile

VERSION = 11
CHANGES_PART = 32768  # changes a chunk: a few milliseconds to decode
MAGIC = b"layer-explorer index\n"
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


def open_index(path: str, key: str, source: Source, ref: ImageRef) -> Image | None:
    """Map the index file at ``path`` and decode its head: None when it is missing, damaged,
    of another version, or made for another ``key`` (the source changed since)."""
    try:
        with open(path, "rb") as f:
            data = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
    except (OSError, ValueError):  # ValueError: empty, cannot be mapped
        return None
    start = len(MAGIC) + 32
    if len(data) < start + 8 or data[: len(MAGIC)] != MAGIC or hashlib.sha256(data[start:]).digest() != data[len(MAGIC):start]:
        return None
    try:
        (head_size,) = struct.unpack_from("<Q", data, start)
        head = marshal.loads(data[start + 8:start + 8 + head_size])
        if head["version"] != VERSION or head["key"] != key:
            return None
        return _image(head, data[start + 8 + head_size:], source, ref)
    except (ValueError, KeyError, TypeError, IndexError, EOFError, struct.error):
        return None


def save(source: Source, image: Image, where: str | None = None, key: str | None = None,
         body: "Body | None" = None) -> str | None:
    """Store a loaded image (quietly skipped when the cache cannot be written).

    ``where``: the folder, decided when the save was scheduled (a later change of the
    setting must not redirect a save already on its way); by default the current one.
    ``key``: the one the reader computed, when it opened the source in its own way.
    ``body``: the image's files already encoded (``encode_body``), while dive's numbers were
    still on their way.
    """
    return drain(save_steps(source, image, where, key, body))


def save_steps(source: Source, image: Image, where: str | None = None, key: str | None = None,
               body: "Body | None" = None) -> Steps[str | None]:
    """``save`` as a walk that yields every few folders; returns the file's path, or None
    when nothing was written."""
    if where is None:
        where = folder() if enabled() else None
    if key is None and where is not None:
        key = key_for(source, image.ref)
    if key is None or where is None:
        return None
    tmp = ""
    try:
        if body is None:
            body = yield from encode_body(image)
        head_bytes = marshal.dumps(_head(image, key, body))
        os.makedirs(where, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".partial-")
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + bytes(32))  # the checksum, once the rest is written
            for i, part in enumerate([struct.pack("<Q", len(head_bytes)), head_bytes, *body.chunks]):
                digest.update(part)
                f.write(part)
                if not i & 63:
                    yield
            f.seek(len(MAGIC))
            f.write(digest.digest())
        written = os.path.join(where, key)
        os.replace(tmp, written)  # complete or absent, never half-written
        tmp = ""
        evict(where=where, spare=written)
        return written
    except (OSError, ValueError):
        return None
    finally:  # failed, or stopped half way (the window closing): no partial file left
        if tmp:
            remove(tmp)


def evict(limit: int | None = None, where: str | None = None, spare: str | None = None) -> None:
    """Keep the index cache under its size limit, least recently used dropped first (never
    ``spare``, the file just written: whoever wrote it is about to open it)."""
    limit = limit if limit is not None else int(os.environ.get("LAYER_EXPLORER_INDEX_CACHE_MAX", DEFAULT_MAX))
    try:
        if spare is not None:
            limit = max(0, limit - os.stat(spare).st_size)
        files = [e for e in os.scandir(where or folder()) if e.is_file() and e.path != spare]
        stale = time.time() - 3600
        for e in files:  # a save cut off (the program killed mid-write) leaves its partial file
            if e.name.startswith(".partial-") and e.stat().st_mtime < stale:
                remove(e.path)
        keep_under((e.path for e in files), limit)  # it skips what was just removed
    except OSError:
        pass


def _plain_version(v: Any, path: str) -> Any:
    """A path's versions as marshal-able tuples, without the path itself (the key says it:
    a third less to decode), which ``LayerTree`` puts back when it makes them entries."""
    if type(v) is list:
        return [(x[0], x[1], _pathless(x[2], path) if x[2] is not None else None) for x in v]
    return _pathless(v, path)


def _pathless(e: Any, path: str) -> tuple:
    return (None,) + tuple(e[1:]) if e[0] == path else tuple(e)


class Body(NamedTuple):
    """An image's files and changes, encoded: the chunks, and what the head says of them."""

    chunks: list[bytes]
    folders: dict[str, tuple[int, int]]  # folder -> (offset, length) of its chunk
    strays: dict[str, Any]  # paths in the head: the root, and any its folder does not list
    changes: list[list[tuple[int, int]]]  # per layer, its parts
    wasted: tuple[int, int, int]  # (offset, length, count) of the wasted files
    totals: Any  # the first screen's folder sizes
    file_count: int
    file_bytes: int


def encode_body(image: Image) -> Steps[Body]:
    """Everything of the index but its head (which says where each folder's chunk is)."""
    tree = image.tree
    view = image.first_view
    if view is None or view.layer is not None or view.mode != MERGED:
        view = TreeView(tree, None, MERGED)
    totals = yield from view.totals_steps()  # the first screen's folder sizes: reopening needs no walk
    file_count, file_bytes = image.file_count, image.file_bytes
    if file_count < 0 or file_bytes < 0:
        file_count, file_bytes = view.entries, view.file_bytes
    versions = tree.versions
    body: list[bytes] = []
    offset = 0
    folders: dict[str, tuple[int, int]] = {}
    placed = 0
    for name, children in tree.kids.items():
        prefix = name if name == "/" else name + "/"
        values = []
        add = values.append
        for i, child in enumerate(children):
            path = prefix + child
            v = versions.get(path)
            if v is None:
                add(None)
            elif type(v) is list:
                add(_plain_version(v, path))
            else:  # ``_pathless``, inline: most paths, a million calls on a big image
                add((None, *v[1:]) if v[0] == path else tuple(v))
            if not i & EVERY:
                yield
        placed += len(values) - values.count(None)
        chunk = marshal.dumps((list(children), values))
        folders[name] = (offset, len(chunk))
        body.append(chunk)
        offset += len(chunk)
    # The root, and any path its folder does not list, travel in the head. Applying layers
    # lists every other path in its folder, so they are found by counting, not by a set of
    # every path (100 MB at a million); the search below is for an index that breaks that.
    strays = {"/": _plain_version(versions["/"], "/")} if "/" in versions else {}
    if placed + len(strays) != len(versions):
        listed = {(n if n == "/" else n + "/") + c for n, children in tree.kids.items() for c in children}
        yield
        for i, (path, v) in enumerate(versions.items()):
            if path not in listed:
                strays[path] = _plain_version(v, path)
            if not i & EVERY:
                yield
    changes = []
    for layer in tree.changes:
        parts = []  # a layer's changes in parts: decoding 300,000 at once held the window 45 ms
        for start in range(0, max(len(layer), 1), CHANGES_PART):
            chunk = marshal.dumps((layer.paths[start:start + CHANGES_PART], bytes(layer.kinds[start:start + CHANGES_PART])))
            parts.append((offset, len(chunk)))
            body.append(chunk)
            offset += len(chunk)
            yield
        changes.append(parts)
    waste = image.waste
    wasted = (0, 0, 0)
    if waste is not None:  # hundreds of thousands on a big image, and only the Insights tab reads them
        records = []
        for i, f in enumerate(waste.files):
            records.append(tuple(f))  # marshal takes plain tuples only
            if not i & EVERY:
                yield
        chunk = marshal.dumps(records)
        wasted = (offset, len(chunk), len(waste.files))
        body.append(chunk)
        offset += len(chunk)
    return Body(body, folders, strays, changes, wasted, totals, file_count, file_bytes)


def _head(image: Image, key: str, body: Body) -> dict[str, Any]:
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
        "efficiency": (eff.score, eff.wasted_bytes, eff.user_wasted_percent, eff.files) if eff else None,
        "waste": (waste.bytes, body.wasted, waste.per_layer, waste.merge_savings) if waste else None,
        "advice": [_fields(a) for a in image.advice],
        "secrets": [_fields(s) for s in image.secrets],
        "packages": _plain_packages(image.packages),
        "totals": body.totals,
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


def _fields(obj: Any) -> tuple:
    from dataclasses import fields

    return tuple(getattr(obj, f.name) for f in fields(obj))


def _image(data: dict[str, Any], body: memoryview, source: Source, ref: ImageRef) -> Image:
    """Rebuild an image from its head; its folders stay in ``body`` until looked at."""
    count, paths, strays, folders, changes, stats, warnings, unsafe, hardlink_data, links = data["tree"]
    wasted = data["waste"][1] if data["waste"] else (0, 0, 0)
    for offset, length in list(folders.values()) + [span for parts in changes for span in parts] + [wasted[:2]]:
        if offset < 0 or offset + length > len(body):
            raise ValueError("a chunk lies outside the file")
    tree = LayerTree(count)
    chunks = Chunks(body, folders, paths, strays)
    tree.versions, tree.kids, tree.changes = LazyVersions(chunks), LazyKids(chunks), LazyChanges(body, changes)  # type: ignore[assignment]
    tree._plain = True  # entries become Entry tuples when first used: the window shows at once
    tree.stats = [_new(LayerStats, s) for s in stats]
    tree.warnings, tree.unsafe, tree.hardlink_data, tree.links = warnings, unsafe, hardlink_data, links
    _tags, digest, platform, created, config, layers, history, warns, scans, blobs, count_files, file_bytes = data["image"]
    eff = data["efficiency"]
    waste = data["waste"]
    view = TreeView(tree, None, MERGED)
    view._totals = data["totals"]
    return Image(  # the tags the source gives now: one image saved under another name is still the same index
        source=source.info, ref=ref, tags=ref.tags, config_digest=digest, platform=platform, created=created, config=config,
        layers=[LayerInfo(*l) for l in layers], history=[HistoryEntry(*h) for h in history], tree=tree, warnings=warns,
        scans=[LayerScan([], c, size, blob_digest=bd, tar_size=ts, warnings=w, flagged=fl) for c, size, bd, ts, w, fl in scans],
        blobs=blobs, file_count=count_files, file_bytes=file_bytes,
        efficiency=Efficiency(*eff) if eff else None,
        waste=Waste(waste[0], LazyRecords(body, wasted[:2], wasted[2], WastedFile), waste[2], waste[3])  # type: ignore[arg-type]
        if waste else None,
        advice=[Advice(*a) for a in data["advice"]],
        secrets=[Secret(*s) for s in data["secrets"]],
        packages=_packages(data["packages"]),
        first_view=view,
        from_cache=True,
    )
