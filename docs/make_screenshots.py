#!/usr/bin/env python3
"""Render the README's screenshots of the real window (offscreen, no display needed).

    python docs/make_screenshots.py [ARCHIVE]     # default: the bundled sample image
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

OUT = Path(__file__).resolve().parent / "screenshots"


def main() -> int:
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    app = QApplication(sys.argv[:1])
    from explorer.app import create_main_window
    from explorer.tree.views import DIFF
    from explorer.ui import resources

    archive = sys.argv[1] if len(sys.argv) > 1 else str(resources.sample_image())
    window = create_main_window()
    window.resize(1400, 860)
    window.show()
    OUT.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(OUT / "start-page.png"))

    def shoot(view) -> None:
        if view.tree_model.totals is None:  # folder sizes are computed in the background
            QTimer.singleShot(100, lambda: shoot(view))
            return
        view.set_layer(None)
        for path in ("/data", "/usr", "/usr/local", "/usr/local/bin"):
            view.file_tree.expand(view.tree_model.index_for_path(path))
        view.select_path("/data/modify-me.txt")
        window.grab().save(str(OUT / "merged-view.png"))
        view.set_layer(2)
        view.set_mode(DIFF)
        QTimer.singleShot(300, lambda: changes(view))

    def changes(view) -> None:
        view.expand_all()
        view.select_path("/srv/type-change")
        window.grab().save(str(OUT / "layer-changes.png"))
        view.set_mode("merged")
        view.side_tabs.setCurrentWidget(view.compare)
        view.select_path("/data/modify-me.txt")
        QTimer.singleShot(500, lambda: compare(view))

    def compare(view) -> None:
        window.grab().save(str(OUT / "compare.png"))
        view.show_insights()
        QTimer.singleShot(500, lambda: insights(view))

    def insights(view) -> None:
        window.grab().save(str(OUT / "insights.png"))
        view.show_inspect()
        QTimer.singleShot(300, lambda: inspect(view))

    def inspect(view) -> None:
        window.grab().save(str(OUT / "inspect.png"))
        view.center_tabs.setCurrentIndex(0)
        view.set_layer(None)
        view.side_tabs.setCurrentWidget(view.details)
        view.search_finished.connect(lambda _n: (window.grab().save(str(OUT / "search.png")), app.quit()))
        view.search_box.setText("hard")

    window.image_loaded.connect(lambda view: QTimer.singleShot(300, lambda: shoot(view)))
    window.load_failed.connect(lambda msg: (print(msg, file=sys.stderr), app.exit(2)))
    window.open_paths([archive])
    QTimer.singleShot(60_000, lambda: app.exit(3))
    code = app.exec()
    print(f"screenshots in {OUT}" if code == 0 else "failed", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
