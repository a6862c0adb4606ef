"""What ``docker image inspect`` tells, and the identifiers that tie an image together, plus the
image's JSON documents exactly as stored."""

from __future__ import annotations

import json
from typing import Any, Iterator

from explorer.model.text import printable_lines
from explorer.image.compare import chain_ids
from explorer.model.errors import ExplorerError
from explorer.image.loader import Image
from explorer.model.values import FILE, HARDLINK, SYMLINK
from explorer.tree.index import LayerTree, several, versions_of
from explorer.tree.steps import EVERY, Steps, drain
from explorer.formats.source import Source


def documents(source: Source, image: Image) -> dict[str, str]:
    """The JSON documents behind the image, as stored: index, manifest, config, manifest.json."""
    plan = image.ref.locator
    container = source.container
    names: list[tuple[str, str]] = []
    if container.has("index.json"):
        names.append(("index.json", "index.json"))
    if plan is not None and plan.manifest_digest:
        names.append((f"manifest ({plan.manifest_digest[:19]})", "blobs/" + plan.manifest_digest.replace(":", "/")))
    if plan is not None:
        names.append((f"config ({image.config_digest[:19]})", plan.config_name))  # (named as the manifest is)
    if container.has("manifest.json"):
        names.append(("manifest.json", "manifest.json"))
    out = {}
    for label, name in names:
        try:
            out[label] = container.read_document(name).decode("utf-8", "replace")
        except (ExplorerError, OSError):
            continue
    return out


def docker_size(image: Image) -> int:
    """The ``Size`` that ``docker image inspect`` prints for this image."""
    return drain(docker_size_steps(image))


def docker_size_steps(image: Image) -> Steps[int]:
    """``docker_size`` as a walk that yields every few thousand paths (a mapped index is read
    a folder at a time, none of it kept)."""
    # Docker's overlay2 driver sizes a layer by walking the folder it unpacked the layer into:
    # every non-folder's lstat size, each inode once. So a symlink counts the length of its
    # target and a hard-linked file counts once; whiteouts (empty device files) count 0.
    tree = image.tree
    size = 0
    links = tree.links  # the files of several names: only theirs need remembering
    seen: set[tuple[int, int, int]] = set()  # (layer, file): a file's names in one layer count once
    for i, item in enumerate(_stored(tree)):
        if item is None or not i & EVERY:
            yield
            if item is None:
                continue
        path, versions = item
        for v in versions_of(versions) if several(versions) else [(versions[8], None, versions)]:
            e = v[2]
            if e is None or e[8] != v[0] or e[9] == -1:
                continue  # not stored by that layer (removed, or a folder it only implied)
            if e[1] == SYMLINK:
                size += len((e[7] or "").encode("utf-8", "surrogateescape"))
            elif e[1] in (FILE, HARDLINK) and e[5]:
                if links:  # (remembering every file took 150 MB and 0.2 s to let go of at a million)
                    key = tree.inode(e, path)
                    if key is not None and key in links:
                        if (e[8], *key) in seen:
                            continue
                        seen.add((e[8], *key))
                size += e[5]
    return size


def _stored(tree: LayerTree) -> Iterator[tuple[str, Any] | None]:
    """Every path but the root with what is stored for it: over a mapped index's folders as
    stored when some are still encoded (None between folders), else over the tree's own."""
    if not tree.encoded():
        yield from ((path, v) for path, v in tree.versions.items() if path != "/")
        return
    for item in tree.stored_steps():
        if item is None:
            yield None
            continue
        folder, names, values = item
        prefix = folder if folder == "/" else folder + "/"
        yield from ((prefix + name, v) for name, v in zip(names, values) if v is not None)


def inspect_object(source: Source, image: Image, size: int | None = None) -> dict[str, Any]:
    """``docker image inspect``'s fields where they coincide, and this project's additions
    (``size``: its ``Size``, when already worked out by ``docker_size_steps``)."""
    config = image.config
    plan = image.ref.locator
    diff_ids = [l.diff_id for l in image.layers]
    repos = sorted({t.rsplit(":", 1)[0] for t in image.tags if ":" in t})
    manifest = plan.manifest_digest if plan is not None else ""
    return {
        "Id": image.config_digest,
        "RepoTags": list(image.tags),
        "RepoDigests": [f"{r}@{manifest}" for r in repos] if manifest else [],
        "Created": image.created,
        "Author": config.get("author", ""),
        "Architecture": config.get("architecture", ""),
        "Variant": config.get("variant", ""),
        "Os": config.get("os", ""),
        "Config": config.get("config") or {},
        "RootFS": {"Type": (config.get("rootfs") or {}).get("type", "layers"), "Layers": diff_ids},
        "Size": docker_size(image) if size is None else size,
        # not in docker's output: what ties the image together
        "ManifestDigest": manifest,
        "ChainIDs": chain_ids(diff_ids),
        "LayerBlobs": [{"Digest": l.digest, "MediaType": l.media_type, "Size": l.blob_size, "DiffID": l.diff_id,
                        "Compression": l.compression} for l in image.layers],
        "Source": {"Path": image.source.path, "Format": image.source.format},
    }


def inspect_text(obj: dict[str, Any]) -> str:
    """The inspect object for people."""
    c = obj["Config"] or {}
    lines = [
        f"Id:            {obj['Id']}",
        f"Repo tags:     {', '.join(obj['RepoTags']) or '-'}",
        f"Repo digests:  {', '.join(obj['RepoDigests']) or '-'}",
        f"Manifest:      {obj['ManifestDigest'] or '-'}",
        f"Created:       {obj['Created'] or '-'}",
        f"Author:        {obj['Author'] or '-'}",
        f"Platform:      {obj['Os']}/{obj['Architecture']}" + (f"/{obj['Variant']}" if obj["Variant"] else ""),
        f"Size:          {obj['Size']:,} bytes (as docker image inspect counts it)",
        f"User:          {c.get('User') or '-'}",
        f"Working dir:   {c.get('WorkingDir') or '-'}",
        f"Entrypoint:    {json.dumps(c.get('Entrypoint'))}",
        f"Cmd:           {json.dumps(c.get('Cmd'))}",
        f"Stop signal:   {c.get('StopSignal') or '-'}",
        f"Healthcheck:   {json.dumps(c.get('Healthcheck')) if c.get('Healthcheck') else '-'}",
        "Env:",
        *[f"  {e}" for e in c.get("Env") or []],
        f"Exposed ports: {', '.join(sorted(c.get('ExposedPorts') or {})) or '-'}",
        f"Volumes:       {', '.join(sorted(c.get('Volumes') or {})) or '-'}",
        "Labels:",
        *[f"  {k}={v}" for k, v in sorted((c.get("Labels") or {}).items())],
        f"RootFS ({obj['RootFS']['Type']}):",
    ]
    for i, (d, chain, blob) in enumerate(zip(obj["RootFS"]["Layers"], obj["ChainIDs"], obj["LayerBlobs"])):
        lines += [f"  {i}: diff_id {d}", f"     chain   {chain}", f"     blob    {blob['Digest']} ({blob['MediaType'] or blob['Compression']}, {blob['Size']:,} bytes)"]
    return printable_lines(lines)
