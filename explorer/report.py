"""The ``layer-explorer report`` object (schema layer-explorer.report/1) and its text form."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from itertools import filterfalse, islice
from operator import itemgetter
from json.encoder import encode_basestring_ascii as _quote  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable, Iterator, TextIO

from explorer.image.compare import SCHEMA as DIFF_SCHEMA, chain_summary
from explorer.image.loader import Image
from explorer.image.updates import changed_files
from explorer.model.packages import PackageChange
from explorer.model.text import human_size, printable_lines
from explorer.model.values import Entry, ImageRef
from explorer.tree.index import LayerChanges, LayerTree
from explorer.tree.waste import WastedFile

if TYPE_CHECKING:
    from explorer.image.compare import Comparison

SCHEMA = "layer-explorer.report/1"


_PATH = itemgetter(0)  # Entry.path, read in C


def path_sort_key(paths: Iterable[str]) -> Callable[[str], Any] | None:
    """A key that sorts paths bytewise; None (plain str order) when that is already bytewise.

    Code-point order equals UTF-8 byte order except for the surrogate escapes that stand
    for undecodable bytes, so the slower bytes key is needed only when one is present.
    """
    for p in filterfalse(str.isascii, paths):  # (most paths are ASCII: passed over in C)
        if any("\udc80" <= c <= "\udcff" for c in p):
            return lambda s: s.encode("utf-8", "surrogateescape")
    return None


class _TimeFormatter:
    """RFC 3339 UTC times, cached: images repeat the same few mtimes thousands of times."""

    def __init__(self) -> None:
        self.cache: dict[float, str] = {}

    def __call__(self, t: float) -> str:
        text = self.cache.get(t)
        if text is None:
            try:
                whole = int(t // 1)
                text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
                frac = t - whole
                if frac:
                    text += f"{frac:.9f}"[1:].rstrip("0").rstrip(".")
            except (OverflowError, OSError, ValueError):
                text = "1970-01-01T00:00:00"  # a time no calendar holds
            text += "Z"
            self.cache[t] = text
        return text


def file_record(e: Entry, fmt_time: Callable[[float], str]) -> dict[str, Any]:
    """One ``files`` item."""
    return {
        "path": e.path,
        "type": e.type,
        "mode": f"{e.mode:04o}",
        "uid": e.uid,
        "gid": e.gid,
        "size": e.size,
        "mtime": fmt_time(e.mtime),
        "target": e.target,
        "layer": e.layer,
    }


def sorted_entries(tree: LayerTree) -> list[Entry]:
    """The merged filesystem, sorted bytewise by path."""
    entries = list(tree.merged())
    key = path_sort_key(map(_PATH, entries))
    entries.sort(key=(lambda e: key(e.path)) if key else _PATH)
    return entries


def sorted_changes(tree: LayerTree) -> Iterator[Iterator[tuple[str, str]]]:
    """Per layer, its net changes sorted bytewise by path, a layer at a time."""
    for changes in tree.changes:
        yield _sorted_layer(changes)


def _sorted_layer(changes: LayerChanges) -> Iterator[tuple[str, str]]:
    """One layer's changes sorted by path, without a pair for each: its paths are sorted, and
    the change found again by path for those that are not additions (a layer's paths are
    distinct)."""
    paths = sorted(changes.paths, key=path_sort_key(changes.paths))
    names = LayerChanges.NAMES
    others = {p: names[k] for p, k in zip(changes.paths, changes.kinds) if k}
    added = names[0]
    return ((p, others.get(p, added)) for p in paths)


def _files(tree: LayerTree) -> list[dict[str, Any]]:
    fmt = _TimeFormatter()
    return [file_record(e, fmt) for e in sorted_entries(tree)]


def _changes(tree: LayerTree) -> list[list[dict[str, str]]]:
    return [[{"path": p, "change": c} for p, c in layer] for layer in sorted_changes(tree)]


def _config(config: dict[str, Any]) -> dict[str, Any]:
    """The runtime settings of a config, with stable types."""
    c = config.get("config") if isinstance(config.get("config"), dict) else {}
    ports = c.get("ExposedPorts") if isinstance(c.get("ExposedPorts"), dict) else {}
    volumes = c.get("Volumes") if isinstance(c.get("Volumes"), dict) else {}
    labels = c.get("Labels") if isinstance(c.get("Labels"), dict) else {}
    env = c.get("Env")
    return {
        "env": [str(v) for v in env] if isinstance(env, list) else ([env] if isinstance(env, str) else []),
        "cmd": c.get("Cmd"),
        "entrypoint": c.get("Entrypoint"),
        "working_dir": c.get("WorkingDir") or "",
        "user": c.get("User") or "",
        "labels": dict(labels),
        "exposed_ports": sorted(ports),
        "volumes": sorted(volumes),
    }


def image_list(images: list[ImageRef], selected: ImageRef) -> list[dict[str, Any]]:
    """The ``images`` array: every image the source offers."""
    return [
        {
            "index": i.index,
            "tags": list(i.tags),
            "config_digest": i.config_digest,
            "platform": i.platform,
            "selected": i.index == selected.index,
        }
        for i in images
    ]


def efficiency_record(image: Image) -> dict[str, Any] | None:
    """``image.efficiency``: dive's numbers."""
    e = image.efficiency
    if e is None:
        return None
    return {"score": e.score, "wasted_bytes": e.wasted_bytes, "user_wasted_percent": e.user_wasted_percent,
            "files": e.files}


