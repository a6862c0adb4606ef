"""The window's look: the Fusion style with a light or a dark palette (the system's, or chosen)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

SYSTEM, LIGHT, DARK = "system", "light", "dark"
THEMES = (SYSTEM, LIGHT, DARK)
ACCENT = "#2f6fb3"  # the selection and focus colour, from the icon's blue

def wants_dark(choice: str) -> bool:
    """Whether ``choice`` means a dark palette here (``system`` asks the desktop)."""
    if choice == DARK:
        return True
    if choice == LIGHT:
        return False
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def palette(dark: bool) -> QPalette:
    """A full palette: Fusion's light one, or a dark one of the same roles."""
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    pal = app.style().standardPalette()
    if dark:
        colours = {
            QPalette.ColorRole.Window: "#2b2d30", QPalette.ColorRole.WindowText: "#e6e6e6",
            QPalette.ColorRole.Base: "#1f2023", QPalette.ColorRole.AlternateBase: "#292b2f",
            QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#34373b",
            QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.ToolTipBase: "#3a3d42",
            QPalette.ColorRole.ToolTipText: "#f0f0f0", QPalette.ColorRole.PlaceholderText: "#8c8f94",
            QPalette.ColorRole.Light: "#4a4d52", QPalette.ColorRole.Midlight: "#3d4045",
            QPalette.ColorRole.Mid: "#55585d", QPalette.ColorRole.Dark: "#1a1b1e", QPalette.ColorRole.Shadow: "#111214",
            QPalette.ColorRole.BrightText: "#ffffff", QPalette.ColorRole.Link: "#7fb4ef",
        }
        for role, code in colours.items():
            pal.setColor(role, QColor(code))
        for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
            pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7d8085"))
    pal.setColor(QPalette.ColorRole.Highlight, QColor(ACCENT))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    return pal


def apply(choice: str) -> bool:
    """Give the application the look ``choice`` asks for; return whether it is dark."""
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")  # one look everywhere, and a palette every platform honours
    dark = wants_dark(choice if choice in THEMES else SYSTEM)
    # No application style sheet: it made every widget of a new tab polish through Qt's
    # style-sheet style, 45 ms more on the GUI thread when an image opens.
    app.setPalette(palette(dark))
    return dark
