"""A search of an image reopened from its index file reads the file's path table: it finds
exactly what asking each path finds, and decodes no folder but those of its matches."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.formats.source import open_source
from explorer.image import index_cache
from explorer.image.loader import load_image
from explorer.tree.pathtable import PathTable, encode_part
from explorer.tree.steps import drain
from explorer.tree.views import DIFF, GLOB, MERGED, REGEX, SUBSTRING, TreeView, matcher, path_matcher, visible_paths_steps
from tests.builders import d, docker_archive, f, layer_tar, sym, wh

# Letters whose lowercase is longer, another letter, or context-dependent, an undecodable
# byte of a name (kept as a lone surrogate), a NUL (a PAX name may hold one), and separators.
LETTERS = list("abcAB/._-0 ") + ["é", "İ", "\u212a", "ß", "\udcff", "\0", "Σ"]
names = st.text(alphabet=st.sampled_from(LETTERS), min_size=1, max_size=10).map(lambda s: "/" + s)
typed = st.text(alphabet=st.sampled_from(list("abAB/._*? ") + ["é", "İ", "\u212a", "k", "ς"]), max_size=4)


def _table(parts: list[list[str]]) -> PathTable:
    """A path table of these parts, between other bytes, as an index file lays it out."""
    body, spans = bytearray(b"folders before"), []
    for paths in parts:
        chunk = encode_part(paths)
        spans.append((len(body), len(chunk), len(paths)))
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
    return drain(visible_paths_steps(view, hide, path_matcher(image.tree, layer, text, kind)))


def test_a_search_decodes_only_the_folders_of_its_matches(reopened):
    fresh, cached = reopened
    chunks = cached.tree.versions.chunks
    shown = _found(cached, None, MERGED, "LIBSSL")
    assert shown == _found(fresh, None, MERGED, "LIBSSL") == {
        "/usr", "/usr/lib", "/usr/lib/pkg7", "/usr/lib/pkg7/libssl.so.3", "/usr/lib/pkg3", "/usr/lib/pkg3/more-libssl",
        "/opt", "/opt/libssl-notes"}
    # the removed file matched too, and was looked up (its folder decoded) to be left out
    assert set(chunks.kids) == {"/usr/lib/pkg7", "/usr/lib/pkg3", "/usr/lib/pkg9", "/opt"}
    assert not chunks.complete


@pytest.mark.parametrize("layer", [None, 0, 1])
@pytest.mark.parametrize("mode", [MERGED, DIFF])
@pytest.mark.parametrize("text, kind, hide", [
    ("libssl", SUBSTRING, frozenset()), ("Ü", SUBSTRING, frozenset()), ("/lib/pkg7", SUBSTRING, frozenset()),
    ("*.so.*", GLOB, frozenset()), ("lib/pkg1*", GLOB, frozenset({"unchanged"})), (r"pkg\d$", REGEX, frozenset()),
    ("readme", SUBSTRING, frozenset({"added"})),
])
def test_a_search_of_a_reopened_image_shows_what_one_of_the_built_image_shows(reopened, layer, mode, text, kind, hide):
    fresh, cached = reopened
    assert _found(cached, layer, mode, text, kind, hide) == _found(fresh, layer, mode, text, kind, hide)
