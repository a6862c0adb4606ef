"""What each layer installed, removed and upgraded, read from the package managers' own
databases inside the image, and what each package of the final image weighs.

A manager's database is read again only at the layers that change its files; each database
file is read once however many layers show it (by the identity of its stored bytes), and the
files of one layer are read in one pass over that layer's tar, in order.
"""

from __future__ import annotations

import re
from itertools import islice
from typing import Callable, Iterable, Iterator

from explorer.formats import compression, gzip_access
from explorer.formats import packages as db
from explorer.formats.container import Container, LayerScan
from explorer.model.packages import (APK, DPKG, NPM, PIP, RPM, InstalledPackage, LayerPackages, Package,
                                     PackageChange, PackageReport)
from explorer.model.text import human_size
from explorer.model.values import DIR, FILE, HARDLINK, Entry
from explorer.tree.index import Inode, LayerTree
from explorer.tree.resolve import resolve

# Reads the bytes of several entries at once: {inode: bytes}.
ReadMany = Callable[[list[Entry]], dict[Inode, bytes]]

DPKG_DIR = "/var/lib/dpkg"
APK_DBS = ("/lib/apk/db/installed", "/usr/lib/apk/db/installed")
RPM_DBS = ("/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite", "/usr/share/rpm/rpmdb.sqlite")
RPM_OLD = {"Packages": "Berkeley DB", "Packages.db": "ndb"}
# Per manager: text in a layer's changed paths (a line each, starting with a newline) that
# means its database may have changed; plain substrings, as they run over a million paths.
_TOUCHES = {
    DPKG: ("\n/var/lib/dpkg/",),
    APK: ("/lib/apk/db/",),
    RPM: ("\n/var/lib/rpm/", "\n/usr/lib/sysimage/rpm/", "\n/usr/share/rpm/"),
    PIP: (".dist-info/", ".egg-info"),
    NPM: ("/package.json\n",),
}
# A distribution's metadata, by the file that names it (pip, and eggs installed by setup.py),
# and an npm package's manifest (``.../node_modules/[@scope/]name/package.json``).
_PY_META = re.compile(r"\.(dist-info/METADATA|egg-info/PKG-INFO)$", re.M)
_NPM_MANIFEST = re.compile(r"/package\.json$", re.M)
_NPM_FOLDER = re.compile(r"/node_modules/(@[^/]+/)?[^/@][^/]*$")


TEXT_PATHS = 1 << 16  # paths a text (``_texts``)


def _texts(paths: Iterable[str]) -> Iterator[str]:
    """Paths joined into texts of ``TEXT_PATHS`` paths, each path on a line of its own (a
    newline before and after): one text of a million paths took 60 MB at once."""
    it = iter(paths)
    while chunk := list(islice(it, TEXT_PATHS)):
        yield "\n" + "\n".join(chunk) + "\n"


def _lines_ending(pattern: re.Pattern[str], text: str) -> Iterator[str]:
    """The lines of ``text`` in which ``pattern`` matches at the end."""
    for m in pattern.finditer(text):
        yield text[text.rfind("\n", 0, m.start()) + 1: m.end()]


MAX_FILE = 256 << 20  # a database file bigger than this is not read: a hostile image


class _Reader:
    """Database files of the tree at any layer, read once each (by stored identity)."""

    def __init__(self, tree: LayerTree, read_many: ReadMany, warnings: list[str]) -> None:
        self.tree = tree
        self.read_many = read_many
        self.cache: dict[Inode, bytes] = {}
        self.warnings = warnings

    def entry(self, path: str, layer: int) -> Entry | None:
        """The file a path leads to at ``layer`` (through symlinks), or None."""
        found = resolve(self.tree, path, layer)
        e = found.entry
        if e is None or e.type not in (FILE, HARDLINK):
            return None
        return self.tree.effective(e, layer)

    def read(self, entries: Iterable[Entry]) -> dict[str, bytes]:
        """The bytes of each entry, by its path; ``Unreadable`` when one cannot be read (a
        database read in part would make its packages look removed)."""
        tree, want, out = self.tree, [], {}
        entries = list(entries)
        for e in entries:
            key = tree.inode(e)
            if key is None or e.size > MAX_FILE or e.offset < 0:
                raise Unreadable(f"{e.path} cannot be read ({'too big' if e.size > MAX_FILE else 'not stored as a plain file'})")
            if key not in self.cache:
                want.append(e)
        if want:
            self.cache.update(self.read_many(want))
        for e in entries:
            key = tree.inode(e)
            if key is None or key not in self.cache:
                raise Unreadable(f"{e.path} cannot be read")
            out[e.path] = self.cache[key]
        return out


