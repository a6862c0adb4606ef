"""A mutation fuzzer over the archive reader and the layer applier.

    python -m tests.fuzz [--minutes 5] [--seed 1] [--out tests/data/fuzz-findings]

Seeds are the corpus' healthy archives; each round mutates one (bit flips, cut, bytes
inserted or repeated, a tar block duplicated) and reads it. Anything but a clean result or
one of the core's own errors is a finding: the input is saved under --out, to be fixed and
kept as a regression case.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

from explorer.model.errors import ExplorerError
from explorer.image.loader import load_image
from explorer.formats.source import open_source
from tests.builders import d, docker_archive, f, hard, layer_tar, oci_archive, opq, sym, wh


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
            load_image(src, src.select())
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
    work.mkdir(parents=True, exist_ok=True)
    end = time.monotonic() + seconds
    found = n = 0
    while time.monotonic() < end and (rounds is None or n < rounds):
        n += 1
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
