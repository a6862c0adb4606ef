"""A search of an image reopened from its index file reads the file's path table: it finds
exactly what asking each path finds, and decodes no folder but those of its matches."""

from __future__ import annotations

import collections
import hashlib
import mmap
import os
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from explorer.formats.source import open_source
from explorer.image import index_cache
from explorer.image.loader import load_image
from explorer.tree import lazy, pathtable
from explorer.tree.pathtable import PathTable, encode_parts
from explorer.tree.steps import drain
from explorer.tree.views import DIFF, GLOB, MERGED, REGEX, SUBSTRING, TreeView, matcher, path_matcher, search_steps, visible_paths_steps
from tests.builders import d, docker_archive, f, hard, layer_tar, sym, wh
from tests.test_properties import _layer, linked_stacks, reopened_stack, stacks

# Letters whose lowercase is longer, another letter, or context-dependent, an undecodable
# byte of a name (kept as a lone surrogate), a NUL (a PAX name may hold one), and separators.
LETTERS = list("abcAB/._-0 ") + ["é", "İ", "\u212a", "ß", "\udcff", "\0", "Σ"]
names = st.text(alphabet=st.sampled_from(LETTERS), min_size=1, max_size=10).map(lambda s: "/" + s)
typed = st.text(alphabet=st.sampled_from(list("abAB/._*? ") + ["é", "İ", "\u212a", "k", "ς"]), max_size=4)


def _table(parts: list[list[str]]) -> PathTable:
    """A path table of these parts, between other bytes, as an index file lays it out."""
    body, spans = bytearray(b"folders before"), []
    for paths in parts:
        for chunk, count in encode_parts(paths):
            spans.append((len(body), len(chunk), count))
            body += chunk + b"and after"
    return PathTable(memoryview(bytes(body)), spans)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(names, max_size=30), max_size=4), typed, st.sampled_from([SUBSTRING, GLOB, REGEX]))
def test_a_search_of_the_table_finds_what_asking_each_path_finds(parts, text, kind):
    if kind == REGEX:
        text = re.escape(text) + "$" if text else "[.]"
    match = matcher(text, kind)
    expected = [p for paths in parts for p in paths if match(p)]
    assert drain(_table(parts).matching_steps(match)) == expected


def test_text_running_from_one_path_into_the_next_is_not_a_match():
    table = _table([["/usr/lib", "/bin/sh", "/etc/ab", "/abc"]])
    assert drain(table.matching_steps(matcher("b/b", SUBSTRING))) == []
    assert drain(table.matching_steps(matcher("lib/", SUBSTRING))) == []
    assert drain(table.matching_steps(matcher("ab", SUBSTRING))) == ["/etc/ab", "/abc"]
    assert drain(table.matching_steps(matcher("SH", SUBSTRING))) == ["/bin/sh"]


def test_a_part_that_lies_outside_the_file_is_refused():
    with pytest.raises(ValueError):
        PathTable(memoryview(b"x" * 100), [(90, 40, 2)])
    with pytest.raises(ValueError):
        PathTable(memoryview(b"x" * 100), [(0, 4, 2)])  # too short for where its two paths end


@pytest.fixture
def reopened(tmp_path, monkeypatch):
    """A three-layer image of 60 folders, built, then reopened from its index file."""
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    first = [d("usr"), d("usr/lib"), sym("lib", "usr/lib")]
    for i in range(60):
        first += [d(f"usr/lib/pkg{i}"), f(f"usr/lib/pkg{i}/data.bin", b"x" * i), f(f"usr/lib/pkg{i}/README", b"r")]
    first += [f("usr/lib/pkg7/libssl.so.3", b"ssl"), f("usr/lib/pkg9/Ünïcode-libssl.txt", b"u")]
    second = [f("usr/lib/pkg7/libssl.so.3", b"ssl, patched"), wh("usr/lib/pkg9/Ünïcode-libssl.txt"),
              f("opt/libssl-notes", b"n")]
    third = [f("usr/lib/pkg3/more-libssl", b"m")]
    path = tmp_path / "image.tar"
    path.write_bytes(docker_archive([layer_tar(first), layer_tar(second), layer_tar(third)]))
    src = open_source(str(path))
    fresh = load_image(src, src.select())
    assert index_cache.save(src, fresh)
    src.close()
    src = open_source(str(path))
    cached = load_image(src, src.select())
    assert cached.from_cache
    yield fresh, cached
    src.close()


