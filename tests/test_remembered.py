"""What the window remembers between runs."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6.QtCore")

from PySide6.QtCore import QSettings  # noqa: E402

from explorer.ui import remembered  # noqa: E402


def test_the_window_remembers_recent_sources_newest_first_and_a_few(tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    for n in range(remembered.MAX_RECENT + 3):
        remembered.add_recent(settings, str(tmp_path / f"image-{n}.tar"))
    remembered.add_recent(settings, "docker://alpine:3")
    remembered.add_recent(settings, str(tmp_path / "image-5.tar"))  # again: moves to the top, once
    recent = remembered.recent_files(settings)
    assert recent[:2] == [str(tmp_path / "image-5.tar"), "docker://alpine:3"]
    assert len(recent) == remembered.MAX_RECENT and len(set(recent)) == len(recent)
    assert str(tmp_path / "image-0.tar") not in recent  # the oldest fell off
