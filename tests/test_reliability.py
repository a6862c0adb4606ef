"""Faults survived: verification finds swapped blobs, a full disk stops extraction cleanly,
loads cancelled again and again, an archive changed under the window, an index too big."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.image.extract import ExtractError, extract, select_entries
from explorer.image.loader import load_image
from explorer.formats.source import open_source
from tests.builders import docker_archive, f, layer_tar, members_of, tar_of

DATA = Path(__file__).parent / "data"


def test_verify_passes_a_good_archive_and_names_a_bad_layer(tmp_path, capsys):
    assert main(["report", "--json", "--verify", str(DATA / "docker-legacy.tar")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert [v["ok"] for v in rep["image"]["verification"]] == [True] * 4
    assert main(["report", "--text", "--verify", str(DATA / "docker-legacy.tar")]) == 0
    assert "verified: every layer's blob digest and diff_id match (4 layer(s))" in capsys.readouterr().err
    # a plain layer swapped for another (headers-only reading cannot tell; --verify does)
    good = layer_tar([f("a", "original")])
    raw = docker_archive([good])
    members = members_of(raw)
    name = next(n for n in members if n.endswith("layer.tar"))
    members[name] = layer_tar([f("a", "tampered")])
    bad = tmp_path / "bad.tar"
    bad.write_bytes(tar_of(members))
    assert main(["report", "--json", str(bad)]) == 0  # without --verify: not read, not known
    capsys.readouterr()
    assert main(["report", "--json", "--verify", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert "verification failed for layer(s) 0" in err
    check = json.loads(out)["image"]["verification"][0]
    assert not check["ok"] and check["expected_diff_id"] != check["actual_diff_id"]


def test_a_full_disk_stops_extraction_and_leaves_no_half_file(tmp_path, monkeypatch):
    src = open_source(str(DATA / "docker-legacy.tar"))
    img = load_image(src, src.select())
    real_write = os.write
    written = []

    def full(fd, data):
        if len(written) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(ExtractError, match="No space left"):
        extract(src, img, select_entries(img), str(tmp_path / "out"))
    monkeypatch.setattr(os, "write", real_write)
    out = tmp_path / "out"
    files = [p for p in out.rglob("*") if p.is_file() and not p.is_symlink()]
    assert files  # what was complete stays...
    for p in files:  # ...and nothing half-written does
        assert p.stat().st_size == img.tree.entry_at("/" + str(p.relative_to(out))).size, p
    src.close()


def test_an_index_that_would_not_fit_is_refused(tmp_path, monkeypatch, capsys):
    import explorer.image.loader as loader

    monkeypatch.setattr(loader, "available_memory", lambda: 10_000)
    assert main(["report", str(DATA / "docker-legacy.tar")]) == 2
    assert "more than the" in capsys.readouterr().err


@pytest.mark.gui
def test_the_window_survives_faults(qtbot, tmp_path, monkeypatch):
    pytest.importorskip("PySide6.QtWidgets")
    from PySide6.QtCore import QCoreApplication, QSettings, QThreadPool

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    from explorer.app import create_main_window

    window = create_main_window()
    qtbot.addWidget(window)
    archive = tmp_path / "img.tar"
    shutil.copy(DATA / "docker-legacy.tar", archive)
    for _ in range(100):  # cancelled and restarted again and again
        window.open_paths([str(archive)])
        window.loader.cancel()
    assert QThreadPool.globalInstance().waitForDone(60_000)
    QCoreApplication.processEvents()
    assert window.tabs.count() == 0
    with qtbot.waitSignal(window.image_loaded, timeout=30_000) as blocker:
        window.open_paths([str(archive)])
    view = blocker.args[0]
    archive.write_bytes(b"rewritten")  # the archive changes under the open window
    with qtbot.waitSignal(view.preview.background.result, timeout=10_000):
        view.select_path("/etc/passwd")
    assert view.preview.current_kind() == "message" and "changed since it was opened" in view.preview.message.text()
    archive.unlink()  # and then disappears
    with qtbot.waitSignal(view.preview.background.result, timeout=10_000):
        view.select_path("/etc/group")
    assert view.preview.current_kind() == "message"
    view.verify()
    with qtbot.waitSignal(view.verification.finished, timeout=30_000):
        pass
    assert any(not c.ok for c in view.verify_result)
    broken = tmp_path / "broken.tar"  # opens (manifest and config), then fails in its loading process
    broken.write_bytes(docker_archive([layer_tar([f("etc/hostname", "box\n")]), b"\x1f\x8b\x08\x00" + b"junk" * 100]))
    with qtbot.waitSignal(window.load_failed, timeout=30_000) as failed:
        window.open_paths([str(broken)])
    assert str(broken) in failed.args[0] and "unexpected" not in failed.args[0]
    # the memory check, where the tree is built in this process (an engine's stream)
    monkeypatch.setattr("explorer.image.load_worker.suitable", lambda source, ref: False)
    monkeypatch.setattr("explorer.image.loader.available_memory", lambda: 10_000)
    with qtbot.waitSignal(window.load_failed, timeout=30_000) as failed:
        window.open_paths([str(DATA / "docker-legacy.tar")])
    assert "needs about" in failed.args[0]
    for d in window.dialogs:
        d.close()


def _zeros_layer(gib: float) -> bytes:
    """A gzip layer holding one file of ``gib`` GiB of zeros (a few MB: slow to read, quick to make)."""
    import tarfile
    import zlib

    size = int(gib * (1 << 30))
    info = tarfile.TarInfo("zeros.bin")
    info.size = size
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts = [packer.compress(info.tobuf(tarfile.PAX_FORMAT))]
    chunk = bytes(1 << 20)
    for _ in range(size >> 20):
        parts.append(packer.compress(chunk))
    parts.append(packer.compress(bytes(1024)))  # the end marker
    parts.append(packer.flush())
    return b"".join(parts)


def _noise_layer(mib: int) -> bytes:
    """A gzip layer (stored, not squeezed: quick to make) of one file of ``mib`` MiB of noise:
    big enough that a load starts its helpers, layer scanners and the dive child."""
    import random
    import tarfile
    import zlib

    data = random.Random(5).randbytes(mib << 20)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("noise.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    packer = zlib.compressobj(0, zlib.DEFLATED, 31)
    return packer.compress(out.getvalue()) + packer.flush()


def _group(pgid: int) -> list[int]:
    """The processes alive in a process group (Linux's /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # not a process, or gone while looking
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


@pytest.mark.gui
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process groups from /proc")
def test_cancel_ends_a_long_load_at_once(qtbot, tmp_path):
    pytest.importorskip("PySide6.QtWidgets")
    import multiprocessing

    from PySide6.QtCore import QSettings

    from tests.builders import oci_archive

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    archive = tmp_path / "slow.tar"
    archive.write_bytes(oci_archive([_zeros_layer(1.9), _noise_layer(72)], compress="none"))  # gzip already; 3 s to read
    from explorer.app import create_main_window

    window = create_main_window()
    qtbot.addWidget(window)
    stages: list[str] = []
    window.loader.progress.connect(lambda p: stages.append(p.stage))
    window.open_paths([str(archive)])
    qtbot.waitUntil(lambda: any(s.startswith("reading layer") for s in stages), timeout=30_000)
    (worker,) = multiprocessing.active_children()  # its loading process is at work
    pid = worker.pid
    qtbot.waitUntil(lambda: len(_group(pid)) >= 2, timeout=30_000)  # and its helpers (scanners, or dive's child)
    with qtbot.waitSignal(window.loader.cancelled, timeout=5_000):
        window.loader.cancel()
    qtbot.waitUntil(lambda: not multiprocessing.active_children(), timeout=1_000)  # ended, not left to finish
    qtbot.waitUntil(lambda: not _group(pid), timeout=1_000)  # helpers and all
    qtbot.waitUntil(lambda: window.tabs.count() == 0, timeout=3_000)


def test_sigterm_ends_the_window_as_quit_does(tmp_path):
    """A logout or ``kill`` closes the window properly: its settings are written (the size it
    had included) and it exits 0, where the signal's default ends it on the spot."""
    import signal
    import subprocess
    import sys

    from tests.services import wait_until

    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LAYER_EXPLORER_CACHE": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "TMPDIR": str(temporary)}
    env.pop("LAYER_EXPLORER_NO_INDEX_CACHE", None)
    legacy = Path(__file__).parent / "data" / "docker-legacy.tar"
    log = tmp_path / "log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "explorer", str(legacy)], env=env, stdout=out, stderr=out)
    try:
        index = tmp_path / "cache" / "index"
        wait_until(lambda: index.exists() and any(not p.name.startswith(".") for p in index.iterdir()), 60,
                   "the window to load the sample")  # its loading process wrote the index: the window runs
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    conf = (tmp_path / "config" / "layer-explorer" / "layer-explorer.conf").read_text()
    assert "geometry=" in conf, (conf, log.read_text())  # (written as the window closes)
    assert list(temporary.iterdir()) == []  # nothing left in the temporary folder (the fork server's socket)


def test_with_nowhere_to_write_an_index_the_window_holds_the_image_and_says_so(tmp_path, monkeypatch):
    import tempfile

    from explorer.model.progress import Monitor
    from explorer.ui.workers import load_elsewhere

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # neither the cache's folder nor a temporary one can be made: each would be under a file
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(blocker / "cache"))
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    tempfile.tempdir = str(blocker / "tmp")  # (a bad TMPDIR would only send it on to /tmp)
    path = str(DATA / "docker-legacy.tar")
    try:
        with open_source(path) as src:
            image = load_elsewhere(src, src.select(), Monitor(path))
            assert not image.from_cache and image.file_count == 68
            assert image.tree.entry_at("/data/modify-me.txt").size > 0
    finally:
        tempfile.tempdir = None
    (note,) = image.warnings
    assert "held in memory" in note and str(blocker / "cache") in note and "free some disk space" in note