def _found(image, layer, mode, text, kind=SUBSTRING, hide=frozenset()):
    view = TreeView(image.tree, layer, mode)
    return drain(visible_paths_steps(view, hide, path_matcher(image.tree, layer, text, kind) if text else None))


LIBSSL_SHOWN = {"/usr", "/usr/lib", "/usr/lib/pkg7", "/usr/lib/pkg7/libssl.so.3", "/usr/lib/pkg3",
                "/usr/lib/pkg3/more-libssl", "/opt", "/opt/libssl-notes"}


def test_a_search_decodes_no_folder(reopened):
    fresh, cached = reopened
    chunks = cached.tree.versions.chunks
    shown = _found(cached, None, MERGED, "LIBSSL")
    assert shown == _found(fresh, None, MERGED, "LIBSSL") == LIBSSL_SHOWN
    assert set(shown.holders) == {"/", "/usr", "/usr/lib", "/usr/lib/pkg7", "/usr/lib/pkg3", "/opt"}
    # the removed file matched too, and the columns told it is gone: no folder was decoded
    assert chunks.kids == {}
    # at layer 0, before the second layer removed it
    assert "/usr/lib/pkg9/Ünïcode-libssl.txt" in _found(cached, 0, MERGED, "libssl")
    assert chunks.kids == {}


def test_a_filter_decodes_no_folder(reopened):
    fresh, cached = reopened
    chunks = cached.tree.versions.chunks
    for hide in [frozenset({"added"}), frozenset({"unchanged"}), frozenset({"unchanged", "modified"})]:
        for layer in [None, 0, 1, 2]:
            assert _found(cached, layer, MERGED, "", hide=hide) == _found(fresh, layer, MERGED, "", hide=hide)
            assert _found(cached, layer, MERGED, "lib", hide=hide) == _found(fresh, layer, MERGED, "lib", hide=hide)
    # what the second layer changed: the patched library, and the notes it added
    assert _found(cached, 1, MERGED, "", hide=frozenset({"unchanged"})) == {
        "/usr", "/usr/lib", "/usr/lib/pkg7", "/usr/lib/pkg7/libssl.so.3", "/opt", "/opt/libssl-notes"}
    assert _found(cached, 1, MERGED, "", hide=frozenset({"unchanged", "added"})) == {
        "/usr", "/usr/lib", "/usr/lib/pkg7", "/usr/lib/pkg7/libssl.so.3"}
    assert chunks.kids == {}


def _without_columns(image) -> None:
    """Have a reopened image do without its columns, as one whose columns are damaged does."""
    chunks = image.tree.versions.chunks
    chunks._columns = chunks._read = None


def test_a_search_without_columns_decodes_only_the_folders_of_its_matches(reopened):
    fresh, cached = reopened
    chunks = cached.tree.versions.chunks
    _without_columns(cached)
    shown = _found(cached, None, MERGED, "LIBSSL")
    assert shown == _found(fresh, None, MERGED, "LIBSSL") == LIBSSL_SHOWN
    # the removed file was looked up (its folder decoded) to be left out
    assert set(chunks.kids) == {"/usr/lib/pkg7", "/usr/lib/pkg3", "/usr/lib/pkg9", "/opt"}
    assert not chunks.complete


def _decoded(chunks) -> int:
    """How many paths of a reopened image are decoded now."""
    return sum(len(names) for names in chunks.kids.values())


def test_a_search_lets_go_of_the_folders_it_decoded_but_those_it_keeps(reopened, monkeypatch):
    fresh, cached = reopened
    tree, chunks = cached.tree, cached.tree.versions.chunks
    monkeypatch.setattr(lazy, "KEPT_WHILE_RECORDING", 4)
    most = 0

    def watched(steps):  # the paths decoded at any moment of the search
        nonlocal most
        while True:
            most = max(most, _decoded(chunks))
            try:
                step = next(steps)
            except StopIteration as done:
                return done.value
            yield step

    _without_columns(cached)  # (then the folders of the matches are decoded)
    with tree.recording() as keep:
        view = TreeView(tree, None, MERGED)
        shown = drain(watched(visible_paths_steps(view, frozenset(), path_matcher(tree, None, "a", SUBSTRING))))
        keep("/usr/lib/pkg7")
        tree.kids.get("/usr/lib/pkg7")
    assert "/usr/lib/pkg7/data.bin" in shown and "/usr/lib/pkg42/data.bin" in shown  # a match in every folder
    assert most <= 4 + 3  # the budget, and the folder decoded last (three names)
    assert len(chunks.forgettable) < 60
    drain(tree.forget_steps())
    assert set(chunks.kids) == {"/usr/lib/pkg7"} and not chunks.forgettable
    # what was let go of is decoded again when asked for, as it was
    assert _found(cached, None, MERGED, "a") == shown == _found(fresh, None, MERGED, "a")
    for path in ["/usr/lib/pkg7/libssl.so.3", "/usr/lib/pkg42/README", "/opt/libssl-notes"]:
        assert cached.tree.history(path) == fresh.tree.history(path)


