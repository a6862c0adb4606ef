"""Bad input: exit 2 with one line naming the file and the problem; nothing written anywhere."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.cli import main
from tests.builders import docker_archive, f, layer_tar, members_of, oci_archive, tar_of

DATA = Path(__file__).parent / "data"


def run_cli(args, cwd):
    """Run ``python -m explorer`` as a user would; return (code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "explorer", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def _layer() -> bytes:
    return layer_tar([f("etc/hostname", "box")])


def _corrupt_gzip_layer() -> bytes:
    """An OCI archive whose gzip layer has flipped bytes in the middle of its stream."""
    raw = oci_archive([layer_tar([f("big", os.urandom(50_000))])])
    blobs = members_of(raw)
    for name, blob in blobs.items():
        if blob[:2] == b"\x1f\x8b":
            mid = len(blob) // 2
            blobs[name] = blob[:mid] + bytes(b ^ 0xFF for b in blob[mid : mid + 64]) + blob[mid + 64 :]
    return tar_of(blobs)


def _swapped_layer() -> bytes:
    """An OCI archive whose gzip layer was replaced by another valid one under the same name."""
    raw = oci_archive([_layer()])
    blobs = members_of(raw)
    for name, blob in blobs.items():
        if blob[:2] == b"\x1f\x8b":
            blobs[name] = gzip.compress(layer_tar([f("etc/hostname", "evil")]))
    return tar_of(blobs)


def _tampered_config() -> bytes:
    """An OCI archive whose config blob no longer matches its digest."""
    raw = oci_archive([_layer()])
    blobs = members_of(raw)
    for name, blob in blobs.items():
        if b'"rootfs"' in blob:
            blobs[name] = blob.replace(b'"amd64"', b'"arm64"')
    return tar_of(blobs)


CASES = {
    "not-an-archive.tar": (b"hello, I am a text file\n" * 100, "not a container image archive"),
    "empty.tar": (b"", "empty"),
    "truncated.tar": ((DATA / "docker-legacy.tar").read_bytes()[:1_000_000], "truncated"),
    "no-manifest.tar": (tar_of({"foo/bar.txt": b"x"}), "neither manifest.json nor index.json"),
    "bad-json.tar": (docker_archive([_layer()], manifest=b"[{not json"), "not valid JSON"),
    "wrong-shape.tar": (docker_archive([_layer()], manifest={"Config": 1}), "malformed manifest.json (a list of images): "
                        "a list was expected, found an object"),
    "config-missing.tar": (docker_archive([_layer()], manifest=[{"Layers": []}]), "malformed manifest.json entry 0 Config: "
                           "a string was expected, found none (the field is missing or null)"),
    "tampered-config.tar": (_tampered_config(), "digest mismatch"),
    "swapped-layer.tar": (_swapped_layer(), "mismatch for layer 0"),  # its size gives it away before its digest
    "corrupt-layer.tar": (_corrupt_gzip_layer(), "layer"),
    "truncated.tar.gz": (gzip.compress((DATA / "docker-legacy.tar").read_bytes())[:300_000], "cut short"),
}


def _missing(kind: str) -> bytes:
    """A docker-archive lacking its config or a layer blob."""
    layer = _layer()
    full = docker_archive([layer])
    members = members_of(full)
    drop = next(n for n in members if (n.endswith(".json") and n != "manifest.json") == (kind == "config") and n != "manifest.json")
    del members[drop]
    return tar_of(members)


CASES["missing-config.tar"] = (_missing("config"), "missing")
CASES["missing-layer.tar"] = (_missing("layer"), "missing")


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_archive_gives_one_clear_line(tmp_path, name, capsys):
    data, words = CASES[name]
    path = tmp_path / name
    path.write_bytes(data)
    before = sorted(os.listdir(tmp_path))
    code = main(["report", "--json", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0] and words in lines[0], lines[0]
    assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == before  # nothing left behind


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs a character device")
def test_a_device_is_refused_not_read(capsys):
    assert main(["report", "--no-cache", "/dev/zero"]) == 2
    err = capsys.readouterr().err
    assert "/dev/zero: is a device or a pipe, not a file" in err and len(err.strip().splitlines()) == 1


def test_missing_source_and_folder_without_layout(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope.tar")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "readme.txt").write_text("hi")
    assert main(["report", str(tmp_path / "folder")]) == 2
    assert "not a container image" in capsys.readouterr().err


def test_real_command_prints_no_traceback_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"\x00" * 100 + b"junk" * 1000)
    code, out, err = run_cli(["report", str(bad)], cwd=tmp_path)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "bad.tar" in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["bad.tar"]


def test_unknown_image_and_platform_exit_1(tmp_path, capsys):
    assert main(["report", "--image", "nope:latest", str(DATA / "docker-legacy.tar")]) == 1
    assert "no image 'nope:latest'" in capsys.readouterr().err
    assert main(["report", "--platform", "linux/s390x", str(DATA / "multiplatform.oci.tar")]) == 1
    assert "linux/amd64, linux/arm64" in capsys.readouterr().err


def test_image_selection_by_position_tag_and_digest(capsys):
    src = str(DATA / "podman-multi.docker.tar.zst")
    for ref in ("1", "localhost/fixture-layers:buildah", "fixture-layers:buildah", "b3d9fb72", "sha256:b3d9fb729c05"):
        assert main(["report", "--json", "--image", ref, src]) == 0
        rep = json.loads(capsys.readouterr().out)
        assert rep["image"]["tags"] == ["localhost/fixture-layers:buildah"], ref
        assert [i["selected"] for i in rep["images"]] == [False, True]


def test_a_position_past_the_end_is_refused_not_read_as_a_digest(capsys):
    """The second config's digest starts "sha256:ab10", the first's "sha256:57b2": "5" is no
    image at position 5, not the first image by a digest prefix; "sha256:5" still is one."""
    src = str(DATA / "multiplatform.oci.tar")
    assert main(["report", "--json", "--image", "5", src]) == 1
    err = capsys.readouterr().err
    assert "no image at position 5: it holds 2 images (positions 0 to 1); to give a config digest by its first " \
        "digits, give at least 4 of them, or write sha256:5" in err and len(err.strip().splitlines()) == 1
    assert main(["report", "--json", "--image", "sha256:5", src]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["image"]["config_digest"].startswith("sha256:57b2")
    assert main(["report", "--json", "--image", "nope", src]) == 1
    assert capsys.readouterr().err.count("localhost/fixture-multi:latest") == 1  # both platforms' one name, once


def test_a_number_is_a_position_then_from_four_digits_a_digest_prefix():
    import errno

    from explorer.formats.source import SelectionError, _match_image, _what_to_check
    from explorer.model.values import ImageRef

    images = [ImageRef(0, ("r/a:1",), "sha256:8826e0" + "0" * 58, "linux/amd64"),
              ImageRef(1, ("r/b:1",), "sha256:123" + "0" * 61, "linux/amd64")]
    assert _match_image(images, "01", "s") == [images[1]]  # a position, leading zero and all
    assert _match_image(images, "8826", "s") == [images[0]]  # past the last position, four digits: a digest
    assert _match_image(images, "sha256:882", "s") == [images[0]]
    for short in ("882", "12", "5"):  # fewer: refused, however well they would match
        with pytest.raises(SelectionError, match=f"no image at position {short}: it holds 2 images"):
            _match_image(images, short, "s")
    with pytest.raises(SelectionError, match=r"it holds 1 image \(position 0\)"):
        _match_image(images[:1], "3", "s")
    assert _what_to_check(PermissionError(errno.EACCES, "Permission denied")) == "check the file's permissions"
    assert _what_to_check(OSError(errno.ENAMETOOLONG, "File name too long")) == "check the path"
    assert "disk" in _what_to_check(OSError(errno.EIO, "Input/output error"))


def test_text_output_is_readable(capsys):
    assert main(["report", "--text", str(DATA / "docker-legacy.tar")]) == 0
    text = capsys.readouterr().out
    assert "fixture-layers:docker-legacy" in text
    assert "Layers (4)" in text and "History (10 steps)" in text
    assert "Files: 68 entries" in text


def test_a_mistyped_command_is_not_opened_as_an_image(capsys):
    assert main(["raport", "--json", "x.tar"]) == 1
    err = capsys.readouterr().err
    assert "no command or file named 'raport'" in err and "report" in err and "updates" in err


def test_running_out_of_memory_names_the_image(tmp_path, capsys, monkeypatch):
    from explorer.image import loader
    from tests.builders import docker_archive, f, layer_tar

    path = tmp_path / "big.tar"
    path.write_bytes(docker_archive([layer_tar([f("etc/a", "x")])]))

    def exhausted(*args, **kwargs):
        raise MemoryError  # as a process under a memory limit meets it, partway through the layers

    monkeypatch.setattr(loader, "_load", exhausted)
    assert main(["report", "--json", "--no-cache", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: not enough memory to read this image" in err and len(err.strip().splitlines()) == 1
