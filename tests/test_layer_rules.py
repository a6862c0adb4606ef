"""Each layer-application rule (FORMATS.md section 4) on an archive built for it."""

from __future__ import annotations

import json
import tarfile

from explorer.cli import main
from explorer.image.loader import load_image
from explorer.formats.source import open_source
from explorer.report import build_report
from tests.builders import d, docker_archive, f, hard, layer_tar, members_of, oci_archive, opq, sym, tar_of, wh


def report_of(tmp_path, layers, **kw):
    """The report object of a docker-archive made of these layers."""
    path = tmp_path / "image.tar"
    path.write_bytes(docker_archive([layer_tar(l) if isinstance(l, list) else l for l in layers], **kw))
    with open_source(str(path)) as src:
        img = load_image(src, src.select())
        return build_report(img, src.images, str(path)), img


def files_of(report):
    return {x["path"]: x for x in report["image"]["files"]}


def changes_of(report, k):
    return {c["path"]: c["change"] for c in report["image"]["changes"][k]}


def test_whiteout_removes_lower_file_but_not_same_layer_one(tmp_path):
    rep, _ = report_of(tmp_path, [
        [d("a"), f("a/gone", "1"), f("a/back", "old")],
        [wh("a/gone"), f("a/back", "new!"), wh("a/back")],  # the layer's own a/back stays
    ])
    files = files_of(rep)
    assert "/a/gone" not in files
    assert files["/a/back"]["size"] == 4 and files["/a/back"]["layer"] == 1
    assert changes_of(rep, 1) == {"/a/gone": "removed", "/a/back": "modified"}


def test_whiteout_of_directory_lists_every_removed_path(tmp_path):
    rep, _ = report_of(tmp_path, [
        [d("x"), d("x/y"), f("x/y/z", "z"), f("keep", "k")],
        [wh("x")],
    ])
    assert set(files_of(rep)) == {"/keep"}
    assert changes_of(rep, 1) == {"/x": "removed", "/x/y": "removed", "/x/y/z": "removed"}
    assert rep["image"]["layers"][1]["removed"] == 3


def test_opaque_whiteout_applies_first_wherever_it_stands(tmp_path):
    rep, _ = report_of(tmp_path, [
        [d("o"), f("o/old1", "1"), d("o/sub"), f("o/sub/old2", "2")],
        # the marker comes after the layer's own child: the child must survive
        [d("o"), f("o/new", "n"), opq("o")],
    ])
    files = files_of(rep)
    assert {p for p in files if p.startswith("/o/")} == {"/o/new"}
    assert ".wh..wh..opq" not in json.dumps(rep)
    assert changes_of(rep, 1) == {"/o/new": "added", "/o/old1": "removed", "/o/sub": "removed", "/o/sub/old2": "removed"}


def test_opaque_whiteout_at_root_hides_everything_below(tmp_path):
    rep, _ = report_of(tmp_path, [[f("a", "1"), d("b")], [f(".wh..wh..opq"), f("c", "3")]])
    assert set(files_of(rep)) == {"/c"}


def test_directory_over_directory_keeps_children_and_takes_new_attributes(tmp_path):
    rep, _ = report_of(tmp_path, [
        [d("etc", mode=0o755), f("etc/passwd", "root")],
        [d("etc", mode=0o700, uid=5)],
    ])
    files = files_of(rep)
    assert files["/etc"]["mode"] == "0700" and files["/etc"]["uid"] == 5
    assert "/etc/passwd" in files
    assert changes_of(rep, 1) == {"/etc": "modified"}


def test_file_becomes_directory_without_whiteout(tmp_path):
    rep, _ = report_of(tmp_path, [[f("srv", "was a file")], [d("srv"), f("srv/inside", "now")]])
    files = files_of(rep)
    assert files["/srv"]["type"] == "dir"
    assert changes_of(rep, 1) == {"/srv": "modified", "/srv/inside": "added"}


def test_file_under_a_lower_file_turns_it_into_a_directory(tmp_path):
    # no directory entry at all: the parent is implicit and replaces the file
    rep, _ = report_of(tmp_path, [[f("p", "file")], [f("p/child", "c")]])
    files = files_of(rep)
    assert files["/p"]["type"] == "dir" and "/p/child" in files