def _counting(chunks) -> "collections.Counter[str]":
    """How many times each folder is decoded from now on."""
    counts: collections.Counter[str] = collections.Counter()
    decode = chunks._decode

    def counted(folder):
        if folder not in chunks.kids and folder in chunks.folders:
            counts[folder] += 1
        return decode(folder)

    chunks._decode = counted
    return counts


@pytest.mark.parametrize("mode, layer, text, hide", [
    (MERGED, 0, "", frozenset({"unchanged"})), (MERGED, 1, "", frozenset({"unchanged", "modified"})),
    (MERGED, 2, "lib", frozenset({"unchanged"}))])
def test_a_search_of_a_set_of_paths_decodes_each_folder_once(reopened, monkeypatch, mode, layer, text, hide):
    fresh, cached = reopened
    tree, chunks = cached.tree, cached.tree.versions.chunks
    _without_columns(cached)  # (with them, no folder is decoded to tell what shows)
    monkeypatch.setattr(lazy, "KEPT_WHILE_RECORDING", 4)
    counts = _counting(chunks)
    with tree.recording():  # (a layer's changes, and what it changed, are sets: in no folder's order)
        shown = _found(cached, layer, mode, text, hide=hide)
    assert shown == _found(fresh, layer, mode, text, hide=hide) and shown
    assert counts and max(counts.values()) == 1


def test_hard_links_in_folders_over_the_budget_are_not_decoded_over_and_over(tmp_path, monkeypatch):
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    files = [d("a"), d("b")] + [f(f"a/f{i:02}", b"x" * i) for i in range(30)]
    links = [hard(f"b/l{i:02}", f"a/f{i:02}") for i in range(30)]
    path = tmp_path / "image.tar"
    path.write_bytes(docker_archive([layer_tar(files + links)]))
    with open_source(str(path)) as src:
        fresh = load_image(src, src.select())
        assert index_cache.save(src, fresh)
    with open_source(str(path)) as src:
        cached = load_image(src, src.select())
        assert cached.from_cache
        tree, chunks = cached.tree, cached.tree.versions.chunks
        monkeypatch.setattr(lazy, "KEPT_WHILE_RECORDING", 40)  # less than the two folders hold
        counts = _counting(chunks)
        _without_columns(cached)
        with tree.recording():  # each link's row looks its other names up, in the other folder
            shown = _found(cached, None, MERGED, "/l")
        assert shown == _found(fresh, None, MERGED, "/l") and len(shown) == 31
        assert counts["/a"] <= 2 and counts["/b"] <= 2


def test_a_filter_that_needs_every_folder_decodes_them_for_good_a_step_each(reopened, monkeypatch):
    fresh, cached = reopened
    tree, chunks = cached.tree, cached.tree.versions.chunks
    _without_columns(cached)  # (with them, no folder is decoded to tell what shows)
    monkeypatch.setattr(lazy, "KEPT_WHILE_RECORDING", 4)
    most = 0

    def watched(steps):  # the most folders decoded in one step
        nonlocal most
        for _ in range(10 * len(chunks.folders)):  # (decoding what it lets go of would never end)
            before = len(chunks.kids)
            try:
                step = next(steps)
            except StopIteration as done:
                return done.value
            most = max(most, len(chunks.kids) - before)
            yield step
        raise AssertionError("the walk does not end")

    with tree.recording():  # as the window's searches and filters run
        view = TreeView(tree, None, MERGED)
        shown = drain(watched(visible_paths_steps(view, frozenset({"added"}), None)))
    assert shown == _found(fresh, None, MERGED, "", hide=frozenset({"added"}))
    assert most == 1 and chunks.complete and not chunks.forgettable


