"""The file tree: a lazy QAbstractItemModel over a ``TreeView``.

Rows are made only for directories the user expands; nothing is built for the whole tree.
A folder with more than ``BATCH`` children hands them to the view a batch at a time, as they
come into sight (``BatchFollower``), so opening one of a hundred thousand files lays out only
the first.
Filtering, search and directory sizes are computed between events (``workers.Slices``) and
handed in.
"""

from __future__ import annotations

import weakref
from operator import itemgetter
from typing import Any, Collection, Iterator

from PySide6.QtCore import QAbstractItemModel, QEvent, QMimeData, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, QUrl
from PySide6.QtGui import QColor, QFont, QIcon
from PySide6.QtWidgets import QStyle, QTreeView

from explorer.model.values import BLOCK, CHAR, DIR, FIFO, FILE, HARDLINK, SYMLINK, Entry
from explorer.tree.diff import REMOVED, UNCHANGED
from explorer.tree.explain import Removal, dangling, dangling_text, removal
from explorer.tree.resolve import Resolved
from explorer.tree.steps import drain
from explorer.tree.views import MERGED, Row, TreeView, wanted_names
from explorer.ui import resources
from explorer.ui.roles import ALIGNMENT, DECORATION, DESCRIPTION, DISPLAY, FONT, FOREGROUND, RIGHT, TOOLTIP, USER, answer
from explorer.ui.format import human_size, mode_string

COLUMNS = ("Name", "Size", "Mode", "Owner", "Layer", "Change")
NAME, SIZE, MODE, OWNER, LAYER, CHANGE = range(6)
PATH_ROLE = Qt.ItemDataRole.UserRole
Index = QModelIndex | QPersistentModelIndex
BATCH = 500
# Made once: the view asks for every row's flags as it lays them out and
# paints, and each enum "|" is a Python call.
_SELECTABLE = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_DRAGGABLE = _SELECTABLE | Qt.ItemFlag.ItemIsDragEnabled


_SPECIAL_TYPES = frozenset((CHAR, BLOCK, FIFO))
_RUNNABLE = 0o111


def _kind_icon(kind: str, change: str = UNCHANGED) -> QIcon:
    """The icon of an entry kind (``resources.entry_icon``), with the change marker at its corner."""
    return resources.entry_icon(kind, change)


def _struck_out() -> QFont:
    """The font of a removed row."""
    font = QFont()
    font.setStrikeOut(True)
    return font


def icon_kind(row: Row, broken: bool) -> str:
    """Which icon a row gets: its type, or executable, dangling link, or device/fifo/socket."""
    kind = row.entry.type
    if kind == SYMLINK:
        return resources.DANGLING if broken else SYMLINK
    if kind == FILE:
        return resources.EXECUTABLE if row.entry.mode & _RUNNABLE else FILE
    if kind in _SPECIAL_TYPES:
        return resources.SPECIAL
    return kind if kind in (DIR, HARDLINK) else FILE


# A row as the model keeps it: one plain tuple of plain values, (path, name, change, *entry).
# CPython's cycle collector stops tracking such a tuple after its first pass, where it tracks a
# named tuple (a ``Row``, and the ``Entry`` in it) for as long as it lives: two objects a row
# less for every full pass to walk.
_PATH, _NAME, _CHANGE, _ENTRY = 0, 1, 2, 3
_TYPE, _UID, _GID = _ENTRY + 1, _ENTRY + 3, _ENTRY + 4  # (fields of ``Entry``, after its path)


def _plain(row: Row) -> tuple:
    return (row.path, row.name, row.change, *row.entry)


def _row(plain: tuple) -> Row:
    return Row(plain[_PATH], plain[_NAME], Entry._make(plain[_ENTRY:]), plain[_CHANGE])


