"""Import a customer list from a CSV file or stream: the customers mapper (map_customers) behind the
older call that takes a path or an open text stream."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from crm_core.importing.read_csv import csv_table
from crm_core.importing.report import ImportReport, Progress
from crm_core.importing.run import import_table
from crm_core.importing.sources import open_table
from crm_core.uow import UnitOfWork


def import_customers(
    uow: UnitOfWork,
    source: str | Path | TextIO,
    mapping: Mapping[str, str] | None = None,
    *,
    progress: Progress | None = None,
) -> ImportReport:
    table = open_table(source) if isinstance(source, (str, Path)) else csv_table(source)
    return import_table(uow, "customers", table, mapping, progress=progress)
