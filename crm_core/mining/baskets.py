"""Baskets in and out of their compact integer form, and reading basket files.

The miners never look at item labels: ``encode_baskets`` turns an iterable of baskets into
a CSR-style pair of arrays (``indptr`` into ``codes``), where each item label is replaced
by its rank in a deterministic sort of all labels. Ranking by label (rather than by first
appearance or by frequency) means a basket's codes, once sorted, are already in the order
in which itemsets and rule antecedents are reported, so no re-sorting of labels happens
after mining.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from itertools import chain, count
from typing import IO, Any

import numpy as np

from crm_core.mining.basket_files import label_order, read_baskets
from crm_core.mining.errors import NoBaskets

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

    def __len__(self) -> int:
        """The number of baskets, as for a list of baskets (so ``if baskets:`` reads the same)."""
        return self.n_baskets

    def item_counts(self) -> np.ndarray:
        """Number of baskets holding each item, indexed by code (int64)."""
        return np.bincount(self.codes, minlength=self.n_items).astype(np.int64, copy=False)


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
        raise NoBaskets

    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=n_baskets)
    n_entries = int(lengths.sum())
    basket_of_entry = np.repeat(np.arange(n_baskets, dtype=np.int64), lengths)
    from_text = _encode_string_items(rows, n_entries)
    if from_text is not None:
        return _sorted_baskets(basket_of_entry, *from_text, n_baskets)
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

    return _sorted_baskets(basket_of_entry, rank[codes], tuple(labels[i] for i in order), n_baskets)


# Joins the items of all baskets in _encode_string_items; an item holding it takes the general path.
_ITEM_JOINER = "\x1f"


def _encode_string_items(rows: list, n_entries: int) -> tuple[np.ndarray, tuple[Hashable, ...]] | None:
    """Codes and labels when every item is a string, from one joined text rather than a dict lookup per item.

    Hashing a million item strings one by one cost more than the whole search on T10I4D100K;
    joining them is one C call, and the joined UTF-8 bytes are tokenized and ranked with numpy
    (UTF-8 byte order is code point order, which is how Python sorts strings). None when an
    item is not a string, contains the joiner or a NUL, or is too long.
    """
    if n_entries == 0:
        return None
    try:
        joined = _ITEM_JOINER.join(chain.from_iterable(rows))
        data = joined.encode("utf-8")
    except (TypeError, UnicodeEncodeError):
        return None
    if joined.count(_ITEM_JOINER) != n_entries - 1 or "\x00" in joined:
        return None
    del joined
    buf = np.frombuffer(data, dtype=np.uint8)
    joints = _positions(np.flatnonzero(buf == ord(_ITEM_JOINER)), buf.size + 1)
    starts = np.empty(n_entries, dtype=joints.dtype)
    starts[0] = 0
    np.add(joints, 1, out=starts[1:])
    ends = np.empty(n_entries, dtype=joints.dtype)
    ends[:-1] = joints
    ends[-1] = buf.size
    del joints
    return _token_codes(buf, starts, ends, "utf-8")


def _sorted_baskets(
    basket_of_entry: np.ndarray, codes: np.ndarray, labels: tuple[Hashable, ...], n_baskets: int
) -> EncodedBaskets:
    """Order each basket's codes and drop repeats; entries arrive grouped by basket (``basket_of_entry``
    non-decreasing), codes already in label order."""
    # Sort (basket, code) keys to order each basket's codes and spot repeats. The keys arrive
    # nearly sorted (basket-major), which the stable sort (timsort/radix) handles in close to
    # linear time; it was a little faster than the default sort on T10I4D100K.
    shift = max(1, len(labels).bit_length())
    # 32-bit keys when they fit (T10I4D100K: 27 bits): half the memory, and a faster sort.
    key_type = np.int32 if (n_baskets << shift) < _INT32_LIMIT else np.int64
    keys: np.ndarray[Any, np.dtype[np.signedinteger]] = basket_of_entry.astype(key_type)
    keys <<= shift
    keys |= codes.astype(key_type, copy=False)
    del basket_of_entry, codes
    keys.sort(kind="stable")
    if keys.size > 1:
        distinct = np.empty(keys.size, dtype=bool)
        distinct[0] = True
        np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
        if not distinct.all():
            keys = keys[distinct]
    indptr = np.zeros(n_baskets + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys >> shift, minlength=n_baskets), out=indptr[1:])
    keys &= (1 << shift) - 1
    return EncodedBaskets(labels=labels, indptr=indptr, codes=keys.astype(np.int32, copy=False))


_INT32_LIMIT = 1 << 31


def _positions(indices: np.ndarray, limit: int) -> np.ndarray:
    """Byte positions as int32 when the text is under 2 GB (half the memory of int64)."""
    return indices.astype(np.int32) if limit < _INT32_LIMIT else indices


def encode_item_rows(chunks: Iterable[np.ndarray]) -> EncodedBaskets:
    """Baskets from (basket id, item) rows of integers, given as (n, 2) arrays chunk after chunk.

    The rows arrive ordered by basket id (a basket may continue into the next chunk); each
    distinct id is one basket, repeats of an item in a basket count once, and the labels are
    the item numbers as Python ints. This is how orders are read from the database: a query
    streamed in chunks, each chunk turned into one array, so memory holds 16 bytes per order
    line rather than Python objects. No rows give no baskets (which ``fit`` refuses).
    """
    parts = [np.asarray(chunk, dtype=np.int64).reshape(-1, 2) for chunk in chunks]
    rows = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)
    del parts
    if rows.shape[0] == 0:
        return EncodedBaskets(labels=(), indptr=np.zeros(1, dtype=np.int64), codes=np.zeros(0, dtype=np.int32))
    basket_ids, items = rows[:, 0], rows[:, 1]
    if rows.shape[0] > 1 and bool((basket_ids[1:] < basket_ids[:-1]).any()):
        raise ValueError("item rows must be ordered by basket id")
    starts_basket = np.empty(basket_ids.size, dtype=bool)
    starts_basket[0] = True
    np.not_equal(basket_ids[1:], basket_ids[:-1], out=starts_basket[1:])
    basket_of_entry = np.cumsum(starts_basket) - 1
    n_baskets = int(basket_of_entry[-1]) + 1
    numbers, codes = np.unique(items, return_inverse=True)
    del rows, basket_ids, items, starts_basket
    return _sorted_baskets(basket_of_entry, codes.ravel(), tuple(numbers.tolist()), n_baskets)


# Bytes str.split() treats as whitespace in ASCII text (and str.strip() strips).
_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
# Longest item label the array reader handles (bytes); longer ones take the general reader.
ARRAY_READER_MAX_LABEL = 64
# Digit-only item numbers below this are mapped to codes through a lookup table rather than a sort.
ARRAY_READER_MAX_NUMBER = 1 << 24


def read_encoded_baskets(path_or_file: str | os.PathLike | IO, sep: str | None = None) -> EncodedBaskets:
    """``encode_baskets(read_baskets(path_or_file, sep))``, without a Python object per item.

    FIMI files (item numbers separated by spaces) and plain CSV files (no quotes, items not
    padded with spaces) in ASCII are parsed with numpy straight from the file's bytes into
    codes: on a 90,000-basket file that is several times faster than building the lists and
    needs no memory for them. Any other file goes through ``read_baskets``; the result is
    the same either way.
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as handle:
            data = handle.read()
    elif hasattr(path_or_file, "read"):
        content = path_or_file.read()
        data = content.encode("utf-8") if isinstance(content, str) else content
    else:
        raise TypeError(f"read_baskets needs a path or an open file; got {type(path_or_file).__name__}")
    encoded = _encode_simple_bytes(data, sep)
    if encoded is None:
        return encode_baskets(read_baskets(io.BytesIO(data), sep=sep))
    return encoded


