#!/usr/bin/env python3
"""Time file previews after an image is loaded: the first MiB of many files, worst case shown.

    python bench/preview.py ARCHIVE [--files 200] [--access]

Files are picked at random plus the one stored deepest in the biggest layer (the worst case
for compressed layers). Prints median and maximum milliseconds per preview. With ``--access``
the big gzip layers' access points are made first, as the window does after a load, and the
time that took is printed too.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from explorer.formats import gzip_access
from explorer.image import index_cache
from explorer.image.content import PREVIEW_LIMIT, kind_of, read_entry
from explorer.image.loader import load_image
from explorer.formats.source import open_source


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("archive")
    p.add_argument("--files", type=int, default=200)
    p.add_argument("--parallel", action="store_true", help="load as the window does (compressed layers in worker processes)")
    p.add_argument("--access", action="store_true", help="make the gzip layers' access points first, as the window does")
    args = p.parse_args()
    t0 = time.perf_counter()
    source = open_source(args.archive)
    image = load_image(source, source.select(), parallel="process" if args.parallel else False)
    print(f"loaded in {time.perf_counter() - t0:.2f} s")
    if args.access:
        t0 = time.perf_counter()
        todo = gzip_access.missing(source.container, image.blobs, image.scans)
        gzip_access.make(source.container, todo, disk=index_cache.enabled())
        print(f"access points of {len(todo)} layer(s) made in {time.perf_counter() - t0:.2f} s")
    files = [e for e in image.tree.merged() if e.type in ("file", "hardlink") and e.size and e.offset >= 0]
    biggest = max(range(len(image.layers)), key=lambda k: image.layers[k].size)
    deepest = max((e for e in files if e.layer == biggest), key=lambda e: e.offset)
    random.seed(7)
    picks = random.sample(files, min(args.files, len(files))) + [deepest]
    times = []
    first = None
    for e in picks:
        start = time.perf_counter()
        head = read_entry(source, image, e, limit=PREVIEW_LIMIT)
        kind_of(e, head)
        times.append((time.perf_counter() - start) * 1000)
        first = first if first is not None else times[-1]
    print(f"first preview (builds a gzip layer's resume points when the load did not keep them): {first:.1f} ms")
    print(f"{len(picks)} previews: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms; "
          f"deepest file of the biggest layer ({deepest.path}, {deepest.size:,} bytes at offset {deepest.offset:,}): {times[-1]:.1f} ms")


if __name__ == "__main__":
    main()
