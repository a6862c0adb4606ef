"""One open image: layers and history on the left, the file tree in the middle, details right;
and the pages beside the Files page (Insights, Inspect, Packages), built when first shown."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QLabel, QMessageBox, QSplitter, QTabWidget, QVBoxLayout, QWidget

from explorer.formats import gzip_access
from explorer.image import index_cache
from explorer.image.loader import Image, prepare_first_view
from explorer.image.inspect import docker_size_steps
from explorer.image.packages import package_files
from explorer.formats.source import Source
from explorer.tree.steps import Steps
from explorer.tree.views import DIFF, MERGED
from explorer.ui.compare_panel import ComparePanel
from explorer.ui.details_panel import DetailsPanel
from explorer.ui.files_page import FilesPage
from explorer.ui.preview_panel import PreviewPanel
from explorer.ui.insights_panel import InsightsPanel
from explorer.ui.inspect_panel import InspectPanel
from explorer.ui.packages_panel import FINAL, PackageRow, PackagesPanel
from explorer.ui.layers_panel import LayersPanel
from explorer.ui.widgets import rich_label
from explorer.ui.workers import BackgroundCall, Handover, side_pool

INSIGHTS_PAGE, INSPECT_PAGE, PACKAGES_PAGE = 1, 2, 3  # after Files


class ImageView(QWidget):
    """Everything about one loaded image; the window holds one per tab."""

    status_changed = Signal()
    search_finished = Signal(int)  # number of shown paths (matches and their folders); -1: no search

    def __init__(self, source: Source, image: Image, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.handover: Handover | None = None  # who closes the source, once a loading view shows its files
        self.image = image = prepare_first_view(image)  # (done already by the loader and the index cache)
        # of big gzip layers, for quick previews: one at a time, in a pool of their own (seconds a
        # layer on a big image: in the shared pool they would keep loads and previews waiting)
        self.access_points = BackgroundCall(self, side_pool())
        self._build()
        self.files.apply_view()
        if not image.pending:
            self._warm_up()

    # -- construction --------------------------------------------------------------------

    def _build(self) -> None:
        self.layers_panel = LayersPanel(self.image)
        self.layers_panel.layer_chosen.connect(self._on_layer_chosen)
        self.layers_panel.save_layer.connect(self.save_layer_tar)
        # its parts, by the names the window and the tests use
        self.left_splitter = self.layers_panel
        self.layer_model, self.layer_list = self.layers_panel.layer_model, self.layers_panel.layer_list
        self.history_model, self.history_panel = self.layers_panel.history_model, self.layers_panel.history_panel
        self.layer_strip = self.layers_panel.layer_strip

        files = self.files = FilesPage(self.source, self.image)
        files.row_shown.connect(self._show_selected)
        files.cleared.connect(self._clear_selected)
        files.status_changed.connect(self.status_changed)
        files.search_finished.connect(self.search_finished)
        files.extract_selected.connect(self.extract_selected)
        files.extract_all.connect(self.extract_all)
        # its parts, by the names the window and the tests use
        self.tree_model, self.file_tree, self.background = files.tree_model, files.file_tree, files.background
        self.controls, self.package_filter, self.pending = files.controls, files.package_filter, files.pending
        self.merged_button, self.diff_button = self.controls.merged_button, self.controls.diff_button
        self.hide_button, self.hide_boxes = self.controls.hide_button, self.controls.hide_boxes
        self.search_box, self.search_kind = self.controls.search_box, self.controls.search_kind

        self.details = DetailsPanel()
        self.details.jump_to_layer.connect(self.show_path_at_layer)
        self.preview = PreviewPanel()
        self.preview.follow_link.connect(self._follow_link)
        self.compare = ComparePanel()
        self.side_tabs = QTabWidget(objectName="sideTabs")
        self.side_tabs.addTab(self.details, "&Details")
        self.side_tabs.addTab(self.preview, "Pre&view")
        self.side_tabs.addTab(self.compare, "Co&mpare")

        # The three panes of the Files page; Insights and Inspect are pages of their own at full
        # width, so switching pages never moves these splitters.
        self.splitter = QSplitter(Qt.Orientation.Horizontal, objectName="mainSplitter")
        self.splitter.addWidget(self.layers_panel)
        self.splitter.addWidget(files)
        self.splitter.addWidget(self.side_tabs)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 4)
        self.splitter.setStretchFactor(2, 2)
        self.center_tabs = QTabWidget(objectName="centerTabs")
        self.center_tabs.setDocumentMode(True)
        self.center_tabs.addTab(self.splitter, "&Files")
        self.insights: InsightsPanel | None = None
        self.center_tabs.addTab(QWidget(), "&Insights")  # built when first shown
        self.inspect: InspectPanel | None = None
        self.center_tabs.addTab(_placeholder(INSPECT_PAGE), "Ins&pect")
        self.packages: PackagesPanel | None = None
        self.center_tabs.addTab(QWidget(), "Pac&kages")
        self.center_tabs.currentChanged.connect(self._center_tab_changed)

        # What the load noticed and worked around (a whiteout of nothing, a layer cut short, an
        # index held in memory): one line above the pages, all of it a click away
        self.notes = rich_label("imageNotes")
        self.notes.setStyleSheet("QLabel { background: #fff3cd; color: #4d3800; padding: 4px 6px; border-radius: 4px; }")
        self.notes.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.notes.linkActivated.connect(self._show_all_notes)
        self._show_notes()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.notes)
        layout.addWidget(self.center_tabs)
        self.layer_list.selectRow(0)
        self._pane_order()

    # The layer and mode shown, and their view, are the Files page's.
    layer = property(lambda self: self.files.layer)
    mode = property(lambda self: self.files.mode)

    def adopt(self, image: Image) -> None:
        """Show the loaded image in place of its preview: the same widgets, the files now too
        (building a second view and discarding the first took the window 60 ms)."""
        layer = self.layer
        self.image = image = prepare_first_view(image)  # (done already by the loader and the index cache)
        self.files.adopt(image)
        self.layers_panel.set_image(image)
        self._show_notes()
        page_shown = self.center_tabs.currentIndex()
        for page, title in ((INSIGHTS_PAGE, "&Insights"), (INSPECT_PAGE, "Ins&pect"), (PACKAGES_PAGE, "Pac&kages")):
            self._unbuild_page(page, title)  # built from the preview: made anew when next shown
        self.layer_list.selectRow(self.layer_model.row_of_layer(layer))
        if self.layer is None:  # still all layers: selecting the row changed nothing
            self.layer_strip.show_layer(image, None)
            self.files.apply_view()
        if self.center_tabs.currentIndex() != page_shown:
            self.center_tabs.setCurrentIndex(page_shown)  # the page looked at, rebuilt
        else:
            self._center_tab_changed(page_shown)
        if image.analysed:  # (else once it is: the load still has the cores)
            self._warm_up()

    def complete(self, image: Image) -> None:
        """The accounting of the image whose files are shown (waste, advice, secrets, packages,
        dive's numbers), worked out since, or (``image.unaccounted``) why it will not come: the
        pages that show it are made anew; the files, the layer and the selection stay as the
        user left them."""
        self.image = self.files.image = image
        self.layers_panel.image = self.layer_model.image = self.history_model.image = image
        self.layer_strip.show_layer(image, self.layer)
        self._show_notes()
        page_shown = self.center_tabs.currentIndex()
        for page, title in ((INSIGHTS_PAGE, "&Insights"), (PACKAGES_PAGE, "Pac&kages")):  # (never built meanwhile: ``_waiting``)
            waiting = self.center_tabs.widget(page)
            if waiting.objectName() == "analysing":
                self._put_page(page, _placeholder(page), title)
                waiting.deleteLater()
        if page_shown in (INSIGHTS_PAGE, PACKAGES_PAGE):
            self._center_tab_changed(page_shown)
        index = self.file_tree.currentIndex()
        if index.isValid():  # its package, in Details (the preview and the comparison stay)
            self.details.show_row(image, index.internalPointer().row, self.layer)
        self._warm_up()
        self.status_changed.emit()

    def stop_accounting(self, reason: str) -> None:
        """The files stay, without their accounting: the load stopped for ``reason``."""
        self.complete(self.image.replace(unaccounted=reason))

    def _show_notes(self) -> None:
        """The image's warnings in one line (the first, and how many more), or nothing."""
        notes = self.image.warnings
        self.notes.setVisible(bool(notes))
        if not notes:
            return
        more = f" <a href='notes'>and {len(notes) - 1} more…</a>" if len(notes) > 1 else ""
        self.notes.setText(f"⚠ {html.escape(_sentence(notes[0]))}{more}")
        self.notes.setToolTip("\n".join(notes[:20]) + (f"\n… {len(notes) - 20} more" if len(notes) > 20 else ""))

    def _show_all_notes(self, _link: str = "") -> None:
        """Every warning, in a box the user can copy them from."""
        box = QMessageBox(QMessageBox.Icon.Warning, "About this image",
                          f"{len(self.image.warnings)} things were noticed while reading {self.source.info.path}:",
                          QMessageBox.StandardButton.Close, self)
        box.setDetailedText("\n".join(self.image.warnings))
        box.open()

    def _unbuild_page(self, page: int, title: str) -> None:
        """Put a placeholder back in place of a built page."""
        attribute = {INSIGHTS_PAGE: "insights", INSPECT_PAGE: "inspect", PACKAGES_PAGE: "packages"}[page]
        built = getattr(self, attribute)
        if built is None:
            return
        setattr(self, attribute, None)
        self._put_page(page, _placeholder(page), title)
        built.deleteLater()

    def _put_page(self, page: int, widget: QWidget, title: str) -> None:
        """``widget`` in place of page ``page``, quietly (replacing the page looked at, Qt
        shows another: the caller shows the page it wants)."""
        self.center_tabs.blockSignals(True)
        self.center_tabs.removeTab(page)
        self.center_tabs.insertTab(page, widget, title)
        self.center_tabs.blockSignals(False)

    def _waiting(self, page: int, title: str) -> bool:
        """While the image's accounting is worked out, page ``page`` says so (and is shown),
        or why it never came: True then, False once there is an accounting to show."""
        if self.image.analysed:
            return False
        if self.center_tabs.widget(page).objectName() != ("unaccounted" if self.image.unaccounted else "analysing"):
            self._put_page(page, _accounting_placeholder(page, self.image.unaccounted), title)
        self.center_tabs.setCurrentIndex(page)
        return True

    def _pane_order(self) -> None:
        """Tab and Shift+Tab go from pane to pane (tables would move between their cells)."""
        for table in (self.layer_list, self.history_panel):
            table.setTabKeyNavigation(False)
        self.layer_strip.command.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        chain = [self.layer_list, self.history_panel, self.merged_button, self.hide_button, self.search_box,
                 self.search_kind, self.file_tree, self.side_tabs]
        for first, second in zip(chain, chain[1:]):
            QWidget.setTabOrder(first, second)

    def show_pending(self, message: str) -> None:
        """Layers and history are shown, the files not yet: say so where the tree will be."""
        self.files.show_pending(message)

    # -- layer, mode, selection ----------------------------------------------------------

    def set_layer(self, layer: int | None) -> None:
        """Show the tree at a layer (None: all layers, the final image)."""
        if layer is not None and not 0 <= layer < len(self.image.layers):
            return
        if self.layers_panel.select_layer(layer):
            return  # comes back through _on_layer_chosen
        self.files.show_layer(layer)

    def step_layer(self, delta: int) -> None:
        """Go to the next (+1) or previous (-1) layer; before layer 0 comes "all layers"."""
        self.layers_panel.step(delta)

    def set_mode(self, mode: str) -> None:
        """MERGED or DIFF."""
        self.files.set_mode(mode)

    def toggle_mode(self) -> None:
        """Switch between the merged view and the layer's changes."""
        self.set_mode(MERGED if self.mode == DIFF else DIFF)

    def _warm_up(self) -> None:
        """Compute every layer's folder sizes in the background where an index's columns do not
        give them at once (``FilesPage.warm_up``); and the access points of big gzip layers, so
        previews deep in them are quick."""
        self._make_access_points()
        self.files.warm_up()

    def _make_access_points(self) -> None:
        """Inflate each big gzip layer once more, in a thread (rapidgzip leaves the interpreter
        lock free), and keep its access points; the layers that have some already are skipped."""
        container, disk = self.source.container, index_cache.enabled()
        todo = gzip_access.missing(container, self.image.blobs, self.image.scans)
        if todo:  # (a closed tab cancels it: its archive may be gone)
            self.access_points.run("access points", lambda m: gzip_access.make(container, todo, disk, lambda: m.cancelled))

    def _on_layer_chosen(self, layer: int | None) -> None:
        if self.packages is not None:  # the Packages page follows the selected layer
            self.packages.show_scope(FINAL if layer is None else layer)
        self.files.show_layer(layer)

    def _show_selected(self, row) -> None:
        self.details.show_row(self.image, row, self.layer)
        self.preview.show_row(self.source, self.image, row, self.layer)
        self.compare.show_path(self.source, self.image, row.path, self.layer)

    def _clear_selected(self) -> None:
        self.details.clear()
        self.preview.clear()
        self.compare.clear()

    def _follow_link(self, path: str) -> None:
        """Select where a symlink leads (the preview resolved it inside the image)."""
        self.select_path(path)
        if self.current_path() != path:  # not in this view: the changes view, or filtered out
            self.window().statusBar().showMessage(f"{path} is not shown in this view", 5000)

    def show_path_at_layer(self, layer: int, path: str) -> None:
        """Jump to a layer and select a path there (from the details history)."""
        if self.mode == MERGED and self.image.tree.entry_at(path, layer) is None:
            self.set_mode(DIFF)  # removed there: only the changes view shows it
        self.set_layer(layer)
        self.select_path(path)

    def select_path(self, path: str) -> None:
        """Select and reveal a path in the tree."""
        self.files.select_path(path)

    def current_path(self) -> str | None:
        """The selected path, if any."""
        return self.files.current_path()

    def expand_all(self) -> None:
        """Expand every folder (on a big image, only the first levels)."""
        self.files.expand_all()

    def collapse_all(self) -> None:
        """Collapse every folder."""
        self.files.collapse_all()

    def focus_search(self) -> None:
        """Put the cursor in the search box."""
        self.files.focus_search()

    def copy_path(self) -> None:
        """Copy the selected path to the clipboard."""
        self.files.copy_path()

    def sort_by_size(self) -> None:
        """Biggest first."""
        self.files.sort_by_size()

    # -- insights ---------------------------------------------------------------------------

    def _center_tab_changed(self, index: int) -> None:
        if index == INSIGHTS_PAGE and self.insights is None:
            self.show_insights()
        elif index == INSPECT_PAGE and self.inspect is None:
            self.show_inspect()
        elif index == PACKAGES_PAGE and self.packages is None:
            self.show_packages()

    def show_inspect(self) -> None:
        """Open the Inspect tab (building it once its Size, a walk over every path, is known)."""
        self.center_tabs.setCurrentIndex(INSPECT_PAGE)
        if self.inspect is None and "inspect" not in self.background.pending():
            self.background.run("inspect", _size_or_failure(self.image), then=self._build_inspect)

    def _build_inspect(self, size: int | Exception) -> None:
        """Put the Inspect panel in its tab, staying on the tab the user is on meanwhile."""
        if isinstance(size, Exception):  # the index file is damaged: say so where the panel would be
            placeholder = self.center_tabs.widget(INSPECT_PAGE)
            if isinstance(placeholder, QLabel):
                placeholder.setText(f"The image's index could not be read to add up its size ({size}).\n"
                                    "Open the image again: its index is then read anew.")
            return
        looked_at = self.center_tabs.currentIndex()
        self.inspect = InspectPanel(self.source, self.image, size=size)
        self.center_tabs.blockSignals(True)
        self.center_tabs.removeTab(INSPECT_PAGE)
        self.center_tabs.insertTab(INSPECT_PAGE, self.inspect, "Ins&pect")
        self.center_tabs.setCurrentIndex(looked_at)
        self.center_tabs.blockSignals(False)

    def show_packages(self, scope: int | None = None) -> None:
        """Open the Packages page (building it the first time); ``scope``: a layer to list."""
        if self._waiting(PACKAGES_PAGE, "Pac&kages"):
            return
        if self.packages is None:
            self.packages = PackagesPanel(self.image)
            self.packages.show_files.connect(self.show_package_files)
            self.center_tabs.blockSignals(True)
            self.center_tabs.removeTab(PACKAGES_PAGE)
            self.center_tabs.insertTab(PACKAGES_PAGE, self.packages, "Pac&kages")
            self.center_tabs.blockSignals(False)
        self.packages.show_scope(scope if scope is not None else FINAL if self.layer is None else self.layer)
        self.center_tabs.setCurrentIndex(PACKAGES_PAGE)

    def show_package_files(self, row: PackageRow) -> None:
        """Show only a package's files in the final image's tree, their folders opened."""
        self.center_tabs.setCurrentIndex(0)
        self.set_mode(MERGED)
        self.set_layer(None)  # the final image's, with the layer list saying so
        files = package_files(self.image.tree, row.package)
        package = row.package
        self.files.show_only(files, f"Showing the {len(files):,} files of {package.manager} package "
                                    f"<b>{html.escape(package.name)} {html.escape(package.version)}</b>")

    def show_insights(self) -> None:
        """Open the Insights tab (building it the first time)."""
        if self._waiting(INSIGHTS_PAGE, "&Insights"):
            return
        if self.insights is None:
            # the final image's view, kept since the load with its sizes (computed there)
            self.insights = InsightsPanel(self.image, self.files.view_for(None, MERGED).totals())
            self.insights.show_file.connect(self._show_file_from_insights)
            self.insights.show_layer.connect(self.set_layer)
            self.center_tabs.blockSignals(True)
            self.center_tabs.removeTab(INSIGHTS_PAGE)
            self.center_tabs.insertTab(INSIGHTS_PAGE, self.insights, "&Insights")
            self.center_tabs.blockSignals(False)
        self.center_tabs.setCurrentIndex(INSIGHTS_PAGE)

    def _show_file_from_insights(self, path: str, layer: int) -> None:
        """Select a file in the Files tab, at the layer where it can be seen (-1: final image)."""
        self.center_tabs.setCurrentIndex(0)
        self.set_mode(MERGED)
        self.set_layer(None if layer < 0 else layer)
        self.select_path(path)

    def verify(self) -> None:
        """Read every layer blob and check its digests (in the background), then say per layer."""
        from explorer.ui.extract_dialog import Extraction

        source, image = self.source, self.image

        def work(monitor):
            from explorer.image.verify import verify

            return verify(source, image, monitor)

        self.verification = Extraction(self, "Verifying every layer's digests", work)
        self.verification.finished.connect(self._verified)

    def _verified(self, checks) -> None:
        from explorer.image.verify import describe

        if not checks:
            return
        bad = [c for c in checks if not c.ok]
        box = QMessageBox(QMessageBox.Icon.Information if not bad else QMessageBox.Icon.Warning, "Verify digests",
                          "Every layer matches its digest and diff_id." if not bad
                          else f"{len(bad)} layer(s) do not match what the manifest or config says.",
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("verifyResult")
        box.setDetailedText("\n".join(describe(c) for c in checks))
        box.setModal(False)
        box.show()
        self.verify_result = checks

    # -- extraction -------------------------------------------------------------------------

    def extract_selected(self, target: str | None = None) -> None:
        """Extract the selected file or folder, as this view shows it, into a chosen folder."""
        path = self.current_path()
        if path is None:
            return
        only = self.mode == DIFF and self.layer is not None
        self._extract(path, only, target)

    def extract_all(self, target: str | None = None) -> None:
        """Extract the merged filesystem at the selected layer."""
        self._extract("/", False, target)

    def _extract(self, path: str, only_layer: bool, target: str | None) -> None:
        from explorer.ui.extract_dialog import run_extraction

        target = target or QFileDialog.getExistingDirectory(self, f"Extract {path} into…")
        if not target:
            return
        self.extraction = run_extraction(self, self.source, self.image, path, self.layer, only_layer, target)

    def save_layer_tar(self, target: str | None = None) -> None:
        """Save the selected layer's tar, uncompressed."""
        from explorer.ui.extract_dialog import run_layer_save

        if self.layer is None:
            return
        target = target or QFileDialog.getSaveFileName(self, "Save layer tar", f"layer-{self.layer}.tar")[0]
        if target:
            self.extraction = run_layer_save(self, self.source, self.image, self.layer, target)

    def title(self) -> str:
        """Tab title: the tag (with the file name when the tag alone says little), and the
        platform when the source offers several."""
        name = self.source.info.path.rstrip("/").rsplit("/", 1)[-1]
        tag = self.image.tags[0] if self.image.tags else ""
        title = tag if (":" in tag or "/" in tag) else (f"{name}:{tag}" if tag else name)
        if len({i.platform for i in self.source.images}) > 1:
            title += f" ({self.image.platform})"
        return title

    def status_text(self) -> str:
        """What the status bar says about this image."""
        from explorer.ui.format import human_size

        pending = self.files.pending_message
        if pending:
            return f"{', '.join(self.image.tags) or 'untagged'}  |  {len(self.image.layers)} layers  |  {pending}"
        files = self.image.file_count
        total = self.image.file_bytes
        where = "all layers" if self.layer is None else f"layer {self.layer}"
        stored = sum(l.blob_size for l in self.image.layers)
        return (f"{', '.join(self.image.tags) or 'untagged'}  |  {self.image.platform or 'unknown platform'}  |  "
                f"{len(self.image.layers)} layers, {human_size(stored)} stored  |  {files:,} entries, "
                f"{human_size(total)} final files  |  showing {where}, "
                f"{'merged' if self.mode == MERGED else 'changes only'}")

    def close_source(self) -> None:
        """Release the archive, and stop the work done for this tab (its panels' too)."""
        self.stop_work()
        if self.handover is not None:  # (its files shown early: a load stopped meanwhile may not have ended yet)
            self.handover.give_back()
        else:
            self.source.close()

    def stop_work(self) -> None:
        """Stop the work done for this tab (its panels' too), the archive left open (a loading
        view's is the load's to close, or its ``handover``'s once it shows the files)."""
        self.background.cancel_all()
        for call in self.findChildren(BackgroundCall):
            call.cancel_all()


def _sentence(text: str) -> str:
    """A warning as a sentence: its first letter capitalised."""
    return text[:1].upper() + text[1:]


def _placeholder(page: int) -> QWidget:
    """What a page shows until it is built (Inspect's Size reads every path first)."""
    if page != INSPECT_PAGE:
        return QWidget()
    label = QLabel("Adding up the image's size…", objectName="inspectWaiting")
    label.setAccessibleName("Inspect, being prepared")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return label


def _accounting_placeholder(page: int, unaccounted: str) -> QLabel:
    """What Insights or Packages (``page``) shows while the image's accounting is worked out,
    or, ``unaccounted``, why it will not come."""
    name = "Insights" if page == INSIGHTS_PAGE else "Packages"
    if unaccounted:
        label = QLabel(f"The waste, the advice and the packages of this image were not worked out: {unaccounted}.\n\n"
                       "Open the image again to work them out.", objectName="unaccounted")
        label.setWordWrap(True)
        label.setAccessibleName(f"{name}, not worked out")
    else:
        label = QLabel("Working out the waste, the advice and the packages of this image…\n\n"
                       "The files are here already; this page follows.", objectName="analysing")
        label.setAccessibleName(f"{name}, being prepared")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return label


def _size_or_failure(image: Image) -> Steps[int | Exception]:
    """``docker_size_steps``, or what stopped it (a damaged index file)."""
    try:
        return (yield from docker_size_steps(image))
    except (ValueError, EOFError, TypeError, OSError) as exc:
        return exc
