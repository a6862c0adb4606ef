"""What a file tree shows: an image's tree at one layer, merged or as that layer's changes.

Pure Python over ``LayerTree``; the Qt model asks this for the children of expanded rows
only, so nothing is built for the whole tree up front.
"""

from __future__ import annotations

import fnmatch
import re
from itertools import compress, islice
from typing import Any, Callable, Collection, Container, Iterable, Iterator, NamedTuple

from explorer.model.values import DIR, FILE, HARDLINK, Entry
from explorer.tree import names
from explorer.tree.columns import Columns, LayerSizes
from explorer.tree.diff import ADDED, MODIFIED, REMOVED, UNCHANGED
from explorer.tree.index import Inode, LayerChanges, LayerTree, stored_at
from explorer.tree.pathtable import Match
from explorer.tree.resolve import resolve
from explorer.tree.steps import EVERY, Steps, drain

MERGED, DIFF = "merged", "diff"
_new = tuple.__new__
SUBSTRING, GLOB, REGEX = "substring", "glob", "regex"

_FEW = 1023  # entries a step where each costs more than a lookup (a mask, as ``EVERY``)


class Row(NamedTuple):
    """One row of the tree: the path, the entry shown (the lower one when removed), the change."""

    path: str
    name: str
    entry: Entry
    change: str


