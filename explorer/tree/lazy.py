"""A layered tree read from the index cache a folder at a time, as it is looked at.

Decoding a million entries takes seconds; showing the first screen needs a few folders.
The cache stores each folder's children as one marshal chunk (and each layer's changes as
another): ``versions`` and ``kids`` decode a folder the first time anything below it is asked
for. A walk over all paths reads the folders as stored and keeps none (``stored_steps``); a
search reads the path table (``explorer.tree.pathtable``) and the columns
(``explorer.tree.columns``) tell which of its matches show, as they give any layer's folder
sizes; a search that must look its matches up (under a filter) lets go of the folders it
decoded to tell what shows (``recording``).
"""

from __future__ import annotations

import collections
import contextlib
import marshal
import threading
from typing import Any, Callable, Iterable, Iterator

from explorer.tree.columns import Columns
from explorer.tree.index import LayerChanges
from explorer.tree.pathtable import MappedPages, PathTable
from explorer.tree.steps import Steps, drain

Span = tuple[int, int]  # offset and length of a chunk in the body
Folder = tuple[int, int, int]  # a folder's span, and the layers it has a child at (a bit a layer)


FORGET_STEP = 20_000  # paths let go of between events (a few ms)
# Layers whose lists of changes stay decoded, the latest asked for (a million-entry image's
# four took 190 MB of the window's, and every full pass of the cycle collector walked them)
KEPT_CHANGES = 2
KEPT_WHILE_RECORDING = 100_000  # paths a ``recording`` block keeps decoded at most (about 30 MB)


class _Decoded:
    """The folders decoded inside one ``recording`` block and not yet let go of, oldest first,
    with how many names they hold, and those to keep."""

    __slots__ = ("folders", "paths", "kept", "gone", "holding")

    def __init__(self) -> None:
        self.folders: collections.deque[tuple[str, int]] = collections.deque()
        self.paths = 0
        self.kept: set[str] = set()
        self.gone: set[str] = set()  # let go of so far
        self.holding = False  # once a folder let go of is decoded again, none is until the end

    def note(self, folder: str, names: int, let_go: Callable[[str], int]) -> None:
        """A folder decoded: let go of the oldest while those kept hold too many paths.

        A walk over paths folder by folder needs each folder once. One that needs a folder
        again (the other names of hard links, in folders together over the budget) would
        decode them over and over: from then on, nothing is let go of until the block ends.
        """
        self.folders.append((folder, names))
        self.paths += names
        if folder in self.gone and folder not in self.kept:  # (one kept is asked for once more, to be shown)
            self.holding = True
        while not self.holding and self.paths > KEPT_WHILE_RECORDING and len(self.folders) > 1:
            old, count = self.folders.popleft()
            self.paths -= count
            if old not in self.kept:
                let_go(old)
                self.gone.add(old)


