"""Association-rule mining: ours against pyfim (Borgelt's C), and optionally mlxtend.

Run with ``python -m benchmarks mining`` (options after ``--``: ``--quick``, ``--repeat N``,
``--no-memory``, ``--no-processes``, ``--mlxtend``, ``--datasets groceries,t10,retail``,
``--supports 0.001,0.0005``).

Data sets: Groceries and T10I4D100K from the shared data folder, and a retail basket file of
the shape of FIMI's retail.dat (88,162 baskets), generated once by
``benchmarks/retail_baskets.py``. Each is mined at every support (confidence 0.8, at most 10
items, arules' default ``maxlen``).

In-process, for each data set (read once with ``read_baskets``; reading is not timed), two
tasks from the same Python list of baskets:

- ``itemsets``: all frequent itemsets as Python objects. Ours: ``FrequentItemsets(...).fit``
  plus building ``itemsets_``; pyfim: ``fim.eclat``; mlxtend: ``TransactionEncoder`` one-hot
  encoding + ``fpgrowth``.
- ``rules``: the whole pipeline to rules with a single-item consequent. Ours:
  ``AssociationRules(...).fit`` plus building ``rules_``; pyfim: ``fim.arules`` with arules'
  rule-support definition (mode ``o``) and ``zmin=2`` (no empty antecedents); mlxtend: the
  itemset stage plus ``association_rules`` (only single-item consequents are counted).

Ours and pyfim run in turn, at least N times each (5; fast ones for about a second, up to 50);
the best wall and best CPU time of each are reported, and their ratios against the targets
(1.2x time, 1.5x memory). Memory is the peak resident set size above the loaded baskets,
measured in a fresh subprocess per (library, task) after a warm-up on 500 baskets, with the
kernel's peak-RSS counter reset just before the run (``/proc/self/clear_refs``); this also sees
pyfim's C allocations, which ``tracemalloc`` would not.

Whole processes: ``chatcrm mine --baskets FILE --format json`` against
``benchmarks/pyfim_mine.py`` (a script calling pyfim that prints the same rules as the same
JSON; the outputs are compared byte for byte), in turn after a warm-up, with wall time, CPU
time and peak RSS from ``/usr/bin/time``; medians and pairwise ratios. chatcrm's bytecode is
compiled first, as an install does (``compile_bytecode``).
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
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import median

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
    # Built on first use (benchmarks/retail_baskets.py): the shape of FIMI's retail.dat.
    "retail": Dataset("retail", "retail.dat", 0.001, 0.8, 10),
}
SUPPORTS = (0.001, 0.0005)
# Where the generated retail file is kept between runs.
GENERATED_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / "chatcrm-bench"
LIBRARIES = ("ours", "pyfim", "mlxtend")
TASKS = ("itemsets", "rules")


def data_file(dataset: Dataset) -> Path | None:
    """``<repo>/../shared/data/<file>``, else ``$CHATCRM_SHARED_DATA/<file>``, else None.

    The retail file, when it is in neither place, is generated once into GENERATED_DIR."""
    candidates = [REPO_ROOT.parent / "shared" / "data" / dataset.filename]
    if os.environ.get("CHATCRM_SHARED_DATA"):
        candidates.append(Path(os.environ["CHATCRM_SHARED_DATA"]) / dataset.filename)
    found = next((path for path in candidates if path.is_file()), None)
    if found is None and dataset.key == "retail":
        from benchmarks.retail_baskets import write_retail_file

        found = GENERATED_DIR / dataset.filename
        if not found.is_file():
            GENERATED_DIR.mkdir(parents=True, exist_ok=True)
            write_retail_file(found.with_suffix(".tmp")).rename(found)
    return found


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


def paired_best(task: str, baskets, ds: Dataset, repeat: int) -> dict[str, dict]:
    """Ours and pyfim in turn (the first of each pair alternating), best wall and CPU time of each.

    On a shared machine the best of many interleaved runs is what finds the quiet moments for
    both alike; CPU time (``time.process_time``) is not inflated by waiting for a core.
    """
    libraries = ("ours", "pyfim")
    out: dict[str, dict] = {lib: {"wall": float("inf"), "cpu": float("inf")} for lib in libraries}
    runs = repeat
    done = 0
    while done < runs:
        for library in libraries if done % 2 == 0 else libraries[::-1]:
            gc.collect()
            started, cpu_started = time.perf_counter(), time.process_time()
            out[library]["result"] = RUNNERS[library](task, baskets, ds)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            out[library]["wall"] = min(out[library]["wall"], wall)
            out[library]["cpu"] = min(out[library]["cpu"], cpu)
            if done == 0 and library == "ours" and repeat > 1:
                runs = max(repeat, min(FAST_RUN_CAP, int(FAST_RUN_BUDGET_S / max(wall, 1e-6))))
        done += 1
    for library in libraries:
        out[library]["runs"] = runs
    return out


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


def child(library: str, task: str, dataset_key: str, min_support: str) -> None:
    ds = replace(DATASETS[dataset_key], min_support=float(min_support))
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
        [sys.executable, "-m", "benchmarks.bench_mining", "--child", library, task, ds.key, repr(ds.min_support)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        print(f"  memory run {library}/{task} failed: {proc.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- whole processes: chatcrm mine against a script calling pyfim ----------------------------


def process_commands(ds: Dataset, path: Path) -> dict[str, list[str]]:
    thresholds = [repr(ds.min_support), repr(ds.min_confidence)]
    return {
        "ours": [sys.executable, "-m", "bot.cli", "mine", "--baskets", str(path), "--min-support", thresholds[0]]
        + ["--min-confidence", thresholds[1], "--max-len", str(ds.max_len), "--format", "json"],
        "pyfim": [sys.executable, str(REPO_ROOT / "benchmarks" / "pyfim_mine.py"), str(path), *thresholds]
        + [str(ds.max_len)],
    }


def run_process(command: list[str]) -> tuple[float, float, float, bytes]:
    """(wall s, cpu s, peak RSS MiB, stdout) of one run, as ``/usr/bin/time`` accounts for it.

    Not ``os.wait4`` on our own child: Linux carries a process's peak RSS across fork and exec,
    so a child of this (large) benchmark process would report at least our own size.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        started = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-o", timing.name, "-f", "%U %S %M", *command],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - started  # finer than time's own 10 ms
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:4])} ... exited with {proc.returncode}")
        user, system, peak_kb = timing.read().split()[-3:]
    return wall, float(user) + float(system), int(peak_kb) / 1024, proc.stdout


