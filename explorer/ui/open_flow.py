"""Opening sources one after another, and showing each image as its parts arrive.

A source is listed in the background, its image picked when it holds several, then loaded:
its layers and history show at once (a preview tab), its files when the layers are read (on
a big image, before their accounting: its waste, advice and packages), and the rest when the
load ends. Its one job is that sequence; the window owns the tabs this puts views in.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialog

from explorer.formats.source import Source
from explorer.image.loader import Image
from explorer.model.errors import ExplorerError
from explorer.model.values import ImageRef
from explorer.ui import remembered, resources
from explorer.ui.dialogs import ImagePicker, error_dialog
from explorer.ui.image_view import ImageView
from explorer.ui.compare_flow import CompareFlow
from explorer.ui.widgets import paint_later
from explorer.ui.workers import Handover, LoadController, discard

if TYPE_CHECKING:
    from explorer.ui.main_window import MainWindow


class OpenFlow(QObject):
    """The queue of sources to open, and the view of the one being loaded (its ``preview``)."""

    def __init__(self, window: "MainWindow", loader: LoadController, compare_flow: CompareFlow) -> None:
        # (made after ``compare_flow``, whose failure handler must drop its comparison before
        # this one's may start the next queued open)
        super().__init__(window)
        self._window, self._loader, self._compare_flow = window, loader, compare_flow
        self._queue: list[str] = []
        self.preview: ImageView | None = None  # shown while its load runs: layers and history, then its files
        loader.opened.connect(self._on_opened)
        loader.files_loaded.connect(self._on_files_loaded)
        loader.loaded.connect(self._on_loaded)
        loader.failed.connect(self._on_failed)
        loader.cancelled.connect(lambda _p: self._stop_preview("the load was cancelled"))

    def open(self, paths: list[str]) -> None:
        """Open sources one after another (each in its own tab)."""
        self._queue.extend(p for p in paths if p)
        if not self._loader.busy:
            self.next()

    def next(self) -> None:
        """Open the next source waiting, if any (the loader is free)."""
        if self._queue:
            path = self._queue.pop(0)
            remembered.set_last_dir(self._window.settings, path)
            self._loader.open(path)

    def _on_opened(self, source: Source) -> None:
        """A source is listed: its image picked (asked, when it holds several), then loaded."""
        if self._compare_flow.take(source):
            return
        ref = source.images[0] if len(source.images) == 1 else None
        if ref is None:
            if len({i.platform for i in source.images}) > 1 and len({i.tags for i in source.images}) == 1:
                ref = source.select()  # one image, many platforms: this machine's by default
            picker = ImagePicker(source, self._window)
            picker.list.setCurrentRow(ref.index if ref else 0)
            accepted = picker.exec() == QDialog.DialogCode.Accepted
            ref = picker.chosen() if accepted else None
            picker.deleteLater()  # a child of the window otherwise, holding the source
            if ref is None:
                source.close()
                self.next()
                return
        self._show_preview(source, ref)
        self._loader.load(source, ref)

    def _show_preview(self, source: Source, ref: ImageRef) -> None:
        """Layers and history at once (from the manifest and config), while the layers are read.

        The view is put on screen at the next turn of the event loop: building it, and laying
        it out and painting it, are then two short waits, not one long. (By a timer of a
        millisecond: one of none is a posted event, which Qt handles, and the layout and paint
        it posts, before any input or timer, and the two waits were one of 36 to 60 ms.)
        """
        from explorer.image.loader import preview_image

        try:
            image = preview_image(source, ref)
        except ExplorerError:
            return  # the load itself will say what is wrong
        view = ImageView(source, image)
        view.show_pending(f"Reading the files of {len(image.layers)} layer(s)…" if source.info.format != "registry"
                          else f"Downloading {len(image.layers)} layer(s)…")
        self.preview = view
        QTimer.singleShot(1, self, lambda: self._place_preview(view))

    def _place_preview(self, view: ImageView) -> None:
        """Put a preview in its tab (unless the load ended meanwhile)."""
        window, tabs = self._window, self._window.tabs
        if self.preview is not view or tabs.indexOf(view) >= 0:
            return
        doing = "downloading…" if view.source.info.format == "registry" else "reading…"
        # painted at the next turn: showing the tab (the first time, the tabs in place of the
        # start page) and painting it were one wait of 37 to 51 ms on the realistic image
        paint_later(tabs)
        index = tabs.addTab(view, f"{view.title()} ({doing})")
        tabs.setTabToolTip(index, view.source.info.path)
        tabs.setCurrentIndex(index)
        window.stack.setCurrentWidget(tabs)
        remembered.restore_panes(window.settings, view, window)
        window.update_status()
        window.layers_shown.emit(view)

    def _on_files_loaded(self, source: Source, image: Image, handover: Handover) -> None:
        """A big image's files, shown before their accounting (waste, advice, packages): the
        view stays the load's preview until it is done (closing it still stops the load), and
        has the source from now on."""
        preview = self.preview
        if preview is None or preview.source is not source or not handover.take():
            return  # (the load closes the source: it failed meanwhile, or nothing shows it)
        preview.handover = handover
        self._show_files(preview, source, image)
        tabs = self._window.tabs
        tabs.setTabText(tabs.indexOf(preview), f"{preview.title()} (working out…)")

    def _on_loaded(self, source: Source, image: Image) -> None:
        """The load ended: its view has everything (a new tab, if nothing showed it yet)."""
        preview, self.preview = self.preview, None
        if preview is not None and preview.source is source and image.tree is preview.image.tree:
            preview.complete(image)  # its files shown already: what is new is their accounting
            view = preview
            self._window.tabs.setTabText(self._window.tabs.indexOf(view), view.title())
            self._window.update_status()
        else:
            if preview is not None and preview.source is not source:
                self._discard_preview(preview)
                preview = None
            view = self._show_files(preview, source, image)
        self._remember(source)
        self._window.image_loaded.emit(view)
        self.next()

    def _remember(self, source: Source) -> None:
        """Put a source whose files were shown at the top of the recent files (not the sample)."""
        if "://" in source.info.path or os.path.abspath(source.info.path) != os.path.abspath(str(resources.sample_image())):
            remembered.add_recent(self._window.settings, source.info.path)
            self._window.refresh_recent()

    def _show_files(self, preview: ImageView | None, source: Source, image: Image) -> ImageView:
        """The loaded image's files in the preview's place (or a new tab): the view."""
        window, tabs = self._window, self._window.tabs
        if preview is not None:
            view = preview  # the preview becomes the full view (its panes as the user left them)
            paint_later(view.layers_panel)  # (see below)
            view.adopt(image)
            index = tabs.indexOf(view)
            if index < 0:  # loaded before its preview was placed
                index = tabs.addTab(view, view.title())
                remembered.restore_panes(window.settings, view, window)
                window.layers_shown.emit(view)
            tabs.setTabText(index, view.title())
        else:
            view = ImageView(source, image)
            index = tabs.addTab(view, view.title())
            window.layers_shown.emit(view)
        view.status_changed.connect(window.update_status, Qt.ConnectionType.UniqueConnection)  # (once: a view shown early is shown again)
        tabs.setTabToolTip(index, source.info.path)
        tabs.setCurrentIndex(index)
        window.stack.setCurrentWidget(tabs)
        if preview is None:
            remembered.restore_panes(window.settings, view, window)
        window.update_status()
        # Painted in three turns of the event loop: the files, then the layers and the history
        # beside them (``paint_later``), then the focus (which makes the first row current, and
        # the side panel shows it). In one turn they held the window 50 to 80 ms on the
        # realistic image. The focus goes to the tree unless the user has put it elsewhere, or
        # shown another tab, meanwhile.
        focused = QApplication.focusWidget()

        def focus() -> None:
            if tabs.currentWidget() is view and QApplication.focusWidget() in (focused, None):
                view.file_tree.setFocus()

        QTimer.singleShot(1, view.file_tree, lambda: QTimer.singleShot(1, view.file_tree, focus))
        window.files_shown.emit(view)
        return view

    def drop_preview(self) -> None:
        """Remove the view of the load under way, if any (the load is replaced or stopped)."""
        preview, self.preview = self.preview, None
        if preview is not None:
            self._discard_preview(preview)
            if self._window.tabs.count() == 0:
                self._window.stack.setCurrentWidget(self._window.start_page)

    def close_preview(self) -> None:
        """The user closed the tab of the load under way: stop the load, go on with the queue."""
        self.drop_preview()
        self._loader.cancel(quiet=True)
        self._window.update_status()
        self.next()

    def _discard_preview(self, preview: ImageView) -> None:
        """Remove a preview, placed in its tab or not yet (with what it started: a view
        showing the files early may have begun a preview or an extraction, and holds the
        source, which the loading thread holds until then)."""
        preview.stop_work()
        if preview.handover is not None:  # (its files shown: the source is the view's, until now)
            preview.handover.give_back()
        tabs = self._window.tabs
        if tabs.indexOf(preview) >= 0:
            tabs.removeTab(tabs.indexOf(preview))
        discard(preview)

    def _stop_preview(self, reason: str) -> bool:
        """The load stopped (``reason``): a view showing its files already keeps them, without
        their accounting (True); any other preview goes."""
        preview = self.preview
        if preview is None or preview.image.pending or preview.image.analysed:
            self.drop_preview()
            return False
        self.preview = None
        preview.stop_accounting(reason)
        self._window.tabs.setTabText(self._window.tabs.indexOf(preview), preview.title())
        self._window.update_status()
        self._remember(preview.source)  # (opened again from there, it is worked out)
        return True

    def _on_failed(self, path: str, message: str) -> None:
        """The load failed: say why, keep what it showed of a big image's files, go on."""
        kept = self._stop_preview(message.rstrip("."))
        window = self._window
        window.dialogs.append(error_dialog(window, "Cannot work out this image's waste and advice" if kept else "Cannot open image",
                                           message))
        window.load_failed.emit(message)
        self.next()