class _Node:
    """One shown row and, once asked for, its children.

    Its parent is held weakly: a tree of nodes without cycles is freed as soon as the model
    drops it, without waiting for the cycle collector.
    """

    __slots__ = ("plain", "_parent", "index_in_parent", "children", "rows", "by_name", "ordering", "__weakref__")

    def __init__(self, plain: tuple | None, parent: "_Node | None", index_in_parent: int) -> None:
        self.plain = plain  # the row (None: the top of the tree)
        self._parent = None if parent is None else weakref.ref(parent)
        self.index_in_parent = index_in_parent
        self.children: list[_Node] | None = None  # the rows handed to the view so far
        # all of them, sorted: rows as plain tuples, or paths whose rows are made when handed
        # out (a file's stays the shared empty tuple: an empty list each would be one more
        # object a row for every full pass of the cycle collector to walk)
        self.rows: list | tuple = ()
        self.by_name: dict[str, int] | None = None  # name -> place in ``rows``, once looked up
        self.ordering = False  # a huge folder being ordered between events: rows come later

    @property
    def parent(self) -> "_Node | None":
        return None if self._parent is None else self._parent()

    @property
    def row(self) -> Row | None:
        """The row shown, made anew from the plain tuple at each call."""
        return None if self.plain is None else _row(self.plain)

    @property
    def path(self) -> str:
        return self.plain[_PATH] if self.plain is not None else "/"


