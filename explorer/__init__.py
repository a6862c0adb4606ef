"""Layer Explorer: look inside container images."""

__version__ = "0.1.0"
