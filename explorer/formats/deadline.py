"""Time and size rules for HTTP answers from strangers (a registry, an engine's socket).

A server sending a byte every few seconds never trips a socket's per-read timeout, so headers
get an overall deadline (a timer shuts the socket when time is up), small answers a size and a
time budget, and long downloads a minimum rate.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time

MIN_RATE, GRACE = 1024, 60.0  # a download slower than 1 KiB/s after a minute has stalled


class TooBig(ValueError):
    """A small answer went on past its size budget."""


class HeaderDeadline:
    """Shuts ``conn``'s socket if its answer's headers have not all arrived within ``seconds``."""

    def __init__(self, conn: http.client.HTTPConnection, seconds: float) -> None:
        self.conn, self.expired = conn, False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def _expire(self) -> None:
        self.expired = True
        sock = self.conn.sock
        if sock is not None:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, even under TLS: wakes the reader
            except OSError:
                pass  # already closed: nothing is waiting on it

    def __enter__(self) -> "HeaderDeadline":
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        self._timer.join()  # one that fired just now has set ``expired`` before anyone reads it


def answer(conn: http.client.HTTPConnection, path: str, headers: dict[str, str], seconds: float) -> http.client.HTTPResponse:
    """``conn``'s answer to GET ``path``, its headers due within ``seconds`` (``TimeoutError``
    past them; other network errors as they come)."""
    deadline = HeaderDeadline(conn, seconds)
    try:
        with deadline:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
    except (OSError, http.client.HTTPException):
        if deadline.expired:
            raise TimeoutError(f"no answer within {seconds:.0f} s") from None
        raise
    if deadline.expired:  # headers cut short by the deadline can look complete
        resp.close()
        raise TimeoutError(f"no answer within {seconds:.0f} s")
    return resp


def read_small(resp: http.client.HTTPResponse, limit: int, seconds: float) -> bytes:
    """The body of an answer that should be small: ``TooBig`` past ``limit`` bytes,
    ``TimeoutError`` past ``seconds`` (an endless or trickling answer is refused, not waited for).
    The answer is closed either way."""
    parts, size, deadline = [], 0, time.monotonic() + seconds
    try:
        while part := resp.read1(1 << 16):  # what has arrived: read(n) would wait for all n, a byte at a time
            parts.append(part)
            size += len(part)
            if size > limit:
                raise TooBig(size)
            if time.monotonic() > deadline:
                raise TimeoutError(f"not all sent within {seconds:.0f} s")
    finally:
        resp.close()
    return b"".join(parts)


def stalled(done: int, started: float) -> float | None:
    """The rate (bytes a second) of a download that has fallen under ``MIN_RATE`` after
    ``GRACE`` seconds; None while it keeps up."""
    elapsed = time.monotonic() - started
    return done / elapsed if elapsed > GRACE and done < MIN_RATE * elapsed else None