def test_a_folder_kept_and_decoded_again_does_not_stop_the_letting_go(reopened, monkeypatch):
    fresh, cached = reopened
    tree, chunks = cached.tree, cached.tree.versions.chunks
    _without_columns(cached)  # (with them, no folder is decoded to tell what shows)
    monkeypatch.setattr(lazy, "KEPT_WHILE_RECORDING", 4)
    with tree.recording() as keep:
        _found(cached, None, MERGED, "pkg1")  # pkg1 and pkg10 to pkg19
        assert "/usr/lib/pkg1" not in chunks.kids
        keep("/usr/lib/pkg1")
        tree.kids.get("/usr/lib/pkg1")  # decoded again to be shown, not by a walk going round
        for i in range(40, 46):
            tree.kids.get(f"/usr/lib/pkg{i}")
        assert "/usr/lib/pkg1" in chunks.kids
        assert _decoded(chunks) <= 4 + 2 + 2  # the budget, the folder decoded last, the one kept


def test_a_search_names_the_folders_to_open_shallowest_first_and_keeps_them_decoded(reopened, monkeypatch):
    fresh, cached = reopened
    tree, chunks = cached.tree, cached.tree.versions.chunks
    monkeypatch.setattr(lazy, "KEPT_WHILE_RECORDING", 4)
    match = path_matcher(tree, None, "README", SUBSTRING)
    shown, folders = drain(search_steps(TreeView(tree, None, MERGED), frozenset(), match, 3))
    assert shown == _found(fresh, None, MERGED, "README")
    assert folders == ["/usr", "/usr/lib", "/usr/lib/pkg0"]  # (pkg0 before pkg1: by name)
    drain(tree.forget_steps())
    assert set(chunks.kids) == set(folders)  # every other folder it decoded is let go of
    built = drain(search_steps(TreeView(fresh.tree, None, MERGED), frozenset(), match, 3))
    assert built == (shown, folders)


def test_decoding_every_folder_while_some_are_let_go_of_ends_with_them_all(reopened):
    fresh, cached = reopened
    tree, chunks = cached.tree, cached.tree.versions.chunks
    with tree.recording():
        for i in range(10):
            tree.kids.get(f"/usr/lib/pkg{i}")  # decoded for a walk now over, to be let go of
    everything = tree.decode_steps()
    while "/usr/lib/pkg50" not in chunks.kids:
        next(everything)  # past those ten, which are then let go of
    drain(tree.forget_steps())
    assert "/usr/lib/pkg3" not in chunks.kids
    drain(everything)
    assert chunks.complete and set(chunks.kids) == set(chunks.folders)
    assert dict(tree.versions.items()).keys() == fresh.tree.versions.keys()
    assert tree.history("/usr/lib/pkg3/more-libssl") == fresh.tree.history("/usr/lib/pkg3/more-libssl")


@pytest.mark.parametrize("layer", [None, 0, 2])
@pytest.mark.parametrize("mode", [MERGED, DIFF])
@pytest.mark.parametrize("text", ["libssl", "pkg1", "readme"])
def test_whether_a_folder_holds_a_match_is_said_without_decoding_it(reopened, layer, mode, text):
    fresh, cached = reopened
    shown = _found(cached, layer, mode, text)
    decoded = set(cached.tree.versions.chunks.kids)
    view, built = TreeView(cached.tree, layer, mode), TreeView(fresh.tree, layer, mode)
    for folder in {"/", *shown}:
        rows = [built.row(folder.rstrip("/") + "/" + name) for name in fresh.tree.kids.get(folder, ())]
        assert view.has_children(folder, shown) == any(r is not None and r.path in shown for r in rows), folder
    assert set(cached.tree.versions.chunks.kids) == decoded


@pytest.mark.parametrize("layer", [None, 0, 1])
@pytest.mark.parametrize("mode", [MERGED, DIFF])
@pytest.mark.parametrize("text, kind, hide", [
    ("libssl", SUBSTRING, frozenset()), ("Ü", SUBSTRING, frozenset()), ("/lib/pkg7", SUBSTRING, frozenset()),
    ("*.so.*", GLOB, frozenset()), ("lib/pkg1*", GLOB, frozenset({"unchanged"})), (r"pkg\d$", REGEX, frozenset()),
    ("readme", SUBSTRING, frozenset({"added"})),
    ("", SUBSTRING, frozenset({"unchanged"})), ("", SUBSTRING, frozenset({"unchanged", "modified"})),
    ("", SUBSTRING, frozenset({"added"})),
])
def test_a_search_of_a_reopened_image_shows_what_one_of_the_built_image_shows(reopened, layer, mode, text, kind, hide):
    fresh, cached = reopened
    assert _found(cached, layer, mode, text, kind, hide) == _found(fresh, layer, mode, text, kind, hide)