class Chunks:
    """The encoded folders of one index and what has been decoded of them so far."""

    def __init__(self, body: memoryview, folders: dict[str, Folder], count: int, versions: dict[str, Any],
                 table: PathTable | None, layout: Any = None, pages: MappedPages | None = None) -> None:
        self.body: memoryview | None = body
        self._pages = pages  # (the file's pages of what ``recording`` lets go of are let go of too)
        self._columns: tuple[memoryview, Any] | None = (body, layout) if layout is not None else None
        self._read: Columns | None = None
        self.folders = folders
        self.count = count  # paths in the whole index
        self.versions = versions  # decoded so far (starts with the root and strays)
        self.table = table  # every path, for a search that decodes no folder
        self.strays: dict[str, list[str]] = {}  # folder -> names of paths it does not list
        for path in versions:
            if path != "/":
                cut = path.rfind("/")
                self.strays.setdefault(path[:cut] or "/", []).append(path[cut + 1:])
        self.kids: dict[str, list[str]] = {}
        self.complete = not folders
        self._lock = threading.Lock()  # the window's thread and a background one may both decode
        self._recorders: list[_Decoded] = []  # the folders decoded meanwhile, for each ``recording``
        self.forgettable: list[str] = []  # folders whose decoding was for a walk now over
        self._for_good = 0  # walks decoding every folder for good (``load_steps``) under way

    def columns(self, layers: int) -> Columns | None:
        """The index's columns (``explorer.tree.columns``), read on first use; None when it
        has none, or they do not hold together (then a walk over the folders does)."""
        if self._read is None and self._columns is not None:
            body, layout = self._columns
            try:
                self._read = Columns(body, layout, list(self.folders), layers)
            except ValueError:
                self._columns = None
        return self._read

    def pending(self, folder: str) -> bool:
        """Whether a folder's children are still encoded (``load`` would decode them)."""
        return folder not in self.kids and folder in self.folders

    def has_child_at(self, folder: str, layer: int) -> bool | None:
        """Whether a folder has a child at ``layer``, decoded or not (the index says, for
        each folder, the layers it has one at); None for no folder of the index."""
        span = self.folders.get(folder)
        return None if span is None else bool(span[2] >> layer & 1)

    def load(self, folder: str) -> list[str] | None:
        """Decode one folder's children, unless they are decoded; its names (None for no folder)."""
        names = self.kids.get(folder)
        if names is not None or folder not in self.folders:
            return names
        with self._lock:
            return self._decode(folder)

    def lookup(self, path: str) -> Any:
        """What is stored for a path, its folder decoded first if need be; None for none
        (decoded and read under the lock: a folder is never let go of in between)."""
        with self._lock:
            self._decode(path[: path.rfind("/")] or "/")
            return self.versions.get(path)

    def _decode(self, folder: str) -> list[str] | None:
        """``load``, holding the lock."""
        names = self.kids.get(folder)
        if names is not None or self.body is None or folder not in self.folders:
            return names
        offset, length, _alive = self.folders[folder]
        # All tuples of atomic values (the names, and each path's entry or versions): the
        # cycle collector stops tracking them at its next pass, so what is decoded adds
        # nothing to its full passes (lists made them 30 to 120 ms at a million paths)
        names, values = marshal.loads(self.body[offset:offset + length])
        prefix = folder if folder == "/" else folder + "/"
        versions = self.versions
        for name, value in zip(names, values):
            if value is not None:
                versions[prefix + name] = value
        self.kids[folder] = names  # last: whoever sees the names finds their versions too
        for decoded in self._recorders if not self._for_good else ():
            decoded.note(folder, len(names), self._let_go)
        return names

    @contextlib.contextmanager
    def recording(self) -> Iterator[Callable[[str], None]]:
        """Let go of the folders decoded inside the block: the oldest as soon as those kept
        hold more than ``KEPT_WHILE_RECORDING`` paths (``_Decoded.note``), the rest after it
        (``forget_steps``), but for those handed to the function it gives (the folders the
        caller shows next).
        A search whose matches are everywhere decodes nearly every folder to tell which of
        them show, and the window need not keep them (280 MB at a million paths). A folder
        let go of is decoded again when next asked for."""
        decoded = _Decoded()
        self._recorders.append(decoded)
        try:
            yield decoded.kept.add
        finally:
            self._recorders.remove(decoded)
            kept = decoded.kept  # (an earlier block may have left one of them to let go of)
            self.forgettable = [folder for folder in self.forgettable if folder not in kept]
            self.forgettable += [folder for folder, _ in decoded.folders if folder not in kept]
            if self._pages is not None:
                self._pages.flush()

    def let_go_later(self, folders: Iterable[str]) -> None:
        """Let go of these folders with the rest (``forget_steps``)."""
        self.forgettable += folders

    def forget_steps(self) -> Steps[None]:
        """Let go of the folders ``recording`` left to let go of, a few thousand paths a step.
        Nothing is let go of once every folder is decoded for good (the file's body is gone)."""
        done = 0
        while self.forgettable:
            with self._lock:
                done += self._let_go(self.forgettable.pop())
            if done >= FORGET_STEP:
                done = 0
                yield
        if self._pages is not None:
            self._pages.flush()

    def _let_go(self, folder: str) -> int:
        """Forget a decoded folder's names and their versions, all at once (never half of
        them); how many names it had. Holding the lock."""
        if self.body is None:
            self.forgettable.clear()
            return 0
        names = self.kids.pop(folder, None)
        if names is None:
            return 0
        prefix = folder if folder == "/" else folder + "/"
        pop = self.versions.pop
        for name in names:
            pop(prefix + name, None)
        if self._pages is not None:
            offset, length, _alive = self.folders[folder]
            self._pages.release(offset, length)
        return len(names)

    def stored_steps(self) -> Iterator[tuple[str, list[str], list[Any]] | None]:
        """Every folder's names and what is stored for each (paths their folder does not list
        too), None between folders. What is still encoded is decoded
        for the walk and not kept: a walk over every path leaves the window's memory as it was."""
        for folder in self.folders:
            yield folder, *self.stored(folder)
            yield None
        for folder in self.strays.keys() - self.folders.keys():
            yield folder, *self.stored(folder)
        if self._pages is not None:
            self._pages.flush()

    def stored(self, folder: str) -> tuple[list[str], list[Any]]:
        """A folder's names and what is stored for each (paths it does not list too), decoded
        for the asker and not kept when it is still encoded (empty for no folder)."""
        body = self.body  # first: it is let go of only once every folder is in ``kids``
        names = self.kids.get(folder)
        span = self.folders.get(folder)
        prefix = folder if folder == "/" else folder + "/"
        if names is None and body is not None and span is not None:
            names, values = marshal.loads(body[span[0]:span[0] + span[1]])
            if self._pages is not None:  # (read, not kept: the file's pages need not stay the window's)
                self._pages.release(span[0], span[1])
        else:  # decoded (whoever decoded it may have made some entries already)
            names = names or []
            values = [self.versions.get(prefix + name) for name in names]
        extra = self.strays.get(folder)
        if extra:
            names, values = [*names, *extra], [*values, *(self.versions[prefix + name] for name in extra)]
        return names, values

    def load_all(self) -> None:
        """Decode every folder (a walk over all paths needs them)."""
        drain(self.load_steps())

    def load_steps(self) -> Steps[None]:
        """``load_all`` as a walk that yields after each folder."""
        if self.complete:
            return
        self._for_good += 1  # (what is decoded meanwhile is kept, whoever records)
        try:
            while True:
                with self._lock:  # (checked and ended under the lock: none let go of in between)
                    left = [folder for folder in self.folders if folder not in self.kids]
                    if not left:
                        self.complete = True
                        self.body = None  # nothing left to decode (the changes and waste chunks keep their own view)
                        return
                for folder in left:  # (again for any let go of meanwhile: see ``forget_steps``)
                    self.load(folder)
                    yield
        finally:
            self._for_good -= 1


