"""Packages per layer, checked against databases the real tools wrote and what those tools said.

The archives in tests/data/packages were built by running dpkg, rpm, apk, pip and npm into a
folder, one step a layer; the expected files hold each tool's own listing after each layer
(see tests/data/packages/README.md).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.formats import packages as db
from explorer.formats.source import open_source
from explorer.image.loader import load_image

DATA = Path(__file__).parent / "data" / "packages"
MANAGERS = {"dpkg": "dpkg", "rpm-sqlite": "rpm", "apk": "apk", "pip": "pip", "npm": "npm"}


def _report(capsys, archive: Path) -> dict:
    assert main(["report", "--json", "--no-cache", str(archive)]) == 0
    return json.loads(capsys.readouterr().out)["image"]


def _installed(expected_layer: dict, manager: str) -> set[tuple[str, str]]:
    """(name, version) the tool listed as installed after a layer (dpkg: status ``ii``)."""
    return {(p["name"], p["version"]) for p in expected_layer["packages"]
            if manager != "dpkg" or p.get("status", "ii").startswith("ii")}


@pytest.mark.parametrize("fixture", sorted(MANAGERS))
def test_each_layer_agrees_with_the_package_tool(capsys, fixture):
    manager = MANAGERS[fixture]
    expected = json.loads((DATA / f"{fixture}.expected.json").read_text())
    img = _report(capsys, DATA / f"{fixture}.docker.tar")
    names: list[tuple[str, str]] = []  # a list: npm may hold one name and version in two folders
    for layer, want in zip(img["layers"], expected["layers"]):
        did = layer["packages"]
        for x in did["removed"]:
            names.remove((x["name"], x["version"]))
        for x in did["changed"]:
            names.remove((x["name"], x["from"]))
            names.append((x["name"], x["version"]))
        for x in did["added"]:
            names.append((x["name"], x["version"]))
        assert all(x["manager"] == manager for x in did["added"] + did["removed"] + did["changed"])
        assert sorted(names) == sorted(_installed(want, manager) if manager != "npm" else
                                       [(p["name"], p["version"]) for p in want["packages"]]), layer["index"]
    assert sorted((p["name"], p["version"]) for p in img["packages"]) == sorted(names)


@pytest.mark.parametrize("fixture", sorted(MANAGERS))
def test_final_packages_weigh_what_the_snapshot_holds(capsys, fixture):
    expected = json.loads((DATA / f"{fixture}.expected.json").read_text())
    img = _report(capsys, DATA / f"{fixture}.docker.tar")
    last = [p for p in expected["layers"][-1]["packages"] if "final" in p]
    assert last
    ours = {(p["name"], p["version"]): p for p in img["packages"]}
    for want in last:
        got = ours[(want["name"], want["version"])]
        # every listed path found (through /bin -> usr/bin), each once; bytes of the regular files
        assert (got["files"], got["size"]) == (want["final"]["exist"], want["final"]["bytes"]), want["name"]
        assert got["arch"] == want.get("arch")


def test_dpkg_layers_say_what_was_installed_upgraded_removed_and_purged(capsys):
    img = _report(capsys, DATA / "dpkg.docker.tar")
    did = [l["packages"] for l in img["layers"]]
    assert {x["name"] for x in did[1]["added"]} == {"hostname", "sensible-utils", "tree"}
    assert did[3]["changed"] == [{"manager": "dpkg", "name": "fixture-tool", "version": "2.0", "from": "1.0"}]
    assert [x["name"] for x in did[4]["removed"]] == ["fixture-extra"]  # dpkg -r: config files stay, not installed
    assert [x["name"] for x in did[5]["removed"]] == ["tree"]  # dpkg -P
    assert did[6] == {"added": [], "removed": [], "changed": []}  # purging what was removed changes nothing installed
    tool = next(p for p in img["packages"] if p["name"] == "fixture-tool")
    assert tool["layer"] == 3  # the layer that upgraded it


def test_text_report_sums_up_packages_per_layer(capsys):
    assert main(["report", "--text", "--no-cache", str(DATA / "dpkg.docker.tar")]) == 0
    text = capsys.readouterr().out
    assert "Packages (3: dpkg 3):" in text
    assert "~fixture-tool 1.0 -> 2.0" in text
    assert "-tree" in text
    # the last layer writes /app/data.bin (100 KiB) that no package lists
    last = [line for line in text.splitlines() if line.startswith("   7 ")][-1]
    assert "102.4 kB" in last


def test_packages_come_back_from_the_index_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path))
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    archive = DATA / "pip.docker.tar"
    src = open_source(str(archive))
    first = load_image(src, src.select())
    from explorer.image import index_cache

    index_cache.save(src, first)
    again = load_image(src, src.select())
    assert again.from_cache and again.packages == first.packages


def test_rpm_reads_the_sqlite_database_rpm_leaves_in_wal_mode():
    src = open_source(str(DATA / "rpm-sqlite.docker.tar"))
    image = load_image(src, src.select(), cache=False)
    names = {(i.package.name, i.package.version, i.package.arch) for i in image.packages.installed}
    assert names == {("fixture-tool", "2.0-1", "noarch")}
    assert not image.packages.warnings


def test_broken_databases_are_skipped_with_a_word_not_an_error():
    assert db.dpkg_installed(b"\xff\xfe garbage\n\nPackage: x\nStatus: install ok installed\nVersion: 1\n") == [
        db.Package("dpkg", "x", "1", None)]
    assert db.apk_installed(b"P:a\nV:1\n\nnot a record\n") == [db.Package("apk", "a", "1", None)]
    for junk in (b"not sqlite at all", b"", b"SQLite format 3\0" + bytes(200)):
        found, problems = db.rpm_sqlite(junk)
        assert found == [] and problems, junk[:20]
    assert db.pip_record(b"a.py,,\n" + b"x" * 200_000 + b",,\n", "/site") == ("/site/a.py",)  # csv's field limit
    negative = struct.pack(">ii", 2, 16) + struct.pack(">iiii", 1000, 6, 0, 1) + struct.pack(">iiii", 1003, 4, 4, -1)
    assert db.rpm_header(negative + b"name\0" + bytes(11)).name == "name"  # a negative count is no epoch
    assert db.rpm_header(b"\0\0\0\x05\0\0\0\x10") is None  # counts that run past the blob
    assert db.npm_manifest(b"[1, 2]", "/app/node_modules/x") is None
    assert db.npm_manifest(b"{" * 100_000, "/app/node_modules/x") is None
    assert db.python_metadata(b"no headers here") is None


def test_pip_record_paths_leave_site_packages_as_written():
    record = b"six.py,sha256=x,1\n../../../bin/tool,,\n"
    assert db.pip_record(record, "/usr/local/lib/python3.11/site-packages") == (
        "/usr/local/lib/python3.11/site-packages/six.py", "/usr/local/bin/tool")


def test_diff_lists_packages_added_removed_and_upgraded(tmp_path, capsys):
    # two versions of one image: the dpkg fixture after its upgrade and purge, and before them
    archive = DATA / "dpkg.docker.tar"
    assert main(["diff", "--json", str(archive), str(archive)]) == 0
    same = json.loads(capsys.readouterr().out)["packages"]
    assert same == {"added": [], "removed": [], "changed": []}
    assert main(["diff", "--json", str(DATA / "pip.docker.tar"), str(DATA / "npm.docker.tar")]) == 0
    rep = json.loads(capsys.readouterr().out)["packages"]
    assert {(p["manager"], p["name"], p["version"]) for p in rep["added"]} == {
        ("npm", "debug", "4.3.4"), ("npm", "ms", "2.1.2"), ("npm", "ms", "2.1.3")}
    assert {p["name"] for p in rep["removed"]} == {"python-dotenv", "six", "termcolor"}


def test_upgrades_between_two_images_show_both_versions():
    from dataclasses import replace

    from explorer.image.packages import difference

    src = open_source(str(DATA / "dpkg.docker.tar"))
    report = load_image(src, src.select(), cache=False).packages
    # the same image with fixture-tool at 1.0, as it stood before its upgrade layer
    older = replace(report, installed=tuple(
        replace(i, package=replace(i.package, version="1.0")) if i.package.name == "fixture-tool" else i
        for i in report.installed))
    changed = difference(older, report).changed
    assert [(c.package.name, c.old, c.package.version) for c in changed] == [("fixture-tool", "1.0", "2.0")]
    assert not difference(older, report).added and not difference(older, report).removed


def test_a_database_that_cannot_be_read_keeps_the_packages_it_had(tmp_path, capsys):
    from tests.builders import d, docker_archive, f, layer_tar

    status = (b"Package: one\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n\n")
    layers = [layer_tar([d("var"), d("var/lib"), d("var/lib/dpkg"), f("var/lib/dpkg/status", status)]),
              layer_tar([d("var/lib/rpm"), f("var/lib/rpm/rpmdb.sqlite", b"")]),  # an empty rpm database
              layer_tar([f("var/lib/dpkg/status", b"\xff" * 10)])]
    path = tmp_path / "odd.tar"
    path.write_bytes(docker_archive(layers))
    img = _report(capsys, path)
    assert [p["name"] for p in img["packages"]] == []  # layer 2's status lists no installed package
    assert any("rpm database" in w for w in img["warnings"])


@pytest.mark.parametrize("fixture", sorted(MANAGERS))
def test_paths_searched_a_few_at_a_time_find_the_same_packages(capsys, monkeypatch, fixture):
    from explorer.image import packages

    whole = _report(capsys, DATA / f"{fixture}.docker.tar")
    monkeypatch.setattr(packages, "TEXT_PATHS", 2)  # every database and its neighbours split across texts
    parts = _report(capsys, DATA / f"{fixture}.docker.tar")
    assert whole["packages"] and parts["packages"] == whole["packages"]
    assert [l["packages"] for l in parts["layers"]] == [l["packages"] for l in whole["layers"]]
