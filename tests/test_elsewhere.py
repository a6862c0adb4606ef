"""Comparing and extracting in a worker process: the same answers as here, nothing decoded in
the caller's process, failures said in a sentence, a cancel that leaves no half-written file."""

from __future__ import annotations

import multiprocessing
import io
import os
import tarfile
from pathlib import Path

import pytest

from explorer.formats.source import open_source
from explorer.image import elsewhere, load_worker
from explorer.image.compare import Differences, file_diffs
from explorer.image.extract import ExtractOptions, extract, select_entries
from explorer.image.loader import load_image
from explorer.model.errors import Cancelled, ExplorerError
from explorer.model.progress import Monitor
from tests.builders import d, docker_archive, f, hard, layer_tar, sym, wh

DATA = Path(__file__).parent / "data"


def _two_versions(tmp_path) -> tuple[str, str]:
    """An app's two versions: a shared base, then files added, removed, rewritten (one of the
    same size, told apart by its bytes only), a link retargeted and a hard link."""
    base = layer_tar([d("etc"), f("etc/os-release", "ID=debian\n"), d("app"), f("app/keep.txt", "same")])
    one = layer_tar([f("app/main.py", "print(1)\n"), f("app/old.txt", "gone soon"), sym("app/current", "v1"),
                     f("app/data.bin", "abcd")])
    two = layer_tar([f("app/main.py", "print(2)\n"), wh("app/old.txt"), sym("app/current", "v2"),
                     f("app/data.bin", "abce"), f("app/new.txt", "new"), hard("app/new-link", "app/new.txt")])
    a, b = tmp_path / "v1.tar", tmp_path / "v2.tar"
    a.write_bytes(docker_archive([base, one]))
    b.write_bytes(docker_archive([base, two]))
    return str(a), str(b)


def _mapped(path: str):
    """(source, image) as the window has them: the image's index written by a load worker and mapped."""
    src = open_source(path)
    return src, load_worker.load(src, src.select(), Monitor(path))


def test_a_comparison_made_in_a_worker_is_the_one_made_here_and_decodes_nothing_here(cache, tmp_path):
    a_path, b_path = _two_versions(tmp_path)
    with open_source(a_path) as sa, open_source(b_path) as sb:
        built_a, built_b = load_image(sa, sa.select(), cache=False), load_image(sb, sb.select(), cache=False)
        here = list(file_diffs(sa, built_a, sb, built_b))
    sa, a = _mapped(a_path)
    sb, b = _mapped(b_path)
    with sa, sb:
        stages = []
        there = elsewhere.compare_files(sa, a, sb, b, Monitor(a_path, lambda p: stages.append(p.stage)))
        assert a.tree.versions.chunks.kids == {} and b.tree.versions.chunks.kids == {}  # nothing decoded here
        assert there.totals() == Differences.of(here, built_a.tree, built_b.tree).totals()  # still nothing decoded
        assert a.tree.versions.chunks.kids == {} and b.tree.versions.chunks.kids == {}
        assert there.counts() == {"added": 2, "modified": 3, "removed": 1}
        # each path's entries, looked up in the mapped trees when asked for
        assert [(x.path, x.change, x.a, x.b) for x in there] == [(x.path, x.change, x.a, x.b) for x in here]
        assert there.get("/app/new-link") == here[[x.path for x in here].index("/app/new-link")]
        assert there.get("/app/keep.txt") is None and there.change("/app/old.txt") == "removed"
    changes = {x.path: x.change for x in there}
    assert changes == {"/app/main.py": "modified", "/app/old.txt": "removed", "/app/current": "modified",
                       "/app/data.bin": "modified", "/app/new.txt": "added", "/app/new-link": "added"}
    assert "comparing the files" in stages  # its progress came through
    assert multiprocessing.active_children() == []


