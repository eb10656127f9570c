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
        from crm_core.i18n import ngettext

        elapsed = f"{time.monotonic() - self.started:5.1f}s"
        if total:
            filled = min(self.width, int(self.width * done / total))
            bar = "█" * filled + "·" * (self.width - filled)
            rows = ngettext("{done}/{total} row", "{done}/{total} rows", total, done=f"{done:,}", total=f"{total:,}")
            self.stream.write(f"\r{self.label} {bar} {rows}  {elapsed}")
        else:
            rows = ngettext("{done} row", "{done} rows", done, done=f"{done:,}")
            self.stream.write(f"\r{self.label} {rows}  {elapsed}")
        self.stream.flush()

    def per_table(self, _table: str, rows: int) -> None:
        """A running count for work reported table by table (backup, restore): ``rows`` more are done."""
        self.done += rows
        self(self.done, None)

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
