"""Baskets as a Parquet file: one row per basket, one ``items`` column holding a list of items.

This is how baskets reach the Spark engine (crm_core.mining.spark_engine): our process writes
them with pyarrow, streamed a chunk of baskets at a time, and Spark reads the file in parallel.
The same file format serves the scale benchmark. Items are all integers (product ids, stored as
int64) or all strings; Spark's arrays hold one type. Duplicates inside a basket are dropped on
writing, and empty baskets are kept: they count towards the number of baskets (the denominator
of every support), as in the local engine.

pyarrow is imported on first use: it comes with the ``spark`` and ``parquet`` extras only.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

ITEMS_COLUMN = "items"
# Baskets per Parquet row group (and per pyarrow conversion): about 10 MB of T10I4D100K-like
# baskets, so writing holds one chunk at a time whatever the history's size.
CHUNK_BASKETS = 250_000


def require_pyarrow() -> Any:
    """The pyarrow module, or an ImportError saying which extra brings it."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401  (the submodule must be imported once)
    except ImportError:
        raise ImportError(
            "baskets in Parquet need pyarrow, which is not installed: pip install 'chatcrm[spark]'"
        ) from None
    return pyarrow


@dataclass(frozen=True)
class ParquetBaskets:
    """A Parquet file (or directory of files) of baskets, and how many baskets it holds.

    ``n_baskets`` counts empty baskets too; None when not known (it is then counted on reading).
    """

    path: str
    n_baskets: int | None = None


def _item_type(pa: Any, chunk: list[list[Hashable]]) -> Any:
    for basket in chunk:
        for item in basket:
            if isinstance(item, str):
                return pa.string()
            if isinstance(item, int) and not isinstance(item, bool):
                return pa.int64()
            raise TypeError(
                f"baskets for Spark hold integers or strings; got an item of type {type(item).__name__}: {item!r}"
            )
    return None


def _chunks(baskets: Iterable[Iterable[Hashable]], size: int) -> Iterator[list[list[Hashable]]]:
    iterator = iter(baskets)
    while chunk := [list(dict.fromkeys(basket)) for basket in islice(iterator, size)]:
        yield chunk


def write_baskets(
    baskets: Iterable[Iterable[Hashable]], path: str | os.PathLike, chunk_baskets: int = CHUNK_BASKETS
) -> ParquetBaskets:
    """Write ``baskets`` (an iterable of iterables of ints, or of strings) to a Parquet file at ``path``.

    Streams: at most ``chunk_baskets`` baskets are held as Python lists at once. The item type
    is taken from the first item seen (all empty: int64); a basket of another type fails with a
    TypeError and leaves no file behind.
    """
    if isinstance(baskets, (str, bytes)):
        raise TypeError("baskets must be an iterable of baskets (iterables of items), not a single string")
    pa = require_pyarrow()
    path = os.fspath(path)
    writer = None
    written = 0
    try:
        for chunk in _chunks(baskets, chunk_baskets):
            if writer is None:
                # The first chunk's first item tells the type (a chunk of empty baskets: int64).
                schema = pa.schema([(ITEMS_COLUMN, pa.list_(_item_type(pa, chunk) or pa.int64()))])
                writer = pa.parquet.ParquetWriter(path, schema)
            try:
                column = pa.array(chunk, type=writer.schema.field(ITEMS_COLUMN).type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise TypeError(
                    f"baskets for Spark hold items of one type, all integers or all strings ({exc})"
                ) from None
            writer.write_table(pa.table({ITEMS_COLUMN: column}, schema=writer.schema))
            written += len(chunk)
    except BaseException:
        if writer is not None:
            writer.close()
        if os.path.exists(path):
            os.remove(path)
        raise
    if writer is None:
        # No baskets at all: an empty file, so that a reader sees zero rather than nothing.
        writer = pa.parquet.ParquetWriter(path, pa.schema([(ITEMS_COLUMN, pa.list_(pa.int64()))]))
    writer.close()
    return ParquetBaskets(path=path, n_baskets=written)


def count_baskets(path: str | os.PathLike) -> int:
    """Number of baskets in a Parquet file or directory, from its metadata (no data read)."""
    require_pyarrow()
    import pyarrow.dataset

    return int(pyarrow.dataset.dataset(os.fspath(path), format="parquet").count_rows())


def iter_baskets(path: str | os.PathLike, batch_rows: int = CHUNK_BASKETS) -> Iterator[list[Hashable]]:
    """The baskets of a Parquet file as lists, one record batch in memory at a time."""
    pa = require_pyarrow()
    for batch in pa.parquet.ParquetFile(os.fspath(path)).iter_batches(batch_size=batch_rows, columns=[ITEMS_COLUMN]):
        yield from batch.column(0).to_pylist()


__all__ = ["ITEMS_COLUMN", "ParquetBaskets", "count_baskets", "iter_baskets", "write_baskets"]
