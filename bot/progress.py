"""A progress bar on a terminal for long commands (imports); silent when output is not a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30):
        self.label = label
        # sys.stderr as it is now, not as it was at import (tests and callers may have replaced it).
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()
        self.done = 0

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        if total:
            filled = min(self.width, int(self.width * done / total))
            bar = "█" * filled + "·" * (self.width - filled)
            self.stream.write(f"\r{self.label} {bar} {done:,}/{total:,} rows  {elapsed:5.1f}s")
        else:
            self.stream.write(f"\r{self.label} {done:,} rows  {elapsed:5.1f}s")
        self.stream.flush()

    def per_table(self, _table: str, rows: int) -> None:
        """A running count for work reported table by table (backup, restore): ``rows`` more are done."""
        self.done += rows
        self(self.done, None)

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
