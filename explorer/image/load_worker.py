"""Loading an image in a process of its own, which writes the image's index for the caller to map.

The window's process never builds the tree itself: a process of its own, safe beside the
window's threads, opens the same source, loads the image, writes its index (into the index
cache, or a private temporary folder when the cache is off or its disk is full) and says
where. It is forked by
multiprocessing's fork server, a fresh interpreter started with the window (``warm_up``) that
has imported the loader already: a new interpreter for each load spent 0.12 s importing it
before reading a byte (``spawn`` remains where there is no fork server). The caller maps
that file exactly as it would reopen a cached image, so a first open and a reopen differ only in
who wrote the index. Loading then never competes with painting for the interpreter lock, and a
cancel ends the process and everything it started at once, its memory with it.

Messages come back on one pipe, each a typed value: ``Progress`` while loading (on a big image,
``Shown`` once its files alone are written, for the window to show them), then one
``Written``, ``Failed`` or ``Unwritten`` (no folder would hold the index: the caller then
keeps the image in its own memory, ``in_memory``). The worker has no thread but its main
one, so it forks its layers child as the command line does.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import shutil
import signal
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

from explorer.formats.cache import remove, scratch_dir, scratch_prefix
from explorer.formats.container_layer import KeptContainer
from explorer.formats.source import REGISTRY_SCHEMES, Source, open_container, open_kept_container, open_source
from explorer.formats.spool import SpooledContainer, kept_file
from explorer.image import index_cache
from explorer.image.loader import Image, collector_off, load_image, prepare_first_view
from explorer.image.parallel import lower_priority
from explorer.model.errors import Cancelled, ExplorerError, SourceError
from explorer.model.progress import Monitor, Progress, throttled
from explorer.model.values import ImageRef

WAIT = 0.05  # seconds between looks at the cancel flag while the worker runs
EVERY = 0.05  # the worker sends progress at most this often (and at each new stage)
# paths: from here on, the window is shown the files before their accounting (at 200,000 they
# came 0.2 s sooner and the accounting 0.7 s later; at 500,000, 1.3 s sooner and 0.4 s later)
EARLY_AT = 500_000
GRACE = 2.0  # seconds a cancelled worker (an extraction) has to stop by itself before it is ended


@dataclass(frozen=True, slots=True)
class Side:
    """An image as a worker opens it again: image ``index`` of the source at ``path``;
    ``label`` is what the user opened (an engine's image is read from the copy at ``path``)."""

    path: str
    index: int
    config_digest: str
    label: str
    container: KeptContainer | None = None  # a container kept in files, opened again from them


def side_of(source: Source, ref: ImageRef) -> Side:
    """How a worker opens ``ref`` of ``source`` again."""
    return Side(_kept(source) or source.info.path, ref.index, ref.config_digest, source.info.path,
                _kept_container(source))


@dataclass(frozen=True, slots=True)
class Job:
    """What the worker loads: ``side``, its index written under ``key`` to the first of
    ``folders`` that holds it."""

    side: Side
    folders: tuple[str, ...]
    key: str
    # The caller's environment as it is now (settings such as the cache's place): the fork
    # server has the one it was started with.
    env: dict[str, str] | None = None
    early: int | None = None  # on an image of this many paths or more, say ``Shown`` before the accounting
    shown_as: str = ""  # the name it is said under (``index_cache.shown_name``: the caller's)


@dataclass(frozen=True, slots=True)
class Shown:
    """The worker wrote the index of the image's files, before their accounting, at ``path``
    (the name the caller chose, ``Job.shown_as``; with ``checksum`` in it): the caller maps it
    and removes it; ``Written`` follows."""

    path: str
    checksum: bytes | None = None


@dataclass(frozen=True, slots=True)
class Written:
    """The worker wrote the image's index at ``path``, with ``checksum`` in it."""

    path: str
    checksum: bytes | None = None


class Unavailable(ExplorerError):
    """No worker can load here (no process to be had, nowhere to write the index): load in-process."""


class NoRoom(ExplorerError):
    """No folder would hold the image's index (each full, or read-only): it can only be held
    in memory (``in_memory``)."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The worker could not load the image; ``message`` says why, for the user."""

    message: str


@dataclass(frozen=True, slots=True)
class Unwritten:
    """The worker loaded the image but no folder would hold its index; ``message`` says where it tried."""

    message: str


T = TypeVar("T")

PRELOAD = ["explorer.image.load_worker", "explorer.image.elsewhere"]  # what the fork server imports once, for every worker


def _context() -> Any:
    """The fork server's context where there is one, else spawn's."""
    try:
        context = multiprocessing.get_context("forkserver")
    except ValueError:
        return multiprocessing.get_context("spawn")
    context.set_forkserver_preload(PRELOAD)
    return context


def warm_up() -> None:
    """Start the fork server now, so that it has imported the loader by the first open (it
    and multiprocessing's resource tracker end with the last process that uses them)."""
    if _context().get_start_method() != "forkserver":
        return
    # (imported here, on the caller's thread: the window's loading thread importing them held
    # the interpreter lock, as scan_pool.import_ahead says)
    import multiprocessing.popen_forkserver  # noqa: F401
    from multiprocessing import forkserver

    with contextlib.suppress(OSError):
        forkserver.ensure_running()


def cool_down() -> None:
    """Remove the folder of the fork server's socket (``pymp-…`` in the temporary folder): the
    console script leaves by ``os._exit``, which skips multiprocessing's own removal of it at
    exit. The server itself ends with the last process that uses it."""
    if _context().get_start_method() != "forkserver":
        return
    from multiprocessing import util

    shutil.rmtree(util.get_temp_dir(), ignore_errors=True)


def suitable(source: Source, ref: ImageRef) -> bool:
    """Whether the worker can open this source again by its path: a local archive or folder, an
    engine's image kept in a file, or a registry image (asked again for its manifest, a few kB;
    its blobs are cached on disk and downloaded once). Not a stream indexed as it passed: it
    can be read once only."""
    path = source.info.path
    return (path.startswith(REGISTRY_SCHEMES) or ("://" not in path and os.path.exists(path))
            or _kept(source) is not None)


def _kept_container(source: Source) -> KeptContainer | None:
    """The files a container was kept in, if it was."""
    kept = getattr(getattr(source, "container", None), "kept", None)
    return kept if isinstance(kept, KeptContainer) else None


def _kept(source: Source) -> str | None:
    """The local copy an engine's image (or a container's) is read from, if it was kept in one."""
    container = _kept_container(source)
    return container.save if container is not None else kept_file(getattr(source, "container", None))


def load(source: Source, ref: ImageRef, monitor: Monitor, on_files: Callable[[Image], Any] | None = None,
         early_at: int | None = None) -> Image:
    """Load ``ref`` in a worker process and map the index it writes.

    ``on_files`` is called (in this thread) with the image as soon as its files are written,
    before their accounting (``analysed`` False), on an image of ``early_at`` paths or more
    (by default ``EARLY_AT``: on a small one it would only add a copy of its index); the
    image returned is then that one, its accounting added from the whole index (the one the
    cache keeps, when the cache is on).
    Raises ``Cancelled`` as soon as ``monitor.cancelled`` is set (the worker and its own
    workers are killed), and ``SourceError`` with the worker's reason when it fails.
    """
    early: list[Image] = []

    def in_worker(folders: tuple[str, ...], key: str) -> Written:
        shown_as = index_cache.shown_name(folders[0])

        def parts(message: Any) -> bool:
            if not isinstance(message, Shown) or on_files is None:
                return False
            image = index_cache.open_index(message.path, key, source, ref, message.checksum)
            if image is not None:  # (else the whole image follows, as without it)
                early.append(image.replace(analysed=False))
                on_files(early[0])
            return True

        at_least = (EARLY_AT if early_at is None else early_at) if on_files is not None else None
        job = Job(side_of(source, ref), folders, key, dict(os.environ), at_least, shown_as)
        try:
            return run(_work, job, "load", monitor, source.info.path, Written, parts=parts)
        finally:
            remove(shown_as)  # mapped (the map keeps it), or never read: the load cancelled or failed meanwhile

    image = _mapped(source, ref, index_cache.key_for(source, ref), in_worker)
    if not early:
        return image
    return early[0].accounted(image)


def load_here(source: Source, ref: ImageRef, monitor: Monitor) -> Image:
    """Load ``ref`` in this process, write its index as a worker would, and map that: what
    was built is let go of, so the caller holds the map alone (for a source no worker can
    open again, or where no worker process can be had). Where no folder holds the index,
    the image is kept as built (``in_memory``): a stream read once cannot be read again."""
    built: list[Image] = []

    def here(folders: tuple[str, ...], key: str) -> Written:
        image = _built(source, ref, monitor)
        try:
            return _written(source, image, folders, key, monitor, source.info.path)
        except NoRoom:
            built.append(image)
            raise
        finally:
            if not built:
                _let_go(image)

    try:
        return _mapped(source, ref, index_cache.key_for(source, ref), here)
    except (NoRoom, Unavailable):  # (Unavailable: no folder at all, said before reading)
        return in_memory(source, ref, monitor, built[0] if built else None)


def _built(source: Source, ref: ImageRef, monitor: Monitor) -> Image:
    """``ref`` loaded in this process, its first view prepared (in a process with threads:
    dive's numbers in a new interpreter, when big enough)."""
    with collector_off():
        image = load_image(source, ref, monitor, parallel="process", cache=False)
        monitor.begin("preparing the view")
        return prepare_first_view(image)


def in_memory(source: Source, ref: ImageRef, monitor: Monitor, image: Image | None = None) -> Image:
    """``ref`` loaded (or ``image``, built already by ``_built``) and kept in this process's
    memory as it is, for when no folder would hold its index; a warning on it says so."""
    if image is None:
        image = _built(source, ref, monitor)
    note = (f"the image's index could not be written in a temporary folder or the index cache ({index_cache.folder()}): "
            "the disk is full, or they are read-only; so the image is held in memory, which takes more of it "
            "for a big image; free some disk space and open it again")
    return image.replace(warnings=(*image.warnings, note))


def _written(source: Source, image: Image, folders: tuple[str, ...], key: str, monitor: Monitor, label: str) -> Written:
    """``image``'s index, its first view prepared, written under ``key`` by this process in
    the first of ``folders`` that holds it, and the checksum it holds (``NoRoom`` naming
    ``label`` when none does)."""
    monitor.begin("preparing the view")
    image = prepare_first_view(image)
    monitor.begin("writing the index")
    for folder in folders:  # (a full disk refuses the first write: each try fails at once)
        written = index_cache.save(source, image, folder, key)
        if written is not None:
            return Written(written, index_cache.checksum(written))
    raise NoRoom(f"{label}: no folder would hold the image's index ({', '.join(folders)}: full, or read-only)")


def _let_go(image: Image) -> None:
    """Free a built image's paths one at a time, so that other threads get their turns:
    freed in one go, a million of them held the window half a second."""
    for table in (image.tree.versions, image.tree.kids):
        while table:
            table.popitem()


def _mapped(source: Source, ref: ImageRef, key: str | None,
            write: Callable[[tuple[str, ...], str], Written]) -> Image:
    """The image whose index ``write(folders, name)`` writes in the first of ``folders`` that
    holds it, mapped. The first is the index cache, when the cache is on and can be written
    and the image has a key (the file is named ``key`` and kept there); then private folders,
    removed once mapped: one in the cache's scratch folder when the cache is not used, and one
    in the system's temporary folder (often on another disk than a full cache's).
    ``Unavailable`` when there is no folder."""
    # (never cached: a container changes as it runs, and an image with no key is never found again)
    keep = key is not None and _kept_container(source) is None and index_cache.enabled()
    cache = index_cache.folder() if keep else None
    if cache is not None and not _writable(cache):
        cache = None
    private = _private_folders(scratch=cache is None)
    folders = ([cache] if cache is not None else []) + private
    if not folders:
        raise Unavailable("no folder to write an index in (neither the cache's nor a temporary one can be made)")
    name = key if keep and key is not None else "once-" + uuid.uuid4().hex
    try:
        written = write(tuple(folders), name)
        image = index_cache.open_index(written.path, name, source, ref, written.checksum)
        if image is None:
            raise SourceError(source.info.path, "the index written while loading could not be read back",
                              "the image changed while it was read, or the disk is full; open it again")
        return image
    finally:
        for folder in private:  # the map keeps the data; the name can go now
            shutil.rmtree(folder, ignore_errors=True)


def _writable(folder: str) -> bool:
    """Whether ``folder`` exists, or can be made, and can be written in."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def _private_folders(scratch: bool) -> list[str]:
    """New folders of this process's own for an index, those that can be made: with
    ``scratch``, one in the cache's scratch folder (not worth it beside a usable cache
    folder: the same disk), then one in the system's temporary folder."""
    made = []
    if scratch:
        with contextlib.suppress(OSError):
            made.append(tempfile.mkdtemp(prefix=scratch_prefix("index-"), dir=scratch_dir()))
    with contextlib.suppress(OSError):
        made.append(tempfile.mkdtemp(prefix="layer-explorer-index-"))
    return made