def test_directory_replaced_by_file_drops_its_children(tmp_path):
    rep, _ = report_of(tmp_path, [[d("q"), f("q/a", "a")], [f("q", "now a file")]])
    files = files_of(rep)
    assert files["/q"]["type"] == "file" and "/q/a" not in files
    assert changes_of(rep, 1) == {"/q": "modified", "/q/a": "removed"}


def test_missing_parent_directories_exist_implicitly(tmp_path):
    rep, _ = report_of(tmp_path, [[f("deep/er/file.txt", "x")]])
    files = files_of(rep)
    assert files["/deep"]["type"] == "dir" and files["/deep/er"]["type"] == "dir"
    assert changes_of(rep, 0) == {"/deep": "added", "/deep/er": "added", "/deep/er/file.txt": "added"}


def test_entries_through_a_link_follow_it_as_it_is_when_each_is_placed(tmp_path):
    # a layer puts files through s, points s elsewhere, puts more, then makes s a folder
    rep, _ = report_of(tmp_path, [
        [d("a"), d("b"), sym("s", "a"), d("deep/x/y")],
        [f("s/f1", "1"), f("s/f2", "2"), sym("s", "b"), f("s/f3", "3"), sym("deep/x/y/l", "/a"), f("deep/x/y/l/f4", "4")],
        [wh("s"), d("s"), f("s/f5", "5"), f("deep/x/y/l/f6", "6")],
    ])
    files = files_of(rep)
    assert {"/a/f1", "/a/f2", "/b/f3", "/a/f4", "/s/f5", "/a/f6"} <= set(files)
    assert not {"/b/f1", "/a/f3", "/s/f1", "/s/f3", "/deep/x/y/l/f4", "/deep/x/y/l/f6"} & set(files)
    assert files["/s"]["type"] == "dir"


def test_hardlink_to_lower_layer_takes_target_size(tmp_path):
    rep, _ = report_of(tmp_path, [[f("bin/tool", "0123456789")], [hard("bin/alias", "bin/tool")]])
    alias = files_of(rep)["/bin/alias"]
    assert alias["type"] == "hardlink" and alias["target"] == "/bin/tool" and alias["size"] == 10


def test_aufs_metadata_is_never_a_file(tmp_path):
    rep, _ = report_of(tmp_path, [[d(".wh..wh.plnk"), f(".wh..wh.plnk/123.456", "x"), f(".wh..wh.aufs", ""), f("real", "r")]])
    assert set(files_of(rep)) == {"/real"}
    assert rep["image"]["layers"][0]["entries"] == 4  # counted as tar entries all the same


def test_names_are_normalised(tmp_path):
    rep, _ = report_of(tmp_path, [[d("."), f("./a", "1"), f("/b", "2"), d("c//d/"), f("c//d//e", "3")]])
    assert set(files_of(rep)) == {"/a", "/b", "/c", "/c/d", "/c/d/e"}


def test_unsafe_names_are_warned_and_never_placed(tmp_path):
    rep, img = report_of(tmp_path, [[f("ok", "1"), f("../evil", "x"), f("a/../../evil2", "y")]])
    assert set(files_of(rep)) == {"/ok"}
    assert any("unsafe" in w for w in rep["image"]["warnings"])
    assert img.tree.unsafe[0] == ["../evil", "a/../../evil2"]


def test_invalid_utf8_names_round_trip_byte_for_byte(tmp_path):
    raw = b"caf\xe9-\xff.txt"
    name = raw.decode("utf-8", "surrogateescape")
    rep, _ = report_of(tmp_path, [[f(name, "latin-1 name")]])
    (entry,) = rep["image"]["files"]
    assert entry["path"].encode("utf-8", "surrogateescape") == b"/" + raw
    # through JSON and back, as a script reading the report would
    again = json.loads(json.dumps(rep))["image"]["files"][0]["path"]
    assert again.encode("utf-8", "surrogateescape") == b"/" + raw


