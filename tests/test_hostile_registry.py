"""The registry client against a hostile local server: endless bodies, logins asked for by a
host the registry redirected to, redirect and login loops, swapped and overlong blobs, answers
sent a byte at a time, downloads left behind."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import random
import sys
import tarfile
import threading
import time
from contextlib import contextmanager

import pytest

from explorer.cli import main
from explorer.formats import deadline, registry
from explorer.model.errors import SourceError


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client that gives up mid-answer is what these tests provoke: not worth a traceback
        on stderr, which the tests read for the client's own words."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def _server(handler_class):
    server = _Server(("127.0.0.1", 0), handler_class)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_an_endless_manifest_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "MAX_SMALL", 1 << 20)

    class Endless(_Quiet):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b" " * 65536)
            except OSError:
                pass

    with _server(Endless) as host:
        with pytest.raises(SourceError, match="more than 1 MiB"):
            registry.RegistryContainer(f"registry+http://{host}/app:v1", registry.Monitor("t"))


def test_credentials_never_go_to_the_host_a_registry_redirects_to(monkeypatch):
    seen: list[str | None] = []

    class Other(_Quiet):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="http://{self.headers["Host"]}/token"')
            self.end_headers()

    with _server(Other) as other:
        class Registry(_Quiet):
            def do_GET(self):
                seen.append(self.headers.get("Authorization"))
                self.send_response(307)
                self.send_header("Location", f"http://{other.replace('127.0.0.1', 'localhost')}/blob")
                self.end_headers()

        with _server(Registry) as host:
            monkeypatch.setattr(registry, "credentials", lambda h: ("user", "secret"))
            client = registry.RegistryClient(host, True, "test")
            client.auth_header = "Basic dXNlcjpzZWNyZXQ="  # as after a login to the registry itself
            with pytest.raises(SourceError, match="only ever sent to the registry itself"):
                client.get("/v2/app/blobs/sha256:" + "0" * 64)
    assert seen[0] == "Basic dXNlcjpzZWNyZXQ=" and all(h is None for h in seen[1:])


def test_credentials_stay_with_the_registrys_own_host_and_scheme():
    secure = registry.RegistryClient("reg.example:5000", False, "test")
    assert secure._own("https://reg.example:5000/v2/app/blobs/x")
    assert not secure._own("http://reg.example:5000/v2/app/blobs/x")  # a redirect down to plain HTTP
    assert not secure._own("https://reg.example:5001/v2/") and not secure._own("https://cdn.example/v2/")
    plain = registry.RegistryClient("localhost:5000", True, "test")
    assert plain._own("http://localhost:5000/v2/") and not plain._own("http://127.0.0.1:5000/v2/")


def test_a_token_service_over_plain_http_elsewhere_gets_no_password(monkeypatch):
    sent: list[str | None] = []

    class Tokens(_Quiet):
        def do_GET(self):
            sent.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"token": "t"}')

    with _server(Tokens) as tokens:
        monkeypatch.setattr(registry, "credentials", lambda h: ("user", "secret"))
        client = registry.RegistryClient("registry.example:443", False, "test")
        client._authenticate(f'Bearer realm="http://{tokens}/token",service="x"')
    assert sent == [None] and client.auth_header == "Bearer t"


def test_partial_downloads_of_processes_that_are_gone_are_removed(tmp_path):
    dead = tmp_path / f"{'a' * 64}.partial-{2 ** 22 + 12345}"  # a pid no process has
    mine = tmp_path / f"{'b' * 64}.partial-{os.getpid()}"
    dead.write_bytes(b"x" * 1000)
    mine.write_bytes(b"y")
    registry._drop_stale_partials(str(tmp_path))
    assert not dead.exists() and mine.exists()


def _layer() -> bytes:
    """A gzip layer of two files, one of 64 KiB that does not compress (a byte at a time, it
    would take hours)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in (("hello.txt", b"hello\n"), ("noise.bin", random.Random(7).randbytes(1 << 16))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Hostile(_Quiet):
    """A registry whose every repository misbehaves in its own way (``/v2/<how>/...``)."""

    protocol_version = "HTTP/1.1"
    layer = _layer()
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [
        _digest(gzip.decompress(layer))]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": _digest(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": _digest(layer), "size": len(layer)}]}).encode()

    def _reply(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _dribble(self, data: bytes) -> None:
        try:
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                time.sleep(0.1)
        except OSError:
            pass  # the client gave up: what it should do

    def do_GET(self):
        how, _, rest = self.path.removeprefix("/v2/").partition("/")
        blob = rest.startswith("blobs/")
        if how == "dawdle":  # the headers a byte at a time: no single read waits long
            self._dribble(b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 1000)
        elif how == "trickle" and not blob:  # a manifest a byte at a time
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.manifest)))
            self.end_headers()
            self._dribble(self.manifest)
        elif how == "loop":  # redirects to itself, with an endless body it must not wait for
            self.send_response(307)
            self.send_header("Location", self.path)
            self.end_headers()
            self._dribble(b" " * 10_000)
        elif how == "badport":  # a redirect to an address with no valid port
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:abc/x")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif how == "elsewhere":  # a redirect to a file on the client's own machine
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif how == "login" or self.path.startswith("/token"):  # a token nobody accepts
            if self.path.startswith("/token"):
                self._reply(200, b'{"token": "never-good"}')
            else:
                realm = f'Bearer realm="http://{self.headers["Host"]}/token",service="x"'
                self._reply(401, b"{}", WWW_Authenticate=realm)
        elif not blob:
            self._reply(200, self.manifest, Content_Type="application/vnd.oci.image.manifest.v1+json")
        elif rest.endswith(_digest(self.config)):
            self._reply(200, self.config)
        elif how == "swapped":  # another layer under the right digest, of the right size
            self._reply(200, bytes(len(self.layer)))
        elif how == "claims":  # says at once it will send more than the descriptor says
            self._reply(200, self.layer + bytes(1 << 20))
        elif how == "longer":  # no length said, then more than the descriptor says
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(self.layer + bytes(1 << 20))
        elif how == "slowblob":  # the layer a byte at a time
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.layer)))
            self.end_headers()
            self._dribble(self.layer)
        else:
            self._reply(200, self.layer)


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "TIMEOUT", 2.0)  # the rules at a test's pace: a minute by default
    monkeypatch.setattr(deadline, "GRACE", 1.0)
    with _server(Hostile) as host:
        yield host


@pytest.mark.parametrize("how, words", [
    ("dawdle", "took more than 2 s to answer"),
    ("trickle", "took more than 2 s to send a document"),
    ("loop", "too many redirects"),
    ("elsewhere", "not a web address"),
    ("badport", "which is not valid"),
    ("login", "refused the credentials"),
    ("swapped", "arrived with another digest"),
    ("claims", "whose descriptor says"),
    ("longer", "goes on past the"),
    ("slowblob", "bytes a second; stopped"),
])
def test_a_hostile_registry_is_one_sentence_in_bounded_time(hostile, tmp_path, capsys, how, words):
    started = time.monotonic()
    assert main(["report", f"registry+http://{hostile}/{how}:v1"]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert time.monotonic() - started < 20
    cache = tmp_path / "cache"
    left = [p.name for p in cache.rglob("*") if p.is_file() and ".partial-" in p.name] if cache.exists() else []
    assert left == []  # no partial download is left behind


def test_a_well_behaved_registry_still_loads(hostile, capsys):
    assert main(["report", "--json", f"registry+http://{hostile}/fine:v1"]) == 0
    assert "hello.txt" in capsys.readouterr().out
