"""Runs ``FilesElsewhere`` in a fresh interpreter, for the index cache's tests.

It forks only in a process with no thread but its main one, and a test session has others.

    python -m tests.index_child ARCHIVE FOLDER (whole | failing | unread)

prints a JSON object: what ``finish`` returned, whether the reopened index reports the same
image, and whether the child had ended.
"""

from __future__ import annotations

import json
import os
import sys

from explorer.formats.source import open_source
from explorer.image import index_cache
from explorer.image.loader import load_image
from explorer.report import build_report


def main(archive: str, where: str, mode: str) -> dict:
    if mode == "failing":
        index_cache._files_child = lambda *args: os._exit(1)  # (inherited by the fork)
    with open_source(archive) as src:
        fresh = load_image(src, src.select(), cache=False)
        files = index_cache.FilesElsewhere(fresh.tree, where)
        child = files.proc
        if mode == "unread":

            def broken():
                raise OSError("read failed")

            files._said.recv_bytes = broken
        written = files.finish(fresh, "the-key")
        same = None
        if written is not None:
            reopened = index_cache.open_index(written, "the-key", src, src.select())
            same = reopened is not None and reopened.from_cache and \
                build_report(reopened, src.images, archive) == build_report(fresh, src.images, archive)
        return {"forked": child is not None, "written": written, "same": same,
                "ended": child is None or child.exitcode is not None}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
