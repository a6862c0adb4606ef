#!/usr/bin/env python3
"""Recompute tests/data/updates/expected.json from the archives themselves (stdlib only).

Reads each archive's manifest.json (docker-archive) or index.json (OCI archive), the image
configs and the layer blobs, and writes to stdout:

  archives[FILE].images[i]: tags, config_digest, manifest_digest (OCI), manifest annotations,
      labels, history created_by, and layers [{diff_id, digest, blob_size, files}] where
      blob_size is the manifest's layer descriptor size (OCI) or the size of the layer file
      inside the docker-archive, digest the descriptor digest (OCI) or the sha256 of that file,
      files the paths of the non-folder entries in the layer.
  series[NAME].steps: per consecutive pair (oldest first) download_bytes = sum of blob_size
      of the new version's layers whose diff_id the old version lacks, reused_bytes = the
      rest, and per downloaded layer the files that differ from the old version's filesystem.
  fleet / fleet_distinct: total_bytes (sum over images of their layers' blob_size),
      unique_bytes (one blob_size per distinct diff_id, the first met in source order),
      shared_bytes = total - unique, which images use which layer, and the bases
      (longest chains of bottom layers that two or more images have in common).

Usage: python3 expected.py [FOLDER] > expected.json   (FOLDER: where the archives are)
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))

SERIES = {
    "app": ["app-v1.docker.tar", "app-v2.docker.tar", "app-v3.docker.tar", "app-v4.docker.tar"],
    # the same series with v2 read from the OCI archive (gzip blobs: other digests and sizes)
    "app-mixed": ["app-v1.docker.tar", "app-v2.oci.tar", "app-v3.docker.tar"],
}
FLEET = ["svc-a.oci.tar", "svc-b.oci.tar", "svc-c.oci.tar", "multi.docker.tar"]
OTHERS = ["fleet-base-1.oci.tar", "fleet-base-2.oci.tar"]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_files(data: bytes) -> dict[str, dict]:
    """path -> {type, size, sha256 (regular files)} of one layer blob (plain or gzip tar)."""
    import io

    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as t:
        for m in t:
            path = "/" + m.name.lstrip("./").rstrip("/")
            entry = {"type": "dir" if m.isdir() else "file" if m.isreg() else
                     "symlink" if m.issym() else "hardlink" if m.islnk() else "other",
                     "mode": "%04o" % m.mode, "mtime": int(m.mtime)}
            if m.isreg():
                body = t.extractfile(m).read()
                entry["size"] = len(body)
                entry["sha256"] = hashlib.sha256(body).hexdigest()
            out[path] = entry
    return out


def config_summary(cfg: dict) -> dict:
    return {
        "created": cfg.get("created"),
        "labels": (cfg.get("config") or {}).get("Labels") or {},
        "history": [{"created_by": h.get("created_by", ""), "empty_layer": bool(h.get("empty_layer"))}
                    for h in cfg.get("history", [])],
    }


def read_docker(t: tarfile.TarFile) -> list[dict]:
    images = []
    for entry in json.load(t.extractfile("manifest.json")):
        raw_cfg = t.extractfile(entry["Config"]).read()
        cfg = json.loads(raw_cfg)
        diff_ids = cfg["rootfs"]["diff_ids"]
        layers = []
        for path, diff_id in zip(entry["Layers"], diff_ids):
            blob = t.extractfile(path).read()
            layers.append({"diff_id": diff_id, "digest": sha256(blob), "blob_size": len(blob),
                           "path_in_archive": path, "files": layer_files(blob)})
        images.append({"tags": entry.get("RepoTags") or [], "config_digest": sha256(raw_cfg),
                       "manifest_digest": None, "annotations": {}, **config_summary(cfg),
                       "layers": layers})
    return images


def read_oci(t: tarfile.TarFile) -> list[dict]:
    def blob(digest: str) -> bytes:
        algo, hexd = digest.split(":", 1)
        return t.extractfile(f"blobs/{algo}/{hexd}").read()

    images = []

    def walk(descs: list[dict]) -> None:
        for d in descs:
            raw = blob(d["digest"])
            if sha256(raw) != d["digest"] or len(raw) != d["size"]:
                raise SystemExit(f"descriptor mismatch {d['digest']}")
            doc = json.loads(raw)
            if "manifests" in doc:          # nested index
                walk(doc["manifests"])
                continue
            raw_cfg = blob(doc["config"]["digest"])
            cfg = json.loads(raw_cfg)
            layers = []
            for desc, diff_id in zip(doc["layers"], cfg["rootfs"]["diff_ids"]):
                data = blob(desc["digest"])
                if len(data) != desc["size"]:
                    raise SystemExit(f"layer size mismatch {desc['digest']}")
                layers.append({"diff_id": diff_id, "digest": desc["digest"], "blob_size": desc["size"],
                               "media_type": desc.get("mediaType"), "files": layer_files(data)})
            ann = d.get("annotations") or {}
            tag = ann.get("org.opencontainers.image.ref.name")
            images.append({"tags": [tag] if tag else [], "config_digest": doc["config"]["digest"],
                           "manifest_digest": d["digest"],
                           "annotations": doc.get("annotations") or {},
                           "index_annotations": ann, **config_summary(cfg), "layers": layers})

    walk(json.load(t.extractfile("index.json"))["manifests"])
    return images


def read_archive(path: str) -> dict:
    with tarfile.open(path) as t:
        names = set(t.getnames())
        if "index.json" in names and "oci-layout" in names:
            return {"format": "oci-archive", "images": read_oci(t)}
        return {"format": "docker-archive", "images": read_docker(t)}


def merged(image: dict) -> dict[str, dict]:
    """The image's final filesystem view (no whiteouts in these fixtures, but honour them)."""
    view: dict[str, dict] = {}
    for layer in image["layers"]:
        for path, e in layer["files"].items():
            base = os.path.basename(path)
            if base == ".wh..wh..opq":
                d = os.path.dirname(path)
                for p in [p for p in view if p.startswith(d + "/")]:
                    del view[p]
            elif base.startswith(".wh."):
                gone = os.path.join(os.path.dirname(path), base[4:])
                for p in [p for p in view if p == gone or p.startswith(gone + "/")]:
                    del view[p]
            else:
                view[path] = e
    return view


