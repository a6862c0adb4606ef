"""The index cache: an unchanged source reopens from it; anything changed or damaged is rebuilt."""

from __future__ import annotations

import gc
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.cli import main
from explorer.image import index_cache
from explorer.image.content import read_entry
from explorer.image.loader import load_image
from explorer.formats.source import open_source
from explorer.report import build_report
from explorer.tree.diff import ADDED, MODIFIED, UNCHANGED
from explorer.tree.views import DIFF, MERGED, SUBSTRING, TreeView, path_matcher, visible_paths_steps
from tests.test_properties import linked_stacks, reopened_stack, stacks

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def cache_on(tmp_path, monkeypatch):
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))


def _load(path):
    src = open_source(str(path))
    img = load_image(src, src.select())
    return src, img


def _files(tmp_path):
    folder = tmp_path / "cache" / "index"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("archive", ["docker-legacy.tar", "buildah-overlay.oci.tar", "umoci.oci-layout"])
def test_reopening_gives_the_same_image(tmp_path, archive):
    src, fresh = _load(DATA / archive)
    assert not fresh.from_cache
    index_cache.save(src, fresh)
    expected = build_report(fresh, src.images, archive)
    src.close()
    src, cached = _load(DATA / archive)
    with src:
        assert cached.from_cache
        assert build_report(cached, src.images, archive) == expected
        entry = cached.tree.entry_at("/data/modify-me.txt")
        assert read_entry(src, cached, entry) == b"original\nmodified in layer 3\n"


def test_a_changed_archive_is_never_served_stale(tmp_path):
    target = tmp_path / "image.tar"
    shutil.copy(DATA / "docker-legacy.tar", target)
    src, img = _load(target)
    index_cache.save(src, img)
    src.close()
    shutil.copy(DATA / "skopeo.docker.tar", target)  # another archive at the same path
    src, img = _load(target)
    with src:
        assert not img.from_cache
        assert img.tags == ("docker.io/library/fixture-layers:skopeo",)


def test_a_damaged_or_old_cache_file_is_rebuilt(tmp_path):
    src, img = _load(DATA / "docker-legacy.tar")
    index_cache.save(src, img)
    (cached,) = _files(tmp_path)
    data = bytearray(cached.read_bytes())
    data[-100] ^= 0xFF
    cached.write_bytes(bytes(data))
    src2, again = _load(DATA / "docker-legacy.tar")
    assert not again.from_cache and not cached.exists()  # detected and removed
    index_cache.save(src2, again)
    old = index_cache.VERSION
    try:
        index_cache.VERSION = old + 1  # what a newer release would find
        src3, third = _load(DATA / "docker-legacy.tar")
        assert not third.from_cache
    finally:
        index_cache.VERSION = old
    for s in (src, src2, src3):
        s.close()


def _rewritten(tmp_path, count):
    """An archive of ``count`` files written in layer 0 and again in layer 1 (``count`` wasted,
    the bigger first), loaded and saved in the cache: its path and the image loaded."""
    from tests.builders import docker_archive, f, layer_tar

    archive = tmp_path / "rewritten.tar"
    archive.write_bytes(docker_archive([layer_tar([f(f"srv/{i:04}", b"x" * (i + 1)) for i in range(count)]),
                                        layer_tar([f(f"srv/{i:04}", b"y") for i in range(count)])]))
    src, fresh = _load(archive)
    index_cache.save(src, fresh)
    src.close()
    return archive, fresh


def test_the_first_wasted_files_are_read_without_the_rest(tmp_path):
    archive, fresh = _rewritten(tmp_path, 1500)
    src, cached = _load(archive)
    with src:
        assert cached.from_cache
        wasted = cached.waste.files
        assert len(wasted) == len(fresh.waste.files) == 1500
        # the rows the Insights tab lists come from the first part alone
        assert [wasted[i] for i in range(500)] == fresh.waste.files[:500]
        assert wasted._items is None and wasted._source is not None
        assert wasted[index_cache.WASTE_FIRST] == fresh.waste.files[index_cache.WASTE_FIRST]  # then the rest
        assert list(wasted) == fresh.waste.files and wasted[-1] == fresh.waste.files[-1]
        assert wasted[0].size == 1500 and wasted[0].path == "/srv/1499"


def test_dives_wasteful_files_are_decoded_only_when_listed(tmp_path, capsys):
    archive, fresh = _rewritten(tmp_path, 300)
    src, cached = _load(archive)
    with src:
        assert cached.from_cache
        eff = cached.efficiency
        assert callable(eff.listed)  # opening the index made no dict of a file
        assert (eff.score, eff.wasted_bytes) == (fresh.efficiency.score, fresh.efficiency.wasted_bytes)
        assert eff.files == fresh.efficiency.files and len(eff.files) == 300
        assert eff.files[0] == {"path": "/srv/0299", "count": 2, "size": 301}
        assert eff == fresh.efficiency
    assert main(["check", "--json", str(archive)]) in (0, 1)
    listed = json.loads(capsys.readouterr().out)["efficiency"]["files"]
    assert listed == fresh.efficiency.files
    import marshal

    for stored in (b"not marshal", marshal.dumps([("/a", 2, 3)]), marshal.dumps({"path": "/a"})):
        assert index_cache._dive_files(stored) == []  # (only dicts in a list are files)


