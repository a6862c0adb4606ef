"""Before Qt picks a platform plugin: find what would make it abort, and say it in one line.

Qt's xcb plugin aborts the process (SIGABRT) when a library it links is missing or the X
server cannot be reached; nothing in Python can catch that. So the libraries the plugin
needs are loaded here first, by name, and the display is opened once with libxcb itself.
Nothing in this module imports Qt.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Callable, Mapping

# What the xcb plugin of the PySide6 wheels links (objdump -p libqxcb.so libQt6XcbQpa.so.6),
# beyond what every desktop has, with the Debian/Ubuntu and Fedora packages that hold each.
XCB_LIBRARIES: dict[str, tuple[str, str]] = {
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
}

Loader = Callable[[str], object]


def _load(name: str) -> object:
    """Load a shared library by its soname (raises OSError when the system has none)."""
    return ctypes.CDLL(name)


def missing_libraries(load: Loader = _load) -> list[str]:
    """The sonames of the xcb plugin's libraries that cannot be loaded."""
    missing = []
    for name in XCB_LIBRARIES:
        try:
            load(name)
        except OSError:
            missing.append(name)
    return missing


def install_hint(missing: list[str]) -> str:
    """One line naming the packages to install for the missing libraries."""
    debian = sorted({XCB_LIBRARIES[m][0] for m in missing})
    fedora = sorted({XCB_LIBRARIES[m][1] for m in missing})
    return (f"layer-explorer: the window needs X11 libraries this system lacks ({', '.join(missing)}); "
            f"install them with 'sudo apt install {' '.join(debian)}' (Debian/Ubuntu) or "
            f"'sudo dnf install {' '.join(fedora)}' (Fedora), or use 'layer-explorer report --text SOURCE'")


def _display_opens(display: str, load: Loader = _load) -> bool:
    """Whether libxcb can connect to the X server named by ``display``."""
    try:
        xcb = load("libxcb.so.1")
    except OSError:
        return True  # reported as a missing library instead
    connect = xcb.xcb_connect  # type: ignore[attr-defined]
    connect.restype = ctypes.c_void_p
    connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    has_error = xcb.xcb_connection_has_error  # type: ignore[attr-defined]
    has_error.argtypes = [ctypes.c_void_p]
    disconnect = xcb.xcb_disconnect  # type: ignore[attr-defined]
    disconnect.argtypes = [ctypes.c_void_p]
    conn = connect(display.encode(), None)
    try:
        return not has_error(conn)
    finally:
        disconnect(conn)  # an errored connection must be freed too


def problem(env: Mapping[str, str] | None = None, platform: str | None = None, load: Loader = _load) -> str | None:
    """The one line to print when the window cannot start here (None: it can)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None  # Qt's Windows and macOS platforms need nothing extra
    chosen = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0]
    if chosen and chosen != "xcb":
        return None  # offscreen, wayland, vnc...: the user chose, Qt says what is wrong
    display, wayland = env.get("DISPLAY", ""), env.get("WAYLAND_DISPLAY", "")
    if not chosen and wayland:
        return None  # a Wayland session: Qt takes its Wayland plugin
    if not display:
        return ("layer-explorer: no display found (DISPLAY and WAYLAND_DISPLAY are unset); run it in a desktop "
                "session, or use 'layer-explorer report --text SOURCE' in a terminal")
    missing = missing_libraries(load)
    if missing:
        return install_hint(missing)
    if not _display_opens(display, load):
        return (f"layer-explorer: cannot connect to the X server at DISPLAY={display}; check that it runs and "
                "that you may use it (xhost, XAUTHORITY), or use 'layer-explorer report --text SOURCE'")
    return None