class TreeView:
    """The tree of one image at ``layer`` (None: all layers) in MERGED or DIFF mode."""

    def __init__(self, tree: LayerTree, layer: int | None, mode: str = MERGED, relevant: Collection[str] | None = None) -> None:
        """``relevant``: for DIFF, the paths ``changed_paths_steps`` gathered (else gathered here)."""
        self.tree = tree
        self.layer = layer
        self.mode = mode
        self._relevant: Collection[str] | None = None
        if mode == DIFF:
            self._relevant = relevant if relevant is not None else drain(changed_paths_steps(tree, layer))
        self._totals: dict[str, int] | None = None
        self.entries = self.file_bytes = -1  # the merged view's counts, known after totals()

    # -- one path ------------------------------------------------------------------------

    def row(self, path: str) -> Row | None:
        """The row for ``path`` in this view, or None when the view does not show it."""
        tree, layer = self.tree, self.layer
        if self._relevant is not None and path not in self._relevant:
            return None
        entry = tree.entry_at(path, layer)
        change = self.change_of(path)
        if entry is None:
            if change != REMOVED or self.mode != DIFF:
                return None  # the merged view shows what a container sees: removed is gone
            entry = self._last_entry(path)
            if entry is None:
                return None
        elif entry[1] == HARDLINK:
            entry = tree.effective(entry, layer)
        return Row(path, names.split(path)[1], entry, change)

    def holds(self, path: str, kind: str, change: str) -> bool:
        """Whether the row of ``path`` (of type ``kind``, ``change`` shown) can have rows below
        it: a folder, or in a layer's changes a folder that the layer replaced by a file (what
        it held is shown removed under it)."""
        if kind == DIR:
            return True
        if self.mode != DIFF or change != MODIFIED:
            return False
        if self.layer is None:  # all layers: a folder at any time before
            return any(v.entry is not None and v.entry.type == DIR for v in self.tree.history(path))
        before = self.tree.entry_at(path, self.layer - 1) if self.layer else None
        return before is not None and before.type == DIR

    def change_of(self, path: str) -> str:
        """What the selected layer (or, for all layers, the image's history) did to ``path``."""
        history = self.tree.history(path)
        if self.layer is not None:
            for v in history:
                if v.layer == self.layer:
                    return v.change
            return UNCHANGED
        # all layers: what later layers did to what earlier ones wrote
        if not history:
            return UNCHANGED
        if history[-1].entry is None:
            return REMOVED
        return MODIFIED if any(v.change == MODIFIED for v in history) else UNCHANGED

    def _last_entry(self, path: str) -> Entry | None:
        """The entry a removed path had just before it was removed."""
        last = None
        for v in self.tree.history(path):
            if self.layer is not None and v.layer >= self.layer:
                break
            if v.entry is not None:
                last = v.entry
        return last

    # -- children ------------------------------------------------------------------------

    def children(self, path: str, wanted: Container[str] | None = None) -> list[Row]:
        """Rows inside directory ``path``, unsorted; only of the paths in ``wanted`` when given
        (a search's: a folder of thousands where it shows a few makes only those)."""
        tree, layer, merged = self.tree, self.layer, self._relevant is None
        kids = tree.kids.get(path, ())  # (decodes the folder first, for a cached index)
        get = tree.stored_in_looked_at_folders()
        prefix = path if path == "/" else path + "/"
        out: list[Row] = []
        append, row = out.append, self.row
        wanted, by_name = wanted_names(wanted, path)
        for name in kids:
            child = prefix + name
            if wanted is not None and (name if by_name else child) not in wanted:
                continue
            if merged:
                # the common case, written out: a path one layer added and none touched again
                # (a folder may hold a hundred thousand of them, and this runs as it opens)
                v = get(child)
                if type(v) is tuple:
                    v = tree._normal(child, v)
                if type(v) is Entry and v[1] != HARDLINK:
                    if layer is None or v.layer < layer:
                        append(_new(Row, (child, name, v, UNCHANGED)))
                    elif v.layer == layer:
                        append(_new(Row, (child, name, v, ADDED)))
                    continue
            r = row(child)
            if r is not None:
                append(r)
        return out

    def shown_names_steps(self, path: str) -> "Steps[list[tuple[str, bool]]]":
        """MERGED mode: (name, is a folder) of each child shown, without making its row.

        Enough to order a folder of a hundred thousand files by name; the rows are then made
        only for what the view is handed (``row``). A walk: yields every few thousand children.
        """
        tree, layer = self.tree, self.layer
        kids = tree.kids.get(path, ())  # (decodes the folder first, for a cached index)
        get = tree.stored_in_looked_at_folders()
        prefix = path if path == "/" else path + "/"
        out = []
        for i, name in enumerate(kids):
            if not i & EVERY:
                yield
            child = prefix + name
            e = get(child)
            if type(e) is Entry or type(e) is tuple and type(e[0]) is not int:  # one version (a tuple:
                if layer is not None and e[8] > layer:  # as the index cache holds it, read as it is)
                    continue
            else:  # several versions, or none
                e = tree.entry_at(child, layer)
                if e is None:
                    continue
            out.append((name, e[1] == DIR))
        return out

    def has_children(self, path: str, visible: Collection[str] | None = None) -> bool:
        """Whether ``children(path)`` would be non-empty; stops at the first child found."""
        if visible is None and self._relevant is None:  # the merged view of a mapped index: the
            said = self.tree.has_child_at(path, self.layer)  # index says, decoding nothing (a folder of
            if said is not None:  # 2,000 folders held the window 130 ms as it opened; a hard link's
                return said  # row looks its other names up, in other folders)
        holders = getattr(self._relevant if visible is None else visible, "holders", None)
        if holders is not None:
            return path in holders
        for name in self.tree.kids.get(path, ()):
            child = names.join(path, name)
            if (visible is None or child in visible) and self.row(child) is not None:
                return True
        return False

    # -- sizes ---------------------------------------------------------------------------

    def totals(self) -> dict[str, int]:
        """Bytes of regular files below each directory of the view (computed once)."""
        return drain(self.totals_steps())

    @property
    def known_totals(self) -> dict[str, int] | None:
        """The folder sizes, when they have been counted (or given); None before."""
        return self._totals

    def use_totals(self, totals: dict[str, int]) -> None:
        """Take folder sizes worked out elsewhere (for this same tree, layer and mode)."""
        if self._totals is None:
            self._totals = totals

    def needs_totals(self) -> bool:
        """Whether this is the final image's merged view with its sizes not yet counted."""
        return self._totals is None and self.layer is None and self._relevant is None

    def sizes_at_once(self) -> bool:
        """Whether ``totals`` comes from an index's columns in a few milliseconds (a view at
        one layer, of an index small enough: ``Columns.at_once``)."""
        columns = self._columns()
        return columns is not None and columns.at_once()

    def _columns(self) -> Columns | None:
        """The columns of the index this view's tree was read from, when they can give its
        folder sizes: a view at one layer, merged or its changes (what the columns leave
        out, paths their folder does not list, are added for a merged view only)."""
        if self._totals is not None or self.layer is None:
            return None
        if self._relevant is not None and next(self.tree.strays(), None) is not None:
            return None
        return self.tree.columns()

    def totals_steps(self) -> "Steps[dict[str, int]]":
        """``totals`` as a walk that yields every few thousand entries."""
        columns = self._columns()
        if columns is not None:  # a tree read from an index file: array arithmetic over its columns
            return (yield from self._column_totals_steps(columns))
        if self._totals is None and self._relevant is None and self.tree.encoded():
            # a tree read from an index file: its folders as stored, none of them kept (a
            # million entries decoded for a layer's sizes stayed in the window: 400 MB)
            sizes = FolderSizes(self.tree, self.layer)
            for item in self.tree.stored_steps():
                if item is None:
                    yield
                    if self._totals is not None:
                        return self._totals  # another walk of this view (a warm-up) finished first
                else:
                    folder, names, stored = item
                    sizes.add(folder, folder if folder == "/" else folder + "/", names, stored)
            return sizes.give(self)
        if self._totals is None:
            if self._relevant is None:
                yield from self.tree.decode_steps()  # the walk below reads every path
            direct: dict[str, int] = {}  # bytes of the files directly inside each folder
            linked: dict[tuple[int, int], tuple[int, list[str]]] = {}  # file -> (size, its names)
            shared, links = self.tree.shared_file, self.tree.links
            for item in self._sized_paths():
                if item is None:
                    yield
                    if self._totals is not None:
                        return self._totals  # another walk of this view (a warm-up) finished first
                    continue
                path, e = item
                key = shared(e, path) if links else None
                if key is not None:
                    linked.setdefault(key, (e[5], []))[1].append(path)
                    continue
                parent = path[: path.rfind("/")] or "/"
                direct[parent] = direct.get(parent, 0) + e[5]
            self._totals = _with_links(roll_up(direct), linked)
        return self._totals

    def _column_totals_steps(self, columns: Columns) -> "Steps[dict[str, int]]":
        """``totals`` from the index's columns (``explorer.tree.columns``): for a merged view
        with the paths the columns leave out added, for a changes view of what its layer wrote."""
        layer, merged = self.layer, self._relevant is None
        sizes = FolderSizes(self.tree, layer)
        for folder, unlisted, stored in self.tree.strays() if merged else ():
            sizes.add(folder, folder if folder == "/" else folder + "/", unlisted, stored)
        counted = yield from columns.sizes_steps(layer, written=not merged)  # type: ignore[arg-type]
        for i, (path, key, size) in enumerate(counted.linked):
            if not i & _FEW:
                yield
            sizes.name_of(path, key, size)
        totals = sizes.merged_with(counted) if merged else counted.totals
        for i, (size, paths) in enumerate(sizes.linked.values()):  # (``_with_links``, in steps)
            if not i & _FEW:
                yield
            _add_to_folders_of(totals, paths, size)
        if self._totals is not None:
            return self._totals  # another walk of this view (a warm-up) finished first
        self._totals = totals
        if merged:  # (what a layer stores has no counts)
            self.entries, self.file_bytes = sizes.entries, sizes.file_bytes
        return totals

    def _sized_paths(self) -> Iterable[tuple[str, Entry] | None]:
        """(path, entry as stored) of every non-directory with bytes the view shows, and None
        after every few thousand paths looked at (shown or not), for the walk to pause at."""
        if self._relevant is not None and self.layer is not None and self.tree.encoded():
            yield from _stored_changes(self.tree, self.layer)
            return
        if self._relevant is not None and self.layer is not None:
            # what the layer stores: its added and modified entries (removed ones take no room)
            entry_at, layer, unread = self.tree.entry_at, self.layer, self.tree.unread()
            for i, (p, change) in enumerate(self.tree.changes[layer]):
                # (a path of a folder still encoded decodes it: a pause before each such one)
                if not i & _FEW or (unread is not None and unread(p)):
                    yield None
                if change != REMOVED:
                    e = entry_at(p, layer)
                    if e is not None and e.type != DIR and e.size:
                        yield p, e
            return
        if self._relevant is not None:
            unread = self.tree.unread()
            for i, p in enumerate(self._relevant):
                if not i & EVERY or (unread is not None and unread(p)):
                    yield None
                r = self.row(p)
                if r is not None and r.change != REMOVED and r.entry.type != DIR and r.entry.size:
                    yield p, self.tree.entry_at(p, self.layer)  # as stored: ``shared_file`` reads that
            return
        # The merged view reads the stored versions directly: a million entries go through here
        # on every layer switch, and the plain tuples of a cached index need no conversion.
        layer = self.layer
        entries = file_bytes = 0
        shared, links = self.tree.shared_file, self.tree.links
        counted: set[tuple[int, int]] = set()  # hard-linked files already in file_bytes
        for i, (path, v) in enumerate(self.tree.versions.items()):
            if not i & EVERY:
                yield None
            if type(v) is list or type(v[0]) is int:  # (``several``, inline: a million paths)
                e = (v[-1][2] if type(v) is list else v[-1]) if layer is None else stored_at(v, layer)
                if e is None:
                    continue
            else:
                e = v
                if layer is not None and e[8] > layer:
                    continue
            if path == "/":
                continue
            entries += 1
            kind = e[1]
            if kind == FILE or kind == HARDLINK:
                key = shared(e, path) if links else None
                if key is not None:
                    if key not in counted:
                        counted.add(key)
                        file_bytes += e[5]
                elif kind == FILE:
                    file_bytes += e[5]
            if kind != DIR and e[5]:
                yield path, e
        self.entries, self.file_bytes = entries, file_bytes


