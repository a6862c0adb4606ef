"""The engine client against a hostile engine on a Unix socket: endless, trickling, malformed and
mistyped answers end in one sentence, in bounded time and memory, never a traceback."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.formats import deadline, engine
from explorer.formats.engine import DOCKER, Engine
from explorer.model.errors import SourceError

DATA = Path(__file__).parent / "data"


class HostileEngine:
    """A Unix-socket HTTP server whose every path misbehaves in its own way."""

    def __init__(self, folder: Path) -> None:
        self.path = str(folder / "engine.sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(8)
        self.sent = 0  # bytes of the endless answers, to see they were cut short
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            path = request.split(b" ", 2)[1].decode()
            self._route(conn, path)
        except OSError:
            pass  # the client hung up: that is the point of most of these
        finally:
            conn.close()

    def _send(self, conn: socket.socket, status: str, body: bytes, length: bool = True) -> None:
        head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n" if length else "Connection: close\r\n\r\n"
        conn.sendall(head.encode() + body)

    def _route(self, conn: socket.socket, path: str) -> None:
        if path == "/_ping":
            self._send(conn, "200 OK", b"OK")
        elif path.startswith("/images/json"):  # an endless list of images
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[")
            chunk = b'{"Id": "sha256:aa", "RepoTags": ["x:y"], "Size": 1, "Created": 1},' * 1000
            while not self.stop.is_set():
                conn.sendall(chunk)
                self.sent += len(chunk)
        elif path.startswith("/containers/json"):  # a list of everything but containers
            self._send(conn, "200 OK", json.dumps([5, "x", None, {"Id": 7, "Names": "web", "Created": "soon"},
                                                   {"Id": "abc", "Names": ["/db"], "Created": 3}]).encode())
        elif path.startswith("/images/notjson/json"):
            self._send(conn, "200 OK", b"<html>hello</html>")
        elif path.startswith("/images/alist/json"):
            self._send(conn, "200 OK", b"[1, 2, 3]")
        elif path.startswith("/images/deep/json"):
            self._send(conn, "500 Internal Server Error", b"[" * 100_000 + b"]" * 100_000)
        elif path.startswith("/images/slow/json"):  # headers, then a byte now and then
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            while not self.stop.is_set():
                conn.sendall(b" ")
                time.sleep(0.2)
        elif path.startswith("/images/dawdle"):  # headers a byte at a time: no single read is slow
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X-Pad: " + b"a" * 10_000:
                if self.stop.is_set():
                    return
                conn.sendall(bytes([byte]))
                time.sleep(0.1)
        elif path.startswith("/images/trickle") and path.endswith("/json"):
            self._send(conn, "200 OK", json.dumps({"Id": "sha256:ab", "RepoTags": ["trickle:latest"]}).encode())
        elif path.startswith("/images/late") and path.endswith("/json"):
            self._send(conn, "200 OK", json.dumps({"Id": "sha256:ef", "RepoTags": ["late:latest"]}).encode())
        elif path.startswith("/images/late") and path.endswith("/get"):  # a big save: written out before its first byte
            time.sleep(2.5)
            self._send(conn, "200 OK", (DATA / "docker-legacy.tar").read_bytes())
        elif path.startswith("/images/cut") and path.endswith("/json"):
            self._send(conn, "200 OK", json.dumps({"Id": "sha256:cd", "RepoTags": ["cut:latest"]}).encode())
        elif path.startswith("/images/cut") and path.endswith("/get"):  # chunked, as Docker sends it, cut short
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"1000\r\n" + bytes(512))
        elif path.endswith("/get"):  # an export that trickles
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nConnection: close\r\n\r\n")
            while not self.stop.is_set():
                conn.sendall(b"\0")
                time.sleep(0.2)
        else:
            self._send(conn, "404 Not Found", b'{"message": "no such image"}')

    def close(self) -> None:
        self.stop.set()
        self.server.close()


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    server = HostileEngine(tmp_path)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{server.path}")
    monkeypatch.setattr(engine, "TIMEOUT", 2.0)  # the rules at a test's pace: 30 s and a minute by default
    monkeypatch.setattr(deadline, "GRACE", 1.0)
    monkeypatch.setattr(engine, "EXPORT_WAIT", 3.0)  # 300 s by default: a big save starts late
    yield server
    server.close()


def test_an_endless_list_is_cut_at_the_document_budget(hostile, monkeypatch):
    monkeypatch.setenv("LAYER_EXPLORER_MAX_JSON_MB", "2")
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        Engine(DOCKER).images()
    assert "more than 2 MiB" in str(caught.value) and "LAYER_EXPLORER_MAX_JSON_MB" in str(caught.value)
    assert time.monotonic() - started < 10


def test_mistyped_items_are_left_out_not_crashed_on(hostile):
    containers = Engine(DOCKER).containers()
    assert [(c.id, c.name) for c in containers] == [("abc", "db"), ("7", "7")]  # newest first


@pytest.mark.parametrize("ref, words", [
    ("notjson", "not JSON"),
    ("alist", "not a dict"),
    ("deep", "answered 500"),
    ("slow", "more than 2 s to answer"),
    ("dawdle", "more than 2 s to answer"),
    ("missing", "no image 'missing'"),
])
def test_bad_answers_are_one_sentence(hostile, ref, words):
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        Engine(DOCKER).inspect(ref)
    assert words in str(caught.value), str(caught.value)
    assert time.monotonic() - started < 10


def test_a_trickling_export_is_stopped_with_exit_2(hostile, capsys):
    started = time.monotonic()
    assert main(["report", "docker://trickle:latest"]) == 2
    err = capsys.readouterr().err
    assert "bytes a second; stopped" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert time.monotonic() - started < 30


def test_an_export_whose_headers_dawdle_is_stopped(hostile, capsys):
    started = time.monotonic()
    opener = Engine(DOCKER).stream("/images/dawdle/get", "docker://dawdle", "the image")
    with pytest.raises(SourceError) as caught:
        opener()
    assert "more than 3 s to answer" in str(caught.value)  # an export's own wait, not a listing's
    assert time.monotonic() - started < 10


def test_an_export_that_starts_late_is_waited_for(hostile, capsys):
    assert main(["report", "--json", "--no-cache", "docker://late:latest"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["image"]["layers"]


def test_a_chunked_export_cut_short_is_one_sentence(hostile, capsys):
    assert main(["report", "docker://cut:latest"]) == 2
    err = capsys.readouterr().err
    assert "docker://cut:latest" in err and "internal error" not in err and len(err.strip().splitlines()) == 1

