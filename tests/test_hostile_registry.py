"""The registry client against a hostile local server: endless bodies, logins asked for by a
host the registry redirected to, blobs longer than their descriptors, downloads left behind."""

from __future__ import annotations

import http.server
import os
import threading
from contextlib import contextmanager

import pytest

from explorer.formats import registry
from explorer.model.errors import SourceError


@contextmanager
def _server(handler_class):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
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