def _stored_changes(tree: LayerTree, layer: int) -> Iterable[tuple[str, Entry] | None]:
    """``_sized_paths`` of a layer's changes, for a tree read from an index file: the entries
    a layer added or modified, read from their folders as stored, none of them kept (None
    between folders)."""
    by_folder: dict[str, list[str]] = {}
    for i, (path, change) in enumerate(tree.changes[layer]):
        if not i & EVERY:
            yield None
        if change != REMOVED:
            cut = path.rfind("/")
            by_folder.setdefault(path[:cut] or "/", []).append(path[cut + 1:])
    for folder, wanted in by_folder.items():
        names, stored = tree.stored_in(folder)
        found = dict(zip(names, stored))
        prefix = folder if folder == "/" else folder + "/"
        for name in wanted:
            v = found.get(name)
            e = stored_at(v, layer) if v is not None else None  # the version this layer wrote
            if e is not None and e[1] != DIR and e[5]:
                yield prefix + name, e
        yield None


_CHUNK = 32768  # paths per step: a set of half a million at once held the window for 160 ms
_SMALL_CHUNK = 8192  # paths a step where each takes a few lines of Python (a few ms)


def changed_paths_steps(tree: LayerTree, layer: int | None) -> "Steps[Shown]":
    """DIFF mode: the paths a layer changed (all layers: ever removed too), with their folders.

    A walk in steps of ``_CHUNK`` paths, then of their folders a level at a time (a layer may
    change hundreds of thousands of paths, and the window gathers them as the user clicks).
    """
    keep = Shown()
    kept = keep.paths
    added = LayerChanges.CODES[ADDED]
    for k in [layer] if layer is not None else range(len(tree.changes)):
        # each layer decoded a part a step, and read at once (only the latest few stay decoded)
        yield from tree.changes_steps(k)
        changes = tree.changes[k]
        for i in range(0, len(changes), _CHUNK):
            yield
            paths = changes.paths[i:i + _CHUNK]  # (no pair made for each: a step took 42 ms)
            kept.update(dict.fromkeys(paths if layer is not None
                                      else compress(paths, map(added.__ne__, changes.kinds[i:i + _CHUNK]))))
    level: list[str] = list(kept)
    while level:  # their folders, a level at a time
        parents: dict[str, None] = {}
        for i in range(0, len(level), _SMALL_CHUNK):
            yield
            parents.update(dict.fromkeys([p[: p.rfind("/")] or "/" for p in level[i:i + _SMALL_CHUNK]]))
        keep.holders.update(parents)
        level = [p for p in parents if p not in kept]
        kept.update(dict.fromkeys(level))
    kept.pop("/", None)
    return keep