def start(target: Callable[[Any, Any], None], job: Any, what: str) -> tuple[Any, Any]:
    """A worker process (named for ``what`` it does) running ``target(job, messages)``, and the end of the pipe it says
    how it goes on; ``Unavailable`` when no process can be had."""
    try:
        context = _context()
        # A pipe, not a queue: a queue sends from a thread of its own, and the worker, with no
        # thread but its main one, may fork its layers child.
        messages, said = context.Pipe(duplex=False)
    except OSError as exc:
        raise Unavailable(str(exc)) from None
    worker = context.Process(target=target, args=(job, said), name=f"layer-explorer {what}", daemon=False)
    try:
        worker.start()
    except BaseException as exc:
        messages.close()
        if isinstance(exc, OSError):
            raise Unavailable(str(exc)) from None
        raise
    finally:
        said.close()  # the worker's end: its own copy is the one it writes to
    return worker, messages


def _next_message(worker, messages, monitor: Monitor) -> Any:
    """The worker's next message; None once ``monitor`` is cancelled; ``EOFError`` when it has
    ended without one more (a last word said just before it ended is still read)."""
    while not monitor.cancelled:
        if not messages.poll(WAIT):
            if worker.is_alive():
                continue
            if not messages.poll(WAIT):
                raise EOFError
        return messages.recv()
    return None


