#!/usr/bin/env python3
"""Check Layer Explorer's packages of a Debian image against dpkg itself, at every layer.

    python bench/against_dpkg.py IMAGE.tar        # needs dpkg-query (any Debian or Ubuntu host), and root

For each layer k, the filesystem after layer k is extracted (``layer-explorer extract --layer
k``) and ``dpkg-query --admindir=DIR/var/lib/dpkg`` lists its installed packages; they must be
the ones ``report --json`` gives for that layer (the layers' added, removed and changed
summed from the bottom). For the final image each package's files and bytes are counted
again by the kernel: a child process chroots into the extracted folder and ``lstat``s every
path ``dpkg-query -L`` lists (symlinked folders above it resolved by the kernel; each real
path counted once, each file's bytes once).
Prints the differences; exits 1 when there are any.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile

CLI = [sys.executable, "-m", "explorer"]


def dpkg_state(root: str) -> dict[tuple[str, str], str]:
    """(name, arch) -> version of every package dpkg says is installed in ``root``."""
    out = subprocess.run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W",
                          "-f=${Package}\t${Architecture}\t${Version}\t${db:Status-Abbrev}\n"],
                         capture_output=True, text=True, check=False).stdout
    state = {}
    for line in out.splitlines():
        name, arch, version, status = line.split("\t")
        if status.startswith("ii") or status.startswith("hi"):
            state[(name, arch)] = version
    return state


def kernel_weights(root: str, names: list[str]) -> dict[str, tuple[int, int]]:
    """Files and bytes of each package, counted by the kernel inside ``root`` (a chroot)."""
    lists = {}
    for name in names:
        out = subprocess.run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-L", name],
                             capture_output=True, text=True, check=False).stdout
        lists[name] = [p for p in out.splitlines() if p.startswith("/")]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            _weigh_in_chroot(root, lists, read, write)
        finally:
            os._exit(0)  # never run the parent's code in the child
    os.close(write)
    chunks = []
    while chunk := os.read(read, 1 << 20):
        chunks.append(chunk)
    os.waitpid(pid, 0)
    return {k: tuple(v) for k, v in json.loads(b"".join(chunks)).items()}


def _weigh_in_chroot(root: str, lists: dict[str, list[str]], read: int, write: int) -> None:
    """In the forked child: count each package's files inside ``root``, write the JSON to ``write``."""
    os.close(read)
    os.chroot(root)
    os.chdir("/")
    result = {}
    for name, paths in lists.items():
        seen, places, files, size = set(), set(), 0, 0
        for p in paths:
            folder, _, leaf = p.rpartition("/")
            try:
                real = os.path.normpath(os.path.join(os.path.realpath(folder or "/"), leaf))
                st = os.lstat(real)
            except OSError:
                continue
            if real in places:
                continue
            places.add(real)
            files += 1  # every listed path that exists, folders too, each real path once
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))  # bytes once per file, whatever its names
                size += st.st_size
        result[name] = (files, size)
    os.write(write, json.dumps(result).encode())


def main() -> int:
    archive = sys.argv[1]
    report = json.loads(subprocess.run(CLI + ["report", "--json", "--no-cache", archive], capture_output=True,
                                       check=True).stdout)
    img = report["image"]
    problems = 0
    ours: dict[tuple[str, str], str] = {}
    arch_of = {p["name"]: p["arch"] for p in img["packages"] if p["manager"] == "dpkg"}
    for layer in img["layers"]:
        did = layer["packages"]
        for x in did["removed"]:
            ours = {k: v for k, v in ours.items() if k[0] != x["name"]}
        for x in did["added"] + did["changed"]:
            if x["manager"] == "dpkg":
                ours[(x["name"], arch_of.get(x["name"], "?"))] = x["version"]
        with tempfile.TemporaryDirectory(prefix="against-dpkg-") as root:
            subprocess.run(CLI + ["extract", "--no-cache", "--layer", str(layer["index"]), "-o", root, archive],
                           check=True, capture_output=True)
            theirs = dpkg_state(root)
            mine = {(n, a if a != "?" else next((x for (m, x) in theirs if m == n), "?")): v for (n, a), v in ours.items()}
            missing, extra = set(theirs) - set(mine), set(mine) - set(theirs)
            versions = [k for k in set(theirs) & set(mine) if theirs[k] != mine[k]]
            print(f"layer {layer['index']}: dpkg {len(theirs)} installed, report {len(mine)}; "
                  f"missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}, versions differ {versions[:5]}")
            problems += len(missing) + len(extra) + len(versions)
            if layer is img["layers"][-1]:
                weights = kernel_weights(root, sorted({n for n, _ in theirs}))
                for p in img["packages"]:
                    if p["manager"] != "dpkg":
                        continue
                    want = weights.get(p["name"])
                    if want is None or (p["files"], p["size"]) != want:
                        problems += 1
                        print(f"  {p['name']}: report {p['files']} files, {p['size']} bytes; kernel {want}")
                print(f"final image: {len(weights)} packages weighed by the kernel")
    print("agree" if not problems else f"{problems} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
