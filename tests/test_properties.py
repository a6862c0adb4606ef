"""Property: for random stacks of layers, the merged view equals what an independent, simple
reference gets by really applying the layers to a temporary folder; and fuzzing finds
nothing in a short run (the long run is ``python -m tests.fuzz --minutes N``)."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.image.loader import load_image
from explorer.formats.source import open_source
from tests.builders import docker_archive, reopened

DIRS = ["a", "b", "a/c", "b/d", "a/c/e"]
FILES = ["f1", "f2", "a/f3", "b/f4", "a/c/f5", "b/d/f6", "a/c/e/f7", "a", "b/d"]  # some names are folders elsewhere
LINKS = ["l1", "a/l2", "b/l3"]  # links are only ever leaves: the reference must not write through them

op = st.one_of(
    st.tuples(st.just("file"), st.sampled_from(FILES), st.binary(max_size=20)),
    st.tuples(st.just("dir"), st.sampled_from(DIRS), st.just(b"")),
    st.tuples(st.just("link"), st.sampled_from(LINKS), st.sampled_from([b"f1", b"/a/f3", b"../x", b"nowhere"])),
    st.tuples(st.just("whiteout"), st.sampled_from(DIRS + FILES + LINKS), st.just(b"")),
    st.tuples(st.just("opaque"), st.sampled_from(DIRS), st.just(b"")),
    st.tuples(st.just("hardlink"), st.sampled_from(FILES), st.sampled_from([f.encode() for f in FILES])),
)
stacks = st.lists(st.lists(op, min_size=1, max_size=8), min_size=1, max_size=4)


def reopened_stack(tmp_path_factory, layers) -> tuple:
    """A stack of layers as an archive: its image as built, and mapped from its index file."""
    folder = tmp_path_factory.mktemp("stack")
    archive = folder / "img.tar"
    archive.write_bytes(docker_archive([_layer(ops) for ops in layers]))
    return reopened(folder, archive)


def _layer(ops) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, path, data in ops:
            if kind == "whiteout":
                parent, _, base = path.rpartition("/")
                path, kind, data = (f"{parent}/.wh.{base}" if parent else f".wh.{base}"), "file", b""
            elif kind == "opaque":
                path, kind, data = f"{path}/.wh..wh..opq", "file", b""
            info = tarfile.TarInfo(path)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, data.decode()
                tar.addfile(info)
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.type, info.linkname = tarfile.SYMTYPE, data.decode()
                tar.addfile(info)
    return buf.getvalue()


def _remove(p: Path) -> None:
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.is_dir():
        shutil.rmtree(p)


def reference(layers: list[list], root: Path) -> list[dict[str, tuple]]:
    """Apply the layers to a real folder the plain way: whiteouts and opaque markers of a
    layer first (they hide lower layers only), then its entries in order, the last one of a
    name winning, a non-folder replacing whatever was there; a hard link is made with
    ``link(2)`` to whatever regular file its target names then. The state after each layer."""
    states = []
    for ops in layers:
        for kind, path, _ in ops:
            if kind == "opaque" and (root / path).is_dir() and not (root / path).is_symlink():
                for child in (root / path).iterdir():
                    _remove(child)
            elif kind == "whiteout" and ((root / path).exists() or (root / path).is_symlink()):
                if all(not (root / q).is_symlink() for q in Path(path).parents if str(q) != "."):
                    _remove(root / path)
        for kind, path, data in ops:
            if kind not in ("file", "dir", "link", "hardlink"):
                continue
            target = root / path
            for parent in reversed(Path(path).parents):
                if str(parent) == ".":
                    continue
                here = root / parent
                if here.is_symlink() or (here.exists() and not here.is_dir()):
                    _remove(here)
                here.mkdir(exist_ok=True)
            if kind == "dir":
                if target.is_symlink() or (target.exists() and not target.is_dir()):
                    _remove(target)
                target.mkdir(exist_ok=True)
            else:
                source = root / data.decode() if kind == "hardlink" else target
                if target.exists() or target.is_symlink():
                    if kind == "hardlink" and _linkable(root, data) and os.path.samefile(source, target):
                        continue  # a name linked to itself again: nothing changes
                    _remove(target)  # what was there goes first, as tar extractors do
                if kind == "file":
                    target.write_bytes(data)
                elif kind == "hardlink":
                    if _linkable(root, data):
                        os.link(source, target)
                else:
                    os.symlink(data.decode(), target)
        states.append(_snapshot(root))
    return states


def _linkable(root: Path, name: bytes) -> bool:
    """Whether ``link(2)`` would find a regular file at ``name`` (links only as leaves here)."""
    source = root / name.decode()
    return source.is_file() and not source.is_symlink() and \
        all(not (root / q).is_symlink() for q in Path(name.decode()).parents if str(q) != ".")


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every path below ``root``: (kind, content or link target, the inode's other names)."""
    out: dict[str, tuple] = {}
    inodes: dict[int, set[str]] = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(top) / name
            st_ = os.lstat(p)
            rel = "/" + str(p.relative_to(root))
            if stat.S_ISLNK(st_.st_mode):
                out[rel] = ("symlink", os.readlink(p))
            elif stat.S_ISDIR(st_.st_mode):
                out[rel] = ("dir", None)
            else:
                out[rel] = ("file", p.read_bytes())
                inodes.setdefault(st_.st_ino, set()).add(rel)
    for group in inodes.values():
        for rel in group:
            out[rel] += (frozenset(group),)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(stacks)
