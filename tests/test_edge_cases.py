"""Odd but valid archives (and a few broken ones) that real tools or careless hands produce."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from explorer.cli import main
from explorer.image.loader import load_image
from explorer.formats.source import open_source
from explorer.report import build_report
from tests.builders import d, docker_archive, f, hard, layer_tar, members_of, oci_archive, sym, tar_of, wh


def _report(path, image=None):
    with open_source(str(path)) as src:
        img = load_image(src, src.select(image))
        return build_report(img, src.images, str(path)), img


def _files(rep):
    return {x["path"]: x for x in rep["image"]["files"]}


def _changes(rep, k):
    return {c["path"]: c["change"] for c in rep["image"]["changes"][k]}


def _write(tmp_path, name, data, gz=False):
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_a_blob_used_twice_reads_the_same_both_times(tmp_path, gz):
    a = layer_tar([f("x", "1")])
    path = _write(tmp_path, "twice.tar", docker_archive([a, layer_tar([wh("x")]), a]), gz)
    rep, _ = _report(path)
    assert [l["entries"] for l in rep["image"]["layers"]] == [1, 1, 1]
    assert "/x" in _files(rep)


@pytest.mark.parametrize("gz", [False, True])
def test_images_of_one_source_load_again_and_again(tmp_path, gz):
    base = layer_tar([d("bin"), f("bin/sh", "sh")])
    data = docker_archive([([base, layer_tar([f("a", "a")])], ["x/a:1"]), ([base, layer_tar([f("b", "b")])], ["x/b:1"])])
    path = _write(tmp_path, "multi.tar", data, gz)
    with open_source(str(path)) as src:
        seen = []
        for ref in ("x/a:1", "x/b:1", "x/a:1"):
            img = load_image(src, src.select(ref))
            seen.append(sorted(e.path for e in img.tree.merged()))
    assert seen == [["/a", "/bin", "/bin/sh"], ["/b", "/bin", "/bin/sh"], ["/a", "/bin", "/bin/sh"]]


def test_hardlink_then_file_at_one_path_last_wins(tmp_path):
    pad = "p" * 5000
    layers = [[f("a", "0123456789"), f("b", "0123456789"), f("pad", pad)],
              [f("big", "z" * 20000), hard("b", "a"), f("b", "0123456789")]]
    path = _write(tmp_path, "h.tar", docker_archive([layer_tar(l) for l in layers]))
    rep, _ = _report(path)
    assert "/b" not in _changes(rep, 1)  # rewritten as it was: not a change
    assert _files(rep)["/b"]["type"] == "file"


def test_entries_below_a_symlinked_directory_land_where_it_points(tmp_path):
    layers = [[d("usr"), d("usr/lib"), f("usr/lib/a.so", "A"), f("usr/lib/b.so", "B"), sym("lib", "usr/lib")],
              [f("lib/c.so", "C"), wh("lib/a.so")]]
    rep, _ = _report(_write(tmp_path, "merged-usr.tar", docker_archive([layer_tar(l) for l in layers])))
    files = _files(rep)
    assert files["/lib"]["type"] == "symlink"
    assert "/usr/lib/c.so" in files and "/usr/lib/a.so" not in files and "/usr/lib/b.so" in files
    assert _changes(rep, 1) == {"/usr/lib/c.so": "added", "/usr/lib/a.so": "removed"}
    assert any("symlinked directory" in w for w in rep["image"]["warnings"])


def test_a_link_loop_does_not_hang(tmp_path):
    layers = [[sym("a", "b"), sym("b", "a")], [f("a/x", "1")]]
    rep, _ = _report(_write(tmp_path, "loop.tar", docker_archive([layer_tar(l) for l in layers])))
    assert "/a/x" in _files(rep)


def test_path_added_and_removed_in_one_layer_is_listed_once(tmp_path):
    layers = [[d("dd"), f("dd/x", "1"), f("dd", "now a file")],  # dd/x comes and goes in layer 0
              [f("dd/x", "2")]]  # dd is a directory again, with x
    rep, img = _report(_write(tmp_path, "k.tar", docker_archive([layer_tar(l) for l in layers])))
    assert img.tree.children("/dd") == ["x"]
    assert img.tree.children("/dd", 0) == []


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar is needed to write sparse files")
@pytest.mark.parametrize("fmt", [["--format=gnu"], ["--format=pax", "--sparse-version=1.0"]])
def test_gnu_sparse_files(tmp_path, fmt):
    root = tmp_path / "root"
    root.mkdir()
    with open(root / "holes", "wb") as fh:
        fh.seek(9 << 20)
        fh.write(b"end")
    (root / "after").write_text("after\n")
    os.link(root / "holes", root / "link")  # tar stores the second name as a hardlink to the first
    layer = tmp_path / "layer.tar"
    subprocess.run(["tar", "--sparse", *fmt, "-cf", str(layer), "-C", str(root), "holes", "link", "after"], check=True)
    rep, _ = _report(_write(tmp_path, "sparse.tar", docker_archive([layer.read_bytes()])))
    files = _files(rep)
    assert set(files) == {"/holes", "/link", "/after"}
    assert files["/holes"]["size"] == files["/link"]["size"] == (9 << 20) + 3 and files["/after"]["size"] == 6
    assert (files["/link"]["type"], files["/link"]["target"]) == ("hardlink", "/holes")


def test_corrupt_header_later_in_a_layer_is_caught(tmp_path, capsys):
    layer = bytearray(layer_tar([f("etc/passwd", "root"), f("etc/shadow", "secret")]))
    at = layer.index(b"etc/shadow")
    layer[at + 9] = ord("W")  # one flipped byte in the second header's name
    path = _write(tmp_path, "flip.tar", docker_archive([bytes(layer)]))
    assert main(["report", str(path)]) == 2
    assert "bad checksum" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["inf", "nan", "1e400", "-1e20", "1700000000.25"])
def test_odd_pax_mtimes(tmp_path, value):
    rep, _ = _report(_write(tmp_path, "t.tar", docker_archive([layer_tar([f("a", "1", pax={"mtime": value})])])))
    mtime = _files(rep)["/a"]["mtime"]
    assert mtime.endswith("Z")
    if value == "1700000000.25":
        assert mtime == "2023-11-14T22:13:20.25Z"


def test_non_image_descriptors_in_an_index_are_skipped(tmp_path):
    blobs = members_of(oci_archive([layer_tar([f("a", "1")])]))
    index = json.loads(blobs["index.json"])
    index["manifests"].append({"mediaType": "application/octet-stream", "digest": "sha256:" + "0" * 64, "size": 3})
    blobs["index.json"] = json.dumps(index).encode()
    with open_source(str(_write(tmp_path, "extra.tar", tar_of(blobs)))) as src:
        assert len(src.images) == 1
        assert any("not an image" in n for n in src.notes)


def test_image_by_digest_prefix_made_of_digits(tmp_path, capsys):
    images = [([layer_tar([f(f"f{i}", str(i))])], [f"r/i{i}:1"]) for i in range(2)]
    path = _write(tmp_path, "m.tar", docker_archive(images))
    with open_source(str(path)) as src:
        digests = [i.config_digest[7:] for i in src.images]
    # find a prefix that is all digits, if either digest starts with digits
    for n, dig in enumerate(digests):
        prefix = ""
        for c in dig:
            if not c.isdigit():
                break
            prefix += c
        if len(prefix) >= 2 and all(not o.startswith(prefix) for o in digests if o != dig):
            assert main(["report", "--json", "--image", "sha256:" + prefix, str(path)]) == 0
            assert json.loads(capsys.readouterr().out)["image"]["tags"] == [f"r/i{n}:1"]
            # plain digits are a position when they could be one, a digest prefix from four of them
            assert main(["report", "--json", "--image", prefix, str(path)]) == (0 if len(prefix) >= 4 else 1)
            out, err = capsys.readouterr()
            if len(prefix) >= 4:
                assert json.loads(out)["image"]["tags"] == [f"r/i{n}:1"]
            else:
                assert f"no image at position {prefix}" in err
    assert main(["report", "--image", "²", str(path)]) == 1
    assert "no image" in capsys.readouterr().err


def test_multi_image_archive_defaults_to_the_first_image(tmp_path):
    images = [([layer_tar([f("a", "1")])], ["r/one:1"]), ([layer_tar([f("b", "2")])], ["r/two:1"])]
    data = docker_archive(images, config=None)
    path = _write(tmp_path, "m.tar", data)
    rep, _ = _report(path)
    assert rep["image"]["tags"] == ["r/one:1"]


@pytest.mark.parametrize("case", ["zero-byte layer", "extra gzip blob that is no tar"])
def test_compressed_outer_archive_reads_what_the_plain_one_reads(tmp_path, case):
    if case == "zero-byte layer":
        data = docker_archive([b""])
    else:
        members = members_of(docker_archive([layer_tar([f("a", "1")])]))
        members["sbom.json.gz"] = gzip.compress(b'{"spdx": true}')
        data = tar_of(members)
    plain, _ = _report(_write(tmp_path, "p.tar", data))
    packed, _ = _report(_write(tmp_path, "p.tar.gz", data, gz=True))
    assert plain["image"]["files"] == packed["image"]["files"]


def test_layout_folder_with_a_fifo_or_folder_for_a_blob(tmp_path, capsys):
    raw = oci_archive([layer_tar([f("a", "1")])], compress="none")
    folder = tmp_path / "layout"
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        tar.extractall(folder, filter="data")
        layer_blob = [m.name for m in tar if m.isfile() and tar.extractfile(m).read(1) not in (b"{",)][0]
    target = folder / layer_blob
    target.unlink()
    os.mkfifo(target)
    assert main(["report", str(folder)]) == 2
    assert "not a regular file" in capsys.readouterr().err
    target.unlink()
    target.mkdir()
    assert main(["report", str(folder)]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_layers_in_another_order_than_the_config_says(tmp_path):
    a, b = layer_tar([f("a", "1")]), layer_tar([f("b", "2")])
    from tests.builders import config_for

    config = config_for([b, a])  # diff_ids swapped
    path = _write(tmp_path, "swap.tar.gz", docker_archive([a, b], config=config), gz=True)
    rep, _ = _report(path)
    assert sum("diff_id" in w for w in rep["image"]["warnings"]) == 2


def test_string_booleans_in_history_do_not_fool_the_mapping(tmp_path):
    history = [{"created_by": "a", "empty_layer": "false"}]
    rep, _ = _report(_write(tmp_path, "h.tar", docker_archive([layer_tar([f("a", "1")])], history=history)))
    assert rep["image"]["history"][0]["layer"] == 0


@pytest.mark.parametrize("off_by", [0, 65521, -65521])
def test_a_header_checksum_is_checked_exactly_not_modulo(off_by):
    """The scan checks sums by adler32's low half, modulo 65,521: a stored sum that far off the
    true one must still be refused (a header of high bytes has a true sum past the modulus)."""
    from explorer.formats.tar_index import TarFormatError, scan_buffer

    data = bytearray(tar_of({"a": b""}))
    header = data[:512]
    header[0:99] = b"\xfe" * 99  # a name of high bytes, and a prefix of them: a sum of 67,000 or so
    header[345:499] = b"\xfe" * 154
    header[148:156] = b" " * 8
    true_sum = sum(header)
    assert true_sum > 65521
    header[148:156] = b"%06o\0 " % (true_sum + off_by)
    data[:512] = header
    if off_by == 0:
        assert len(list(scan_buffer(bytes(data), 0, len(data)))) == 1
    else:
        with pytest.raises(TarFormatError, match="bad header checksum"):
            list(scan_buffer(bytes(data), 0, len(data)))
