"""Comparing two images, extracting files, and measuring many images, in a process of their own.

Both read whole images: a comparison every path of two final filesystems, an extraction every
folder below what it writes. Done in the window's process, they made an object of each entry
there and held the interpreter lock for seconds. A worker, started as a load's is
(``load_worker``), opens the sources again, maps the images' indexes from the cache (or
builds the images when there is none), does the work and sends its result back: the paths
that differ, what was written, or the report on a series of versions or a fleet (whose
images it loads itself). The window keeps only that.

A cancelled comparison or measuring ends its worker at once. A cancelled extraction is asked to stop at
its next step (``SIGTERM``), so that it removes the file it was writing; it is ended after
``load_worker.GRACE`` seconds if it has not stopped by then.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Any, Callable

from explorer.formats.source import Source
from explorer.image import index_cache
from explorer.image.compare import Differences
from explorer.image.extract import ExtractOptions, ExtractResult, extract, select_entries
from explorer.image.load_worker import Side, Unavailable, answering, entered, reopened, run, say, side_of, suitable
from explorer.image.loader import Image, load_image
from explorer.image.many import expand, measure
from explorer.model.progress import Monitor
from explorer.model.values import ImageRef




@dataclass(frozen=True, slots=True)
class CompareJob:
    """Which paths differ between the final filesystems of ``a`` and ``b``."""

    a: Side
    b: Side
    env: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ComparedPart:
    """Part of the worker's answer to a ``CompareJob``: differing paths, in order, with their
    changes (``Differences.paths`` and ``codes``). A part at a time, the window's loading
    thread unpickles a few milliseconds' worth between the GUI thread's turns."""

    paths: list[str]
    codes: bytes


@dataclass(frozen=True, slots=True)
class Compared:
    """The worker's last word on a ``CompareJob``, after its parts: ``Differences.direct``."""

    direct: dict[str, int] = field(default_factory=dict)


PART = 20_000  # differing paths a part: about a megabyte
PATHS_SHOWN = 10  # of a layer's changed paths, the window lists the first so many (``UpdatesView``)


@dataclass(frozen=True, slots=True)
class ManyJob:
    """Measure ``updates`` across the images ``names`` name (oldest first), or what they share as a ``fleet``."""

    kind: str
    names: list[str]
    env: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Measured:
    """The worker's answer to a ``ManyJob``: the report ``updates`` or ``fleet`` makes."""

    report: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ExtractJob:
    """Write what ``select_entries(path, layer, only_layer)`` gives of ``side`` below ``target``,
    named from ``path`` on (``/etc`` -> ``target/etc``)."""

    side: Side
    path: str
    layer: int | None
    only_layer: bool
    target: str  # absolute: the worker's working folder is not the window's
    options: ExtractOptions
    env: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Extracted:
    """The worker's answer to an ``ExtractJob``."""

    result: ExtractResult


def compare_files(a_source: Source, a: Image, b_source: Source, b: Image, monitor: Monitor) -> Differences:
    """The paths whose final state differs between two loaded images, worked out in a worker
    process (here when none can be had, or a source can be read only once)."""
    a_side = side_of(a_source, a.ref) if suitable(a_source, a.ref) else None
    b_side = side_of(b_source, b.ref) if suitable(b_source, b.ref) else None
    if a is b or (a_side is not None and a_side == b_side):
        return Differences([], b"", {}, a.tree, b.tree)  # an image and itself (loaded twice, maybe): nothing differs
    if a_side is not None and b_side is not None:
        job = CompareJob(a_side, b_side, dict(os.environ))
        paths: list[str] = []
        codes = bytearray()

        def part(message: object) -> bool:
            if not isinstance(message, ComparedPart):
                return False
            paths.extend(message.paths)
            codes.extend(message.codes)
            return True

        try:
            last = run(_compare, job, "compare", monitor, a_source.info.path, Compared, graceful=False, parts=part)
        except Unavailable:
            pass
        else:
            return Differences(paths, codes, last.direct, a.tree, b.tree)
    monitor.begin("comparing the files")
    return Differences.between(a_source, a, b_source, b)


