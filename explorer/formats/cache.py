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
