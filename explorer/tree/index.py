"""The layered filesystem: every path once, with each layer that touched it and how.

Layers are applied bottom-up in one pass. Only the net effect of each layer on each path is
stored (a ``Version``), so memory grows with the number of entries, never with
layers x entries; the state at any layer k is the last version at or below k.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable, Iterator, NamedTuple, NoReturn

from explorer.model.values import DIR, FILE, HARDLINK, SYMLINK, TAR_TYPES, Entry
from explorer.formats import tar_index
from explorer.formats.tar_index import TarMember
from explorer.tree import names
from explorer.tree.columns import Columns
from explorer.tree.diff import ADDED, MODIFIED, REMOVED, UNCHANGED, is_modified
from explorer.tree.steps import EVERY, Steps

# Reads the content digest of a file entry that the scan did not hash: (entry, data layer) -> hex.
ContentDigest = Callable[[Entry, int], "str | None"]
Inode = tuple[int, int]  # (layer whose tar holds the bytes, offset of the bytes in that tar)
IMPLICIT_MODE = 0o755
NEW = object()  # a path no layer below had (see ``_LayerApplier.before``)
_new = tuple.__new__


class TooManyPaths(Exception):
    """The image's paths, implied folders included, add up to more than the paths' budget."""


def too_many_paths(limit: int, where: str = "") -> NoReturn:
    """Refuse what goes past the paths' budget of ``limit`` bytes (``where``: which layer)."""
    raise TooManyPaths(f"{where}its paths, with the folders they imply, add up to more than {limit >> 20:,} MiB")


def several(stored: Any) -> bool:
    """Whether what a tree or an index file stores for a path is its versions rather than
    one entry: a list of them, or as an index file holds them, one flat tuple (layer,
    change, entry, layer, change, entry...; an entry's first field is its path, or None)."""
    return type(stored) is list or type(stored[0]) is int


def versions_of(stored: Any) -> Any:
    """A path's versions as (layer, change, entry) triples, from either form ``several`` tells."""
    return stored if type(stored) is list else list(zip(stored[::3], stored[1::3], stored[2::3]))


def stored_at(stored: Any, layer: int) -> Any:
    """What is there at a path after layers 0..layer, from what a tree or an index file
    stores for it (one entry, or its versions, as tuples or not); None: nothing."""
    if type(stored) is list:
        for version in reversed(stored):
            if version[0] <= layer:
                return version[2]
        return None
    if type(stored[0]) is int:
        for i in range(len(stored) - 3, -1, -3):
            if stored[i] <= layer:
                return stored[i + 2]
        return None
    return stored if stored[8] <= layer else None


def _entry(path: str, plain: tuple) -> Entry:
    """The entry an index file's tuple stands for: its path put back, and its extended
    attributes a dict again (the file holds them as pairs)."""
    if plain[0] is None:
        plain = (path, *plain[1:])
    if plain[10] is not None:
        plain = (*plain[:10], dict(plain[10]), *plain[11:])
    return _new(Entry, plain)


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


class LayerChanges:
    """One layer's net changes as (path, change) pairs, in the order they were made, and
    whether each is of a folder (the one added or modified, or the one removed).

    Kept as a list of paths (a tuple once read whole from an index file) and a byte per
    change: a million pairs as tuples took 64 MB more.
    """

    __slots__ = ("paths", "kinds", "folders")
    NAMES = (ADDED, MODIFIED, REMOVED)  # (ADDED first: its code is 0, a zero byte)
    CODES = {name: code for code, name in enumerate(NAMES)}

    def __init__(self, paths: list[str] | tuple[str, ...] | None = None, kinds: bytearray | None = None,
                 folders: bytearray | None = None) -> None:
        self.paths = paths if paths is not None else []
        self.kinds = kinds if kinds is not None else bytearray()
        self.folders = folders if folders is not None else bytearray(len(self.paths))  # 1: a folder

    def append(self, path: str, change: str, folder: bool = False) -> None:
        self.paths.append(path)
        self.kinds.append(self.CODES[change])
        self.folders.append(folder)

    def count(self, change: str) -> int:
        """How many of the changes are ``change``."""
        return self.kinds.count(self.CODES[change])

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return zip(self.paths, map(self.NAMES.__getitem__, self.kinds))

    def __getitem__(self, index: Any) -> Any:
        """A pair, or a list of them for a slice."""
        if isinstance(index, slice):
            return list(zip(self.paths[index], map(self.NAMES.__getitem__, self.kinds[index])))
        return self.paths[index], self.NAMES[self.kinds[index]]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LayerChanges):
            return list(self.paths) == list(other.paths) and self.kinds == other.kinds and self.folders == other.folders
        return isinstance(other, list) and list(self) == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LayerChanges({list(self)!r})"


