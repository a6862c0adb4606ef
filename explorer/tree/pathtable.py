"""Every path of an index file in one table, searched without decoding a single folder.

A search typed in the window used to decode every folder of a big image first: 0.8 s and
385 MB of entries at a million paths, kept for as long as the image is open. The index file
also stores its paths as a table of parts, each one flat block of the paths' bytes after an
array of where each path ends. A search reads the parts one at a time and hands back only
the paths it matched; the folders of those are decoded when they are shown.

A search for text (the search box's "contains") is a byte search over a whole part,
lowercased at once, when the part is ASCII (nearly always). Any other search, or a part
with other characters, decodes the part's paths to strings and asks the predicate of each,
so every kind of search keeps the exact meaning it has over one path.
"""

from __future__ import annotations

import contextlib
import mmap
import sys
from array import array
from bisect import bisect_right
from itertools import accumulate, compress
from typing import Callable, Iterable

from explorer.tree.steps import Steps

PART_PATHS = 16384  # paths a part: about a megabyte, a millisecond or two to search
PART_BYTES = 2 << 20  # at most (but for a single path): a part is searched in one step
Part = tuple[int, int, int]  # offset and length of a part in the file's body, and its paths
_WIDTH = 4  # bytes of each path's end, an unsigned little-endian number
_CODE = next(code for code in "IL" if array(code).itemsize == _WIDTH)


class Match:
    """A predicate over paths for a search; ``needles``, when set, says it is "the path,
    lowercased, holds one of these" (which a part can answer as bytes)."""

    __slots__ = ("test", "needles")

    def __init__(self, test: Callable[[str], bool], needles: tuple[str, ...] | None = None) -> None:
        self.test = test
        self.needles = needles

    def __call__(self, path: str) -> bool:
        return self.test(path)


def encode_parts(paths: list[str]) -> list[tuple[bytes, int]]:
    """``paths`` as parts, each with the number of its paths: one, unless their bytes pass
    ``PART_BYTES`` (a search reads a part in one step: long paths make smaller parts)."""
    text = "".join(paths)
    if text.isascii():
        blob, lengths = text.encode("ascii"), list(map(len, paths))
    else:  # UTF-8, with any undecodable byte of a name (kept as a lone surrogate) as it came
        pieces = [p.encode("utf-8", "surrogatepass") for p in paths]
        blob, lengths = b"".join(pieces), list(map(len, pieces))
    if len(blob) > PART_BYTES and len(paths) > 1:
        half = len(paths) // 2
        return encode_parts(paths[:half]) + encode_parts(paths[half:])
    ends = array(_CODE, accumulate(lengths))
    if sys.byteorder == "big":
        ends.byteswap()  # little-endian on every machine: a cache folder may be shared
    return [(ends.tobytes() + blob, len(paths))]


