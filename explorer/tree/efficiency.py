"""dive-compatible efficiency numbers, computed the way dive 0.13 computes them.

CI rules written for dive (lowest efficiency, highest wasted bytes, highest user wasted
percent) keep their meaning only if the numbers match dive's to the last digit, quirks
included: implicit parent directories count as non-directories, a whiteout of a directory
counts everything that directory held below it, a whiteout of a path that does not exist
below stops the rest of that layer, and the kept copy of a file counts as waste too.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from itertools import filterfalse
from typing import Callable, Iterable, NamedTuple

from explorer.formats import tar_index
from explorer.formats.tar_index import TarMember
from explorer.tree.index import TooManyPaths, too_many_paths
from explorer.tree.names import AUFS_META as AUFS, WHITEOUT


@dataclass(eq=False)
class Efficiency:
    """The numbers: ``score``, ``wasted_bytes``, ``user_wasted_percent`` and the wasteful files."""

    score: float
    wasted_bytes: int
    user_wasted_percent: float
    # The wasteful files, or what makes them when first asked for: an index file keeps them
    # encoded apart (25,000 dicts took 11 ms to decode with the rest of its head, which the
    # window reads on every open; only the report and the check list them).
    listed: list[dict] | Callable[[], list[dict]] = field(default_factory=list, repr=False)

    @property
    def files(self) -> list[dict]:
        """The wasteful files, {"path", "count", "size"} each, biggest first."""
        if callable(self.listed):
            self.listed = self.listed()
        return self.listed

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Efficiency):
            return NotImplemented
        return (self.score, self.wasted_bytes, self.user_wasted_percent, self.files) == \
            (other.score, other.wasted_bytes, other.user_wasted_percent, other.files)


def _clean(name: str) -> str | None:
    """Go's path.Clean of a tar name, without the leading slash; None for the root."""
    p = posixpath.normpath("/" + name).lstrip("/")
    return None if p in ("", ".") else p


class _Layer(NamedTuple):
    """One layer as dive builds it."""

    sizes: dict[str, int]  # every node: its size (0 for folders, links and implicit parents)
    dirs: set[str]  # the nodes that are folders (implicit parents are not)
    whiteouts: set[str]  # the nodes that are whiteouts
    parents: set[str]  # the nodes with children
    total: int  # the sum of the nodes' sizes
    children: dict[str, list[str]]  # each folder's nodes as listed ("" holds the top's), whiteouts too


def _layer_tree(members: Iterable[TarMember], room: int) -> _Layer:
    """One layer as dive builds it, in columns (dicts and sets the accounting combines whole).

    The folders its paths imply may add up to ``room`` bytes of paths: a hostile layer's
    thousands of paths, each thousands of folders deep, imply gigabytes."""
    sizes: dict[str, int] = {}
    dirs: set[str] = set()
    whiteouts: set[str] = set()
    parents: set[str] = set()
    # Each folder's nodes, listed as they come (the stack's lists of them grow from these
    # without a step of Python for each path): tar order keeps a folder's entries together.
    children: dict[str, list[str]] = {}
    top: list[str] = []
    folder = None  # the folder of the entry before, which has its node and its parents' already
    here = top  # its list
    for m in members:
        path = m[0]  # (by position: plain tuples, as a scan crosses between processes, do too)
        if path.endswith("/"):
            path = path[:-1]
        if not path or "//" in path or "./" in path or path.startswith((".", "/")) or path.endswith("/."):
            path = _clean(path)  # the rare names that need Go's full path.Clean
            if path is None:
                continue
        cut = path.rfind("/")
        if AUFS in path:
            parts = path.split("/")
            stop = next((i for i, part in enumerate(parts) if part.startswith(AUFS)), None)
            if stop is not None:
                path = "/".join(parts[:stop])  # the parents are made; the marker itself is dropped
                if not path or path in sizes:
                    continue
                sizes[path] = 0
                cut = path.rfind("/")
        else:
            kind = m[1]
            sizes[path] = m[5] if kind in "07" else 0
            if kind == "5":
                dirs.add(path)
            elif path in dirs:
                dirs.discard(path)  # named twice: the last one counts
            if path.startswith(WHITEOUT, cut + 1):
                whiteouts.add(path)
        if cut <= 0:
            top.append(path)
            continue
        parent = path[:cut]
        if parent == folder:
            here.append(path)
            continue
        folder = parent
        here = children.setdefault(parent, [])
        here.append(path)
        while True:
            parents.add(parent)
            if parent in sizes:
                break
            sizes[parent] = 0  # implicit: counts as a non-folder, as in dive
            room -= cut
            if room < 0:
                raise TooManyPaths  # (the caller says which layer, and the budget)
            cut = parent.rfind("/")
            if cut <= 0:
                top.append(parent)
                break
            path, parent = parent, parent[:cut]
            children.setdefault(parent, []).append(path)
    if top:
        children[""] = top
    return _Layer(sizes, dirs, whiteouts, parents, sum(sizes.values()), children)


