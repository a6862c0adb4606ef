"""Documents from strangers: wrong types, deep nesting, huge sizes give a warning or one sentence
and exit 2, never an internal error; every case runs in a child under time and memory limits."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import config_for, d, docker_archive, f, layer_tar, members_of, tar_of, wh

LAYERS = [layer_tar([d("etc"), f("etc/a", "x")])]
LIMIT_SECONDS, LIMIT_BYTES = 60, 2 << 30


def _config(**fields) -> dict:
    cfg = json.loads(json.dumps(config_for(LAYERS, None)))
    for key, value in fields.items():
        if key in ("Env", "Labels", "Cmd", "Entrypoint", "ExposedPorts", "Volumes", "User", "WorkingDir"):
            cfg.setdefault("config", {})[key] = value
        else:
            cfg[key] = value
    return cfg


def _with_member(name_of, data: bytes) -> bytes:
    members = members_of(docker_archive(LAYERS))
    members[name_of(members)] = data
    return tar_of(members)


def _config_name(members) -> str:
    return next(k for k in members if k.endswith(".json") and k != "manifest.json")


DEEP = b"[" * 100_000 + b"]" * 100_000
WRONG_TYPES = {  # case -> the field a warning must name
    "rootfs-a-string": (_config(rootfs="layers"), "rootfs"),
    "env-a-number": (_config(Env=5), "config.Env"),
    "labels-a-list": (_config(Labels=[1, 2]), "config.Labels"),
    "os-an-object": (_config(os={"a": 1}), "os"),
    "history-a-string": (_config(history="abc"), "history"),
    "cmd-a-number": (_config(Cmd=5, Entrypoint={"a": 1}, User=7, WorkingDir=[]), "config.Cmd"),
    "history-step-a-number": (_config(history=[5]), "history[0]"),
}


def _run(path: Path, *command: str) -> subprocess.CompletedProcess:
    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES * 2, LIMIT_BYTES * 2))
        resource.setrlimit(resource.RLIMIT_CPU, (LIMIT_SECONDS, LIMIT_SECONDS))

    return subprocess.run([sys.executable, "-m", "explorer", *command, "--no-cache", str(path)], capture_output=True,
                          text=True, timeout=LIMIT_SECONDS * 2, preexec_fn=limits)


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_a_field_of_the_wrong_type_is_a_warning_and_left_out(tmp_path, case):
    config, field = WRONG_TYPES[case]
    path = tmp_path / f"{case}.tar"
    path.write_bytes(docker_archive(LAYERS, config=config))
    for command in (("report", "--json"), ("report", "--text"), ("inspect",)):
        proc = _run(path, *command)
        assert proc.returncode == 0, (command, proc.stderr)
        assert "internal error" not in proc.stderr
    report = json.loads(_run(path, "report", "--json").stdout)
    assert any(f"config field {field} " in w for w in report["image"]["warnings"]), report["image"]["warnings"]


def test_repo_tags_of_the_wrong_type_are_a_warning(tmp_path):
    path = tmp_path / "tags.tar"
    path.write_bytes(docker_archive([(LAYERS, 5)]))
    report = json.loads(_run(path, "report", "--json").stdout)
    assert report["image"]["tags"] == []
    assert any("RepoTags is not a list of names" in w for w in report["image"]["warnings"]), report["image"]["warnings"]


@pytest.mark.parametrize("case, archive, words", [
    ("repo-tags-a-number", lambda: docker_archive([(LAYERS, 5)]), None),
    ("manifest-nested-100000-deep", lambda: _with_member(lambda m: "manifest.json", DEEP), "nests JSON more deeply"),
    ("manifest-of-20-MB", lambda: _with_member(lambda m: "manifest.json", b"[" + b" " * (20 << 20) + b"]"),
     "LAYER_EXPLORER_MAX_JSON_MB"),
])
def test_bad_documents_are_one_sentence_and_exit_2(tmp_path, case, archive, words):
    path = tmp_path / f"{case}.tar"
    path.write_bytes(archive())
    proc = _run(path, "report", "--json")
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    if words is None:
        assert proc.returncode == 0 and json.loads(proc.stdout)["image"]["tags"] == []
    else:
        assert proc.returncode == 2 and words in proc.stderr and str(path) in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_names_and_steps_reach_the_terminal_escaped(tmp_path):
    evil = "etc/evil\n\x1b[31mFAKE LINE\x07"
    layers = [layer_tar([d("etc"), f(evil, "x")]), layer_tar([f("etc/b", "y")])]
    history = [{"created_by": "RUN echo \x1b]0;title\x07 && \u202eevil", "created": "2024-01-01T00:00:00Z"},
               {"created_by": "COPY b /etc/b\nSECOND LINE", "created": "2024-01-01T00:00:00Z"}]
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    a.write_bytes(docker_archive(layers, history=history))
    b.write_bytes(docker_archive(layers[:1], history=history[:1]))
    for command, path in ((("report", "--text"), a), (("inspect",), a), (("check",), a)):
        out = _run(path, *command).stdout
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out, command
        assert not any(line.startswith(("SECOND LINE", "\x1b[31mFAKE", "FAKE LINE")) for line in out.splitlines())
    diff = subprocess.run([sys.executable, "-m", "explorer", "diff", "--text", str(b), str(a)], capture_output=True,
                          text=True, timeout=120).stdout
    assert "\x1b" not in diff and "+ /etc/b" in diff
    report = _run(a, "report", "--text").stdout
    assert "\\e]0;title\\x07" in report  # shown, escaped: the user still sees what is there


@pytest.mark.parametrize("cut", [1, 4, 50, "last block"])
@pytest.mark.parametrize("checksum", [True, False])
def test_a_cut_zstd_stream_is_a_decompress_error_not_a_shorter_layer(cut, checksum):
    """zstandard's stream reader ends a cut stream as if it were whole; the frames are followed
    to tell. A cut on a tar boundary would otherwise show a layer with files missing."""
    import zstandard

    from explorer.formats import compression

    raw = layer_tar([f(f"etc/f{i:02}", bytes(range(256)) * 600) for i in range(12)])
    packer = zstandard.ZstdCompressor(write_checksum=checksum)
    skippable = b"\x50\x2a\x4d\x18" + (3).to_bytes(4, "little") + b"toc"  # as zstd:chunked writes its table
    whole = skippable + packer.compress(raw)
    if cut == "last block":  # the stream ends where the frame's last block would begin
        frames = compression._ZstdFrames()
        ends = []
        for i in range(len(whole)):
            frames.feed(whole[i:i + 1])
            if frames.state == "block" and not frames.skip and not frames.head:
                ends.append(i + 1)
        data = whole[:ends[-1]]
    else:
        data = whole[:-cut]

    def read_all(blob: bytes) -> int:
        read, total = compression.open_reader(compression.ZSTD, io.BytesIO(blob).read), 0
        while chunk := read(1 << 16):
            total += len(chunk)
        return total

    assert read_all(whole) == len(raw)
    with pytest.raises(compression.DecompressError, match="cut short"):
        read_all(data)


@pytest.mark.parametrize("kind", ["xz", "bzip2", "zstd", "gzip"])
def test_corrupt_compressed_data_is_a_decompress_error(kind):
    """(zstd frames carry a checksum only when the writer asks: such data is caught by the
    layer's digest instead, so the frame here has one.)"""
    import bz2
    import gzip as gz
    import lzma

    import zstandard

    from explorer.formats import compression

    raw = layer_tar([d("etc"), f("etc/a", bytes(range(256)) * 400)])
    packed = {"xz": lzma.compress, "bzip2": bz2.compress, "gzip": gz.compress,
              "zstd": zstandard.ZstdCompressor(write_checksum=True).compress}[kind](raw)
    broken = bytearray(packed)
    for i in range(len(broken) // 3, len(broken) // 3 + 64):
        broken[i] ^= 0xA5
    stream = io.BytesIO(bytes(broken))
    with pytest.raises(compression.DecompressError):
        read = compression.open_reader(kind, stream.read)
        while read(1 << 16):
            pass


def test_extraction_skips_what_the_filesystem_cannot_hold_and_says_why(tmp_path):
    deep = "/".join(["x" * 200] * 25) + "/file"  # 5,000 bytes: past PATH_MAX, yet few folders deep
    layers = [layer_tar([d("etc"), f("etc/big-uid", "x", uid=2 ** 40, gid=5), f("etc/fine", "y"), f(deep, "z"),
                         f("etc/" + "n" * 300, "long name")])]
    path = tmp_path / "odd.tar"
    path.write_bytes(docker_archive(layers))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "explorer", "extract", "--no-cache", "--same-owner", "-o", str(out),
                           str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (out / "etc" / "fine").read_text() == "y" and (out / "etc" / "big-uid").read_text() == "x"
    said = proc.stderr  # the list of what was left out, and why
    assert "its name is longer than this filesystem allows" in said
    assert "owner 1099511627776:5 not set" in said and "Traceback" not in said


def test_extraction_skips_a_nul_link_target_and_says_so_escaped(tmp_path):
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        link = tarfile.TarInfo("ln")
        link.type, link.pax_headers = tarfile.SYMTYPE, {"linkpath": "/etc/pa\0sswd"}
        tar.addfile(link)
        odd = tarfile.TarInfo("hl\x1b]0;PWNED\x07\x1b[31mRED\n")  # a hard link to nothing, with a hostile name
        odd.type, odd.linkname = tarfile.LNKTYPE, "nope"
        tar.addfile(odd)
        fine = tarfile.TarInfo("fine")
        fine.size = 1
        tar.addfile(fine, io.BytesIO(b"y"))
    path = tmp_path / "nul.tar"
    path.write_bytes(docker_archive([buf.getvalue()]))
    out = tmp_path / "out"
    proc = _run(path, "extract", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "fine").read_text() == "y" and not os.path.lexists(out / "ln")
    assert "skipped /ln: a symlink whose target this filesystem cannot hold" in proc.stderr
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr and "\\e[31mRED\\n" in proc.stderr, proc.stderr


def _layer_of(members: list[tuple[str, bytes, str | None]]) -> bytes:
    """A layer tar of (name, data, symlink target) written with PAX records for long names."""
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, target in members:
            info = tarfile.TarInfo(name)
            if target is not None:
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("case, members, words", [
    ("a name 60,000 folders deep", [("/".join(["a"] * 60_000) + "/f", b"x", None)], "LAYER_EXPLORER_MAX_NAME_DEPTH"),
    ("a link target of a million bytes", [("lnk", b"", "./" * 500_000 + "t")] + [(f"lnk/e{i}", b"x", None) for i in range(40)],
     "LAYER_EXPLORER_MAX_LINK_BYTES"),
])
def test_names_past_the_budget_are_refused_at_once(tmp_path, case, members, words):
    path = tmp_path / "odd.tar"
    path.write_bytes(docker_archive([_layer_of(members)]))
    proc = _run(path, "report", "--json")
    assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, case


def test_a_layer_with_more_entries_than_the_budget_is_refused(tmp_path, monkeypatch):
    # the default budget is 1,000,000 entries a layer; the rule is the same at 1,000
    monkeypatch.setenv("LAYER_EXPLORER_MAX_ENTRIES", "1000")
    many = tmp_path / "many.tar"
    many.write_bytes(docker_archive([layer_tar([f(f"e{i}") for i in range(1001)])], gzip_layers=True))
    proc = _run(many, "report", "--json")
    assert proc.returncode == 2 and "LAYER_EXPLORER_MAX_ENTRIES" in proc.stderr and str(many) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    enough = tmp_path / "enough.tar"
    enough.write_bytes(docker_archive([layer_tar([f(f"e{i}") for i in range(1000)])], gzip_layers=True))
    assert _run(enough, "report", "--json").returncode == 0


def test_names_that_add_up_past_the_budget_are_refused(tmp_path, monkeypatch):
    # the default budget is 256 MiB of names a layer; the rule is the same at 1 MiB
    monkeypatch.setenv("LAYER_EXPLORER_MAX_PATHS_MB", "1")
    long = tmp_path / "long.tar"
    long.write_bytes(docker_archive([layer_tar([f(f"{i:04}" + "n" * 4000) for i in range(300)])], gzip_layers=True))
    proc = _run(long, "report", "--json")
    assert proc.returncode == 2 and "add up to more than 1 MiB (LAYER_EXPLORER_MAX_PATHS_MB)" in proc.stderr
    assert str(long) in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    fewer = tmp_path / "fewer.tar"
    fewer.write_bytes(docker_archive([layer_tar([f(f"{i:04}" + "n" * 4000) for i in range(200)])], gzip_layers=True))
    assert _run(fewer, "report", "--json").returncode == 0


def test_folders_a_deep_name_implies_count_against_the_budget(tmp_path, monkeypatch):
    # one 51 KB name 1,000 folders deep implies folders whose paths add up to 25 MB
    deep = tmp_path / "deep.tar"
    deep.write_bytes(docker_archive([layer_tar([f("/".join(["d" * 50] * 1000) + "/f", "x")])]))
    monkeypatch.setenv("LAYER_EXPLORER_MAX_PATHS_MB", "8")
    proc = _run(deep, "report", "--json")
    assert proc.returncode == 2 and "with the folders they imply, add up to more than 8 MiB" in proc.stderr
    assert "LAYER_EXPLORER_MAX_PATHS_MB" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    monkeypatch.delenv("LAYER_EXPLORER_MAX_PATHS_MB")
    assert _run(deep, "report", "--json").returncode == 0  # under the default, it is shown


def test_folders_deep_whiteouts_imply_count_against_the_budget_too(tmp_path, monkeypatch):
    # dive's model has every whiteout's folders exist: 40 whiteouts, each 300 folders deep
    # under a symlinked folder, imply 12 MB of paths (a few thousand of them took 23 GB)
    base = _layer_of([("real/keep", b"x", None), ("link", b"", "real")])
    deep = _layer_of([("link/" + "/".join(f"p{i}x{j:03}" for j in range(300)) + "/.wh.gone", b"", None)
                      for i in range(40)])
    path = tmp_path / "deep-whiteouts.tar"
    path.write_bytes(docker_archive([base, deep]))
    monkeypatch.setenv("LAYER_EXPLORER_MAX_PATHS_MB", "1")
    proc = _run(path, "report", "--json")
    assert proc.returncode == 2 and "layer 1: its paths, with the folders they imply, add up to more than 1 MiB" in proc.stderr
    assert str(path) in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    monkeypatch.delenv("LAYER_EXPLORER_MAX_PATHS_MB")
    assert _run(path, "report", "--json").returncode == 0  # under the default, it is shown


def test_a_link_target_just_under_the_budget_is_followed_quickly(tmp_path):
    members = [("lnk", b"", "./" * 2_000 + "t")] + [(f"lnk/e{i}", b"x", None) for i in range(40)]
    path = tmp_path / "near.tar"
    path.write_bytes(docker_archive([_layer_of(members)]))
    proc = _run(path, "report", "--json")  # under _run's CPU limit of 60 s
    assert proc.returncode in (0, 2) and "internal error" not in proc.stderr


def _oci_with_index(make_index) -> bytes:
    """The builders' OCI archive with its index.json replaced by ``make_index(manifest descriptor, add_blob)``."""
    import hashlib

    from tests.builders import oci_archive

    members = members_of(oci_archive(LAYERS))
    index = json.loads(members["index.json"])
    manifest = index["manifests"][0]

    def add_blob(doc: dict) -> dict:
        data = json.dumps(doc).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        members[f"blobs/sha256/{digest[7:]}"] = data
        return {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": len(data)}

    members["index.json"] = json.dumps(make_index(manifest, add_blob)).encode()
    return tar_of(members)


def test_an_index_that_repeats_itself_is_read_once(tmp_path):
    def repeated(manifest, _add):
        return {"schemaVersion": 2, "manifests": [manifest] * 2000}

    def nested(manifest, add):
        level = {"schemaVersion": 2, "manifests": [manifest] * 6}
        for _ in range(7):  # 6^8 images by reference
            level = {"schemaVersion": 2, "manifests": [add(level)] * 6}
        return level

    for name, make in (("repeated", repeated), ("nested", nested)):
        path = tmp_path / f"{name}.tar"
        path.write_bytes(_oci_with_index(make))
        proc = _run(path, "report", "--json")
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert len(report["images"]) == 1 and any("read once" in w for w in report["image"]["warnings"])


def _sha512_oci(blob: bytes, claimed: bytes) -> bytes:
    """An OCI archive whose one layer is addressed by sha512 (of ``claimed``) and holds ``blob``."""
    import gzip
    import hashlib

    from tests.builders import oci_archive

    members = members_of(oci_archive(LAYERS))
    index = json.loads(members["index.json"])
    manifest_name = "blobs/sha256/" + index["manifests"][0]["digest"][7:]
    manifest = json.loads(members[manifest_name])
    old = manifest["layers"][0]["digest"]
    del members["blobs/sha256/" + old[7:]]
    packed = gzip.compress(claimed, mtime=0)
    digest = "sha512:" + hashlib.sha512(packed).hexdigest()
    members["blobs/sha512/" + digest[7:]] = gzip.compress(blob, mtime=0)
    manifest["layers"][0].update(digest=digest, size=len(members["blobs/sha512/" + digest[7:]]))
    data = json.dumps(manifest).encode()
    del members[manifest_name]
    new_name = hashlib.sha256(data).hexdigest()
    members["blobs/sha256/" + new_name] = data
    index["manifests"][0].update(digest="sha256:" + new_name, size=len(data))
    members["index.json"] = json.dumps(index).encode()
    return tar_of(members)


def test_a_sha512_layer_is_verified_with_sha512(tmp_path):
    good, swapped = tmp_path / "good.tar", tmp_path / "swapped.tar"
    good.write_bytes(_sha512_oci(LAYERS[0], LAYERS[0]))
    other = layer_tar([d("etc"), f("etc/a", "y")])  # another blob under the sha512 name
    swapped.write_bytes(_sha512_oci(other, LAYERS[0]))
    ok = _run(good, "report", "--json", "--verify")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["image"]["verification"][0]["actual_digest"].startswith("sha512:")
    bad = _run(swapped, "report", "--json", "--verify")
    assert bad.returncode == 1 and "verification failed for layer(s) 0" in bad.stderr
    check = json.loads(bad.stdout)["image"]["verification"][0]
    assert check["expected_digest"].startswith("sha512:") and check["actual_digest"] != check["expected_digest"]


def test_a_manifest_listing_one_layer_20000_times_is_refused(tmp_path):
    opaque = layer_tar([d("etc"), f("etc/.wh..wh..opq", b"")])
    members = members_of(docker_archive([opaque]))
    manifest = json.loads(members["manifest.json"])
    manifest[0]["Layers"] = manifest[0]["Layers"] * 20_000
    members["manifest.json"] = json.dumps(manifest).encode()
    path = tmp_path / "many.tar"
    path.write_bytes(tar_of(members))
    proc = _run(path, "report", "--json")
    assert proc.returncode == 2 and "20,000 layers" in proc.stderr and "LAYER_EXPLORER_MAX_LAYERS" in proc.stderr


def test_a_layer_listed_many_times_is_read_once(tmp_path):
    import tarfile
    import time
    import zlib

    info = tarfile.TarInfo("zeros.bin")
    info.size = 256 << 20
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    zeros = [packer.compress(info.tobuf(tarfile.PAX_FORMAT))]
    zeros += [packer.compress(bytes(1 << 20)) for _ in range(256)] + [packer.compress(bytes(1024)), packer.flush()]
    members = members_of(docker_archive([b"".join(zeros)]))  # 256 MiB of zeros in a few hundred kB
    manifest = json.loads(members["manifest.json"])
    manifest[0]["Layers"] = manifest[0]["Layers"] * 300
    members["manifest.json"] = json.dumps(manifest).encode()
    path = tmp_path / "again.tar"
    path.write_bytes(tar_of(members))
    started = time.monotonic()
    proc = _run(path, "report", "--json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["image"]["layers"]) == 300
    assert time.monotonic() - started < 20  # read 300 times, it took minutes


def test_a_slow_bomb_is_refused_past_two_gigabytes(monkeypatch):
    from explorer.formats import compression

    class Stored:  # a stream that has read this many compressed bytes
        count = 20 << 20

    guard = compression.bomb_guard(Stored(), "layer 0")
    guard(1 << 30)  # 50 times its size at 1 GiB: real layers do that (zero-filled files)
    with pytest.raises(compression.DecompressError, match="LAYER_EXPLORER_MAX_RATIO"):
        guard(3 << 30)  # 150 times past 2 GiB: 870:1 bombs stay under the 1000x rule for minutes
    monkeypatch.setenv("LAYER_EXPLORER_MAX_RATIO", "1000")
    compression.bomb_guard(Stored(), "layer 0")(3 << 30)  # raised for a genuine image


def test_a_layer_of_zeros_past_the_bomb_ratio_is_refused_saying_how_to_open_it(tmp_path, monkeypatch):
    import tarfile

    import zstandard

    # one 300 MB file of zeros: zstd stores it in about 10 kB, 30,000 times smaller
    info = tarfile.TarInfo("zeros.img")
    info.size = 300 << 20
    packer = zstandard.ZstdCompressor().compressobj()
    blob = packer.compress(info.tobuf(format=tarfile.PAX_FORMAT))
    for _ in range(300):
        blob += packer.compress(bytes(1 << 20))
    blob += packer.compress(bytes(1024)) + packer.flush()
    path = tmp_path / "zeros.tar"
    path.write_bytes(docker_archive([blob]))
    proc = _run(path, "report", "--json")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "refusing a decompression bomb" in proc.stderr and "raise LAYER_EXPLORER_MAX_RATIO" in proc.stderr
    assert "damaged" not in proc.stderr and str(path) in proc.stderr
    import gzip

    packed = tmp_path / "zeros.tar.gz"  # the same inside a compressed archive, read as a stream
    packed.write_bytes(gzip.compress(path.read_bytes(), 1))
    proc = _run(packed, "report", "--json")
    assert proc.returncode == 2 and "refusing a decompression bomb" in proc.stderr and "damaged" not in proc.stderr
    monkeypatch.setenv("LAYER_EXPLORER_MAX_RATIO", "100000")
    proc = _run(path, "report", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["image"]["layers"][0]["size"] == 300 << 20


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak from /proc")
def test_big_members_of_a_compressed_archive_are_not_held_in_memory(tmp_path):
    import gzip
    import tarfile

    inner = tmp_path / "inner.tar"
    inner.write_bytes(docker_archive(LAYERS))
    path = tmp_path / "padded.tar.gz"
    with gzip.open(path, "wb", compresslevel=1) as out, tarfile.open(fileobj=out, mode="w|") as tar:
        with tarfile.open(inner) as original:
            for member in original:
                tar.addfile(member, original.extractfile(member) if member.isfile() else None)
        block = bytes(1 << 20)
        for i in range(24):  # 24 members of 24 MiB that are not layers: 576 MiB if each were kept
            info = tarfile.TarInfo(f"extra/pad-{i}.bin")
            info.size = 24 << 20

            class Zeros(io.RawIOBase):
                left = info.size

                def read(self, n=-1):
                    n = min(self.left, len(block) if n is None or n < 0 else n)
                    self.left -= n
                    return block[:n]

            tar.addfile(info, Zeros())

    # VmHWM, this process's own peak: ru_maxrss keeps the parent's across fork and exec
    proc = subprocess.run([sys.executable, "-c", (
        "import re, sys; from explorer.cli import main; code = main(['report', '--json', '--no-cache', "
        f"{str(path)!r}]); print(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1), "
        "file=sys.stderr); sys.exit(code)")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stderr.strip().splitlines()[-1]) < 400 << 10  # KiB: well under the 576 MiB of padding


def test_a_layout_blob_followed_by_a_sparse_hole_is_refused_before_it_is_read(tmp_path):
    import os
    import tarfile

    from tests.builders import oci_archive

    folder = tmp_path / "layout"
    with tarfile.open(fileobj=io.BytesIO(oci_archive([layer_tar([f("etc/hostname", "box\n")])]))) as tar:
        tar.extractall(folder, filter="data")
    index = json.loads((folder / "index.json").read_text())
    manifest = json.loads((folder / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text())
    blob = folder / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:]
    os.truncate(blob, 64 << 30)  # 64 GB, nearly all of it a hole: no disk used
    proc = _run(folder, "report", "--json")
    assert proc.returncode == 2 and "size mismatch for layer 0" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_an_image_with_more_entries_than_the_budget_is_refused(tmp_path, monkeypatch):
    # 1,500,000 entries in all by default: each layer may be under its own budget
    monkeypatch.setenv("LAYER_EXPLORER_MAX_IMAGE_ENTRIES", "1500")
    layers = [layer_tar([f(f"l{k}/e{i}") for i in range(600)]) for k in range(3)]
    path = tmp_path / "three.tar"
    path.write_bytes(docker_archive(layers, gzip_layers=True))
    proc = _run(path, "report", "--json")
    assert proc.returncode == 2 and "LAYER_EXPLORER_MAX_IMAGE_ENTRIES" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    monkeypatch.setenv("LAYER_EXPLORER_MAX_IMAGE_ENTRIES", "1803")  # 1,800 files and their 3 folders
    assert _run(path, "report", "--json").returncode == 0



def test_paths_removed_and_added_again_count_once_against_the_budget(tmp_path, monkeypatch):
    # 400 KB of names in d/, removed and added again by three layers, then a layer with a
    # folder to imply: the tree counts those names once, and dive's model must too
    names = [f(f"d/{i:03}" + "n" * 4000) for i in range(100)]
    again = [layer_tar([wh("d")]), layer_tar(names)]
    path = tmp_path / "again.tar"
    path.write_bytes(docker_archive([layer_tar(names)] + again * 3 + [layer_tar([f("e/f", "x")])]))
    monkeypatch.setenv("LAYER_EXPLORER_MAX_PATHS_MB", "1")
    proc = _run(path, "report", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["image"]["efficiency"]["wasted_bytes"] == 0  # (no file has bytes)
