"""Comparing two images: shared layers, pull savings, and file differences the tools agree on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from explorer.cli import main
from explorer.image.compare import chain_ids
from tests.expected import parse

DATA = Path(__file__).parent / "data"


def _expected_diff(a, b) -> dict[str, str]:
    """What differs between two merged listings of expected.txt files (type, mode, owner, size,
    content digest, link target), computed from the tools' own unpacking."""
    la = {e.path: e for e in a.merged}
    lb = {e.path: e for e in b.merged}
    out = {}
    for path in la.keys() | lb.keys():
        x, y = la.get(path), lb.get(path)
        if x is None:
            out[path] = "added"
        elif y is None:
            out[path] = "removed"
        elif (x.type, x.mode, x.uid, x.gid, x.size if x.type == "file" else None, x.sha16, x.target) != \
                (y.type, y.mode, y.uid, y.gid, y.size if y.type == "file" else None, y.sha16, y.target):
            out[path] = "modified"
    return out


def _diff(capsys, *argv):
    assert main(["diff", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_same_steps_built_by_docker_and_buildah(capsys):
    rep = _diff(capsys, str(DATA / "docker-legacy.tar"), str(DATA / "buildah-overlay.oci.tar"))
    assert rep["schema"] == "layer-explorer.diff/1"
    want = _expected_diff(parse(DATA / "docker-legacy.expected.txt")["images"][0],
                          parse(DATA / "buildah-overlay.oci.expected.txt")["images"][0])
    assert {f["path"]: f["change"] for f in rep["files"]} == want
    assert rep["shared_layers"] == [] and rep["diverge_at"] == 0  # different layers and metadata
    added = next(f for f in rep["files"] if f["path"] == "/etc/hosts")
    assert added["a"] is None and added["b"]["type"] == "file" and added["b"]["size"] == 0


def test_the_two_platforms_of_an_index(capsys):
    src = str(DATA / "multiplatform.oci.tar")
    rep = _diff(capsys, src, src, "--platform-a", "linux/amd64", "--platform-b", "linux/arm64")
    images = parse(DATA / "multiplatform.oci.expected.txt")["images"]
    assert {f["path"]: f["change"] for f in rep["files"]} == _expected_diff(images[0], images[1])
    assert rep["shared_layers"] == []  # the base layers differ, so the chains part at once
    assert rep["a"]["layers"][1] == rep["b"]["layers"][1]  # ... though the top layer is the same
    assert rep["pull_skip_bytes"] == 171  # so a pull of arm64 having amd64 skips that blob
    assert (rep["a"]["platform"], rep["b"]["platform"]) == ("linux/amd64", "linux/arm64")


def test_an_image_against_itself_and_its_docker25_resave(capsys):
    rep = _diff(capsys, str(DATA / "docker-legacy.tar"), str(DATA / "docker-legacy.tar"))
    assert rep["files"] == [] and len(rep["shared_layers"]) == 4
    assert [s["index_a"] for s in rep["shared_layers"]] == [0, 1, 2, 3]
    rep = _diff(capsys, str(DATA / "docker-legacy.tar"), str(DATA / "docker25-classic.tar"))
    assert rep["files"] == [] and len(rep["shared_layers"]) == 4


def test_chain_ids_follow_the_oci_spec():
    ids = parse(DATA / "docker-legacy.expected.txt")["images"][0].diff_ids
    chain = chain_ids(ids)
    assert chain[0] == ids[0]
    second = "sha256:" + hashlib.sha256((ids[0] + " " + ids[1]).encode()).hexdigest()
    assert chain[1] == second
    assert chain[3] == "sha256:" + hashlib.sha256((chain[2] + " " + ids[3]).encode()).hexdigest()


def test_diff_errors(capsys, tmp_path):
    assert main(["diff", str(DATA / "docker-legacy.tar"), str(tmp_path / "missing.tar")]) == 2
    assert "missing.tar" in capsys.readouterr().err
