"""Access points of big gzip layers: previews deep in a layer read the same bytes, quickly,
after a reopen too; damaged or misfitting points are dropped, never used."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from explorer.formats import gzip_access
from explorer.formats.source import open_source
from explorer.image.content import read_entry
from explorer.image.loader import load_image
from explorer.model.errors import ExplorerError
from tests.builders import f, layer_tar, oci_archive

DATA = Path(__file__).parent / "data"

pytestmark = pytest.mark.skipif(not gzip_access.available(), reason="rapidgzip is not installed")


@pytest.fixture(scope="module", params=["gzip", "gzip-chunks"])
def archive(tmp_path_factory, request) -> Path:
    """An OCI archive whose one gzip layer is 12 MiB of files, half of each incompressible (so
    the blob spans several access points) and half repeats (read back through a point's window)."""
    rng = random.Random(7)
    files = [f(f"data/part-{i:02d}.bin", rng.randbytes(128 << 10) + rng.randbytes(8 << 10) * 16) for i in range(48)]
    path = tmp_path_factory.mktemp("gz") / "big-gzip.oci.tar"
    path.write_bytes(oci_archive([layer_tar(files)], compress=request.param))  # (chunks: a gzip member per 4 MiB, as eStargz)
    return path


@pytest.fixture
def used(monkeypatch) -> list[int]:
    """How many reads started from access points."""
    calls: list[int] = []
    real = gzip_access.reader

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(gzip_access, "reader", counting)
    return calls


def _files(image):
    return sorted((e for e in image.tree.merged() if e.type == "file"), key=lambda e: e.offset)


def test_files_read_through_access_points_are_the_same_bytes(archive, cache, used):
    with open_source(str(archive)) as source:
        image = load_image(source, source.select(), cache=False)
        scan, blob = image.scans[0], image.blobs[0]
        assert gzip_access.worth_it(source.container, scan) and scan.access is None
        slow = {e.path: read_entry(source, image, e, offset=1000, limit=5000) for e in _files(image)}
        assert not used
        gzip_access.keep([scan], gzip_access.build(source.container, blob), disk=True)
        assert scan.access is None and gzip_access.saved(scan)  # on disk, not held in memory
        fast = {e.path: read_entry(source, image, e, offset=1000, limit=5000) for e in _files(image)}
        assert fast == slow and len(fast) == 48 and len(used) == 48
    saved = list((cache / "access").iterdir())
    assert [p.name for p in saved] == [scan.blob_digest.split(":")[-1]]  # by blob digest


def test_a_reopen_uses_the_saved_points(archive, cache, used, monkeypatch):
    with open_source(str(archive)) as source:
        image = load_image(source, source.select(), cache=False)
        gzip_access.keep([image.scans[0]], gzip_access.build(source.container, image.blobs[0]), disk=True)
        deepest = _files(image)[-1]
        want = read_entry(source, image, deepest)
    with open_source(str(archive)) as source:  # as after a restart: nothing in memory
        image = load_image(source, source.select(), cache=False)
        used.clear()
        assert image.scans[0].access is None
        assert read_entry(source, image, image.tree.entry_at(deepest.path)) == want
        assert used  # through the points in the cache folder
        used.clear()
        monkeypatch.setenv("LAYER_EXPLORER_NO_INDEX_CACHE", "1")  # the index cache turned off meanwhile
        assert read_entry(source, image, image.tree.entry_at(deepest.path)) == want and used  # the points still serve


def test_points_that_do_not_fit_the_blob_are_dropped(archive, cache):
    with open_source(str(archive)) as source:
        image = load_image(source, source.select(), cache=False)
        scan = image.scans[0]
        want = read_entry(source, image, _files(image)[-1])
        gzip_access.keep([scan], b"\x00" * 100_000, disk=True)  # a damaged file in the cache
        assert read_entry(source, image, _files(image)[-1]) == want
        assert scan.access is None and not list((cache / "access").iterdir())


def test_a_saved_file_with_a_flipped_bit_is_not_used(archive, cache):
    with open_source(str(archive)) as source:
        image = load_image(source, source.select(), cache=False)
        gzip_access.keep([image.scans[0]], gzip_access.build(source.container, image.blobs[0]), disk=True)
    (saved,) = (cache / "access").iterdir()
    data = bytearray(saved.read_bytes())
    data[-100] ^= 0x10  # inside a window: rapidgzip would take it and inflate wrong bytes
    saved.write_bytes(bytes(data))
    with open_source(str(archive)) as source:
        image = load_image(source, source.select(), cache=False)
        assert gzip_access.saved(image.scans[0]) is None and not saved.exists()


def test_a_stopped_build_keeps_nothing(archive, cache):
    with open_source(str(archive)) as source:
        image = load_image(source, source.select(), cache=False)
        with pytest.raises((ExplorerError, RuntimeError, OSError, ValueError)):
            gzip_access.build(source.container, image.blobs[0], stop=lambda: True)
        assert image.scans[0].access is None and not (cache / "access").exists()


def test_small_layers_and_streams_go_without(tmp_path, cache):
    small = tmp_path / "small.oci.tar"
    small.write_bytes(oci_archive([layer_tar([f("a.txt", "hello")])]))
    with open_source(str(small)) as source:
        image = load_image(source, source.select(), cache=False)
        assert not gzip_access.worth_it(source.container, image.scans[0])  # inflating it all is as quick


@pytest.mark.parametrize("name", ["umoci.oci-layout", "test-oci-estargz-image.tar", "test-oci-gzip-image.tar"])
def test_real_layers_read_the_same_through_access_points(name, cache, monkeypatch, used):
    monkeypatch.setattr(gzip_access, "MIN_TAR", 0)  # small real layers stand for big ones
    with open_source(str(DATA / name)) as source:
        image = load_image(source, source.select(), cache=False)
        files = _files(image)
        slow = {e.path: read_entry(source, image, e) for e in files}
        made = 0
        for blob, scan in zip(image.blobs, image.scans):
            if gzip_access.worth_it(source.container, scan):
                gzip_access.keep([scan], gzip_access.build(source.container, blob), disk=False)
                made += 1
        assert made and {e.path: read_entry(source, image, e) for e in files} == slow and used


def test_a_blob_listed_twice_is_inflated_once_for_both_layers(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(gzip_access, "MIN_TAR", 0)  # a small layer stands for a big one
    layer = layer_tar([f("a.txt", "hello " * 1000)])
    twice = tmp_path / "twice.oci.tar"
    twice.write_bytes(oci_archive([layer, layer]))
    built = []
    real = gzip_access.build
    monkeypatch.setattr(gzip_access, "build", lambda *a: built.append(a[1]) or real(*a))
    with open_source(str(twice)) as source:
        image = load_image(source, source.select(), cache=False)
        todo = gzip_access.missing(source.container, list(image.blobs), list(image.scans))
        assert list(todo) == [image.blobs[0]] and todo[image.blobs[0]] == list(image.scans)
        gzip_access.make(source.container, todo, disk=False)
        assert built == [image.blobs[0]] and all(s.access for s in image.scans)
        assert gzip_access.missing(source.container, list(image.blobs), list(image.scans)) == {}  # made: nothing left