class FileTreeModel(QAbstractItemModel):
    """Shows one ``TreeView``; a new view, filter or sort order resets it."""

    def __init__(self, view: TreeView | None = None) -> None:
        super().__init__()
        self.view = view
        self.visible: Collection[str] | None = None
        self.totals: dict[str, int] | None = None
        self.sort_column = NAME
        self.sort_order = Qt.SortOrder.AscendingOrder
        self._root = _Node(None, None, 0)
        self._partial: dict[int, _Node] = {}  # folders with rows not handed to the view yet
        self._fetching = False
        self._generation = 0  # which reset a folder being ordered belongs to
        self.slices = None  # with one (its tab's), huge folders are ordered between events
        self.drag_provider = None  # row -> a local file to drag out, or None
        self._broken: dict[str, Resolved | None] = {}  # symlink path -> where it fails to lead
        self._painted: tuple = (None, None)  # the node last painted, and its row and colour
        self.followed = False  # whether a ``BatchFollower`` hands its view more rows, not Qt

    def use_slices(self, slices: Any) -> None:
        """Order huge folders a slice at a time on ``slices`` (a ``workers.Slices``): opening
        one then never blocks the window; its rows appear when ordered."""
        self.slices = slices

    @property
    def generation(self) -> int:
        """How many times the tree has been reset (a view, a filter, a sort)."""
        return self._generation

    # -- what is shown -------------------------------------------------------------------

    def set_view(self, view: TreeView | None, visible: Collection[str] | None = None, totals: dict[str, int] | None = None) -> None:
        """Show another view (layer or mode), optionally restricted to ``visible`` paths."""
        self.beginResetModel()
        self.view, self.visible, self.totals = view, visible, totals
        self._root = _Node(None, None, 0)
        self._painted = (None, None)  # (the rows shown before go at once)
        self._broken = {}  # another layer may hold what a link leads to
        self._partial = {}
        self._generation += 1
        if self.slices is not None:
            for kind in self.slices.pending("order "):
                self.slices.cancel(kind)  # folders of the tree shown before
        self.endResetModel()

    def set_visible(self, visible: Collection[str] | None) -> None:
        """Restrict the tree to these paths (filters and search), or show all (None)."""
        self.set_view(self.view, visible, self.totals)

    def set_totals(self, totals: dict[str, int]) -> None:
        """Directory sizes arrived from the background: repaint the size column."""
        self.totals = totals
        if self.sort_column == SIZE:
            self.set_view(self.view, self.visible, totals)
            return
        self.layoutAboutToBeChanged.emit()
        self.layoutChanged.emit()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort every directory's children by a column."""
        self.sort_column, self.sort_order = column, order
        self.set_view(self.view, self.visible, self.totals)

    # -- nodes ---------------------------------------------------------------------------

    def _node(self, index: Index) -> _Node:
        return index.internalPointer() if index.isValid() else self._root

    def _index_of(self, node: _Node) -> QModelIndex:
        """A node's index (the top of the tree's: the invalid one)."""
        return self.createIndex(node.index_in_parent, 0, node) if node.plain is not None else QModelIndex()

    def _children(self, node: _Node) -> list[_Node]:
        if node.children is None:
            rows: list[Row] | list[str] = []
            view = self.view
            if view is None or (node.plain is not None and not self._holds(node)):
                pass
            elif self.sort_column == NAME and view.mode == MERGED and len(view.tree.kids.get(node.path, ())) > BATCH:
                if self.slices is not None:  # ordered between events; ``_ordered`` adds the rows
                    node.children, node.ordering = [], True
                    self.slices.run(_order_kind(node), self._order_steps(node), then=self._ordered)
                    return node.children
                rows = drain(self._ordered_paths(node.path))  # rows made as handed out
            else:
                rows = view.children(node.path, self.visible)
                descending = self.sort_order == Qt.SortOrder.DescendingOrder
                if self.sort_column == NAME:
                    rows = _folders_first(rows, descending)
                else:
                    rows.sort(key=_name)  # ties keep name order, whichever way the column sorts
                    rows.sort(key=self._sort_key, reverse=descending)
            # (paths of a huge folder stay paths; none: the shared empty tuple, as a file's)
            node.rows = [_plain(r) for r in rows] if rows and type(rows[0]) is not str else rows or ()
            node.children = [_Node(self._row_at(node, i), node, i) for i in range(min(BATCH, len(rows)))]
            if len(rows) > BATCH:
                self._partial[id(node)] = node
        return node.children

    def _order_steps(self, node: _Node) -> Iterator[None]:
        generation = self._generation
        paths = yield from self._ordered_paths(node.path)
        return node, generation, paths

    def _ordered(self, value: Any) -> None:
        """A huge folder is ordered: hand the view its first rows."""
        if value is None:
            return
        node, generation, paths = value
        if generation != self._generation or not node.ordering:
            return  # the model was reset meanwhile
        node.ordering = False
        node.rows, node.by_name = paths, None
        count = min(BATCH, len(paths))
        if count:
            self.beginInsertRows(self._index_of(node), 0, count - 1)
            node.children = [_Node(self._row_at(node, i), node, i) for i in range(count)]
            if len(paths) > BATCH:
                self._partial[id(node)] = node
            self.endInsertRows()

    def _ordered_paths(self, path: str) -> Iterator[None]:
        """A folder's shown children by name, folders first, as paths (no rows made yet)."""
        prefix = path if path == "/" else path + "/"
        items = yield from self.view.shown_names_steps(path)  # type: ignore[union-attr]
        if self.visible is not None:
            wanted, by_name = wanted_names(self.visible, path)
            items = [t for t in items if t[0] in wanted] if by_name else [t for t in items if prefix + t[0] in wanted]
        descending = self.sort_order == Qt.SortOrder.DescendingOrder
        folders = sorted((n for n, is_dir in items if is_dir), reverse=descending)
        files = sorted((n for n, is_dir in items if not is_dir), reverse=descending)
        return [prefix + n for n in (files + folders if descending else folders + files)]

    def _row_at(self, node: _Node, i: int) -> tuple:
        """The row at ``i`` of a folder (a plain tuple), made now if only its path was kept."""
        r = node.rows[i]
        if type(r) is str:
            r = node.rows[i] = _plain(self.view.row(r))  # type: ignore[union-attr,arg-type]
        return r  # type: ignore[return-value]

    def _holds(self, node: _Node) -> bool:
        """Whether a row can have rows below it (told from its plain values: no ``Row`` made)."""
        p = node.plain
        return self.view.holds(p[_PATH], p[_TYPE], p[_CHANGE])  # type: ignore[index,union-attr]

    def partial_folders(self) -> list[QModelIndex]:
        """Folders whose rows the view has not all been handed yet (see ``fetchMore``)."""
        return [self._index_of(n) for n in self._partial.values()]

    def _fetch(self, node: _Node, parent: QModelIndex, upto: int) -> None:
        """Hand the view the rows of ``node`` up to ``upto`` (exclusive)."""
        children = node.children
        first = len(children) if children is not None else 0
        upto = min(upto, len(node.rows))
        if children is None or upto <= first or self._fetching:
            return  # nothing more, or asked again from a slot of this very insertion
        self._fetching = True
        try:
            self.beginInsertRows(parent, first, upto - 1)
            children.extend(_Node(self._row_at(node, i), node, i) for i in range(first, upto))
            if upto == len(node.rows):
                self._partial.pop(id(node), None)
            self.endInsertRows()
        finally:
            self._fetching = False

    def rows_pending(self, index: Index) -> bool:
        """Whether a folder's rows are still being ordered (they come between events; not when
        the walk ordering them failed)."""
        if not index.isValid() or index.model() is not self:
            return False
        node = self._node(index)
        return node.ordering and self.slices is not None and _order_kind(node) in self.slices.pending("order ")

    def has_more(self, parent: Index) -> bool:
        """Whether a folder has rows not handed to the view yet."""
        node = self._node(parent)
        return node.children is not None and len(node.children) < len(node.rows)

    def canFetchMore(self, parent: Index) -> bool:  # noqa: N802 (Qt API)
        return not self.followed and self.has_more(parent)  # (see ``BatchFollower``)

    def fetchMore(self, parent: Index) -> None:  # noqa: N802
        node = self._node(parent)
        self._fetch(node, QModelIndex(parent), len(node.children or ()) + BATCH)

    def _sort_key(self, r: Row) -> Any:
        if self.sort_column == SIZE:
            return self._size(r)
        if self.sort_column == LAYER:
            return self.layer_of(r)
        if self.sort_column == CHANGE:
            return r.change
        if self.sort_column == MODE:
            return mode_string(r.entry)
        if self.sort_column == OWNER:
            return (r.entry.uid, r.entry.gid)
        return r.name

    def _size(self, r: Row) -> int:
        if r.entry.type == DIR:
            return (self.totals or {}).get(r.path, 0)
        return r.entry.size

    # -- what a row says -----------------------------------------------------------------

    def removal(self, r: Row) -> Removal | None:
        """For a removed row of an image's tree: the layer that removed it and the one that added it."""
        if r.change != REMOVED or not isinstance(self.view, TreeView):
            return None  # (another kind of view, two images compared, has no layers to name)
        return removal(self.view.tree, r.path, self.view.layer)

    def layer_of(self, r: Row) -> int:
        """The layer a row names: the one that removed it, else the one that wrote what is shown."""
        gone = self.removal(r)
        return gone.layer if gone is not None else r.entry.layer

    def broken_link(self, r: Row) -> Resolved | None:
        """Where a symlink row fails to lead (None: it leads somewhere, or is no symlink)."""
        if r.entry.type != SYMLINK or r.change == REMOVED or self.view is None:
            return None
        if r.path not in self._broken:  # asked for each paint of the row: look it up once
            self._broken[r.path] = dangling(self.view.tree, r.entry, self.view.layer)
        return self._broken[r.path]

    def change_text(self, r: Row) -> str:
        """What the view's layer (or the image's history) did to a row, as its tooltip says it."""
        if r.change == UNCHANGED:
            return ""
        gone = self.removal(r)
        if gone is not None:
            added = f" (it was added in layer {gone.added})" if gone.added is not None else ""
            return f"removed in layer {gone.layer}{added}"
        label = resources.LABELS.get(r.change, r.change)
        layer = self.view.layer if self.view is not None else None
        return f"{label} in layer {layer}" if layer is not None else label

    def widest_owner(self, parent: Index, first: int = 0, last: int = -1) -> str:
        """The longest owner text among rows ``first``..``last`` (-1: all) of ``parent`` handed out so far."""
        children = self._node(parent).children or []
        widest = ""
        for child in children[first:] if last < 0 else children[first:last + 1]:
            text = f"{child.plain[_UID]}:{child.plain[_GID]}"
            if len(text) > len(widest):
                widest = text
        return widest

    def index_for_path(self, path: str) -> QModelIndex:
        """The index of a path's row, fetching its ancestors' children on the way."""
        node = self._root
        index = QModelIndex()
        if path == "/":
            return index
        for part in path.strip("/").split("/"):
            children = self._children(node)
            if node.ordering and self.slices is not None:
                self.slices.finish(_order_kind(node))  # wanted now: order it at once
                children = node.children or []
            if node.by_name is None:  # every row's place, handed to the view yet or not
                node.by_name = {(r[r.rfind("/") + 1:] if type(r) is str else r[_NAME]): i for i, r in enumerate(node.rows)}
            row = node.by_name.get(part)
            if row is not None and row >= len(children):  # not handed out yet: fetch up to it
                self._fetch(node, index, row + 1)
            if row is None or row >= len(children):
                return QModelIndex()
            node = children[row]
            index = self.index(row, 0, index)
        return index

    # -- QAbstractItemModel --------------------------------------------------------------

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if column < 0 or column >= len(COLUMNS) or row < 0:
            return QModelIndex()
        children = self._children(self._node(parent))
        if row >= len(children):
            return QModelIndex()
        return self.createIndex(row, column, children[row])

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        up = index.internalPointer().parent
        return self._index_of(up) if up is not None else QModelIndex()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt API)
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._children(self._node(parent)))

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return len(COLUMNS)

    def hasChildren(self, parent: Index = QModelIndex()) -> bool:  # noqa: N802
        if parent.isValid() and parent.column() != 0:
            return False
        node = self._node(parent)
        if node.plain is not None and (self.view is None or not self._holds(node)):
            return False
        if node.children is not None:
            return bool(node.children) or node.ordering
        # the view draws an arrow for every visible folder: answer without listing them all
        return self.view is not None and self.view.has_children(node.path, self.visible)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(COLUMNS):
            return COLUMNS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        if index.internalPointer().plain[_TYPE] in (FILE, HARDLINK) and self.drag_provider is not None:
            return _DRAGGABLE
        return _SELECTABLE

    def mimeTypes(self) -> list[str]:  # noqa: N802 (Qt API)
        return ["text/uri-list", "text/plain"]

    def mimeData(self, indexes) -> QMimeData | None:  # noqa: N802
        """Dragging a file out hands over a temporary copy of it (and its path as text)."""
        rows = [i.internalPointer().row for i in indexes if i.isValid() and i.column() == 0]
        if not rows or self.drag_provider is None:
            return None
        mime = QMimeData()
        mime.setText("\n".join(r.path for r in rows))
        files = [f for f in (self.drag_provider(r) for r in rows) if f]
        if files:
            mime.setUrls([QUrl.fromLocalFile(f) for f in files])
        return mime

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, colour = self._painting(index.internalPointer())
        return self._value(r, colour, index.column(), role)

    def multiData(self, index: Index, roles: Any) -> None:  # noqa: N802 (Qt API)
        """A cell's roles in one call: a delegate asks seven for each cell it paints, and each
        call of ``data`` costs a crossing into Python (a third of a big tree's paint)."""
        if not index.isValid():
            answer(roles, lambda _role: None)
            return
        r, colour = self._painting(index.internalPointer())
        col = index.column()
        answer(roles, lambda role: self._value(r, colour, col, role))

    def forget_painted(self) -> None:
        """Drop the row kept for painting (its colour is the palette's before a theme change)."""
        self._painted = (None, None)

    def _painting(self, node: _Node) -> tuple[Row, QColor | None]:
        """A node's row and its colour, made once while Qt asks for its cells one after another."""
        if node is not self._painted[0]:
            row = node.row
            self._painted = (node, (row, resources.change_colour(row.change)))
        return self._painted[1]  # type: ignore[return-value]

    def _value(self, r: Row, colour: QColor | None, col: int, role: int) -> Any:
        """What a cell shows for one role (roles as plain ints: comparing with an enum member
        is a Python call, made for every role of every cell painted)."""
        e = r.entry
        if role == DISPLAY:
            if col == NAME:
                if e.type in (SYMLINK, HARDLINK) and e.target is not None:
                    return f"{r.name} → {e.target}"
                return r.name
            if col == SIZE:
                if e.type == DIR:
                    return human_size(self.totals[r.path]) if self.totals is not None and r.path in self.totals else ("…" if self.totals is None else "0 B")
                return human_size(e.size) if e.type != SYMLINK else ""
            if col == MODE:
                return mode_string(e)
            if col == OWNER:
                return f"{e.uid}:{e.gid}"
            if col == LAYER:
                return str(self.layer_of(r))
            if col == CHANGE:
                return resources.LABELS.get(r.change, r.change) if r.change != UNCHANGED else ""
            return None
        if role == DECORATION:
            return _kind_icon(icon_kind(r, self.broken_link(r) is not None), r.change) if col == NAME else None
        if role == FOREGROUND:
            return colour
        if role == FONT:
            return _struck_out() if r.change == REMOVED else None
        if role == ALIGNMENT:
            return RIGHT if col in (SIZE, LAYER) else None
        if role == TOOLTIP:
            return self._tooltip(r, col)
        if role == USER:  # (PATH_ROLE)
            return r.path
        if role == DESCRIPTION and col == NAME:
            broken = self.broken_link(r)
            return ", ".join(t for t in (self.change_text(r), dangling_text(broken) if broken else "") if t)
        return None

    def _tooltip(self, r: Row, col: int) -> str:
        """The path, where a link leads (or fails to), what the layer did, and the full owner."""
        e = r.entry
        lines = [r.path]
        if e.target is not None:
            lines.append(f"→ {e.target}")
        broken = self.broken_link(r)
        if broken is not None:
            lines.append(dangling_text(broken))
        change = self.change_text(r)
        if change:
            lines.append(change)
        if col == OWNER:
            lines.append(f"owner (uid:gid) {e.uid}:{e.gid}")
        return "\n".join(lines)