def test_reopening_decodes_only_the_folders_looked_at(tmp_path):
    src, fresh = _load(DATA / "docker-legacy.tar")
    index_cache.save(src, fresh)
    first = TreeView(fresh.tree, None, MERGED)
    src.close()
    src, cached = _load(DATA / "docker-legacy.tar")
    with src:
        chunks = cached.tree.versions.chunks
        assert chunks.kids == {}  # nothing decoded yet, yet the first screen is all there
        assert cached.first_view.totals() == first.totals()
        merged = list(fresh.tree.merged())
        counted = (len(merged), sum(e.size for e in merged if e.type == "file"))
        assert (cached.file_count, cached.file_bytes) == (first.entries, first.file_bytes) == counted
        assert counted[0] == 68  # as report --text counts them
        assert len(cached.tree.versions) == len(fresh.tree.versions)
        assert sorted(cached.tree.children("/")) == sorted(fresh.tree.children("/"))
        assert cached.tree.entry_at("/data/modify-me.txt") == fresh.tree.entry_at("/data/modify-me.txt")
        assert set(chunks.kids) == {"/", "/data"}
        assert not chunks.complete
        assert cached.tree.changes[3] == fresh.tree.changes[3]
        assert len(cached.waste.files) == len(fresh.waste.files) > 0 and cached.waste.files._items is None
        assert list(cached.waste.files) == fresh.waste.files  # decoded when the Insights tab reads them
        assert set(cached.tree.changes.decoded) == {3}
        # another layer's sizes are counted over the folders as stored, none of them kept
        assert TreeView(cached.tree, 1).totals() == TreeView(fresh.tree, 1).totals()
        assert not chunks.complete and set(chunks.kids) == {"/", "/data"}
        # a walk over every path decodes the rest
        assert dict(cached.tree.versions.items()).keys() == fresh.tree.versions.keys()
        assert chunks.complete and set(chunks.kids) == set(fresh.tree.kids)


def _linked_layers(tmp_path):
    """Files of several names across folders, one name removed later, a link to nothing."""
    from tests.builders import d, docker_archive, f, hard, layer_tar, wh

    path = tmp_path / "linked.tar"
    path.write_bytes(docker_archive([
        layer_tar([d("a"), d("b"), f("a/big", b"x" * 5000), hard("b/big", "a/big"), hard("a/again", "a/big"),
                   f("a/empty", b""), hard("b/empty", "a/empty"), f("b/other", b"y" * 300)]),
        layer_tar([wh("a/big"), hard("b/nothing", "a/missing"), f("c/new", b"z" * 70)]),
    ]))
    return path


@pytest.mark.parametrize("name", ["hardlinks.docker.tar", "docker-legacy.tar", "test-oci-zstd-image.tar", "linked"])
def test_the_sizes_written_with_the_folders_are_those_a_view_counts(tmp_path, name):
    path = _linked_layers(tmp_path) if name == "linked" else DATA / name
    src, fresh = _load(path)
    with src:
        assert fresh.first_view is None  # so the index counts the sizes as it writes the folders
        assert index_cache.save(src, fresh) is not None
        plain = TreeView(fresh.tree, None, MERGED)
        want = plain.totals()
    src, cached = _load(path)
    with src:
        assert cached.from_cache
        assert cached.first_view.totals() == want
        assert (cached.file_count, cached.file_bytes) == (plain.entries, plain.file_bytes)
    if name == "linked":  # /a/again still holds the 5,000 bytes, counted once in each folder
        assert want["/a"] == 5000 and want["/b"] == 5000 + 300 and want["/"] == 5000 + 300 + 70
        assert plain.file_bytes == 5000 + 300 + 70


@pytest.mark.parametrize("damage", ["truncate", "empty", "chunk"])
def test_a_truncated_or_empty_cache_file_is_rebuilt(tmp_path, damage):
    src, img = _load(DATA / "docker-legacy.tar")
    index_cache.save(src, img)
    src.close()
    (cached,) = _files(tmp_path)
    data = cached.read_bytes()
    if damage == "truncate":
        cached.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        cached.write_bytes(b"")
    else:  # a head that points past the end, with a checksum that matches it
        import hashlib
        import marshal

        start, trailer = len(index_cache.MAGIC) + 32, index_cache.TRAILER
        end = len(data) - trailer.size
        size, _, _ = trailer.unpack_from(data, end)
        head = marshal.loads(data[end - size:end])
        tree = list(head["tree"])
        tree[3] = {k: (o + 10**9, n, alive) for k, (o, n, alive) in tree[3].items()}
        head["tree"] = tuple(tree)
        head_bytes = marshal.dumps(head)
        body = data[start:end - size]
        tail = head_bytes + trailer.pack(len(head_bytes), start + len(body), start + len(body))
        checksum = hashlib.sha256(hashlib.sha256(body).digest() + hashlib.sha256().digest() + tail).digest()
        cached.write_bytes(index_cache.MAGIC + checksum + body + tail)
    src, again = _load(DATA / "docker-legacy.tar")
    with src:
        assert not again.from_cache and not cached.exists()
        assert again.tree.entry_at("/data/modify-me.txt") is not None


