"""Fixtures for the mining tests: the shared benchmark data sets.

The data files live outside the repository; tests.shared_data finds them
(``$CHATCRM_SHARED_DATA``, else ``shared/data`` beside the repository root). Tests that need a
file skip, naming the path they tried, when it is not there.
"""

from __future__ import annotations

import io

import pytest
from mining_reference import ENGINES

from tests.shared_data import shared_file


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    """The mining engine a test runs on: "c" and then "numpy"."""
    return request.param


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