class Unreadable(Exception):
    """A database file that is there but cannot be read."""


def _dpkg(r: _Reader, layer: int, meta: list[str]) -> dict[tuple, Package]:
    tree = r.tree
    status = r.entry(DPKG_DIR + "/status", layer)
    found: list[Package] = []
    if status is not None:
        installed = db.dpkg_installed(r.read([status]).get(status.path, b""))
        lists: dict[str, Entry] = {}
        for p in installed:
            for name in (f"{p.name}:{p.arch}.list", f"{p.name}.list"):
                e = r.entry(f"{DPKG_DIR}/info/{name}", layer)
                if e is not None:
                    lists[p.name + ":" + (p.arch or "")] = e
                    break
        data = r.read(lists.values())
        for p in installed:
            e = lists.get(p.name + ":" + (p.arch or ""))
            paths = db.dpkg_list(data.get(e.path, b"")) if e is not None else ()
            found.append(Package(DPKG, p.name, p.version, p.arch, paths))
    # distroless images: one status paragraph a package in status.d, files in NAME.md5sums
    folder = DPKG_DIR + "/status.d"
    if tree.entry_at(folder, layer) is not None:
        kids = [r.entry(f"{folder}/{n}", layer) for n in tree.children(folder, layer)]
        data = r.read([e for e in kids if e is not None])
        for path, raw in sorted(data.items()):
            if path.endswith(".md5sums"):
                continue
            for p in db.dpkg_installed(raw):
                sums = data.get(path + ".md5sums")
                found.append(Package(DPKG, p.name, p.version, p.arch, db.dpkg_md5sums(sums) if sums else ()))
    return {p.key: p for p in found}


def _apk(r: _Reader, layer: int, meta: list[str]) -> dict[tuple, Package]:
    for path in APK_DBS:
        e = r.entry(path, layer)
        if e is not None:
            return {p.key: p for p in db.apk_installed(r.read([e]).get(e.path, b""))}
    return {}


def _rpm(r: _Reader, layer: int, meta: list[str]) -> dict[tuple, Package]:
    for path in RPM_DBS:
        e = r.entry(path, layer)
        if e is not None:
            found, problems = db.rpm_sqlite(r.read([e]).get(e.path, b""))
            r.warnings.extend(f"{path}: {p}" for p in problems)
            return {p.key: p for p in found}
    for folder in ("/var/lib/rpm", "/usr/lib/sysimage/rpm"):
        for name, kind in RPM_OLD.items():
            if r.entry(f"{folder}/{name}", layer) is not None:
                note = (f"{folder}/{name}: an rpm database in {kind} format, which is not read yet "
                        "(rpmdb.sqlite is); its packages are not listed")
                if note not in r.warnings:
                    r.warnings.append(note)
                return {}
    return {}


def _pip(r: _Reader, layer: int, meta: list[str]) -> dict[tuple, Package]:
    tree = r.tree
    here = [e for e in (tree.entry_at(p, layer) for p in meta) if e is not None and e.type in (FILE, HARDLINK)]
    heads = r.read([tree.effective(e, layer) for e in here])
    found: dict[tuple, Package] = {}
    listing: dict[str, Entry] = {}
    for path in heads:
        folder = path[: path.rfind("/")]
        name = "RECORD" if folder.endswith(".dist-info") else "installed-files.txt"
        e = r.entry(f"{folder}/{name}", layer)
        if e is not None:
            listing[folder] = e
    files = r.read(listing.values())
    for path, raw in sorted(heads.items()):
        named = db.python_metadata(raw)
        if named is None:
            continue
        folder = path[: path.rfind("/")]
        site = folder[: folder.rfind("/")]
        e = listing.get(folder)
        text = files.get(e.path, b"") if e is not None else b""
        paths = db.pip_record(text, site) if folder.endswith(".dist-info") else db.egg_files(text, folder)
        p = db.pip_package(named[0], named[1], paths, site)
        found[p.key] = p
    return found


def _npm(r: _Reader, layer: int, meta: list[str]) -> dict[tuple, Package]:
    tree = r.tree
    here = [e for e in (tree.entry_at(p, layer) for p in meta) if e is not None and e.type in (FILE, HARDLINK)]
    found: dict[tuple, Package] = {}
    for path, raw in sorted(r.read([tree.effective(e, layer) for e in here]).items()):
        p = db.npm_manifest(raw, path[: path.rfind("/")])
        if p is not None:
            found[p.key] = p
    return found


