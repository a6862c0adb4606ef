"""Comparing from the window: a side with several images is asked about as Open asks, and a
side may be an OCI layout folder; the comparison tab says how the two layer chains relate."""

from __future__ import annotations


import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtWidgets import QDialog, QFileDialog, QPushButton  # noqa: E402


from tests.test_compare import DOCKER_MULTI, FOLDER, LEGACY, PLATFORMS, PODMAN_MULTI, _based  # noqa: E402
from tests.test_gui import private_settings, window  # noqa: E402,F401 (fixtures)

KEEP = "keep"  # a picker answer: accept the row it starts on


class Pickers:
    """Stands in for the user at each image picker: records what it showed, chooses a row."""

    def __init__(self, monkeypatch, rows: list[int | str | None]) -> None:
        from explorer.ui.dialogs import ImagePicker

        self.rows = list(rows)  # a row to choose; None: cancel; KEEP: the row it starts on
        self.shown: list[dict] = []
        pickers = self

        def exec_(picker) -> QDialog.DialogCode:
            pickers.shown.append({"title": picker.windowTitle(), "start": picker.list.currentRow(),
                                  "items": [picker.list.item(i).text() for i in range(picker.list.count())]})
            row = pickers.rows.pop(0)
            if row is None:
                return QDialog.DialogCode.Rejected
            if row != KEEP:
                picker.list.setCurrentRow(row)
            return QDialog.DialogCode.Accepted

        monkeypatch.setattr(ImagePicker, "exec", exec_)


def _drop(window, paths) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def test_dropping_two_multi_image_archives_asks_for_each_side(qtbot, window, monkeypatch):
    pickers = Pickers(monkeypatch, [1, 1])
    with qtbot.waitSignal(window.comparison_ready, timeout=30_000) as blocker:
        _drop(window, [DOCKER_MULTI, PODMAN_MULTI])
    view = blocker.args[0]
    assert [p["title"] for p in pickers.shown] == ["Compare: choose image A", "Compare: choose image B"]
    assert all(len(p["items"]) == 2 and p["start"] == 0 for p in pickers.shown)  # Open's default: the first
    assert view.cmp.a.tags == ("fixture-layers:buildah",) and view.cmp.b.tags == ("localhost/fixture-layers:buildah",)
    assert "the images share all 4 layers" in view.summary.text()


def test_only_the_side_with_several_images_is_asked_about(qtbot, window, monkeypatch):
    pickers = Pickers(monkeypatch, [1])
    with qtbot.waitSignal(window.comparison_ready, timeout=30_000) as blocker:
        window.compare_paths(str(LEGACY), str(PLATFORMS))
    assert [p["title"] for p in pickers.shown] == ["Compare: choose image B"]
    assert blocker.args[0].cmp.b.platform == "linux/arm64"


def test_a_cancelled_picker_compares_nothing_and_open_still_works(qtbot, window, monkeypatch):
    pickers = Pickers(monkeypatch, [None])
    window.compare_paths(str(DOCKER_MULTI), str(LEGACY))
    qtbot.waitUntil(lambda: len(pickers.shown) == 1 and not window.loader.busy, timeout=30_000)
    assert window.tabs.count() == 0
    with qtbot.waitSignal(window.image_loaded, timeout=30_000) as blocker:
        window.open_paths([str(LEGACY)])  # an open after it is an open, not a side of a comparison
    assert blocker.args[0].image.tags == ("fixture-layers:docker-legacy",)


def test_compare_two_images_dialog_takes_a_folder_and_an_archive(qtbot, window, monkeypatch):
    from explorer.ui import dialogs

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(FOLDER))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(LEGACY), ""))

    def exec_(dialog) -> QDialog.DialogCode:
        ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
        assert not ok.isEnabled()  # nothing chosen yet
        dialog.a.findChild(QPushButton, "folderButton").click()
        assert not ok.isEnabled()  # B still missing
        dialog.b.findChild(QPushButton, "archiveButton").click()
        assert ok.isEnabled() and dialog.paths() == (str(FOLDER), str(LEGACY))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(dialogs.CompareDialog, "exec", exec_)
    with qtbot.waitSignal(window.comparison_ready, timeout=30_000) as blocker:
        window.findChild(type(window.actions()[0]), "actionCompare2").trigger()
    view = blocker.args[0]
    assert view.cmp.a.source.format == "oci-layout" and view.cmp.b.source.format == "docker-archive"


def test_compare_with_asks_for_b_and_starts_on_another_image_of_the_same_archive(qtbot, window, monkeypatch):
    from explorer.ui import dialogs

    pickers = Pickers(monkeypatch, [1, KEEP])  # open image 1; then B: accept the row it starts on
    with qtbot.waitSignal(window.image_loaded, timeout=30_000):
        window.open_paths([str(DOCKER_MULTI)])

    def exec_(dialog) -> QDialog.DialogCode:
        assert dialog.a is None  # A is the tab
        dialog.b.edit.setText(str(DOCKER_MULTI))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(dialogs.CompareDialog, "exec", exec_)
    with qtbot.waitSignal(window.comparison_ready, timeout=30_000) as blocker:
        window.findChild(type(window.actions()[0]), "actionCompareWith").trigger()
    view = blocker.args[0]
    assert [p["title"] for p in pickers.shown] == ["Choose an image", "Compare: choose image B"]
    assert pickers.shown[1]["start"] == 0  # A is image 1: B starts on the other
    assert view.cmp.a.tags == ("fixture-layers:buildah",) and view.cmp.b.tags == ("fixture-layers:docker-legacy",)


def test_the_comparison_tab_says_b_adds_layers_and_marks_them(qtbot, window, tmp_path):
    a, b = _based(tmp_path, 3)
    with qtbot.waitSignal(window.comparison_ready, timeout=30_000) as blocker:
        window.compare_paths(str(a), str(b))
    view = blocker.args[0]
    assert "B adds 3 layers on top of all 2 layers of A" in view.summary.text()
    assert "part at" not in view.summary.text()
    model = view.layers.model()
    assert [model.index(k, 3).data() for k in range(model.rowCount())] == ["shared", "shared"] + ["only in B"] * 3
