"""The inspect view and command: the config, the identifiers, the documents as stored."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from explorer.cli import main
from tests.expected import parse

DATA = Path(__file__).parent / "data"


def _inspect(capsys, *argv):
    assert main(["inspect", "--json", *argv]) == 0
    (obj,) = json.loads(capsys.readouterr().out)
    return obj


def test_inspect_matches_the_config_and_the_diff_ids(capsys):
    obj = _inspect(capsys, "--documents", str(DATA / "docker25-classic.tar"))
    assert main(["inspect", "--documents", str(DATA / "docker25-classic.tar")]) == 0  # JSON without --json too
    assert json.loads(capsys.readouterr().out) == [obj]
    expected = parse(DATA / "docker-legacy.expected.txt")["images"][0]
    assert obj["RootFS"]["Layers"] == expected.diff_ids
    assert obj["Id"] == "sha256:6747344d75a403075913b1d07d179af8fa6eb3fa44b8a23dc93a8726ea647dd6"
    assert obj["Config"]["WorkingDir"] == "/data" and obj["Config"]["User"] == "0:0"
    assert obj["Config"]["Env"] == ["PATH=/bin:/usr/local/bin", "FIXTURE=layers", "STAGE=modify"]
    assert (obj["Os"], obj["Architecture"]) == ("linux", "amd64")
    # the documents exactly as stored: their digests are the ones that name them
    config_doc = obj["Documents"][f"config ({obj['Id'][:19]})"]  # a short id, as the manifest's
    assert "sha256:" + hashlib.sha256(config_doc.encode()).hexdigest() == obj["Id"]
    manifest_doc = next(v for k, v in obj["Documents"].items() if k.startswith("manifest ("))
    assert "sha256:" + hashlib.sha256(manifest_doc.encode()).hexdigest() == obj["ManifestDigest"]
    assert {"index.json", "manifest.json"} <= set(obj["Documents"])
    assert obj["RepoDigests"] == [f"fixture-layers@{obj['ManifestDigest']}"]


def test_chain_ids_and_layer_blobs(capsys):
    obj = _inspect(capsys, str(DATA / "buildah-overlay.oci.tar"))
    ids = obj["RootFS"]["Layers"]
    chain = [ids[0]]
    for d in ids[1:]:
        chain.append("sha256:" + hashlib.sha256(f"{chain[-1]} {d}".encode()).hexdigest())
    assert obj["ChainIDs"] == chain
    assert [b["MediaType"] for b in obj["LayerBlobs"]] == ["application/vnd.oci.image.layer.v1.tar+gzip"] * 4


def test_inspect_text(capsys):
    assert main(["inspect", str(DATA / "docker-legacy.tar")]) == 0
    text = capsys.readouterr().out
    assert "Working dir:   /data" in text and "org.example.fixture=layer-explorer" in text
    assert "chain   sha256:" in text
