"""A corpus of bad and odd archives, generated: truncations at every structural point, bit
flips, wrong sizes and checksums, missing and duplicate blobs, digest mismatches, link loops,
dangerous and enormous names, huge PAX records, decompression bombs, invalid UTF-8.

``python -m tests.corpus DIR`` writes them out; the tests build them in memory.
"""

from __future__ import annotations

import gzip
import io
import os
import json
import sys
import tarfile
import zlib
from pathlib import Path
from typing import Iterator

import zstandard

from tests.builders import E, d, docker_archive, f, hard, layer_tar, members_of, oci_archive, sym, tar_of, wh


def _base_layers() -> list[bytes]:
    return [
        layer_tar([d("etc"), f("etc/passwd", "root:x:0:0\n"), d("usr"), d("usr/bin"), f("usr/bin/tool", b"\x7fELF" + bytes(3000)),
                   sym("bin", "usr/bin"), hard("etc/passwd-", "etc/passwd")]),
        layer_tar([wh("etc/passwd-"), f("etc/hostname", "box\n"), d("var"), f("var/log.txt", "x" * 5000)]),
    ]


def _members_offsets(raw: bytes) -> list[tuple[str, int, int, int]]:
    """(name, header offset, data offset, size) of each member of a plain tar."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for m in tar:
            out.append((m.name, m.offset, m.offset_data, m.size))
    return out


def _flip(data: bytes, at: int, mask: int = 0x5A) -> bytes:
    b = bytearray(data)
    b[at % len(b)] ^= mask
    return bytes(b)


def _replace_member(raw: bytes, name: str, new: bytes) -> bytes:
    members = members_of(raw)
    members[name] = new
    return tar_of(members)


def cases() -> Iterator[tuple[str, bytes]]:
    """(name, archive bytes) for every case."""
    layers = _base_layers()
    docker = docker_archive(layers)
    oci = oci_archive(layers)
    oci_zstd_members = members_of(oci_archive(layers, compress="none"))
    for name, blob in list(oci_zstd_members.items()):
        if name.startswith("blobs/") and blob[257:262] == b"ustar":
            oci_zstd_members[name] = zstandard.ZstdCompressor().compress(blob)
    oci_zstd = tar_of(oci_zstd_members)  # digests now disagree: a mismatch case of its own
    yield "oci-zstd-digest-mismatch", oci_zstd

    # truncation at every structural point of the outer archives, and in the middle of data
    for label, raw in (("docker", docker), ("oci", oci)):
        points = set()
        for _name, header, data, size in _members_offsets(raw):
            points |= {header, header + 100, header + 511, data, data + size // 2, data + max(size - 1, 0)}
        points |= {0, 1, 511, len(raw) - 1024, len(raw) - 1}
        for at in sorted(p for p in points if 0 <= p < len(raw)):
            yield f"{label}-truncated-at-{at}", raw[:at]
    # the whole archive compressed, then cut: gzip and zstd streams ending early
    for label, packed in (("gz", gzip.compress(docker)), ("zst", zstandard.ZstdCompressor().compress(docker))):
        for fraction in (0.05, 0.3, 0.5, 0.8, 0.99):
            yield f"outer-{label}-cut-{fraction}", packed[: int(len(packed) * fraction)]
        for at in (10, len(packed) // 3, len(packed) // 2, len(packed) - 20):
            yield f"outer-{label}-flip-{at}", _flip(packed, at)
    # layer tars and compressed layer streams cut short or damaged inside an intact archive
    docker_members = members_of(docker)
    layer_names = [n for n in docker_members if n.endswith("/layer.tar")]
    for name in layer_names:
        blob = docker_members[name]
        for at in (0, 100, 512, 1024, len(blob) // 2, len(blob) - 1024, len(blob) - 1):
            yield f"layer-{name[:8]}-cut-{at}", _replace_member(docker, name, blob[:at])
        for _n, header, data, size in _members_offsets(blob):
            for off in (0, 124, 148, 156, 257):  # name, size, checksum, type, magic
                yield f"layer-{name[:8]}-header-{header}-flip-{off}", _replace_member(docker, name, _flip(blob, header + off))
    oci_members = members_of(oci)
    for name, blob in oci_members.items():
        if blob[:2] == b"\x1f\x8b":
            for at in (2, 10, len(blob) // 2, len(blob) - 8, len(blob) - 1):
                yield f"oci-layer-{name[-8:]}-cut-{at}", _replace_member(oci, name, blob[:at])
                yield f"oci-layer-{name[-8:]}-flip-{at}", _replace_member(oci, name, _flip(blob, at))
    # JSON documents cut, flipped, or of the wrong shape
    for label, raw in (("docker", docker), ("oci", oci)):
        for name, blob in members_of(raw).items():
            if blob[:1] not in (b"{", b"["):
                continue
            short = name.rsplit("/", 1)[-1][:8]
            for at in (1, len(blob) // 2, len(blob) - 1):
                yield f"{label}-json-{short}-cut-{at}", _replace_member(raw, name, blob[:at])
            yield f"{label}-json-{short}-flip", _replace_member(raw, name, _flip(blob, len(blob) // 3, 0x01))
            for shape in (b"null", b"[]", b"{}", b'"text"', b"12", b'{"manifests": 5, "Layers": "x", "config": []}'):
                yield f"{label}-json-{short}-shape-{shape[:6].decode()}", _replace_member(raw, name, shape)
    # wrong sizes and checksums in the outer tar
    for label, raw in (("docker", docker), ("oci", oci)):
        for name, header, _data, size in _members_offsets(raw)[:6]:
            b = bytearray(raw)
            b[header + 124:header + 136] = b"%011o\0" % (size * 7 + 3)
            yield f"{label}-wrong-size-{header}", bytes(b)
            b = bytearray(raw)
            b[header + 148:header + 156] = b"0000000\0"
            yield f"{label}-bad-checksum-{header}", bytes(b)
    # missing and duplicate blobs
    for label, raw in (("docker", docker), ("oci", oci)):
        members = members_of(raw)
        for name in list(members):
            rest = dict(members)
            del rest[name]
            yield f"{label}-missing-{name.replace('/', '_')[:30]}", tar_of(rest)
        # the same name twice, the second copy different: the tar's last one counts
        dup = io.BytesIO()
        with tarfile.open(fileobj=dup, mode="w") as tar:
            for name, blob in members.items():
                for data in ((blob, blob[:-1] + b"X") if name.startswith("blobs/") or name.endswith("layer.tar") else (blob,)):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        yield f"{label}-duplicate-blobs", dup.getvalue()
    # indexes pointing at each other, links looping
    index_loop = dict(members_of(oci))
    index_loop["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + "1" * 64, "size": 10}]}).encode()
    index_loop["blobs/sha256/" + "1" * 64] = json.dumps({"manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + "1" * 64}]}).encode()
    yield "oci-index-points-at-itself", tar_of(index_loop)
    loop = io.BytesIO()
    with tarfile.open(fileobj=loop, mode="w") as tar:
        for name, blob in members_of(docker).items():
            if name == "manifest.json":
                for a, b in (("manifest.json", "m2.json"), ("m2.json", "manifest.json")):
                    info = tarfile.TarInfo(a)
                    info.type, info.linkname = tarfile.SYMTYPE, b
                    tar.addfile(info)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    yield "docker-manifest-symlink-loop", loop.getvalue()
    yield "layer-symlink-loop", docker_archive([layer_tar([sym("a", "b"), sym("b", "a"), f("a/x", "1"), f("b/c/d", "2")])])
    # dangerous and enormous names
    yield "names-dotdot-absolute", docker_archive([layer_tar([f("../../etc/evil", "x"), f("/abs/ok", "1"), f("a/../../b", "2")])])
    yield "name-64k", docker_archive([layer_tar([f("d/" + "n" * 65_000, "long")])])
    yield "name-deep", docker_archive([layer_tar([f("/".join(["x"] * 2000), "deep")])])
    bad = b"\xff\xfe\x80bad".decode("utf-8", "surrogateescape")
    yield "names-invalid-utf8", docker_archive([layer_tar([f(bad, "1"), sym(bad + "2", bad), d(bad + "d"), f(bad + "d/" + bad, "3")])])
    yield "tags-invalid-utf8", docker_archive([layer_tar([f("a", "1")])], manifest=[{"Config": "x.json", "RepoTags": ["\udcff:bad"], "Layers": []}])
    # huge PAX records and a PAX size that lies
    yield "pax-huge-record", docker_archive([_pax_layer("x" * (20 << 20))])
    yield "pax-many-records", docker_archive([_pax_layer("y" * 200_000, count=50)])
    yield "pax-size-lies", docker_archive([layer_tar([E("file", "a", b"abc", pax={"size": "999999999999"})])])
    # decompression bombs: a few KB that would expand to gigabytes
    yield "bomb-gzip-layer", _bomb_archive()
    yield "bomb-outer-gzip", _gzip_bomb(4 << 30)
    # many entries in one folder (a million with LAYER_EXPLORER_CORPUS_BIG=1: too slow for every run)
    count = 1_000_000 if os.environ.get("LAYER_EXPLORER_CORPUS_BIG") else 50_000
    yield f"one-folder-{count // 1000}k", docker_archive([layer_tar([d("many")] + [f(f"many/{i}", b"") for i in range(count)])])


def _pax_layer(value: str, count: int = 1) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(count):
            info = tarfile.TarInfo(f"f{i}")
            info.pax_headers = {"comment": value}
            tar.addfile(info, io.BytesIO(b""))
    return buf.getvalue()


def _gzip_bomb(size: int) -> bytes:
    """A gzip stream of ``size`` zero bytes, made without holding them in memory."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    out = [c.compress(zeros) for _ in range(size >> 20)]
    out.append(c.flush())
    return b"".join(out)


def _bomb_archive() -> bytes:
    """An OCI archive whose gzip layer holds a tar header for a 10 GB file of zeros."""
    header = tarfile.TarInfo("zeros")
    header.size = 10 << 30
    head = header.tobuf(format=tarfile.GNU_FORMAT)
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    parts = [c.compress(head)] + [c.compress(zeros) for _ in range(1024)]  # 1 GiB compressed to ~1 MB
    blob = b"".join(parts) + c.flush()
    members = members_of(oci_archive([layer_tar([f("a", "1")])]))
    for name, data in list(members.items()):
        if data[:2] == b"\x1f\x8b":
            members[name] = blob
    return tar_of(members)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for name, data in cases():
        (out / f"{name}.tar").write_bytes(data)
        n += 1
    print(f"{n} cases in {out}")


if __name__ == "__main__":
    main()
