"""The Files page on its own: the tree at a layer, merged or its changes, search, a package's files."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QCoreApplication, QModelIndex, Qt  # noqa: E402

from explorer.formats.source import open_source  # noqa: E402
from explorer.image.loader import load_image, prepare_first_view  # noqa: E402
from explorer.tree.views import DIFF, MERGED  # noqa: E402
from explorer.ui.file_tree_model import PATH_ROLE  # noqa: E402
from explorer.ui.files_page import FilesPage  # noqa: E402
from tests.builders import d, docker_archive, f, layer_tar, wh  # noqa: E402
from tests.gui_fixtures import private_settings  # noqa: E402,F401 (fixture)


@pytest.fixture
def page(qtbot, tmp_path):
    """A Files page over a two-layer image: the second layer adds a file and removes one."""
    base = layer_tar([d("etc"), f("etc/os-release", "debian"), f("etc/motd", "hello"), d("app")])
    top = layer_tar([f("app/server.py", "print('up')"), wh("etc/motd")])
    source, files = _page(qtbot, tmp_path, [base, top])
    yield files
    source.close()


def _page(qtbot, tmp_path, layers):
    """An image of these layers, opened, and a shown Files page over it."""
    path = tmp_path / "image.tar"
    path.write_bytes(docker_archive(layers))
    source = open_source(str(path))
    image = prepare_first_view(load_image(source, source.images[0]))
    files = FilesPage(source, image)
    qtbot.addWidget(files)
    files.apply_view()
    files.show()
    return source, files


def _shown_paths(model) -> set[str]:
    """Every path the tree model shows, all levels fetched."""
    out, stack = set(), [QModelIndex()]
    while stack:
        parent = stack.pop()
        if model.has_more(parent):
            model.fetchMore(parent)
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            out.add(index.data(PATH_ROLE))
            stack.append(index)
    return out


def test_the_page_shows_the_final_tree_and_the_changes_of_a_layer(qtbot, qtmodeltester, page):
    qtmodeltester.check(page.tree_model)
    assert _shown_paths(page.tree_model) == {"/etc", "/etc/os-release", "/app", "/app/server.py"}
    with qtbot.waitSignal(page.status_changed):
        page.show_layer(0)
    assert "/etc/motd" in _shown_paths(page.tree_model)  # still there before the second layer
    page.show_layer(1)
    page.set_mode(DIFF)
    assert page.mode == DIFF and page.controls.diff_button.isChecked()
    shown = _shown_paths(page.tree_model)
    assert {"/app/server.py", "/etc/motd"} <= shown and "/etc/os-release" not in shown
    qtmodeltester.check(page.tree_model)


def test_selecting_a_row_says_which_and_a_reset_that_drops_it_clears(qtbot, page):
    page.show_layer(0)
    with qtbot.waitSignal(page.row_shown) as shown:
        page.select_path("/etc/motd")
    assert shown.args[0].path == "/etc/motd" and page.current_path() == "/etc/motd"
    with qtbot.waitSignal(page.cleared):
        page.show_layer(None)  # removed in the final image: nothing to keep selected


def test_a_search_finishes_with_the_count_of_what_it_shows(qtbot, page):
    page.search_box.setText("server")
    with qtbot.waitSignal(page.search_finished, timeout=10_000) as done:
        page.filters_changed()
    assert done.args == [2]  # the match and its folder
    assert _shown_paths(page.tree_model) == {"/app", "/app/server.py"}
    page.search_box.setText("")
    with qtbot.waitSignal(page.search_finished) as done:
        page.filters_changed()
    assert done.args == [-1] and page.mode == MERGED


def test_only_a_packages_files_can_be_shown_and_all_again(qtbot, page):
    page.show_only(["/etc/os-release"], "Showing the files of <b>base-files</b>")
    assert _shown_paths(page.tree_model) == {"/etc", "/etc/os-release"}
    assert not page.package_filter.isHidden() and page.current_path() == "/etc/os-release"
    with qtbot.waitSignal(page.search_finished):
        page.package_filter.linkActivated.emit("all")
    assert page.package_filter.isHidden() and "/app/server.py" in _shown_paths(page.tree_model)


def test_a_search_cleared_before_it_ends_does_not_come_back(qtbot, page):
    page.search_box.setText("server")
    page.filters_changed()  # started: it runs between events
    page.search_box.setText("")
    with qtbot.waitSignal(page.search_finished) as done:
        page.filters_changed()  # cleared at once, before the search could end
    assert done.args == [-1]
    qtbot.wait_until(lambda: not page.background.pending("visible"))  # (stopped, not left to finish)
    assert _shown_paths(page.tree_model) == {"/etc", "/etc/os-release", "/app", "/app/server.py"}


def test_a_packages_files_stay_shown_when_a_filter_was_running(qtbot, page):
    page.hide_boxes["added"].setChecked(True)  # a filter starts, between events
    page.show_only(["/etc/os-release"], "Showing the files of <b>base-files</b>")
    qtbot.wait_until(lambda: not page.background.pending("visible"))
    assert _shown_paths(page.tree_model) == {"/etc", "/etc/os-release"} and not page.package_filter.isHidden()


def test_another_layer_shows_all_its_files_and_no_package_banner(qtbot, page):
    page.show_only(["/etc/os-release"], "Showing the files of <b>base-files</b>")
    page.show_layer(0)
    assert page.package_filter.isHidden() and "/etc/motd" in _shown_paths(page.tree_model)


def test_a_reset_that_keeps_the_selected_row_says_it_once(qtbot, page):
    page.select_path("/etc/os-release")
    shown = []
    page.row_shown.connect(lambda row: shown.append(row.path))
    page.show_layer(0)  # a new view: the tree is reset, the row kept
    assert shown == ["/etc/os-release"]


def test_a_search_of_many_folders_keeps_decoded_only_those_it_opens(qtbot, tmp_path, monkeypatch):
    from explorer.image import index_cache
    from explorer.ui import files_page

    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(files_page, "MAX_EXPANDED_MATCHES", 1)  # it opens /srv, and keeps that one decoded
    folders = [f"/srv/site{i:02}" for i in range(12)]
    entries = [d("srv")]
    for folder in folders:
        entries += [d(folder[1:]), f(f"{folder[1:]}/match.txt", "m"), f(f"{folder[1:]}/other.txt", "o")]
    path = tmp_path / "image.tar"
    path.write_bytes(docker_archive([layer_tar(entries)]))
    with open_source(str(path)) as source:
        assert index_cache.save(source, load_image(source, source.images[0]))
    source = open_source(str(path))
    image = prepare_first_view(load_image(source, source.images[0]))
    assert image.from_cache
    chunks = image.tree.versions.chunks
    files = FilesPage(source, image)
    qtbot.addWidget(files)
    files.apply_view()
    files.show()
    files.search_box.setText("match")
    with qtbot.waitSignal(files.search_finished, timeout=10_000) as done:
        files.filters_changed()
    assert done.args == [1 + 2 * len(folders)]  # each match, its folder, and /srv
    # every folder was decoded to find which of its files show; those not opened are let go of
    qtbot.waitUntil(lambda: set(chunks.kids).isdisjoint(folders), timeout=10_000)
    assert files.file_tree.isExpanded(files.tree_model.index_for_path("/srv")) and "/srv" in chunks.kids
    # and are decoded again as they are opened
    assert _shown_paths(files.tree_model) == {"/srv", *folders, *(f"{p}/match.txt" for p in folders)}
    source.close()


def test_going_back_to_the_merged_view_opens_again_the_folders_that_were_open(qtbot, tmp_path):
    """The first few at once, the rest between events, then the row that was selected; a
    change of view before they are all open stops it."""
    from explorer.ui import files_page

    folders = [f"srv/app{k:02d}" for k in range(files_page.RESTORE_AT_ONCE * 3)]
    base = layer_tar([d("srv"), *(d(p) for p in folders), *(f(f"{p}/old.txt", "old") for p in folders)])
    top = layer_tar([f(f"{p}/new.txt", "new") for p in folders])
    source, page = _page(qtbot, tmp_path, [base, top])
    page.show_layer(1)
    page.set_mode(DIFF)  # (a layer of a few changes opens fully)
    qtbot.waitUntil(lambda: page.tree_model.index_for_path("/srv/app00/new.txt").isValid(), timeout=5_000)
    opened = ["/srv", *(f"/{p}" for p in folders)]
    assert all(page.file_tree.isExpanded(page.tree_model.index_for_path(p)) for p in opened)
    last = f"/{folders[-1]}/new.txt"
    page.select_path(last)
    assert page.current_path() == last

    def open_now() -> list[str]:
        return [p for p in opened if page.file_tree.isExpanded(page.tree_model.index_for_path(p))]

    page.set_mode(MERGED)
    first = open_now()
    # the first few at once (and the selected row's folder, kept by the model), not all
    assert set(opened[:files_page.RESTORE_AT_ONCE]) <= set(first) and len(first) <= files_page.RESTORE_AT_ONCE + 1
    assert page.background.pending("restore")
    qtbot.waitUntil(lambda: open_now() == opened, timeout=5_000)
    assert page.current_path() == last  # selected again once its folder is open
    page.set_mode(DIFF)
    page.set_mode(MERGED)  # and once more before they are all open: none is lost
    page.show_layer(0)
    page.show_layer(1)
    assert page.background.pending("restore")
    page.select_path("/srv/app00/old.txt")  # chosen meanwhile (the Insights page's "show file" does)
    qtbot.waitUntil(lambda: not page.background.pending("restore"), timeout=5_000)
    assert open_now() == opened and page.current_path() == "/srv/app00/old.txt"
    page.set_mode(DIFF)
    page.set_mode(MERGED)
    page.collapse_all()  # before they are all open again: none opens after
    assert not page.background.pending("restore")
    _turns()
    assert open_now() == []
    source.close()


def test_a_huge_folder_opens_with_the_rows_it_has_and_the_rest_come_into_sight(qtbot, tmp_path):
    """Qt fetches batch after batch as it opens a folder, each laid out again, all in one go
    (45 to 55 ms for 2,488 entries): the page's tree opens it with the rows handed so far, and
    hands the rest as the user scrolls to them."""
    from explorer.ui.file_tree_model import BATCH

    count = BATCH * 5
    source, page = _page(qtbot, tmp_path, [layer_tar([f(f"wide/f{n:05d}", "x") for n in range(count)])])
    tree, model = page.file_tree, page.tree_model
    qtbot.waitExposed(page)
    wide = model.index_for_path("/wide")
    model.rowCount(wide)  # (its rows ordered between events, as when it was open before)
    qtbot.waitUntil(lambda: not model.rows_pending(wide), timeout=5_000)
    assert model.rowCount(wide) == BATCH
    tree.expand(wide)
    assert tree.isExpanded(wide) and model.rowCount(wide) == BATCH  # nothing more while it opened
    qtbot.waitUntil(lambda: (tree.scrollToBottom(), model.rowCount(wide) == count)[1], timeout=10_000)
    assert [model.index(r, 0, wide).data() for r in (0, count - 1)] == ["f00000", f"f{count - 1:05d}"]
    source.close()


def _wide_page(qtbot, tmp_path, count: int, height: int = 600, folders_after: int = 40):
    """A shown page over a folder of ``count`` files (``/wide``, its rows ordered) with
    folders listed after it, and the folder's index."""
    entries = [f(f"wide/f{n:05d}", "x") for n in range(count)] + [f(f"zz{k}/a", "y") for k in range(folders_after)]
    source, page = _page(qtbot, tmp_path, [layer_tar(entries)])
    page.resize(900, height)
    qtbot.waitExposed(page)
    model = page.tree_model
    wide = model.index_for_path("/wide")
    model.rowCount(wide)
    qtbot.waitUntil(lambda: not model.rows_pending(wide), timeout=5_000)
    return source, page, wide


