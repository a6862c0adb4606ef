"""Every case of the bad-input corpus ends, within a time and a memory bound, in one clear
line and exit 2, or in a report (exit 0) with warnings: never a traceback, never a hang."""

from __future__ import annotations

import io
import json
import resource
import signal
from contextlib import redirect_stderr, redirect_stdout

import pytest

from explorer.cli import main
from tests.corpus import cases

CASES = dict(cases())
TIME_LIMIT = 60  # seconds per case; the slowest (the bombs) take a few


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 200


class _TooSlow(Exception):
    pass


def _alarm(*_):
    raise _TooSlow()


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_case(tmp_path, name):
    path = tmp_path / f"{name}.tar"
    path.write_bytes(CASES[name])
    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["report", "--json", "--no-cache", str(path)])
    except _TooSlow:
        pytest.fail(f"{name}: still running after {TIME_LIMIT} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    message = err.getvalue()
    assert "Traceback" not in message and "internal error" not in message, message
    assert code in (0, 2), (code, message)
    if code == 2:
        lines = message.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0], message
    else:
        report = json.loads(out.getvalue())
        assert report["schema"] == "layer-explorer.report/1"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # nothing written beside it
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 3 << 20  # KiB: under 3 GiB
