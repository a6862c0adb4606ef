"""Verification: every layer blob read whole, its digest and its diff_id checked.

A normal load reads only headers of plain layers; ``report --verify`` (and the window's
Verify) reads every byte, so a damaged or swapped blob is found.
"""

from __future__ import annotations

from dataclasses import dataclass

from explorer.formats import compression
from explorer.formats.compression import DecompressError, HashingReader
from explorer.model.errors import ExplorerError
from explorer.image.loader import Image
from explorer.model.progress import Monitor
from explorer.formats.source import Source


@dataclass(frozen=True)
class LayerCheck:
    """One layer's verification."""

    layer: int
    expected_digest: str
    actual_digest: str
    expected_diff_id: str
    actual_diff_id: str
    error: str = ""

    def as_dict(self) -> dict[str, object]:
        """The report's ``verification`` item."""
        return {"layer": self.layer, "ok": self.ok, "expected_digest": self.expected_digest,
                "actual_digest": self.actual_digest, "expected_diff_id": self.expected_diff_id,
                "actual_diff_id": self.actual_diff_id, "error": self.error}

    @property
    def ok(self) -> bool:
        """Both digests as expected (an unknown expectation is not a mismatch)."""
        return not self.error and (not self.expected_digest or self.expected_digest == self.actual_digest) and \
            (not self.expected_diff_id or self.expected_diff_id == self.actual_diff_id)


def verify(source: Source, image: Image, monitor: Monitor | None = None) -> list[LayerCheck]:
    """Read every layer blob and compare its digests with what the manifest and config say."""
    monitor = monitor or Monitor(source.info.path)
    out = []
    for i, layer in enumerate(image.layers):
        blob, scan = image.blobs[i], image.scans[i]
        monitor.begin(f"verifying layer {i + 1} of {len(image.layers)}", i, len(image.layers), layer.blob_size)
        try:
            expected = _blob_expectation(layer.digest, scan.compression, layer.diff_id)
            algorithm = expected.partition(":")[0] if expected else "sha256"
            if algorithm not in DIGEST_ALGORITHMS:
                raise ExplorerError(f"its digest uses {algorithm}, which the OCI spec does not register "
                                    f"(sha256 and sha512 are): it cannot be checked")
            raw = HashingReader(source.container.raw_reader(blob, 0), algorithm=algorithm)
            # a plain layer is its own tar: one hash of its bytes is both digests
            tar = raw if scan.compression == compression.NONE else HashingReader(
                compression.open_reader(scan.compression, raw.read), guard=compression.bomb_guard(raw, f"layer {i}"))
            while tar.read(compression.CHUNK):
                monitor.tick(raw.count)
            raw.drain()
            out.append(LayerCheck(i, expected, raw.digest(), layer.diff_id, tar.digest() if tar is not raw
                                  else _sha256_of_plain(raw, layer.diff_id, source, blob)))
        except (ExplorerError, DecompressError, OSError) as exc:
            out.append(LayerCheck(i, layer.digest, "", layer.diff_id, "", error=str(exc)))
    return out


DIGEST_ALGORITHMS = ("sha256", "sha512")  # what the OCI image spec registers


def _blob_expectation(digest: str, kind: str, diff_id: str) -> str:
    """What the stored blob must hash to (a plain classic layer has only its diff_id)."""
    if digest:
        return digest
    return diff_id if kind == compression.NONE else ""


def _sha256_of_plain(raw: HashingReader, diff_id: str, source: Source, blob: str) -> str:
    """A plain layer's diff_id: its blob's own hash when that is sha256, else hashed again."""
    if raw.algorithm == "sha256":
        return raw.digest()
    again = HashingReader(source.container.raw_reader(blob, 0))
    again.drain()
    return again.digest()


def describe(check: LayerCheck) -> str:
    """One line per layer."""
    if check.error:
        return f"layer {check.layer}: cannot be read: {check.error}"
    if check.ok:
        return f"layer {check.layer}: OK ({check.actual_digest[:19]}…)"
    parts = []
    if check.expected_digest and check.expected_digest != check.actual_digest:
        parts.append(f"blob digest {check.actual_digest} but the manifest says {check.expected_digest}")
    if check.expected_diff_id and check.expected_diff_id != check.actual_diff_id:
        parts.append(f"diff_id {check.actual_diff_id} but the config says {check.expected_diff_id}")
    return f"layer {check.layer}: MISMATCH: " + "; ".join(parts)
