"""Loading one image of a source: config, history, layer indexes and the layered tree."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from explorer.formats import compression
from explorer.image import scan_pool
from explorer.image.packages import find_packages, reader_for
from explorer.formats.container import LayerScan
from explorer.formats.tar_index import TarMember
from explorer.model.errors import SourceError
from explorer.model.packages import PackageReport
from explorer.model.values import Entry, HistoryEntry, ImageRef, LayerInfo, SourceInfo
from explorer.image.parallel import LayersElsewhere, spare_core
from explorer.formats.docker_archive import name_digest
from explorer.formats.plan import ImagePlan, LayerRef, read_config
from explorer.model.progress import Monitor
from explorer.formats.source import REGISTRY, Source
from explorer.tree.advice import Advice, Secret, advise, find_secrets
from explorer.tree.efficiency import DiveEfficiency, Efficiency
from explorer.tree.waste import Waste, compute_waste
from explorer.tree.index import LayerTree, TooManyPaths, apply_layer
from explorer.tree.views import MERGED, TreeView

DOCKER_LAYER_TYPES = {
    compression.NONE: "application/vnd.docker.image.rootfs.diff.tar",
    compression.GZIP: "application/vnd.docker.image.rootfs.diff.tar.gzip",
    compression.ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
}


@dataclass(frozen=True)
class Image:
    """One loaded image, a value: what it is, its layers and history, its layered filesystem
    and what was worked out from them. Changing anything makes a new one (``replace``).

    Its sequences are tuples (lists given are turned into tuples). The tree and the scans stay
    objects of their own: a mapped tree decodes its folders as they are looked at, and a scan
    keeps the resume points that reading a compressed layer records.
    """

    source: SourceInfo
    ref: ImageRef
    tags: tuple[str, ...]
    config_digest: str
    platform: str
    created: str
    config: dict[str, Any]
    layers: tuple[LayerInfo, ...]
    history: tuple[HistoryEntry, ...]
    tree: LayerTree
    warnings: tuple[str, ...] = ()
    scans: tuple[LayerScan, ...] = ()  # per layer: compression, resume points
    blobs: tuple[str, ...] = ()  # per layer: the blob's name in the source
    efficiency: Efficiency | None = None  # dive-compatible numbers
    waste: Waste | None = None  # this project's accounting: every wasted byte with its reason
    advice: tuple[Advice, ...] = ()
    secrets: tuple[Secret, ...] = ()
    file_count: int = -1  # entries of the final filesystem, once counted
    file_bytes: int = -1  # bytes of its regular files, once counted
    first_view: Any = None  # a prepared view for the first screen (by the window's loader, or the index cache)
    from_cache: bool = False  # mapped from an index file (the cache's, or a loading process's) rather than built here
    verification: tuple[dict[str, Any], ...] | None = None  # per layer, when --verify read every blob
    pending: bool = False  # layers and history only: the files are still being read
    analysed: bool = True  # False: the files are here, their accounting (waste, advice, packages...) still being worked out
    unaccounted: str = ""  # why that accounting never came (the load stopped once the files were shown)
    packages: PackageReport | None = None  # what the package managers' databases say, layer by layer

    def __post_init__(self) -> None:
        for name in _SEQUENCES:
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))

    def replace(self, **changes: Any) -> "Image":
        """A copy with these fields changed."""
        return dataclasses.replace(self, **changes)

    def accounted(self, other: "Image") -> "Image":
        """This image (its files shown already) with what ``other``, the same image, had
        worked out from them: the waste, advice, secrets, packages, dive's numbers, warnings."""
        return self.replace(**{name: getattr(other, name) for name in _ACCOUNTING}, analysed=True)


_ACCOUNTING = ("efficiency", "waste", "advice", "secrets", "packages", "warnings")  # what follows the files
_SEQUENCES = ("tags", "layers", "history", "warnings", "scans", "blobs", "advice", "secrets", "verification")