READERS = {DPKG: _dpkg, APK: _apk, RPM: _rpm, PIP: _pip, NPM: _npm}


def find_packages(tree: LayerTree, read_many: ReadMany) -> PackageReport:
    """Every layer's package set, the changes between them, and the final image's packages."""
    warnings: list[str] = []
    r = _Reader(tree, read_many, warnings)
    # searches over paths joined into texts: a Python test of each of a million paths costs more
    meta: dict[str, list[str]] = {PIP: [], NPM: []}
    for text in _texts(tree.versions):
        meta[PIP] += _lines_ending(_PY_META, text)
        meta[NPM] += (p for p in _lines_ending(_NPM_MANIFEST, text) if _NPM_FOLDER.search(p[:-13]))
    meta = {manager: sorted(paths) for manager, paths in meta.items()}
    states: dict[str, dict[tuple, Package]] = {m: {} for m in READERS}
    since: dict[tuple, int] = {}  # package key -> the layer that installed it or changed its version
    layers: list[LayerPackages] = []
    # the real paths the packages list, worked out again only when the package set changes
    owned_for: tuple[list[Package], set[str]] | None = None
    for k in range(tree.layer_count):
        touched, modules = set(), False
        for text in _texts(tree.changes[k].paths):
            touched.update(manager for manager, marks in _TOUCHES.items() if any(m in text for m in marks))
            modules = modules or "/node_modules/" in text
        if not modules:
            touched.discard(NPM)
        before = {key: p for state in states.values() for key, p in state.items()}
        for manager in touched:
            try:
                states[manager] = READERS[manager](r, k, meta.get(manager, []))
            except Exception as exc:  # noqa: BLE001 - a stranger's database must not stop the image
                # what it said before stands: a database read in part would remove every package
                warnings.append(f"layer {k}: the {manager} database could not be read ({exc}); "
                                "its packages are shown as they were before this layer")
        after = {key: p for state in states.values() for key, p in state.items()}
        added = tuple(PackageChange(p) for key, p in after.items() if key not in before)
        removed = tuple(PackageChange(p) for key, p in before.items() if key not in after)
        changed = tuple(PackageChange(p, before[key].version) for key, p in after.items()
                        if key in before and before[key].version != p.version)
        for change in added + changed:
            since[change.package.key] = k
        if after and (owned_for is None or owned_for[0] != list(after.values())):
            owned_for = (list(after.values()), _owned_paths(tree, k, after.values()))
        owned = _owned_bytes(tree, k, owned_for[1]) if after and owned_for is not None else 0
        layers.append(LayerPackages(_sorted(added), _sorted(removed), _sorted(changed), owned))
    final = {key: p for state in states.values() for key, p in state.items()}
    installed, owner = _weigh(tree, final, since)
    return PackageReport(tuple(installed), tuple(layers), tuple(warnings), owner)


def _sorted(changes: tuple[PackageChange, ...]) -> tuple[PackageChange, ...]:
    return tuple(sorted(changes, key=lambda c: (c.package.manager, c.package.name, c.package.where)))


class _Paths:
    """Listed paths looked up at one layer: folders above the last component followed as the
    kernel would (``/bin/ls`` is ``/usr/bin/ls`` when ``/bin`` links to ``usr/bin``)."""

    def __init__(self, tree: LayerTree, layer: int | None) -> None:
        self.tree, self.layer = tree, layer
        self.folders: dict[str, str] = {}

    def real(self, path: str) -> str:
        """The path a listed path names, its folder resolved."""
        cut = path.rfind("/")
        folder, name = path[:cut] or "/", path[cut + 1:]
        if name in ("", ".", ".."):  # dpkg lists the root as "/.": a folder, looked up whole
            return resolve(self.tree, path, self.layer, follow_last=False).path
        real = self.folders.get(folder)
        if real is None:
            real = self.folders[folder] = resolve(self.tree, folder, self.layer).path if folder != "/" else "/"
        return f"{real}/{name}" if real != "/" else f"/{name}"


def _package_paths(p: Package, paths: _Paths, npm_files: dict[str, list[str]]) -> set[str]:
    """The real paths of a package's files (an npm package: every file in its folder)."""
    if p.manager == NPM:
        return set(npm_files.get(p.where, ()))
    return {paths.real(x) for x in p.paths}


