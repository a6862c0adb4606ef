"""dive's numbers computed on the second core while the first one builds the tree.

dive's accounting needs every layer's raw entries a second time, in a different model; on
a 2-core machine that costs as much as half the load. A forked child re-reads the layer
headers (cheap: the pages are cached) and sends back only the small result.
"""

from __future__ import annotations

import os
import pickle
from typing import Callable

from explorer.image.container import Container
from explorer.image.progress import Monitor
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
        pid = os.fork()
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

    def result(self, fallback: Callable[[], Efficiency] | None = None) -> Efficiency:
        """The child's numbers; computed here if the child could not give them."""
        if self.pid:
            with os.fdopen(self.read_fd, "rb") as pipe:
                data = pipe.read()
            _, status = os.waitpid(self.pid, 0)
            self.pid = 0
            if os.waitstatus_to_exitcode(status) == 0 and data:
                return pickle.loads(data)
        return fallback() if fallback is not None else _compute(self.container, self.blobs)

    def cancel(self) -> None:
        """Stop the child (the load was cancelled or failed)."""
        if self.pid:
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
            os.close(self.read_fd)
            self.pid = 0
