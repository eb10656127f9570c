"""Fixtures for the mining tests: the shared benchmark data sets.

The data files live outside the repository, in ``shared/data`` next to the repository
root (``/work/main/../shared/data`` for the main checkout; a worktree beside it has the
same parent). If a file is not there, ``$CHATCRM_SHARED_DATA/<file>`` is tried. Tests that
need a file skip, naming the places they looked, when it is in neither.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_file(name: str) -> Path:
    candidates = [REPO_ROOT.parent / "shared" / "data" / name]
    override = os.environ.get("CHATCRM_SHARED_DATA")
    if override:
        candidates.append(Path(override) / name)
    for path in candidates:
        if path.is_file():
            return path
    pytest.skip(
        f"shared data file {name} not found (looked at {', '.join(map(str, candidates))}); "
        f"put the data sets in <repo>/../shared/data or set CHATCRM_SHARED_DATA"
    )


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