def _npm_files(tree: LayerTree, folders: set[str], layer: int | None, only_layer: bool = False) -> dict[str, list[str]]:
    """The files of each npm package folder (nested node_modules belong to their own packages)."""
    out: dict[str, list[str]] = {f: [] for f in folders}
    if not folders:
        return out
    if only_layer and layer is not None:
        source = (p for p, _c in tree.changes[layer] if (e := tree.entry_at(p, layer)) is not None and e.type != DIR)
    else:
        source = (e.path for e in tree.merged(layer) if e.type != DIR)
    for path in source:  # npm keeps no file list: a package's files are those in its folder
        at = path.rfind("/node_modules/")
        if at < 0:
            continue
        rest = path[at + 14:].split("/")
        depth = 2 if rest[0].startswith("@") else 1
        if len(rest) <= depth:
            continue
        folder = path[: at + 14] + "/".join(rest[:depth])
        if folder in out:
            out[folder].append(path)
    return out


def _owned_paths(tree: LayerTree, layer: int, packages: Iterable[Package]) -> set[str]:
    """The real paths the packages of a layer's set list (an npm package: the files in its folder)."""
    paths = _Paths(tree, layer)
    pkgs = list(packages)
    npm = _npm_files(tree, {p.where for p in pkgs if p.manager == NPM}, layer)
    owned: set[str] = set()
    for p in pkgs:
        owned |= _package_paths(p, paths, npm)
    return owned


def _owned_bytes(tree: LayerTree, layer: int, owned: set[str]) -> int:
    """Bytes of the regular files layer ``layer`` wrote that a package of its set lists."""
    total = 0
    for path, _change in tree.changes[layer]:
        if path in owned:
            e = tree.entry_at(path, layer)
            if e is not None and e.type == FILE and e.layer == layer:
                total += e.size
    return total


def _weigh(tree: LayerTree, final: dict[tuple, Package], since: dict[tuple, int]) -> tuple[list[InstalledPackage], dict[str, int]]:
    """Each final package with its layer, and how many of its files exist and their bytes."""
    paths = _Paths(tree, None)
    npm = _npm_files(tree, {p.where for p in final.values() if p.manager == NPM}, None)
    out: list[InstalledPackage] = []
    owner: dict[str, int] = {}
    ordered = sorted(final.items(), key=lambda kv: (kv[1].manager, kv[1].name, kv[1].where))
    for key, p in ordered:
        files = size = 0
        seen: set[Inode] = set()
        for real in sorted(_package_paths(p, paths, npm)):
            e = tree.entry_at(real)
            if e is None:
                if real == "/":  # the root exists whether or not a layer wrote it
                    files += 1
                continue
            files += 1  # every listed path that exists, folders too, each real path once
            if e.type == DIR:
                continue
            e = tree.effective(e)
            owner.setdefault(real, len(out))
            ident = tree.inode(e)
            if ident is not None:
                if ident in seen:
                    continue  # one file under several names: its bytes count once
                seen.add(ident)
            if e.type == FILE:
                size += e.size
        out.append(InstalledPackage(p, since.get(key, 0), files, size))
    return out, owner


def reader_for(container: Container, blobs: list[str], scans: list[LayerScan], data_layer: Callable[[Entry], int]) -> ReadMany:
    """Reads entries' bytes from their layers: in place for plain layers, in one ordered pass
    over each compressed layer (so no layer is decompressed more than once per call)."""

    def read_many(entries: list[Entry]) -> dict[Inode, bytes]:
        by_layer: dict[int, list[Entry]] = {}
        for e in entries:
            if e.offset >= 0:
                by_layer.setdefault(data_layer(e), []).append(e)
        out: dict[Inode, bytes] = {}
        for layer, group in by_layer.items():
            scan, blob = scans[layer], blobs[layer]
            if scan.kept:  # kept as the layer streamed by
                for e in group:
                    if e.offset in scan.kept:
                        out[(layer, e.offset)] = scan.kept[e.offset]
                group = [e for e in group if (layer, e.offset) not in out]
                if not group:
                    continue
            group.sort(key=lambda e: e.offset)
            if scan.compression == compression.NONE:
                for e in group:
                    out[(layer, e.offset)] = container.read_layer(blob, scan, e.offset, e.size)
                continue
            first = group[0].offset
            read = gzip_access.layer_reader(container, blob, scan, first)
            pos = first
            for e in group:
                if e.offset < pos:  # the same bytes under another name
                    continue
                compression.skip(read, e.offset - pos)
                data = compression.read_exactly(read, e.size)
                if len(data) != e.size:
                    break  # the layer ends early: these files stay unread (said by the caller)
                out[(layer, e.offset)] = data
                pos = e.offset + e.size
        return out

    return read_many