def test_page_down_walks_a_huge_folder_to_its_end(qtbot, tmp_path):
    """Rows are handed a page before they are needed: Page Down through a folder of three
    batches, with folders after it, reaches its last rows before it leaves it (it used to
    step from the first batch's end straight to the next folder)."""
    from explorer.ui.file_tree_model import BATCH

    count = BATCH * 3
    source, page, wide = _wide_page(qtbot, tmp_path, count)
    tree, model = page.file_tree, page.tree_model
    tree.expand(wide)
    tree.setFocus()
    tree.setCurrentIndex(model.index(0, 0, wide))
    seen = []
    while len(seen) < 300 and (not seen or seen[-1].startswith("/wide/")):
        qtbot.keyClick(tree, Qt.Key.Key_PageDown)
        _turns(3)
        seen.append(tree.currentIndex().data(PATH_ROLE))
    inside = [p for p in seen if p.startswith("/wide/")]
    assert inside == sorted(inside) and inside[-1] >= f"/wide/f{count - 40:05d}"  # (a page of the end)
    assert seen[-1].startswith("/zz") and model.rowCount(wide) == count
    source.close()


def test_rows_come_when_the_tree_grows_to_show_the_last_handed_one(qtbot, tmp_path):
    """No scroll: the window grows, and the rows after the last one handed are made."""
    from explorer.ui.file_tree_model import BATCH

    source, page, wide = _wide_page(qtbot, tmp_path, BATCH * 3, height=400)
    tree, model = page.file_tree, page.tree_model
    tree.expand(wide)
    _turns()
    row_height = tree.visualRect(model.index(0, 0, wide)).height()
    away = int(3 * tree.viewport().height() / row_height)  # the last handed row three views down
    tree.scrollTo(model.index(BATCH - away, 0, wide), tree.ScrollHint.PositionAtTop)
    _turns()
    assert model.rowCount(wide) == BATCH  # (too far below for more yet)
    page.resize(900, 1200)
    qtbot.waitUntil(lambda: model.rowCount(wide) > BATCH, timeout=5_000)
    source.close()