def wait(worker, messages, monitor: Monitor, path: str, result: type[T],
         parts: Callable[[Any], bool] | None = None) -> T:
    """Relay the worker's progress until it sends its ``result``; ``parts`` takes what else it
    sends (the parts of a big result), and says whether it took it."""
    while True:
        try:
            message = _next_message(worker, messages, monitor)
        except (EOFError, OSError):
            worker.join(WAIT)
            raise SourceError(path, f"the worker process ended unexpectedly (exit code {worker.exitcode})",
                              "the system may have run out of memory; close other images and try again") from None
        if message is None:
            raise Cancelled("cancelled")
        if isinstance(message, Progress):
            monitor.relay(message)
        elif isinstance(message, result):
            return message
        elif isinstance(message, Failed):
            raise ExplorerError(message.message)
        elif isinstance(message, Unwritten):
            raise NoRoom(message.message)
        elif parts is None or not parts(message):
            raise SourceError(path, f"the worker process said what nobody asked for ({type(message).__name__})",
                              "this is a bug; please report it")


def end(worker) -> None:
    """Stop the worker, and every process it started, now (nothing if it has finished)."""
    if worker.pid is None:
        return
    if worker.exitcode is None:
        try:
            os.killpg(worker.pid, signal.SIGKILL)  # its layer scanners and layers child too
        except (AttributeError, OSError):  # not POSIX, or its group not made yet
            worker.kill()
    worker.join()
    with contextlib.suppress(ValueError):
        worker.close()


