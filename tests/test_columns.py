"""Any layer's folder sizes from an index file's columns: the same numbers as a walk over its
folders, and a damaged column set is never trusted (the walk answers instead)."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.model.values import DIR, FILE
from explorer.tree import columns
from explorer.tree.columns import MAX_BYTES, ColumnWriter, Columns
from explorer.tree.steps import drain
from explorer.tree.views import MERGED, SUBSTRING, TreeView, path_matcher, visible_paths_steps
from tests.builders import d, docker_archive, f, layer_tar, reopened, wh

DATA = Path(__file__).parent / "data"


def _sizes(image, layer):
    view = TreeView(image.tree, layer, MERGED)
    return view.totals(), view.entries, view.file_bytes


def _rewritten(tmp_path) -> Path:
    """Files added, rewritten smaller, removed, and a folder emptied and filled again."""
    path = tmp_path / "img.tar"
    path.write_bytes(docker_archive([
        layer_tar([d("etc"), f("etc/a", b"a" * 1000), f("etc/b", b"b" * 200), f("usr/lib/x/big", b"x" * 7000)]),
        layer_tar([f("etc/a", b"a" * 10), wh("usr/lib/x"), f("opt/new", b"n" * 333)]),
        layer_tar([f("usr/lib/x/back", b"k" * 44), wh("etc/b")]),
    ]))
    return path


@pytest.mark.parametrize("step", [columns.ROWS_STEP, 3])  # (a big image's rows are counted in steps)
def test_every_layers_sizes_from_the_columns_are_the_built_images(tmp_path, monkeypatch, step):
    monkeypatch.setattr(columns, "ROWS_STEP", step)
    fresh, cached = reopened(tmp_path, _rewritten(tmp_path))
    assert cached.tree.columns() is not None
    for layer in range(len(fresh.layers)):
        assert _sizes(cached, layer) == _sizes(fresh, layer), layer
    # what a user sees: the folder a later layer emptied weighs nothing there, and again later
    assert _sizes(cached, 0)[0]["/usr/lib/x"] == 7000
    assert "/usr/lib/x" not in _sizes(cached, 1)[0]
    assert _sizes(cached, 2)[0]["/usr"] == 44
    assert _sizes(cached, 1)[0]["/etc"] == 210


def _forged(cached, change) -> None:
    """Put a changed copy of the image's column layout in place of the one its head gave."""
    chunks = cached.tree.versions.chunks
    body, layout = chunks._columns
    layout = list(layout)
    change(layout)
    chunks._columns, chunks._read = (body, tuple(layout)), None


def _swap_span(i, j):
    def change(layout):
        layout[i], layout[j] = layout[j], layout[i]
    return change


def _set(i, value):
    def change(layout):
        layout[i] = value
    return change


@pytest.mark.parametrize("change", [
    _swap_span(2, 3),  # the folders' starts read as their parents
    _swap_span(5, 6),  # the rows' layers the other way round
    _set(0, 10 ** 9),  # more rows than the file holds
    _set(1, "Q"),  # a layer number of no known width
    _set(4, (0, 1 << 40)),  # a column past the end of the file
    _set(4, "nowhere"),
    _set(10, [(0, "/etc/a", (0, 0))]),  # a file of several names that is no such row
    _set(10, "not a list"),
    lambda layout: layout.pop(),  # too short a layout
    lambda layout: layout.__setitem__(3, (layout[2][0], layout[3][1])),  # two columns over the same bytes
    lambda layout: layout.__setitem__(9, (layout[9][0] + 8, layout[9][1] - 8)),  # the paths' first rows, one short
    lambda layout: layout.__setitem__(9, layout[7]),  # the rows' sizes read as the paths' first rows
], ids=["starts-as-parents", "layers-swapped", "rows", "width", "past-end", "span-type", "linked", "linked-type", "short",
        "overlap", "held-short", "held-as-sizes"])
def test_columns_that_do_not_hold_together_are_not_used(tmp_path, change):
    fresh, cached = reopened(tmp_path, _rewritten(tmp_path))
    _forged(cached, change)
    assert cached.tree.columns() is None
    for layer in range(len(fresh.layers)):  # a walk over the folders answers instead
        assert _sizes(cached, layer) == _sizes(fresh, layer), layer
        # and a search looks its matches up in their folders
        match = path_matcher(fresh.tree, layer, "e", SUBSTRING)
        assert drain(cached.tree.shown_steps(match, layer)) is None
        assert drain(visible_paths_steps(TreeView(cached.tree, layer, MERGED), frozenset(), match)) == \
            drain(visible_paths_steps(TreeView(fresh.tree, layer, MERGED), frozenset(), match))


