"""What each update of an image makes people download, and which layers a fleet of images shares.

Layers are stored and pulled by digest: a layer whose diff_id a client already has is not
downloaded again. ``updates`` measures that over versions of one image and says which layer
to split, merge or move; ``fleet`` measures it over many images and finds their bases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from explorer.formats.source import Source
from explorer.image.compare import chain_ids
from explorer.image.content import ContentError, content_digest
from explorer.image.loader import Image
from explorer.model.text import counted, human_size, short_command
from explorer.model.values import FILE, HARDLINK, Entry

UPDATES_SCHEMA = "layer-explorer.updates/1"
FLEET_SCHEMA = "layer-explorer.fleet/1"
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
# A layer re-downloaded while at most this share of its bytes changed is worth splitting.
SPLIT_BELOW = 0.5
MAX_PATHS = 20  # often-changing paths named in one piece of advice


@dataclass
class Opened:
    """One image of the series or fleet, loaded, with the source it came from."""

    name: str  # the source as the user named it
    source: Source
    image: Image
    _by_layer: list[dict[str, Entry]] | None = None

    def stored(self, layer: int) -> dict[str, Entry]:
        """What one layer stored, by path (every layer sorted out in one pass over the tree)."""
        if self._by_layer is None:
            self._by_layer = [{} for _ in self.image.layers]
            for e in self.image.tree.stored_entries():
                if 0 <= e.layer < len(self._by_layer):
                    self._by_layer[e.layer][e.path] = e
        return self._by_layer[layer] if layer < len(self._by_layer) else {}


def _layers(image: Image) -> list[dict[str, Any]]:
    return [{"diff_id": l.diff_id, "digest": l.digest, "blob_size": l.blob_size} for l in image.layers]


def _version(o: Opened) -> dict[str, Any]:
    return {"source": o.name, "tags": list(o.image.tags), "config_digest": o.image.config_digest, "layers": _layers(o.image)}


def _same_entry(a: Entry, b: Entry, a_digest: Callable[[Entry], str | None],
                b_digest: Callable[[Entry], str | None]) -> bool:
    """Whether two stored entries have the same content and metadata (mtime aside: a rebuild
    stamps new times on unchanged files); content that cannot be read counts as changed."""
    if (a.type, a.mode, a.uid, a.gid, a.size, a.target) != (b.type, b.mode, b.uid, b.gid, b.size, b.target):
        return False
    if a.type not in (FILE, HARDLINK) or a.size == 0:
        return True
    da, db = a_digest(a), b_digest(b)
    return da is not None and da == db


def _digest_of(o: Opened) -> Callable[[Entry], str | None]:
    def digest(e: Entry) -> str | None:
        if e.digest:
            return e.digest
        try:
            return content_digest(o.source, o.image, e)
        except (ContentError, OSError, ValueError):
            return None
    return digest


def layer_changes(old: Opened | None, old_layer: int, new: Opened, new_layer: int) -> tuple[list[Entry], bool]:
    """Regular files layer ``new_layer`` of ``new`` stores that the same layer of ``old`` does
    not (added, or another content or metadata at the same path), and whether the layers differ
    at all (any entry of any kind, or one only the old layer had)."""
    before = old.stored(old_layer) if old is not None else {}
    after = new.stored(new_layer)
    old_digest = _digest_of(old) if old is not None else (lambda e: None)
    new_digest = _digest_of(new)
    files: list[Entry] = []
    differs = any(path not in after for path in before)
    for path, e in after.items():
        was = before.get(path)
        if was is not None and _same_entry(was, e, old_digest, new_digest):
            continue
        differs = True
        if e.type == FILE:
            files.append(e)
    return files, differs


def updates(versions: list[Opened]) -> dict[str, Any]:
    """The ``layer-explorer updates`` object (schema layer-explorer.updates/1)."""
    steps = []
    rebuilt: dict[tuple[int, int], bool] = {}  # (step's new version, layer) -> new yet the same inside
    for i in range(1, len(versions)):
        old, new = versions[i - 1], versions[i]
        have = {l.diff_id for l in old.image.layers}
        layers, download = [], 0
        for k, l in enumerate(new.image.layers):
            fresh = l.diff_id not in have
            changed, differs = layer_changes(old, k, new, k) if fresh else ([], False)
            if fresh:
                download += l.blob_size
                rebuilt[(i, k)] = not differs
            layers.append({"index": k, "diff_id": l.diff_id, "new": fresh, "blob_size": l.blob_size,
                           "changed_bytes": sum(e.size for e in changed),
                           "changed_paths": sorted(e.path for e in changed)})
        total = sum(l.blob_size for l in new.image.layers)
        steps.append({"from": i - 1, "to": i, "download_bytes": download, "reused_bytes": total - download,
                      "layers": layers})
    return {"schema": UPDATES_SCHEMA, "versions": [_version(v) for v in versions], "steps": steps,
            "advice": update_advice(versions, steps, rebuilt)}


def _share(fraction: float) -> str:
    """A fraction as a percentage: whole from 10%, else to two decimals, never rounded to none."""
    if fraction < 0.0001:
        return "under 0.01%"
    return f"{fraction:.0%}" if fraction >= 0.1 else f"{fraction * 100:.2f}".rstrip("0").rstrip(".") + "%"


def changed_files(layer: dict[str, Any]) -> str:
    """What a downloaded layer of an update changed, in words (its files, and their bytes)."""
    count = len(layer["changed_paths"])
    if not count:
        return "no regular file added or changed"
    return f"{counted(count, 'file')} changed ({human_size(layer['changed_bytes'])})"


def update_advice(versions: list[Opened], steps: list[dict[str, Any]],
                  rebuilt: dict[tuple[int, int], bool]) -> list[dict[str, Any]]:
    """Split a layer that is re-downloaded for a few changed files; merge layers that always
    change together; move a layer that changes rarely below one that changes often."""
    if not steps:
        return []
    advice: list[dict[str, Any]] = []
    depth = max(len(s["layers"]) for s in steps)
    new_in = [[s for s in steps if k < len(s["layers"]) and s["layers"][k]["new"]] for k in range(depth)]
    sizes = [[versions[s["to"]].image.layers[k].size for s in new_in[k]] for k in range(depth)]
    for k in range(depth):
        hits = new_in[k]
        if not hits or len(hits) * 2 < len(steps):
            continue  # not a layer that updates keep downloading
        blob = sum(s["layers"][k]["blob_size"] for s in hits) / len(hits)
        changed = sum(s["layers"][k]["changed_bytes"] for s in hits) / len(hits)
        size = max(sum(sizes[k]) / len(hits), 1)
        share = changed / size
        if 0 < share <= SPLIT_BELOW:
            counts: dict[str, int] = {}
            for s in hits:
                for p in s["layers"][k]["changed_paths"]:
                    counts[p] = counts.get(p, 0) + 1
            often = sorted(counts, key=lambda p: (-counts[p], p))[:MAX_PATHS]
            saving = round(blob * (1 - share))
            advice.append({"kind": "split-layer", "layer": k, "bytes_per_update": round(blob),
                           "changed_bytes_per_update": round(changed), "saving_per_update": saving, "paths": often,
                           # (the share of the files' bytes: a download is compressed, the files are not)
                           "detail": f"each update re-downloads layer {k} ({human_size(blob)}) though only "
                                     f"{_share(share)} of its files' bytes changed ({human_size(changed)} of "
                                     f"{human_size(size)}); put {', '.join(often[:3])} in a layer of its own above "
                                     f"the rest and each update shrinks by about {human_size(saving)}"})
    changes = [[bool(k < len(s["layers"]) and s["layers"][k]["new"]) for s in steps] for k in range(depth)]
    for k in range(depth - 1):
        if any(changes[k]) and changes[k] == changes[k + 1]:
            advice.append({"kind": "merge", "layers": [k, k + 1], "updates": sum(changes[k]),
                           "detail": f"layers {k} and {k + 1} changed together in every update that changed "
                                     "either: one layer would mean one download and one less layer to manage"})
    for j in range(depth):
        same = [s for s in new_in[j] if rebuilt.get((s["to"], j))
                and any(s["layers"][i]["new"] and not rebuilt.get((s["to"], i)) for i in range(j))]
        if not same:
            continue
        below = min(i for s in same for i in range(j) if s["layers"][i]["new"] and not rebuilt.get((s["to"], i)))
        wasted = sum(s["layers"][j]["blob_size"] for s in same) / len(same)
        advice.append({"kind": "reorder", "layer": j, "below": below, "updates": len(same),
                       "bytes_per_update": round(wasted),
                       "detail": f"layer {j} was rebuilt without changes in {len(same)} update(s) because layer "
                                 f"{below}, built before it, changed; build its step before layer {below}'s (or layer "
                                 f"{below}'s after it) and it stays cached ({human_size(wasted)} per update)"})
    order = {"split-layer": 0, "reorder": 1, "merge": 2}
    return sorted(advice, key=lambda a: (order[a["kind"]], -a.get("saving_per_update", a.get("bytes_per_update", 0))))


def fleet(images: list[Opened]) -> dict[str, Any]:
    """The ``layer-explorer fleet`` object (schema layer-explorer.fleet/1)."""
    layers: dict[str, dict[str, Any]] = {}
    total = 0
    for n, o in enumerate(images):
        for l in o.image.layers:
            total += l.blob_size
            found = layers.setdefault(l.diff_id, {"diff_id": l.diff_id, "blob_size": l.blob_size, "size": l.size,
                                                  "used_by": []})
            if n not in found["used_by"]:
                found["used_by"].append(n)
    unique = sum(l["blob_size"] for l in layers.values())
    return {
        "schema": FLEET_SCHEMA,
        "images": [{"source": o.name, "tags": list(o.image.tags), "config_digest": o.image.config_digest,
                    "platform": o.image.platform, "layers": [l.diff_id for l in o.image.layers]} for o in images],
        "layers": sorted(layers.values(), key=lambda l: (-len(l["used_by"]), -l["blob_size"])),
        "total_bytes": total,
        "unique_bytes": unique,
        "shared_bytes": total - unique,
        "bases": bases(images),
    }


def bases(images: list[Opened]) -> list[dict[str, Any]]:
    """Longest chains of layers that several images start with, each named where the images
    say (an OCI base-image annotation, an image of the fleet that is that chain, or the step
    that made its top layer)."""
    chains = [chain_ids([l.diff_id for l in o.image.layers]) for o in images]
    users: dict[str, set[int]] = {}
    depth_of: dict[str, int] = {}
    for n, chain in enumerate(chains):
        for d, c in enumerate(chain):
            users.setdefault(c, set()).add(n)
            depth_of[c] = d
    out = []
    for c, who in users.items():
        if len(who) < 2:
            continue
        d = depth_of[c]
        # the longest: no chain one layer deeper is shared by the same images
        if all(len(chains[n]) > d + 1 and users[chains[n][d + 1]] == who for n in who):
            continue
        first = images[min(who)].image
        layers = [l.diff_id for l in first.layers[: d + 1]]
        out.append({"layers": layers, "used_by": sorted(who), "bytes": sum(l.blob_size for l in first.layers[: d + 1]),
                    "name": _base_name(images, sorted(who), d)})
    return sorted(out, key=lambda b: (-len(b["used_by"]), -len(b["layers"])))


def _annotation(o: Opened, key: str) -> str:
    """An annotation of an image's OCI manifest ("" when absent or empty)."""
    annotations = getattr(o.image.ref.locator, "annotations", None) or {}
    value = annotations.get(key, "")
    return value if isinstance(value, str) else ""