def waste_record(image: Image) -> dict[str, Any] | None:
    """``image.waste``: every wasted byte with its file, layer and reason."""
    w = image.waste
    if w is None:
        return None
    return {
        "bytes": w.bytes,
        "files": [{"path": f.path, "layer": f.layer, "size": f.size, "reason": f.reason, "kind": f.kind,
                   "by_layer": f.by_layer} for f in w.files],
        "layers": [{"index": i, "bytes": b} for i, b in enumerate(w.per_layer)],
        "merge_savings": [{"layers": [i, i + 1], "bytes": b} for i, b in enumerate(w.merge_savings)],
    }


def advice_record(image: Image) -> list[dict[str, Any]]:
    """``image.advice``: suggestions with the bytes they would save."""
    return [{"kind": a.kind, "title": a.title, "detail": a.detail, "bytes": a.bytes, "layer": a.layer,
             "paths": a.paths} for a in image.advice]


def packages_record(image: Image) -> list[dict[str, Any]]:
    """``image.packages``: each package of the final image (REPORT.md, "Packages")."""
    if image.packages is None:
        return []
    return [{"manager": i.package.manager, "name": i.package.name, "version": i.package.version,
             "arch": i.package.arch, "layer": i.layer, "files": i.files, "size": i.size}
            for i in image.packages.installed]


def layer_packages_record(image: Image, layer: int) -> dict[str, list[dict[str, Any]]]:
    """``image.layers[k].packages``: what layer k added, removed and changed."""
    empty: dict[str, list[dict[str, Any]]] = {"added": [], "removed": [], "changed": []}
    if image.packages is None or layer >= len(image.packages.layers):
        return empty
    did = image.packages.layers[layer]

    return {"added": [_change(c) for c in did.added], "removed": [_change(c) for c in did.removed],
            "changed": [_change(c, True) for c in did.changed]}


def _change(c: PackageChange, old: bool = False) -> dict[str, Any]:
    """A package added, removed or changed (``from``: the version before)."""
    out = {"manager": c.package.manager, "name": c.package.name, "version": c.package.version}
    if old:
        out["from"] = c.old
    return out


