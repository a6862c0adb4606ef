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
STALE = 86400  # seconds: older scratch was left by a window that was killed


def scratch_dir() -> str:
    """The cache's folder for a window's own working files (an index written while the cache
    is off, a copy of an engine's stream), made if missing and swept of stale ones."""
    import shutil
    import time

    root = os.path.join(cache_dir(), "tmp")
    os.makedirs(root, exist_ok=True)
    stale = time.time() - STALE
    try:
        for entry in os.scandir(root):
            if entry.name.startswith(SCRATCH_PREFIXES) and entry.stat(follow_symlinks=False).st_mtime < stale:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    remove(entry.path)
    except OSError:
        pass
    return root
