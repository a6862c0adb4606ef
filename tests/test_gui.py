"""The window, driven as a user would (offscreen): drop, select layers, filter, search, cancel."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QMimeData, QModelIndex, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QDialog, QMessageBox, QProgressBar, QTableView, QTreeView  # noqa: E402

from explorer.image.loader import load_image  # noqa: E402
from explorer.formats.source import open_source  # noqa: E402
from explorer.tree.views import DIFF, MERGED, TreeView  # noqa: E402
from explorer.ui.file_tree_model import CHANGE, FileTreeModel  # noqa: E402
from explorer.ui.history_model import HistoryTableModel  # noqa: E402
from explorer.ui.layer_model import LayerTableModel  # noqa: E402
from tests.builders import docker_archive, f, layer_tar  # noqa: E402
from tests.expected import parse  # noqa: E402
from tests.gui_fixtures import private_settings, window  # noqa: E402,F401 (fixtures)

DATA = Path(__file__).parent / "data"
LEGACY = DATA / "docker-legacy.tar"


def _loaded_image(path=LEGACY):
    src = open_source(str(path))
    return src, load_image(src, src.select())


def _drop(window, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    return event


def _open(qtbot, window, path=LEGACY):
    with qtbot.waitSignal(window.image_loaded, timeout=30_000) as blocker:
        _drop(window, [path])
    return blocker.args[0]


def _all_rows(model, parent=None):
    """Every (path, change) the tree model shows, fetching all levels."""
    from PySide6.QtCore import QModelIndex

    parent = parent or QModelIndex()
    out = []
    for row in range(model.rowCount(parent)):
        index = model.index(row, 0, parent)
        path = index.data(Qt.ItemDataRole.UserRole)
        change = model.index(row, CHANGE, parent).data() or "unchanged"
        out.append((path, change))
        out += _all_rows(model, index)
    return out


# -- the item models ------------------------------------------------------------------------


def test_layer_and_history_models_pass_the_model_tester(qapp, qtmodeltester):
    src, image = _loaded_image()
    qtmodeltester.check(LayerTableModel(image), force_py=True)
    qtmodeltester.check(HistoryTableModel(image), force_py=True)
    src.close()


@pytest.mark.parametrize("layer", [None, 0, 1, 2, 3])
@pytest.mark.parametrize("mode", [MERGED, DIFF])
def test_file_tree_model_passes_the_model_tester(qapp, qtmodeltester, layer, mode):
    src, image = _loaded_image()
    model = FileTreeModel(TreeView(image.tree, layer, mode))
    qtmodeltester.check(model, force_py=True)
    model.set_visible({"/data", "/data/modify-me.txt"})
    qtmodeltester.check(model, force_py=True)
    src.close()


def _as_painted(index, role, kept):
    """A cell's value for one role as Qt's item delegate reads it: through ``multiData``, into
    an array the delegate keeps from cell to cell (``kept``, by role)."""
    from PySide6.QtCore import QModelRoleData, QModelRoleDataSpan

    wanted = kept.setdefault(role, QModelRoleData(role))
    index.multiData(QModelRoleDataSpan(wanted))
    return _comparable(wanted.data())


def _comparable(value):
    from PySide6.QtGui import QIcon

    return ("icon", value.cacheKey()) if isinstance(value, QIcon) else value


PAINTED_ROLES = [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.FontRole,
                 Qt.ItemDataRole.TextAlignmentRole, Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.BackgroundRole,
                 Qt.ItemDataRole.CheckStateRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.UserRole]


def _cells(model, parent=None):
    parent = parent or QModelIndex()
    for row in range(model.rowCount(parent)):
        for col in range(model.columnCount(parent)):
            yield model.index(row, col, parent)
        yield from _cells(model, model.index(row, 0, parent))


@pytest.mark.parametrize("layer", [None, 1, 2])
@pytest.mark.parametrize("mode", [MERGED, DIFF])
def test_what_the_tree_paints_is_what_its_cells_hold(qapp, layer, mode):
    """The delegate reads a cell's roles all in one call: the same values, for every cell
    (removed rows struck out, links with their targets, folders with their sizes)."""
    src, image = _loaded_image()
    model = FileTreeModel(TreeView(image.tree, layer, mode))
    cells = list(_cells(model))
    assert cells
    seen, kept = {}, {}
    for index in cells:
        for role in PAINTED_ROLES:
            value = _as_painted(index, role, kept)
            assert value == _comparable(model.data(index, role)), (index.data(Qt.ItemDataRole.UserRole), index.column(), role)
            seen.setdefault(role, set()).add(str(value))
    assert len(seen[Qt.ItemDataRole.DecorationRole]) > 1  # (icons of more than one kind were compared)
    removed = [i for i in cells if i.column() == CHANGE and i.data() == "removed"]
    assert all(_as_painted(i, Qt.ItemDataRole.FontRole, kept).strikeOut() for i in removed)
    src.close()


def test_a_cell_of_no_row_leaves_nothing_of_the_cell_before(qapp):
    from PySide6.QtCore import QModelRoleData, QModelRoleDataSpan

    src, image = _loaded_image()
    model = FileTreeModel(TreeView(image.tree, None, MERGED))
    wanted = QModelRoleData(Qt.ItemDataRole.DisplayRole)
    model.index(0, 0).multiData(QModelRoleDataSpan(wanted))
    assert wanted.data() == "bin"  # (what the array held from the cell before)
    model.multiData(QModelIndex(), QModelRoleDataSpan(wanted))
    assert wanted.data() is None
    src.close()


def test_some_layer_of_the_tree_test_image_removes_a_path(qapp):
    """(So that the test above compares the struck-out rows too.)"""
    src, image = _loaded_image()
    assert any(i.column() == CHANGE and i.data() == "removed"
               for i in _cells(FileTreeModel(TreeView(image.tree, 2, DIFF))))
    src.close()


def test_what_the_layer_and_history_tables_paint_is_what_their_cells_hold(qapp):
    from explorer.image.loader import preview_image

    src = open_source(str(LEGACY))
    for image in (load_image(src, src.select()), preview_image(src, src.select())):
        for model in (LayerTableModel(image), HistoryTableModel(image)):
            cells, kept = list(_cells(model)), {}
            assert cells
            for index in cells:
                for role in PAINTED_ROLES:
                    assert _as_painted(index, role, kept) == _comparable(model.data(index, role)), (type(model), index.row(), index.column(), role)
    src.close()


def _by_data(model_type):
    """``model_type`` painted as Qt paints a model of its own: ``data`` called for each role."""
    from PySide6.QtCore import QAbstractItemModel

    return type("ByData", (model_type,), {"multiData": lambda self, index, roles: QAbstractItemModel.multiData(self, index, roles)})


@pytest.mark.parametrize("what", ["tree", "diff", "layers", "history"])
def test_the_views_paint_what_a_call_of_data_for_each_role_paints(qtbot, what):
    """What the user sees, pixel for pixel: the tree and the tables painted through their
    ``multiData``, and through Qt's own, which asks ``data`` for each role."""
    from explorer.ui.widgets import side_table

    src, image = _loaded_image()
    pictures = []
    for wrap in (lambda t: t, _by_data):
        if what in ("tree", "diff"):
            model = wrap(FileTreeModel)(TreeView(image.tree, 2 if what == "diff" else None, DIFF if what == "diff" else MERGED))
            view = QTreeView()
            view.setModel(model)
            view.expandAll()
        else:
            model = wrap(LayerTableModel if what == "layers" else HistoryTableModel)(image)
            view = side_table(what, what, model)
        qtbot.addWidget(view)
        view.resize(900, 700)
        view.show()
        qtbot.waitExposed(view)
        pictures.append(view.viewport().grab().toImage())
    assert pictures[0] == pictures[1]
    src.close()


def test_tree_model_is_lazy(qtbot):
    src, image = _loaded_image()
    model = FileTreeModel(TreeView(image.tree, None, MERGED))
    assert model.rowCount() == 9  # bin data etc opt root srv tmp usr var
    assert all(c.children is None for c in model._root.children)  # nothing below the top built
    src.close()


def test_a_shown_row_costs_the_cycle_collector_one_object(qtbot, qtmodeltester):
    """A row the tree shows keeps its values in a plain tuple, which CPython's collector stops
    tracking, not in named tuples (a ``Row`` holding an ``Entry``) that every full pass walks
    for as long as they are shown: after * on the realistic image's /usr the window held
    103,000 objects for each pass to walk, 82,000 with plain tuples. The rows read the same."""
    import gc

    src, image = _loaded_image()
    view = TreeView(image.tree, None, MERGED)
    model = FileTreeModel(view)
    nodes, stack = [], [QModelIndex()]
    while stack:  # every folder opened
        parent = stack.pop()
        for r in range(model.rowCount(parent)):
            index = model.index(r, 0, parent)
            nodes.append(index.internalPointer())
            stack.append(index)
    gc.collect()
    assert len(nodes) > 20
    assert not any(gc.is_tracked(n.plain) for n in nodes)
    assert not any(gc.is_tracked(r) for n in nodes for r in n.rows)
    for n in nodes:  # (and each still reads as the view's row)
        assert n.row == view.row(n.path)
    qtmodeltester.check(model, force_py=True)
    src.close()