def build_report(image: Image, images: list[ImageRef], source_path: str, contents: bool = True) -> dict[str, Any]:
    """The whole report object (without ``files`` and ``changes`` when ``contents`` is False)."""
    return {
        "schema": SCHEMA,
        "source": {"path": source_path, "format": image.source.format, "compression": image.source.compression},
        "images": image_list(images, image.ref),
        "image": {
            "tags": list(image.tags),
            "config_digest": image.config_digest,
            "platform": image.platform,
            "created": image.created,
            "config": _config(image.config),
            "layers": [
                {
                    "index": l.index,
                    "diff_id": l.diff_id,
                    "digest": l.digest,
                    "media_type": l.media_type,
                    "compression": l.compression,
                    "blob_size": l.blob_size,
                    "size": l.size,
                    "entries": l.entries,
                    "history": l.history,
                    "created_by": l.created_by,
                    "added": l.added,
                    "modified": l.modified,
                    "removed": l.removed,
                    "packages": layer_packages_record(image, l.index),
                }
                for l in image.layers
            ],
            "history": [
                {
                    "index": h.index,
                    "created": h.created,
                    "created_by": h.created_by,
                    "author": h.author,
                    "comment": h.comment,
                    "empty_layer": h.empty_layer,
                    "layer": h.layer,
                }
                for h in image.history
            ],
            "efficiency": efficiency_record(image),
            "waste": waste_record(image),
            "advice": advice_record(image),
            "packages": packages_record(image),
            "secrets": [{"path": x.path, "layer": x.layer, "removed_in": x.removed_in, "why": x.why} for x in image.secrets],
            "verification": list(image.verification) if image.verification is not None else None,
            "files": _files(image.tree) if contents else [],
            "changes": _changes(image.tree) if contents else [],
            "warnings": list(image.warnings),
        },
    }


def contents_json(tree: LayerTree) -> Iterator[str]:
    """The text of the report's ``files`` and ``changes`` members (with their leading comma),
    in pieces; written by hand, not by ``json``, to spare a million dicts and one huge string."""
    yield ', "files": ['
    fmt = _TimeFormatter()
    # Fields unpacked, not read by name, and the text between the path and the size made once
    # for each type, mode and owner, and the time's once for each time: a million records
    # take a third of the time they took field by field.
    owners: dict[tuple[str, int, int, int], str] = {}
    times: dict[float, str] = {}
    chunk: list[str] = []
    first = True
    for path, kind, mode, uid, gid, size, mtime, target, layer, _, _, _ in sorted_entries(tree):
        owner = owners.get((kind, mode, uid, gid))
        if owner is None:
            owner = owners[(kind, mode, uid, gid)] = \
                f', "type": "{kind}", "mode": "{mode:04o}", "uid": {uid}, "gid": {gid}, "size": '
        when = times.get(mtime)
        if when is None:
            when = times[mtime] = f', "mtime": "{fmt(mtime)}", "target": '
        chunk.append(
            f'{{"path": {_quote(path)}{owner}{size}{when}{"null" if target is None else _quote(target)}, '
            f'"layer": {layer}}}'
        )
        if len(chunk) == 4096:
            yield ("" if first else ", ") + ", ".join(chunk)
            first, chunk = False, []
    if chunk:
        yield ("" if first else ", ") + ", ".join(chunk)
    yield '], "changes": ['
    ends = {name: f', "change": "{name}"}}' for name in LayerChanges.NAMES}
    for k, layer in enumerate(sorted_changes(tree)):
        yield ", [" if k else "["
        sep = ""  # a layer in pieces: half a million changes as one text took 90 MB at once
        while part := list(islice(layer, 4096)):
            yield sep + ", ".join(['{"path": ' + _quote(p) + ends[c] for p, c in part])
            sep = ", "
        yield "]"
    yield "]"


def _waste_files_json(files: list[WastedFile]) -> Iterator[str]:
    """The text of ``waste.files`` without its brackets, in pieces (as ``json.dumps`` of
    ``waste_record``'s dicts would write it)."""
    for start in range(0, len(files), 4096):
        yield ("" if start == 0 else ", ") + ", ".join(
            f'{{"path": {_quote(path)}, "layer": {layer}, "size": {size}, "reason": {_quote(reason)}, '
            f'"kind": {_quote(kind)}, "by_layer": {by_layer}}}'
            for path, layer, size, kind, by_layer, reason in files[start : start + 4096])  # (unpacked: quicker than by name)