def load_image(source: Source, ref: ImageRef, monitor: Monitor | None = None, parallel: bool | str = False,
               cache: bool = True, on_tree: Callable[[LayerTree], Any] | None = None,
               on_files: Callable[["Image"], Any] | None = None) -> Image:
    """Read the config and every layer of ``ref`` and build its layered tree.

    ``parallel`` computes dive's numbers in another process: True forks one (for a process
    with no thread but its main one: the command line, the window's loading process),
    ``"process"`` starts a new interpreter when the image is big enough to pay for it (for a
    load in a thread of the window: a process with threads must not fork). With ``cache``,
    an index saved by an earlier load of the same, unchanged source is used instead (see
    ``index_cache``). ``on_tree`` is called with the tree as soon as every layer is applied,
    before the accounting that follows (not for a cached index); ``on_files`` then, with the
    image as it is before that accounting (``analysed`` False: no waste, advice, secrets,
    packages or dive's numbers yet), for a caller that shows the files meanwhile.
    """
    if cache:
        from explorer.image import index_cache

        cached = index_cache.load(source, ref)
        if cached is not None:
            return cached
    try:
        with collector_off():
            return _load(source, ref, monitor, parallel, on_tree, on_files)
    except MemoryError:  # what was built is gone by now: there is room to say so
        raise SourceError(source.info.path, "not enough memory to read this image",
                          "close other programs, or use a machine with more memory") from None


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    """The cycle collector off for the block. Loading makes millions of small acyclic
    objects: the collector's passes over them would find nothing, and they are what made a
    load slow (a full pass at a million entries takes over a second). A worker process, or a
    command, keeps it off for as long as it holds them; the window holds none of them (it
    maps the index they are written to)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def prepare_first_view(image: Image) -> Image:
    """The image with the merged view of its final filesystem, folder sizes computed, and the
    file counts that come with them (``file_count``, ``file_bytes``); itself when it has them."""
    if image.first_view is not None and image.file_count >= 0 and image.file_bytes >= 0:
        return image
    view = TreeView(image.tree, None, MERGED)
    view.totals()  # counts the entries on the way
    return image.replace(first_view=view, file_count=view.entries, file_bytes=view.file_bytes)


def _load(source: Source, ref: ImageRef, monitor: Monitor | None, parallel: bool | str,
          on_tree: Callable[[LayerTree], Any] | None, on_files: Callable[[Image], Any] | None = None) -> Image:
    """``load_image`` without the collector's bookkeeping."""
    monitor = monitor or Monitor(source.info.path)
    plan: ImagePlan = ref.locator
    container = source.container
    path = source.info.path
    config = read_config(container, plan)
    warnings = list(plan.warnings)
    diff_ids = _diff_ids(config)
    if len(diff_ids) != len(plan.layers):
        warnings.append(
            f"the config lists {len(diff_ids)} diff_ids but the manifest {len(plan.layers)} layers"
        )
    tree = LayerTree(len(plan.layers))
    blobs = [l.blob for l in plan.layers]
    if source.info.format != REGISTRY:  # (a registry's blobs are bound to their size as they download)
        _check_blob_sizes(container, plan, path)
    # Big compressed layers: inflated on every core (each once) and dive's numbers computed
    # here from the same scans; else a child reads the layers on the second core, handing
    # each over as it goes, and computes those numbers.
    pooled = bool(parallel) and scan_pool.worth_it(source, blobs)
    child = None if pooled else _layers_child(parallel, source, blobs)
    dive = None if child is not None else DiveEfficiency()
    scans: list[LayerScan] = []
    reader = _ContentReader(source, plan, scans)
    if pooled:
        ahead: Iterator[LayerScan] | None = scan_pool.scans(source, list(dict.fromkeys(blobs)), monitor)  # each blob once
    else:
        ahead = child.scans(monitor) if child is not None else None
    try:
        _read_layers(container, plan, diff_ids, tree, dive, reader, scans, warnings, monitor, path, ahead)
        tree.live.clear()
        if on_tree is not None:
            on_tree(tree)
        history = _history(config, len(plan.layers), warnings)
        layers = _layers(plan, scans, diff_ids, history, tree)
        image = Image(source=source.info, ref=ref, tags=list(plan.tags), config_digest=ref.config_digest,
                      platform=plan.platform, created=str(config.get("created") or ""), config=config,
                      layers=layers, history=history, tree=tree, warnings=[*warnings, *tree.warnings],
                      scans=scans, blobs=blobs, analysed=False)
        if on_files is not None:
            on_files(image)
        monitor.begin("working out the waste, the advice and the packages")
        digest = lambda e: reader.digest(e, tree.data_layer(e))  # noqa: E731
        waste = compute_waste(tree, digest)
        advice = advise(tree, layers, history, waste)
        secrets = find_secrets(tree, waste, lambda e: reader.head(e, tree.data_layer(e)))
        try:
            packages = find_packages(tree, reader_for(container, blobs, scans, tree.data_layer))
        except Exception as exc:  # noqa: BLE001 - the packages are extra: the image still opens
            packages = None
            warnings.append(f"the package databases could not be read ({type(exc).__name__}: {exc})")
        for scan in scans:
            scan.kept = None  # read: no need to hold them while the image is shown
        warnings.extend(tree.warnings)
        warnings.extend(packages.warnings if packages is not None else ())
        image = image.replace(warnings=warnings, waste=waste, advice=advice, secrets=secrets, packages=packages,
                              analysed=True)
        efficiency = child.result(monitor) if child is not None else dive.result()  # type: ignore[union-attr]
    except TooManyPaths as exc:  # (the tree's or dive's model's, here or in a child: each names its layer)
        if child is not None:
            child.cancel()
        raise SourceError(path, str(exc), "raise LAYER_EXPLORER_MAX_PATHS_MB if the image is genuine") from None
    except BaseException:
        if child is not None:
            child.cancel()  # whatever stopped the load: no process left behind
        raise
    finally:
        if ahead is not None:
            ahead.close()  # its workers stop with it
    return image.replace(efficiency=efficiency)