def test_with_the_cache_off_the_worker_builds_what_it_compares(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("LAYER_EXPLORER_NO_INDEX_CACHE", "1")
    a_path, b_path = _two_versions(tmp_path)
    sa, a = _mapped(a_path)
    sb, b = _mapped(b_path)
    with sa, sb:
        files = elsewhere.compare_files(sa, a, sb, b, Monitor(a_path))
        assert {x.path for x in files} == {"/app/main.py", "/app/old.txt", "/app/current", "/app/data.bin",
                                           "/app/new.txt", "/app/new-link"}
        assert len(elsewhere.compare_files(sa, a, sa, a, Monitor(a_path))) == 0  # an image and itself
    assert not (cache / "index").exists()
    assert multiprocessing.active_children() == []


def test_a_source_read_once_is_compared_here(tmp_path, monkeypatch):
    a_path, b_path = _two_versions(tmp_path)
    monkeypatch.setattr(elsewhere, "suitable", lambda source, ref: False)  # as a stream from standard input
    with open_source(a_path) as sa, open_source(b_path) as sb:
        a, b = load_image(sa, sa.select(), cache=False), load_image(sb, sb.select(), cache=False)
        files = elsewhere.compare_files(sa, a, sb, b, Monitor(a_path))
    assert len(files) == 6


def _tree_of(folder: Path) -> dict[str, object]:
    """What an extraction left on disk: each path with its bytes, link target or ``dir``."""
    out: dict[str, object] = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = os.readlink(p) if p.is_symlink() else "dir" if p.is_dir() else p.read_bytes()
    return out


@pytest.mark.parametrize("path, layer, only_layer", [("/", None, False), ("/app", 1, False), ("/", 2, True)])
def test_an_extraction_in_a_worker_writes_what_extracting_here_writes(cache, tmp_path, path, layer, only_layer):
    a_path, b_path = _two_versions(tmp_path)
    b_path = str(tmp_path / "three.tar")
    Path(b_path).write_bytes(docker_archive([layer_tar([d("app"), f("app/a", "1")]),
                                             layer_tar([f("app/b", "2"), hard("app/c", "app/a")]),
                                             layer_tar([f("app/a", "3"), wh("app/b"), sym("app/l", "a")])]))
    with open_source(b_path) as src:
        image = load_image(src, src.select(), cache=False)
        expected = extract(src, image, select_entries(image, path, layer, only_layer), str(tmp_path / "here"), base=path)
    src, mapped = _mapped(b_path)
    with src:
        result = elsewhere.extract_selected(src, mapped, path, layer, only_layer, str(tmp_path / "there"),
                                            ExtractOptions(), Monitor(b_path))
        assert mapped.tree.versions.chunks.kids == {}  # the worker read the folders, not this process
    assert (result.written, result.bytes, result.skipped) == (expected.written, expected.bytes, expected.skipped)
    assert result.target == str((tmp_path / "there").resolve())
    assert _tree_of(tmp_path / "there") == _tree_of(tmp_path / "here") != {}
    assert multiprocessing.active_children() == []


def test_an_extraction_that_fails_in_the_worker_says_why(cache, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = str(DATA / "docker-legacy.tar")
    src, image = _mapped(path)
    with src:
        with pytest.raises(ExplorerError) as caught:  # the target is below a file
            elsewhere.extract_selected(src, image, "/", None, False, str(blocker / "out"), None, Monitor(path))
        assert "cannot create the folder" in str(caught.value) and "Traceback" not in str(caught.value)
        with pytest.raises(ExplorerError) as caught:
            elsewhere.extract_selected(src, image, "/no/such", None, False, str(tmp_path / "out"), None,
                                       Monitor(path))
        assert "/no/such does not exist" in str(caught.value)
    assert multiprocessing.active_children() == []


class _Zeros(io.RawIOBase):
    """``n`` zero bytes, read as a file (a big member without holding it in memory)."""

    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def _big_files_layer(count: int, size: int) -> bytes:
    """A gzip layer of ``count`` files of ``size`` zero bytes each (small on disk, slow to write out)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|gz") as tar:
        for i in range(count):
            info = tarfile.TarInfo(f"data/f{i}")
            info.size = size
            tar.addfile(info, _Zeros(size))
    return out.getvalue()


def test_a_cancelled_extraction_stops_at_its_next_step_and_leaves_no_half_written_file(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("LAYER_EXPLORER_MAX_RATIO", "100000")  # files of zeros, on purpose
    count, size = 4, 96 << 20  # written a chunk at a time, for longer than progress takes to come: a cancel lands inside
    archive = tmp_path / "big.tar"
    archive.write_bytes(docker_archive([_big_files_layer(count, size)]))
    src, image = _mapped(str(archive))

    def progress(p):
        if p.stage == "extracting" and p.done > 0:
            monitor.cancelled = True  # as the dialog's Cancel does, from the window's thread

    monitor = Monitor(str(archive), progress)
    with src:
        with pytest.raises(Cancelled):
            elsewhere.extract_selected(src, image, "/", None, False, str(tmp_path / "out"), None, monitor)
    written = list((tmp_path / "out" / "data").iterdir())
    assert len(written) < count  # it stopped early
    assert all(p.stat().st_size == size for p in written)  # the file it was writing is gone
    assert multiprocessing.active_children() == []


def test_a_comparison_bigger_than_a_part_comes_back_whole_and_in_order(cache, tmp_path):
    many = elsewhere.PART * 2 + 7
    a_path, b_path = tmp_path / "a.tar", tmp_path / "b.tar"
    a_path.write_bytes(docker_archive([layer_tar([d("srv"), f("srv/z", "1")])]))
    b_path.write_bytes(docker_archive([layer_tar([d("srv")] + [f(f"srv/d{i % 50}/f{i}") for i in range(many)])]))
    sa, a = _mapped(str(a_path))
    sb, b = _mapped(str(b_path))
    with sa, sb:
        found = elsewhere.compare_files(sa, a, sb, b, Monitor(str(a_path)))
        assert a.tree.versions.chunks.kids == {} and b.tree.versions.chunks.kids == {}
    with open_source(str(a_path)) as sa, open_source(str(b_path)) as sb:
        here = [(x.path, x.change) for x in file_diffs(sa, load_image(sa, sa.select(), cache=False),
                                                       sb, load_image(sb, sb.select(), cache=False))]
    assert list(zip(found.paths, (found.change(p) for p in found.paths))) == here
    assert found.counts() == {"added": many + 50, "modified": 0, "removed": 1}


@pytest.mark.parametrize("kind", ["updates", "fleet"])
def test_a_series_or_a_fleet_measured_in_a_worker_is_the_report_made_here(cache, kind):
    names = [str(DATA / "updates" / f"app-v{i}.docker.tar") for i in (1, 2, 3)]
    stages = []
    there = elsewhere.measure_many(kind, names, Monitor(kind, lambda p: stages.append(p.stage)))
    here = elsewhere.measured(kind, names, Monitor(kind))
    listed = [layer for step in here.get("steps", ()) for layer in step["layers"] if "changed_paths" in layer]
    assert kind == "fleet" or any(len(layer["changed_paths"]) > 0 for layer in listed)
    for layer in listed:  # the window lists the first few of each layer's changed paths
        layer["changed_paths"] = layer["changed_paths"][:elsewhere.PATHS_SHOWN]
    assert there == here
    assert any(s.startswith("indexed 3 of 3") for s in stages)  # its progress came through
    assert multiprocessing.active_children() == []


def test_a_series_that_cannot_be_measured_says_why(cache, tmp_path):
    names = [str(DATA / "updates" / "app-v1.docker.tar"), str(tmp_path / "missing.tar")]
    with pytest.raises(ExplorerError) as caught:
        elsewhere.measure_many("updates", names, Monitor("updates"))
    assert "missing.tar" in str(caught.value) and "Traceback" not in str(caught.value)
    assert multiprocessing.active_children() == []


def test_the_window_gets_the_first_changed_paths_of_a_layer_not_all(cache, tmp_path):
    base = layer_tar([d("app")])
    names = []
    for version in (1, 2):
        path = tmp_path / f"v{version}.tar"
        path.write_bytes(docker_archive([base, layer_tar([f(f"app/f{i:02}", f"v{version}") for i in range(15)])]))
        names.append(str(path))
    here = elsewhere.measured("updates", names, Monitor("updates"))
    there = elsewhere.measure_many("updates", names, Monitor("updates"))
    assert len(here["steps"][0]["layers"][1]["changed_paths"]) == 15
    assert there["steps"][0]["layers"][1]["changed_paths"] == here["steps"][0]["layers"][1]["changed_paths"][:10]
    assert there["steps"][0]["layers"][1]["changed_bytes"] == here["steps"][0]["layers"][1]["changed_bytes"]


def test_with_the_cache_off_an_extraction_runs_here_rather_than_build_the_image_again(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("LAYER_EXPLORER_NO_INDEX_CACHE", "1")
    path = str(DATA / "docker-legacy.tar")
    src, image = _mapped(path)
    with src:
        result = elsewhere.extract_selected(src, image, "/data", None, False, str(tmp_path / "out"), None,
                                            Monitor(path))
        assert "/data" in image.tree.versions.chunks.kids  # read here: no worker had an index to map
    assert result.written > 0 and (tmp_path / "out" / "data" / "modify-me.txt").is_file()
