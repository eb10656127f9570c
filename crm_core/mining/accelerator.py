"""The optional C accelerator of the miner (``_fastmine``, built from ``_fastmine.c``) and the choice of engine.

``pip install -e .`` (and ``make venv``) compile ``_fastmine.c`` with the CPython C API alone; where
there is no C compiler the install still succeeds without it (setup.py marks it optional), and the
estimators run on the numpy engine (``levelwise``). Both find exactly the same itemsets, counts and
rules; the C engine is a depth-first search with projected baskets (see the C file's header),
several times faster and a fraction of the memory, on par with pyfim (Borgelt's C).

The estimators' ``engine`` parameter picks one: ``"auto"`` (the default) the C engine when it is
built, ``"c"`` insists on it (ImportError without it), ``"numpy"`` never uses it. This module turns
the C engine's flat arrays into the same ``Level`` objects and records the numpy engine produces.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from crm_core.mining.baskets import EncodedBaskets, label_order
from crm_core.mining.levelwise import Level

_fastmine: ModuleType | None
try:
    from crm_core.mining import _fastmine  # type: ignore[attr-defined,no-redef]
except ImportError:  # built without a C compiler: the numpy engine does the work
    _fastmine = None

ENGINES = ("auto", "c", "numpy")
ITEM_ORDERS = ("frequency", "label")


def available() -> bool:
    """Whether the compiled accelerator is importable here."""
    return _fastmine is not None


def uses_c(engine: str) -> bool:
    """Whether ``engine`` (already checked to be one of ENGINES) runs on the C accelerator."""
    if engine == "numpy":
        return False
    if engine == "c" and _fastmine is None:
        raise ImportError(
            "engine='c' needs the compiled accelerator crm_core.mining._fastmine, which this installation "
            "lacks (it is built by `pip install -e .` where a C compiler is present); use engine='auto' or 'numpy'"
        )
    return _fastmine is not None


def _module() -> Any:
    assert _fastmine is not None, "callers check uses_c() first"
    return _fastmine


def encode(rows: object) -> EncodedBaskets | None:
    """``encode_baskets`` for a list of lists or tuples of strings or ints: the same EncodedBaskets.

    None for anything else (other containers or item types, an empty list), which the general
    encoder then handles, with its error messages.
    """
    fastmine = _module()
    collected = fastmine.collect(rows)
    if collected is None or not collected[2].length > 1:
        return None
    labels, codes, indptr = collected
    order = label_order(labels)
    rank = np.empty(len(labels), dtype=np.int32)
    rank[order] = np.arange(len(labels), dtype=np.int32)
    kept = fastmine.finish(codes, indptr, rank)
    return EncodedBaskets(
        labels=tuple(labels[i] for i in order),
        indptr=np.frombuffer(indptr, dtype=np.int64),
        codes=np.frombuffer(codes, dtype=np.int32, count=kept),
    )


def _int_array(values: np.ndarray, dtype: type[np.signedinteger]) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=dtype)


def frequent_levels(
    encoded: EncodedBaskets, min_count: int, max_len: int | None, item_order: str, projection_items: int
) -> list[Level]:
    """``levelwise.frequent_levels`` on the C engine: the same levels, in the same order."""
    found = _module().mine(
        _int_array(encoded.codes, np.int32),
        _int_array(encoded.indptr, np.int64),
        encoded.n_items,
        min_count,
        max_len or 0,
        item_order == "frequency",
        projection_items,
    )
    return [
        Level(items=np.frombuffer(items, dtype=np.int32).reshape(-1, k), counts=np.frombuffer(counts, dtype=np.int64))
        for k, (items, counts) in enumerate(found, start=1)
    ]


def level_arrays(levels: list[Level]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Levels as the (items, counts) pairs of int32 / int64 arrays the C functions read."""
    return [(_int_array(level.items, np.int32), _int_array(level.counts, np.int64)) for level in levels]


def rule_arrays(
    levels: list[Level], n_baskets: int, confidence_at_least: float, lift_at_least: float | None
) -> list[tuple[np.ndarray, ...]]:
    """Rules of every itemset of length >= 2, one tuple of arrays per antecedent length (1, 2, ...).

    The thresholds come already lowered by the tolerance (``thresholds.REL_TOL``); each tuple holds
    antecedents (n, length), consequents, counts, antecedent counts and consequent counts, ordered
    by antecedent then consequent.
    """
    blocks = _module().rules(
        level_arrays(levels), float(n_baskets), confidence_at_least, -1.0 if lift_at_least is None else lift_at_least
    )
    out: list[tuple[np.ndarray, ...]] = []
    for length, (antecedents, consequents, counts, antecedent_counts, consequent_counts) in enumerate(blocks, 1):
        out.append(
            (
                np.frombuffer(antecedents, dtype=np.int32).reshape(-1, length),
                np.frombuffer(consequents, dtype=np.int32),
                np.frombuffer(counts, dtype=np.int64),
                np.frombuffer(antecedent_counts, dtype=np.int64),
                np.frombuffer(consequent_counts, dtype=np.int64),
            )
        )
    return out


def itemset_records(levels: list[Level], labels: tuple[Hashable, ...], n_baskets: int, cls: type) -> list:
    """``cls(items, count, support)`` for every itemset, level by level (built in C)."""
    return _module().itemset_records(level_arrays(levels), labels, n_baskets, cls)


def rule_records(blocks: Sequence[tuple[int, Sequence[np.ndarray]]], labels: tuple, n_baskets: int, cls: type) -> list:
    """``cls(antecedent, consequent, support, confidence, lift, count)`` for each rule of each
    (antecedent length, arrays) block, in order (built in C)."""
    arrays = [
        (
            length,
            _int_array(antecedents.reshape(len(consequents), length), np.int32),
            _int_array(consequents, np.int32),
            _int_array(counts, np.int64),
            _int_array(antecedent_counts, np.int64),
            _int_array(consequent_counts, np.int64),
        )
        for length, (antecedents, consequents, counts, antecedent_counts, consequent_counts) in blocks
    ]
    return _module().rule_records(arrays, labels, n_baskets, cls)