def test_a_huge_folder_is_handed_to_the_view_in_batches(qtbot, qtmodeltester, tmp_path):
    from explorer.ui.file_tree_model import BATCH, SIZE

    count = BATCH * 2 + 500
    path = tmp_path / "wide.tar"
    path.write_bytes(docker_archive([layer_tar([f(f"wide/f{i:05d}", "x" * (i % 7)) for i in range(count)])]))
    src, image = _loaded_image(path)
    model = FileTreeModel(TreeView(image.tree, None, MERGED))
    wide = model.index(0, 0)
    assert model.rowCount(wide) == BATCH and model.canFetchMore(wide)
    assert [model.index(r, 0, wide).data() for r in range(3)] == ["f00000", "f00001", "f00002"]
    with qtbot.waitSignal(model.rowsInserted):
        model.fetchMore(wide)
    assert model.rowCount(wide) == 2 * BATCH
    last = model.index_for_path(f"/wide/f{count - 1:05d}")  # beyond what was handed out: fetched up to it
    assert last.isValid() and last.row() == count - 1 and not model.canFetchMore(wide)
    model.sort(SIZE, Qt.SortOrder.DescendingOrder)  # a new order is sorted whole, then batched again
    wide = model.index(0, 0)
    assert model.rowCount(wide) == BATCH
    # a huge folder's order is made from names alone: the same as from whole rows
    from explorer.ui.file_tree_model import _folders_first

    for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
        by_name = FileTreeModel(TreeView(image.tree, None, MERGED))
        by_name.sort(0, order)
        top = by_name.index(0, 0)
        by_name.index_for_path(f"/wide/f{count - 1:05d}" if order == Qt.SortOrder.AscendingOrder else "/wide/f00000")
        shown = [by_name.index(r, 0, top).data(Qt.ItemDataRole.UserRole) for r in range(by_name.rowCount(top))]
        whole = _folders_first(TreeView(image.tree, None, MERGED).children("/wide"), order == Qt.SortOrder.DescendingOrder)
        assert shown == [r.path for r in whole]
    biggest = sorted((i % 7 for i in range(count)), reverse=True)[:BATCH]
    assert [model.index(r, 1, wide).data() for r in range(BATCH)] == [f"{n} B" for n in biggest]
    qtmodeltester.check(model, force_py=True)
    wide = model.index(0, 0)
    handed = [model.index(r, 0, wide).data() for r in range(model.rowCount(wide))]
    assert len(set(handed)) == len(handed)  # each row once, however often Qt asked for more
    last_by_size = max(i for i in range(count) if i % 7 == 0)  # the smallest, last of its size by name
    assert model.index_for_path(f"/wide/f{last_by_size:05d}").isValid() and model.rowCount(wide) == count
    # a real view asks for more as it scrolls to the end
    view = QTreeView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    view.setModel(FileTreeModel(TreeView(image.tree, None, MERGED)))
    view.expand(view.model().index(0, 0))
    shown = lambda: view.model().rowCount(view.model().index(0, 0))  # noqa: E731
    assert shown() < count  # expanding fetched a batch or two, not all
    qtbot.waitUntil(lambda: (view.scrollToBottom(), shown() == count)[1], timeout=5_000)
    src.close()


def test_a_huge_folder_of_files_and_folders_is_ordered_as_a_small_one(qtbot, tmp_path):
    from explorer.ui.file_tree_model import BATCH, _folders_first

    entries = [f(f"mix/f{i:05d}", "x") for i in range(BATCH + 50)] + [f(f"mix/d{k}/inner", "y") for k in (3, 1, 2)]
    entries += [f("mix/gone", "z")]
    later = [f"mix/f{i:05d}" for i in range(0, BATCH + 50, 7)]  # written again in layer 1
    path = tmp_path / "mix.tar"
    added = [f(f"mix/n{i:02d}", "n") for i in range(20)]  # only from layer 1 on
    path.write_bytes(docker_archive([layer_tar(entries), layer_tar([f(p, "new") for p in later] + added)]))
    src, image = _loaded_image(path)
    for layer in (None, 0, 1):
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            model = FileTreeModel(TreeView(image.tree, layer, MERGED))
            model.sort(0, order)
            mix = model.index(0, 0)
            assert model.rowCount(mix) == BATCH
            while model.canFetchMore(mix):
                model.fetchMore(mix)
            shown = [(model.index(r, 0, mix).data(Qt.ItemDataRole.UserRole), model.index(r, 5, mix).data())
                     for r in range(model.rowCount(mix))]
            rows = _folders_first(TreeView(image.tree, layer, MERGED).children("/mix"), order == Qt.SortOrder.DescendingOrder)
            assert [p for p, _ in shown] == [r.path for r in rows]
            assert shown[0][0] == ("/mix/d1" if order == Qt.SortOrder.AscendingOrder
                                   else "/mix/gone" if layer == 0 else "/mix/n19")  # folders first, files last
            assert (("/mix/n00", "added") in shown) == (layer == 1) and (("/mix/n00", "") in shown) == (layer is None)
            if layer == 1:
                assert ("/mix/f00007", "modified") in shown  # the layer's change, as small folders show it
    src.close()


def test_a_huge_folder_opens_at_once_and_fills_in_between_events(qtbot, window, tmp_path):
    from explorer.ui.file_tree_model import BATCH

    count = BATCH * 3
    path = tmp_path / "wide.tar"
    path.write_bytes(docker_archive([layer_tar([f(f"wide/f{i:05d}", "x") for i in range(count)]),
                                     layer_tar([f("wide/zz-last", "y")])]))
    view = _open(qtbot, window, path)
    model = view.tree_model
    wide = model.index_for_path("/wide")
    view.file_tree.expand(wide)
    assert model.rowCount(wide) == 0 and model.hasChildren(wide)  # being ordered, still a folder
    assert view.file_tree.isExpanded(wide)
    qtbot.waitUntil(lambda: model.rowCount(wide) >= BATCH, timeout=10_000)
    assert [model.index(r, 0, wide).data() for r in range(2)] == ["f00000", "f00001"]
    # another layer: the folder is opened again and ordered again; a path in it is found at once
    view.set_layer(0)
    view.select_path(f"/wide/f{count - 1:05d}")
    assert view.current_path() == f"/wide/f{count - 1:05d}"
    view.set_layer(1)
    wide = model.index_for_path("/wide")
    qtbot.waitUntil(lambda: model.rowCount(wide) >= BATCH, timeout=10_000)
    assert model.index_for_path("/wide/zz-last").isValid()  # fetched up to it, in layer 1's order


def test_a_huge_folder_with_folders_after_it_still_shows_all_its_rows(qtbot, window, tmp_path):
    from explorer.ui.file_tree_model import BATCH

    count = BATCH * 5 + 300
    path = tmp_path / "wide.tar"
    entries = [f(f"big/f{i:05d}", "x") for i in range(count)] + [f(f"zz{k}/a", "y") for k in range(3)]
    path.write_bytes(docker_archive([layer_tar(entries)]))
    view = _open(qtbot, window, path)
    big = view.tree_model.index_for_path("/big")
    view.file_tree.expand(big)
    # Qt itself asks for more only when the folder ends the whole list; here folders follow it
    shown = lambda: view.tree_model.rowCount(big)  # noqa: E731
    qtbot.waitUntil(lambda: (view.file_tree.scrollToBottom(), shown() == count)[1], timeout=10_000)


def test_long_walks_run_between_events_and_the_newest_of_a_kind_wins(qtbot, capsys):
    import time

    from PySide6.QtCore import QTimer

    from explorer.ui.workers import Slices

    slices = Slices()
    ticks = []
    timer = QTimer(interval=1)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()

    def walk(n, value):
        for _ in range(n):
            time.sleep(0.001)  # a millisecond of work a step
            yield
        return value

    def broken():
        yield
        raise ValueError("a bug")

    results = []

    def then(kind):
        return lambda value: results.append((kind, value))

    slices.run("sizes", walk(300, "old"), then=then("sizes"))
    slices.run("sizes", walk(300, "new"), then=then("sizes"))  # replaces the first
    slices.run("ahead", walk(10, "idle"), idle=True, then=then("ahead"))
    slices.run("bug", broken(), then=then("bug"))
    qtbot.waitUntil(lambda: len(results) == 2, timeout=10_000)
    assert results == [("sizes", "new"), ("ahead", "idle")]  # idle work last; the broken one said nothing
    assert "a bug" in capsys.readouterr().err
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) > 10 and max(gaps) < 0.1  # the events went on between slices
    slices.run("save", walk(5, "saved"), then=then("save"))
    slices.finish("save")  # run to the end now, as when the window closes
    assert results[-1] == ("save", "saved") and slices.pending() == []
    slices.run("sizes", walk(1000, "never"))
    slices.cancel_all()
    assert slices.pending() == []
    timer.stop()


def test_a_walk_that_waits_for_another_does_not_keep_it_from_running(qtbot):
    """Walks take turns: opening a folder's subtree waits for a huge folder's rows, which
    another walk orders (the first walk ran every turn, and both forever)."""
    from explorer.ui.workers import PAUSE, Slices

    slices, ordered, results, asked = Slices(), [], [], []

    def waiting():
        while not ordered:
            asked.append(True)
            yield PAUSE  # (its turn ends: it does not spin through its slice)
        return "opened"

    def ordering():
        for _ in range(20):
            yield
        ordered.append(True)
        return "ordered"

    slices.run("open below", waiting(), then=results.append)
    slices.run("order", ordering(), then=results.append)
    qtbot.waitUntil(lambda: len(results) == 2, timeout=5_000)
    assert results == ["ordered", "opened"] and len(asked) <= 25  # once a turn at most


def test_freed_memory_goes_back_to_the_system_once_the_walks_are_done(qtbot, monkeypatch):
    """The heap's free pages are given back once no walk has ended for a while: not after
    each one, not while walks follow one another, not while another walk is under way."""
    import time

    from explorer.ui import memory
    from explorer.ui.workers import Slices

    trims = []
    monkeypatch.setattr(memory, "_TRIM", lambda pad: trims.append((time.perf_counter(), pad)))
    monkeypatch.setattr(memory, "IDLE_MS", 200)
    slices, other, done = Slices(), Slices(), []

    def walk(n, pause=0.0):
        for _ in range(n):
            time.sleep(pause)
            yield
        return n

    for n in range(3):  # one walk after another, each as the last ends
        slices.run("sizes", walk(50 + n), then=done.append)
        qtbot.waitUntil(lambda: len(done) == n + 1, timeout=5_000)
    ended = time.perf_counter()
    assert trims == []  # (none while the user is at work)
    qtbot.waitUntil(lambda: len(trims) == 1, timeout=5_000)
    assert trims[0][1] == 0 and trims[0][0] - ended >= 0.15  # once, after the wait
    qtbot.wait(400)
    assert len(trims) == 1  # and not again until more work is done
    other.run("search", walk(100, 0.005), then=done.append)  # half a second of another walk
    slices.run("sizes", walk(1), then=done.append)
    qtbot.waitUntil(lambda: done[-1] == 1, timeout=5_000)
    qtbot.waitUntil(lambda: done[-1] == 100, timeout=5_000)
    last = time.perf_counter()
    qtbot.waitUntil(lambda: len(trims) == 2, timeout=5_000)
    assert trims[1][0] - last >= 0.15  # only once both were done


def test_the_window_leaves_the_cycle_collector_as_it_was_and_holds_no_modules_source(qtbot, window):
    """Nothing is frozen out of the collector's sight (a frozen cycle is never freed), and the
    lines of source PySide6 reads as each module is imported are let go of."""
    import gc
    import linecache

    import explorer.ui.main_window

    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert explorer.ui.main_window.__file__ not in linecache.cache