def write_json(image: Image, images: list[ImageRef], source_path: str, out: TextIO,
               contents: "ContentsInChild | None" = None) -> None:
    """Write the report as JSON, streaming ``files`` and ``changes`` instead of building them.

    The text equals ``json.dumps(build_report(...))``. ``contents``, when given, is that part
    already formatted by a child process, which writes it to ``out`` in its turn.
    """
    waste = image.waste
    wasted = waste.files if waste is not None else []
    # The wasted files (hundreds of thousands in a big image) are formatted below, not as dicts
    # through ``json``; a name no path can forge holds their place in the rest.
    marker = uuid.uuid4().hex
    if wasted:
        stand_in = WastedFile(marker, 0, 0, "", 0, "")
        image = image.replace(waste=dataclasses.replace(waste, files=[stand_in]))
    skeleton = build_report(image, images, source_path, contents=False)
    warnings = skeleton["image"].pop("warnings")
    del skeleton["image"]["files"], skeleton["image"]["changes"]
    head = json.dumps(skeleton)
    assert head.endswith("}}")
    if wasted:
        before, _, after = head.partition(f'[{{"path": "{marker}", ')
        out.write(before)
        out.write("[")
        for piece in _waste_files_json(wasted):
            out.write(piece)
        out.write(after[after.index("}]") + 1 : -2])
    else:
        out.write(head[:-2])
    if contents is None or not contents.write(out):
        for piece in contents_json(image.tree):
            out.write(piece)
    out.write(', "warnings": ')
    out.write(json.dumps(warnings))
    out.write("}}\n")


class ContentsInChild:
    """``contents_json`` formatted on the other core while this process goes on to compute
    waste, advice and the rest (2-3 s of a million-file report); the child then writes it
    straight to the output when ``write`` says it is its turn.

    The child keeps the text in a file until then: a pipe would make it wait for a reader that
    is busy.
    """

    MIN_PATHS = 50_000  # below this, formatting here is quicker than a fork

    def __init__(self, tree: LayerTree, out: TextIO) -> None:
        self.pid = 0
        fd = out.fileno()
        read_go, self.go = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_go)
            os.close(self.go)
            raise
        if pid == 0:  # the child
            os.close(self.go)
            os._exit(_child_write(tree, fd, read_go))
        os.close(read_go)
        self.pid = pid

    @classmethod
    def start(cls, tree: LayerTree, out: TextIO) -> "ContentsInChild | None":
        """A child for a tree big enough to pay for it, with a real file to write to; else None."""
        from explorer.image.parallel import spare_core

        if not hasattr(os, "fork") or len(tree.versions) < cls.MIN_PATHS or not spare_core():
            return None
        try:
            if "a".encode(out.encoding or "ascii") != b"a":
                return None  # the child writes ASCII bytes, which must read the same in this encoding
            out.fileno()
            return cls(tree, out)
        except (OSError, ValueError, AttributeError, LookupError):  # io.UnsupportedOperation is both of the first two
            return None

    def write(self, out: TextIO) -> bool:
        """Let the child write its part after what ``out`` holds so far; False when it could not
        format it (then it wrote nothing, and the caller formats the part instead)."""
        if not self.pid:
            return False
        out.flush()
        go, self.go = self.go, -1
        try:
            os.write(go, b"1")
        except OSError:
            pass  # the child is gone: its status says why
        finally:
            os.close(go)
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            return True
        if code == _NOT_WRITTEN:  # said only before the go-ahead was read
            return False
        if code >= _ERRNO_BASE:  # writing failed part-way: the output cannot be mended
            number = code - _ERRNO_BASE
            raise (BrokenPipeError if number == errno.EPIPE else OSError)(number, os.strerror(number))
        # killed (out of memory, say) maybe part-way: the output cannot be trusted
        raise OSError(errno.EIO, f"the process writing the file list stopped (status {code}), so the output "
                                 "is incomplete; run the command again")

    def cancel(self) -> None:
        """Stop the child without its output (the command failed or was interrupted)."""
        if self.go >= 0:
            os.close(self.go)  # the child reads no go-ahead and leaves without writing
            self.go = -1
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)  # no need to let it finish formatting
            except OSError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = 0


