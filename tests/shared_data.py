"""Where the tests find the shared benchmark data sets (groceries.csv, T10I4D100K.dat,
online_retail_sample.csv), which live outside the repository.

``$CHATCRM_SHARED_DATA`` names the directory when it is set; otherwise it is ``shared/data``
beside the repository root (``/work/main/../shared/data`` for the main checkout, and in CI,
which clones the repository with a copy of ``shared/`` beside it). A test that needs a file it
cannot find skips, naming the path it tried and how to point it elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_VAR = "CHATCRM_SHARED_DATA"


def shared_data_dir() -> Path:
    """The data directory: ``$CHATCRM_SHARED_DATA`` if set, else ``<repo>/../shared/data``."""
    override = os.environ.get(ENV_VAR)
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


def missing_reason(name: str) -> str | None:
    """Why ``name`` cannot be used (the path tried), or None when it is there."""
    path = shared_data_dir() / name
    if path.is_file():
        return None
    source = (
        f"${ENV_VAR}" if os.environ.get(ENV_VAR) else f"<repo>/../shared/data; set {ENV_VAR} to use another directory"
    )
    return f"shared data file not found: {path} (from {source})"


def shared_file(name: str) -> Path:
    """The path of data file ``name``; skips the calling test when it is not there."""
    reason = missing_reason(name)
    if reason is not None:
        pytest.skip(reason)
    return shared_data_dir() / name