def compile_bytecode() -> None:
    """Write the .pyc files of chatcrm's packages, as installing the package does.

    Where PYTHONDONTWRITEBYTECODE is set (as on the development machines) a checkout never gets them, and
    every ``chatcrm mine`` then compiled bot/cli.py and the miner's modules from source: 65M of the 336M
    instructions of a Groceries run, a cost an installed chatcrm does not have (pip compiles them when it
    installs a wheel).
    The pyfim script pays for compiling itself, as any script run by path does.
    """
    import compileall

    for package in ("bot", "crm_core"):
        compileall.compile_dir(REPO_ROOT / package, quiet=1)


def compare_processes(ds: Dataset, path: Path, runs: int) -> dict:
    """Both commands in turn (ours, pyfim, ours, ...) after one warm-up each; medians and pairwise ratios."""
    compile_bytecode()
    commands = process_commands(ds, path)
    for command in commands.values():
        run_process(command)
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    outputs = {}
    for _ in range(runs):
        for name, command in commands.items():
            wall, cpu, peak, outputs[name] = run_process(command)
            figures[name].append((wall, cpu, peak))
    pairs = list(zip(figures["ours"], figures["pyfim"]))
    return {
        "same_output": outputs["ours"] == outputs["pyfim"],
        "rules": outputs["ours"].count(b'"antecedent"'),
        **{
            f"{name}_{what}": median(row[i] for row in rows)
            for name, rows in figures.items()
            for i, what in enumerate(("wall", "cpu", "peak"))
        },
        **{f"ratio_{what}": median(a[i] / b[i] for a, b in pairs) for i, what in enumerate(("wall", "cpu", "peak"))},
    }


