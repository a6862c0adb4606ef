"""The layered filesystem: merged views, per-layer changes, per-path history. No Qt here."""
