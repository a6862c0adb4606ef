"""``inspect``'s Size as docker prints it, and ``check``'s lines for skipped rules."""

from __future__ import annotations

import json
from pathlib import Path

from explorer.cli import main

DATA = Path(__file__).parent / "data"
LEGACY = DATA / "docker-legacy.tar"


def _inspect(capsys, source: Path) -> dict:
    assert main(["inspect", "--json", str(source)]) == 0
    (obj,) = json.loads(capsys.readouterr().out)
    return obj


# ``docker image inspect -f '{{.Size}}'`` after ``docker load`` of each archive, Docker Engine
# 20.10.24 (Debian docker.io) with the overlay2 driver: symlink targets count, each hard-linked
# file once (tests/data/provenance/hardlinks.docker.tar.info.txt).
DOCKER_SIZES = {"docker-legacy.tar": 2507286, "hardlinks.docker.tar": 2082473}


def test_inspect_size_is_what_docker_prints(capsys):
    for name, size in DOCKER_SIZES.items():
        assert _inspect(capsys, DATA / name)["Size"] == size, name


def test_inspect_size_leaves_the_report_layer_sizes_alone(capsys):
    _inspect(capsys, LEGACY)
    assert main(["report", "--json", str(LEGACY)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [l["size"] for l in report["image"]["layers"]] == [1982381, 524440, 42, 27]  # regular files' bytes


def test_inspect_text_prints_the_size(capsys):
    assert main(["inspect", str(LEGACY)]) == 0
    assert "Size:          2,507,286 bytes" in capsys.readouterr().out


def test_check_says_why_a_rule_was_skipped(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray .dive-ci
    (tmp_path / "rules").write_text("rules:\n  lowestEfficiency: 0.5\n  highestWastedBytes: disabled\n"
                                    "  highestUserWastedPercent: disabled\n")
    assert main(["check", str(LEGACY), "--config", str(tmp_path / "rules")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  SKIP: highestWastedBytes: rule disabled" in lines
    assert "  SKIP: highestUserWastedPercent: rule disabled" in lines
    assert "  PASS: lowestEfficiency (threshold 0.5): 0.790845" in lines
    assert not [line for line in lines if line.rstrip().endswith(":")]


def test_check_with_dives_defaults_skips_the_disabled_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["check", str(LEGACY)]) == 1  # dive's defaults: 0.9 efficiency fails
    out = capsys.readouterr().out
    assert "  SKIP: highestWastedBytes: rule disabled\n" in out and "Result: FAIL" in out


def test_inspect_size_of_a_reopened_index_is_docker_s_and_decodes_no_folder(tmp_path, monkeypatch):
    from explorer.formats.source import open_source
    from explorer.image import index_cache
    from explorer.image.inspect import docker_size
    from explorer.image.loader import load_image

    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    for name, size in DOCKER_SIZES.items():
        with open_source(str(DATA / name)) as src:
            index_cache.save(src, load_image(src, src.select()))
        with open_source(str(DATA / name)) as src:
            image = load_image(src, src.select())
            assert image.from_cache
            assert docker_size(image) == size, name
            assert image.tree.versions.chunks.kids == {}, name  # read from the file, nothing kept