def test_the_command_line_writes_and_uses_it_and_can_turn_it_off(tmp_path, capsys):
    legacy = str(DATA / "docker-legacy.tar")
    assert main(["report", "--json", "--no-cache", legacy]) == 0
    os.environ.pop("LAYER_EXPLORER_NO_INDEX_CACHE", None)
    assert _files(tmp_path) == []
    first = capsys.readouterr().out
    assert main(["report", "--json", legacy]) == 0
    assert len(_files(tmp_path)) == 1
    assert main(["report", "--json", legacy]) == 0
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[0]) == json.loads(first) == json.loads(out[1])


def test_the_cache_stays_under_its_limit(tmp_path, monkeypatch):
    for archive in ("docker-legacy.tar", "buildah-overlay.oci.tar", "umoci.oci-layout"):
        src, img = _load(DATA / archive)
        index_cache.save(src, img)
        src.close()
    sizes = [f.stat().st_size for f in _files(tmp_path)]
    assert len(sizes) == 3
    index_cache.evict(limit=sum(sizes) - 1)
    assert len(_files(tmp_path)) == 2


def test_a_partial_file_left_by_a_killed_save_is_cleared(tmp_path):
    folder = tmp_path / "cache" / "index"
    folder.mkdir(parents=True)
    old, fresh = folder / ".partial-old", folder / ".partial-new"
    for p in (old, fresh):
        p.write_bytes(b"half an index")
    os.utime(old, (0, 1_000_000))  # written long ago: its save is not running any more
    src, img = _load(DATA / "docker-legacy.tar")
    with src:
        index_cache.save(src, img)
    assert not old.exists() and fresh.exists()  # one being written now is left alone
    assert len([p for p in _files(tmp_path) if not p.name.startswith(".")]) == 1


def test_a_path_its_folder_does_not_list_is_kept_all_the_same(tmp_path):
    src, fresh = _load(DATA / "docker-legacy.tar")
    fresh.tree.kids["/data"].remove("modify-me.txt")  # an index that breaks the usual rule
    index_cache.save(src, fresh)
    src.close()
    src, cached = _load(DATA / "docker-legacy.tar")
    with src:
        assert cached.from_cache
        entry = cached.tree.entry_at("/data/modify-me.txt")
        assert entry is not None and read_entry(src, cached, entry) == b"original\nmodified in layer 3\n"
        assert cached.tree.entry_at("/") is not None


def test_a_layout_blob_rewritten_in_place_is_not_served_from_the_cache(tmp_path, monkeypatch):
    import tarfile as tarfile_module

    from tests.builders import d, f, layer_tar, oci_archive

    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    layout = tmp_path / "layout"
    with tarfile_module.open(fileobj=io.BytesIO(oci_archive([layer_tar([d("etc"), f("etc/a", "first")])],
                                                            compress="none"))) as t:
        t.extractall(layout)
    src = open_source(str(layout))
    first = load_image(src, src.select())
    index_cache.save(src, first)
    src.close()
    blob = next(p for p in (layout / "blobs" / "sha256").iterdir() if p.stat().st_size > 1000)
    st = blob.stat()
    data = blob.read_bytes().replace(b"first", b"other")  # same size, another content
    blob.write_bytes(data)
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))  # and its mtime put back
    src = open_source(str(layout))
    assert index_cache.load(src, src.select()) is None  # the index no longer stands for this folder
    src.close()


def test_an_image_is_a_value_built_or_mapped(tmp_path, cache_on):
    import dataclasses

    from explorer.image.loader import prepare_first_view

    with open_source(str(DATA / "docker-legacy.tar")) as src:
        built = load_image(src, src.select(), cache=False)
        index_cache.save(src, built)
        mapped = load_image(src, src.select())
    assert mapped.from_cache and not built.from_cache
    for image in (built, mapped):
        with pytest.raises(dataclasses.FrozenInstanceError):
            image.tags = ("changed",)  # type: ignore[misc]
        assert all(isinstance(getattr(image, f), tuple) for f in ("tags", "layers", "history", "warnings", "scans", "blobs"))
    counted = prepare_first_view(built)
    assert counted is not built and counted.file_count == 68 and built.file_count == -1  # a new value; the old one kept
    assert prepare_first_view(counted) is counted and prepare_first_view(mapped) is mapped  # (they have it)