def _check_blob_sizes(container, plan: ImagePlan, path: str) -> None:
    """Refuse a layer blob whose size is not the one its descriptor gives, before reading any:
    a blob followed by a 64 GB sparse hole was otherwise read to its end."""
    for i, layer in enumerate(plan.layers):
        if layer.size is None:
            continue  # a docker archive's layers come without a size
        actual = container.size(layer.blob)
        if actual != layer.size:
            raise SourceError(path, f"size mismatch for layer {i}: blob {layer.blob} has {actual:,} bytes but its "
                              f"descriptor says {layer.size:,}", "the archive is corrupt or was modified")


def _layers_child(parallel: bool | str, source: Source, blobs: list[str]) -> LayersElsewhere | None:
    """A process reading the layers on the other core, when that pays (see ``parallel``)."""
    if not parallel or not spare_core():
        return None  # one core: a second process would only take turns with this one
    if not hasattr(os, "fork"):
        parallel = "process"  # (Windows) a new interpreter, as for a process with threads
    if parallel == "process":
        path = scan_pool.local_path(source)
        worth = LayersElsewhere.worth_it(source.container, blobs, path)
        return LayersElsewhere(source.container, blobs, path, max_image_entries()) if worth else None
    if source.info.format == REGISTRY:
        return None  # its blobs are downloaded as they are read: a child would fetch them again
    return LayersElsewhere(source.container, blobs, limit=max_image_entries(), dive_apart=True)


BYTES_PER_ENTRY = 700  # what one indexed entry costs, measured on the benchmarks (with headroom)


