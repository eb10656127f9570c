"""A context manager that pauses Python's cyclic garbage collector.

Building tens of thousands of result records (or reading a basket file into lists) makes
many container objects; every 700 allocations the collector runs, and its older
generations walk every live object, including the caller's baskets. On T10I4D100K that
made building 66k rules take 0.26 s instead of 0.025 s. The objects created under the
pause cannot form reference cycles, so nothing is lost by collecting later.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic GC for the block, restoring the previous state afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
