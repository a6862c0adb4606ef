"""What a format reader finds: the images a source offers and where each one's parts are."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from explorer.formats.container import Container
from explorer.model.errors import SourceError

_DIGEST = re.compile(r"^(sha256|sha384|sha512):([a-f0-9]{32,128})$")
_HASHES = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass
class LayerRef:
    """Where one layer blob is stored and what its descriptor says of it."""

    blob: str  # name in the container
    digest: str = ""  # as the manifest names it ("" when the format names none)
    media_type: str = ""
    size: int | None = None


@dataclass
class ImagePlan:
    """How to load one image: its config document and its layer blobs, bottom first."""

    config_name: str
    config_digest: str  # expected digest of the config ("" when unknown)
    layers: list[LayerRef]
    tags: list[str] = field(default_factory=list)
    platform: str = ""
    manifest_digest: str = ""
    warnings: list[str] = field(default_factory=list)
    config: dict[str, Any] | None = None  # the parsed config, once read
    annotations: dict[str, str] = field(default_factory=dict)  # the image manifest's (OCI)


def parse_digest(source: str, digest: Any) -> tuple[str, str]:
    """Split a digest into (algorithm, hex), refusing anything that could name another path."""
    if not isinstance(digest, str):
        raise SourceError(source, f"invalid digest {digest!r}")
    m = _DIGEST.match(digest)
    if not m or len(m.group(2)) != _HASHES[m.group(1)]:
        raise SourceError(source, f"invalid digest {digest!r}")
    return m.group(1), m.group(2)


def blob_name(source: str, digest: str) -> str:
    """The OCI layout path of a blob: ``blobs/<alg>/<hex>``."""
    alg, hexpart = parse_digest(source, digest)
    return f"blobs/{alg}/{hexpart}"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """``alg:hex`` digest of some bytes."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def read_json(container: Container, name: str, expected_digest: str = "") -> Any:
    """Read a JSON document, checking its digest when one is expected."""
    data = container.read_document(name)
    if expected_digest:
        alg, _ = parse_digest(container.path, expected_digest)
        actual = digest_of(data, alg)
        if actual != expected_digest:
            raise SourceError(
                container.path,
                f"digest mismatch for {name}: expected {expected_digest}, found {actual}",
                "the archive is corrupt or was modified",
            )
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(container.path, f"{name} is not valid JSON ({exc})") from None


def expect(container: Container, value: Any, kind: type, what: str) -> Any:
    """Check the type of a JSON value, with a message naming the field."""
    if not isinstance(value, kind):
        raise SourceError(container.path, f"malformed {what}: expected {kind.__name__}, found {type(value).__name__}")
    return value
