"""Comparing two images: the layers they share, where they part, what a pull of one would
skip having the other, and how their final filesystems differ."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from typing import overload

from explorer.image.content import content_digest
from explorer.model.errors import ExplorerError
from explorer.image.loader import Image
from explorer.image.packages import difference
from explorer.model.packages import LayerPackages
from explorer.model.values import DIR, FILE, HARDLINK, Entry
from explorer.formats.source import Source
from explorer.tree import names
from explorer.tree.diff import ADDED, MODIFIED, REMOVED, is_modified
from explorer.tree.index import LayerTree
from explorer.tree.views import roll_up

SCHEMA = "layer-explorer.diff/1"


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)), as the OCI spec defines it."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


@dataclass
class FileDiff:
    """One path that differs: its change (added: only in B) and the entry on each side."""

    path: str
    change: str
    a: Entry | None
    b: Entry | None


CHANGES = (ADDED, MODIFIED, REMOVED)  # a change's code in ``Differences.codes``: its place here


class Differences(Sequence[FileDiff]):
    """The paths whose final state differs between two images, sorted, a change each; a
    path's entries are looked up in the images' trees when it is asked for (a mapped tree
    decodes that folder only), so this is as small as the paths themselves, and it can be
    worked out elsewhere and sent back in parts.

    ``direct`` holds, per folder, the bytes of the entries inside it that the comparison
    shows (B's, or A's for a path only in A; folders count nothing).
    """

    def __init__(self, paths: list[str], codes: bytes | bytearray, direct: dict[str, int], a: LayerTree,
                 b: LayerTree) -> None:
        if len(paths) != len(codes):
            raise ValueError("a change for every path")
        # A tuple, and dicts of strings and numbers: the cycle collector untracks or never
        # tracks them, so its passes do not walk a million paths (a list did: 44 to 67 ms).
        self.paths: tuple[str, ...] = tuple(paths)
        self.codes, self.direct = bytes(codes), direct
        self._trees = (a, b)
        self._at: dict[str, int] | None = None
        self._relevant: dict[str, None] | None = None
        self._totals: dict[str, int] | None = None

    @classmethod
    def of(cls, diffs: Iterable[FileDiff], a: LayerTree, b: LayerTree) -> "Differences":
        """The differences of ``file_diffs``, their entries let go of."""
        paths: list[str] = []
        codes = bytearray()
        direct: dict[str, int] = {}
        for d in diffs:
            paths.append(d.path)
            codes.append(CHANGES.index(d.change))
            shown = d.b if d.b is not None else d.a
            if shown is not None and shown.type != DIR and shown.size:
                parent = names.split(d.path)[0]
                direct[parent] = direct.get(parent, 0) + shown.size
        return cls(paths, codes, direct, a, b)

    @classmethod
    def between(cls, a_source: Source, a: Image, b_source: Source, b: Image) -> "Differences":
        """How two loaded images' final filesystems differ (``file_diffs``), kept as ``of`` keeps it."""
        return cls.of(file_diffs(a_source, a, b_source, b), a.tree, b.tree)

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, i: int) -> FileDiff: ...
    @overload
    def __getitem__(self, i: slice) -> list[FileDiff]: ...

    def __getitem__(self, i: int | slice) -> FileDiff | list[FileDiff]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        path, change = self.paths[i], CHANGES[self.codes[i]]
        a, b = self._trees
        return FileDiff(path, change, None if change == ADDED else _final(a, path),
                        None if change == REMOVED else _final(b, path))

    def __iter__(self) -> Iterator[FileDiff]:
        return (self[i] for i in range(len(self)))

    def _index(self) -> dict[str, int]:
        if self._at is None:
            self._at = {p: i for i, p in enumerate(self.paths)}
        return self._at

    def change(self, path: str) -> str | None:
        """How ``path`` differs; None when it does not."""
        i = self._index().get(path)
        return None if i is None else CHANGES[self.codes[i]]

    def shown(self, path: str) -> tuple[str, Entry] | None:
        """How ``path`` differs and the one entry a tree of differences shows for it (B's; A's
        when removed), without looking the other side up; None when it does not differ."""
        change = self.change(path)
        if change is None:
            return None
        a, b = self._trees
        entry = _final(a if change == REMOVED else b, path)
        return None if entry is None else (change, entry)

    def get(self, path: str) -> FileDiff | None:
        """``path``'s difference with its entries; None when it does not differ."""
        i = self._index().get(path)
        return None if i is None else self[i]

    def counts(self) -> dict[str, int]:
        """How many paths differ in each way."""
        return {change: self.codes.count(code) for code, change in enumerate(CHANGES)}

    def relevant(self) -> Container[str]:
        """The differing paths and every folder above them (what a tree of them shows)."""
        if self._relevant is None:
            # (a dict, as said above, filled a path at a time: made at once from a set, in one
            # call, it held the interpreter lock, and the window, for 100 ms at a million)
            relevant: dict[str, None] = {}
            for path in self.paths:
                while path not in relevant and path != "/":
                    relevant[path] = None
                    path = names.split(path)[0]
            self._relevant = relevant
        return self._relevant

    def totals(self) -> dict[str, int]:
        """The bytes below each folder of what is shown (``direct``, rolled up)."""
        if self._totals is None:
            self._totals = roll_up(self.direct)
        return self._totals

    def prepare(self) -> "Differences":
        """Work out ahead what a view of them asks for (off the window's thread)."""
        self._index()
        self.relevant()
        self.totals()
        return self


