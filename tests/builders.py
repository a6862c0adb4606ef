"""Small image archives built by the tests, so each layer rule is checked on exactly its case."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any


@dataclass
class E:
    """One entry to put in a layer tar."""

    kind: str  # file, dir, symlink, hardlink, fifo, raw (a name written as given)
    name: str
    data: bytes = b""
    target: str = ""
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    mtime: int = 1_700_000_000
    pax: dict[str, str] = field(default_factory=dict)


def f(name: str, data: bytes | str = b"", **kw: Any) -> E:
    """A regular file."""
    return E("file", name, data.encode() if isinstance(data, str) else data, **kw)


def d(name: str, **kw: Any) -> E:
    """A directory."""
    return E("dir", name, **kw)


def sym(name: str, target: str, **kw: Any) -> E:
    """A symlink."""
    return E("symlink", name, target=target, **kw)


def hard(name: str, target: str, **kw: Any) -> E:
    """A hardlink (target by path)."""
    return E("hardlink", name, target=target, **kw)


def wh(path: str) -> E:
    """A whiteout for ``path``."""
    parent, _, base = path.rpartition("/")
    return E("file", f"{parent}/.wh.{base}" if parent else f".wh.{base}", mode=0o600)


def opq(directory: str) -> E:
    """An opaque marker for ``directory``."""
    return E("file", f"{directory}/.wh..wh..opq", mode=0o600)


def layer_tar(entries: list[E], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A layer tar holding the entries in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.uid, info.gid, info.mtime = e.uid, e.gid, e.mtime
            info.pax_headers = dict(e.pax)
            if e.kind == "file":
                info.size = len(e.data)
                info.mode = 0o644 if e.mode is None else e.mode
                tar.addfile(info, io.BytesIO(e.data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE}[e.kind]
            info.mode = (0o755 if e.kind == "dir" else 0o777 if e.kind == "symlink" else 0o644) if e.mode is None else e.mode
            info.linkname = e.target
            tar.addfile(info)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_for(layers: list[bytes], history: list[dict] | None = None, **extra: Any) -> dict[str, Any]:
    """An image config whose diff_ids match the layer tars."""
    cfg: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [_sha(l) for l in layers]},
    }
    if history is None:
        history = [{"created": "2024-01-01T00:00:00Z", "created_by": f"step {i}"} for i in range(len(layers))]
    cfg["history"] = history
    cfg.update(extra)
    return cfg


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def docker_archive(images: list[tuple[list[bytes], list[str]]] | list[bytes], history: list[dict] | None = None,
                   config: dict[str, Any] | None = None, manifest: Any = None, skip: set[str] = frozenset(),
                   gzip_layers: bool = False) -> bytes:
    """A classic ``docker save`` archive: ``<n>/layer.tar``, ``<config>.json``, ``manifest.json``."""
    if images and isinstance(images[0], bytes):
        images = [(images, ["test/image:latest"])]  # type: ignore[list-item]
    buf = io.BytesIO()
    entries: list[dict[str, Any]] = []
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        written = set()
        for layers, tags in images:  # type: ignore[misc]
            names = []
            for layer in layers:
                blob = gzip.compress(layer, mtime=0) if gzip_layers else layer
                name = f"{hashlib.sha256(blob).hexdigest()}/layer.tar"
                names.append(name)
                if name not in written and name not in skip:
                    _add(tar, name, blob)
                written.add(name)
            cfg = config if config is not None else config_for(layers, history)
            cfg_bytes = json.dumps(cfg).encode()
            cfg_name = hashlib.sha256(cfg_bytes).hexdigest() + ".json"
            if cfg_name not in skip:
                _add(tar, cfg_name, cfg_bytes)
            entries.append({"Config": cfg_name, "RepoTags": tags, "Layers": names})
        if "manifest.json" not in skip:
            data = manifest if isinstance(manifest, bytes) else json.dumps(manifest if manifest is not None else entries).encode()
            _add(tar, "manifest.json", data)
    return buf.getvalue()


def oci_archive(layers: list[bytes], compress: str = "gzip", ref: str = "latest", index: Any = None) -> bytes:
    """An OCI image layout in a tar, one manifest, layers gzip-compressed (or plain)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        descs = []
        for layer in layers:
            if compress == "gzip-chunks":  # eStargz style: a gzip member per 4 MiB chunk
                blob = b"".join(gzip.compress(layer[i:i + (4 << 20)], mtime=0) for i in range(0, len(layer), 4 << 20))
            else:
                blob = gzip.compress(layer, mtime=0) if compress == "gzip" else layer
            media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress.startswith("gzip") else "")
            _add(tar, "blobs/sha256/" + hashlib.sha256(blob).hexdigest(), blob)
            descs.append({"mediaType": media, "digest": _sha(blob), "size": len(blob)})
        cfg = json.dumps(config_for(layers)).encode()
        _add(tar, "blobs/sha256/" + hashlib.sha256(cfg).hexdigest(), cfg)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha(cfg), "size": len(cfg)},
            "layers": descs,
        }).encode()
        _add(tar, "blobs/sha256/" + hashlib.sha256(manifest).hexdigest(), manifest)
        if index is None:
            index = {"schemaVersion": 2, "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _sha(manifest),
                "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": ref}}]}
        _add(tar, "index.json", json.dumps(index).encode())
    return buf.getvalue()


def tar_of(members: dict[str, bytes]) -> bytes:
    """A plain tar holding these files, in this order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            _add(tar, name, data)
    return buf.getvalue()


def members_of(raw: bytes) -> dict[str, bytes]:
    """The files of a tar, by name (to tamper with an archive and put it back with ``tar_of``)."""
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def reopened(folder, archive) -> tuple[Any, Any]:
    """(an archive's image as built, the same image mapped from the index file it was saved
    to, in ``folder``/index)."""
    from explorer.formats.source import open_source
    from explorer.image import index_cache
    from explorer.image.loader import load_image

    with open_source(str(archive)) as src:
        ref = src.select()
        fresh = load_image(src, ref, cache=False)
        written = index_cache.save(src, fresh, where=str(folder / "index"))
        cached = index_cache.open_index(written, index_cache.key_for(src, ref), src, ref)
    return fresh, cached