# --- driver ---------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks mining --", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs each, no mlxtend")
    parser.add_argument("--repeat", type=int, default=None, help="runs per measurement (default 5, quick 2)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--no-processes", action="store_true", help="skip the whole-process comparison")
    parser.add_argument("--mlxtend", action="store_true", help="also run mlxtend (support 0.001 only; slow)")
    parser.add_argument("--datasets", default="groceries,t10,retail", help="comma-separated: groceries,t10,retail")
    parser.add_argument("--supports", default=",".join(map(repr, SUPPORTS)), help="comma-separated minimum supports")
    parser.add_argument("--child", nargs=4, metavar=("LIBRARY", "TASK", "DATASET", "SUPPORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return

    repeat = args.repeat or (2 if args.quick else 5)
    libraries = [lib for lib in LIBRARIES if (lib != "pyfim" or have_pyfim()) and (lib != "mlxtend" or args.mlxtend)]
    if "pyfim" not in libraries:
        print("pyfim is not installed (pip install -e '.[bench]'); no ratios to report")
    loadavg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s), load average {loadavg} (other work on the "
        f"machine inflates all times); best of >= {repeat} runs, up to {FAST_RUN_CAP} for fast ones (mlxtend on t10: 1 run)"
    )

    rows = []
    processes = []
    for key in args.datasets.split(","):
        base = DATASETS[key.strip()]
        path = data_file(base)
        if path is None:
            print(
                f"\n[{base.key}] skipped: {base.filename} not found in {REPO_ROOT.parent / 'shared' / 'data'} "
                f"(or set CHATCRM_SHARED_DATA to the directory holding it)"
            )
            continue
        started = time.perf_counter()
        baskets = load(base)
        print(
            f"\n[{base.key}] {len(baskets):,} baskets read in {time.perf_counter() - started:.2f} s ({path})",
            flush=True,
        )
        for support in (float(x) for x in args.supports.split(",")):
            ds = replace(base, min_support=support)
            print(f"  support {ds.min_support}, confidence {ds.min_confidence}, max_len {ds.max_len}", flush=True)
            counts: dict[tuple[str, str], int] = {}
            if "pyfim" in libraries:
                for task in TASKS:
                    paired = paired_best(task, baskets, ds, repeat)
                    for library, figures in paired.items():
                        record(rows, counts, ds, library, task, figures, args.no_memory)
            if "mlxtend" in libraries and support >= 0.001 and not (ds.key == "t10" and args.quick):
                result, best, runs = best_time("mlxtend", "rules", baskets, ds, 1 if ds.key == "t10" else repeat)
                for stage, seconds in best.items():  # one mlxtend run times both stages
                    figures = {"result": result, "wall": seconds, "cpu": None, "runs": runs}
                    record(rows, counts, ds, "mlxtend", stage, figures, args.no_memory)
            for task in TASKS:
                found = {lib: n for (lib, t), n in counts.items() if t == task}
                agree = len(set(found.values())) <= 1
                detail = ", ".join(f"{lib} {n:,}" for lib, n in found.items())
                print(f"    {task}: {'outputs agree' if agree else 'MISMATCH'} ({detail})")
                if task == "rules" and not agree and "mlxtend" in found:
                    explain_mlxtend_gap(baskets, ds, found)
            if not args.no_processes and "pyfim" in libraries:
                compared = compare_processes(ds, path, max(3, repeat))
                processes.append((ds.key, support, compared))
                print(
                    f"    whole process: ours {compared['ours_wall']:.2f} s / {compared['ours_peak']:.0f} MiB, "
                    f"pyfim script {compared['pyfim_wall']:.2f} s / {compared['pyfim_peak']:.0f} MiB, "
                    f"{compared['rules']:,} rules, output {'identical' if compared['same_output'] else 'DIFFERENT'}",
                    flush=True,
                )
        del baskets
    report(rows, processes)


def record(rows: list, counts: dict, ds: Dataset, library: str, task: str, figures: dict, no_memory: bool) -> None:
    n = figures["result"][task]
    counts[(library, task)] = n
    memory = None if no_memory else peak_memory(library, task, ds)
    rows.append((ds.key, ds.min_support, library, task, figures["wall"], figures["cpu"], figures["runs"], memory, n))
    mem = "-" if memory is None else f"{memory['peak_mb']:.1f}"
    cpu = "-" if figures["cpu"] is None else f"{figures['cpu']:.4f}"
    print(f"    {library:8s} {task:9s} {figures['wall']:9.4f} s (cpu {cpu} s)  peak {mem:>6s} MB  -> {n:,}", flush=True)


def report(rows: list, processes: list) -> None:
    if not rows:
        return
    print("\n| dataset | support | library | task | best wall (s) | best cpu (s) | runs | peak memory (MB) | output |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for dataset, support, library, task, wall, cpu, runs, memory, n in rows:
        mem = "-" if memory is None else f"{memory['peak_mb']:.1f}"
        cpu_text = "-" if cpu is None else f"{cpu:.4f}"
        print(
            f"| {dataset} | {support} | {library} | {task} | {wall:.4f} | {cpu_text} | {runs} | {mem} | {n:,} {task} |"
        )

    figures = {(d, s, lib, t): (wall, cpu, mem) for d, s, lib, t, wall, cpu, _, mem, _ in rows}
    print(f"\nin-process, ours / pyfim (targets: time <= {TIME_TARGET}x, peak memory <= {MEMORY_TARGET}x):")
    print(
        "| dataset | support | task | wall ours / pyfim | cpu ours / pyfim | peak memory ours / pyfim | mlxtend / ours |"
    )
    print("|---|---|---|---:|---:|---:|---:|")
    for dataset, support in dict.fromkeys((d, s) for d, s, *_ in rows):
        for task in TASKS:
            ours = figures.get((dataset, support, "ours", task))
            peer = figures.get((dataset, support, "pyfim", task))
            if ours is None or peer is None:
                continue
            memory = "-"
            if ours[2] and peer[2]:
                memory = f"{ours[2]['peak_mb']:.1f} / {peer[2]['peak_mb']:.1f} MB = " + _verdict(
                    ours[2]["peak_mb"] / max(peer[2]["peak_mb"], 0.1), MEMORY_TARGET
                )
            slower = figures.get((dataset, support, "mlxtend", task))
            versus = f"{slower[0] / ours[0]:.1f}x" if slower else "-"
            print(
                f"| {dataset} | {support} | {task} | {ours[0] * 1000:.1f} / {peer[0] * 1000:.1f} ms = "
                f"{_verdict(ours[0] / peer[0], TIME_TARGET)} | {_verdict(ours[1] / peer[1], TIME_TARGET)} | "
                f"{memory} | {versus} |"
            )
    if processes:
        print(
            "\nwhole processes, `chatcrm mine --format json` / a script calling pyfim (medians; ratios pair by pair):"
        )
        print(
            "| dataset | support | rules | wall ours / pyfim | cpu ours / pyfim | peak RSS ours / pyfim | same JSON |"
        )
        print("|---|---|---:|---:|---:|---:|---|")
        for dataset, support, c in processes:
            print(
                f"| {dataset} | {support} | {c['rules']:,} | {c['ours_wall']:.2f} / {c['pyfim_wall']:.2f} s = "
                f"{_verdict(c['ratio_wall'], TIME_TARGET)} | {_verdict(c['ratio_cpu'], TIME_TARGET)} | "
                f"{c['ours_peak']:.0f} / {c['pyfim_peak']:.0f} MiB = {_verdict(c['ratio_peak'], MEMORY_TARGET)} | "
                f"{'yes' if c['same_output'] else 'NO'} |"
            )


TIME_TARGET = 1.2
MEMORY_TARGET = 1.5


def _verdict(ratio: float, target: float) -> str:
    return f"{ratio:.2f}x" + ("" if ratio <= target else " (missed)")


if __name__ == "__main__":
    main(sys.argv[1:])
