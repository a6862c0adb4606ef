"""File contents: reading, previews, comparing versions, and safe extraction."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import zlib
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.image.content import (BINARY, PICTURE, TEXT, kind_of, load_version, read_entry,
                                    side_by_side, unified_diff)
from explorer.image.extract import ExtractOptions, extract, select_entries
from explorer.image.loader import load_image
from explorer.formats.source import open_source
from tests.builders import d, docker_archive, f, layer_tar, oci_archive, sym
from tests.expected import parse

DATA = Path(__file__).parent / "data"


def _open(path, **kw):
    src = open_source(str(path))
    return src, load_image(src, src.select(**kw))


def _png(width: int = 3, height: int = 2) -> bytes:
    """A tiny valid PNG, written by hand."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = b"".join(b"\0" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("archive", ["docker-legacy.tar", "buildah-overlay.oci.tar", "buildah-overlay.oci-zstd.tar"])
def test_read_files_from_plain_gzip_and_zstd_layers(archive):
    src, img = _open(DATA / archive)
    with src:
        entry = img.tree.entry_at("/data/modify-me.txt")
        assert read_entry(src, img, entry) == b"original\nmodified in layer 3\n"
        busybox = img.tree.entry_at("/bin/busybox")
        head = read_entry(src, img, busybox, limit=4096)
        assert head[:4] == b"\x7fELF"
        assert kind_of(busybox, head) == BINARY
        # a hardlink reads as its target
        assert read_entry(src, img, img.tree.entry_at("/opt/hard-c")) == b"hardlinked-content\n"


def test_kinds_of_preview(tmp_path):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'
    layer = layer_tar([f("img/dot.png", _png()), f("img/logo.svg", svg), f("etc/motd", "hello\n"),
                       f("bin/blob", b"\x00\x01\x02binary"), sym("link", "etc/motd")])
    path = tmp_path / "kinds.tar"
    path.write_bytes(docker_archive([layer]))
    src, img = _open(path)
    with src:
        def kind(p):
            e = img.tree.entry_at(p)
            return kind_of(e, read_entry(src, img, e, limit=4096) if e.type == "file" else b"")
        assert kind("/img/dot.png") == PICTURE
        assert kind("/img/logo.svg") == PICTURE
        assert kind("/etc/motd") == TEXT
        assert kind("/bin/blob") == BINARY
        assert kind("/link") == "link"


def test_compare_the_two_versions_of_a_modified_file():
    src, img = _open(DATA / "docker-legacy.tar")
    with src:
        old, new = [load_version(src, img, v.entry) for v in img.tree.history("/data/modify-me.txt")]
        assert (old.layer, new.layer) == (1, 2)
        lines = list(unified_diff(old, new))
        assert "+modified in layer 3" in lines and " original" in lines
        assert ("+", "", "modified in layer 3") in side_by_side(old, new)
        assert old.digest != new.digest


def test_gzip_layer_is_read_from_the_nearest_checkpoint(tmp_path):
    blobs = [(f"d/f{i:03d}", os.urandom(100_000)) for i in range(120)]  # ~12 MB: several checkpoints
    path = tmp_path / "big.tar"
    path.write_bytes(oci_archive([layer_tar([d("d")] + [f(n, b) for n, b in blobs])]))
    src, img = _open(path)
    with src:
        assert len(img.scans[0].checkpoints) >= 2
        for name, body in (blobs[0], blobs[60], blobs[-1]):
            entry = img.tree.entry_at("/" + name)
            assert read_entry(src, img, entry) == body
            assert read_entry(src, img, entry, offset=99_000, limit=500) == body[99_000:99_500]


def _listing(root: Path) -> dict[str, tuple]:
    """type, mode, uid, gid, size, sha256[:16], target of every path below root."""
    out = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(top) / name
            st = os.lstat(p)
            rel = "/" + str(p.relative_to(root))
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "symlink" if stat.S_ISLNK(st.st_mode) else \
                "fifo" if stat.S_ISFIFO(st.st_mode) else "file"
            sha = hashlib.sha256(p.read_bytes()).hexdigest()[:16] if kind == "file" else None
            out[rel] = (kind, f"{stat.S_IMODE(st.st_mode):04o}", st.st_uid, st.st_gid,
                        st.st_size if kind == "file" else None, sha, os.readlink(p) if kind == "symlink" else None,
                        st.st_nlink if kind == "file" else None)
    return out


