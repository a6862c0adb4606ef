"""Comparing two images: the layers they share, where they part, what a pull of one would
skip having the other, and how their final filesystems differ."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

from explorer.image.content import content_digest
from explorer.model.errors import ExplorerError
from explorer.image.loader import Image
from explorer.image.packages import difference
from explorer.model.packages import LayerPackages
from explorer.model.values import FILE, HARDLINK, Entry
from explorer.formats.source import Source
from explorer.tree import names
from explorer.tree.diff import ADDED, MODIFIED, REMOVED, is_modified

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
    files: list[FileDiff] = field(default_factory=list)
    packages: LayerPackages = field(default_factory=LayerPackages)  # added: only in B; changed: B's version

    def by_path(self) -> dict[str, FileDiff]:
        """The differing paths, for lookups."""
        return {f.path: f for f in self.files}


def compare(a_source: Source, a: Image, b_source: Source, b: Image) -> Comparison:
    """Compare two loaded images (from the same source or two)."""
    ca, cb = chain_ids([l.diff_id for l in a.layers]), chain_ids([l.diff_id for l in b.layers])
    shared = []
    for i, (x, y) in enumerate(zip(ca, cb)):
        if x != y:
            break
        shared.append((b.layers[i].diff_id, i, i))
    have = {l.digest for l in a.layers} | {l.diff_id for l in a.layers}
    skip = sum(l.blob_size for l in b.layers if l.digest in have or l.diff_id in have)
    result = Comparison(a, b, shared, len(shared), skip, packages=difference(a.packages, b.packages))
    result.files = list(_file_diffs(a_source, a, b_source, b))
    return result


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


def _file_diffs(a_source: Source, a: Image, b_source: Source, b: Image) -> Iterator[FileDiff]:
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