_NOT_WRITTEN = 3
_ERRNO_BASE = 10  # exit status 10 + errno: writing failed with that error


def _child_write(tree: LayerTree, fd: int, go: int) -> int:
    """The child's side of ``ContentsInChild``; returns its exit status."""
    try:
        # Kept in a file until its turn, not in memory: a million entries' text is 90 MB more
        # for a process that already counts the parent's pages as its own (a file in memory,
        # ``memfd``, was no faster and could not be given back). The file, in the system's
        # temporary folder, has no name from the start (nothing to leave behind); where none
        # can be written, the parent formats the text itself.
        spill = tempfile.TemporaryFile()
        for piece in contents_json(tree):
            spill.write(piece.encode("ascii"))  # _quote leaves only ASCII
        spill.flush()
        if os.read(go, 1) != b"1":
            return _NOT_WRITTEN  # the parent gave up
    except BaseException:  # noqa: BLE001 (a child must not unwind into the parent's code)
        return _NOT_WRITTEN
    try:
        _copy_out(spill, fd)
    except OSError as exc:
        return _ERRNO_BASE + min(exc.errno or errno.EIO, 240)
    except BaseException:  # noqa: BLE001
        return _ERRNO_BASE + errno.EIO
    return 0


def _copy_out(spill: BinaryIO, fd: int) -> None:
    """Write the whole of ``spill`` to ``fd``: on Linux by the kernel (``sendfile``: the text,
    200 MB for a million files, is not copied through this process; elsewhere it writes only
    to sockets), else in pieces."""
    size = spill.seek(0, os.SEEK_END)
    done = 0
    if sys.platform.startswith("linux"):
        try:
            while done < size:
                sent = os.sendfile(fd, spill.fileno(), done, size - done)
                if sent == 0:
                    raise OSError(errno.EIO, "the file list could not be written whole")
                done += sent
            return
        except OSError as exc:
            if done or exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSOCK):
                raise  # (part already written, or an error writing in pieces would meet too)
    spill.seek(0)
    with os.fdopen(fd, "wb", closefd=False) as f:
        while piece := spill.read(1 << 20):
            f.write(piece)


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def text_report(report: dict[str, Any], file_count: int, file_bytes: int, owned: list[int] | None = None) -> str:
    """A readable summary of a report object (its file list need not be in it: the counts are
    given, as ``Image.file_count`` and ``file_bytes``; ``owned``: each layer's bytes that a
    package lists)."""
    img = report["image"]
    src = report["source"]
    lines = [
        f"Source:   {src['path']}  ({src['format']}, outer compression {src['compression']})",
        f"Image:    {', '.join(img['tags']) or '<untagged>'}",
        f"Config:   {img['config_digest']}",
        f"Platform: {img['platform'] or 'unknown'}    Created: {img['created'] or 'unknown'}",
    ]
    if len(report["images"]) > 1:
        lines.append("Images in this source (choose with --image or --platform):")
        for i in report["images"]:
            mark = "*" if i["selected"] else " "
            lines.append(f"  {mark} {i['index']}: {', '.join(i['tags']) or '<untagged>'}  {i['platform']}  {i['config_digest'][:19]}")
    lines += ["", f"Layers ({len(img['layers'])}):", f"  {'#':>2}  {'size':>9}  {'stored':>9}  {'+':>6} {'~':>6} {'-':>6}  created by"]
    for l in img["layers"]:
        lines.append(
            f"  {l['index']:>2}  {human_size(l['size']):>9}  {human_size(l['blob_size']):>9}  "
            f"{l['added']:>6} {l['modified']:>6} {l['removed']:>6}  {_short(l['created_by'], 60)}"
        )
    lines += ["", f"History ({len(img['history'])} steps):"]
    for h in img["history"]:
        layer = f"layer {h['layer']}" if h["layer"] is not None else ("empty" if h["empty_layer"] else "?")
        lines.append(f"  {h['index']:>2}  {layer:<8}  {_short(h['created_by'], 80)}")
    lines += _packages_text(img, owned)
    lines += ["", f"Files: {file_count} entries, {human_size(file_bytes)} in regular files"]
    if img["warnings"]:
        lines += ["", "Warnings:"] + [f"  - {w}" for w in img["warnings"]]
    return printable_lines(lines)