@pytest.mark.parametrize("archive,expected", [
    ("docker-legacy.tar", "docker-legacy.expected.txt"),
    ("buildah-overlay.oci.tar", "buildah-overlay.oci.expected.txt"),
])
def test_extracted_filesystem_equals_what_the_tools_unpack(tmp_path, archive, expected):
    src, img = _open(DATA / archive)
    as_root = os.geteuid() == 0
    with src:
        result = extract(src, img, select_entries(img), str(tmp_path / "out"),
                         options=ExtractOptions(special_bits=True, owners=as_root))
    got = _listing(tmp_path / "out")
    want = parse(DATA / expected)["images"][0].merged
    assert sorted(got) == sorted(e.path for e in want)
    for e in want:
        kind, mode, uid, gid, size, sha, target, nlink = got[e.path]
        assert kind == e.type, e.path
        if kind != "symlink":
            assert mode == e.mode, e.path
        if as_root:
            assert (uid, gid) == (e.uid, e.gid), e.path
        if kind == "file":
            assert (size, sha, nlink) == (e.size, e.sha16, e.nlink), e.path
        if kind == "symlink":
            assert target == e.target, e.path
    assert result.skipped == []


def test_extract_a_folder_at_a_layer_and_only_what_a_layer_stored(tmp_path):
    src, img = _open(DATA / "docker-legacy.tar")
    with src:
        extract(src, img, select_entries(img, "/data", layer=1), str(tmp_path / "a"), base="/data")
        assert (tmp_path / "a/data/delete-me.txt").read_text() == "delete me\n"
        extract(src, img, select_entries(img, "/", layer=2, only_layer=True), str(tmp_path / "b"))
    stored = {str(p.relative_to(tmp_path / "b")) for p in (tmp_path / "b").rglob("*")}
    assert "data/modify-me.txt" in stored and "opt/replaceme/new.txt" in stored
    assert "bin" not in stored and "data/copied.txt" not in stored


def test_setuid_bits_and_devices_only_when_asked(tmp_path):
    layer = layer_tar([f("bin/su", "x", mode=0o4755)])
    path = tmp_path / "suid.tar"
    path.write_bytes(docker_archive([layer]))
    src, img = _open(path)
    with src:
        result = extract(src, img, select_entries(img), str(tmp_path / "plain"))
        assert stat.S_IMODE(os.stat(tmp_path / "plain/bin/su").st_mode) == 0o755
        assert result.changed == [("/bin/su", "written without its setuid/setgid bit")] and not result.skipped
        again = extract(src, img, select_entries(img), str(tmp_path / "plain"))  # already there: left out, once
        assert not again.changed and [p for p, _ in again.skipped] == ["/bin/su"]
        extract(src, img, select_entries(img), str(tmp_path / "kept"), options=ExtractOptions(special_bits=True))
        assert stat.S_IMODE(os.stat(tmp_path / "kept/bin/su").st_mode) == 0o4755


def _outside_is_untouched(sentinel: Path) -> None:
    assert list(sentinel.iterdir()) == []


@pytest.mark.parametrize("layers", [
    [[f("../escape", "x"), f("ok", "1")]],  # a '..' name
    [[f("/abs/file", "x")]],  # an absolute name stays inside
    [[sym("evil", "/"), d("etc")], [f("evil/pwned", "x")]],  # through a symlink to the root
    [[sym("up", "../../../../.."), ], [f("up/pwned", "x")]],  # through a symlink climbing out
    [[sym("x", "/tmp"), f("x", "now a file")]],  # a symlink replaced by a file in one layer
])
def test_no_trick_writes_outside_the_target(tmp_path, layers):
    sentinel = tmp_path / "outside"
    sentinel.mkdir()
    path = tmp_path / "trick.tar"
    path.write_bytes(docker_archive([layer_tar(l) for l in layers]))
    src, img = _open(path)
    target = tmp_path / "target"
    with src:
        extract(src, img, select_entries(img), str(target))
        for k in range(len(layers)):
            extract(src, img, select_entries(img, "/", layer=k, only_layer=True), str(tmp_path / f"only{k}"))
    _outside_is_untouched(sentinel)
    for p in target.rglob("*"):
        resolved = Path(os.path.realpath(p)) if not p.is_symlink() else p
        assert str(resolved).startswith(str(target)), p


