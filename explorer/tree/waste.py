"""Where an image's bytes go to waste: versions overwritten or removed later, and duplicates.

Unlike dive's single number, every wasted byte here has a file, a layer and a reason, so a
user can tell which build step to change.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Callable

from explorer.image.model import FILE, Entry
from explorer.tree.diff import MODIFIED, REMOVED, UNCHANGED
from explorer.tree.index import LayerTree

# Files this small are not worth reading just to find duplicates (their digest is used when
# the scan already has it).
DUPLICATE_READ_MIN = 16 << 10
OVERWRITTEN, REMOVED_LATER, REWRITTEN, DUPLICATE = "overwritten", "removed", "rewritten", "duplicate"


@dataclass(frozen=True, slots=True)
class WastedFile:
    """Bytes one layer stored for a path that the final image does not need."""

    path: str
    layer: int
    size: int
    kind: str  # overwritten, removed, rewritten (same content again) or duplicate
    by_layer: int  # the layer that overwrote or removed it (for duplicates: the kept copy's)
    reason: str


@dataclass
class Waste:
    """All waste of an image, by file and by layer."""

    bytes: int = 0
    files: list[WastedFile] = field(default_factory=list)
    per_layer: list[int] = field(default_factory=list)  # wasted bytes each layer stores
    merge_savings: list[int] = field(default_factory=list)  # [k]: saved by merging layers k and k+1


def compute_waste(tree: LayerTree, digest: Callable[[Entry], "str | None"]) -> Waste:
    """Account every stored version that a later layer overwrote or removed, and duplicates."""
    n = tree.layer_count
    waste = Waste(per_layer=[0] * n, merge_savings=[0] * max(0, n - 1))
    files = waste.files
    for path, versions in tree.versions.items():
        if type(versions) is not list:
            continue  # written once and kept: nothing wasted
        versions = tree.history(path)
        for i, v in enumerate(versions[:-1]):
            e = v.entry
            if e is None or e.type != FILE or e.layer != v.layer or not e.size:
                continue  # only versions that stored bytes
            nxt = versions[i + 1]
            if nxt.change == REMOVED:
                kind, why = REMOVED_LATER, f"removed in layer {nxt.layer}"
            elif nxt.change == UNCHANGED:
                kind, why = REWRITTEN, f"written again unchanged in layer {nxt.layer}"
            elif nxt.change == MODIFIED and nxt.entry is not None and nxt.entry.type == FILE \
                    and nxt.entry.size == e.size and digest(nxt.entry) == digest(e):
                kind, why = REWRITTEN, f"copied again in layer {nxt.layer} only to change its metadata"
            else:
                kind, why = OVERWRITTEN, f"overwritten in layer {nxt.layer}"
            files.append(WastedFile(path, v.layer, e.size, kind, nxt.layer, why))
            waste.per_layer[v.layer] += e.size
            if nxt.layer == v.layer + 1:
                waste.merge_savings[v.layer] += e.size
    _duplicates(tree, digest, waste)
    waste.bytes = sum(f.size for f in files)
    waste.files = _biggest_first(files)
    return waste


def _biggest_first(files: list[WastedFile], run: int = 4_000) -> list[WastedFile]:
    """Files by size, biggest first (then path and layer), sorted in runs merged by a generator:
    one sort call over hundreds of thousands would hold the interpreter (and the window) for
    a quarter of a second."""
    keyed = [((-f.size, f.path, f.layer, i), f) for i, f in enumerate(files)]  # i: never compare files
    runs = [sorted(keyed[i:i + run]) for i in range(0, len(keyed), run)]
    return [f for _, f in heapq.merge(*runs)]


def _duplicates(tree: LayerTree, digest: Callable[[Entry], "str | None"], waste: Waste) -> None:
    """Files of the final image whose content another final file already holds."""
    by_size: dict[int, list[Entry]] = {}
    for e in tree.merged():
        if e.type == FILE and e.size:
            by_size.setdefault(e.size, []).append(e)
    for size, same in by_size.items():
        if len(same) < 2:
            continue
        groups: dict[str, list[Entry]] = {}
        for e in same:
            d = e.digest if e.digest is not None else (digest(e) if size >= DUPLICATE_READ_MIN else None)
            if d is not None:
                groups.setdefault(d, []).append(e)
        for copies in groups.values():
            if len(copies) < 2:
                continue
            copies.sort(key=lambda e: (e.layer, e.path))
            kept = copies[0]
            for e in copies[1:]:
                waste.files.append(WastedFile(e.path, e.layer, e.size, DUPLICATE, kept.layer,
                                              f"same content as {kept.path} (layer {kept.layer})"))
                waste.per_layer[e.layer] += e.size