def _order_kind(node: _Node) -> str:
    return f"order {id(node)}"


_name = itemgetter(1)  # Row.name, read in C: sorting a hundred thousand rows calls it as often


def _folders_first(rows: list[Row], descending: bool) -> list[Row]:
    """Rows by name, folders first (last when descending), like file managers.

    Two plain name sorts rather than one on (kind, name) tuples: four times faster on the
    folders of a hundred thousand files, which have no subfolders to split off anyway.
    """
    folders = [r for r in rows if r.entry.type == DIR]
    if not folders or len(folders) == len(rows):
        return sorted(rows, key=_name, reverse=descending)
    files = [r for r in rows if r.entry.type != DIR]
    folders.sort(key=_name, reverse=descending)
    files.sort(key=_name, reverse=descending)
    return files + folders if descending else folders + files


def follow(tree: QTreeView, model: FileTreeModel) -> None:
    """What a tree view showing ``model`` needs beside it: rows handed over as they come
    into sight, the Owner column widened to fit, and colours made again after a theme change."""
    BatchFollower(tree, model)
    OwnerColumn(tree, model)
    PaletteFollower(tree, model)


class PaletteFollower(QObject):
    """Tells the model when the tree's palette changes (a theme chosen, or the desktop's)."""

    def __init__(self, tree: QTreeView, model: FileTreeModel) -> None:
        super().__init__(tree)
        self.model = model
        tree.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if event.type() == QEvent.Type.PaletteChange:
            self.model.forget_painted()
        return False


