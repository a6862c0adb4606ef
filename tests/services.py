"""Real components for the source tests: Debian's dockerd and distribution registry, started
with their own temporary folders, sockets and ports, and a small fake registry for the cases
a real one will not produce on demand (token auth, a connection dropped mid-blob)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str) -> None:
    """Poll a readiness check (a service starting up), failing with ``what`` after ``timeout``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready in {timeout:.0f} s")


class Dockerd:
    """A dockerd of our own: temporary data root, exec root, pid file and socket."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="le-dockerd-", dir="/tmp")  # short: socket paths are limited
        self.socket = os.path.join(self.dir, "d.sock")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if shutil.which("dockerd") is None:
            raise RuntimeError("dockerd is not installed (Debian package docker.io)")
        if os.geteuid() != 0:
            raise RuntimeError("dockerd needs root")
        d = self.dir
        self.log = open(os.path.join(d, "log"), "w")
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", f"{d}/data", "--exec-root", f"{d}/exec", "--pidfile", f"{d}/pid",
             "--host", f"unix://{self.socket}", "--bridge=none", "--iptables=false", "--ip6tables=false",
             "--storage-driver=vfs", "--config-file", self._config()],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._ready, 60, f"dockerd (log: {d}/log)")

    def _config(self) -> str:
        path = os.path.join(self.dir, "daemon.json")
        Path(path).write_text("{}")
        return path

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"dockerd exited: {Path(self.dir, 'log').read_text()[-500:]}")
        try:
            self.request("GET", "/_ping")
            return True
        except OSError:
            return False

    def request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        from explorer.formats.engine import _UnixConnection

        conn = _UnixConnection(self.socket, 120)
        conn.request(method, path, body=body, headers={"Content-Type": "application/x-tar"} if body else {})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise OSError(f"{method} {path}: {resp.status} {data[:200]!r}")
        return data

    def load(self, archive: Path) -> None:
        self.request("POST", "/images/load?quiet=1", archive.read_bytes())

    def run(self, name: str, image: str, script: str, start: bool = True) -> None:
        """Create (and unless ``start`` is False, run to its end) a container without network."""
        from explorer.formats.engine import _UnixConnection

        body = json.dumps({"Image": image, "Cmd": ["sh", "-c", script], "NetworkDisabled": True,
                           "HostConfig": {"NetworkMode": "none"}}).encode()
        conn = _UnixConnection(self.socket, 120)
        conn.request("POST", f"/containers/create?name={name}", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise OSError(f"create: {resp.status} {data[:300]!r}")
        if start:
            self.request("POST", f"/containers/{name}/start")
            self.request("POST", f"/containers/{name}/wait")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        subprocess.run(["umount", "-R", f"{self.dir}/exec"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class PodmanService(Dockerd):
    """``podman system service`` with its own storage, on its own socket (the Docker-compatible API)."""

    def start(self) -> None:
        if shutil.which("podman") is None:
            raise RuntimeError("podman is not installed (Debian package podman)")
        d = self.dir
        self.log = open(os.path.join(d, "log"), "w")
        self.proc = subprocess.Popen(
            ["podman", "--root", f"{d}/root", "--runroot", f"{d}/run", "--storage-driver", "vfs",
             "system", "service", "--time=0", f"unix://{self.socket}"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._ready, 60, f"podman service (log: {d}/log)")


class Registry:
    """Debian's docker-registry on 127.0.0.1, optionally behind htpasswd (Basic) auth."""

    def __init__(self, htpasswd: str | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="le-registry-")
        self.port = free_port()
        self.htpasswd = htpasswd
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RuntimeError("docker-registry is not installed (Debian package docker-registry)")
        auth = ""
        if self.htpasswd:
            Path(self.dir, "htpasswd").write_text(self.htpasswd)
            auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {self.dir}/htpasswd\n"
        config = Path(self.dir, "config.yml")
        config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {self.dir}/data\n"
                          f"http:\n  addr: 127.0.0.1:{self.port}\n{auth}")
        self.proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "log"), "w"), start_new_session=True)
        wait_until(self._ready, 30, "docker-registry")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {Path(self.dir, 'log').read_text()[-500:]}")
        try:
            conn = http.client.HTTPConnection(self.host, timeout=2)
            conn.request("GET", "/v2/")
            conn.getresponse().read()
            return True
        except OSError:
            return False

    def push(self, archive: Path, name: str, fmt: str = "docker-archive", creds: str | None = None) -> None:
        if shutil.which("skopeo") is None:
            raise RuntimeError("skopeo is not installed (Debian package skopeo)")
        cmd = ["skopeo", "copy", "--all", "--dest-tls-verify=false"]
        if creds:
            cmd += ["--dest-creds", creds]
        subprocess.run(cmd + [f"{fmt}:{archive}", f"docker://{self.host}/{name}"], check=True, capture_output=True, timeout=300)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)


class FakeRegistry:
    """A registry serving one OCI layout folder, with Bearer-token auth and, on request, a
    connection dropped halfway through a blob."""

    def __init__(self, layout: Path, repo: str, tag: str) -> None:
        self.layout, self.repo, self.tag = layout, repo, tag
        self.drop_blob: str | None = None
        self.token = "secret-token"
        self.tokens_given = 0
        index = json.loads((layout / "index.json").read_text())
        self.manifest_digest = index["manifests"][0]["digest"]
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                fake.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/token"):
            self.tokens_given += 1
            return self._send(h, 200, json.dumps({"token": self.token}).encode(), "application/json")
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            h.send_response(401)
            h.send_header("WWW-Authenticate", f'Bearer realm="http://{self.host}/token",service="fake",scope="repository:{self.repo}:pull"')
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        prefix = f"/v2/{self.repo}/"
        if h.path == f"{prefix}manifests/{self.tag}" or h.path == f"{prefix}manifests/{self.manifest_digest}":
            data = self._blob(self.manifest_digest)
            return self._send(h, 200, data, json.loads(data).get("mediaType", "application/vnd.oci.image.manifest.v1+json"))
        if h.path.startswith(f"{prefix}manifests/"):
            return self._send(h, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', "application/json")
        if h.path.startswith(f"{prefix}blobs/"):
            digest = h.path.rsplit("/", 1)[1]
            data = self._blob(digest)
            if digest == self.drop_blob:
                h.send_response(200)
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data[: len(data) // 2])
                h.wfile.flush()
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            return self._send(h, 200, data, "application/octet-stream")
        self._send(h, 404, b"", "text/plain")

    def _blob(self, digest: str) -> bytes:
        return (self.layout / "blobs" / digest.replace(":", "/")).read_bytes()

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def stop(self) -> None:
        self.server.shutdown()