def test_hiding_what_a_layer_left_unchanged_decodes_only_the_folders_it_changed(reopened):
    fresh, cached = reopened
    chunks = cached.tree.versions.chunks
    shown = _found(cached, 2, MERGED, "", hide=frozenset({"unchanged"}))
    assert shown == _found(fresh, 2, MERGED, "", hide=frozenset({"unchanged"})) == {
        "/usr", "/usr/lib", "/usr/lib/pkg3", "/usr/lib/pkg3/more-libssl"}
    assert set(chunks.kids) <= {"/", "/usr", "/usr/lib", "/usr/lib/pkg3"}


def _shown_row_by_row(view: TreeView, hide: frozenset[str], match) -> set[str]:
    """What a search or filters show, each path of the view looked at (its row, its change)."""
    every = set()
    for path in list(view._relevant if view._relevant is not None else view.tree.versions):
        row = view.row(path)
        if path == "/" or row is None or row.change in hide or (match is not None and not match(path)):
            continue
        if row.entry.type == "dir" and match is None and hide:
            continue
        while path != "/":
            every.add(path)
            path = path[: path.rfind("/")] or "/"
    return every


def test_a_layers_changes_view_searched_or_filtered_decodes_no_folder(reopened):
    fresh, cached = reopened
    chunks = cached.tree.versions.chunks
    for layer in [None, 0, 1, 2]:
        for text, hide in [("", frozenset({"added"})), ("", frozenset({"modified", "removed"})), ("lib", frozenset()),
                           ("pkg", frozenset({"unchanged"})), ("libssl", frozenset({"added"}))]:
            view = TreeView(cached.tree, layer, DIFF)
            match = path_matcher(cached.tree, layer, text, SUBSTRING) if text else None
            shown = drain(visible_paths_steps(view, hide, match))
            assert chunks.kids == {}, (layer, text, hide)
            assert shown == _shown_row_by_row(TreeView(fresh.tree, layer, DIFF), hide, match), (layer, text, hide)
    # the second layer patched a library, removed a file and added notes: hiding what it added
    assert _found(cached, 1, DIFF, "", hide=frozenset({"added"})) == {
        "/usr", "/usr/lib", "/usr/lib/pkg7", "/usr/lib/pkg7/libssl.so.3", "/usr/lib/pkg9", "/usr/lib/pkg9/Ünïcode-libssl.txt"}
    assert _shown_row_by_row(TreeView(fresh.tree, 1, DIFF), frozenset({"added"}), None) == \
        _found(cached, 1, DIFF, "", hide=frozenset({"added"}))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(stacks, linked_stacks), st.sampled_from([frozenset(), frozenset({"unchanged"}), frozenset({"added"}),
                                                         frozenset({"modified", "removed"})]),
       st.sampled_from([None, "a", "/", "b/"]))
def test_a_layers_changes_view_shows_what_looking_at_each_of_its_paths_shows(tmp_path_factory, layers, hide, text):
    if text is None and not hide:
        return  # (no search, no filter: no walk)
    image, cached = reopened_stack(tmp_path_factory, layers)
    for layer in [None, *range(len(layers))]:
        view = TreeView(image.tree, layer, DIFF)
        match = path_matcher(image.tree, layer, text, SUBSTRING) if text is not None else None
        every = _shown_row_by_row(view, hide, match)
        assert drain(visible_paths_steps(view, hide, match)) == every, layer
        assert drain(visible_paths_steps(TreeView(cached.tree, layer, DIFF), hide, match)) == every, layer
    assert cached.tree.versions.chunks.kids == {}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stacks, st.sampled_from([frozenset({"unchanged"}), frozenset({"unchanged", "added"}), frozenset({"modified"})]))