def test_every_layers_changes_are_read_a_part_a_step_though_few_stay_decoded(tmp_path, monkeypatch):
    from explorer.tree import lazy
    from explorer.tree.views import changed_paths_steps

    monkeypatch.setattr(index_cache, "CHANGES_PART", 4)
    src, fresh = _load(DATA / "docker-legacy.tar")
    index_cache.save(src, fresh)
    src.close()
    src, cached = _load(DATA / "docker-legacy.tar")
    with src:
        assert len(cached.tree.changes) > lazy.KEPT_CHANGES
        real, decoded = lazy.marshal.loads, []
        monkeypatch.setattr(lazy.marshal, "loads", lambda data: decoded.append(1) or real(data))
        for layer in (None, None, 0):  # every layer's changes (twice: decoded again), then one layer's
            steps, most = changed_paths_steps(cached.tree, layer), 0
            while True:
                decoded.clear()
                try:
                    next(steps)
                except StopIteration as stop:
                    shown = stop.value
                    break
                most = max(most, len(decoded))
            assert most <= 1  # a part a step: no layer is decoded whole between two events
            assert shown == _gathered(fresh.tree, layer)  # what the built tree's lists give
        assert len(cached.tree.changes.decoded) <= lazy.KEPT_CHANGES


def _gathered(tree, layer):
    from explorer.tree.steps import drain
    from explorer.tree.views import changed_paths_steps

    return drain(changed_paths_steps(tree, layer))


