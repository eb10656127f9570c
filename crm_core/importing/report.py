"""What an import did: counts, and every row it could not take with its row number and reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Called with (rows read so far, total rows or None) so a terminal can draw a progress bar.
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class RowProblem:
    row: int  # 1-based line number in the file, the header being line 1
    reason: str


@dataclass
class ImportReport:
    rows: int = 0
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)

    def count(self, bucket: str, what: str, n: int = 1) -> None:
        target = getattr(self, bucket)
        target[what] = target.get(what, 0) + n

    def problem(self, row: int, reason: str) -> None:
        self.problems.append(RowProblem(row, reason))

    def summary(self, max_problems: int = 20) -> str:
        def part(counts: dict[str, int]) -> str:
            return ", ".join(f"{n:,} {what}" for what, n in counts.items() if n) or "nothing"

        lines = [
            f"Read {self.rows:,} rows.",
            f"Created: {part(self.created)}.",
        ]
        if self.updated:
            lines.append(f"Updated: {part(self.updated)}.")
        if self.unchanged:
            lines.append(f"Already there: {part(self.unchanged)}.")
        if self.problems:
            lines.append(f"Skipped {len(self.problems):,} malformed row(s):")
            lines.extend(f"  row {p.row}: {p.reason}" for p in self.problems[:max_problems])
            if len(self.problems) > max_problems:
                lines.append(f"  … and {len(self.problems) - max_problems:,} more")
        return "\n".join(lines)