def test_pax_and_gnu_long_names_and_link_targets(tmp_path):
    long_dir = "d" * 120
    long_name = f"{long_dir}/{'n' * 150}.txt"
    long_target = "/" + "t" * 200
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        layer = layer_tar([d(long_dir), f(long_name, "x"), sym("link", long_target)], fmt=fmt)
        rep, _ = report_of(tmp_path, [layer])
        files = files_of(rep)
        assert "/" + long_name in files
        assert files["/link"]["target"] == long_target


def test_xattrs_are_kept_per_entry(tmp_path):
    cap = "\x01\x00\x00\x02 \x00\x00\x00"
    rep, img = report_of(tmp_path, [[f("bin/ping", "p", pax={"SCHILY.xattr.security.capability": cap, "SCHILY.xattr.user.note": "hi"})]])
    entry = img.tree.entry_at("/bin/ping")
    assert entry.xattrs == {"security.capability": cap.encode("utf-8", "surrogateescape"), "user.note": b"hi"}


def test_same_path_twice_in_one_layer_last_wins(tmp_path):
    rep, _ = report_of(tmp_path, [[f("dup", "first"), f("dup", "second!")]])
    assert files_of(rep)["/dup"]["size"] == 7


def test_modification_rules(tmp_path):
    rep, _ = report_of(tmp_path, [
        [f("same", "abc", mtime=1), f("content", "abc"), f("size", "abc"), f("mode", "abc"), f("owner", "abc"), sym("ln", "a")],
        [f("same", "abc", mtime=2), f("content", "xyz"), f("size", "abcd"), f("mode", "abc", mode=0o600),
         f("owner", "abc", uid=1000), sym("ln", "b")],
    ])
    assert changes_of(rep, 1) == {"/content": "modified", "/size": "modified", "/mode": "modified",
                                  "/owner": "modified", "/ln": "modified"}
    # the identical rewrite is not a change, but it is now that layer's copy
    assert files_of(rep)["/same"]["layer"] == 1


def test_content_compared_in_compressed_layers_too(tmp_path):
    rep, _ = report_of(tmp_path, [[f("c", "abc"), f("s", "abc")], [f("c", "xyz"), f("s", "abc")]], gzip_layers=True)
    assert changes_of(rep, 1) == {"/c": "modified"}
    assert {l["compression"] for l in rep["image"]["layers"]} == {"gzip"}


def test_merged_view_at_each_layer(tmp_path):
    _, img = report_of(tmp_path, [[f("a", "1")], [f("a", "22")], [wh("a")]])
    tree = img.tree
    assert tree.entry_at("/a", 0).size == 1
    assert tree.entry_at("/a", 1).size == 2
    assert tree.entry_at("/a", 2) is None
    assert [(v.layer, v.change) for v in tree.history("/a")] == [(0, "added"), (1, "modified"), (2, "removed")]
    assert tree.children("/", 1) == ["a"] and tree.children("/", 2) == []


def test_whiteout_of_missing_path_is_harmless(tmp_path):
    rep, _ = report_of(tmp_path, [[f("a", "1")], [wh("never-there"), f("b", "2")]])
    assert set(files_of(rep)) == {"/a", "/b"}
    assert changes_of(rep, 1) == {"/b": "added"}


def test_empty_history_step_before_first_layer(tmp_path):
    history = [
        {"created_by": "ARG X", "empty_layer": True},
        {"created_by": "ADD rootfs"},
        {"created_by": "ENV A=1", "empty_layer": True},
        {"created_by": "RUN thing"},
    ]
    rep, _ = report_of(tmp_path, [[f("a", "1")], [f("b", "2")]], history=history)
    assert [h["layer"] for h in rep["image"]["history"]] == [None, 0, None, 1]
    assert [l["history"] for l in rep["image"]["layers"]] == [1, 3]
    assert [l["created_by"] for l in rep["image"]["layers"]] == ["ADD rootfs", "RUN thing"]


def test_history_that_disagrees_with_layers_is_reported_not_guessed(tmp_path):
    history = [{"created_by": "only one step"}]
    rep, _ = report_of(tmp_path, [[f("a", "1")], [f("b", "2")]], history=history)
    assert [h["layer"] for h in rep["image"]["history"]] == [None]
    assert [l["history"] for l in rep["image"]["layers"]] == [None, None]
    assert any("history" in w for w in rep["image"]["warnings"])


