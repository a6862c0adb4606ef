"""What a format reader finds: the images a source offers and where each one's parts are."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import re
from dataclasses import dataclass, field
from typing import Any

from explorer.formats.container import Container
from explorer.formats.config_types import clean_config
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


def max_json() -> int:
    """Bytes a JSON document (manifest, index, config) may have: ``LAYER_EXPLORER_MAX_JSON_MB``,
    else 16 MiB (real configs stay under one; a bigger one is an attack or a mistake)."""
    try:
        return max(1, int(os.environ.get("LAYER_EXPLORER_MAX_JSON_MB", "16"))) << 20
    except ValueError:
        return 16 << 20


def max_layers() -> int:
    """Layers one image may have: ``LAYER_EXPLORER_MAX_LAYERS``, else 1,000 (overlayfs, and so
    Docker and Podman, stop at about 128; a manifest listing thousands is an attack)."""
    try:
        return max(1, int(os.environ.get("LAYER_EXPLORER_MAX_LAYERS", "1000")))
    except ValueError:
        return 1000


def check_layer_count(container: Container, count: int, where: str) -> None:
    """Refuse an image of more layers than the budget, naming the setting that raises it."""
    limit = max_layers()
    if count > limit:
        raise SourceError(container.path, f"{where} lists {count:,} layers, more than the {limit:,} allowed",
                          "raise LAYER_EXPLORER_MAX_LAYERS if the image is genuine")


def read_json(container: Container, name: str, expected_digest: str = "") -> Any:
    """Read a JSON document, checking its size, its nesting and its digest when one is expected."""
    limit = max_json()
    data = container.read_document(name)  # (each container refuses documents past MAX_DOCUMENT)
    if len(data) > limit:
        raise SourceError(container.path, f"{name} is a JSON document of {len(data):,} bytes, more than the "
                          f"{limit >> 20} MiB allowed", "raise the limit with LAYER_EXPLORER_MAX_JSON_MB if it is genuine")
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
    except RecursionError:
        raise SourceError(container.path, f"{name} nests JSON more deeply than Python can read "
                          f"({sys.getrecursionlimit()} levels)", "no real image document does; the archive "
                          "is corrupt or hostile") from None


def read_config(container: Container, plan: "ImagePlan") -> dict[str, Any]:
    """An image's config, read once, checked against its digest and its fields' types (fields
    of a wrong type are dropped, each said in the plan's warnings)."""
    if plan.config is None:
        config = read_json(container, plan.config_name, plan.config_digest)
        if not isinstance(config, dict):
            raise SourceError(container.path, f"config {plan.config_name} is not a JSON object")
        plan.config = clean_config(config, plan.warnings)
    return plan.config


_JSON_KINDS = {str: "a string", list: "a list", dict: "an object", int: "a number", float: "a number",
               bool: "true or false", type(None): "none (the field is missing or null)"}


def expect(container: Container, value: Any, kind: type, what: str) -> Any:
    """Check the type of a JSON value, with a message naming the field (and JSON's names of types)."""
    if not isinstance(value, kind):
        found = _JSON_KINDS.get(type(value), type(value).__name__)
        raise SourceError(container.path, f"malformed {what}: {_JSON_KINDS.get(kind, kind.__name__)} was expected, "
                          f"found {found}", "the archive is damaged or was edited; save the image again")
    return value
