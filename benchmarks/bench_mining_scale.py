"""Mining at scale: our engine against Spark local mode on synthetic baskets of 1M to 20M orders.

Run with ``python -m benchmarks mining_scale`` (options after ``--``; the default, 200k baskets,
takes a few minutes)::

    python -m benchmarks mining_scale -- --sizes 1M,5M,20M --support 0.001 --confidence 0.8

Data: IBM Quest-style synthetic baskets, like T10I4D100K (Agrawal & Srikant 1994): ``--patterns``
potential frequent itemsets with Poisson lengths (mean ``--pattern-length``, 4), exponential
weights (a few patterns are common, most are rare: the skew of real order histories), each
sharing an exponential fraction of its items with the previous pattern (correlation 0.5) and
corrupted when used (items dropped while a uniform draw stays below the pattern's corruption
level, mean 0.5). A basket
draws patterns by weight until it reaches its Poisson length (mean ``--basket-length``, 10).
Generated with numpy a chunk of baskets at a time and streamed to Parquet (one ``items`` list
column, as ``crm_core.mining.parquet_baskets`` writes it), so generating 20M baskets holds one
chunk in memory. Files are kept in ``--data-dir`` and reused.

Each engine runs in a fresh process per size: ``local`` reads the Parquet file into Python lists
(what ``run_mining`` hands the miner) and fits ``AssociationRules``; ``spark`` starts a session
(``--spark-master``, default ``local[*]``, driver memory ``--spark-driver-memory``) and fits
``SparkAssociationRules`` on the file. Reported: seconds to read the baskets, to start Spark, to
mine (fit and build the rule records) and for the whole process, and the peak resident memory
of the process and its children (the JVM), sampled every 50 ms from /proc. Where the local
engine estimates that mining would not fit in the memory available, it refuses (``max_memory_bytes``)
and the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class QuestParams:
    """The IBM Quest generator's knobs (T10I4: average basket length 10, average pattern length 4)."""

    n_items: int = 1000
    basket_length: float = 10.0
    pattern_length: float = 4.0
    n_patterns: int = 2000
    correlation: float = 0.5
    corruption: float = 0.5
    seed: int = 17


def make_patterns(params: QuestParams, rng):
    """The potential frequent itemsets as CSR arrays, with their weights and corruption levels."""
    import numpy as np

    lengths = rng.poisson(params.pattern_length - 1, params.n_patterns) + 1
    patterns: list[np.ndarray] = []
    previous = np.empty(0, dtype=np.int64)
    for length in lengths:
        length = min(int(length), params.n_items)
        shared = min(len(previous), length, int(round(rng.exponential(params.correlation) * length)))
        reused = rng.choice(previous, size=shared, replace=False) if shared else np.empty(0, dtype=np.int64)
        fresh = rng.choice(np.setdiff1d(np.arange(params.n_items), reused), size=length - shared, replace=False)
        previous = np.concatenate([reused, fresh]).astype(np.int64)
        patterns.append(previous)
    indptr = np.zeros(params.n_patterns + 1, dtype=np.int64)
    np.cumsum([len(p) for p in patterns], out=indptr[1:])
    weights = rng.exponential(1.0, params.n_patterns)
    corruption = np.clip(rng.normal(params.corruption, 0.1, params.n_patterns), 0.0, 0.95)
    return indptr, np.concatenate(patterns), weights / weights.sum(), corruption


