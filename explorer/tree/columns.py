"""Any layer's folder sizes as array arithmetic over columns an index file keeps.

The merged view at layer k shows, at each path, the one stored version whose layers include
k. The index file keeps a row for each stored version that is not a removal: the layers it
is there at (``first`` up to, not including, ``until``), the bytes it adds to its folder, and
whether it is a file. Rows are grouped by folder, in the order of the file's folders, so a
folder's own bytes at layer k are a difference of a running sum over the rows there at k
(taken a part of the rows at a time); a folder's total then adds its subfolders', one depth
at a time, deepest first.

That is the rule ``views.FolderSizes`` applies a path at a time, in a few array operations:
a layer's sizes at a million paths without decoding a folder or making an object per path.
Files of several names (hard links) are counted once per folder whatever their names; they
are few, and keep to that rule in Python (``linked``).

The columns are written with ``array`` (the encoder runs where numpy need not be loaded) and
read with numpy straight from the mapped file.
"""

from __future__ import annotations

import sys
from array import array
from itertools import repeat
from operator import itemgetter
from typing import Any, Callable, NamedTuple

from explorer.model.values import DIR, FILE, HARDLINK
from explorer.tree.diff import ADDED, MODIFIED, UNCHANGED
from explorer.tree.steps import Steps

# A row's flags: a regular file; a file of several names; a folder; a version its layer's
# changes list (not one that wrote its path again as it was); and one of those that replaced
# what was there (listed as modified, not added).
IS_FILE, LINKED, IS_DIR, CHANGED, REPLACED = 1, 2, 4, 8, 16
_CHANGE_FLAGS = {UNCHANGED: 0, ADDED: CHANGED, MODIFIED: CHANGED | REPLACED}
_KIND = {FILE: IS_FILE, DIR: IS_DIR}
_ADDED = {kind: flag | CHANGED for kind, flag in _KIND.items()}  # a path's only version (added)
_LAYER_OF, _SIZE_OF, _KIND_OF = itemgetter(8), itemgetter(5), itemgetter(1)  # of a stored entry
# past this many bytes in all, a running sum could overflow 64 bits: no columns are written
MAX_BYTES = 1 << 62
Span = tuple[int, int]  # offset and length in the file's body
FOLDER_STEP = 16384  # folders whose totals become a dict's items in one step
LINKED_STEP = 16384  # names of linked files listed in one step
ROWS_STEP = 1 << 18  # rows counted in one step (a millisecond or two; more when their pages must be read again)
# Worked out at once, with the tree, up to this many rows and names of files of several names
# (a few milliseconds: about 8 a million rows, more the first time); more between events.
AT_ONCE, LINKED_AT_ONCE = 250_000, 4096


class Layout(NamedTuple):
    """Where an index file's columns lie, as its head says."""

    rows: int
    code: str  # the array type of the layer numbers: "H" or "I"
    starts: Span  # per folder (and one past the last): its first row (int64)
    parents: Span  # per folder: its parent folder's number, -1 for the root (int32)
    depths: Span  # per folder: slashes in its path, 0 for the root (int32)
    first: Span  # per row: the first layer it is there at
    until: Span  # per row: the layer it is gone from (the layer count: never)
    size: Span  # per row: the bytes it adds to its folder (int64)
    flags: Span  # per row: IS_FILE, LINKED or IS_DIR, and CHANGED and REPLACED (uint8)
    held: Span  # per path of the path table but the strays at its end, and one past: its first row (int64)
    linked: list[tuple[int, str, tuple[int, int]]]  # per LINKED row: (row, path, its file's key)


# Each column's type ("layer": "<u2" or "<u4", as ``code`` says) and length ("folders" + 1,
# "folders", "rows", or as long as it is: "paths"), in ``Layout``'s order.
_COLUMNS = {"starts": ("<i8", 1), "parents": ("<i4", 0), "depths": ("<i4", 0), "first": ("layer", None),
            "until": ("layer", None), "size": ("<i8", None), "flags": ("u1", None),
            "held": ("<i8", "paths")}