class LayerTree:
    """Every path of an image with its versions; built by ``apply_layer``, one layer at a time.

    ``versions[path]`` is compact: a path that one layer added and nothing touched again
    (most of them) stores just its ``Entry``; others store the list of their ``Version``s.
    Read from an index file, they are plain tuples until used: an entry without its path,
    and a flat tuple of versions (``several``). Tuples of atomic values, which the cycle
    collector stops tracking after a pass or two (most before they reach its oldest
    generation); a list each, at a million paths, made its full passes take 120 ms.
    """

    def __init__(self, layer_count: int) -> None:
        self.layer_count = layer_count
        self.versions: dict[str, Entry | list[Version]] = {}
        self.kids: dict[str, list[str]] = {}  # every child name a directory ever had
        self.changes: list[LayerChanges] = [LayerChanges() for _ in range(layer_count)]
        self.stats: list[LayerStats] = []
        self.warnings: list[str] = []
        self.unsafe: list[list[str]] = [[] for _ in range(layer_count)]
        self.hardlink_data: dict[tuple[int, str], int] = {}  # (layer, path) -> layer holding the bytes
        # Every name that was ever given to a hard-linked file, by the file's identity (see
        # ``inode``); only files that have hard links are here, so it stays small.
        self.links: dict[Inode, dict[str, None]] = {}  # (a dict: an ordered set)
        self._groups: dict[tuple[Inode, int | None], tuple[str, tuple[str, ...]]] = {}
        self.live: dict[str, Entry] = {}  # the state while layers are applied; emptied after
        self._plain = False  # True when read from the index cache (plain tuples until used)
        # Bytes of every path placed, implied folders too: six 61 KB names 4,000 folders deep
        # imply folders whose paths add up to gigabytes.
        self.path_bytes = 0

    def data_layer(self, entry: Entry) -> int:
        """The layer whose blob holds an entry's bytes (a hardlink's are its target's)."""
        return self.hardlink_data.get((entry.layer, entry.path), entry.layer)

    # -- hard links: names of one file -----------------------------------------------------

    def inode(self, entry: Entry, path: str | None = None) -> Inode | None:
        """The identity of the file behind an entry: where its bytes are stored.

        A regular file is the tar member that stored it; a hardlink is the file it named when
        its layer was applied. A later layer that rewrites one name stores a new member, so
        that name gets a new identity and the others keep the old one (as overlayfs does).
        ``path`` is for the plain tuples of a cached index, which leave their path out.
        """
        kind = entry[1]
        if kind != FILE and kind != HARDLINK or entry[9] < 0:
            return None
        # a hardlink's bytes are where its target's were (``effective`` may call it a file)
        data = self.hardlink_data.get((entry[8], path or entry[0])) if self.hardlink_data else None
        if data is None:
            return (entry[8], entry[9]) if kind == FILE else None
        return (data, entry[9])

    def shared_file(self, entry: Entry, path: str) -> Inode | None:
        """``inode`` of an entry as stored, only when its file has (or had) several names; the
        common case, a file stored as itself, without a lookup (this runs for every path)."""
        kind = entry[1]
        key = (entry[8], entry[9]) if kind == FILE else self.inode(entry, path) if kind == HARDLINK else None
        return key if key in self.links else None

    def linked_names(self, entry: Entry, layer: int | None = None) -> list[str]:
        """Every path that is this entry's file after layers 0..layer (itself included), in
        path order; empty when the file has no other name and never had."""
        key = self.inode(entry)
        return list(self._group(key, layer)[1]) if key is not None and key in self.links else []

    def _group(self, key: Inode, layer: int | None) -> tuple[str, tuple[str, ...]]:
        """(the name that is the file, every name of it in path order) after layers 0..layer.

        Worked out once per file and layer: a file with a hundred thousand names must not
        cost a hundred thousand lookups for each of them.
        """
        found = self._groups.get((key, layer))
        if found is None:
            alive, files = [], []
            for path in sorted(self.links.get(key, ())):
                e = self.entry_at(path, layer)
                if e is not None and self.inode(e) == key:
                    alive.append(path)
                    if e.type == FILE:
                        files.append(path)
            # the name the tar stored the bytes under, while it lasts; else the first in order
            found = self._groups[(key, layer)] = ((files or alive or [""])[0], tuple(alive))
        return found

    def effective(self, entry: Entry, layer: int | None = None) -> Entry:
        """The entry as the filesystem after layers 0..layer has it: of the names of one file,
        one is the file and every other a hardlink to it; a hardlink whose other names were
        all rewritten or removed is a plain file again."""
        if entry[1] != HARDLINK:
            return entry
        key = self.inode(entry)
        if key is None or key not in self.links:
            return entry
        primary, alive = self._group(key, layer)
        if primary == entry[0] or len(alive) < 2:
            return _new(Entry, (entry[0], FILE, *entry[2:7], None, *entry[8:]))
        return entry if entry[7] == primary else entry._replace(target=primary)

    @property
    def _chunks(self) -> Any:
        """The encoded folders of a tree read from an index file (``explorer.tree.lazy``), or None."""
        return getattr(self.versions, "chunks", None)

    def stored_in_looked_at_folders(self) -> Callable[[str], Any]:
        """A plain dict lookup of what is stored for a path whose folder's ``kids`` were asked
        for (a cached index decodes a folder then): no method call per path. While a search
        records (``recording``), any other decode may let go of that folder: a miss must be
        asked again the lazy way (``entry_at``, ``versions``), which decodes it again."""
        chunks = self._chunks
        return chunks.versions.get if chunks is not None else self.versions.get

    def unread(self) -> Callable[[str], bool] | None:
        """For a tree read from an index file with folders still encoded: whether looking a
        path up decodes its folder first (a few milliseconds for a big one); else None."""
        chunks = self._chunks
        if chunks is None or chunks.complete:
            return None
        return lambda path: chunks.pending(path[: path.rfind("/")] or "/")

    def encoded(self) -> bool:
        """Whether some folders of a tree read from an index file are still encoded."""
        return self.unread() is not None

    def changes_steps(self, layer: int | None) -> Iterator[None]:
        """Decode what a tree read from the index cache still holds encoded of a layer's
        changes (every layer's when None), a part a step."""
        steps = getattr(self.changes, "decode_steps", None)
        if steps is not None:
            for k in [layer] if layer is not None else range(len(self.changes)):
                yield from steps(k)

    def matching_steps(self, match: Callable[[str], bool]) -> Steps[list[str]]:
        """Every path but the root that ``match`` accepts (a walk): from the path table of a
        tree read from an index file (no folder decoded), else from ``versions``."""
        chunks = self._chunks
        table = chunks.table if chunks is not None else None
        if table is not None and (not chunks.complete or getattr(match, "needles", None) is not None):
            try:  # (text is sought as bytes: quicker even once every folder is decoded)
                return (yield from table.matching_steps(match))
            except ValueError:
                chunks.table = None  # damaged: every path is asked instead, now and after
        yield from self.decode_steps()
        found = []
        for i, path in enumerate(self.versions):
            if not i & EVERY:
                yield
            if match(path) and path != "/":
                found.append(path)
        return found

    def shown_steps(self, match: Callable[[str], bool] | None, layer: int | None, hide: frozenset[str] = frozenset(),
                    folders: bool = True, into: Callable[[list[str]], Steps[None]] | None = None,
                    ) -> Steps[tuple[list[str], list[str]] | None]:
        """For a tree read from an index file with a path table and columns: the paths but the
        root that ``match`` accepts (None: all) and the merged view at ``layer`` (None: the
        final image) shows, but those whose change is in ``hide`` and folders unless
        ``folders`` (``Columns.shown``), told with no folder decoded; and those matched that
        the columns do not cover (paths their folder does not list), to be asked one by one.
        With ``into``, the first are handed to that walk a part of the table at a time (none
        returned). None for any other tree (a walk)."""
        chunks = self._chunks
        table = chunks.table if chunks is not None else None
        columns = self.columns() if table is not None else None
        if columns is None or columns.paths > len(table):
            return None
        import numpy as np

        uncovered = cut = 0
        rest: list[str] = []

        def there(first: int, hits: list[int]) -> list[bool]:
            nonlocal uncovered, cut
            numbers = np.asarray(hits, dtype=np.int64) + first
            covered = numbers < columns.paths  # (the strays come last in the table)
            shown = np.ones(len(numbers), dtype=bool)
            shown[covered] = columns.shown(numbers[covered], layer, hide, folders)
            uncovered += len(numbers) - int(np.count_nonzero(covered))
            cut = int(np.count_nonzero(shown & covered))  # (of this part's kept, those covered come first)
            return shown.tolist()

        def taken(paths: list[str]) -> Steps[None]:
            nonlocal cut
            kept, cut = cut, 0  # (a part with no match asks ``there`` nothing)
            yield from into(paths[:kept])  # type: ignore[misc]
            rest.extend(paths[kept:])

        try:
            found = yield from table.matching_steps(match, there, taken if into is not None else None)
        except ValueError:
            chunks.table = None  # damaged: every path is asked instead, now and after
            return None
        if into is not None:
            return [], rest
        cut = len(found) - uncovered
        return found[:cut], found[cut:]

    def has_child_at(self, folder: str, layer: int | None) -> bool | None:
        """For a tree read from an index file, whether a folder has a child at ``layer``
        (None: the final image), said without decoding anything; else None."""
        chunks = self._chunks
        at = self.layer_count - 1 if layer is None else layer
        return None if chunks is None or at < 0 else chunks.has_child_at(folder, at)

    def columns(self) -> Columns | None:
        """For a tree read from an index file, its columns (``explorer.tree.columns.Columns``):
        any layer's folder sizes without decoding a folder; else None."""
        chunks = self._chunks
        return chunks.columns(self.layer_count) if chunks is not None else None

    def strays(self) -> Iterator[tuple[str, list[str], list[Any]]]:
        """For a tree read from an index file: each folder's paths it does not list (the
        columns leave them out), with what is stored for each."""
        chunks = self._chunks
        for folder, unlisted in (chunks.strays.items() if chunks is not None else ()):
            prefix = folder if folder == "/" else folder + "/"
            yield folder, unlisted, [chunks.versions.get(prefix + name) for name in unlisted]

    def stored_steps(self) -> Iterator[tuple[str, list[str], list[Any]] | None]:
        """For a tree read from an index file: each folder's names and what is stored for each
        (``lazy.Chunks.stored_steps``: nothing decoded is kept), None between folders."""
        chunks = self._chunks
        if chunks is None:
            raise ValueError("not a tree read from an index file")
        return chunks.stored_steps()

    def stored_in(self, folder: str) -> tuple[list[str], list[Any]]:
        """A folder's names and what is stored for each (``stored_at`` reads either form); of
        a tree read from an index file, not kept when still encoded (``lazy.Chunks.stored``)."""
        chunks = self._chunks
        if chunks is not None:
            return chunks.stored(folder)
        got = list(self.kids.get(folder, ()))
        prefix = folder if folder == "/" else folder + "/"
        return got, [self.versions.get(prefix + name) for name in got]

    def recording(self) -> "contextlib.AbstractContextManager[Callable[[str], None]]":
        """For a tree read from an index file: the folders decoded inside the block are let
        go of, as it goes and afterwards by ``forget_steps``, but for those handed to the
        function it gives (``lazy.Chunks.recording``); else nothing is."""
        chunks = self._chunks
        return chunks.recording() if chunks is not None else contextlib.nullcontext(_keep_nothing)

    def let_go_later(self, folders: Iterable[str]) -> None:
        """For a tree read from an index file: let go of these folders too, with what
        ``recording`` blocks left (``forget_steps``)."""
        chunks = self._chunks
        if chunks is not None:
            chunks.let_go_later(folders)

    def forget_steps(self) -> Iterator[None]:
        """Let go of the folders decoded inside ``recording`` blocks now over (a walk)."""
        chunks = self._chunks
        if chunks is not None:
            yield from chunks.forget_steps()

    def decode_steps(self) -> Iterator[None]:
        """Decode whatever of a tree read from the index cache is still encoded, a folder a step."""
        chunks = self._chunks
        if chunks is not None:
            yield from chunks.load_steps()

    def _normal(self, path: str, v: Any) -> Any:
        """An index read from the cache holds plain tuples, most without their path (None in
        its place): the entry (or the list of versions) they stand for, made for the caller
        and not kept. (Kept, one of them made the whole mapping of decoded paths tracked by
        the cycle collector: 32 ms a full pass once a million were decoded.)"""
        if type(v) is tuple:
            if type(v[0]) is int:
                return [_new(Version, (l, c, None if e is None else _entry(path, e))) for l, c, e in versions_of(v)]
            return _entry(path, v)
        return v

    def entry_at(self, path: str, layer: int | None = None) -> Entry | None:
        """The entry at ``path`` after layers 0..layer (the final image when None)."""
        v = self.versions.get(path)
        if v is None:
            return None
        if type(v) is tuple:
            v = self._normal(path, v)
        if type(v) is not list:
            return v if layer is None or v.layer <= layer else None  # type: ignore[union-attr]
        if layer is None:
            return v[-1].entry
        for version in reversed(v):
            if version.layer <= layer:
                return version.entry
        return None

    def history(self, path: str) -> list[Version]:
        """Each layer that touched ``path`` and what it did."""
        v = self.versions.get(path)
        if v is None:
            return []
        v = self._normal(path, v)
        return list(v) if type(v) is list else [Version(v.layer, ADDED, v)]  # type: ignore[union-attr]

    def multi_versions(self) -> Iterator[tuple[str, list[Version]]]:
        """Each path that more than one layer touched, with its versions."""
        plain = self._plain
        for path, v in list(self.versions.items()) if plain else self.versions.items():
            if several(v):
                yield path, self._normal(path, v) if plain else v

    def stored_entries(self) -> Iterator[Entry]:
        """Every entry any layer stored (removals left out), each with the layer that wrote it."""
        for path, v in list(self.versions.items()) if self._plain else self.versions.items():
            if self._plain:
                v = self._normal(path, v)
            if type(v) is not list:
                yield v  # type: ignore[misc]
                continue
            for version in v:
                if version.entry is not None:
                    yield version.entry

    def children(self, path: str, layer: int | None = None) -> list[str]:
        """Names of the entries inside directory ``path`` after layers 0..layer."""
        return [n for n in self.kids.get(path, ()) if self.entry_at(names.join(path, n), layer) is not None]

    def merged(self, layer: int | None = None) -> Iterator[Entry]:
        """Every entry of the merged filesystem after layers 0..layer (root excluded), unsorted;
        hard links as that filesystem has them (``effective``)."""
        if not self.links:
            return self._merged(layer)  # no wrapper to pass a million entries through
        effective = self.effective
        return (effective(e, layer) if e[1] == HARDLINK else e for e in self._merged(layer))

    def merged_in(self, wanted: Callable[[str], bool]) -> Iterator[Entry]:
        """The final image's entries (as ``merged`` has them) in the folders ``wanted`` accepts,
        given each folder's path with a trailing slash: a walk over folders, not every path
        (applying layers lists every path but the root in its folder)."""
        entry_at, effective = self.entry_at, self.effective
        for folder, children in self.kids.items():
            prefix = folder if folder == "/" else folder + "/"
            if not wanted(prefix):
                continue
            for name in children:
                e = entry_at(prefix + name)
                if e is not None:
                    yield effective(e) if e[1] == HARDLINK and self.links else e

    def _merged(self, layer: int | None) -> Iterator[Entry]:
        """``merged`` with hard links as their layers stored them."""
        if layer is None and not self._plain:  # the final image: each path's last version
            root = self.versions.get("/")
            for v in self.versions.values():
                if type(v) is not list:
                    if v is not root:
                        yield v  # type: ignore[misc]
                elif v is not root and v[-1].entry is not None:
                    yield v[-1].entry
            return
        entry_at = self.entry_at
        for path, v in list(self.versions.items()) if self._plain else self.versions.items():
            if path == "/":
                continue
            if self._plain:
                v = self._normal(path, v)
            if type(v) is not list and (layer is None or v.layer <= layer):  # type: ignore[union-attr]
                yield v  # type: ignore[misc]
                continue
            entry = entry_at(path, layer)
            if entry is not None:
                yield entry