def test_a_layers_changes_are_decoded_a_part_at_a_time(tmp_path, monkeypatch):
    from explorer.tree.steps import drain
    from explorer.tree.views import DIFF, changed_paths_steps

    monkeypatch.setattr(index_cache, "CHANGES_PART", 4)  # (32,768 a part; the fixture's layers are small)
    src, fresh = _load(DATA / "docker-legacy.tar")
    index_cache.save(src, fresh)
    src.close()
    src, cached = _load(DATA / "docker-legacy.tar")
    with src:
        changes = cached.tree.changes
        layer = max(range(len(fresh.tree.changes)), key=lambda k: len(fresh.tree.changes[k]))
        parts = -(-len(fresh.tree.changes[layer]) // 4)
        assert parts > 2 and len(changes.spans[layer]) == parts
        steps = cached.tree.changes_steps(layer)
        next(steps)  # one part decoded, the layer not yet
        assert layer not in changes.decoded
        assert sum(1 for _ in steps) == parts - 1
        assert changes[layer] == fresh.tree.changes[layer]
        assert [changes[k] for k in range(len(changes))] == fresh.tree.changes  # the others, decoded when read
        assert len(changes.decoded) == 2  # only the two latest stay decoded...
        assert [changes[k] for k in range(len(changes))] == fresh.tree.changes  # ...the others decoded again
        gathered = TreeView(cached.tree, layer, DIFF, drain(changed_paths_steps(cached.tree, layer)))
        assert gathered.totals() == TreeView(fresh.tree, layer, DIFF).totals()



def _files_elsewhere(archive: str, where: Path, mode: str = "whole") -> dict:
    """``tests/index_child.py`` in a fresh interpreter (this one has threads: no fork here)."""
    import subprocess
    import sys

    root = Path(__file__).parent.parent
    out = subprocess.run([sys.executable, "-m", "tests.index_child", str(DATA / archive), str(where), mode],
                         capture_output=True, text=True, cwd=root, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _linked_across(tmp_path) -> str:
    """An archive whose files of several names have names in folders far apart (so in both
    parts when the child and its parent share the writing), one changed by a later layer."""
    from tests.builders import d, docker_archive, f, hard, layer_tar, wh

    first = layer_tar([d("a"), f("a/big", b"x" * 3000), f("a/small", b"y" * 10), d("m"), f("m/other", b"o" * 500),
                       d("z"), hard("z/big-again", "a/big"), hard("z/small-again", "a/small"), f("z/last", b"l")])
    second = layer_tar([d("m"), f("m/other", b"p" * 700), d("z"), wh("z/small-again"), hard("z/third", "a/big")])
    archive = tmp_path / "linked.tar"
    archive.write_bytes(docker_archive([first, second]))
    return str(archive)


@pytest.mark.parametrize("shared", ["", "-shared", "-one", "-none"])
@pytest.mark.parametrize("archive", ["docker-legacy.tar", "hardlinks.docker.tar", "umoci.oci-layout", "linked"])
def test_an_index_whose_files_a_child_wrote_reopens_as_the_same_image(tmp_path, archive, shared):
    """Written by the child alone, or with the parent taking the last folders: a block at a
    time until it meets the child, one block only, or none though it could. The blocks'
    files are gone before the index is named (the cache's limit would count them)."""
    where = tmp_path / "written"
    got = _files_elsewhere(_linked_across(tmp_path) if archive == "linked" else archive, where, "whole" + shared)
    taken = got.pop("taken")
    assert got == {"forked": True, "written": str(where / "the-key"), "same": True,
                   "as_one": True if shared else None, "beside": 0, "ended": True, "early": None, "early_same": None}
    assert (taken is not None and taken > 0) if shared in ("-shared", "-one") else taken is None
    assert sorted(p.name for p in where.iterdir()) == (["one", "the-key"] if shared else ["the-key"])  # nothing partial left


@pytest.mark.parametrize("shared", ["", "-shared", "-one"])
@pytest.mark.parametrize("archive", ["docker-legacy.tar", "umoci.oci-layout", "linked"])
def test_the_files_index_written_first_then_the_whole_one_from_it(tmp_path, archive, shared):
    """The files' index a window is shown before the accounting holds the same files as the
    whole index then written from it (its files copied, the accounting added), whoever wrote
    which folders. Its file is left to the window, which removes it once mapped (removed with
    the whole one written, it could go before a busy window had opened it); the whole one is
    named, and nothing else is left."""
    where = tmp_path / "written"
    got = _files_elsewhere(_linked_across(tmp_path) if archive == "linked" else archive, where, "shown" + shared)
    assert got["written"] == str(where / "the-key") and got["same"] and got["ended"]
    assert got["early_same"] is True and got["early"] is True
    assert got["beside"] == 1  # the files' index alone, left to its caller
    assert (got["taken"] is not None) == (shared != "")
    assert sorted(p.name for p in where.iterdir()) == (["one", "the-key"] if shared else ["the-key"])


@pytest.mark.parametrize("shared", ["", "-none", "-one"])
def test_a_child_slow_to_end_once_it_has_said_all_still_wrote_the_index(tmp_path, shared):
    """The child says what it wrote only once its file is closed: the parent checks the
    file's size as soon as it hears (told before, the last of it was still in a buffer)."""
    where = tmp_path / "written"
    got = _files_elsewhere("docker-legacy.tar", where, "late" + shared)
    assert got["written"] == str(where / "the-key") and got["same"] and got["ended"]


@pytest.mark.parametrize("first", ["", "+shown"])
@pytest.mark.parametrize("mode", ["failing", "unread", "failing-shared", "unread-shared"])
def test_a_child_that_fails_or_is_not_heard_leaves_nothing(tmp_path, mode, first):
    """Nor does the files' index asked for first: neither it nor the whole one is written
    (the loading process then writes the whole index itself)."""
    where = tmp_path / "written"
    failing, _, shared = mode.partition("-")
    got = _files_elsewhere("docker-legacy.tar", where, failing + first + ("-" + shared if shared else ""))
    got.pop("taken")  # (a child gone before the parent looks: it takes nothing)
    assert got == {"forked": True, "written": None, "same": None, "as_one": None, "beside": None,
                   "ended": True, "early": None, "early_same": False if first else None}  # stopped, not waited for
    assert list(where.iterdir()) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(stacks, linked_stacks), st.integers(min_value=0))
def test_two_halves_of_the_folders_count_and_gather_what_one_pass_does(tmp_path_factory, layers, cut):
    """The folder sizes and the columns of two runs of folders, the second's added to the
    first's, are those of one run over them all, wherever the folders are cut in two."""
    from explorer.tree.columns import ColumnWriter
    from explorer.tree.views import FolderSizes
    from tests.test_properties import _layer
    from tests.builders import docker_archive

    archive = tmp_path_factory.mktemp("halves") / "img.tar"
    archive.write_bytes(docker_archive([_layer(ops) for ops in layers]))
    with open_source(str(archive)) as src:
        tree = load_image(src, src.select(), cache=False).tree
    items = list(tree.kids.items())
    cut %= len(items) + 1

    def gathered(runs):
        """Their sizes and columns, made by one writer (no ``runs``) or added up from each run's."""
        sizes, columns = FolderSizes(tree), ColumnWriter(tree.layer_count, tree.links, tree.shared_file)
        if runs is None:
            index_cache._encode_folders(tree, items, sizes, columns, lambda chunk: None, [], [])
        for run in runs or ():
            part_sizes, part_columns = FolderSizes(tree), ColumnWriter(tree.layer_count, tree.links, tree.shared_file)
            index_cache._encode_folders(tree, run, part_sizes, part_columns, lambda chunk: None, [], [])
            sizes.absorb(part_sizes.state())
            columns.absorb(part_columns.state())
        view = TreeView(tree, None, MERGED)
        return sizes.give(view), view.entries, view.file_bytes, columns.state()

    assert gathered([items[:cut], items[cut:]]) == gathered(None)


def test_an_index_cut_short_or_altered_after_its_files_is_not_used(tmp_path):
    with open_source(str(DATA / "docker-legacy.tar")) as src:
        fresh = load_image(src, src.select(), cache=False)
        written = Path(index_cache.save(src, fresh, str(tmp_path / "i"), "k"))
        whole = written.read_bytes()
        for damaged in (whole[:-1], whole[:-20], whole[:-20] + bytes(20), whole[:-100] + b"x" + whole[-99:]):
            written.write_bytes(damaged)
            assert index_cache.open_index(str(written), "k", src, src.select()) is None
        written.write_bytes(whole)
        assert index_cache.open_index(str(written), "k", src, src.select()) is not None


def test_no_child_is_forked_beside_other_threads(tmp_path):
    import threading

    where, done = tmp_path / "written", threading.Event()
    other = threading.Thread(target=done.wait)
    other.start()
    try:
        with open_source(str(DATA / "docker-legacy.tar")) as src:
            fresh = load_image(src, src.select(), cache=False)
            files = index_cache.FilesElsewhere(fresh.tree, str(where))
            assert files.proc is None and files.finish(fresh, "k") is None  # the caller saves it itself
    finally:
        done.set()
        other.join()
    assert not where.exists() or list(where.iterdir()) == []


def test_a_partial_file_is_swept_once_its_writer_is_gone(tmp_path):
    import subprocess
    import sys

    where = tmp_path / "index"
    where.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = where / f".partial-{gone.stdout.strip()}-abc"  # a process that has ended
    mine = where / f".partial-{os.getpid()}-def"  # this one, still writing
    left.write_bytes(b"x")
    mine.write_bytes(b"x")
    index_cache.evict(where=str(where))
    assert not left.exists() and mine.exists()


def test_a_file_being_written_is_left_to_its_writer_however_full_the_cache(tmp_path):
    """Nor does it count against the limit: it is no index of the cache yet (the files' index
    a window is shown first waits there, under the window's process id, for it to map it)."""
    where = tmp_path / "index"
    where.mkdir()
    mine = where / f".partial-{os.getpid()}-def"  # this process's, still being written
    mine.write_bytes(b"x" * 1000)
    os.utime(mine, (1, 1))  # the least recently used of all
    old, new = where / "old-index", where / "new-index"
    for p, when in ((old, 2), (new, 3)):
        p.write_bytes(b"y" * 100)
        os.utime(p, (when, when))
    index_cache.evict(limit=150, where=str(where))
    assert mine.exists() and new.exists() and not old.exists()  # the indexes alone kept under 150 bytes


def test_a_file_read_back_by_its_writer_opens_and_any_other_is_checked(tmp_path):
    src, fresh = _load(DATA / "docker-legacy.tar")
    with src:
        written = index_cache.save(src, fresh)
        key = index_cache.key_for(src, fresh.ref)
        told = index_cache.checksum(written)
        assert index_cache.open_index(written, key, src, fresh.ref, told) is not None
        data = bytearray(Path(written).read_bytes())
        data[len(index_cache.MAGIC) + 40] ^= 0xFF  # a byte of the files' part, after the writer read it back
        Path(written).write_bytes(bytes(data))
        assert index_cache.open_index(written, key, src, fresh.ref) is None  # hashed: found damaged
        assert index_cache.open_index(written, key, src, fresh.ref, bytes(32)) is None  # not the writer's: hashed


def test_a_path_its_folder_does_not_list_is_counted_too(tmp_path):
    """An index whose tree breaks the rule that every path is listed in its folder (the
    encoder then finds the strays by a search) counts the sizes as the view does."""

    src, fresh = _load(DATA / "docker-legacy.tar")
    with src:
        tree = fresh.tree
        folder = "/data"
        name = next(n for n in tree.kids[folder] if (e := tree.entry_at(f"{folder}/{n}")) is not None and e.size)
        tree.kids[folder].remove(name)  # still in ``versions``: a stray
        want_view = TreeView(tree, None, MERGED)
        want = want_view.totals()
        body = index_cache._encode_files(tree, TreeView(tree, None, MERGED), -1, -1, lambda chunk: None)
        assert f"{folder}/{name}" in body.strays
        assert body.totals == want and (body.file_count, body.file_bytes) == (want_view.entries, want_view.file_bytes)


def _no_folder_decoded_to_say_what_holds_anything(fresh, cached):
    """For every folder and layer, whether the reopened image's merged view has anything in
    the folder is what the built one's has, and asking decoded no folder."""
    chunks = cached.tree.versions.chunks
    decoded = set(chunks.kids)
    for layer in [None, *range(len(fresh.layers))]:
        built, reopened = TreeView(fresh.tree, layer, MERGED), TreeView(cached.tree, layer, MERGED)
        for folder in fresh.tree.kids:
            assert reopened.has_children(folder) == built.has_children(folder), (folder, layer)
    assert set(chunks.kids) == decoded


def _each_layers_sizes_are_counted_without_keeping_a_folder(fresh, cached):
    """Every layer's merged folder sizes and counts, worked out over the reopened image's
    folders as stored, are the built image's, and no folder stays decoded after."""
    chunks = cached.tree.versions.chunks
    decoded, complete = set(chunks.kids), chunks.complete
    assert cached.tree.columns() is not None  # the sizes below are array arithmetic, not a walk
    for layer in [None, *range(len(fresh.layers))]:
        built, reopened = TreeView(fresh.tree, layer, MERGED), TreeView(cached.tree, layer, MERGED)
        assert reopened.totals() == built.totals(), layer
        assert (reopened.entries, reopened.file_bytes) == (built.entries, built.file_bytes), layer
        if layer is not None:  # and what the layer itself stores, its changes view's
            assert TreeView(cached.tree, layer, DIFF).totals() == TreeView(fresh.tree, layer, DIFF).totals(), layer
    assert set(chunks.kids) == decoded and chunks.complete == complete


@pytest.mark.parametrize("name", ["docker-legacy.tar", "copyup.oci.tar", "hardlinks.docker.tar", "test-docker-image.tar", "linked", "stray"])
def test_each_layers_folders_are_told_and_sized_without_decoding_them(tmp_path, name):
    path = _linked_layers(tmp_path) if name == "linked" else DATA / ("docker-legacy.tar" if name == "stray" else name)
    src, fresh = _load(path)
    if name == "stray":
        fresh.tree.kids["/data"].remove("modify-me.txt")  # an index that breaks the usual rule
    index_cache.save(src, fresh)
    src.close()
    src, cached = _load(path)
    with src:
        assert cached.from_cache
        _no_folder_decoded_to_say_what_holds_anything(fresh, cached)
        _each_layers_sizes_are_counted_without_keeping_a_folder(fresh, cached)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(stacks, linked_stacks))