def extract_selected(source: Source, image: Image, path: str, layer: int | None, only_layer: bool, target: str,
                     options: ExtractOptions | None, monitor: Monitor) -> ExtractResult:
    """``extract`` of ``select_entries(image, path, layer, only_layer)`` below ``target``,
    named from ``path`` on, in a worker process
    when it can map the image from the index cache; here when it would have to build the
    image again (the cache off: a folder of a million-entry image would wait seconds for it),
    when none can be had, or when the source can be read only once."""
    options = options or ExtractOptions()
    if suitable(source, image.ref) and _cached(source, image.ref):
        job = ExtractJob(side_of(source, image.ref), path, layer, only_layer, os.path.abspath(target), options,
                         dict(os.environ))
        try:
            return run(_extract, job, "extract", monitor, source.info.path, Extracted, graceful=True).result
        except Unavailable:
            pass
    return extract(source, image, select_entries(image, path, layer, only_layer), target, base=path,
                   options=options, monitor=monitor)


def measure_many(kind: str, names: list[str], monitor: Monitor) -> dict[str, Any]:
    """``measured``, in a worker process (here when none can be had): the window then loads
    none of the images, however many. Each layer's ``changed_paths`` holds the first
    ``PATHS_SHOWN`` only."""
    job = ManyJob(kind, list(names), dict(os.environ))
    try:
        return run(_measure, job, kind, monitor, kind, Measured, graceful=False).report
    except Unavailable:
        return measured(kind, names, monitor)


def measured(kind: str, names: list[str], monitor: Monitor, hold: Callable[[Any], object] = lambda _opened: None) -> dict[str, Any]:
    """``many.measure`` of the images ``names`` name, telling ``monitor`` how it goes."""
    return measure(kind, expand(names, every_image=kind == "fleet"),
                   lambda done, total, name: monitor.begin(f"indexed {done} of {total}: {name}"), hold)


def _cached(source: Source, ref: ImageRef) -> bool:
    """Whether the index cache holds this image's index, for a worker to map."""
    key = index_cache.key_for(source, ref) if index_cache.enabled() else None
    return key is not None and os.path.isfile(os.path.join(index_cache.folder(), key))


def _image(source: Source, ref: ImageRef, monitor: Monitor) -> Image:
    """The image as the window has it: its index mapped from the cache, else built here."""
    return load_image(source, ref, monitor, parallel=True, cache=True)


def _compare(job: CompareJob, messages) -> None:
    """In the worker: answer a ``CompareJob``, in parts."""
    monitor = entered(job.env, job.a.label, messages)
    with answering(messages, job.a, job.b):
        with reopened(job.a, monitor) as (a_source, a_ref), reopened(job.b, monitor) as (b_source, b_ref):
            a, b = _image(a_source, a_ref, monitor), _image(b_source, b_ref, monitor)
            monitor.begin("comparing the files")
            found = Differences.between(a_source, a, b_source, b)
        for start_at in range(0, len(found), PART):
            monitor.tick(start_at)  # (a cancel stops here too)
            say(messages, ComparedPart(found.paths[start_at:start_at + PART], found.codes[start_at:start_at + PART]))
        say(messages, Compared(found.direct))


def _measure(job: ManyJob, messages) -> None:
    """In the worker: answer a ``ManyJob``, each layer's changed paths cut to those the
    window lists (an update of a million files listed them all: 30 MB, which held the
    window 64 ms as it was unpickled)."""
    monitor = entered(job.env, job.kind, messages)
    held: list[Any] = []  # (freed only once the answer is sent: the process ends then anyway)
    with answering(messages, Side(job.kind, 0, "", job.kind)):
        report = measured(job.kind, job.names, monitor, held.append)
        for step in report.get("steps", ()):
            for layer in step.get("layers", ()):
                if "changed_paths" in layer:
                    layer["changed_paths"] = layer["changed_paths"][:PATHS_SHOWN]
        say(messages, Measured(report))


def _extract(job: ExtractJob, messages) -> None:
    """In the worker: answer an ``ExtractJob``; a ``SIGTERM`` stops it at its next step."""
    monitor = entered(job.env, job.side.label, messages)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: setattr(monitor, "cancelled", True))
    with answering(messages, job.side):
        with reopened(job.side, monitor) as (source, ref):
            image = _image(source, ref, monitor)
            entries = select_entries(image, job.path, job.layer, job.only_layer)
            result = extract(source, image, entries, job.target, base=job.path, options=job.options, monitor=monitor)
        say(messages, Extracted(result))
