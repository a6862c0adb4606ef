"""One open image: layers and history on the left, the file tree in the middle, details right."""

from __future__ import annotations

import html

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMenu,
    QSplitter,
    QTabWidget,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from explorer.formats import gzip_access
from explorer.image import index_cache
from explorer.image.loader import Image, prepare_first_view
from explorer.image.packages import package_files
from explorer.formats.source import Source
from explorer.tree.diff import UNCHANGED
from explorer.tree.steps import EVERY
from explorer.tree.views import DIFF, MERGED, TreeView, changed_paths_steps, path_matcher, visible_paths_steps
from explorer.ui.compare_panel import ComparePanel
from explorer.ui.details_panel import DetailsPanel
from explorer.ui.preview_panel import PreviewPanel
from explorer.ui.file_tree_model import NAME, PATH_ROLE, SIZE, BatchFollower, FileTreeModel, OwnerColumn
from explorer.ui.insights_panel import InsightsPanel
from explorer.ui.inspect_panel import InspectPanel
from explorer.ui.packages_panel import FINAL, PackageRow, PackagesPanel
from explorer.ui.layers_panel import LayersPanel
from explorer.ui.tree_controls import TreeControls, legend
from explorer.ui.widgets import text_width, widget_shortcut
from explorer.ui.workers import BackgroundCall, Slices, decode_ahead, side_pool

# The folders a search opens, at most, to show its first matches: 2,000 held the window 160 to
# 260 ms on a search of a million paths, 200 about 30 ms (opening the rest a slice at a time
# laid the tree out again each time: 6 s of stalls up to 123 ms).
MAX_EXPANDED_MATCHES = 200
# A layer's changes view opens fully when it shows at most this many paths.
AUTO_EXPAND_CHANGES = 2000
# A changes view of more paths than this gathers them between events before it shows.
GATHER_AT_ONCE = 20_000
# Changes views kept for a quick return (each holds the paths its layer changed).
KEPT_CHANGE_VIEWS = 4
PACKAGES_PAGE = 3  # Files, Insights, Inspect, Packages
# Folder sizes of every layer are computed ahead when layers x folders stays under this.
WARM_UP_LIMIT = 1_000_000  # about 150 MB of sizes


