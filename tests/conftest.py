"""Test set-up shared by every test module."""

import os

# GUI tests run without a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


import tempfile

# Caches (downloaded blobs, saved indexes) go to a folder of the test run, never the user's.
os.environ.setdefault("LAYER_EXPLORER_CACHE", tempfile.mkdtemp(prefix="layer-explorer-test-cache-"))
# Tests exercise the real loading path; the index cache has its own tests, which turn it on.
os.environ["LAYER_EXPLORER_NO_INDEX_CACHE"] = "1"
