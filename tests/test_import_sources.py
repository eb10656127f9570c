"""chatcrm import from every source: CSV with any delimiter and encoding, .xlsx, another database; mapping
files, dry runs, the error report, and upserts that duplicate nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm_core.importing import mapping_file
from crm_core.importing.run import import_table
from crm_core.importing.sources import open_table
from crm_core.importing.table import ImportFailed
from crm_core.models import AuditEntry, Company, Customer, Deal, Product


def _xlsx(path, rows, sheet="Sheet"):
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet)
    for row in rows:
        worksheet.append(row)
    workbook.save(path)
    return path


def _count(app, model) -> int:
    with app.uow() as uow:
        return uow.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def _import(app, kind, path, mapping=None, **kwargs):
    options = kwargs.pop("options", None)
    with app.uow() as uow:
        return import_table(uow, kind, open_table(path, **kwargs), mapping, options=options, **{})


def test_semicolon_file_in_cp1252_is_sniffed_and_read(app, tmp_path):
    path = tmp_path / "kunden.csv"
    path.write_bytes("name;email;country\nRené Dupont;rene@example.fr;FR\n".encode("cp1252"))
    report = _import(app, "customers", path)
    assert report.created == {"customers": 1} and report.problems == []
    assert "kunden.csv is not UTF-8; read it as cp1252" in report.summary()
    assert "columns separated by ';'" in report.summary()
    with app.uow() as uow:
        assert uow.session.scalars(sa.select(Customer.name)).one() == "René Dupont"


def test_wrong_separator_and_missing_column_say_what_is_wrong(app, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("Full Name;E-mail\nAda;ada@example.com\n", encoding="utf-8")
    with pytest.raises(
        ImportFailed,
        match=r"no column matches 'name'; the columns are: 'Full Name;E-mail'; the file seems to be separated by ';'",
    ):
        _import(app, "customers", path, sep=",")
    path.write_text("Who,Mail\nAda,ada@example.com\n", encoding="utf-8")
    with pytest.raises(
        ImportFailed,
        match=r"no column matches 'name'; the columns are: 'Who', 'Mail' \(or map one: --map name=COLUMN\)",
    ):
        _import(app, "customers", path)
    assert _count(app, Customer) == 0


def test_excel_file_named_csv_is_read_as_excel_and_old_xls_is_refused(app, tmp_path):
    path = _xlsx(tmp_path / "people.csv", [["Full Name", "Mail"], ["Ada Lovelace", "ada@example.com"]])
    report = _import(app, "customers", path, {"name": "Full Name", "email": "Mail"})
    assert report.created == {"customers": 1}
    assert "this looks like an Excel file despite its name (people.csv); read it as .xlsx" in report.notes
    with pytest.raises(ImportFailed, match="this looks like an Excel file, not CSV"):
        open_table(path, sep=";")
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    with pytest.raises(ImportFailed, match="this looks like an old Excel .xls file"):
        open_table(old)


def test_xlsx_sheet_choice_and_unknown_sheet(app, tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.title = "Notes"
    workbook.active.append(["nothing here"])
    sheet = workbook.create_sheet("Products")
    sheet.append(["StockCode", "Description", "UnitPrice"])
    sheet.append(["85123A", "WHITE HEART", 2.55])
    sheet.append([22633, "HAND WARMER", "abc"])
    path = tmp_path / "catalogue.xlsx"
    workbook.save(path)
    with pytest.raises(ImportFailed, match="no sheet 'Nope'; its sheets are: Notes, Products"):
        open_table(path, sheet="Nope")
    report = _import(app, "products", path, sheet="Products", options={"currency": "GBP"})
    assert report.created == {"products": 1}
    assert [(p.row, p.column, p.value) for p in report.problems] == [(3, "UnitPrice", "abc")]
    with app.uow() as uow:
        product = uow.session.scalars(sa.select(Product)).one()
        assert (product.sku, product.price_cents, product.currency) == ("85123A", 255, "GBP")


def test_dry_run_writes_nothing_and_the_error_report_lists_bad_rows(app, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(
        "name,email,country,external_ref\n"
        "Ada,ada@example.com,GB,old-1\n"
        "Bad,bad@example,Germany,old-2\n"
        ",x@example.com,FR,old-3\n",
        encoding="utf-8",
    )
    with app.uow() as uow:
        report = import_table(uow, "customers", open_table(path), dry_run=True)
    assert report.dry_run and report.created == {"customers": 1}
    assert _count(app, Customer) == 0 and _count(app, AuditEntry) == 0
    report.write_errors(tmp_path / "people.errors.csv")
    lines = (tmp_path / "people.errors.csv").read_text(encoding="utf-8").splitlines()
    assert lines == [
        "row,column,value,reason",
        "3,email,bad@example,'bad@example' is not an email address",
        "3,country,Germany,\"'Germany' is not an ISO 3166 country code (e.g. DE, GB, US)\"",
        "4,name,,a customer needs a name",
    ]
    assert "Dry run: checked everything, wrote nothing." in report.summary()


def test_reimport_updates_by_external_id_without_duplicates(app, tmp_path):
    companies = tmp_path / "companies.csv"
    companies.write_text("id_in_old_crm,Company Name,website\nc1,Acme,acme.com\n", encoding="utf-8")
    mapping = {"external_ref": "id_in_old_crm"}
    assert _import(app, "companies", companies, mapping).created == {"companies": 1}
    companies.write_text("id_in_old_crm,Company Name,website\nc1,Acme Corp,https://acme.com/\n", encoding="utf-8")
    assert _import(app, "companies", companies, mapping).updated == {"companies": 1}
    people = tmp_path / "people.csv"
    people.write_text("external_id,name,company\np1,Ada,Acme Corp\np2,Bo,Acme Corp\n", encoding="utf-8")
    assert _import(app, "customers", people).created == {"customers": 2}
    deals = tmp_path / "deals.csv"
    deals.write_text("external_ref,title,customer_ref,amount,stage\nd1,Renewal,p1,12.5k,lead\n", encoding="utf-8")
    assert _import(app, "deals", deals).created == {"deals": 1}
    deals.write_text(
        "external_ref,title,customer_ref,amount,stage\nd1,Renewal 2027,p1,13k,proposal\n", encoding="utf-8"
    )
    again = _import(app, "deals", deals)
    assert again.updated == {"deals": 1} and again.problems == []
    people.write_text("external_id,name,company\np1,Ada Lovelace,Acme Corp\np2,Bo,Acme Corp\n", encoding="utf-8")
    third = _import(app, "customers", people)
    assert third.updated == {"customers": 1} and third.unchanged == {"customers": 1}
    assert (_count(app, Company), _count(app, Customer), _count(app, Deal)) == (1, 2, 1)
    with app.uow() as uow:
        deal = uow.session.scalars(sa.select(Deal)).one()
        assert (deal.title, deal.amount_cents, deal.stage.value, deal.customer.name) == (
            "Renewal 2027",
            1_300_000,
            "proposal",
            "Ada Lovelace",
        )
        assert uow.session.scalars(sa.select(Company.domain)).one() == "acme.com"
        imports = uow.session.scalar(
            sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action == "import")
        )
    assert imports == 6


def test_mapping_file_in_toml_and_yaml(tmp_path):
    toml = tmp_path / "people.toml"
    toml.write_text('sheet = "Contacts"\n[columns]\nname = "Full Name"\nemail = "E-mail"\n', encoding="utf-8")
    loaded = mapping_file.load(toml)
    assert loaded.columns == {"name": "Full Name", "email": "E-mail"} and loaded.options == {"sheet": "Contacts"}
    yaml_file = tmp_path / "people.yaml"
    yaml_file.write_text("sep: ';'\ncolumns:\n  name: Full Name\n", encoding="utf-8")
    assert mapping_file.load(yaml_file).options == {"sep": ";"}
    toml.write_text("[columns]\nname = 3\n", encoding="utf-8")
    with pytest.raises(ImportFailed, match=r"\[columns\] maps CRM fields"):
        mapping_file.load(toml)
