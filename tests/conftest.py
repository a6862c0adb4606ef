"""Test set-up shared by every test module."""

import os
from pathlib import Path

import pytest

# GUI tests run without a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


import tempfile

# Caches (downloaded blobs, saved indexes) go to a folder of the test run, never the user's.
os.environ.setdefault("LAYER_EXPLORER_CACHE", tempfile.mkdtemp(prefix="layer-explorer-test-cache-"))
# Tests exercise the real loading path; the index cache has its own tests, which turn it on.
os.environ["LAYER_EXPLORER_NO_INDEX_CACHE"] = "1"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A cache folder of the test's own, with the index cache on."""
    monkeypatch.setenv("LAYER_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LAYER_EXPLORER_NO_INDEX_CACHE", raising=False)
    return tmp_path / "cache"