class Shown:
    """The paths a layer's changes view shows (``changed_paths_steps``), and ``holders``: the
    folders that hold one of them, so that whether a folder has anything in the view is said
    without decoding it (a folder of 2,488 folders held the window 70 ms as the view opened).
    Asked of path after path as the view's rows are made, they are kept as whole paths (what
    a search or filter keeps, held by folder instead, is ``Visible``).

    Both are dicts of strings, which the cycle collector does not track, where a set is
    walked by every full pass: a million-path image's changes views and filters held
    480,000 paths in sets, and each full pass took 50 ms.
    """

    __slots__ = ("paths", "holders")

    def __init__(self) -> None:
        self.paths: dict[str, None] = {}
        self.holders: dict[str, None] = {}

    def __contains__(self, path: object) -> bool:
        return path in self.paths

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __eq__(self, other: object) -> bool:
        """The same paths shown (as a set of them: ``holders`` follow from them)."""
        if isinstance(other, Shown):
            return self.paths.keys() == other.paths.keys()
        if isinstance(other, Visible):
            return other == self
        return self.paths.keys() == other if isinstance(other, (set, frozenset)) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Shown({sorted(self.paths)!r})"

    def add(self, path: str) -> None:
        """Show ``path`` too."""
        self.paths[path] = None


class Visible:
    """What a search or filter shows (``visible_paths_steps``): each path kept with its
    ancestors, held by folder as the names shown in it. ``holders``, the folders that hold
    one of them, are its keys, so whether a folder has anything shown is said without
    decoding it.

    Once gathered (``pack``), a folder's names are one text, joined by "/" (which no name
    holds): a filter that showed 713,225 of a million paths kept them as that many strings
    in a dict, 82 MB of the window's; as names in a text, a byte more than their characters
    each, 9 MB. A folder's names are made a set again when it is shown (the few last
    asked for are kept: the view asks a folder's children more than once as it opens).
    """

    __slots__ = ("holders", "_count", "_sets", "_chained", "_mixed")

    KEPT_SETS = 4  # folders whose names stay a set once asked for
    KEPT_NAMES = 20_000  # but not one of more names once packed (700,000 names of 15 letters: 78 MB)

    def __init__(self) -> None:
        # folder -> its names shown: while gathered, a dict of them (``add``) or a list of
        # texts (``take``); one text once packed (a dict of strings: untracked by the cycle
        # collector)
        self.holders: dict[str, Any] = {}
        self._count: int | None = 0  # (None: to be counted again, once packed)
        self._sets: dict[str, frozenset[str]] = {}
        self._chained: dict[str, None] = {}  # folders ``take`` has shown in their folders
        self._mixed: dict[str, None] = {}  # folders whose texts may name a path twice

    def add(self, path: str) -> None:
        """Show ``path`` and its folders."""
        holders = self.holders
        while path != "/" and path:
            cut = path.rfind("/")
            folder, name = path[:cut] or "/", path[cut + 1:]
            held = holders.get(folder)
            if held is None:
                holders[folder] = held = {}
            elif type(held) is not dict:  # (texts, taken or packed: names to add to one by one)
                holders[folder] = held = dict.fromkeys(self._names_of(held))
                self._sets.pop(folder, None)
                self._count = None
            if name in held:
                return  # (and so are its folders)
            held[name] = None
            if self._count is not None:
                self._count += 1
            path = folder

    def take(self, paths: list[str]) -> None:
        """Show ``paths``, none shown yet nor twice among them (a part of an index's path
        table), and their folders. Each folder's names among them become one text at once:
        as names kept one by one, between the part's paths made and let go of, the
        allocator's pages they were on could not go back (30 MB more after a filter)."""
        runs: dict[str, list[str]] = {}
        for path in paths:
            cut = path.rfind("/")
            folder = path[:cut] or "/"
            run = runs.get(folder)
            if run is None:
                runs[folder] = run = []
            run.append(path[cut + 1:])
        chained, mixed = self._chained, self._mixed
        self._count = None
        for folder, run in runs.items():
            self._append(folder, "/".join(run))
            while folder != "/" and folder not in chained:  # its folders, each once
                chained[folder] = None
                cut = folder.rfind("/")
                parent = folder[:cut] or "/"
                self._append(parent, folder[cut + 1:])
                mixed[parent] = None  # (the folder may be among the paths taken too)
                folder = parent

    def _append(self, folder: str, text: str) -> None:
        """Add a text of names to what ``folder`` shows."""
        held = self.holders.get(folder)
        if held is None:
            self.holders[folder] = [text]
        elif type(held) is list:
            held.append(text)
            self._sets.pop(folder, None)
        else:
            if type(held) is str:
                self.holders[folder] = held = dict.fromkeys(held.split("/"))
                self._sets.pop(folder, None)
            held.update(dict.fromkeys(text.split("/")))

    @staticmethod
    def _names_of(held: Any) -> list[str]:
        """A folder's names, as any of its forms holds them."""
        if type(held) is str:
            return held.split("/")
        if type(held) is list:
            return "/".join(held).split("/")
        return list(held)

    def pack(self) -> None:
        """Keep each folder's names as one text (see the class), each once."""
        self._sets.clear()
        holders, mixed = self.holders, self._mixed
        for folder, held in holders.items():
            if type(held) is dict:
                holders[folder] = "/".join(held)
            elif type(held) is list:
                text = "/".join(held)
                holders[folder] = "/".join(dict.fromkeys(text.split("/"))) if folder in mixed else text
        self._chained, self._mixed = {}, {}
        self._count = None

    def names_in(self, folder: str) -> Container[str]:
        """The names shown in ``folder`` (none for a folder that holds nothing shown)."""
        held = self.holders.get(folder)
        if type(held) is dict:
            return held
        if held is None:
            return ()
        found = self._sets.pop(folder, None)
        if found is None:
            found = frozenset(self._names_of(held))
            if type(held) is str and len(found) > self.KEPT_NAMES:
                return found  # (made again if asked again: the view asks once as the folder opens)
            if len(self._sets) >= self.KEPT_SETS:
                del self._sets[next(iter(self._sets))]
        self._sets[folder] = found  # (the last asked for, last)
        return found

    def __contains__(self, path: object) -> bool:
        if type(path) is not str or path == "/" or not path:
            return False
        cut = path.rfind("/")
        return path[cut + 1:] in self.names_in(path[:cut] or "/")

    def __iter__(self) -> Iterator[str]:
        for folder, held in list(self.holders.items()):
            prefix = folder if folder == "/" else folder + "/"
            for name in dict.fromkeys(self._names_of(held)) if type(held) is list else self._names_of(held):
                yield prefix + name  # (a folder's texts, while taken, may name a path twice)

    def __len__(self) -> int:
        if self._count is None:  # (a dict or a packed text names each once; texts taken may not)
            self._count = sum(len(held) if type(held) is dict else held.count("/") + 1 if type(held) is str
                              else len(frozenset(self._names_of(held))) for held in self.holders.values())
        return self._count

    def __eq__(self, other: object) -> bool:
        """The same paths shown."""
        if isinstance(other, (Visible, Shown)):
            return len(self) == len(other) and set(self) == set(other)
        return set(self) == other if isinstance(other, (set, frozenset)) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Visible({sorted(self)!r})"


