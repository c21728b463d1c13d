"""The embedded demo source: a simulated core-banking database and gateway settlement files."""

from .writer import simulate

__all__ = ["simulate"]