def _base_name(images: list[Opened], who: list[int], depth: int) -> str | None:
    """What the images call the base made of their first ``depth + 1`` layers: the base-image
    annotation when the images that carry one agree on it and share exactly this chain (or the
    fleet holds the image it names, and that is this chain); else an image of the fleet that is
    this chain; else the step that made its top layer."""
    chain = [l.diff_id for l in images[who[0]].image.layers[: depth + 1]]
    for n in who:  # the named base is in the fleet: trust its digest
        digest = _annotation(images[n], BASE_DIGEST)
        for o in images:
            if digest and o.image.ref.manifest_digest == digest and [l.diff_id for l in o.image.layers] == chain:
                return _annotation(images[n], BASE_NAME) or (o.image.tags[0] if o.image.tags else None)
    named = {n: _annotation(images[n], BASE_NAME) for n in who}
    named = {n: v for n, v in named.items() if v}
    if len(named) >= 2 and len(set(named.values())) == 1:
        ids = [[l.diff_id for l in images[n].image.layers] for n in named]
        common = 0
        while all(len(c) > common for c in ids) and len({c[common] for c in ids}) == 1:
            common += 1
        if common == depth + 1:  # the chain the annotated images share is this one
            return next(iter(named.values()))
    for o in images:  # an image of the fleet that is exactly this chain
        if [l.diff_id for l in o.image.layers] == chain and o.image.tags:
            return o.image.tags[0]
    top = images[who[0]].image.layers[depth]
    return f"the layers up to: {short_command(top.created_by, 1 << 20)}" if top.created_by else None