def wanted_names(wanted: Collection[str] | None, folder: str) -> tuple[Container[str] | None, bool]:
    """What to ask whether a child of ``folder`` is among ``wanted``, and whether it is asked
    by name (a ``Visible``'s names there) rather than by path."""
    names_in = getattr(wanted, "names_in", None)
    if names_in is not None:
        return names_in(folder), True
    return members(wanted), False


def members(paths: Collection[str] | None) -> Container[str] | None:
    """What to ask whether a path is among ``paths``: a ``Shown``'s dict (asking the
    ``Shown`` itself, through its Python method, took twice as long in a walk)."""
    return getattr(paths, "paths", paths)


def folders_of(paths: list[str]) -> set[str]:
    """Every folder that holds one of ``paths``, at any depth."""
    folders: set[str] = set()
    for path in paths:
        while path != "/":
            path = path[: path.rfind("/")] or "/"
            if path in folders:
                break
            folders.add(path)
    return folders


class FolderSizes:
    """A merged view counted a folder at a time, as ``_sized_paths`` counts it: by the index's
    encoder, whose walk visits every path anyway (the final image), and over an index file's
    folders as stored (any layer); ``give`` hands the numbers to that view. (For a view counted
    from an index's columns, it counts what they leave out, and the names of linked files.)"""

    def __init__(self, tree: LayerTree, layer: int | None = None) -> None:
        self.layer = layer  # the merged view's layer (None: the final image)
        self.links, self.shared = tree.links, tree.shared_file
        self.entries = self.file_bytes = 0
        self.direct: dict[str, int] = {}  # bytes of the files directly inside each folder
        self.linked: dict[Inode, tuple[int, list[str]]] = {}  # a file of several names -> (size, names)
        self.counted: set[Inode] = set()  # such files already in ``file_bytes``

    def add(self, folder: str, prefix: str, names: list[str], stored: list) -> None:
        """One folder's children: their names, and what is stored for each (an entry or a
        list of versions, as a tree or an index holds them; None: nothing)."""
        links, shared, layer = self.links, self.shared, self.layer
        entries = file_bytes = here = 0
        for name, v in zip(names, stored):
            if v is None:
                continue
            if layer is not None:
                e = stored_at(v, layer)
            else:  # the final image (a million paths as the index is written: inline)
                e = v[-1][2] if type(v) is list else v[-1] if type(v[0]) is int else v
            if e is None:
                continue  # removed (by the last layer that touched it, up to the view's)
            entries += 1
            kind, size = e[1], e[5]
            key = shared(e, prefix + name) if links and (kind == FILE or kind == HARDLINK) else None
            if key is not None:
                self.name_of(prefix + name, key, size)
            elif kind == FILE:
                file_bytes += size
                here += size
            elif kind != DIR:
                here += size
        self.entries += entries
        self.file_bytes += file_bytes
        if here:
            self.direct[folder] = self.direct.get(folder, 0) + here

    def name_of(self, path: str, key: Inode, size: int) -> None:
        """A name of a file of several names: once in the bytes, once in each folder."""
        if key not in self.counted:
            self.counted.add(key)
            self.file_bytes += size
        if size:
            self.linked.setdefault(key, (size, []))[1].append(path)

    def state(self) -> tuple:
        """What was counted, as marshal-able values (for ``absorb`` in another process)."""
        return self.entries, self.file_bytes, self.direct, self.linked, self.counted

    def absorb(self, state: tuple) -> None:
        """Add what another count (``state``) made of other folders of the same view."""
        entries, file_bytes, direct, linked, counted = state
        for key in counted & self.counted:  # a file of several names both counted: its bytes once
            file_bytes -= linked.get(key, (0,))[0]
        self.entries += entries
        self.file_bytes += file_bytes
        self.counted |= counted
        for folder, here in direct.items():
            self.direct[folder] = self.direct.get(folder, 0) + here
        for key, (size, paths) in linked.items():
            self.linked.setdefault(key, (size, []))[1].extend(paths)

    def give(self, view: "TreeView") -> dict[str, int]:
        """Set ``view``'s sizes and counts from what was added; its totals."""
        view.use_totals(_with_links(roll_up(self.direct), self.linked))
        view.entries, view.file_bytes = self.entries, self.file_bytes
        return view.known_totals  # type: ignore[return-value]

    def merged_with(self, counted: LayerSizes) -> dict[str, int]:
        """The folder sizes and counts of what was added and of what an index's columns
        ``counted`` (the names of files of several names given to ``name_of`` already, and
        not in the sizes yet): ``counted.totals``, added to."""
        for folder, size in roll_up(self.direct).items():
            counted.totals[folder] = counted.totals.get(folder, 0) + size
        self.entries += counted.entries
        self.file_bytes += counted.file_bytes
        return counted.totals