def test_a_top_folder_of_more_than_a_batch_shows_its_rows(qtbot, tmp_path):
    """The top of the tree holding more than a batch: its first rows are shown once ordered,
    and the rest as the user scrolls (the rows were handed as a child of a row that is not
    there, and the tree stayed empty)."""
    from explorer.ui.file_tree_model import BATCH

    count = BATCH * 3
    source, page = _page(qtbot, tmp_path, [layer_tar([f(f"r{n:05d}", "x") for n in range(count)])])
    qtbot.waitExposed(page)
    tree, model = page.file_tree, page.tree_model
    qtbot.waitUntil(lambda: model.rowCount() == BATCH, timeout=5_000)
    _turns()
    assert tree.indexAt(tree.viewport().rect().topLeft()).data(PATH_ROLE) == "/r00000"
    qtbot.waitUntil(lambda: (tree.scrollToBottom(), model.rowCount() == count)[1], timeout=10_000)
    tree.scrollToBottom()
    _turns()
    last = model.index(count - 1, 0)
    assert last.data(PATH_ROLE) == f"/r{count - 1:05d}" and tree.viewport().rect().intersects(tree.visualRect(last))
    source.close()


def _deep_page(qtbot, tmp_path):
    """A page over an image of a folder with a subtree of five levels, a few folders each,
    and a folder of more children than the model hands out at once, a few of them folders."""
    from explorer.ui.file_tree_model import BATCH

    paths = [f"srv/a{i}/b{j}/c{k}/d/e/file" for i in range(3) for j in range(3) for k in range(2)]
    many = [f"var/many/f{n:04d}" for n in range(BATCH + 20)] + [f"var/many/sub{n}/inner/x" for n in range(3)]
    source, page = _page(qtbot, tmp_path, [layer_tar([f(p, "x") for p in paths + many])])
    folders = sorted({p[:cut] for p in paths + many for cut in range(len(p)) if p[cut] == "/"})
    return source, page, ["/" + p for p in folders]


