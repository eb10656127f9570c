"""A retail basket file in FIMI format (one basket of item numbers per line), built on the spot.

The FIMI repository's ``retail.dat`` (88,162 baskets of a Belgian supermarket, 16,470 items,
10.3 items per basket, a long tail of rare items) is not kept on this machine, so the
benchmarks build a file of the same shape: a few staples are in a large share of the baskets and the other items' popularity
follows a Zipf law, basket sizes
a skewed (log-normal) law, and about one basket in eight carries one of 3,000 "bundles"
(2-4 items that are bought together, themselves Zipf-popular), which is what gives rules
at confidence 0.8. The same seed gives the same file, byte for byte.

    python -m benchmarks.retail_baskets /tmp/retail.dat
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

N_BASKETS = 88_162
N_ITEMS = 16_470
N_BUNDLES = 3_000
STAPLE_SHARES = (0.57, 0.48, 0.18, 0.17, 0.17)
BUNDLE_SHARE = 0.12
BUNDLE_ITEM_KEPT = 0.85
SEED = 20_000_502


def build_baskets(n_baskets: int = N_BASKETS, n_items: int = N_ITEMS, seed: int = SEED) -> list[np.ndarray]:
    """``n_baskets`` sorted arrays of distinct item numbers."""
    rng = np.random.default_rng(seed)
    # A few staples are in a large share of the baskets (retail.dat's top items are in 57 %,
    # 48 % and 18 % of them); the rest follow a Zipf law. The numbers are shuffled so that
    # popularity does not follow the item number.
    item_number = rng.permutation(n_items)
    staples = item_number[: len(STAPLE_SHARES)]
    tail = item_number[len(STAPLE_SHARES) :]
    weights = 1.0 / np.arange(1, tail.size + 1) ** 0.95
    weights /= weights.sum()
    bundle_sizes = rng.integers(2, 5, size=N_BUNDLES)
    bundles = [tail[rng.choice(tail.size, size=size, replace=False, p=weights)] for size in bundle_sizes]
    bundle_weights = 1.0 / np.arange(1, N_BUNDLES + 1) ** 0.9
    bundle_weights /= bundle_weights.sum()

    sizes = np.maximum(1, np.round(rng.lognormal(mean=1.7, sigma=0.8, size=n_baskets))).astype(np.int64)
    draws = tail[rng.choice(tail.size, size=int(sizes.sum()), p=weights)]
    has_staple = rng.random((n_baskets, len(STAPLE_SHARES))) < np.array(STAPLE_SHARES)
    with_bundle = rng.random(n_baskets) < BUNDLE_SHARE
    bundle_of = rng.choice(N_BUNDLES, size=n_baskets, p=bundle_weights)
    baskets = []
    for index, chunk in enumerate(np.split(draws, np.cumsum(sizes)[:-1])):
        chunk = np.concatenate([chunk, staples[has_staple[index]]])
        if with_bundle[index]:
            bundle = bundles[bundle_of[index]]
            # A shopper forgets a bundle's item now and then: rules hold with confidence below 1.
            chunk = np.concatenate([chunk, bundle[rng.random(bundle.size) < BUNDLE_ITEM_KEPT]])
        baskets.append(np.unique(chunk))
    return baskets


def write_retail_file(path: str | Path, n_baskets: int = N_BASKETS, seed: int = SEED) -> Path:
    """Write the basket file (FIMI: items separated by spaces, a trailing space, one basket a line)."""
    path = Path(path)
    with open(path, "w", encoding="ascii") as handle:
        for basket in build_baskets(n_baskets, seed=seed):
            handle.write(" ".join(map(str, basket.tolist())) + " \n")
    return path


if __name__ == "__main__":
    target = write_retail_file(sys.argv[1] if len(sys.argv) > 1 else "retail.dat")
    print(f"wrote {target}")
