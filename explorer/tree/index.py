"""The layered filesystem: every path once, with each layer that touched it and how.

Layers are applied bottom-up in one pass. Only the net effect of each layer on each path is
stored (a ``Version``), so memory grows with the number of entries, never with
layers x entries; the state at any layer k is the last version at or below k.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, NamedTuple

from explorer.image.model import DIR, FILE, HARDLINK, TAR_TYPES, Entry
from explorer.image.tar_index import TarMember
from explorer.tree import names
from explorer.tree.diff import ADDED, MODIFIED, REMOVED, UNCHANGED, is_modified

# Reads the content digest of a file entry that the scan did not hash: (entry, data layer) -> hex.
ContentDigest = Callable[[Entry, int], "str | None"]
IMPLICIT_MODE = 0o755


class Version(NamedTuple):
    """The net effect of one layer on one path: the entry after it (None when removed)."""

    layer: int
    change: str
    entry: Entry | None


class LayerStats(NamedTuple):
    """Counts of what one layer's tar held."""

    entries: int
    size: int  # regular-file bytes in the tar
    whiteouts: int
    opaque: int


class LayerTree:
    """Every path of an image with its versions; built by ``build_tree``."""

    def __init__(self, layer_count: int) -> None:
        self.layer_count = layer_count
        self.versions: dict[str, list[Version]] = {}
        self.kids: dict[str, list[str]] = {}  # every child name a directory ever had
        self.changes: list[list[tuple[str, str]]] = [[] for _ in range(layer_count)]
        self.stats: list[LayerStats] = []
        self.warnings: list[str] = []
        self.unsafe: list[list[str]] = [[] for _ in range(layer_count)]
        self.hardlink_data: dict[tuple[int, str], int] = {}  # (layer, path) -> layer holding the bytes

    def entry_at(self, path: str, layer: int | None = None) -> Entry | None:
        """The entry at ``path`` after layers 0..layer (the final image when None)."""
        versions = self.versions.get(path)
        if not versions:
            return None
        if layer is None or layer >= self.layer_count - 1:
            return versions[-1].entry
        for v in reversed(versions):
            if v.layer <= layer:
                return v.entry
        return None

    def history(self, path: str) -> list[Version]:
        """Each layer that touched ``path`` and what it did."""
        return list(self.versions.get(path, ()))

    def children(self, path: str, layer: int | None = None) -> list[str]:
        """Names of the entries inside directory ``path`` after layers 0..layer."""
        return [n for n in self.kids.get(path, ()) if self.entry_at(names.join(path, n), layer) is not None]

    def merged(self, layer: int | None = None) -> Iterator[Entry]:
        """Every entry of the merged filesystem after layers 0..layer (root excluded), unsorted."""
        for path, versions in self.versions.items():
            if path == "/":
                continue
            entry = versions[-1].entry if layer is None else self.entry_at(path, layer)
            if entry is not None:
                yield entry


def _entry_from(member: TarMember, path: str, layer: int) -> Entry:
    """A model entry from a tar member (hardlink targets are resolved later)."""
    kind = TAR_TYPES.get(member.type)
    if kind is None:
        kind = FILE  # unknown types (GNU sparse, contiguous) hold file data
    if kind == FILE and member.name.endswith("/"):
        kind = DIR  # old tars mark directories only by the trailing slash
    target = member.linkname if kind in ("symlink", HARDLINK) else None
    return Entry(path, kind, member.mode, member.uid, member.gid, member.size if kind == FILE else 0,
                 member.mtime, target, layer, member.offset, member.xattrs, member.digest)