def _packages_text(img: dict[str, Any], owned: list[int] | None) -> list[str]:
    """Per layer: packages added, changed and removed, and the bytes no package lists."""
    packages = img.get("packages") or []
    if not packages and not any(any(l["packages"].values()) for l in img["layers"]):
        return []
    managers: dict[str, int] = {}
    for p in packages:
        managers[p["manager"]] = managers.get(p["manager"], 0) + 1
    lines = ["", f"Packages ({len(packages)}: {', '.join(f'{m} {n}' for m, n in sorted(managers.items()))}):",
             f"  {'#':>2}  {'+':>5} {'~':>5} {'-':>5}  {'not from a package':>18}  what changed"]
    for l in img["layers"]:
        did = l["packages"]
        rest = "" if owned is None else human_size(max(0, l["size"] - owned[l["index"]]))
        names = ([f"+{x['name']} {x['version']}" for x in did["added"]]
                 + [f"~{x['name']} {x['from']} -> {x['version']}" for x in did["changed"]]
                 + [f"-{x['name']}" for x in did["removed"]])
        shown = ", ".join(names[:4]) + (f", … ({len(names) - 4} more)" if len(names) > 4 else "")
        lines.append(f"  {l['index']:>2}  {len(did['added']):>5} {len(did['changed']):>5} {len(did['removed']):>5}  "
                     f"{rest:>18}  {shown}")
    biggest = sorted(packages, key=lambda p: -p["size"])[:5]
    if biggest:
        lines.append("  biggest: " + ", ".join(f"{p['name']} {human_size(p['size'])} (layer {p['layer']})" for p in biggest))
    return lines


def _side(image: Image, path: str) -> dict[str, Any]:
    return {"source": path, "format": image.source.format, "tags": list(image.tags), "config_digest": image.config_digest,
            "platform": image.platform, "layers": [l.diff_id for l in image.layers]}


def diff_report(cmp: "Comparison", a_path: str, b_path: str) -> dict[str, Any]:
    """The ``layer-explorer diff`` object (schema layer-explorer.diff/1)."""
    fmt = _TimeFormatter()
    return {
        "schema": DIFF_SCHEMA,
        "a": _side(cmp.a, a_path),
        "b": _side(cmp.b, b_path),
        "shared_layers": [{"diff_id": d, "index_a": i, "index_b": j} for d, i, j in cmp.shared],
        "diverge_at": cmp.diverge_at,
        "pull_skip_bytes": cmp.pull_skip_bytes,
        "packages": {"added": [_change(c) for c in cmp.packages.added],
                     "removed": [_change(c) for c in cmp.packages.removed],
                     "changed": [_change(c, True) for c in cmp.packages.changed]},
        "files": [{"path": f.path, "change": f.change,
                   "a": file_record(f.a, fmt) if f.a is not None else None,
                   "b": file_record(f.b, fmt) if f.b is not None else None} for f in cmp.files],
    }