def test_a_local_archive_is_indexed_by_its_worker_before_it_shows(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    view = _open(qtbot, window)
    assert view.image.from_cache  # mapped from the file its worker wrote, not built here
    saved = [p for p in (tmp_path / "cache" / "index").iterdir() if not p.name.startswith(".")]
    assert len(saved) == 1


def test_the_preview_becomes_the_loaded_view_and_rebuilds_what_it_showed(qtbot, window, monkeypatch):
    import threading

    from explorer.image import load_worker
    from explorer.ui.insights_panel import InsightsPanel

    go = threading.Event()
    real = load_worker.load
    monkeypatch.setattr(load_worker, "load", lambda *a: go.wait(30) and real(*a))  # held until the test says
    with qtbot.waitSignal(window.layers_shown, timeout=30_000) as shown:
        _drop(window, [LEGACY])
    preview = shown.args[0]
    assert preview.image.pending and not preview.file_tree.isVisible() and not preview.search_box.isEnabled()
    # a docker-archive's manifest gives no sizes: none is made up before the layers are read
    assert preview.layer_strip.fields["sizes"].full_text() == "final files … · stored in layers …"
    preview.show_insights()  # looked at while the files are still being read
    early = preview.insights
    with qtbot.waitSignal(window.image_loaded, timeout=30_000) as loaded:
        go.set()
    view = loaded.args[0]
    assert view is preview and window.tabs.count() == 1  # the same widgets, now with the files
    assert not view.image.pending and view.search_box.isEnabled()
    assert "…" not in view.layer_strip.fields["sizes"].full_text()
    assert view.tree_model.rowCount() > 0
    assert isinstance(view.insights, InsightsPanel) and view.insights is not early  # made anew from the loaded image
    assert view.center_tabs.currentWidget() is view.insights
    view.center_tabs.setCurrentIndex(0)
    assert view.file_tree.isVisible()


def _accounting_held(monkeypatch):
    """Any image's files shown before their accounting (as a big image's are), and the
    accounting, once the worker has sent it, held back from the window until the event
    returned is set."""
    import threading

    from explorer.image import load_worker

    monkeypatch.setattr(load_worker, "EARLY_AT", 0)
    go = threading.Event()
    real = load_worker._mapped

    def held(*args):
        image = real(*args)  # (the files were shown meanwhile)
        go.wait(30)
        return image

    monkeypatch.setattr(load_worker, "_mapped", held)
    return go


def test_a_big_image_shows_its_files_before_its_waste_and_advice(qtbot, window, monkeypatch, qtmodeltester):
    from explorer.ui.insights_panel import InsightsPanel

    go = _accounting_held(monkeypatch)
    with qtbot.waitSignal(window.files_shown, timeout=30_000) as shown:
        _drop(window, [LEGACY])
    view = shown.args[0]
    assert not view.image.analysed and view.image.waste is None and window.loader.busy
    assert view.file_tree.isVisible() and view.search_box.isEnabled() and view.tree_model.rowCount() > 0
    qtmodeltester.check(view.tree_model)
    assert window.tabs.tabText(window.tabs.indexOf(view)).endswith("(working out…)")
    assert view.layer_strip.fields["packages"].full_text() == "…"  # not "none found": not looked for yet
    view.set_layer(1)  # the user goes on meanwhile
    view.show_insights()
    waiting = view.center_tabs.currentWidget()
    assert view.insights is None and waiting.objectName() == "analysing" and "Working out" in waiting.text()
    with qtbot.waitSignal(window.image_loaded, timeout=30_000) as loaded:
        go.set()
    assert loaded.args[0] is view and window.tabs.count() == 1  # the same view, the files as the user left them
    assert view.image.analysed and view.image.tree is shown.args[0].image.tree and view.layer == 1
    assert isinstance(view.insights, InsightsPanel) and view.center_tabs.currentWidget() is view.insights
    qtmodeltester.check(view.insights.waste_model)
    assert view.insights.waste_model.rowCount() == len(view.image.waste.files) == 8  # as report --json counts them
    assert "working out" not in window.tabs.tabText(window.tabs.indexOf(view))
    assert view.layer_strip.fields["packages"].full_text() == "no package database in this image"
    assert not window.loader.busy


def test_files_shown_early_then_an_image_built_another_way_replace_them(qtbot, window, monkeypatch):
    """When the whole index cannot be had after the files were shown (no room for it, say),
    the image built instead is shown in their place, not half of each."""
    from explorer.image import load_worker

    real = load_worker.load

    def no_room_after(source, ref, monitor, on_files=None, early_at=None):
        real(source, ref, monitor, on_files, 0)  # (the files shown)
        return load_worker.in_memory(source, ref, monitor)  # as when no folder took the whole index

    monkeypatch.setattr(load_worker, "load", no_room_after)
    seen = []
    window.files_shown.connect(lambda shown: seen.append((shown, shown.image.analysed)))
    with qtbot.waitSignal(window.image_loaded, timeout=30_000) as loaded:
        _drop(window, [LEGACY])
    view = loaded.args[0]
    assert seen == [(view, False), (view, True)] and window.tabs.count() == 1  # early, then in their place
    assert view.image.analysed and not view.image.from_cache and "held in memory" in view.notes.text()
    assert view.files.view.tree is view.image.tree  # the files shown are the new image's
    assert view.tree_model.rowCount() > 0 and "working out" not in window.tabs.tabText(0)


def test_closing_a_tab_whose_accounting_is_worked_out_stops_the_load(qtbot, window, monkeypatch):
    """The tab goes, with what the view had started (a file's preview), and the load's result
    is dropped when it comes: the tab does not come back."""
    from PySide6.QtCore import QThreadPool

    go = _accounting_held(monkeypatch)
    opened = _counted_sources(monkeypatch)
    loaded = []
    window.image_loaded.connect(loaded.append)
    with qtbot.waitSignal(window.files_shown, timeout=30_000) as shown:
        _drop(window, [LEGACY])
    view = shown.args[0]
    view.select_path("/data/modify-me.txt")  # its preview is read in the background
    window.close_tab(window.tabs.indexOf(view))
    assert not view.preview.background.busy  # stopped with the tab
    assert window.tabs.count() == 0 and not window.loader.busy
    assert window.stack.currentWidget() is window.start_page
    go.set()
    assert QThreadPool.globalInstance().waitForDone(30_000)
    qtbot.waitUntil(lambda: window.loader._signals == {}, timeout=10_000)  # its result came, and was dropped
    assert loaded == [] and window.tabs.count() == 0
    assert [s.closes for s in opened] == [1]  # the archive closed with the tab, and not again


def _accounting_stopped(monkeypatch, failure=None):
    """Any image's files shown before their accounting, and the load then held until it is
    cancelled (or, with ``failure``, failing with it once the window shows the files); the
    sources loaded, each closed as often as it was (``closes``)."""
    import time

    from explorer.image import load_worker
    from explorer.model.errors import Cancelled

    real, opened = load_worker.load, _counted_sources(monkeypatch)

    def held(source, ref, monitor, on_files=None, early_at=None):
        image = real(source, ref, monitor, on_files, 0)  # (the files shown meanwhile)
        if failure is not None:
            while not any(getattr(s, "shown", False) for s in opened):
                time.sleep(0.02)
            raise failure
        while not monitor.cancelled:
            time.sleep(0.02)  # (the loading thread's: the window goes on meanwhile)
        raise Cancelled("cancelled")

    monkeypatch.setattr(load_worker, "load", held)
    return opened


def _counted_sources(monkeypatch) -> list:
    """The sources the window opens from now on (a list it fills), each counting its closes."""
    from explorer.formats.source import open_source as real_open

    opened = []

    def counted(*args, **kwargs):
        source = real_open(*args, **kwargs)
        close, source.closes = source.close, 0

        def closing():
            source.closes += 1
            close()

        source.close = closing
        opened.append(source)
        return source

    monkeypatch.setattr("explorer.ui.workers.open_source", counted)
    return opened


def _files_kept(qtbot, window, view, reason: str) -> None:
    """``view`` still shows its files, without their accounting, saying why."""
    from PySide6.QtCore import QThreadPool

    from explorer.image.content import read_entry

    assert QThreadPool.globalInstance().waitForDone(30_000)  # (the load's thread has ended)
    assert window.tabs.count() == 1 and window.tabs.widget(0) is view and not window.loader.busy
    assert "working out" not in window.tabs.tabText(0) and view.tree_model.rowCount() > 0
    assert view.source.closes == 0  # the view has the archive now, and reads from it
    entry = view.image.tree.entry_at("/data/modify-me.txt")
    assert read_entry(view.source, view.image, entry) == b"original\nmodified in layer 3\n"
    assert view.layer_strip.fields["packages"].full_text() == "not worked out"
    view.show_insights()
    page = view.center_tabs.currentWidget()
    assert page.objectName() == "unaccounted" and view.insights is None
    assert f"not worked out: {reason}." in page.text() and "Open the image again" in page.text()


def test_a_load_cancelled_while_its_files_are_shown_keeps_them(qtbot, window, monkeypatch):
    opened = _accounting_stopped(monkeypatch)
    with qtbot.waitSignal(window.files_shown, timeout=30_000) as shown:
        _drop(window, [LEGACY])
    view = shown.args[0]
    assert window.loader.busy and not view.image.analysed
    with qtbot.waitSignal(window.loader.cancelled, timeout=10_000):
        window.cancel_button.click()
    _files_kept(qtbot, window, view, "the load was cancelled")
    assert window.recent_files()[0] == view.source.info.path  # to open it again from
    window.close_tab(0)
    assert [s.closes for s in opened] == [1]  # closed with its tab, once


def test_a_load_failing_while_its_files_are_shown_keeps_them_and_says_why(qtbot, window, monkeypatch):
    from explorer.model.errors import SourceError

    failure = SourceError(str(LEGACY), "layer 3 could not be read to the end")
    opened = _accounting_stopped(monkeypatch, failure)
    failed = []
    window.load_failed.connect(failed.append)
    window.files_shown.connect(lambda view: setattr(view.source, "shown", True))  # (then the load fails)
    with qtbot.waitSignal(window.files_shown, timeout=30_000) as shown:
        _drop(window, [LEGACY])
    qtbot.waitUntil(lambda: bool(failed), timeout=30_000)
    _files_kept(qtbot, window, shown.args[0], str(failure).rstrip("."))
    box = window.dialogs[-1]
    assert box.windowTitle() == "Cannot work out this image's waste and advice" and "layer 3" in box.text()
    window.close_tab(0)
    assert [s.closes for s in opened] == [1]


def test_closing_the_window_while_files_are_worked_out_closes_their_archive(qtbot, window, monkeypatch):
    from PySide6.QtCore import QThreadPool

    opened = _accounting_stopped(monkeypatch)
    with qtbot.waitSignal(window.files_shown, timeout=30_000):
        _drop(window, [LEGACY])
    window.close()
    assert QThreadPool.globalInstance().waitForDone(30_000)
    assert [s.closes for s in opened] == [1]  # (the load's, handed back by the view that had it)


def test_the_window_answers_between_building_a_preview_and_showing_it(qtbot, window, monkeypatch):
    """Building the layers' view, and laying it out and painting it, are two waits with what
    came meanwhile (a click, a timer) handled between them, not one long wait."""
    from PySide6.QtCore import QTimer

    from explorer.ui.image_view import ImageView

    order: list[str] = []
    build = ImageView._build

    def _build(view):  # a timer due while the view is being built
        QTimer.singleShot(1, lambda: order.append("a timer due meanwhile"))
        build(view)

    placed = window.opening._place_preview
    monkeypatch.setattr(ImageView, "_build", _build)
    monkeypatch.setattr(window.opening, "_place_preview", lambda view: (order.append("shown"), placed(view)))
    with qtbot.waitSignal(window.image_loaded, timeout=30_000), qtbot.waitSignal(window.layers_shown, timeout=30_000):
        _drop(window, [LEGACY])
    assert order[:2] == ["a timer due meanwhile", "shown"]


def test_a_loaded_view_is_painted_in_turns_and_all_of_it_in_the_end(qtbot, window):
    """The files, then the layers and history beside them, then the focus (which makes a row
    current, and the side panel shows it): turns of their own, with what came meanwhile
    handled between; in the end every part paints again and the tree has the focus."""
    from PySide6.QtCore import QTimer

    order: list[tuple[str, bool]] = []
    window.image_loaded.connect(lambda view: QTimer.singleShot(0, lambda: order.append(("a timer", view.file_tree.hasFocus()))))
    view = _open(qtbot, window)
    qtbot.waitUntil(lambda: view.file_tree.hasFocus() and view.current_path() is not None, timeout=10_000)
    assert order == [("a timer", False)]  # (it ran before the focus was taken)
    assert view.layers_panel.updatesEnabled() and window.tabs.updatesEnabled()


def test_a_layer_chosen_has_its_files_at_once_and_painted_a_turn_later(qtbot, window):
    """The tree's rows are the layer's as soon as it is chosen (what a test or a shortcut reads
    next); their pixels follow a turn after the layer's row, strip and step."""
    view = _open(qtbot, window)
    qtbot.waitUntil(view.files.updatesEnabled, timeout=10_000)
    view.set_layer(1)
    assert view.tree_model.view.layer == 1 and view.layer_list.currentIndex().row() == 2
    qtbot.waitUntil(view.files.updatesEnabled, timeout=10_000)
    view.set_layer(1)  # (the same layer again: nothing to paint)
    assert view.files.updatesEnabled()


def test_the_focus_stays_where_the_user_put_it_while_the_view_is_painted(qtbot, window):
    """A click into the search box as the files arrive is not undone by the focus the window
    gives the tree a turn or two later."""
    from PySide6.QtCore import QTimer

    typed, later = [], []

    def after(turns: int) -> None:  # (a chain of timers set after the window's own: it ends after them)
        QTimer.singleShot(1, lambda: after(turns - 1) if turns else later.append(True))

    window.image_loaded.connect(lambda view: (view.search_box.setFocus(), typed.append(view), after(4)))
    view = _open(qtbot, window)
    qtbot.waitUntil(lambda: bool(later), timeout=10_000)
    assert typed == [view] and view.search_box.hasFocus() and not view.file_tree.hasFocus()


@pytest.mark.qt_no_exception_capture
def test_a_failure_while_the_view_is_put_in_place_leaves_no_part_unpainted(qtbot, window, monkeypatch, capsys):
    from explorer.ui import remembered

    def broken(*_args):
        raise RuntimeError("the settings cannot be written")

    monkeypatch.setattr(remembered, "add_recent", broken)  # (after the files are put in place)
    with qtbot.waitSignal(window.layers_shown, timeout=30_000) as shown:
        _drop(window, [LEGACY])
    view = shown.args[0]
    qtbot.waitUntil(lambda: not view.image.pending, timeout=30_000)
    qtbot.waitUntil(lambda: view.layers_panel.updatesEnabled() and window.tabs.updatesEnabled(), timeout=10_000)
    assert "the settings cannot be written" in capsys.readouterr().err


def test_the_tree_takes_the_colours_of_a_new_theme(qtbot):
    """The row the tree painted last keeps its colour for the next paint; a theme chosen
    meanwhile makes it again (a tree not on screen: nothing else is painted in between)."""
    from explorer.ui import resources, theme
    from explorer.ui.file_tree_model import follow

    src, image = _loaded_image()
    model = FileTreeModel(TreeView(image.tree, 2, DIFF))
    tree = QTreeView()
    qtbot.addWidget(tree)
    tree.setModel(model)
    follow(tree, model)
    index = model.index_for_path("/data/delete-me.txt")
    assert index.isValid() and model.index(index.row(), CHANGE, index.parent()).data() == "removed"
    kept = {}
    light = _as_painted(index, Qt.ItemDataRole.ForegroundRole, kept)
    assert light == resources.change_colour("removed")
    try:
        theme.apply(theme.DARK)
        qtbot.waitUntil(lambda: _as_painted(index, Qt.ItemDataRole.ForegroundRole, kept) == resources.change_colour("removed"), timeout=5_000)
        assert resources.is_dark() and resources.change_colour("removed") != light
    finally:
        theme.apply(theme.LIGHT)
    src.close()


def test_the_layer_and_history_tables_before_and_after_the_layers_are_read(qapp):
    """A docker-archive's manifest gives no stored sizes: "…" until the layers are read, never a
    made-up size; the digests it does give are shown at once."""
    from explorer.image.loader import preview_image

    src = open_source(str(LEGACY))
    ref = src.select()
    preview, loaded = preview_image(src, ref), load_image(src, ref)
    for image, pending in ((preview, True), (loaded, False)):
        layers, history = LayerTableModel(image), HistoryTableModel(image)
        first = layers.index(1, 0)
        row = [layers.index(1, c).data() for c in range(layers.columnCount())]
        assert row[0] == "0" and row[5].startswith("ADD") or row[5] == "(no history)", row
        sizes = row[1:4]
        if pending:
            assert sizes == ["…", "…", "…"] and layers.index(0, 1).data() == "…"
        else:
            assert all(s.endswith("B") for s in sizes[:2]) and sizes[2].startswith("+")
        digest = image.layers[0].digest
        assert row[4] == (digest[7:19] if digest.startswith("sha256:") else digest[:12]) or (pending and not digest and row[4] == "…")
        assert first.data(Qt.ItemDataRole.UserRole) == 0
        made = [h for h in image.history if h.layer is not None]
        size = history.index(made[0].index, 2).data()
        assert size == "…" if pending else size.endswith("B")
        empty = [h for h in image.history if h.layer is None and h.empty_layer]
        if empty:
            assert history.index(empty[0].index, 2).data() == "0 B"
    src.close()


def test_an_index_stays_mapped_whatever_walks_every_path(qtbot, window):
    view = _open(qtbot, window)
    assert view.image.from_cache
    chunks = view.image.tree.versions.chunks
    # (the view painted, and its first row current: the turns after the load are over)
    qtbot.waitUntil(lambda: not view.background.pending() and view.current_path() is not None, timeout=10_000)
    shown = set(chunks.kids)  # only the folders shown so far are decoded, idle time or not
    assert not chunks.complete
    view.show_inspect()  # its Size reads every path, from the file
    qtbot.waitUntil(lambda: view.inspect is not None, timeout=10_000)
    assert view.center_tabs.currentWidget() is view.inspect and set(chunks.kids) == shown
    view.center_tabs.setCurrentIndex(0)
    with qtbot.waitSignal(view.search_finished, timeout=10_000) as blocker:
        view.search_box.setText("modify-me")
    assert blocker.args[0] == 2  # /data and /data/modify-me.txt
    assert set(chunks.kids) <= shown | {"/data"}  # the search decoded its match's folder only


def test_the_window_keeps_access_points_of_big_gzip_layers(qtbot, window, tmp_path, monkeypatch):
    from explorer.formats import gzip_access
    from explorer.formats.source import open_source
    from explorer.image.content import read_entry
    from explorer.image.loader import load_image

    if not gzip_access.available():
        pytest.skip("rapidgzip is not installed")
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(gzip_access, "MIN_TAR", 0)  # the fixture's small layers stand for big ones
    real_reader = gzip_access.reader
    archive = DATA / "buildah-overlay.oci.tar"
    view = _open(qtbot, window, archive)
    gzipped = [s for s in view.image.scans if s.compression == "gzip"]
    assert gzipped
    saved = tmp_path / "cache" / "access"
    blobs = {s.blob_digest.split(":")[-1] for s in gzipped}
    qtbot.waitUntil(lambda: saved.exists() and {p.name for p in saved.iterdir()} == blobs, timeout=20_000)  # made in the background
    files = [e for e in view.image.tree.merged() if e.type == "file" and e.size]
    reads = []
    monkeypatch.setattr(gzip_access, "reader", lambda *a: reads.append(1) or real_reader(*a))
    shown = {e.path: read_entry(view.source, view.image, e) for e in files}
    assert len(reads) == len(files)  # every read started from the saved points
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "elsewhere"))  # the plain read below must not find them
    with open_source(str(archive)) as plain:
        image = load_image(plain, plain.select(), cache=False)
        assert shown == {e.path: read_entry(plain, image, image.tree.entry_at(e.path)) for e in files}
    assert len(reads) == len(files)