def _encode_simple_bytes(data: bytes, sep: str | None) -> EncodedBaskets | None:
    """The array reader; None when the file needs the general one (see read_encoded_baskets)."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    # (A NUL would be lost as padding of the fixed-width labels.)
    if not data or not data.isascii() or b"\x00" in data:
        return None
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if sep is None:
        sep = "," if b"," in data else ""
    if sep == "":
        separators = _ASCII_WHITESPACE
    elif len(sep) == 1 and not sep.isspace() and sep.isascii() and b'"' not in data:
        separators = sep.encode() + b"\n"
    else:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    is_separator = np.zeros(256, dtype=bool)
    is_separator[list(separators)] = True
    in_token = ~is_separator[buf]
    # Token boundaries: where in_token flips. Padding with False on both sides makes every
    # token contribute one start and one end.
    flips = _positions(np.flatnonzero(np.diff(in_token, prepend=False, append=False)), buf.size + 1)
    del in_token
    starts, ends = flips[0::2], flips[1::2]
    newlines = np.flatnonzero(buf == ord("\n"))
    n_baskets = newlines.size + (0 if data.endswith(b"\n") else 1)
    if starts.size == 0:
        return EncodedBaskets(labels=(), indptr=np.zeros(n_baskets + 1, dtype=np.int64), codes=np.zeros(0, np.int32))
    if sep != "":
        starts, ends = _trimmed(buf, starts, ends)
        if starts.size == 0:
            return None
    # Tokens before each newline (searching the few newlines among the many tokens is the cheap way round).
    tokens_before = np.searchsorted(starts, newlines)
    per_basket = np.diff(tokens_before, prepend=0, append=starts.size)[:n_baskets]
    basket_of_token = np.repeat(np.arange(n_baskets, dtype=np.int64), per_basket)
    tokens = _token_codes(buf, starts, ends, "ascii")
    if tokens is None:
        return None
    return _sorted_baskets(basket_of_token, *tokens, n_baskets)


def _token_codes(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, encoding: str
) -> tuple[np.ndarray, tuple[Hashable, ...]] | None:
    """Codes (in label order) and labels of the tokens ``buf[starts[i]:ends[i]]``; None if one is too long."""
    lengths = ends - starts
    width = int(lengths.max())
    if width > ARRAY_READER_MAX_LABEL:
        return None
    if width == 0:  # every item is the empty string
        return np.zeros(starts.size, dtype=np.int64), ("",)
    codes, labels = _number_codes(buf, starts, lengths, width)
    if codes is None:
        codes, labels = _byte_string_codes(buf, starts, lengths, width, encoding)
    return codes, labels


def _trimmed(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tokens without their leading and trailing whitespace (str.strip); blank ones dropped."""
    is_space = np.zeros(256, dtype=bool)
    is_space[list(_ASCII_WHITESPACE)] = True
    if not (is_space[buf[starts]].any() or is_space[buf[ends - 1]].any()):
        return starts, ends
    solid = np.flatnonzero(~is_space[buf])
    first = np.searchsorted(solid, starts)
    last = np.searchsorted(solid, ends) - 1
    keep = last >= first  # a solid byte inside the token
    first, last = first[keep], last[keep]
    return solid[first], solid[last] + 1


