"""Loading in a process of its own: the same image as loading here, typed failures, a cancel that ends it."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from pathlib import Path

import pytest

from explorer.formats.source import open_source
from explorer.image import index_cache, load_worker
from explorer.image.loader import load_image, prepare_first_view
from explorer.model.errors import Cancelled, ExplorerError
from explorer.model.progress import Monitor
from explorer.report import build_report
from tests.builders import docker_archive, f, layer_tar

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["docker-legacy.tar", "buildah-overlay.oci.tar"])
def test_the_worker_gives_the_image_loading_here_gives(cache, name):
    path = str(DATA / name)
    with open_source(path) as src:
        here = build_report(load_image(src, src.select(), cache=False), src.images, path)
    stages = []
    with open_source(path) as src:
        image = load_worker.load(src, src.select(), Monitor(path, lambda p: stages.append(p.stage)))
        assert image.from_cache  # mapped from the file the worker wrote
        assert build_report(image, src.images, path) == here
    assert "writing the index" in stages and any(s.startswith("reading layer") for s in stages)
    (written,) = (cache / "index").iterdir()  # the cache is that file: a reopen maps it
    with open_source(path) as src:  # and its checksum holds for a reader that hashes it all
        key = index_cache.key_for(src, src.select())
        assert index_cache.open_index(str(written), key, src, src.select()) is not None
    assert multiprocessing.active_children() == []


def test_with_the_cache_off_nothing_is_left_behind(cache, monkeypatch):
    monkeypatch.setenv("LAYER_EXPLORER_NO_INDEX_CACHE", "1")
    path = str(DATA / "docker-legacy.tar")
    with open_source(path) as src:
        image = load_worker.load(src, src.select(), Monitor(path))
        assert image.file_count == 68
        assert "etc" in image.tree.children("/")  # readable after its file is gone
        assert image.tree.entry_at("/data/modify-me.txt").size > 0
    assert not (cache / "index").exists()
    assert list((cache / "tmp").iterdir()) == []


def test_a_failure_in_the_worker_comes_back_as_a_sentence(cache, tmp_path):
    archive = tmp_path / "broken.tar"
    good = layer_tar([f("etc/hostname", "box\n")])
    archive.write_bytes(docker_archive([good, b"\x1f\x8b\x08\x00" + b"not gzip at all" * 40]))
    with open_source(str(archive)) as src:  # the manifest and config are fine: it opens
        with pytest.raises(ExplorerError) as caught:
            load_worker.load(src, src.select(), Monitor(str(archive)))
    message = str(caught.value)
    assert str(archive) in message and "Traceback" not in message
    assert multiprocessing.active_children() == []


def test_a_cancel_ends_the_worker_and_its_helpers_at_once(cache):
    path = str(DATA / "buildah-overlay.oci.tar")
    seen = []

    def progress(p):
        seen.append(p)
        monitor.cancelled = True  # as the window's Cancel does, from another thread

    monitor = Monitor(path, progress)
    with open_source(path) as src:
        with pytest.raises(Cancelled):
            load_worker.load(src, src.select(), monitor)
    assert seen  # it was under way
    assert multiprocessing.active_children() == []
    assert not (cache / "index").exists() or not [p for p in (cache / "index").iterdir() if not p.name.startswith(".")]


def test_only_sources_that_can_be_opened_again_go_to_a_worker():
    with open_source(str(DATA / "docker-legacy.tar")) as src:
        assert load_worker.suitable(src, src.select())

    def source(path: str):
        return type("S", (), {"info": type("I", (), {"path": path})()})()

    for path in ("registry://localhost:5000/a:b", "registry+http://localhost:5000/a@sha256:" + "0" * 64):
        assert load_worker.suitable(source(path), None)  # type: ignore[arg-type]
    for path in ("docker-daemon:alpine", "docker://alpine", "podman://x", "/no/such/file.tar"):
        assert not load_worker.suitable(source(path), None)  # type: ignore[arg-type]  (read once, or not there)


def test_a_cache_that_cannot_be_written_means_an_index_in_the_temporary_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(blocker / "cache"))  # a folder under a file
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    tempfile.tempdir = None  # (read again from TMPDIR)
    try:
        path = str(DATA / "docker-legacy.tar")
        for load in (load_worker.load, load_worker.load_here):
            with open_source(path) as src:
                image = load(src, src.select(), Monitor(path))
                assert image.from_cache and image.file_count == 68
                assert image.tree.entry_at("/data/modify-me.txt").size > 0  # readable after its file is gone
            assert list((tmp_path / "tmp").iterdir()) == []  # written there, mapped, removed
    finally:
        tempfile.tempdir = None
    assert multiprocessing.active_children() == []


def test_a_cache_that_cannot_take_the_index_means_a_temporary_copy(cache, tmp_path, monkeypatch):
    # The cache's folder can be written, but not the index's name in it (a folder is in the
    # way), as a full disk takes nothing more: the index goes to a private temporary folder.
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)  # (read again from TMPDIR)
    path = str(DATA / "docker-legacy.tar")
    with open_source(path) as src:
        key = index_cache.key_for(src, src.select())
    (cache / "index" / key / "in-the-way").mkdir(parents=True)
    for load in (load_worker.load, load_worker.load_here):
        with open_source(path) as src:
            image = load(src, src.select(), Monitor(path))
            assert image.from_cache and image.file_count == 68 and image.warnings == ()
            assert image.tree.entry_at("/data/modify-me.txt").size > 0  # readable after its file is gone
        assert [p.name for p in (cache / "index").iterdir()] == [key]  # no half-written file left
        assert list((cache / "tmp").glob("*")) == []  # (the cache's own disk: not tried)
        assert list((tmp_path / "tmp").iterdir()) == []  # the copy was mapped, then removed
    assert multiprocessing.active_children() == []


FULL_DISK = """
import json, resource, signal, sys
from pathlib import Path
# Every file this process and its children write stops at 8 KiB, as on a full disk (the
# write fails; the signal that would end the process is ignored)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
from explorer.formats.source import open_source
from explorer.image import load_worker
from explorer.model.progress import Monitor
from explorer.report import build_report
path = sys.argv[1]
said = {}
with open_source(path) as src:
    try:
        load_worker.load(src, src.select(), Monitor(path))
    except load_worker.NoRoom as exc:
        said["worker"] = str(exc)
    image = load_worker.load_here(src, src.select(), Monitor(path))
    said["from_cache"] = image.from_cache
    said["warnings"] = list(image.warnings)
    report = build_report(image, src.images, path)
    report["image"]["warnings"] = []
    said["report"] = report