@pytest.mark.parametrize("step", [columns.ROWS_STEP, 2])  # (checked a part at a time)
def test_paths_whose_rows_go_back_are_damage(tmp_path, monkeypatch, step):
    import numpy as np

    monkeypatch.setattr(columns, "ROWS_STEP", step)
    fresh, cached = reopened(tmp_path, _rewritten(tmp_path))
    chunks = cached.tree.versions.chunks
    body, layout = chunks._columns
    offset, length = layout[9]
    copy = bytearray(body)
    held = np.frombuffer(copy, "<i8", length // 8, offset)
    assert held[-3] < held[-2]
    held[-3], held[-2] = held[-2], held[-3]  # two paths' rows the wrong way round
    chunks._columns, chunks._read = (memoryview(copy), layout), None
    assert cached.tree.columns() is None
    match = path_matcher(fresh.tree, None, "e", SUBSTRING)
    assert drain(visible_paths_steps(TreeView(cached.tree, None, MERGED), frozenset(), match)) == \
        drain(visible_paths_steps(TreeView(fresh.tree, None, MERGED), frozenset(), match))


def test_an_index_without_columns_still_has_every_layers_sizes(tmp_path):
    fresh, cached = reopened(tmp_path, DATA / "docker-legacy.tar")
    cached.tree.versions.chunks._columns = None
    assert cached.tree.columns() is None
    for layer in range(len(fresh.layers)):
        assert _sizes(cached, layer) == _sizes(fresh, layer), layer


def test_no_columns_are_written_for_numbers_they_cannot_hold():
    def row(size, layer=0):
        return ("/f", FILE, 0o644, 0, 0, size, 0.0, None, layer, 0, None, None)

    def finished(writer):
        return writer.finish(lambda _chunk: None, 0, 0)[0]

    ok = ColumnWriter(2, {}, lambda _entry, _path: None)
    ok.folder("/", "/", ["f", "d"], [row(5), ("/d", DIR, 0o755, 0, 0, 0, 0.0, None, 1, -1, None, None)])
    assert finished(ok) is not None
    for sizes in ([1 << 63], [MAX_BYTES // 2, MAX_BYTES // 2]):  # one past 63 bits; a sum that could overflow
        writer = ColumnWriter(2, {}, lambda _entry, _path: None)
        writer.folder("/", "/", [f"f{i}" for i in range(len(sizes))], [row(s) for s in sizes])
        assert finished(writer) is None, sizes
    orphan = ColumnWriter(2, {}, lambda _entry, _path: None)  # a folder whose parent is no folder of the file
    orphan.folder("/a/b", "/a/b/", ["f"], [row(1)])
    assert finished(orphan) is None


def test_the_columns_are_read_in_place_from_the_mapped_file(tmp_path):
    fresh, cached = reopened(tmp_path, _rewritten(tmp_path))
    columns: Columns = cached.tree.columns()
    assert columns.size.base is not None and not columns.size.flags.owndata  # a view of the file, no copy
    assert len(columns.size) >= len([p for p in fresh.tree.versions if p != "/"])


def test_a_layers_changes_are_sized_from_the_columns_as_the_built_image_sizes_them(tmp_path):
    from explorer.tree.views import DIFF

    path = tmp_path / "again.tar"  # a file written again as it was is not among a layer's changes
    path.write_bytes(docker_archive([
        layer_tar([f("etc/a", b"a"), f("etc/b", b"b" * 9)]),
        layer_tar([f("etc/a", b"a"), f("etc/c", b"c" * 5), wh("etc/b")]),
    ]))
    seen = []
    for archive in (path, _rewritten(tmp_path)):
        fresh, cached = reopened(tmp_path / archive.stem, archive)
        for layer in range(len(fresh.layers)):
            view = TreeView(cached.tree, layer, DIFF)
            assert view.sizes_at_once()
            assert view.totals() == TreeView(fresh.tree, layer, DIFF).totals(), (archive.name, layer)
        seen.append(TreeView(cached.tree, 1, DIFF).totals())
    assert seen == [{"/": 5, "/etc": 5}, {"/": 343, "/opt": 333, "/etc": 10}]  # what a user reads off the rows


def _hard_linked(tmp_path) -> Path:
    """One file under three names in two folders, one of them removed by the next layer."""
    from tests.builders import hard

    path = tmp_path / "linked.tar"
    path.write_bytes(docker_archive([
        layer_tar([f("a/big", b"x" * 5000), hard("b/big", "a/big"), hard("a/again", "a/big"), f("b/other", b"y" * 30)]),
        layer_tar([wh("a/again"), f("c/new", b"z" * 70)]),
    ]))
    return path


def test_a_forged_row_number_for_a_file_of_several_names_is_refused(tmp_path):
    fresh, cached = reopened(tmp_path, _hard_linked(tmp_path))
    _forged(cached, lambda layout: layout.__setitem__(-1, [(float(row), path, key) for row, path, key in layout[-1]]))
    assert cached.tree.columns() is None  # (3.0 == 3, but no row is numbered 3.0)
    for layer in range(len(fresh.layers)):
        assert _sizes(cached, layer) == _sizes(fresh, layer), layer


def test_many_names_of_linked_files_are_counted_between_events(tmp_path, monkeypatch):
    from explorer.tree import views
    from explorer.tree.views import DIFF

    monkeypatch.setattr(columns, "LINKED_AT_ONCE", 1)  # (past it, a layer's sizes are not worked out at once)
    monkeypatch.setattr(columns, "LINKED_STEP", 1)  # and a step for each name, at every stage
    monkeypatch.setattr(views, "_FEW", 0)
    fresh, cached = reopened(tmp_path, _hard_linked(tmp_path))
    assert len(cached.tree.columns().linked_rows) == 3  # a row a name (the one removed there until layer 1)
    for layer in range(len(fresh.layers)):
        for mode in (MERGED, DIFF):
            view = TreeView(cached.tree, layer, mode)
            assert not view.sizes_at_once()
            assert view.totals() == TreeView(fresh.tree, layer, mode).totals(), (layer, mode)
    assert _sizes(cached, 0)[0]["/"] == 5030 and _sizes(cached, 0)[0]["/a"] == _sizes(cached, 0)[0]["/b"] - 30 == 5000


def test_each_column_lies_on_its_own_8_bytes_in_memory(tmp_path):
    _fresh, cached = reopened(tmp_path, _rewritten(tmp_path))
    read = cached.tree.columns()
    for column in (read.starts, read.parents, read.depths, read.first, read.until, read.size, read.flags):
        assert column.ctypes.data % 8 == 0 and column.flags.aligned
