"""The one kind of error dialog, the picker for multi-image sources, and the choice of two
sources to compare."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from explorer.model.values import ImageRef
from explorer.formats.source import Source, host


def error_dialog(parent: QWidget | None, title: str, message: str) -> QMessageBox:
    """A non-blocking error dialog carrying the core's message (the window stays usable)."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorDialog")
    if not message.rstrip().endswith(")"):  # a message with its own advice (in brackets) needs no other
        box.setInformativeText("Check that the file is a complete image archive written by docker save, "
                               "podman save or an OCI tool, then open it again.")
    box.setModal(False)
    box.show()
    return box


class ImagePicker(QDialog):
    """Choose one image of a multi-image archive or one platform of an index."""

    def __init__(self, source: Source, parent: QWidget | None = None, side: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("imagePicker")
        # ``side``: the image is one side (A or B) of a comparison, not one to open
        self.setWindowTitle(f"Compare: choose image {side}" if side else "Choose an image")
        layout = QVBoxLayout(self)
        which = f"Which one is {side}?" if side else "Which one?"
        layout.addWidget(QLabel(f"{source.info.path} holds {len(source.images)} images. {which}"))
        self.list = QListWidget(objectName="imageList")
        self.list.setAccessibleName("Images in the source")
        preferred = 0
        for ref in source.images:
            tags = ", ".join(ref.tags) or "untagged"
            item = QListWidgetItem(f"{tags}   {ref.platform or 'unknown platform'}   {ref.config_digest[:19]}")
            self.list.addItem(item)
            if ref.platform.startswith(host()) and preferred == 0:
                preferred = ref.index
        self.list.setCurrentRow(preferred)
        self.list.itemDoubleClicked.connect(lambda _i: self.accept())
        layout.addWidget(self.list)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        if side:
            buttons.button(QDialogButtonBox.StandardButton.Open).setText("Choose")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.source = source
        self.resize(640, 320)

    def chosen(self) -> ImageRef:
        """The selected image."""
        return self.source.images[max(0, self.list.currentRow())]


def ask_image(source: Source, parent: QWidget | None, side: str, default: ImageRef) -> ImageRef | None:
    """Side ``side``'s image of a comparison: the only one, else the user's choice (None: cancelled)."""
    if len(source.images) == 1:
        return source.images[0]
    picker = ImagePicker(source, parent, side)
    picker.list.setCurrentRow(default.index)
    accepted = picker.exec() == QDialog.DialogCode.Accepted
    ref = picker.chosen() if accepted else None
    picker.deleteLater()  # a child of the window otherwise, holding the source
    return ref


ARCHIVE_FILTER = "Image archives (*.tar *.tar.gz *.tgz *.tar.zst *.tar.xz *.tar.bz2 *.oci);;All files (*)"


class SourceField(QWidget):
    """One image source typed or browsed for: an archive file or an OCI layout folder."""

    def __init__(self, side: str, start_dir: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"source{side}")
        self.side, self.start_dir = side, start_dir
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit(objectName="path")
        self.edit.setPlaceholderText("an image archive or an OCI layout folder")
        self.edit.setMinimumWidth(360)
        row.addWidget(self.edit, 1)
        # A layout folder is a directory, which a file dialog cannot return: one button for each.
        for text, name, slot in (("Archive…", "archiveButton", self.browse_archive),
                                 ("Folder…", "folderButton", self.browse_folder)):
            button = QPushButton(text, objectName=name)
            button.clicked.connect(slot)
            row.addWidget(button)

    def browse_archive(self) -> None:
        """Choose an archive file."""
        path, _ = QFileDialog.getOpenFileName(self, f"Compare: image {self.side} (an archive)", self._start(), ARCHIVE_FILTER)
        if path:
            self.edit.setText(path)

    def browse_folder(self) -> None:
        """Choose an OCI layout folder."""
        path = QFileDialog.getExistingDirectory(self, f"Compare: image {self.side} (an OCI layout folder)", self._start())
        if path:
            self.edit.setText(path)

    def path(self) -> str:
        """The source as typed or chosen."""
        return self.edit.text().strip()

    def _start(self) -> str:
        return self.path() or self.start_dir


class CompareDialog(QDialog):
    """Choose the two images of a comparison; ``fixed_a`` names A when it is already chosen (a tab)."""

    def __init__(self, start_dir: str, parent: QWidget | None = None, fixed_a: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("compareDialog")
        self.setWindowTitle("Compare two images")
        form = QFormLayout(self)
        self.a = None if fixed_a else SourceField("A", start_dir)
        form.addRow("A:", QLabel(fixed_a) if fixed_a else self.a)
        self.b = SourceField("B", start_dir)
        form.addRow("B:", self.b)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Compare")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        for field in (self.a, self.b):
            if field is not None:
                field.edit.textChanged.connect(lambda _t: self._enable())
        self._enable()

    def paths(self) -> tuple[str, str]:
        """A's and B's source as chosen (A's is empty when it was fixed)."""
        return (self.a.path() if self.a is not None else "", self.b.path())

    def _enable(self) -> None:
        a, b = self.paths()
        ready = bool(b) and (bool(a) or self.a is None)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ready)
