"""The preview of the selected file: highlighted text, hex for binaries, pictures, links."""

from __future__ import annotations

import html
from typing import NamedTuple

from PySide6.QtCore import QSize, QByteArray, QEvent, QObject, Qt, Signal
from PySide6.QtGui import QFontDatabase, QFontMetrics, QFontMetricsF, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from explorer.image.content import (BINARY, EMPTY, FOLDER, LINK, PICTURE, PREVIEW_LIMIT, TEXT, ContentError,
                                    decode_text, hex_dump, kind_of, read_entry)
from explorer.model.errors import ExplorerError
from explorer.image.loader import Image
from explorer.model.values import Entry
from explorer.formats.source import Source
from explorer.tree.diff import REMOVED
from explorer.tree.explain import dangling_text
from explorer.tree.resolve import link_target
from explorer.tree.views import Row
from explorer.ui import resources
from explorer.ui.format import human_size
from explorer.ui.workers import BackgroundCall

HIGHLIGHT_LIMIT = 256 << 10  # colouring more than this costs more than it shows
HEX_CHUNK = 64 << 10


class HexLayout(NamedTuple):
    """How a hex view lays out its lines: bytes a line, and compact (short offsets, single spaces)."""

    per_line: int
    compact: bool


# Widest first; the first that fits the panel is used. The classic lines (``hex_dump``) read
# best; a narrow panel gets shorter offsets and single spaces before it gets fewer bytes.
HEX_LAYOUTS = (HexLayout(16, False), HexLayout(8, False), HexLayout(8, True), HexLayout(4, True))


def offset_digits(size: int) -> int:
    """Hex digits a compact line's offset needs for a file of ``size`` bytes (at least 4)."""
    return max(4, len(f"{max(size - 1, 0):x}"))


def hex_lines(data: bytes, start: int, layout: HexLayout, size: int) -> str:
    """``data`` (found at ``start`` of a file of ``size`` bytes) as hex lines of ``layout``."""
    if not layout.compact:
        return hex_dump(data, start, layout.per_line)
    digits, width = offset_digits(size), layout.per_line * 3 - 1
    lines = []
    for i in range(0, len(data), layout.per_line):
        chunk = data[i : i + layout.per_line]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start + i:0{digits}x} {hexes:<{width}} {text}")
    return "\n".join(lines)


def widest_hex_line(layout: HexLayout, size: int) -> str:
    """The longest line ``layout`` makes for a file of ``size`` bytes (what must fit)."""
    return hex_lines(bytes(layout.per_line), 0, layout, size)


def choose_hex_layout(metrics: QFontMetrics | QFontMetricsF, width: float, size: int) -> HexLayout:
    """The widest of ``HEX_LAYOUTS`` whose lines fit ``width`` pixels in a font of ``metrics``."""
    for layout in HEX_LAYOUTS:
        if metrics.horizontalAdvance(widest_hex_line(layout, size)) <= width:
            return layout
    return HEX_LAYOUTS[-1]


def highlight(path: str, text: str, style: str = "default", language: str | None = None) -> str | None:
    """HTML with syntax colours for a file (by ``language``, a lexer's name, when the caller
    knows it; else by extension, else by shebang), or None."""
    from pygments import highlight as render
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename, guess_lexer
    from pygments.util import ClassNotFound

    name = path.rsplit("/", 1)[-1]
    try:
        # (by name: by file name, the first lookup compiles every lexer's patterns, 47 ms)
        lexer = get_lexer_by_name(language) if language else get_lexer_for_filename(name, text[:4096])
    except ClassNotFound:
        if not text.startswith("#!"):
            return None
        try:
            lexer = guess_lexer(text[:4096])  # reads the shebang
        except ClassNotFound:
            return None
    return render(text, lexer, HtmlFormatter(noclasses=True, nobackground=True, style=style))


PICTURE_MAX = 1024  # pixels a side for a drawn SVG

def decode_picture(path: str, data: bytes) -> QImage | None:
    """A picture's pixels: SVG drawn at most ``PICTURE_MAX`` a side whatever size it declares
    (a 120-byte SVG may declare 100000x100000: 40 GB), other formats by Qt's readers (which
    refuse images over their own allocation limit)."""
    image = QImage()
    if path.lower().endswith(".svg") or data.lstrip().startswith((b"<svg", b"<?xml")):
        renderer = QSvgRenderer(QByteArray(data))
        if not renderer.isValid():
            return None
        size = renderer.defaultSize()
        if size.isEmpty() or size.width() > PICTURE_MAX or size.height() > PICTURE_MAX:
            size = QSize(PICTURE_MAX, PICTURE_MAX) if size.isEmpty() else \
                size.scaled(PICTURE_MAX, PICTURE_MAX, Qt.AspectRatioMode.KeepAspectRatio)
        size = size.expandedTo(size.scaled(256, 256, Qt.AspectRatioMode.KeepAspectRatio))
        image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        renderer.render(painter)
        painter.end()
    else:
        image.loadFromData(data)
    return None if image.isNull() else image


