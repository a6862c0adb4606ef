"""Package databases as their managers write them: parsers from bytes to ``Package`` values.

Each parser takes the bytes of one database file and never raises on bad content: a record
it cannot read is skipped and said in ``problems`` (an image may hold a half-written
database; that must not stop the rest of the report).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import struct
from email.parser import BytesHeaderParser
from typing import Iterator

from explorer.model.packages import APK, DPKG, NPM, PIP, RPM, Package

# The files package databases are made of, by their name in a layer tar (no leading "/"):
# kept as a compressed layer streams by, so they need not be decompressed again.
PACKAGE_FILES = re.compile(
    r"(^|/)(var/lib/dpkg/(status|info/[^/]+\.list|status\.d/[^/]+)"
    r"|(usr/)?lib/apk/db/installed"
    r"|(var/lib/rpm|usr/lib/sysimage/rpm|usr/share/rpm)/rpmdb\.sqlite"
    r"|[^/]+\.dist-info/(METADATA|RECORD)|[^/]+\.egg-info/(PKG-INFO|installed-files\.txt)"
    r"|node_modules/(@[^/]+/)?[^/]+/package\.json)$")
_ENDS = ("status", ".list", "installed", "rpmdb.sqlite", "METADATA", "RECORD", "PKG-INFO", "installed-files.txt",
         "package.json")


def is_package_file(name: str) -> bool:
    """Whether a layer tar member is a package database file (``PACKAGE_FILES``), tested first
    by its ending: it runs for every file of every compressed layer."""
    return (name.endswith(_ENDS) or "status.d/" in name) and PACKAGE_FILES.search(name) is not None


# -- dpkg -------------------------------------------------------------------------------------

def dpkg_paragraphs(data: bytes) -> Iterator[dict[str, str]]:
    """The paragraphs of a dpkg status file (``Field: value``, continuation lines indented)."""
    fields: dict[str, str] = {}
    last = ""
    for raw in data.decode("utf-8", "replace").splitlines():
        if not raw.strip():
            if fields:
                yield fields
            fields, last = {}, ""
        elif raw[0] in " \t":
            if last:
                fields[last] += "\n" + raw.strip()
        elif ":" in raw:
            key, _, value = raw.partition(":")
            last = key.strip()
            fields[last] = value.strip()
    if fields:
        yield fields


def dpkg_installed(data: bytes) -> list[Package]:
    """Installed packages of a dpkg status file: ``Status: install ok installed`` only (a
    removed package keeps a paragraph while its configuration files remain)."""
    out = []
    for p in dpkg_paragraphs(data):
        name, status = p.get("Package"), p.get("Status", "").split()
        if name and status[-1:] == ["installed"] and (len(status) < 3 or status[1] == "ok"):
            out.append(Package(DPKG, name, p.get("Version", ""), p.get("Architecture") or None))
    return out


def dpkg_list(data: bytes) -> tuple[str, ...]:
    """The paths of a ``info/NAME.list`` file, as ``dpkg-query -L`` lists them (``/.`` too)."""
    return tuple(line for line in data.decode("utf-8", "surrogateescape").splitlines() if line.startswith("/"))


def dpkg_md5sums(data: bytes) -> tuple[str, ...]:
    """The paths of a ``status.d/NAME.md5sums`` file (distroless images list files there)."""
    out = []
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        _, _, path = line.partition("  ")
        if path:
            out.append("/" + path.lstrip("/"))
    return tuple(out)


# -- apk --------------------------------------------------------------------------------------

def apk_installed(data: bytes) -> list[Package]:
    """Alpine's ``lib/apk/db/installed``: ``P:`` name, ``V:`` version, ``A:`` arch, each ``F:``
    folder followed by its ``R:`` files, a blank line between packages."""
    out: list[Package] = []
    fields: dict[str, str] = {}
    paths: list[str] = []
    folder = ""

    def flush() -> None:
        if fields.get("P"):
            out.append(Package(APK, fields["P"], fields.get("V", ""), fields.get("A") or None, tuple(paths)))

    for line in data.decode("utf-8", "surrogateescape").splitlines():
        if not line.strip():
            flush()
            fields, paths, folder = {}, [], ""
            continue
        key, sep, value = line.partition(":")
        if not sep or len(key) != 1:
            continue
        if key == "F":
            folder = value.strip("/")  # its files follow (apk info -L lists the files only)
        elif key == "R":
            paths.append(f"/{folder}/{value}" if folder else f"/{value}")
        elif key not in fields:
            fields[key] = value
    flush()
    return out


# -- rpm --------------------------------------------------------------------------------------

# Header tags and types of the rpm header format (rpm's lib/rpmtag.h).
_NAME, _VERSION, _RELEASE, _EPOCH, _ARCH = 1000, 1001, 1002, 1003, 1022
_OLDFILENAMES, _DIRINDEXES, _BASENAMES, _DIRNAMES = 1027, 1116, 1117, 1118
_INT32, _STRING, _STRING_ARRAY, _I18NSTRING = 4, 6, 8, 9
_ENTRY = struct.Struct(">iiii")


def rpm_header(blob: bytes) -> Package | None:
    """One package from an rpm header blob as rpmdb stores it (index count, data length,
    16-byte index entries, then the data); None when the blob does not hold together."""
    if len(blob) < 8:
        return None
    count, length = struct.unpack_from(">ii", blob)
    start = 8 + 16 * count
    if count <= 0 or length < 0 or count > 100_000 or start + length > len(blob):
        return None
    data = blob[start:start + length]
    tags: dict[int, tuple[int, int, int]] = {}
    for i in range(count):
        tag, kind, offset, n = _ENTRY.unpack_from(blob, 8 + 16 * i)
        if 0 <= offset < length:
            tags[tag] = (kind, offset, n)

    def strings(tag: int) -> list[str]:
        found = tags.get(tag)
        if found is None or found[0] not in (_STRING, _STRING_ARRAY, _I18NSTRING):
            return []
        kind, offset, n = found
        out, at = [], offset
        for _ in range(1 if kind == _STRING else n):
            end = data.find(b"\0", at)
            if end < 0:
                break
            out.append(data[at:end].decode("utf-8", "surrogateescape"))
            at = end + 1
        return out

    def ints(tag: int) -> list[int]:
        found = tags.get(tag)
        if found is None or found[0] != _INT32 or found[2] < 0 or found[1] + 4 * found[2] > length:
            return []
        return list(struct.unpack_from(f">{found[2]}i", data, found[1]))

    name = strings(_NAME)
    if not name:
        return None
    version, release, arch = strings(_VERSION), strings(_RELEASE), strings(_ARCH)
    epoch = ints(_EPOCH)
    text = "-".join(v[0] for v in (version, release) if v)
    if epoch:
        text = f"{epoch[0]}:{text}"
    dirs, bases, index = strings(_DIRNAMES), strings(_BASENAMES), ints(_DIRINDEXES)
    if bases and len(index) == len(bases):
        paths = tuple(dirs[i] + b for i, b in zip(index, bases) if 0 <= i < len(dirs))
    else:
        paths = tuple(strings(_OLDFILENAMES))
    return Package(RPM, name[0], text, arch[0] if arch else None, paths)


def rpm_sqlite(data: bytes) -> tuple[list[Package], list[str]]:
    """The packages of an ``rpmdb.sqlite`` (Fedora 33+, RHEL 9, current SUSE), read in memory."""
    problems: list[str] = []
    if len(data) < 100 or data[:16] != b"SQLite format 3\0":  # shorter than its own header
        return [], ["the rpm database is not an SQLite file"]
    if data[18:20] == b"\2\2":
        # rpm keeps it in WAL mode, which an in-memory copy cannot open; what the WAL file
        # held is not here anyway (rpm checkpoints it on exit), so read it as a plain database
        data = data[:18] + b"\1\1" + data[20:]
    con = sqlite3.connect(":memory:")
    try:
        con.deserialize(data)
        rows = con.execute("SELECT blob FROM Packages").fetchall()
    except (sqlite3.Error, MemoryError, OverflowError, ValueError) as exc:
        return [], [f"the rpm database cannot be read ({exc or type(exc).__name__})"]
    finally:
        con.close()
    out = []
    for (blob,) in rows:
        found = rpm_header(bytes(blob)) if isinstance(blob, (bytes, memoryview)) else None
        if found is None:
            problems.append("an rpm database record does not hold together; skipped")
        else:
            out.append(found)
    return out, problems


# -- pip ----------------------------------------------------------------------------------------

def python_metadata(data: bytes) -> tuple[str, str] | None:
    """Name and version from a ``METADATA`` or ``PKG-INFO`` file (email-style headers)."""
    headers = BytesHeaderParser().parsebytes(data)
    name, version = headers.get("Name"), headers.get("Version")
    return (str(name).strip(), str(version).strip()) if name and version else None


def pip_record(data: bytes, site: str) -> tuple[str, ...]:
    """The paths of a ``RECORD`` file, made absolute from the site-packages folder ``site``."""
    out = []
    try:
        for row in csv.reader(io.StringIO(data.decode("utf-8", "surrogateescape"))):
            if row and row[0]:
                out.append(_join(site, row[0]))
    except csv.Error:  # a field past csv's limit: the rows before it stand
        pass
    return tuple(out)


def egg_files(data: bytes, egg_info: str) -> tuple[str, ...]:
    """The paths of an ``installed-files.txt`` (relative to the ``.egg-info`` folder)."""
    return tuple(_join(egg_info, line.strip()) for line in data.decode("utf-8", "surrogateescape").splitlines()
                 if line.strip())


def pip_package(name: str, version: str, paths: tuple[str, ...], where: str) -> Package:
    """A Python distribution found in ``where`` (its site-packages folder)."""
    return Package(PIP, name, version, None, paths, where)


# -- npm --------------------------------------------------------------------------------------

def npm_manifest(data: bytes, folder: str) -> Package | None:
    """A package from its ``package.json`` in ``folder`` (a ``node_modules/NAME`` folder)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name:
        return None
    return Package(NPM, name, version, None, (), folder)


def _join(folder: str, relative: str) -> str:
    """``folder/relative`` with ``.`` and ``..`` worked out (RECORD names ``../../bin/x``)."""
    parts = [p for p in folder.split("/") if p]
    for p in relative.split("/"):
        if p == "..":
            if parts:
                parts.pop()
        elif p and p != ".":
            parts.append(p)
    return "/" + "/".join(parts)