class MappedPages:
    """Lets go of the pages of spans of an index file's body (which starts at ``base`` in the
    file ``mapped``) once read: they stay in the page cache, but no longer count as the
    process's memory. A search reads the whole path table and, on a big image, most folders,
    which otherwise counted as the window's until it closed. Spans are gathered into one
    range and let go of a few MB at a time (a call for each of ten thousand folders took
    longer than decoding them); a page of the range still in use is read again if needed."""

    BATCH = 8 << 20

    def __init__(self, mapped: mmap.mmap, base: int) -> None:
        self.mapped, self.base = mapped, base
        self.low, self.high = -1, -1  # the range gathered so far, in the body

    @staticmethod
    def possible(mapped: object) -> bool:
        """Whether the system lets go of a mapping's pages."""
        return hasattr(mmap, "MADV_DONTNEED") and hasattr(mapped, "madvise")

    def release(self, offset: int, length: int) -> None:
        """Add a span read (offset and length in the body) to the range let go of."""
        if self.low < 0:
            self.low, self.high = offset, offset + length
        else:
            self.low, self.high = min(self.low, offset), max(self.high, offset + length)
        if self.high - self.low >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        """Let go of the pages wholly within the range gathered so far."""
        if self.low < 0:
            return
        page = mmap.PAGESIZE
        first = -(-(self.base + self.low) // page) * page
        last = (self.base + self.high) // page * page
        self.low, self.high = -1, -1
        if last > first:
            with contextlib.suppress(OSError, ValueError):
                self.mapped.madvise(mmap.MADV_DONTNEED, first, last - first)


class PathTable:
    """The table of an index file: its parts, read where the file is mapped."""

    def __init__(self, body: memoryview, parts: list[Part], pages: MappedPages | None = None) -> None:
        self.body = body
        self.parts = parts
        self.pages = pages  # (lets go of each part's pages once searched)
        for part in parts:
            if type(part) is not tuple or len(part) != 3 or any(type(n) is not int or n < 0 for n in part):
                raise ValueError("a part of the path table is not three numbers")
            offset, length, count = part
            if length < count * _WIDTH or offset + length > len(body):
                raise ValueError("a part of the path table lies outside the file")

    def __len__(self) -> int:
        return sum(count for _, _, count in self.parts)

    def matching_steps(self, match: Callable[[str], bool] | None,
                       there: Callable[[int, list[int]], list[bool]] | None = None,
                       into: Callable[[list[str]], Steps[None]] | None = None) -> Steps[list[str]]:
        """Every path ``match`` accepts (None: every path), a part a step (a ``Match`` with
        needles the quickest); with ``there``, only those it says yes to: it gets the number
        of a part's first path in the table and the numbers in that part of the paths matched
        (which are made strings only if kept). With ``into``, each part's are handed to that
        walk as they are found, and none are returned (a filter kept 713,225 of a million:
        70 MB of strings held at once)."""
        needles = getattr(match, "needles", None)
        found: list[str] = []
        first = 0
        for offset, length, count in self.parts:
            part = self.body[offset:offset + length]
            blob = part[_WIDTH * count:].tobytes()
            ends = _ends(part[:_WIDTH * count], len(blob))
            hits, paths = _matches(blob, ends, match, needles)
            if there is not None and hits:
                kept = there(first, hits)
                if paths is None:
                    hits = list(compress(hits, kept))
                else:
                    paths = list(compress(paths, kept))
            strings = _strings(blob, ends, hits) if paths is None else paths
            if into is not None:
                yield from into(strings)
            else:
                found += strings
            del strings, paths  # (let go of before the next part is read)
            first += count
            if self.pages is not None:
                self.pages.release(offset, length)
            yield
        if self.pages is not None:
            self.pages.flush()
        return found


def _ends(raw: memoryview, size: int) -> list[int]:
    """Where each path of a part ends; ValueError when they do not run in order to the end
    of its ``size`` bytes (a damaged file: the checksum was right, the table is not)."""
    ends = array(_CODE)
    ends.frombytes(raw)
    if sys.byteorder == "big":
        ends.byteswap()
    found = ends.tolist()
    if found and (found[-1] != size or found != sorted(found)):
        raise ValueError("a part of the path table is damaged")
    return found


def _matches(blob: bytes, ends: list[int], match: Callable[[str], bool] | None,
             needles: tuple[str, ...] | None) -> tuple[list[int], list[str] | None]:
    """The paths of one part that ``match`` accepts (None: all), in the part's order: their
    numbers in the part, and themselves when they had to be made strings to be asked."""
    if match is None:
        return list(range(len(ends))), None
    if needles is not None and blob.isascii():
        return sorted(_holding(blob.lower(), ends, needles)), None
    if blob.isascii():  # (one decode, then slices of it)
        text = blob.decode("ascii")
        paths = [text[start:end] for start, end in zip((0, *ends), ends)]
    else:
        paths = _strings(blob, ends, range(len(ends)))
    accepted = list(map(match, paths))
    return list(compress(range(len(paths)), accepted)), list(compress(paths, accepted))


def _strings(blob: bytes, ends: list[int], numbers: Iterable[int]) -> list[str]:
    """The paths of one part with these numbers, as strings."""
    if blob.isascii():
        return [blob[ends[i - 1] if i else 0:ends[i]].decode("ascii") for i in numbers]
    return [blob[ends[i - 1] if i else 0:ends[i]].decode("utf-8", "surrogatepass") for i in numbers]


def _holding(lowered: bytes, ends: list[int], needles: tuple[str, ...]) -> set[int]:
    """The indexes of the paths (of an ASCII part, lowercased) holding one of the needles."""
    hits: set[int] = set()
    for needle in needles:
        if not needle:
            return set(range(len(ends)))
        if not needle.isascii():
            continue  # a lowercased ASCII path holds no other character
        n = needle.encode("ascii")
        at = lowered.find(n)
        while at >= 0:
            i = bisect_right(ends, at)  # the path this occurrence starts in
            if at + len(n) <= ends[i]:
                hits.add(i)
                at = lowered.find(n, ends[i])  # one is enough: on to the next path
            else:  # it runs on into the next path (they are stored back to back)
                at = lowered.find(n, at + 1)
    return hits
