"""Runs ``FilesElsewhere`` in a fresh interpreter, for the index cache's tests.

It forks only in a process with no thread but its main one, and a test session has others.

    python -m tests.index_child ARCHIVE FOLDER (whole | late | shown | failing | unread)[+shown][-shared | -one | -none]

prints a JSON object: what ``finish`` returned, whether the reopened index reports the same
image, and whether the child had ended. With ``-shared`` the parent takes blocks of the last
folders and writes them itself, however small the image (the child waits for the first
before it starts), until it meets the child; with ``-one``, one block only; with ``-none``,
none, though it could. The object then also says where the parent's folders began
(``taken``), whether the index holds what one written in one piece holds (``as_one``), and
how many other files being written lay beside the index as it was named (``beside``).
``late``: as ``whole``, but the child is slow to end once it has said all (the parent may
then look at its file before it is closed). ``shown``: as ``whole``, but the files' index is
written first, before the accounting (``shown``), and the whole one from it; the object then says whether the first was still there once the whole one was
written (``early``: it is its caller's to remove, as the window does once it has mapped it)
and whether it held the same files as the whole one, with no accounting (``early_same``);
``+shown`` asks for it first in the other modes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from multiprocessing import connection

from explorer.formats.source import open_source
from explorer.image import index_cache
from explorer.image.loader import load_image
from explorer.report import build_report
from explorer.tree.steps import drain
from explorer.tree.views import MERGED, TreeView


def held(image) -> dict:
    """Everything an index file holds of the files: each folder's names and versions, the
    path table, the columns, every layer's folder sizes and changes, and the final image's
    count and bytes of regular files."""
    tree = image.tree
    columns = tree.columns()
    return {
        "folders": {name: (list(tree.kids[name]), [tree.versions.get(name.rstrip("/") + "/" + c) for c in tree.kids[name]])
                    for name in tree.kids},
        "paths": drain(tree.versions.chunks.table.matching_steps(None)),
        "columns": None if columns is None else [list(map(int, getattr(columns, n))) for n in
                                                 ("starts", "parents", "depths", "first", "until", "size", "flags", "held")],
        "linked": None if columns is None else (list(map(int, columns.linked_rows)), repr(columns.linked_names)),
        "sizes": [TreeView(tree, layer, MERGED).totals() for layer in [None, *range(tree.layer_count)]],
        "changes": [list(tree.changes[i].paths) for i in range(tree.layer_count)],
        "counts": (image.file_count, image.file_bytes),
    }


def main(archive: str, where: str, mode: str) -> dict:
    mode, _, shared = mode.partition("-")
    mode, _, then = mode.partition("+")  # ``failing+shown``: a failing child, the files' index asked for first
    if mode == "late":
        told = connection.Connection.send_bytes

        def slowly(self, data):  # (inherited by the fork: only the child says anything)
            told(self, data)
            time.sleep(0.5)

        connection.Connection.send_bytes = slowly
    keep, beside = index_cache._keep, []

    def keeping(tmp, where, key):
        beside.append(sum(1 for name in os.listdir(where) if name.startswith(index_cache.PARTIAL)) - 1)
        return keep(tmp, where, key)

    index_cache._keep = keeping
    if shared:
        index_cache.SHARE_AT, index_cache.LEAST = 0, (10**12 if shared == "none" else 0)
        index_cache.spare_core = lambda: True  # (this machine may have one core: the sharing is what is tried)
        alone = index_cache._files_child

        def waiting(tree, claim, *rest):  # (inherited by the fork)
            shared = claim[1]
            deadline = time.monotonic() + 60
            while shared[1] == len(tree.kids) and shared[0] >= 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            alone(tree, claim, *rest)

        def take(files, before):
            taken = decide(files, before) if shared == "shared" or files._claim[1][1] == len(files.tree.kids) else None
            if taken is None:
                files._claim[1][0] = -1  # (the child need wait no more)
            return taken

        index_cache._files_child, decide = waiting, index_cache.FilesElsewhere._take
        index_cache.FilesElsewhere._take = take
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
        early = early_same = None
        if "shown" in (mode, then):  # the files' index first, as a window is shown it, then the whole one from it
            bare = fresh.replace(efficiency=None, waste=None, advice=(), secrets=(), packages=None, analysed=False)
            early = files.shown(bare, "the-key", index_cache.shown_name(where))
            first = index_cache.open_index(early, "the-key", src, src.select()) if early else None
            early_same = first is not None and first.waste is None and first.packages is None
            early_held = held(first) if first is not None else None
        written = files.finish(fresh, "the-key")
        if early is not None:
            early_same = early_same and held(index_cache.open_index(written, "the-key", src, src.select())) == early_held
            shown, early = early, os.path.exists(early)  # (still there: the whole index's writer left it to its caller)
            if early:
                os.remove(shown)  # (as the caller does)
        files.cancel()  # (as the loading process does once it has passed the index on: the child reaped)
        same = as_one = None
        if written is not None:
            reopened = index_cache.open_index(written, "the-key", src, src.select())
            same = reopened is not None and reopened.from_cache and \
                build_report(reopened, src.images, archive) == build_report(fresh, src.images, archive)
            if shared and reopened is not None:
                one = index_cache.save(src, fresh, os.path.join(where, "one"), "the-key")
                as_one = held(reopened) == held(index_cache.open_index(one, "the-key", src, src.select()))
        return {"forked": child is not None, "written": written, "same": same, "taken": files.taken,
                "as_one": as_one, "beside": beside[0] if written is not None else None,
                "early": early, "early_same": early_same,
                "ended": child is None or child.exitcode is not None}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
