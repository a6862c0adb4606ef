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
from typing import Iterable

from explorer.formats.tar_index import TarMember
from explorer.tree.names import AUFS_META as AUFS, WHITEOUT


@dataclass
class Efficiency:
    """The numbers: ``score``, ``wasted_bytes``, ``user_wasted_percent`` and the wasteful files."""

    score: float
    wasted_bytes: int
    user_wasted_percent: float
    files: list[dict] = field(default_factory=list)  # {"path", "count", "size"}, biggest first


def _clean(name: str) -> str | None:
    """Go's path.Clean of a tar name, without the leading slash; None for the root."""
    p = posixpath.normpath("/" + name).lstrip("/")
    return None if p in ("", ".") else p


def _layer_tree(members: Iterable[TarMember]) -> tuple[dict[str, tuple[int, bool, bool]], set[str], int]:
    """One layer as dive builds it: path -> (size, is_dir, whiteout), the paths with children,
    and the sum of the nodes' sizes."""
    nodes: dict[str, tuple[int, bool, bool]] = {}
    parents: set[str] = set()
    implicit = (0, False, False)
    folder = None  # the folder of the entry before, which has its node and its parents' already
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
                if not path or path in nodes:
                    continue
                nodes[path] = implicit
                cut = path.rfind("/")
        else:
            kind = m[1]
            nodes[path] = (m[5] if kind in "07" else 0, kind == "5", path.startswith(WHITEOUT, cut + 1))
        if cut <= 0:
            continue
        parent = path[:cut]
        if parent == folder:
            continue
        folder = parent
        while cut > 0:
            parent = path[:cut]
            parents.add(parent)
            if parent in nodes:
                break
            nodes[parent] = implicit
            path = parent
            cut = path.rfind("/")
    total = sum(n[0] for n in nodes.values())
    return nodes, parents, total


class _Stack:
    """Layers 0..k-1 grafted one on the other, as dive's Stack does it."""

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[int, bool, bool]] = {}
        self.kids: dict[str, list[str]] = {}  # lists, not sets: half the memory; removals are rare

    def remove(self, path: str) -> None:
        if path not in self.nodes:
            return
        stack = [path]
        while stack:
            p = stack.pop()
            self.nodes.pop(p, None)
            stack.extend(self.kids.pop(p, ()))
        cut = path.rfind("/")
        siblings = self.kids.get(path[:cut] if cut > 0 else "")
        if siblings is not None and path in siblings:
            siblings.remove(path)

    def subtree_size(self, path: str) -> int:
        total, stack = 0, [path]
        while stack:
            p = stack.pop()
            total += self.nodes[p][0]
            stack.extend(self.kids.get(p, ()))
        return total


class DiveEfficiency:
    """Feed layers bottom first with ``add_layer``; read the numbers with ``result``."""

    def __init__(self) -> None:
        self.stack = _Stack()
        self.first = True
        # path -> its size when seen once (most paths), else [cumulative, minimum, count]
        self.stats: dict[str, int | list[int]] = {}
        self.user_size = 0

    def add_layer(self, members: Iterable[TarMember]) -> None:
        """Account one layer's leaves, then graft it onto the stack."""
        nodes, parents, size = _layer_tree(members)
        if not self.first:
            self.user_size += size
        stack, add = self.stack, self._add
        leaves = [p for p in nodes if p not in parents]
        if any(nodes[p][2] and self._target(p) not in stack.nodes for p in leaves):
            # dive visits leaves depth first, siblings in byte order ("/" sorting below every
            # other character), and stops at the first whiteout of a missing path: only then
            # does the order matter.
            leaves.sort(key=lambda p: p.replace("/", "\0"))
        removed = []
        stats = self.stats
        for path in leaves:
            size_, _, whiteout = nodes[path]
            if whiteout:
                target = self._target(path)
                below = stack.nodes.get(target)
                if below is None:
                    break  # dive logs an error and stops this layer
                add(target, stack.subtree_size(target) if below[1] else 0)
            elif path in stats:
                add(path, size_)
            else:
                stats[path] = size_  # seen once: cumulative = minimum = size, count 1
        for path, node in nodes.items():
            if node[2]:
                cut = path.rfind("/")
                removed.append(path[: cut + 1] + path[cut + 5 :])
        for target in removed:  # whiteouts take effect before the layer's own entries
            stack.remove(target)
        known, kids = stack.nodes, stack.kids
        for path, node in nodes.items():
            if node[2]:
                continue
            if path not in known:
                cut = path.rfind("/")
                parent = path[:cut] if cut > 0 else ""
                k = kids.get(parent)
                if k is None:
                    kids[parent] = [path]
                else:
                    k.append(path)
            known[path] = node
        self.first = False

    @staticmethod
    def _target(whiteout: str) -> str:
        cut = whiteout.rfind("/")
        return whiteout[: cut + 1] + whiteout[cut + 5 :]

    def _add(self, path: str, size: int) -> None:
        s = self.stats.get(path)
        if s is None:
            self.stats[path] = size
        elif type(s) is int:
            self.stats[path] = [s + size, min(s, size), 2]
        else:
            s[0] += size
            s[1] = min(s[1], size)
            s[2] += 1

    def result(self) -> Efficiency:
        """The score, the waste and the files behind it."""
        wasteful = [(p, s) for p, s in self.stats.items() if type(s) is list]
        once = sum(s for s in self.stats.values() if type(s) is int)  # type: ignore[misc]
        minimum = once + sum(s[1] for _, s in wasteful)  # type: ignore[index]
        cumulative = once + sum(s[0] for _, s in wasteful)  # type: ignore[index]
        score = 1.0 if cumulative == 0 else minimum / cumulative
        wasted = sum(s[0] for _, s in wasteful)  # type: ignore[index]
        percent = wasted / self.user_size if self.user_size else 0.0
        wasteful.sort(key=lambda item: (-item[1][0], item[0]))
        files = [{"path": "/" + p, "count": s[2], "size": s[0]} for p, s in wasteful]
        return Efficiency(score, wasted, percent, files)
