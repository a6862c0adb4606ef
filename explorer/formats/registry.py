"""Images in a registry (the OCI distribution API), without pulling them into an engine.

``registry://HOST[:PORT]/REPO[:TAG|@DIGEST]`` (``registry+http://`` for a plain-HTTP
registry). Manifests and configs are fetched first; layer blobs are streamed into the user's
cache folder, verified against their digests on the way and renamed into place only when
complete, so a dropped connection never leaves a partial blob, and a second open is instant.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import subprocess
import threading
import time
from typing import Callable
from urllib.parse import urlencode, urljoin, urlsplit

from explorer.formats.cache import cache_dir, keep_under, remove, writer_gone
from explorer.formats.container import Container, LayerScan, scan_file
from explorer.formats.deadline import TooBig, answer, read_small, stalled
from explorer.model.errors import SourceError
from explorer.formats.oci import REF_NAME
from explorer.formats.plan import parse_digest
from explorer.model.progress import Monitor

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
DEFAULT_CACHE_MAX = 10 << 30
TIMEOUT = 60.0
_REF = re.compile(r"^(?P<host>[^/]+)/(?P<repo>[a-z0-9][a-z0-9._/-]*?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[a-z0-9]+:[a-f0-9]+))?$")
MAX_TAG_LIST = 8 << 20  # bytes of a tag list: enough for hundreds of thousands of tags


def parse_reference(source: str) -> tuple[str, str, str, str, bool]:
    """``registry://host:5000/a/b:tag`` -> (host, repo, tag, digest, plain_http)."""
    plain = source.startswith("registry+http://")
    rest = source.split("://", 1)[1]
    m = _REF.match(rest)
    if not m:
        raise SourceError(source, "not a registry reference", "write registry://HOST[:PORT]/REPOSITORY[:TAG] or ...@sha256:DIGEST")
    return m.group("host"), m.group("repo"), m.group("tag") or ("" if m.group("digest") else "latest"), m.group("digest") or "", plain


