"""The window's layout as a user meets it: the selected layer in full, nothing clipped at
1366x768, panes that stay put, a light and a dark look, keys for everything."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QFontMetrics  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QAbstractButton, QAbstractItemView, QAbstractScrollArea, QApplication, QHeaderView, QStyle, QTabBar  # noqa: E402

from explorer.ui.format import short_command  # noqa: E402
from explorer.ui.layer_model import COMMAND  # noqa: E402
from tests.gui_fixtures import private_settings  # noqa: E402,F401 (fixtures)

DATA = Path(__file__).parent / "data"


def _window(qtbot, width=1366, height=768):
    from explorer.app import create_main_window

    w = create_main_window()
    qtbot.addWidget(w)
    w.resize(width, height)
    w.show()
    return w


def _sample(qtbot, window):
    with qtbot.waitSignal(window.image_loaded, timeout=30_000) as blocker:
        window.open_sample()
    view = blocker.args[0]
    qtbot.waitUntil(lambda: view.tree_model.totals is not None, timeout=10_000)
    return view


@pytest.fixture
def small(qtbot):
    w = _window(qtbot)
    yield w
    for d in list(w.dialogs):
        d.close()
    from explorer.ui.workers import wait_for_background

    wait_for_background(60_000)


def test_the_selected_layer_shows_its_whole_step_digests_and_sizes(qtbot, small):
    view = _sample(qtbot, small)
    image = view.image
    for layer in range(len(image.layers)):
        view.set_layer(layer)
        info = image.layers[layer]
        strip = view.layer_strip
        assert strip.command.toPlainText() == short_command(info.created_by, 1 << 20)  # all of it, never cut
        assert strip.fields["digest"].full_text() == info.digest
        assert strip.fields["diff_id"].full_text() == info.diff_id
        assert f"+{info.added:,} added" in strip.fields["changes"].full_text()
        assert "stored" in strip.fields["sizes"].full_text()
    view.set_layer(None)
    sizes = view.layer_strip.fields["sizes"].full_text()
    assert "final files 2.0 MB" in sizes and "stored in layers 2.6 MB" in sizes  # labelled, not two bare sizes


def test_history_rows_hold_the_whole_step_elided_in_the_middle(qtbot, small):
    view = _sample(qtbot, small)
    model = view.history_model
    for row, step in enumerate(view.image.history):
        shown = model.index(row, 1).data()
        assert shown == (short_command(step.created_by, 1 << 20) or "(no command recorded)")
    assert view.history_panel.textElideMode() == Qt.TextElideMode.ElideMiddle
    assert view.layer_list.textElideMode() == Qt.TextElideMode.ElideMiddle
    # the layers' command column gets what the numbers leave: more than a few characters
    width = view.layer_list.horizontalHeader().sectionSize(COMMAND)
    assert width >= QFontMetrics(view.layer_list.font()).horizontalAdvance("x" * 25)


def _fits(widget) -> bool:
    """Whether a button or label has at least the width its whole text asks for."""
    return widget.width() >= widget.minimumSizeHint().width() and widget.width() >= widget.sizeHint().width() - 2


def _tabs_fit(bar: QTabBar) -> bool:
    metrics = QFontMetrics(bar.font())
    return all(bar.tabRect(i).width() >= metrics.horizontalAdvance(bar.tabText(i).replace("&", "")) for i in range(bar.count()))


def test_nothing_on_the_first_screen_is_clipped_at_1366x768(qtbot, small):
    view = _sample(qtbot, small)
    qtbot.waitUntil(lambda: view.width() > 1000)
    for button in (view.merged_button, view.diff_button, view.hide_button, view.search_kind):
        assert _fits(button), button.objectName()
    hide = view.hide_button  # its text and, beside it, the arrow of its menu (as the application's style draws it:
    # the button's own style sheet says the arrow takes no room)
    arrow = QApplication.style().pixelMetric(QStyle.PixelMetric.PM_MenuButtonIndicator)
    assert arrow > 0
    room = QFontMetrics(hide.font()).horizontalAdvance(hide.text()) + arrow
    assert hide.width() >= hide.sizeHint().width() >= room + 8
    for bar in (view.center_tabs.tabBar(), view.side_tabs.tabBar(), small.tabs.tabBar()):
        assert _tabs_fit(bar)
    # the numbers of the layer list and the tree are whole in their columns
    for table, columns in ((view.layer_list, (0, 1, 2, 3)), (view.file_tree, (1, 2, 3, 4))):
        header = table.horizontalHeader() if hasattr(table, "horizontalHeader") else table.header()
        metrics = QFontMetrics(table.font())
        model = table.model()
        for row in range(model.rowCount()):
            for column in columns:
                text = str(model.index(row, column).data() or "")
                assert header.sectionSize(column) >= metrics.horizontalAdvance(text) + 6, (column, text)
    # the file names have room too
    assert view.file_tree.columnWidth(0) >= QFontMetrics(view.file_tree.font()).horizontalAdvance("x" * 16)


def test_pages_keep_their_panes_and_insights_and_inspect_take_the_full_width(qtbot, small):
    view = _sample(qtbot, small)
    before = view.splitter.sizes(), view.left_splitter.sizes()
    view.show_insights()
    qtbot.waitUntil(lambda: view.insights is not None and view.insights.isVisible())
    assert view.insights.width() >= view.width() - 20  # no empty Details panel beside it
    view.show_inspect()
    qtbot.waitUntil(lambda: view.inspect is not None and view.inspect.isVisible())
    assert view.inspect.width() >= view.width() - 20
    view.center_tabs.setCurrentIndex(0)
    qtbot.waitUntil(view.file_tree.isVisible)
    assert (view.splitter.sizes(), view.left_splitter.sizes()) == before


def test_the_panes_come_back_as_the_user_left_them(qtbot, tmp_path):
    w = _window(qtbot)
    view = _sample(qtbot, w)
    sizes = view.splitter.sizes()
    moved = [sizes[0] - 60, sizes[1] + 60, sizes[2]]
    view.splitter.setSizes(moved)
    w.close()
    again = _window(qtbot)
    view = _sample(qtbot, again)
    assert view.splitter.sizes() == moved
    again.close()


def test_light_dark_and_the_system_theme(qtbot, small):
    def lightness() -> int:
        return QApplication.palette().color(QApplication.palette().ColorRole.Window).lightness()

    small.theme_actions["dark"].trigger()
    assert lightness() < 100 and small.settings.value("appearance/theme") == "dark"
    from explorer.ui import resources

    assert resources.is_dark()  # the change markers and charts take their dark colours
    small.theme_actions["light"].trigger()
    assert lightness() > 180 and not resources.is_dark()
    small.theme_actions["system"].trigger()
    assert small.settings.value("appearance/theme") == "system"
    # offscreen, the system says neither light nor dark: the light palette
    if QApplication.styleHints().colorScheme() != Qt.ColorScheme.Dark:
        assert lightness() > 180


def test_the_theme_is_remembered(qtbot):
    first = _window(qtbot)
    first.theme_actions["dark"].trigger()
    first.close()
    second = _window(qtbot)
    assert second.theme == "dark" and second.theme_actions["dark"].isChecked()
    second.theme_actions["system"].trigger()


def test_f1_and_ctrl_slash_list_every_shortcut(qtbot, small, qtmodeltester):
    from explorer.ui.shortcuts_dialog import ShortcutsDialog

    small.activateWindow()
    for key, modifier in ((Qt.Key.Key_F1, Qt.KeyboardModifier.NoModifier), (Qt.Key.Key_Slash, Qt.KeyboardModifier.ControlModifier)):
        QTest.keyClick(small, key, modifier)
        qtbot.waitUntil(lambda: any(isinstance(d, ShortcutsDialog) for d in small.dialogs))
        dialog = next(d for d in small.dialogs if isinstance(d, ShortcutsDialog))
        qtmodeltester.check(dialog.model)
        rows = {(dialog.model.item(r, 0).text(), dialog.model.item(r, 1).text()) for r in range(dialog.model.rowCount())}
        # every menu action with a shortcut is listed with it
        for action in small.actions():
            keys = action.shortcut().toString(action.shortcut().SequenceFormat.NativeText)
            if keys and action.text():
                assert any(keys in k and a == action.text().replace("&", "").rstrip("…") for k, a in rows), action.text()
        assert ("F1 or Ctrl+/", "Keyboard shortcuts") in rows
        assert any(k.startswith("Tab") for k, _ in rows)
        dialog.close()
        qtbot.waitUntil(lambda: not any(isinstance(d, ShortcutsDialog) for d in small.dialogs))


def test_tab_goes_from_pane_to_pane(qtbot, small):
    view = _sample(qtbot, small)
    small.activateWindow()
    view.layer_list.setFocus()
    qtbot.waitUntil(view.layer_list.hasFocus)
    order = [view.history_panel, view.merged_button, view.hide_button, view.search_box, view.search_kind, view.file_tree]
    for widget in order:
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        qtbot.waitUntil(widget.hasFocus, timeout=2000)
    for widget in reversed(order[:-1]):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
        qtbot.waitUntil(widget.hasFocus, timeout=2000)


def test_next_layer_keys_work_from_the_file_tree(qtbot, small):
    view = _sample(qtbot, small)
    small.activateWindow()
    view.file_tree.setFocus()
    qtbot.waitUntil(view.file_tree.hasFocus)
    QTest.keyClick(view.file_tree, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: view.layer == 0)
    QTest.keyClick(view.file_tree, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: view.layer == 1)


def test_every_view_has_an_accessible_name(qtbot, small):
    view = _sample(qtbot, small)
    view.show_insights()
    view.show_inspect()
    qtbot.waitUntil(lambda: view.inspect is not None)  # (built once its Size is added up)
    view.center_tabs.setCurrentIndex(0)
    # item views of the window itself (a combo box's list is a popup; headers belong to their view)
    unnamed = [w.objectName() or type(w).__name__ for w in small.findChildren(QAbstractScrollArea)
               if isinstance(w, QAbstractItemView) and not isinstance(w, QHeaderView) and w.window() is small
               and not w.accessibleName()]
    assert unnamed == []


def test_the_sample_is_named_like_an_image(qtbot, small):
    view = _sample(qtbot, small)
    assert small.tabs.tabText(small.tabs.indexOf(view)) == "layer-explorer/sample:latest"
    assert small.windowTitle().startswith("layer-explorer/sample:latest")


def test_the_start_page_offers_the_sample_and_recent_sources_by_name(qtbot, small, tmp_path):
    page = small.start_page
    assert not page.recent.isVisible()  # nothing opened yet: no empty list
    gone = str(tmp_path / "gone" / "old.tar")
    small.settings.setValue("recentFiles", [str(DATA / "docker-legacy.tar"), gone, "docker://alpine:3"])
    small.refresh_recent()
    texts = [page.recent.item(i).text() for i in range(page.recent.count())]
    assert texts[0].startswith("docker-legacy.tar") and str(DATA) in texts[0]
    assert texts[2] == "docker://alpine:3"
    assert "no longer there" in page.recent.item(1).toolTip()
    with qtbot.waitSignal(page.open_recent) as blocker:
        page.recent.itemActivated.emit(page.recent.item(0))
    assert blocker.args == [str(DATA / "docker-legacy.tar")]
    with qtbot.waitSignal(small.image_loaded, timeout=30_000):
        qtbot.mouseClick(page.findChild(type(page.findChildren(QAbstractButton)[0]), "sampleButton"), Qt.MouseButton.LeftButton)


def test_wasted_file_paths_keep_their_file_names(qtbot, small):
    view = _sample(qtbot, small)
    view.show_insights()
    qtbot.waitUntil(lambda: view.insights is not None)
    assert view.insights.waste_table.textElideMode() == Qt.TextElideMode.ElideMiddle


def test_a_layers_many_changes_show_whole_in_short_and_exact_on_hover(qtbot, small, tmp_path):
    from tests.builders import d, docker_archive, f, layer_tar, wh

    base = layer_tar([d("etc"), *(f(f"etc/old{i}", "x") for i in range(3))])
    many = layer_tar([d("data"), *(f(f"data/f{i:05d}", "") for i in range(12_345)), *(wh(f"etc/old{i}") for i in range(3))])
    path = tmp_path / "many.tar"
    path.write_bytes(docker_archive([base, many]))
    with qtbot.waitSignal(small.image_loaded, timeout=30_000) as blocker:
        small.open_paths([str(path)])
    view = blocker.args[0]
    model, header = view.layer_model, view.layer_list.horizontalHeader()
    row = model.row_of_layer(1)
    text = model.index(row, 3).data()
    assert text == "+12k ~0 −3"
    assert header.sectionSize(3) >= QFontMetrics(view.layer_list.font()).horizontalAdvance(text) + 6
    assert model.index(row, 3).data(Qt.ItemDataRole.ToolTipRole) == "12,346 added, 0 modified, 3 removed"


def test_the_window_builds_a_view_of_nothing_once_it_is_up_and_keeps_none(qtbot, monkeypatch):
    from explorer.ui import main_window
    from explorer.ui.image_view import ImageView

    built = []
    real = main_window.MainWindow._build_view_ahead
    monkeypatch.setattr(main_window.MainWindow, "_build_view_ahead", lambda self: (built.append(1), real(self)))
    w = _window(qtbot)
    qtbot.waitUntil(lambda: built == [1], timeout=5_000)  # (after WARM_UP_DELAY)
    views = lambda: [x for x in QApplication.allWidgets() if isinstance(x, ImageView)]  # noqa: E731
    qtbot.waitUntil(lambda: not views(), timeout=5_000)  # dropped again: nothing in the window
    assert w.stack.currentWidget() is w.start_page
    w.hide()
    w.show()
    QTest.qWait(main_window.WARM_UP_DELAY * 2)
    assert built == [1]  # once per window
