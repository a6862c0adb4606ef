"""Images in a local Docker or Podman engine, read through the engine's API socket.

``docker://nginx:latest`` and ``podman://...`` ask the engine for ``docker save`` of the
image and index that stream as it arrives: nothing is copied to disk. Podman serves the
same Docker-compatible API on its own socket.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote

from explorer.formats.deadline import TooBig, answer, read_small, stalled
from explorer.formats.plan import max_json
from explorer.model.errors import SourceError

DOCKER, PODMAN = "docker", "podman"
SCHEMES = {f"{DOCKER}://": DOCKER, f"{PODMAN}://": PODMAN}
TIMEOUT = 30.0  # seconds for a whole answer that should be small (a list, an inspect)
# Seconds an export may be silent, its headers included: Docker and Podman write a whole save
# to a temporary folder before its first byte, which takes minutes for a big image.
EXPORT_WAIT = 300.0


def socket_path(engine: str) -> str:
    """Where an engine's API listens (``DOCKER_HOST`` / ``CONTAINER_HOST`` when set)."""
    if engine == DOCKER:
        host = os.environ.get("DOCKER_HOST", "")
        if host.startswith("unix://"):
            return host[len("unix://"):]
        return "/var/run/docker.sock"
    host = os.environ.get("CONTAINER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://"):]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if os.geteuid() != 0 and runtime:
        return os.path.join(runtime, "podman", "podman.sock")
    return "/run/podman/podman.sock"


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


@dataclass(frozen=True)
class LocalImage:
    """One image an engine holds."""

    id: str
    tags: tuple[str, ...]
    size: int
    created: int


@dataclass(frozen=True)
class LocalContainer:
    """One container an engine knows (running or stopped)."""

    id: str
    name: str
    image: str
    state: str
    created: int


class Engine:
    """A client of one engine's API."""

    def __init__(self, engine: str, path: str | None = None) -> None:
        self.engine = engine
        self.path = path or socket_path(engine)
        self.label = f"{engine} engine at {self.path}"

    def _get(self, url: str, timeout: float | None = None) -> http.client.HTTPResponse:
        """The engine's answer to ``url``, its headers due within ``timeout`` (``TIMEOUT`` unless
        given) and no pause longer."""
        timeout = TIMEOUT if timeout is None else timeout
        conn = _UnixConnection(self.path, timeout)
        try:
            return answer(conn, url, {"Host": "localhost"}, timeout)
        except FileNotFoundError:
            raise SourceError(self.label, f"no {self.engine} engine answers (no socket)",
                              f"start {self.engine}, or set {'DOCKER_HOST' if self.engine == DOCKER else 'CONTAINER_HOST'}") from None
        except PermissionError:
            raise SourceError(self.label, "permission denied on the engine's socket",
                              f"add your user to the {self.engine} group, or run as root") from None
        except TimeoutError:
            raise SourceError(self.label, f"{url} took more than {timeout:.0f} s to answer", "the engine is stalling") from None
        except (OSError, http.client.HTTPException) as exc:
            raise SourceError(self.label, f"the {self.engine} engine does not answer ({exc})",
                              f"is {self.engine} running?") from None

    def _small(self, resp: http.client.HTTPResponse, url: str) -> bytes:
        """The body of an answer that should be small: at most ``max_json()`` bytes, all of it
        within ``TIMEOUT`` (an endless or trickling answer is refused, not waited for)."""
        limit = max_json()
        try:
            return read_small(resp, limit, TIMEOUT)
        except TooBig:
            raise SourceError(self.label, f"{url} answered more than {limit >> 20} MiB where a short document was "
                              "expected", "the engine is misbehaving; raise LAYER_EXPLORER_MAX_JSON_MB if it is genuine") from None
        except TimeoutError:
            raise SourceError(self.label, f"{url} took more than {TIMEOUT:.0f} s to answer", "the engine is stalling") from None
        except (OSError, http.client.HTTPException) as exc:
            raise SourceError(self.label, f"the {self.engine} engine stopped answering {url} ({exc})",
                              f"is {self.engine} running?") from None

    def _parse(self, body: bytes, url: str, kind: type) -> Any:
        """A JSON answer of the expected ``kind`` (list or dict)."""
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            raise SourceError(self.label, f"{url} answered something that is not JSON", "the engine is misbehaving") from None
        if value is None and kind is list:
            return []  # what Docker says for "no changes"
        if not isinstance(value, kind):
            raise SourceError(self.label, f"{url} answered a JSON {type(value).__name__}, not a {kind.__name__}",
                              "the engine is misbehaving")
        return value

    def _json(self, url: str) -> Any:
        resp = self._get(url)
        body = self._small(resp, url)
        if resp.status != 200:
            raise SourceError(self.label, f"{url} answered {resp.status}: {_message(body)}")
        return self._parse(body, url, list)

    def ping(self) -> None:
        """Raise a clear error when the engine does not answer."""
        resp = self._get("/_ping", timeout=5)
        self._small(resp, "/_ping")
        if resp.status != 200:
            raise SourceError(self.label, f"the engine answered {resp.status} to a ping")

    def images(self) -> list[LocalImage]:
        """The engine's images, newest first."""
        out = []
        for item in self._json("/images/json"):
            if not isinstance(item, dict):
                continue  # not an image: nothing to list
            tags = tuple(t for t in _list(item.get("RepoTags")) if isinstance(t, str) and t and t != "<none>:<none>")
            out.append(LocalImage(str(item.get("Id", "")), tags, _int(item.get("Size")), _int(item.get("Created"))))
        out.sort(key=lambda i: -i.created)
        return out

    def _inspect(self, url: str, label: str, missing: str, hint: str) -> dict[str, Any]:
        """An object the engine describes; ``missing`` and ``hint`` when it has no such thing."""
        resp = self._get(url)
        body = self._small(resp, url)
        if resp.status == 404:
            raise SourceError(label, missing, hint)
        if resp.status != 200:
            raise SourceError(label, f"the engine answered {resp.status}: {_message(body)}")
        return self._parse(body, url, dict)

    def inspect(self, ref: str) -> dict[str, Any]:
        """``docker image inspect``; a clear error when the image is not there."""
        return self._inspect(f"/images/{quote(ref, safe='')}/json", f"{self.engine}://{ref}",
                             f"no image {ref!r} in the {self.engine} engine",
                             f"pull it first ({self.engine} pull {ref}), or check the name with {self.engine} images")

    def stream(self, url: str, label: str, what: str) -> Callable[[], Callable[[int], bytes]]:
        """An opener of a long download from the engine (each call asks the engine again)."""

        def opener() -> Callable[[int], bytes]:
            resp = self._get(url, timeout=EXPORT_WAIT)
            if resp.status != 200:
                raise SourceError(label, f"the engine refused to export {what} ({resp.status}: {_message(self._small(resp, url))})")
            return _paced(resp, label, what)

        return opener

    def containers(self) -> list[LocalContainer]:
        """The engine's containers, running or not, newest first."""
        out = []
        for c in self._json("/containers/json?all=1"):
            if not isinstance(c, dict):
                continue
            names = [n.lstrip("/") for n in _list(c.get("Names")) if isinstance(n, str)]
            out.append(LocalContainer(str(c.get("Id", "")), names[0] if names else str(c.get("Id", ""))[:12],
                                      str(c.get("Image", "")), str(c.get("State", "")), _int(c.get("Created"))))
        out.sort(key=lambda c: -c.created)
        return out

    def container(self, name: str) -> dict[str, Any]:
        """``docker container inspect``; a clear error when it is not there."""
        return self._inspect(f"/containers/{quote(name, safe='')}/json", f"{self.engine} container {name}",
                             f"no container {name!r} in the {self.engine} engine", f"list them with {self.engine} ps -a")

    def changes(self, name: str) -> list[tuple[str, int]]:
        """What ``docker diff`` lists: (path, kind) with kind 0 changed, 1 added, 2 deleted."""
        return [(c["Path"], _int(c.get("Kind"))) for c in self._json(f"/containers/{quote(name, safe='')}/changes")
                if isinstance(c, dict) and isinstance(c.get("Path"), str)]

    def export_stream(self, name: str) -> Callable[[], Callable[[int], bytes]]:
        """An opener of the container's whole filesystem as a tar (each call asks again)."""
        return self.stream(f"/containers/{quote(name, safe='')}/export", f"{self.engine} container {name}", "the container")

    def save_stream(self, ref: str) -> Callable[[], Callable[[int], bytes]]:
        """An opener of ``docker save REF`` streams."""
        return self.stream(f"/images/{quote(ref, safe='')}/get", f"{self.engine}://{ref}", "the image")


