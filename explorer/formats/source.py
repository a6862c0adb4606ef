"""Opening a source: detect its format by content, list its images, load one of them."""

from __future__ import annotations

import errno
import os
import platform as host_platform
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from explorer.formats import compression, docker_archive, oci
from explorer.formats.cache import remove
from explorer.formats.container import Container, FolderContainer, StreamContainer, TarFileContainer
from explorer.formats.engine import Engine, split_container_url, split_url
from explorer.formats.spool import SpooledContainer, keep_stream
from explorer.model.errors import SelectionError, SourceError
from explorer.model.text import counted
from explorer.model.values import ImageRef, Platform, SourceInfo
from explorer.formats.plan import ImagePlan, LayerRef, digest_of, read_config
from explorer.model.progress import Monitor
from explorer.formats.tar_index import BLOCK, looks_like_tar

if TYPE_CHECKING:
    from explorer.formats.container_layer import KeptContainer

DOCKER_ARCHIVE, DOCKER_OCI, OCI_ARCHIVE, OCI_LAYOUT = "docker-archive", "docker-oci", "oci-archive", "oci-layout"
REGISTRY = "registry"
REGISTRY_SCHEMES = ("registry://", "registry+http://")


@dataclass
class Source:
    """An opened source: its format, the images it offers, and the archive to read them from."""

    info: SourceInfo
    images: list[ImageRef]
    container: Container
    notes: list[str] = field(default_factory=list)

    def select(self, image: str | None = None, platform: str | None = None) -> ImageRef:
        """Pick an image by tag, position or config digest (prefix), and by platform."""
        return select_image(self.images, image, platform, self.info.path)

    def close(self) -> None:
        """Release the archive."""
        self.container.close()

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_source(path: str, monitor: Monitor | None = None, keep: bool = False) -> Source:
    """Open an archive file or an OCI layout folder, detecting the format from its content.

    ``keep``: an engine's stream is copied to a local file first (see ``spool``), which the
    window then reads as an archive on disk; else it is indexed in one pass as it arrives.
    """
    monitor = monitor or Monitor(path)
    monitor.source = path
    container_ref = split_container_url(path)
    if container_ref is not None:
        return _open_container_source(path, *container_ref, monitor, keep)
    return open_container(path, _open_container(path, monitor, keep))


def open_container(path: str, container: Container) -> Source:
    """The source an opened container holds, ``path`` naming it (the container is closed on failure)."""
    try:
        fmt, plans, notes = _read_plans(container)
        if path.startswith(REGISTRY_SCHEMES):
            fmt = REGISTRY
        parsed: dict[str, Any] = {}
        for plan in plans:
            _read_config(container, plan, notes, parsed)
        images = [
            ImageRef(i, tuple(p.tags), p.config_digest, p.platform, p.manifest_digest, locator=p)
            for i, p in enumerate(plans)
        ]
        if not images:
            raise SourceError(path, "the archive holds no image", "; ".join(notes) or "its index lists no manifest")
        return Source(SourceInfo(path, fmt, container.compression), images, container, notes)
    except BaseException:
        container.close()
        raise


