"""What an import did: counts, and every row it could not take with its row number, column, value and reason."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from crm_core.i18n import _, format_number, ngettext

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
        """What the import did, in the current language (the CLI's: CHATCRM_LANGUAGE)."""

        def part(counts: dict[str, int]) -> str:
            return ", ".join(_counted(what, n) for what, n in counts.items() if n) or _("nothing")

        lines = [_("Note: {note}.", note=note) for note in self.notes]
        if self.dry_run:
            lines.append(_("Dry run: checked everything, wrote nothing."))
        lines.append(ngettext("Read {count} row.", "Read {count} rows.", self.rows, count=format_number(self.rows)))
        if self.dry_run:
            lines.append(_("Would create: {what}.", what=part(self.created)))
        else:
            lines.append(_("Created: {what}.", what=part(self.created)))
        if self.updated:
            if self.dry_run:
                lines.append(_("Would update: {what}.", what=part(self.updated)))
            else:
                lines.append(_("Updated: {what}.", what=part(self.updated)))
        if self.unchanged:
            lines.append(_("Already there: {what}.", what=part(self.unchanged)))
        if self.problems:
            skipped = self.skipped_rows
            lines.append(
                ngettext(
                    "Skipped {count} malformed row:",
                    "Skipped {count} malformed rows:",
                    skipped,
                    count=format_number(skipped),
                )
            )
            lines.extend(
                "  " + _("row {row}: {reason}", row=p.row, reason=p.reason) for p in self.problems[:max_problems]
            )
            if len(self.problems) > max_problems:
                more = len(self.problems) - max_problems
                lines.append("  " + _("… and {count} more", count=format_number(more)))
            if self.error_file is not None:
                lines.append(_("Every problem is listed in {file}.", file=self.error_file))
        return "\n".join(lines)


def _counted(what: str, n: int) -> str:
    """``n`` of ``what`` (a key of the counts: "customers", "order lines", ...) in the current language."""
    count = format_number(n)
    words = {
        "customers": ngettext("{count} customer", "{count} customers", n, count=count),
        "companies": ngettext("{count} company", "{count} companies", n, count=count),
        "deals": ngettext("{count} deal", "{count} deals", n, count=count),
        "products": ngettext("{count} product", "{count} products", n, count=count),
        "orders": ngettext("{count} order", "{count} orders", n, count=count),
        "cancellations": ngettext("{count} cancellation", "{count} cancellations", n, count=count),
        "order lines": ngettext("{count} order line", "{count} order lines", n, count=count),
    }
    return words.get(what) or f"{count} {what}"
