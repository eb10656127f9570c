"""What an import did: counts, and every row it could not take with its row number, column, value and reason."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Called with (rows read so far, total rows or None) so a terminal can draw a progress bar.
Progress = Callable[[int, int | None], None]

ERROR_COLUMNS = ("row", "column", "value", "reason")


@dataclass(frozen=True)
class RowProblem:
    row: int  # 1-based line number in the file, the header being line 1
    reason: str
    column: str = ""  # the source column at fault, when one is
    value: str = ""


@dataclass
class ImportReport:
    rows: int = 0
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    error_file: Path | None = None

    def count(self, bucket: str, what: str, n: int = 1) -> None:
        target = getattr(self, bucket)
        target[what] = target.get(what, 0) + n

    def problem(self, row: int, reason: str, column: str = "", value: str = "") -> None:
        self.problems.append(RowProblem(row, reason, column, value))

    @property
    def skipped_rows(self) -> int:
        return len({p.row for p in self.problems})

    def write_errors(self, path: Path) -> None:
        """The problems as CSV (row, column, value, reason), for a spreadsheet next to the source."""
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(ERROR_COLUMNS)
            writer.writerows((p.row, p.column, p.value, p.reason) for p in self.problems)
        self.error_file = path

    def summary(self, max_problems: int = 20) -> str:
        def part(counts: dict[str, int]) -> str:
            return ", ".join(f"{n:,} {what}" for what, n in counts.items() if n) or "nothing"

        lines = [f"Note: {note}." for note in self.notes]
        if self.dry_run:
            lines.append("Dry run: checked everything, wrote nothing.")
        lines.append(f"Read {self.rows:,} rows.")
        lines.append(f"{'Would create' if self.dry_run else 'Created'}: {part(self.created)}.")
        if self.updated:
            lines.append(f"{'Would update' if self.dry_run else 'Updated'}: {part(self.updated)}.")
        if self.unchanged:
            lines.append(f"Already there: {part(self.unchanged)}.")
        if self.problems:
            lines.append(f"Skipped {self.skipped_rows:,} malformed row(s):")
            lines.extend(f"  row {p.row}: {p.reason}" for p in self.problems[:max_problems])
            if len(self.problems) > max_problems:
                lines.append(f"  … and {len(self.problems) - max_problems:,} more")
            if self.error_file is not None:
                lines.append(f"Every problem is listed in {self.error_file}.")
        return "\n".join(lines)
