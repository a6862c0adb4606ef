#!/usr/bin/env python3
"""Write a large synthetic classic ``docker save`` archive for benchmarks.

    python bench/make_synthetic.py OUT.tar [--entries 200000] [--layers 4] [--avg-size 4250] [--wide N]

Layers, bottom first: a big base (half the entries), then layers that add files, rewrite
some lower files, delete files and directories with whiteouts, and hide a directory with an
opaque whiteout, so every code path of layer application is exercised at scale. ``--wide N``
puts N of the base's files in one folder (``/usr/share/wide``), the case of a folder with a
huge number of children. The default makes about 200,000 entries and 950 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import tarfile
import tempfile

MTIME = 1_704_067_200


class LayerWriter:
    """Streams one layer tar to a file, with fast header-only entries."""

    def __init__(self, path: str, pool: bytes) -> None:
        self.out = open(path, "wb")
        self.tar = tarfile.open(fileobj=self.out, mode="w", format=tarfile.GNU_FORMAT)
        self.pool = pool
        self.count = 0

    def _info(self, name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, MTIME
        return info

    def dir(self, name: str, mode: int = 0o755) -> None:
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode))
        self.count += 1

    def file(self, name: str, size: int, seed: int, mode: int = 0o644) -> None:
        info = self._info(name, tarfile.REGTYPE, mode)
        info.size = size
        start = seed % (len(self.pool) - size) if size < len(self.pool) else 0
        self.tar.addfile(info, io.BytesIO(self.pool[start : start + size]))
        self.count += 1

    def symlink(self, name: str, target: str) -> None:
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.tar.addfile(info)
        self.count += 1

    def close(self) -> None:
        self.tar.close()
        self.out.close()


def _size(rng: random.Random, avg: int) -> int:
    """File sizes skewed like real images: many small files, a few big ones."""
    return min(int(rng.expovariate(1 / avg)), 8 << 20)


def make(out: str, entries: int, layers: int, avg: int, seed: int = 1, wide: int = 0) -> None:
    rng = random.Random(seed)
    pool = os.urandom(9 << 20)
    work = tempfile.mkdtemp(prefix="synthetic-", dir=os.path.dirname(os.path.abspath(out)))
    try:
        layer_files = []
        base_files: list[str] = []
        per_dir = 200
        # layer 0: the base, half the entries
        share = [0.5] + [0.5 / (layers - 1)] * (layers - 1) if layers > 1 else [1.0]
        for k in range(layers):
            path = os.path.join(work, f"layer{k}.tar")
            w = LayerWriter(path, pool)
            budget = int(entries * share[k])
            top = f"layer{k}"
            if k == 0:
                w.dir("usr")
                w.dir("usr/lib")
                if wide:
                    w.dir("usr/share")
                    w.dir("usr/share/wide")
                    for i in range(min(wide, budget - w.count)):
                        w.file(f"usr/share/wide/item{i:06d}.txt", _size(rng, avg), rng.randrange(1 << 30))
                n = 0
                while w.count < budget:
                    d = f"usr/lib/pkg{n:05d}"
                    w.dir(d)
                    for i in range(min(per_dir, budget - w.count)):
                        name = f"{d}/file{i:04d}.so"
                        w.file(name, _size(rng, avg), rng.randrange(1 << 30))
                        base_files.append(name)
                    n += 1
                w.symlink("lib", "usr/lib")
            else:
                w.dir(top)
                # rewrite some lower files (new sizes), delete others, delete a whole dir
                victims = rng.sample(base_files, min(len(base_files) // 20, budget // 4))
                for name in victims[: len(victims) // 2]:
                    w.file(name, _size(rng, avg) + 1, rng.randrange(1 << 30))
                for name in victims[len(victims) // 2 :]:
                    parent, _, base = name.rpartition("/")
                    w.file(f"{parent}/.wh.{base}", 0, 0, mode=0o600)
                w.file(f"usr/lib/.wh.pkg{k:05d}", 0, 0, mode=0o600)
                if k == 2:
                    # an opaque directory: everything layer 1 put there is hidden
                    w.dir("layer1")
                    w.file("layer1/.wh..wh..opq", 0, 0, mode=0o600)
                n = 0
                while w.count < budget:
                    d = f"{top}/dir{n:05d}"
                    w.dir(d)
                    for i in range(min(per_dir, budget - w.count)):
                        w.file(f"{d}/data{i:04d}.bin", _size(rng, avg), rng.randrange(1 << 30))
                    n += 1
            w.close()
            layer_files.append(path)
            print(f"layer {k}: {w.count} entries, {os.path.getsize(path) / 1e6:.0f} MB", flush=True)
        _assemble(out, layer_files)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sha_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _assemble(out: str, layer_files: list[str]) -> None:
    """Write the classic archive: ``<id>/layer.tar``, the config, manifest.json."""
    diff_ids = [_sha_file(p) for p in layer_files]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"synthetic layer {i}"} for i in range(len(diff_ids))],
    }
    cfg = json.dumps(config).encode()
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    names = [f"{d}/layer.tar" for d in diff_ids]
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": ["synthetic:latest"], "Layers": names}]).encode()
    tmp = out + ".part"
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, path in zip(names, layer_files):
            tar.add(path, arcname=name)
        for name, data in ((cfg_name, cfg), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out)
    print(f"wrote {out}: {os.path.getsize(out) / 1e6:.0f} MB", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--entries", type=int, default=200_000)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--avg-size", type=int, default=4250, help="mean file size in bytes")
    p.add_argument("--wide", type=int, default=0, help="files in one folder of the base layer")
    args = p.parse_args()
    make(args.out, args.entries, args.layers, args.avg_size, wide=args.wide)


if __name__ == "__main__":
    main()