class BatchFollower(QObject):
    """Hands a tree view more rows of each open folder whose last row so far comes into sight.

    Qt asks a folder for more (``fetchMore``) only when that folder ends the whole list; a
    big folder with others after it would otherwise stop at its first batch. Nor does the
    model offer Qt anything to fetch once it has a follower: Qt fetches as it opens a folder,
    batch after batch, each laid out again as it comes, all in one go (45 to 55 ms to open a
    folder of 2,488 entries). A folder opens with the rows it has; more come once its last row
    is in sight or a page below (Page Down would step past it), after a scroll, a folder
    opened or closed, rows added, or the tree grown.
    """

    def __init__(self, tree: QTreeView, model: FileTreeModel) -> None:
        super().__init__(tree)
        self.tree, self.model = tree, model
        model.followed = True
        self._timer = QTimer(self, singleShot=True, interval=0)
        self._timer.timeout.connect(self.fetch_shown)
        tree.verticalScrollBar().valueChanged.connect(lambda _v: self._timer.start())
        tree.expanded.connect(lambda _i: self._timer.start())
        tree.collapsed.connect(lambda _i: self._timer.start())
        model.rowsInserted.connect(lambda *_: self._timer.start())
        tree.viewport().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if event.type() == QEvent.Type.Resize:
            self._timer.start()
        return False

    def fetch_shown(self) -> None:
        """Fetch for every open folder whose last row handed out is in sight or a page below."""
        tree, model = self.tree, self.model
        height = tree.viewport().height()
        for folder in model.partial_folders():
            if folder.isValid() and not tree.isExpanded(folder):
                continue
            last = model.index(model.rowCount(folder) - 1, 0, folder)
            rect = tree.visualRect(last)
            if rect.isValid() and rect.bottom() >= 0 and rect.top() < 2 * height:
                model.fetchMore(folder)