class _LayerApplier:
    """Applies one layer on top of the state the tree holds so far."""

    def __init__(self, tree: LayerTree, layer: int, digest: ContentDigest) -> None:
        self.tree = tree
        self.layer = layer
        self.live = tree.live
        # Each touched path's state before the layer: its entry, None when it was absent, or
        # ``NEW`` when no layer had it yet (this layer listed it in ``kids``).
        self.before: dict[str, Entry | None | object] = {}
        self._digest_fn = digest
        self.redirected: list[tuple[str, str]] = []
        self.first = not tree.versions and not tree.live  # the first layer applied: every path new
        self.max_paths = tar_index.budgets().paths  # bytes the image's paths may add up to
        self.removed = False  # whether anything left ``live`` during the layer
        # Where folders named through a symlinked folder really are, as looked up so far (a
        # layer puts thousands of files there); forgotten when a link or a removal may change it.
        self.moved: dict[str, str | None] = {}
        self.looked_up = 0  # bytes of paths looked up to resolve links, against a budget

    def touch(self, path: str, old: Entry | None | object = NEW) -> None:
        """Remember the state of ``path`` before this layer changes it (``old``: its live entry,
        when the caller has looked it up already)."""
        if path not in self.before:
            if old is NEW:
                old = self.live.get(path)
            if old is None and path != "/" and path not in self.tree.versions:
                tree = self.tree
                tree.path_bytes += len(path)
                if tree.path_bytes > self.max_paths:
                    too_many_paths(self.max_paths)
                cut = path.rfind("/")
                tree.kids.setdefault(path[:cut] or "/", []).append(path[cut + 1 :])
                old = NEW
            self.before[path] = old

    def through_symlinks(self, path: str, whole: bool = False) -> str | None:
        """Where ``path`` really is when a directory on its way is a symlink; None if none is.

        Links are followed inside the image's root only (``..`` stops at ``/``), the way
        containerd and umoci place entries; the last component is followed only if ``whole``.
        """
        live = self.live
        parts = path.strip("/").split("/")
        queue, last = (parts, "") if whole else (parts[:-1], parts[-1])
        queue.reverse()  # taken from the end: from the front, a path 4,000 folders deep took 4,000 moves a step
        resolved, hops, followed = "", 0, False
        while queue:
            comp = queue.pop()
            if comp in ("", "."):
                continue
            if comp == "..":
                resolved = resolved[: resolved.rfind("/")]
                continue
            candidate = resolved + "/" + comp
            self.looked_up += len(candidate)
            if self.looked_up > 4 * self.max_paths:
                raise TooManyPaths("its paths go through symlinked folders too many folders deep to follow")
            entry = live.get(candidate)
            if entry is None and ".." not in queue:
                # Nothing is below a path that is not there: the rest is only named.
                queue.append(candidate)
                resolved = "/".join(c for c in reversed(queue) if c not in ("", "."))
                break
            if entry is not None and entry.type == SYMLINK:
                hops += 1
                if hops > 40:
                    return None  # a loop of links: leave the path as written
                followed = True
                target = entry.target or ""
                if target.startswith("/"):
                    resolved = ""
                queue.extend(reversed(target.split("/")))
                continue
            resolved = candidate
        if not followed:
            return None
        out = resolved + "/" + last if last else resolved
        return out or "/"

    def remove_children(self, path: str) -> None:
        """Remove everything below ``path`` that currently exists."""
        self.moved.clear()  # a link on the way may go
        live, kids, before = self.live, self.tree.kids, self.before
        stack = [path]
        while stack:
            top = stack.pop()
            prefix = top if top == "/" else top + "/"
            for name in kids.get(top, ()):
                child = prefix + name
                old = live.get(child)
                if old is not None:
                    before.setdefault(child, old)  # (``touch``, inline: an opaque folder empties thousands)
                    del live[child]
                    self.removed = True
                    stack.append(child)

    def remove(self, path: str) -> None:
        """Remove ``path`` and its subtree, if it exists."""
        entry = self.live.get(path)
        if entry is None:
            moved = self.through_symlinks(path)
            if moved is not None and moved != path:
                self.redirected.append((path, moved))
                self.remove(moved)
            return
        if entry.type == DIR:
            self.remove_children(path)  # (which forgets where linked folders are)
        elif entry.type == SYMLINK:
            self.moved.clear()  # a link on the way goes
        self.touch(path)
        del self.live[path]
        self.removed = True

    def ensure_parent(self, path: str) -> None:
        """Make sure the parent directory exists, creating implicit ones (and replacing files).

        Iterative, not recursive: a hostile layer may nest thousands of folders.
        """
        missing = []
        parent = path[: path.rfind("/")] or "/"
        while True:
            entry = self.live.get(parent)
            if entry is not None and entry.type == DIR:
                break
            if parent == "/":
                if entry is None:  # layers rarely carry "./"; the root exists all the same
                    self.touch("/")
                    self.live["/"] = Entry("/", DIR, IMPLICIT_MODE, 0, 0, 0, 0, None, self.layer, -1, None, None)
                break
            missing.append((parent, entry))
            parent = parent[: parent.rfind("/")] or "/"
        for folder, entry in reversed(missing):  # top down
            if entry is not None:
                self.remove(folder)  # a file in the way becomes a directory (no whiteout needed)
            self.touch(folder)
            self.live[folder] = Entry(folder, DIR, IMPLICIT_MODE, 0, 0, 0, 0, None, self.layer, -1, None, None)

    def put(self, entry: Entry) -> None:
        """Write an entry: directories over directories keep their children, all else replaces."""
        path = entry.path
        live = self.live
        if path != "/":
            cut = path.rfind("/")
            folder = path[:cut] or "/"
            parent = live.get(folder)
            if parent is None or parent.type != DIR:
                there = self.moved.get(folder, NEW)
                if there is NEW:
                    there = self.moved[folder] = self.through_symlinks(folder, whole=True)
                moved = None if there is None else there.rstrip("/") + path[cut:]
                if moved is not None and moved != path and moved != "/":
                    self.redirected.append((path, moved))
                    entry = entry._replace(path=moved)
                    path = moved
                self.ensure_parent(path)
        old = live.get(path)
        if old is not None and old.type == DIR and entry.type != DIR:
            self.remove_children(path)
        if entry.type == SYMLINK or (old is not None and old.type == SYMLINK):
            self.moved.clear()  # where folders named through links are may change
        if entry.type == HARDLINK:  # looked up once what it replaces is gone, as link(2) sees it
            entry = self.link(entry)
        elif self.tree.hardlink_data:
            self.tree.hardlink_data.pop((self.layer, path), None)  # last wins, link or not
        if path not in self.before:
            self.touch(path, old)
        live[path] = entry

    def link(self, entry: Entry) -> Entry:
        """Resolve a hardlink: it names its target by path, possibly in a lower layer."""
        target = names.normalise(entry.target or "")
        found = self.live.get(target) if target else None
        if found is None and target:  # named through a symlinked folder (/bin -> usr/bin)
            moved = self.through_symlinks(target)
            if moved is not None:
                target, found = moved, self.live.get(moved)
        tree = self.tree
        key = tree.inode(found) if found is not None else None
        sparse = found is not None and found.type in (FILE, HARDLINK) and found.offset == -2  # no place of its own
        if key is None and not sparse:  # nothing there, or no file: a folder, a link to nothing
            tree.hardlink_data.pop((self.layer, entry.path), None)  # an earlier link of this name is gone
            tree.warnings.append(
                f"layer {self.layer}: hardlink {entry.path} points to {entry.target!r}, which is not a file there"
            )
            return entry._replace(target=target or entry.target)
        tree.hardlink_data[(self.layer, entry.path)] = key[0] if key is not None else tree.data_layer(found)
        if key is not None:  # (a sparse file's names stay apart: there is no place to know it by)
            names_of = tree.links.setdefault(key, {target: None})
            names_of[target] = names_of[entry.path] = None
        return entry._replace(target=target, size=found.size, digest=found.digest, offset=found.offset)

    def digest(self, entry: Entry) -> str | None:
        """Content digest of an entry (the digest function hashes, and remembers, what it must)."""
        return self._digest_fn(entry, self.tree.data_layer(entry))

    def finish(self) -> None:
        """Record the net effect of the layer on every path it touched."""
        tree, layer, live = self.tree, self.layer, self.live
        versions = tree.versions
        changes = tree.changes[layer]
        if self.first:
            # Every path is new: what is live was added (the root too, which is no change), in
            # the order it was placed; what is not came and went (``_place`` leaves the paths it
            # places out of ``before``, and a removal touches them).
            for path in self.before:
                if path not in live and path != "/":
                    tree.path_bytes -= len(path)
                    cut = path.rfind("/")
                    tree.kids[path[:cut] or "/"].remove(path[cut + 1 :])
            versions.update(live)
            changes.paths += [path for path in live if path != "/"]
            changes.kinds += bytes(len(changes.paths))  # (ADDED is 0)
            changes.folders += bytes([e[1] == DIR for path, e in live.items() if path != "/"])
            return
        changed, kinds, folders = changes.paths.append, changes.kinds.append, changes.folders.append
        codes = LayerChanges.CODES
        added = codes[ADDED]
        new = tuple.__new__  # (a named tuple made directly: a third of the time of calling it)
        for path, old in self.before.items():
            after = live.get(path)
            if old is NEW:
                if after is None:  # came and went within the layer
                    tree.path_bytes -= len(path)
                    cut = path.rfind("/")
                    tree.kids[path[:cut] or "/"].remove(path[cut + 1 :])
                else:
                    versions[path] = after  # the compact form: added once
                    changed(path)
                    kinds(added)
                    folders(after[1] == DIR)
                continue
            if old is None:
                if after is None:
                    continue
                change = ADDED
            elif after is None:
                change = REMOVED
            elif (old[1] == FILE and after[1] == FILE and old[5] != after[5]) or is_modified(old, after, self.digest):
                change = MODIFIED  # (a file of another size: ``is_modified`` says so too, without a call)
            elif after.layer == layer and after.offset != -1:  # -1: an implicit directory
                change = UNCHANGED  # rewritten as it was: not a change, but this layer's copy now
            else:
                continue
            v = versions.get(path)
            if v is None and change == ADDED:
                versions[path] = after  # the compact form: added once
            else:
                if v is None:
                    v = versions[path] = []
                elif type(v) is not list:
                    v = versions[path] = [new(Version, (v.layer, ADDED, v))]  # type: ignore[union-attr]
                v.append(new(Version, (layer, change, after)))  # type: ignore[union-attr]
            if change != UNCHANGED and path != "/":
                changed(path)
                kinds(codes[change])
                folders((old if after is None else after)[1] == DIR)


