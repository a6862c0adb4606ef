"""Why an image is big: dive's numbers exactly, this project's waste, advice, secrets, the CI gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.image.loader import load_image
from explorer.formats.source import open_source
from explorer.report import build_report
from tests.builders import d, docker_archive, f, hard, layer_tar, wh

DATA = Path(__file__).parent / "data"
DIVE = ["docker-legacy", "test-docker-image", "test-kaniko-image"]


def _load(path, parallel=False):
    src = open_source(str(path))
    with src:
        img = load_image(src, src.select(), parallel=parallel)
        return img, build_report(img, src.images, str(path))


@pytest.fixture
def spawn_always(monkeypatch):
    """Make the window's way (a new interpreter) run even for these small archives."""
    from explorer.image import parallel

    monkeypatch.setattr(parallel, "SPAWN_MIN_BYTES", 0)
    started = []
    real = parallel.LayersElsewhere.__init__

    def init(self, container, blobs, path=None, limit=1 << 62, dive_apart=False):
        if path is not None:  # a fresh interpreter, the window's way
            started.append(path)
        real(self, container, blobs, path, limit, dive_apart)

    monkeypatch.setattr(parallel.LayersElsewhere, "__init__", init)
    return started


@pytest.mark.parametrize("name", DIVE)
@pytest.mark.parametrize("parallel", [False, True, "process"])
def test_efficiency_equals_dive(name, parallel, spawn_always):
    img, rep = _load(DATA / f"{name}.tar", parallel)
    dive = json.loads((DATA / f"{name}.dive.json").read_text())
    eff = rep["image"]["efficiency"]
    assert abs(eff["score"] - dive["image"]["efficiencyScore"]) < 1e-9
    assert eff["wasted_bytes"] == dive["image"]["inefficientBytes"]
    want = sorted((x["file"], x["count"], x["sizeBytes"]) for x in dive["image"]["fileReference"])
    assert sorted((x["path"], x["count"], x["size"]) for x in eff["files"]) == want
    user = sum(layer["sizeBytes"] for layer in dive["layer"][1:])
    assert abs(eff["user_wasted_percent"] - dive["image"]["inefficientBytes"] / user) < 1e-12
    assert len(spawn_always) == (parallel == "process")


def test_dives_numbers_do_not_depend_on_the_order_a_folder_is_emptied_in(tmp_path):
    # A later layer deletes a folder's files one by one (and a whole folder): each whiteout
    # counts its file once more, at 0 bytes; the folder, never a leaf before, is not counted
    # twice. Emptied in the reverse of the order the files were added, this took a list scan
    # per file (77 s at 100,000 files).
    files = [f(f"data/f{i:05d}.bin", b"x" * (i % 7 + 1)) for i in range(3000)]
    keep = [d("keep"), f("keep/a", b"aa"), f("keep/b", b"bbb")]
    rows = [e.name for e in files]
    numbers = []
    for order in (rows, rows[::-1]):
        _img, rep = _image(tmp_path, [[d("data"), *files, *keep], [*(wh(p) for p in order), wh("keep")]])
        numbers.append(rep["image"]["efficiency"])
    assert numbers[0] == numbers[1]
    assert numbers[0]["wasted_bytes"] == sum(i % 7 + 1 for i in range(3000))
    by_path = {x["path"]: (x["count"], x["size"]) for x in numbers[0]["files"]}
    assert by_path["/data/f00001.bin"] == (2, 2) and len(by_path) == 3000


def test_numbers_are_computed_here_when_the_child_fails(tmp_path, spawn_always, monkeypatch):
    import multiprocessing.spawn

    monkeypatch.setattr(multiprocessing.spawn, "get_executable", lambda: b"/bin/false")  # the child exits 1 at once
    img, rep = _load(DATA / "docker-legacy.tar", "process")
    expected = _load(DATA / "docker-legacy.tar", False)[1]["image"]["efficiency"]
    assert len(spawn_always) == 1 and rep["image"]["efficiency"] == expected


def _image(tmp_path, layers, history=None):
    path = tmp_path / "img.tar"
    path.write_bytes(docker_archive([layer_tar(l) for l in layers], history=history))
    return _load(path)


