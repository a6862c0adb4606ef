"""Where an image's bytes go to waste: versions overwritten or removed later, and duplicates.

Unlike dive's single number, every wasted byte here has a file, a layer and a reason, so a
user can tell which build step to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter
from typing import Callable, NamedTuple

from explorer.model.values import FILE, Entry
from explorer.tree.diff import MODIFIED, REMOVED, UNCHANGED
from explorer.tree.index import LayerTree

# Files this small are not worth reading just to find duplicates (their digest is used when
# the scan already has it).
DUPLICATE_READ_MIN = 16 << 10
OVERWRITTEN, REMOVED_LATER, REWRITTEN, DUPLICATE = "overwritten", "removed", "rewritten", "duplicate"


class WastedFile(NamedTuple):
    """Bytes one layer stored for a path that the final image does not need (a named tuple:
    a big image has hundreds of thousands, and a frozen dataclass is four times slower to make)."""

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
    per_layer, merge_savings = waste.per_layer, waste.merge_savings
    new = tuple.__new__
    links = tree.links
    # The reasons' texts, made once for each kind and layer (a quarter of a million files
    # share a handful)
    reasons: dict[tuple[str, int], tuple[str, str]] = {}
    for path, versions in tree.multi_versions():  # paths written once and kept waste nothing
        for i in range(len(versions) - 1):
            layer, _, e = versions[i]
            if e is None or e[1] != FILE or e[8] != layer or not e[5]:  # (type, layer, size)
                continue  # only versions that stored bytes
            size = e[5]
            by, change, after = versions[i + 1]
            if links and (layer, e.offset) in links:
                if tree.linked_names(e):
                    continue  # another name of the same file is still in the image: its bytes are needed
                last = _last_name_lost(tree, (layer, e.offset), path)
                if last is not None and last[0] > by:  # the bytes lived on under another name
                    by, name, removed = last
                    kind = REMOVED_LATER if removed else OVERWRITTEN
                    why = f"{'removed' if removed else 'overwritten'} in layer {by} under its last other name, {name}"
                    files.append(new(WastedFile, (path, layer, size, kind, by, why)))
                    per_layer[layer] += size
                    continue  # merging never saves it: that name was in a later layer than the next
            if change == MODIFIED and after is not None and after[1] == FILE \
                    and after[5] == size and digest(after) == digest(e):
                change = _METADATA
            reason = reasons.get((change, by))
            if reason is None:
                reason = reasons[(change, by)] = _reason(change, by)
            files.append(new(WastedFile, (path, layer, size, reason[0], by, reason[1])))
            per_layer[layer] += size
            if by == layer + 1:
                merge_savings[layer] += size
    _duplicates(tree, digest, waste)
    waste.bytes = sum(per_layer)  # (every wasted file is in its layer's sum)
    waste.files = _biggest_first(files)
    return waste


_METADATA = "metadata"  # (a change of metadata alone, as ``compute_waste`` tells it apart)


def _reason(change: str, by: int) -> tuple[str, str]:
    """The kind of waste, and why, of a version that ``change`` in layer ``by`` came after."""
    if change == REMOVED:
        return REMOVED_LATER, f"removed in layer {by}"
    if change == UNCHANGED:
        return REWRITTEN, f"written again unchanged in layer {by}"
    if change == _METADATA:
        return REWRITTEN, f"copied again in layer {by} only to change its metadata"
    return OVERWRITTEN, f"overwritten in layer {by}"


def _last_name_lost(tree: LayerTree, key: tuple[int, int], path: str) -> tuple[int, str, bool] | None:
    """When the last of a file's other names let it go: (layer, that name, removed or not)."""
    last: tuple[int, str, bool] | None = None
    for name in tree.links.get(key, ()):
        if name == path:
            continue
        held = False
        for version in tree.history(name):
            e = version.entry
            has = e is not None and tree.inode(e, name) == key
            if held and not has and (last is None or version.layer > last[0]):
                last = (version.layer, name, e is None)
            held = has
    return last


def _biggest_first(files: list[WastedFile]) -> list[WastedFile]:
    """Files by size, biggest first, then by path and layer.

    Grouped by size, and each group sorted on one key at a time (stable sorts, so path then
    layer order holds): single-key sorts compare in C without building tuples, five times
    faster than one sort over (size, path, layer) keys, and no one call holds the interpreter
    (and the window) for long.
    """
    by_size: dict[int, list[WastedFile]] = {}
    for f in files:
        by_size.setdefault(f.size, []).append(f)
    out: list[WastedFile] = []
    for size in sorted(by_size, reverse=True):
        group = by_size[size]
        if len(group) > 1:
            group.sort(key=_LAYER)
            group.sort(key=_PATH)
        out.extend(group)
    return out


_PATH, _LAYER = itemgetter(0), itemgetter(1)  # WastedFile.path, WastedFile.layer, read in C


def _duplicates(tree: LayerTree, digest: Callable[[Entry], "str | None"], waste: Waste) -> None:
    """Files of the final image whose content another final file already holds."""
    by_size: dict[int, list[Entry]] = {}
    for e in tree.merged():  # (of the names of one file, ``merged`` calls one a file, the others links)
        # (a small file whose content the scan did not hash is never read for it: left out now;
        # fields read by position: type, size, digest)
        if e[1] == FILE and e[5] and (e[5] >= DUPLICATE_READ_MIN or e[11] is not None):
            by_size.setdefault(e[5], []).append(e)
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