class ColumnWriter:
    """Gathers the columns while an index's folders are written, in the same order."""

    def __init__(self, layers: int, links: Any, shared: Callable[[Any, str], Any]) -> None:
        """``links``: the keys of files of several names (``LayerTree.links``); ``shared``:
        a stored entry's key when it is the name of such a file (``LayerTree.shared_file``)."""
        self.layers = layers
        self.links, self.shared = links, shared
        self.code = "H" if layers < 1 << 16 else "I"
        self.names: list[str] = []
        self.starts = array("q", [0])
        self.first, self.until = array(self.code), array(self.code)
        self.size, self.flags = array("q"), array("B")
        self.linked: list[tuple[int, str, tuple[int, int]]] = []
        self.held = array("q")  # per path of the path table, in its order: its first row
        self.broken = False  # a number out of the columns' range: none are written

    def folder(self, name: str, prefix: str, children: list[str], stored: list[Any]) -> list[int] | None:
        """One folder's children and what is stored for each (an entry or a list of versions,
        as tuples; None: nothing), in the order the file holds them. The order the path table
        lists them in (numbers of those stored, ``held``'s order), or None for theirs."""
        if self.broken:
            return None
        try:
            order = self._folder(prefix, children, stored)
        except (OverflowError, TypeError):  # (a size or a layer past its column's type)
            self.broken = True
            return None
        self.names.append(name)
        self.starts.append(len(self.size))
        return order

    def _folder(self, prefix: str, children: list[str], stored: list[Any]) -> list[int] | None:
        layers, row, held, links = self.layers, self._row, self.held, self.links
        # (as an index file holds them: one version is an entry's tuple, several are a flat
        # tuple of layer, change and entry, told apart by their first field: ``several``)
        plain = [i for i, v in enumerate(stored) if type(v) is tuple and type(v[0]) is not int]  # one version, there from its layer on
        linked: list[int] = []
        if links:  # a name of a file of several names takes a row of its own (``shared``'s rule)
            linked = [i for i in plain if stored[i][1] == HARDLINK or stored[i][1] == FILE and (stored[i][8], stored[i][9]) in links]
        if not linked and len(plain) == len(stored):
            self._plain(stored)  # most folders (one version each): a million paths on a big image
            return None
        # Each path's rows together (``held`` says where a path's begin): the names of linked
        # files, then the paths of several versions, then the rest as whole columns; the path
        # table lists them in that order.
        for i in linked:
            held.append(len(self.size))
            row(stored[i][8], layers, stored[i], prefix + children[i], CHANGED)
        several = [i for i, v in enumerate(stored) if type(v) is tuple and type(v[0]) is int]
        for i in several:  # each version until the first later one that replaces it (``stored_at``)
            held.append(len(self.size))
            ends = layers
            v = stored[i]
            for at, change, e in reversed(list(zip(v[::3], v[1::3], v[2::3]))):
                if e is not None and at < ends:
                    row(at, ends, e, prefix + children[i], _CHANGE_FLAGS.get(change, CHANGED))
                ends = min(ends, at)
        if linked:
            taken = set(linked)
            plain = [i for i in plain if i not in taken]
        self._plain([stored[i] for i in plain])
        return linked + several + plain

    def _plain(self, plain: list[Any]) -> None:
        """A row for each of paths of one version, there from its layer on: whole columns at
        once, in C."""
        start = len(self.size)
        self.held.extend(range(start, start + len(plain)))
        self.first.extend(map(_LAYER_OF, plain))
        self.until.extend(array(self.code, [self.layers]) * len(plain))
        self.size.extend(map(_SIZE_OF, plain))
        self.flags.extend(map(_ADDED.get, map(_KIND_OF, plain), repeat(CHANGED)))

    def state(self) -> tuple:
        """What was gathered, as marshal-able values (for ``absorb`` in another process)."""
        return (self.broken, self.names, self.starts.tobytes(), self.first.tobytes(), self.until.tobytes(),
                self.size.tobytes(), self.flags.tobytes(), self.held.tobytes(), self.linked)

    def absorb(self, state: tuple) -> None:
        """Add what another writer gathered (``state``) over the folders after this one's."""
        broken, names, *raw, linked = state
        if broken or self.broken:
            self.broken = True
            return
        starts, first, until, size, flags, held = (array(code, b"") for code in ("q", self.code, self.code, "q", "B", "q"))
        for column, data in zip((starts, first, until, size, flags, held), raw):
            column.frombytes(data)
        base = len(self.size)  # its rows come after these: their numbers move by as many
        self.names += names
        self.starts.extend(map(base.__add__, starts[1:]))
        self.held.extend(map(base.__add__, held))
        self.first += first
        self.until += until
        self.size += size
        self.flags += flags
        self.linked += [(row + base, path, tuple(key)) for row, path, key in linked]

    def _row(self, at: int, ends: int, e: Any, path: str, changed: int) -> None:
        """A row for version ``e`` of ``path``, there from layer ``at`` until ``ends``
        (``changed``: CHANGED when its layer's changes list it, and REPLACED as modified)."""
        kind = e[1]
        key = self.shared(e, path) if self.links and (kind == FILE or kind == HARDLINK) else None
        if key is not None:
            self.linked.append((len(self.size), path, key))
            self.flags.append(LINKED | changed)
        else:
            self.flags.append(_KIND.get(kind, 0) | changed)
        self.first.append(at)
        self.until.append(ends)
        self.size.append(e[5])

    def finish(self, put: Callable[[bytes], None], offset: int, base: int) -> tuple[Layout | None, int]:
        """Hand the columns to ``put`` at ``offset`` of the body, which starts ``base`` bytes
        into the file; where they lie (None when they cannot serve: a number past its column's
        type, a negative size, sums that could overflow, a folder whose path is not absolute
        or whose parent is not a folder), and the offset after them."""
        if self.broken or (self.size and (min(self.size) < 0 or sum(self.size) >= MAX_BYTES)):
            return None, offset
        ids = {name: i for i, name in enumerate(self.names)}
        parents, depths = array("i"), array("i")
        for name in self.names:
            if name == "/":
                parents.append(-1)
                depths.append(0)
                continue
            parent = ids.get(name[: name.rfind("/")] or "/")
            if parent is None or not name.startswith("/"):
                return None, offset
            parents.append(parent)
            depths.append(name.count("/"))
        spans = []
        self.held.append(len(self.size))
        for column in (self.starts, parents, depths, self.first, self.until, self.size, self.flags, self.held):
            data = _little(column)
            pad = -(base + offset) % 8  # each column at a multiple of 8 bytes in the file, so in memory
            if pad:
                put(bytes(pad))
                offset += pad
            put(data)
            spans.append((offset, len(data)))
            offset += len(data)
        return Layout(len(self.size), self.code, *spans, self.linked), offset


