"""The middle of the Files page: one image's file tree at a layer, merged or its changes, with
the search and filters above it. It owns the views and their folder sizes; what a selected row
says is shown by the panes beside it (``row_shown``)."""

from __future__ import annotations

from collections import deque
from typing import Collection

from PySide6.QtCore import QEvent, QItemSelectionModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QMenu, QTreeView, QVBoxLayout, QWidget

from explorer.image.loader import Image
from explorer.formats.source import Source
from explorer.model.values import DIR
from explorer.tree.diff import UNCHANGED
from explorer.tree.steps import Steps, drain
from explorer.tree.views import DIFF, MERGED, Shown, TreeView, Visible, changed_paths_steps, folders_of, path_matcher, search_steps
from explorer.ui.file_tree_model import NAME, PATH_ROLE, SIZE, FileTreeModel, follow
from explorer.ui.tree_controls import TreeControls, legend
from explorer.ui.widgets import paint_later, text_width, widget_shortcut
from explorer.ui.workers import PAUSE, Slices

# The folders a search opens, at most, to show its first matches: Qt lays them out in one go
# once the search is done; on a search of a million paths 2,000 held the window 160 to 260 ms,
# 200 (with 4,600 rows) 70 to 80 ms, 64 28 to 36 ms (opening the rest a slice at a time laid the
# tree out again each time: 6 s of stalls up to 123 ms).
MAX_EXPANDED_MATCHES = 64
# ... as long as they hold this many rows in all (64 folders of 200 matches each held the
# window 100 ms as the view laid out their 12,800 rows)
MAX_OPENED_ROWS = 3000
FORGET_AFTER_MS = 1000  # a search's result shows this long before what it decoded is let go of
# A layer's changes view opens fully when it shows at most this many paths.
AUTO_EXPAND_CHANGES = 2000
# A changes view of more paths than this gathers them between events before it shows.
GATHER_AT_ONCE = 20_000
RESTORE_AT_ONCE = 8  # folders opened again at once as the view changes (the rest between events)
# Changes views kept for a quick return (each holds the paths its layer changed).
KEPT_CHANGE_VIEWS = 2
# Folder sizes of every layer of an image built in this process are computed ahead when
# layers x folders stays under this (about 150 MB of them).
WARM_UP_LIMIT = 1_000_000
# Above this many paths "Expand all" opens the first levels only.
EXPAND_ALL_LIMIT = 50_000