def _open_container(path: str, monitor: Monitor, keep: bool = False) -> Container:
    """The right container for what the path holds."""
    engine = split_url(path)
    if engine is not None:
        return _engine_container(path, *engine, monitor, keep)
    if path.startswith(REGISTRY_SCHEMES):
        from explorer.formats.registry import RegistryContainer

        return RegistryContainer(path, monitor)
    if os.path.isdir(path):
        return FolderContainer(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a device never ends, a pipe may never start
            raise SourceError(path, "is a device or a pipe, not a file", "give an image archive, an OCI layout folder, or a reference")
        with open(path, "rb") as f:
            head = f.read(BLOCK)
    except FileNotFoundError:
        raise SourceError(path, "no such file or folder", "check the path; it may have been moved or deleted") from None
    except IsADirectoryError:
        raise SourceError(path, "is a folder but cannot be listed", "check its permissions") from None
    except OSError as exc:
        raise SourceError(path, f"cannot read: {exc.strerror}", _what_to_check(exc)) from None
    kind = compression.sniff(head)
    if kind != compression.NONE:
        monitor.begin(f"reading {kind}-compressed archive", total=os.path.getsize(path))
        return StreamContainer(path, kind, monitor)
    if not head:
        raise SourceError(path, "the file is empty", "expected a container image archive (docker save, podman save, OCI)")
    if not looks_like_tar(head):
        raise SourceError(
            path,
            "not a container image archive (neither a tar nor gzip, zstd, xz or bzip2 data)",
            "open a file written by docker save, podman save or an OCI tool",
        )
    monitor.begin("reading archive", total=os.path.getsize(path))
    return TarFileContainer(path, monitor)


def _open_container_source(path: str, engine: str, name: str, monitor: Monitor, keep: bool = False) -> Source:
    """A container: its image's layers and, on top, its writable layer."""
    from explorer.formats.container_layer import ContainerLayerContainer, KeptContainer, check_running_engine, writable_layer

    client = Engine(engine)
    info = check_running_engine(client, name)
    image_id = info["Image"]
    state = (info.get("State") or {}).get("Status", "")
    if keep:
        changes = tuple(client.changes(name))
        save = keep_stream(client.save_stream(image_id), path, f"the {engine} save stream", monitor)
        try:
            export = keep_stream(client.export_stream(name), path, "the container's filesystem", monitor)
        except BaseException:
            remove(save)
            raise
        return open_kept_container(path, KeptContainer(save, export, changes, name, state, image_id), monitor, owner=True)
    inner = _save_stream(client, path, image_id, engine, monitor, keep=False)
    try:
        scan, opener = writable_layer(client, name, monitor)
    except BaseException:
        inner.close()
        raise
    return _container_source(path, ContainerLayerContainer(inner, scan, opener, path), name, state, image_id)


def open_kept_container(path: str, kept: "KeptContainer", monitor: Monitor, owner: bool) -> Source:
    """A container kept in local files (``open_source`` with ``keep``), opened again; its
    writable layer is read from the copy when a load first asks for it."""
    from explorer.formats.container_layer import ContainerLayerContainer, file_opener, layer_of

    try:
        inner = SpooledContainer(kept.save, path, monitor, owner)
    except BaseException:
        if owner:
            remove(kept.export)
        raise
    opener = file_opener(kept.export)
    container = ContainerLayerContainer(inner, lambda m: layer_of(kept.changes, opener, kept.name, m), opener, path,
                                        kept, owner)
    return _container_source(path, container, kept.name, kept.state, kept.image_id)


def _container_source(path: str, container: Container, name: str, state: str, image_id: str) -> Source:
    """The source of a container's image with its writable layer on top (closed on failure)."""
    from explorer.formats.container_layer import add_layer_to_plan

    try:
        fmt, plans, notes = _read_plans(container)
        plans = [p for p in plans if p.config_digest == image_id] or plans[:1]
        for plan in plans:
            _read_config(container, plan, notes)
            add_layer_to_plan(plan, name.lstrip("/"), state)
        images = [ImageRef(i, tuple(p.tags), p.config_digest, p.platform, p.manifest_digest, locator=p) for i, p in enumerate(plans)]
        return Source(SourceInfo(path, "container", compression.NONE), images, container, notes)
    except BaseException:
        container.close()
        raise


def _engine_container(path: str, engine: str, ref: str, monitor: Monitor, keep: bool = False) -> Container:
    """A ``docker save`` stream from a local engine, indexed as it arrives."""
    client = Engine(engine)
    client.ping()
    info = client.inspect(ref)  # a clear message when the image is not there
    monitor.begin(f"reading {ref} from {engine}")
    return _save_stream(client, path, ref, engine, monitor, keep, info.get("Size"))


def _save_stream(client: Engine, path: str, ref: str, engine: str, monitor: Monitor, keep: bool, size: Any = 0) -> Container:
    """The engine's ``save`` of ``ref``: kept in a local file, or indexed as it streams past."""
    opener = client.save_stream(ref)
    if keep:
        expected = size if isinstance(size, int) and size > 0 else 0
        kept = keep_stream(opener, path, f"the {engine} save stream", monitor, expected)
        return SpooledContainer(kept, path, monitor)
    return StreamContainer(path, compression.NONE, monitor, opener=opener, what=f"{engine} save stream")


def _read_plans(container: Container) -> tuple[str, list[ImagePlan], list[str]]:
    """Decide the layout from which files exist, and read its image plans."""
    has_index = container.has("index.json")
    has_manifest = container.has("manifest.json")
    folder = isinstance(container, FolderContainer)
    if has_manifest and has_index:
        walk = oci.read_plans(container)
        plans = docker_archive.read_plans(container)
        _merge_oci(plans, walk.plans)
        return (OCI_LAYOUT if folder else DOCKER_OCI), plans, walk.notes
    if has_index:
        walk = oci.read_plans(container)
        return (OCI_LAYOUT if folder else OCI_ARCHIVE), walk.plans, walk.notes
    if has_manifest:
        return DOCKER_ARCHIVE, docker_archive.read_plans(container), []
    what = "folder" if folder else "tar archive"
    raise SourceError(
        container.path,
        f"a {what}, but not a container image: it has neither manifest.json nor index.json",
        "open a file written by docker save, podman save or an OCI tool",
    )


def _read_config(container: Container, plan: ImagePlan, notes: list[str], parsed: dict[str, Any] | None = None) -> None:
    """Read (and verify) an image's config early: the platform and created time list it. Plans
    that name one config share one parsed copy (``parsed``, by digest)."""
    if parsed is not None and plan.config_digest and plan.config_digest in parsed:
        plan.config = parsed[plan.config_digest]
    try:
        config = read_config(container, plan)
    except SourceError as exc:
        notes.append(exc.reason)
        return
    if parsed is not None and plan.config_digest:
        parsed[plan.config_digest] = config
    if not plan.platform and config.get("os") and config.get("architecture"):
        plan.platform = f"{config['os']}/{config['architecture']}"
        if config.get("variant"):
            plan.platform += f"/{config['variant']}"
    if not plan.config_digest:
        plan.config_digest = digest_of(container.read_document(plan.config_name))


def _merge_oci(plans: list[ImagePlan], oci_plans: list[ImagePlan]) -> None:
    """Give docker-oci images the descriptors (media types, digests) their OCI manifest has."""
    by_config = {p.config_digest: p for p in oci_plans}
    for plan in plans:
        match = by_config.get(plan.config_digest)
        if match is None:
            continue
        plan.manifest_digest = match.manifest_digest
        plan.platform = plan.platform or match.platform
        if [l.blob for l in match.layers] == [l.blob for l in plan.layers]:
            plan.layers = [LayerRef(l.blob, l.digest, l.media_type, l.size) for l in match.layers]
        else:
            plan.warnings.append(
                "manifest.json and the OCI manifest list different layers; manifest.json is used"
            )


def host() -> str:
    """The running machine's platform, spelled as in image configs."""
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
            "armv7l": "arm", "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x"}
    return f"linux/{arch.get(host_platform.machine().lower(), host_platform.machine().lower())}"