def generate_chunk(params: QuestParams, patterns, n_baskets: int, rng):
    """``n_baskets`` baskets as (offsets int32, items int64), items sorted within each basket."""
    import numpy as np

    indptr, pattern_items, weights, corruption = patterns
    targets = rng.poisson(params.basket_length - 1, n_baskets) + 1
    # Enough patterns per basket to fill it after corruption; the overflow is cut off below.
    kept_per_pattern = max(1.0, params.pattern_length - params.corruption / (1.0 - params.corruption))
    per_basket = np.ceil(targets / kept_per_pattern).astype(np.int64) + 1
    chosen = rng.choice(len(weights), size=int(per_basket.sum()), p=weights)
    lengths = indptr[chosen + 1] - indptr[chosen]
    total = int(lengths.sum())
    within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    items = pattern_items[np.repeat(indptr[chosen], lengths) + within]
    baskets = np.repeat(np.repeat(np.arange(n_baskets), per_basket), lengths)
    # Quest's corruption: drop items from the pattern while a uniform draw stays below its level,
    # i.e. a geometric number of randomly chosen items (about one of four at level 0.5).
    dropped = rng.geometric(1.0 - corruption[chosen]) - 1
    instance = np.repeat(np.arange(chosen.size), lengths)
    rank = np.empty(total, dtype=np.int64)
    rank[np.lexsort((rng.random(total), instance))] = within
    keep = rank < np.repeat(lengths - dropped, lengths)
    items, baskets = items[keep], baskets[keep]
    # Cut each basket at its target length (entries are grouped by basket, in drawing order).
    starts = np.searchsorted(baskets, np.arange(n_baskets))
    position = np.arange(items.size) - starts[baskets]
    fits = position < targets[baskets]
    keys = np.unique(baskets[fits] * params.n_items + items[fits])
    offsets = np.zeros(n_baskets + 1, dtype=np.int32)
    np.cumsum(np.bincount(keys // params.n_items, minlength=n_baskets), out=offsets[1:])
    return offsets, keys % params.n_items


def write_quest(path: Path, n_baskets: int, params: QuestParams, chunk: int = 250_000) -> None:
    """Stream ``n_baskets`` Quest baskets to a Parquet file (written to a temp name, then renamed)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(params.seed)
    patterns = make_patterns(params, rng)
    schema = pa.schema([("items", pa.list_(pa.int64()))])
    partial = path.with_suffix(".partial")
    with pq.ParquetWriter(partial, schema) as writer:
        for start in range(0, n_baskets, chunk):
            offsets, items = generate_chunk(params, patterns, min(chunk, n_baskets - start), rng)
            column = pa.ListArray.from_arrays(pa.array(offsets), pa.array(items, type=pa.int64()))
            writer.write_table(pa.table({"items": column}, schema=schema))
    partial.rename(path)


# --- one engine in a child process ------------------------------------------------------------


def child(engine: str, path: str, support: float, confidence: float, max_len: int, master: str, memory: str) -> None:
    result: dict = {"engine": engine}
    started = time.perf_counter()
    if engine == "local":
        from crm_core.mining import AssociationRules
        from crm_core.mining.parquet_baskets import iter_baskets

        baskets = list(iter_baskets(path))
        result["read_s"] = time.perf_counter() - started
        began = time.perf_counter()
        try:
            model = AssociationRules(support, confidence, max_len=max_len).fit(baskets)
            rules = model.rules_
        except MemoryError as exc:
            result["refused"] = str(exc)
            print(json.dumps(result))
            return
    else:
        from crm_core.mining.parquet_baskets import ParquetBaskets
        from crm_core.mining.spark_engine import SparkAssociationRules, start_session

        session, _ = start_session(master, "chatcrm-bench", {"spark.driver.memory": memory})
        result["session_s"] = time.perf_counter() - started
        began = time.perf_counter()
        model = SparkAssociationRules(support, confidence, max_len=max_len).fit(ParquetBaskets(path))
        rules = model.rules_
        session.stop()
    result.update(
        mine_s=time.perf_counter() - began,
        baskets=model.n_baskets_,
        min_count=model.min_count_,
        itemsets=len(model.itemsets_),
        rules=len(rules),
        rules_digest=hash(tuple(rules)) & 0xFFFFFFFF,
    )
    print(json.dumps(result))


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in KiB (0 once gone)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status", encoding="ascii") as status:
                total += next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as children:
                    todo.extend(int(c) for c in children.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_engine(engine: str, path: Path, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_mining_scale",
        "--child",
        engine,
        str(path),
        str(args.support),
        str(args.confidence),
        str(args.max_len),
        args.spark_master,
        args.spark_driver_memory,
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kb(process.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - started
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        tail = " | ".join(err.strip().splitlines()[-3:])
        return {
            "engine": engine,
            "failed": f"exit {process.returncode}: {tail}",
            "process_s": wall,
            "peak_mib": peak / 1024,
        }
    return {**json.loads(lines[-1]), "process_s": wall, "peak_mib": peak / 1024}


# --- driver -----------------------------------------------------------------------------------


def parse_size(raw: str) -> int:
    raw = raw.strip().lower().replace("_", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(raw[-1], 1)
    return int(float(raw.rstrip("km")) * factor)


def _row(size: int, result: dict) -> str:
    engine = result["engine"]
    if "failed" in result:
        return f"| {size:,} | {engine} | failed: {result['failed']} | | | | {result['peak_mib']:,.0f} MiB |"
    if "refused" in result:
        return f"| {size:,} | {engine} | refused: {result['refused']} | | | {result['process_s']:.1f} s | {result['peak_mib']:,.0f} MiB |"
    prepare = result.get("read_s", result.get("session_s", 0.0))
    what = "read" if "read_s" in result else "session"
    return (
        f"| {size:,} | {engine} | {result['rules']:,} rules, {result['itemsets']:,} itemsets (min count {result['min_count']:,}) "
        f"| {what} {prepare:.1f} s | {result['mine_s']:.1f} s | {result['process_s']:.1f} s | {result['peak_mib']:,.0f} MiB |"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks mining_scale --", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200k", help="comma-separated basket counts, e.g. 1M,5M,20M (default 200k)")
    parser.add_argument("--engines", default="local,spark", help="comma-separated: local,spark")
    parser.add_argument("--items", type=int, default=1000, help="distinct items (T10I4D100K: 1000)")
    parser.add_argument("--basket-length", type=float, default=10.0)
    parser.add_argument("--pattern-length", type=float, default=4.0)
    parser.add_argument("--patterns", type=int, default=2000)
    parser.add_argument("--support", type=float, default=0.001)
    parser.add_argument("--confidence", type=float, default=0.8)
    parser.add_argument("--max-len", type=int, default=4, help="longest rule (the nightly job's default: 4)")
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "chatcrm-bench-scale"))
    parser.add_argument("--spark-master", default="local[*]")
    parser.add_argument("--spark-driver-memory", default="12g", help="local mode runs in the driver JVM")
    parser.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        engine, path, support, confidence, max_len, master, memory = args.child
        child(engine, path, float(support), float(confidence), int(max_len), master, memory)
        return

    params = QuestParams(
        n_items=args.items,
        basket_length=args.basket_length,
        pattern_length=args.pattern_length,
        n_patterns=args.patterns,
    )
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    rows = []
    for size in map(parse_size, args.sizes.split(",")):
        name = (
            f"quest_T{params.basket_length:g}I{params.pattern_length:g}_N{params.n_items}"
            f"_L{params.n_patterns}_{size}.parquet"
        )
        path = data_dir / name
        if not path.exists():
            began = time.perf_counter()
            write_quest(path, size, params)
            print(
                f"generated {size:,} baskets in {time.perf_counter() - began:.1f} s: {path} "
                f"({path.stat().st_size / 2**20:,.0f} MiB)",
                flush=True,
            )
        for engine in engines:
            result = run_engine(engine, path, args)
            rows.append(_row(size, result))
            print(json.dumps({"size": size, **result}), flush=True)
    print(
        f"\nsupport {args.support}, confidence {args.confidence}, max length {args.max_len}, "
        f"{args.items} items, T{args.basket_length:g}I{args.pattern_length:g}, {args.patterns} patterns, "
        f"Spark {args.spark_master} with {args.spark_driver_memory} driver memory; {os.cpu_count()} cores"
    )
    print("| baskets | engine | result | read / start | mine | whole process | peak memory |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