def test_waste_has_a_file_a_layer_and_a_reason_for_every_byte(tmp_path):
    big = b"x" * 30_000
    same = b"dup" * 10_000
    img, rep = _image(tmp_path, [
        [f("tmp/build.tar", big), f("app/config", "v1"), f("app/tool", "#!/bin/sh", mode=0o644),
         f("a/one.bin", same), f("b/two.bin", same)],
        [wh("tmp/build.tar"), f("app/config", "v2!"), f("app/tool", "#!/bin/sh", mode=0o755)],
    ])
    waste = {(w["path"], w["kind"]): w for w in rep["image"]["waste"]["files"]}
    assert waste[("/tmp/build.tar", "removed")]["size"] == 30_000
    assert waste[("/tmp/build.tar", "removed")]["reason"] == "removed in layer 1"
    assert waste[("/app/config", "overwritten")]["size"] == 2
    assert "only to change its metadata" in waste[("/app/tool", "rewritten")]["reason"]
    dup = waste[("/b/two.bin", "duplicate")]
    assert dup["size"] == 30_000 and "same content as /a/one.bin" in dup["reason"]
    assert rep["image"]["waste"]["bytes"] == 30_000 + 2 + 9 + 30_000
    assert rep["image"]["waste"]["layers"][0]["bytes"] == 30_000 + 2 + 9 + 30_000
    assert rep["image"]["waste"]["merge_savings"] == [{"layers": [0, 1], "bytes": 30_011}]


def test_advice_names_the_step_and_the_bytes(tmp_path):
    history = [
        {"created_by": "COPY . /app"},
        {"created_by": "/bin/sh -c apt-get update && pip install -r requirements.txt"},
        {"created_by": "/bin/sh -c rm /tmp/build.tar && chmod +x /app/run"},
    ]
    img, rep = _image(tmp_path, [
        [d("app"), f("app/run", "#!/bin/sh", mode=0o644), f("app/requirements.txt", "flask")],
        [f("tmp/build.tar", b"b" * 50_000), f("var/lib/apt/lists/deb.debian.org_Packages", b"p" * 40_000)],
        [wh("tmp/build.tar"), f("app/run", "#!/bin/sh", mode=0o755)],
    ], history=history)
    kinds = {a["kind"]: a for a in rep["image"]["advice"]}
    assert kinds["remove-in-same-step"]["bytes"] == 50_000 and kinds["remove-in-same-step"]["layer"] == 1
    assert "/tmp/build.tar" in kinds["remove-in-same-step"]["paths"]
    assert kinds["package-cache"]["bytes"] == 40_000 and "apt package lists" in kinds["package-cache"]["title"]
    assert kinds["metadata-only"]["layer"] == 2
    assert kinds["layer-order"]["layer"] == 0
    assert rep["image"]["advice"] == sorted(rep["image"]["advice"], key=lambda a: -a["bytes"])


def test_package_caches_are_what_the_final_image_keeps_there(tmp_path):
    img, rep = _image(tmp_path, [
        [f("var/cache/apt/pkgcache.bin", b"c" * 3_000), f("var/cache/apt/archives/x.deb", b"d" * 5_000),
         f("usr/lib/python3/site/__pycache__/a.cpython-311.pyc", b"p" * 700),
         f("opt/app/__pycache__/deep/b.pyc", b"q" * 300), f("opt/app/pycache_note.txt", b"n" * 50),
         f("root/.cache/pip/wheel.whl", b"w" * 4_000)],
        [wh("root/.cache"), hard("var/cache/apt/again.bin", "var/cache/apt/pkgcache.bin"),
         f("home/dev/.npm/_cacache/index", b"i" * 900)],
    ])
    caches = {a["title"]: a for a in rep["image"]["advice"] if a["kind"] == "package-cache"}
    apt = caches["apt package cache left in the image (2 files)"]  # a second name holds no more bytes
    assert apt["bytes"] == 3_000 + 5_000 and apt["layer"] == 0
    assert apt["paths"] == ["/var/cache/apt/archives/x.deb", "/var/cache/apt/pkgcache.bin"]  # by path
    pyc = caches["Python bytecode (__pycache__) left in the image (2 files)"]
    assert pyc["bytes"] == 1_000
    assert caches["npm cache left in the image (1 files)"]["layer"] == 1
    assert not any("pip" in title for title in caches)  # removed in layer 1