def difference(before: PackageReport | None, after: PackageReport | None) -> LayerPackages:
    """Packages of the final image ``after`` has and ``before`` has not, the other way round,
    and those in both at another version (added: only in ``after``)."""
    a = {i.package.key: i.package for i in before.installed} if before is not None else {}
    b = {i.package.key: i.package for i in after.installed} if after is not None else {}
    return LayerPackages(
        _sorted(tuple(PackageChange(p) for k, p in b.items() if k not in a)),
        _sorted(tuple(PackageChange(p) for k, p in a.items() if k not in b)),
        _sorted(tuple(PackageChange(p, a[k].version) for k, p in b.items() if k in a and a[k].version != p.version)),
    )


def biggest_in_layer(report: PackageReport, layer: int, count: int = 3) -> list[InstalledPackage]:
    """The biggest packages of the final image that layer ``layer`` installed or upgraded."""
    return sorted((i for i in report.installed if i.layer == layer), key=lambda i: -i.size)[:count]


def removed_but_stored(tree: LayerTree, report: PackageReport, wasted: Iterable[tuple[str, int, int]]) -> list[tuple[Package, int, int, int]]:
    """Packages a layer removed whose files still take bytes in the layers below: (package,
    the layer that removed it, the lowest layer still holding its bytes, those bytes).

    ``wasted`` are the image's wasted files as (path, layer that stores it, size).
    """
    if not any(did.removed for did in report.layers):
        return []
    by_path: dict[str, list[tuple[int, int]]] = {}
    for path, layer, size in wasted:
        by_path.setdefault(path, []).append((layer, size))
    out = []
    for k, did in enumerate(report.layers):
        if not did.removed:
            continue
        paths = _Paths(tree, k - 1 if k else None)
        for change in did.removed:
            stored = [(layer, size) for real in {paths.real(x) for x in change.package.paths}
                      for layer, size in by_path.get(real, ()) if layer < k]
            if stored:
                out.append((change.package, k, min(l for l, _ in stored), sum(s for _, s in stored)))
    return sorted(out, key=lambda x: -x[3])


def package_files(tree: LayerTree, package: Package) -> list[str]:
    """The real paths of a package's files (folders left out) that the final image holds."""
    # an npm package's files are the ones under its folder: walked from there, not the whole tree
    npm = {package.where: _files_below(tree, package.where)} if package.manager == NPM else {}
    found = _package_paths(package, _Paths(tree, None), npm)
    return sorted(p for p in found if (e := tree.entry_at(p)) is not None and e.type != DIR)


def _files_below(tree: LayerTree, folder: str) -> list[str]:
    """The final image's non-folder paths under ``folder``, nested ``node_modules`` left out."""
    out, stack = [], [folder]
    while stack:
        here = stack.pop()
        for name in tree.children(here):
            path = f"{here}/{name}"
            e = tree.entry_at(path)
            if e is None:
                continue
            if e.type != DIR:
                out.append(path)
            elif name != "node_modules":
                stack.append(path)
    return out


def insights(tree: LayerTree, report: PackageReport, layer_sizes: list[int],
             wasted: Iterable[tuple[str, int, int]]) -> list[tuple[str, int]]:
    """Sentences that name the packages behind the biggest layers and behind wasted bytes,
    each with the layer it is about, biggest first."""
    out: list[tuple[int, str, int]] = []
    for k in sorted(range(len(layer_sizes)), key=lambda k: -layer_sizes[k])[:3]:
        if k >= len(report.layers) or not layer_sizes[k]:
            continue
        top = biggest_in_layer(report, k)
        owned = report.layers[k].owned_bytes
        if top:
            names = ", ".join(f"{i.package.name} {human_size(i.size)}" for i in top)
            rest = layer_sizes[k] - owned
            out.append((layer_sizes[k], f"Layer {k} ({human_size(layer_sizes[k])}): biggest packages {names}; "
                                        f"{human_size(max(rest, 0))} not from a package", k))
        elif owned == 0 and report.installed:
            out.append((layer_sizes[k], f"Layer {k} ({human_size(layer_sizes[k])}): no package's files; the "
                                        "application's own files, caches or downloads", k))
    for package, removed_in, stored_in, size in removed_but_stored(tree, report, wasted)[:5]:
        out.append((size, f"{package.name} removed in layer {removed_in}, but {human_size(size)} of it still "
                          f"stored in layer {stored_in}", stored_in))
    return [(text, layer) for _size_, text, layer in sorted(out, key=lambda x: -x[0])]
