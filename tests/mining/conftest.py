"""Fixtures for the mining tests: the shared benchmark data sets and reference miners.

The data files live outside the repository, in ``shared/data`` next to the repository
root (``/work/main/../shared/data`` for the main checkout, the same directory for a
worktree beside it). ``CHATCRM_SHARED_DATA`` points elsewhere. Tests that need a file
skip, naming the path they looked at, when it is absent.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    override = os.environ.get("CHATCRM_SHARED_DATA")
    if override:
        return Path(override)
    return REPO_ROOT.parent / "shared" / "data"


def shared_file(name: str) -> Path:
    path = shared_data_dir() / name
    if not path.is_file():
        pytest.skip(
            f"shared data file {name} not found at {path} "
            f"(put the data sets in <repo>/../shared/data or set CHATCRM_SHARED_DATA)"
        )
    return path


@pytest.fixture(scope="session")
def groceries():
    from crm_core.mining import read_baskets

    return read_baskets(shared_file("groceries.csv"))


@pytest.fixture(scope="session")
def t10_sample():
    """The first 5,000 baskets of T10I4D100K (the whole file takes mlxtend ~16 s)."""
    from crm_core.mining import read_baskets

    with open(shared_file("T10I4D100K.dat"), encoding="ascii") as handle:
        head = "".join(line for _, line in zip(range(5000), handle))
    return read_baskets(io.StringIO(head))
