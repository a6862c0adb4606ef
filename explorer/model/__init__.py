"""Frozen values every other package speaks in: entries, image references, errors, progress. No I/O."""