def test_a_filter_shows_what_looking_at_every_path_shows(tmp_path_factory, layers, hide):
    archive = tmp_path_factory.mktemp("stack") / "img.tar"
    archive.write_bytes(docker_archive([_layer(ops) for ops in layers]))
    with open_source(str(archive)) as src:
        image = load_image(src, src.select(), cache=False)
    for layer in [None, *range(len(layers))]:
        view = TreeView(image.tree, layer, MERGED)
        every = set()  # each path shown, looked at one by one, and the folders that hold it
        for path in list(image.tree.versions):
            row = view.row(path)
            if path != "/" and row is not None and row.change not in hide and row.entry.type != "dir":
                while path != "/":
                    every.add(path)
                    path = path[: path.rfind("/")] or "/"
        assert drain(visible_paths_steps(view, hide, None)) == every, layer


@settings(max_examples=150, deadline=None)
@given(st.lists(names, min_size=1, max_size=40), typed)
@example(["/0ßßßßKKKKK"], "")  # (one path longer than a part: a part of its own)
def test_long_paths_make_smaller_parts_that_find_the_same(paths, text):
    match = matcher(text, SUBSTRING)
    old = pathtable.PART_BYTES
    try:
        pathtable.PART_BYTES = 24  # a few paths a part
        table = _table([paths])
    finally:
        pathtable.PART_BYTES = old
    # (a part holds one path however long, else no more than its bytes)
    assert len(table.parts) > 1 or len(paths) == 1 or len("".join(paths).encode("utf-8", "surrogatepass")) <= 24
    assert sum(count for _, _, count in table.parts) == len(paths)
    assert drain(table.matching_steps(match)) == [p for p in paths if match(p)]


def test_where_each_path_ends_is_written_the_same_on_every_machine():
    ((chunk, count),) = encode_parts(["/a", "/bc"])
    assert count == 2 and chunk == (2).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"/a/bc"


def _forged(path, change):
    """Rewrite an index file's head with ``change`` and sign it again, as only a forger could."""
    import hashlib
    import marshal

    data = path.read_bytes()
    start, trailer = len(index_cache.MAGIC) + 32, index_cache.TRAILER
    end = len(data) - trailer.size
    size, mid, split = trailer.unpack_from(data, end)
    head = marshal.loads(data[end - size:end])
    change(head)
    head_bytes = marshal.dumps(head)
    first, second, rest = data[start:mid], data[mid:split], data[split:end - size]
    tail = rest + head_bytes + trailer.pack(len(head_bytes), mid, split)
    digests = hashlib.sha256(first).digest() + hashlib.sha256(second).digest()
    path.write_bytes(index_cache.MAGIC + hashlib.sha256(digests + tail).digest() + first + second + tail)


def _saved(tmp_path, monkeypatch):
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "image.tar"
    path.write_bytes(docker_archive([layer_tar([d("etc"), f("etc/hosts", b"h"), f("etc/hostname", b"n")])]))
    with open_source(str(path)) as src:
        index_cache.save(src, load_image(src, src.select()))
    (written,) = (tmp_path / "cache" / "index").iterdir()
    return path, written


def _reopen(path):
    src = open_source(str(path))
    return src, load_image(src, src.select())


def test_a_forged_head_with_a_folder_that_is_not_numbers_is_rebuilt(tmp_path, monkeypatch):
    path, written = _saved(tmp_path, monkeypatch)
    _forged(written, lambda head: head["tree"][3].update({"/etc": (*head["tree"][3]["/etc"][:2], "all")}))
    src, image = _reopen(path)
    with src:
        assert not image.from_cache
        assert TreeView(image.tree, None, MERGED).has_children("/etc")


def test_a_forged_path_table_out_of_order_is_searched_the_slow_way(tmp_path, monkeypatch):
    path, written = _saved(tmp_path, monkeypatch)
    src, image = _reopen(path)
    with src:
        ((offset, length, count),) = image.tree.versions.chunks.table.parts
    data = bytearray(written.read_bytes())
    at = len(index_cache.MAGIC) + 32 + offset  # the first two ends swapped
    data[at:at + 8] = data[at + 4:at + 8] + data[at:at + 4]
    written.write_bytes(bytes(data))
    _forged(written, lambda head: None)
    src, image = _reopen(path)
    with src:
        assert image.from_cache
        assert _found(image, None, MERGED, "host") == {"/etc", "/etc/hosts", "/etc/hostname"}
        assert image.tree.versions.chunks.table is None  # not read again by the next search
        assert _found(image, None, MERGED, "name") == {"/etc", "/etc/hostname"}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stacks)
