"""Importing real order data (the Online Retail sample) and customer lists, on both databases."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from crm_core.importing.customers_csv import import_customers
from crm_core.importing.retail_orders import ImportFailed, import_retail_orders
from crm_core.models import AuditEntry, Customer, Order, OrderKind, OrderLine, Product
from tests.shared_data import shared_file

SAMPLE_NAME = "online_retail_sample.csv"
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def _count(app, model, *where) -> int:
    with app.uow() as uow:
        return uow.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_sample_file_imports_and_reimport_changes_nothing(app):
    sample = shared_file(SAMPLE_NAME)
    rows = list(csv.DictReader(sample.open(encoding="utf-8")))
    invoices = {r["InvoiceNo"] for r in rows}
    cancellations = {r["InvoiceNo"] for r in rows if r["InvoiceNo"].startswith("C")}
    anonymous = {r["InvoiceNo"] for r in rows if not r["CustomerID"]}
    customers = {r["CustomerID"] for r in rows if r["CustomerID"]}
    with app.uow() as uow:
        report = import_retail_orders(uow, sample, currency="GBP")
    assert report.rows == len(rows) and report.problems == []
    assert report.created == {
        "customers": len(customers),
        "products": len({r["StockCode"] for r in rows}),
        "orders": len(invoices - cancellations),
        "cancellations": len(cancellations),
        "order lines": len(rows),
    }
    assert _count(app, Order) == len(invoices)
    assert _count(app, Order, Order.kind == OrderKind.CANCELLATION) == len(cancellations)
    assert _count(app, Order, Order.customer_id.is_(None)) == len(anonymous)
    # Lifetime value is purchases minus cancellations, exactly as in the file.
    expected = {}
    for r in rows:
        if r["CustomerID"]:
            cents = round(float(r["UnitPrice"]) * int(r["Quantity"]) * 100)
            expected[r["CustomerID"]] = expected.get(r["CustomerID"], 0) + cents
    with app.uow() as uow:
        stored = dict(uow.session.execute(sa.select(Customer.external_ref, Customer.lifetime_value_cents)).all())
    assert {ref.removeprefix("retail:"): v for ref, v in stored.items()} == expected
    before = {m.__name__: _count(app, m) for m in (Customer, Product, Order, OrderLine)}
    with app.uow() as uow:
        again = import_retail_orders(uow, sample, currency="GBP")
    assert again.created == {} and again.unchanged == {"orders": len(invoices)}
    assert {m.__name__: _count(app, m) for m in (Customer, Product, Order, OrderLine)} == before
    assert _count(app, AuditEntry, AuditEntry.action == "import") == 2


def test_malformed_rows_are_reported_and_the_rest_imported(app):
    data = (
        HEADER
        + "\n".join(
            [
                "536365,85123A,WHITE HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom",
                "536365,71053,WHITE LANTERN,six,2010-12-01 08:26:00,3.39,17850,United Kingdom",
                "536366,22633,HAND WARMER,6,yesterday,1.85,17850,United Kingdom",
                "536367,,NO CODE,1,2010-12-01 08:34:00,1.00,13047,United Kingdom",
                "536368,22960,JAM SET,6,2010-12-01 08:34:00,-4.25,13047,United Kingdom",
                "A563185,B,Adjust bad debt,1,8/12/2011 14:50,11062.06,,United Kingdom",
                "C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527,United Kingdom",
                "C536380,22139,WRONG SIGN,5,2010-12-01 09:41:00,1.0,14527,United Kingdom",
                "536369,21756,BATH BUILDING BLOCK,3,12/1/2010 8:35,5.95,13047.0,France",
                "536370,22728,ALARM CLOCK,24,2010-12-01 08:45:00,3.75,,EIRE",
                "536365,22752,SET 7 BABUSHKA,2,2010-12-01 08:26:00,7.65,99999,United Kingdom",
                "536371,22086,PAPER CHAIN,80,2010-12-01 09:00:00,2.55,12345x,Germany",
                "536372,22086,SHORT ROW",
            ]
        )
        + "\n"
    )
    with app.uow() as uow:
        report = import_retail_orders(uow, io.StringIO(data), currency="GBP")
    assert [(p.row, p.reason) for p in report.problems] == [
        (3, "Quantity 'six' is not a number"),
        (4, "InvoiceDate 'yesterday' is not a date"),
        (5, "StockCode is empty"),
        (6, "UnitPrice -4.25 is negative"),
        (7, "InvoiceNo 'A563185' is not an order or cancellation number"),
        (9, "cancellation C536380 has a positive quantity"),
        (12, "invoice 536365 already belongs to customer 17850"),
        (13, "CustomerID '12345x' is not a customer number"),
        (14, "has 3 fields, the header has 8"),
    ]
    assert report.created["orders"] == 3 and report.created["cancellations"] == 1
    with app.uow() as uow:
        anonymous = uow.session.scalars(sa.select(Order).where(Order.customer_id.is_(None))).one()
        assert anonymous.number == "536370" and anonymous.country == "IE"
        france = uow.session.scalars(sa.select(Order).where(Order.number == "536369")).one()
        assert france.ordered_at.isoformat() == "2010-12-01T08:35:00+00:00"


def test_a_file_without_the_columns_imports_nothing(app):
    with app.uow() as uow, pytest.raises(ImportFailed, match="no column matches 'number'; the columns are: 'a', 'b'"):
        import_retail_orders(uow, io.StringIO("a,b\n1,2\n"))
    assert _count(app, Order) == 0


def test_customer_list_with_mapping_updates_by_email_and_skips_bad_rows(app, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(
        "Full Name,E-mail,Land,Phone\n"
        "Zoë Müller,zoe@example.de,DE,+49 30 1234567\n"
        "Bad Country,bad@example.com,Germany,\n"
        ",noname@example.com,FR,\n"
        "Bo Berg,bo@example.se,SE,\n",
        encoding="utf-8",
    )
    mapping = {"name": "Full Name", "email": "E-mail", "country": "Land"}
    with app.uow() as uow:
        report = import_customers(uow, path, mapping)
    assert report.created == {"customers": 2}
    assert [(p.row, p.reason) for p in report.problems] == [
        (3, "'Germany' is not an ISO 3166 country code (e.g. DE, GB, US)"),
        (4, "a customer needs a name"),
    ]
    path.write_text(
        "Full Name,E-mail,Land,Phone\nZoë Müller-Schmidt,ZOE@example.de,DE,+49 30 1234567\nBo Berg,bo@example.se,SE,\n",
        encoding="utf-8",
    )
    with app.uow() as uow:
        second = import_customers(uow, path, mapping)
    assert second.updated == {"customers": 1} and second.unchanged == {"customers": 1}
    with app.uow() as uow:
        names = sorted(uow.session.scalars(sa.select(Customer.name)))
    assert names == ["Bo Berg", "Zoë Müller-Schmidt"]


def test_customer_mapping_errors(app, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("Who\nx\n", encoding="utf-8")
    with app.uow() as uow, pytest.raises(ImportFailed, match="no column matches 'name'; the columns are: 'Who'"):
        import_customers(uow, path)
    with app.uow() as uow, pytest.raises(ImportFailed, match="'colour' is not a customer field"):
        import_customers(uow, path, {"colour": "Who"})