def test_each_layers_folders_told_and_sized_over_the_index_are_the_built_trees(tmp_path_factory, layers):
    fresh, cached = reopened_stack(tmp_path_factory, layers)
    cached.tree.kids.get("/")  # one folder decoded by then, as the window's first screen does
    _no_folder_decoded_to_say_what_holds_anything(fresh, cached)
    _each_layers_sizes_are_counted_without_keeping_a_folder(fresh, cached)
    _no_folder_decoded_to_say_which_matches_show(fresh, cached, len(layers))


def _no_folder_decoded_to_say_which_matches_show(fresh, cached, layers: int) -> None:
    """A search or a filter of each layer's merged view shows what looking at each path shows,
    the columns telling which of the path table's paths are there, and what changed them."""
    from explorer.tree.steps import drain

    decoded = set(cached.tree.versions.chunks.kids)
    for layer in [None, *range(layers)]:
        view = TreeView(fresh.tree, layer, MERGED)
        for text in [None, "/", "a", "b/"]:
            match = path_matcher(fresh.tree, layer, text, SUBSTRING) if text is not None else None
            for hide in [frozenset(), frozenset({ADDED}), frozenset({UNCHANGED}), frozenset({MODIFIED}),
                         frozenset({UNCHANGED, ADDED})]:
                if match is None and not hide:
                    continue  # (no search, no filter: everything shows)
                folders = match is not None or not hide
                told = drain(cached.tree.shown_steps(match, layer, hide, folders))
                assert told is not None
                shown, unsure = told  # (unsure: paths their folder does not list, which no layer makes)
                rows = {p: view.row(p) for p in fresh.tree.versions if p != "/" and (match is None or match(p))}
                every = {p for p, r in rows.items()
                         if r is not None and r.change not in hide and (folders or r.entry.type != "dir")}
                assert set(shown) == every - set(unsure), (layer, text, hide)
                built = drain(visible_paths_steps(view, hide, match))
                assert drain(visible_paths_steps(TreeView(cached.tree, layer, MERGED), hide, match)) == built
    assert set(cached.tree.versions.chunks.kids) == decoded


