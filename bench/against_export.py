#!/usr/bin/env python3
"""Check Layer Explorer's final filesystem of an image against what a container of it holds.

    docker load -i IMAGE.tar && docker create --name c IMAGE-REF /bin/true && docker export c > EXPORT.tar
    python bench/against_export.py IMAGE.tar EXPORT.tar

Compares every path of ``report --json`` with the export: type (a file and a hardlink are both
files), mode, owner, size of files, symlink targets, and which names share one file (the
export writes the second name of a file as a tar hardlink). The paths Docker adds to every
container (/.dockerenv, /etc/hostname, /dev, ...) are left out. Prints the differences.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile

ADDED_BY_DOCKER = {"/.dockerenv", "/etc/hostname", "/etc/hosts", "/etc/mtab", "/etc/resolv.conf"}
RUNTIME = ("/dev", "/proc", "/sys")  # mounted over in a container: the export has its own


def _path(name: str) -> str:
    name = name[2:] if name.startswith("./") else name
    return "/" + name.strip("/")


def _groups(pairs: list[tuple[str, str]]) -> set[frozenset[str]]:
    """Names of one file, from (name, the name it links to) pairs."""
    group: dict[str, set[str]] = {}
    for a, b in pairs:
        ga, gb = group.setdefault(a, {a}), group.setdefault(b, {b})
        if ga is not gb:
            ga |= gb
            for x in gb:
                group[x] = ga
    return {frozenset(g) for g in group.values()}


def _outside(path: str) -> bool:
    return path == "/" or path in ADDED_BY_DOCKER or any(path == r or path.startswith(r + "/") for r in RUNTIME)


def main() -> int:
    image, export = sys.argv[1], sys.argv[2]
    out = subprocess.run(["layer-explorer", "report", "--json", "--no-cache", image], capture_output=True, check=True).stdout
    ours = {f["path"]: f for f in json.loads(out)["image"]["files"] if not _outside(f["path"])}
    theirs: dict[str, tarfile.TarInfo] = {}
    with tarfile.open(export) as tar:
        for m in tar:
            if not _outside(_path(m.name)):
                theirs[_path(m.name)] = m
    made = {p.rsplit("/", 1)[0] for p in ADDED_BY_DOCKER}  # /etc, made for them in an image without one
    problems = [f"only in the export: {p}" for p in sorted(theirs.keys() - ours.keys() - made)]
    problems += [f"only in Layer Explorer: {p}" for p in sorted(ours.keys() - theirs.keys())]
    for path in sorted(ours.keys() & theirs.keys()):
        o, m = ours[path], theirs[path]
        kind = "file" if m.isfile() or m.islnk() else "dir" if m.isdir() else "symlink" if m.issym() else "other"
        mine = "file" if o["type"] in ("file", "hardlink") else o["type"]
        if mine != kind and kind != "other":
            problems.append(f"{path}: {o['type']} here, {kind} in the export")
        elif int(o["mode"], 8) != m.mode & 0o7777 or (o["uid"], o["gid"]) != (m.uid, m.gid):
            problems.append(f"{path}: mode/owner {o['mode']} {o['uid']}:{o['gid']} here, {m.mode & 0o7777:04o} {m.uid}:{m.gid} there")
        elif kind == "symlink" and o["target"] != m.linkname:
            problems.append(f"{path}: links to {o['target']} here, {m.linkname} there")
        elif m.isfile() and o["size"] != m.size:
            problems.append(f"{path}: {o['size']} bytes here, {m.size} there")
    mine = _groups([(p, f["target"]) for p, f in ours.items() if f["type"] == "hardlink"])
    there = _groups([(p, _path(m.linkname)) for p, m in theirs.items() if m.islnk()])
    problems += [f"names of one file only in the export: {sorted(g)}" for g in there - mine]
    problems += [f"names of one file only here: {sorted(g)}" for g in mine - there]
    print("\n".join(problems) or f"the same: {len(ours):,} paths, {len(mine)} files with several names")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