class _LazyMap:
    """The walking half of a mapping over chunks: any walk decodes every folder first."""

    __slots__ = ("chunks",)

    def __init__(self, chunks: Chunks) -> None:
        self.chunks = chunks

    def _all(self) -> dict[str, Any]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def keys(self):  # noqa: D102 (dict's)
        return self._all().keys()

    def values(self):  # noqa: D102
        return self._all().values()

    def items(self):  # noqa: D102
        return self._all().items()


class LazyVersions(_LazyMap):
    """``LayerTree.versions`` over chunks: a path's folder is decoded when the path is asked for."""

    __slots__ = ()

    def get(self, path: str, default: Any = None) -> Any:
        chunks = self.chunks
        v = chunks.versions.get(path)
        if v is None and not chunks.complete and path != "/":
            v = chunks.lookup(path)
        return default if v is None else v

    def __getitem__(self, path: str) -> Any:
        v = self.get(path)
        if v is None:
            raise KeyError(path)
        return v

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.get(path) is not None

    def __len__(self) -> int:
        return self.chunks.count

    def _all(self) -> dict[str, Any]:
        self.chunks.load_all()
        return self.chunks.versions


class LazyKids(_LazyMap):
    """``LayerTree.kids`` over chunks: a folder's names are decoded when first asked for."""

    __slots__ = ()

    def get(self, folder: str, default: Any = None) -> Any:
        chunks = self.chunks
        names = chunks.kids.get(folder)
        if names is None and not chunks.complete:
            names = chunks.load(folder)
        return default if names is None else names

    def __getitem__(self, folder: str) -> list[str]:
        names = self.get(folder)
        if names is None:
            raise KeyError(folder)
        return names

    def __contains__(self, folder: object) -> bool:
        return isinstance(folder, str) and folder in self.chunks.folders

    def __len__(self) -> int:
        return len(self.chunks.folders)

    def _all(self) -> dict[str, Any]:
        self.chunks.load_all()
        return self.chunks.kids