def test_what_a_reopened_index_decodes_adds_nothing_to_the_cycle_collectors_passes(tmp_path):
    """Folders decoded, and entries looked up, leave no object the collector keeps walking:
    with one per folder or per path of several versions, its full passes grew with the
    image (120 ms at a million paths) and held the window."""
    from tests.builders import docker_archive, f, layer_tar, reopened

    capability = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}  # (as ping has)
    first = layer_tar([f(f"srv/f{k}/n{i}", f"{k}.{i}") for k in range(80) for i in range(5)]
                      + [f("usr/bin/ping", "x", pax=capability), f("usr/bin/arping", "y", pax=capability)])
    second = layer_tar([f(f"srv/f{k}/n{i}", f"again {k}.{i}") for k in range(80) for i in range(3)]
                       + [f("usr/bin/ping", "z", pax=capability)])
    archive = tmp_path / "image.tar"
    archive.write_bytes(docker_archive([first, second]))
    fresh, cached = reopened(tmp_path, archive)
    tree, chunks = cached.tree, cached.tree.versions.chunks
    gc.collect()
    gc.collect()
    before = len(gc.get_objects())
    chunks.load_all()
    several = [p for p, v in tree.versions.items() if len(tree.history(p)) > 1]
    assert len(chunks.kids) > 80 and len(several) >= 240  # folders, and paths of two versions
    assert tree.entry_at("/usr/bin/arping").xattrs == {"security.capability": b"\x01\x00\x00\x02"}
    for path in list(tree.versions):  # every entry looked at, and every folder's rows made
        assert tree.entry_at(path) == fresh.tree.entry_at(path)
        assert tree.history(path) == fresh.tree.history(path)
    view = TreeView(tree, 0, MERGED)
    assert sum(len(view.children(folder)) for folder in list(chunks.kids)) == sum(
        len(TreeView(fresh.tree, 0, MERGED).children(folder)) for folder in list(chunks.kids))
    del view, several
    for _ in range(4):  # (a tuple is let go of at the pass after what it holds: versions, attributes)
        gc.collect()
    assert not gc.is_tracked(chunks.versions) and not gc.is_tracked(chunks.kids)
    assert len(gc.get_objects()) - before < 40


