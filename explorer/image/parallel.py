"""Layers read on the second core while the first one builds the tree.

A child process reads the layers but the first, in order, and sends each one's scan to the
loader as soon as it has it; the loader, which reads the first layer meanwhile, applies them
instead of reading them itself (a layer whose scan has not come when the loader wants it,
the loader reads itself). dive's numbers need every layer's raw entries once more, in a
model of their own. Forked (``dive_apart``), a second child computes them: it is forked once the
loader has read the first layer, has that layer's entries from the fork, and takes the
others from the reading child as it hands them over, so both cores work from the start and
the numbers are ready before the tree. Otherwise the reading child computes them after
sending every layer, reading the first layer too.
A scan crosses the pipe as ``marshal`` data of plain tuples: ten times faster than pickled
named tuples, and nothing but data can come out of it.

The command line and the window's loading process (neither has a thread but its main one)
fork: the child has the opened source already. A process with threads must not fork, so a load
in a thread of the window itself (where no loading process can be started) starts a fresh
interpreter that reopens the source by its path.
"""

from __future__ import annotations

import marshal
import multiprocessing
import os
import queue
import threading
from collections import Counter
from dataclasses import fields
from enum import IntEnum
from typing import Any, Callable, Iterator

from explorer.formats import container as containers
from explorer.formats.container import Container, LayerScan
from explorer.model.errors import Cancelled
from explorer.model.progress import Monitor
from explorer.formats.source import open_source
from explorer.tree.efficiency import DiveEfficiency, Efficiency
from explorer.tree.index import TooManyPaths

WAIT = 0.2  # seconds between looks at the cancel flag while waiting for the child
# A scan's fields that cross the pipe besides its members (inflate states cannot: the child
# keeps none, and previews make their own access points).
_FIELDS = tuple(f.name for f in fields(LayerScan) if f.name not in ("members", "checkpoints", "access"))


class Kind(IntEnum):
    """What a message from the child carries."""

    SCAN = 0  # one layer's scan
    NUMBERS = 1  # dive's numbers, last
    FAILED = 2  # the child met an error: the loader reads the rest itself, and meets it too
    HANDED = 3  # every scan sent, and handed to the child that computes dive's numbers, last
    REFUSED = 4  # dive's model refused the image's paths (their budget), with its reason, last


# The layers the loader reads itself, while the child reads the others: the child's copy of
# the first would come later than the loader's own reading (sending costs the child about a
# third of its reading).
FIRST = 1


def _sent(blobs: list[str]) -> list[str]:
    """The blobs the child sends, in order: each once, at its first listing from ``FIRST`` on."""
    seen = set(blobs[:FIRST])
    return [b for b in dict.fromkeys(blobs[FIRST:]) if b not in seen]


