"""Association-rule mining: ours against mlxtend and pyfim on Groceries and T10I4D100K.

Run with ``python -m benchmarks mining`` (options after ``--``: ``--quick``, ``--repeat N``,
``--no-memory``, ``--datasets groceries,t10``).

For each data set (read once with ``read_baskets``; reading is not timed) and library it
measures two tasks starting from the same Python list of baskets:

- ``itemsets``: all frequent itemsets as Python objects. Ours: ``FrequentItemsets(...).fit``
  plus building ``itemsets_``; pyfim: ``fim.eclat``; mlxtend: ``TransactionEncoder`` one-hot
  encoding + ``fpgrowth``.
- ``rules``: the whole pipeline to rules with a single-item consequent. Ours:
  ``AssociationRules(...).fit`` plus building ``rules_``; pyfim: ``fim.arules`` with arules'
  rule-support definition (mode ``o``) and ``zmin=2`` (no empty antecedents); mlxtend: the
  itemset stage plus ``association_rules`` (which also derives multi-item consequents;
  only single-item ones are counted). mlxtend's itemset and rule times come from the same
  run, one stage after the other.

Time is the best wall time of at least N runs (5; fast ones are repeated for about a second,
up to 50 runs; mlxtend on T10I4D100K: 1 run, it takes 10-20 s).
Memory is the peak resident set size above the loaded baskets, measured in a fresh
subprocess per (library, task) after a warm-up on 500 baskets, with the kernel's peak-RSS
counter reset just before the run (``/proc/self/clear_refs``); this also sees pyfim's C
allocations, which ``tracemalloc`` would not. Thresholds: support 0.001, confidence 0.8,
at most 10 items (arules' default ``maxlen``).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Dataset:
    key: str
    filename: str
    min_support: float
    min_confidence: float
    max_len: int


DATASETS = {
    "groceries": Dataset("groceries", "groceries.csv", 0.001, 0.8, 10),
    "t10": Dataset("t10", "T10I4D100K.dat", 0.001, 0.8, 10),
}
LIBRARIES = ("ours", "pyfim", "mlxtend")
TASKS = ("itemsets", "rules")


def data_file(dataset: Dataset) -> Path | None:
    """``<repo>/../shared/data/<file>``, else ``$CHATCRM_SHARED_DATA/<file>``, else None."""
    candidates = [REPO_ROOT.parent / "shared" / "data" / dataset.filename]
    if os.environ.get("CHATCRM_SHARED_DATA"):
        candidates.append(Path(os.environ["CHATCRM_SHARED_DATA"]) / dataset.filename)
    return next((path for path in candidates if path.is_file()), None)


def load(dataset: Dataset) -> list[list[str]]:
    from crm_core.mining import read_baskets

    return read_baskets(data_file(dataset))


def have_pyfim() -> bool:
    try:
        import fim  # noqa: F401
    except ImportError:
        return False
    return True


# --- the runs: each returns {"itemsets": n, "rules": n, "stages": {task: seconds}} -----------


def run_ours(task: str, baskets, ds: Dataset) -> dict:
    from crm_core.mining import AssociationRules, FrequentItemsets

    if task == "itemsets":
        model = FrequentItemsets(ds.min_support, max_len=ds.max_len).fit(baskets)
        return {"itemsets": len(model.itemsets_)}
    model = AssociationRules(ds.min_support, ds.min_confidence, max_len=ds.max_len).fit(baskets)
    return {"rules": len(model.rules_)}


def _min_count(baskets, ds: Dataset) -> int:
    from crm_core.mining.thresholds import min_count

    return min_count(ds.min_support, len(baskets))


def run_pyfim(task: str, baskets, ds: Dataset) -> dict:
    import fim

    # Negative support = absolute count: the very threshold arules (and we) derive.
    supp = -_min_count(baskets, ds)
    if task == "itemsets":
        return {"itemsets": len(fim.eclat(baskets, target="s", supp=supp, zmax=ds.max_len, report="a"))}
    rules = fim.arules(
        baskets, supp=supp, conf=100 * ds.min_confidence, zmin=2, zmax=ds.max_len, mode="o", report="aCl"
    )
    return {"rules": len(rules)}


def run_mlxtend(task: str, baskets, ds: Dataset) -> dict:
    import pandas as pd
    from mlxtend.frequent_patterns import association_rules, fpgrowth
    from mlxtend.preprocessing import TransactionEncoder

    started = time.perf_counter()
    encoder = TransactionEncoder()
    onehot = encoder.fit(baskets).transform(baskets)
    frame = pd.DataFrame(onehot, columns=encoder.columns_)
    itemsets = fpgrowth(frame, min_support=ds.min_support, use_colnames=True, max_len=ds.max_len)
    itemsets_done = time.perf_counter()
    out = {"itemsets": len(itemsets), "stages": {"itemsets": itemsets_done - started}}
    if task == "rules":
        rules = association_rules(
            itemsets, num_itemsets=len(baskets), metric="confidence", min_threshold=ds.min_confidence
        )
        out["rules"] = int((rules["consequents"].map(len) == 1).sum())
        out["stages"]["rules"] = time.perf_counter() - started
    return out


RUNNERS = {"ours": run_ours, "pyfim": run_pyfim, "mlxtend": run_mlxtend}


def explain_mlxtend_gap(baskets, ds: Dataset, found: dict[str, int]) -> None:
    """Say how many of our rules sit exactly on the confidence threshold.

    mlxtend divides rounded supports, (54/1500) / (60/1500) = 0.8999999999999999, so it
    drops rules whose confidence equals the threshold; arules and pyfim keep them, as we do.
    """
    from fractions import Fraction

    from crm_core.mining import AssociationRules

    rules = AssociationRules(ds.min_support, ds.min_confidence, max_len=ds.max_len).fit(baskets).rules_
    threshold = Fraction(repr(ds.min_confidence))
    on_threshold = sum(1 for r in rules if Fraction(r.count, round(r.count / r.confidence)) == threshold)
    gap = found.get("ours", len(rules)) - found["mlxtend"]
    print(
        f"    {on_threshold} of our rules have confidence exactly {ds.min_confidence}; mlxtend's float "
        f"division drops such rules (gap here: {gap}); arules/pyfim keep them, as we do"
    )


# Fast runs are repeated up to this budget (and cap): on a shared machine the best of many
# 10 ms runs is what finds the quiet moments, for every library alike.
FAST_RUN_BUDGET_S = 1.0
FAST_RUN_CAP = 50


def best_time(library: str, task: str, baskets, ds: Dataset, repeat: int) -> tuple[dict, dict[str, float], int]:
    """Best wall time per stage over the runs, and the number of runs.

    At least ``repeat`` runs, more for fast ones (see FAST_RUN_BUDGET_S); mlxtend's rules
    run also yields its itemset time.
    """
    best: dict[str, float] = {}
    result: dict = {}
    runs = repeat
    done = 0
    while done < runs:
        gc.collect()
        started = time.perf_counter()
        result = RUNNERS[library](task, baskets, ds)
        elapsed = time.perf_counter() - started
        if done == 0 and repeat > 1:
            runs = max(repeat, min(FAST_RUN_CAP, int(FAST_RUN_BUDGET_S / max(elapsed, 1e-6))))
        done += 1
        stages = result.get("stages", {task: elapsed})
        for name, seconds in stages.items():
            best[name] = min(best.get(name, float("inf")), seconds)
    return result, best, runs


# --- memory, in a child process -------------------------------------------------------------


def _proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        return int(re.search(rf"^{field}:\s+(\d+)", handle.read(), re.M).group(1))


def _release_free_heap() -> None:
    """Hand freed heap pages back to the OS so that reusing them shows up as RSS growth."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def child(library: str, task: str, dataset_key: str) -> None:
    ds = DATASETS[dataset_key]
    baskets = load(ds)
    # Warm-up (imports, lazy initialisation) on a slice at a high support: at 0.001 of 200
    # baskets every subset of every basket would be frequent.
    try:
        RUNNERS[library](task, baskets[:500], replace(ds, min_support=0.1))
    except ValueError:
        pass  # mlxtend refuses to derive rules from no itemsets; the imports are done anyway
    gc.collect()
    _release_free_heap()
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset the peak-RSS counter (VmHWM) to the current RSS
        exact = True
    except OSError:
        exact = False
    baseline = _proc_status_kb("VmRSS")
    RUNNERS[library](task, baskets, ds)
    peak = _proc_status_kb("VmHWM")
    print(json.dumps({"peak_mb": (peak - baseline) / 1024, "baskets_mb": baseline / 1024, "exact": exact}))


