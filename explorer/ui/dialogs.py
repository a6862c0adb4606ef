"""The one kind of error dialog, and the picker for multi-image sources."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from explorer.image.model import ImageRef
from explorer.image.source import Source, host


def error_dialog(parent: QWidget | None, title: str, message: str) -> QMessageBox:
    """A non-blocking error dialog carrying the core's message (the window stays usable)."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorDialog")
    box.setInformativeText("Check that the file is a complete image archive written by docker save, "
                           "podman save or an OCI tool, then open it again.")
    box.setModal(False)
    box.show()
    return box


class ImagePicker(QDialog):
    """Choose one image of a multi-image archive or one platform of an index."""

    def __init__(self, source: Source, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imagePicker")
        self.setWindowTitle("Choose an image")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{source.info.path} holds {len(source.images)} images. Which one?"))
        self.list = QListWidget(objectName="imageList")
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
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.source = source
        self.resize(640, 320)

    def chosen(self) -> ImageRef:
        """The selected image."""
        return self.source.images[max(0, self.list.currentRow())]
