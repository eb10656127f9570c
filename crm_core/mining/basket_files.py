"""Reading basket files into lists of item labels, and the order item labels are reported in.

Neither needs numpy, so ``chatcrm mine`` with the C accelerator (``crm_core.mining.lean``) reads
a file and mines it without importing numpy (about a tenth of a second of its start-up);
``baskets`` re-exports both for everything else.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence

from crm_core.mining.gcpause import paused_gc

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (see crm_core.mining.records)

if TYPE_CHECKING:
    from typing import IO, Any


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
    # swallow the following lines into one basket. Imported here: only quoted files need it.
    import csv

    return next(csv.reader([line], delimiter=sep, skipinitialspace=True), [])