def test_whether_a_folder_holds_anything_in_a_layers_changes_is_what_its_rows_say(tmp_path_factory, layers):
    archive = tmp_path_factory.mktemp("stack") / "img.tar"
    archive.write_bytes(docker_archive([_layer(ops) for ops in layers]))
    with open_source(str(archive)) as src:
        image = load_image(src, src.select(), cache=False)
    tree = image.tree
    for layer in [None, *range(len(layers))]:
        view = TreeView(tree, layer, DIFF)
        for folder, kids in tree.kids.items():
            rows = [view.row(folder.rstrip("/") + "/" + name) for name in kids]
            assert view.has_children(folder) == any(r is not None for r in rows), (folder, layer)


def _mapped_rss(path) -> int:
    """Bytes of the mapping of ``path`` resident in this process (Linux's smaps)."""
    total, ours = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            if "-" in line.split(" ", 1)[0]:  # a mapping's first line: its range, then its file
                ours = line.rstrip().endswith(str(path))
            elif ours and line.startswith("Rss:"):
                total += int(line.split()[1]) * 1024
    return total


@pytest.mark.skipif(not hasattr(mmap, "MADV_DONTNEED") or not os.path.exists("/proc/self/smaps"),
                    reason="needs Linux's madvise and smaps")
def test_pages_read_are_let_go_of_and_read_again_the_same(tmp_path):
    path = tmp_path / "index"
    data = os.urandom(1 << 16) * 320  # 20 MB
    path.write_bytes(b"head" + data)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        body = memoryview(mapped)[4:]
        assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()  # every page read
        assert _mapped_rss(path) >= 19 << 20
        pages = pathtable.MappedPages(mapped, 4)
        for offset in range(0, len(data), 1 << 20):
            pages.release(offset, 1 << 20)  # in batches of a few MB as they come
        assert _mapped_rss(path) < 12 << 20
        pages.flush()
        assert _mapped_rss(path) <= 2 * mmap.PAGESIZE  # the pages shared with the head, or past the end
        assert bytes(body[(5 << 20) + 3:(5 << 20) + 99]) == data[(5 << 20) + 3:(5 << 20) + 99]
        body.release()


class _Spans(pathtable.MappedPages):
    """Notes the spans handed to it, and lets nothing go."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, int]] = []

    def release(self, offset: int, length: int) -> None:
        self.spans.append((offset, length))

    def flush(self) -> None:
        pass


def test_a_search_hands_over_the_spans_it_read_and_let_go_of(reopened):
    fresh, cached = reopened
    tree, chunks = cached.tree, cached.tree.versions.chunks
    spans = chunks._pages = chunks.table.pages = _Spans()
    _without_columns(cached)  # (then the folders of the matches are decoded)
    with tree.recording():
        _found(cached, None, MERGED, "a")
    parts = [(offset, length) for offset, length, _count in chunks.table.parts]
    assert [span for span in spans.spans if span in parts] == parts  # each part, once searched
    let_go = list(chunks.forgettable)
    assert let_go
    drain(tree.forget_steps())
    assert {(chunks.folders[f][0], chunks.folders[f][1]) for f in let_go} <= set(spans.spans)



def test_a_walk_over_every_folder_as_stored_lets_go_of_the_pages_it_read(reopened):
    """Inspect's size and the treemap read every folder as stored and keep none: the file's
    pages they read were the window's until it closed (45 MB at a million paths)."""
    fresh, cached = reopened
    tree, chunks = cached.tree, cached.tree.versions.chunks
    spans = chunks._pages = _Spans()
    kept = "/usr/lib"
    tree.kids.get(kept)  # decoded before: read from what is kept, not from the file
    walked = {folder: (names, stored) for folder, names, stored in filter(None, tree.stored_steps())}
    assert set(walked) >= set(fresh.tree.kids) - {kept}
    for folder in fresh.tree.kids:
        assert sorted(walked[folder][0]) == sorted(fresh.tree.kids[folder])  # what the built tree holds
    encoded = {(chunks.folders[f][0], chunks.folders[f][1]) for f in chunks.folders if f != kept}
    assert encoded and set(spans.spans) == encoded
    assert kept in chunks.kids and len(chunks.kids) == 1  # and nothing else decoded for good