def run(target: Callable[[Any, Any], None], job: Any, what: str, monitor: Monitor, path: str,
        result: type[T], graceful: bool = False, parts: Callable[[Any], bool] | None = None) -> T:
    """Start a worker on ``job`` and relay its progress (and ``parts``) until its ``result``
    comes; the worker ended in any case. ``graceful``: a cancel first asks it to stop at its
    next step (``SIGTERM``), and ends it only after ``GRACE`` seconds."""
    worker, messages = start(target, job, what)
    try:
        return wait(worker, messages, monitor, path, result, parts)
    except Cancelled:
        if graceful and worker.exitcode is None:
            os.kill(worker.pid, signal.SIGTERM)  # stop at the next step, tidily
            worker.join(GRACE)
        raise
    finally:
        end(worker)
        messages.close()


def entered(env: dict[str, str] | None, label: str, messages) -> Monitor:
    """In a worker, first: the caller's environment, a process group of its own, a low
    priority, and a monitor whose progress goes to ``messages`` (and which stops the work
    once nobody reads it)."""
    if env is not None and env != os.environ:  # (every limit is read from it when needed)
        os.environ.clear()
        os.environ.update(env)
    with contextlib.suppress(AttributeError, OSError):
        os.setpgid(0, 0)  # a group of its own, so a cancel ends its helpers with it
    lower_priority(2)  # the window's thread must never wait for a core behind a load
    gc.disable()  # it ends once it has answered: what it builds, it holds till then (``collector_off``)
    parent = os.getppid()
    if hasattr(os, "register_at_fork"):  # its layers child must not hold the window's pipe open
        os.register_at_fork(after_in_child=messages.close)

    def report(progress: Progress) -> None:
        if os.getppid() != parent:  # the window is gone: nobody wants this work
            raise Cancelled("cancelled")
        try:
            messages.send(progress)
        except OSError:  # nobody reads: the window gave up on this work
            raise Cancelled("cancelled") from None

    return Monitor(label, throttled(report, EVERY))


