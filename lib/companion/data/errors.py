"""Errors for data files: they always name the file (and the line, where one is to blame)."""
from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """A data file is malformed; the message starts with ``path:line:``."""

    def __init__(self, path, line: int | None, problem: str):
        self.path, self.line = Path(path), line
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")


class MissingDataError(FileNotFoundError):
    """A dataset is not where it was looked for; the message says where to put it."""

    def __init__(self, what: str, looked: list, hint: str):
        self.looked = [str(p) for p in looked]
        tried = "\n  ".join(self.looked)
        super().__init__(f"{what} not found. Looked in:\n  {tried}\n{hint}")
