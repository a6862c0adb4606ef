#!/usr/bin/env python3
"""Render the README's screenshots of the real window (offscreen, no display needed).

    python docs/make_screenshots.py [ARCHIVE [OTHER]]

ARCHIVE is shown (default: the bundled sample image) and compared with OTHER (default:
tests/data/buildah-overlay.oci.tar). Each view is saved at 1366x768 and 1920x1080, light and
dark, as docs/screenshots/VIEW-WxH-THEME.png: the start page, the merged view, one layer's
changes, Insights, Inspect, a comparison of two images, and the Packages page (of
tests/data/packages/dpkg.docker.tar: the sample has no package database).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "screenshots"
SIZES = ((1366, 768), (1920, 1080))
PACKAGES = str(HERE.parent / "tests" / "data" / "packages" / "dpkg.docker.tar")
THEMES = ("light", "dark")


def wait(app: QApplication, done, timeout: float = 60.0) -> None:
    """Let the window work until ``done()`` holds."""
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise SystemExit("timed out waiting for the window")
        app.processEvents()
        time.sleep(0.01)
    for _ in range(20):  # let the last layout and paint settle
        app.processEvents()


def main() -> int:
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    app = QApplication(sys.argv[:1])
    from explorer.app import create_main_window
    from explorer.tree.views import DIFF, MERGED
    from explorer.ui import resources

    archive = sys.argv[1] if len(sys.argv) > 1 else str(resources.sample_image())
    other = sys.argv[2] if len(sys.argv) > 2 else str(HERE.parent / "tests" / "data" / "buildah-overlay.oci.tar")
    OUT.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        for look in THEMES:
            window = create_main_window()
            window.theme_actions[look].trigger()
            window.resize(width, height)
            window.show()

            def save(name: str) -> None:
                window.grab().save(str(OUT / f"{name}-{width}x{height}-{look}.png"))

            window.settings.setValue("recentFiles", [archive, other])
            window.refresh_recent()
            wait(app, lambda: True)
            save("start-page")
            shown: list = []
            window.image_loaded.connect(shown.append)
            window.open_paths([archive])
            wait(app, lambda: shown and shown[0].tree_model.totals is not None)
            view = shown[0]
            for path in ("/data", "/usr", "/usr/local", "/usr/local/bin"):
                view.file_tree.expand(view.tree_model.index_for_path(path))
            view.select_path("/data/modify-me.txt")
            wait(app, lambda: True)
            save("merged-view")
            view.set_layer(min(2, len(view.image.layers) - 1))
            view.set_mode(DIFF)
            wait(app, lambda: view.tree_model.totals is not None)
            view.expand_all()
            view.select_path("/srv/type-change")
            wait(app, lambda: True)
            save("layer-changes")
            view.set_mode(MERGED)
            view.show_insights()
            wait(app, lambda: view.insights is not None)
            save("insights")
            view.show_inspect()
            wait(app, lambda: view.inspect is not None)
            save("inspect")
            compared: list = []
            window.comparison_ready.connect(compared.append)
            window.compare_paths(archive, other)
            wait(app, lambda: bool(compared))
            cmp = compared[0]
            cmp.file_tree.setCurrentIndex(cmp.tree_model.index_for_path("/etc/hosts"))
            wait(app, lambda: bool(cmp.details.toPlainText().strip()))
            save("comparison")
            shown.clear()
            window.open_paths([PACKAGES])  # the sample has no package database: one that has
            wait(app, lambda: bool(shown))
            shown[0].show_packages()
            wait(app, lambda: True)
            save("packages")
            window.close()
            window.deleteLater()
            wait(app, lambda: True)
    print(f"screenshots in {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
