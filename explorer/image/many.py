"""Opening many images at once: sources named on the command line expanded to images, each
indexed once, in worker processes, then opened from its index.

A worker process reads an image's layers and writes its index (the index cache); the calling
process then maps each index, so no image is read twice and the layers of several images
are read on every core at the same time.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from explorer.formats.source import open_source
from explorer.image import index_cache
from explorer.image.loader import load_image, preview_image
from explorer.image.parallel import cores
from explorer.image.updates import Opened, fleet, updates
from explorer.model.errors import SourceError
from explorer.model.text import parse_time

_ENGINE_ONLY = re.compile(r"^(docker|podman)://$")
_OLDEST = datetime.min.replace(tzinfo=timezone.utc)  # a config without a time sorts first


@dataclass(frozen=True)
class Wanted:
    """One image to open: the source as named, and the image's position in it (None: the
    one ``report`` would take)."""

    name: str
    index: int | None = None


def expand(names: list[str], every_image: bool, newest_tags: int | None = None) -> list[Wanted]:
    """The images the names stand for: ``docker://`` alone is every image of the local engine;
    ``registry://HOST/REPO`` with ``newest_tags`` its newest tags (oldest first); with
    ``every_image``, each image of an archive that holds several."""
    out: list[Wanted] = []
    for name in names:
        engine = _ENGINE_ONLY.match(name)
        if engine:
            from explorer.formats.engine import Engine

            for img in reversed(Engine(engine.group(1)).images()):  # oldest first
                out.append(Wanted(f"{name}{img.tags[0] if img.tags else img.id}"))
            continue
        if newest_tags and name.startswith(("registry://", "registry+http://")):
            out.extend(Wanted(n) for n in newest(name, newest_tags))
            continue
        if every_image:
            with open_source(name) as source:
                count = len(source.images)
            out.extend(Wanted(name, i if count > 1 else None) for i in range(count))
        else:
            out.append(Wanted(name))
    return out


def newest(repository: str, count: int) -> list[str]:
    """References to the ``count`` newest tags of a registry repository, oldest first (by the
    time their configs say they were made)."""
    from explorer.formats.registry import list_tags

    base = repository.split("://", 1)
    head, _sep, _tag = base[1].partition("@")
    host_repo = head.rsplit(":", 1)[0] if ":" in head.rsplit("/", 1)[-1] else head
    made = []
    for tag in list_tags(repository):
        ref = f"{base[0]}://{host_repo}:{tag}"
        try:
            with open_source(ref) as source:
                made.append((parse_time(preview_image(source, source.select()).created) or _OLDEST, tag, ref))
        except SourceError:
            continue  # a signature or another artifact under a tag: not a version of the image
    return [ref for _created, _tag, ref in sorted(made)[-count:]]


def _index_one(name: str, index: int | None) -> None:
    """In a worker: read one image's layers and write its index, unless one is there already."""
    with open_source(name) as source:
        ref = source.images[index] if index is not None else source.select()
        if index_cache.load(source, ref) is None:
            index_cache.save(source, load_image(source, ref, cache=False))


def measure(kind: str, wanted: list[Wanted], progress: Callable[[int, int, str], None] | None = None,
            hold: Callable[[Opened], object] = lambda _opened: None) -> dict[str, Any]:
    """The ``updates`` across the wanted images (oldest first), or their ``fleet`` report;
    each image indexed once (``load_many``), its source closed after. ``hold`` is handed each
    opened image, for a caller that ends without waiting for them to be freed."""
    opened = load_many(wanted, progress)
    try:
        for o in opened:
            hold(o)
        return updates(opened) if kind == "updates" else fleet(opened)
    finally:
        for source in {id(o.source): o.source for o in opened}.values():
            source.close()


def load_many(wanted: list[Wanted], progress: Callable[[int, int, str], None] | None = None) -> list[Opened]:
    """Open every wanted image (sources stay open: the caller closes them); indexes are made
    in worker processes first, several at a time, when the index cache is on."""
    todo = list(dict.fromkeys(wanted))  # the same image named twice is read once
    if index_cache.enabled() and len(todo) > 1:
        workers = max(1, min(cores(), len(todo)))
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            jobs = {pool.submit(_index_one, w.name, w.index): w for w in todo}
            done = 0
            for job in concurrent.futures.as_completed(jobs):
                done += 1
                try:
                    job.result()
                except Exception:  # noqa: BLE001 - said again, with its reason, when opened below
                    pass  # (a worker killed for memory breaks the pool: the rest are read below)
                if progress is not None:
                    progress(done, len(todo), jobs[job].name)
    out: list[Opened] = []
    opened: dict[Wanted, Opened] = {}
    try:
        for w in wanted:
            if w not in opened:
                source = open_source(w.name)
                try:
                    ref = source.images[w.index] if w.index is not None else source.select()
                    opened[w] = Opened(w.name, source, load_image(source, ref))
                except BaseException:
                    source.close()
                    raise
            out.append(opened[w])
    except BaseException:
        for o in opened.values():
            o.source.close()
        raise
    return out