class _Stack:
    """Layers 0..k-1 grafted one on the other, as dive's Stack does it."""

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}
        self.dirs: set[str] = set()
        self.kids: dict[str, list[str]] = {}  # lists, not sets: half the memory; removals are rare
        self.path_bytes = 0  # of the paths here

    def remove(self, targets: set[str]) -> None:
        """Remove paths and everything below them."""
        known, dirs, kids = self.sizes, self.dirs, self.kids
        removed = [t for t in targets if t in known]
        for path in removed:
            stack = [path]
            while stack:
                p = stack.pop()
                if known.pop(p, None) is not None:
                    self.path_bytes -= len(p)  # (a path removed and added again counts once)
                dirs.discard(p)
                stack.extend(kids.pop(p, ()))
        # then out of their folders' lists, each list once (a list.remove each: a folder of
        # 100,000 emptied one by one is 100,000 scans of it)
        folders: dict[str, set[str]] = {}
        for path in removed:
            cut = path.rfind("/")
            folders.setdefault(path[:cut] if cut > 0 else "", set()).add(path)
        for folder, gone in folders.items():
            siblings = kids.get(folder)
            if siblings is not None:
                kids[folder] = list(filterfalse(gone.__contains__, siblings))

    def subtree_size(self, path: str) -> int:
        total, stack = 0, [path]
        while stack:
            p = stack.pop()
            total += self.sizes[p]
            stack.extend(self.kids.get(p, ()))
        return total

    def graft(self, layer: _Layer) -> None:
        """Put a layer on top: its whiteouts remove what they name, then its nodes are added
        (an existing path takes the layer's node: an implicit parent makes a folder a non-folder)."""
        sizes, whiteouts = layer.sizes, layer.whiteouts
        if whiteouts:  # whiteouts take effect before the layer's own entries
            self.remove({_target(w) for w in whiteouts})
        known = self.sizes
        nodes = sizes.keys() - whiteouts if whiteouts else sizes.keys()
        new = nodes - known.keys()
        self._list(new, layer.children)
        if whiteouts:
            sizes = dict(sizes)
            for whiteout in whiteouts:
                del sizes[whiteout]
        if known:
            known.update(sizes)
        else:
            self.sizes = sizes  # (the first layer's own: the layer goes once grafted)
        self.path_bytes += sum(map(len, new))
        self.dirs.difference_update(nodes)  # (an implicit parent is no folder: the layer's say which are)
        self.dirs.update(layer.dirs - whiteouts if whiteouts else layer.dirs)

    def _list(self, new: set[str], children: dict[str, list[str]]) -> None:
        """Add ``new`` paths to their folders' lists: taken from the layer's lists as they are
        (a comprehension a folder), unless a path is listed twice there (named twice, or a
        folder after what it holds), when each path's folder is worked out on its own."""
        kids = self.kids
        if not kids and sum(map(len, children.values())) == len(new):
            # The first layer (no lists yet), each of its new paths listed once and nothing
            # else listed (every node is listed at least once, so the counts say it): its
            # lists are the stack's as they are
            self.kids = children
            return
        found = {parent: fresh for parent, listed in children.items() if (fresh := [p for p in listed if p in new])}
        if sum(map(len, found.values())) == len(new):  # (each new path is listed at least once)
            for parent, fresh in found.items():
                k = kids.get(parent)
                if k is None:
                    kids[parent] = fresh
                else:
                    k += fresh
            return
        for path in new:
            cut = path.rfind("/")
            kids.setdefault(path[:cut] if cut > 0 else "", []).append(path)


def _target(whiteout: str) -> str:
    """The path a whiteout removes."""
    cut = whiteout.rfind("/")
    return whiteout[: cut + 1] + whiteout[cut + 5 :]