class _LayerApplier:
    """Applies one layer on top of the state the tree holds so far."""

    def __init__(self, tree: LayerTree, layer: int, digest: ContentDigest) -> None:
        self.tree = tree
        self.layer = layer
        self.pending: dict[str, Entry | None] = {}
        self.written: set[str] = set()  # paths the layer wrote explicitly
        self._digest_fn = digest
        self._digests: dict[tuple[int, int], str | None] = {}

    def current(self, path: str) -> Entry | None:
        """The state of ``path`` with this layer's work so far."""
        if path in self.pending:
            return self.pending[path]
        versions = self.tree.versions.get(path)
        return versions[-1].entry if versions else None

    def _set(self, path: str, entry: Entry | None) -> None:
        if path not in self.pending and path not in self.tree.versions and entry is not None:
            parent, name = names.split(path)
            if parent:
                self.tree.kids.setdefault(parent, []).append(name)
        self.pending[path] = entry

    def remove_children(self, path: str) -> None:
        """Remove everything below ``path`` that currently exists."""
        stack = [path]
        while stack:
            top = stack.pop()
            for name in self.tree.kids.get(top, ()):
                child = names.join(top, name)
                if self.current(child) is not None:
                    self.pending[child] = None
                    stack.append(child)

    def remove(self, path: str) -> None:
        """Remove ``path`` and its subtree, if it exists."""
        entry = self.current(path)
        if entry is None:
            return
        if entry.type == DIR:
            self.remove_children(path)
        self.pending[path] = None

    def ensure_parent(self, path: str) -> None:
        """Make sure the parent directory exists, creating implicit ones (and replacing files)."""
        parent, _ = names.split(path)
        if not parent:
            return
        entry = self.current(parent)
        if entry is not None and entry.type == DIR:
            return
        self.ensure_parent(parent)
        if entry is not None:
            self.remove(parent)  # a file in the way becomes a directory (no whiteout needed)
        self._set(parent, Entry(parent, DIR, IMPLICIT_MODE, 0, 0, 0, 0, None, self.layer, -1, None, None))

    def put(self, entry: Entry) -> None:
        """Write an entry: directories over directories keep their children, all else replaces."""
        path = entry.path
        if path != "/":
            self.ensure_parent(path)
        old = self.current(path)
        if old is not None and old.type == DIR and entry.type != DIR:
            self.remove_children(path)
        self._set(path, entry)
        self.written.add(path)

    def link(self, entry: Entry) -> Entry:
        """Resolve a hardlink: it names its target by path, possibly in a lower layer."""
        target = names.normalise(entry.target or "")
        found = self.current(target) if target else None
        if found is None or found.type not in (FILE, HARDLINK):
            self.tree.warnings.append(
                f"layer {self.layer}: hardlink {entry.path} points to {entry.target!r}, which is not a file there"
            )
            return entry._replace(target=target or entry.target)
        data_layer = self.tree.hardlink_data.get((found.layer, found.path), found.layer)
        self.tree.hardlink_data[(self.layer, entry.path)] = data_layer
        return entry._replace(target=target, size=found.size, digest=found.digest, offset=found.offset)

    def digest(self, entry: Entry) -> str | None:
        """Content digest of an entry, reading its bytes only when the scan did not hash them."""
        if entry.digest is not None:
            return entry.digest
        data_layer = self.tree.hardlink_data.get((entry.layer, entry.path), entry.layer)
        key = (data_layer, entry.offset)
        if key not in self._digests:
            self._digests[key] = self._digest_fn(entry, data_layer)
        return self._digests[key]

    def finish(self, before: Callable[[str], "Entry | None"]) -> None:
        """Record the net effect of the layer on every path it touched."""
        tree, layer = self.tree, self.layer
        changes = tree.changes[layer]
        for path, after in self.pending.items():
            old = before(path)
            if old is None and after is None:
                continue
            if old is None:
                change = ADDED
            elif after is None:
                change = REMOVED
            elif is_modified(old, after, self.digest):
                change = MODIFIED
            elif path in self.written:
                change = UNCHANGED
            else:
                continue
            tree.versions.setdefault(path, []).append(Version(layer, change, after))
            if change != UNCHANGED and path != "/":
                changes.append((path, change))


def apply_layer(tree: LayerTree, layer: int, members: Iterable[TarMember], digest: ContentDigest) -> None:
    """Apply one layer's tar members to the tree (whiteouts first, then entries)."""
    applier = _LayerApplier(tree, layer, digest)
    opaque: list[str] = []
    whiteouts: list[str] = []
    entries: list[tuple[str, TarMember]] = []
    count = size = 0
    for m in members:
        count += 1
        if m.type in "07":
            size += m.size
        path = names.normalise(m.name)
        if path is None:
            tree.unsafe[layer].append(m.name)
            continue
        base = path[path.rfind("/") + 1 :]
        if base.startswith(names.WHITEOUT):
            parent = path[: path.rfind("/")] or "/"
            if base == names.OPAQUE:
                opaque.append(parent)
            elif base.startswith(names.AUFS_META):
                pass  # AUFS bookkeeping, never a file
            elif base == names.WHITEOUT:
                tree.warnings.append(f"layer {layer}: invalid whiteout name {m.name!r} ignored")
            else:
                whiteouts.append(names.join(parent, base[4:]))
            continue
        if names.AUFS_META in path and names.is_aufs_meta(path):
            continue
        entries.append((path, m))
    tree.stats.append(LayerStats(count, size, len(whiteouts), len(opaque)))
    if tree.unsafe[layer]:
        tree.warnings.append(
            f"layer {layer}: {len(tree.unsafe[layer])} unsafe entry name(s) with '..' skipped, e.g. {tree.unsafe[layer][0]!r}"
        )
    # Whiteouts hide lower layers only, so they apply before this layer's own entries.
    for d in opaque:
        applier.remove_children(d)
    for w in whiteouts:
        applier.remove(w)
    for path, m in entries:
        entry = _entry_from(m, path, layer)
        if entry.type == HARDLINK:
            entry = applier.link(entry)
        applier.put(entry)

    versions = tree.versions

    def before(path: str) -> Entry | None:
        v = versions.get(path)
        return v[-1].entry if v else None

    applier.finish(before)


def build_tree(layers: list[list[TarMember]], digest: ContentDigest) -> LayerTree:
    """Apply every layer, bottom first."""
    tree = LayerTree(len(layers))
    for i, members in enumerate(layers):
        apply_layer(tree, i, members, digest)
    return tree