def _token_columns(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int):
    """Yield (column, bytes of every token at that column, which tokens are that long)."""
    last = buf.size - 1
    position = np.minimum(starts, last)  # an empty last token starts at the end of the text
    for column in range(width):
        present = lengths > column
        yield column, buf[position], present
        position += 1
        np.minimum(position, last, out=position)


def _number_codes(buf, starts, lengths, width):
    """Codes for tokens that are all item numbers (digits, no leading zero), via a lookup table.

    Labels stay strings, ranked as strings (``"10" < "9"``), as ``read_baskets`` gives them.
    Returns (None, None) when the tokens are not all such numbers.
    """
    if width > 7 or width == 0 or bool((lengths == 0).any()):
        return None, None
    values = np.zeros(starts.size, dtype=np.int32)  # at most 7 digits
    for column, digits, present in _token_columns(buf, starts, lengths, width):
        digit = digits.astype(np.int32) - ord("0")
        if ((digit < 0) | (digit > 9))[present].any():
            return None, None
        if column == 0 and ((digit == 0) & (lengths > 1)).any():
            return None, None  # "07" and "7" are different labels
        np.multiply(values, 10, out=values, where=present)
        np.add(values, digit, out=values, where=present)
    largest = int(values.max())
    if largest >= ARRAY_READER_MAX_NUMBER:
        return None, None
    seen = np.zeros(largest + 1, dtype=bool)
    seen[values] = True
    numbers = np.flatnonzero(seen)
    labels = sorted(map(str, numbers.tolist()))
    code_of_number = np.zeros(largest + 1, dtype=np.int32)
    code_of_number[[int(label) for label in labels]] = np.arange(len(labels), dtype=np.int32)
    return code_of_number[values], tuple(labels)


def _byte_string_codes(buf, starts, lengths, width, encoding):
    """Codes for any tokens: a sort of their bytes, which for ASCII is the order of the strings."""
    padded = np.zeros((starts.size, width), dtype=np.uint8)
    for column, byte, present in _token_columns(buf, starts, lengths, width):
        padded[:, column] = np.where(present, byte, 0)
    # Zero padding sorts before any character, so "ab" < "abc" as for strings.
    tokens = padded.view(f"S{width}").ravel()
    unique, codes = np.unique(tokens, return_inverse=True)
    labels = tuple(label.decode(encoding) for label in unique.tolist())
    return codes.astype(np.int64, copy=False).ravel(), labels


__all__ = [
    "EncodedBaskets",
    "encode_baskets",
    "label_order",
    "read_baskets",
    "read_encoded_baskets",
    "encode_item_rows",
]