def test_merged_view_equals_a_real_application(tmp_path_factory, layers):
    _check_against(tmp_path_factory.mktemp("prop"), layers, reference)


def _check_against(work: Path, layers: list[list], apply) -> None:
    """Load the layers as an image and compare it, after every layer, with ``apply``'s folder."""
    archive = work / "img.tar"
    archive.write_bytes(docker_archive([_layer(ops) for ops in layers]))
    root = work / "root"
    root.mkdir()
    states = apply(layers, root)
    with open_source(str(archive)) as src:
        _assert_states(src, load_image(src, src.select()), states)


def _assert_states(src, img, states: list[dict[str, tuple]]) -> None:
    """The merged view after each layer is the reference's folder after it, hard links included."""
    tree = img.tree
    for layer, want in enumerate(states):
        got: dict[str, tuple] = {}
        inodes: dict[tuple, set[str]] = {}
        kinds: dict[str, tuple[str, str | None]] = {}
        for e in tree.merged(layer):
            if e.type == "dir":
                got[e.path] = ("dir", None)
            elif e.type == "symlink":
                got[e.path] = ("symlink", e.target)
            elif tree.inode(e) is not None:  # a link to nothing is not made by link(2) either
                data_layer = tree.data_layer(e)
                data = src.container.read_layer(img.blobs[data_layer], img.scans[data_layer], e.offset, e.size)
                got[e.path] = ("file", data)
                inodes.setdefault(tree.inode(e), set()).add(e.path)
                kinds[e.path] = (e.type, e.target)
        for group in inodes.values():
            for path in group:
                got[path] += (frozenset(group),)
            # one name is the file, every other a hardlink to it: no chains, no loops
            files = [p for p in group if kinds[p][0] == "file"]
            assert len(files) == 1, (layer, sorted(group))
            assert all(kinds[p] == ("hardlink", files[0]) for p in group if p != files[0]), (layer, kinds)
        assert got == want, f"after layer {layer}"


def test_a_short_fuzzing_run_finds_nothing(tmp_path):
    from tests.fuzz import fuzz

    problems = []
    found = fuzz(seconds=60, seed=2024, out=tmp_path, on_finding=lambda p, _d: problems.append(p), rounds=300)
    assert found == 0, problems[:3]


# -- symlinked folders: the kernel itself, in a chroot, is the reference --------------------