def test_empty_tar_layer_is_a_layer(tmp_path):
    rep, _ = report_of(tmp_path, [[f("a", "1")], []])
    layer = rep["image"]["layers"][1]
    assert (layer["entries"], layer["added"], layer["size"]) == (0, 0, 0)


def test_sizes_count_regular_files_only(tmp_path):
    rep, _ = report_of(tmp_path, [[d("d"), f("d/a", "12345"), sym("l", "d/a"), hard("h", "d/a"), f("e", "")]])
    layer = rep["image"]["layers"][0]
    assert layer["size"] == 5 and layer["entries"] == 5


def test_cli_report_round_trip(tmp_path, capsys):
    path = tmp_path / "img.tar"
    path.write_bytes(docker_archive([layer_tar([f("hello", "world")])]))
    assert main(["report", "--json", str(path)]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["schema"] == "layer-explorer.report/1"
    assert rep["image"]["files"][0]["path"] == "/hello"


def test_streamed_json_keeps_odd_names_exact(tmp_path):
    import io

    from explorer.report import write_json

    odd = [b"caf\xe9", b'quo"te', b"back\\slash", b"tab\there", "日本語".encode(), b"nl\nx"]
    names = [n.decode("utf-8", "surrogateescape") for n in odd]
    path = tmp_path / "odd.tar"
    first = layer_tar([f(n, "x") for n in names] + [sym("l", names[1])])
    path.write_bytes(docker_archive([first, layer_tar([f(n, "again") for n in names])]))  # all waste
    with open_source(str(path)) as src:
        img = load_image(src, src.select())
        out = io.StringIO()
        write_json(img, src.images, str(path), out)
        expected = build_report(img, src.images, str(path))
        assert sorted(w["path"] for w in expected["image"]["waste"]["files"]) == sorted("/" + n for n in names)
        assert out.getvalue() == json.dumps(expected) + "\n"


def _oci_with_extra_descriptors(extra: list[dict]) -> bytes:
    """An OCI archive whose index also lists the given descriptors (pointing at real blobs)."""
    import hashlib

    blobs = members_of(oci_archive([layer_tar([f("a", "1")])]))
    index = json.loads(blobs["index.json"])
    manifest_desc = index["manifests"][0]
    for desc in extra:
        desc = dict(desc)
        if desc.get("digest") == "SAME":
            desc.update(digest=manifest_desc["digest"], size=manifest_desc["size"])
        if desc.get("blob") is not None:
            data = desc.pop("blob")
            desc["digest"] = "sha256:" + hashlib.sha256(data).hexdigest()
            blobs["blobs/sha256/" + hashlib.sha256(data).hexdigest()] = data
        index["manifests"].append(desc)
    blobs["index.json"] = json.dumps(index).encode()
    return tar_of(blobs)


def test_attestation_manifests_are_labelled_not_offered(tmp_path):
    path = tmp_path / "attested.tar"
    path.write_bytes(_oci_with_extra_descriptors([{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "SAME",
        "platform": {"os": "unknown", "architecture": "unknown"},
        "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
    }]))
    with open_source(str(path)) as src:
        assert len(src.images) == 1
        assert any("attestation" in n for n in src.notes)


def test_empty_nested_index_is_harmless(tmp_path):
    nested = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    path = tmp_path / "nested.tar"
    path.write_bytes(_oci_with_extra_descriptors([{"mediaType": "application/vnd.oci.image.index.v1+json", "blob": nested}]))
    with open_source(str(path)) as src:
        assert len(src.images) == 1


def test_missing_platform_blobs_are_skipped_with_a_note(tmp_path):
    path = tmp_path / "partial.tar"
    path.write_bytes(_oci_with_extra_descriptors([{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + "ab" * 32, "size": 100,
        "platform": {"os": "linux", "architecture": "arm64"},
    }]))
    with open_source(str(path)) as src:
        assert [i.platform for i in src.images] == ["linux/amd64"]
        assert any("not in the archive" in n for n in src.notes)
