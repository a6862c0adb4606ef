"""The Packages page, and packages where the window shows files and layers."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import Qt  # noqa: E402

from explorer.ui.packages_panel import FINAL, NAME, PACKAGE_ROLE, SIZE, WHAT  # noqa: E402
from tests.gui_fixtures import private_settings, window  # noqa: E402,F401 (fixtures)

DPKG = Path(__file__).parent / "data" / "packages" / "dpkg.docker.tar"


def _open(qtbot, window, path=DPKG):
    with qtbot.waitSignal(window.image_loaded, timeout=30_000) as blocker:
        window.open_paths([str(path)])
    return blocker.args[0]


def _rows(panel) -> list[tuple[str, str]]:
    proxy = panel.proxy
    return [(proxy.index(r, NAME).data(), proxy.index(r, WHAT).data()) for r in range(proxy.rowCount())]


def test_the_packages_page_lists_the_final_image_and_each_layer(qtbot, window, qtmodeltester):
    view = _open(qtbot, window)
    view.show_packages()
    panel = view.packages
    assert view.center_tabs.currentWidget() is panel
    qtmodeltester.check(panel.model)
    rows = _rows(panel)
    assert {name for name, _ in rows} == {"fixture-tool", "hostname", "sensible-utils"}
    sizes = [panel.proxy.index(r, SIZE).data(Qt.ItemDataRole.UserRole + 1) for r in range(panel.proxy.rowCount())]
    assert sizes == sorted(sizes, reverse=True)  # biggest first
    assert dict(rows)["fixture-tool"] == "changed in layer 3 (from 1.0)"  # installed in 2, upgraded in 3
    assert dict(rows)["hostname"] == "installed in layer 1"
    assert "3 packages hold" in panel.summary.text()
    panel.search.setText("TOOL")  # by name, any case
    assert [name for name, _ in _rows(panel)] == ["fixture-tool"]
    panel.search.clear()
    panel.show_scope(3)
    assert _rows(panel) == [("fixture-tool", "changed from 1.0")]
    panel.show_scope(5)
    assert _rows(panel) == [("tree", "removed")]
    panel.show_scope(7)
    assert "102.4 kB not from a package" in panel.summary.text()
    panel.show_scope(FINAL)
    assert len(_rows(panel)) == 3


def test_a_package_shows_its_files_in_the_tree_through_usr_merge(qtbot, window):
    view = _open(qtbot, window)
    view.set_layer(2)  # looked at a layer before: the package's files are the final image's
    view.show_packages(FINAL)
    panel = view.packages
    row = next(r for r in range(panel.proxy.rowCount()) if panel.proxy.index(r, NAME).data() == "fixture-tool")
    panel.table.activated.emit(panel.proxy.index(row, NAME))
    assert view.center_tabs.currentIndex() == 0 and view.layer is None
    assert view.layer_list.currentIndex().row() == 0 and view.layers_panel.layer is None  # the list says so too
    visible = view.tree_model.visible
    # its .list names /bin/fixture-tool; /bin links to usr/bin: the file shown is the real one
    assert "/usr/bin/fixture-tool" in visible and "/bin/fixture-tool" not in visible
    assert "/app/data.bin" not in visible and "/usr/bin/hostname" not in visible
    assert view.package_filter.isVisible() and "fixture-tool 2.0" in view.package_filter.text()
    assert view.current_path() is not None and view.current_path() in visible
    view.package_filter.linkActivated.emit("all")
    qtbot.waitUntil(lambda: view.tree_model.visible is None)
    assert not view.package_filter.isVisible()


def test_details_name_a_files_package_and_the_strip_the_bytes_no_package_holds(qtbot, window):
    view = _open(qtbot, window)
    qtbot.waitUntil(lambda: view.tree_model.index_for_path("/usr").isValid())
    view.file_tree.expand(view.tree_model.index_for_path("/usr"))
    view.file_tree.expand(view.tree_model.index_for_path("/usr/bin"))
    view.select_path("/usr/bin/hostname")
    assert view.details.values["Package"].text().startswith("hostname 3.23+nmu1 (dpkg), last installed or changed in layer 1")
    view.select_path("/usr")
    view.set_layer(7)
    assert "102.4 kB not from a package" in view.layer_strip.fields["packages"].full_text()


def test_insights_name_the_packages_behind_layers_and_waste(qtbot, window):
    view = _open(qtbot, window)
    view.show_insights()
    lines = [view.insights.advice.item(i).text() for i in range(view.insights.advice.count())]
    packages = [line for line in lines if line.startswith("Packages: ")]
    assert any("tree removed in layer 5" in line and "still stored in layer 1" in line for line in packages)
    # the list is "biggest saving first": the advice with a saving, in order, then these notes
    savings = lines[: len(lines) - len(packages)]
    assert savings and all(" — saves " in line for line in savings) and lines[len(savings):] == packages
    assert [a.bytes for a in view.image.advice] == sorted((a.bytes for a in view.image.advice), reverse=True)
    assert any("biggest packages" in line for line in packages)
    item = next(view.insights.advice.item(i) for i in range(view.insights.advice.count())
                if "tree removed" in view.insights.advice.item(i).text())
    with qtbot.waitSignal(view.insights.show_layer) as shown:
        view.insights.advice.itemClicked.emit(item)
    assert shown.args == [1]


def test_an_image_without_package_databases_says_so(qtbot, window):
    view = _open(qtbot, window, Path(__file__).parent / "data" / "docker-legacy.tar")
    view.show_packages()
    assert "No package manager" in view.packages.summary.text()
    assert view.packages.proxy.rowCount() == 0
    assert view.packages.model.data(view.packages.model.index(0, 0), PACKAGE_ROLE) is None


def test_the_comparison_tab_names_package_differences(qtbot, window):
    data = Path(__file__).parent / "data" / "packages"
    with qtbot.waitSignal(window.comparison_ready, timeout=30_000) as blocker:
        window.compare_paths(str(data / "pip.docker.tar"), str(data / "npm.docker.tar"))
    view = blocker.args[0]
    text = view.summary.text()
    assert "Packages: 3 only in B, 0 at another version, 3 only in A" in text
    assert "+ debug 4.3.4 (npm)" in view.summary.toolTip() and "- six 1.17.0 (pip)" in view.summary.toolTip()


def test_the_packages_page_follows_the_selected_layer(qtbot, window):
    view = _open(qtbot, window)
    view.show_packages()
    view.set_layer(3)
    assert _rows(view.packages) == [("fixture-tool", "changed from 1.0")]
    view.set_layer(None)
    assert len(_rows(view.packages)) == 3


def test_packages_shown_early_say_they_follow_then_show(qtbot, window, monkeypatch, qtmodeltester):
    """A big image's files come before their packages: the Packages page, a file's package and
    a layer's say they follow, then show, the page the user is on made when they come."""
    from tests.test_gui import _accounting_held

    go = _accounting_held(monkeypatch)
    with qtbot.waitSignal(window.files_shown, timeout=30_000) as shown:
        window.open_paths([str(DPKG)])
    view = shown.args[0]
    qtbot.waitUntil(lambda: view.tree_model.index_for_path("/usr").isValid())
    view.file_tree.expand(view.tree_model.index_for_path("/usr"))
    view.file_tree.expand(view.tree_model.index_for_path("/usr/bin"))
    view.select_path("/usr/bin/hostname")
    assert view.details.values["Package"].text() == "…"
    view.set_layer(7)
    assert view.layer_strip.fields["packages"].full_text() == "…"
    view.show_packages(1)
    assert view.packages is None and view.center_tabs.currentWidget().objectName() == "analysing"
    with qtbot.waitSignal(window.image_loaded, timeout=30_000):
        go.set()
    assert view.details.values["Package"].text().startswith("hostname 3.23+nmu1 (dpkg)")  # the file still selected
    assert "102.4 kB not from a package" in view.layer_strip.fields["packages"].full_text()
    assert view.center_tabs.currentWidget() is view.packages  # made on the page the user is on
    qtmodeltester.check(view.packages.model)
    assert "3 packages hold" not in view.packages.summary.text() and "Layer 7 wrote" in view.packages.summary.text()