def _paced(resp: http.client.HTTPResponse, label: str, what: str) -> Callable[[int], bytes]:
    """``resp.read``, stopping an export that trickles (a byte every few seconds never times out)."""
    started, done = time.monotonic(), 0

    def read(n: int = -1) -> bytes:
        nonlocal done
        parts, wanted = [], n if n is not None and n >= 0 else 1 << 62
        while wanted > 0:
            try:
                part = resp.read1(min(wanted, 1 << 20))  # what has arrived: a whole read(n) would wait for all n
            except (OSError, http.client.HTTPException) as exc:
                raise SourceError(label, f"the engine stopped sending {what} ({type(exc).__name__}: {exc})",
                                  "is the engine running? try again") from None
            if not part:
                break
            parts.append(part)
            wanted -= len(part)
            done += len(part)
            rate = stalled(done, started)
            if rate is not None:
                resp.close()
                raise SourceError(label, f"the engine sends {what} at {rate:,.0f} bytes a second; stopped",
                                  "the engine is stalling; try again later")
        return b"".join(parts)

    return read


def _list(value: Any) -> list:
    """A JSON field that should be a list (anything else: empty)."""
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    """A JSON field that should be a number (anything else: 0)."""
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1 << 63 else 0


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", "")) or body[:200].decode("utf-8", "replace")
    except (ValueError, AttributeError, RecursionError):
        return body[:200].decode("utf-8", "replace")


def _split(source: str, schemes: dict[str, str]) -> tuple[str, str] | None:
    """(engine, rest) when ``source`` starts with one of ``schemes``; None otherwise."""
    for prefix, engine in schemes.items():
        if source.startswith(prefix):
            return engine, source[len(prefix):]
    return None


def split_url(source: str) -> tuple[str, str] | None:
    """``docker://nginx:latest`` -> ("docker", "nginx:latest"); None for anything else."""
    return _split(source, SCHEMES)


CONTAINER_SCHEMES = {"container://": DOCKER, "podman-container://": PODMAN}


def split_container_url(source: str) -> tuple[str, str] | None:
    """``container://web`` -> ("docker", "web"); None for anything else."""
    return _split(source, CONTAINER_SCHEMES)
