"""Archives written by real tools: the core must show what the tools themselves unpack."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import shutil
from pathlib import Path

import pytest
import zstandard

from explorer.image.loader import load_image
from explorer.formats.source import open_source
from explorer.report import build_report
from tests.expected import ExpectedImage, parse

DATA = Path(__file__).parent / "data"

LEGACY = ("docker-legacy.expected.txt", 0)
BUILDAH = ("buildah-overlay.oci.expected.txt", 0)

# archive, --image, --platform, expected file and image block, format, outer compression, whether
# the archive is the one the expected file describes (so blob sizes and compression match too)
CASES = [
    ("docker-legacy.tar", None, None, LEGACY, "docker-archive", "none", True),
    ("buildah-overlay.oci.tar", None, None, BUILDAH, "oci-archive", "none", True),
    ("buildah-overlay.oci-zstd.tar", None, None, ("buildah-overlay.oci-zstd.expected.txt", 0), "oci-archive", "none", True),
    ("multiplatform.oci.tar", None, "linux/amd64", ("multiplatform.oci.expected.txt", 0), "oci-archive", "none", True),
    ("multiplatform.oci.tar", None, "linux/arm64", ("multiplatform.oci.expected.txt", 1), "oci-archive", "none", True),
    ("umoci.oci-layout", None, None, ("umoci.oci-layout.expected.txt", 0), "oci-layout", "none", True),
    ("docker25-classic.tar", None, None, LEGACY, "docker-oci", "none", False),
    ("docker25-containerd.tar", None, None, LEGACY, "docker-oci", "none", False),
    ("skopeo.docker.tar", None, None, LEGACY, "docker-archive", "none", False),
    ("docker-multi.tar.gz", "fixture-layers:docker-legacy", None, LEGACY, "docker-oci", "gzip", False),
    ("docker-multi.tar.gz", "1", None, BUILDAH, "docker-oci", "gzip", False),
    ("podman-multi.docker.tar.zst", "fixture-layers:buildah", None, BUILDAH, "docker-archive", "zstd", False),
    ("podman-multi.docker.tar.zst", "0", None, LEGACY, "docker-archive", "zstd", False),
]


def _expected(name: str, index: int) -> ExpectedImage:
    return parse(DATA / name)["images"][index]


def _load(archive: Path, image: str | None = None, platform: str | None = None):
    with open_source(str(archive)) as source:
        ref = source.select(image, platform)
        img = load_image(source, ref)
        report = build_report(img, source.images, str(archive))
        digests = _content_digests(source, img)
    return report, img, digests


def _content_digests(source, img) -> dict[str, str]:
    """sha256 of every regular file of the merged view, read through the core."""
    out = {}
    for entry in img.tree.merged():
        if entry.type not in ("file", "hardlink") or entry.offset < 0:
            continue
        if entry.digest:
            out[entry.path] = entry.digest
            continue
        data_layer = img.tree.data_layer(entry)
        data = source.container.read_layer(img.blobs[data_layer], img.scans[data_layer], entry.offset, entry.size)
        out[entry.path] = hashlib.sha256(data).hexdigest()
    return out


def _check(report: dict, digests: dict[str, str], exp: ExpectedImage, original: bool) -> None:
    img = report["image"]
    layers = img["layers"]
    assert [l["diff_id"] for l in layers] == exp.diff_ids
    assert [l["entries"] for l in layers] == exp.tar_entries
    if original:
        assert [l["blob_size"] for l in layers] == exp.blob_bytes
        assert [l["compression"] for l in layers] == exp.compressions
    # history: each step, empty or not, tied to the layer it made
    assert [(h["empty_layer"], h["layer"], h["created_by"]) for h in img["history"]] == [
        (h["empty_layer"], h["layer"], h["created_by"]) for h in exp.history
    ]
    for h in img["history"]:
        if h["layer"] is not None:
            assert layers[h["layer"]]["history"] == h["index"]
    # per-layer net changes
    assert len(img["changes"]) == len(exp.changes)
    for k, (got, want) in enumerate(zip(img["changes"], exp.changes)):
        assert {c["path"]: c["change"] for c in got} == want, f"layer {k}"
        assert (layers[k]["added"], layers[k]["modified"], layers[k]["removed"]) == (
            sum(1 for c in want.values() if c == "added"),
            sum(1 for c in want.values() if c == "modified"),
            sum(1 for c in want.values() if c == "removed"),
        )
    # the merged filesystem, entry by entry
    files = {f["path"]: f for f in img["files"]}
    assert [f["path"] for f in img["files"]] == sorted(files, key=lambda p: p.encode("utf-8", "surrogateescape"))
    assert sorted(files) == sorted(e.path for e in exp.merged)
    for e in exp.merged:
        f = files[e.path]
        assert (f["type"] if f["type"] != "hardlink" else "file") == e.type, e.path
        assert (f["mode"], f["uid"], f["gid"]) == (e.mode, e.uid, e.gid), e.path
        if e.type == "file":
            assert f["size"] == e.size, e.path
            assert digests[e.path][:16] == e.sha16, e.path
        if e.type == "symlink":
            assert f["target"] == e.target, e.path
    for group in exp.hardlink_groups:
        links = [files[p] for p in group if files[p]["type"] == "hardlink"]
        assert len(links) == len(group) - 1
        assert all(l["target"] in group for l in links)


@pytest.mark.parametrize("archive,image,platform,expected,fmt,outer,original", CASES, ids=lambda v: str(v) if isinstance(v, str) else None)
def test_real_archive_matches_tools(archive, image, platform, expected, fmt, outer, original):
    report, _img, digests = _load(DATA / archive, image, platform)
    assert report["source"]["format"] == fmt
    assert report["source"]["compression"] == outer
    _check(report, digests, _expected(*expected), original)


def test_multi_image_archive_lists_every_image():
    report, _, _ = _load(DATA / "docker-multi.tar.gz")
    tags = [i["tags"] for i in report["images"]]
    assert tags == [["fixture-layers:docker-legacy"], ["fixture-layers:buildah"]]
    assert [i["selected"] for i in report["images"]] == [True, False]


def test_multiplatform_offers_both_platforms_and_picks_this_machine():
    report, _, _ = _load(DATA / "multiplatform.oci.tar")
    assert sorted(i["platform"] for i in report["images"]) == ["linux/amd64", "linux/arm64"]
    from explorer.formats.source import host

    chosen = [i for i in report["images"] if i["selected"]][0]
    if host() in ("linux/amd64", "linux/arm64"):
        assert chosen["platform"] == host()


@pytest.mark.parametrize("kind", ["gzip", "zstd", "xz", "bzip2"])
def test_whole_archive_compressed(tmp_path, kind):
    raw = (DATA / "docker-legacy.tar").read_bytes()
    packed = {
        "gzip": lambda b: gzip.compress(b, 6),
        "zstd": lambda b: zstandard.ZstdCompressor(level=3).compress(b),
        "xz": lambda b: lzma.compress(b),
        "bzip2": lambda b: bz2.compress(b),
    }[kind](raw)
    target = tmp_path / "image.bin"  # no telling extension: detection is by content
    target.write_bytes(packed)
    report, _, digests = _load(target)
    assert report["source"]["compression"] == kind
    _check(report, digests, _expected(*LEGACY), original=True)


@pytest.mark.parametrize(
    "archive,compression",
    [
        ("test-oci-gzip-image.tar", "gzip"),
        ("test-oci-zstd-image.tar", "zstd"),
        ("test-oci-estargz-image.tar", "gzip"),
        ("test-oci-uncompressed-image.tar", "none"),
    ],
)
def test_dive_oci_layer_compressions(archive, compression):
    report, _, _ = _load(DATA / archive)
    img = report["image"]
    assert report["source"]["format"] == "oci-archive"
    assert img["platform"] == "linux/arm64"
    assert [l["compression"] for l in img["layers"]] == [compression]
    # what GNU tar lists in each layer blob
    assert [(f["path"], f["size"]) for f in img["files"]] == [("/README.md", 11189)]
    # the stored digest is the manifest's, and equals the diff_id only when stored plain
    layer = img["layers"][0]
    assert (layer["digest"] == layer["diff_id"]) == (compression == "none")


def test_kaniko_gzip_layers_and_prefixed_config_name():
    report, _, _ = _load(DATA / "test-kaniko-image.tar")
    img = report["image"]
    assert report["source"]["format"] == "docker-archive"
    assert {l["compression"] for l in img["layers"]} == {"gzip"}
    assert img["tags"] == ["dive-test:kaniko-latest"]
    assert len(img["layers"]) == 14
    assert all(l["digest"] != l["diff_id"] for l in img["layers"])


def test_folder_copy_of_layout_reads_the_same(tmp_path):
    folder = tmp_path / "layout"
    shutil.copytree(DATA / "umoci.oci-layout", folder)
    report, _, digests = _load(folder)
    _check(report, digests, _expected("umoci.oci-layout.expected.txt", 0), original=True)


@pytest.mark.parametrize("archive", ["docker-legacy.tar", "umoci.oci-layout", "multiplatform.oci.tar"])
def test_streamed_json_equals_the_report_object(archive):
    import io
    import json

    from explorer.report import write_json

    with open_source(str(DATA / archive)) as source:
        img = load_image(source, source.select())
        out = io.StringIO()
        write_json(img, source.images, archive, out)
        assert json.loads(out.getvalue()) == build_report(img, source.images, archive)


def _report_to(out, archive: str) -> int:
    """``layer-explorer report --json`` with its output going to the file object ``out``."""
    import sys

    from explorer.cli import main

    saved, sys.stdout = sys.stdout, out
    try:
        return main(["report", "--json", "--no-cache", archive])
    finally:
        sys.stdout = saved


@pytest.mark.parametrize("archive", ["docker-legacy.tar", "multiplatform.oci.tar", "docker25-containerd.tar"])
def test_files_formatted_on_the_other_core_give_the_same_report(archive, tmp_path, monkeypatch):
    import json

    from explorer.report import ContentsInChild

    monkeypatch.setattr("explorer.image.parallel.spare_core", lambda: True)
    written = []
    original = ContentsInChild.write
    monkeypatch.setattr(ContentsInChild, "write", lambda self, out: written.append(original(self, out)) or written[-1])
    texts = {}
    for name, least in (("here", 10**9), ("child", 0)):
        monkeypatch.setattr(ContentsInChild, "MIN_PATHS", least)
        with open(tmp_path / name, "w", encoding="utf-8") as out:
            assert _report_to(out, str(DATA / archive)) == 0
        texts[name] = (tmp_path / name).read_text(encoding="utf-8")
    assert written == [True]  # only the second run used a child, and it wrote its part
    assert texts["child"] == texts["here"]
    with open_source(str(DATA / archive)) as source:
        img = load_image(source, source.select())
        assert json.loads(texts["child"]) == build_report(img, source.images, str(DATA / archive))


def test_a_report_whose_reader_left_leaves_no_child_behind(monkeypatch):
    import os

    from explorer.report import ContentsInChild

    monkeypatch.setattr("explorer.image.parallel.spare_core", lambda: True)
    monkeypatch.setattr(ContentsInChild, "MIN_PATHS", 0)
    children = []
    original = ContentsInChild.__init__

    def record(self, tree, out):
        original(self, tree, out)
        children.append(self.pid)

    monkeypatch.setattr(ContentsInChild, "__init__", record)
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `report | head` after head has gone
    with os.fdopen(write_end, "w") as out:
        assert _report_to(out, str(DATA / "docker-legacy.tar")) == 1
    assert len(children) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(children[0], os.WNOHANG)  # already reaped, not left running or as a zombie


def _child_reports(tmp_path, monkeypatch, child) -> tuple[int, str, str]:
    """``report --json`` into a file with the file list's child process replaced by ``child``:
    exit status, output, and what the command said on stderr."""
    import sys

    import explorer.report as report

    monkeypatch.setattr("explorer.image.parallel.spare_core", lambda: True)
    monkeypatch.setattr(report.ContentsInChild, "MIN_PATHS", 0)
    monkeypatch.setattr(report, "_child_write", child)
    err = tmp_path / "err"
    saved = sys.stderr
    with open(tmp_path / "out", "w", encoding="utf-8") as out, open(err, "w", encoding="utf-8") as sys.stderr:
        try:
            code = _report_to(out, str(DATA / "docker-legacy.tar"))
        finally:
            sys.stderr = saved
    return code, (tmp_path / "out").read_text(encoding="utf-8"), err.read_text(encoding="utf-8")


def test_a_child_that_could_not_format_the_file_list_leaves_it_to_the_parent(tmp_path, monkeypatch):
    import json

    from explorer.report import _NOT_WRITTEN

    code, text, _ = _child_reports(tmp_path, monkeypatch, lambda tree, fd, go: _NOT_WRITTEN)
    assert code == 0
    with open_source(str(DATA / "docker-legacy.tar")) as source:
        img = load_image(source, source.select())
        assert json.loads(text) == build_report(img, source.images, str(DATA / "docker-legacy.tar"))


def test_a_child_killed_while_writing_fails_the_report_instead_of_writing_it_twice(tmp_path, monkeypatch):
    import os
    import signal

    def killed(tree, fd, go):
        os.read(go, 1)
        os.write(fd, b'"half of it')
        os.kill(os.getpid(), signal.SIGKILL)

    code, text, err = _child_reports(tmp_path, monkeypatch, killed)
    assert code == 1 and "incomplete" in err and "run the command again" in err
    assert text.endswith('"half of it')  # nothing formatted again after it, nor finished as if whole


def test_the_child_says_when_its_reader_has_gone():
    import errno
    import os

    from explorer.report import _ERRNO_BASE, _child_write
    from explorer.tree.index import LayerTree

    read_end, write_end = os.pipe()
    os.close(read_end)
    go_read, go_write = os.pipe()
    os.write(go_write, b"1")
    try:
        assert _child_write(LayerTree(0), write_end, go_read) == _ERRNO_BASE + errno.EPIPE
    finally:
        for fd in (write_end, go_read, go_write):
            os.close(fd)


def test_the_file_list_child_that_cannot_keep_its_text_leaves_the_list_to_the_command(tmp_path, monkeypatch):
    import json
    import tempfile

    from explorer.report import ContentsInChild

    monkeypatch.setattr("explorer.image.parallel.spare_core", lambda: True)
    monkeypatch.setattr(ContentsInChild, "MIN_PATHS", 0)

    def no_file(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "TemporaryFile", no_file)  # (in the child, which is forked)
    written = []
    original = ContentsInChild.write
    monkeypatch.setattr(ContentsInChild, "write", lambda self, out: written.append(original(self, out)) or written[-1])
    archive = str(DATA / "docker-legacy.tar")
    with open(tmp_path / "out", "w", encoding="utf-8") as out:
        assert _report_to(out, archive) == 0
    assert written == [False]  # the command formatted the list itself
    with open_source(archive) as source:
        img = load_image(source, source.select())
        assert json.loads((tmp_path / "out").read_text(encoding="utf-8")) == build_report(img, source.images, archive)


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_the_child_writes_the_whole_list_where_sendfile_cannot(platform, tmp_path, monkeypatch):
    import errno
    import os
    import sys

    from explorer.report import _child_write, contents_json

    def refused(*_args, **_kwargs):  # Linux's answer for an output it cannot copy to; elsewhere
        raise OSError(errno.EINVAL if platform == "linux" else errno.ENOTSOCK, "not here")  # (only sockets)

    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(os, "sendfile", refused)
    with open_source(str(DATA / "docker-legacy.tar")) as source:
        tree = load_image(source, source.select()).tree
    go_read, go_write = os.pipe()
    os.write(go_write, b"1")
    with open(tmp_path / "out", "wb") as out:
        try:
            assert _child_write(tree, out.fileno(), go_read) == 0
        finally:
            os.close(go_read)
            os.close(go_write)
    assert (tmp_path / "out").read_text(encoding="ascii") == "".join(contents_json(tree))