def _keep_nothing(_folder: str) -> None:
    """What ``recording`` gives for a tree that lets go of nothing."""


_ODD_START = ("", ".", "/")  # names that start so (or hold "//" or "/.") need ``normalise``'s care


def apply_layer(tree: LayerTree, layer: int, members: Iterable[TarMember], digest: ContentDigest) -> None:
    """Apply one layer's tar members to the tree (whiteouts first, then entries)."""
    applier = _LayerApplier(tree, layer, digest)
    tree._groups.clear()  # names of a file as the layers so far had them
    opaque: list[str] = []
    whiteouts: list[str] = []
    entries: list[Entry] = []
    count = size = 0
    normalise = names.normalise
    new = tuple.__new__
    kinds = TAR_TYPES
    # (fields unpacked, not read by position: nine lookups less an entry)
    for name, code, mode, uid, gid, bytes_, mtime, target, offset, xattrs, digest, _ in members:
        count += 1
        kind = kinds.get(code, FILE)  # unknown types (GNU sparse, contiguous) hold file data
        if kind == FILE:
            size += bytes_
            if name.endswith("/"):
                kind = DIR  # old tars mark directories only by the trailing slash
                bytes_ = 0
        else:
            bytes_ = 0
        if "//" in name or "/." in name or name[:1] in _ODD_START:
            path = normalise(name)  # (the careful way, for the few names that need it)
            if path is None:
                tree.unsafe[layer].append(name)
                continue
        else:
            path = "/" + name.rstrip("/")  # what ``normalise`` makes of the rest
        if ".wh." in path:
            base = path[path.rfind("/") + 1 :]
            if base.startswith(names.WHITEOUT):
                parent = path[: path.rfind("/")] or "/"
                if base == names.OPAQUE:
                    opaque.append(parent)
                elif base.startswith(names.AUFS_META):
                    pass  # AUFS bookkeeping, never a file
                elif base == names.WHITEOUT:
                    tree.warnings.append(f"layer {layer}: invalid whiteout name {name!r} ignored")
                else:
                    whiteouts.append(names.join(parent, base[4:]))
                continue
            if names.is_aufs_meta(path):
                continue
        entries.append(new(Entry, (path, kind, mode, uid, gid, bytes_, mtime,
                                   target if kind == SYMLINK or kind == HARDLINK else None, layer, offset, xattrs, digest)))
    tree.stats.append(LayerStats(count, size, len(whiteouts), len(opaque)))
    if tree.unsafe[layer]:
        tree.warnings.append(
            f"layer {layer}: {len(tree.unsafe[layer])} unsafe entry name(s) with '..' skipped, e.g. {tree.unsafe[layer][0]!r}"
        )
    # Whiteouts hide lower layers only, so they apply before this layer's own entries.
    for d in opaque:
        entry = tree.live.get(d)
        if entry is None or entry.type != DIR:
            d = applier.through_symlinks(d, whole=True) or d
        applier.remove_children(d)
    for w in whiteouts:
        applier.remove(w)
    _place(tree, applier, entries)
    if applier.redirected:
        first, where = applier.redirected[0]
        tree.warnings.append(
            f"layer {layer}: {len(applier.redirected)} entr{'y' if len(applier.redirected) == 1 else 'ies'} "
            f"went through a symlinked directory (e.g. {first} is {where}); placed where the link points, "
            "as containerd and umoci do"
        )
    applier.finish()


