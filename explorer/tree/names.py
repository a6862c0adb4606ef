"""Entry names in layer tars: normalising, and telling whiteouts and markers apart."""

from __future__ import annotations


WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
AUFS_META = ".wh..wh."


def normalise(name: str) -> str | None:
    """``./a//b/`` -> ``/a/b``; ``.`` -> ``/``; None when a ``..`` component makes it unsafe."""
    n = name
    while n.startswith("./"):
        n = n[2:]
    n = n.strip("/")
    if "//" in n or "/." in n or n.startswith("."):  # rare: take the careful path
        parts = []
        for comp in n.split("/"):
            if comp in ("", "."):
                continue
            if comp == "..":
                return None
            parts.append(comp)
        return "/" + "/".join(parts)
    return "/" + n


def split(path: str) -> tuple[str, str]:
    """(parent, name) of an absolute normalised path; the root's parent is ""."""
    if path == "/":
        return "", ""
    cut = path.rfind("/")
    return (path[:cut] or "/"), path[cut + 1 :]


def join(parent: str, name: str) -> str:
    """Child path of a directory."""
    return parent + name if parent == "/" else f"{parent}/{name}"


def is_aufs_meta(path: str) -> bool:
    """Whether any component is AUFS bookkeeping (``.wh..wh.plnk`` and the like)."""
    return AUFS_META in path and any(c.startswith(AUFS_META) for c in path.split("/"))
