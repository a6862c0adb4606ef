"""Looking a path up the way a process in the container would: through symlinked folders.

One rule for every lookup by path (``cat``, ``extract PATH``, the preview, "Go to target"):
symlinks are followed inside the image only (an absolute target starts again at the image's
root, and ``..`` stops there), at most ``MAX_HOPS`` of them, as the kernel limits loops.
"""

from __future__ import annotations

from typing import NamedTuple

from explorer.model.values import DIR, SYMLINK, Entry
from explorer.tree.index import LayerTree

MAX_HOPS = 40  # the kernel's own limit on links followed in one lookup


class Resolved(NamedTuple):
    """Where a path leads: the real path, its entry (None when nothing is there), the links
    followed on the way as ``(link, target)``, and why the lookup stopped short, if it did."""

    path: str
    entry: Entry | None
    via: tuple[tuple[str, str], ...]
    problem: str | None = None

    def describe(self) -> str:
        """Where it leads, in a sentence: the entry found, or why there is none."""
        if self.problem is not None:
            return f"It leads nowhere: {self.problem}."
        if self.entry is None:
            return f"It leads to {self.path}, which is not in the image (a dangling link)."
        kind = {DIR: "a folder", SYMLINK: "a symlink"}.get(self.entry.type, f"a {self.entry.type}")
        return f"It leads to {self.path} ({kind})."

    def route(self) -> str:
        """The links followed, as a user reads them: ``/bin -> usr/bin``."""
        return ", ".join(f"{link} -> {target}" for link, target in self.via)


def resolve(tree: LayerTree, path: str, layer: int | None = None, follow_last: bool = True) -> Resolved:
    """Where ``path`` leads after layers 0..layer; the last component is followed only if
    ``follow_last`` (``lstat`` against ``stat``)."""
    queue = [c for c in path.split("/") if c not in ("", ".")]
    queue.reverse()  # a stack: the next component is at the end
    at, via = "/", []
    entry: Entry | None = tree.entry_at("/", layer)
    while queue:
        comp = queue.pop()
        if comp == "..":
            at = at[: at.rfind("/")] or "/"
            entry = tree.entry_at(at, layer)
            continue
        if entry is not None and entry.type != DIR and at != "/":
            rest = "/".join([comp, *reversed(queue)])
            return Resolved(_join(at, rest), None, tuple(via), f"{at} is not a folder")
        here = _join(at, comp)
        entry = tree.entry_at(here, layer)
        if entry is None:
            rest = "/".join(reversed(queue))
            return Resolved(_join(here, rest) if rest else here, None, tuple(via), None)
        if entry.type == SYMLINK and (queue or follow_last):
            if len(via) >= MAX_HOPS:
                return Resolved(here, entry, tuple(via), f"more than {MAX_HOPS} links on the way (a loop?)")
            target = entry.target or ""
            via.append((here, target))
            parts = [c for c in target.split("/") if c not in ("", ".")]
            queue.extend(reversed(parts))
            if target.startswith("/"):
                at = "/"
            entry = tree.entry_at(at, layer)
            continue
        at = here
    return Resolved(at, entry, tuple(via), None)


def link_target(tree: LayerTree, link: Entry, layer: int | None = None) -> Resolved:
    """Where a symlink entry leads (a relative target is read from the link's folder)."""
    target = link.target or ""
    folder = link.path[: link.path.rfind("/")] or "/"
    start = target if target.startswith("/") else _join(folder, target)
    out = resolve(tree, start, layer)
    return out._replace(via=((link.path, target), *out.via))


def _join(folder: str, rest: str) -> str:
    return folder + rest if folder.endswith("/") else f"{folder}/{rest}"