def test_secrets_removed_later_are_found(tmp_path):
    key = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    img, rep = _image(tmp_path, [
        [f("root/.ssh/id_rsa", key), f("app/.env", "DB_PASSWORD=hunter2"), f("tmp/deploy", key),
         f("tmp/notes.txt", "nothing here")],
        [wh("root/.ssh/id_rsa"), wh("app/.env"), wh("tmp/deploy"), wh("tmp/notes.txt")],
    ])
    found = {s["path"]: s for s in rep["image"]["secrets"]}
    assert set(found) == {"/root/.ssh/id_rsa", "/app/.env", "/tmp/deploy"}
    assert found["/tmp/deploy"]["layer"] == 0 and found["/tmp/deploy"]["removed_in"] == 1
    assert "PRIVATE KEY" in found["/tmp/deploy"]["why"]


def test_secrets_in_gzip_layers_are_found_without_reading_them_again(tmp_path):
    from tests.builders import oci_archive

    key = b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"
    path = tmp_path / "oci.tar"
    path.write_bytes(oci_archive([layer_tar([f("srv/deploy.bin", key), f("srv/ok.txt", "fine")]),
                                  layer_tar([wh("srv/deploy.bin"), wh("srv/ok.txt")])]))
    img, rep = _load(path)
    assert [s["path"] for s in rep["image"]["secrets"]] == ["/srv/deploy.bin"]
    assert {l["compression"] for l in rep["image"]["layers"]} == {"gzip"}


def test_an_efficient_image_has_no_waste(tmp_path):
    img, rep = _image(tmp_path, [[f("a", "1")], [f("b", "2")]])
    assert rep["image"]["waste"]["bytes"] == 0 and rep["image"]["advice"] == []
    assert rep["image"]["efficiency"]["score"] == 1.0