def _work(store: Container, blobs: list[str], limit: int, out: Any, handover: Any = None) -> None:
    """In the child: send the scans the loader wants, then dive's numbers. Each message is a
    small head (its kind, and a scan's number), then for a scan its body: the loader drops a
    body it no longer needs without decoding it. With ``handover``, the scans go there too,
    to the child that computes dive's numbers, instead of those numbers being computed here."""
    containers.CHECKPOINTS = False
    # A thread sends while this one reads on: the loader takes a layer only when it has
    # applied the last, and meanwhile this process goes on to the next layers and dive's
    # numbers. (The queue holds what is kept for those anyway.)
    pending, sender = _pump(out, lambda: os._exit(0))  # (the loader gone, killed say: nobody wants the rest)
    # The other child takes the scans only once it has done the first layer's part: handed
    # over from a thread too, so that reading goes on meanwhile (that child gone, the loader
    # computes the numbers).
    handed_gone = threading.Event()  # (then nothing more is queued for it: it would only be held)
    handing, hander = _pump(handover, handed_gone.set) if handover is not None else (None, None)
    try:
        sent: dict[str, bytes] = {}  # (without the other child: kept for dive's numbers here)
        entries = 0
        for number, blob in enumerate(_sent(blobs)):
            scan = store.scan_layer(blob, Monitor())
            entries += len(scan.members)
            if entries > limit:  # (the loader refuses the image when it counts them: no more here)
                raise ValueError("too many entries")
            rest = tuple(getattr(scan, name) for name in _FIELDS)
            body = marshal.dumps(([tuple(m) for m in scan.members], rest))
            pending.put((marshal.dumps((int(Kind.SCAN), number)), body))
            if handing is None:
                sent[blob] = body
            elif not handed_gone.is_set():
                handing.put((marshal.dumps(blob), body))
            del scan, body
        if handover is not None:
            pending.put((marshal.dumps((int(Kind.HANDED),)),))
        else:
            # dive's numbers need every layer in order, the first one too, which the loader
            # reads meanwhile: this one reads it now, and the others again from what it sent (a
            # third of the memory of their entries, read back in a tenth of the time).
            numbers = _numbers(blobs, lambda blob: marshal.loads(sent.pop(blob))[0] if blob in sent
                               else store.scan_layer(blob, Monitor()).members)
            pending.put((numbers,))
    except TooManyPaths as exc:  # (the loader says it: reading every layer again would only meet it)
        pending.put((marshal.dumps((int(Kind.REFUSED), str(exc))),))
    except BaseException:  # noqa: BLE001 (the loader meets the same error and says it: no traceback here)
        pending.put((marshal.dumps((int(Kind.FAILED),)),))
    pending.put(None)
    if handing is not None:
        assert hander is not None
        handing.put(None)  # (after a failure, the other child finds the scans end too soon)
        hander.join()
        handover.close()
    sender.join()


def _pump(conn: Any, gone: Callable[[], Any]) -> tuple["queue.Queue[tuple[bytes, ...] | None]", threading.Thread]:
    """A queue whose messages (each some parts) a thread of its own writes to ``conn`` until it
    takes None; ``gone`` is called if the reader has gone."""
    messages: queue.Queue[tuple[bytes, ...] | None] = queue.Queue()

    def run() -> None:
        try:
            while (parts := messages.get()) is not None:
                for part in parts:
                    conn.send_bytes(part)
        except OSError:
            gone()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return messages, thread


def _dive_numbers(blobs: list[str], read: Callable[[str], list]) -> Efficiency:
    """dive's numbers over every listing, each blob's members from ``read``."""
    dive = DiveEfficiency()
    for members in _listings(blobs, read):
        dive.add_layer(members)
    return dive.result()


def _numbers(blobs: list[str], read: Callable[[str], list]) -> bytes:
    """dive's numbers over every listing, as the message that says them."""
    n = _dive_numbers(blobs, read)
    return marshal.dumps((int(Kind.NUMBERS), n.score, n.wasted_bytes, n.user_wasted_percent, n.files))


def _forked(store: Container, blobs: list[str], limit: int, out: Any, results: Any, handover: Any,
            handed: Any) -> None:
    """In a forked child: the layers of the source it inherited, handed to the child that
    computes dive's numbers as they are sent (when ``handover`` is given)."""
    results.close()  # the loader's end: with it held here too, a loader killed would leave this one waiting
    if handed is not None:
        handed.close()  # the other child's end
    _work(store, blobs, limit, out, handover)


