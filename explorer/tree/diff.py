"""Change kinds and the rule that decides whether an entry was modified."""

from __future__ import annotations

from typing import Callable

from explorer.model.values import DIR, FILE, HARDLINK, Entry

ADDED, MODIFIED, REMOVED, UNCHANGED = "added", "modified", "removed", "unchanged"

DigestFn = Callable[[Entry], "str | None"]
_FILES = (FILE, HARDLINK)


def is_modified(before: Entry, after: Entry, digest: DigestFn) -> bool:
    """Whether ``after`` differs from ``before`` by type, metadata, symlink target or content.

    mtime never counts, nor whether a file is stored as a hardlink (a file that gains or
    loses another name is the same file). Content is compared only when everything else
    agrees, so the bytes of a file are read only for the few paths that need it.
    """
    kind = after.type
    if before.type != kind and not (before.type in _FILES and kind in _FILES):
        return True  # a file that gains or loses another name is the same file (Docker's copy-up)
    if before.mode != after.mode:
        return True
    if before.uid != after.uid or before.gid != after.gid:
        return True
    if kind == DIR:
        return False
    if before.size != after.size or (kind not in _FILES and before.target != after.target):
        return True
    if kind in _FILES and after.size:
        a, b = digest(before), digest(after)
        return a is None or b is None or a != b
    return False
