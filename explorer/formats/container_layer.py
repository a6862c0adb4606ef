"""A container's writable layer, as one more layer on top of its image's.

The engine says which paths the container added, changed and deleted (what ``docker diff``
lists); their entries are taken from the container's exported filesystem as it streams past,
and deletions become whiteouts, so the layer is applied like any other.
"""

from __future__ import annotations

import copy
import hashlib
import posixpath
from dataclasses import dataclass
from typing import Callable, Iterable

from explorer.formats import compression
from explorer.formats.cache import remove
from explorer.formats.container import Container, LayerScan, clean_name
from explorer.formats.engine import Engine
from explorer.model.errors import SourceError
from explorer.formats.plan import ImagePlan, LayerRef
from explorer.model.progress import Monitor
from explorer.formats.tar_index import TarMember, scan_stream_with_data

BLOB = "container-layer"
ADDED, CHANGED, DELETED = 1, 0, 2


Opener = Callable[[], Callable[[int], bytes]]


@dataclass(frozen=True)
class KeptContainer:
    """A container's two streams kept in local files, with what the engine said of it: all
    another process needs to open it again without asking the engine."""

    save: str  # the image's ``save`` stream
    export: str  # the container's exported filesystem
    changes: tuple[tuple[str, int], ...]  # what ``docker diff`` lists
    name: str
    state: str
    image_id: str


def writable_layer(engine: Engine, name: str, monitor: Monitor) -> tuple[LayerScan, Opener]:
    """The container's layer, read from the engine, and an opener of its exported filesystem."""
    opener = engine.export_stream(name)
    return layer_of(engine.changes(name), opener, name, monitor), opener


def file_opener(path: str) -> Opener:
    """An opener of a kept file, read from its start each time."""
    return lambda: open(path, "rb").read  # noqa: SIM115 (closed with the reader, as a stream is)


def layer_of(changes: Iterable[tuple[str, int]], opener: Opener, name: str, monitor: Monitor) -> LayerScan:
    """The container's layer: entries for what it added or changed, whiteouts for what it deleted."""
    changes = list(changes)
    wanted = {p for p, kind in changes if kind in (ADDED, CHANGED)}
    deleted = sorted(p for p, kind in changes if kind == DELETED)
    members: list[TarMember] = []
    monitor.begin(f"reading the writable layer of {name}")
    for member, data in scan_stream_with_data(opener()):
        path = "/" + clean_name(member.name)
        if path not in wanted:
            continue
        digest = None
        if member.type in "07":
            h = hashlib.sha256()
            while chunk := data(compression.CHUNK):
                h.update(chunk)
            digest = h.hexdigest()
        members.append(member._replace(digest=digest))
    for path in deleted:
        parent, base = posixpath.split(path)
        members.append(TarMember(posixpath.join(parent, ".wh." + base).lstrip("/"), "0", 0o600, 0, 0, 0, 0, "", 0,
                                 None, None, 0))
    size = sum(m.size for m in members if m.type in "07")
    return LayerScan(members, compression.NONE, size, tar_size=size)


class ContainerLayerContainer(Container):
    """The image's container, plus the container's writable layer under the name ``BLOB``.

    ``scan`` is the layer, or a function that reads it when a load first needs it (a window
    that only shows what a loading process read never does). ``kept``: the container was kept
    in local files, which are deleted on close when ``owner``.
    """

    def __init__(self, inner: Container, scan: LayerScan | Callable[[Monitor], LayerScan], opener: Opener, label: str,
                 kept: KeptContainer | None = None, owner: bool = False) -> None:
        self.inner, self._scan, self.opener = inner, scan, opener
        self.path = label
        self.compression = inner.compression
        self.kept, self.owner = kept, owner

    @property
    def random_access(self) -> bool:  # type: ignore[override]
        return self.inner.random_access  # (the writable layer is a plain tar: never read through access points)

    def _layer(self, monitor: Monitor | None = None) -> LayerScan:
        if not isinstance(self._scan, LayerScan):
            self._scan = self._scan(monitor or Monitor(self.path))
        return self._scan

    def names(self) -> set[str]:
        return self.inner.names() | {BLOB}

    def has(self, name: str) -> bool:
        return name == BLOB or self.inner.has(name)

    def resolve(self, name: str) -> str:
        return name if name == BLOB else self.inner.resolve(name)

    def read_document(self, name: str) -> bytes:
        return self.inner.read_document(name)

    def size(self, name: str) -> int:
        return self._layer().blob_size if name == BLOB else self.inner.size(name)

    def scan_layer(self, name: str, monitor: Monitor) -> LayerScan:
        return self._layer(monitor) if name == BLOB else self.inner.scan_layer(name, monitor)

    def raw_reader(self, name: str, start: int) -> Callable[[int], bytes]:
        if name != BLOB:
            return self.inner.raw_reader(name, start)
        read = self.opener()  # the exported filesystem again; entries are at their offsets in it
        compression.skip(read, start)
        return read

    def close(self) -> None:
        self.inner.close()
        if self.kept is not None and self.owner:
            remove(self.kept.export)


def add_layer_to_plan(plan: ImagePlan, name: str, state: str) -> None:
    """One more layer, one more history step (so history and layers still line up)."""
    plan.layers.append(LayerRef(blob=BLOB, digest="", media_type="(the container's writable layer)"))
    config = copy.deepcopy(plan.config) if plan.config is not None else {}
    history = list(config.get("history") or [])
    history.append({"created_by": f"container {name} ({state}): its writable layer",
                    "comment": "what the container added, changed and deleted"})
    config["history"] = history
    rootfs = dict(config.get("rootfs") or {})
    rootfs["diff_ids"] = list(rootfs.get("diff_ids") or []) + [""]
    config["rootfs"] = rootfs
    plan.config = config
    plan.tags = [f"container {name}"] + list(plan.tags)


def check_running_engine(engine: Engine, name: str) -> dict:
    """The container's inspect data (a clear error when the engine or the container is missing)."""
    engine.ping()
    info = engine.container(name)
    if not info.get("Image"):
        raise SourceError(f"container {name}", "the engine does not say which image the container runs")
    return info
