"""The window's first run: what would make Qt abort is found first and said in one line."""

from __future__ import annotations

import os
import subprocess
import sys

from explorer.ui.display_check import XCB_LIBRARIES, install_hint, missing_libraries, problem


def _loader_without(*absent: str):
    """A library loader of a system that lacks ``absent``; everything else loads."""

    def load(name: str) -> object:
        if name in absent:
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        return object()

    return load


def test_a_bare_debian_gets_the_packages_to_install_in_one_line():
    message = problem({"DISPLAY": ":0"}, "linux", _loader_without("libxcb-cursor.so.0", "libxkbcommon-x11.so.0"))
    assert message is not None and "\n" not in message
    assert "sudo apt install libxcb-cursor0 libxkbcommon-x11-0" in message
    assert "sudo dnf install libxkbcommon-x11 xcb-util-cursor" in message
    assert "libxcb-cursor.so.0" in message


def test_every_library_the_plugin_links_is_named_with_its_packages():
    missing = missing_libraries(_loader_without(*XCB_LIBRARIES))
    assert missing == list(XCB_LIBRARIES)
    hint = install_hint(missing)
    for debian, fedora in XCB_LIBRARIES.values():
        assert debian in hint and fedora in hint


def test_no_display_and_other_platforms():
    assert "no display found" in problem({}, "linux", _loader_without())
    # the user chose another platform, or a Wayland session: Qt does not load xcb
    assert problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", _loader_without(*XCB_LIBRARIES)) is None
    assert problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux", _loader_without(*XCB_LIBRARIES)) is None
    assert problem({}, "darwin", _loader_without(*XCB_LIBRARIES)) is None
    # asked for xcb by name: the libraries are checked
    assert "apt install" in problem({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"}, "linux",
                                    _loader_without("libxcb-icccm.so.4"))


def test_the_real_system_has_what_the_window_needs_or_says_so():
    # on this system: either every library loads, or the line names what is missing
    missing = missing_libraries()
    message = problem({"DISPLAY": ":0"}, "linux")
    if missing:
        assert message is not None and all(m in message for m in missing)


def _run(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    return subprocess.run([sys.executable, "-m", "explorer"], env={**clean, **env}, capture_output=True,
                          text=True, timeout=60)


def test_a_display_that_does_not_answer_is_exit_2_and_one_line():
    proc = _run({"DISPLAY": ":249"})  # no X server listens there
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    if missing_libraries():
        assert len(lines) == 1 and "apt install" in lines[0]
    else:
        assert lines == [lines[0]] and "cannot connect to the X server at DISPLAY=:249" in lines[0]
