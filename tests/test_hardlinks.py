"""Hard links and symlinked folders on a real Docker image, checked against what containers saw.

``hardlinks.docker.tar`` and its expected listing were made with Docker 20.10 (overlay2): the
listing after every layer is ``docker export`` of a container of that layer prefix, and its
inode groups come from ``stat`` in a running container (tests/data/provenance).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.image.content import open_entry
from explorer.image.extract import extract, select_entries
from explorer.image.loader import load_image
from explorer.formats.source import open_source
from explorer.report import build_report
from explorer.tree.diff import ADDED, MODIFIED, REMOVED
from explorer.tree.resolve import link_target, resolve
from explorer.tree.views import DIFF, MERGED, TreeView

DATA = Path(__file__).parent / "data"
ARCHIVE = str(DATA / "hardlinks.docker.tar")


def expected() -> dict[int, tuple[dict[str, tuple], list[set[str]]]]:
    """Per layer: path -> (type, mode, owner, size, sha256, link), and the inode groups."""
    out: dict[int, tuple[dict[str, tuple], list[set[str]]]] = {}
    layer = -1
    for line in (DATA / "hardlinks.docker.expected.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("== after layer "):
            layer = int(line.split()[-1])
            out[layer] = ({}, [])
        elif line.startswith("inode-group\t"):
            out[layer][1].append(set(line.split("\t")[1:]))
        else:
            path, kind, mode, owner, size, sha, link = line.split("\t")
            out[layer][0][path] = (kind, mode, owner, int(size), sha, link)
    return out


@pytest.fixture(scope="module")
def image():
    with open_source(ARCHIVE) as src:
        yield src, load_image(src, src.select())


def read(src, img, entry) -> bytes:
    reader = open_entry(src, img, entry)
    return b"".join(iter(lambda: reader(1 << 20), b""))


def test_every_layer_matches_what_a_container_saw(image):
    src, img = image
    tree = img.tree
    for layer, (want, groups) in expected().items():
        got = {e.path: e for e in tree.merged(layer)}
        assert sorted(got) == sorted(want), f"paths after layer {layer}"
        for path, (kind, mode, owner, size, sha, link) in want.items():
            e = got[path]
            is_file = kind in ("file", "hardlink")
            assert (e.type in ("file", "hardlink")) == is_file, path
            if not is_file:
                assert e.type == kind, path
            assert f"{e.mode:04o}" == mode, (layer, path)
            assert f"{e.uid}:{e.gid}" == owner, (layer, path)
            if is_file:
                assert e.size == size, (layer, path)
                assert hashlib.sha256(read(src, img, e)).hexdigest() == sha, (layer, path)
            elif kind == "symlink":
                assert e.target == link, (layer, path)
        # names of one file: exactly the container's inode groups
        by_inode: dict[tuple, set[str]] = {}
        for e in got.values():
            key = tree.inode(e)
            if key is not None:
                by_inode.setdefault(key, set()).add(e.path)
        ours = sorted((g for g in by_inode.values() if len(g) > 1), key=sorted)
        assert ours == sorted(groups, key=sorted), f"inode groups after layer {layer}"
        # and a name is labelled a hardlink only while it shares its file with its target
        for e in got.values():
            if e.type == "hardlink":
                assert any(e.path in g and e.target in g for g in groups), (layer, e.path, e.target)


def test_report_labels_links_only_while_they_hold(image, tmp_path):
    src, img = image
    files = {f["path"]: f for f in build_report(img, src.images, ARCHIVE)["image"]["files"]}
    # z-link's target was rewritten, y-link's removed, x-link's chmod-ed: plain files now
    for name, content in (("z-link", "first\n"), ("y-link", "bee\n"), ("x-link", "cee\n")):
        assert files[f"/data/{name}"]["type"] == "file", name
        assert files[f"/data/{name}"]["target"] is None
        assert files[f"/data/{name}"]["size"] == len(content)
    assert files["/data/a-target"]["size"] == len("second\n")
    assert files["/data/c-file"]["mode"] == "0600" and files["/data/x-link"]["mode"] == "0644"
    pair = {files["/data/keep"]["type"], files["/data/keep-link"]["type"]}
    assert pair == {"file", "hardlink"}


def test_gaining_a_hard_link_is_not_a_change(image):
    _, img = image
    changes = dict(img.tree.changes[5])
    assert changes == {"/data/keep-link": ADDED}  # Docker stored /data/keep again: not modified
    assert dict(img.tree.changes[2]) == {"/data/a-target": MODIFIED}  # z-link untouched


def test_waste_counts_only_bytes_no_name_still_needs(image):
    src, img = image
    wasted = {(w.path, w.layer): w for w in img.waste.files}
    # a-target's first version lives on as z-link, b-target's as y-link, c-file's as x-link
    for path in ("/data/a-target", "/data/b-target", "/data/c-file"):
        assert (path, 1) not in wasted, path
    # /data/keep's first copy is needed by nothing: layer 5 stored the file again
    assert wasted[("/data/keep", 1)].size == len("keep\n")
    report = build_report(img, src.images, ARCHIVE)
    assert report["image"]["waste"]["bytes"] == sum(w.size for w in img.waste.files)


def test_folder_sizes_count_each_file_once(image):
    _, img = image
    blob = 100_000
    for layer in (1, None):
        totals = TreeView(img.tree, layer, MERGED).totals()
        assert totals["/data/big"] == blob
    assert TreeView(img.tree, 1, DIFF).totals()["/data/big"] == blob


def test_changes_view_shows_what_a_folder_replaced_by_a_file_held(image):
    _, img = image
    view = TreeView(img.tree, 6, DIFF)
    row = view.row("/data/dir-to-file")
    assert row.change == MODIFIED and row.entry.type == "file"
    assert view.holds(row.path, row.entry.type, row.change)
    below = {r.path: r.change for r in view.children("/data/dir-to-file")}
    assert below == {"/data/dir-to-file/g": REMOVED, "/data/dir-to-file/sub": REMOVED}
    assert {r.path for r in view.children("/data/dir-to-file/sub")} == {"/data/dir-to-file/sub/f"}
    assert not TreeView(img.tree, 6, MERGED).holds(row.path, row.entry.type, row.change)


def test_paths_resolve_through_symlinked_folders(image):
    _, img = image
    found = resolve(img.tree, "/bin/hello")
    assert found.path == "/usr/bin/hello" and found.entry.type == "file"
    assert found.route() == "/bin -> usr/bin"
    assert resolve(img.tree, "/lib/extra/x.txt").path == "/usr/lib/extra/x.txt"
    assert resolve(img.tree, "/bin/cat").path == "/usr/bin/busybox"  # the last link too
    assert resolve(img.tree, "/bin/cat", follow_last=False).path == "/usr/bin/cat"
    assert resolve(img.tree, "/bin/../../../lib/os-release").path == "/usr/lib/os-release"  # .. stops at /
    gone = resolve(img.tree, "/bin/nothing-here")
    assert gone.entry is None and gone.path == "/usr/bin/nothing-here"
    link = img.tree.entry_at("/sbin")
    assert link_target(img.tree, link).path == "/usr/bin"
    assert resolve(img.tree, "/data/a-target/x").problem == "/data/a-target is not a folder"


def test_cat_follows_symlinked_folders(capfdbinary):
    assert main(["cat", ARCHIVE, "/bin/hello"]) == 0
    out, err = capfdbinary.readouterr()
    assert out == b"hello\n"
    assert b"/bin -> usr/bin" in err
    assert main(["cat", ARCHIVE, "/data/z-link"]) == 0
    assert capfdbinary.readouterr().out == b"first\n"
    assert main(["cat", ARCHIVE, "/bin/nothing-here"]) == 1
    assert b"no such file" in capfdbinary.readouterr().err


def test_extraction_links_only_names_of_one_file(image, tmp_path):
    src, img = image
    for layer, target in ((None, tmp_path / "final"), (1, tmp_path / "one")):
        extract(src, img, select_entries(img, "/data", layer), str(target), base="/data")
        data = target / "data"
        assert (data / "z-link").read_bytes() == (b"first\n")
        if layer is None:
            assert (data / "a-target").read_bytes() == b"second\n"
            assert not os.path.samefile(data / "a-target", data / "z-link")
            assert not os.path.samefile(data / "c-file", data / "x-link")
            assert os.stat(data / "x-link").st_mode & 0o777 == 0o644
            assert os.path.samefile(data / "keep", data / "keep-link")
        else:
            assert os.path.samefile(data / "a-target", data / "z-link")
        assert os.path.samefile(data / "big" / "blob", data / "big" / "blob-link")


def test_extract_a_path_through_a_symlinked_folder(tmp_path, capsys):
    assert main(["extract", ARCHIVE, "/lib/extra", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "extra" / "x.txt").read_text() == "lib\n"
    assert "/lib -> usr/lib" in capsys.readouterr().err


def test_json_report_of_the_real_image_is_stable(tmp_path, capsys):
    assert main(["report", "--json", "--no-cache", ARCHIVE]) == 0
    report = json.loads(capsys.readouterr().out)
    files = {f["path"]: f for f in report["image"]["files"]}
    links = {p: f["target"] for p, f in files.items() if f["type"] == "hardlink"}
    assert set(links) | set(links.values()) == {"/data/big/blob", "/data/big/blob-link", "/data/keep",
                                                 "/data/keep-link"}


def test_a_reopened_index_knows_the_same_links(tmp_path, monkeypatch):
    from explorer.image import index_cache

    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    with open_source(ARCHIVE) as src:
        fresh = load_image(src, src.select())
        index_cache.save(src, fresh)
    with open_source(ARCHIVE) as src:
        cached = load_image(src, src.select())
        assert cached.from_cache
        for layer in range(len(cached.layers)):
            assert TreeView(cached.tree, layer, MERGED).totals() == TreeView(fresh.tree, layer, MERGED).totals()
            assert sorted(cached.tree.merged(layer)) == sorted(fresh.tree.merged(layer))
        assert cached.waste.bytes == fresh.waste.bytes


# -- built cases: what the real image does not hold ------------------------------------------

def _built(tmp_path, layers):
    from tests.builders import docker_archive, layer_tar

    path = tmp_path / "built.tar"
    path.write_bytes(docker_archive([layer_tar(l) for l in layers]))
    src = open_source(str(path))
    return src, load_image(src, src.select())


def test_names_of_one_file_are_one_file_and_links_to_it(tmp_path):
    from tests.builders import f, hard, wh

    # b names a's file; a is removed, then a names b's: never two links pointing at each other
    src, img = _built(tmp_path, [[f("a", "x"), hard("b", "a")], [wh("a")], [hard("a", "b")]])
    with src:
        files = {e.path: e for e in img.tree.merged()}
        kinds = sorted((e.type, e.target) for e in files.values())
        assert kinds == [("file", None), ("hardlink", "/a")]  # a, b -> a: the first name is the file
        extract(src, img, select_entries(img), str(tmp_path / "out"))
        assert os.path.samefile(tmp_path / "out" / "a", tmp_path / "out" / "b")


def test_a_file_counts_once_in_every_folder_that_holds_one_of_its_names(tmp_path):
    from tests.builders import d, f, hard

    src, img = _built(tmp_path, [[d("p"), d("q"), f("p/x", "y" * 1000), hard("q/x", "p/x"), hard("p/z", "p/x")]])
    with src:
        totals = TreeView(img.tree, None, MERGED).totals()
        assert (totals["/p"], totals["/q"], totals["/"]) == (1000, 1000, 1000)


def test_only_what_a_layer_stored_links_as_the_layer_did(tmp_path):
    from tests.builders import f, hard

    # b names a's first file; the same layer then writes a again: b keeps "old"
    src, img = _built(tmp_path, [[f("a", "old"), hard("b", "a"), f("a", "new!")]])
    with src:
        extract(src, img, select_entries(img, "/", 0, only_layer=True), str(tmp_path / "out"))
        out = tmp_path / "out"
        assert (out / "a").read_text() == "new!" and (out / "b").read_text() == "old"


def test_waste_names_the_layer_that_let_the_last_name_go(tmp_path):
    from tests.builders import f, hard, wh

    src, img = _built(tmp_path, [[f("a", "x" * 100), hard("b", "a")], [wh("a")], [f("b", "Y")]])
    with src:
        (wasted,) = img.waste.files
        assert (wasted.path, wasted.layer, wasted.size, wasted.by_layer) == ("/a", 0, 100, 2)
        assert "/b" in wasted.reason
        assert img.waste.merge_savings == [0, 0]  # merging layers 0 and 1 would keep it all the same


def test_extracting_a_symlink_by_its_path_writes_the_link_and_with_a_slash_where_it_leads(tmp_path, capsys):
    assert main(["extract", ARCHIVE, "/bin", "-o", str(tmp_path / "link")]) == 0
    assert os.readlink(tmp_path / "link" / "bin") == "usr/bin"
    assert "ask for /bin/ to extract what it leads to" in capsys.readouterr().err
    assert main(["extract", ARCHIVE, "/bin/", "-o", str(tmp_path / "folder")]) == 0
    assert (tmp_path / "folder" / "bin" / "hello").read_text() == "hello\n"
    assert "/bin -> usr/bin" in capsys.readouterr().err


def test_a_buildah_image_is_the_filesystem_podman_gives_its_container(capsys):
    # Built with buildah (chroot isolation) on the sample: a hard link broken by a chmod's copy-up,
    # files written through a relative and an absolute symlinked folder, a folder removed and
    # made again (opaque); the reference is podman's export of a container made from it.
    want = json.loads((DATA / "copyup.oci.expected.json").read_text())
    assert main(["report", "--json", "--no-cache", str(DATA / "copyup.oci.tar")]) == 0
    files = {f["path"]: f for f in json.loads(capsys.readouterr().out)["image"]["files"] if f["path"] != "/"}
    got = {p: ["file" if f["type"] == "hardlink" else f["type"], f["mode"], f"{f['uid']}:{f['gid']}", f["size"],
               f["target"] if f["type"] == "symlink" else None] for p, f in files.items()}
    assert got == want["files"]
    groups: dict[str, set[str]] = {}
    for p, f in files.items():
        if f["type"] == "hardlink":
            groups.setdefault(f["target"], {f["target"]}).add(p)
    assert sorted(sorted(g) for g in groups.values()) == want["hard_links"]
    assert files["/w/b/hard2"]["mode"] == "4755" and files["/w/a/f"]["mode"] == "0644"  # two files since the chmod