def _dive(blobs: list[str], first: list[list], handed: Any, out: Any, results: Any, scans: Any) -> None:
    """In the child forked once the loader had read the first layer: dive's numbers, from that
    layer's members (inherited) and the others' as the reading child hands them over."""
    results.close()
    if scans is not None:
        scans.close()  # the loader's ends of both children's pipes
    # Behind the loader and the reading child: its numbers are wanted only at the end, and
    # three processes sharing two cores slowed the loader's applying the first layer.
    lower_priority(10)
    members0 = first.pop()
    received: dict[str, bytes] = {}

    def read(blob: str) -> list:
        nonlocal members0
        if blob == blobs[0] and members0 is not None:
            members, members0 = members0, None
            return members
        while blob not in received:
            name = marshal.loads(handed.recv_bytes())
            received[name] = handed.recv_bytes()
        return marshal.loads(received.pop(blob))[0]

    try:
        message = _numbers(blobs, read)
    except TooManyPaths as exc:
        message = marshal.dumps((int(Kind.REFUSED), str(exc)))
    except BaseException:  # noqa: BLE001 (the reading child failed, or this one: the loader computes them)
        message = marshal.dumps((int(Kind.FAILED),))
    try:
        out.send_bytes(message)
    except OSError:
        pass


def _fresh(path: str, blobs: list[str], limit: int, out: Any) -> None:
    """In a fresh interpreter: the layers of the source opened again by its path."""
    # Below the window and its loader: with both cores busy, a window thread that waits for a
    # core also keeps the loader waiting for the interpreter lock, and both stall.
    lower_priority(10)
    try:
        source = open_source(path)
    except BaseException:  # noqa: BLE001 (as in ``_work``)
        out.send_bytes(marshal.dumps((int(Kind.FAILED),)))
        return
    with source:
        _work(source.container, blobs, limit, out)


