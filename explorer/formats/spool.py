"""An engine's ``save`` stream kept in a local file, read from then on like an archive on disk.

A stream from an engine can be read once; reading a file's bytes again meant asking the engine
to save the whole image again. Kept in a file (as dive does), the image is a local archive: a
loading process can open it again by its path, and previews read it in place. The copy is pure
input and output, so it never competes with the window for the interpreter.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Callable

from explorer.formats.cache import remove, scratch_dir, scratch_prefix
from explorer.formats.container import TarFileContainer
from explorer.model.errors import SourceError
from explorer.model.progress import Monitor
from explorer.model.text import human_size

CHUNK = 1 << 20
# Disk space a copy leaves free, checked before and every ``LOOK_EVERY`` bytes while copying:
# the disk is the user's, and filling it to the last byte would hurt every other program.
RESERVE = 500_000_000
LOOK_EVERY = 64 << 20


class _NoRoom(Exception):
    """The copy would eat into ``RESERVE``."""


def keep_stream(opener: Callable[[], Callable[[int], bytes]], label: str, what: str, monitor: Monitor,
                expected: int = 0) -> str:
    """Copy the stream ``opener`` gives into a new file of the cache's scratch folder; its path.

    ``expected`` is the engine's idea of the size, for the progress bar only (Docker's
    containerd store counts an image's packed and unpacked bytes, several times what its save
    writes). The copy stops before the folder's free space falls below ``RESERVE``. Nothing is
    left behind when the copy fails or is cancelled.
    """
    try:
        folder = scratch_dir()
        _room(folder)
        fd, path = tempfile.mkstemp(prefix=scratch_prefix("engine-"), suffix=".tar", dir=folder)
    except _NoRoom as exc:
        raise SourceError(label, f"no room to keep a copy of {what}: {folder} has {exc}",
                          "free some disk space there, or set LAYER_EXPLORER_CACHE to a folder with room") from None
    except OSError as exc:
        raise SourceError(label, f"cannot keep a copy of {what} in the cache folder ({exc.strerror or exc})",
                          "check that the cache folder is writable, or set LAYER_EXPLORER_CACHE") from None
    try:
        with os.fdopen(fd, "wb") as out:
            read = opener()
            done = look = 0
            monitor.begin(f"copying {what}", total=expected)
            while chunk := read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                monitor.tick(done)
                if done - look >= LOOK_EVERY:
                    look = done
                    _room(folder)
    except _NoRoom as exc:
        remove(path)
        raise SourceError(label, f"stopped copying {what} after {human_size(done)}: {folder} has {exc}",
                          "free some disk space there, or set LAYER_EXPLORER_CACHE to a folder with room") from None
    except OSError as exc:
        remove(path)
        raise SourceError(label, f"could not keep a copy of {what} in {folder} ({exc.strerror or exc})",
                          "free some disk space there, or set LAYER_EXPLORER_CACHE to a folder with room") from None
    except BaseException:  # a cancel, the engine's own error: no half copy left
        remove(path)
        raise
    return path


def _room(folder: str) -> None:
    """Raise ``_NoRoom`` (saying what is free) when ``folder`` has less than ``RESERVE`` free."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell: the copy's own errors will say
    if free < RESERVE:
        raise _NoRoom(f"{human_size(free)} free (and {human_size(RESERVE)} are kept free)")


def kept_file(container: object) -> str | None:
    """The local copy a container reads an engine's image from, if it is one."""
    return container.spool if isinstance(container, SpooledContainer) else None


class SpooledContainer(TarFileContainer):
    """A kept stream: a tar on disk named after where it came from (``label``); with ``owner``,
    the file is deleted when the container is closed."""

    def __init__(self, spool: str, label: str, monitor: Monitor, owner: bool = True) -> None:
        self.spool = spool
        self.owner = owner
        try:
            super().__init__(spool, monitor)
        except BaseException as exc:  # (no file descriptors, no memory to map it: the copy goes too)
            if owner:
                remove(spool)
            if isinstance(exc, SourceError):
                raise SourceError(label, exc.reason, exc.hint) from None
            raise
        self.path = label  # what messages name: the user never saw the copy's name

    def close(self) -> None:
        super().close()
        if self.owner:
            remove(self.spool)

