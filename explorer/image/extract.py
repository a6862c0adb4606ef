"""Extracting files, folders, whole filesystems and raw layer tars, safely.

Nothing is written outside the target folder: paths come from the normalised tree (no
``..``, no absolute names), every parent is checked on disk to be a real directory (so a
symlink written earlier is never followed), files are created with O_NOFOLLOW|O_EXCL (an
existing file is never overwritten), device files and setuid/setgid bits are kept only when
asked, and everything left out is listed with the reason.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Iterator

from explorer.formats import compression
from explorer.image.content import ContentError, open_entry
from explorer.model.errors import ExplorerError
from explorer.image.loader import Image
from explorer.model.values import BLOCK, CHAR, DIR, FIFO, FILE, HARDLINK, SYMLINK, Entry
from explorer.model.progress import Monitor
from explorer.model.text import counted
from explorer.formats.source import Source
from explorer.tree import names


class ExtractError(ExplorerError):
    """The extraction cannot go on (the target cannot be written, the disk is full, ...)."""


@dataclass
class ExtractResult:
    """What an extraction did."""

    target: str
    written: int = 0
    bytes: int = 0
    existing: int = 0  # folders that were there already (used as they are: their modes and times untouched)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    changed: list[tuple[str, str]] = field(default_factory=list)  # written, but not as stored: (path, how)

    def summary(self) -> str:
        """One line: what was written where, and what was not."""
        text = f"extracted {counted(self.written, 'entry', 'entries')} ({self.bytes:,} bytes) into {self.target}"
        if self.existing:
            text += f"; {counted(self.existing, 'folder')} already there"
        if self.skipped:
            text += f"; {len(self.skipped):,} skipped"
        return text


@dataclass
class ExtractOptions:
    """What to keep that is unsafe by default."""

    devices: bool = False  # create char/block devices (needs root)
    special_bits: bool = False  # keep setuid/setgid bits
    owners: bool = False  # give entries their uid:gid (needs root)


def select_entries(image: Image, path: str = "/", layer: int | None = None, only_layer: bool = False) -> Iterator[Entry]:
    """Entries below (and including) ``path``: merged at ``layer``, or as that layer stored them."""
    tree = image.tree
    if only_layer:
        if layer is None:
            raise ExtractError("--only-layer needs --layer")
        prefix = "" if path == "/" else path
        for p, versions in sorted(tree.versions.items()):
            if p != path and not p.startswith(prefix + "/"):
                continue
            for v in tree.history(p):
                if v.layer == layer and v.entry is not None and v.entry.layer == layer and v.entry.offset != -1:
                    yield tree.effective(v.entry, layer)
        return
    start = tree.entry_at(path, layer) if path != "/" else None
    if path != "/" and start is None:
        raise ExtractError(f"{path} does not exist at {'the final image' if layer is None else f'layer {layer}'}")
    # hard links as the filesystem at that layer has them: a name whose file was since
    # rewritten under its other name is a file of its own, never linked to the new one
    effective = tree.effective
    if start is not None:
        yield effective(start, layer) if start.type == HARDLINK else start
    stack = [path] if start is None or start.type == DIR else []
    while stack:  # depth first, in name order: a folder always comes before what it holds
        top = stack.pop()
        below = []
        for name in sorted(tree.kids.get(top, ())):
            child = names.join(top, name)
            entry = tree.entry_at(child, layer)
            if entry is not None:
                yield effective(entry, layer) if entry.type == HARDLINK else entry
                if entry.type == DIR:
                    below.append(child)
        stack.extend(reversed(below))


def extract(source: Source, image: Image, entries: Iterator[Entry], target: str, base: str = "/",
            options: ExtractOptions | None = None, monitor: Monitor | None = None) -> ExtractResult:
    """Write entries below ``target``, named relative to ``base`` (``/etc`` -> ``target/etc``)."""
    options = options or ExtractOptions()
    monitor = monitor or Monitor(source.info.path)
    try:
        os.makedirs(target, exist_ok=True)
    except OSError as exc:
        raise ExtractError(f"{target}: cannot create the folder ({exc.strerror})") from None
    writer = _Writer(source, image, os.path.realpath(target), options, monitor)
    parent = names.split(base)[0] if base != "/" else "/"
    monitor.begin("extracting")
    later: list[tuple[Entry, str]] = []
    try:
        for entry in entries:
            monitor.tick(writer.result.bytes)  # (a cancel stops here too, between empty files)
            rel = entry.path[len(parent):].lstrip("/") if parent != "/" else entry.path.lstrip("/")
            if entry.type == HARDLINK and entry.target not in writer.written_paths:
                later.append((entry, rel))  # its target may come later: link then, not copy
                continue
            writer.write(entry, rel)
        for entry, rel in later:
            writer.write(entry, rel)
    finally:
        writer.finish_dirs()
    return writer.result


# What Linux filesystems hold: a name of 255 bytes, a path of 4096 (with its final NUL).
NAME_MAX, PATH_MAX = 255, 4096


class _Writer:
    """Writes one entry at a time, checking every step."""

    def __init__(self, source: Source, image: Image, root: str, options: ExtractOptions, monitor: Monitor) -> None:
        self.source, self.image, self.root = source, image, root
        self.options, self.monitor = options, monitor
        self.result = ExtractResult(root)
        self.safe_dirs: set[str] = {root}
        self.made_dirs: set[str] = set()  # the folders this extraction made (a folder entry there is its own)
        self.written_paths: dict[str, str] = {}  # image path -> file on disk (for hardlinks)
        self.dir_modes: list[tuple[str, Entry]] = []

    def skip(self, path: str, reason: str) -> None:
        self.result.skipped.append((path, reason))

    def write(self, entry: Entry, rel: str) -> None:
        parts = [p for p in rel.split("/") if p]
        if any(p in (".", "..") or "\0" in p for p in parts):
            self.skip(entry.path, "unsafe name")  # cannot come from the tree; checked all the same
            return
        if not parts:
            return
        out = os.path.join(self.root, *parts)
        longest = max(len(p.encode("utf-8", "surrogateescape")) for p in parts)
        if longest > NAME_MAX or len(out.encode("utf-8", "surrogateescape")) >= PATH_MAX:
            self.skip(entry.path, f"its name is longer than this filesystem allows ({NAME_MAX} bytes a name, "
                                  f"{PATH_MAX} a path)")
            return
        try:
            if not self._parent_ok(os.path.dirname(out)):
                self.skip(entry.path, "a folder on its way is not a real folder on disk (a symlink?)")
                return
            self._write(entry, out)
        except FileExistsError:
            self.skip(entry.path, "already exists in the target folder; not overwritten")
        except ContentError as exc:
            self.skip(entry.path, str(exc))
        except OSError as exc:
            if exc.errno in (28, 122):  # ENOSPC, EDQUOT: nothing more can be written
                raise ExtractError(f"{out}: {exc.strerror}; extraction stopped") from None
            self.skip(entry.path, f"cannot write: {exc.strerror}")

    def _parent_ok(self, folder: str) -> bool:
        """Create the folders leading to ``folder``, refusing to pass through anything else.

        Iterative: an image may nest thousands of folders.
        """
        pending = []
        while folder not in self.safe_dirs:
            if not folder.startswith(self.root + os.sep):
                return False
            pending.append(folder)
            folder = os.path.dirname(folder)
        for folder in reversed(pending):
            try:
                st = os.lstat(folder)
            except FileNotFoundError:
                os.mkdir(folder, 0o755)
                self.made_dirs.add(folder)
                st = os.lstat(folder)
            if not stat.S_ISDIR(st.st_mode):
                return False
            self.safe_dirs.add(folder)
        return True

    def _write(self, e: Entry, out: str) -> None:
        mode = e.mode & (0o7777 if self.options.special_bits else 0o1777)
        if e.type == DIR:
            try:
                os.mkdir(out, 0o700)
                self.made_dirs.add(out)
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(out).st_mode):
                    raise
                if out not in self.made_dirs:  # (an earlier extraction's, or the user's: left as it is)
                    self.safe_dirs.add(out)
                    self.result.existing += 1
                    return
            self.safe_dirs.add(out)
            self.dir_modes.append((out, e))  # modes last: a read-only folder would refuse its children
        elif e.type == SYMLINK:
            target = e.target or ""
            if "\0" in target or len(target.encode("utf-8", "surrogateescape")) >= PATH_MAX:
                self.skip(e.path, f"a symlink whose target this filesystem cannot hold (a NUL byte, or past {PATH_MAX} bytes)")
                return
            os.symlink(target, out)  # written, never followed
        elif e.type == HARDLINK and self.image.tree.inode(e) is None and e.offset >= 0:
            self.skip(e.path, f"a hard link to {e.target}, which was not a file when it was made")
            return
        elif e.type == HARDLINK and e.target in self.written_paths:
            os.link(self.written_paths[e.target], out, follow_symlinks=False)
            self.written_paths[e.path] = out
            self.result.written += 1
            return
        elif e.type in (FILE, HARDLINK):
            self._write_file(e, out, mode)
        elif e.type == FIFO:
            os.mkfifo(out, mode & 0o777)
        elif e.type in (CHAR, BLOCK):
            if not self.options.devices:
                self.skip(e.path, "device file (ask to create devices)")
                return
            os.mknod(out, mode | (stat.S_IFCHR if e.type == CHAR else stat.S_IFBLK))
        else:
            self.skip(e.path, f"unknown type {e.type}")
            return
        if e.type != DIR:
            if e.type not in (FILE, HARDLINK):  # files got theirs before their mode
                self._owner(out, e)
            self._times(out, e)
        self.written_paths[e.path] = out
        self.result.written += 1
        if e.mode & 0o6000 and not self.options.special_bits and e.type != DIR:
            self.result.changed.append((e.path, "written without its setuid/setgid bit"))

    def _write_file(self, e: Entry, out: str, mode: int) -> None:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            read = open_entry(self.source, self.image, e)
            done = 0
            while chunk := read(compression.CHUNK):
                os.write(fd, chunk)
                done += len(chunk)
                self.result.bytes += len(chunk)
                self.monitor.tick(self.result.bytes)
            if done != e.size:
                raise ContentError(f"{e.path}: the archive holds fewer bytes than the header says")
            if self.options.owners:
                try:
                    os.fchown(fd, e.uid, e.gid)  # before the mode: chown clears setuid bits
                except (OSError, OverflowError) as exc:
                    self.skip(e.path, _owner_problem(e, exc))
            os.fchmod(fd, mode & 0o7777)
        except BaseException:
            os.close(fd)
            os.unlink(out)  # no half-written file is left behind
            raise
        os.close(fd)

    def _owner(self, out: str, e: Entry) -> None:
        if self.options.owners:
            try:
                os.chown(out, e.uid, e.gid, follow_symlinks=False)
            except (OSError, OverflowError) as exc:
                self.skip(e.path, _owner_problem(e, exc))

    def _times(self, out: str, e: Entry) -> None:
        try:
            os.utime(out, (e.mtime, e.mtime), follow_symlinks=False)
        except (OSError, OverflowError, ValueError):
            pass  # a time the filesystem cannot hold is not worth failing for

    def finish_dirs(self) -> None:
        """Give folders their modes and times, deepest first."""
        for out, e in reversed(self.dir_modes):
            self._owner(out, e)
            try:
                os.chmod(out, e.mode & (0o7777 if self.options.special_bits else 0o1777), follow_symlinks=False)
                self._times(out, e)
            except (OSError, NotImplementedError):
                pass


def _owner_problem(e: Entry, exc: BaseException) -> str:
    """Why an entry's owner could not be given (the file is written all the same)."""
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "this system has no such user or group id"
    return f"owner {e.uid}:{e.gid} not set: {why}"


def write_layer_tar(source: Source, image: Image, layer: int, out_path: str, monitor: Monitor | None = None) -> int:
    """Save a layer's uncompressed tar to ``out_path`` (never overwriting); returns its size."""
    monitor = monitor or Monitor(source.info.path)
    container = source.container
    blob, scan = image.blobs[layer], image.scans[layer]
    read = compression.open_reader(scan.compression, container.raw_reader(blob, 0))
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    total = 0
    try:
        monitor.begin(f"saving layer {layer}", layer, len(image.layers), scan.tar_size or 0)
        while chunk := read(compression.CHUNK):
            os.write(fd, chunk)
            total += len(chunk)
            monitor.tick(total)
    except BaseException:
        os.close(fd)
        os.unlink(out_path)
        raise
    os.close(fd)
    return total
