"""The main window: menus, tabs of open images, the start page; what it opens goes through ``OpenFlow``."""

from __future__ import annotations

import os
import re
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QTabWidget,
    QWidget,
)

from explorer import __version__
from explorer.image.loader import blank_image
from explorer.ui import remembered, resources, theme
from explorer.ui.compare_flow import CompareFlow
from explorer.ui.dialogs import ARCHIVE_FILTER, CompareDialog, error_dialog
from explorer.ui.image_view import ImageView
from explorer.ui.load_progress import LoadProgress
from explorer.ui.menus import make_menus
from explorer.ui.open_flow import OpenFlow
from explorer.ui.start_page import StartPage
from explorer.ui.workers import BackgroundCall, LoadController, discard

# ms after the window first shows: past its first paint, long before anyone drops an image on it
WARM_UP_DELAY = 100


class MainWindow(QMainWindow):
    """Layer Explorer's window."""

    image_loaded = Signal(object)  # ImageView
    layers_shown = Signal(object)  # ImageView: layers and history, before the files are read
    files_shown = Signal(object)  # ImageView: the files too (on a big image, before their accounting)
    comparison_ready = Signal(object)  # ComparisonView
    many_ready = Signal(object)  # UpdatesView or FleetView
    load_failed = Signal(str)  # message

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Layer Explorer")
        self.setWindowIcon(resources.app_icon())
        self.setAcceptDrops(True)
        # The default format and path are honoured, so tests and screenshots can divert them.
        self.settings = settings or QSettings(QSettings.defaultFormat(), QSettings.Scope.UserScope, "layer-explorer", "layer-explorer")
        self.loader = LoadController(self)
        self.loader.compared.connect(self._on_compared)
        self.compare_flow = CompareFlow(self, self.loader, self._compare_dropped)
        self.opening = OpenFlow(self, self.loader, self.compare_flow)
        self.many_call = BackgroundCall(self)  # updates and fleets, measured off the GUI thread
        self.many_call.result.connect(self._on_many)
        self.many_call.failed.connect(self._on_many_failed)
        self.dialogs: list[QWidget] = []  # open error dialogs (tests close them)

        self.start_page = StartPage()
        self.start_page.open_file.connect(self.open_file_dialog)
        self.start_page.open_folder.connect(self.open_folder_dialog)
        self.start_page.open_sample.connect(self.open_sample)
        self.start_page.open_recent.connect(lambda p: self.open_paths([p]))
        self.tabs = QTabWidget(objectName="imageTabs")
        self.tabs.setTabsClosable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.tabCloseRequested.connect(self.close_tab)
        self.tabs.currentChanged.connect(lambda _i: self.update_status())
        self.stack = QStackedWidget()
        self.stack.addWidget(self.start_page)
        self.stack.addWidget(self.tabs)
        self.setCentralWidget(self.stack)

        self.status_label = QLabel("Drop an image archive on the window, or use File > Open.", objectName="statusText")
        self.statusBar().addWidget(self.status_label, 1)
        self.load_progress = LoadProgress(self.statusBar(), self.status_label, self.loader, self.update_status)
        self.progress, self.cancel_button = self.load_progress.progress, self.load_progress.cancel_button
        make_menus(self)
        self.apply_theme(str(self.settings.value("appearance/theme", theme.SYSTEM)))
        QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _scheme: self._follow_system())
        self.refresh_recent()
        remembered.restore_geometry(self.settings, self)
        self._views_warm = False

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        """Once the window is up, build a view of nothing in an idle moment (``_build_view_ahead``)."""
        super().showEvent(event)
        if not self._views_warm:
            self._views_warm = True
            QTimer.singleShot(WARM_UP_DELAY, self, self._build_view_ahead)

    def _build_view_ahead(self) -> None:
        """Build and drop a view of an empty image: the first view a process builds pays Qt's
        and Qt for Python's first-use costs (styles polished, enum types made), 35 to 40 ms of
        its 55; paid here, at start, they are not paid when the first image is dropped."""
        discard(ImageView(None, blank_image()))  # type: ignore[arg-type] (it reads nothing)

    # -- menus ----------------------------------------------------------------------------

    def apply_theme(self, choice: str) -> None:
        """Use a theme (system, light, dark) and remember it."""
        choice = choice if choice in theme.THEMES else theme.SYSTEM
        self.theme = choice
        self.settings.setValue("appearance/theme", choice)
        self.theme_actions[choice].setChecked(True)
        theme.apply(choice)

    def _follow_system(self) -> None:
        """The desktop switched between light and dark: follow it, unless the user chose."""
        if self.theme == theme.SYSTEM:
            theme.apply(theme.SYSTEM)

    def toggle_cache(self, on: bool) -> None:
        """The setting that turns the index cache on or off (as --no-cache does)."""
        self.settings.setValue("indexCache", "true" if on else "false")
        if on:
            os.environ.pop("LAYER_EXPLORER_NO_INDEX_CACHE", None)
        else:
            os.environ["LAYER_EXPLORER_NO_INDEX_CACHE"] = "1"

    def with_view(self, fn) -> None:
        """Call ``fn`` with the current tab's image view, when there is one."""
        view = self.current_view()
        if view is not None:
            fn(view)

    def show_shortcuts(self) -> None:
        """Help > Keyboard shortcuts: every key the window answers to."""
        from explorer.ui.shortcuts_dialog import ShortcutsDialog

        dialog = ShortcutsDialog(self.menuBar(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialogs.append(dialog)
        dialog.finished.connect(lambda _r: self.dialogs.remove(dialog) if dialog in self.dialogs else None)
        dialog.show()

    def about(self) -> None:
        """Help > About: the version and what the tool is for."""
        QMessageBox.about(self, "About Layer Explorer",
                          f"<b>Layer Explorer {__version__}</b><p>Look inside container images: layers, "
                          "history, and the files each layer added, modified or removed.</p>")

    # -- opening --------------------------------------------------------------------------

    def open_file_dialog(self) -> None:
        """File > Open: pick archive files."""
        paths, _ = QFileDialog.getOpenFileNames(self, "Open image archives", remembered.last_dir(self.settings), ARCHIVE_FILTER)
        self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        """File > Open folder: an OCI layout folder."""
        path = QFileDialog.getExistingDirectory(self, "Open an OCI layout folder", remembered.last_dir(self.settings))
        if path:
            self.open_paths([path])

    def open_sample(self) -> None:
        """Open the bundled sample image."""
        self.open_paths([str(resources.sample_image())])

    def open_engine_dialog(self) -> None:
        """File > Open from engine: list the local images, open the chosen one."""
        from explorer.ui.engine_dialog import EngineDialog

        dialog = EngineDialog(self)
        chosen = dialog.source() if dialog.exec() == QDialog.DialogCode.Accepted else None
        dialog.deleteLater()
        if chosen:
            self.open_paths([chosen])

    def open_container_dialog(self) -> None:
        """File > Open container: a container's image with its writable layer on top."""
        from explorer.ui.engine_dialog import EngineDialog

        dialog = EngineDialog(self, containers=True)
        chosen = dialog.source() if dialog.exec() == QDialog.DialogCode.Accepted else None
        dialog.deleteLater()
        if chosen:
            self.open_paths([chosen])

    def open_registry_dialog(self) -> None:
        """File > Open from registry: a reference like registry://ghcr.io/org/app:1.0."""
        from PySide6.QtWidgets import QInputDialog

        text, ok = QInputDialog.getText(
            self, "Open from a registry",
            "Image reference (registry://HOST[:PORT]/REPOSITORY[:TAG] or …@sha256:DIGEST;\n"
            "registry+http:// for a plain-HTTP registry such as a local test one):",
            text=str(self.settings.value("lastRegistry", "registry://")))
        if ok and text.strip():
            ref = text.strip()
            if "://" not in ref:
                ref = "registry://" + ref
            self.settings.setValue("lastRegistry", ref)
            self.open_paths([ref])

    def compare_dialog(self) -> None:
        """File > Compare two images: choose A and B (each an archive or an OCI layout folder)."""
        dialog = CompareDialog(remembered.last_dir(self.settings), self)
        paths = dialog.paths() if dialog.exec() == QDialog.DialogCode.Accepted else None
        dialog.deleteLater()
        if paths:
            self.compare_paths(*paths)

    def compare_with_dialog(self) -> None:
        """Compare the image of the current tab (A) with another one (B)."""
        view = self.current_view()
        if view is None:
            self.compare_dialog()
            return
        dialog = CompareDialog(remembered.last_dir(self.settings), self, fixed_a=f"{view.title()} (this tab)")
        dialog.setWindowTitle(f"Compare {view.title()} with…")
        b = dialog.paths()[1] if dialog.exec() == QDialog.DialogCode.Accepted else ""
        dialog.deleteLater()
        if b:
            self.compare_paths(view.source.info.path, b, a_index=view.image.ref.index)

    def compare_paths(self, a: str, b: str, a_index: int | None = None, b_index: int | None = None,
                      a_platform: str | None = None, b_platform: str | None = None) -> None:
        """Compare two images in a new tab (loaded in the background); a side with several
        images and no index or platform given is asked about first."""
        self.opening.drop_preview()  # a load still running is replaced: its tab goes with it
        self.compare_flow.start(a, b, a_index, b_index, a_platform, b_platform)

    def _compare_dropped(self) -> None:
        """A comparison's picker was cancelled: nothing to show; go on with the queue."""
        self.update_status()
        self.opening.next()

    def _on_compared(self, a, b, cmp) -> None:
        from explorer.ui.comparison_view import ComparisonView

        view = ComparisonView(a, b, cmp)
        index = self.tabs.addTab(view, view.title())
        self.tabs.setTabToolTip(index, f"A: {a.info.path}\nB: {b.info.path}")
        self.tabs.setCurrentIndex(index)
        self.stack.setCurrentWidget(self.tabs)
        self.update_status()
        self.comparison_ready.emit(view)
        self.opening.next()  # sources dropped meanwhile waited in the queue

    def open_versions_dialog(self) -> None:
        """File > Open versions: archives of one image, oldest first (sorted by name)."""
        paths, _ = QFileDialog.getOpenFileNames(self, "Versions of one image (oldest first by name)", remembered.last_dir(self.settings),
                                                ARCHIVE_FILTER)
        if len(paths) >= 2:
            self.open_many("updates", sorted(paths, key=natural))

    def open_fleet_dialog(self) -> None:
        """File > Open a fleet: many archives."""
        paths, _ = QFileDialog.getOpenFileNames(self, "Images of a fleet", remembered.last_dir(self.settings), ARCHIVE_FILTER)
        if paths:
            self.open_many("fleet", paths)

    def open_many(self, kind: str, paths: list[str]) -> None:
        """Measure updates across versions (``updates``) or what a fleet shares (``fleet``), in
        a worker process (each image indexed once, on every core), then show it in a tab."""
        from explorer.image.elsewhere import measure_many

        def work(monitor):
            return kind, measure_many(kind, paths, monitor), paths

        self.many_call.run("many", work)
        self.status_label.setText(f"reading {len(paths)} images for {'the updates' if kind == 'updates' else 'the fleet'}…")

    def _on_many(self, value) -> None:
        from explorer.ui.updates_view import FleetView, UpdatesView

        kind, report, paths = value
        view = UpdatesView(report) if kind == "updates" else FleetView(report)
        if kind == "updates":
            view.compare_step.connect(lambda a, b: self.compare_paths(paths[a], paths[b]))
        index = self.tabs.addTab(view, view.title())
        self.tabs.setCurrentIndex(index)
        self.stack.setCurrentWidget(self.tabs)
        self.update_status()
        self.many_ready.emit(view)

    def _on_many_failed(self, message: str) -> None:
        self.status_label.setText("")
        self.load_failed.emit(message)
        self.dialogs.append(error_dialog(self, "Cannot measure these images", message))

    def open_paths(self, paths: list[str]) -> None:
        """Open sources one after another (each in its own tab)."""
        self.opening.open(paths)

    # -- tabs, status, settings -----------------------------------------------------------

    def current_view(self) -> ImageView | None:
        """The image view of the current tab."""
        w = self.tabs.currentWidget()
        return w if isinstance(w, ImageView) else None

    def close_tab(self, index: int) -> None:
        """Close one tab (and release its archive)."""
        view = self.tabs.widget(index)
        if view is None or not hasattr(view, "close_source"):
            return
        if view is self.opening.preview:  # still loading: stop that, which closes the source
            self.opening.close_preview()
            return
        if isinstance(view, ImageView):
            remembered.save_panes(self.settings, view)
        self.tabs.removeTab(index)
        view.close_source()
        discard(view)
        if self.tabs.count() == 0:
            self.stack.setCurrentWidget(self.start_page)
        self.update_status()

    def update_status(self) -> None:
        """The status bar and the window's title say what the current tab shows."""
        view = self.tabs.currentWidget() if self.tabs.count() else None
        if view is not None and hasattr(view, "status_text"):
            self.status_label.setText(view.status_text())
            self.setWindowTitle(f"{view.title()} — Layer Explorer")
        else:
            self.status_label.setText("Drop an image archive on the window, or use File > Open.")
            self.setWindowTitle("Layer Explorer")

    def recent_files(self) -> list[str]:
        """Recently opened sources, newest first."""
        return remembered.recent_files(self.settings)

    def refresh_recent(self) -> None:
        """The start page and File > Open recent list the recent files."""
        recent = self.recent_files()
        self.start_page.set_recent(recent)
        self.recent_menu.clear()
        for path in recent:
            self.recent_menu.addAction(path, lambda p=path: self.open_paths([p]))
        self.recent_menu.setEnabled(bool(recent))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        self.loader.cancel(quiet=True)
        self.many_call.cancel_all()
        remembered.save_geometry(self.settings, self)
        view = self.current_view()
        if view is not None:
            remembered.save_panes(self.settings, view)
        self.opening.drop_preview()  # (the load closes its source, or it gives it back to the load)
        for i in range(self.tabs.count()):
            w = self.tabs.widget(i)
            if hasattr(w, "close_source"):
                w.close_source()
        # written now: the console script ends the process without tearing Qt down, so a
        # write left for the event loop or the settings' destructor would be lost
        self.settings.sync()
        super().closeEvent(event)

    # -- drag and drop --------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if isinstance(u, QUrl) and u.isLocalFile()]
        if len(paths) == 2:
            event.acceptProposedAction()
            self.compare_paths(*paths)  # two at once: the user wants them side by side
        elif len(paths) > 2:
            event.acceptProposedAction()
            self._ask_many(paths)
        elif paths:
            event.acceptProposedAction()
            self.open_paths(paths)


    def _ask_many(self, paths: list[str]) -> None:
        """Several archives dropped at once: each in a tab, as versions of one image, or as a fleet."""
        box = QMessageBox(QMessageBox.Icon.Question, "Open several images",
                          f"{len(paths)} archives were dropped. Open each in its own tab, measure them as versions "
                          "of one image (oldest first by name), or as a fleet?", QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("askMany")
        each = box.addButton("Open &each", QMessageBox.ButtonRole.AcceptRole)
        versions = box.addButton("As &versions", QMessageBox.ButtonRole.AcceptRole)
        fleet = box.addButton("As a &fleet", QMessageBox.ButtonRole.AcceptRole)

        def chosen(button) -> None:
            if button is each:
                self.open_paths(paths)
            elif button is versions:
                self.open_many("updates", sorted(paths, key=natural))
            elif button is fleet:
                self.open_many("fleet", paths)

        box.buttonClicked.connect(chosen)
        self.dialogs.append(box)
        box.finished.connect(lambda _r: self.dialogs.remove(box) if box in self.dialogs else None)
        box.open()


def natural(path: str) -> list[Any]:
    """A sort key that puts ``v2`` before ``v10``: digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]

