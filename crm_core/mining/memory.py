"""Will mining fit in memory? An estimate made before the search, and a refusal when it will not.

Killed by the kernel's out-of-memory killer, a nightly job leaves nothing but a gap in the logs.
So the local engine estimates its working set from the encoded baskets before the level-wise
search starts (``check_search_fits``) and raises ``MiningMemoryError``, recommending the Spark
engine, when that exceeds the memory available. The dominant cost on sparse order data is the
first step from items to pairs: one occurrence entry per (basket, frequent item) and one
candidate id per pair of frequent items in a basket (``crm_core.mining.levelwise``), plus dense
counters per candidate pair when there are few enough. Later levels hold fewer entries on such
data; on dense data the search switches to bitsets, which the first step bounds as well.

The budget is ``max_memory_bytes`` when given, else what the kernel reports as available
(``MemAvailable`` in /proc/meminfo, less a safety margin) at the moment of the check, so memory
already held by the caller's baskets is accounted for.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (see crm_core.mining.records)

if TYPE_CHECKING:
    import numpy as np

# Bytes per level-1 occurrence entry during the first step (column ids, per-entry pair counts and
# ends, the next level's row sizes, and the recoding temporaries), and per emitted pair (its
# candidate id, and the next level's entry when it survives); measured peaks on Quest T10I4 data
# at 100k-1M baskets stayed below these.
BYTES_PER_ENTRY = 48
BYTES_PER_PAIR = 10
BYTES_PER_DENSE_CANDIDATE = 16
# Share of MemAvailable the search may take: the rest is for the rule records, the caller and the
# rest of the machine.
AVAILABLE_SHARE = 0.8


class MiningMemoryError(MemoryError):
    """The local engine would not fit in memory; the message says by how much and what to do."""


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo, or None where there is no such file (not Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def estimate_search_bytes(indptr: np.ndarray, codes: np.ndarray, item_counts: np.ndarray, min_count: int) -> int:
    """Bytes the first step of the search will allocate on top of the encoded baskets."""
    # Imported here: check_encoding_fits serves the numpy-free path of `chatcrm mine` (crm_core.mining.lean).
    import numpy as np

    frequent = item_counts >= min_count
    n_frequent = int(frequent.sum())
    if n_frequent < 2:
        return 0
    kept = frequent[codes]
    # Frequent items per basket, from a running count (int32 while it fits: 4 bytes per entry).
    running = np.zeros(kept.size + 1, dtype=np.int32 if kept.size < 2**31 else np.int64)
    np.cumsum(kept, out=running[1:])
    per_basket = np.diff(running[indptr]).astype(np.int64)
    del running, kept
    n_entries = int(per_basket.sum())
    n_pairs = (int(np.dot(per_basket, per_basket)) - n_entries) // 2
    n_candidates = n_frequent * (n_frequent - 1) // 2
    dense = n_candidates if n_candidates <= min(4 * n_pairs + (1 << 16), 1 << 24) else 0
    return BYTES_PER_ENTRY * n_entries + BYTES_PER_PAIR * n_pairs + BYTES_PER_DENSE_CANDIDATE * dense


# Bytes per item occurrence while encoding (codes, sort keys and their temporaries, the kept keys).
ENCODE_BYTES_PER_ENTRY = 56


def check_encoding_fits(baskets: list, max_memory_bytes: int | None) -> None:
    """Raise MiningMemoryError when encoding this list of baskets would exceed the budget."""
    try:
        n_entries = sum(map(len, baskets))
    except TypeError:
        return  # a basket without a length: encoding says what is wrong with it
    _check(len(baskets), ENCODE_BYTES_PER_ENTRY * n_entries, None, max_memory_bytes)


def check_search_fits(
    indptr: np.ndarray, codes: np.ndarray, item_counts: np.ndarray, min_count: int, max_memory_bytes: int | None
) -> None:
    """Raise MiningMemoryError when the search's estimate exceeds the budget (see the module doc)."""
    _check(len(indptr) - 1, estimate_search_bytes(indptr, codes, item_counts, min_count), min_count, max_memory_bytes)


def _check(n_baskets: int, needed: int, min_count: int | None, max_memory_bytes: int | None) -> None:
    budget = max_memory_bytes
    if budget is None:
        available = available_memory_bytes()
        if available is None:
            return
        budget = int(available * AVAILABLE_SHARE)
    if needed > budget:
        # Imported only here: the miner's lean path (chatcrm mine on a file) loads no more than it needs.
        from crm_core.i18n import _, format_number

        facts = {"baskets": format_number(n_baskets), "needed": _gib(needed), "budget": _gib(budget)}
        advice = _(
            "use the Spark engine (CHATCRM_MINING_ENGINE=spark, or chatcrm mine --engine spark; pip install "
            "'chatcrm[spark]'), or raise the minimum support or shorten the window"
        )
        if min_count is None:
            said = _(
                "mining {baskets} baskets needs about {needed} of memory, more than the {budget} available to it "
                "on this machine: {advice}",
                advice=advice,
                **facts,
            )
        else:
            said = _(
                "mining {baskets} baskets at a minimum of {min_count} baskets per itemset needs about {needed} of "
                "memory, more than the {budget} available to it on this machine: {advice}",
                min_count=format_number(min_count),
                advice=advice,
                **facts,
            )
        raise MiningMemoryError(said)


def _gib(n_bytes: int) -> str:
    from crm_core.i18n import format_number

    return f"{format_number(n_bytes / 2**30, 1)} GiB"
