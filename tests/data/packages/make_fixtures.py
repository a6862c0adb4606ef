#!/usr/bin/env python3
"""Snapshots, layer diffs and docker-archive packing for the package-manager fixtures.

make_fixtures.sh runs the real package tools against a root folder ROOT and, after every
build step, calls this script:

    make_fixtures.py snapshot WORK ROOT "CREATED_BY"    copy ROOT to WORK/snap/NN, note the step
    make_fixtures.py pack WORK OUT.docker.tar REPO:TAG  diff consecutive snapshots into layers
    make_fixtures.py expected MANAGER WORK OUT.json --tool T [--notes N] [--where PATH]...
                                                        ask the real query tool about every snapshot

MANAGER is dpkg, rpm, apk, pip or npm; the query tools are run as subprocesses (apk: $APK,
pip: $PIP, else apk / python -m pip on PATH).

A layer is the difference between two snapshots, computed the way a container build does:
added or changed paths become tar members (folders, regular files, symlinks, hard links,
with mode, uid, gid and mtime), every folder above a changed path is written too, and a
removed path becomes an empty ``.wh.NAME`` file in its parent folder (OCI whiteouts).

The archive is laid out like ``docker save`` of Docker 20.10: manifest.json, repositories,
the config ``<sha256>.json`` and ``<id>/layer.tar`` (+ VERSION, json) per layer. A layer's
diff_id is the sha256 of its uncompressed tar. Standard library only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import time

# --------------------------------------------------------------------------- snapshots


def copy_tree(src: str, dst: str) -> None:
    """Copy src to dst keeping types, modes, owners, mtimes and hard links (like cp -a)."""
    inodes: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, os.stat_result]] = []
    os.makedirs(dst)
    dirs.append((dst, os.lstat(src)))
    for top, subdirs, files in os.walk(src):
        subdirs.sort()
        rel = os.path.relpath(top, src)
        out_top = dst if rel == "." else os.path.join(dst, rel)
        for name in sorted(subdirs) + sorted(files):
            s, d = os.path.join(top, name), os.path.join(out_top, name)
            st = os.lstat(s)
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(d)
                dirs.append((d, st))
                continue
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in inodes:
                    os.link(inodes[key], d)
                    continue
                inodes[key] = d
                shutil.copyfile(s, d, follow_symlinks=False)
            else:
                raise SystemExit(f"unsupported file type: {s}")
            _copy_meta(d, st)
    for d, st in reversed(dirs):  # folders last, deepest first, so their mtimes stay
        _copy_meta(d, st)


def _copy_meta(path: str, st: os.stat_result) -> None:
    os.lchown(path, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(path, stat.S_IMODE(st.st_mode))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def load_steps(work: str) -> list[dict]:
    path = os.path.join(work, "steps.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def cmd_snapshot(work: str, root: str, created_by: str) -> None:
    steps = load_steps(work)
    snap = os.path.join(work, "snap", f"{len(steps):02d}")
    copy_tree(root, snap)
    steps.append({"snapshot": snap, "created_by": created_by,
                  "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    with open(os.path.join(work, "steps.json"), "w") as f:
        json.dump(steps, f, indent=1)
    print(f"snapshot {snap}: {created_by}")


# --------------------------------------------------------------------------- layer diff


def scan(root: str | None) -> dict[str, os.stat_result]:
    """Every path under root (relative, no leading slash) with its lstat; {} for None."""
    entries: dict[str, os.stat_result] = {}
    if root is None:
        return entries
    for top, subdirs, files in os.walk(root):
        for name in subdirs + files:
            full = os.path.join(top, name)
            entries[os.path.relpath(full, root)] = os.lstat(full)
    return entries


def _same(old_root: str, new_root: str, rel: str, a: os.stat_result, b: os.stat_result) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
        return False
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return False
    if stat.S_ISDIR(b.st_mode):
        return a.st_mtime_ns == b.st_mtime_ns
    if stat.S_ISLNK(b.st_mode):
        return os.readlink(os.path.join(old_root, rel)) == os.readlink(os.path.join(new_root, rel))
    if a.st_size != b.st_size or a.st_mtime_ns != b.st_mtime_ns:
        return False
    return _sha256(os.path.join(old_root, rel)) == _sha256(os.path.join(new_root, rel))


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _parents(rel: str):
    while True:
        rel = os.path.dirname(rel)
        if not rel:
            return
        yield rel


def layer_tar(old_root: str | None, new_root: str) -> bytes:
    """The layer that turns old_root into new_root, as an uncompressed tar."""
    old, new = scan(old_root), scan(new_root)
    changed = {rel for rel, st in new.items()
               if rel not in old or not _same(old_root, new_root, rel, old[rel], st)}
    # a removed path gets a whiteout when its parent folder is still there; what lay under a
    # removed folder, or under a folder that became a file or symlink, needs none
    removed = {rel for rel in old if rel not in new
               and all(p in new and stat.S_ISDIR(new[p].st_mode) for p in _parents(rel))}
    members = set(changed)
    for rel in changed | removed:  # every folder above a change is written too
        members.update(_parents(rel))

    buf = io.BytesIO()
    first_of_inode: dict[int, str] = {}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        items = [(rel, False) for rel in members] + [(rel, True) for rel in removed]
        for rel, is_whiteout in sorted(items):
            if is_whiteout:
                parent = os.path.dirname(rel)
                ti = tarfile.TarInfo(os.path.join(parent, ".wh." + os.path.basename(rel)))
                ti.mode, ti.uname, ti.gname = 0o600, "", ""
                ti.mtime = int(new[parent].st_mtime) if parent else int(os.lstat(new_root).st_mtime)
                tar.addfile(ti)
                continue
            st = new[rel]
            full = os.path.join(new_root, rel)
            ti = tarfile.TarInfo(rel)
            ti.mode, ti.uid, ti.gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
            ti.mtime, ti.uname, ti.gname = int(st.st_mtime), "", ""
            if stat.S_ISDIR(st.st_mode):
                ti.type, ti.name = tarfile.DIRTYPE, rel + "/"
                tar.addfile(ti)
            elif stat.S_ISLNK(st.st_mode):
                ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(full)
                tar.addfile(ti)
            elif st.st_nlink > 1 and st.st_ino in first_of_inode:
                ti.type, ti.linkname = tarfile.LNKTYPE, first_of_inode[st.st_ino]
                tar.addfile(ti)
            else:
                if st.st_nlink > 1:
                    first_of_inode[st.st_ino] = rel
                ti.size = st.st_size
                with open(full, "rb") as f:
                    tar.addfile(ti, f)
    return buf.getvalue()


# --------------------------------------------------------------------------- docker-archive


def _member(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), 0o644, mtime
    tar.addfile(ti, io.BytesIO(data))


def cmd_pack(work: str, out: str, ref: str) -> None:
    steps = load_steps(work)
    repo, _, tag = ref.rpartition(":")
    layers, diff_ids, history = [], [], []
    previous = None
    for step in steps:
        data = layer_tar(previous, step["snapshot"])
        previous = step["snapshot"]
        layers.append(data)
        diff_ids.append("sha256:" + hashlib.sha256(data).hexdigest())
        history.append({"created": step["created"], "created_by": step["created_by"]})
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": steps[-1]["created"],
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/sh"],
                   "Labels": {"org.example.fixture": "layer-explorer packages"}},
        "history": history,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    mtime = int(time.time())
    ids, parent = [], ""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for data, diff_id, step in zip(layers, diff_ids, steps):
            # the legacy per-layer id: any stable hash of the chain works for readers
            layer_id = hashlib.sha256(f"{parent}\n{diff_id}".encode()).hexdigest()
            ti = tarfile.TarInfo(layer_id + "/")
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, mtime
            tar.addfile(ti)
            _member(tar, f"{layer_id}/VERSION", b"1.0", mtime)
            v1 = {"id": layer_id, "created": step["created"],
                  "container_config": {"Cmd": ["/bin/sh", "-c", step["created_by"]]}, "os": "linux"}
            if parent:
                v1["parent"] = parent
            _member(tar, f"{layer_id}/json", json.dumps(v1, separators=(",", ":")).encode(), mtime)
            _member(tar, f"{layer_id}/layer.tar", data, mtime)
            ids.append(layer_id)
            parent = layer_id
        _member(tar, config_name, config_bytes, mtime)
        manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [f"{i}/layer.tar" for i in ids]}]
        _member(tar, "manifest.json", json.dumps(manifest, separators=(",", ":")).encode(), 0)
        _member(tar, "repositories", json.dumps({repo: {tag: ids[-1]}}, separators=(",", ":")).encode(), 0)
    print(f"{out}: {len(layers)} layers, {os.path.getsize(out)} bytes")


# --------------------------------------------------------------------------- expected lists


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def dpkg_layer(snap: str) -> list[dict]:
    admin = os.path.join(snap, "var/lib/dpkg")
    out = run("dpkg-query", f"--admindir={admin}", "-W",
              "-f=${Package}\\t${Version}\\t${Architecture}\\t${db:Status-Abbrev}\\n")
    packages = []
    for line in out.splitlines():
        name, version, arch, status = line.split("\t")
        files = run("dpkg-query", f"--admindir={admin}", "-L", name).splitlines()
        packages.append({"name": name, "version": version, "arch": arch, "status": status.strip(),
                         "files": [f for f in files if f.startswith("/")]})
    return packages


def rpm_layer(snap: str, dbpath: str) -> list[dict]:
    base = ["rpm", "--root", snap, "--dbpath", dbpath]
    out = run(*base, "-qa", "--qf", "%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\n")
    packages = []
    for line in sorted(out.splitlines()):
        name, version, arch = line.split("\t")
        files = run(*base, "-ql", name).splitlines()
        packages.append({"name": name, "version": version, "arch": arch,
                         "files": [f for f in files if f.startswith("/")]})
    return packages


def apk_layer(snap: str) -> list[dict]:
    apk = os.environ.get("APK", "apk")
    names = run(apk, "--root", snap, "info").split()
    name_versions = run(apk, "--root", snap, "info", "-v").split()
    arches = {}  # apk list -I: "NAME-VERSION ARCH {ORIGIN} (LICENSE) [installed]"
    for line in run(apk, "--root", snap, "list", "-I").splitlines():
        nv, arch = line.split()[:2]
        arches[nv] = arch
    packages = []
    for name in sorted(names):
        nv = next(v for v in name_versions if v.startswith(name + "-") and v[len(name) + 1:][:1].isdigit())
        files = run(apk, "--root", snap, "info", "-L", name).splitlines()  # "NV contains:", paths, ""
        packages.append({"name": name, "version": nv[len(name) + 1:], "arch": arches.get(nv),
                         "files": ["/" + f for f in files[1:] if f]})
    return packages


def pip_layer(snap: str, site: str) -> list[dict]:
    where = os.path.join(snap, site.lstrip("/"))
    if not os.path.isdir(where):
        return []
    # PIP: the pip to ask, e.g. "python3.11 -S /path/pip-24.2-py3-none-any.whl/pip"
    pip = os.environ.get("PIP", f"{sys.executable} -m pip").split()
    listed = json.loads(run(*pip, "list", "--disable-pip-version-check", "--path", where, "--format", "json"))
    packages = []
    for item in sorted(listed, key=lambda p: p["name"].lower()):
        listing, files = _pip_files(where, item["name"], item["version"])
        packages.append({"name": item["name"], "version": item["version"], "arch": None, "where": site,
                         "listing": os.path.join(site, listing) if listing else None,
                         "files": [os.path.normpath(os.path.join(site, f)) for f in files]})
    return packages


def _pip_files(site: str, name: str, version: str) -> tuple[str | None, list[str]]:
    """The file that lists a distribution's paths (RECORD, else installed-files.txt) and
    those paths, relative to site (a RECORD's are already; installed-files.txt's are relative
    to its own folder)."""
    norm = re.sub(r"[-_.]+", "_", name).lower()
    for entry in sorted(os.listdir(site)):
        stem, ext = os.path.splitext(entry)
        parts = stem.split("-")
        if ext not in (".dist-info", ".egg-info") or re.sub(r"[-_.]+", "_", parts[0]).lower() != norm \
                or parts[1:2] != [version]:
            continue
        for listing in ("RECORD", "installed-files.txt"):
            path = os.path.join(site, entry, listing)
            if not os.path.exists(path):
                continue
            with open(path, newline="") as f:
                if listing == "RECORD":
                    return f"{entry}/{listing}", [row[0] for row in csv.reader(f) if row]
                return f"{entry}/{listing}", [os.path.join(entry, line) for line in f.read().splitlines() if line]
    return None, []


def npm_layer(snap: str, prefix: str) -> tuple[dict, list[dict]]:
    """npm ls --all --json as npm prints it, and the packages in it with their folders
    (from npm ls --long's "path") and the files under each folder (not in nested node_modules)."""
    folder = os.path.join(snap, prefix.lstrip("/"))
    tree = json.loads(run("npm", "ls", "--prefix", folder, "--all", "--json"))
    long = json.loads(run("npm", "ls", "--prefix", folder, "--all", "--json", "--long"))
    packages = []

    def walk(deps: dict) -> None:
        for name, info in sorted(deps.items()):
            where = "/" + os.path.relpath(info["path"], snap)
            files = []
            for top, dirs, names in os.walk(info["path"]):
                dirs[:] = sorted(d for d in dirs if d != "node_modules")
                files += ["/" + os.path.relpath(os.path.join(top, n), snap) for n in names]
            packages.append({"name": name, "version": info.get("version"), "arch": None,
                             "where": where, "files": sorted(files)})
            walk(info.get("dependencies", {}))

    walk(long.get("dependencies", {}))
    return tree, packages


def final_usage(snap: str, files: list[str]) -> dict:
    """What of a package's listed paths the final image has.

    A path is looked up inside the image: folder symlinks on the way are followed within the
    image (/bin -> usr/bin), the last component is not. Each resolved path counts once.
    exist: listed paths found (folders, symlinks and files alike); regular: those that are
    regular files; bytes: their sizes; missing: listed paths not found.
    """
    seen: set[str] = set()
    exist = regular = size = 0
    missing = []
    for f in files:
        real = _resolve_inside(snap, f)
        if real is None:
            missing.append(f)
            continue
        if real in seen:
            continue
        seen.add(real)
        st = os.lstat(os.path.join(snap, real.lstrip("/")))
        exist += 1
        if stat.S_ISREG(st.st_mode):
            regular += 1
            size += st.st_size
    return {"exist": exist, "regular": regular, "bytes": size, "missing": missing}


def _resolve_inside(snap: str, path: str, depth: int = 0) -> str | None:
    parts = [p for p in path.split("/") if p]
    cur = "/"
    for i, part in enumerate(parts):
        nxt = os.path.join(cur, part)
        full = os.path.join(snap, nxt.lstrip("/"))
        if not os.path.lexists(full):
            return None
        if i < len(parts) - 1 and os.path.islink(full):
            target = os.readlink(full)
            target = target if target.startswith("/") else os.path.join(cur, target)
            if depth > 40:
                return None
            resolved = _resolve_inside(snap, os.path.normpath(target), depth + 1)
            if resolved is None:
                return None
            nxt = resolved
        cur = nxt
    return cur


def cmd_expected(manager: str, work: str, out: str, tool: str, notes: str, where: list[str]) -> None:
    """Ask the manager's own query tool about every snapshot; write OUT as JSON.

    ``where``: the rpm database path, pip's site-packages folders or npm's prefix (image paths).
    """
    steps = load_steps(work)
    layers = []
    for step in steps:
        snap = step["snapshot"]
        layer: dict = {"created_by": step["created_by"]}
        if manager == "dpkg":
            layer["packages"] = dpkg_layer(snap)
        elif manager == "rpm":
            layer["packages"] = rpm_layer(snap, where[0])
        elif manager == "apk":
            layer["packages"] = apk_layer(snap)
        elif manager == "pip":
            layer["packages"] = [p for site in where for p in pip_layer(snap, site)]
        elif manager == "npm":
            layer["npm_ls"], layer["packages"] = npm_layer(snap, where[0])
        else:
            raise SystemExit(f"unknown manager {manager}")
        layers.append(layer)
    final = steps[-1]["snapshot"]
    for p in layers[-1]["packages"]:
        p["final"] = final_usage(final, p["files"])
    doc = {"tool": tool, "notes": notes, "layers": layers}
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{out}: {len(layers)} layers")


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("snapshot", help="copy ROOT to WORK/snap/NN and note the build step")
    p.add_argument("work"), p.add_argument("root"), p.add_argument("created_by")
    p = sub.add_parser("pack", help="write the docker-archive from WORK's snapshots")
    p.add_argument("work"), p.add_argument("out"), p.add_argument("ref", help="REPO:TAG")
    p = sub.add_parser("expected", help="the real query tool's package lists per layer, as JSON")
    p.add_argument("manager", choices=["dpkg", "rpm", "apk", "pip", "npm"])
    p.add_argument("work"), p.add_argument("out")
    p.add_argument("--tool", required=True, help="the query tool and its version")
    p.add_argument("--notes", default="")
    p.add_argument("--where", action="append", default=[],
                   help="rpm: the database path; pip: a site-packages folder (repeatable); npm: the prefix")
    args = parser.parse_args(argv)
    if args.cmd == "snapshot":
        cmd_snapshot(args.work, args.root, args.created_by)
    elif args.cmd == "pack":
        cmd_pack(args.work, args.out, args.ref)
    else:
        cmd_expected(args.manager, args.work, args.out, args.tool, args.notes, args.where)


if __name__ == "__main__":
    main(sys.argv[1:])