def _final(tree: LayerTree, path: str) -> Entry | None:
    """The entry at ``path`` in the final filesystem, hard links as it has them (``merged``)."""
    entry = tree.entry_at(path)
    return tree.effective(entry) if entry is not None and entry.type == HARDLINK else entry


@dataclass
class Comparison:
    """Two images side by side."""

    a: Image
    b: Image
    shared: list[tuple[str, int, int]]  # (diff_id, index in A, index in B): same layer, same chain
    # The first layer index past the shared ones: where the chains part, or the length of
    # the shorter chain when it is all shared (see ``chain_summary``).
    diverge_at: int
    pull_skip_bytes: int  # bytes of B's layer blobs a pull would not fetch, having A
    files: Differences
    packages: LayerPackages = field(default_factory=LayerPackages)  # added: only in B; changed: B's version


def compare(a_source: Source, a: Image, b_source: Source, b: Image, files: Differences | None = None) -> Comparison:
    """Compare two loaded images (from the same source or two); ``files``: their differing
    paths, when worked out elsewhere (``Differences.between``)."""
    ca, cb = chain_ids([l.diff_id for l in a.layers]), chain_ids([l.diff_id for l in b.layers])
    shared = []
    for i, (x, y) in enumerate(zip(ca, cb)):
        if x != y:
            break
        shared.append((b.layers[i].diff_id, i, i))
    have = {l.digest for l in a.layers} | {l.diff_id for l in a.layers}
    skip = sum(l.blob_size for l in b.layers if l.digest in have or l.diff_id in have)
    if files is None:
        files = Differences.between(a_source, a, b_source, b)
    return Comparison(a, b, shared, len(shared), skip, files, difference(a.packages, b.packages))


def _layers(n: int) -> str:
    return f"{n} layer" if n == 1 else f"{n} layers"


def chain_summary(shared: int, a_layers: int, b_layers: int) -> str:
    """How two layer chains relate, in words: the same, one the base of the other, or where they part."""
    if shared == a_layers == b_layers:
        return f"the images share all {_layers(shared)}" if shared else "neither image has layers"
    if shared == 0:
        return "the chains part at layer 0: no common base"
    # A chain that is all shared is the other's base: nothing parts, the other only adds.
    if shared == a_layers:
        return f"B adds {_layers(b_layers - shared)} on top of all {_layers(shared)} of A"
    if shared == b_layers:
        return f"A adds {_layers(a_layers - shared)} on top of all {_layers(shared)} of B"
    return f"the chains part at layer {shared}"


def _digest_fn(source: Source, image: Image) -> Callable[[Entry], "str | None"]:
    cache: dict[tuple[int, str], str | None] = {}

    def digest(e: Entry) -> str | None:
        if e.digest is not None:
            return e.digest
        key = (e.layer, e.path)
        if key not in cache:
            try:
                cache[key] = content_digest(source, image, e) if e.type in (FILE, HARDLINK) else None
            except (ExplorerError, OSError):
                cache[key] = None
        return cache[key]

    return digest


def file_diffs(a_source: Source, a: Image, b_source: Source, b: Image) -> Iterator[FileDiff]:
    """Every path whose final state differs, sorted by path."""
    da, db = _digest_fn(a_source, a), _digest_fn(b_source, b)
    final_a = {e.path: e for e in a.tree.merged()}
    final_b = {e.path: e for e in b.tree.merged()}

    def digest(e: Entry) -> str | None:
        return (da if final_a.get(e.path) is e else db)(e)

    for path in sorted(final_a.keys() | final_b.keys(), key=lambda p: p.encode("utf-8", "surrogateescape")):
        ea, eb = final_a.get(path), final_b.get(path)
        if ea is None:
            yield FileDiff(path, ADDED, None, eb)
        elif eb is None:
            yield FileDiff(path, REMOVED, ea, None)
        elif is_modified(ea, eb, digest):
            yield FileDiff(path, MODIFIED, ea, eb)


def ancestors_of(paths: Iterator[str]) -> set[str]:
    """The paths and every folder above them (for showing differences as a tree)."""
    keep: set[str] = set()
    for p in paths:
        while p not in keep and p != "/":
            keep.add(p)
            p = names.split(p)[0]
    return keep
