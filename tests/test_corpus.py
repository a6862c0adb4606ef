"""Every case of the bad-input corpus ends, within a time and a memory bound, in one clear
line and exit 2, or in a report (exit 0) with warnings: never a traceback, never a hang. Each
case runs in a child of its own, whose time and peak memory are its alone."""

from __future__ import annotations

import json
import os
import signal
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from explorer.cli import main
from tests.corpus import cases

CASES = dict(cases())
TIME_LIMIT = 60  # seconds per case; the slowest (the bombs) take a few


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 200


MEMORY_LIMIT = 2 << 20  # KiB of resident memory a case may reach (this process's own included)


def _run_case(path: Path, out_dir: Path) -> tuple[int, str, str, int]:
    """``report --json --no-cache`` of ``path`` in a forked child: (exit code, out, err, peak
    resident KiB). A child past ``TIME_LIMIT`` is ended by its alarm (code -SIGALRM)."""
    out_file, err_file = out_dir / "out", out_dir / "err"
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: measured alone, by wait4
        code = 99
        try:
            signal.signal(signal.SIGALRM, signal.SIG_DFL)  # past the limit, the alarm ends it
            signal.alarm(TIME_LIMIT)
            with open(out_file, "w") as out, open(err_file, "w") as err, redirect_stdout(out), redirect_stderr(err):
                code = main(["report", "--json", "--no-cache", str(path)])
        finally:
            os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    read = lambda f: f.read_text() if f.exists() else ""  # noqa: E731
    return code, read(out_file), read(err_file), usage.ru_maxrss


@pytest.fixture(scope="module")
def warm(tmp_path_factory) -> None:
    """One report here first, so each child starts with what the command imports as it goes."""
    path = tmp_path_factory.mktemp("warm") / "warm.tar"
    path.write_bytes(CASES[sorted(CASES)[0]])
    with open(os.devnull, "w") as sink, redirect_stdout(sink), redirect_stderr(sink):
        main(["report", "--json", "--no-cache", str(path)])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="each case runs in a forked child")
@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_case(tmp_path_factory, warm, name):
    here = tmp_path_factory.mktemp("case")
    path = here / f"{name}.tar"
    path.write_bytes(CASES[name])
    code, out, message, peak = _run_case(path, tmp_path_factory.mktemp("output"))
    assert code != -signal.SIGALRM, f"{name}: still running after {TIME_LIMIT} s"
    assert "Traceback" not in message and "internal error" not in message, message
    assert code in (0, 2), (code, message)
    if code == 2:
        lines = message.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0], message
    else:
        report = json.loads(out)
        assert report["schema"] == "layer-explorer.report/1"
    assert sorted(p.name for p in here.iterdir()) == [path.name]  # nothing written beside it
    assert peak < MEMORY_LIMIT, f"{name}: {peak >> 10} MiB resident"