THROUGH = ["s/f8", "s/sub/f9", "f1", "a/f3", "a/c/f5", "b/d/f6"]  # "s" is a link to a folder (or nowhere)
FOLDER_LINK_TARGETS = [b"a", b"/b/d", b"a/c/../..", b"nowhere", b"../../a/c"]

linked_op = st.one_of(
    st.tuples(st.just("file"), st.sampled_from(THROUGH), st.binary(max_size=8)),
    st.tuples(st.just("dir"), st.sampled_from(DIRS + ["s/sub"]), st.just(b"")),
    st.tuples(st.just("link"), st.just("s"), st.sampled_from(FOLDER_LINK_TARGETS)),
    st.tuples(st.just("whiteout"), st.sampled_from(DIRS + THROUGH + ["s"]), st.just(b"")),
    st.tuples(st.just("opaque"), st.sampled_from(DIRS + ["s"]), st.just(b"")),
    st.tuples(st.just("hardlink"), st.sampled_from(THROUGH), st.sampled_from([p.encode() for p in THROUGH])),
)
linked_stacks = st.lists(st.lists(linked_op, min_size=1, max_size=8), min_size=1, max_size=4)


def _in_chroot(root: Path, layers: list[list]) -> list[dict[str, tuple]]:
    """Apply the layers in a child process chrooted to ``root``, so the kernel resolves every
    path inside the image (absolute link targets start at the image's root, ``..`` stops
    there), as containerd places entries; snapshot the folder after each layer."""
    states = []
    for ops in layers:
        pid = os.fork()
        if pid == 0:  # the child: chroot, apply one layer, exit without unwinding into pytest
            code = 1
            try:
                os.chroot(root)
                os.chdir("/")
                _apply_in_root(ops)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the reference failed to apply a layer"
        states.append(_snapshot(root))
    return states


def _folder(path: str) -> str:
    """The real folder of ``path``'s parent, made if missing (a file in the way becomes a folder)."""
    parent = os.path.realpath(os.path.dirname("/" + path))
    built = "/"
    for comp in [c for c in parent.split("/") if c]:
        built = os.path.join(built, comp)
        if os.path.lexists(built) and not os.path.isdir(built):
            os.unlink(built)
        if not os.path.lexists(built):
            os.mkdir(built)
    return parent


def _gone(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _apply_in_root(ops) -> None:
    """One layer, in the chroot: opaque markers, then whiteouts (both hide lower layers only,
    wherever they stand in the tar), then entries in order."""
    for kind, path, _ in ops:
        if kind == "opaque":
            real = os.path.realpath("/" + path)
            if os.path.isdir(real):
                for child in os.listdir(real):
                    _gone(os.path.join(real, child))
    for kind, path, _ in ops:
        if kind == "whiteout":
            real = os.path.join(os.path.realpath(os.path.dirname("/" + path)), os.path.basename(path))
            _gone(real)
    for kind, path, data in ops:
        if kind not in ("file", "dir", "link", "hardlink"):
            continue
        where = os.path.join(_folder(path), os.path.basename(path))
        if kind == "dir":
            if os.path.lexists(where) and (os.path.islink(where) or not os.path.isdir(where)):
                os.unlink(where)
            os.makedirs(where, exist_ok=True)
            continue
        if kind == "hardlink":
            source = os.path.join(os.path.realpath(os.path.dirname("/" + data.decode())), os.path.basename(data.decode()))
            if os.path.lexists(where) and os.path.lexists(source) and os.path.samefile(source, where):
                continue
        _gone(where)
        if kind == "file":
            with open(where, "wb") as out:
                out.write(data)
        elif kind == "link":
            os.symlink(data.decode(), where)
        elif os.path.isfile(source) and not os.path.islink(source):
            os.link(source, where)


@pytest.mark.skipif(not hasattr(os, "chroot") or os.geteuid() != 0, reason="the reference needs chroot (root)")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(linked_stacks)
def test_entries_through_symlinked_folders_land_where_the_kernel_puts_them(tmp_path_factory, layers):
    _check_against(tmp_path_factory.mktemp("chroot"), layers, lambda stack, root: _in_chroot(root, stack))