class OwnerColumn(QObject):
    """Widens a tree's Owner column to show the widest owner shown (``2000000000:0``) whole."""

    # It never narrows the column (a width the user chose stays, and columns do not jump as rows
    # come and go), nor widens it past what leaves the Name column ``NAME_SHARE`` of the tree:
    # an owner that does not fit then is cut short, and its tooltip has it whole.
    NAME_SHARE = 0.4

    def __init__(self, tree: QTreeView, model: FileTreeModel) -> None:
        super().__init__(tree)
        self.tree, self.model = tree, model
        self.needed = 0  # pixels the widest owner seen asks for
        self._timer = QTimer(self, singleShot=True, interval=0)  # after a reset, once the view asked for rows
        self._timer.timeout.connect(lambda: self.fit(QModelIndex()))
        model.modelReset.connect(self._timer.start)
        model.layoutChanged.connect(self._timer.start)
        model.rowsInserted.connect(self.fit)  # only the rows inserted: a huge folder comes in many batches
        tree.expanded.connect(self.fit)
        tree.viewport().installEventFilter(self)  # a wider tree makes room for a cut-short owner

    def fit(self, parent: QModelIndex, first: int = 0, last: int = -1) -> None:
        """Widen the column, as far as there is room, for rows ``first``..``last`` of ``parent``."""
        widest = self.model.widest_owner(parent, first, last)
        if widest:
            # the item delegate keeps this margin (and one pixel) on each side of a cell's text
            margin = self.tree.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, self.tree) + 1
            self.needed = max(self.needed, self.tree.fontMetrics().horizontalAdvance(widest) + 2 * margin + 2)
        self.widen()

    def widen(self) -> None:
        """Give the column what it needs, or what the Name column can spare."""
        header = self.tree.header()
        current = header.sectionSize(OWNER)
        if self.needed <= current:
            return
        width = self.tree.viewport().width()
        others = sum(header.sectionSize(c) for c in range(header.count())
                     if c not in (NAME, OWNER) and not header.isSectionHidden(c))
        room = width - others - int(width * self.NAME_SHARE)
        if room > current:
            header.resizeSection(OWNER, min(self.needed, room))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        """Widen again when the tree grows."""
        if event.type() == QEvent.Type.Resize and self.needed > self.tree.header().sectionSize(OWNER):
            self.widen()
        return super().eventFilter(watched, event)