def _with_links(totals: dict[str, int], linked: dict[Inode, tuple[int, list[str]]]) -> dict[str, int]:
    """``totals`` with each file of several names added to every folder that holds one of them,
    once per folder whatever its names."""
    for size, paths in linked.values():
        _add_to_folders_of(totals, paths, size)
    return totals


def _add_to_folders_of(totals: dict[str, int], paths: list[str], size: int) -> None:
    """Add ``size`` to every folder that holds one of ``paths``, once each."""
    for folder in folders_of(paths):
        totals[folder] = totals.get(folder, 0) + size


def roll_up(direct: dict[str, int]) -> dict[str, int]:
    """Totals per folder from the bytes directly inside each: every ancestor gets its share."""
    totals = dict(direct)
    for folder in direct:
        while folder != "/":
            folder = folder[: folder.rfind("/")] or "/"
            if folder in totals:
                break
            totals[folder] = 0
    # deepest first: a folder's total is complete before it is added to its parent's
    for folder in sorted(totals, key=lambda f: f.count("/"), reverse=True):
        if folder != "/":
            parent = folder[: folder.rfind("/")] or "/"
            totals[parent] += totals[folder]
    return totals


def matcher(text: str, kind: str) -> Callable[[str], bool]:
    """A predicate over paths for a search box: substring, glob or regex (case-insensitive)."""
    if kind == REGEX:
        rx = re.compile(text, re.IGNORECASE)
        return lambda p: rx.search(p) is not None
    if kind == GLOB:
        pattern = text if any(c in text for c in "*?[") else f"*{text}*"
        rx = re.compile(fnmatch.translate(pattern), re.IGNORECASE)
        # a pattern without '/' matches names; with one, whole paths
        if "/" in text:
            return lambda p: rx.match(p) is not None
        return lambda p: rx.match(p[p.rfind("/") + 1 :]) is not None
    needle = text.lower()
    return Match(lambda p: needle in p.lower(), (needle,))


