"""Images straight from a local engine or a registry, against real Docker and a real registry.

Where a component cannot start here, its tests are skipped with the reason, never passed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.formats.source import open_source
from explorer.image.loader import load_image
from explorer.report import build_report
from tests.services import Dockerd, FakeRegistry, PodmanService, Registry

DATA = Path(__file__).parent / "data"
LEGACY = DATA / "docker-legacy.tar"


def _start(service):
    try:
        service.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        service.stop()
        pytest.skip(f"{type(service).__name__} cannot run here: {exc}")
    return service


@pytest.fixture(scope="module")
def dockerd():
    d = _start(Dockerd())
    try:
        d.load(LEGACY)
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def registry():
    r = _start(Registry())
    try:
        try:
            r.push(LEGACY, "fixture/legacy:v1")
            r.push(DATA / "multiplatform.oci.tar", "fixture/multi:latest", fmt="oci-archive")
            r.push(DATA / "buildah-overlay.oci-zstd.tar", "fixture/zstd:v1", fmt="oci-archive")
        except (RuntimeError, subprocess.SubprocessError) as exc:
            pytest.skip(f"cannot push to the test registry: {exc}")
        yield r
    finally:
        r.stop()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


def _report(capsys, *argv) -> dict:
    code = main(["report", "--json", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _same_image(a: dict, b: dict) -> None:
    """What must not depend on where the image came from: files, layers, history, changes."""
    x, y = a["image"], b["image"]
    assert x["files"] == y["files"]
    assert x["changes"] == y["changes"]
    assert x["history"] == y["history"]
    keys = ("diff_id", "size", "entries", "history", "created_by", "added", "modified", "removed")
    assert [{k: l[k] for k in keys} for l in x["layers"]] == [{k: l[k] for k in keys} for l in y["layers"]]
    assert x["config_digest"] == y["config_digest"]


def test_docker_engine_source_equals_the_archive(dockerd, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{dockerd.socket}")
    from_engine = _report(capsys, "docker://fixture-layers:docker-legacy")
    assert from_engine["source"]["path"] == "docker://fixture-layers:docker-legacy"
    _same_image(from_engine, _report(capsys, str(LEGACY)))
    assert main(["cat", "docker://fixture-layers:docker-legacy", "/data/modify-me.txt"]) == 0
    assert capsys.readouterr().out == "original\nmodified in layer 3\n"


def test_podman_source_equals_the_archive(capsys, monkeypatch):
    podman = _start(PodmanService())
    try:
        podman.load(LEGACY)
        monkeypatch.setenv("CONTAINER_HOST", f"unix://{podman.socket}")
        from_podman = _report(capsys, "podman://fixture-layers:docker-legacy")
        _same_image(from_podman, _report(capsys, str(LEGACY)))
        assert from_podman["image"]["tags"] == ["localhost/fixture-layers:docker-legacy"]
    finally:
        podman.stop()


def test_engine_lists_images_and_says_what_is_missing(dockerd, capsys, monkeypatch):
    from explorer.formats.engine import DOCKER, Engine

    monkeypatch.setenv("DOCKER_HOST", f"unix://{dockerd.socket}")
    images = Engine(DOCKER).images()
    assert any("fixture-layers:docker-legacy" in i.tags for i in images)
    assert main(["report", "docker://nope:missing"]) == 2
    err = capsys.readouterr().err
    assert "no image 'nope:missing'" in err and "docker pull" in err


def test_no_engine_answers(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    assert main(["report", "docker://alpine:latest"]) == 2
    assert "no docker engine answers" in capsys.readouterr().err


def test_registry_source_equals_the_archive_and_is_cached(registry, capsys, tmp_path):
    src = f"registry://{registry.host}/fixture/legacy:v1"
    first = _report(capsys, "--insecure", src)
    _same_image(first, _report(capsys, str(LEGACY)))
    assert first["source"]["format"] == "registry"
    blobs = sorted((tmp_path / "cache" / "blobs" / "sha256").iterdir())
    assert len(blobs) == 4 and not [b for b in blobs if ".partial" in b.name]
    inodes = {b.name: b.stat().st_ino for b in blobs}
    _report(capsys, "--insecure", src)  # a second open reads the cache, downloads nothing
    assert {b.name: b.stat().st_ino for b in (tmp_path / "cache" / "blobs" / "sha256").iterdir()} == inodes


def test_registry_zstd_layers_read_like_the_archive(registry, capsys):
    # skopeo copies the blobs as they are: the registry serves buildah's zstd layers
    got = _report(capsys, "--insecure", f"registry://{registry.host}/fixture/zstd:v1")
    assert [l["compression"] for l in got["image"]["layers"]] == ["zstd"] * 4
    _same_image(got, _report(capsys, str(DATA / "buildah-overlay.oci-zstd.tar")))


def test_registry_index_with_platforms(registry, capsys):
    src = f"registry+http://{registry.host}/fixture/multi:latest"
    rep = _report(capsys, "--platform", "linux/arm64", src)
    assert rep["image"]["platform"] == "linux/arm64"
    assert sorted(i["platform"] for i in rep["images"]) == ["linux/amd64", "linux/arm64"]
    _same_image(rep, _report(capsys, "--platform", "linux/arm64", str(DATA / "multiplatform.oci.tar")))


def test_registry_missing_tag(registry, capsys):
    assert main(["report", "--insecure", f"registry://{registry.host}/fixture/legacy:nope"]) == 2
    assert "no tag 'nope'" in capsys.readouterr().err


def test_registry_with_basic_auth(tmp_path, capsys):
    import shutil

    if shutil.which("htpasswd") is None:
        pytest.skip("htpasswd is not installed (Debian package apache2-utils)")
    line = subprocess.run(["htpasswd", "-Bbn", "tester", "s3cret"], capture_output=True, text=True, check=True).stdout
    reg = _start(Registry(htpasswd=line))
    try:
        reg.push(LEGACY, "private/legacy:v1", creds="tester:s3cret")
        src = f"registry+http://{reg.host}/private/legacy:v1"
        assert main(["report", src]) == 2
        assert "needs a login" in capsys.readouterr().err
        config = tmp_path / "docker-config"
        config.mkdir(exist_ok=True)
        import base64

        def login(password: str) -> None:
            auth = base64.b64encode(f"tester:{password}".encode()).decode()
            (config / "config.json").write_text(json.dumps({"auths": {reg.host: {"auth": auth}}}))

        login("wrong")
        assert main(["report", src]) == 2
        assert "refused the credentials" in capsys.readouterr().err
        login("s3cret")
        _same_image(_report(capsys, src), _report(capsys, str(LEGACY)))
    finally:
        reg.stop()


@pytest.fixture
def fake(tmp_path):
    f = FakeRegistry(DATA / "umoci.oci-layout", "team/app", "v1")
    yield f
    f.stop()


def test_token_auth_and_a_dropped_connection(fake, capsys, tmp_path):
    src = f"registry+http://{fake.host}/team/app:v1"
    manifest = json.loads((DATA / "umoci.oci-layout" / "blobs" / fake.manifest_digest.replace(":", "/")).read_bytes())
    big = max(manifest["layers"], key=lambda l: l["size"])["digest"]
    fake.drop_blob = big
    assert main(["report", src]) == 2
    err = capsys.readouterr().err
    assert "connection dropped" in err and big in err
    cached = tmp_path / "cache" / "blobs" / "sha256"
    assert not (cached / big.split(":")[1]).exists()
    assert not [p for p in cached.iterdir() if ".partial" in p.name]  # nothing half-written is kept
    assert fake.tokens_given >= 1  # it went through the token service
    fake.drop_blob = None
    _same_image(_report(capsys, src), _report(capsys, str(DATA / "umoci.oci-layout")))


def test_open_from_engine_dialog_lists_and_opens(dockerd, qtbot, monkeypatch, tmp_path, qtmodeltester):
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{dockerd.socket}")
    from explorer.app import create_main_window
    from explorer.ui.engine_dialog import EngineDialog

    dialog = EngineDialog()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.model.rowCount() > 0, timeout=20_000)
    qtmodeltester.check(dialog.model, force_py=True)
    dialog.filter.setText("LEGACY")
    assert dialog.proxy.rowCount() == 1
    dialog.table.selectRow(0)
    assert dialog.source() == "docker://fixture-layers:docker-legacy"
    window = create_main_window()
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.image_loaded, timeout=60_000) as blocker:
        window.open_paths([dialog.source()])
    assert blocker.args[0].image.tags == ("fixture-layers:docker-legacy",)
    assert window.recent_files()[0] == "docker://fixture-layers:docker-legacy"


@pytest.fixture
def engine_window(dockerd, qtbot, monkeypatch, tmp_path):
    """A window on the test engine, whose own process must not build any tree."""
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{dockerd.socket}")
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    from explorer.app import create_main_window
    from explorer.image import load_worker

    def not_here(*_a, **_k):
        raise AssertionError("the window's process built the tree")

    monkeypatch.setattr(load_worker, "load_here", not_here)
    window = create_main_window()
    qtbot.addWidget(window)
    return window


def test_an_engine_image_loads_in_the_loading_process_from_a_kept_copy(engine_window, qtbot, tmp_path):
    from explorer.image.content import read_entry

    window = engine_window
    scratch = tmp_path / "cache" / "tmp"
    for round in (1, 2):  # the second from the index cache: the image's ID names its index
        with qtbot.waitSignal(window.image_loaded, timeout=60_000) as blocker:
            window.open_paths(["docker://fixture-layers:docker-legacy"])
        view = blocker.args[0]
        assert view.image.from_cache and view.image.tags == ("fixture-layers:docker-legacy",)
        assert view.source.info.path == "docker://fixture-layers:docker-legacy"
        kept = list(scratch.glob("engine-*.tar"))
        assert len(kept) == 1 and view.source.container.spool == str(kept[0])
        path = "/data/modify-me.txt"
        with open_source(str(LEGACY)) as archive:
            image = load_image(archive, archive.select(), cache=False)
            want = read_entry(archive, image, image.tree.entry_at(path))
        assert want and read_entry(view.source, view.image, view.image.tree.entry_at(path)) == want  # from the copy
        window.close_tab(window.tabs.indexOf(view))
        qtbot.waitUntil(lambda: not list(scratch.glob("engine-*")), timeout=10_000)  # the copy goes with its tab
    assert len([p for p in (tmp_path / "cache" / "index").iterdir() if not p.name.startswith(".")]) == 1


def test_engine_dialog_says_when_no_engine_answers(qtbot, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    from explorer.ui.engine_dialog import EngineDialog

    dialog = EngineDialog()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "no docker engine answers" in dialog.status.text(), timeout=20_000)
    assert dialog.source() is None


def test_registry_shows_layers_and_history_while_blobs_download(fake, qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    from explorer.app import create_main_window

    window = create_main_window()
    qtbot.addWidget(window)
    gate = __import__("threading").Event()
    real = fake.handle

    def slow(h):  # hold the layer blobs until the preview has been seen
        if "/blobs/" in h.path and "json" not in h.headers.get("Accept", "") and h.path.rsplit("/", 1)[1] != _config_digest():
            gate.wait(30)
        real(h)

    def _config_digest():
        manifest = json.loads((DATA / "umoci.oci-layout" / "blobs" / fake.manifest_digest.replace(":", "/")).read_bytes())
        return manifest["config"]["digest"]

    fake.handle = slow
    window.open_paths([f"registry+http://{fake.host}/team/app:v1"])
    # (the preview goes into its tab at the turn of the event loop after it is built)
    qtbot.waitUntil(lambda: window.opening.preview is not None and window.tabs.indexOf(window.opening.preview) >= 0, timeout=20_000)
    preview = window.opening.preview
    assert preview.layer_model.rowCount() == 4 and preview.history_model.rowCount() == 5  # all + 3 layers
    assert "downloading" in window.tabs.tabText(window.tabs.indexOf(preview))
    # the blobs are downloaded and indexed by a loading process, not by the window's
    qtbot.waitUntil(lambda: [p.name for p in __import__("multiprocessing").active_children()] == ["layer-explorer load"],
                    timeout=10_000)
    gate.set()
    with qtbot.waitSignal(window.image_loaded, timeout=60_000) as blocker:
        pass
    assert window.tabs.count() == 1 and window.tabs.widget(0) is blocker.args[0]
    assert blocker.args[0].tree_model.rowCount() > 0


SCRIPT = ("echo new > /data/new.txt && echo more >> /data/copied.txt && rm /data/secret && "
          "rm -rf /opt/replaceme && chmod 600 /etc/group && mkdir -p /var/cache/app && echo x > /var/cache/app/x")


@pytest.fixture(scope="module")
def container(dockerd):
    try:
        dockerd.run("writer", "fixture-layers:docker-legacy", SCRIPT)
    except OSError as exc:
        pytest.skip(f"dockerd cannot run a container here: {exc}")
    return "writer"


def test_container_layer_equals_what_the_engine_reports(dockerd, container, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{dockerd.socket}")
    from explorer.formats.engine import DOCKER, Engine
    from explorer.image.loader import load_image
    from explorer.formats.source import open_source

    engine_says = {(p, {0: "C", 1: "A", 2: "D"}[k]) for p, k in Engine(DOCKER).changes(container)}
    with open_source(f"container://{container}") as src:
        img = load_image(src, src.select())
        top = len(img.layers) - 1
        assert "writable layer" in img.layers[top].created_by
        changed = dict(img.tree.changes[top])
        ours = set()
        for path, change in changed.items():
            parent = path.rsplit("/", 1)[0] or "/"
            if change == "removed" and changed.get(parent) != "removed":
                ours.add((path, "D"))  # docker lists only the top of a removed subtree
            elif change == "added":
                ours.add((path, "A"))
            elif change == "modified":
                ours.add((path, "C"))
        touched = {(p, "C") for p in img.tree.versions if any(v.layer == top and v.change == "unchanged" for v in img.tree.history(p))}
        assert {x for x in engine_says if x[1] in "AD"} == {x for x in ours if x[1] in "AD"}
        assert {x for x in engine_says if x[1] == "C"} == {x for x in ours if x[1] == "C"} | touched
        # the merged view is what the container sees, and its files read like any other
        assert img.tree.entry_at("/data/secret") is None and img.tree.entry_at("/opt/replaceme") is None
    assert main(["cat", f"container://{container}", "/data/new.txt"]) == 0
    assert capsys.readouterr().out == "new\n"
    assert main(["cat", f"container://{container}", "/data/copied.txt"]) == 0
    assert capsys.readouterr().out.endswith("more\n")


def test_a_container_loads_in_the_loading_process_from_kept_copies(engine_window, container, qtbot, tmp_path):
    from explorer.image.content import read_entry

    with open_source(f"container://{container}", keep=True) as src:  # the same copies, read in this process
        want = build_report(load_image(src, src.select(), cache=False), src.images, "x")
    window = engine_window
    with qtbot.waitSignal(window.image_loaded, timeout=60_000) as blocker:
        window.open_paths([f"container://{container}"])
    view = blocker.args[0]
    got = build_report(view.image, view.source.images, "x")
    assert view.image.from_cache and got == want
    scratch = tmp_path / "cache" / "tmp"
    assert len(list(scratch.glob("engine-*.tar"))) == 2  # the image's save and the container's export
    assert read_entry(view.source, view.image, view.image.tree.entry_at("/data/new.txt")) == b"new\n"
    window.close_tab(window.tabs.indexOf(view))
    qtbot.waitUntil(lambda: not list(scratch.glob("engine-*")), timeout=10_000)
    index = tmp_path / "cache" / "index"  # a running container changes: its index is not kept
    assert not index.exists() or not [p for p in index.iterdir() if not p.name.startswith(".")]


def test_missing_container(dockerd, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{dockerd.socket}")
    assert main(["report", "container://nope"]) == 2
    assert "no container 'nope'" in capsys.readouterr().err


def test_open_container_dialog(dockerd, container, qtbot, monkeypatch, tmp_path, qtmodeltester):
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{dockerd.socket}")
    from explorer.app import create_main_window
    from explorer.ui.engine_dialog import EngineDialog

    dialog = EngineDialog(containers=True)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.model.rowCount() > 0, timeout=20_000)
    qtmodeltester.check(dialog.model, force_py=True)
    dialog.filter.setText(container)
    dialog.table.selectRow(0)
    assert dialog.source() == f"container://{container}"
    window = create_main_window()
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.image_loaded, timeout=60_000) as blocker:
        window.open_paths([dialog.source()])
    view = blocker.args[0]
    top = len(view.image.layers) - 1
    view.set_layer(top)
    view.set_mode("diff")
    assert view.tree_model.index_for_path("/data/new.txt").isValid()


def test_podman_container_layer(capsys, monkeypatch):
    podman = _start(PodmanService())
    try:
        podman.load(LEGACY)
        podman.run("pw", "fixture-layers:docker-legacy", "true", start=False)  # created, never run
        monkeypatch.setenv("CONTAINER_HOST", f"unix://{podman.socket}")
        from explorer.formats.engine import PODMAN, Engine
        from explorer.image.loader import load_image
        from explorer.formats.source import open_source

        engine_says = {p for p, _k in Engine(PODMAN).changes("pw")}
        with open_source("podman-container://pw") as src:
            img = load_image(src, src.select())
            top = len(img.layers) - 1
            assert "container pw (created)" in img.layers[top].created_by
            touched = {p for p in img.tree.versions if any(v.layer == top for v in img.tree.history(p))}
            assert touched == engine_says  # what podman set up for the container (/etc), nothing else
    finally:
        podman.stop()


def test_updates_takes_a_repositorys_newest_tags_from_a_registry(registry, capsys):
    # made 2026-11-30, 2024-01-01 and 2026-11-27: tag names sort otherwise than their times
    for archive, tag in ((DATA / "hardlinks.docker.tar", "a-newest"), (DATA / "buildah-overlay.oci.tar", "b-oldest"),
                         (LEGACY, "c-middle")):
        registry.push(archive, f"fixture/app:{tag}", fmt="oci-archive" if archive.name.endswith(".oci.tar") else "docker-archive")
    assert main(["updates", "--json", "--insecure", "--tags", "2", f"registry://{registry.host}/fixture/app"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert [v["source"].rsplit(":", 1)[1] for v in rep["versions"]] == ["c-middle", "a-newest"]  # oldest first
    assert len(rep["steps"]) == 1 and rep["steps"][0]["download_bytes"] > 0


def test_a_fleet_of_every_image_of_the_local_engine(dockerd, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{dockerd.socket}")
    dockerd.load(Path(__file__).parent / "data" / "updates" / "multi.docker.tar")  # two more images
    assert main(["fleet", "--json", "docker://"]) == 0
    rep = json.loads(capsys.readouterr().out)
    tags = sorted(t for img in rep["images"] for t in img["tags"])
    assert "fixture-layers:docker-legacy" in tags and "localhost/svc-a:latest" in tags and "localhost/svc-d:latest" in tags
    assert all(img["source"].startswith("docker://") for img in rep["images"])
    assert rep["shared_bytes"] > 0  # svc-a and svc-d share their base
