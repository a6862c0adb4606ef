"""Parser for the fixtures' ``<name>.expected.txt`` files (what real tools say an image holds)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

TYPES = {"f": "file", "d": "dir", "l": "symlink", "p": "fifo", "c": "char", "b": "block", "s": "socket"}


def unescape(text: str) -> str:
    """Undo GNU tar's escape quoting (``\\\\``, ``\\t``, ``\\ooo``) into a surrogateescape str."""
    out = bytearray()
    raw = text.encode("utf-8", "surrogateescape")
    i = 0
    simple = {ord("\\"): b"\\", ord("t"): b"\t", ord("n"): b"\n", ord("a"): b"\a", ord("b"): b"\b",
              ord("f"): b"\f", ord("r"): b"\r", ord("v"): b"\v", ord(" "): b" "}
    while i < len(raw):
        c = raw[i]
        if c == ord("\\") and i + 1 < len(raw):
            nxt = raw[i + 1]
            if 0x30 <= nxt <= 0x37 and re.match(rb"[0-7]{3}", raw[i + 1 : i + 4]):
                out.append(int(raw[i + 1 : i + 4], 8))
                i += 4
                continue
            if nxt in simple:
                out += simple[nxt]
                i += 2
                continue
        out.append(c)
        i += 1
    return out.decode("utf-8", "surrogateescape")


@dataclass
class FileLine:
    """One entry of a listing: type, mode, owner, size, content digest prefix, path, target."""

    type: str
    mode: str
    uid: int
    gid: int
    size: int | None
    nlink: int | None
    sha16: str | None
    path: str
    target: str | None


@dataclass
class ExpectedImage:
    """One IMAGE block."""

    header: str
    diff_ids: list[str] = field(default_factory=list)
    compressions: list[str] = field(default_factory=list)
    blob_bytes: list[int] = field(default_factory=list)
    tar_entries: list[int] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)  # empty_layer, layer, created_by, comment
    changes: list[dict[str, str]] = field(default_factory=list)  # per layer: path -> change
    change_lines: list[list[FileLine]] = field(default_factory=list)
    merged: list[FileLine] = field(default_factory=list)
    hardlink_groups: list[list[str]] = field(default_factory=list)


_CHANGE = {"A": "added", "M": "modified", "D": "removed"}


def parse_file_line(text: str) -> FileLine:
    """``f 0644 0:0 27 1 bc0b500e77f3d4bc etc/group`` (``-`` for unknown columns)."""
    was = text.find("   (was: ")
    if was >= 0:
        text = text[:was]
    kind, mode, owner, size, nlink, sha, rest = text.split(" ", 6)
    target = None
    if kind == "l" and " -> " in rest:
        rest, target = rest.split(" -> ", 1)
        target = unescape(target)
    uid, gid = owner.split(":")
    return FileLine(
        type=TYPES[kind],
        mode=mode.zfill(4),
        uid=int(uid),
        gid=int(gid),
        size=None if size == "-" else int(size),
        nlink=None if nlink == "-" else int(nlink),
        sha16=None if sha == "-" else sha,
        path="/" + unescape(rest),
        target=target,
    )


def parse(path: Path) -> dict:
    """The archive-level facts and the list of images of an expected.txt."""
    top: dict = {"images": []}
    image: ExpectedImage | None = None
    section = ""
    layer = -1
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("#") or not raw.strip() or raw.startswith("====="):
            continue
        if raw.startswith("IMAGE "):
            image = ExpectedImage(header=raw)
            top["images"].append(image)
            section = ""
            continue
        if image is None:
            if ": " in raw and not raw.startswith(" "):
                key, value = raw.split(": ", 1)
                top[key.strip()] = value.strip()
            continue
        m = re.match(r"^\[(layers|history|merged filesystem|hardlink groups|xattrs|cross-check)", raw)
        m2 = re.match(r"^\[layer (\d+) (tar entries|net changes)\]", raw)
        if m2:
            layer = int(m2.group(1))
            section = m2.group(2)
            if section == "net changes":
                while len(image.changes) <= layer:
                    image.changes.append({})
                    image.change_lines.append([])
            continue
        if m:
            section = m.group(1)
            continue
        if raw.startswith("["):
            section = "other"
            continue
        line = raw.strip()
        if section == "layers":
            lm = re.match(r"layer (\d+): diff_id=(\S+)", line)
            if lm:
                image.diff_ids.append(lm.group(2))
            bm = re.match(r"blob=\S+ media=.* compression=(\S+) blob_bytes=(\d+) tar_bytes=\d+ tar_entries=(\d+)", line)
            if bm:
                image.compressions.append(bm.group(1))
                image.blob_bytes.append(int(bm.group(2)))
                image.tar_entries.append(int(bm.group(3)))
        elif section == "history":
            hm = re.match(r"history (\d+): empty_layer=(\w+) layer=(\S+) created=(\S*)", line)
            if hm:
                image.history.append({
                    "empty_layer": hm.group(2) == "true",
                    "layer": None if hm.group(3) == "-" else int(hm.group(3)),
                    "created": hm.group(4),
                    "created_by": "",
                    "comment": "",
                })
            elif line.startswith("created_by: "):
                image.history[-1]["created_by"] = json.loads(line[len("created_by: "):])
            elif line.startswith("comment: "):
                image.history[-1]["comment"] = json.loads(line[len("comment: "):])
        elif section == "net changes":
            if line.startswith("state_after_layer"):
                continue
            fl = parse_file_line(line[2:])
            image.changes[layer][fl.path] = _CHANGE[line[0]]
            image.change_lines[layer].append(fl)
        elif section == "merged filesystem":
            if line.startswith("columns:") or line.startswith("("):
                continue
            image.merged.append(parse_file_line(line))
        elif section == "hardlink groups":
            image.hardlink_groups.append(["/" + unescape(p) for p in line.split(" == ")])
    return top