def test_check_gate(tmp_path, capsys, monkeypatch):
    legacy = str(DATA / "docker-legacy.tar")
    monkeypatch.chdir(tmp_path)  # no stray .dive-ci
    assert main(["check", legacy, "--lowest-efficiency", "0.7"]) == 0
    assert "PASS: lowestEfficiency" in capsys.readouterr().out
    assert main(["check", legacy, "--lowest-efficiency", "0.8"]) == 1
    assert "FAIL: lowestEfficiency (threshold 0.8): 0.790845" in capsys.readouterr().out
    assert main(["check", legacy, "--highest-wasted-bytes", "500KB"]) == 1
    assert main(["check", legacy, "--highest-wasted-bytes", "1MiB"]) == 0
    capsys.readouterr()
    (tmp_path / ".dive-ci").write_text("rules:\n  lowestEfficiency: 0.75\n  highestWastedBytes: 20MB\n"
                                       "  highestUserWastedPercent: disabled\n")
    assert main(["check", legacy, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] and [r["rule"] for r in out["rules"]] == ["lowestEfficiency", "highestWastedBytes", "highestUserWastedPercent"]
    assert out["rules"][2]["skipped"] and out["rules"][2]["passed"]
    assert out["rules"][2]["value"] == out["efficiency"]["user_wasted_percent"] > 0  # its figure, though not judged
    assert main(["check", str(tmp_path / "missing.tar")]) == 2
    (tmp_path / "bad-ci").write_text("rules:\n  lowestEfficency: 0.9\n")
    assert main(["check", legacy, "--config", str(tmp_path / "bad-ci")]) == 1
    assert "unknown rule" in capsys.readouterr().err


def test_check_names_a_wrong_threshold_and_where_it_is_written_before_reading_the_image(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  lowestEfficiency: banana\n")
    missing = str(tmp_path / "not-there.tar")  # never opened: the rules are wrong first
    assert main(["check", missing, "--config", str(rules)]) == 1
    assert capsys.readouterr().err.strip() == f"layer-explorer: {rules}: lowestEfficiency: not a number: 'banana'"
    assert main(["check", missing, "--highest-wasted-bytes", "20XB"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("layer-explorer: --highest-wasted-bytes: not a size: '20XB'") and len(err.splitlines()) == 1
    assert main(["check", missing, "--lowest-efficiency", "1.5"]) == 1
    assert capsys.readouterr().err.strip() == "layer-explorer: --lowest-efficiency: 1.5 is not between 0 and 1"
    (tmp_path / ".dive-ci").write_text("rules:\n  highestUserWastedPercent: 1.5\n  highestWastedBytes: 20XB\n")
    assert main(["check", missing]) == 1
    assert ".dive-ci: highestUserWastedPercent: 1.5 is not between 0 and 1" in capsys.readouterr().err
    (tmp_path / ".dive-ci").write_text("rules:\n  highestWastedBytes: 20XB\n  lowestEfficiency: .95\n")
    assert main(["check", missing]) == 1
    assert ".dive-ci: highestWastedBytes: not a size: '20XB'" in capsys.readouterr().err
    (tmp_path / ".dive-ci").write_text("rules:\n  highestWastedBytes: Disabled\n  lowestEfficiency: .95\n"
                                       "  highestUserWastedPercent: 0.1\n")
    assert main(["check", missing]) == 2  # every one of dive's forms is taken: then the source
    assert main(["check", missing, "--highest-user-wasted-percent", "0.2"]) == 2  # the option wins: then the source


def test_sizes_like_dive():
    from explorer.check import parse_bytes

    assert parse_bytes("20MB") == 20_000_000 and parse_bytes("512KiB") == 524_288 and parse_bytes("1.5GB") == 1_500_000_000
    # the rest of what dive's parser takes: thousands separators, and peta and exa, short and long
    assert parse_bytes("20,000,000") == 20_000_000 and parse_bytes("2Ti") == 2 * 1024**4 and parse_bytes("1pb") == 1000**5
    assert parse_bytes("1 EiB") == 1024**6 and parse_bytes("3e") == 3 * 1000**6 and parse_bytes("7") == 7
    with pytest.raises(Exception):
        parse_bytes("lots")


def test_waiting_for_the_child_ends_when_the_load_is_cancelled(tmp_path, monkeypatch):
    import os
    import time

    from explorer.image import parallel
    from explorer.model.errors import Cancelled
    from explorer.model.progress import Monitor

    import multiprocessing

    slow = tmp_path / "slow-python"
    slow.write_text("#!/bin/sh\nexec sleep 60\n")
    os.chmod(slow, 0o755)
    monkeypatch.setattr(multiprocessing.spawn, "get_executable", lambda: os.fsencode(slow))  # an interpreter that never answers
    with open_source(str(DATA / "docker-legacy.tar")) as src:
        blobs = [l.blob for l in src.images[0].locator.layers]
        child = parallel.LayersElsewhere(src.container, blobs, str(DATA / "docker-legacy.tar"))
        proc = child.proc
        assert proc is not None
        monitor = Monitor()
        monitor.cancelled = True
        start = time.monotonic()
        with pytest.raises(Cancelled):
            child.result(monitor)
        child.cancel()
        assert time.monotonic() - start < 5 and proc.exitcode is not None  # killed and reaped



def test_each_secret_form_is_found_and_plain_text_is_not():
    from explorer.model.secrets import SECRET_CONTENT

    forms = [b"-----BEGIN OPENSSH PRIVATE KEY-----", b"aws_secret_access_key = x", b'"_authToken": "x"',
             b"ghp_" + b"a" * 36, b"xoxb-123", b"xoxp-456"]
    for form in forms:
        found = SECRET_CONTENT.search(b"config\n" * 50 + form + b"\n")
        assert found is not None and found.group(0) in form
    for near in [b"PRIVATE KEY", b"ghp_short", b"xoxa-1", b"aws_secret", b"authToken"]:
        assert SECRET_CONTENT.search(b"text " + near + b" text") is None
