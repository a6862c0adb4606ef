"""Facts about one path for people: which layer touched it last and how, what a change changed, where a link leads."""

from __future__ import annotations

from typing import Any, NamedTuple

from explorer.model.values import FILE, HARDLINK, SYMLINK, Entry
from explorer.tree.diff import ADDED, MODIFIED, REMOVED
from explorer.tree.index import LayerTree
from explorer.tree.resolve import Resolved, link_target

# What a ``Difference`` is about; the three CONTENT_ ones are for files.
TYPE, MODE, OWNER, TARGET, XATTRS, MTIME = "type", "mode", "owner", "target", "xattrs", "mtime"
CONTENT_CHANGED, CONTENT_SAME, CONTENT_UNKNOWN = "content changed", "content same", "content not compared"
_FILES = (FILE, HARDLINK)


class Step(NamedTuple):
    """The last layer that touched a path: what it did, and the entry before and after (None: none)."""

    layer: int
    change: str
    before: Entry | None
    after: Entry | None


class Removal(NamedTuple):
    """A removal: the layer that removed the path, the one that added it, the one that wrote the copy removed."""

    layer: int
    added: int | None
    written: int | None


class Difference(NamedTuple):
    """One way two entries of a path differ: what, and its value before and after (sizes for content)."""

    what: str
    before: Any
    after: Any


def last_step(tree: LayerTree, path: str, layer: int | None) -> Step | None:
    """The last layer at or before ``layer`` (None: any) that touched ``path``."""
    previous = current = None
    for version in tree.history(path):
        if layer is not None and version.layer > layer:
            break
        previous, current = current, version
    if current is None:
        return None
    return Step(current.layer, current.change, previous.entry if previous else None, current.entry)


def removal(tree: LayerTree, path: str, layer: int | None) -> Removal | None:
    """Which layer removed ``path`` as the tree after ``layer`` has it (None: it is there)."""
    step = last_step(tree, path, layer)
    if step is None or step.change != REMOVED:
        return None
    added = written = None
    for version in tree.history(path):
        if version.layer >= step.layer:
            break
        if version.change == ADDED:
            added = version.layer
        if version.entry is not None:
            written = version.layer
    return Removal(step.layer, added, written)


def same_content(tree: LayerTree, before: Entry, after: Entry) -> bool | None:
    """Whether two file entries hold the same bytes (by size, stored copy, digest); None when unknown."""
    # (a plain, uncompressed layer is not hashed as it is read, so its digests may be missing)
    if before.size != after.size:
        return False
    if not after.size:
        return True
    stored = tree.inode(before)
    if stored is not None and stored == tree.inode(after):
        return True
    if before.digest and after.digest:
        return before.digest == after.digest
    return None


def differences(tree: LayerTree, before: Entry, after: Entry, modified: bool = False) -> list[Difference]:
    """How ``after`` differs from ``before``, most telling first; ``modified``: the layer rules said so."""
    out: list[Difference] = []
    files = before.type in _FILES and after.type in _FILES
    if before.type != after.type and not files:  # a file that gains another name is the same file
        out.append(Difference(TYPE, before.type, after.type))
    content = _content(tree, before, after, modified) if files else None
    if content is not None and content.what == CONTENT_CHANGED:
        out.append(content)
    if before.type == SYMLINK == after.type and before.target != after.target:
        out.append(Difference(TARGET, before.target, after.target))
    if before.mode != after.mode:
        out.append(Difference(MODE, before.mode, after.mode))
    if (before.uid, before.gid) != (after.uid, after.gid):
        out.append(Difference(OWNER, f"{before.uid}:{before.gid}", f"{after.uid}:{after.gid}"))
    if (before.xattrs or {}) != (after.xattrs or {}):
        out.append(Difference(XATTRS, dict(before.xattrs or {}), dict(after.xattrs or {})))
    if before.mtime != after.mtime:
        out.append(Difference(MTIME, before.mtime, after.mtime))
    if content is not None and content.what != CONTENT_CHANGED:
        out.append(content)  # last: it says what did not change, or that it was not looked at
    return out


def _content(tree: LayerTree, before: Entry, after: Entry, modified: bool) -> Difference:
    """Whether the bytes of two file entries differ, with their sizes."""
    same = same_content(tree, before, after)
    if same is None and modified and before.mode == after.mode and (before.uid, before.gid) == (after.uid, after.gid):
        same = False  # the layer rules compared the bytes: nothing else could make it modified
    kind = CONTENT_UNKNOWN if same is None else CONTENT_SAME if same else CONTENT_CHANGED
    return Difference(kind, before.size, after.size)


def step_differences(tree: LayerTree, step: Step) -> list[Difference]:
    """``differences`` of what a step replaced and what it wrote (none for an add or removal)."""
    if step.before is None or step.after is None:
        return []
    return differences(tree, step.before, step.after, step.change == MODIFIED)


def dangling(tree: LayerTree, entry: Entry, layer: int | None) -> Resolved | None:
    """Where a symlink meant to lead when it leads nowhere; None for links that lead somewhere."""
    if entry.type != SYMLINK:
        return None
    found = link_target(tree, entry, layer)
    return found if found.entry is None or found.problem is not None else None


def dangling_text(found: Resolved) -> str:
    """Why a link leads nowhere, in a few words: ``dangling link: /x is not in the image``."""
    return f"dangling link: {found.problem}" if found.problem else f"dangling link: {found.path} is not in the image"