def test_a_source_opened_for_a_request_made_stale_is_closed(qtbot, window, monkeypatch):
    from explorer.ui import workers

    import threading

    first: list = []
    opened, gate = threading.Event(), threading.Event()
    real = workers.open_source

    def slow_first(path, monitor=None, keep=False):
        source = real(path, monitor, keep=keep)
        if path == str(LEGACY):
            first.append(source)
            opened.set()
            gate.wait(10)  # opened, and handed back only once a newer request has replaced it
        return source

    monkeypatch.setattr(workers, "open_source", slow_first)
    window.loader.open(str(LEGACY))
    qtbot.waitUntil(opened.is_set, timeout=10_000)
    with qtbot.waitSignal(window.loader.opened, timeout=20_000) as blocker:
        window.loader.open(str(DATA / "buildah-overlay.oci.tar"))  # the first is stale now
        gate.set()
    assert blocker.args[0].info.path.endswith("buildah-overlay.oci.tar")
    qtbot.waitUntil(lambda: first[0].container._map is None, timeout=10_000)  # nobody will show it: closed
    blocker.args[0].close()


def test_a_source_no_worker_can_open_is_built_here_and_shown_from_its_index(qtbot, window, tmp_path, monkeypatch):
    import gc
    import weakref

    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    from explorer.image import load_worker

    # a source read once (an engine's stream not kept in a file) is built in the window's process
    monkeypatch.setattr(load_worker, "suitable", lambda source, ref: False)
    built = []

    def load_image(*args, **kwargs):
        image = real(*args, **kwargs)
        built.append(weakref.ref(image.tree))
        return image

    real = load_worker.load_image
    monkeypatch.setattr(load_worker, "load_image", load_image)
    view = _open(qtbot, window)
    assert view.image.from_cache and view.image.tree.encoded()  # what is shown is the index, mapped
    saved = [p for p in (tmp_path / "cache" / "index").iterdir() if not p.name.startswith(".")]
    assert len(saved) == 1  # and a reopen maps it
    assert gc.isenabled()  # the collector as it was
    assert built and built[0]() is None  # what was built is gone, without waiting for the collector


