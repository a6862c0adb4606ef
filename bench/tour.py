#!/usr/bin/env python3
"""Visit the window's pages and views one after another, as a user looking around an image
would, and print after each the window's memory and the longest it was unresponsive.

    python bench/tour.py ARCHIVE

The archive's index is written first (by another process, in a throwaway cache folder) and
the window reopens it offscreen. Then, each waited for until the window is idle: every
layer's changes view, the merged view again, the Insights, Inspect and Packages pages, back
to the files, ``*`` on /usr (its subtree opened), Collapse all, a search for "lib" and its
clearing, and each kind of change hidden in turn. Each line gives the process's resident
memory now (and how much of it is pages of mapped files) and at its peak so far, and the largest gap of a 5 ms timer on the GUI thread
during that step (``gui_stall.py`` measures the load and single actions the same way).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from gui_stall import WRITE_CACHE, Probe  # noqa: E402  (bench/gui_stall.py, next to this script)
from run import warm  # noqa: E402


def memory_mb() -> tuple[float, float, float]:
    """This process's resident memory now and at its peak, and how much of it now is pages
    of mapped files (Linux's VmRSS, VmHWM and RssFile: the index's pages are among those)."""
    found = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssFile"):
                found[name] = int(value.split()[0]) / 1024
    return found.get("VmRSS", 0.0), found.get("VmHWM", 0.0), found.get("RssFile", 0.0)


def idle(window, view, at_least: float) -> None:
    """Turn the event loop for ``at_least`` seconds and until no load or walk is pending."""
    end = time.perf_counter() + at_least
    give_up = end + 120
    while time.perf_counter() < give_up:
        QApplication.processEvents()
        busy = window.loader.busy or view.background.pending()
        if time.perf_counter() >= end and not busy:
            return
        time.sleep(0.002)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive")
    args = parser.parse_args()
    os.environ["LAYER_EXPLORER_CACHE"] = tempfile.mkdtemp()
    os.environ.pop("LAYER_EXPLORER_NO_INDEX_CACHE", None)
    subprocess.run([sys.executable, "-c", WRITE_CACHE, args.archive], check=True)
    warm(args.archive)
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    app = QApplication(sys.argv[:1])
    from explorer.app import create_main_window
    from explorer.tree.views import DIFF, MERGED

    window = create_main_window()
    window.resize(1400, 860)
    window.show()
    QTest.qWaitForWindowExposed(window)
    shown: list = []
    window.image_loaded.connect(shown.append)
    window.open_paths([args.archive])
    while not shown:
        QApplication.processEvents()
        time.sleep(0.002)
    view = shown[0]
    probe = Probe()

    def step(name: str, action, wait: float = 1.5) -> None:
        probe.reset()
        action()
        idle(window, view, wait)
        now, peak, mapped = memory_mb()
        print(f"{name:<34} {now:7.0f} MB now ({mapped:4.0f} of files) {peak:7.0f} MB peak "
              f"{probe.largest():6d} ms longest stall", flush=True)

    def star(folder: str) -> None:
        view.file_tree.setFocus()
        view.file_tree.setCurrentIndex(view.tree_model.index_for_path(folder))
        QTest.keyClick(view.file_tree, Qt.Key.Key_Asterisk)

    def search(text: str) -> None:
        view.search_box.setText(text)
        view.controls.search_timer.stop()
        view.files.filters_changed()

    def hide_only(change: str | None) -> None:
        for kind, box in view.hide_boxes.items():
            box.setChecked(kind == change)
        view.files.filters_changed()

    step("reopened", lambda: None)
    for k in range(len(view.image.layers)):
        step(f"changes of layer {k}", lambda k=k: (view.set_layer(k), view.set_mode(DIFF)))
    step("merged, all layers", lambda: (view.set_mode(MERGED), view.set_layer(None)))
    for page, name in ((1, "Insights page"), (2, "Inspect page"), (3, "Packages page"), (0, "Files page")):
        step(name, lambda page=page: view.center_tabs.setCurrentIndex(page), 3.0)
    if view.tree_model.index_for_path("/usr").isValid():
        step("* on /usr", lambda: star("/usr"))
    step("collapse all", view.files.collapse_all)
    step("search for 'lib'", lambda: search("lib"), 3.0)
    step("search cleared", lambda: search(""))
    for change in view.hide_boxes:
        step(f"hide {change}", lambda change=change: hide_only(change))
    step("nothing hidden", lambda: hide_only(None))
    app.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
