"""The neutral image model: what every source format is read into. No Qt, no format details."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Entry types, as the report names them.
FILE, DIR, SYMLINK, HARDLINK, CHAR, BLOCK, FIFO = "file", "dir", "symlink", "hardlink", "char", "block", "fifo"
TAR_TYPES = {"0": FILE, "7": FILE, "1": HARDLINK, "2": SYMLINK, "3": CHAR, "4": BLOCK, "5": DIR, "6": FIFO}


class Entry(NamedTuple):
    """One filesystem entry as a layer wrote it (a tuple: cheap for millions of entries)."""

    path: str  # absolute and normalised: "/usr/bin/env"
    type: str  # FILE, DIR, SYMLINK, HARDLINK, CHAR, BLOCK or FIFO
    mode: int  # permission bits with setuid/setgid/sticky
    uid: int
    gid: int
    size: int  # content bytes for files and hardlinks (a hardlink has its target's size)
    mtime: float
    target: str | None  # symlink target as stored, hardlink target as an absolute path
    layer: int  # index of the layer that wrote it
    offset: int  # where its data starts in the layer's uncompressed tar (-1: implicit dir, -2: sparse)
    xattrs: dict[str, bytes] | None
    digest: str | None  # sha256 hex of the content, when known


@dataclass(frozen=True, slots=True)
class Platform:
    """An OS/architecture pair as written in configs and indexes."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    @classmethod
    def parse(cls, text: str) -> "Platform":
        """Parse ``os/arch[/variant]``."""
        parts = text.strip().split("/")
        if len(parts) < 2 or not all(parts):
            raise ValueError(f"not a platform: {text!r} (expected OS/ARCH[/VARIANT])")
        return cls(parts[0], parts[1], parts[2] if len(parts) > 2 else "")


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One step of the image's build history (``config.history[i]``)."""

    index: int
    created: str
    created_by: str
    author: str
    comment: str
    empty_layer: bool
    layer: int | None  # the layer this step made, None for empty steps or an unknown mapping


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """What is known of one layer: its digests, storage and what it did."""

    index: int
    diff_id: str
    digest: str
    media_type: str
    compression: str
    blob_size: int
    size: int  # sum of regular-file sizes in the layer tar
    entries: int  # tar entries, whiteouts included, meta records not
    history: int | None
    created_by: str
    added: int = 0
    modified: int = 0
    removed: int = 0


@dataclass(frozen=True, slots=True)
class ImageRef:
    """One image a source offers: enough to list it and to load it."""

    index: int
    tags: tuple[str, ...]
    config_digest: str
    platform: str
    manifest_digest: str = ""
    locator: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """Where an image came from."""

    path: str
    format: str  # docker-archive, docker-oci, oci-archive, oci-layout
    compression: str  # of the outer archive
