"""Asking which two images to compare, then having the loader compare them.

A side whose source holds several images, and names none, is asked about as Open asks: its
source is listed first (by the loader, in the background), then a picker is shown. Its one
job is that dialogue; the window shows the comparison when the loader has made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from explorer.formats.source import Source
from explorer.model.values import ImageRef
from explorer.ui.dialogs import ask_image
from explorer.ui.workers import LoadController


@dataclass
class CompareRequest:
    """A comparison whose sources are listed first, so that a side with several images is asked
    about as Open asks (the loader then opens and loads the chosen ones)."""

    paths: tuple[str, str]
    indexes: list[int | None]  # the image of each side, by position; None: the loader's default
    platforms: tuple[str | None, str | None]
    ask: list[bool]  # the sides still to ask about
    listed: dict[str, Source] = field(default_factory=dict)  # opened to list their images
    opening: str | None = None  # the path the loader is listing for this request

    def close(self) -> None:
        """Release the sources opened to list images."""
        for source in self.listed.values():
            source.close()
        self.listed.clear()


class CompareFlow(QObject):
    """One comparison being asked about at a time; a new one, a failure or a cancel drops it.

    ``dropped`` is called when the user cancels a picker (the sources waiting to be opened are then opened).
    """

    def __init__(self, parent: QWidget, loader: LoadController, dropped: Callable[[], None]) -> None:
        super().__init__(parent)
        self._parent, self._loader, self._dropped = parent, loader, dropped
        self._request: CompareRequest | None = None
        loader.failed.connect(lambda _p, _m: self.abandon())
        loader.cancelled.connect(lambda _p: self.abandon())

    def start(self, a: str, b: str, a_index: int | None = None, b_index: int | None = None,
              a_platform: str | None = None, b_platform: str | None = None) -> None:
        """Compare two images; a side with several images and no index or platform is asked about first."""
        self.abandon()
        self._request = CompareRequest((a, b), [a_index, b_index], (a_platform, b_platform),
                                       [a_index is None and a_platform is None, b_index is None and b_platform is None])
        self._continue()

    def take(self, source: Source) -> bool:
        """Whether an opened source was listed for this flow (it then goes on with it)."""
        req = self._request
        if req is None or req.opening != source.info.path:
            return False
        req.listed[source.info.path] = source
        req.opening = None
        self._continue()
        return True

    def abandon(self) -> None:
        """Drop a comparison still asking or listing (cancelled, failed or replaced)."""
        req, self._request = self._request, None
        if req is not None:
            req.close()

    def _continue(self) -> None:
        """Ask about the next side that needs it (listing its source first), then compare."""
        req = self._request
        assert req is not None
        for side in (0, 1):
            if not req.ask[side]:
                continue
            path = req.paths[side]
            source = req.listed.get(path)
            if source is None:
                req.opening = path
                self._loader.open(path)  # ``take`` hands the source back here
                return
            ref = ask_image(source, self._parent, "AB"[side], default_image(req, side, source))
            if ref is None:  # cancelled: no comparison
                self.abandon()
                self._dropped()
                return
            req.indexes[side], req.ask[side] = ref.index, False
            if not (side == 0 and req.ask[1] and req.paths[1] == path):  # B may be in the same archive
                req.listed.pop(path).close()
        self._request = None
        req.close()
        # The loader opens the sources again (a compressed archive is read twice): it takes paths,
        # and loads and compares in one background job.
        self._loader.compare(*req.paths, *req.indexes, *req.platforms)


def default_image(req: CompareRequest, side: int, source: Source) -> ImageRef:
    """The row a side's picker starts on: as Open's picker does, except that B in A's archive
    starts on another image than A's."""
    if side == 1 and req.paths[0] == req.paths[1] and req.indexes[0] is not None:
        return next((i for i in source.images if i.index != req.indexes[0]), source.images[0])
    return source.select()
