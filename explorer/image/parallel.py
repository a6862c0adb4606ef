"""dive's numbers computed on the second core while the first one builds the tree.

dive's accounting needs every layer's raw entries a second time, in a different model; on
a 2-core machine that costs as much as half the load. A child process re-reads the layer
headers (cheap: the pages are cached) and sends back only the small result. The command
line forks; the window has threads, which a fork must not copy, so it starts a fresh
interpreter that reopens the source (worth its start-up time on big images only).
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys

from explorer.formats.container import Container
from explorer.model.errors import Cancelled
from explorer.model.progress import Monitor
from explorer.formats.source import open_source
from explorer.tree.efficiency import DiveEfficiency, Efficiency


def _compute(container: Container, blobs: list[str]) -> Efficiency:
    dive = DiveEfficiency()
    for blob in blobs:
        dive.add_layer(container.scan_layer(blob, Monitor()).members)
    return dive.result()


class DiveInChild:
    """Starts the computation in a forked process; ``result()`` waits for it."""

    def __init__(self, container: Container, blobs: list[str]) -> None:
        self.container, self.blobs = container, blobs
        self.pid = 0
        self.read_fd = -1
        if not hasattr(os, "fork"):
            return
        read_fd, write_fd = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no process to be had: ``result`` computes the numbers here
            os.close(read_fd)
            os.close(write_fd)
            return
        if pid == 0:  # the child: compute, send, leave without running the parent's cleanup
            code = 0
            try:
                os.close(read_fd)
                data = pickle.dumps(_compute(container, blobs))
                with os.fdopen(write_fd, "wb") as out:
                    out.write(data)
            except BaseException:
                code = 1
            os._exit(code)
        os.close(write_fd)
        self.pid, self.read_fd = pid, read_fd

    def result(self, monitor: Monitor | None = None) -> Efficiency:
        """The child's numbers; computed here if the child could not give them."""
        if self.pid:
            with os.fdopen(self.read_fd, "rb") as pipe:
                data = pipe.read()
            _, status = os.waitpid(self.pid, 0)
            self.pid = 0
            if os.waitstatus_to_exitcode(status) == 0 and data:
                return pickle.loads(data)
        return _compute(self.container, self.blobs)

    def cancel(self) -> None:
        """Stop the child (the load was cancelled or failed)."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
            os.close(self.read_fd)
            self.pid = 0


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


class DiveInProcess:
    """Like ``DiveInChild``, in a new interpreter that reopens the source file by its path."""

    def __init__(self, container: Container, blobs: list[str], path: str, image: int) -> None:
        self.container, self.blobs = container, blobs
        self.proc: subprocess.Popen | None = None
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "explorer.image.parallel", path, str(image)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError:
            pass  # no process to be had (out of descriptors, say): ``result`` computes them here

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
        proc = self.proc
        if proc is not None:
            while True:
                try:
                    data, _ = proc.communicate(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    if monitor is not None and monitor.cancelled:
                        raise Cancelled("cancelled")  # the loader then stops this child
            self.proc = None
            if proc.returncode == 0 and data:
                return pickle.loads(data)
        return _compute(self.container, self.blobs)

    def cancel(self) -> None:
        """Stop the child (the load was cancelled or failed)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            proc.communicate()  # reaps it and closes the pipe


def _main(path: str, image: int) -> int:
    """The child's side of ``DiveInProcess``: the numbers, pickled to stdout."""
    try:
        # Below the window and its loader: with both cores busy, a window thread that waits
        # for a core also keeps the loader waiting for the interpreter lock, and both stall.
        os.nice(10)
    except (AttributeError, OSError):
        pass
    with open_source(path) as source:
        plan = source.images[image].locator
        sys.stdout.buffer.write(pickle.dumps(_compute(source.container, [l.blob for l in plan.layers])))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1], int(sys.argv[2])))