class DiveEfficiency:
    """Feed layers bottom first with ``add_layer``; read the numbers with ``result``."""

    def __init__(self) -> None:
        self.stack = _Stack()
        # path -> its size when seen once (most paths), else [cumulative, minimum, count]
        self.stats: dict[str, int | list[int]] = {}
        self.once = 0  # the sum of the sizes of the paths seen once (kept as it goes: a million to add up)
        self.again: list[str] = []  # the paths seen more than once
        self.user_size = 0
        self.max_paths = tar_index.budgets().paths  # bytes the paths may add up to, implied folders too
        self.layers = 0  # added so far

    def add_layer(self, members: Iterable[TarMember]) -> None:
        """Account one layer's leaves, then graft it onto the stack; ``TooManyPaths`` when
        the paths of the layers so far, with the folders they imply, are over the budget."""
        stack = self.stack
        try:
            layer = _layer_tree(members, self.max_paths - stack.path_bytes)
        except TooManyPaths:
            too_many_paths(self.max_paths, f"layer {self.layers}: ")
        if self.layers:  # (the base layer is not the user's)
            self.user_size += layer.total
        self.layers += 1
        missing = [w for w in layer.whiteouts - layer.parents if _target(w) not in stack.sizes]
        if missing:
            self._account_in_order(layer, missing)
        else:
            self._account(layer)
        stack.graft(layer)

    def _account(self, layer: _Layer, leaves: "set[str] | None" = None) -> None:
        """Count the layer's leaves (``leaves`` of them only, if given). The order does not
        change the sums: each counts what the stack below holds, which stays as it is."""
        sizes, stats, add = layer.sizes, self.stats, self._add
        whole = leaves is None
        if leaves is None:
            leaves = sizes.keys() - layer.parents
        regular = leaves - layer.whiteouts if layer.whiteouts else leaves
        again = regular & stats.keys()
        for path in again:
            add(path, sizes[path])
        if whole:
            fresh = dict(sizes)  # (whole, then trimmed: far fewer removals than leaves)
            for path in layer.parents | layer.whiteouts | again:
                del fresh[path]
        else:
            fresh = {path: sizes[path] for path in regular - again}
        if stats:
            stats.update(fresh)  # seen once: cumulative = minimum = size, count 1
        else:
            self.stats = stats = fresh  # (the first layer's: no copy)
        self.once += sum(fresh.values())
        for whiteout in leaves & layer.whiteouts:
            self._count_removed(_target(whiteout))

    def _count_removed(self, target: str) -> None:
        """A whiteout counts its target again: a folder with all it holds, anything else as 0."""
        stack = self.stack
        self._add(target, stack.subtree_size(target) if target in stack.dirs else 0)

    def _account_in_order(self, layer: _Layer, missing: list[str]) -> None:
        """Count the leaves dive visits before it meets a whiteout of a path that is not there
        below: it logs an error and gives up on the rest of the layer. It visits depth first,
        siblings in byte order: the order of the paths with "/" below every other character."""
        sizes = layer.sizes
        leaves = sizes.keys() - layer.parents
        if any("\0" in path for path in leaves):  # (from a PAX record) keys may tie: dive's order decides
            order = sorted(sizes, key=lambda p: p.replace("/", "\0"))  # (stable: the layer's order breaks ties)
            at = {p: i for i, p in enumerate(order)}
            first = min(at[w] for w in missing)
            leaves = {p for p in leaves if at[p] < first}
        else:
            stop = min(w.replace("/", "\0") for w in missing)
            leaves = {p for p in leaves if p.replace("/", "\0") < stop}
        self._account(layer, leaves)

    def _add(self, path: str, size: int) -> None:
        s = self.stats.get(path)
        if s is None:
            self.stats[path] = size
            self.once += size
        elif type(s) is int:
            self.stats[path] = [s + size, min(s, size), 2]
            self.once -= s
            self.again.append(path)
        else:
            s[0] += size
            s[1] = min(s[1], size)
            s[2] += 1

    def result(self) -> Efficiency:
        """The score, the waste and the files behind it."""
        stats = self.stats
        wasteful = [(p, stats[p]) for p in self.again]
        once = self.once
        minimum = once + sum(s[1] for _, s in wasteful)  # type: ignore[index]
        cumulative = once + sum(s[0] for _, s in wasteful)  # type: ignore[index]
        score = 1.0 if cumulative == 0 else minimum / cumulative
        wasted = sum(s[0] for _, s in wasteful)  # type: ignore[index]
        percent = wasted / self.user_size if self.user_size else 0.0
        wasteful.sort(key=lambda item: (-item[1][0], item[0]))
        files = [{"path": "/" + p, "count": s[2], "size": s[0]} for p, s in wasteful]
        return Efficiency(score, wasted, percent, files)
