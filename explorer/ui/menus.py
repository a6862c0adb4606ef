"""The window's menu bar: every command, with its shortcut (which works with the bar hidden too)."""

from __future__ import annotations

import os

from PySide6.QtGui import QAction, QActionGroup, QKeySequence

from explorer.ui import theme
from explorer.ui.image_view import ImageView


def make_menus(window) -> None:
    """Fill the menu bar of ``window`` (a MainWindow); it keeps ``recent_menu``, ``cache_action``
    and ``theme_actions`` to update later."""

    def add(menu, text: str, slot, shortcut=None, name: str = "") -> QAction:
        action = QAction(text, window)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        if name:
            action.setObjectName(name)
        menu.addAction(action)
        window.addAction(action)  # shortcuts work even with the menu bar hidden
        return action

    bar = window.menuBar()
    file = bar.addMenu("&File")
    add(file, "&Open archive…", window.open_file_dialog, QKeySequence.StandardKey.Open, "actionOpen")
    add(file, "Open &folder…", window.open_folder_dialog, "Ctrl+Shift+O", "actionOpenFolder")
    add(file, "Open &sample image", window.open_sample, None, "actionSample")
    add(file, "Open from &engine (Docker, Podman)…", window.open_engine_dialog, "Ctrl+Alt+O", "actionOpenEngine")
    add(file, "Open from re&gistry…", window.open_registry_dialog, "Ctrl+Alt+R", "actionOpenRegistry")
    add(file, "Open &container…", window.open_container_dialog, "Ctrl+Alt+C", "actionOpenContainer")
    add(file, "Co&mpare two images…", window.compare_dialog, "Ctrl+Shift+D", "actionCompare2")
    add(file, "Compare &with…", window.compare_with_dialog, None, "actionCompareWith")
    add(file, "Open &versions (what each update downloads)…", window.open_versions_dialog, "Ctrl+Shift+U",
        "actionOpenVersions")
    add(file, "Open a fl&eet (layers many images share)…", window.open_fleet_dialog, None, "actionOpenFleet")
    window.recent_menu = file.addMenu("Open &recent")
    file.addSeparator()
    add(file, "&Extract selected…", lambda: window.with_view(ImageView.extract_selected), "Ctrl+Shift+X", "actionExtract")
    add(file, "Extract whole &filesystem…", lambda: window.with_view(ImageView.extract_all), None, "actionExtractAll")
    add(file, "Save layer &tar…", lambda: window.with_view(ImageView.save_layer_tar), None, "actionSaveLayer")
    file.addSeparator()
    add(file, "&Close tab", lambda: window.close_tab(window.tabs.currentIndex()), QKeySequence.StandardKey.Close, "actionClose")
    add(file, "&Quit", window.close, QKeySequence.StandardKey.Quit, "actionQuit")
    view = bar.addMenu("&View")
    add(view, "&Find…", lambda: window.with_view(ImageView.focus_search), QKeySequence.StandardKey.Find, "actionFind")
    add(view, "Toggle merged view / layer &changes", lambda: window.with_view(ImageView.toggle_mode), "Ctrl+D", "actionToggleMode")
    add(view, "&Next layer", lambda: window.with_view(lambda v: v.step_layer(1)), "Alt+Down", "actionNextLayer")
    add(view, "&Previous layer", lambda: window.with_view(lambda v: v.step_layer(-1)), "Alt+Up", "actionPreviousLayer")
    add(view, "&All layers (final image)", lambda: window.with_view(lambda v: v.set_layer(None)), "Alt+Home", "actionAllLayers")
    view.addSeparator()
    add(view, "&Expand all", lambda: window.with_view(ImageView.expand_all), "Ctrl+E", "actionExpandAll")
    add(view, "C&ollapse all", lambda: window.with_view(ImageView.collapse_all), "Ctrl+Shift+E", "actionCollapseAll")
    add(view, "Sort by &size", lambda: window.with_view(ImageView.sort_by_size), "Ctrl+Shift+S", "actionSortSize")
    add(view, "Copy &path", lambda: window.with_view(ImageView.copy_path), "Ctrl+Shift+C", "actionCopyPath")
    view.addSeparator()
    window.cache_action = add(view, "Use the index &cache", window.toggle_cache, None, "actionIndexCache")
    window.cache_action.setCheckable(True)
    if os.environ.get("LAYER_EXPLORER_NO_INDEX_CACHE"):
        window.cache_action.setChecked(False)  # turned off from outside (the environment): leave it so
    else:
        window.cache_action.setChecked(window.settings.value("indexCache", "true") in ("true", True))
        window.toggle_cache(window.cache_action.isChecked())
    view.addSeparator()
    add(view, "&Insights", lambda: window.with_view(ImageView.show_insights), "Ctrl+I", "actionInsights")
    add(view, "Fi&les", lambda: window.with_view(lambda v: v.center_tabs.setCurrentIndex(0)), "Ctrl+L", "actionFiles")
    add(view, "Ins&pect", lambda: window.with_view(ImageView.show_inspect), "Ctrl+Shift+I", "actionInspect")
    add(view, "Pac&kages", lambda: window.with_view(ImageView.show_packages), "Ctrl+K", "actionPackages")
    add(view, "&Verify digests", lambda: window.with_view(ImageView.verify), None, "actionVerify")
    add(view, "Show &preview", lambda: window.with_view(lambda v: v.side_tabs.setCurrentWidget(v.preview)), "Ctrl+1", "actionPreview")
    add(view, "Show co&mparison", lambda: window.with_view(lambda v: v.side_tabs.setCurrentWidget(v.compare)), "Ctrl+2", "actionCompare")
    add(view, "Show &details", lambda: window.with_view(lambda v: v.side_tabs.setCurrentWidget(v.details)), "Ctrl+3", "actionDetails")
    view.addSeparator()
    looks = view.addMenu("&Theme")
    group = QActionGroup(window)
    window.theme_actions = themes = {}
    for choice, text in ((theme.SYSTEM, "Follow the &system"), (theme.LIGHT, "&Light"), (theme.DARK, "&Dark")):
        action = add(looks, text, lambda _on, c=choice: window.apply_theme(c), None, f"theme_{choice}")
        action.setCheckable(True)
        group.addAction(action)
        themes[choice] = action
    help_menu = bar.addMenu("&Help")
    shortcuts = add(help_menu, "&Keyboard shortcuts…", window.show_shortcuts, "F1", "actionShortcuts")
    shortcuts.setShortcuts([QKeySequence("F1"), QKeySequence("Ctrl+/")])
    add(help_menu, "&About Layer Explorer", window.about)
