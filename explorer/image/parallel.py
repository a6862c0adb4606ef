"""dive's numbers computed on the second core while the first one builds the tree.

dive's accounting needs every layer's raw entries a second time, in a different model; on
a 2-core machine that costs as much as half the load. A child process re-reads the layer
headers (cheap: the pages are cached) and sends back only the small result, over a
``multiprocessing`` pipe. The command line forks (the child has the opened source already);
a process with threads must not fork, so the window's loading process starts a fresh
interpreter that reopens the source by its path (worth its start-up time on big images only).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from typing import Any

from explorer.formats.container import Container
from explorer.model.errors import Cancelled
from explorer.model.progress import Monitor
from explorer.formats.source import open_source
from explorer.tree.efficiency import DiveEfficiency, Efficiency

WAIT = 0.2  # seconds between looks at the cancel flag while waiting for the child


def _compute(container: Container, blobs: list[str]) -> Efficiency:
    dive = DiveEfficiency()
    uses = Counter(blobs)  # a blob listed again is scanned once (a hostile manifest lists one a thousand times)
    kept: dict[str, list] = {}
    for blob in blobs:
        members = kept.pop(blob, None)
        if members is None:
            members = container.scan_layer(blob, Monitor()).members
        uses[blob] -= 1
        if uses[blob]:
            kept[blob] = members  # only until its last listing: one layer's entries at a time otherwise
        dive.add_layer(members)
    return dive.result()


def _forked(container: Container, blobs: list[str], out: Any) -> None:
    """In a forked child: the numbers from the source it inherited."""
    try:
        out.send(_compute(container, blobs))
    except BaseException:  # noqa: BLE001 (the loader meets the same error and says it: no traceback here)
        pass


def _fresh(path: str, image: int, out: Any) -> None:
    """In a fresh interpreter: the numbers from the source opened again by its path."""
    try:
        # Below the window and its loader: with both cores busy, a window thread that waits
        # for a core also keeps the loader waiting for the interpreter lock, and both stall.
        os.nice(10)
    except (AttributeError, OSError):
        pass
    try:
        with open_source(path) as source:
            out.send(_compute(source.container, [l.blob for l in source.images[image].locator.layers]))
    except BaseException:  # noqa: BLE001 (as in ``_forked``)
        pass


class DiveElsewhere:
    """Starts the computation in another process; ``result()`` waits for it.

    ``path`` and ``image`` given: a fresh interpreter reopens the source; else the process is
    forked. Whatever goes wrong with the child, ``result`` computes the numbers here instead.
    """

    def __init__(self, container: Container, blobs: list[str], path: str | None = None, image: int = 0) -> None:
        self.container, self.blobs = container, blobs
        self.proc: Any = None
        fresh = path is not None
        try:
            context = multiprocessing.get_context("spawn" if fresh else "fork")
            self._results, out = context.Pipe(duplex=False)
        except OSError:  # no descriptors to be had: ``result`` computes the numbers here
            return
        target, args = (_fresh, (path, image, out)) if fresh else (_forked, (container, blobs, out))
        try:
            self.proc = context.Process(target=target, args=args, name="layer-explorer dive numbers", daemon=True)
            self.proc.start()
        except (OSError, ValueError, RuntimeError):  # no process to be had here
            self.proc = None
            self._results.close()
        finally:
            out.close()  # the child holds its end: when it ends, reading ends

    @staticmethod
    def worth_it(container: Container, blobs: list[str], path: str) -> bool:
        """Whether a local source's layers are big enough to pay for a new interpreter."""
        if "://" in path or not os.path.exists(path):
            return False
        try:
            return sum(container.size(b) for b in blobs) >= SPAWN_MIN_BYTES
        except Exception:  # noqa: BLE001 (a size the container cannot tell: do it here)
            return False

    def result(self, monitor: Monitor | None = None) -> Efficiency:
        """The child's numbers (computed here if the child could not give them); waiting for
        them ends with ``Cancelled`` as soon as ``monitor`` is cancelled."""
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                while not self._results.poll(WAIT):
                    if monitor is not None and monitor.cancelled:
                        self.proc = proc  # the loader then stops this child
                        raise Cancelled("cancelled")
                found = self._results.recv()
                if isinstance(found, Efficiency):
                    return found
            except (EOFError, OSError):
                pass  # the child ended without a result
            finally:
                if self.proc is None:
                    proc.join()
                    self._results.close()
        return _compute(self.container, self.blobs)

    def cancel(self) -> None:
        """Stop the child (the load was cancelled or failed)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            proc.join()
            self._results.close()


def cores() -> int:
    """How many cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def spare_core() -> bool:
    """Whether this process may run on more than one core (else a child only takes turns)."""
    return cores() > 1


# Below this many bytes of layers, starting an interpreter costs more than it saves.
SPAWN_MIN_BYTES = 64 << 20