@pytest.mark.parametrize("big", [False, True])
def test_star_opens_a_folders_subtree_but_only_two_levels_of_a_big_image(qtbot, window, tmp_path, monkeypatch, big):
    from explorer.ui import files_page

    if big:  # (a big image, as far as the rule goes: more paths than the limit)
        monkeypatch.setattr(files_page, "EXPAND_ALL_LIMIT", 5)
    archive = tmp_path / "deep.tar"
    archive.write_bytes(docker_archive([layer_tar([f("a/b/c/d/e/file", "x"), f("a/b/other", "y")])]))
    view = _open(qtbot, window, archive)
    tree, model = view.file_tree, view.tree_model
    tree.setFocus()
    tree.setCurrentIndex(model.index_for_path("/a"))
    qtbot.keyClick(tree, Qt.Key.Key_Asterisk)
    qtbot.waitUntil(lambda: not view.files.background.pending("open below"), timeout=5_000)
    opened = {p for p in ("/a", "/a/b", "/a/b/c", "/a/b/c/d") if tree.isExpanded(model.index_for_path(p))}
    assert opened == ({"/a", "/a/b"} if big else {"/a", "/a/b", "/a/b/c", "/a/b/c/d"})


def test_what_the_load_noticed_is_said_above_the_pages(qtbot, window, tmp_path):
    from tests.builders import hard

    archive = tmp_path / "noted.tar"
    archive.write_bytes(docker_archive([layer_tar([f("etc/a", "x"), hard("bin/x", "no/such/file"),
                                                   hard("bin/y", "gone/too")])]))
    view = _open(qtbot, window, archive)
    assert view.notes.isVisible()
    text = view.notes.text()
    assert "Layer 0: hardlink /bin/x points to" in text and "and 1 more" in text
    view.notes.linkActivated.emit("notes")  # "and 1 more…": every note, in a box to copy them from
    box = view.findChild(QMessageBox)
    qtbot.waitUntil(box.isVisible)
    assert "/bin/x" in box.detailedText() and "/bin/y" in box.detailedText()
    box.close()
    clean = _open(qtbot, window)  # an image with nothing to say says nothing
    assert clean.image.warnings == () and clean.notes.isHidden()


def test_with_no_room_for_its_index_the_image_is_shown_from_memory_and_says_so(qtbot, window, tmp_path, monkeypatch):
    from explorer.image import load_worker

    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))

    def no_room(source, ref, monitor, _on_files=None):  # what the worker says when no folder took its index
        raise load_worker.NoRoom(f"{source.info.path}: no folder would hold the image's index")

    monkeypatch.setattr(load_worker, "load", no_room)
    view = _open(qtbot, window)
    assert not view.image.from_cache and view.image.file_count == 68  # built here, kept as built
    assert view.notes.isVisible() and "held in memory" in view.notes.text()
    assert "free some disk space" in view.notes.text()


# -- the window ---------------------------------------------------------------------------


def test_start_page_then_drop_loads_the_archive(qtbot, window):
    assert window.stack.currentWidget() is window.start_page
    view = _open(qtbot, window)
    assert window.stack.currentWidget() is window.tabs
    assert window.findChild(QTableView, "layerList").model().rowCount() == 5  # all + 4 layers
    assert window.findChild(QTableView, "historyPanel").model().rowCount() == 10
    assert window.findChild(QTreeView, "fileTree") is view.file_tree
    assert "fixture-layers:docker-legacy" in window.status_label.text()
    assert "68 entries, 2.0 MB final files" in window.status_label.text()  # as report --text counts them
    assert "2.6 MB stored" in window.status_label.text()  # the layer blobs, labelled apart
    assert window.recent_files()[0] == str(LEGACY.resolve())


def test_each_layer_shows_the_changes_the_tools_list(qtbot, window):
    view = _open(qtbot, window)
    expected = parse(DATA / "docker-legacy.expected.txt")["images"][0]
    view.set_mode(DIFF)
    layers = window.findChild(QTableView, "layerList")
    for k, want in enumerate(expected.changes):
        layers.selectRow(k + 1)  # as a click would
        assert view.layer == k
        shown = {p: c for p, c in _all_rows(view.tree_model) if c != "unchanged"}
        assert shown == want, f"layer {k}"


def test_merged_view_at_a_layer(qtbot, window):
    view = _open(qtbot, window)
    view.set_layer(1)
    paths = {p for p, _ in _all_rows(view.tree_model)}
    assert "/data/delete-me.txt" in paths and "/data/copied.txt" not in paths
    view.set_layer(None)
    paths = {p for p, _ in _all_rows(view.tree_model)}
    assert "/data/delete-me.txt" not in paths and "/data/copied.txt" in paths


def test_history_and_layer_selection_follow_each_other(qtbot, window):
    view = _open(qtbot, window)
    layers = window.findChild(QTableView, "layerList")
    history = window.findChild(QTableView, "historyPanel")
    layers.selectRow(3)  # layer 2 was made by history step 5
    assert history.currentIndex().row() == 5
    history.selectRow(3)  # step 3 made layer 1
    assert view.layer == 1 and layers.currentIndex().row() == 2
    history.selectRow(4)  # an empty step: the layer stays
    assert view.layer == 1


def test_layer_stepping_by_keyboard(qtbot, window):
    view = _open(qtbot, window)
    window.findChild(type(window.actions()[0]), "actionNextLayer").trigger()
    assert view.layer == 0
    window.findChild(type(window.actions()[0]), "actionNextLayer").trigger()
    assert view.layer == 1
    window.findChild(type(window.actions()[0]), "actionPreviousLayer").trigger()
    assert view.layer == 0


def test_filters_hide_kinds_of_change(qtbot, window):
    view = _open(qtbot, window)
    view.set_layer(2)
    view.set_mode(DIFF)
    with qtbot.waitSignal(view.search_finished, timeout=10_000):
        view.hide_boxes["removed"].setChecked(True)
    rows = _all_rows(view.tree_model)
    assert not [p for p, c in rows if c == "removed"]
    assert ("/data/modify-me.txt", "modified") in rows and ("/opt/replaceme/new.txt", "added") in rows
    with qtbot.waitSignal(view.search_finished, timeout=10_000):
        view.hide_boxes["removed"].setChecked(False)
    assert ("/data/delete-me.txt", "removed") in _all_rows(view.tree_model)


def test_a_search_opens_the_first_folders_of_its_matches_not_all(qtbot, window, tmp_path):
    from explorer.ui.files_page import MAX_EXPANDED_MATCHES

    many = MAX_EXPANDED_MATCHES + 50
    archive = tmp_path / "many.tar"
    archive.write_bytes(docker_archive([layer_tar([f(f"srv/d{i:04d}/hit.txt", "x") for i in range(many)])]))
    view = _open(qtbot, window, archive)
    with qtbot.waitSignal(view.search_finished, timeout=10_000) as blocker:
        view.search_box.setText("hit.txt")
    assert blocker.args[0] == 2 * many + 1  # every match, its folder, and /srv
    model = view.tree_model
    srv = model.index_for_path("/srv")
    opened = [i for i in range(many) if view.file_tree.isExpanded(model.index_for_path(f"/srv/d{i:04d}"))]
    assert view.file_tree.isExpanded(srv) and len(opened) == MAX_EXPANDED_MATCHES - 1  # /srv is one of them
    assert opened == list(range(len(opened)))  # the first ones, in path order


def test_a_search_opens_folders_only_while_they_hold_a_few_thousand_rows(qtbot, window, tmp_path, monkeypatch):
    from explorer.ui import files_page

    monkeypatch.setattr(files_page, "MAX_OPENED_ROWS", 7)  # (a few thousand, as far as the rule goes)
    archive = tmp_path / "wide.tar"
    archive.write_bytes(docker_archive([layer_tar([f(f"m{j}/hit-{k}", "x") for j in range(4) for k in range(3)])]))
    view = _open(qtbot, window, archive)
    with qtbot.waitSignal(view.search_finished, timeout=10_000) as blocker:
        view.search_box.setText("hit")
    assert blocker.args[0] == 16  # every match is there to open by hand
    model = view.tree_model
    opened = [j for j in range(4) if view.file_tree.isExpanded(model.index_for_path(f"/m{j}"))]
    assert opened == [0, 1]  # 3 rows and 3 more; a third folder's would make 9


@pytest.mark.parametrize("kind,text", [("substring", "MODIFY"), ("glob", "modify-*.txt"), ("regex", r"modify-me\.t.t$")])
def test_search_keeps_matches_and_their_folders(qtbot, window, kind, text):
    view = _open(qtbot, window)
    view.search_kind.setCurrentIndex(view.search_kind.findData(kind))
    with qtbot.waitSignal(view.search_finished, timeout=10_000):
        view.search_box.setText(text)
    paths = [p for p, _ in _all_rows(view.tree_model)]
    assert paths == ["/data", "/data/modify-me.txt"]
    assert view.file_tree.isExpanded(view.tree_model.index_for_path("/data"))


def test_sort_by_size_puts_the_biggest_first(qtbot, window):
    view = _open(qtbot, window)
    qtbot.waitUntil(lambda: view.tree_model.totals is not None, timeout=10_000)
    view.sort_by_size()
    first = view.tree_model.index(0, 0).data(Qt.ItemDataRole.UserRole)
    assert first == "/bin"  # busybox is most of the image


def test_details_show_path_history_and_jump(qtbot, window):
    view = _open(qtbot, window)
    view.select_path("/data/modify-me.txt")
    details = view.details
    assert details.values["Size"].text().startswith("29 B")
    assert details.history.count() == 2  # added in layer 1, modified in layer 2
    details.history.itemClicked.emit(details.history.item(0))
    assert view.layer == 1
    assert view.current_path() == "/data/modify-me.txt"
    assert details.values["Size"].text().startswith("9 B")


def test_copy_path(qtbot, window):
    view = _open(qtbot, window)
    view.select_path("/etc/passwd")
    view.copy_path()
    assert QGuiApplication.clipboard().text() == "/etc/passwd"


