"""OCI image layouts (in a tar or a folder): ``index.json``, nested indexes, manifests.

Indexes are walked recursively; each manifest reached is one image (one platform).
Attestation manifests are recognised and never offered as images; manifests whose blobs
are missing (a layout may omit platforms never pulled) are skipped with a note.
"""

from __future__ import annotations

import os

from dataclasses import dataclass, field
from typing import Any

from explorer.formats.container import Container
from explorer.model.errors import SourceError
from explorer.formats.plan import ImagePlan, LayerRef, blob_name, check_layer_count, expect, read_json

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
MAX_DEPTH = 8


def max_images() -> int:
    """Manifests one source may list (``LAYER_EXPLORER_MAX_IMAGES``, read when asked):
    multi-platform indexes hold dozens; more is an attack."""
    try:
        return max(1, int(os.environ.get("LAYER_EXPLORER_MAX_IMAGES", "10000")))
    except ValueError:
        return 10000


@dataclass
class IndexWalk:
    """What walking the index found."""

    plans: list[ImagePlan] = field(default_factory=list)
    attestations: int = 0
    notes: list[str] = field(default_factory=list)
    walked: set[str] = field(default_factory=set)  # index and manifest digests seen anywhere
    repeats: int = 0  # references to a manifest or index already seen, skipped
    limit: int = field(default_factory=lambda: max_images())  # manifests at most, read when the walk starts


def _platform(desc: dict[str, Any]) -> str:
    """``os/arch[/variant]`` of a descriptor's platform field, or ""."""
    p = desc.get("platform")
    if not isinstance(p, dict) or not p.get("os") or not p.get("architecture"):
        return ""
    text = f"{p['os']}/{p['architecture']}"
    return f"{text}/{p['variant']}" if p.get("variant") else text


def _tags(desc: dict[str, Any]) -> list[str]:
    """Names a descriptor's annotations give the image."""
    ann = desc.get("annotations")
    if not isinstance(ann, dict):
        return []
    names = [ann[k] for k in (CONTAINERD_NAME, REF_NAME) if isinstance(ann.get(k), str)]
    # containerd writes both: the full name and its tag; keep the fuller one only.
    if len(names) == 2 and names[0].endswith(":" + names[1]):
        names = names[:1]
    return names


def _is_attestation(desc: dict[str, Any]) -> bool:
    """Whether a descriptor is a build attestation (BuildKit provenance/SBOM), not an image."""
    ann = desc.get("annotations")
    if isinstance(ann, dict) and ann.get("vnd.docker.reference.type") == "attestation-manifest":
        return True
    return _platform(desc) == "unknown/unknown"


def read_plans(container: Container) -> IndexWalk:
    """Walk ``index.json`` and return one plan per image manifest found."""
    index = read_json(container, "index.json")
    expect(container, index, dict, "index.json")
    walk = IndexWalk()
    _walk_index(container, index, "index.json", [], walk, depth=0, seen=set())
    if walk.repeats:
        walk.notes.append(f"the index lists {walk.repeats:,} manifest(s) or index(es) again; each was read once")
    if walk.attestations:
        walk.notes.append(
            f"{walk.attestations} attestation manifest(s) (build provenance or SBOM) found; "
            "they describe an image and are not offered as images"
        )
    return walk


def _walk_index(container: Container, index: dict[str, Any], where: str, tags: list[str], walk: IndexWalk, depth: int, seen: set[str]) -> None:
    """Visit each descriptor of an index, recursing into nested indexes."""
    if depth > MAX_DEPTH:
        raise SourceError(container.path, f"indexes nested more than {MAX_DEPTH} deep at {where}", "the index may point at itself")
    manifests = expect(container, index.get("manifests") or [], list, f"{where} manifests")
    for desc in manifests:
        expect(container, desc, dict, f"descriptor in {where}")
        digest = desc.get("digest")
        name = blob_name(container.path, digest)
        if digest in seen:
            raise SourceError(container.path, f"{where} refers back to {digest} (a loop of indexes)")
        if _is_attestation(desc):
            walk.attestations += 1
            continue
        if digest in walk.walked:  # listed again (or reached twice): one image, read once
            walk.repeats += 1
            continue
        if len(walk.walked) >= walk.limit:
            raise SourceError(container.path, f"the index lists more than {walk.limit:,} manifests",
                              "raise LAYER_EXPLORER_MAX_IMAGES if the archive is genuine")
        walk.walked.add(digest)
        media = desc.get("mediaType") or ""
        if media and media not in INDEX_TYPES and media not in MANIFEST_TYPES:
            walk.notes.append(f"descriptor {digest} has media type {media!r}, which is not an image; skipped")
            continue
        if not container.has(name):
            walk.notes.append(f"manifest {digest} ({_platform(desc) or 'no platform'}) is not in the archive; skipped")
            continue
        doc = read_json(container, name, digest)
        expect(container, doc, dict, f"blob {digest}")
        media = media or doc.get("mediaType") or ""
        my_tags = _tags(desc) or tags
        if media in INDEX_TYPES or (not media and "manifests" in doc):
            _walk_index(container, doc, digest, my_tags, walk, depth + 1, seen | {digest})
        elif media in MANIFEST_TYPES or (not media and "config" in doc):
            walk.plans.append(_plan(container, doc, digest, my_tags, _platform(desc)))
        else:
            walk.notes.append(f"descriptor {digest} has media type {media!r}, which is not an image; skipped")


def _plan(container: Container, manifest: dict[str, Any], digest: str, tags: list[str], platform: str) -> ImagePlan:
    """A plan from one image manifest."""
    config = expect(container, manifest.get("config"), dict, f"config descriptor of manifest {digest}")
    config_digest = config.get("digest")
    layers = []
    descriptors = expect(container, manifest.get("layers") or [], list, f"layers of manifest {digest}")
    check_layer_count(container, len(descriptors), f"manifest {digest}")
    for i, desc in enumerate(descriptors):
        expect(container, desc, dict, f"layer {i} of manifest {digest}")
        size = desc.get("size")
        layers.append(
            LayerRef(
                blob=blob_name(container.path, desc.get("digest")),
                digest=desc["digest"],
                media_type=str(desc.get("mediaType") or ""),
                size=size if isinstance(size, int) else None,
            )
        )
    return ImagePlan(
        config_name=blob_name(container.path, config_digest),
        config_digest=config_digest,
        layers=layers,
        tags=list(tags),
        platform=platform,
        manifest_digest=digest,
        annotations={k: v for k, v in ann.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(ann := manifest.get("annotations"), dict) else {},
    )
