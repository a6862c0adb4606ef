"""Change kinds and the rule that decides whether an entry was modified."""

from __future__ import annotations

from typing import Callable

from explorer.image.model import DIR, FILE, HARDLINK, Entry

ADDED, MODIFIED, REMOVED, UNCHANGED = "added", "modified", "removed", "unchanged"

DigestFn = Callable[[Entry], "str | None"]



def is_modified(before: Entry, after: Entry, digest: DigestFn) -> bool:
    """Whether ``after`` differs from ``before`` by type, metadata, target or content.

    mtime never counts. Content is compared only when everything else agrees, so the
    bytes of a file are read only for the few paths that need it.
    """
    if before.type != after.type or before.mode != after.mode:
        return True
    if before.uid != after.uid or before.gid != after.gid:
        return True
    if after.type == DIR:
        return False
    if before.size != after.size or before.target != after.target:
        return True
    if after.type in (FILE, HARDLINK) and after.size:
        a, b = digest(before), digest(after)
        return a is None or b is None or a != b
    return False
