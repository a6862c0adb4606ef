"""Layers read by a child process on the second core give exactly what one process gives."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from explorer.formats import container as containers
from explorer.formats.source import open_source
from explorer.image import parallel
from explorer.image.loader import load_image
from explorer.model.errors import Cancelled
from explorer.model.progress import Monitor
from explorer.report import build_report

DATA = Path(__file__).parent / "data"


@pytest.fixture
def two_cores(monkeypatch):
    from explorer.image import loader

    monkeypatch.setattr(parallel, "spare_core", lambda: True)
    monkeypatch.setattr(loader, "spare_core", lambda: True)  # (imported there by name)
    monkeypatch.setattr(parallel, "SPAWN_MIN_BYTES", 0)  # the fixtures are small; the rule is the same


def _report(path: str, mode) -> dict:
    with open_source(path) as src:
        return build_report(load_image(src, src.select(), parallel=mode), src.images, path)


def _count_scans_here(monkeypatch) -> list[str]:
    """The blobs this process scans itself (a forked child's scans are not counted here)."""
    here, pid = [], os.getpid()
    for cls in (containers.TarFileContainer, containers.FolderContainer):
        real = cls.scan_layer

        def scan(self, name, monitor, real=real):
            if os.getpid() == pid:
                here.append(name)
            return real(self, name, monitor)

        monkeypatch.setattr(cls, "scan_layer", scan)
    return here


@pytest.mark.parametrize("name", ["test-docker-image.tar", "docker-legacy.tar", "hardlinks.docker.tar",
                                  "test-oci-gzip-image.tar", "umoci.oci-layout"])
@pytest.mark.parametrize("mode", [True, "process"])
def test_layers_from_the_child_give_the_same_report(two_cores, monkeypatch, name, mode):
    path = str(DATA / name)
    alone = _report(path, False)
    here = _count_scans_here(monkeypatch)
    with open_source(path) as src:
        blobs = [l.blob for l in src.select().locator.layers]
    assert _report(path, mode) == alone
    assert here[:1] == blobs[:1] and set(here) <= set(blobs)  # the rest as the child's had not come yet


@pytest.mark.parametrize("spawned", [False, True])
def test_the_loader_takes_the_layers_the_child_has_sent(two_cores, monkeypatch, spawned):
    path = str(DATA / "test-docker-image.tar")
    here = _count_scans_here(monkeypatch)
    with open_source(path) as src:
        blobs = [l.blob for l in src.select().locator.layers]
        alone = [[tuple(m) for m in src.container.scan_layer(b, Monitor(path)).members] for b in dict.fromkeys(blobs)]
        here.clear()
        child = parallel.LayersElsewhere(src.container, blobs, path if spawned else None)
        child.proc.join(60)  # all sent (a small image's scans fit in the pipe), and dive's numbers
        got = [[tuple(m) for m in scan.members] for scan in child.scans(Monitor(path))]
        assert got == alone
        assert here == blobs[:1]  # only the first layer was read here
        assert child.result() == parallel._compute(src.container, blobs)
        assert child._numbers is not None  # from the child (computed here, they are not kept there)


def test_a_layer_the_child_has_not_sent_yet_is_read_here(two_cores, monkeypatch):
    import threading

    path = str(DATA / "test-docker-image.tar")
    go = threading.Event()
    real = parallel._work
    monkeypatch.setattr(parallel, "_work", lambda *args: (go.wait(60), real(*args)))  # a child slow to start
    here = _count_scans_here(monkeypatch)
    with open_source(path) as src:
        blobs = [l.blob for l in src.select().locator.layers]
        child = parallel.LayersElsewhere(src.container, blobs)  # (forked: the event is its own copy)
        scans = list(child.scans(Monitor(path)))
        assert here == list(dict.fromkeys(blobs)) and len(scans) == len(here)  # none waited for
        os.kill(child.proc.pid, signal.SIGKILL)
        assert child.result() == parallel._compute(src.container, blobs)


def test_a_killed_child_leaves_its_layers_to_the_loader(two_cores):
    path = str(DATA / "test-docker-image.tar")
    with open_source(path) as src:
        blobs = [l.blob for l in src.select().locator.layers]
        alone = [[tuple(m) for m in src.container.scan_layer(b, Monitor(path)).members] for b in dict.fromkeys(blobs)]
        numbers = parallel._compute(src.container, blobs)
        child = parallel.LayersElsewhere(src.container, blobs)
        scans = child.scans(Monitor(path))
        got = [next(scans).members, next(scans).members]
        os.kill(child.proc.pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
        got += [scan.members for scan in scans]
        assert [[tuple(m) for m in members] for members in got] == alone
        assert child.result() == numbers  # computed here instead
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]


def test_a_child_that_fails_leaves_the_error_to_the_loader(two_cores, monkeypatch):
    path = str(DATA / "test-docker-image.tar")
    with open_source(path) as src:
        blobs = [l.blob for l in src.select().locator.layers]
        real = src.container.scan_layer
        monkeypatch.setattr(src.container, "scan_layer", lambda name, monitor: (_ for _ in ()).throw(OSError("gone")))
        child = parallel.LayersElsewhere(src.container, blobs)  # (forked: its scans fail)
        monkeypatch.setattr(src.container, "scan_layer", real)
        child.proc.join(60)  # it has said so
        scans = list(child.scans(Monitor(path)))
        assert len(scans) == len(dict.fromkeys(blobs)) and child.proc is None
        assert child.result() == parallel._compute(src.container, blobs)


def test_waiting_for_the_child_ends_when_the_load_is_cancelled(two_cores, monkeypatch):
    import time

    monkeypatch.setattr(parallel, "_work", lambda *args: time.sleep(60))  # a child that never answers
    path = str(DATA / "test-docker-image.tar")
    with open_source(path) as src:
        blobs = [l.blob for l in src.select().locator.layers]
        child = parallel.LayersElsewhere(src.container, blobs)
        proc = child.proc
        monitor = Monitor(path)
        scans = child.scans(monitor)
        next(scans)  # the first layer, read here
        monitor.cancelled = True
        start = time.monotonic()
        with pytest.raises(Cancelled):
            next(scans)
        child.cancel()
        assert time.monotonic() - start < 5 and proc.exitcode is not None  # killed and reaped


def _many_files(tmp_path, layers=3, files=6000):
    """An archive whose layers' scans are each bigger than a pipe holds."""
    from tests.builders import docker_archive, f, layer_tar

    path = tmp_path / "many.tar"
    path.write_bytes(docker_archive([layer_tar([f(f"l{k}/file-{i:05}") for i in range(files)]) for k in range(layers)]))
    return str(path)


def test_a_forked_child_whose_loader_is_gone_ends(two_cores, tmp_path):
    path = _many_files(tmp_path)
    with open_source(path) as src:
        blobs = [l.blob for l in src.select().locator.layers]
        child = parallel.LayersElsewhere(src.container, blobs)
        proc = child.proc
        child._results.close()  # as when the loader is killed: nobody reads what the child sends
        proc.join(30)
        assert proc.exitcode is not None  # it did not wait for a reader forever


def test_the_child_stops_reading_past_the_entry_budget(two_cores, tmp_path):
    path = _many_files(tmp_path)
    with open_source(path) as src:
        blobs = [l.blob for l in src.select().locator.layers]
        child = parallel.LayersElsewhere(src.container, blobs, limit=8000)  # layer 1 fits, layer 2 does not
        scans = list(child.scans(Monitor(path)))
        assert [len(s.members) for s in scans] == [6000] * 3  # the loader read what the child would not
        assert child.result() == parallel._compute(src.container, blobs) and child._numbers is None


def test_a_child_forked_after_the_first_layer_does_not_read_it_again(two_cores, monkeypatch, tmp_path):
    log = tmp_path / "scans"
    real = containers.TarFileContainer.scan_layer

    def scan(self, name, monitor):
        with open(log, "a") as f:  # (appends from both processes)
            f.write(f"{os.getpid()} {name}\n")
        return real(self, name, monitor)

    monkeypatch.setattr(containers.TarFileContainer, "scan_layer", scan)
    path = str(DATA / "test-docker-image.tar")
    alone = _report(path, False)
    log.unlink()
    assert _report(path, True) == alone  # the command line's way: forked once the first layer is read
    with open_source(path) as src:
        first = src.select().locator.layers[0].blob
    reads = [line.split() for line in log.read_text().splitlines()]
    assert [pid for pid, name in reads if name == first] == [str(os.getpid())]  # read here, once
    assert {pid for pid, name in reads} - {str(os.getpid())}  # the child read the others


def test_numbers_are_computed_here_when_the_dive_child_fails(two_cores, monkeypatch):
    path = str(DATA / "docker-legacy.tar")
    alone = _report(path, False)
    monkeypatch.setattr(parallel, "_dive", lambda *args: os._exit(1))  # (inherited by the fork)
    assert _report(path, True) == alone
    assert multiprocessing.active_children() == []


def test_the_dive_child_has_the_layers_the_reading_child_hands_over(two_cores):
    path = str(DATA / "test-docker-image.tar")
    with open_source(path) as src:
        blobs = [l.blob for l in src.select().locator.layers]
        child = parallel.LayersElsewhere(src.container, blobs, dive_apart=True)
        assert child.proc is not None and child.dive_proc is None  # the reader starts at once
        scans = list(child.scans(Monitor(path)))
        assert child.dive_proc is not None  # forked once the first layer was read here
        assert len(scans) == len(dict.fromkeys(blobs))
        assert child.result() == parallel._compute(src.container, blobs)
        assert child._numbers is not None and child.dive_proc is None  # from that child, which has ended
    assert multiprocessing.active_children() == []