def path_matcher(tree: LayerTree, layer: int | None, text: str, kind: str) -> Callable[[str], bool]:
    """``matcher``, and for a path typed whole (``/bin/sh``) also where the container finds it:
    through symlinked folders (``/usr/bin/sh`` on a usr-merged image)."""
    match = matcher(text, kind)
    if kind == SUBSTRING and text.startswith("/"):
        found = resolve(tree, text, layer, follow_last=False)
        if found.via and found.problem is None:
            needle, real = text.lower(), found.path.lower()
            return Match(lambda p: needle in p.lower() or real in p.lower(), (needle, real))
    return match


def visible_paths_steps(view: TreeView, hide: frozenset[str], match: Callable[[str], bool] | None) -> "Steps[Visible]":
    """Paths to show under filters and a search: each kept path and all its ancestors (a walk),
    with the folders that hold them."""
    keep = Visible()
    alone = _alone(hide, match)
    if view._relevant is not None:
        # a layer's changes (or every layer's): the lists say what each layer did to each path
        # and whether it is a folder, so no path is looked up (the folders that hold them were
        # there, unchanged)
        steps = _changes_shown_steps if view.layer is not None else _all_changes_shown_steps
        yield from _keep_steps(keep, (yield from steps(view, hide, match)))
        keep.pack()
        return keep
    # an index file's path table finds the matches, and its columns tell which of them the view
    # shows: no folder decoded (only paths their folder does not list are asked, below)
    told = yield from view.tree.shown_steps(match, view.layer, hide, folders=not alone,
                                            into=lambda paths: _take_steps(keep, paths))
    candidates: Iterable[str]
    if told is not None:
        candidates = told[1]
    elif match is not None:  # the matches first: the path table finds them with no folder decoded
        candidates = yield from view.tree.matching_steps(match)
    elif UNCHANGED in hide:  # what shows is what a layer changed (the layers' lists hold it)
        candidates = yield from _by_folder_steps((yield from changed_paths_steps(view.tree, view.layer)))
    else:
        yield from view.tree.decode_steps()
        candidates = view.tree.versions.keys()
    unread = view.tree.unread()
    shows: list[str] = []
    for i, path in enumerate(candidates):
        # (a path of a folder still encoded decodes it: a pause before each such one)
        if not i & EVERY or (unread is not None and unread(path)):
            yield
        if path == "/" or path in keep:
            continue
        row = view.row(path)
        if row is not None and row.change not in hide and not (alone and row.entry.type == DIR):
            shows.append(path)
    yield from _keep_steps(keep, shows)
    keep.pack()
    return keep


def _alone(hide: frozenset[str], match: Callable[[str], bool] | None) -> bool:
    """Whether filters show without a search: then folders show only to hold what matched."""
    return match is None and bool(hide)


def _changes_shown_steps(view: TreeView, hide: frozenset[str], match: Callable[[str], bool] | None) -> Steps[list[str]]:
    """What a layer's changes view shows on its own under a search or filters (a walk): the
    layer's changes but those of a kind hidden (and folders, under filters alone), and for a
    search the folders that hold them, unchanged, that match."""
    changes = view.tree.changes[view.layer]
    hidden = {code for code, kind in enumerate(LayerChanges.NAMES) if kind in hide}
    alone = _alone(hide, match)
    shown: list[str] = []
    for start in range(0, len(changes), _CHUNK):
        yield
        end = start + _CHUNK
        shown += [path for path, kind, folder in zip(changes.paths[start:end], changes.kinds[start:end],
                                                       changes.folders[start:end])
                  if kind not in hidden and not (alone and folder) and (match is None or match(path))]
    if match is not None and UNCHANGED not in hide:
        # those the layer changed itself, of the folders that hold a change (few, next to the
        # changes: a set of them all, and a list of the view's paths, held the window 35 ms)
        held = _held(view._relevant)
        changed: set[str] = set()
        for start in range(0, len(changes), _CHUNK):
            yield
            changed.update([path for path in changes.paths[start:start + _CHUNK] if path in held])
        shown += yield from _unchanged_holding_steps(held, changed.__contains__, match)
    return shown


