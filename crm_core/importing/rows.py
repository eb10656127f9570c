"""What a mapper receives: one source row as CRM field -> text, and how to report a bad one."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from crm_core.errors import CrmError, ValidationError
from crm_core.importing.columns import FieldSpec
from crm_core.importing.report import ImportReport
from crm_core.uow import UnitOfWork


@dataclass
class Row:
    number: int
    values: dict[str, str]  # field -> stripped cell text ("" when empty)
    columns: dict[str, str]  # field -> the source column it came from

    def given(self) -> dict[str, str]:
        """The fields with a value: an empty cell leaves the CRM's value alone, it does not clear it."""
        return {k: v for k, v in self.values.items() if v}


def reject(report: ImportReport, row: Row, error: Exception, field: str | None = None) -> None:
    """Report every field a validation error names (one error-report line each), or the row as a whole."""
    if isinstance(error, ValidationError) and error.errors:
        for name, message in error.errors.items():
            report.problem(row.number, message, row.columns.get(name, name), row.values.get(name, ""))
        return
    message = error.message if isinstance(error, CrmError) else str(error)
    name = field or (error.field if isinstance(error, ValidationError) else None) or ""
    report.problem(row.number, message, row.columns.get(name, ""), row.values.get(name, ""))


@dataclass(frozen=True)
class Mapper:
    """One kind of record an import can bring in."""

    entity: str  # plural, as typed: "customers"
    singular: str  # "customer", in messages
    fields: Callable[[UnitOfWork], Sequence[FieldSpec]]
    # Takes every row and reports into the report; options are the command's (currency, ...).
    import_rows: Callable[[UnitOfWork, Iterator[Row], ImportReport, dict[str, Any]], None]