def test_what_a_changes_view_or_a_search_shows_is_not_walked_by_the_cycle_collector(tmp_path):
    """A layer's changes, and the paths a changes view or a search shows, are held where the
    collector does not look: in sets and lists, each full pass walked them all (480,000 paths
    of a million-path image's views: 50 ms a pass)."""
    from explorer.tree.steps import drain
    from explorer.tree.views import changed_paths_steps
    from tests.builders import docker_archive, f, layer_tar, reopened

    first = layer_tar([f(f"srv/f{k}/n{i}", f"{k}.{i}") for k in range(40) for i in range(5)])
    second = layer_tar([f(f"srv/f{k}/n{i}", "again") for k in range(0, 40, 2) for i in range(2)])
    archive = tmp_path / "image.tar"
    archive.write_bytes(docker_archive([first, second]))
    fresh, cached = reopened(tmp_path, archive)
    tree = cached.tree
    changed = drain(changed_paths_steps(tree, 1))
    view = TreeView(tree, None, MERGED)
    found = drain(visible_paths_steps(view, frozenset(), path_matcher(tree, None, "n1", SUBSTRING)))
    assert changed == drain(changed_paths_steps(fresh.tree, 1))  # what the built tree gives
    assert "/srv/f2/n1" in changed and "/srv/f2" in changed and "/srv/f1/n1" not in changed
    assert "/srv/f1/n1" in found and "/srv/f1" in found and "/srv/f1/n0" not in found
    assert "/srv" in changed.holders and "/srv/f1" in found.holders
    layers = [tree.changes[k] for k in range(2)]  # (both decoded: two stay so)
    for _ in range(2):  # (a tuple is let go of at the first pass that finds it holding only strings)
        gc.collect()
    assert not gc.is_tracked(changed.paths) and not gc.is_tracked(changed.holders)
    assert not gc.is_tracked(found.holders)  # (a search's: each folder's names, as one text)
    assert all(type(names) is str for names in found.holders.values())
    assert [len(changes) for changes in layers] == [len(changes) for changes in fresh.tree.changes]
    assert all(not gc.is_tracked(changes.paths) for changes in layers)


def test_a_search_makes_rows_only_for_the_children_it_shows(tmp_path):
    from tests.builders import docker_archive, f, layer_tar, reopened

    layer = layer_tar([f(f"lib/mod{i}.py", str(i)) for i in range(300)] + [f("lib/sub/x.py")])
    archive = tmp_path / "image.tar"
    archive.write_bytes(docker_archive([layer]))
    for image in reopened(tmp_path, archive):
        view = TreeView(image.tree, None, MERGED)
        every = view.children("/lib")
        for wanted in ({"/lib/mod7.py", "/lib/sub", "/lib/nothing"}, set(), {r.path for r in every}):
            rows = view.children("/lib", wanted)
            assert sorted(rows) == sorted(r for r in every if r.path in wanted)


@pytest.mark.parametrize("kernel", ["copies", "refuses", "missing"])
def test_an_index_s_files_are_copied_whether_or_not_the_kernel_can(tmp_path, monkeypatch, kernel):
    """The whole index takes the files of the one shown first: by ``copy_file_range``, else
    read and written (another file system, an older kernel); a file shorter than its head says is refused."""
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "first").write_bytes(data)
    if kernel == "refuses":
        def refuse(*_args):
            raise OSError(18, "Invalid cross-device link")
        monkeypatch.setattr(os, "copy_file_range", refuse)
    elif kernel == "missing":
        monkeypatch.delattr(os, "copy_file_range")
    source = os.open(tmp_path / "first", os.O_RDONLY)
    target = os.open(tmp_path / "whole", os.O_WRONLY | os.O_CREAT)
    try:
        index_cache._copy(source, target, len(data) - 5)
        with pytest.raises(OSError):
            index_cache._copy(source, target, len(data) + 1)
    finally:
        os.close(source)
        os.close(target)
    assert (tmp_path / "whole").read_bytes()[:len(data) - 5] == data[:-5]
