#!/usr/bin/env python3
"""What a reopened index costs Python's cycle collector once every folder is decoded.

    python bench/decoded_gc.py ARCHIVE

Writes the archive's index (in a throwaway folder, as a first open does), maps it as a
reopen does, decodes every folder and looks up every path, then prints how many objects the
collector tracks beyond those it tracked before, and how long a full pass takes before and
after. The window decodes the folders it shows; a full pass that walks them holds it.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time

from explorer.formats.source import open_source
from explorer.image import index_cache
from explorer.image.loader import load_image


def full_pass_ms() -> float:
    """The time of one full pass of the collector, in milliseconds."""
    start = time.perf_counter()
    gc.collect()
    return (time.perf_counter() - start) * 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("archive")
    args = p.parse_args()
    folder = tempfile.mkdtemp()
    try:
        with open_source(args.archive) as source:
            ref = source.select()
            key = index_cache.key_for(source, ref)
            built = load_image(source, ref, cache=False)
            written = index_cache.save(source, built, where=folder, key=key)
            del built
            for _ in range(4):  # (the built image's cycles, and what the collector lets go of in steps)
                gc.collect()
            image = index_cache.open_index(written, key, source, ref)
            if image is None:
                print("the index could not be reopened", file=sys.stderr)
                return 1
            tree = image.tree
            before = len(gc.get_objects())
            print(f"a full pass before decoding (ms)      {full_pass_ms():10.1f}")
            start = time.perf_counter()
            tree.versions.chunks.load_all()
            for path in list(tree.versions):
                tree.entry_at(path)
            print(f"decoding every folder, every path looked up (s) {time.perf_counter() - start:4.2f}")
            passes = [full_pass_ms() for _ in range(4)]
            print(f"full passes after it (ms)             {', '.join(f'{ms:.1f}' for ms in passes)}")
            print(f"objects tracked beyond those before   {len(gc.get_objects()) - before:10,}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
