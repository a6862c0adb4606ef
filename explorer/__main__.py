"""Entry point for ``python -m explorer``."""

from explorer.cli import entry

entry()
