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


_BLOCK = 65536  # names looked at together (their texts are made and dropped a block at a time)
_CAREFUL = ("//", "/.", "\n.", "\n/", "\n\n")  # in names joined by newlines: a name that needs care


def plain_names(names: list[str]) -> list[str] | None:
    """Each name with one trailing slash taken off, when no name needs a careful look (empty,
    or starting with "." or "/", or holding "//", "/." or a newline); None when one does. A
    few passes over a block of names joined, in C: looked at one by one, a third of the
    time dive's model of a layer took went on them."""
    out: list[str] = []
    for start in range(0, len(names), _BLOCK):
        block = names[start : start + _BLOCK]
        text = "\n".join(block)
        if not text or text[0] in "./\n" or text[-1] == "\n" or any(c in text for c in _CAREFUL):
            return None
        paths = (text + "\n").replace("/\n", "\n").split("\n")
        paths.pop()  # (after the last newline: nothing)
        if len(paths) != len(block):  # a newline inside a name
            return None
        out += paths
    return out


def any_holds(names: list[str], part: str) -> bool:
    """Whether any of ``names`` holds ``part`` (which holds no newline), looked for in blocks of
    them joined: in C, not a name at a time."""
    return any(part in "\n".join(names[i : i + _BLOCK]) for i in range(0, len(names), _BLOCK))


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
