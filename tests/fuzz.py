"""A mutation fuzzer over the archive reader and the layer applier.

    python -m tests.fuzz [--minutes 5] [--seed 1] [--out fuzz-findings]

Seeds are the corpus' healthy archives; each round mutates one (bit flips, cut, bytes
inserted or repeated, a tar block duplicated; or, three rounds in ten, a value of the manifest
or config swapped for one of another type) and reads it, building its report and inspect text. Anything but a clean result or
one of the core's own errors is a finding: the input is saved under --out, to be fixed and
kept as a regression case.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

from explorer.model.errors import ExplorerError
from explorer.image.loader import load_image
from explorer.formats.source import open_source
from explorer.image.inspect import inspect_object, inspect_text
from explorer.report import build_report, text_report
from tests.builders import d, docker_archive, f, hard, layer_tar, members_of, oci_archive, opq, sym, tar_of, wh


def seeds() -> list[bytes]:
    """Healthy archives of each layout to mutate."""
    layers = [layer_tar([d("etc"), f("etc/a", "alpha"), sym("l", "etc/a"), hard("h", "etc/a"), d("o"), f("o/x", "1")]),
              layer_tar([wh("etc/a"), opq("o"), f("o/y", "2"), f("etc/b", "beta" * 100)])]
    return [docker_archive(layers), oci_archive(layers), oci_archive(layers, compress="none")]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random damage."""
    b = bytearray(data)
    if len(b) < 2:
        return bytes(b) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 1024)))
    kind = rng.randrange(6)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del b[rng.randrange(len(b)):]
    elif kind == 2:
        at = rng.randrange(len(b))
        b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 600)))
    elif kind == 3:
        at = rng.randrange(0, len(b), 512)
        b[at:at] = b[at:at + 512] * rng.randint(1, 4)
    elif kind == 4:
        at = rng.randrange(len(b))
        b[at:at + 12] = str(rng.randrange(10 ** 11)).zfill(11).encode() + b"\0"
    else:
        at = rng.randrange(0, len(b), 512)
        del b[at:at + 512]
    return bytes(b)


ODD_VALUES = [None, True, 0, -1, 2 ** 63, 1.5, "", "x" * 1000, [], [1, "a"], {}, {"a": [1]}, "\u202e\x1b[31m",
              [[[[[]]]]], {"": None}]


def _paths(doc, at=()):
    """Every place in a JSON document, as key paths."""
    yield at
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, at + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, at + (i,))


def _replace(doc, at, value):
    if not at:
        return value
    node = doc
    for k in at[:-1]:
        node = node[k]
    node[at[-1]] = value
    return doc


def mutate_json(data: bytes, rng: random.Random) -> bytes | None:
    """A docker archive whose manifest or config has one value swapped for one of another
    type, the config renamed to its new digest so that only the types are wrong."""
    try:
        members = members_of(data)
    except Exception:  # noqa: BLE001 (not a tar the builders read: no JSON to change)
        return None
    if "manifest.json" not in members:
        return None
    manifest = json.loads(members["manifest.json"])
    config_name = manifest[0]["Config"] if isinstance(manifest, list) and manifest else None
    target = rng.choice(["manifest.json", config_name] if config_name in members else ["manifest.json"])
    doc = json.loads(members[target])
    at = rng.choice(list(_paths(doc)))
    doc = _replace(doc, at, rng.choice(ODD_VALUES))
    raw = json.dumps(doc).encode()
    if target == config_name:
        del members[config_name]
        new_name = hashlib.sha256(raw).hexdigest() + ".json"
        members[new_name] = raw
        manifest[0]["Config"] = new_name
        members["manifest.json"] = json.dumps(manifest).encode()
    else:
        members["manifest.json"] = raw
    return tar_of(members)


class _Timeout(Exception):
    pass


def run_one(data: bytes, path: Path, limit: int = 30) -> str | None:
    """Read one input; a description of what went wrong, or None when it behaved."""
    path.write_bytes(data)

    def alarm(*_):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(limit)
    try:
        with open_source(str(path)) as src:
            image = load_image(src, src.select())
            # what is made of the documents downstream must hold too
            report = build_report(image, src.images, str(path), contents=False)
            text_report(report, 0, 0)
            inspect_text(inspect_object(src, image))
        return None
    except ExplorerError:
        return None  # a clear error: what bad input should get
    except _Timeout:
        return f"no answer within {limit} s"
    except Exception:  # noqa: BLE001 (anything else is a finding)
        return traceback.format_exc()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def fuzz(seconds: float, seed: int, out: Path, on_finding: Callable[[str, bytes], None] | None = None,
         rounds: int | None = None) -> int:
    """Mutate and read until the time (or the number of rounds) is up; returns the findings."""
    rng = random.Random(seed)
    base = seeds()
    work = out / ".work"
    made = not out.exists()
    work.mkdir(parents=True, exist_ok=True)
    end = time.monotonic() + seconds
    try:
        return _rounds(rng, base, work, out, end, rounds, on_finding)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if made:  # the output folder made here goes too when it holds no finding
            with contextlib.suppress(OSError):
                out.rmdir()


def _rounds(rng: random.Random, base: list[bytes], work: Path, out: Path, end: float, rounds: int | None,
            on_finding: Callable[[str, bytes], None] | None) -> int:
    """``fuzz``'s loop: the findings it saved."""
    found = n = 0
    while time.monotonic() < end and (rounds is None or n < rounds):
        n += 1
        data = None
        if rng.random() < 0.3:  # the documents' values, of every type, where a type is expected
            data = mutate_json(rng.choice(base), rng)
        if data is None:
            data = mutate(rng.choice(base), rng)
            if rng.random() < 0.3:
                data = mutate(data, rng)
        problem = run_one(data, work / "input.tar")
        if problem:
            found += 1
            name = hashlib.sha256(data).hexdigest()[:16]
            (out / f"{name}.tar").write_bytes(data)
            (out / f"{name}.txt").write_text(problem)
            if on_finding:
                on_finding(problem, data)
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=5)
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--out", type=Path, default=Path("fuzz-findings"))
    args = p.parse_args()
    found = fuzz(args.minutes * 60, args.seed, args.out)
    print(f"seed {args.seed}: {found} finding(s)" + (f", saved in {args.out}" if found else ""))
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