def _all_changes_shown_steps(view: TreeView, hide: frozenset[str], match: Callable[[str], bool] | None) -> Steps[list[str]]:
    """``_changes_shown_steps`` for the changes of every layer (a walk): a path ever modified
    or removed is removed if the last layer to change it removed it, else modified if any
    layer modified it, else unchanged (``TreeView.change_of``); whether it is a folder, as the
    last layer to change it left it."""
    added, modified, removed = (LayerChanges.CODES[kind] for kind in (ADDED, MODIFIED, REMOVED))
    relevant = members(view._relevant) or set()  # (the paths ever modified or removed, and their folders)
    # path -> its last change (the low two bits) and flags, a small int: no object made for each
    ever_modified, ever_changed, folder_last = 4, 8, 16
    last: dict[str, int] = {}
    get = last.get
    for k in range(len(view.tree.changes)):
        yield from view.tree.changes_steps(k)  # (a part a step, then read at once: see above)
        changes = view.tree.changes[k]
        for start in range(0, len(changes), _SMALL_CHUNK):
            yield
            end = start + _SMALL_CHUNK
            for path, kind, folder in zip(changes.paths[start:end], changes.kinds[start:end], changes.folders[start:end]):
                if path not in relevant or (match is not None and not match(path)):
                    continue  # (only ever added: unchanged, as a folder that holds a change is; or not sought)
                last[path] = (kind | (get(path, 0) & (ever_modified | ever_changed))
                              | (ever_modified if kind == modified else 0) | (ever_changed if kind != added else 0)
                              | (folder_last if folder else 0))
    alone = _alone(hide, match)
    shown: list[str] = []
    items = iter(last.items())
    for _ in range(0, len(last), _SMALL_CHUNK):
        yield
        for path, info in islice(items, _SMALL_CHUNK):  # (``match`` was asked above)
            change = REMOVED if info & 3 == removed else MODIFIED if info & ever_modified else UNCHANGED
            if info & ever_changed and change not in hide and not (alone and info & folder_last):
                shown.append(path)
    if match is not None and UNCHANGED not in hide:
        shown += yield from _unchanged_holding_steps(_held(relevant), lambda path: bool(get(path, 0) & ever_changed), match)
    return shown


def _held(relevant: Collection[str] | None) -> Collection[str]:
    """The folders that hold a changes view's paths (its holders; all its paths if it has none)."""
    holders = getattr(relevant, "holders", None)
    return holders if holders is not None else (relevant or set())


def _unchanged_holding_steps(held: Collection[str], changed: Callable[[str], bool], match: Callable[[str], bool]) -> Steps[list[str]]:
    """Of the folders that hold a changes view's paths, those unchanged there that ``match``
    accepts (a walk): they show on their own in a search."""
    holding = list(held)
    found: list[str] = []
    for start in range(0, len(holding), _SMALL_CHUNK):
        yield
        found += [path for path in holding[start:start + _SMALL_CHUNK] if path != "/" and not changed(path) and match(path)]
    return found


def _take_steps(keep: Visible, paths: list[str]) -> Steps[None]:
    """``Visible.take`` of paths none shown yet nor twice among them (a walk)."""
    for start in range(0, len(paths), EVERY + 1):
        keep.take(paths[start:start + EVERY + 1])
        yield


def _keep_steps(keep: Visible, paths: Iterable[str]) -> Steps[None]:
    """Add each path to ``keep`` with its ancestors (a walk)."""
    add = keep.add
    for i, path in enumerate(paths):
        if not i & EVERY:
            yield
        add(path)


def search_steps(view: TreeView, hide: frozenset[str], match: Callable[[str], bool] | None,
                 opening: int) -> "Steps[tuple[Visible, list[str]]]":
    """What a search or a filter shows (``visible_paths_steps``) and, for a search, the
    folders to open to its first matches: shallowest first, at most ``opening``, each decoded
    here a step at a time rather than all as the view opens them. Of a tree read from an
    index file, what was decoded only to tell what shows is let go of (``LayerTree.recording``):
    the folders to open are kept, to be let go of if they are not opened (``let_go_later``)."""
    tree = view.tree
    with tree.recording() as keep:
        visible = yield from visible_paths_steps(view, hide, match)
        folders: list[str] = []
        if match is not None:
            kids = tree.kids
            by_depth: dict[int, list[str]] = {}
            for i, path in enumerate(visible):
                if path in kids:  # (a folder: said without decoding it)
                    by_depth.setdefault(path.count("/"), []).append(path)
                if not i & EVERY:
                    yield
            # sorted a level at a time, and only as deep as needed: one sort of every matching
            # folder took 270 ms at 150,000
            for depth in sorted(by_depth):
                folders += sorted(by_depth[depth])
                if len(folders) >= opening:
                    break
                yield
            del folders[opening:]
            for folder in folders:
                keep(folder)
                kids.get(folder)
                yield
    return visible, folders


def _by_folder_steps(paths: Iterable[str]) -> "Steps[list[str]]":
    """The paths of a set, a folder's together (a walk): looked up in that order, a folder
    is decoded once, not each time the set's order comes back to it."""
    folders: dict[str, list[str]] = {}
    for i, path in enumerate(paths):
        folders.setdefault(path[: path.rfind("/")] or "/", []).append(path)
        if not i & EVERY:
            yield
    return [path for held in folders.values() for path in held]
