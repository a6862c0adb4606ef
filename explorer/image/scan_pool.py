"""Compressed layers inflated on every core at once, each exactly once.

Inflating is most of the time a gzip or zstd image takes to load, and one layer's stream can
only be read in order; but layers are independent. A small pool of worker processes (fresh
interpreters, so it is safe beside the window's threads) each opens the source by its path and
scans whole layers, sending back what the scan found. The loader applies them in layer order as
they arrive; dive's numbers are then computed from the same scans instead of a second pass.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator

from explorer.formats import compression, container
from explorer.formats.container import Container, LayerScan
from explorer.model.errors import Cancelled
from explorer.model.progress import Monitor
from explorer.formats.source import Source, open_source
from explorer.formats.spool import kept_file
from explorer.image.parallel import cores, lower_priority

# Below this many stored bytes of compressed layers, starting interpreters costs more than the
# second core saves (about 0.3 s for two, measured here).
POOL_MIN_BYTES = 48 << 20
WAIT = 0.1  # seconds between looks at the cancel flag while a layer is being scanned

_opened: dict[str, Source] = {}  # in a worker: the source, opened once for all its layers


def _scan(path: str, blob: str) -> LayerScan | None:
    """In a worker: scan one layer blob; None when anything goes wrong (the loader then scans
    it itself, so the error it meets is reported exactly as without the pool)."""
    try:
        source = _opened.get(path)
        if source is None:
            source = _opened[path] = open_source(path)
        return source.container.scan_layer(blob, Monitor(path))
    except Exception:  # noqa: BLE001 (any failure: the loader's own scan says what it is)
        return None


def _worker_start() -> None:
    container.CHECKPOINTS = False
    lower_priority(5)  # below the window: its thread must never wait for a core behind a layer scan


def import_ahead() -> None:
    """Import what starting the pool needs, now: the window calls this at start, because an
    import in the loading thread under Qt for Python (whose import hook reads each new
    module's source) held the interpreter, and so the window, for 65 ms; the same for the
    helper process multiprocessing starts on first use."""
    import multiprocessing.connection  # noqa: F401
    import multiprocessing.queues  # noqa: F401
    import multiprocessing.synchronize  # noqa: F401

    try:
        import multiprocessing.popen_spawn_posix  # noqa: F401
        from multiprocessing import resource_tracker
    except ImportError:  # not POSIX
        return
    resource_tracker.ensure_running()  # its process too: starting it took the loading thread 20 ms


def worth_it(source: Source, blobs: list[str]) -> bool:
    """Whether a pool pays: a local source whose layers are compressed and big enough, and a
    second core to run on."""
    path = local_path(source)
    if "://" in path or not os.path.exists(path) or cores() < 2:
        return False
    if source.info.compression != compression.NONE:
        return False  # each worker would decompress the whole outer archive again
    store = source.container
    try:
        sizes = [store.size(b) for b in blobs]
    except Exception:  # noqa: BLE001 (a size the container cannot tell: scan here)
        return False
    compressed = sum(s for b, s in zip(blobs, sizes) if _compressed(store, b))
    return compressed >= POOL_MIN_BYTES


def local_path(source: Source) -> str:
    """The file the workers open: the source's own, or the local copy an engine's image is read from."""
    return kept_file(source.container) or source.info.path


def _compressed(container: Container, blob: str) -> bool:
    try:
        return compression.sniff(container.raw_reader(blob, 0)(8)) != compression.NONE
    except Exception:  # noqa: BLE001
        return False


def scans(source: Source, blobs: list[str], monitor: Monitor) -> Iterator[LayerScan]:
    """Each layer's scan, in layer order, scanned ahead in worker processes.

    At most a few layers are scanned ahead of the one being applied, so memory holds only
    those; a cancel stops the workers at once. Whatever goes wrong with the workers (one is
    killed, none can start), the layers not yet scanned are scanned here instead.
    """
    path = local_path(source)
    workers = min(cores(), len(blobs), 4)
    try:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_start)
    except (OSError, ImportError, RuntimeError):  # no processes or semaphores to be had here
        pool = None
    pending: list[Future[LayerScan | None]] = []
    try:
        for i, blob in enumerate(blobs):
            scan = None
            if pool is not None:
                try:
                    while len(pending) < workers + 1 and i + len(pending) < len(blobs):
                        pending.append(pool.submit(_scan, path, blobs[i + len(pending)]))
                    scan = _wait(pending.pop(0), monitor)
                except (BrokenProcessPool, OSError, RuntimeError):  # a worker died or never started
                    _stop(pool)
                    pool, pending = None, []
            yield scan if scan is not None else source.container.scan_layer(blob, monitor)
    finally:
        if pool is not None:
            _stop(pool)


def _wait(job: "Future[LayerScan | None]", monitor: Monitor) -> LayerScan | None:
    """A worker's scan, looking at the cancel flag every ``WAIT`` seconds meanwhile."""
    while True:
        if monitor.cancelled:
            raise Cancelled("cancelled")
        try:
            return job.result(timeout=WAIT)
        except FuturesTimeout:
            continue


def _stop(pool: ProcessPoolExecutor) -> None:
    """End the workers now, scans still running included (a cancel, an error)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14 says it in public
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()  # a scan under way stops now; the pool then notices and winds down
    pool.shutdown(wait=True, cancel_futures=True)
