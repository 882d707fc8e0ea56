"""Seeds, device choice and the run directory a notebook writes into.

The runner tells the kernel where its run lives through ``COMPANION_RUN_DIR``; a notebook opened by hand
(or executed by nbval) falls back to ``outputs/<slug>/interactive`` so it never clobbers a recorded run.
torch and NumPy are imported inside the functions that need them, so the CLI can refuse a bad parameter
before paying for a torch import.
"""
from __future__ import annotations

import logging
import os
import platform
import random
from pathlib import Path

log = logging.getLogger("companion")
if not log.handlers:
    _h = logging.StreamHandler()
    _h.setFormatter(logging.Formatter("[companion] %(message)s"))
    log.addHandler(_h)
    log.setLevel(logging.INFO)
    log.propagate = False

REPO_ROOT = Path(__file__).resolve().parents[2]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels so reruns match on CPU."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def choose_device(preference: str = "auto") -> "torch.device":
    """Resolve ``auto``/``cpu``/``cuda`` to a device and say which one in a single log line."""
    import torch

    pref = (preference or "auto").lower()
    if pref not in {"auto", "cpu", "cuda"} and not pref.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {preference!r}")
    if pref == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif pref.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={preference!r} was asked for but torch sees no CUDA device")
    else:
        dev = torch.device(pref)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    log.info("device: %s (%s)", dev, name)
    return dev


def run_dir(slug: str) -> Path:
    """Where this run's results.json and figures go (created on first use)."""
    env, root = os.environ.get("COMPANION_RUN_DIR"), os.environ.get("COMPANION_RUNS_ROOT")
    # COMPANION_RUNS_ROOT: one folder per notebook under it (make test points nbval's runs there, and the
    # headline-pin test reads them instead of running every notebook a second time)
    path = Path(env) if env else Path(root) / slug if root else REPO_ROOT / "outputs" / slug / "interactive"
    (path / "figures").mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Cache for fetched and preprocessed data; ``COMPANION_CACHE`` overrides the default."""
    env = os.environ.get("COMPANION_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / "paper-companion"
    path.mkdir(parents=True, exist_ok=True)
    return path


def versions() -> dict:
    """Versions worth recording beside every number."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("paper-companion", "torch", "numpy", "pandas", "scikit-learn", "papermill", "torch-geometric", "datasets"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out
