"""Baskets in and out of their compact integer form, and reading basket files.

The miners never look at item labels: ``encode_baskets`` turns an iterable of baskets into
a CSR-style pair of arrays (``indptr`` into ``codes``), where each item label is replaced
by its rank in a deterministic sort of all labels. Ranking by label (rather than by first
appearance or by frequency) means a basket's codes, once sorted, are already in the order
in which itemsets and rule antecedents are reported, so no re-sorting of labels happens
after mining.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, count
from typing import IO, Any

import numpy as np

from crm_core.mining.gcpause import paused_gc

# Basket containers whose length and re-iteration we can rely on without copying.
_SIZED_BASKETS = frozenset({list, tuple, set, frozenset, dict})


@dataclass(frozen=True, eq=False)
class EncodedBaskets:
    """Baskets as integer codes: basket ``b`` holds ``codes[indptr[b]:indptr[b + 1]]``.

    Within a basket the codes are strictly increasing (duplicates removed); code ``i``
    stands for ``labels[i]`` and codes follow the deterministic label order.
    """

    labels: tuple[Hashable, ...]
    indptr: np.ndarray  # int64, length n_baskets + 1
    codes: np.ndarray  # int32

    @property
    def n_baskets(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_items(self) -> int:
        return len(self.labels)

    def item_counts(self) -> np.ndarray:
        """Number of baskets holding each item, indexed by code (int64)."""
        return np.bincount(self.codes, minlength=self.n_items).astype(np.int64, copy=False)


def _label_at(labels: Sequence[Hashable]) -> Callable[[int], Any]:
    # Any: labels may or may not be orderable among themselves; sorting tries, and a TypeError is caught.
    return labels.__getitem__


def label_order(labels: Sequence[Hashable]) -> list[int]:
    """Indices of ``labels`` in the order items are reported in.

    Labels of one type sort naturally (strings alphabetically, ints numerically). If the
    labels cannot be compared with each other (say ints mixed with strings), they are
    grouped by type name first and sorted naturally within each type, falling back to
    ``repr`` for types without an order, so the result is deterministic either way.
    """
    indices = range(len(labels))
    try:
        return sorted(indices, key=_label_at(labels))
    except TypeError:
        pass
    by_type: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i in indices:
        kind = type(labels[i])
        by_type[(kind.__module__, kind.__qualname__)].append(i)
    ordered: list[int] = []
    for type_name in sorted(by_type):
        group = by_type[type_name]
        try:
            ordered.extend(sorted(group, key=_label_at(labels)))
        except TypeError:
            ordered.extend(sorted(group, key=lambda i: repr(labels[i])))
    return ordered


def _materialize(baskets: Iterable[Iterable[Hashable]]) -> list:
    if isinstance(baskets, (str, bytes)):
        raise TypeError("baskets must be an iterable of baskets (iterables of items), not a single string")
    try:
        rows = baskets if isinstance(baskets, list) else list(baskets)
    except TypeError:
        raise TypeError(
            f"baskets must be an iterable of baskets (iterables of items); got {type(baskets).__name__}"
        ) from None
    # Fast path: every basket is a plain container (checked with one C-level pass).
    if set(map(type, rows)) <= _SIZED_BASKETS:
        return rows
    out = []
    for index, basket in enumerate(rows):
        if type(basket) in _SIZED_BASKETS:
            out.append(basket)
            continue
        if isinstance(basket, (str, bytes)):
            # A string is iterable, but splitting "milk" into letters is never what was meant.
            raise TypeError(
                f"basket #{index} is a string ({basket!r}); each basket must be an iterable of items, "
                f"e.g. [{basket!r}] for a basket holding that one item"
            )
        try:
            out.append(list(basket))
        except TypeError:
            raise TypeError(
                f"basket #{index} is not iterable ({type(basket).__name__} {basket!r}); "
                f"each basket must be an iterable of items"
            ) from None
    return out


def _unhashable_item_error(rows: list) -> TypeError:
    for index, basket in enumerate(rows):
        for item in basket:
            try:
                hash(item)
            except TypeError:
                return TypeError(
                    f"items must be hashable (e.g. strings or ints); basket #{index} holds "
                    f"an unhashable {type(item).__name__}: {item!r}"
                )
    return TypeError("items must be hashable (e.g. strings or ints)")


def encode_baskets(baskets: Iterable[Iterable[Hashable]]) -> EncodedBaskets:
    """Encode ``baskets`` (an iterable of iterables of hashable labels) as integer codes.

    Duplicates inside a basket are dropped. Empty baskets are kept: they count towards the
    number of baskets, i.e. the denominator of every support. Raises ``ValueError`` for no
    baskets at all and ``TypeError`` for a basket that is a string or not iterable, or for an
    unhashable item.
    """
    rows = _materialize(baskets)
    n_baskets = len(rows)
    if n_baskets == 0:
        raise ValueError("no baskets: need at least one basket to mine")

    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=n_baskets)
    n_entries = int(lengths.sum())
    # One pass over all items: the defaultdict hands out codes in first-appearance order.
    first_seen: defaultdict[Hashable, int] = defaultdict(count().__next__)
    try:
        codes = np.fromiter(map(first_seen.__getitem__, chain.from_iterable(rows)), dtype=np.int64, count=n_entries)
    except TypeError:
        raise _unhashable_item_error(rows) from None
    labels = list(first_seen)
    order = label_order(labels)
    n_items = len(labels)
    rank = np.empty(n_items, dtype=np.int64)
    rank[order] = np.arange(n_items, dtype=np.int64)

    # Sort (basket, code) keys to order each basket's codes and spot duplicates. The keys
    # arrive nearly sorted (basket-major), which the stable sort handles in close to linear time.
    shift = max(1, n_items.bit_length())
    keys = np.repeat(np.arange(n_baskets, dtype=np.int64), lengths) << shift
    keys |= rank[codes]
    keys.sort(kind="stable")
    if keys.size > 1:
        distinct = np.empty(keys.size, dtype=bool)
        distinct[0] = True
        np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
        if not distinct.all():
            keys = keys[distinct]
    basket_of_entry = keys >> shift
    indptr = np.zeros(n_baskets + 1, dtype=np.int64)
    np.cumsum(np.bincount(basket_of_entry, minlength=n_baskets), out=indptr[1:])
    sorted_codes = (keys & ((1 << shift) - 1)).astype(np.int32)
    return EncodedBaskets(labels=tuple(labels[i] for i in order), indptr=indptr, codes=sorted_codes)


def _open_text(path_or_file: str | os.PathLike | IO) -> str:
    if isinstance(path_or_file, (str, os.PathLike)):
        # utf-8-sig: exports from spreadsheet tools often start with a byte-order mark.
        with open(path_or_file, encoding="utf-8-sig", newline=None) as handle:
            return handle.read()
    if not hasattr(path_or_file, "read"):
        raise TypeError(f"read_baskets needs a path or an open file; got {type(path_or_file).__name__}")
    data = path_or_file.read()
    if isinstance(data, bytes):
        data = data.decode("utf-8-sig")
    # Normalise newlines the way open() does for text files.
    return data.replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff")


def read_baskets(path_or_file: str | os.PathLike | IO, sep: str | None = None) -> list[list[str]]:
    """Read one basket per line from a path or an open (text or binary) file.

    ``sep=None`` picks the separator for the whole file: commas if the file contains any,
    otherwise runs of whitespace (the format of the FIMI files such as T10I4D100K, whose
    lines end with a space). With a comma (or any other single non-space character) the
    line is parsed as CSV, so an item may be quoted to contain the separator. Each item is
    trimmed, empty items are dropped and a repeated item is kept once (first occurrence).

    A blank line is an empty basket: it counts towards the number of baskets, as in R's
    ``arules::read.transactions``. A final newline does not start another basket.
    """
    text = _open_text(path_or_file)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if sep is None:
        sep = "," if "," in text else ""
    with paused_gc():
        if sep == "":
            # str.split() without an argument already trims and drops empty items.
            return [list(dict.fromkeys(line.split())) for line in lines]
        if len(sep) == 1 and not sep.isspace():
            fields: Iterable[list[str]] = (_split_csv_line(line, sep) for line in lines)
        else:
            fields = (line.split(sep) for line in lines)
        return [list(dict.fromkeys(item for item in map(str.strip, row) if item)) for row in fields]


def _split_csv_line(line: str, sep: str) -> list[str]:
    if '"' not in line:
        return line.split(sep)
    # One line at a time: given all lines, the csv module would let an unbalanced quote
    # swallow the following lines into one basket.
    return next(csv.reader([line], delimiter=sep, skipinitialspace=True), [])


__all__ = ["EncodedBaskets", "encode_baskets", "label_order", "read_baskets"]