def test_cancel_drops_the_load(qtbot, window, tmp_path):
    big = tmp_path / "many.tar"
    big.write_bytes(docker_archive([layer_tar([f(f"d{i // 500}/f{i}", "x") for i in range(20_000)])]))
    from explorer.model.progress import Progress

    with qtbot.waitSignal(window.loader.progress, timeout=10_000) as blocker:
        window.open_paths([str(big)])
    (said,) = blocker.args  # progress comes as one typed value
    assert isinstance(said, Progress) and said.stage
    progress = window.findChild(QProgressBar, "loadProgress")
    assert progress.isVisible()
    with qtbot.waitSignal(window.loader.cancelled, timeout=10_000):
        window.cancel_button.click()
    assert not progress.isVisible()
    # let the worker end and any late result arrive: it must be dropped
    from PySide6.QtCore import QCoreApplication, QThreadPool

    assert QThreadPool.globalInstance().waitForDone(30_000)
    QCoreApplication.processEvents()
    assert window.tabs.count() == 0
    # and the window still loads the next one
    _open(qtbot, window)
    assert window.tabs.count() == 1


def test_a_mapped_images_layer_sizes_show_as_each_layer_is_chosen(qtbot, window, monkeypatch, tmp_path):
    from explorer.formats.source import open_source
    from explorer.image.loader import load_image

    with open_source(str(LEGACY)) as src:
        built = load_image(src, src.select(), cache=False)
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    window.cache_action.setChecked(True)
    for _first_open_then_reopened in range(2):
        view = _open(qtbot, window)  # (mapped from the index its loading process wrote, or the cache's)
        assert view.image.tree.columns() is not None
        chunks = view.image.tree.versions.chunks
        for layer in range(len(built.layers)):
            decoded = set(chunks.kids)
            view.set_layer(layer)
            qtbot.waitUntil(lambda: view.tree_model.totals is not None, timeout=10_000)
            assert view.tree_model.totals == TreeView(built.tree, layer, MERGED).totals(), layer
            assert set(chunks.kids) == decoded  # counted from the index's columns: no folder decoded for it
        window.close_tab(0)


def test_every_layers_sizes_are_there_as_soon_as_the_user_switches(qtbot, window):
    from explorer.formats.source import open_source
    from explorer.image.loader import load_image

    with open_source(str(LEGACY)) as src:  # the same image built in this process, as reference
        built = load_image(src, src.select(), cache=False).tree
    view = _open(qtbot, window)
    layers, last = range(len(view.image.layers)), len(view.image.layers) - 1
    assert all(view.files.view_for(layer, MERGED)._totals is None for layer in layers[:-1])  # none made ahead
    for layer in layers:
        view.set_layer(layer)  # no wait: the sizes are there at once (from the index's columns)
        assert view.tree_model.totals == TreeView(built, layer, MERGED).totals()
        sizes = [view.tree_model.index(r, 1).data() for r in range(view.tree_model.rowCount())]
        assert "…" not in sizes
    view.set_mode(DIFF)  # a layer's changes too: what it stores, from the same columns
    assert view.tree_model.totals == TreeView(built, last, DIFF).totals() != {}
    view.set_layer(0)
    assert view.tree_model.totals == TreeView(built, 0, DIFF).totals()
    view.set_layer(last)  # and back: kept from the first visit
    assert view.tree_model.totals == TreeView(built, last, DIFF).totals()


def test_a_big_changes_view_is_gathered_between_events_then_shown(qtbot, window, monkeypatch):
    from explorer.ui import files_page

    monkeypatch.setattr(files_page, "GATHER_AT_ONCE", 0)  # every changes view counts as big here
    view = _open(qtbot, window)
    view.set_layer(2)
    view.set_mode(DIFF)
    assert view.tree_model.view.mode == MERGED  # still the merged tree, for a moment
    qtbot.waitUntil(lambda: view.tree_model.view.mode == DIFF, timeout=10_000)
    assert _all_rows(view.tree_model) == _all_rows(FileTreeModel(TreeView(view.image.tree, 2, DIFF))) != []
    view.set_layer(1)  # gathered again for that layer; then back to 2, kept from before
    view.set_mode(MERGED)  # changed mind before it was gathered: merged at once, nothing comes later
    assert view.tree_model.view.mode == MERGED and view.tree_model.view.layer == 1
    qtbot.waitUntil(lambda: not view.background.pending("gather"), timeout=10_000)
    assert view.tree_model.view.mode == MERGED
    view.set_layer(2)
    view.set_mode(DIFF)
    assert view.tree_model.view.mode == DIFF and view.tree_model.view.layer == 2


def test_layers_and_history_show_before_the_files(qtbot, window):
    seen = {}

    def shown(view):  # what the user sees the moment the layers appear
        tab = window.tabs.indexOf(view)
        model = view.layer_model
        seen.update(tab=window.tabs.tabText(tab), layers=model.rowCount(),
                    sizes=[model.index(row, 1).data() for row in range(model.rowCount())],
                    steps=view.history_model.rowCount(), tree=view.file_tree.isVisible(),
                    pending=view.pending.isVisible(), status=window.status_label.text())

    window.layers_shown.connect(shown)
    view = _open(qtbot, window)
    assert seen["tab"].endswith("(reading…)")
    assert seen["layers"] == 5 and seen["steps"] == 10  # all + 4 layers; history with empty steps
    assert set(seen["sizes"]) == {"…"}  # not yet known, and not shown as 0 B
    assert seen["pending"] and not seen["tree"]
    assert "Reading the files of 4 layer(s)" in seen["status"]
    # the loaded view took the preview's place: one tab, the tree shown, no "reading" left
    assert window.tabs.count() == 1 and window.tabs.widget(0) is view
    assert "reading" not in window.tabs.tabText(0)
    assert view.file_tree.isVisible() and not view.pending.isVisible()
    assert "68 entries" in window.status_label.text()


def test_closing_the_tab_of_an_image_still_loading_stops_the_load(qtbot, window, tmp_path):
    big = tmp_path / "many.tar"
    big.write_bytes(docker_archive([layer_tar([f(f"d{i // 500}/f{i}", "x") for i in range(20_000)])]))
    loaded = []
    window.image_loaded.connect(loaded.append)
    with qtbot.waitSignal(window.layers_shown, timeout=10_000):
        window.open_paths([str(big)])
    qtbot.waitUntil(lambda: window.loader.busy and window.progress.isVisible(), timeout=10_000)
    window.close_tab(0)
    assert not window.loader.busy and window.tabs.count() == 0
    assert window.stack.currentWidget() is window.start_page
    from PySide6.QtCore import QCoreApplication, QThreadPool

    assert QThreadPool.globalInstance().waitForDone(30_000)
    QCoreApplication.processEvents()
    assert window.tabs.count() == 0 and not loaded  # a late result is dropped
    _open(qtbot, window)
    assert window.tabs.count() == 1


