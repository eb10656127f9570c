"""Ours against pyfim in process, many runs in turn: for runs of a few milliseconds on a busy machine.

Run with ``python -m benchmarks mining_pairs`` (options after ``--``: ``--pairs N``, default 300;
``--datasets groceries,t10,retail``, default groceries; ``--supports 0.001,0.0005``, default 0.001;
``--task rules|itemsets``, default rules).

``bench_mining`` reports the best of up to 50 runs of each. A Groceries rules fit lasts about
8 ms, and when other work keeps the 2 cores busy the best wall time of ours and of pyfim each
depends on whether one of its runs found a quiet moment. Here ours and pyfim run in turn, one
pair after another, in the same process and on the same baskets, and the figures are the
minimum and median wall time and the median CPU time (user + system, from ``getrusage``) of
each, with their ratios: the median CPU ratio is the steady one under load.
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace
from statistics import median

from benchmarks.bench_mining import DATASETS, RUNNERS, SUPPORTS, have_pyfim, load


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_pairs(task: str, baskets, ds, pairs: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, cpu) seconds of each run of ours and pyfim, in turn, after one warm-up run each."""
    times: dict[str, list[tuple[float, float]]] = {"ours": [], "pyfim": []}
    for library in times:
        RUNNERS[library](task, baskets, ds)
    for _ in range(pairs):
        for library, runs in times.items():
            cpu, wall = _cpu_seconds(), time.perf_counter()
            RUNNERS[library](task, baskets, ds)
            runs.append((time.perf_counter() - wall, _cpu_seconds() - cpu))
    return times


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks mining_pairs --", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300, help="runs of each, in turn (default 300)")
    parser.add_argument("--datasets", default="groceries", help="comma-separated: groceries, t10, retail")
    parser.add_argument("--supports", default=repr(SUPPORTS[0]), help="comma-separated (default 0.001)")
    parser.add_argument("--task", choices=["rules", "itemsets"], default="rules")
    args = parser.parse_args(argv)
    if not have_pyfim():
        print("pyfim is not installed (pip install pyfim): nothing to compare with")
        return
    print(f"in process, ours / pyfim, {args.pairs} runs of each in turn ({args.task}):")
    print("| dataset | support | min wall ours / pyfim | median wall | median CPU ours / pyfim |")
    print("|---|---|---:|---:|---:|")
    for key in args.datasets.split(","):
        baskets = load(DATASETS[key])
        for support in (float(s) for s in args.supports.split(",")):
            ds = replace(DATASETS[key], min_support=support)
            times = timed_pairs(args.task, baskets, ds, args.pairs)
            (ours_wall, pyfim_wall), (ours_cpu, pyfim_cpu) = (
                [[run[i] for run in times[library]] for library in ("ours", "pyfim")] for i in (0, 1)
            )
            low, mid, cpu = (
                (min(ours_wall), min(pyfim_wall)),
                (median(ours_wall), median(pyfim_wall)),
                (median(ours_cpu), median(pyfim_cpu)),
            )
            print(
                f"| {key} | {support} | "
                + " | ".join(f"{a * 1e3:.2f} / {b * 1e3:.2f} ms = {a / b:.2f}x" for a, b in (low, mid, cpu))
                + " |"
            )