def available_memory() -> int | None:
    """Bytes the system can still give (MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def max_image_entries() -> int:
    """Entries one image may have in all its layers: ``LAYER_EXPLORER_MAX_IMAGE_ENTRIES``, else
    1,500,000 (about 1.5 GB of index; the biggest real images hold a few hundred thousand)."""
    try:
        return max(1, int(os.environ.get("LAYER_EXPLORER_MAX_IMAGE_ENTRIES", "1500000")))
    except ValueError:
        return 1_500_000


def _check_entries(path: str, entries: int) -> None:
    """Refuse an image whose layers hold more entries than the budget, naming the setting."""
    limit = max_image_entries()
    if entries > limit:
        raise SourceError(path, f"its layers hold {entries:,}+ entries, more than the {limit:,} allowed",
                          "raise LAYER_EXPLORER_MAX_IMAGE_ENTRIES if the image is genuine")


def _check_memory(path: str, entries: int, start: int | None) -> None:
    """Refuse, with a message, an index that would not fit, rather than be killed for it."""
    if start is None:
        return
    need = entries * BYTES_PER_ENTRY
    if need > start * 0.8:
        raise SourceError(path, f"indexing its {entries:,}+ entries needs about {need / 1e9:.1f} GB of memory, "
                          f"more than the {start / 1e9:.1f} GB available", "close other programs, or use a bigger machine")


def _read_layers(container, plan: ImagePlan, diff_ids: list[str], tree: LayerTree, dive: DiveEfficiency | None,
                 reader: "_ContentReader", scans: list[LayerScan], warnings: list[str], monitor: Monitor, path: str,
                 ahead: Iterator[LayerScan] | None = None) -> None:
    """Scan each layer (or take it from ``ahead``, scanned elsewhere), check its digests, and
    apply it to the tree."""
    free = available_memory()
    entries = 0
    uses = Counter(l.blob for l in plan.layers)
    again: dict[str, LayerScan] = {}  # a blob the manifest lists again is read once, kept until its last listing
    for i, layer in enumerate(plan.layers):
        monitor.begin(f"reading layer {i + 1} of {len(plan.layers)}", i, len(plan.layers), layer.size or 0)
        scan = again.pop(layer.blob, None)
        if scan is None:
            scan = next(ahead) if ahead is not None else container.scan_layer(layer.blob, monitor)
        uses[layer.blob] -= 1
        if uses[layer.blob]:
            again[layer.blob] = scan
        entries += len(scan.members)
        _check_entries(path, entries)
        _check_memory(path, entries, free)
        _verify(path, i, layer, diff_ids[i] if i < len(diff_ids) else "", scan, warnings)
        warnings.extend(scan.warnings)
        # A container may hand out the same scan again (a blob used twice, another image
        # of the source): keep it intact, and keep only the counts here.
        summary = dataclasses.replace(scan, members=[])
        scans.append(summary)
        monitor.begin(f"applying layer {i + 1} of {len(plan.layers)}", i, len(plan.layers))
        members = scan.members
        if dive is None and sys.getrefcount(scan) == 2 and sys.getrefcount(members) == 3:
            # held here alone (these names and the calls' arguments): emptied as it is applied, so
            # the entries made from it take the room its members leave (they were a fifth of
            # the peak, and what they left was not given back to the system)
            members = _consumed(members)
        try:
            apply_layer(tree, i, members, reader.digest)
        except TooManyPaths as exc:
            raise TooManyPaths(f"layer {i}: {exc}") from None
        if dive is not None:
            dive.add_layer(scan.members)  # (its own refusal names its layer: whiteouts imply folders there too)
        members = scan.members
        del scan
        if sys.getrefcount(members) == 2:  # held by this name alone (and the call's argument)
            # Freed a slice at a time: half a million at once hold the interpreter lock, and
            # with it the window, for 50 ms.
            while members:
                del members[-16384:]


def _consumed(members: list[TarMember]) -> Iterator[TarMember]:
    """The members of a list, which is emptied behind them a block at a time."""
    while members:
        block = members[:_BLOCK]
        del members[:_BLOCK]
        yield from block


_BLOCK = 16384


def _diff_ids(config: dict[str, Any]) -> list[str]:
    """``rootfs.diff_ids`` of a config, as strings."""
    rootfs = config.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    return [str(d) for d in ids] if isinstance(ids, list) else []


def _verify(path: str, index: int, layer: LayerRef, diff_id: str, scan: LayerScan, warnings: list[str]) -> None:
    """Check the digests known without extra reading; a blob that is not what it claims fails.

    A plain layer's digest is its diff_id: when the manifest (or the blob's name) and the
    config disagree about it, say so (layers listed in another order, moby #47150).
    """
    digest = layer.digest or name_digest(layer.blob)
    if scan.blob_digest is not None and digest.startswith("sha256:") and scan.blob_digest != digest and layer.digest:
        raise SourceError(
            path,
            f"digest mismatch for layer {index}: expected {digest}, found {scan.blob_digest}",
            "the archive is corrupt or was modified",
        )
    if scan.compression != compression.NONE or not diff_id:
        return
    plain = scan.blob_digest or digest  # computed when streamed, else what the name says
    if plain and plain.startswith("sha256:") and plain != diff_id:
        warnings.append(
            f"layer {index}: the config's diff_id {diff_id[:19]}… does not match the layer stored "
            f"there ({plain[:19]}…); the manifest and the config disagree about the layers"
        )


def _history(config: dict[str, Any], layer_count: int, warnings: list[str]) -> list[HistoryEntry]:
    """History entries mapped to layers in order; no mapping is invented when counts disagree."""
    raw = config.get("history")
    items = [h for h in raw if isinstance(h, dict)] if isinstance(raw, list) else []
    non_empty = sum(1 for h in items if h.get("empty_layer") is not True)
    mapped = non_empty == layer_count
    if items and not mapped:
        warnings.append(
            f"history has {non_empty} steps that made layers but the image has {layer_count} layers; "
            "history is not tied to layers"
        )
    out, layer = [], 0
    for i, h in enumerate(items):
        empty = h.get("empty_layer") is True
        out.append(
            HistoryEntry(
                index=i,
                created=str(h.get("created") or ""),
                created_by=str(h.get("created_by") or ""),
                author=str(h.get("author") or ""),
                comment=str(h.get("comment") or ""),
                empty_layer=empty,
                layer=layer if (mapped and not empty) else None,
            )
        )
        if not empty:
            layer += 1
    return out



def _layers(plan: ImagePlan, scans: list[LayerScan], diff_ids: list[str], history: list[HistoryEntry], tree: LayerTree) -> list[LayerInfo]:
    """The per-layer summary."""
    by_layer = {h.layer: h for h in history if h.layer is not None}
    out = []
    for i, (ref, scan) in enumerate(zip(plan.layers, scans)):
        changes = tree.changes[i]
        counts = {c: changes.count(c) for c in ("added", "modified", "removed")}
        diff_id = diff_ids[i] if i < len(diff_ids) else ""
        if ref.digest:
            digest = ref.digest
        elif scan.compression != compression.NONE and scan.blob_digest:
            digest = scan.blob_digest
        else:
            digest = diff_id
        h = by_layer.get(i)
        stats = tree.stats[i]
        out.append(
            LayerInfo(
                index=i,
                diff_id=diff_id,
                digest=digest,
                media_type=ref.media_type or DOCKER_LAYER_TYPES.get(scan.compression, ""),
                compression=scan.compression,
                blob_size=scan.blob_size,
                size=stats.size,
                entries=stats.entries,
                history=h.index if h else None,
                created_by=h.created_by if h else "",
                **counts,
            )
        )
    return out


class _ContentReader:
    """Reads file bytes from uncompressed layer blobs, for the few content comparisons needed."""

    def __init__(self, source: Source, plan: ImagePlan, scans: list[LayerScan]) -> None:
        self.source = source
        self.plan = plan
        self.scans = scans  # the loader's list, filled as layers are read
        self.digests: dict[tuple[int, int], str] = {}  # (data layer, offset) -> sha256

    def head(self, entry: Entry, data_layer: int, size: int = 4096) -> bytes:
        """The bytes to look for keys and tokens in: read from plain layers; for layers read as
        a stream, what the scan noted on the way (reading them again would mean decompressing)."""
        if entry.offset < 0 or data_layer >= len(self.scans):
            return b""
        scan = self.scans[data_layer]
        if scan.flagged is not None:
            return scan.flagged.get(entry.offset, b"")
        blob = self.plan.layers[data_layer].blob
        return self.source.container.read_layer(blob, scan, entry.offset, min(size, entry.size))

    def digest(self, entry: Entry, data_layer: int) -> str | None:
        """sha256 of an entry's content, or None when it cannot be read; each stored copy is
        hashed once (the layer rules and the waste accounting ask about the same files)."""
        if entry.digest is not None:
            return entry.digest  # hashed as the layer streamed by: reading it again would decompress
        if entry.offset < 0 or data_layer >= len(self.scans):
            return None
        key = (data_layer, entry.offset)
        if key not in self.digests:
            blob = self.plan.layers[data_layer].blob
            self.digests[key] = self.source.container.layer_digest(blob, self.scans[data_layer], entry.offset, entry.size)
        return self.digests[key]


def preview_image(source: Source, ref: ImageRef) -> Image:
    """What is known before any layer is read: layers from the manifest, history from the
    config, and an empty tree (shown while a registry's blobs download)."""
    plan: ImagePlan = ref.locator
    config = read_config(source.container, plan)
    warnings: list[str] = []
    diff_ids = _diff_ids(config)
    history = _history(config, len(plan.layers), warnings)
    by_layer = {h.layer: h for h in history if h.layer is not None}
    layers = []
    for i, layer in enumerate(plan.layers):
        h = by_layer.get(i)
        layers.append(LayerInfo(index=i, diff_id=diff_ids[i] if i < len(diff_ids) else "", digest=layer.digest,
                                media_type=layer.media_type, compression="", blob_size=layer.size or 0, size=0,
                                entries=0, history=h.index if h else None, created_by=h.created_by if h else ""))
    return Image(source=source.info, ref=ref, tags=list(plan.tags), config_digest=ref.config_digest,
                 platform=plan.platform, created=str(config.get("created") or ""), config=config, layers=layers,
                 history=history, tree=LayerTree(len(plan.layers)), warnings=warnings, file_count=0, file_bytes=0, pending=True)


def blank_image() -> Image:
    """An image of nothing: no source, no layers, no files."""
    return Image(source=SourceInfo("", "", ""), ref=ImageRef(0, (), "", ""), tags=[], config_digest="", platform="",
                 created="", config={}, layers=[], history=[], tree=LayerTree(0), warnings=[], file_count=0,
                 file_bytes=0, pending=True)