class ImageView(QWidget):
    """Everything about one loaded image; the window holds one per tab."""

    status_changed = Signal()
    search_finished = Signal(int)  # number of shown paths (matches and their folders)

    def __init__(self, source: Source, image: Image, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.image = image = prepare_first_view(image)  # (done already by the loader and the index cache)
        self.layer: int | None = None
        self.mode = MERGED
        self.view = image.first_view
        self._views: dict[tuple[int | None, str], TreeView] = {(None, MERGED): self.view}
        self.background = Slices(self)  # folder sizes, searches, ordering huge folders, between events
        # of big gzip layers, for quick previews: one at a time, in a pool of their own (seconds a
        # layer on a big image: in the shared pool they would keep loads and previews waiting)
        self.access_points = BackgroundCall(self, side_pool())
        self._build()
        self._apply_view()
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

        self.tree_model = FileTreeModel()
        self.tree_model.use_slices(self.background)
        self.file_tree = QTreeView(objectName="fileTree")
        self.file_tree.setAccessibleName("Files")
        self.file_tree.setModel(self.tree_model)
        self.file_tree.setUniformRowHeights(True)
        self.file_tree.setSortingEnabled(True)
        self.file_tree.sortByColumn(NAME, Qt.SortOrder.AscendingOrder)
        self.file_tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.file_tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        for column, sample in ((SIZE, "999.9 MB"), (2, "drwxr-xr-x"), (3, "1000:1000"), (4, "Layer"), (5, "modified")):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, text_width(self, sample))
        self.file_tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.file_tree.customContextMenuRequested.connect(self._tree_menu)
        widget_shortcut(self.file_tree, self.copy_path)

        self.details = DetailsPanel()
        self.details.jump_to_layer.connect(self.show_path_at_layer)
        self.preview = PreviewPanel()
        self.preview.follow_link.connect(self._follow_link)
        self.compare = ComparePanel()
        self.side_tabs = QTabWidget(objectName="sideTabs")
        self.side_tabs.addTab(self.details, "&Details")
        self.side_tabs.addTab(self.preview, "Pre&view")
        self.side_tabs.addTab(self.compare, "Co&mpare")
        self.tree_model.drag_provider = self._file_for_drag
        self.file_tree.setDragEnabled(True)
        self.file_tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)

        middle = QWidget()
        mid_layout = QVBoxLayout(middle)
        mid_layout.setContentsMargins(0, 0, 0, 0)
        self.controls = TreeControls()
        self.controls.mode_chosen.connect(self.set_mode)
        self.controls.filters_changed.connect(self._filters_changed)
        # its parts, by the names the window and the tests use
        self.merged_button, self.diff_button = self.controls.merged_button, self.controls.diff_button
        self.hide_button, self.hide_boxes = self.controls.hide_button, self.controls.hide_boxes
        self.search_box, self.search_kind = self.controls.search_box, self.controls.search_kind
        self.search_status = self.controls.search_status
        mid_layout.addWidget(self.controls)
        # names keep room for about 12 characters beside the other columns
        columns = sum(self.file_tree.header().sectionSize(c) for c in range(1, 6))
        middle.setMinimumWidth(columns + text_width(self, "x" * 12))
        self.package_filter = QLabel(objectName="packageFilter", textFormat=Qt.TextFormat.RichText)
        self.package_filter.linkActivated.connect(lambda _link: self._clear_package_filter())
        self.package_filter.hide()
        mid_layout.addWidget(self.package_filter)
        mid_layout.addWidget(self.file_tree, 1)
        self.pending = QLabel("", objectName="pendingFiles", alignment=Qt.AlignmentFlag.AlignCenter)
        self.pending.setWordWrap(True)
        self.pending.hide()
        mid_layout.addWidget(self.pending, 1)
        self._pending: str | None = None
        mid_layout.addWidget(legend())
        # The three panes of the Files page; Insights and Inspect are pages of their own at full
        # width, so switching pages never moves these splitters.
        self.splitter = QSplitter(Qt.Orientation.Horizontal, objectName="mainSplitter")
        self.splitter.addWidget(self.layers_panel)
        self.splitter.addWidget(middle)
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
        self.center_tabs.addTab(QWidget(), "Ins&pect")
        self.packages: PackagesPanel | None = None
        self.center_tabs.addTab(QWidget(), "Pac&kages")
        self.center_tabs.currentChanged.connect(self._center_tab_changed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.center_tabs)
        self.layer_list.selectRow(0)
        self._selected_path: str | None = None
        self.file_tree.selectionModel().currentChanged.connect(self._tree_current_changed)
        self.tree_model.modelReset.connect(self._after_reset)
        self._pane_order()
        BatchFollower(self.file_tree, self.tree_model)
        OwnerColumn(self.file_tree, self.tree_model)

    def adopt(self, image: Image) -> None:
        """Show the loaded image in place of its preview: the same widgets, the files now too
        (building a second view and discarding the first took the window 60 ms)."""
        layer = self.layer
        self.background.cancel_all()
        self.image = image = prepare_first_view(image)  # (done already by the loader and the index cache)
        self.view = image.first_view
        self._views = {(None, MERGED): self.view}
        self.layer = None
        self.layers_panel.set_image(image)
        page_shown = self.center_tabs.currentIndex()
        for page, title in ((1, "&Insights"), (2, "Ins&pect"), (PACKAGES_PAGE, "Pac&kages")):
            self._unbuild_page(page, title)  # built from the preview: made anew when next shown
        self._pending = None
        self.pending.hide()
        self.file_tree.show()
        for widget in self.controls.inputs():
            widget.setEnabled(True)
        self.hide_boxes[UNCHANGED].setEnabled(self.mode == MERGED)  # as ``set_mode`` leaves it
        self.layer_list.selectRow(self.layer_model.row_of_layer(layer))
        if self.layer is None:  # still all layers: selecting the row changed nothing
            self.layer_strip.show_layer(image, None)
            self._apply_view()
        if self.center_tabs.currentIndex() != page_shown:
            self.center_tabs.setCurrentIndex(page_shown)  # the page looked at, rebuilt
        else:
            self._center_tab_changed(page_shown)
        self._warm_up()

    def _unbuild_page(self, page: int, title: str) -> None:
        """Put a placeholder back in place of a built page."""
        attribute = {1: "insights", 2: "inspect", PACKAGES_PAGE: "packages"}[page]
        built = getattr(self, attribute)
        if built is None:
            return
        setattr(self, attribute, None)
        self.center_tabs.blockSignals(True)
        self.center_tabs.removeTab(page)
        self.center_tabs.insertTab(page, QWidget(), title)
        self.center_tabs.blockSignals(False)
        built.deleteLater()

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
        self._pending = message
        self.pending.setText(f"{message}\n\nThe layers and the history are already here; the file tree follows.")
        self.file_tree.hide()
        self.pending.show()
        for widget in self.controls.inputs():
            widget.setEnabled(False)

    # -- layer, mode, filters ------------------------------------------------------------

    def set_layer(self, layer: int | None) -> None:
        """Show the tree at a layer (None: all layers, the final image)."""
        if layer is not None and not 0 <= layer < len(self.image.layers):
            return
        if self.layers_panel.select_layer(layer):
            return  # comes back through _on_layer_chosen
        if layer != self.layer:
            self.layer = layer
            self._apply_view()

    def step_layer(self, delta: int) -> None:
        """Go to the next (+1) or previous (-1) layer; before layer 0 comes "all layers"."""
        self.layers_panel.step(delta)

    def set_mode(self, mode: str) -> None:
        """MERGED or DIFF."""
        if mode == self.mode:
            return
        self.mode = mode
        (self.diff_button if mode == DIFF else self.merged_button).setChecked(True)
        # in the changes view, unchanged rows are only the folders that hold the changes
        self.hide_boxes[UNCHANGED].setEnabled(mode == MERGED)
        self._apply_view()

    def toggle_mode(self) -> None:
        """Switch between the merged view and the layer's changes."""
        self.set_mode(MERGED if self.mode == DIFF else DIFF)

    def _view_for(self, layer: int | None, mode: str, relevant: set[str] | None = None) -> TreeView:
        """The view of a layer and mode, kept for the next visit (with its folder sizes)."""
        key = (layer, mode)
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = TreeView(self.image.tree, layer, mode, relevant)
            changes = [k for k in self._views if k[1] == DIFF]
            if len(changes) > KEPT_CHANGE_VIEWS:  # each holds its layer's changed paths: keep a few
                del self._views[changes[0]]
        return view

    def _warm_up(self) -> None:
        """Compute every layer's folder sizes in the background, so switching layers shows them
        at once; and the access points of big gzip layers, so previews deep in them are quick."""
        self._make_access_points()
        layers, tree = len(self.image.layers), self.image.tree
        if layers * max(1, len(tree.kids)) > WARM_UP_LIMIT:
            return  # sizes for every layer would take more memory than they save time
        if tree.encoded() and not decode_ahead(tree):
            return  # a big mapped index: its walks would decode it whole into this process
        views = [self._view_for(layer, MERGED) for layer in range(layers)]

        def work():
            for view in views:
                yield from view.totals_steps()

        self.background.run("warm up", work(), idle=True)

    def _make_access_points(self) -> None:
        """Inflate each big gzip layer once more, in a thread (rapidgzip leaves the interpreter
        lock free), and keep its access points; the layers that have some already are skipped."""
        container, disk = self.source.container, index_cache.enabled()
        todo = gzip_access.missing(container, self.image.blobs, self.image.scans)
        if todo:  # (a closed tab cancels it: its archive may be gone)
            self.access_points.run("access points", lambda m: gzip_access.make(container, todo, disk, lambda: m.cancelled))

    def _changed_count(self, layer: int | None) -> int:
        """How many paths the changes view of ``layer`` holds, about (from the layer list)."""
        layers = self.image.layers if layer is None else [self.image.layers[layer]]
        return sum(l.added + l.modified + l.removed for l in layers)

    def _apply_view(self) -> None:
        key = (self.layer, self.mode)
        if self.mode == DIFF and key not in self._views and self._changed_count(self.layer) > GATHER_AT_ONCE:
            # many changed paths: gather them between events, then come back here
            def gather():
                relevant = yield from changed_paths_steps(self.image.tree, key[0])
                return key, relevant

            self.background.run("gather", gather(), then=self._gathered)
            self.status_changed.emit()
            return
        expanded = self._expanded_paths()
        current = self.current_path()
        view = self.view = self._view_for(self.layer, self.mode)
        # sizes prepared off the GUI thread or kept from a visit before; else computed below
        self.tree_model.set_view(view, None, view._totals)
        if view._totals is None:

            def sized():
                totals = yield from view.totals_steps()
                return view, totals

            self.background.run("totals", sized(), then=self._sized)
        if self._filtering():
            self._filters_changed()
        else:
            self._restore(expanded, current)
            if view.mode == DIFF and view._relevant is not None and len(view._relevant) <= AUTO_EXPAND_CHANGES:
                self.file_tree.expandAll()  # a layer's few changes are best seen at once
        self.status_changed.emit()

    def _filtering(self) -> bool:
        return bool(self.search_box.text().strip()) or any(b.isChecked() for b in self.hide_boxes.values())

    def _filters_changed(self) -> None:
        self.package_filter.hide()  # a search or filter replaces a package's files
        text = self.search_box.text().strip()
        hide = frozenset(c for c, b in self.hide_boxes.items() if b.isChecked())
        if not text and not hide:
            self.search_status.setText("")
            self.tree_model.set_visible(None)
            self.search_finished.emit(-1)
            return
        try:
            match = path_matcher(self.image.tree, self.layer, text, self.search_kind.currentData()) if text else None
        except Exception as exc:  # a regex being typed is often invalid for a moment
            self.search_status.setText("invalid pattern")
            self.search_status.setToolTip(str(exc))
            return
        self.search_status.setText("searching…")
        view = self.view
        def work():
            visible = yield from visible_paths_steps(view, hide, match)
            folders: list[str] = []  # which to open, shallowest first
            if text:
                kids = view.tree.kids
                by_depth: dict[int, list[str]] = {}
                for i, p in enumerate(visible):
                    if kids.get(p):
                        by_depth.setdefault(p.count("/"), []).append(p)
                    if not i & EVERY:
                        yield
                # sorted a level at a time, and only as deep as needed: one sort of every
                # matching folder took 270 ms at 150,000
                for depth in sorted(by_depth):
                    folders += sorted(by_depth[depth])
                    if len(folders) >= MAX_EXPANDED_MATCHES * 4:
                        break
                    yield
            return view, visible, folders[: MAX_EXPANDED_MATCHES * 4]

        self.background.run("visible", work(), then=self._shown)

    def _gathered(self, value: tuple[tuple[int | None, str], set[str]]) -> None:
        """A layer's changed paths are gathered: its changes view can show."""
        key, relevant = value
        self._view_for(key[0], key[1], relevant)
        if (self.layer, self.mode) == key:
            self._apply_view()

    def _sized(self, value: tuple[TreeView, dict[str, int]]) -> None:
        """A view's folder sizes are ready."""
        view, totals = value
        if view is self.view:
            self.tree_model.set_totals(totals)

    def _shown(self, value: tuple[TreeView, set[str], list[str]]) -> None:
        """A search or filter is done: show what it kept, its first matches opened."""
        view, visible, folders = value
        if view is not self.view:
            return
        self.tree_model.set_visible(visible)
        files = len(visible)
        self.search_status.setText(f"{files:,} shown" if visible else "nothing matches")
        self._expand_matches(folders)
        self.search_finished.emit(files)

    def _expand_matches(self, folders: list[str]) -> None:
        """Open the folders that lead to the first matches (shallowest first).

        All at once, right after the model's reset: the view then only notes each one and
        lays them all out once, where one at a time it would lay out each.
        """
        shown = 0
        for path in folders:
            index = self.tree_model.index_for_path(path)
            if index.isValid() and self.tree_model.hasChildren(index):
                self.file_tree.expand(index)
                shown += 1
                if shown >= MAX_EXPANDED_MATCHES:
                    break

    # -- selection ------------------------------------------------------------------------

    def _on_layer_chosen(self, layer: int | None) -> None:
        if self.packages is not None:  # the Packages page follows the selected layer
            self.packages.show_scope(FINAL if layer is None else layer)
        if layer != self.layer:
            self.layer = layer
            self._apply_view()

    def _tree_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return  # a reset; _after_reset decides what stays selected
        row = current.internalPointer().row
        self._selected_path = row.path
        if not self.file_tree.selectionModel().isSelected(current):
            # focus alone can make a row current: select it, so what Details shows is visible
            self.file_tree.selectionModel().select(
                current, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self._show_selected(row)

    def _after_reset(self) -> None:
        """Keep the selected path selected when it is still shown, else clear the details."""
        path = self._selected_path
        index = self.tree_model.index_for_path(path) if path else QModelIndex()
        if index.isValid():
            self.file_tree.setCurrentIndex(index)
            self._show_selected(index.internalPointer().row)
        else:
            self.details.clear()
            self.preview.clear()
            self.compare.clear()

    def _show_selected(self, row) -> None:
        self.details.show_row(self.image, row, self.layer)
        self.preview.show_row(self.source, self.image, row, self.layer)
        self.compare.show_path(self.source, self.image, row.path, self.layer)

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
        index = self.tree_model.index_for_path(path)
        if index.isValid():
            self.file_tree.setCurrentIndex(index)
            self.file_tree.scrollTo(index)

    def current_path(self) -> str | None:
        """The selected path, if any."""
        index = self.file_tree.currentIndex()
        return index.data(PATH_ROLE) if index.isValid() else None

    def _expanded_paths(self) -> list[str]:
        out = []
        stack = [QModelIndex()]
        model = self.tree_model
        while stack:
            parent = stack.pop()
            node = parent.internalPointer() if parent.isValid() else model._root
            for child in node.children or []:
                idx = model.createIndex(child.index_in_parent, 0, child)
                if child.children is not None and self.file_tree.isExpanded(idx):
                    out.append(child.path)
                    stack.append(idx)
        return out

    def _restore(self, expanded: list[str], current: str | None) -> None:
        for path in expanded:
            index = self.tree_model.index_for_path(path)
            if index.isValid():
                self.file_tree.expand(index)
        if current:
            self.select_path(current)

    # -- actions --------------------------------------------------------------------------

    def expand_all(self) -> None:
        """Expand every folder (on a big image, only the first levels)."""
        if len(self.image.tree.versions) > 50_000:
            self.file_tree.expandToDepth(1)
        else:
            self.file_tree.expandAll()

    def collapse_all(self) -> None:
        """Collapse every folder."""
        self.file_tree.collapseAll()

    def focus_search(self) -> None:
        """Put the cursor in the search box."""
        self.search_box.setFocus()
        self.search_box.selectAll()

    def copy_path(self) -> None:
        """Copy the selected path to the clipboard."""
        path = self.current_path()
        if path:
            QGuiApplication.clipboard().setText(path)

    def _tree_menu(self, pos) -> None:
        menu = QMenu(self)
        menu.addAction("Copy path", self.copy_path)
        extract = menu.addAction("Extract…", self.extract_selected)
        extract.setEnabled(self.current_path() is not None)
        menu.addAction("Extract the whole filesystem…", self.extract_all)
        menu.addSeparator()
        menu.addAction("Expand all", self.expand_all)
        menu.addAction("Collapse all", self.collapse_all)
        menu.exec(self.file_tree.viewport().mapToGlobal(pos))

    # -- insights ---------------------------------------------------------------------------

    def _center_tab_changed(self, index: int) -> None:
        if index == 1 and self.insights is None:
            self.show_insights()
        elif index == 2 and self.inspect is None:
            self.show_inspect()
        elif index == PACKAGES_PAGE and self.packages is None:
            self.show_packages()

    def show_inspect(self) -> None:
        """Open the Inspect tab (building it the first time)."""
        if self.inspect is None and self.image.tree.encoded() and not decode_ahead(self.image.tree):
            # its Size walks every path: decode a big mapped index between events first
            self.background.run("inspect", self.image.tree.decode_steps(), then=lambda _done: self.show_inspect())
        elif self.inspect is None:
            self.inspect = InspectPanel(self.source, self.image)
            self.center_tabs.blockSignals(True)
            self.center_tabs.removeTab(2)
            self.center_tabs.insertTab(2, self.inspect, "Ins&pect")
            self.center_tabs.blockSignals(False)
        self.center_tabs.setCurrentIndex(2)

    def show_packages(self, scope: int | None = None) -> None:
        """Open the Packages page (building it the first time); ``scope``: a layer to list."""
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
        files = package_files(self.image.tree, row.package)
        self.center_tabs.setCurrentIndex(0)
        self.set_mode(MERGED)
        self.set_layer(None)
        self.search_box.blockSignals(True)
        self.search_box.clear()  # a search would hide some of them
        self.search_box.blockSignals(False)
        for box in self.hide_boxes.values():
            box.setChecked(False)
        visible = set(files)
        for path in files:
            cut = path.rfind("/")
            while cut > 0 and path[:cut] not in visible:
                visible.add(path[:cut])
                cut = path.rfind("/", 0, cut)
        self.tree_model.set_visible(visible)
        leaves = set(files)
        self._expand_matches(sorted((p for p in visible if p not in leaves), key=lambda p: (p.count("/"), p)))
        self.package_filter.setText(f"Showing the {len(files):,} files of {row.package.manager} package "
                                    f"<b>{html.escape(row.package.name)} {html.escape(row.package.version)}</b>"
                                    " &nbsp; <a href='all'>show all files</a>")
        self.package_filter.show()
        if files:
            self.select_path(files[0])

    def _clear_package_filter(self) -> None:
        """Back to every file."""
        self.package_filter.hide()
        self._filters_changed()

    def show_insights(self) -> None:
        """Open the Insights tab (building it the first time)."""
        if self.insights is None:
            # the final image's view, kept since the load with its sizes (computed there)
            self.insights = InsightsPanel(self.image, self._view_for(None, MERGED).totals())
            self.insights.show_file.connect(self._show_file_from_insights)
            self.insights.show_layer.connect(self.set_layer)
            self.center_tabs.blockSignals(True)
            self.center_tabs.removeTab(1)
            self.center_tabs.insertTab(1, self.insights, "&Insights")
            self.center_tabs.blockSignals(False)
        self.center_tabs.setCurrentIndex(1)

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
        from PySide6.QtWidgets import QMessageBox

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
        from explorer.image.extract import select_entries
        from explorer.ui.extract_dialog import run_extraction

        target = target or QFileDialog.getExistingDirectory(self, f"Extract {path} into…")
        if not target:
            return
        layer, image, source = self.layer, self.image, self.source
        entries = lambda: select_entries(image, path, layer, only_layer)  # noqa: E731
        self.extraction = run_extraction(self, source, image, entries, target, path)

    def save_layer_tar(self, target: str | None = None) -> None:
        """Save the selected layer's tar, uncompressed."""
        from explorer.ui.extract_dialog import run_layer_save

        if self.layer is None:
            return
        target = target or QFileDialog.getSaveFileName(self, "Save layer tar", f"layer-{self.layer}.tar")[0]
        if target:
            self.extraction = run_layer_save(self, self.source, self.image, self.layer, target)

    def _file_for_drag(self, row) -> str | None:
        """A temporary copy of a file for dragging to a file manager (None: not draggable)."""
        from explorer.ui.extract_dialog import drag_copy

        return drag_copy(self.source, self.image, row.entry)

    def sort_by_size(self) -> None:
        """Biggest first."""
        self.file_tree.sortByColumn(SIZE, Qt.SortOrder.DescendingOrder)

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

        if self._pending:
            return f"{', '.join(self.image.tags) or 'untagged'}  |  {len(self.image.layers)} layers  |  {self._pending}"
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
        self.background.cancel_all()
        for call in self.findChildren(BackgroundCall):
            call.cancel_all()
        self.source.close()
