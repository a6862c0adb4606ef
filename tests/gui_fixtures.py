"""Fixtures the window's tests share: settings kept private, and a shown main window.

A test module takes them with ``from tests.gui_fixtures import private_settings, window``.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings


@pytest.fixture(autouse=True)
def private_settings(tmp_path):
    """Keep recent files, geometry and the theme out of the user's real settings."""
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    yield


@pytest.fixture
def window(qtbot):
    """The main window at 1400x900, shown; whatever it started in the background ends with the test."""
    from explorer.app import create_main_window
    from explorer.ui.workers import wait_for_background

    w = create_main_window()
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    yield w
    for d in list(w.dialogs):
        d.close()
    wait_for_background(60_000)  # nothing of this test runs into the next