@contextlib.contextmanager
def reopened(side: Side, monitor: Monitor) -> Iterator[tuple[Source, ImageRef]]:
    """The source again, in the worker, and the image asked for (``SourceError`` when it is
    no longer the one the window opened)."""
    with _reopen(side, monitor) as source:
        if side.index >= len(source.images) or source.images[side.index].config_digest != side.config_digest:
            raise SourceError(side.label, "the image changed while it was being opened", "open it again")
        yield source, source.images[side.index]


def _work(job: Job, messages) -> None:
    """In the worker: load the image and write its index, telling ``messages`` how it goes."""
    monitor = entered(job.env, job.side.label, messages)
    with answering(messages, job.side):
        with reopened(job.side, monitor) as (source, ref):
            files: list[index_cache.FilesElsewhere] = []

            def on_tree(tree) -> None:
                """The files' part of the index written by a forked child while this process
                works out the accounting and waits for dive's numbers (or, ``early``, while
                it writes the last folders itself, before the accounting)."""
                files.append(index_cache.FilesElsewhere(tree, job.folders[0]))

            def on_files(image: Image) -> None:
                """The files' index finished and said before the accounting, for the window
                to show them meanwhile."""
                if files and len(image.tree.versions) >= job.early:
                    monitor.begin("writing the index of the files")
                    if (shown := files[0].shown(image, job.key, job.shown_as)) and \
                            not say(messages, Shown(shown, index_cache.checksum(shown))):
                        remove(shown)  # (nobody left to map it)

            try:  # (the collector is off in a worker: ``entered``)
                image = load_image(source, ref, monitor, parallel=True, cache=False, on_tree=on_tree,
                                   on_files=on_files if job.early is not None else None)
                monitor.begin("writing the index")
                written = files[0].finish(image, job.key) if files else None
                say(messages, Written(written, index_cache.checksum(written)) if written is not None  # (else no child to be had, or it failed)
                    else _written(source, image, job.folders, job.key, monitor, job.side.label))
            finally:
                for f in files:
                    f.cancel()  # (its child reaped, once the index is passed on)


@contextlib.contextmanager
def answering(messages, side: Side, *others: Side) -> Iterator[None]:
    """In a worker, around its work on ``side`` (and ``others``): a failure is said to the
    window as ``Failed``, each side called by the user's name for it (a cancel says nothing:
    nobody waits for it), and the pipe is closed at the end."""

    def told(text: str) -> str:
        for each in (side, *others):
            text = named(each, text)
        return text

    try:
        yield
    except Cancelled:
        pass
    except NoRoom as exc:
        say(messages, Unwritten(told(str(exc))))
    except ExplorerError as exc:
        say(messages, Failed(told(str(exc))))
    except MemoryError:
        say(messages, Failed(f"{side.label}: not enough memory to read this image"))
    except Exception as exc:  # noqa: BLE001 (said to the window, which must not go down)
        say(messages, Failed(told(f"{side.label}: unexpected error: {type(exc).__name__}: {exc}")))
    finally:
        messages.close()


def say(messages, message: Any) -> bool:
    """Send one of the worker's last words; False when nobody is left to read it (the window
    gone: no error here)."""
    try:
        messages.send(message)
    except OSError:
        return False
    return True


def named(side: Side, text: str) -> str:
    """A message with the user's name for the source wherever it named the local copy read."""
    return text.replace(side.path, side.label) if side.path != side.label else text


def _reopen(job: Side, monitor: Monitor) -> Source:
    """The source again, in the worker: an engine's kept copy is opened as the archive it is,
    under the name the user gave (the window owns the copies and deletes them)."""
    if job.container is not None:
        return open_kept_container(job.label, job.container, monitor, owner=False)
    if job.path == job.label:
        return open_source(job.path, monitor)
    return open_container(job.label, SpooledContainer(job.path, job.label, monitor, owner=False))
