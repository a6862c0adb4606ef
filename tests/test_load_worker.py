"""Loading in a process of its own: the same image as loading here, typed failures, a cancel that ends it."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from explorer.formats.source import open_source
from explorer.image import index_cache, load_worker
from explorer.image.loader import load_image
from explorer.model.errors import Cancelled, ExplorerError
from explorer.model.progress import Monitor
from explorer.report import build_report
from tests.builders import docker_archive, f, layer_tar

DATA = Path(__file__).parent / "data"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    return tmp_path / "cache"


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


def test_nowhere_to_write_the_index_means_no_worker_not_a_failure(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(blocker / "cache"))  # a folder under a file
    path = str(DATA / "docker-legacy.tar")
    with open_source(path) as src:
        with pytest.raises(load_worker.Unavailable):  # the window then loads in its own process
            load_worker.load(src, src.select(), Monitor(path))
    assert multiprocessing.active_children() == []


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


def _sizes_here(path: str) -> list[dict[str, int]]:
    """Every layer's folder sizes but the last's, worked out in this process."""
    from explorer.tree.views import MERGED, TreeView

    with open_source(path) as src:
        image = load_image(src, src.select(), cache=False)
        return [TreeView(image.tree, layer, MERGED).totals() for layer in range(len(image.layers) - 1)]


def _load_with_sizes(path: str, timeout: float = 30) -> tuple:
    """Load in a worker that also works out the folder sizes; what it mapped, and what came later."""
    import threading

    came: list = []
    arrived = threading.Event()
    with open_source(path) as src:
        image = load_worker.load(src, src.select(), Monitor(path), lambda im, sizes: (came.append((im, sizes)), arrived.set()))
    assert arrived.wait(timeout)
    return image, came[0]


def test_a_big_images_worker_goes_on_to_every_layers_folder_sizes(cache, monkeypatch):
    monkeypatch.setattr(load_worker, "SIZES_FROM", 10)  # a big image is one of a million paths; here, ten
    path = str(DATA / "docker-legacy.tar")
    image, (said_of, sizes) = _load_with_sizes(path)
    assert said_of is image and list(sizes) == _sizes_here(path) and len(sizes) == 3  # 4 layers: the last is the final image's
    assert any(sizes) and sizes[0] != sizes[2]
    (index,) = [p for p in (cache / "index").iterdir() if not p.name.endswith(".sizes")]
    with open_source(path) as src:  # kept beside the index: a reopen has them too
        assert index_cache.load(src, src.select()) is not None
        key = index_cache.key_for(src, src.select())
    assert index_cache.cached_sizes(key, 4) == sizes
    kept = index.parent / (index.name + ".sizes")
    kept.write_bytes(b"layer-explorer sizes\n" + bytes(40))  # damaged: not trusted, and removed
    assert index_cache.cached_sizes(key, 4) is None and not kept.exists()
    kept.symlink_to("/dev/zero")  # not a file: never read (it would never end)
    assert index_cache.cached_sizes(key, 4) is None
    import time

    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert multiprocessing.active_children() == []


def test_a_small_image_or_the_cache_off_leaves_nothing_waiting_and_nothing_behind(cache, monkeypatch):
    path = str(DATA / "docker-legacy.tar")
    called = []
    with open_source(path) as src:  # under the threshold: no sizes worked out, the worker ended
        load_worker.load(src, src.select(), Monitor(path), lambda *a: called.append(a))
    assert not load_worker.sizes_coming() and multiprocessing.active_children() == [] and not called
    monkeypatch.setenv("LAYER_EXPLORER_NO_INDEX_CACHE", "1")
    monkeypatch.setattr(load_worker, "SIZES_FROM", 10)
    image, (_, sizes) = _load_with_sizes(path)
    assert list(sizes) == _sizes_here(path)
    import time

    deadline = time.monotonic() + 10
    while (load_worker.sizes_coming() or list((cache / "tmp").iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list((cache / "tmp").iterdir()) == []  # the private index and its sizes, gone with the worker