class PreviewPanel(QWidget):
    """Shows one entry's content; big files are read a MiB at a time, on request."""

    follow_link = Signal(str)  # a symlink's target, to select it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("previewPanel")
        self.background = BackgroundCall(self)
        self.background.result.connect(self._on_result)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.title = QLabel("Select a file to see its content")
        self.title.setObjectName("previewTitle")
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.title)
        self.stack = QStackedWidget()
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.text = QTextBrowser(objectName="previewText")
        self.text.setAccessibleName("Preview")
        self.text.setFont(mono)
        self.text.setLineWrapMode(QTextBrowser.LineWrapMode.NoWrap)
        self.plain = QPlainTextEdit(objectName="previewPlain", readOnly=True)
        self.plain.setAccessibleName("Preview")
        self.plain.setFont(mono)
        self.plain.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.picture = QLabel(objectName="previewPicture")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea()
        scroll.setWidget(self.picture)
        scroll.setWidgetResizable(True)
        self.message = QLabel("", objectName="previewMessage")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.go = QPushButton("Go to target", objectName="previewFollow")
        self.go.clicked.connect(lambda: self.follow_link.emit(self._link_target))
        self.message_page = self._message_page()
        for w in (self.text, self.plain, scroll, self.message_page):
            self.stack.addWidget(w)
        layout.addWidget(self.stack, 1)
        row = QHBoxLayout()
        self.more = QPushButton("Load more", objectName="previewMore")
        self.more.clicked.connect(self.load_more)
        row.addWidget(self.more)
        row.addStretch(1)
        layout.addLayout(row)
        self._hex = b""  # the bytes the hex view shows, from the file's start
        self.hex_layout = HEX_LAYOUTS[0]
        self.plain.installEventFilter(self)  # a new width may fit more or fewer bytes a line
        self.more.hide()
        self.go.hide()
        self._source: Source | None = None
        self._image: Image | None = None
        self._entry: Entry | None = None
        self._loaded = 0
        self._kind = ""
        self._link_target = ""
        self._style = "default"

    def _message_page(self) -> QWidget:
        """The page for a sentence: centred alone, or at the top with "Go to target" under it."""
        page = QWidget(objectName="previewMessagePage")
        box = QVBoxLayout(page)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.message, 1)
        go_row = QHBoxLayout()
        go_row.addWidget(self.go)
        go_row.addStretch(1)
        box.addLayout(go_row)
        box.addStretch(0)
        self._message_box = box
        return page

    # -- showing ----------------------------------------------------------------------------

    def clear(self) -> None:
        """Show nothing."""
        self._entry = None
        self.title.setText("Select a file to see its content")
        self._say("")

    def show_row(self, source: Source, image: Image, row: Row, layer: int | None = None) -> None:
        """Preview a row of the tree after ``layer`` (a removed file shows its last content)."""
        self._source, self._image, self._entry = source, image, row.entry
        e = row.entry
        self._loaded = 0
        self._hex = b""
        self.more.hide()
        self.go.hide()
        removed = f" — removed; content as it was in layer {e.layer}" if row.change == REMOVED else ""
        size = f", {human_size(e.size)}" if e.type in ("file", "hardlink") else ""  # others hold no bytes
        self.title.setText(f"<b>{html.escape(row.path)}</b> ({html.escape(e.type)}{size}){removed}")
        if e.type == "symlink":
            self._show_link(image, e, layer)
            return
        if e.type == "dir":
            self._say("A folder: select a file in it to see its content.")
            return
        if e.type not in ("file", "hardlink"):
            self._say(f"A {e.type}: it has no content to show.")
            return
        self._say("reading…")
        entry = e
        self._style = "monokai" if resources.is_dark() else "default"  # chosen here: Qt is GUI-thread only
        self.background.run("preview", lambda _m: (entry, self._read(entry, 0)))

    def _show_link(self, image: Image, link: Entry, layer: int | None) -> None:
        """Where a symlink leads inside the image, and a way there when it leads somewhere."""
        found = link_target(image.tree, link, layer)
        self._say(f"Symbolic link to\n{link.target}\n\n{found.describe()}", top=True)
        leads = found.entry is not None and found.problem is None
        self._link_target = found.path if leads else ""
        self.go.setEnabled(leads)
        if leads:
            self.go.setToolTip(f"Select {found.path}")
        elif found.problem is None:
            self.go.setToolTip(f"{found.path} is not in the image")
        else:
            self.go.setToolTip(dangling_text(found))
        self.go.show()

    def _read(self, entry: Entry, offset: int) -> tuple[bytes, str] | str:
        """Off the GUI thread: the next MiB and how to show it (or an error message)."""
        assert self._source is not None and self._image is not None
        try:
            data = read_entry(self._source, self._image, entry, offset=offset, limit=PREVIEW_LIMIT)
        except (ContentError, ExplorerError, OSError) as exc:
            return str(exc)
        kind = kind_of(entry, data) if offset == 0 else self._kind
        coloured = None
        if kind == TEXT and offset == 0 and len(data) <= HIGHLIGHT_LIMIT:
            coloured = highlight(entry.path, decode_text(data), self._style)
        if kind == PICTURE and offset == 0:
            coloured = decode_picture(entry.path, data)  # painting a QImage is safe off the GUI thread
        return data, kind, coloured  # type: ignore[return-value]

    def load_more(self) -> None:
        """Read the next MiB of a big file."""
        entry = self._entry
        if entry is None:
            return
        offset = self._loaded
        self.more.setEnabled(False)
        self.background.run("preview", lambda _m: (entry, self._read(entry, offset)))

    def _on_result(self, value: object) -> None:
        entry, result = value  # type: ignore[misc]
        if entry is not self._entry:
            return  # the selection moved on
        self.more.setEnabled(True)
        if isinstance(result, str):
            self._say(result)
            return
        data, kind, coloured = result
        first = self._loaded == 0
        self._loaded += len(data)
        self._kind = kind
        if kind == PICTURE:
            self._show_picture(coloured)
        elif kind == EMPTY:
            self._say("An empty file.")
        elif kind == TEXT:
            if coloured and first:
                self.text.setHtml(coloured)
                self.stack.setCurrentWidget(self.text)
            else:
                if first:
                    self.plain.setPlainText(decode_text(data))
                else:
                    self.plain.appendPlainText(decode_text(data))
                self.stack.setCurrentWidget(self.plain)
        elif kind == BINARY:
            shown = data[:HEX_CHUNK] if first else data
            if first:
                self._hex = b""
                self.hex_layout = self._fitting_hex_layout(entry.size)
                self._loaded = min(self._loaded, HEX_CHUNK)
            dump = hex_lines(shown, len(self._hex), self.hex_layout, entry.size)
            self._hex += shown
            if first:
                self.plain.setPlainText(dump)
            else:
                self.plain.appendPlainText(dump)
            self.stack.setCurrentWidget(self.plain)
        self.more.setVisible(kind in (TEXT, BINARY) and self._loaded < entry.size)
        if not self.more.isHidden():
            self.more.setText(f"Load more ({human_size(self._loaded)} of {human_size(entry.size)} shown)")

    def _show_picture(self, image: QImage | None) -> None:
        """Show a picture decoded off the GUI thread (None: it could not be)."""
        if image is None or image.isNull():
            self._say("This picture cannot be shown (it may be damaged, or only partly read).")
            return
        self.picture.setPixmap(QPixmap.fromImage(image))
        self.picture.setToolTip(f"{image.width()} × {image.height()} pixels")
        self.stack.setCurrentIndex(2)

    def _say(self, text: str, top: bool = False) -> None:
        """Show a sentence: centred, or ``top`` left like the details of a link (with its button)."""
        self.message.setText(text)
        corner = Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft
        self.message.setAlignment(corner if top else Qt.AlignmentFlag.AlignCenter)
        self._message_box.setStretch(0, 0 if top else 1)  # the label fills the page only when centred
        self._message_box.setStretch(2, 1 if top else 0)
        self.stack.setCurrentWidget(self.message_page)

    # -- the hex view -----------------------------------------------------------------------

    def hex_width(self) -> float:
        """Pixels a hex line may take: the page's width less frame, scroll bar and margins."""
        plain = self.plain
        # the stack's width, not the editor's: a page not shown yet keeps a stale size
        frame = 2 * plain.frameWidth() + plain.verticalScrollBar().sizeHint().width()
        return self.stack.contentsRect().width() - frame - 2 * plain.document().documentMargin() - 2

    def _fitting_hex_layout(self, size: int) -> HexLayout:
        return choose_hex_layout(QFontMetricsF(self.plain.font()), self.hex_width(), size)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        """Lay the hex view out again when its width fits another number of bytes a line."""
        if watched is self.plain and event.type() == QEvent.Type.Resize and self._hex and self._entry is not None:
            layout = self._fitting_hex_layout(self._entry.size)
            if layout != self.hex_layout:
                self._relayout_hex(layout)
        return super().eventFilter(watched, event)

    def _relayout_hex(self, layout: HexLayout) -> None:
        """Show the hex bytes in ``layout``, keeping the first byte in sight at the top."""
        assert self._entry is not None
        top = self.plain.firstVisibleBlock().blockNumber() * self.hex_layout.per_line
        self.hex_layout = layout
        self.plain.setPlainText(hex_lines(self._hex, 0, layout, self._entry.size))
        self.plain.verticalScrollBar().setValue(top // layout.per_line)

    def current_kind(self) -> str:
        """What is shown: text, binary, image, link, folder, ... (for tests and tools)."""
        if self.stack.currentWidget() is self.message_page:
            return LINK if not self.go.isHidden() else (FOLDER if "folder" in self.message.text() else "message")
        return self._kind