def _open_now(page, folders):
    model = page.tree_model
    return [p for p in folders if page.file_tree.isExpanded(model.index_for_path(p))]


def _slow_ordering(monkeypatch, steps: int = 30):
    """A huge folder's rows ordered over several turns of the event loop, as on a big image."""
    import time

    from explorer.ui.file_tree_model import FileTreeModel

    real = FileTreeModel._order_steps

    def slow(self, node):
        for _ in range(steps):
            time.sleep(0.002)
            yield
        return (yield from real(self, node))

    monkeypatch.setattr(FileTreeModel, "_order_steps", slow)


def _turns(count: int = 20) -> None:
    """Let the event loop take a few turns (a walk takes a slice of each)."""
    for _ in range(count):
        QCoreApplication.processEvents()


def test_star_opens_every_folder_below_between_events(qtbot, tmp_path, monkeypatch):
    """"*" on a folder opens its whole subtree a folder a step between events (Qt's own held
    the window 285 to 450 ms on the realistic image's /usr), and a huge folder's folders
    once its rows are ordered, over several turns."""
    _slow_ordering(monkeypatch)
    source, page, folders = _deep_page(qtbot, tmp_path)
    tree, model = page.file_tree, page.tree_model
    into_open = []  # rows added to a folder already open make Qt lay the tree out again
    model.rowsInserted.connect(lambda parent, *_: tree.isExpanded(parent) and into_open.append(parent.data(PATH_ROLE)))
    for top in ("/srv", "/var"):
        tree.setFocus()
        tree.setCurrentIndex(model.index_for_path(top))
        qtbot.keyClick(tree, Qt.Key.Key_Asterisk)
        assert page.background.pending("open below")
        assert not tree.isExpanded(model.index_for_path(top))  # nothing opened by the key's event itself
        qtbot.waitUntil(lambda: not page.background.pending("open below"), timeout=10_000)
        below = [p for p in folders if p == top or p.startswith(top + "/")]
        assert _open_now(page, below) == below
    assert _open_now(page, ["/var/many/sub1/inner"]) == ["/var/many/sub1/inner"]  # (below the huge folder)
    assert into_open == []  # (the huge folder's last rows too were made before it opened)
    from explorer.ui.file_tree_model import BATCH

    assert model.rowCount(model.index_for_path("/var/many")) == BATCH + 23  # (two batches at most: whole)
    source.close()


