"""The index cache: a loaded image saved compactly, so reopening it is instant.

One file per (source, image), named by a key made of the source's real path, size,
modification time and inode (a changed archive gets a new key, so it is never served
stale) and the format version. Each file carries a checksum of its payload: a corrupt,
truncated or old-version file is detected, removed and rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import tempfile
from typing import Any

from explorer.image.cache import cache_dir, keep_under, remove
from explorer.image.container import LayerScan
from explorer.image.loader import Image
from explorer.image.model import HistoryEntry, ImageRef, LayerInfo
from explorer.image.source import Source
from explorer.tree.advice import Advice, Secret
from explorer.tree.efficiency import Efficiency
from explorer.tree.index import LayerStats, LayerTree
from explorer.tree.waste import Waste, WastedFile

VERSION = 5
MAGIC = b"layer-explorer index\n"
DEFAULT_MAX = 2 << 30
CHUNKS = 32  # the paths are stored in pieces, so no single load call holds the interpreter long
_new = tuple.__new__


def enabled() -> bool:
    """Off when ``LAYER_EXPLORER_NO_INDEX_CACHE`` is set (the CLI's ``--no-cache``, the window's setting)."""
    return not os.environ.get("LAYER_EXPLORER_NO_INDEX_CACHE")


def folder() -> str:
    """Where the indexes are kept."""
    return os.path.join(cache_dir(), "index")


def key_for(source: Source, ref: ImageRef) -> str | None:
    """The cache key of an image, or None when its source cannot be keyed (an engine stream)."""
    path = source.info.path
    if "://" in path:
        if not path.startswith(("registry://", "registry+http://")) or not ref.manifest_digest:
            return None
        ident: list[Any] = [path.split("://", 1)[1].split("/", 1)[0], ref.manifest_digest]  # content-addressed
    else:
        try:
            target = os.path.join(path, "index.json") if os.path.isdir(path) else path
            st = os.stat(target)
        except OSError:
            return None
        ident = [os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino]
    raw = json.dumps([VERSION, ident, ref.index, ref.config_digest, ref.platform])
    return hashlib.sha256(raw.encode()).hexdigest()


def load(source: Source, ref: ImageRef) -> Image | None:
    """The cached image, or None (missing, changed, corrupt or from another version)."""
    key = key_for(source, ref) if enabled() else None
    if key is None:
        return None
    path = os.path.join(folder(), key)
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError:
        return None
    head = len(MAGIC) + 32
    if blob[: len(MAGIC)] != MAGIC or hashlib.sha256(blob[head:]).digest() != blob[len(MAGIC):head]:
        remove(path)  # damaged: rebuild rather than trust
        return None
    try:
        pieces = marshal.loads(blob[head:])
        data = marshal.loads(pieces[0])
        if data["version"] != VERSION or data["key"] != key:
            raise ValueError("stale")
        versions: dict = {}
        for part in pieces[1:]:  # one call per piece: other threads (the window) run in between
            versions.update(marshal.loads(part))
        data["tree"] = (data["tree"][0], versions) + tuple(data["tree"][2:])
        image = _image(data, source, ref)
    except (ValueError, KeyError, TypeError, IndexError, EOFError):
        remove(path)
        return None
    os.utime(path)  # recently used: evicted last
    return image


def save(source: Source, image: Image) -> None:
    """Store a loaded image (quietly skipped when the cache cannot be written)."""
    key = key_for(source, image.ref) if enabled() else None
    if key is None:
        return
    try:
        plain = _plain(image, key)
        versions = plain["tree"][1]
        items = list(versions.items())
        step = max(1, len(items) // CHUNKS + 1)
        parts = [marshal.dumps(dict(items[i:i + step])) for i in range(0, len(items), step)]
        plain["tree"] = (plain["tree"][0], len(parts)) + plain["tree"][2:]
        payload = marshal.dumps([marshal.dumps(plain)] + parts)
        os.makedirs(folder(), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder(), prefix=".partial-")
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + hashlib.sha256(payload).digest() + payload)
        os.replace(tmp, os.path.join(folder(), key))  # complete or absent, never half-written
        evict()
    except (OSError, ValueError):
        pass


def evict(limit: int | None = None) -> None:
    """Keep the index cache under its size limit, least recently used dropped first."""
    limit = limit if limit is not None else int(os.environ.get("LAYER_EXPLORER_INDEX_CACHE_MAX", DEFAULT_MAX))
    try:
        keep_under((e.path for e in os.scandir(folder()) if e.is_file()), limit)
    except OSError:
        pass


def _plain(image: Image, key: str) -> dict[str, Any]:
    """The image as marshal-able plain values."""
    tree = image.tree
    versions = {}
    for path, v in tree.versions.items():
        if type(v) is list:
            versions[path] = [(x[0], x[1], tuple(x[2]) if x[2] is not None else None) for x in v]
        else:
            versions[path] = tuple(v)  # type: ignore[arg-type]
    eff, waste = image.efficiency, image.waste
    return {
        "version": VERSION,
        "key": key,
        "tree": (tree.layer_count, versions, tree.kids, tree.changes, [tuple(s) for s in tree.stats], tree.warnings,
                 tree.unsafe, tree.hardlink_data),
        "image": (image.tags, image.config_digest, image.platform, image.created, image.config,
                  [_fields(l) for l in image.layers], [_fields(h) for h in image.history], image.warnings,
                  [(s.compression, s.blob_size, s.blob_digest, s.tar_size, s.warnings, s.flagged) for s in image.scans],
                  image.blobs, image.file_count, image.file_bytes),
        "efficiency": (eff.score, eff.wasted_bytes, eff.user_wasted_percent, eff.files) if eff else None,
        "waste": (waste.bytes, [_fields(f) for f in waste.files], waste.per_layer, waste.merge_savings) if waste else None,
        "advice": [_fields(a) for a in image.advice],
        "secrets": [_fields(s) for s in image.secrets],
        "totals": image.first_view.totals() if image.first_view is not None else None,
    }


def _fields(obj: Any) -> tuple:
    from dataclasses import fields

    return tuple(getattr(obj, f.name) for f in fields(obj))


def _image(data: dict[str, Any], source: Source, ref: ImageRef) -> Image:
    """Rebuild an image from its plain values."""
    count, versions, kids, changes, stats, warnings, unsafe, hardlink_data = data["tree"]
    tree = LayerTree(count)
    tree.versions, tree.kids, tree.changes = versions, kids, changes
    tree._plain = True  # entries become Entry tuples when first used: the window shows at once
    tree.stats = [_new(LayerStats, s) for s in stats]
    tree.warnings, tree.unsafe, tree.hardlink_data = warnings, unsafe, hardlink_data
    tags, digest, platform, created, config, layers, history, warns, scans, blobs, count_files, file_bytes = data["image"]
    eff = data["efficiency"]
    waste = data["waste"]
    image = Image(
        source=source.info, ref=ref, tags=tags, config_digest=digest, platform=platform, created=created, config=config,
        layers=[LayerInfo(*l) for l in layers], history=[HistoryEntry(*h) for h in history], tree=tree, warnings=warns,
        scans=[LayerScan([], c, size, blob_digest=bd, tar_size=ts, warnings=w, flagged=fl) for c, size, bd, ts, w, fl in scans],
        blobs=blobs, file_count=count_files, file_bytes=file_bytes,
        efficiency=Efficiency(*eff) if eff else None,
        waste=Waste(waste[0], [WastedFile(*f) for f in waste[1]], waste[2], waste[3]) if waste else None,
        advice=[Advice(*a) for a in data["advice"]],
        secrets=[Secret(*s) for s in data["secrets"]],
    )
    if data["totals"] is not None:
        from explorer.tree.views import MERGED, TreeView

        view = TreeView(tree, None, MERGED)
        view._totals = data["totals"]
        image.first_view = view
    return image
