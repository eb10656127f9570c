"""Rules from a basket file on the C accelerator alone, without importing numpy.

``chatcrm mine --baskets FILE`` is a whole process, often started over and over by an analyst's
script; importing numpy takes about 0.1 s of it, more than mining Groceries does. Where the C
accelerator (``_fastmine.c``) is built, this path reads the file with ``read_baskets`` and hands
the lists to the same C functions the estimators use (encoding, search, rules, records), so it
finds the very rules ``AssociationRules`` finds (tests compare them). Without the accelerator it
returns None and the caller uses the estimator.

FIMI and plain CSV files (the ones ``read_encoded_baskets`` reads with numpy) go from their bytes
straight to integer codes in C, with no string per item; other files take ``read_baskets``. Only
the encoding's memory check runs here, for the lists (the search's estimate needs numpy); the C
search holds the baskets once more as integers plus projections bounded by ``PROJECTION_ITEMS``
per depth.
"""

from __future__ import annotations

import importlib
import io
import os
from array import array

from crm_core.mining.basket_files import label_order, read_baskets
from crm_core.mining.errors import NoBaskets
from crm_core.mining.gcpause import paused_gc
from crm_core.mining.records import Rule
from crm_core.mining.thresholds import (
    REL_TOL,
    check_max_len,
    check_min_support,
    check_unit_interval,
    min_count,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (see crm_core.mining.records)

if TYPE_CHECKING:
    from typing import IO, Any

# The C engine's defaults (the estimators' ``item_order`` and ``projection_items``; see levelwise.SearchOptions).
ITEM_ORDER = "frequency"
PROJECTION_ITEMS = 1 << 20


def _read_bytes(path_or_file: str | os.PathLike | IO) -> bytes:
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as handle:
            return handle.read()
    if not hasattr(path_or_file, "read"):
        raise TypeError(f"read_baskets needs a path or an open file; got {type(path_or_file).__name__}")
    content = path_or_file.read()
    return content.encode("utf-8") if isinstance(content, str) else content


def mine_file_rules(
    path_or_file: str | os.PathLike | IO,
    min_support: float | int,
    min_confidence: float,
    max_len: int | None = None,
    sep: str | None = None,
    max_memory_bytes: int | None = None,
) -> list[Rule] | None:
    """``AssociationRules(min_support, min_confidence, max_len=max_len).fit(read_baskets(path_or_file, sep)).rules_``
    computed in C, or None when the C accelerator is not built. Raises as ``fit`` does."""
    try:
        _fastmine: Any = importlib.import_module("crm_core.mining._fastmine")
    except ImportError:
        return None
    check_min_support(min_support)
    check_unit_interval("min_confidence", min_confidence)
    check_max_len(max_len)
    data = _read_bytes(path_or_file)
    # FIMI and plain CSV files straight into codes; any other file as read_baskets reads it.
    try:
        collected = _fastmine.read_simple(data, sep)
    except OverflowError:  # over 2**31 items: the numpy path counts in 64 bits
        return None
    if collected is None:
        rows = read_baskets(io.BytesIO(data), sep=sep)
        del data
        if rows:
            # Imported here: FIMI and plain CSV files (read_simple) never need it.
            from crm_core.mining.memory import check_encoding_fits

            check_encoding_fits(rows, max_memory_bytes)
        collected = _fastmine.collect(rows)
        del rows
    else:
        del data
    if collected is None:  # (read_baskets gives lists of strings, which collect always takes)
        return None
    labels, codes, indptr = collected
    n_baskets = indptr.length - 1
    if n_baskets == 0:
        raise NoBaskets
    order = label_order(labels)
    rank = array("i", bytes(4 * len(labels)))
    for position, index in enumerate(order):
        rank[index] = position
    _fastmine.finish(codes, indptr, rank)
    threshold = min_count(min_support, n_baskets)
    levels = _fastmine.mine(
        codes, indptr, len(labels), threshold, max_len or 0, ITEM_ORDER == "frequency", PROJECTION_ITEMS
    )
    del codes, indptr
    blocks = _fastmine.rules(levels, float(n_baskets), float(min_confidence) * (1.0 - REL_TOL), -1.0)
    with paused_gc():
        return _fastmine.rule_records(
            [(length, *arrays) for length, arrays in enumerate(blocks, start=1)],
            tuple(labels[i] for i in order),
            n_baskets,
            Rule,
        )