class LayersElsewhere:
    """Starts the child; ``scans`` hands out the layers in order, ``result`` dive's numbers.

    The loader reads the first layer itself meanwhile (``FIRST``). ``path`` given, a
    fresh interpreter reopens the source; else the process is forked. With ``dive_apart``
    (forked only), a second child computes dive's numbers: forked once ``scans`` has read the
    first layer, it has that layer from the fork, and the reading child hands it the others.
    ``limit``: the entries the reading child reads at most (the loader's budget: it refuses
    an image with more). Whatever goes wrong with a child, the loader reads the rest of the
    layers and computes the numbers itself (reading every layer again for those: the child
    is gone with what it had).
    """

    def __init__(self, store: Container, blobs: list[str], path: str | None = None, limit: int = 1 << 62,
                 dive_apart: bool = False) -> None:
        self.store, self.blobs = store, blobs
        self.proc: Any = None  # the child that reads the layers
        self.dive_proc: Any = None  # the child that computes dive's numbers, when it is another
        self._received = 0  # scans the child has sent so far
        self._numbers: Efficiency | None = None
        self._refused: str | None = None  # why dive's model refused the image, when a child said so
        self._path, self._limit = path, limit
        self._results: Any = None  # this process's end of the reading child's pipe, once started
        self._dive_results: Any = None  # and of the other child's
        self._handed: Any = None  # the reading end of the pipe between them, until the other starts
        handover = None
        if dive_apart and path is None:
            try:
                self._handed, handover = multiprocessing.get_context("fork").Pipe(duplex=False)
            except (OSError, ValueError):
                pass
        self._start(handover)
        if handover is not None:
            handover.close()  # the reading child has it
            if self.proc is None:
                self._handed.close()
                self._handed = None
        self._dive_waits = self._handed is not None  # for the first layer

    def _start(self, handover: Any) -> None:
        """Start the reading child (forked with ``handover``: where it hands the scans to the
        child that computes dive's numbers, which it then leaves to that child)."""
        fresh = self._path is not None
        try:
            context = multiprocessing.get_context("spawn" if fresh else "fork")
            self._results, out = context.Pipe(duplex=False)
        except (OSError, ValueError):  # no descriptors to be had, or no fork here: the loader does it all
            return
        if fresh:
            target, args = _fresh, (self._path, self.blobs, self._limit, out)
        else:
            target, args = _forked, (self.store, self.blobs, self._limit, out, self._results, handover, self._handed)
        try:
            self.proc = context.Process(target=target, args=args, name="layer-explorer layers", daemon=True)
            self.proc.start()
        except (OSError, ValueError, RuntimeError):  # no process to be had here
            self.proc = None
            self._results.close()
        finally:
            out.close()  # the child holds its end: when it ends, reading ends

    def _start_dive(self, first: list[list]) -> None:
        """Fork the child that computes dive's numbers, with ``first``: the first layer's
        members, which it has from the fork instead of reading them again."""
        handed, self._handed = self._handed, None
        try:
            context = multiprocessing.get_context("fork")
            self._dive_results, out = context.Pipe(duplex=False)
        except (OSError, ValueError):
            handed.close()
            return
        try:
            self.dive_proc = context.Process(target=_dive, args=(self.blobs, first, handed, out, self._dive_results,
                                                                 self._results), name="layer-explorer dive", daemon=True)
            self.dive_proc.start()
        except (OSError, ValueError, RuntimeError):
            self.dive_proc = None
            self._dive_results.close()
        finally:
            out.close()
            handed.close()  # the child has its own
            first.clear()  # the child has its copy; kept here, the loader could not free them

    @staticmethod
    def worth_it(store: Container, blobs: list[str], path: str) -> bool:
        """Whether a local source's layers are big enough to pay for a new interpreter."""
        if "://" in path or not os.path.exists(path):
            return False
        try:
            return sum(store.size(b) for b in blobs) >= SPAWN_MIN_BYTES
        except Exception:  # noqa: BLE001 (a size the container cannot tell: do it here)
            return False

    def scans(self, monitor: Monitor) -> Iterator[LayerScan]:
        """Each blob's scan once, in the order of first listing: the child's when it has
        come, else read here (its copy is dropped when it comes)."""
        for i, blob in enumerate(dict.fromkeys(self.blobs)):
            yield self._scan(i, blob, monitor)  # (held by no name here while the loader has it: it may empty it)

    def _scan(self, i: int, blob: str, monitor: Monitor) -> LayerScan:
        """Blob ``i``'s scan, the child's or read here (then, the first, handed to the child
        for dive's numbers, started now)."""
        scan = self._ready(i - FIRST, monitor) if i >= FIRST else None
        if scan is None:
            scan = self.store.scan_layer(blob, monitor)
            if self._dive_waits:
                self._dive_waits = False
                self._start_dive([scan.members])
        return scan

    def _ready(self, number: int, monitor: Monitor) -> LayerScan | None:
        """The child's scan ``number`` (counted from 0) if it has come, or is coming in now;
        None if not yet, or never. A layer the loader reads itself rather than wait for the
        child's costs what it cost before the child read layers (a new interpreter takes
        0.3 s to start, in which a small image has been read whole); the child's copy is then
        dropped undecoded."""
        while self.proc is not None and self._received <= number:
            if monitor.cancelled:
                raise Cancelled("cancelled")
            try:
                if not self._results.poll(0):
                    return None
            except (OSError, ValueError):  # (closed)
                self.cancel()
                return None
            head = self._next(monitor)
            if head is None:
                return None
            if head[0] == Kind.SCAN:
                body = self._body(monitor)
                if body is None:
                    return None
                self._received = head[1] + 1
                if head[1] == number:
                    members, rest = marshal.loads(body)
                    return LayerScan(members, **dict(zip(_FIELDS, rest)))
            else:
                self._last_word(head)
        return None

    def _next(self, monitor: Monitor | None) -> tuple | None:
        """The child's next message head; None when it ended without one. Waiting ends with
        ``Cancelled`` as soon as ``monitor`` is cancelled."""
        body = self._body(monitor)
        if body is None:
            return None
        try:
            head = marshal.loads(body)
            if head[0] in (Kind.SCAN, Kind.NUMBERS, Kind.FAILED, Kind.HANDED, Kind.REFUSED):
                return head
        except (EOFError, ValueError, TypeError, IndexError, KeyError):
            pass
        self.cancel()  # not a message: the child is not what it should be
        return None

    def _body(self, monitor: Monitor | None) -> bytes | None:
        """The next bytes the reading child sent; None (and the children stopped) when it
        sent no more."""
        try:
            return _received(self._results, monitor)
        except (EOFError, OSError, ValueError):  # ended, or gone
            self.cancel()
            return None

    def _last_word(self, head: tuple) -> None:
        """Dive's numbers, the child's failure, or every scan handed to the other child: it
        has nothing more to say."""
        if head[0] == Kind.NUMBERS:
            self._numbers = Efficiency(*head[1:])
        if head[0] == Kind.REFUSED:
            self._refused = str(head[1])
        if head[0] == Kind.FAILED:  # (stopped, not waited for: it may wait on the other child)
            proc, self.proc = self.proc, None
            stop(proc, self._results)
        self._finish()

    def _finish(self) -> None:
        """Reap the child, which has said all it will."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.join()
            self._results.close()

    def result(self, monitor: Monitor | None = None) -> Efficiency:
        """The child's numbers (computed here if the child could not give them)."""
        if self._handed is not None:  # (no layer was read: the other child never started)
            self._handed.close()
            self._handed = None
        while self.proc is not None and self._numbers is None:
            head = self._next(monitor)
            if head is None:
                break
            if head[0] == Kind.SCAN:
                self._body(monitor)  # a layer the loader read itself: dropped undecoded
            else:
                self._last_word(head)
        if self._numbers is None and self._refused is None and self.dive_proc is not None:
            self._numbers = self._dive_result(monitor)
        if self._refused is not None:
            raise TooManyPaths(self._refused)
        if self._numbers is not None:
            return self._numbers
        return _compute(self.store, self.blobs)

    def _dive_result(self, monitor: Monitor | None) -> Efficiency | None:
        """The numbers the other child computed; None if it could not."""
        numbers = None
        try:
            head = marshal.loads(_received(self._dive_results, monitor))
            if head[0] == Kind.NUMBERS:
                numbers = Efficiency(*head[1:])
            elif head[0] == Kind.REFUSED:
                self._refused = str(head[1])
        except (EOFError, OSError, ValueError, TypeError, IndexError):
            pass
        proc, self.dive_proc = self.dive_proc, None
        stop(proc, self._dive_results)
        return numbers

    def cancel(self) -> None:
        """Stop the children (the load was cancelled or failed)."""
        proc, self.proc = self.proc, None
        stop(proc, self._results)
        proc, self.dive_proc = self.dive_proc, None
        stop(proc, self._dive_results)
        if self._handed is not None:
            self._handed.close()
            self._handed = None


