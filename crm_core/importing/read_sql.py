"""Rows from a query on another database, through SQLAlchemy (an old MySQL or PostgreSQL CRM, a SQLite file).

The result streams (a server-side cursor where the driver has one), so a large table is never held
in memory; every value is turned into the text a CSV export would hold, and the mappers parse it.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from crm_core.i18n import _
from crm_core.importing.table import ImportFailed, Table, cell_text


def sql_table(url: str, query: str) -> Table:
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError, ValueError) as exc:
        raise ImportFailed(_("--from-db: {error}", error=exc)) from None
    try:
        connection = engine.connect()
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise ImportFailed(_("--from-db: cannot connect ({error})", error=exc.orig)) from None
    try:
        result = connection.execution_options(stream_results=True, yield_per=2000).execute(sa.text(query))
    except sa.exc.DBAPIError as exc:
        connection.close()
        engine.dispose()
        raise ImportFailed(_("--query failed: {error}", error=str(exc.orig).splitlines()[0])) from None
    if not result.returns_rows:
        connection.close()
        engine.dispose()
        raise ImportFailed(_("--query returns no rows: give a SELECT"))
    header = [str(key) for key in result.keys()]

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            # Row numbers count from 2, as if the result were a file under a header line.
            for number, row in enumerate(result, start=2):
                yield number, [cell_text(v) for v in row]
        finally:
            connection.close()
            engine.dispose()

    return Table("query", header, rows())
