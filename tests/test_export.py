"""chatcrm export, and the round trips a migration makes: export to .xlsx, empty the CRM, import the file;
the same through --from-db from a second SQLite database (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import json
import sqlite3

import pytest
import sqlalchemy as sa

from crm_core.exporting.lists import ExportFailed
from crm_core.exporting.run import export
from crm_core.importing.run import import_table
from crm_core.importing.sources import open_table
from crm_core.models import Company, Customer, CustomFieldValue, Deal, FieldEntity, FieldType, User
from crm_core.services import custom_fields, customers, deals

PEOPLE = [
    ("p1", "Zoë Müller", "zoe@example.de", "+49 30 1234567", "Acme GmbH", "DE", "de", "vip,smb", "42"),
    ("p2", "Bo Berg", "bo@example.se", None, None, "SE", None, "", None),
    ("p3", "=SUM(A1)", None, "+44 20 7946 0000", "Acme GmbH", "GB", "en", "smb", "7"),
]


def _seed(app) -> None:
    with app.uow() as uow:
        owner = User(name="Tom Becker")
        uow.session.add(owner)
        custom_fields.define_field(uow, FieldEntity.CUSTOMER, "employees", FieldType.NUMBER)
        for ref, name, email, phone, company, country, language, tags, employees in PEOPLE:
            fields = {"email": email, "phone": phone, "company": company, "country": country, "language": language}
            fields |= {"tags": tags, "employees": employees, "owner": "Tom Becker"}
            customer = customers.create_customer(uow, name, {k: v for k, v in fields.items() if v})
            customer.external_ref = ref
            if ref == "p1":
                deals.create_deal(uow, customer.id, "Renewal", amount_cents=1_250_000)
        uow.session.add(Customer(name="Nameless Ltd", external_ref="p4", country="FR"))


def _snapshot(app) -> list[tuple]:
    with app.uow() as uow:
        rows = []
        for c in uow.session.scalars(sa.select(Customer).order_by(Customer.external_ref)):
            extra = {v.display for v in custom_fields.values_for(uow, FieldEntity.CUSTOMER, c.id)}
            owner = c.owner.name if c.owner else None
            company = c.company.name if c.company else None
            rows.append(
                (c.external_ref, c.name, c.email, c.phone, company, c.country, c.language, c.tags, owner, extra)
            )
        return rows


def _empty(app) -> None:
    with app.uow() as uow:
        uow.session.execute(sa.delete(CustomFieldValue))
        uow.session.execute(sa.delete(Customer))
        uow.session.execute(sa.delete(Company))


def test_xlsx_round_trip_then_reimport_changes_nothing(app, tmp_path):
    _seed(app)
    before = _snapshot(app)
    out = tmp_path / "customers.xlsx"
    with app.uow() as uow:
        assert export(uow, "customers", fmt="xlsx", out=str(out)) == 4
    _empty(app)
    assert _snapshot(app) == []
    with app.uow() as uow:
        report = import_table(uow, "customers", open_table(out))
    assert report.problems == [] and report.created == {"customers": 4}
    assert _snapshot(app) == before
    with app.uow() as uow:
        again = import_table(uow, "customers", open_table(out))
    assert again.unchanged == {"customers": 4} and again.created == {}
    assert _snapshot(app) == before


def test_round_trip_through_a_second_sqlite_database(app, tmp_path):
    _seed(app)
    before = _snapshot(app)
    exported = tmp_path / "customers.csv"
    with app.uow() as uow:
        export(uow, "customers", fmt="csv", out=str(exported))
    # The "old CRM": a SQLite database with one table, filled from the export.
    with exported.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    legacy = tmp_path / "legacy.db"
    with sqlite3.connect(legacy) as connection:
        connection.execute(f"CREATE TABLE clients ({', '.join(f'{c} TEXT' for c in rows[0])})")
        connection.executemany(f"INSERT INTO clients VALUES ({', '.join('?' * len(rows[0]))})", rows[1:])
    _empty(app)
    table = open_table(from_db=f"sqlite:///{legacy}", query="SELECT * FROM clients ORDER BY id")
    with app.uow() as uow:
        report = import_table(uow, "customers", table)
    assert report.problems == [] and report.created == {"customers": 4}
    assert _snapshot(app) == before
    with pytest.raises(Exception, match="--query failed: no such table: nope"):
        open_table(from_db=f"sqlite:///{legacy}", query="SELECT * FROM nope")


def test_export_filter_formats_and_refusals(app, tmp_path):
    _seed(app)
    with app.uow() as uow:
        export(uow, "deals", fmt="json", out=str(tmp_path / "de.json"), customer_filter="country=DE")
        export(uow, "deals", fmt="jsonl", out=str(tmp_path / "se.jsonl"), customer_filter="country=SE")
        export(uow, "audit", fmt="csv", out=str(tmp_path / "audit.csv"))
        with pytest.raises(ExportFailed, match="--filter selects customers; audit"):
            export(uow, "audit", out=str(tmp_path / "x.csv"), customer_filter="country=DE")
        with pytest.raises(ExportFailed, match="xlsx is a binary format"):
            export(uow, "customers", fmt="xlsx")
    records = json.loads((tmp_path / "de.json").read_text(encoding="utf-8"))
    assert [(r["title"], r["customer_ref"], r["amount"]) for r in records] == [("Renewal", "p1", 12500.0)]
    assert (tmp_path / "se.jsonl").read_text(encoding="utf-8") == ""
    audit = list(csv.DictReader((tmp_path / "audit.csv").open(encoding="utf-8")))
    assert {"customers", "deals"} <= {r["entity_type"] for r in audit}
    assert not list(tmp_path.glob("*.partial"))


def test_parquet_without_pyarrow_says_how_to_get_it(app, tmp_path):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with app.uow() as uow, pytest.raises(ExportFailed, match=r"pip install 'chatcrm\[parquet\]'"):
            export(uow, "customers", fmt="parquet", out=str(tmp_path / "c.parquet"))
        assert not (tmp_path / "c.parquet").exists()
    else:
        with app.uow() as uow:
            assert export(uow, "customers", fmt="parquet", out=str(tmp_path / "c.parquet")) == 0
