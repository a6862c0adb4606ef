"""Comparing two images: shared layers, pull savings, and file differences the tools agree on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from explorer.cli import main
from explorer.image.compare import chain_ids, chain_summary
from tests.builders import docker_archive, f, layer_tar
from tests.expected import parse

DATA = Path(__file__).parent / "data"
LEGACY = DATA / "docker-legacy.tar"
DOCKER_MULTI = DATA / "docker-multi.tar.gz"  # fixture-layers:docker-legacy, then fixture-layers:buildah
PODMAN_MULTI = DATA / "podman-multi.docker.tar.zst"  # the same two images, as podman saved them
PLATFORMS = DATA / "multiplatform.oci.tar"  # linux/amd64 and linux/arm64 of one name
FOLDER = DATA / "umoci.oci-layout"


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


# -- how two chains relate, and several images in a source ------------------------------

DIFF_KEYS = {"schema", "a", "b", "shared_layers", "diverge_at", "pull_skip_bytes", "packages", "files"}


def _based(tmp_path, extra_layers: int) -> tuple[Path, Path]:
    """Two archives: a base image, and the base with ``extra_layers`` more layers on top."""
    base = [layer_tar([f("etc/base", "b")]), layer_tar([f("app/one", "1")])]
    more = [layer_tar([f(f"app/extra{k}", str(k))]) for k in range(extra_layers)]
    a, b = tmp_path / "base.tar", tmp_path / "more.tar"
    a.write_bytes(docker_archive(base))
    b.write_bytes(docker_archive(base + more))
    return a, b


def _diff_err(capsys, *argv: str) -> tuple[dict, str]:
    assert main(["diff", "--json", *argv]) == 0
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def _diff_text(capsys, *argv: str) -> str:
    assert main(["diff", "--text", *argv]) == 0
    return capsys.readouterr().out


# -- how two chains relate ------------------------------------------------------------------


def test_chain_summary_says_same_base_or_parting():
    assert chain_summary(12, 12, 12) == "the images share all 12 layers"
    assert chain_summary(1, 1, 1) == "the images share all 1 layer"
    assert chain_summary(10, 10, 12) == "B adds 2 layers on top of all 10 layers of A"
    assert chain_summary(10, 11, 10) == "A adds 1 layer on top of all 10 layers of B"
    assert chain_summary(3, 5, 7) == "the chains part at layer 3"
    assert "part at layer 0" in chain_summary(0, 4, 4)


def test_identical_images_are_said_to_share_every_layer(capsys):
    text = _diff_text(capsys, str(LEGACY), str(DATA / "docker25-classic.tar"))
    assert "Shared layers: 4 (the images share all 4 layers)" in text
    assert "part at" not in text
    rep, _ = _diff_err(capsys, str(LEGACY), str(DATA / "docker25-classic.tar"))
    # The JSON keeps its keys and values: diverge_at is the first index past the shared layers.
    assert set(rep) == DIFF_KEYS and rep["diverge_at"] == 4 and len(rep["shared_layers"]) == 4


def test_an_image_built_on_another_is_said_to_add_layers(capsys, tmp_path):
    a, b = _based(tmp_path, 2)
    assert "(B adds 2 layers on top of all 2 layers of A)" in _diff_text(capsys, str(a), str(b))
    assert "(A adds 2 layers on top of all 2 layers of B)" in _diff_text(capsys, str(b), str(a))
    rep, _ = _diff_err(capsys, str(a), str(b))
    assert set(rep) == DIFF_KEYS and rep["diverge_at"] == 2
    assert [s["index_b"] for s in rep["shared_layers"]] == [0, 1]


def test_images_that_part_still_say_where(capsys):
    text = _diff_text(capsys, str(LEGACY), str(DATA / "buildah-overlay.oci.tar"))
    assert "(the chains part at layer 0: no common base)" in text


# -- the command line with several images in a source ---------------------------------------


def test_diff_names_the_image_it_took_from_a_multi_image_archive(capsys):
    rep, err = _diff_err(capsys, str(DOCKER_MULTI), str(LEGACY))
    assert rep["a"]["tags"] == ["fixture-layers:docker-legacy"]  # the first, as report takes
    assert f"A: {DOCKER_MULTI} holds 2 images; comparing image 0" in err
    assert "--image-a REF or --platform-a" in err
    assert "* 0: fixture-layers:docker-legacy" in err and "  1: fixture-layers:buildah" in err
    assert "B:" not in err  # B has one image: nothing to say


def test_diff_chooses_each_side_by_tag_position_or_platform(capsys):
    rep, err = _diff_err(capsys, str(DOCKER_MULTI), str(PODMAN_MULTI), "--image-a", "fixture-layers:buildah", "--image-b", "1")
    assert err == ""  # both chosen: no note
    assert rep["a"]["tags"] == ["fixture-layers:buildah"] and rep["b"]["tags"] == ["localhost/fixture-layers:buildah"]
    assert rep["files"] == [] and len(rep["shared_layers"]) == 4
    rep, err = _diff_err(capsys, str(PLATFORMS), str(PLATFORMS), "--platform-a", "linux/arm64", "--platform-b", "linux/amd64")
    assert (rep["a"]["platform"], rep["b"]["platform"]) == ("linux/arm64", "linux/amd64") and err == ""


def test_diff_of_an_image_that_matches_nothing_says_what_there_is(capsys):
    assert main(["diff", str(DOCKER_MULTI), str(LEGACY), "--image-a", "nosuch:tag"]) == 1
    assert "nosuch:tag" in capsys.readouterr().err


def test_diff_reads_an_oci_layout_folder(capsys):
    rep, _ = _diff_err(capsys, str(FOLDER), str(LEGACY))
    assert rep["a"]["format"] == "oci-layout" and rep["b"]["format"] == "docker-archive"