def _little(column: array) -> bytes:
    """A column's bytes, little-endian on every machine (a cache folder may be shared)."""
    if sys.byteorder == "big":
        column = array(column.typecode, column)
        column.byteswap()
    return column.tobytes()


class LayerSizes(NamedTuple):
    """What the columns say of the merged view at one layer (or of what that layer wrote)."""

    totals: dict[str, int]  # each folder's bytes, its subfolders' included (files of several names aside)
    entries: int  # paths there (files of several names included)
    file_bytes: int  # regular files' bytes (files of several names aside)
    linked: list[tuple[str, tuple[int, int], int]]  # each name there of a file of several names: (path, key, size)


class Columns:
    """An index file's columns, read where the file is mapped (numpy views, no copy)."""

    def __init__(self, body: memoryview, layout: Any, names: list[str], layers: int) -> None:
        """``names``: the file's folders in order. ValueError when the layout or the columns
        do not hold together (a damaged file: the caller does without)."""
        import numpy as np

        if type(layout) is not tuple or len(layout) != len(Layout._fields):
            raise ValueError("the columns' layout is not what it should be")
        rows, code, *spans, linked = layout
        if type(rows) is not int or code not in ("H", "I") or type(linked) is not list:
            raise ValueError("the columns' layout is not what it should be")
        if not all(type(span) is tuple and len(span) == 2 and all(type(n) is int and n >= 0 for n in span) for span in spans):
            raise ValueError("a column's place is not two numbers")
        ordered = sorted(spans)
        if any(offset + length > later for (offset, length), (later, _) in zip(ordered, ordered[1:])):
            raise ValueError("two columns overlap")
        arrays = []
        for (offset, length), (dtype, extra) in zip(spans, _COLUMNS.values()):
            dtype = ("<u2" if code == "H" else "<u4") if dtype == "layer" else dtype
            if extra == "paths":  # (as long as it is: the caller knows the paths)
                count = length // np.dtype(dtype).itemsize
            else:
                count = rows if extra is None else len(names) + extra
            if offset + length > len(body) or length != count * np.dtype(dtype).itemsize:
                raise ValueError("a column lies outside the file")
            arrays.append(np.frombuffer(body, dtype, count, offset))
        self.starts, self.parents, self.depths, self.first, self.until, self.size, self.flags, self.held = arrays
        self.paths = len(self.held) - 1  # the path table's paths the columns say where the rows of are
        self.rows, self.names, self.layers = rows, names, layers
        self.linked_rows = np.flatnonzero(self.flags & LINKED)
        self._check(linked)
        self.linked_names = [(path, key) for _row, path, key in linked]
        # folders a depth at a time, deepest first: a folder's total is complete before it is
        # added to its parent's
        order = np.argsort(-self.depths.astype(np.int64), kind="stable")
        cuts = np.flatnonzero(np.diff(self.depths[order])) + 1
        self.levels = [level for level in np.split(order, cuts) if len(level) and self.depths[level[0]] > 0]

    def _check(self, linked: list) -> None:
        """ValueError unless the columns describe folders and rows that hold together."""
        import numpy as np

        starts, parents, depths, rows = self.starts, self.parents, self.depths, self.rows
        if starts[0] != 0 or starts[-1] != rows or np.any(np.diff(starts) < 0):
            raise ValueError("the columns' folders do not hold their rows in order")
        roots = parents < 0
        if np.any(parents >= len(parents)) or np.any(parents[roots] != -1) or np.any(depths[roots] != 0):
            raise ValueError("a folder's parent is not a folder")
        inner = np.flatnonzero(~roots)
        if np.any(depths[parents[inner]] != depths[inner] - 1):  # (so no folder is its own ancestor)
            raise ValueError("a folder's parent is not one level up")
        if rows and (self.size.min() < 0 or self.size.sum(dtype=np.float64) >= MAX_BYTES):  # (no running sum overflows)
            raise ValueError("a row's bytes are out of range")
        if np.any(self.first > self.until) or (rows and int(self.until.max()) > self.layers):
            raise ValueError("a row's layers are out of range")
        held = self.held  # (checked a part at a time: no copy of it all)
        if not len(held) or held[0] != 0 or held[-1] != rows or any(
                np.any(np.diff(held[at:at + ROWS_STEP + 1]) < 0) for at in range(0, len(held), ROWS_STEP)):
            raise ValueError("the columns' paths do not hold their rows in order")
        if len(linked) != len(self.linked_rows) or not all(
                type(item) is tuple and len(item) == 3 and type(item[0]) is int and item[0] == row
                and type(item[1]) is str and type(item[2]) is tuple and len(item[2]) == 2
                and all(type(n) is int for n in item[2])
                for item, row in zip(linked, self.linked_rows.tolist())):
            raise ValueError("the files of several names are not the rows that say so")

    def shown(self, paths: Any, layer: int | None, hide: frozenset[str] = frozenset(), folders: bool = True) -> Any:
        """Which of the path table's paths ``paths`` (numbers below ``self.paths``, a numpy
        array) the merged view at ``layer`` (None: the final image) shows: those with a row
        there then, but those whose change (``TreeView.change_of``) is in ``hide``, and the
        folders unless ``folders``."""
        import numpy as np

        at = self.layers - 1 if layer is None else layer
        starts, ends = self.held[paths], self.held[paths + 1]
        counts = ends - starts
        shown = np.zeros(len(paths), dtype=bool)
        some = np.flatnonzero(counts)  # (a path whose every version is a removal has none)
        if not len(some) or at < 0:
            return shown
        starts, counts = starts[some], counts[some]
        # every row of those paths, a path's together, and where each path's begin
        begins = np.cumsum(counts) - counts
        rows = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(begins - starts, counts)
        here = (self.first[rows] <= at) & (self.until[rows] > at)
        if not hide and folders:
            shown[some] = np.add.reduceat(here, begins) > 0
            return shown
        row = np.maximum.reduceat(np.where(here, rows, -1), begins)  # each path's row there (one at most)
        there = row >= 0
        row = row[there]
        flags = self.flags[row]
        if layer is None:  # over all layers: modified if any version replaced what was there
            replaced = np.add.reduceat((self.flags[rows] & REPLACED) != 0, begins)[there] > 0
            change = np.where(replaced, 2, 0)
        else:  # what this layer did, if it wrote the version there
            written = (self.first[row] == layer) & ((flags & CHANGED) != 0)
            change = np.where(written, np.where((flags & REPLACED) != 0, 2, 1), 0)
        keep = ~np.isin(change, [code for code, kind in enumerate((UNCHANGED, ADDED, MODIFIED)) if kind in hide])
        if not folders:
            keep &= (flags & IS_DIR) == 0
        shown[some[np.flatnonzero(there)[keep]]] = True
        return shown

    def at_once(self) -> bool:
        """Whether a layer's sizes take only a few milliseconds (``AT_ONCE``)."""
        return self.rows <= AT_ONCE and len(self.linked_rows) <= LINKED_AT_ONCE

    def sizes_steps(self, layer: int, written: bool = False) -> Steps[LayerSizes]:
        """The merged view's sizes at ``layer``, a step every ``ROWS_STEP`` rows, ``FOLDER_STEP``
        folders and ``LINKED_STEP`` names of linked files (a few milliseconds each); ``written``:
        only of what that layer itself wrote (its changes view)."""
        import numpy as np

        rows, linked = self.rows, self.linked_rows
        starts, ends = self.starts[:-1], self.starts[1:]
        totals = np.zeros(len(self.names), dtype=np.int64)  # each folder's own bytes, then with its subfolders'
        linked_there = np.zeros(len(linked), dtype=bool)
        entries = file_bytes = 0
        # a part of the rows at a time: a few MB of temporary arrays, which the allocator
        # hands back and out again (fresh pages cost this machine a fault each)
        for start in range(0, rows, ROWS_STEP):
            end = min(start + ROWS_STEP, rows)
            first, flags = self.first[start:end], self.flags[start:end]
            here = (first <= layer) & (self.until[start:end] > layer)  # the row's version is there (and counts)
            if written:  # (a path written again as it was is not among the layer's changes)
                here &= (first == layer) & ((flags & CHANGED) != 0)
            plain = here & ((flags & (LINKED | IS_DIR)) == 0)  # (a folder's own size counts for nothing)
            bytes_ = np.where(plain, self.size[start:end], 0)
            entries += int(np.count_nonzero(here))
            file_bytes += int(bytes_[(flags & IS_FILE) != 0].sum())
            running = np.zeros(end - start + 1, dtype=np.int64)
            np.cumsum(bytes_, out=running[1:])
            lo, hi = np.searchsorted(ends, start, "right"), np.searchsorted(starts, end)  # the folders it holds rows of
            totals[lo:hi] += (running[np.clip(ends[lo:hi], start, end) - start]
                              - running[np.clip(starts[lo:hi], start, end) - start])
            a, b = np.searchsorted(linked, (start, end))
            linked_there[a:b] = here[linked[a:b] - start]
            yield
        parents = self.parents
        for level in self.levels:
            np.add.at(totals, parents[level], totals[level])
        yield
        out: dict[str, int] = {}
        names = self.names
        found = np.flatnonzero(totals)
        for at in range(0, len(found), FOLDER_STEP):
            some = found[at:at + FOLDER_STEP]
            out.update(zip([names[i] for i in some.tolist()], totals[some].tolist()))
            yield
        kept = np.flatnonzero(linked_there).tolist()
        names_of, size, named = self.linked_names, self.size[linked[kept]].tolist(), []
        for at in range(0, len(kept), LINKED_STEP):
            named += [(*names_of[i], n) for i, n in zip(kept[at:at + LINKED_STEP], size[at:at + LINKED_STEP])]
            yield
        return LayerSizes(out, entries, file_bytes, named)
