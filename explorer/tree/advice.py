"""Advice on a layer strategy, each item backed by the image's own numbers, and secrets left
behind in lower layers."""

from __future__ import annotations

import fnmatch
import heapq
import re
from collections import defaultdict
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Callable

from explorer.model.values import FILE, Entry, HistoryEntry, LayerInfo
from explorer.model.secrets import SECRET_CONTENT, SNIFF_MAX
from explorer.tree.index import LayerTree
from explorer.tree.waste import DUPLICATE, OVERWRITTEN, REMOVED_LATER, REWRITTEN, Waste

BIG_FILE = 1 << 20
SNIFF_LIMIT = 5000
CACHE_PATTERNS = {
    "apt package lists": ("/var/lib/apt/lists/*",),
    "apt package cache": ("/var/cache/apt/*",),
    "apk cache": ("/var/cache/apk/*",),
    "yum/dnf cache": ("/var/cache/yum/*", "/var/cache/dnf/*"),
    "pip cache": ("/root/.cache/pip/*", "/home/*/.cache/pip/*"),
    "npm cache": ("/root/.npm/*", "/home/*/.npm/*"),
    "Python bytecode (__pycache__)": ("*/__pycache__/*",),
}
# Names that are secrets by themselves; *.pem and *.key count only with a private key inside
# (certificate bundles are public), and tokens are recognised by their content.
SECRET_NAMES = ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "*.p12", "*.pfx", "*.jks", "*.keystore", ".env", ".env.*",
                "credentials", ".git-credentials", ".netrc", ".npmrc", ".pypirc", "secrets.yaml", "secrets.yml", "secrets.json")
_SECRET_NAME = re.compile("|".join(fnmatch.translate(p) for p in SECRET_NAMES))
_SIZE = itemgetter(2)  # WastedFile.size, read in C
_SECRET_PATHS = ("/.aws/credentials", "/.docker/config.json")


@dataclass
class Advice:
    """One suggestion: what to change, why, and how many bytes it would save."""

    kind: str
    title: str
    detail: str
    bytes: int = 0
    layer: int | None = None  # the step to change
    paths: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Secret:
    """A file that looks like a secret, removed later but still readable in a lower layer."""

    path: str
    layer: int  # where it can still be read
    removed_in: int
    why: str


def _step(layers: list[LayerInfo], k: int) -> str:
    cmd = " ".join(layers[k].created_by.split()) if 0 <= k < len(layers) else ""
    return f"layer {k} ({cmd[:70] + '…' if len(cmd) > 70 else cmd})" if cmd else f"layer {k}"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def advise(tree: LayerTree, layers: list[LayerInfo], history: list[HistoryEntry], waste: Waste) -> list[Advice]:
    """Suggestions, biggest saving first."""
    out: list[Advice] = []
    removed: dict[tuple[int, int], list] = defaultdict(list)
    rewritten: dict[int, list] = defaultdict(list)
    versions_of: dict[str, list] = defaultdict(list)
    dupes = []
    for f in waste.files:
        path, layer, _, kind, by_layer, reason = f  # (unpacked: a quarter of a million read by name cost more)
        if kind == REMOVED_LATER:
            removed[(layer, by_layer)].append(f)
        elif kind == REWRITTEN and "metadata" in reason:
            rewritten[by_layer].append(f)
        if kind == OVERWRITTEN or kind == REWRITTEN:
            versions_of[path].append(f)
        elif kind == DUPLICATE:
            dupes.append(f)
    for (added, gone), files in removed.items():
        total = sum(map(_SIZE, files))
        out.append(Advice("remove-in-same-step", f"{len(files)} file(s) added in layer {added} are removed in layer {gone}",
                          f"{_step(layers, added)} stores {_mb(total)} that {_step(layers, gone)} deletes. Delete them in "
                          "the same step that creates them (or use a multi-stage build), so no layer keeps them.",
                          total, added, [f.path for f in files[:20]]))
    for layer, files in rewritten.items():
        total = sum(map(_SIZE, files))
        out.append(Advice("metadata-only", f"layer {layer} copies {len(files)} file(s) only to change their mode or owner",
                          f"{_step(layers, layer)} changes only metadata, yet a layer stores whole files: {_mb(total)} "
                          "stored twice. Set modes and owners where the files are created (COPY --chmod/--chown).",
                          total, layer, [f.path for f in files[:20]]))
    for path, fs in versions_of.items():
        total = sum(map(_SIZE, fs))
        if total >= BIG_FILE:
            out.append(Advice("big-file-rewritten", f"{path} is written in {len(fs) + 1} layers",
                              f"Each version is stored: {_mb(total)} of it is dead weight. Write it once, in the last "
                              "step that needs to change it.", total, fs[0].layer, [path]))
    out += _caches(tree, layers)
    if dupes:
        total = sum(map(_SIZE, dupes))
        out.append(Advice("duplicates", f"{len(dupes)} file(s) hold content stored elsewhere in the image",
                          f"{_mb(total)} are copies of other files. Use links, or copy once.", total, None,
                          [f.path for f in dupes[:20]]))
    out += _order(layers, history)
    out.sort(key=lambda a: -a.bytes)
    return out