def test_star_waits_for_a_huge_folder_opened_a_moment_before(qtbot, tmp_path, monkeypatch):
    """A huge folder opened by hand, its rows still being ordered: "*" above it opens the
    folders below it once they come; and if ordering them fails, it ends all the same."""
    _slow_ordering(monkeypatch)
    source, page, folders = _deep_page(qtbot, tmp_path)
    tree, model = page.file_tree, page.tree_model
    tree.expand(model.index_for_path("/var"))
    tree.expand(model.index_for_path("/var/many"))  # (its rows ordered between events from now)
    assert model.rows_pending(model.index_for_path("/var/many"))
    tree.setCurrentIndex(model.index_for_path("/var"))
    tree.setFocus()
    qtbot.keyClick(tree, Qt.Key.Key_Asterisk)
    qtbot.waitUntil(lambda: not page.background.pending("open below"), timeout=10_000)
    below = [p for p in folders if p.startswith("/var/")]
    assert _open_now(page, below) == below
    source.close()

    from explorer.ui.file_tree_model import FileTreeModel

    def broken(self, node):
        yield
        raise ValueError("a damaged folder")

    monkeypatch.setattr(FileTreeModel, "_order_steps", broken)
    (tmp_path / "again").mkdir()
    source, page, folders = _deep_page(qtbot, tmp_path / "again")
    tree, model = page.file_tree, page.tree_model
    tree.setCurrentIndex(model.index_for_path("/var"))
    tree.setFocus()
    qtbot.keyClick(tree, Qt.Key.Key_Asterisk)
    qtbot.waitUntil(lambda: page.background.pending() == [], timeout=10_000)  # (not waiting forever)
    assert tree.isExpanded(model.index_for_path("/var"))
    source.close()