def test_the_window_reopens_from_the_index_its_worker_wrote(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "index"
    saved = lambda: [p for p in folder.iterdir() if not p.name.startswith(".")] if folder.exists() else []  # noqa: E731
    first = _open(qtbot, window)
    first_tree = first.image.tree  # the view's own state goes when its tab closes
    assert len(saved()) == 1  # written by the loading process before the tree was shown
    sizes = [first.tree_model.index(r, 1).data() for r in range(first.tree_model.rowCount())]
    window.close_tab(0)
    view = _open(qtbot, window)
    assert view.image.from_cache
    assert "68 entries, 2.0 MB final files" in window.status_label.text()
    assert [view.tree_model.index(r, 1).data() for r in range(view.tree_model.rowCount())] == sizes
    # the folders stay in the file, idle time or not: a search reads its path table
    qtbot.waitUntil(lambda: not view.background.pending(), timeout=10_000)
    with qtbot.waitSignal(view.search_finished, timeout=10_000) as blocker:
        view.search_box.setText("modify-me")
    assert blocker.args[0] == 2  # /data and /data/modify-me.txt
    assert not view.image.tree.versions.chunks.complete
    window.close_tab(0)
    view = _open(qtbot, window)
    view.search_box.clear()
    view.controls.search_timer.stop()
    view.files.filters_changed()
    view.set_mode(DIFF)
    view.set_layer(3)
    for layer in range(4):
        view.set_layer(layer)
        fresh = FileTreeModel(TreeView(first_tree, layer, DIFF))
        assert _all_rows(view.tree_model) == _all_rows(fresh) != []
    qtbot.waitUntil(lambda: view.tree_model.totals is not None, timeout=10_000)


def test_bad_file_shows_the_error_dialog_and_window_stays_usable(qtbot, window, tmp_path):
    bad = tmp_path / "broken.tar"
    bad.write_bytes(b"this is not an image" * 50)
    with qtbot.waitSignal(window.load_failed, timeout=10_000) as blocker:
        _drop(window, [bad])
    assert "broken.tar" in blocker.args[0] and "not a container image" in blocker.args[0]
    dialog = window.dialogs[-1]
    assert dialog.objectName() == "errorDialog" and dialog.isVisible()
    assert "broken.tar" in dialog.text()
    assert "open a file written by docker save" in dialog.text() and not dialog.informativeText()  # its own advice, once
    dialog.close()
    with qtbot.waitSignal(window.load_failed, timeout=10_000):
        window.open_paths([str(tmp_path / "gone.tar")])
    dialog = window.dialogs[-1]  # advice for a missing file, not for a damaged archive
    assert "gone.tar: no such file or folder (check the path" in dialog.text() and not dialog.informativeText()
    dialog.close()
    _open(qtbot, window)
    assert window.tabs.count() == 1


def test_hostile_archives_in_the_window_end_in_a_sentence_or_a_view(qtbot, window, tmp_path, monkeypatch):
    """A sample of the bad-input corpus, one kind after another, dropped on one window: each ends
    in an error naming the file or in a view, in bounded time, and the window still works."""
    import multiprocessing
    import time

    from explorer.ui import open_flow
    from tests.corpus import cases

    monkeypatch.setattr(open_flow.ImagePicker, "exec", lambda self: QDialog.DialogCode.Accepted)  # the first image
    every = dict(cases())
    by_kind: dict[str, list[str]] = {}
    for name in sorted(every):
        by_kind.setdefault(name.split("-")[0], []).append(name)
    sample = [names[len(names) // 2] for names in by_kind.values()]
    sample += ["bomb-gzip-layer", "name-deep", "pax-huge-record", "one-folder-50k", "oci-truncated-at-100"]
    failed: list[str] = []
    loaded: list[object] = []
    window.load_failed.connect(failed.append)
    window.image_loaded.connect(loaded.append)
    for name in sample:
        path = tmp_path / f"{name}.tar"
        path.write_bytes(every[name])
        failed.clear()
        loaded.clear()
        started = time.monotonic()
        _drop(window, [path])
        qtbot.waitUntil(lambda: bool(failed or loaded), timeout=60_000)
        assert time.monotonic() - started < 60, name
        if failed:
            assert str(path) in failed[0] and "internal error" not in failed[0] and "Traceback" not in failed[0], failed[0]
        for dialog in list(window.dialogs):
            dialog.close()
        while window.tabs.count():
            window.close_tab(0)
    qtbot.waitUntil(lambda: not multiprocessing.active_children(), timeout=5_000)  # no loading process left behind
    assert _open(qtbot, window).tree_model.rowCount() > 0


def test_multi_platform_index_asks_which_image(qtbot, window, monkeypatch):
    from explorer.ui import dialogs

    chosen = {}

    def fake_exec(self):
        chosen["platforms"] = [self.list.item(i).text() for i in range(self.list.count())]
        self.list.setCurrentRow(1)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(dialogs.ImagePicker, "exec", fake_exec)
    view = _open(qtbot, window, DATA / "multiplatform.oci.tar")
    assert len(chosen["platforms"]) == 2
    assert view.image.platform == "linux/arm64"


def test_several_archives_dropped_at_once_open_tabs(qtbot, window):
    _drop(window, [LEGACY, DATA / "umoci.oci-layout", DATA / "buildah-overlay.oci.tar"])
    box = window.findChild(QMessageBox, "askMany")  # each, as versions, or as a fleet?
    assert box is not None and box.isVisible()
    each = next(b for b in box.buttons() if b.text() == "Open &each")
    with qtbot.waitSignal(window.image_loaded, timeout=30_000):
        each.click()
    qtbot.waitUntil(lambda: window.tabs.count() == 3, timeout=30_000)
    window.findChild(type(window.actions()[0]), "actionClose").trigger()
    assert window.tabs.count() == 2


def test_two_archives_dropped_at_once_are_compared(qtbot, window, qtmodeltester, monkeypatch):
    from explorer.image import load_worker

    def not_here(*_a, **_k):
        raise AssertionError("the window's process built a tree")

    monkeypatch.setattr(load_worker, "load_here", not_here)  # both sides are loaded by loading processes
    with qtbot.waitSignal(window.comparison_ready, timeout=30_000) as blocker:
        _drop(window, [LEGACY, DATA / "buildah-overlay.oci.tar"])
    view = blocker.args[0]
    assert window.tabs.count() == 1 and window.tabs.currentWidget() is view
    rows = dict(_all_rows(view.tree_model))
    assert rows["/etc/hosts"] == "added" and rows["/dev"] == "added" and rows["/etc"] == "unchanged"
    assert "0 shared layer(s)" in view.summary.text()
    qtmodeltester.check(view.tree_model, force_py=True)
    qtmodeltester.check(view.layers.model(), force_py=True)
    with qtbot.waitSignal(view.background.result, timeout=10_000):
        view.file_tree.setCurrentIndex(view.tree_model.index_for_path("/etc/hosts"))
    assert "/etc/hosts" in view.details.toPlainText() and "absent" in view.details.toPlainText()
    with qtbot.waitSignal(view.filtered, timeout=10_000) as shown:
        view.hide_boxes["added"].setChecked(True)
    assert shown.args == [0] and _all_rows(view.tree_model) == []
    with qtbot.waitSignal(view.filtered, timeout=10_000) as shown:
        view.search_box.setText("hosts")  # matched off the GUI thread
        view.hide_boxes["added"].setChecked(False)
    assert shown.args == [1] and [p for p, c in _all_rows(view.tree_model) if c != "unchanged"] == ["/etc/hosts"]
    with qtbot.waitSignal(view.filtered, timeout=10_000) as shown:
        view.search_box.clear()
    assert shown.args == [len(view.cmp.files)] and ("/dev", "added") in _all_rows(view.tree_model)
    window.findChild(type(window.actions()[0]), "actionClose").trigger()
    assert window.tabs.count() == 0


def test_compare_two_platforms_shows_a_content_diff(qtbot, window, tmp_path):
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    a.write_bytes(docker_archive([layer_tar([f("etc/app.conf", "port=80\nmode=dev\n"), f("bin/x", "1")])]))
    b.write_bytes(docker_archive([layer_tar([f("etc/app.conf", "port=8080\nmode=dev\n")])]))
    with qtbot.waitSignal(window.comparison_ready, timeout=30_000) as blocker:
        window.compare_paths(str(a), str(b))
    view = blocker.args[0]
    with qtbot.waitSignal(view.background.result, timeout=10_000):
        view.file_tree.setCurrentIndex(view.tree_model.index_for_path("/etc/app.conf"))
    assert "-port=80" in view.last_diff and "+port=8080" in view.last_diff
    assert dict(_all_rows(view.tree_model))["/bin/x"] == "removed"


def test_drag_enter_accepts_only_local_files(qtbot, window):
    from PySide6.QtGui import QDragEnterEvent

    mime = QMimeData()
    mime.setUrls([QUrl("https://example.com/image.tar")])
    event = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(event)
    assert not event.isAccepted()


# -- file contents --------------------------------------------------------------------------


def _select(qtbot, view, path, panel=None):
    view.select_path(path)
    assert view.current_path() == path


def test_preview_text_binary_and_symlink(qtbot, window):
    view = _open(qtbot, window)
    preview = view.preview
    with qtbot.waitSignal(preview.background.result, timeout=10_000):
        view.select_path("/etc/passwd")
    assert preview.current_kind() == "text"
    assert "root:x:0:0" in (preview.text.toPlainText() + preview.plain.toPlainText())
    with qtbot.waitSignal(preview.background.result, timeout=10_000):
        view.select_path("/bin/busybox")
    assert preview.current_kind() == "binary"
    assert preview.plain.toPlainText().startswith("00000000  7f 45 4c 46")
    assert not preview.more.isHidden()  # 1.9 MB: read on demand
    with qtbot.waitSignal(preview.background.result, timeout=10_000):
        preview.more.click()
    assert "00010000" in preview.plain.toPlainText()
    view.select_path("/bin/sh")
    assert preview.current_kind() == "link" and "busybox" in preview.message.text()
    preview.go.click()
    assert view.current_path() == "/bin/busybox"


def test_preview_of_a_picture_and_a_removed_file(qtbot, window, tmp_path):
    from tests.test_content import _png

    path = tmp_path / "pic.tar"
    path.write_bytes(docker_archive([layer_tar([f("srv/dot.png", _png(8, 6)), f("srv/gone.txt", "bye\n")]),
                                     layer_tar([f("srv/.wh.gone.txt")])]))
    view = _open(qtbot, window, path)
    with qtbot.waitSignal(view.preview.background.result, timeout=10_000):
        view.select_path("/srv/dot.png")
    assert view.preview.current_kind() == "image"
    assert view.preview.picture.pixmap().width() == 8
    view.set_layer(1)
    view.set_mode(DIFF)
    with qtbot.waitSignal(view.preview.background.result, timeout=10_000):
        view.select_path("/srv/gone.txt")
    assert "removed" in view.preview.title.text()
    assert "bye" in view.preview.text.toPlainText() + view.preview.plain.toPlainText()


def test_compare_two_versions(qtbot, window):
    view = _open(qtbot, window)
    with qtbot.waitSignal(view.compare.background.result, timeout=10_000):
        view.select_path("/data/modify-me.txt")
    assert view.compare.old.count() == 2
    assert "+modified in layer 3" in view.compare.last_text
    with qtbot.waitSignal(view.compare.background.result, timeout=10_000):
        view.compare.split.setChecked(True)
    assert "+  | modified in layer 3" in view.compare.last_text
    with qtbot.waitSignal(view.compare.background.result, timeout=10_000):
        view.select_path("/data/dir/x.txt")  # chmod only: same bytes
    assert "identical" in view.compare.last_text and "mode 0644 → 0640" in view.compare.last_text


def test_extract_from_the_window(qtbot, window, tmp_path):
    view = _open(qtbot, window)
    view.select_path("/etc")
    target = tmp_path / "My Images"  # said as it is named, capitals and all
    view.extract_selected(target=str(target))
    with qtbot.waitSignal(view.extraction.finished, timeout=20_000) as blocker:
        pass
    result = blocker.args[0]
    assert result.written == 4 and (target / "etc/passwd").read_bytes().startswith(b"root:")
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "extractResult") is not None)
    said = window.findChild(QMessageBox, "extractResult").text()
    assert said.startswith("Extracted 4 entries (") and said.endswith(f" into {target}.")
    view.set_layer(3)
    view.save_layer_tar(target=str(tmp_path / "layer3.tar"))
    with qtbot.waitSignal(view.extraction.finished, timeout=20_000):
        pass
    assert (tmp_path / "layer3.tar").stat().st_size == 2560
    for box in window.findChildren(QDialog):
        box.close()


def test_drag_a_file_out_gives_a_temporary_copy(qtbot, window):
    view = _open(qtbot, window)
    index = view.tree_model.index_for_path("/etc/hostname")
    assert view.tree_model.flags(index) & Qt.ItemFlag.ItemIsDragEnabled
    mime = view.tree_model.mimeData([index])
    (url,) = mime.urls()
    import hashlib

    data = Path(url.toLocalFile()).read_bytes()
    assert hashlib.sha256(data).hexdigest()[:16] == "8f588b05cb7b9bf4"  # as the tools unpacked it
    assert Path(url.toLocalFile()).name == "hostname"


def test_ctrl_c_copies_in_the_tree_and_in_the_layers(qtbot, window):
    from PySide6.QtTest import QTest

    view = _open(qtbot, window)
    view.select_path("/etc/group")
    view.file_tree.setFocus()
    QTest.keyClick(view.file_tree, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "/etc/group"
    view.layer_list.selectRow(2)
    view.layer_list.setFocus()
    QTest.keyClick(view.layer_list, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == view.image.layers[1].digest


def test_history_follows_all_layers_and_empty_steps(qtbot, window):
    view = _open(qtbot, window)
    layers = window.findChild(QTableView, "layerList")
    history = window.findChild(QTableView, "historyPanel")
    layers.selectRow(3)
    assert history.currentIndex().row() == 5
    layers.selectRow(0)  # all layers: no single step made that
    assert not history.selectionModel().hasSelection()
    history.selectRow(4)  # ENV STAGE=modify, after layer 1 was made
    assert view.layer == 1 and history.currentIndex().row() == 4


def test_tab_titles_tell_images_apart(qtbot, window, monkeypatch):
    from explorer.ui import open_flow

    monkeypatch.setattr(open_flow.ImagePicker, "exec", lambda self: (self.list.setCurrentRow(1), QDialog.DialogCode.Accepted)[1])
    view = _open(qtbot, window, DATA / "multiplatform.oci.tar")
    assert view.title() == "localhost/fixture-multi:latest (linux/arm64)"
    folder = _open(qtbot, window, DATA / "umoci.oci-layout")
    assert folder.title() == "umoci.oci-layout:latest"


def test_without_a_display_the_window_says_what_to_do(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run([sys.executable, "-m", "explorer", "--demo"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "no display found" in proc.stderr and "report --text" in proc.stderr


# -- insights -------------------------------------------------------------------------------


def test_waste_model_passes_the_model_tester(qapp, qtmodeltester):
    from explorer.ui.waste_model import WasteTableModel

    src, image = _loaded_image()
    model = WasteTableModel(image)
    qtmodeltester.check(model, force_py=True)
    assert model.rowCount() == len(image.waste.files) == 8
    src.close()


def test_insights_show_the_numbers_and_lead_to_the_file(qtbot, window):
    view = _open(qtbot, window)
    view.show_insights()
    panel = view.insights
    assert "Efficiency 79.1%" in panel.summary.text()
    assert panel.secrets.isHidden()
    assert panel.advice.count() == 2 and "removed in layer 2" in panel.advice.item(0).text()
    first = panel.waste_model.index(0, 0)
    assert first.data() == "/data/big-wasted.bin"
    panel.waste_table.clicked.emit(first)
    assert view.center_tabs.currentIndex() == 0 and view.layer == 1
    assert view.current_path() == "/data/big-wasted.bin"


def test_insights_warn_about_secrets_and_draw_the_charts(qtbot, window, tmp_path):
    key = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n"
    path = tmp_path / "leaky.tar"
    path.write_bytes(docker_archive([layer_tar([f("root/.ssh/id_rsa", key), f("app/main.py", "print(1)\n" * 500)]),
                                     layer_tar([f("root/.ssh/.wh.id_rsa")])]))
    view = _open(qtbot, window, path)
    view.show_insights()
    panel = view.insights
    assert not panel.secrets.isHidden() and "/root/.ssh/id_rsa" in panel.secrets.text()
    panel.resize(1000, 700)
    panel.treemap.resize(400, 300)
    panel.treemap.repaint()
    box = panel.treemap.box_at(panel.treemap.boxes[0].rect.center())
    assert box is not None and box.path in ("/app", "/app/main.py", "/root")
    with qtbot.waitSignal(panel.treemap.path_clicked) as clicked:
        qtbot.mouseClick(panel.treemap, Qt.MouseButton.LeftButton, pos=box.rect.center().toPoint())
    assert clicked.args[0] == box.path


def test_inspect_tab(qtbot, window):
    view = _open(qtbot, window, DATA / "docker25-classic.tar")
    view.show_inspect()  # (its Size reads every path: the mapped index is decoded between events first)
    qtbot.waitUntil(lambda: view.inspect is not None, timeout=10_000)
    panel = view.inspect
    assert panel.fields["Working dir"].text() == "/data"
    assert panel.fields["Image id"].text().startswith("sha256:6747344d")
    assert "STAGE=modify" in panel.fields["Env"].toPlainText()
    assert panel.which.count() == 4  # index.json, manifest, config, manifest.json
    panel.which.setCurrentText("manifest.json")
    assert panel.tree.topLevelItemCount() == 1  # one image in the list
    panel.find.setText("RepoTags")
    assert panel.find_next()


def test_the_inspect_tab_built_meanwhile_leaves_the_user_where_they_went(qtbot, window):
    view = _open(qtbot, window, DATA / "docker25-classic.tar")
    view.show_inspect()
    assert view.center_tabs.currentIndex() == 2 and "size" in view.center_tabs.currentWidget().text()
    view.center_tabs.setCurrentIndex(0)  # back to the files before its Size is added up
    qtbot.waitUntil(lambda: view.inspect is not None, timeout=10_000)
    assert view.center_tabs.currentIndex() == 0 and view.center_tabs.widget(2) is view.inspect
    assert not view.image.tree.versions.chunks.complete  # its Size read the file, keeping nothing


def test_closing_a_tab_gives_its_image_back(qtbot, window):
    import gc
    import weakref

    from PySide6.QtCore import QCoreApplication, QEvent

    view = _open(qtbot, window)
    view.file_tree.expand(view.tree_model.index_for_path("/data"))
    first = weakref.ref(view.image)
    node = weakref.ref(view.tree_model.index_for_path("/data/dir").internalPointer())
    del view
    second = _open(qtbot, window, DATA / "docker25-containerd.tar")  # its load froze the first tab's objects
    assert first() is not None and node() is not None
    window.close_tab(0)
    assert window.tabs.count() == 1 and window.current_view() is second

    def freed() -> bool:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
        return first() is None

    qtbot.waitUntil(freed, timeout=5_000)  # without a full collection, which would stall the window
    assert node() is None  # nor the rows its tree showed
    assert second.image.tree.versions  # the other tab is untouched


def test_a_window_size_saved_too_small_opens_at_a_usable_size(qtbot):
    from explorer.app import create_main_window

    sizes = []
    for saved in ((300, 200), (700, 500)):  # shrunk by Qt on another screen; chosen by the user
        w = create_main_window()
        qtbot.addWidget(w)
        w.resize(*saved)
        w.settings.setValue("geometry", w.saveGeometry())
        again = create_main_window()
        qtbot.addWidget(again)
        sizes.append((again.width(), again.height()))
    room = again.screen().availableGeometry()
    assert sizes[0][0] >= min(640, room.width() * 0.5) and sizes[0][1] >= min(420, room.height() * 0.5)
    assert sizes[1] == (700, 500)


def test_a_search_lets_the_rows_it_replaces_go(qtbot, window):
    import weakref

    view = _open(qtbot, window)
    view.file_tree.expand(view.tree_model.index_for_path("/data"))
    shown = weakref.ref(view.tree_model.index_for_path("/data/dir").internalPointer())
    with qtbot.waitSignal(view.search_finished, timeout=10_000):
        view.search_box.setText("modify-me")
    assert shown() is None  # freed at once, collector or not


def test_a_comparison_hands_out_every_row_of_a_big_folder_as_it_scrolls(qtbot, tmp_path):
    from explorer.image.compare import compare
    from explorer.ui.comparison_view import ComparisonView

    paths = []
    for name, extra in (("a", []), ("b", [f(f"big/f{i:05d}", "x") for i in range(1800)] + [f(f"zz{k}/a", "y") for k in range(3)])):
        paths.append(tmp_path / f"{name}.tar")
        paths[-1].write_bytes(docker_archive([layer_tar([f("keep", "k")] + extra)]))
    (sa, ia), (sb, ib) = _loaded_image(paths[0]), _loaded_image(paths[1])
    view = ComparisonView(sa, sb, compare(sa, ia, sb, ib))
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    model = view.tree_model
    big = model.index_for_path("/big")
    view.file_tree.expand(big)

    def scrolled_to_the_end() -> bool:
        view.file_tree.scrollToBottom()
        return model.rowCount(big) == 1800

    qtbot.waitUntil(scrolled_to_the_end, timeout=10_000)  # folders come after it: Qt alone would stop at a batch
    sa.close()
    sb.close()


# -- hard links and symlinked folders (a real Docker image) ---------------------------------

HARDLINKS = DATA / "hardlinks.docker.tar"


def test_changes_view_lists_what_a_folder_replaced_by_a_file_held(qtbot, window, qtmodeltester):
    view = _open(qtbot, window, HARDLINKS)
    view.set_mode(DIFF)
    window.findChild(QTableView, "layerList").selectRow(7)  # layer 6: rm -rf the folder, write a file
    assert view.layer == 6
    shown = dict(_all_rows(view.tree_model))
    assert shown["/data/dir-to-file"] == "modified"
    assert {p: c for p, c in shown.items() if p.startswith("/data/dir-to-file/")} == {
        "/data/dir-to-file/g": "removed", "/data/dir-to-file/sub": "removed", "/data/dir-to-file/sub/f": "removed"}
    qtmodeltester.check(view.tree_model)


def test_links_say_where_they_lead_and_go_there(qtbot, window):
    view = _open(qtbot, window, HARDLINKS)
    preview, details = view.preview, view.details
    view.select_path("/bin")
    assert "It leads to /usr/bin (a folder)." in preview.message.text()
    assert preview.go.isEnabled()
    preview.go.click()
    assert view.current_path() == "/usr/bin"
    view.select_path("/usr/bin/cat")
    preview.go.click()
    assert view.current_path() == "/usr/bin/busybox"
    # a rewritten target leaves its old name a file of its own; a kept one is named in details
    view.select_path("/data/z-link")
    assert details.values["Type"].text() == "file" and details.values["Link target"].text() == ""
    view.select_path("/data/big/blob-link")
    assert details.values["Link target"].text() == "/data/big/blob (the same file)"


def test_a_dangling_link_says_so_and_goes_nowhere(qtbot, window, tmp_path):
    from tests.builders import sym

    path = tmp_path / "dangling.tar"
    path.write_bytes(docker_archive([layer_tar([f("etc/real", "x"), sym("etc/gone", "../nowhere/file")])]))
    view = _open(qtbot, window, path)
    view.select_path("/etc/gone")
    text = view.preview.message.text()
    assert "It leads to /nowhere/file, which is not in the image (a dangling link)." in text
    assert not view.preview.go.isEnabled()
    assert "dangling" in view.details.values["Link target"].text()


def test_searching_a_path_finds_it_through_symlinked_folders(qtbot, window):
    view = _open(qtbot, window, HARDLINKS)
    with qtbot.waitSignal(view.search_finished, timeout=10_000):
        view.search_box.setText("/sbin/hello")  # /sbin -> usr/bin: stored as /usr/bin/hello
    paths = [p for p, _ in _all_rows(view.tree_model)]
    assert paths == ["/usr", "/usr/bin", "/usr/bin/hello"]


def test_an_svg_that_declares_a_huge_size_is_drawn_small(qtbot, window, tmp_path):
    import resource

    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="50000"><rect width="9" height="9"/></svg>'
    path = tmp_path / "svg.tar"
    path.write_bytes(docker_archive([layer_tar([f("srv/huge.svg", svg)])]))
    view = _open(qtbot, window, path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with qtbot.waitSignal(view.preview.background.result, timeout=10_000):
        view.select_path("/srv/huge.svg")
    assert view.preview.current_kind() == "image"
    picture = view.preview.picture.pixmap()
    assert picture.width() <= 1024 and picture.height() <= 1024 and picture.width() == 2 * picture.height()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 << 10  # KiB: no 20 GB canvas


def test_an_inspect_tab_whose_index_cannot_be_read_says_so(qtbot, window, monkeypatch):
    def damaged(image):  # a body that passed its checksum, yet does not decode
        yield
        raise EOFError("marshal data too short")

    monkeypatch.setattr("explorer.ui.image_view.docker_size_steps", damaged)
    view = _open(qtbot, window)
    view.show_inspect()
    waiting = view.center_tabs.currentWidget()
    qtbot.waitUntil(lambda: "could not be read" in waiting.text(), timeout=10_000)
    assert view.inspect is None and "Open the image again" in waiting.text()
