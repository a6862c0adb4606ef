"""An overall deadline for an HTTP answer's headers: a server sending a byte every few seconds
never trips a socket's per-read timeout, so a timer shuts the socket when time is up."""

from __future__ import annotations

import http.client
import socket
import threading


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
