"""Layer streams that real tools write and that once stopped a load: gzip made of many members
(eStargz), and zstd blobs read from a layout folder's files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.builders import f, layer_tar, oci_archive

DATA = Path(__file__).parent / "data"
CLI = [sys.executable, "-c", "from explorer.cli import entry; entry()"]


def _report(path: Path, *extra: str) -> dict:
    """The JSON report, from a process of its own: a stream that loops must fail the test, not hang it."""
    done = subprocess.run([*CLI, "report", "--json", "--no-cache", str(path), *extra],
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def test_multi_member_gzip_whose_members_fill_whole_mebibytes(tmp_path):
    # a 4 MiB member inflates to exactly four reads' worth: the case that once looped for ever
    big = bytes(range(256)) * (18 << 12)  # 4.5 MiB, so the tar spans two full members and a tail
    layer = layer_tar([f("data/big.bin", big), f("data/small.txt", "tail\n")])
    archive = tmp_path / "estargz-like.tar"
    archive.write_bytes(oci_archive([layer], compress="gzip-chunks"))
    report = _report(archive)
    files = {x["path"]: x for x in report["image"]["files"]}
    assert files["/data/big.bin"]["size"] == len(big)
    out = subprocess.run([*CLI, "cat", str(archive), "/data/big.bin"],
                         capture_output=True, timeout=120)
    assert hashlib.sha256(out.stdout).hexdigest() == hashlib.sha256(big).hexdigest()


def test_zstd_layers_of_a_layout_folder_read_like_the_archive(tmp_path):
    # buildah pushed this image with zstd layers to an OCI archive; unpacked, it is the folder
    # `buildah push --compression-format zstd IMG oci:DIR` writes
    folder = tmp_path / "zstd-layout"
    with tarfile.open(DATA / "buildah-overlay.oci-zstd.tar") as tar:
        tar.extractall(folder, filter="data")
    from_folder = _report(folder)
    from_archive = _report(DATA / "buildah-overlay.oci-zstd.tar")
    assert [l["compression"] for l in from_folder["image"]["layers"]] == ["zstd"] * 4
    assert from_folder["image"]["files"] == from_archive["image"]["files"]
    assert from_folder["image"]["changes"] == from_archive["image"]["changes"]


def test_the_standard_zlib_reads_the_same_where_zlib_ng_is_missing(tmp_path, monkeypatch):
    import zlib

    from explorer.formats import compression
    from explorer.image.content import open_entry
    from explorer.image.loader import load_image
    from explorer.formats.source import open_source

    big = bytes(range(256)) * (18 << 12)
    archive = tmp_path / "estargz-like.tar"
    archive.write_bytes(oci_archive([layer_tar([f("data/big.bin", big)])], compress="gzip-chunks"))
    for inflate in (zlib, compression._inflate):
        monkeypatch.setattr(compression, "_inflate", inflate)
        with open_source(str(archive)) as src:
            img = load_image(src, src.select())
            read = open_entry(src, img, img.tree.entry_at("/data/big.bin"))
            assert b"".join(iter(lambda: read(1 << 20), b"")) == big, inflate.__name__


def test_reads_without_resume_points_record_them_as_far_as_they_go(tmp_path):
    import random

    from explorer.formats import compression
    from explorer.formats.source import open_source
    from explorer.image.content import read_entry
    from explorer.image.loader import load_image

    rnd = random.Random(5)
    files = {f"data/f{k}.bin": bytes(rnd.getrandbits(8) for _ in range(64)) * (96 << 10) for k in range(4)}  # 6 MiB each
    archive = tmp_path / "deep.tar"
    archive.write_bytes(oci_archive([layer_tar([f(n, d) for n, d in files.items()])]))
    with open_source(str(archive)) as src:
        img = load_image(src, src.select())
        scan = img.scans[0]
        scan.checkpoints = []  # as after a worker process scanned it, or a reopen from the cache
        for name in ("data/f2.bin", "data/f0.bin", "data/f3.bin", "data/f1.bin"):
            entry = img.tree.entry_at("/" + name)
            assert read_entry(src, img, entry, offset=1000, limit=4096) == files[name][1000:5096], name
            outs = [c[1] for c in scan.checkpoints]
            assert outs == sorted(outs) and len(set(outs)) == len(outs)  # in order, none twice
        # recorded as far as the deepest read needed: its start is within one step of the last
        deepest = img.tree.entry_at("/data/f3.bin").offset + 1000
        assert deepest - compression.CHECKPOINT_EVERY < scan.checkpoints[-1][1] <= deepest


def test_zero_padding_between_gzip_members_anywhere_in_a_read():
    import gzip
    import io

    from explorer.formats import compression

    parts = [b"first member\n" * 50, b"second\n" * 70, b"third\n"]
    for pad in (1, 511, 4096):
        blob = (gzip.compress(parts[0]) + b"\0" * pad + gzip.compress(parts[1]) + b"\0" * pad
                + gzip.compress(parts[2]) + b"\0" * pad)
        read = compression.open_reader(compression.GZIP, io.BytesIO(blob).read)
        assert b"".join(iter(lambda: read(1 << 20), b"")) == b"".join(parts), pad


def test_modes_and_times_are_exact_and_repeated_ones_are_shared():
    import io

    from explorer.formats.tar_index import scan_stream
    from tests.builders import f, layer_tar

    data = layer_tar([f("a", "1", mode=0o644), f("b", "2", mode=0o644), f("c", "3", mode=0o4755, mtime=1_600_000_000),
                      f("d", "4", pax={"mtime": "1700000000.25"})])
    a, b, c, d = list(scan_stream(io.BytesIO(data).read))
    assert (a.mode, b.mode, c.mode) == (0o644, 0o644, 0o4755)
    assert (a.mtime, c.mtime, d.mtime) == (1_700_000_000, 1_600_000_000, 1_700_000_000.25)
    assert type(a.mtime) is int and type(d.mtime) is float  # a fraction from PAX stays one
    assert a.mode is b.mode and a.mtime is b.mtime  # one object a value: the index holds millions