def test_closing_a_folder_stops_opening_the_folders_below(qtbot, tmp_path):
    import time

    source, page, folders = _deep_page(qtbot, tmp_path)
    tree, model = page.file_tree, page.tree_model
    real = tree.expand

    def slow(index):  # (a few folders a turn, as big ones are)
        time.sleep(0.003)
        real(index)

    tree.expand = slow
    srv = model.index_for_path("/srv")
    tree.setCurrentIndex(srv)
    tree.setFocus()
    qtbot.keyClick(tree, Qt.Key.Key_Asterisk)
    qtbot.waitUntil(lambda: tree.isExpanded(model.index_for_path("/srv")), timeout=10_000)
    tree.collapse(model.index_for_path("/srv"))  # as a click on its arrow does
    assert not page.background.pending("open below")
    opened = _open_now(page, folders)
    _turns()
    assert _open_now(page, folders) == opened and "/srv/a2/b2/c1/d" not in opened
    source.close()


def test_sizes_that_come_after_a_search_keep_its_folders_open(qtbot, tmp_path, monkeypatch):
    """Sorted by size, the tree is made again when the sizes come: the folders a search had
    opened meanwhile open again."""
    import time

    from explorer.tree.views import TreeView
    from explorer.ui.file_tree_model import SIZE

    real = TreeView.totals_steps

    def slow(self):
        for _ in range(40):
            time.sleep(0.002)
            yield
        return (yield from real(self))

    monkeypatch.setattr(TreeView, "totals_steps", slow)
    monkeypatch.setattr(TreeView, "sizes_at_once", lambda self: False)
    source, page, folders = _deep_page(qtbot, tmp_path)
    page.file_tree.sortByColumn(SIZE, Qt.SortOrder.DescendingOrder)
    page.show_layer(0)
    page.set_mode(DIFF)  # a view whose sizes are counted between events
    assert page.background.pending("totals")
    page.search_box.setText("file")
    with qtbot.waitSignal(page.search_finished, timeout=10_000):
        page.filters_changed()
    assert page.background.pending("totals")  # (the search was quicker)
    opened = [p for p in folders if page.file_tree.isExpanded(page.tree_model.index_for_path(p))]
    assert opened
    qtbot.waitUntil(lambda: page.background.pending() == [], timeout=10_000)
    assert page.tree_model.totals is not None and _open_now(page, folders) == opened
    source.close()


def test_opening_every_folder_stops_at_a_change_of_view_a_sort_or_collapse_all(qtbot, tmp_path):
    from explorer.ui.file_tree_model import SIZE

    source, page, folders = _deep_page(qtbot, tmp_path)
    page.expand_all()  # a small image: every folder, between events
    assert page.background.pending("open below")
    page.collapse_all()
    assert not page.background.pending("open below")
    _turns()
    assert _open_now(page, folders) == []
    page.expand_all()
    qtbot.waitUntil(lambda: not page.background.pending("open below"), timeout=10_000)
    assert _open_now(page, folders) == folders
    page.collapse_all()
    page.expand_all()
    page.set_mode(DIFF)  # another view: what was being opened stops
    assert not page.background.pending("open below")
    page.set_mode(MERGED)
    qtbot.waitUntil(lambda: page.background.pending() == [], timeout=10_000)
    page.collapse_all()
    page.expand_all()
    page.file_tree.sortByColumn(SIZE, Qt.SortOrder.DescendingOrder)  # the tree made again: nothing more opens
    _turns()
    assert _open_now(page, folders) == []
    source.close()