def public(layer: dict) -> dict:
    return {k: v for k, v in layer.items() if k != "files"}


def step(old: dict, new: dict) -> dict:
    have = {l["diff_id"] for l in old["layers"]}
    old_view = merged(old)
    download = reused = 0
    layers = []
    for i, l in enumerate(new["layers"]):
        if l["diff_id"] in have:
            reused += l["blob_size"]
            layers.append({"index": i, **public(l), "downloaded": False})
            continue
        download += l["blob_size"]
        changed, unchanged_bytes = [], 0
        for path, e in sorted(l["files"].items()):
            if e["type"] == "dir":
                continue
            o = old_view.get(path)
            if o is not None and o.get("sha256") == e.get("sha256") and o["type"] == e["type"]:
                unchanged_bytes += e.get("size", 0)
            else:
                changed.append({"path": path, "change": "modified" if o else "added",
                                "size": e.get("size", 0)})
        layers.append({"index": i, **public(l), "downloaded": True, "changed_files": changed,
                       "unchanged_file_bytes": unchanged_bytes})
    return {"download_bytes": download, "reused_bytes": reused,
            "total_bytes": download + reused, "layers": layers}


def fleet(images: list[tuple[str, dict]]) -> dict:
    total = 0
    first_size: dict[str, int] = {}
    used: dict[str, list[str]] = {}
    for name, img in images:
        for l in img["layers"]:
            total += l["blob_size"]
            first_size.setdefault(l["diff_id"], l["blob_size"])
            if name not in used.setdefault(l["diff_id"], []):
                used[l["diff_id"]].append(name)
    unique = sum(first_size.values())
    # bases: chains of bottom layers shared by >= 2 images, longest for each set of images
    chains: dict[tuple, list[str]] = {}
    for name, img in images:
        ids = [l["diff_id"] for l in img["layers"]]
        for n in range(1, len(ids) + 1):
            chains.setdefault(tuple(ids[:n]), []).append(name)
    bases = []
    for chain, who in chains.items():
        if len(who) < 2:
            continue
        longer = [c for c, w in chains.items() if len(c) > len(chain) and c[:len(chain)] == chain
                  and sorted(w) == sorted(who)]
        if longer:
            continue
        bases.append({"depth": len(chain), "diff_ids": list(chain), "images": who,
                      "bytes": sum(first_size[d] for d in chain)})
    bases.sort(key=lambda b: (-b["depth"], b["images"]))
    return {"images": [n for n, _ in images], "total_bytes": total, "unique_bytes": unique,
            "shared_bytes": total - unique,
            "layers": [{"diff_id": d, "blob_size": first_size[d], "used_by": used[d]} for d in first_size],
            "bases": bases}


def main() -> None:
    folder = sys.argv[1] if len(sys.argv) > 1 else HERE
    files = sorted({f for s in SERIES.values() for f in s} | set(FLEET) | set(OTHERS))
    archives = {f: read_archive(os.path.join(folder, f)) for f in files}
    out: dict = {"about": __doc__.strip().splitlines()[0], "archives": {}, "series": {}}
    for f, a in archives.items():
        out["archives"][f] = {"format": a["format"], "file_size": os.path.getsize(os.path.join(folder, f)),
                              "images": [{**{k: v for k, v in img.items() if k != "layers"},
                                          "layers": [{**public(l), "files": sorted(
                                              p for p, e in l["files"].items() if e["type"] != "dir")}
                                                     for l in img["layers"]]}
                                         for img in a["images"]]}
    for name, versions in SERIES.items():
        imgs = [archives[f]["images"][0] for f in versions]
        out["series"][name] = {"versions": versions, "steps": [
            {"from": versions[i], "to": versions[i + 1], **step(imgs[i], imgs[i + 1])}
            for i in range(len(versions) - 1)]}
    named = []
    for f in FLEET:
        imgs = archives[f]["images"]
        for i, img in enumerate(imgs):
            named.append((f if len(imgs) == 1 else f"{f}#{i} ({img['tags'][0] if img['tags'] else i})", img))
    out["fleet"] = fleet(named)
    seen, distinct = set(), []
    for n, img in named:
        if img["config_digest"] not in seen:
            seen.add(img["config_digest"])
            distinct.append((n, img))
    out["fleet_distinct"] = {"note": "the same images, each config digest once "
                             "(svc-a is both svc-a.oci.tar and multi.docker.tar#0)", **fleet(distinct)}
    json.dump(out, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
