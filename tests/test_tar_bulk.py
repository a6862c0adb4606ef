"""Runs of plain tar headers read together give what the header-by-header reader gives.

Each test lists a tar held in memory twice, with the bulk reading on and off, and compares
the members (or the error, and where it came). The tars are big enough for runs to be read
in bulk, in windows of blocks too, and hold every kind of header the careful reader knows.
"""

from __future__ import annotations

import importlib
import io
import random
import sys
import tarfile

import pytest

from explorer.formats import tar_bulk, tar_index
from explorer.formats.tar_index import TarFormatError

ENTRIES = 3000  # over the probe and the shortest run, so that runs are read in bulk


@pytest.fixture(autouse=True)
def _bulk_early(monkeypatch):
    """Runs read in bulk after the first hundred entries, however few are left (these tars are
    small: by default, a layer this size is read a header at a time)."""
    monkeypatch.setattr(tar_bulk, "AFTER", 100)
    monkeypatch.setattr(tar_bulk, "LEFT", 0)
    monkeypatch.setattr(tar_bulk, "LEFT_FIRST", 0)


def test_runs_only_where_enough_entries_are_left(monkeypatch):
    monkeypatch.undo()
    importlib.import_module("numpy")  # (once it is imported, a few thousand left are enough)

    entry = 600  # bytes an entry, on average
    assert tar_bulk.worth(32_768, 32_768 * entry, 600_000 * entry)  # a layer of 600,000
    assert not tar_bulk.worth(32_768, 32_768 * entry, 40_000 * entry)  # of 40,000: a few thousand left
    monkeypatch.delitem(sys.modules, "numpy")  # (the first layer worth it imports numpy: a hundred thousand)
    assert not tar_bulk.worth(32_768, 32_768 * entry, 100_000 * entry)
    assert tar_bulk.worth(32_768, 32_768 * entry, 200_000 * entry)


def _listing(buf: bytes, bulk: bool, start: int = 0, end: int | None = None) -> tuple[list, str | None]:
    """The members listed before any error, and the error's message (None without one)."""
    saved = tar_index.BULK
    tar_index.BULK = bulk
    members: list = []
    try:
        for member in tar_index.scan_buffer(buf, start, end):
            members.append(member)
    except TarFormatError as exc:
        return members, str(exc)
    finally:
        tar_index.BULK = saved
    return members, None


def _same(buf: bytes, start: int = 0, end: int | None = None) -> list:
    """The members, checked to be the same both ways (errors too)."""
    careful = _listing(buf, False, start, end)
    assert _listing(buf, True, start, end) == careful
    return careful[0]


def _tar(count: int = ENTRIES, fmt: int = tarfile.USTAR_FORMAT, seed: int = 7, odd_every: int = 0,
         name=lambda i: f"usr/share/doc/pkg{i // 40}/file{i}.txt") -> bytes:
    """A tar of ``count`` entries of every plain kind and size around the block size."""
    rng = random.Random(seed)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for i in range(count):
            info = tarfile.TarInfo(name(i))
            info.mtime = 1_700_000_000 + rng.randrange(5)
            info.mode = rng.choice([0o644, 0o755, 0o4755, 0o600])
            info.uid, info.gid = rng.choice([(0, 0), (1000, 1000), (65534, 65534)])
            kind = i % 10
            data = b""
            if kind == 0:
                info.type = tarfile.DIRTYPE
            elif kind == 1:
                info.type, info.linkname = tarfile.SYMTYPE, f"../target{i}"
            elif kind == 2 and i > 10 and (fmt != tarfile.USTAR_FORMAT or len(name(i - 7)) <= 100):
                info.type, info.linkname = tarfile.LNKTYPE, name(i - 7)
            elif kind == 3:
                info.type = tarfile.FIFOTYPE
            elif kind == 4:
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            else:
                data = bytes(rng.choice([0, 1, 511, 512, 513, 3000, 9000]))
            if odd_every and i % odd_every == 0:
                info.pax_headers = {"comment": "x" * (i % 50)}
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return out.getvalue()


def test_a_plain_tar_is_read_in_bulk_and_gives_the_same_members(monkeypatch):
    buf = _tar()
    decoded = []
    real = tar_bulk.decode
    monkeypatch.setattr(tar_bulk, "decode", lambda *a: decoded.append(len(a[2])) or real(*a))
    members = _same(buf)
    assert len(members) == ENTRIES
    assert sum(decoded) > ENTRIES * 0.9  # (the bulk reading did take them)
    assert {m.type for m in members} == {"0", "1", "2", "3", "5", "6"}


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_and_foreign_names_between_plain_headers(fmt):
    # every 37th and 13th name is too long for a header's name field (a PAX record or a GNU
    # long name before it, or in a ustar tar a prefix), every 11th is not ASCII
    def name(i: int) -> str:
        if i % 37 == 0:
            return f"opt/{'deep/' * 30}file{i}"
        if i % 11 == 0:
            return f"srv/café/ファイル{i}"
        return f"usr/lib/python3/{'x' * 60}/{'y' * 30}/f{i}" if i % 13 == 0 else f"etc/f{i}"

    members = _same(_tar(fmt=fmt, name=name))
    assert len(members) == ENTRIES
    assert any(len(m.name) > 100 for m in members)


def test_records_every_few_entries_and_a_global_one():
    buf = bytearray(_tar(fmt=tarfile.PAX_FORMAT, odd_every=5))
    assert len(_same(bytes(buf))) == ENTRIES
    # a global PAX header in the middle applies to every entry after it
    head = io.BytesIO()
    with tarfile.open(fileobj=head, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"uid": "4242"}):
        pass
    records = head.getvalue().rstrip(b"\0")
    records += bytes(-len(records) % 512)
    cut = _header_offsets(bytes(buf))[1500]
    members = _same(bytes(buf[:cut]) + records + bytes(buf[cut:]))
    assert members[-1].uid == 4242 and members[0].uid != 4242


