#!/usr/bin/env python3
"""Measure how responsive the window stays while it loads an archive (offscreen).

    python bench/gui_stall.py ARCHIVE [--cached] [--expand FOLDER]

A QTimer probe fires every 5 ms on the GUI thread; the largest gap between two firings is
the longest the event loop was blocked. Prints: time until the layer list shows, time until
the file tree shows (on a big image, before the waste and the advice), then until they do,
the largest stall during the load, and for each action (switching
layers, the changes view, expanding a folder, a search of all paths) the time until its
tree shows, the time until its folder sizes (computed in the background) follow, and the
largest stall meanwhile. The load is a first open from a warm page cache: the index cache
is neither read nor written; with ``--cached`` it is written first (in a throwaway folder, by
another process) and the window reopens from it. ``--expand`` names the folder to expand
right after the load (default: the folder with the most rows in the index, expanded last);
``--search-first`` searches right after the load, before the other actions (which decode
the folders of a reopened index that they show).
``--compare OTHER`` compares the archive with OTHER right after the load instead (File >
Compare; with ``--cached``, OTHER's index is written first too), and prints the time until the
comparison shows, the largest stall meanwhile and the window's peak memory after it.
``--updates OTHER`` measures the update from the archive to OTHER (File > Open versions)
right after the load instead, and prints the same three figures for it.
``--extract PATH`` extracts that path of the final image (``/``: all of it) into a throwaway
folder right after the load instead, and prints the same three figures for it.
``STALL_TRACE=1`` prints every stall over 25 ms with when it ended; ``GC_TRACE=1`` prints
every pass of the cycle collector over 5 ms in the window's process (its generation, how
long it took and when it began).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QSettings, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from run import warm  # noqa: E402  (bench/run.py, next to this script)


def peak_rss_mb() -> float:
    """This process's own peak resident size: Linux's VmHWM (``ru_maxrss`` starts from the
    parent's peak when a big parent started this script), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024  # (bytes there, KiB here)


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
        if os.environ.get("STALL_TRACE") and now - self.last > 25:
            print(f"stall of {now - self.last} ms ending {now} ms after the start", file=sys.stderr)
        self.worst = max(self.worst, now - self.last)
        self.last = now

    def largest(self) -> int:
        """The largest stall so far, counting the one the caller may be in now."""
        return max(self.worst, self.clock.elapsed() - self.last)

    def reset(self) -> None:
        self.last = self.clock.elapsed()
        self.worst = 0


def biggest_folder(tree) -> str:
    """The folder with the most rows in the index's columns (a row a version of a child), found
    without decoding any folder; for a tree with no columns, the one with the most children
    (reading every folder, between events as the window would: not measured)."""
    columns = tree.columns()
    if columns is not None:
        import numpy as np

        return columns.names[int(np.diff(columns.starts).argmax())]
    for _ in tree.decode_steps():
        QApplication.processEvents()
    return max(tree.kids.keys(), key=lambda p: len(tree.kids[p]))


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
    shown = lambda: view.tree_model.view  # noqa: E731 (a big changes view is gathered first)
    while view.tree_model.totals is None or (shown().layer, shown().mode) != (view.layer, view.mode):
        QApplication.processEvents()
        time.sleep(0.001)  # hand the interpreter to the worker thread
    return (time.perf_counter() - start) * 1000


WRITE_CACHE = """
import sys
from explorer.image import index_cache
from explorer.image.loader import load_image
from explorer.formats.source import open_source
source = open_source(sys.argv[1])
index_cache.save(source, load_image(source, source.select(), cache=False))
"""


def trace_collections() -> None:
    """Print each pass of the cycle collector over 5 ms (``GC_TRACE=1``)."""
    origin = time.perf_counter()
    began = [0.0]

    def timed(phase: str, info: dict) -> None:
        now = time.perf_counter()
        if phase == "start":
            began[0] = now
        elif now - began[0] > 0.005:
            print(f"collection of generation {info['generation']}: {(now - began[0]) * 1000:.0f} ms, "
                  f"from {began[0] - origin:.2f} s", file=sys.stderr)

    gc.callbacks.append(timed)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("archive")
    p.add_argument("--cached", action="store_true", help="reopen from the index cache")
    p.add_argument("--expand", help="the folder to expand right after the load")
    p.add_argument("--search-first", action="store_true",
                   help="search right after the load, before any other action has decoded folders")
    p.add_argument("--compare", metavar="OTHER", help="compare with this archive after the load, and stop")
    p.add_argument("--updates", metavar="OTHER", help="measure the update to this archive after the load, and stop")
    p.add_argument("--extract", metavar="PATH", help="extract this path of the final image after the load, and stop")
    args = p.parse_args()
    if args.cached:
        os.environ.pop("LAYER_EXPLORER_NO_INDEX_CACHE", None)
        os.environ["LAYER_EXPLORER_CACHE"] = tempfile.mkdtemp()
        for archive in (args.archive, args.compare, args.updates):
            if archive:
                subprocess.run([sys.executable, "-c", WRITE_CACHE, archive], check=True)
    else:
        os.environ["LAYER_EXPLORER_NO_INDEX_CACHE"] = "1"
    for archive in (args.archive, args.compare, args.updates):
        if archive and "://" not in archive:  # (an engine or a registry reference is not a file)
            warm(archive)  # like run.py: measure the program, not the disk
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    if os.environ.get("GC_TRACE"):
        trace_collections()
    app = QApplication(sys.argv[:1])
    from explorer.app import create_main_window
    from explorer.tree.views import DIFF, MERGED

    window = create_main_window()
    window.resize(1400, 860)
    window.show()
    QTest.qWaitForWindowExposed(window)
    QTest.qWait(300)  # its first paint: a user drops onto a window already shown
    probe = Probe()
    results: dict[str, float] = {}
    start = time.perf_counter()

    def measure(name: str, action) -> None:
        probe.reset()
        results[f"{name}, tree shown (ms)"] = timed(action)
        results[f"{name}, folder sizes shown after (ms)"] = settle(view)
        results[f"{name}, largest stall (ms)"] = probe.largest()

    def expand(folder: str) -> None:
        kids = len(view.image.tree.kids.get(folder, ()))
        index = view.tree_model.index_for_path(folder)
        parent = index.parent()
        while parent.isValid():  # open the way to it, so the folder's rows are really laid out
            view.file_tree.expand(parent)
            parent = parent.parent()
        view.file_tree.scrollTo(index)
        QApplication.processEvents()
        probe.reset()
        # repaint: lay out and draw the opened folder now, not at the next paint event; a huge
        # folder is ordered between events, so wait (and repaint) until its rows are there
        start = time.perf_counter()
        view.file_tree.expand(index)
        while not view.tree_model.rowCount(index):
            QApplication.processEvents()
        view.file_tree.viewport().repaint()
        QApplication.processEvents()
        results[f"expand {folder} ({kids:,} children), rows shown (ms)"] = (time.perf_counter() - start) * 1000
        results[f"expand {folder}, largest stall (ms)"] = probe.largest()

    def layers(shown) -> None:
        results["layer list shown (s)"] = time.perf_counter() - start

    def files(_shown) -> None:
        results.setdefault("tree shown (s)", time.perf_counter() - start)

    def loaded(shown) -> None:
        nonlocal view
        view = shown
        results["waste and advice shown (s)"] = time.perf_counter() - start
        results["largest stall during load (ms)"] = probe.largest()
        results["folder sizes of the first view shown (ms)"] = settle(view)
        QTimer.singleShot(0, after_load)  # once the window has scheduled what follows a load

    def after_load() -> None:
        while window.loader.busy or view.access_points.busy:  # (a gzip layer's access points, made after the load)
            QApplication.processEvents()
            time.sleep(0.001)
        QApplication.processEvents()  # (what the last of them posted)
        results["all background work done (s)"] = time.perf_counter() - start
        results["largest stall from the drop until then (ms)"] = probe.largest()
        results["the window's process, peak RSS so far (MB)"] = peak_rss_mb()
        if args.compare:
            compare()
            return
        if args.extract:
            extract(args.extract)
            return
        if args.updates:
            measure_updates()
            return
        if args.expand:
            expand(args.expand)
        if not args.search_first:
            measure("switch to layer 0", lambda: view.set_layer(0))
            measure("switch to last layer", lambda: view.set_layer(len(view.image.layers) - 1))
            measure("toggle changes view", lambda: view.set_mode(DIFF))
            view.set_mode(MERGED)
            view.set_layer(None)
            settle(view)
        if not args.expand and not args.search_first:
            expand(biggest_folder(view.image.tree))
        probe.reset()
        search_start = time.perf_counter()
        view.search_finished.connect(lambda _n: finish(search_start))
        view.search_box.setText("file0001")
        view.controls.search_timer.stop()
        view.files.filters_changed()

    def compare() -> None:
        probe.reset()
        compare_start = time.perf_counter()

        def shown(cmp_view) -> None:
            results["compare, comparison shown (s)"] = time.perf_counter() - compare_start
            QTimer.singleShot(100, lambda: compared(cmp_view))  # (its stall may end after the signal)

        def compared(cmp_view) -> None:
            results["compare, largest stall (ms)"] = probe.largest()
            results["the window's process, peak RSS after the comparison (MB)"] = peak_rss_mb()
            probe.reset()
            search_start = time.perf_counter()
            cmp_view.filtered.connect(lambda _n: searched_there(search_start))
            cmp_view.search_box.setText("file0001")
            cmp_view._timer.stop()
            cmp_view._filter()

        def searched_there(search_start: float) -> None:
            results["compare, a search shown (ms)"] = (time.perf_counter() - search_start) * 1000
            QTimer.singleShot(100, lambda: (results.__setitem__("compare, largest stall of the search (ms)",
                                                                probe.largest()), app.quit()))

        window.comparison_ready.connect(shown)
        window.compare_paths(args.archive, args.compare)

    def measure_updates() -> None:
        probe.reset()
        updates_start = time.perf_counter()

        def shown(_view) -> None:
            results["updates, shown (s)"] = time.perf_counter() - updates_start
            QTimer.singleShot(100, measured)

        def measured() -> None:
            results["updates, largest stall (ms)"] = probe.largest()
            results["the window's process, peak RSS after the updates (MB)"] = peak_rss_mb()
            app.quit()

        window.many_ready.connect(shown)
        window.open_many("updates", [args.archive, args.updates])

    def extract(path: str) -> None:
        target = tempfile.mkdtemp(prefix="gui-stall-extract-")
        view.select_path(path) if path != "/" else None
        probe.reset()
        extract_start = time.perf_counter()
        view.extract_all(target) if path == "/" else view.extract_selected(target)

        def done(result) -> None:
            results["extract, finished (s)"] = time.perf_counter() - extract_start
            results["extract, entries written"] = getattr(result, "written", -1)
            QTimer.singleShot(100, extracted)

        def extracted() -> None:
            results["extract, largest stall (ms)"] = probe.largest()
            results["the window's process, peak RSS after the extraction (MB)"] = peak_rss_mb()
            subprocess.run(["rm", "-rf", target], check=False)
            app.quit()

        view.extraction.finished.connect(done)

    def finish(search_start: float) -> None:
        results["search all paths, result shown (ms)"] = (time.perf_counter() - search_start) * 1000
        QTimer.singleShot(100, searched)  # said from inside the step that shows the result: its stall ends later

    def searched() -> None:
        results["largest stall during search (ms)"] = probe.largest()
        results["the window's process, peak RSS after the search (MB)"] = peak_rss_mb()
        app.quit()

    view = None
    window.layers_shown.connect(layers)
    window.files_shown.connect(files)
    window.image_loaded.connect(loaded)
    window.load_failed.connect(lambda msg: (print(msg, file=sys.stderr), app.exit(2)))
    probe.reset()
    window.open_paths([args.archive])
    code = app.exec()
    for key, value in results.items():
        print(f"{key:58} {value:10.2f}")
    return code


if __name__ == "__main__":
    sys.exit(main())
