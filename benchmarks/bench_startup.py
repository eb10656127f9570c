"""How fast `chatcrm` starts, timed as whole processes: `--help`, `mine --help` and `mine` on a small basket file.

A console pipe or an analyst's one-off `chatcrm mine` pays the start-up every time. Each command runs
``--runs`` times after one warm-up; the figures are wall and CPU seconds (min / median / max) and the
peak resident memory of the process, from the operating system's accounting of each finished child
(``os.wait4``, the per-child form of ``resource.getrusage(RUSAGE_CHILDREN)``). ``python -c pass`` is
timed alongside as the floor. Target: `chatcrm --help` and `chatcrm mine --help` under 0.3 s.

    python -m benchmarks startup
    python -m benchmarks startup -- --runs 20 --baskets 5000

The `chatcrm` entry point next to this interpreter is run with this checkout first on PYTHONPATH,
so the code measured is the code here; ``--module`` runs ``python -m bot.cli`` instead.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.3


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float
    peak_mib: float
    returncode: int


def run_once(command: list[str], env: dict[str, str]) -> Run:
    """One whole process: wall time around it, CPU and peak RSS from the kernel's record of that child."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # wait4 reaps the child and returns its own rusage; RUSAGE_CHILDREN would be the maximum over every
    # child so far, which would mix the commands' peaks.
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
    # ru_maxrss is in KiB on Linux.
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, process.returncode)


def measure(command: list[str], env: dict[str, str], runs: int) -> list[Run]:
    run_once(command, env)  # warm-up: file cache, .pyc files
    return [run_once(command, env) for _ in range(runs)]


def write_baskets(path: Path, baskets: int, seed: int = 11) -> None:
    """Shop-like baskets: 60 products with skewed popularity, 1-8 items each, a few pairs bought together."""
    rng = random.Random(seed)
    products = [f"P{n:03d}" for n in range(60)]
    weights = [1 / (rank + 1) for rank in range(len(products))]
    pairs = [("P001", "P007"), ("P002", "P013"), ("P005", "P021")]
    with path.open("w", encoding="utf-8") as out:
        for _ in range(baskets):
            basket = set(rng.choices(products, weights, k=rng.randint(1, 8)))
            for left, right in pairs:
                if left in basket and rng.random() < 0.6:
                    basket.add(right)
            out.write(",".join(sorted(basket)) + "\n")


def row(label: str, runs: list[Run]) -> str:
    walls = [r.wall_s for r in runs]
    cpu = statistics.median(r.cpu_s for r in runs)
    peak = max(r.peak_mib for r in runs)
    codes = sorted({r.returncode for r in runs})
    return (
        f"{label:<34} {min(walls):7.3f} {statistics.median(walls):7.3f} {max(walls):7.3f}"
        f" {cpu:8.3f} {peak:9.1f}  exit {','.join(map(str, codes))}"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench startup")
    parser.add_argument("--runs", type=int, default=10, help="counted runs per command (default 10)")
    parser.add_argument("--baskets", type=int, default=2000, help="baskets in the generated file (default 2000)")
    parser.add_argument("--module", action="store_true", help="run `python -m bot.cli` instead of `chatcrm`")
    args = parser.parse_args(argv)

    entry_point = Path(sys.executable).with_name("chatcrm")
    chatcrm = [sys.executable, "-m", "bot.cli"] if args.module or not entry_point.exists() else [str(entry_point)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TELEGRAM_", "CHATCRM_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

    with tempfile.TemporaryDirectory() as tmp:
        baskets = Path(tmp) / "baskets.txt"
        write_baskets(baskets, args.baskets)
        mine_file = ["mine", "--baskets", str(baskets), "--min-support", "0.02", "--min-confidence", "0.3"]
        commands = [
            ("python -c pass (the floor)", [sys.executable, "-c", "pass"]),
            ("chatcrm --help", [*chatcrm, "--help"]),
            ("chatcrm mine --help", [*chatcrm, "mine", "--help"]),
            (f"chatcrm mine ({args.baskets:,} baskets)", [*chatcrm, *mine_file]),
        ]
        print(f"{' '.join(chatcrm)}; {args.runs} runs each after one warm-up; os.cpu_count()={os.cpu_count()}")
        print(f"{'command':<34} {'wall s':>7} {'median':>7} {'max':>7} {'cpu s':>8} {'peak MiB':>9}")
        print(f"{'':<34} {'min':>7}")
        results = {}
        for label, command in commands:
            results[label] = measure(command, env, args.runs)
            print(row(label, results[label]), flush=True)
    for label in ("chatcrm --help", "chatcrm mine --help"):
        median = statistics.median(r.wall_s for r in results[label])
        verdict = "under" if median < TARGET_S else "OVER"
        print(f"{label}: median {median:.3f} s, {verdict} the {TARGET_S} s target")
