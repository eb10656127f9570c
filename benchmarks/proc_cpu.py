"""CPU seconds that processes on this machine have used, read from Linux's ``/proc``.

The benchmarks of issue 17 ask what a request costs across every process that serves it (our web
and worker processes, the PostgreSQL server, the fake platforms, the load client), since they all
share the same two cores. Elsewhere than Linux the readings are None and the figures are left out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int | str) -> tuple[str, list[str]] | None:
    """A process's name and the fields after it in ``/proc/<pid>/stat``; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            line = stat.read()
    except OSError:
        return None
    # The name is in parentheses and may hold spaces: split around the last ")".
    return line[line.find("(") + 1 : line.rfind(")")], line[line.rfind(")") + 2 :].split()


def _seconds(fields: list[str]) -> float:
    # utime and stime (the whole process, every thread), then cutime and cstime: the CPU of its
    # children that have exited and been waited for.
    return sum(int(value) for value in fields[11:15]) / _TICK


def process_cpu_seconds(pids: Iterable[int]) -> float | None:
    """CPU seconds of these processes (every thread of each), with their exited children's; None
    when ``/proc`` cannot tell (not Linux). A process gone meanwhile counts as 0."""
    if not os.path.isdir("/proc/self"):
        return None
    total = 0.0
    for pid in pids:
        found = _stat(pid)
        if found is not None:
            total += _seconds(found[1])
    return total


def postgres_cpu_seconds() -> float | None:
    """CPU seconds the local PostgreSQL server's processes have used; None when none is visible (a
    server on another machine, or not Linux). A backend lives as long as its pooled connection; the
    postmaster's count of exited children covers the ones that ended meanwhile."""
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    total, found = 0.0, False
    for pid in pids:
        stat = _stat(pid)
        if stat is not None and stat[0] == "postgres":
            found = True
            total += _seconds(stat[1])
    return total if found else None