def _place(tree: LayerTree, applier: _LayerApplier, entries: list[Entry]) -> None:
    """``applier.put`` each entry, with the common case inline: a path whose folder is there
    and which this layer has not touched yet (a million calls of ``put`` and ``touch`` cost
    more than the dictionary work they do)."""
    put, live, before, versions, kids = applier.put, tree.live, applier.before, tree.versions, tree.kids
    links = tree.hardlink_data
    layer = applier.layer
    limit = applier.max_paths
    # The folder of the entry before, which a tar's order makes the next entry's too: its
    # entry (looked up again only after a change that may have touched it) and its names.
    folder, above, names_in = "", None, []
    # In the first layer, while nothing has gone again, a path not live is one no entry has
    # named yet, and ``finish`` needs no note of the paths placed here (every one is new).
    first = applier.first
    fresh = first and not applier.removed
    for entry in entries:
        path = entry[0]
        cut = path.rfind("/")
        parent = path[:cut] or "/"
        if parent != folder:
            folder, above, names_in = parent, live.get(parent), None
        # (links go through ``put``, which forgets where folders named through links are)
        if above is None or above[1] != DIR or entry[1] == HARDLINK or entry[1] == SYMLINK or path == "/" \
                or (not fresh and path in before):
            put(entry)
            folder = ""  # ``put`` may have changed the folders
            fresh = first and not applier.removed
            continue
        old = live.get(path)
        if old is not None:
            if (old[1] == DIR and entry[1] != DIR) or old[1] == SYMLINK:
                put(entry)
                folder = ""
                fresh = first and not applier.removed
                continue
            if not first:
                before[path] = old
        elif not first and path in versions:
            before[path] = None
        else:  # ``touch`` of a path no layer had
            tree.path_bytes += len(path)
            if tree.path_bytes > limit:
                too_many_paths(limit)
            if names_in is None:
                names_in = kids.setdefault(parent, [])
            names_in.append(path[cut + 1 :])
            if not first:
                before[path] = NEW
        if links:
            links.pop((layer, path), None)  # last wins, link or not
        live[path] = entry
