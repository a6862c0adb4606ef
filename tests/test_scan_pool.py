"""Compressed layers scanned ahead in worker processes give exactly what one process gives."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from explorer.image import scan_pool
from explorer.model.errors import Cancelled
from explorer.image.loader import load_image
from explorer.model.progress import Monitor
from explorer.formats.source import open_source
from explorer.report import build_report

DATA = Path(__file__).parent / "data"


@pytest.fixture
def small_pool(monkeypatch):
    monkeypatch.setattr(scan_pool, "POOL_MIN_BYTES", 0)  # the fixtures are small; the rule is the same
    monkeypatch.setattr(scan_pool, "cores", lambda: 2)


@pytest.mark.parametrize("name", ["buildah-overlay.oci.tar", "buildah-overlay.oci-zstd.tar", "test-oci-estargz-image.tar"])
def test_pooled_scans_equal_one_process(small_pool, name):
    path = str(DATA / name)
    reports = []
    for parallel in (False, True):
        with open_source(path) as src:
            assert scan_pool.worth_it(src, [l.blob for l in src.select().locator.layers])
            img = load_image(src, src.select(), parallel=parallel)
            reports.append(build_report(img, src.images, path))
    assert reports[0] == reports[1]


def test_a_plain_or_small_image_is_scanned_here():
    with open_source(str(DATA / "docker-legacy.tar")) as src:  # plain layers: nothing to inflate
        assert not scan_pool.worth_it(src, [l.blob for l in src.select().locator.layers])
    with open_source(str(DATA / "buildah-overlay.oci.tar")) as src:  # 1 MB of gzip: not worth two interpreters
        assert not scan_pool.worth_it(src, [l.blob for l in src.select().locator.layers])


def test_cancel_stops_the_workers(small_pool):
    with open_source(str(DATA / "buildah-overlay.oci.tar")) as src:
        monitor = Monitor(src.info.path)
        blobs = [l.blob for l in src.select().locator.layers]
        scans = scan_pool.scans(src, blobs, monitor)
        first = next(scans)
        assert first.members
        monitor.cancelled = True
        with pytest.raises(Cancelled):
            list(scans)
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]  # none left running


def test_without_worker_processes_the_layers_are_scanned_here(small_pool, monkeypatch):
    asked = []

    def no_pool(*_a, **_k):
        asked.append(True)
        raise OSError(38, "Function not implemented")  # as where POSIX semaphores are missing

    monkeypatch.setattr(scan_pool, "ProcessPoolExecutor", no_pool)
    path = str(DATA / "buildah-overlay.oci.tar")
    with open_source(path) as src:
        img = load_image(src, src.select(), parallel=True)
        assert len(img.layers) == 4 and img.tree.entry_at("/data/modify-me.txt") is not None
    assert asked  # the pool was asked for, and the layers were read all the same


def test_a_killed_worker_leaves_its_layers_to_the_loader(small_pool):
    import os
    import signal

    path = str(DATA / "buildah-overlay.oci.tar")
    with open_source(path) as src:
        blobs = [l.blob for l in src.select().locator.layers]
        alone = [src.container.scan_layer(b, Monitor(path)).members for b in blobs]
        scans = scan_pool.scans(src, blobs, Monitor(path))
        got = [next(scans).members]
        for child in multiprocessing.active_children():  # as the kernel's out-of-memory killer would
            os.kill(child.pid, signal.SIGKILL)
        got += [scan.members for scan in scans]
    assert got == alone
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]


def test_a_layout_folder_is_scanned_by_workers_too(small_pool, tmp_path):
    import tarfile

    folder = tmp_path / "layout"
    with tarfile.open(DATA / "buildah-overlay.oci.tar") as tar:
        tar.extractall(folder, filter="data")
    reports = []
    for parallel in (False, True):
        with open_source(str(folder)) as src:
            reports.append(build_report(load_image(src, src.select(), parallel=parallel), src.images, str(folder)))
    assert reports[0] == reports[1]
