"""Long walks written as generators, so the window can run them a slice at a time.

A walk yields every few thousand entries and returns its result; ``drain`` runs one to the
end at once (the command line, tests). The window runs them between events instead of in
a thread: see ``explorer.ui.workers.Slices`` for why.
"""

from __future__ import annotations

from typing import Generator, TypeVar

T = TypeVar("T")
Steps = Generator[None, None, T]
EVERY = 4095  # yield after this many entries (a mask: a few milliseconds of work)


def drain(steps: "Steps[T]") -> T:
    """Run a walk to its end and return what it returns."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value