def credentials(host: str) -> tuple[str, str] | None:
    """(user, secret) for a registry, from the Docker config file or its credential helper."""
    folder = os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker")
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    entry = (config.get("auths") or {}).get(host) or (config.get("auths") or {}).get(f"https://{host}")
    if isinstance(entry, dict) and entry.get("auth"):
        try:
            user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
            return user, secret
        except (ValueError, UnicodeDecodeError):
            return None
    helper = (config.get("credHelpers") or {}).get(host) or config.get("credsStore")
    if helper:
        try:
            out = subprocess.run([f"docker-credential-{helper}", "get"], input=host, capture_output=True,
                                 text=True, timeout=20, check=True).stdout
            data = json.loads(out)
            return data.get("Username", ""), data.get("Secret", "")
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
    return None


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> ("bearer", {...})."""
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


class RegistryClient:
    """HTTP to one registry, with Basic and Bearer (token) authentication."""

    def __init__(self, host: str, plain: bool, label: str) -> None:
        self.host, self.plain, self.label = host, plain, label
        self.auth_header: str | None = None

    def _connection(self, netloc: str, scheme: str) -> http.client.HTTPConnection:
        if scheme == "http":
            return http.client.HTTPConnection(netloc, timeout=TIMEOUT)
        return http.client.HTTPSConnection(netloc, timeout=TIMEOUT)

    def _send(self, url: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        try:
            parts = urlsplit(url)
            if not parts.hostname:
                raise ValueError("no host")
            conn = self._connection(parts.netloc, parts.scheme)
        except (ValueError, http.client.InvalidURL):  # a hostile redirect or token realm
            raise SourceError(self.label, f"the registry sent the address {url[:200]!r}, which is not valid",
                              "the registry is misbehaving") from None
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            return answer(conn, path, headers, TIMEOUT)
        except TimeoutError:
            raise SourceError(self.label, f"{parts.netloc} took more than {TIMEOUT:.0f} s to answer",
                              "the registry or the network is stalling; try again later") from None
        except (OSError, http.client.HTTPException) as exc:
            hint = "is it running? for a plain-HTTP registry use registry+http:// or --insecure" if not self.plain else "is it running?"
            raise SourceError(self.label, f"cannot reach the registry {parts.netloc} ({exc})", hint) from None

    def _own(self, url: str) -> bool:
        """Whether ``url`` is the registry itself, over its own scheme: credentials go nowhere
        else (not to a host it redirects to, not over plain HTTP after a redirect from HTTPS)."""
        parts = urlsplit(url)
        return parts.netloc == self.host and parts.scheme == ("http" if self.plain else "https")

    def get(self, path: str, accept: str = "") -> http.client.HTTPResponse:
        """GET a registry path, authenticating and following redirects."""
        url = f"{'http' if self.plain else 'https'}://{self.host}{path}"
        for _ in range(6):
            headers = {"Accept": accept} if accept else {}
            if self.auth_header and self._own(url):
                headers["Authorization"] = self.auth_header
            resp = self._send(url, headers)
            if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                resp.close()  # its body is not wanted, however long it is
                try:
                    url = urljoin(url, resp.getheader("Location") or "")
                    scheme = urlsplit(url).scheme
                except ValueError:
                    scheme = ""
                if scheme not in ("http", "https"):
                    raise SourceError(self.label, f"the registry redirected to {url[:200]!r}, which is not a web address",
                                      "the registry is misbehaving")
                continue
            if resp.status == 401 and not headers.get("Authorization"):
                challenge = resp.getheader("WWW-Authenticate") or ""
                _read_small(resp, self.label)
                if not self._own(url):
                    # a redirect's host asks for a login: this registry's credentials are not for it
                    raise SourceError(self.label, f"{urlsplit(url).netloc}, where the registry redirected, asks for "
                                      "credentials; they are only ever sent to the registry itself")
                self._authenticate(challenge)
                continue
            if resp.status == 401:
                resp.close()
                raise SourceError(self.label, "the registry refused the credentials",
                                  "log in with docker login, or check ~/.docker/config.json")
            return resp
        raise SourceError(self.label, "too many redirects or authentication rounds")

    def _authenticate(self, challenge: str) -> None:
        scheme, params = _challenge(challenge)
        creds = credentials(self.host)
        if scheme == "basic":
            if creds is None:
                raise SourceError(self.label, "the registry needs a login", "log in with docker login (the credentials are read from ~/.docker/config.json)")
            self.auth_header = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
            return
        if scheme != "bearer" or "realm" not in params:
            raise SourceError(self.label, f"unsupported authentication {challenge!r}")
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + urlencode(query)
        headers = {}
        realm = urlsplit(url)
        # credentials travel encrypted, or to the plain-HTTP registry the user named itself
        safe = realm.scheme == "https" or (self.plain and realm.netloc == self.host)
        if creds is not None and safe:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        resp = self._send(url, headers)
        body = _read_small(resp, self.label)
        if resp.status != 200:
            raise SourceError(self.label, f"the registry's token service refused access ({resp.status})",
                              "log in with docker login, or check ~/.docker/config.json")
        try:
            data = json.loads(body)
            token = data.get("token") or data.get("access_token")
        except ValueError:
            token = None
        if not token:
            raise SourceError(self.label, "the token service answered without a token")
        self.auth_header = f"Bearer {token}"


class RegistryContainer(Container):
    """A registry image seen as an OCI layout: documents fetched, blobs cached on disk."""

    random_access = True

    def __init__(self, path: str, monitor: Monitor, plain: bool = False) -> None:
        self.path = path
        host, self.repo, self.tag, digest, plain_url = parse_reference(path)
        self.client = RegistryClient(host, plain or plain_url, path)
        self._docs: dict[str, bytes] = {}
        self._manifests: set[str] = set()
        self._expected: dict[str, int] = {}  # blob digest -> the size its descriptor gives
        self.cache = os.path.join(cache_dir(), "blobs")
        monitor.begin(f"asking {host} for {self.repo}:{self.tag or digest}")
        ref = digest or self.tag
        data, media, top = self._fetch_manifest(ref)
        if digest and top != digest:
            raise SourceError(path, f"the registry sent {top} for {digest}", "the registry is misbehaving")
        self._remember(top, data)
        index = {"schemaVersion": 2, "manifests": [{
            "mediaType": media, "digest": top, "size": len(data),
            "annotations": {REF_NAME: f"{host}/{self.repo}" + (f":{self.tag}" if self.tag else f"@{top}")}}]}
        self._docs["index.json"] = json.dumps(index).encode()

    def _fetch_manifest(self, ref: str) -> tuple[bytes, str, str]:
        resp = self.client.get(f"/v2/{self.repo}/manifests/{ref}", ACCEPT)
        body = _read_small(resp, self.path)
        if resp.status == 404:
            raise SourceError(self.path, f"no {'tag' if ':' not in ref else 'manifest'} {ref!r} in {self.repo}",
                              "check the name and tag (they are case-sensitive)")
        if resp.status != 200:
            raise SourceError(self.path, f"the registry answered {resp.status} for {self.repo}:{ref}")
        media = (resp.getheader("Content-Type") or "").split(";")[0]
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        return body, media, digest

    def _remember(self, digest: str, data: bytes) -> None:
        name = f"blobs/{digest.replace(':', '/')}"
        self._docs[name] = data
        try:
            doc = json.loads(data)
        except ValueError:
            return
        if isinstance(doc, dict):
            for d in doc.get("manifests") or []:
                if isinstance(d, dict) and isinstance(d.get("digest"), str):
                    self._manifests.add(d["digest"])
            for d in [doc.get("config"), *(doc.get("layers") or [])]:
                if isinstance(d, dict) and isinstance(d.get("digest"), str) and isinstance(d.get("size"), int):
                    self._expected[d["digest"]] = d["size"]  # a blob is its descriptor's size, never more

    def names(self) -> set[str]:
        return set(self._docs)

    def has(self, name: str) -> bool:
        return name == "index.json" or name.startswith("blobs/")

    def read_document(self, name: str) -> bytes:
        if name in self._docs:
            return self._docs[name]
        digest = self._digest_of(name)
        if digest in self._manifests:
            data, _, _ = self._fetch_manifest(digest)
        else:
            data = self._fetch_small_blob(digest)
        self._remember(digest, data)
        return data

    def _digest_of(self, name: str) -> str:
        parts = name.split("/")
        if len(parts) != 3 or parts[0] != "blobs":
            raise SourceError(self.path, f"{name} is not a blob name")
        digest = f"{parts[1]}:{parts[2]}"
        parse_digest(self.path, digest)
        return digest

    def _fetch_small_blob(self, digest: str) -> bytes:
        resp = self.client.get(f"/v2/{self.repo}/blobs/{digest}")
        body = _read_small(resp, self.path)
        if resp.status != 200:
            raise SourceError(self.path, f"blob {digest} is missing from the registry ({resp.status})")
        return body

    def size(self, name: str) -> int:
        return os.path.getsize(self._blob_file(name, Monitor(self.path)))

    def _blob_file(self, name: str, monitor: Monitor) -> str:
        """The cached file of a blob, downloading it (verified) when it is not there yet."""
        digest = self._digest_of(name)
        alg = digest.split(":", 1)[0]
        final = self._cached(digest)
        if os.path.isfile(final):
            os.utime(final)  # recently used: the last to be evicted
            return final
        os.makedirs(os.path.dirname(final), exist_ok=True)
        # the process (for the sweeps below) and the thread: a preview and a build may fetch one blob at once
        partial = f"{final}.partial-{os.getpid()}-{threading.get_ident()}"
        resp = self.client.get(f"/v2/{self.repo}/blobs/{digest}")
        if resp.status != 200:
            resp.close()
            raise SourceError(self.path, f"blob {digest} is missing from the registry ({resp.status})")
        total = int(resp.getheader("Content-Length") or 0)
        limit = self._expected.get(digest)
        if limit is not None and total > limit:
            resp.close()
            raise SourceError(self.path, f"the registry offers {total:,} bytes for blob {digest}, whose descriptor "
                              f"says {limit:,}", "the registry is misbehaving")
        h = hashlib.new(alg)
        done = 0
        started = time.monotonic()
        _drop_stale_partials(os.path.dirname(final))
        monitor.begin(f"downloading {digest[:19]}", monitor.layer, monitor.layers, total)
        try:
            with open(partial, "wb") as out:
                while True:
                    chunk = resp.read1(1 << 20)  # what has arrived, so a trickle is seen by _check_rate
                    if not chunk:
                        break
                    out.write(chunk)
                    h.update(chunk)
                    done += len(chunk)
                    monitor.tick(done)
                    if limit is not None and done > limit:
                        raise SourceError(self.path, f"blob {digest} goes on past the {limit:,} bytes its descriptor "
                                          "says", "the registry is misbehaving")
                    _check_rate(done, started, self.path, digest)
            if total and done != total:
                raise SourceError(self.path, f"the connection dropped while downloading blob {digest} ({done:,} of {total:,} bytes)",
                                  "open it again to retry")
            if f"{alg}:{h.hexdigest()}" != digest:
                raise SourceError(self.path, f"blob {digest} arrived with another digest ({alg}:{h.hexdigest()})",
                                  "the registry or the network damaged it")
            os.replace(partial, final)  # only a complete, verified blob ever has its name
        except (OSError, http.client.HTTPException) as exc:
            remove(partial)
            raise SourceError(self.path, f"the connection dropped while downloading blob {digest} ({done:,} of {total:,} bytes): {exc}",
                              "open it again to retry") from None
        except BaseException:
            remove(partial)
            raise
        finally:
            resp.close()  # now, not when a cycle with the error is collected: the registry sees it gone
        evict(os.path.join(self.cache, ".."))
        return final

    def scan_layer(self, name: str, monitor: Monitor) -> LayerScan:
        return scan_file(self.path, self._blob_file(name, monitor), name, monitor)

    def is_local(self, name: str) -> bool:
        """Whether a blob is in the blob cache (reading it downloads it otherwise)."""
        return os.path.isfile(self._cached(self._digest_of(name)))

    def _cached(self, digest: str) -> str:
        """Where the blob cache keeps a blob."""
        return os.path.join(self.cache, *digest.split(":", 1))

    def raw_reader(self, name: str, start: int) -> Callable[[int], bytes]:
        f = open(self._blob_file(name, Monitor(self.path)), "rb")
        f.seek(start)
        return f.read



MAX_SMALL = 16 << 20  # a manifest, a config or a token answer: a few kB, 16 MiB at most


def _read_small(resp: http.client.HTTPResponse, label: str, limit: int = 0) -> bytes:
    """The body of a response that should be small (``MAX_SMALL``, or ``limit``), refusing an
    endless or a trickling one."""
    limit = limit or MAX_SMALL
    try:
        return read_small(resp, limit, TIMEOUT)
    except TooBig:
        raise SourceError(label, f"the registry sent more than {limit >> 20} MiB where a document was expected",
                          "the registry is misbehaving") from None
    except TimeoutError:
        raise SourceError(label, f"the registry took more than {TIMEOUT:.0f} s to send a document",
                          "the registry or the network is stalling; try again later") from None
    except (OSError, http.client.HTTPException) as exc:
        raise SourceError(label, f"the connection dropped while the registry sent a document ({exc})",
                          "open it again to retry") from None


def _check_rate(done: int, started: float, label: str, digest: str) -> None:
    """Stop a download that trickles (one byte every few seconds never times out)."""
    rate = stalled(done, started)
    if rate is not None:
        raise SourceError(label, f"blob {digest} arrives at {rate:,.0f} bytes a second; stopped",
                          "the registry or the network is stalling; try again later")


def _drop_stale_partials(folder: str) -> None:
    """Remove partial downloads left by processes that are gone (killed mid-download)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        _drop_orphan(os.path.join(folder, name))