def _header_offsets(buf: bytes) -> list[int]:
    tar_index.BULK = False
    try:
        return [m.header_offset for m in tar_index.scan_buffer(buf)]
    finally:
        tar_index.BULK = True


def _rewrite(buf: bytearray, at: int, field: slice, value: bytes, checksum: bool = True) -> None:
    """Put ``value`` in a header's field, and its checksum right again (unless told not to)."""
    buf[at + field.start : at + field.stop] = value.ljust(field.stop - field.start, b"\0")
    if checksum:
        buf[at + 148 : at + 156] = b" " * 8
        buf[at + 148 : at + 156] = b"%06o\0 " % sum(buf[at : at + 512])


def test_numbers_of_other_forms_are_read_as_the_careful_reader_reads_them():
    buf = bytearray(_tar())
    offsets = _header_offsets(bytes(buf))
    _rewrite(buf, offsets[700], slice(100, 108), b"   644 \0")  # old tars pad with spaces
    _rewrite(buf, offsets[701], slice(108, 116), bytes([0x80, 0, 0, 0, 0, 0, 0x10, 0]))  # base-256 uid
    _rewrite(buf, offsets[702], slice(136, 148), b"14000000000 ")  # a space after the time
    _rewrite(buf, offsets[703], slice(0, 100), b"name\0junk after the NUL")
    _rewrite(buf, offsets[704], slice(157, 257), b"")  # (a link target emptied)
    members = _same(bytes(buf))
    assert members[700].mode == 0o644 and members[701].uid == 0x1000 and members[703].name == "name"
    # a header whose checksum is the sum of signed bytes, as old tars wrote it
    at = offsets[900]
    buf[at : at + 100] = b"caf\xe9-900".ljust(100, b"\0")
    buf[at + 148 : at + 156] = b" " * 8
    signed = sum(b - 256 if b > 127 else b for b in buf[at : at + 512])
    buf[at + 148 : at + 156] = b"%06o\0 " % (signed & 0o777777)
    assert _same(bytes(buf))[900].name == "caf\udce9-900"


def test_a_damaged_header_fails_in_the_same_place_with_the_same_message():
    buf = bytearray(_tar())
    offsets = _header_offsets(bytes(buf))
    _rewrite(buf, offsets[2000], slice(0, 100), b"changed after its checksum", checksum=False)
    members, error = _listing(bytes(buf), True)
    assert (members, error) == _listing(bytes(buf), False)
    assert error == f"corrupt tar header at byte {offsets[2000]} (bad checksum)" and len(members) == 2000


@pytest.mark.parametrize("size", [b"-0000000001\0", b"\xff" * 12])
@pytest.mark.parametrize("kind", [b"5", b"2", b"0"])
def test_a_negative_size_fails_whatever_the_type(size, kind):
    buf = bytearray(_tar())
    offsets = _header_offsets(bytes(buf))
    at = next(o for i, o in enumerate(offsets) if i > 120 and buf[o + 156 : o + 157] == kind)
    _rewrite(buf, at, slice(124, 136), size)
    members, error = _listing(bytes(buf), True)
    assert error == f"negative size in tar header at byte {at}" and (members, error) == _listing(bytes(buf), False)


def test_a_tar_cut_short_fails_as_the_careful_reader_fails():
    buf = _tar()
    offsets = _header_offsets(buf)
    for cut in (offsets[2500] + 600, offsets[2500] + 100, offsets[2500]):
        _same(buf[:cut])
        _same(buf, 0, cut)


def test_a_tar_held_at_an_odd_place_of_a_buffer():
    buf = _tar()
    members = _same(b"x" * 100 + buf + b"y" * 1000, 100, 100 + len(buf))
    assert members == _listing(buf, False)[0]


def test_types_that_are_not_plain_stop_a_run():
    buf = bytearray(_tar())
    offsets = _header_offsets(bytes(buf))
    _rewrite(buf, offsets[1200], slice(156, 157), b"V")  # a volume label
    _rewrite(buf, offsets[1300], slice(156, 157), b"Z")  # a type nobody knows
    assert len(_same(bytes(buf))) == ENTRIES


@pytest.mark.parametrize("setting,value,count", [("MAX_ENTRIES", "1500", ENTRIES), ("MAX_PATHS_MB", "1", 12_000)])
def test_budgets_stop_both_at_the_same_entry(monkeypatch, setting, value, count):
    monkeypatch.setenv(f"LAYER_EXPLORER_{setting}", value)
    buf = _tar(count=count, name=lambda i: f"usr/share/{'long-folder-name/' * 4}file{i:08}")
    members, error = _listing(buf, True)
    assert error is not None and (members, error) == _listing(buf, False)


def test_headers_damaged_at_random_give_what_the_careful_reader_gives():
    """Bytes of a few headers set at random: the same members, or the same error."""
    clean = _tar(count=1200)
    offsets = _header_offsets(clean)
    rng = random.Random(1202)
    for _ in range(60):
        buf = bytearray(clean)
        for _ in range(rng.randrange(1, 4)):
            at = rng.choice(offsets[600:])
            where = rng.choice([rng.randrange(512), rng.randrange(100, 160), 156])
            buf[at + where] = rng.choice([0, 32, 48, 55, 56, 0x80, 0xFF, rng.randrange(256)])
            if rng.random() < 0.7:
                buf[at + 148 : at + 156] = b" " * 8
                buf[at + 148 : at + 156] = b"%06o\0 " % sum(buf[at : at + 512])
        assert _listing(bytes(buf), True) == _listing(bytes(buf), False)
