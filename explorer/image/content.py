"""File contents: the bytes of an entry at a layer, what kind of data they are, and diffs."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from typing import Callable, Iterator

from explorer.formats import compression, gzip_access
from explorer.model.errors import ExplorerError
from explorer.image.loader import Image
from explorer.model.values import DIR, FILE, HARDLINK, SYMLINK, Entry
from explorer.formats.source import Source

PREVIEW_LIMIT = 1 << 20  # the first MiB; more on demand
TEXT, BINARY, PICTURE, LINK, FOLDER, EMPTY, OTHER = "text", "binary", "image", "link", "folder", "empty", "other"
_PICTURE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"\x00\x00\x01\x00", b"BM", b"RIFF")


class ContentError(ExplorerError):
    """The bytes of an entry cannot be shown (a sparse file, a folder, ...)."""


def open_entry(source: Source, image: Image, entry: Entry, offset: int = 0) -> Callable[[int], bytes]:
    """A reader of an entry's content from ``offset``, to its end."""
    if entry.type not in (FILE, HARDLINK):
        raise ContentError(f"{entry.path} is a {entry.type}, which has no content")
    if entry.offset == -2:
        raise ContentError(f"{entry.path} is a sparse file; its content cannot be shown yet")
    if entry.offset < 0:
        raise ContentError(f"{entry.path} has no stored content")
    layer = image.tree.data_layer(entry)
    start = entry.offset + offset
    container = source.container
    blob, scan = image.blobs[layer], image.scans[layer]
    left = [max(0, entry.size - offset)]
    raw = gzip_access.layer_reader(container, blob, scan, start)

    def read(size: int = compression.CHUNK) -> bytes:
        want = min(size, left[0])
        if want <= 0:
            return b""
        data = raw(want)
        left[0] -= len(data)
        return data

    return read


def read_entry(source: Source, image: Image, entry: Entry, offset: int = 0, limit: int | None = None) -> bytes:
    """Up to ``limit`` bytes of an entry's content from ``offset`` (all of it when None)."""
    want = max(0, entry.size - offset) if limit is None else min(limit, max(0, entry.size - offset))
    if want == 0:
        return b""
    data = compression.read_exactly(open_entry(source, image, entry, offset), want)
    if len(data) != want:
        raise ContentError(f"{entry.path}: the archive holds fewer bytes than the header says "
                           "(it may have changed since it was opened)")
    return data


def content_digest(source: Source, image: Image, entry: Entry) -> str:
    """sha256 of an entry's whole content (known from the scan for compressed layers)."""
    if entry.digest:
        return entry.digest
    h = hashlib.sha256()
    read = open_entry(source, image, entry)
    while chunk := read(compression.CHUNK):
        h.update(chunk)
    return h.hexdigest()


def kind_of(entry: Entry, head: bytes) -> str:
    """How to show an entry: text, binary, image, link, folder, empty or other."""
    if entry.type == DIR:
        return FOLDER
    if entry.type == SYMLINK:
        return LINK
    if entry.type not in (FILE, HARDLINK):
        return OTHER
    if not head:
        return EMPTY
    if head.startswith(_PICTURE_MAGIC) and (not head.startswith(b"RIFF") or head[8:12] == b"WEBP"):
        return PICTURE
    sample = head[:8192]
    if b"\0" in sample:
        return BINARY
    if entry.path.lower().endswith(".svg") and b"<svg" in head[:4096]:
        return PICTURE
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:  # not just a character cut at the end of the sample
            return BINARY
    return TEXT


def decode_text(data: bytes) -> str:
    """Text for display; undecodable bytes shown as replacement characters."""
    return data.decode("utf-8", "replace")


def hex_dump(data: bytes, start: int = 0, width: int = 16) -> str:
    """``offset  hex bytes  |ascii|`` lines."""
    lines = []
    for i in range(0, len(data), width):
        chunk = data[i : i + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start + i:08x}  {hexes:<{width * 3 - 1}}  |{text}|")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class VersionContent:
    """One version of a path, as compared: the layer, the entry, and its bytes (if text)."""

    layer: int
    entry: Entry
    data: bytes
    digest: str


def load_version(source: Source, image: Image, entry: Entry, limit: int = PREVIEW_LIMIT) -> VersionContent:
    """A version's bytes for comparing (the first ``limit`` bytes)."""
    if entry.type in (FILE, HARDLINK):
        data = read_entry(source, image, entry, limit=limit)
        digest = entry.digest or (hashlib.sha256(data).hexdigest() if entry.size <= limit else content_digest(source, image, entry))
    elif entry.type == SYMLINK:
        data, digest = (entry.target or "").encode("utf-8", "surrogateescape"), ""
    else:
        data, digest = b"", ""
    return VersionContent(entry.layer, entry, data, digest)


def unified_diff(old: VersionContent, new: VersionContent, context: int = 3) -> Iterator[str]:
    """Unified diff lines between two text versions."""
    a = decode_text(old.data).splitlines(keepends=False)
    b = decode_text(new.data).splitlines(keepends=False)
    return difflib.unified_diff(a, b, f"{old.entry.path} (layer {old.layer})", f"{new.entry.path} (layer {new.layer})",
                                lineterm="", n=context)


def side_by_side(old: VersionContent, new: VersionContent) -> list[tuple[str, str, str]]:
    """Rows (marker, old line, new line) for a two-column diff; marker is ' ', '-', '+' or '~'."""
    a = decode_text(old.data).splitlines()
    b = decode_text(new.data).splitlines()
    rows: list[tuple[str, str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            rows += [(" ", a[i], b[j]) for i, j in zip(range(i1, i2), range(j1, j2))]
        elif tag == "delete":
            rows += [("-", a[i], "") for i in range(i1, i2)]
        elif tag == "insert":
            rows += [("+", "", b[j]) for j in range(j1, j2)]
        else:
            n = max(i2 - i1, j2 - j1)
            for k in range(n):
                rows.append(("~", a[i1 + k] if i1 + k < i2 else "", b[j1 + k] if j1 + k < j2 else ""))
    return rows
