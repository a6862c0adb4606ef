"""Long work off the GUI thread, and walks over the whole tree between its events.

Loads and small reads run as a QRunnable per task, results back by queued signals. Every
task carries a token; the controller ignores results whose token is not the current one, so
a newer load silently drops an older one. Cancellation is cooperative: the core checks
``Monitor.cancelled`` between chunks of work. Walks over every path (sizes, searches,
a changes view) run on the GUI thread in short slices instead (``Slices``).
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
import time
from typing import Any, Callable, Iterator

from PySide6.QtCore import QAbstractItemModel, QObject, QRunnable, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import QWidget

from explorer.image import index_cache, load_worker, scan_pool
from explorer.model.errors import Cancelled, ExplorerError
from explorer.image.loader import Image
from explorer.model.values import ImageRef
from explorer.model.progress import Monitor, Progress, ProgressFn, throttled
from explorer.formats.source import Source, open_source
from explorer.tree.steps import drain
from explorer.ui import memory


class TaskSignals(QObject):
    """Signals of one background task (lives on the GUI thread)."""

    progress = Signal(int, object)  # token, Progress
    part = Signal(int, object)  # token, what can be shown before the result (a loaded image's files)
    done = Signal(int, object)
    failed = Signal(int, str, bool)  # token, message, cancelled


class Task(QRunnable):
    """Runs ``fn(monitor)`` on the thread pool and reports through ``signals``."""

    def __init__(self, token: int, fn: Callable[[Monitor], Any], monitor: Monitor, signals: TaskSignals) -> None:
        super().__init__()
        self.token = token
        self.fn = fn
        self.monitor = monitor
        self.signals = signals

    def run(self) -> None:  # noqa: D401 (Qt override)
        try:
            try:
                result = self.fn(self.monitor)
            except Cancelled:
                self.signals.failed.emit(self.token, "cancelled", True)
            except ExplorerError as exc:
                self.signals.failed.emit(self.token, str(exc), False)
            except MemoryError:
                self.signals.failed.emit(self.token, f"{self.monitor.source}: not enough memory to read this image", False)
            except Exception as exc:  # a bug must not take the window down
                self.signals.failed.emit(self.token, f"{self.monitor.source}: unexpected error: {type(exc).__name__}: {exc}", False)
            else:
                self.signals.done.emit(self.token, result)
        except RuntimeError:
            pass  # whoever asked is gone (a closed tab, the window closing): nobody to tell


PAUSE = object()  # what a walk yields when it waits for another: its turn ends there


class Slices(QObject):
    """Walks over the whole tree, run on the GUI thread a few milliseconds at a time.

    Not in a thread, on purpose: Python threads share one interpreter lock, and while a
    thread walks a million entries every call Qt makes into Python (a row's index, its data)
    waits for the lock. Opening a folder of 100,000 files took 1.8 s that way, 0.3 s without.
    A walk here is a generator (``explorer.tree.steps``) that a zero-timer advances between
    events, so the window never waits longer than one slice. Walks take turns, work ahead
    of need (``idle``) only when nothing else waits.
    """

    SLICE = 0.005  # seconds of work per turn of the event loop (two walks and a paint can share a turn)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: dict[str, tuple[Iterator[Any], bool, Callable[[Any], None] | None]] = {}
        self._timer = QTimer(self, interval=0)
        self._timer.timeout.connect(self._tick)

    def run(self, kind: str, steps: Iterator[Any], idle: bool = False, then: Callable[[Any], None] | None = None) -> None:
        """Run a walk for ``kind`` (a newer one of the same kind replaces it). ``idle``: only
        when no other walk is waiting (work ahead of need). ``then`` gets what the walk
        returned, unless a newer walk of its kind replaced it."""
        old = self._jobs.pop(kind, None)
        if old is not None:
            old[0].close()
        self._jobs[kind] = (steps, idle, then)
        self._timer.start()
        memory.at_work(self)

    def pending(self, prefix: str = "") -> list[str]:
        """Kinds of the walks not finished yet."""
        return [k for k in self._jobs if k.startswith(prefix)]

    def finish(self, kind: str) -> None:
        """Run one walk to its end now (a save, when the window closes)."""
        job = self._jobs.pop(kind, None)
        if job is not None:
            value = drain(job[0])
            self._settle()
            if job[2] is not None:
                job[2](value)

    def cancel(self, kind: str) -> None:
        """Stop one walk, if it is still going."""
        job = self._jobs.pop(kind, None)
        if job is not None:
            job[0].close()
            self._settle()

    def cancel_all(self) -> None:
        """Stop every walk (their tab is closing)."""
        for steps, _idle, _then in self._jobs.values():
            steps.close()
        self._jobs.clear()
        self._settle()

    def _turn(self) -> None:
        if not self._jobs:
            self._timer.stop()
            return
        kind = next((k for k, (_, idle, _then) in self._jobs.items() if not idle), next(iter(self._jobs)))
        steps, _idle, then = self._jobs[kind]
        deadline = time.perf_counter() + self.SLICE
        value: Any = None
        failed = False
        try:
            while time.perf_counter() < deadline:
                if next(steps) is PAUSE:
                    break
            if self._jobs.get(kind, (None,))[0] is steps:  # more next turn, after the others'
                self._jobs[kind] = self._jobs.pop(kind)  # (a walk may wait for another: opening a folder's subtree for its rows)
            return
        except StopIteration as stop:
            value = stop.value
        except Exception as exc:  # noqa: BLE001 (a bug in one walk must not take the window down)
            print(f"layer-explorer: background work {kind!r} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed = True
        if self._jobs.get(kind, (None,))[0] is steps:
            del self._jobs[kind]
        self._settle()
        if not failed and then is not None:
            then(value)

    def _settle(self) -> None:
        """Once no walk is left: the timer stops, and what the walks held can go back to the
        system (``memory``)."""
        if not self._jobs:
            self._timer.stop()
            memory.done(self)

    def _tick(self) -> None:
        self._turn()  # looked up each time: tests hold the walks by replacing it


def discard(widget: QWidget) -> None:
    """Delete a widget that was closed or replaced, and free what its Python objects hold.

    Unparented at once, so no lookup finds it meanwhile. Its Python objects may form
    reference cycles, which only a full pass of the cycle collector frees, and those come
    seldom; they are emptied once Qt has destroyed the widget, so the image they held (its
    mapped index, its open archive) is freed then rather than some time later.
    """
    held = [widget, *widget.findChildren(QObject)]
    widget.destroyed.connect(lambda: empty_python_state(held))
    widget.hide()
    widget.setParent(None)
    widget.deleteLater()


def empty_python_state(objects: list[Any]) -> None:
    """Clear the attributes of Qt objects whose C++ side is gone, and of the item models they
    held (views do not own their models), breaking the reference cycles among them: the
    image they reach is freed at once, not at the cycle collector's next full pass."""
    seen: set[int] = set()
    stack = list(objects)
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        state = getattr(obj, "__dict__", None)
        if not state:
            continue
        stack.extend(v for v in state.values() if isinstance(v, QAbstractItemModel))
        state.clear()
    objects.clear()
    memory.done()


_SIDE: list[QThreadPool] = []


def side_pool() -> QThreadPool:
    """A pool of one thread for long work ahead of need (access points), apart from the
    shared pool that loads and previews use."""
    if not _SIDE:
        pool = QThreadPool()
        pool.setMaxThreadCount(1)
        _SIDE.append(pool)
    return _SIDE[0]


def wait_for_background(timeout_ms: int) -> None:
    """Drop queued work and wait for what runs (before the interpreter ends)."""
    for pool in (QThreadPool.globalInstance(), *_SIDE):
        pool.clear()
        pool.waitForDone(timeout_ms)


def throttled_progress(signals: TaskSignals, token: int, every: float = 0.05) -> ProgressFn:
    """A progress callback that emits at most every ``every`` seconds (and on a new stage)."""
    return throttled(lambda progress: signals.progress.emit(token, progress), every)


def load_elsewhere(source: Source, ref: ImageRef, monitor: Monitor,
                   on_files: Callable[[Image], None] | None = None) -> Image:
    """An image for the window, mapped from its index: from the index cache, else written
    by a loading process; written here (then let go of) when no such process can run. Only
    when no folder would hold the index is the image kept in memory as built, and says so.
    ``on_files``: given the image as soon as its files can be shown, before their accounting
    (by a loading process, on a big image)."""
    cached = index_cache.load(source, ref)
    if cached is not None:
        return _columns_read(cached)
    if load_worker.suitable(source, ref):
        try:
            files = (lambda image: on_files(_columns_read(image))) if on_files is not None else None
            return _columns_read(load_worker.load(source, ref, monitor, files))
        except load_worker.Unavailable:
            pass  # no process to be had: built here instead
        except load_worker.NoRoom:  # (the worker's image is gone with it: built again here)
            return load_worker.in_memory(source, ref, monitor)
    return _columns_read(load_worker.load_here(source, ref, monitor))


def _columns_read(image: Image) -> Image:
    """The image, its index's columns read and checked here, off the window's thread (a few
    milliseconds at a million entries; more with many names of linked files)."""
    image.tree.columns()
    return image


class Handover:
    """Who closes a source being loaded: the loading thread, until a view takes it with the
    files it shows before their accounting; then that view, which keeps them if the load
    stops, or gives the source back when it goes first. A lock keeps the two from both
    closing it, or neither."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._lock = threading.Lock()
        self.taken = self.closed = False
        self.running = True  # the loading thread has not ended

    def take(self) -> bool:
        """Make the source the view's; False when the load has closed it already."""
        with self._lock:
            self.taken = not self.closed
            return self.taken

    def give_back(self) -> None:
        """The view goes without the source: closed now, or as the load ends if it has not."""
        with self._lock:
            self.taken = False
            if self.running:
                return  # (its thread, or its result dropped as stale, closes it)
        self.close_unless_taken()

    def ended(self, failed: bool) -> None:
        """The loading thread has ended (``failed``: with no image, which closes the source
        unless a view has it)."""
        with self._lock:
            self.running = False
        if failed:
            self.close_unless_taken()

    def close_unless_taken(self) -> None:
        """Close the source, unless a view has it (or it is closed)."""
        with self._lock:
            if self.taken or self.closed:
                return
            self.closed = True
        self.source.close()


class LoadController(QObject):
    """Opens sources and loads images one at a time; a newer request replaces an older one."""

    opened = Signal(object)  # Source: its image is picked (asked, when there are several), then loaded
    compared = Signal(object, object, object)  # Source A, Source B, Comparison
    files_loaded = Signal(object, object, object)  # Source, Image (its files, their accounting still being worked out), Handover
    loaded = Signal(object, object)  # Source, Image
    failed = Signal(str, str)  # path, message
    cancelled = Signal(str)  # path
    progress = Signal(object)  # Progress
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool.globalInstance()
        self._token = 0
        self._monitor: Monitor | None = None
        self._signals: dict[int, TaskSignals] = {}
        self._path = ""
        scan_pool.import_ahead()
        # numpy, for an index's columns, read in the loading thread: imported there, under Qt
        # for Python's import hook, it held the window 38 ms
        importlib.import_module("numpy")
        load_worker.warm_up()  # the process loading workers are forked from, ready by the first open

    @property
    def busy(self) -> bool:
        """Whether a load is running."""
        return self._monitor is not None

    def _start(self, path: str, fn: Callable[..., Any], on_done: Callable[[Any], None],
               discard: Callable[[Any], None] = lambda _result: None,
               on_part: Callable[[Any], None] | None = None) -> None:
        """Run ``fn`` as the current task; ``on_done`` gets its result, or ``discard`` when a
        newer task or a cancel made it stale (it closes what the result holds open: a kept
        copy of an engine's stream is the size of the image). With ``on_part``, ``fn`` is
        also given ``part``, a callable that hands ``on_part`` what can be shown before the
        result (dropped once stale)."""
        self.cancel(quiet=True)
        self._token += 1
        token = self._token
        self._path = path
        signals = TaskSignals()
        self._signals[token] = signals
        monitor = Monitor(path, throttled_progress(signals, token))
        self._monitor = monitor
        signals.progress.connect(self._on_progress)
        signals.done.connect(lambda t, result: on_done(result) if self._finish(t) else discard(result))
        signals.failed.connect(self._on_failed)
        if on_part is not None:
            signals.part.connect(lambda t, value: on_part(value) if t == self._token else None)
            fn = functools.partial(fn, part=lambda value: signals.part.emit(token, value))
        self.busy_changed.emit(True)
        self.pool.start(Task(token, fn, monitor, signals))

    def open(self, path: str) -> None:
        """List the images of ``path`` (then ``opened`` fires)."""
        self._start(path, lambda m: open_source(path, m, keep=True), self.opened.emit, lambda source: source.close())

    def load(self, source: Source, ref: ImageRef) -> None:
        """Load one image of an opened source (then ``loaded`` fires; on a big image,
        ``files_loaded`` first, once its files can be shown)."""
        path = source.info.path
        handover = Handover(source)

        def work(monitor: Monitor, part: Callable[[Image], None]) -> Image:
            try:
                image = load_elsewhere(source, ref, monitor, part)
            except BaseException:
                handover.ended(failed=True)  # cancelled or failed: closed, unless a view shows its files
                raise
            handover.ended(failed=False)
            return image

        self._start(path, work, lambda image: self.loaded.emit(source, image),
                    lambda _image: handover.close_unless_taken(),
                    lambda image: self.files_loaded.emit(source, image, handover))

    def compare(self, a_path: str, b_path: str, a_index: int | None = None, b_index: int | None = None,
                a_platform: str | None = None, b_platform: str | None = None) -> None:
        """Open and load two images and compare them (then ``compared`` fires)."""
        from explorer.image.compare import compare
        from explorer.image.elsewhere import compare_files

        def work(monitor: Monitor):
            a = open_source(a_path, monitor, keep=True)
            try:
                b = open_source(b_path, monitor, keep=True) if b_path != a_path else a
                try:
                    ref_a = a.images[a_index] if a_index is not None else a.select(platform=a_platform)
                    ref_b = b.images[b_index] if b_index is not None else b.select(platform=b_platform)
                    image_a = load_elsewhere(a, ref_a, monitor)
                    image_b = load_elsewhere(b, ref_b, monitor) if ref_b is not ref_a or b is not a else image_a
                    files = compare_files(a, image_a, b, image_b, monitor).prepare()  # (here, not on the GUI thread)
                    return a, b, compare(a, image_a, b, image_b, files)
                except BaseException:
                    if b is not a:
                        b.close()
                    raise
            except BaseException:
                a.close()
                raise

        def discard(result) -> None:
            a, b, _comparison = result
            a.close()
            if b is not a:
                b.close()

        self._start(f"{a_path} and {b_path}", work, lambda r: self.compared.emit(*r), discard)

    def cancel(self, quiet: bool = False) -> None:
        """Stop the running load; its results, if any arrive, are dropped."""
        if self._monitor is not None:
            self._monitor.cancelled = True
            self._monitor = None
            self._token += 1  # anything still in flight is now stale
            self.busy_changed.emit(False)
            if not quiet:
                self.cancelled.emit(self._path)

    def _finish(self, token: int) -> bool:
        """True when ``token`` is the current load (which is then over)."""
        self._signals.pop(token, None)
        if token != self._token:
            return False
        self._monitor = None
        self.busy_changed.emit(False)
        return True

    def _on_progress(self, token: int, progress: Progress) -> None:
        if token == self._token:
            self.progress.emit(progress)

    def _on_failed(self, token: int, message: str, was_cancelled: bool) -> None:
        if self._finish(token) and not was_cancelled:
            self.failed.emit(self._path, message)


class BackgroundCall(QObject):
    """Runs small pieces of work (a file's preview, a comparison) off the GUI thread; only the
    newest of each kind counts."""

    result = Signal(object)  # what the newest call of its kind returned
    failed = Signal(str)  # why the newest call of its kind failed (not when it was cancelled)

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self._pool = pool or QThreadPool.globalInstance()
        self._tokens: dict[str, int] = {}
        self._kinds: dict[int, str] = {}
        self._monitors: dict[str, Monitor] = {}
        self._signals: dict[int, TaskSignals] = {}
        self._next = 0

    @property
    def busy(self) -> bool:
        """Whether a call runs whose result is still wanted."""
        return bool(self._monitors)

    def run(self, kind: str, fn: Callable[[Monitor], Any]) -> None:
        """Run ``fn`` for ``kind``; a newer call of the same kind cancels and replaces it."""
        if kind in self._monitors:
            self._monitors[kind].cancelled = True
        self._next += 1
        token = self._next
        self._tokens[kind] = token
        self._kinds[token] = kind
        monitor = Monitor(kind)
        self._monitors[kind] = monitor
        signals = TaskSignals()
        self._signals[token] = signals
        # bound methods, not lambdas: Qt drops the connection when this object is deleted
        signals.done.connect(self._deliver)
        signals.failed.connect(self._dropped)
        self._pool.start(Task(token, fn, monitor, signals))

    def cancel_all(self) -> None:
        """Stop whatever runs for this owner (its tab is closing)."""
        for monitor in self._monitors.values():
            monitor.cancelled = True
        self._monitors.clear()
        self._tokens.clear()

    def _dropped(self, token: int, message: str, cancelled: bool) -> None:
        self._signals.pop(token, None)
        kind = self._kinds.pop(token, None)
        if kind is not None and self._tokens.get(kind) == token:
            self._monitors.pop(kind, None)  # (cancelled or not: it is no longer busy)
            if not cancelled:
                self.failed.emit(message)

    def _deliver(self, token: int, value: Any) -> None:
        self._signals.pop(token, None)
        kind = self._kinds.pop(token, "")
        if self._tokens.get(kind) == token:
            self._monitors.pop(kind, None)
            self.result.emit(value)