def test_a_symlink_already_in_the_target_is_not_followed(tmp_path):
    sentinel = tmp_path / "outside"
    sentinel.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "etc").symlink_to(sentinel)  # planted before the extraction
    path = tmp_path / "img.tar"
    path.write_bytes(docker_archive([layer_tar([d("etc"), f("etc/passwd", "root:x:0:0")])]))
    src, img = _open(path)
    with src:
        result = extract(src, img, select_entries(img), str(target))
    _outside_is_untouched(sentinel)
    assert any(p == "/etc/passwd" for p, _ in result.skipped)


def test_existing_files_are_never_overwritten(tmp_path):
    target = tmp_path / "t"
    (target / "etc").mkdir(parents=True)
    (target / "etc/hostname").write_text("mine")
    src, img = _open(DATA / "docker-legacy.tar")
    with src:
        result = extract(src, img, select_entries(img, "/etc"), str(target), base="/etc")
    assert (target / "etc/hostname").read_text() == "mine"
    assert ("/etc/hostname", "already exists in the target folder; not overwritten") in result.skipped


def test_extracting_again_writes_nothing_and_says_so(tmp_path, capsys):
    """A second extraction into the same folder: every file is there already (skipped), every
    folder too (left as the user may have changed it), and the summary counts none as written."""
    target = tmp_path / "t"
    assert main(["extract", str(DATA / "docker-legacy.tar"), "-o", str(target)]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    written = int(first.split()[1].replace(",", ""))
    folders = sum(1 for p in target.rglob("*") if p.is_dir() and not p.is_symlink())
    (target / "etc").chmod(0o700)  # the user's change, kept
    assert main(["extract", str(DATA / "docker-legacy.tar"), "-o", str(target)]) == 0
    again = capsys.readouterr().err.splitlines()[0]
    assert again == f"extracted 0 entries (0 bytes) into {target}; {folders} folders already there; " \
                    f"{written - folders} skipped"
    assert (target / "etc").stat().st_mode & 0o777 == 0o700
    assert main(["extract", str(DATA / "docker-legacy.tar"), "/etc/hostname", "-o", str(tmp_path / "one")]) == 0
    assert capsys.readouterr().err.startswith("extracted 1 entry (")


def test_a_folder_this_extraction_made_for_what_came_first_still_gets_its_mode(tmp_path):
    """A folder's entry after a file in it (entries as a case-insensitive disk would merge them):
    the folder was made on the file's way, by this extraction, so its own entry gives its mode."""
    path = tmp_path / "img.tar"
    path.write_bytes(docker_archive([layer_tar([d("app", mode=0o750), f("app/run", "x")])]))
    src, img = _open(path)
    with src:
        entries = sorted(select_entries(img), key=lambda e: e.type == "dir")  # the file first
        result = extract(src, img, entries, str(tmp_path / "out"))
    assert (tmp_path / "out/app").stat().st_mode & 0o777 == 0o750
    assert result.existing == 0 and result.written == 2


def test_cat_and_extract_commands(tmp_path, capsysbinary):
    assert main(["cat", str(DATA / "buildah-overlay.oci-zstd.tar"), "/data/modify-me.txt", "--layer", "1"]) == 0
    assert capsysbinary.readouterr().out == b"original\n"
    assert main(["cat", str(DATA / "docker-legacy.tar"), "/data/delete-me.txt"]) == 1
    assert b"no such file" in capsysbinary.readouterr().err
    assert main(["extract", str(DATA / "docker-legacy.tar"), "/etc", "-o", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x/etc/passwd").read_bytes().startswith(b"root:")
    assert main(["extract", str(DATA / "docker-legacy.tar"), "--layer", "3", "--raw", "-o", str(tmp_path / "raw")]) == 0
    raw = (tmp_path / "raw/layer-3.tar").read_bytes()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == _diff_id(3)  # the layer, byte for byte


def _diff_id(k: int) -> str:
    return parse(DATA / "docker-legacy.expected.txt")["images"][0].diff_ids[k]