def _caches(tree: LayerTree, layers: list[LayerInfo]) -> list[Advice]:
    """Package-manager leftovers in the final image."""
    found: dict[str, list[Entry]] = defaultdict(list)
    places = ("/var/lib/apt/lists/", "/var/cache/", "/root/.cache/", "/root/.npm/", "/home/")
    # Only the folders where caches live are looked in (a cheap test first: most are in none)
    for e in tree.merged_in(lambda folder: folder.startswith(places) or "/__pycache__/" in folder):
        if e.type != FILE:
            continue
        for label, patterns in CACHE_PATTERNS.items():
            if any(fnmatch.fnmatchcase(e.path, p) for p in patterns):
                found[label].append(e)
                break
    out = []
    for label, entries in found.items():
        by_layer: dict[int, int] = defaultdict(int)
        for e in entries:
            by_layer[e.layer] += e.size
        total = sum(by_layer.values())
        if not total:
            continue
        layer = max(sorted(by_layer), key=by_layer.__getitem__)  # (the first of layers that tie)
        out.append(Advice("package-cache", f"{label} left in the image ({len(entries)} files)",
                          f"{_mb(total)}, mostly from {_step(layers, layer)}. Clean it in the same step that fills it "
                          "(e.g. `rm -rf /var/lib/apt/lists/*`, `pip install --no-cache-dir`, `npm cache clean --force`).",
                          total, layer, heapq.nsmallest(20, (e.path for e in entries))))
    return out


def _order(layers: list[LayerInfo], history: list[HistoryEntry]) -> list[Advice]:
    """Frequently changing content (the app's sources) copied below slowly changing steps."""
    steps = [(h.layer, h.created_by) for h in history if h.layer is not None]
    copy_all = re.compile(r"\b(COPY|ADD)\b(?:\s+--\S+)*\s+\.\s+\S+|copy\s+\.\s|file:.* in \.?/?\s*$", re.IGNORECASE)
    install = re.compile(r"\b(pip3? install|npm (ci|install)|yarn install|go mod download|bundle install|composer install|mvn|gradle)\b")
    for i, (layer, cmd) in enumerate(steps):
        if not copy_all.search(cmd):
            continue
        for later, later_cmd in steps[i + 1:]:
            if install.search(later_cmd):
                size = layers[later].size if 0 <= later < len(layers) else 0
                return [Advice("layer-order", "dependencies are installed after the whole source tree is copied",
                               f"{_step(layers, layer)} copies everything, then {_step(layers, later)} installs "
                               f"dependencies ({_mb(size)}). Any source change rebuilds and re-ships that layer. Copy "
                               "only the dependency manifests first, install, then copy the rest.", size, layer)]
    return []


def find_secrets(tree: LayerTree, waste: Waste, head: Callable[[Entry], bytes]) -> list[Secret]:
    """Removed or overwritten files that look like secrets (by name, or a key/token inside).

    Contents are sniffed only for small files (keys and tokens are small), and at most
    ``SNIFF_LIMIT`` of them, so an image that deletes a hundred thousand files stays fast.
    """
    out = []
    sniffed = 0
    verdicts: dict[str, bool] = {}  # a file name's, worked out once (images repeat names)
    for f in waste.files:
        path, _, size, kind, _, _ = f
        if kind != REMOVED_LATER and kind != OVERWRITTEN:
            continue
        name = path[path.rfind("/") + 1 :]
        by_name = verdicts.get(name)
        if by_name is None:
            by_name = verdicts[name] = _SECRET_NAME.match(name) is not None
        by_name = by_name or path.endswith(_SECRET_PATHS)
        if not by_name and (size > SNIFF_MAX or sniffed >= SNIFF_LIMIT):
            continue
        entry = next((v.entry for v in tree.history(f.path) if v.layer == f.layer and v.entry is not None), None)
        if entry is None:
            continue
        sniffed += 1
        try:
            sample = head(entry)
        except Exception:  # an unreadable sample must not hide the finding by name
            sample = b""
        match = SECRET_CONTENT.search(sample)
        if by_name or match:
            why = f"contains {match.group(0).decode('latin-1')[:40]!r}" if match else f"its name ({name}) looks like a secret"
            out.append(Secret(f.path, f.layer, f.by_layer, why))
    return out
