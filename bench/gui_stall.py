#!/usr/bin/env python3
"""Measure how responsive the window stays while it loads an archive (offscreen).

    python bench/gui_stall.py ARCHIVE

A QTimer probe fires every 5 ms on the GUI thread; the largest gap between two firings is
the longest the event loop was blocked. Prints: time until the layer list shows, time until
the file tree shows, the largest stall during the load, and the times to switch layers and
toggle the changes view (the tree first, then the folder sizes computed in the background),
search all paths, and expand the biggest directory. The load is a
first open from a warm page cache: the index cache is neither read nor written.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["LAYER_EXPLORER_NO_INDEX_CACHE"] = "1"

from PySide6.QtCore import QElapsedTimer, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from run import warm  # noqa: E402  (bench/run.py, next to this script)


class Probe:
    """Records the longest gap between timer ticks on the GUI thread."""

    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.clock.start()
        self.last = 0
        self.worst = 0
        self.timer = QTimer(interval=5)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def tick(self) -> None:
        now = self.clock.elapsed()
        self.worst = max(self.worst, now - self.last)
        self.last = now

    def reset(self) -> None:
        self.last = self.clock.elapsed()
        self.worst = 0


def timed(fn) -> float:
    """Milliseconds a GUI-thread action takes (including the events it posts)."""
    start = time.perf_counter()
    fn()
    QApplication.processEvents()
    return (time.perf_counter() - start) * 1000


def settle(view) -> float:
    """Milliseconds until the folder sizes of the shown tree arrive from the background.

    Waiting here also keeps one action's background work out of the next one's figure.
    """
    start = time.perf_counter()
    while view.tree_model.totals is None:
        QApplication.processEvents()
        time.sleep(0.001)  # hand the interpreter to the worker thread
    return (time.perf_counter() - start) * 1000


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    warm(sys.argv[1])  # like run.py: measure the program, not the disk
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    app = QApplication(sys.argv[:1])
    from explorer.app import create_main_window
    from explorer.tree.views import DIFF, MERGED

    window = create_main_window()
    window.resize(1400, 860)
    window.show()
    probe = Probe()
    results: dict[str, float] = {}
    start = time.perf_counter()

    def loaded(view) -> None:
        results["layers and tree shown (s)"] = time.perf_counter() - start
        results["largest stall during load (ms)"] = probe.worst
        results["folder sizes of the first view shown (ms)"] = settle(view)
        for name, action in (("switch to layer 0", lambda: view.set_layer(0)),
                             ("switch to last layer", lambda: view.set_layer(len(view.image.layers) - 1)),
                             ("toggle changes view", lambda: view.set_mode(DIFF))):
            results[f"{name}, tree shown (ms)"] = timed(action)
            results[f"{name}, folder sizes shown after (ms)"] = settle(view)
        view.set_mode(MERGED)
        view.set_layer(None)
        settle(view)
        kids = view.image.tree.kids
        biggest = max(kids, key=lambda p: len(kids[p]))
        index = view.tree_model.index_for_path(biggest)
        results[f"expand {biggest} ({len(kids[biggest]):,} children) (ms)"] = timed(lambda: view.file_tree.expand(index))
        probe.reset()
        search_start = time.perf_counter()
        view.search_finished.connect(lambda _n: finish(search_start))
        view.search_box.setText("file0001")
        view._search_timer.stop()
        view._filters_changed()

    def finish(search_start: float) -> None:
        results["search all paths, result shown (ms)"] = (time.perf_counter() - search_start) * 1000
        results["largest stall during search (ms)"] = probe.worst
        app.quit()

    window.image_loaded.connect(loaded)
    window.load_failed.connect(lambda msg: (print(msg, file=sys.stderr), app.exit(2)))
    probe.reset()
    window.open_paths([sys.argv[1]])
    code = app.exec()
    for key, value in results.items():
        print(f"{key:55} {value:10.2f}")
    return code


if __name__ == "__main__":
    sys.exit(main())
