"""Executable companion to ten papers: shared library behind the per-paper notebooks."""
__version__ = "0.1.0"