class FilesPage(QWidget):
    """The file tree of one image, its mode, filters and search; empty until ``apply_view``
    (called once its signals are connected)."""

    row_shown = Signal(object)  # the selected row (a FileTreeModel row), to show beside the tree
    cleared = Signal()  # nothing selected any more
    status_changed = Signal()  # the layer or mode shown changed
    search_finished = Signal(int)  # number of shown paths (matches and their folders); -1: no search
    extract_selected = Signal()  # asked from the tree's menu
    extract_all = Signal()

    def __init__(self, source: Source, image: Image, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.image = image
        self.layer: int | None = None
        self.mode = MERGED
        self.view = image.first_view
        self._views: dict[tuple[int | None, str], TreeView] = {(None, MERGED): self.view}
        self.background = Slices(self)  # folder sizes, searches, ordering huge folders, between events
        # What a search decoded is let go of a while after its result shows: at once, it took
        # turns with painting the result and held the window 35 to 50 ms, not 25.
        self._forget_timer = QTimer(self, singleShot=True, interval=FORGET_AFTER_MS)
        self._forget_timer.timeout.connect(self._forget_now)
        self.pending_message: str | None = None
        self._selected_path: str | None = None
        self._reopening: deque[str] = deque()  # folders that were open, still to open again (``_restore``)
        self._build()

    def _build(self) -> None:
        self.tree_model = FileTreeModel()
        self.tree_model.use_slices(self.background)
        self.tree_model.drag_provider = self._file_for_drag
        tree = self.file_tree = QTreeView(objectName="fileTree")
        tree.setAccessibleName("Files")
        tree.setModel(self.tree_model)
        tree.setUniformRowHeights(True)
        tree.setSortingEnabled(True)
        tree.sortByColumn(NAME, Qt.SortOrder.AscendingOrder)
        tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        tree.setDragEnabled(True)
        tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        header = tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        for column, sample in ((SIZE, "999.9 MB"), (2, "drwxr-xr-x"), (3, "1000:1000"), (4, "Layer"), (5, "modified")):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, text_width(self, sample))
        tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        tree.customContextMenuRequested.connect(self._tree_menu)
        tree.installEventFilter(self)  # ("*" opens a folder's whole subtree: bounded below)
        tree.collapsed.connect(lambda _index: self.background.cancel("open below"))  # (the user had enough)
        widget_shortcut(tree, self.copy_path)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.controls = TreeControls()
        self.controls.mode_chosen.connect(self.set_mode)
        self.controls.filters_changed.connect(self.filters_changed)
        self.search_box, self.search_kind = self.controls.search_box, self.controls.search_kind
        self.hide_boxes, self.search_status = self.controls.hide_boxes, self.controls.search_status
        layout.addWidget(self.controls)
        # names keep room for about 12 characters beside the other columns
        columns = sum(header.sectionSize(c) for c in range(1, 6))
        self.setMinimumWidth(columns + text_width(self, "x" * 12))
        self.package_filter = QLabel(objectName="packageFilter", textFormat=Qt.TextFormat.RichText)
        self.package_filter.linkActivated.connect(lambda _link: self._clear_package_filter())
        self.package_filter.hide()
        layout.addWidget(self.package_filter)
        layout.addWidget(tree, 1)
        self.pending = QLabel("", objectName="pendingFiles", alignment=Qt.AlignmentFlag.AlignCenter)
        self.pending.setWordWrap(True)
        self.pending.hide()
        layout.addWidget(self.pending, 1)
        layout.addWidget(legend())
        tree.selectionModel().currentChanged.connect(self._tree_current_changed)
        self.tree_model.modelReset.connect(self._after_reset)
        follow(tree, self.tree_model)

    def adopt(self, image: Image) -> None:
        """Show a newly loaded image (the same layer and mode are then chosen again)."""
        self.background.cancel_all()
        self.image = image
        self.view = image.first_view
        self._views = {(None, MERGED): self.view}
        self.layer = None
        self.pending_message = None
        self.pending.hide()
        self.file_tree.show()
        for widget in self.controls.inputs():
            widget.setEnabled(True)
        self.hide_boxes[UNCHANGED].setEnabled(self.mode == MERGED)  # as ``set_mode`` leaves it

    def show_pending(self, message: str) -> None:
        """The files are not read yet: say so where the tree will be."""
        self.pending_message = message
        self.pending.setText(f"{message}\n\nThe layers and the history are already here; the file tree follows.")
        self.file_tree.hide()
        self.pending.show()
        for widget in self.controls.inputs():
            widget.setEnabled(False)

    # -- layer, mode, filters ------------------------------------------------------------

    def show_layer(self, layer: int | None) -> None:
        """Show the tree at a layer (None: all layers, the final image); its rows are the
        layer's at once, and painted at the next turn, after what else the choice changed (the
        layer's row, strip and step): two short waits, not one."""
        if layer != self.layer:
            self.layer = layer
            paint_later(self)
            self.apply_view()

    def set_mode(self, mode: str) -> None:
        """MERGED or DIFF."""
        if mode == self.mode:
            return
        self.mode = mode
        (self.controls.diff_button if mode == DIFF else self.controls.merged_button).setChecked(True)
        # in the changes view, unchanged rows are only the folders that hold the changes
        self.hide_boxes[UNCHANGED].setEnabled(mode == MERGED)
        self.apply_view()

    def view_for(self, layer: int | None, mode: str, relevant: Collection[str] | None = None) -> TreeView:
        """The view of a layer and mode, kept for the next visit (with its folder sizes)."""
        key = (layer, mode)
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = TreeView(self.image.tree, layer, mode, relevant)
            final = self.image.first_view.known_totals
            if mode == MERGED and layer == len(self.image.layers) - 1 and final is not None:
                view.use_totals(final)  # the last layer's merged view is the final image
            changes = [k for k in self._views if k[1] == DIFF]
            if len(changes) > KEPT_CHANGE_VIEWS:  # each holds its layer's changed paths: keep a few
                del self._views[changes[0]]
        return view

    def warm_up(self) -> None:
        """Compute every layer's folder sizes in the background, so switching layers shows them
        at once (an image built in this process: a mapped index's come from its columns in
        milliseconds, or, were they damaged, from a walk over its folders when asked)."""
        layers, tree = len(self.image.layers), self.image.tree
        if layers * max(1, len(tree.kids)) > WARM_UP_LIMIT:
            return  # sizes for every layer would take more memory than they save time
        if tree.columns() is not None or tree.encoded():
            return
        views = [self.view_for(layer, MERGED) for layer in range(layers)]

        def work():
            for view in views:
                yield from view.totals_steps()

        self.background.run("warm up", work(), idle=True)

    def _changed_count(self, layer: int | None) -> int:
        """How many paths the changes view of ``layer`` holds, about (from the layer list)."""
        layers = self.image.layers if layer is None else [self.image.layers[layer]]
        return sum(l.added + l.modified + l.removed for l in layers)

    def apply_view(self) -> None:
        """Show the view of the chosen layer and mode, keeping what was opened and selected."""
        key = (self.layer, self.mode)
        if self.mode == DIFF and key not in self._views and self._changed_count(self.layer) > GATHER_AT_ONCE:
            # many changed paths: gather them between events, then come back here
            def gather():
                relevant = yield from changed_paths_steps(self.image.tree, key[0])
                return key, relevant

            self.background.run("gather", gather(), then=self._gathered)
            self.status_changed.emit()
            return
        expanded, current = self._taken_open()
        self.package_filter.hide()  # (a package's files were picked from the view before)
        view = self.view = self.view_for(self.layer, self.mode)
        if view.known_totals is None and view.sizes_at_once():
            drain(view.totals_steps())  # (from the index's columns: shown with the tree, no "…" first)
        # sizes prepared off the GUI thread or kept from a visit before; else computed below
        self.tree_model.set_view(view, None, view.known_totals)
        if view.known_totals is None:

            def sized():
                totals = yield from view.totals_steps()
                return view, totals

            self.background.run("totals", sized(), then=self._sized)
        if self._filtering():
            self.filters_changed()
        else:
            self._restore(expanded, current)
            if view.mode == DIFF and view._relevant is not None and len(view._relevant) <= AUTO_EXPAND_CHANGES:
                self.file_tree.expandAll()  # a layer's few changes are best seen at once
        self.status_changed.emit()

    def _filtering(self) -> bool:
        return bool(self.search_box.text().strip()) or any(b.isChecked() for b in self.hide_boxes.values())

    def filters_changed(self) -> None:
        """Apply the search and the rows to hide (in the background; ``search_finished`` follows)."""
        self.package_filter.hide()  # a search or filter replaces a package's files
        text = self.search_box.text().strip()
        hide = frozenset(c for c, b in self.hide_boxes.items() if b.isChecked())
        self.background.cancel("visible")  # (a search still running would come back over this)
        self._stop_opening()
        self._forget()
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
            visible, folders = yield from search_steps(view, hide, match, MAX_EXPANDED_MATCHES * 4)
            return view, visible, folders

        self.background.run("visible", work(), then=self._shown)

    def _gathered(self, value: tuple[tuple[int | None, str], Shown]) -> None:
        """A layer's changed paths are gathered: its changes view can show."""
        key, relevant = value
        self.view_for(key[0], key[1], relevant)
        if (self.layer, self.mode) == key:
            self.apply_view()

    def _sized(self, value: tuple[TreeView, dict[str, int]]) -> None:
        """A view's folder sizes are ready."""
        view, totals = value
        if view is not self.view:
            return
        if self.tree_model.sort_column != SIZE:
            self.tree_model.set_totals(totals)
            return
        # sorted by size, the tree is reset to order it by them: what was open opens again (a
        # search shown meanwhile had opened its first matches' folders)
        expanded, current = self._taken_open()
        self.tree_model.set_totals(totals)
        self._restore(expanded, current)

    def _forget(self) -> None:
        """Let go of what the searches so far decoded (``LayerTree.recording``), soon."""
        self._forget_timer.start()

    def _forget_now(self) -> None:
        """Let go of it between events, unless a search runs (then after it, a while after)."""
        if self.background.pending("visible"):
            self._forget_timer.start()
        else:
            self.background.run("forget", self.image.tree.forget_steps(), idle=True)

    def _shown(self, value: tuple[TreeView, Visible, list[str]]) -> None:
        """A search or filter is done: show what it kept, its first matches opened."""
        self._forget()
        view, visible, folders = value
        if view is not self.view:
            view.tree.let_go_later(folders)
            return
        self.tree_model.set_visible(visible)
        files = len(visible)
        self.search_status.setText(f"{files:,} shown" if visible else "nothing matches")
        opened = self.expand_matches(folders)
        view.tree.let_go_later(set(folders) - opened)  # (kept decoded for a chance to be opened)
        self.search_finished.emit(files)

    def expand_matches(self, folders: list[str]) -> set[str]:
        """Open the folders that lead to the first matches (shallowest first); which it opened.

        All at once, right after the model's reset: the view then only notes each one and
        lays them all out once, where one at a time it would lay out each.
        """
        opened: set[str] = set()
        rows = 0  # the view lays out every row of an opened folder, shown or not
        for path in folders:
            index = self.tree_model.index_for_path(path)
            if index.isValid() and self.tree_model.hasChildren(index):
                rows += self.tree_model.rowCount(index)
                if opened and rows > MAX_OPENED_ROWS:
                    break
                self.file_tree.expand(index)
                opened.add(path)
                if len(opened) >= MAX_EXPANDED_MATCHES:
                    break
        return opened

    def show_only(self, files: list[str], label: str) -> None:
        """Show only ``files`` of the tree shown (the caller chooses the layer and mode), their
        folders opened, under a rich-text ``label`` that offers to show every file again."""
        self.search_box.blockSignals(True)
        self.search_box.clear()  # a search would hide some of them
        self.search_box.blockSignals(False)
        for box in self.hide_boxes.values():
            box.setChecked(False)
        self.controls.search_timer.stop()  # (a search typed a moment ago, not yet started)
        self.background.cancel("visible")  # (one still running, or just started, would replace them)
        self._stop_opening()
        folders = folders_of(files) - {"/"}
        self.tree_model.set_visible(folders.union(files))
        self.expand_matches(sorted(folders, key=lambda p: (p.count("/"), p)))
        self.package_filter.setText(f"{label} &nbsp; <a href='all'>show all files</a>")
        self.package_filter.show()
        if files:
            self.select_path(files[0])

    def _clear_package_filter(self) -> None:
        """Back to every file."""
        self.package_filter.hide()
        self.filters_changed()

    # -- selection ------------------------------------------------------------------------

    def _tree_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return  # a reset; _after_reset decides what stays selected
        row = current.internalPointer().row
        self._selected_path = row.path
        if not self.file_tree.selectionModel().isSelected(current):
            # focus alone can make a row current: select it, so what Details shows is visible
            self.file_tree.selectionModel().select(
                current, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.row_shown.emit(row)

    def _after_reset(self) -> None:
        """Keep the selected path selected when it is still shown, else clear the details."""
        path = self._selected_path
        index = self.tree_model.index_for_path(path) if path else QModelIndex()
        if index.isValid():
            self.file_tree.setCurrentIndex(index)  # (which says the row, as any change of it)
        else:
            self.cleared.emit()

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
                if child.children is None and (child.row is None or child.row.entry.type != DIR):
                    continue  # (a file: not asked)
                idx = model.createIndex(child.index_in_parent, 0, child)
                if self.file_tree.isExpanded(idx):  # (opened a moment ago, its rows perhaps not asked for yet)
                    out.append(child.path)
                    if child.children is not None:
                        stack.append(idx)
        return out

    def _taken_open(self) -> tuple[list[str], str | None]:
        """Before the tree is made again: the folders open, and those still to open again (a
        change of view just before), no more opened meanwhile; and the selected path."""
        expanded = self._expanded_paths()
        opened = set(expanded)
        expanded += [path for path in self._reopening if path not in opened]
        current = self.current_path()
        self._stop_opening()
        return expanded, current

    def _restore(self, expanded: list[str], current: str | None) -> None:
        """Open again the folders that were open, and select the row that was: the first few
        at once, the rest between events (on the realistic image, going back to the merged
        view from a layer's changes, all opened, opened 44 big folders in one go: 40 to 100
        ms). Those not open yet when the view changes again are kept for the next view; a row
        selected meanwhile stays selected."""

        def open_again(path: str) -> None:
            index = self.tree_model.index_for_path(path)
            if index.isValid():
                self.file_tree.expand(index)

        for path in expanded[:RESTORE_AT_ONCE]:
            open_again(path)
        self._reopening = later = deque(expanded[RESTORE_AT_ONCE:])
        if not later:
            if current:
                self.select_path(current)
            return
        generation, chosen = self.tree_model.generation, self._selected_path

        def steps() -> Steps[None]:
            while later:
                yield
                if self.tree_model.generation != generation:
                    return  # (the tree was reset, by a sort: what it had open is gone with it)
                open_again(later.popleft())
            if current and self._selected_path == chosen:
                self.select_path(current)

        self.background.run("restore", steps())

    def _stop_opening(self) -> None:
        """Open no more of the folders that were open, nor those below a folder being opened
        (the user chose what to show)."""
        self.background.cancel("restore")
        self.background.cancel("open below")
        self._reopening.clear()

    # -- actions --------------------------------------------------------------------------

    def _big(self) -> bool:
        """Whether the image has too many paths to open every folder at once (the view lays out
        each row it opens, all in one go)."""
        return len(self.image.tree.versions) > EXPAND_ALL_LIMIT

    def expand_all(self) -> None:
        """Expand every folder (on a big image, only the first levels)."""
        if self._big():
            self._stop_opening()
            self.file_tree.expandToDepth(1)
        else:
            self.open_below(QModelIndex())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        """"*" opens the folder and every folder below it (of a big image, two levels deep, as
        "Expand all" does the whole tree: 92,000 rows of a 200,000-entry image's /usr held the
        window 1.7 s), between events (``open_below``)."""
        if watched is self.file_tree and event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Asterisk:
            current = self.file_tree.currentIndex()
            if current.isValid():
                self.open_below(current, 1 if self._big() else None)
            return True
        return super().eventFilter(watched, event)

    def open_below(self, index: QModelIndex, depth: int | None = None) -> None:
        """Open a folder (an invalid index: the top of the tree) and the folders below it,
        ``depth`` levels down (None: all), one folder a step between events, in the order
        they are listed. Qt's own opened them all in one go: the realistic image's /usr, 822
        folders, held the window 285 to 450 ms. It opens the folders among the rows a folder
        has handed to the view: all of them up to two batches (``BATCH``), the first two of a
        bigger one."""
        self._stop_opening()
        model, tree = self.tree_model, self.file_tree
        generation = model.generation
        top = [] if index.isValid() else [model.index(row, 0) for row in range(model.rowCount())]
        stack = [(QPersistentModelIndex(i), 1) for i in reversed(top)] or [(QPersistentModelIndex(index), 0)]

        def steps() -> Steps[None]:
            while stack:
                yield
                persistent, level = stack.pop()
                folder = QModelIndex(persistent)
                if model.generation != generation:
                    return  # (the tree was reset, by a sort: what was opened is gone with it)
                if not folder.isValid() or not model.hasChildren(folder):
                    continue
                # its rows made, then it opens, in a later step: rows added to an open folder lay
                # the whole tree out again (a huge folder's are ordered between events)
                made = not tree.isExpanded(folder)
                if made:
                    model.rowCount(folder)
                while made or model.rows_pending(folder):
                    yield PAUSE if not made else None  # (nothing to do until they are ordered)
                    made = False
                    if model.generation != generation:
                        return
                    folder = QModelIndex(persistent)
                if not tree.isExpanded(folder) and model.has_more(folder):
                    # a huge folder's next batch too, while it is closed (rows handed to an open
                    # folder make Qt lay the tree out again): a folder of up to two batches
                    # opens whole, as when Qt fetched them itself as it opened it
                    model.fetchMore(folder)
                    yield
                    if model.generation != generation:
                        return
                    folder = QModelIndex(persistent)
                tree.expand(folder)
                if depth is not None and level >= depth:
                    continue
                rows = [model.index(row, 0, folder) for row in range(model.rowCount(folder))]
                stack.extend((QPersistentModelIndex(row), level + 1) for row in reversed(rows) if model.hasChildren(row))

        self.background.run("open below", steps())

    def collapse_all(self) -> None:
        """Collapse every folder."""
        self._stop_opening()  # (folders still to open again would open after)
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

    def sort_by_size(self) -> None:
        """Biggest first."""
        self.file_tree.sortByColumn(SIZE, Qt.SortOrder.DescendingOrder)

    def _tree_menu(self, pos) -> None:
        menu = QMenu(self)
        menu.addAction("Copy path", self.copy_path)
        extract = menu.addAction("Extract…", self.extract_selected.emit)
        extract.setEnabled(self.current_path() is not None)
        menu.addAction("Extract the whole filesystem…", self.extract_all.emit)
        menu.addSeparator()
        menu.addAction("Expand all", self.expand_all)
        menu.addAction("Collapse all", self.collapse_all)
        menu.exec(self.file_tree.viewport().mapToGlobal(pos))

    def _file_for_drag(self, row) -> str | None:
        """A temporary copy of a file for dragging to a file manager (None: not draggable)."""
        from explorer.ui.extract_dialog import drag_copy

        return drag_copy(self.source, self.image, row.entry)