def diff_text(report: dict[str, Any]) -> str:
    """A readable summary of a diff object."""
    a, b = report["a"], report["b"]
    counts = {k: sum(1 for f in report["files"] if f["change"] == k) for k in ("added", "modified", "removed")}
    lines = [f"A: {a['source']}  {', '.join(a['tags']) or a['config_digest'][:19]}  {a['platform']}  ({len(a['layers'])} layers)",
             f"B: {b['source']}  {', '.join(b['tags']) or b['config_digest'][:19]}  {b['platform']}  ({len(b['layers'])} layers)",
             f"Shared layers: {len(report['shared_layers'])} "
             f"({chain_summary(len(report['shared_layers']), len(a['layers']), len(b['layers']))}); "
             f"a pull of B having A skips {human_size(report['pull_skip_bytes'])}",
             f"Files: {counts['added']} added in B, {counts['modified']} modified, {counts['removed']} removed"]
    mark = {"added": "+", "modified": "~", "removed": "-"}
    pk = report.get("packages") or {}
    if any(pk.get(k) for k in ("added", "removed", "changed")):
        lines.append(f"Packages: {len(pk['added'])} only in B, {len(pk['changed'])} at another version, "
                     f"{len(pk['removed'])} only in A")
        lines += [f"  + {p['name']} {p['version']} ({p['manager']})" for p in pk["added"]]
        lines += [f"  ~ {p['name']} {p['from']} -> {p['version']} ({p['manager']})" for p in pk["changed"]]
        lines += [f"  - {p['name']} {p['version']} ({p['manager']})" for p in pk["removed"]]
    lines += [f"  {mark[f['change']]} {f['path']}" for f in report["files"]]
    return printable_lines(lines)


def updates_text(report: dict[str, Any]) -> str:
    """A readable summary of an updates object."""
    versions = report["versions"]
    lines = [f"Versions ({len(versions)}, oldest first):"]
    for i, v in enumerate(versions):
        size = sum(l["blob_size"] for l in v["layers"])
        lines.append(f"  {i:>2}  {', '.join(v['tags']) or v['config_digest'][:19]}  {len(v['layers'])} layers, "
                     f"{human_size(size)}  ({v['source']})")
    lines += ["", "Updates:"]
    for s in report["steps"]:
        fresh = [l for l in s["layers"] if l["new"]]
        changed = sum(l["changed_bytes"] for l in fresh)
        lines.append(f"  {s['from']} -> {s['to']}: downloads {human_size(s['download_bytes'])} "
                     f"(layers {', '.join(str(l['index']) for l in fresh) or 'none'}), reuses {human_size(s['reused_bytes'])}; "
                     f"{human_size(changed)} of files really changed")
        for l in fresh:
            paths = ", ".join(l["changed_paths"][:3]) + (f", … ({len(l['changed_paths']) - 3} more)"
                                                         if len(l["changed_paths"]) > 3 else "")
            lines.append(f"       layer {l['index']}: {human_size(l['blob_size'])} downloaded, {changed_files(l)}"
                         + (f": {paths}" if paths else ""))
    if report["advice"]:
        lines += ["", "Advice:"] + [f"  - {a['kind']}: {a['detail']}" for a in report["advice"]]
    return printable_lines(lines)


def fleet_text(report: dict[str, Any]) -> str:
    """A readable summary of a fleet object."""
    images = report["images"]
    lines = [f"Images ({len(images)}):"]
    for i, img in enumerate(images):
        lines.append(f"  {i:>2}  {', '.join(img['tags']) or img['config_digest'][:19]}  {img['platform'] or 'unknown platform'}  "
                     f"{len(img['layers'])} layers  ({img['source']})")
    shared = [l for l in report["layers"] if len(l["used_by"]) > 1]
    lines += ["", f"Layers: {len(report['layers'])} distinct, {len(shared)} shared by several images",
              f"Bytes: {human_size(report['total_bytes'])} if each image is stored alone, "
              f"{human_size(report['unique_bytes'])} stored once, {human_size(report['shared_bytes'])} shared"]
    if report["bases"]:
        lines += ["", "Bases (layers several images start with):"]
        for b in report["bases"]:
            lines.append(f"  - {b['name'] or 'unnamed'}: {len(b['layers'])} layer(s), {human_size(b['bytes'])}, "
                         f"used by images {', '.join(str(n) for n in b['used_by'])}")
    return printable_lines(lines)
