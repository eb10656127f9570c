"""Benchmarks for chatcrm: each ``bench_<name>.py`` module prints measured figures.

Run all with ``make bench`` or a selection with ``make bench BENCH_ARGS="mining search"``.
Benchmarks never run as part of the test suite; tests never assert wall-clock times.
"""