class LazyChanges:
    """``LayerTree.changes``: each layer's list decoded when that layer is first looked at,
    from the parts it is stored in (``decode_steps`` decodes them a part a step)."""

    def __init__(self, body: memoryview, spans: list[list[Span]], pages: MappedPages | None = None) -> None:
        self.body = body
        self.spans = spans
        self._pages = pages  # (a list decoded is what is kept: the file's pages of it need not be)
        self.decoded: dict[int, LayerChanges] = {}
        self._parts: dict[int, tuple[int, LayerChanges]] = {}  # a layer's parts decoded so far, and how many
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, layer: int) -> LayerChanges:
        if layer < 0:
            layer += len(self.spans)
        while True:
            with self._lock:
                found = self.decoded.pop(layer, None)
                if found is not None:
                    self.decoded[layer] = found  # (the latest asked for: let go of last)
                    return found
            drain(self.decode_steps(layer))  # (IndexError past the end, like a list)

    def decode_steps(self, layer: int) -> Steps[None]:
        """Decode a layer's changes a part at a time (nothing when they are decoded)."""
        spans = self.spans[layer]
        while layer not in self.decoded:
            with self._lock:
                if layer in self.decoded:
                    return
                done, changes = self._parts.get(layer, (0, LayerChanges()))
                if done < len(spans):
                    offset, length = spans[done]
                    paths, kinds, folders = marshal.loads(self.body[offset:offset + length])
                    if self._pages is not None:
                        self._pages.release(offset, length)
                    if not len(paths) == len(kinds) == len(folders):
                        raise ValueError(f"layer {layer}'s list of changes is damaged")
                    changes.paths += paths
                    changes.kinds += kinds
                    changes.folders += folders
                    done += 1
                if done == len(spans):
                    # a tuple, which the cycle collector stops tracking, where every full pass
                    # walks a list (600,000 paths for a million-path image's first layer)
                    changes.paths = tuple(changes.paths)
                    self.decoded[layer] = changes
                    if self._pages is not None:
                        self._pages.flush()
                    self._parts.pop(layer, None)
                    while len(self.decoded) > KEPT_CHANGES:  # the longest not asked for let go of: decoded again if asked
                        del self.decoded[next(iter(self.decoded))]
                else:
                    self._parts[layer] = (done, changes)
            yield

    def __iter__(self) -> Iterator[LayerChanges]:
        return (self[i] for i in range(len(self.spans)))


class LazyRecords:
    """A list stored as one chunk of two parts (the first ``first[1]`` records in the first
    ``first[0]`` bytes, then the rest), decoded and built into records when first read: the
    first part alone while only its records are asked for."""

    def __init__(self, body: memoryview, span: Span, count: int, build: Any, first: tuple[int, ...] = (0, 0),
                 pages: MappedPages | None = None) -> None:
        self._source: tuple[memoryview, Span] | None = (body, span)
        self._pages = pages  # (the records decoded are kept: the file's pages of them need not be)
        self._count = count
        self._build = build
        self._split, self._held = first
        self._first: list[Any] | None = None
        self._items: list[Any] | None = None
        self._lock = threading.Lock()

    def _decoded(self, offset: int, length: int) -> list[Any]:
        body = self._source[0]  # type: ignore[index]
        records = [self._build(*r) for r in marshal.loads(body[offset:offset + length])]
        if self._pages is not None:
            self._pages.release(offset, length)
            self._pages.flush()
        return records

    def _head(self) -> list[Any]:
        """The first part's records."""
        with self._lock:
            if self._items is not None:  # (all decoded meanwhile: the first part starts them)
                return self._items
            if self._first is None:
                offset, _length = self._source[1]  # type: ignore[index]
                self._first = self._decoded(offset, self._split)
            return self._first

    def _all(self) -> list[Any]:
        if self._items is None:
            head = self._head() if self._split else []
            with self._lock:
                if self._items is None and self._source is not None:
                    offset, length = self._source[1]
                    self._items = head + self._decoded(offset + self._split, length - self._split)
                    self._source, self._first = None, None
        return self._items  # type: ignore[return-value]

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: Any) -> Any:
        if self._items is None and type(index) is int and 0 <= index < self._held:
            return self._head()[index]
        return self._all()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._all())