def _received(conn: Any, monitor: Monitor | None) -> bytes:
    """The next message on ``conn``; ``Cancelled`` as soon as ``monitor`` is cancelled (the
    loader then stops the children)."""
    while not conn.poll(WAIT):
        if monitor is not None and monitor.cancelled:
            raise Cancelled("cancelled")
    return conn.recv_bytes()


def stop(proc: Any, end: Any) -> None:
    """Kill a child process, if any, and close this process's end of its pipe, if any."""
    if proc is not None:
        proc.kill()
        proc.join()
    if end is not None:
        end.close()


def _listings(blobs: list[str], read: Callable[[str], list]) -> Iterator[list]:
    """Each listing's members: a blob listed again is read once (a hostile manifest lists one
    a thousand times), and kept only until its last listing."""
    uses = Counter(blobs)
    kept: dict[str, list] = {}
    for blob in blobs:
        members = kept.pop(blob, None)
        if members is None:
            members = read(blob)
        uses[blob] -= 1
        if uses[blob]:
            kept[blob] = members
        yield members
        del members


def _compute(store: Container, blobs: list[str]) -> Efficiency:
    """dive's numbers, read here."""
    return _dive_numbers(blobs, lambda blob: store.scan_layer(blob, Monitor()).members)


def lower_priority(by: int) -> None:
    """Run this process ``by`` steps below its priority (``nice``), where the system lets it."""
    try:
        os.nice(by)
    except (AttributeError, OSError):
        pass


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
