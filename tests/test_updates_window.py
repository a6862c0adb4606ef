"""The Updates and Fleet tabs, on the buildah-made series and fleet of tests/data/updates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from tests.gui_fixtures import private_settings, window  # noqa: E402,F401 (fixtures)

DATA = Path(__file__).parent / "data" / "updates"
SERIES = [str(DATA / v) for v in json.loads((DATA / "expected.json").read_text())["series"]["app"]["versions"]]


def test_the_updates_tab_shows_each_update_the_grid_and_the_advice(qtbot, window, qtmodeltester):
    with qtbot.waitSignal(window.many_ready, timeout=60_000) as blocker:
        window.open_many("updates", SERIES)
    view = blocker.args[0]
    assert window.tabs.currentWidget() is view
    qtmodeltester.check(view.grid_model)
    assert view.grid_model.rowCount() == 4 and view.grid_model.columnCount() == 4
    assert view.grid_model.index(1, 0).data() == "reused" and view.grid_model.index(1, 2).data().startswith("new")
    assert view.grid_model.index(2, 1).data().startswith("new")  # v3 changed its dependencies
    assert "3 updates" in view.summary.text() and "re-downloaded unchanged" in view.summary.text()
    changed, unchanged = view.timeline.split(view.report["steps"][0])
    assert changed < 200 and unchanged > 80_000  # one small file made the update download 87 kB
    advice = [view.advice.item(i).text() for i in range(view.advice.count())]
    assert any(a.startswith("split-layer: each update re-downloads layer 2") for a in advice)
    rect, step = view.timeline.rows()[1]
    with qtbot.waitSignal(window.comparison_ready, timeout=30_000) as compared:
        QTest.mouseClick(view.timeline, Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    assert step == 1 and "app:v2" in compared.args[0].title() and "app:v3" in compared.args[0].title()


def test_the_fleet_tab_and_several_archives_dropped_as_a_fleet(qtbot, window, qtmodeltester):
    from tests.test_gui import _drop

    _drop(window, [DATA / "svc-a.oci.tar", DATA / "svc-b.oci.tar", DATA / "svc-c.oci.tar"])
    box = window.findChild(QMessageBox, "askMany")
    fleet = next(b for b in box.buttons() if b.text() == "As a &fleet")
    with qtbot.waitSignal(window.many_ready, timeout=60_000) as blocker:
        fleet.click()
    view = blocker.args[0]
    qtmodeltester.check(view.matrix_model)
    assert view.matrix_model.rowCount() == 3
    first = [view.matrix_model.index(r, 0).data() for r in range(3)]
    assert first == ["used"] * 3  # the /os layer: every image, the most shared first
    assert "localhost/fleet-base:2" in view.summary.text()


def test_a_failing_version_says_why(qtbot, window, tmp_path):
    broken = tmp_path / "broken.tar"
    broken.write_bytes(b"not an archive")
    with qtbot.waitSignal(window.load_failed, timeout=60_000) as blocker:
        window.open_many("updates", [SERIES[0], str(broken)])
    assert "broken.tar" in blocker.args[0]


def test_updates_and_fleet_tabs_close(qtbot, window):
    with qtbot.waitSignal(window.many_ready, timeout=60_000):
        window.open_many("fleet", [str(DATA / "svc-a.oci.tar"), str(DATA / "svc-b.oci.tar")])
    assert window.tabs.count() == 1
    window.close_tab(0)
    assert window.tabs.count() == 0