def select_image(images: list[ImageRef], image: str | None, platform: str | None, source: str) -> ImageRef:
    """The image a user asked for (see ``report --image`` and ``--platform``)."""
    found = list(images)
    if image is not None:
        found = _match_image(found, image, source)
    if platform is not None:
        try:
            wanted = Platform.parse(platform)
        except ValueError as exc:
            raise SelectionError(str(exc)) from None
        found = [i for i in found if _platform_matches(i.platform, wanted)]
        if not found:
            offered = ", ".join(sorted({i.platform or "unknown" for i in images}))
            raise SelectionError(f"{source}: no image for platform {platform} (offered: {offered})")
    # The platforms of one index (same names): this machine's first. Different images: the first.
    if platform is None and len({i.platform for i in found}) > 1 and len({i.tags for i in found}) == 1:
        mine = [i for i in found if _platform_matches(i.platform, Platform.parse(host()))]
        found = mine or found
    return found[0]


def _platform_matches(text: str, wanted: Platform) -> bool:
    """Whether an image's ``os/arch[/variant]`` satisfies the requested platform."""
    try:
        have = Platform.parse(text)
    except ValueError:
        return False
    if (have.os, have.architecture) != (wanted.os, wanted.architecture):
        return False
    return not wanted.variant or have.variant == wanted.variant


def _what_to_check(exc: OSError) -> str:
    """What to look at when a source cannot be opened, by the system's reason."""
    if isinstance(exc, PermissionError):
        return "check the file's permissions"
    if exc.errno in (errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP):
        return "check the path"
    if exc.errno == errno.EIO:
        return "the disk reported an error; check it"
    return ""


DIGITS_AS_DIGEST = 4  # a number this long, past the last position, is a config digest's prefix (no position typo)


def _match_image(images: list[ImageRef], ref: str, source: str) -> list[ImageRef]:
    """Images matching a tag, a position, or a config digest (or a unique prefix of it)."""
    position = ref.isascii() and ref.isdigit()
    if position and int(ref) < len(images):
        return [images[int(ref)]]
    tagged = [i for i in images if ref in i.tags or any(t.endswith("/" + ref) for t in i.tags)]
    if tagged:
        return tagged
    if position and len(ref) < DIGITS_AS_DIGEST:  # a position past the end ("5" would be any config's sha256:5…)
        count = len(images)
        held = f"{counted(count, 'image')} ({'position 0' if count == 1 else f'positions 0 to {count - 1}'})"
        raise SelectionError(f"{source}: no image at position {ref}: it holds {held}; to give a config digest by its "
                             f"first digits, give at least {DIGITS_AS_DIGEST} of them, or write sha256:{ref}")
    prefix = ref if ref.startswith("sha256:") else "sha256:" + ref
    by_digest = [i for i in images if i.config_digest.startswith(prefix)]
    configs = {i.config_digest for i in by_digest}
    if len(configs) > 1:
        raise SelectionError(f"{source}: {ref} matches {len(configs)} images; give more of the digest")
    if by_digest:
        return by_digest
    tags = ", ".join(dict.fromkeys(t for i in images for t in i.tags)) or "none"  # (the platforms of one index share theirs)
    raise SelectionError(f"{source}: no image {ref!r} (tags: {tags}; or give a position 0..{len(images) - 1} or a config digest)")