def peak_memory(library: str, task: str, ds: Dataset) -> dict | None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_mining", "--child", library, task, ds.key],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        print(f"  memory run {library}/{task} failed: {proc.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- driver ---------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks mining --", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs each, mlxtend only on Groceries")
    parser.add_argument("--repeat", type=int, default=None, help="runs per measurement (default 5, quick 2)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--datasets", default="groceries,t10", help="comma-separated: groceries,t10")
    parser.add_argument("--child", nargs=3, metavar=("LIBRARY", "TASK", "DATASET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return

    repeat = args.repeat or (2 if args.quick else 5)
    libraries = [lib for lib in LIBRARIES if lib != "pyfim" or have_pyfim()]
    if "pyfim" not in libraries:
        print("pyfim is not installed (pip install -e '.[bench]'); comparing with mlxtend only")
    loadavg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s), load average {loadavg} (other work on the "
        f"machine inflates all times); best of >= {repeat} runs, up to {FAST_RUN_CAP} for fast ones (mlxtend on t10: 1 run)"
    )

    rows = []
    for key in args.datasets.split(","):
        ds = DATASETS[key.strip()]
        if data_file(ds) is None:
            print(
                f"\n[{ds.key}] skipped: {ds.filename} not found in {REPO_ROOT.parent / 'shared' / 'data'} "
                f"(or set CHATCRM_SHARED_DATA to the directory holding it)"
            )
            continue
        started = time.perf_counter()
        baskets = load(ds)
        print(
            f"\n[{ds.key}] {len(baskets):,} baskets read in {time.perf_counter() - started:.2f} s; "
            f"support {ds.min_support}, confidence {ds.min_confidence}, max_len {ds.max_len}",
            flush=True,
        )
        counts: dict[tuple[str, str], int] = {}
        for library in libraries:
            if library == "mlxtend" and ds.key == "t10" and args.quick:
                print("  mlxtend skipped on t10 with --quick (about 20 s per run)")
                continue
            runs = 1 if (library == "mlxtend" and ds.key == "t10") else repeat
            tasks = ("rules",) if library == "mlxtend" else TASKS  # one mlxtend run times both stages
            for task in tasks:
                result, best, runs = best_time(library, task, baskets, ds, runs)
                for stage, seconds in best.items():
                    counts[(library, stage)] = result[stage]
                    memory = None if args.no_memory else peak_memory(library, stage, ds)
                    rows.append((ds.key, library, stage, seconds, runs, memory, result[stage]))
                    mem = "-" if memory is None else f"{memory['peak_mb']:.1f}"
                    print(
                        f"  {library:8s} {stage:9s} {seconds:9.4f} s  peak {mem:>6s} MB  -> {result[stage]:,}",
                        flush=True,
                    )
        for task in TASKS:
            found = {lib: n for (lib, t), n in counts.items() if t == task}
            agree = len(set(found.values())) <= 1
            detail = ", ".join(f"{lib} {n:,}" for lib, n in found.items())
            print(f"  {task}: {'outputs agree' if agree else 'MISMATCH'} ({detail})")
            if task == "rules" and not agree and "mlxtend" in found:
                explain_mlxtend_gap(baskets, ds, found)

    if not rows:
        return
    print("\n| dataset | library | task | best time (s) | runs | peak memory (MB) | output |")
    print("|---|---|---|---:|---:|---:|---:|")
    for dataset, library, task, seconds, runs, memory, n in rows:
        mem = "-" if memory is None else f"{memory['peak_mb']:.1f}"
        print(f"| {dataset} | {library} | {task} | {seconds:.4f} | {runs} | {mem} | {n:,} {task} |")

    times = {(d, lib, t): s for d, lib, t, s, *_ in rows}
    print("\nratios (targets: mlxtend/ours >= 20, ours/pyfim <= 3):")
    for dataset in dict.fromkeys(d for d, *_ in rows):
        for task in TASKS:
            ours = times.get((dataset, "ours", task))
            if ours is None:
                continue
            parts = []
            if (dataset, "mlxtend", task) in times:
                parts.append(f"mlxtend/ours = {times[(dataset, 'mlxtend', task)] / ours:6.1f}x")
            if (dataset, "pyfim", task) in times:
                parts.append(f"ours/pyfim = {ours / times[(dataset, 'pyfim', task)]:4.2f}x")
            print(f"  {dataset:9s} {task:9s} " + "   ".join(parts))


if __name__ == "__main__":
    main(sys.argv[1:])
