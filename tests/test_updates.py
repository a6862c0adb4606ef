"""updates and fleet, on series and fleets built by buildah, podman and skopeo with fixed
timestamps, against figures computed from their manifests (tests/data/updates/expected.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main

DATA = Path(__file__).parent / "data" / "updates"
EXPECTED = json.loads((DATA / "expected.json").read_text())


def _run(capsys, *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("series", ["app", "app-mixed"])
def test_each_update_downloads_the_layers_the_old_version_lacks(capsys, series):
    want = EXPECTED["series"][series]
    rep = _run(capsys, "updates", "--json", *(str(DATA / v) for v in want["versions"]))
    assert rep["schema"] == "layer-explorer.updates/1"
    assert [v["source"] for v in rep["versions"]] == [str(DATA / v) for v in want["versions"]]
    for got, step in zip(rep["steps"], want["steps"], strict=True):
        assert (got["download_bytes"], got["reused_bytes"]) == (step["download_bytes"], step["reused_bytes"])
        for layer, expected in zip(got["layers"], step["layers"], strict=True):
            assert (layer["diff_id"], layer["blob_size"], layer["new"]) == (
                expected["diff_id"], expected["blob_size"], expected["downloaded"])
            changed = expected.get("changed_files", [])
            assert layer["changed_paths"] == sorted(f["path"] for f in changed)
            assert layer["changed_bytes"] == sum(f["size"] for f in changed)
            if not layer["new"]:
                assert layer["changed_bytes"] == 0 and layer["changed_paths"] == []


def test_the_layer_every_update_downloads_for_one_small_file_is_to_be_split(capsys):
    versions = [str(DATA / v) for v in EXPECTED["series"]["app"]["versions"]]
    rep = _run(capsys, "updates", "--json", *versions)
    split = [a for a in rep["advice"] if a["kind"] == "split-layer"]
    assert [a["layer"] for a in split] == [2]
    advice = split[0]
    assert advice["paths"] == ["/app/config.yaml"]
    assert advice["bytes_per_update"] == 85504 and advice["changed_bytes_per_update"] < 200
    assert advice["saving_per_update"] > 80_000
    assert {a["kind"] for a in rep["advice"]} <= {"split-layer", "merge", "reorder"}
    assert main(["updates", "--text", *versions]) == 0
    text = capsys.readouterr().out
    assert "split-layer: each update re-downloads layer 2" in text and "/app/config.yaml" in text
    # the download is compressed, the files are not: the share of the files' bytes, with both sizes
    assert "(85.5 kB) though only 0.13% of its files' bytes changed (106 B of 82.0 kB)" in advice["detail"]
    assert "layer 2: 85.5 kB downloaded, 1 file changed (106 B): /app/config.yaml" in text


def test_a_fleet_counts_each_layer_once_and_finds_its_bases(capsys):
    want = EXPECTED["fleet"]
    sources = ["svc-a.oci.tar", "svc-b.oci.tar", "svc-c.oci.tar", "multi.docker.tar"]
    rep = _run(capsys, "fleet", "--json", *(str(DATA / s) for s in sources))
    assert rep["schema"] == "layer-explorer.fleet/1"
    assert len(rep["images"]) == len(want["images"]) == 5  # the archive with two images counts each
    assert (rep["total_bytes"], rep["unique_bytes"], rep["shared_bytes"]) == (
        want["total_bytes"], want["unique_bytes"], want["shared_bytes"])
    assert {l["diff_id"]: len(l["used_by"]) for l in rep["layers"]} == {
        l["diff_id"]: len(l["used_by"]) for l in want["layers"]}
    got = {tuple(b["layers"]): len(b["used_by"]) for b in rep["bases"]}
    assert got == {tuple(b["diff_ids"]): len(b["images"]) for b in want["bases"]}
    by_depth = {len(b["layers"]): b["name"] for b in rep["bases"]}
    # the base svc-a and svc-b name in their OCI manifests' annotations, and share exactly
    assert by_depth[2] == "localhost/fleet-base:2"
    assert by_depth[3] == "localhost/svc-a:latest"  # one image, twice: its own name
    assert "/os" in by_depth[1]  # the images disagree on a name: the step that made it


def test_shares_and_changes_are_said_in_plain_words():
    from explorer.image.updates import _share, changed_files

    assert [_share(x) for x in (0.5, 0.1, 0.099, 0.013, 0.0013, 0.0001, 0.00001)] == [
        "50%", "10%", "9.9%", "1.3%", "0.13%", "0.01%", "under 0.01%"]
    assert changed_files({"changed_paths": [], "changed_bytes": 0}) == "no regular file added or changed"
    assert changed_files({"changed_paths": ["/a", "/b"], "changed_bytes": 0}) == "2 files changed (0 B)"


def test_a_fleet_tells_the_platforms_of_one_name_apart(capsys):
    rep = _run(capsys, "fleet", "--json", str(DATA.parent / "multiplatform.oci.tar"))
    assert [i["platform"] for i in rep["images"]] == ["linux/amd64", "linux/arm64"]
    assert main(["fleet", "--text", str(DATA.parent / "multiplatform.oci.tar")]) == 0
    rows = capsys.readouterr().out.splitlines()[1:3]
    assert "linux/amd64" in rows[0] and "linux/arm64" in rows[1]


def test_updates_needs_two_versions_and_says_so(capsys):
    assert main(["updates", str(DATA / "app-v1.docker.tar")]) == 1
    assert "at least two versions" in capsys.readouterr().err


def test_versions_are_indexed_once_in_workers_and_opened_from_their_index(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path))
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    versions = [str(DATA / v) for v in EXPECTED["series"]["app"]["versions"]]
    first = _run(capsys, "updates", "--json", *versions)
    assert len(list((tmp_path / "index").glob("*"))) >= 4  # one index per version, written by the workers
    again = _run(capsys, "updates", "--json", *versions)
    assert again == first


def test_a_version_that_cannot_be_read_is_one_sentence_from_the_worker_too(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)  # the worker pool reads them
    bad = tmp_path / "notes.tar"
    bad.write_text("not an image")
    assert main(["updates", "--json", str(DATA / "app-v1.docker.tar"), str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "internal error" not in err and len(err.strip().splitlines()) == 1


def test_versions_are_sorted_naturally_in_the_window():
    pytest.importorskip("PySide6.QtWidgets")
    from explorer.ui.main_window import natural

    assert sorted(["app-v10.tar", "app-v2.tar", "app-v1.tar"], key=natural) == ["app-v1.tar", "app-v2.tar", "app-v10.tar"]


def test_a_layer_rebuilt_only_because_an_earlier_one_changed_is_to_be_built_before_it():
    from types import SimpleNamespace

    from explorer.image.updates import update_advice

    # three layers; each update changes layer 1, and layer 2 comes out the same, downloaded anew
    image = SimpleNamespace(layers=[SimpleNamespace(size=1000), SimpleNamespace(size=500), SimpleNamespace(size=4000)])
    versions = [SimpleNamespace(image=image) for _ in range(3)]
    layer = lambda new, blob: {"new": new, "blob_size": blob, "changed_bytes": 0, "changed_paths": []}  # noqa: E731
    steps = [{"to": to, "layers": [layer(False, 900), layer(True, 400), layer(True, 3000)]} for to in (1, 2)]
    rebuilt = {(1, 2): True, (2, 2): True}
    reorder = [a for a in update_advice(versions, steps, rebuilt) if a["kind"] == "reorder"]
    assert len(reorder) == 1 and reorder[0]["layer"] == 2 and reorder[0]["below"] == 1 and reorder[0]["updates"] == 2
    assert "build its step before layer 1's (or layer 1's after it)" in reorder[0]["detail"]
    assert "3.0 kB per update" in reorder[0]["detail"]
