"""``docker save`` archives: classic, containers/image, go-containerregistry and Docker >= 25.

All of them have a ``manifest.json`` listing each image's config file and layer files; they
differ in where those files sit and whether layers are compressed, which the container and
the layer scan already hide.
"""

from __future__ import annotations

import posixpath
import re

from explorer.formats.container import Container
from explorer.formats.plan import ImagePlan, LayerRef, check_layer_count, expect, read_json

_HEX_NAME = re.compile(r"^(?:sha256:)?([a-f0-9]{64})(?:\.json|\.tar)?$")
_BLOB_PATH = re.compile(r"^blobs/(sha256|sha512)/([a-f0-9]+)$")


def name_digest(name: str) -> str:
    """The digest a file name spells, if it spells one (``<hex>.json``, ``blobs/sha256/<hex>``)."""
    m = _BLOB_PATH.match(name)
    if m:
        return f"{m.group(1)}:{m.group(2)}"
    m = _HEX_NAME.match(posixpath.basename(name))
    return f"sha256:{m.group(1)}" if m else ""


def read_plans(container: Container) -> list[ImagePlan]:
    """One plan per entry of ``manifest.json``."""
    manifest = read_json(container, "manifest.json")
    expect(container, manifest, list, "manifest.json (a list of images)")
    plans = []
    for i, item in enumerate(manifest):
        expect(container, item, dict, f"manifest.json entry {i}")
        config = expect(container, item.get("Config"), str, f"manifest.json entry {i} Config")
        layers = expect(container, item.get("Layers") or [], list, f"manifest.json entry {i} Layers")
        check_layer_count(container, len(layers), f"manifest.json entry {i}")
        tags = item.get("RepoTags") or []
        warnings = []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            # a stranger's manifest: a wrong type is no tag, said once, not a crash
            warnings.append(f"manifest.json entry {i}: RepoTags is not a list of names; tags of the wrong type left out")
            tags = tags if isinstance(tags, list) else []
        refs = []
        for name in layers:
            expect(container, name, str, f"manifest.json entry {i} layer name")
            digest = name_digest(name) if name.startswith("blobs/") else ""
            refs.append(LayerRef(blob=name, digest=digest))
        plans.append(
            ImagePlan(
                config_name=config,
                config_digest=name_digest(config),
                layers=refs,
                tags=[t for t in tags if isinstance(t, str)],
                warnings=warnings,
            )
        )
    return plans
