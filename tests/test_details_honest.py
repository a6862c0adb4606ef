"""What the tree, Details and Preview say of removed files, dangling links, metadata changes, owners, hex."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QModelIndex, QSize, Qt  # noqa: E402
from PySide6.QtGui import QColor, QFontMetrics, QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from explorer.formats.source import open_source  # noqa: E402
from explorer.image.loader import load_image  # noqa: E402
from explorer.tree import explain  # noqa: E402
from explorer.tree.views import DIFF, MERGED, TreeView  # noqa: E402
from explorer.ui import resources  # noqa: E402
from explorer.ui.file_tree_model import CHANGE, LAYER, NAME, OWNER, FileTreeModel  # noqa: E402
from explorer.ui.format import human_size  # noqa: E402
from explorer.ui.preview_panel import HEX_LAYOUTS, HexLayout, choose_hex_layout, hex_lines  # noqa: E402
from tests.builders import E, d, docker_archive, f, hard, layer_tar, sym, wh  # noqa: E402
from tests.gui_fixtures import private_settings, window  # noqa: E402,F401 (fixtures)

BIG_OWNER = "2000000000:2000000000"
OLD_DATA, NEW_DATA = bytes(range(256)) * 8, b"\x00\x01" * 700


def _layers() -> list[bytes]:
    """Layer 0: one entry of each kind; 1: conf chmod and chown, data.bin rewritten, a dangling link; 2: gone.txt removed."""
    return [
        layer_tar([d("etc"), f("etc/conf", "hello\n"), f("etc/gone.txt", "bye\n"), f("etc/data.bin", OLD_DATA),
                   f("etc/tool", "#!/bin/sh\n", mode=0o755), sym("etc/good", "conf"), hard("etc/conf-again", "etc/conf"),
                   E("fifo", "etc/pipe"), f("etc/big-owner", "x", uid=2_000_000_000, gid=2_000_000_000)]),
        layer_tar([f("etc/conf", "hello\n", mode=0o640, uid=1000, gid=1000), sym("etc/dangling", "../nowhere/file"),
                   f("etc/data.bin", NEW_DATA)]),
        layer_tar([wh("etc/gone.txt")]),
    ]


@pytest.fixture
def archive(tmp_path) -> Path:
    path = tmp_path / "honest.tar"
    path.write_bytes(docker_archive(_layers()))
    return path


def _open(qtbot, window, path: Path):
    with qtbot.waitSignal(window.image_loaded, timeout=30_000) as blocker:
        window.open_paths([str(path)])
    return blocker.args[0]


def _show(qtbot, view, mode: str, layer: int | None, path: str) -> QModelIndex:
    """Switch the tab to a mode and layer, select ``path``; its index in the tree."""
    view.set_mode(mode)
    view.set_layer(layer)
    qtbot.waitUntil(lambda: view.tree_model.index_for_path(path).isValid(), timeout=10_000)
    view.select_path(path)
    assert view.current_path() == path
    return view.tree_model.index_for_path(path)


def _cell(index: QModelIndex, column: int, role=Qt.ItemDataRole.DisplayRole):
    return index.sibling(index.row(), column).data(role)


def _same_icon(a, b) -> bool:
    return a.pixmap(QSize(16, 16)).toImage() == b.pixmap(QSize(16, 16)).toImage()


# -- removed files --------------------------------------------------------------------------


def test_a_removed_row_names_the_layer_that_removed_it(qtbot, window, archive, qtmodeltester):
    view = _open(qtbot, window, archive)
    index = _show(qtbot, view, DIFF, 2, "/etc/gone.txt")
    assert _cell(index, CHANGE) == "removed"
    assert _cell(index, LAYER) == "2"  # not 0, the layer that stored it
    assert "removed in layer 2 (it was added in layer 0)" in _cell(index, NAME, Qt.ItemDataRole.ToolTipRole)
    details = view.details
    assert details.values["Change"].text() == "Removed in layer 2 (it was added in layer 0)"
    assert details.values["Layer"].text().startswith("2: ")
    assert "removed in layer 2" in details.title.text()
    qtmodeltester.check(view.tree_model)


def test_all_layers_changes_name_the_removing_layer_too(qtbot, window, archive):
    view = _open(qtbot, window, archive)
    index = _show(qtbot, view, DIFF, None, "/etc/gone.txt")
    assert _cell(index, LAYER) == "2"
    assert view.details.values["Change"].text() == "Removed in layer 2 (it was added in layer 0)"


# -- dangling links -------------------------------------------------------------------------


def test_a_dangling_link_is_marked_and_goes_nowhere(qtbot, window, archive):
    view = _open(qtbot, window, archive)
    view.side_tabs.setCurrentWidget(view.preview)
    index = _show(qtbot, view, MERGED, None, "/etc/dangling")
    tip = _cell(index, NAME, Qt.ItemDataRole.ToolTipRole)
    assert "dangling link: /nowhere/file is not in the image" in tip
    icon = _cell(index, NAME, Qt.ItemDataRole.DecorationRole)
    assert _same_icon(icon, resources.entry_icon(resources.DANGLING))
    good = view.tree_model.index_for_path("/etc/good")
    assert not _same_icon(icon, _cell(good, NAME, Qt.ItemDataRole.DecorationRole))
    assert "dangling" not in _cell(good, NAME, Qt.ItemDataRole.ToolTipRole)

    preview = view.preview
    assert preview.current_kind() == "link"
    assert "which is not in the image (a dangling link)" in preview.message.text()
    assert preview.go.isVisible() and not preview.go.isEnabled()
    assert preview.go.toolTip() == "/nowhere/file is not in the image"
    # at the top left, with its button under it, not floating mid-panel
    assert preview.message.alignment() & Qt.AlignmentFlag.AlignTop
    assert preview.message.alignment() & Qt.AlignmentFlag.AlignLeft
    assert preview.go.mapTo(preview, preview.go.rect().topLeft()).y() < preview.height() // 2
    assert "not in the image" in view.details.values["Link target"].text()

    view.select_path("/etc/good")
    assert preview.go.isEnabled() and preview.go.toolTip() == "Select /etc/conf"


# -- what a change changed ------------------------------------------------------------------


def test_a_metadata_only_change_says_what_changed(qtbot, window, archive):
    view = _open(qtbot, window, archive)
    _show(qtbot, view, DIFF, 1, "/etc/conf")
    text = view.details.values["Change"].text()
    assert text.startswith("Changed in layer 1: mode 0644 -> 0640, owner 0:0 -> 1000:1000")
    assert "content changed" not in text
    view.select_path("/etc/data.bin")
    sizes = f"{human_size(len(OLD_DATA))} -> {human_size(len(NEW_DATA))}"
    assert view.details.values["Change"].text() == f"Changed in layer 1: content changed (size {sizes})"


def test_content_is_called_unchanged_only_when_known(tmp_path):
    """A plain layer is not hashed as it is read: same size is all that is known there."""
    for gzipped, expected in ((False, explain.CONTENT_UNKNOWN), (True, explain.CONTENT_SAME)):
        path = tmp_path / f"meta-{gzipped}.tar"
        path.write_bytes(docker_archive(_layers(), gzip_layers=gzipped))
        source = open_source(str(path))
        tree = load_image(source, source.select()).tree
        step = explain.last_step(tree, "/etc/conf", 1)
        found = explain.step_differences(tree, step)
        assert [x.what for x in found] == [explain.MODE, explain.OWNER, expected]
        source.close()


# -- the hex view ---------------------------------------------------------------------------


def _hex_fits(preview) -> None:
    plain = preview.plain
    metrics = QFontMetrics(plain.font())
    lines = plain.toPlainText().splitlines()
    widest = max(lines, key=metrics.horizontalAdvance)
    room = plain.viewport().width() - 2 * plain.document().documentMargin()
    assert metrics.horizontalAdvance(widest) <= room, (widest, room)
    assert plain.horizontalScrollBar().maximum() == 0  # nothing off to the right


def test_the_hex_view_fits_the_side_panel(qtbot, window, archive):
    view = _open(qtbot, window, archive)
    assert 300 <= view.side_tabs.width() <= 350  # the side panel as the window first lays it out
    view.side_tabs.setCurrentWidget(view.preview)
    preview = view.preview
    with qtbot.waitSignal(preview.background.result, timeout=10_000):
        _show(qtbot, view, MERGED, None, "/etc/data.bin")
    assert preview.current_kind() == "binary"
    assert preview.plain.verticalScrollBar().isVisible()
    _hex_fits(preview)
    first = preview.plain.toPlainText().splitlines()[0]
    assert first.endswith("." * preview.hex_layout.per_line)  # the ASCII column is there, whole
    assert preview.hex_layout.per_line == 8

    sizes = view.splitter.sizes()  # a wide panel: 16 bytes a line, as classic dumps have
    view.splitter.setSizes([sizes[0] - 500, sizes[1], sizes[2] + 500])
    qtbot.waitUntil(lambda: preview.hex_layout.per_line == 16, timeout=5_000)
    assert preview.plain.toPlainText().startswith("00000000  00 01 00 01")
    _hex_fits(preview)


def test_hex_layouts_from_the_widest_that_fits():
    metrics = QFontMetrics(QApplication.font())
    classic = HEX_LAYOUTS[0]
    assert choose_hex_layout(metrics, 10_000, 100) == classic
    assert choose_hex_layout(metrics, 1, 100) == HEX_LAYOUTS[-1]
    compact = hex_lines(b"ELF\x00abcdefgh", 0, HexLayout(8, True), 12)
    assert compact.splitlines() == ["0000 45 4c 46 00 61 62 63 64 ELF.abcd", "0008 65 66 67 68             efgh"]


# -- icons and owners -----------------------------------------------------------------------


def _dark_palette() -> QPalette:
    palette = QPalette()
    for role, colour in ((QPalette.ColorRole.Window, "#202124"), (QPalette.ColorRole.Base, "#1b1b1b"),
                         (QPalette.ColorRole.Text, "#e8eaed"), (QPalette.ColorRole.WindowText, "#e8eaed")):
        palette.setColor(role, QColor(colour))
    return palette


def test_entry_icons_differ_by_kind_in_light_and_dark(qapp):
    kinds = ["dir", "file", resources.EXECUTABLE, "symlink", resources.DANGLING, "hardlink", resources.SPECIAL]
    light = [resources.entry_icon(k).pixmap(QSize(16, 16)).toImage() for k in kinds]
    before = qapp.palette()
    qapp.setPalette(_dark_palette())
    try:
        assert resources.is_dark()
        dark = [resources.entry_icon(k).pixmap(QSize(16, 16)).toImage() for k in kinds]
    finally:
        qapp.setPalette(before)
    for images in (light, dark):
        assert all(not i.isNull() for i in images)
        assert len({bytes(i.constBits()) for i in images}) == len(kinds)  # no two kinds look alike
    assert all(a != b for a, b in zip(light, dark))  # each drawn for its theme
    marked = resources.entry_icon("file", "added").pixmap(QSize(16, 16)).toImage()
    assert marked != light[1]  # a change marks the kind's icon, it does not replace it


def test_the_tree_shows_each_kind_its_icon(qtbot, window, archive):
    view = _open(qtbot, window, archive)
    model = view.tree_model
    _show(qtbot, view, MERGED, 0, "/etc/tool")  # layer 0: conf and conf-again are one file
    for path, kind in (("/etc", "dir"), ("/etc/tool", resources.EXECUTABLE), ("/etc/pipe", resources.SPECIAL),
                       ("/etc/conf-again", "hardlink"), ("/etc/good", "symlink"), ("/etc/conf", "file")):
        index = model.index_for_path(path)
        assert _same_icon(index.data(Qt.ItemDataRole.DecorationRole), resources.entry_icon(kind, "added")), path
    view.set_layer(None)  # layer 1 wrote conf anew: conf-again is a file of its own since
    qtbot.waitUntil(lambda: model.index_for_path("/etc/conf-again").isValid(), timeout=10_000)
    conf_again = model.index_for_path("/etc/conf-again")
    assert _same_icon(conf_again.data(Qt.ItemDataRole.DecorationRole), resources.entry_icon("file"))


def test_a_big_owner_is_shown_whole(qtbot, window, archive):
    window.resize(1900, 900)
    view = _open(qtbot, window, archive)
    view.splitter.setSizes([500, 1000, 340])  # a tree with room for names and owners
    index = _show(qtbot, view, MERGED, None, "/etc/big-owner")
    tree = view.file_tree
    needed = tree.fontMetrics().horizontalAdvance(BIG_OWNER)
    qtbot.waitUntil(lambda: tree.header().sectionSize(OWNER) > needed, timeout=5_000)
    assert _cell(index, OWNER) == BIG_OWNER
    assert tree.header().sectionSize(NAME) >= 0.4 * tree.viewport().width() - 1  # names keep their room
    assert BIG_OWNER in _cell(index, OWNER, Qt.ItemDataRole.ToolTipRole)


def test_the_file_tree_model_passes_the_model_tester(qapp, qtmodeltester, archive):
    source = open_source(str(archive))
    image = load_image(source, source.select())
    for mode in (MERGED, DIFF):
        for layer in (None, 0, 1, 2):
            model = FileTreeModel(TreeView(image.tree, layer, mode))
            qtmodeltester.check(model, force_py=True)
            for row in range(model.rowCount()):  # every row's text, icon and tooltip can be made
                index = model.index(row, 0)
                for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.ToolTipRole):
                    assert index.data(role) is not None
    source.close()