print(json.dumps(said))
"""


def test_with_no_room_anywhere_for_the_index_the_image_is_held_in_memory(cache, tmp_path):
    import json
    import subprocess
    import sys

    path = str(DATA / "docker-legacy.tar")
    env = dict(os.environ, LAYER_EXPLORER_CACHE=str(cache), TMPDIR=str(tmp_path))
    env.pop("LAYER_EXPLORER_NO_INDEX_CACHE", None)
    done = subprocess.run([sys.executable, "-c", FULL_DISK, path], capture_output=True, text=True, env=env,
                          timeout=120, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert "no folder would hold the image's index" in said["worker"] and path in said["worker"]
    assert said["from_cache"] is False  # built here and kept as it is
    (note,) = said["warnings"]
    assert "held in memory" in note and "free some disk space" in note
    with open_source(path) as src:  # the same image as any load gives
        assert said["report"] == json.loads(json.dumps(build_report(load_image(src, src.select(), cache=False),
                                                                    src.images, path)))
    assert list((cache / "index").iterdir()) == []  # nothing half-written left anywhere
    assert list((cache / "tmp").glob("*")) == []
    assert [p for p in tmp_path.iterdir() if p.name != "cache"] == []


def test_the_worker_reads_the_settings_of_now_not_of_the_fork_server_start(cache, tmp_path, monkeypatch):
    load_worker.warm_up()  # as the window does when it starts, before any setting below
    archive = tmp_path / "many.tar"
    archive.write_bytes(docker_archive([layer_tar([f(f"etc/f{i}", "x") for i in range(40)])]))
    monkeypatch.setenv("LAYER_EXPLORER_MAX_ENTRIES", "10")  # one layer's entries, read as the worker scans
    with open_source(str(archive)) as src:
        with pytest.raises(ExplorerError) as caught:
            load_worker.load(src, src.select(), Monitor(str(archive)))
    assert "LAYER_EXPLORER_MAX_ENTRIES" in str(caught.value)
    monkeypatch.delenv("LAYER_EXPLORER_MAX_ENTRIES")
    with open_source(str(archive)) as src:
        assert load_worker.load(src, src.select(), Monitor(str(archive))).file_count == 41  # 40 files, /etc
    assert len(list((cache / "index").iterdir())) == 1  # where the cache is now set


def test_where_there_is_no_fork_server_a_new_interpreter_loads(cache, monkeypatch):
    real = multiprocessing.get_context
    asked = []

    def no_fork_server(method=None):
        asked.append(method)
        if method == "forkserver":
            raise ValueError("cannot find context for 'forkserver'")  # as on Windows
        return real(method)

    monkeypatch.setattr(multiprocessing, "get_context", no_fork_server)
    load_worker.warm_up()  # nothing to start
    path = str(DATA / "docker-legacy.tar")
    with open_source(path) as src:
        image = load_worker.load(src, src.select(), Monitor(path))
        assert image.from_cache and image.file_count == 68
    assert "spawn" in asked  # the worker was a new interpreter
    assert multiprocessing.active_children() == []


def test_the_worker_ends_once_its_index_is_written_and_leaves_nothing_behind(cache, monkeypatch):
    from explorer.tree.views import MERGED, TreeView

    path = str(DATA / "docker-legacy.tar")
    with open_source(path) as src:
        built = load_image(src, src.select(), cache=False)
    for cache_off in (False, True):
        if cache_off:
            monkeypatch.setenv("LAYER_EXPLORER_NO_INDEX_CACHE", "1")
        with open_source(path) as src:
            image = load_worker.load(src, src.select(), Monitor(path))
        assert multiprocessing.active_children() == []  # every layer's sizes come from the index itself
        assert image.tree.columns() is not None
        for layer in range(len(built.layers)):
            assert TreeView(image.tree, layer, MERGED).totals() == TreeView(built.tree, layer, MERGED).totals(), layer
        if cache_off:
            assert list((cache / "tmp").iterdir()) == []  # the private index, gone once mapped


# -- the files first, their accounting after -------------------------------------------------


@pytest.mark.parametrize("name", ["docker-legacy.tar", "buildah-overlay.oci.tar", "packages/dpkg.docker.tar"])
@pytest.mark.parametrize("cache_off", [False, True])
def test_the_files_come_first_then_the_image_loading_here_gives(cache, monkeypatch, name, cache_off):
    if cache_off:
        monkeypatch.setenv("LAYER_EXPLORER_NO_INDEX_CACHE", "1")
    path = str(DATA / name)
    with open_source(path) as src:
        built = prepare_first_view(load_image(src, src.select(), cache=False))
        here = build_report(built, src.images, path)
    shown = []
    with open_source(path) as src:
        image = load_worker.load(src, src.select(), Monitor(path), on_files=shown.append, early_at=0)
        assert build_report(image, src.images, path) == here  # waste, advice, secrets, packages, dive's numbers
    (first,) = shown
    assert not first.analysed and image.analysed
    assert first.waste is None and first.efficiency is None and first.packages is None and first.advice == ()
    assert first.tree is image.tree  # what the window shows stays: only the accounting is added
    assert (first.file_count, first.file_bytes) == (built.file_count, built.file_bytes)
    assert [l.size for l in first.layers] == [l.size for l in built.layers]
    for path_ in built.tree.versions:
        assert image.tree.entry_at(path_) == built.tree.entry_at(path_), path_
    assert multiprocessing.active_children() == []
    if cache_off:
        assert not (cache / "index").exists() and list((cache / "tmp").iterdir()) == []
        return
    (written,) = (cache / "index").iterdir()  # the whole index alone, named: nothing half-written beside it
    with open_source(path) as src:  # whose checksum holds for a reader that hashes it all
        ref = src.select()
        reopened = index_cache.open_index(str(written), index_cache.key_for(src, ref), src, ref)
        assert reopened is not None and reopened.analysed
        assert build_report(reopened, src.images, path) == here


def test_a_small_image_comes_whole_as_before(cache):
    path = str(DATA / "docker-legacy.tar")  # 68 paths: far fewer than ``EARLY_AT``
    shown = []
    with open_source(path) as src:
        image = load_worker.load(src, src.select(), Monitor(path), on_files=shown.append)
    assert shown == [] and image.analysed and image.waste is not None


def test_files_that_cannot_be_read_back_early_leave_the_whole_image_to_come(cache, monkeypatch):
    path = str(DATA / "docker-legacy.tar")
    real = index_cache.open_index
    opened = []

    def damaged_at_first(file, *args):  # the files' index, damaged (or gone) as the worker said it
        opened.append(os.path.basename(file))
        return None if len(opened) == 1 else real(file, *args)

    monkeypatch.setattr(index_cache, "open_index", damaged_at_first)
    shown = []
    with open_source(path) as src:
        image = load_worker.load(src, src.select(), Monitor(path), on_files=shown.append, early_at=0)
        assert shown == [] and image.analysed and image.file_count == 68
    assert opened[0].startswith(index_cache.PARTIAL) and len(opened) == 2
    assert [p.name for p in (cache / "index").iterdir()] == [opened[1]]  # the partial one removed
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("cache_off", [False, True])
def test_files_read_back_late_are_still_shown_early(cache, monkeypatch, cache_off):
    """A window busy painting may read the files' index only once the worker has written the
    whole one and ended (a small image's accounting takes milliseconds), and another load's
    sweep of the folder may come first: the files are shown all the same, and their file is
    gone once the load is done."""
    import time

    if cache_off:
        monkeypatch.setenv("LAYER_EXPLORER_NO_INDEX_CACHE", "1")
    path = str(DATA / "docker-legacy.tar")
    real = index_cache.open_index
    late = []

    def after_the_whole(file, *args):
        folder = os.path.dirname(file)
        if os.path.basename(file).startswith(index_cache.PARTIAL):  # the files' index: read late
            deadline = time.monotonic() + 30
            while not any(not n.startswith(index_cache.PARTIAL) for n in os.listdir(folder)) \
                    or multiprocessing.active_children():
                assert time.monotonic() < deadline, "the worker never wrote the whole index and ended"
                time.sleep(0.01)
            index_cache.evict(where=folder)  # as another load's would
            late.append(file)
        return real(file, *args)

    monkeypatch.setattr(index_cache, "open_index", after_the_whole)
    shown = []
    with open_source(path) as src:
        image = load_worker.load(src, src.select(), Monitor(path), on_files=shown.append, early_at=0)
    assert len(late) == 1 and not os.path.exists(late[0])  # read after the whole, then removed
    assert len(shown) == 1 and not shown[0].analysed and shown[0].tree is image.tree
    assert image.analysed and image.file_count == 68
    if cache_off:
        assert list((cache / "tmp").iterdir()) == []  # the private folder, gone once mapped
    else:
        assert [p.name for p in (cache / "index").iterdir()] == [index_cache.key_for(src, src.select())]
    assert multiprocessing.active_children() == []


def test_a_cancel_before_the_files_are_read_leaves_no_file_behind(cache, monkeypatch):
    """The files' index said, but the cancel comes first: it is not left in the cache's folder
    (it would stay there unread, uncounted, until the window ended). What the worker was
    writing when it was stopped is another matter: its own, swept once it has ended."""
    path = str(DATA / "docker-legacy.tar")
    monitor = Monitor(path)
    real = load_worker._next_message
    said = []

    def cancelled_first(*args):
        message = real(*args)
        if isinstance(message, load_worker.Shown):
            assert os.path.exists(message.path)
            said.append(message.path)
            monitor.cancelled = True  # the user closes the tab just as the worker says it
            return None
        return message

    monkeypatch.setattr(load_worker, "_next_message", cancelled_first)
    with open_source(path) as src:
        with pytest.raises(Cancelled):
            load_worker.load(src, src.select(), monitor, on_files=lambda image: None, early_at=0)
    assert monitor.cancelled and len(said) == 1 and not os.path.exists(said[0])
    mine = f"{index_cache.PARTIAL}{os.getpid()}-"
    assert [p.name for p in (cache / "index").iterdir() if p.name.startswith(mine)] == []
    assert multiprocessing.active_children() == []


def test_a_cancel_once_the_files_are_shown_gives_no_image(cache):
    path = str(DATA / "docker-legacy.tar")
    monitor = Monitor(path)
    shown = []

    def cancel(image):
        shown.append(image)
        monitor.cancelled = True  # the user closes the tab once the files show

    with open_source(path) as src:
        with pytest.raises(Cancelled):
            load_worker.load(src, src.select(), monitor, on_files=cancel, early_at=0)
    assert len(shown) == 1
    assert multiprocessing.active_children() == []
