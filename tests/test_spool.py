"""An engine's stream kept in a local file: read like the archive it is, never left behind."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from explorer.formats.source import open_container, open_source
from explorer.formats.spool import SpooledContainer, keep_stream
from explorer.image.loader import load_image
from explorer.model.errors import Cancelled, SourceError
from explorer.model.progress import Monitor
from explorer.report import build_report

DATA = Path(__file__).parent / "data"
LEGACY = DATA / "docker-legacy.tar"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))


def _opener(data: bytes, fail_at: int | None = None):
    def opener():
        pos = 0

        def read(n: int = -1) -> bytes:
            nonlocal pos
            if fail_at is not None and pos >= fail_at:
                raise SourceError("docker://app", "the engine stopped sending the image")
            part = data[pos:pos + min(n, 4096)]
            pos += len(part)
            return part

        return read

    return opener


def _scratch(tmp_path) -> list[Path]:
    return sorted((tmp_path / "cache" / "tmp").glob("engine-*"))


def test_a_kept_stream_reads_as_the_archive_it_copies(tmp_path):
    kept = keep_stream(_opener(LEGACY.read_bytes()), "docker://app", "the save stream", Monitor())
    assert Path(kept).read_bytes() == LEGACY.read_bytes() and _scratch(tmp_path) == [Path(kept)]
    source = open_container("docker://app", SpooledContainer(kept, "docker://app", Monitor()))
    with source, open_source(str(LEGACY)) as archive:
        assert source.info.path == "docker://app"
        mine = build_report(load_image(source, source.select(), cache=False), source.images, "x")
        theirs = build_report(load_image(archive, archive.select(), cache=False), archive.images, "x")
        assert mine == theirs
    assert _scratch(tmp_path) == []  # closed: the copy is deleted


def test_a_stream_cut_short_or_cancelled_leaves_no_copy(tmp_path):
    with pytest.raises(SourceError, match="stopped sending"):
        keep_stream(_opener(LEGACY.read_bytes(), fail_at=100_000), "docker://app", "the save stream", Monitor())
    assert _scratch(tmp_path) == []
    monitor = Monitor()
    monitor.cancelled = True
    with pytest.raises(Cancelled):
        keep_stream(_opener(LEGACY.read_bytes()), "docker://app", "the save stream", monitor)
    assert _scratch(tmp_path) == []


def test_a_full_disk_is_one_sentence_naming_the_image(tmp_path, monkeypatch):
    import explorer.formats.spool as spool

    class Full:
        def __init__(self, fd, mode):
            import os

            os.close(fd)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool.os, "fdopen", Full)
    with pytest.raises(SourceError) as caught:
        keep_stream(_opener(LEGACY.read_bytes()), "docker://app", "the save stream", Monitor())
    text = str(caught.value)
    assert text.startswith("docker://app: could not keep a copy") and "No space left" in text and "free some disk space" in text
    assert _scratch(tmp_path) == []


@pytest.mark.parametrize("data", [b"not a tar at all" * 64, b""])
def test_a_copy_that_is_not_an_archive_names_the_image_and_goes(tmp_path, data):
    kept = keep_stream(_opener(data), "docker://app", "the save stream", Monitor())
    with pytest.raises(SourceError) as caught:
        open_container("docker://app", SpooledContainer(kept, "docker://app", Monitor()))
    assert str(caught.value).startswith("docker://app: ") and kept not in str(caught.value)
    assert _scratch(tmp_path) == []


def test_a_borrowed_copy_is_left_for_its_owner(tmp_path):
    kept = keep_stream(_opener(LEGACY.read_bytes()), "docker://app", "the save stream", Monitor())
    with open_container("docker://app", SpooledContainer(kept, "docker://app", Monitor(), owner=False)):
        pass
    assert _scratch(tmp_path) == [Path(kept)]  # the loading process opens the window's copy this way


def test_the_sweep_takes_what_a_gone_window_left_and_nothing_in_use(tmp_path):
    import os
    import subprocess
    import sys
    import time

    from explorer.formats.cache import scratch_dir, scratch_prefix

    root = Path(scratch_dir())
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    left = root / f"engine-{gone.stdout.strip()}-abc.tar"  # its window was killed
    mine = root / f"{scratch_prefix('engine-')}def.tar"  # a tab open for days
    nameless = root / "engine-old.tar"  # no process id in the name: a day is the rule
    for path in (left, mine, nameless):
        path.write_bytes(b"x")
    week = time.time() - 7 * 86400
    os.utime(mine, (week, week))
    os.utime(nameless, (week, week))
    scratch_dir()
    assert not left.exists() and mine.exists() and not nameless.exists()


def test_an_engine_images_gzip_layers_are_inflated_by_the_pool_from_the_copy(tmp_path, monkeypatch):
    from explorer.image import scan_pool

    archive = DATA / "buildah-overlay.oci.tar"  # gzip layers, as Docker 25's save may hold
    monkeypatch.setattr(scan_pool, "POOL_MIN_BYTES", 0)  # its small layers stand for big ones
    monkeypatch.setattr(scan_pool, "cores", lambda: 2)
    kept = keep_stream(_opener(archive.read_bytes()), "docker://app", "the save stream", Monitor())
    with open_container("docker://app", SpooledContainer(kept, "docker://app", Monitor())) as source, \
            open_source(str(archive)) as plain:
        blobs = [layer.blob for layer in source.select().locator.layers]
        assert scan_pool.worth_it(source, blobs)

        def not_here(*_a):
            raise AssertionError("scanned in this process, not by the pool from the copy")

        monkeypatch.setattr(source.container, "scan_layer", not_here)  # (the workers are fresh interpreters)
        pooled = list(scan_pool.scans(source, blobs, Monitor()))
        assert [s.members for s in pooled] == [plain.container.scan_layer(b, Monitor()).members for b in blobs]


def test_a_copy_leaves_the_disk_room_to_breathe(tmp_path, monkeypatch):
    import collections

    import explorer.formats.spool as spool

    Usage = collections.namedtuple("Usage", "total used free")
    free = [10 << 30]
    monkeypatch.setattr(spool.shutil, "disk_usage", lambda _p: Usage(0, 0, free[0]))
    monkeypatch.setattr(spool, "LOOK_EVERY", 64 << 10)
    data = LEGACY.read_bytes()
    free[0] = spool.RESERVE - 1  # no room at all
    with pytest.raises(SourceError) as caught:
        keep_stream(_opener(data), "docker://app", "the save stream", Monitor(), expected=len(data))
    assert str(caught.value).startswith("docker://app: no room to keep a copy of the save stream") and "MB free" in str(caught.value)
    assert _scratch(tmp_path) == []
    free[0] = spool.RESERVE + (1 << 20)  # room at the start, then another program fills the disk

    def filling(n):
        free[0] -= n
        return 0

    def opener():
        read = _opener(data)()
        return lambda n: (filling(len(part := read(n))), part)[1]

    with pytest.raises(SourceError) as caught:
        keep_stream(opener, "docker://app", "the save stream", Monitor())
    assert "stopped copying the save stream" in str(caught.value) and "LAYER_EXPLORER_CACHE" in str(caught.value)
    assert _scratch(tmp_path) == []
