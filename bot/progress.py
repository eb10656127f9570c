"""A progress bar on a terminal for long commands (imports); silent when output is not a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO = sys.stderr, width: int = 30):
        self.label = label
        self.stream = stream
        self.width = width
        self.enabled = stream.isatty()
        self.started = time.monotonic()

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

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