def evict(root: str, limit: int | None = None) -> None:
    """Keep the blob cache under its size limit, dropping the least recently used blobs."""
    limit = limit if limit is not None else int(os.environ.get("LAYER_EXPLORER_CACHE_MAX", DEFAULT_CACHE_MAX))
    blobs = []
    for top, _dirs, names in os.walk(os.path.join(root, "blobs")):
        for n in names:
            if ".partial-" in n:
                _drop_orphan(os.path.join(top, n))
            else:
                blobs.append(os.path.join(top, n))
    keep_under(blobs, limit)


def _drop_orphan(path: str) -> None:
    """Remove a partial download whose process is gone (killed mid-download)."""
    _, sep, rest = path.rpartition(".partial-")
    if sep and writer_gone(rest.split("-")[0]):
        remove(path)


def insecure_url(source: str) -> str:
    """The plain-HTTP spelling of a registry reference (``--insecure``)."""
    return "registry+http://" + source.split("://", 1)[1] if source.startswith("registry://") else source


def list_tags(source: str) -> list[str]:
    """The tags of the repository a ``registry://HOST/REPO`` reference names (any tag given is
    ignored), as the registry lists them."""
    host, repo, _tag, _digest, plain = parse_reference(source)
    client = RegistryClient(host, plain, source)
    resp = client.get(f"/v2/{repo}/tags/list?n=10000", "application/json")
    body = _read_small(resp, source, MAX_TAG_LIST)
    if resp.status == 404:
        raise SourceError(source, f"no repository {repo!r} on {host}", "check the name (it is case-sensitive)")
    if resp.status != 200:
        raise SourceError(source, f"the registry answered {resp.status} when asked for the tags of {repo}")
    try:
        tags = json.loads(body).get("tags") or []
    except (ValueError, AttributeError):
        raise SourceError(source, f"the registry's tag list of {repo} is not JSON") from None
    return [t for t in tags if isinstance(t, str)]
