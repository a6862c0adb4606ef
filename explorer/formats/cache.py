"""The user's cache folder and its size limits, shared by the blob cache and the index cache."""

from __future__ import annotations

import os
from typing import Iterable

import platformdirs


def cache_dir() -> str:
    """``LAYER_EXPLORER_CACHE``, or the user's cache folder."""
    return os.environ.get("LAYER_EXPLORER_CACHE") or platformdirs.user_cache_dir("layer-explorer")


def remove(path: str) -> None:
    """Delete a file if it is there."""
    try:
        os.unlink(path)
    except OSError:
        pass


def keep_under(paths: Iterable[str], limit: int) -> None:
    """Delete the least recently used of these files until they take at most ``limit`` bytes."""
    files = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        files.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in files)
    for _, size, p in sorted(files):
        if total <= limit:
            break
        remove(p)
        total -= size


SCRATCH_PREFIXES = ("index-", "engine-")  # what a window writes in ``scratch_dir`` for itself
STALE = 86400  # seconds: scratch without its writer's process id is swept after this


def scratch_prefix(kind: str) -> str:
    """The start of a scratch file's name: its kind and this process's id, so a sweep can tell
    a copy still in use (a tab open for days) from one a killed window left."""
    return f"{kind}{os.getpid()}-"


def writer_gone(pid: str) -> bool:
    """Whether the process that wrote a file named with this id has ended (killed mid-write):
    False when the id is no number, is ours, or is another user's live process."""
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # (another user's process of that id: not ours to judge)
        return False
    return False


def left_behind(name: str, mtime: float, now: float, stale: float = STALE) -> bool:
    """Whether a scratch entry's writer is gone (or, for a name without a process id, it is
    older than ``stale`` seconds)."""
    pid = name.split("-", 2)[1] if name.count("-") >= 2 else ""
    return writer_gone(pid) if pid.isdigit() else mtime < now - stale


def scratch_dir() -> str:
    """The cache's folder for a window's own working files (an index written while the cache
    is off, a copy of an engine's stream), made if missing and swept of what killed windows left."""
    import shutil
    import time

    root = os.path.join(cache_dir(), "tmp")
    os.makedirs(root, exist_ok=True)
    now = time.time()
    try:
        for entry in os.scandir(root):
            if entry.name.startswith(SCRATCH_PREFIXES) and left_behind(entry.name, entry.stat(follow_symlinks=False).st_mtime, now):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    remove(entry.path)
    except OSError:
        pass
    return root