def test_a_list_of_changes_whose_columns_differ_in_length_is_refused():
    import marshal

    good = marshal.dumps((["/a", "/b"], b"\0\2", b"\1\0"))
    assert list(lazy.LazyChanges(memoryview(good), [[(0, len(good))]])[0]) == [("/a", "added"), ("/b", "removed")]
    for paths, kinds, folders in [(["/a", "/b"], b"\0\0", b"\0"), (["/a"], b"\0\0", b"\0\0")]:
        chunk = marshal.dumps((paths, kinds, folders))
        with pytest.raises(ValueError):
            lazy.LazyChanges(memoryview(chunk), [[(0, len(chunk))]])[0]


def test_a_layers_changes_and_the_wasted_files_decoded_let_go_of_the_pages_they_were_read_from(reopened):
    """The changes views read each layer's list once and keep it decoded: the file's pages it
    was read from stayed the window's too (36 MB at a million paths)."""
    fresh, cached = reopened
    tree = cached.tree
    spans = tree.changes._pages = _Spans()
    for layer in range(len(tree.changes)):
        assert list(tree.changes[layer]) == list(fresh.tree.changes[layer])  # what the built tree holds
    assert spans.spans == [span for parts in tree.changes.spans for span in parts]
    records = cached.waste.files
    spans = records._pages = _Spans()
    assert [w.path for w in records] == [w.path for w in fresh.waste.files]
    assert spans.spans and all(offset >= 0 and length > 0 for offset, length in spans.spans)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from("abc"), min_size=1, max_size=4).map(lambda p: "/" + "/".join(p)),
                unique=True, max_size=40),
       st.lists(st.lists(st.sampled_from("abcd"), min_size=1, max_size=4).map(lambda p: "/" + "/".join(p)), max_size=8),
       st.integers(1, 7), st.booleans())
def test_what_a_search_keeps_folder_by_folder_is_every_path_and_its_folders(taken, added, step, packed_first):
    """``Visible`` holds each folder's names as texts: paths handed over a part at a time,
    their folders (themselves among the paths or not), paths added one by one, before or
    after it is packed, show exactly as a set of them and their folders would, asked at
    any moment."""
    from explorer.tree.views import Visible

    def check(visible, paths):
        expected = set()
        for path in paths:
            while path != "/":
                expected.add(path)
                path = path[:path.rfind("/")] or "/"
        listed = list(visible)
        assert set(listed) == expected and len(listed) == len(expected) == len(visible)
        assert all(path in visible for path in expected)
        assert not any(path + "z" in visible or path + "/z" in visible for path in expected) and "/" not in visible
        folders = {path[:path.rfind("/")] or "/" for path in expected}
        assert set(visible.holders) == folders
        for folder in folders:
            prefix = folder if folder == "/" else folder + "/"
            assert set(visible.names_in(folder)) == {p[len(prefix):] for p in expected if (p[:p.rfind("/")] or "/") == folder}

    visible, so_far = Visible(), []
    for start in range(0, len(taken), step):
        visible.take(taken[start:start + step])
        so_far += taken[start:start + step]
        check(visible, so_far)
    if packed_first:
        visible.pack()
    for path in added:
        visible.add(path)
        so_far.append(path)
        check(visible, so_far)
    visible.pack()
    check(visible, so_far)
    assert all(type(names) is str for names in visible.holders.values())


def test_a_filter_over_the_path_table_is_kept_a_part_at_a_time(reopened):
    """The paths a filter shows are handed over as each part of the table is read, never all
    held at once (a filter of a million paths held 70 MB of them before keeping any)."""
    fresh, cached = reopened
    tree = cached.tree
    parts = tree.versions.chunks.table.parts
    handed: list[int] = []

    def into(paths):
        handed.append(len(paths))
        yield

    told = drain(tree.shown_steps(None, None, frozenset({"added"}), folders=False, into=into))
    whole = drain(tree.shown_steps(None, None, frozenset({"added"}), folders=False))
    assert told is not None and told[0] == [] and told[1] == whole[1]
    assert len(handed) == len(parts) and max(handed) <= max(count for _o, _l, count in parts)
    assert sum(handed) == len(whole[0]) > 0
    view = TreeView(cached.tree, None, MERGED)
    assert drain(visible_paths_steps(view, frozenset({"added"}), None)) == \
        drain(visible_paths_steps(TreeView(fresh.tree, None, MERGED), frozenset({"added"}), None))
