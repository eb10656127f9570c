"""The customer import in chunks (crm_core.importing.map_customers), on both databases: rows are taken in
file order across and within chunks, bad rows anywhere are reported and skipped, re-imports update
without duplicating, a dry run writes nothing, and the whole file is one audit entry. The chunk size is
tiny here so that a dozen rows cross several chunk boundaries."""

from __future__ import annotations

import csv

import pytest
import sqlalchemy as sa

from crm_core import events, search
from crm_core.importing.run import error_report_path, import_table
from crm_core.importing.sources import open_table
from crm_core.models import (
    AuditEntry,
    Company,
    Customer,
    CustomerTag,
    CustomFieldValue,
    DomainEvent,
    FieldEntity,
    FieldType,
    User,
)
from crm_core.services import custom_fields, customers

HEADER = "external_id,name,email,phone,company,country,tags,employees\n"


def _count(app, model, *where) -> int:
    with app.uow() as uow:
        return uow.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0


def _define_employees(app) -> None:
    with app.uow() as uow:
        custom_fields.define_field(uow, FieldEntity.CUSTOMER, "employees", FieldType.NUMBER)


def _import(app, path, chunk_size=3, **kwargs):
    with app.uow() as uow:
        return import_table(uow, "customers", open_table(path), options={"chunk_size": chunk_size}, **kwargs)


def _people(app) -> dict[str, tuple]:
    """external_ref -> (name, email, phone, company, country, tags, employees)."""
    with app.uow() as uow:
        found = {}
        for c in uow.session.scalars(sa.select(Customer).order_by(Customer.id)):
            extra = {v.definition.key: v.display for v in custom_fields.values_for(uow, FieldEntity.CUSTOMER, c.id)}
            company = c.company.name if c.company else None
            found[c.external_ref] = (c.name, c.email, c.phone, company, c.country, c.tags, extra.get("employees"))
        return found


def _events(app, prefix="customer.") -> list[tuple[str, dict]]:
    with app.uow() as uow:
        return [(e.type, dict(e.payload)) for e in events.recent(uow.session, 1000, prefix)]


def test_rows_across_and_within_chunks_count_in_file_order(app, tmp_path):
    _define_employees(app)
    path = tmp_path / "people.csv"
    path.write_text(
        HEADER
        + "p1,Ada Lovelace,ada@example.com,+44 20 7946 0001,Acme Ltd,GB,vip,10\n"
        + "p2,Bo Berg,bo@example.se,,ACME LTD,SE,,\n"
        + "p3,Cy Chen,cy@example.cn,,,CN,,\n"
        # Chunk 2 (rows 5-7): p1 again, changed; the chunk before wrote it, this one reads it back.
        + "p1,Ada King,ada@example.com,,,,+b2b,11\n"
        + "p4,Dee Dahl,dee@example.no,,,NO,,\n"
        # The same email as row 6, a row later: it updates Dee (found by email), as one row at a time would.
        + "p5,Dee D.,DEE@example.no,,,,,\n"
        # p6 twice in one chunk: the second waits for the chunk the first is written in.
        + "p6,Eve Ek,eve@example.se,,,SE,,\n"
        + "p6,Eve Eklund,,,,,-vip,\n",
        encoding="utf-8",
    )
    report = _import(app, path)
    assert report.problems == []
    assert report.created == {"customers": 5} and report.updated == {"customers": 3}
    people = _people(app)
    assert sorted(people) == ["p1", "p2", "p3", "p5", "p6"]  # Dee took p5, the later row's id
    assert people["p1"] == (
        "Ada King",
        "ada@example.com",
        "+44 20 7946 0001",
        "Acme Ltd",
        "GB",
        ["b2b", "vip"],
        "11",
    )
    # "ACME LTD" is the company row 2 named first: one company, spelled as first seen.
    assert people["p2"][3] == "Acme Ltd" and _count(app, Company) == 1
    assert people["p5"][:2] == ("Dee D.", "dee@example.no")
    assert people["p6"][0] == "Eve Eklund"
    assert [(kind, payload.get("name")) for kind, payload in _events(app)] == [
        ("customer.created", "Ada Lovelace"),
        ("customer.created", "Bo Berg"),
        ("customer.created", "Cy Chen"),
        ("customer.updated", "Ada King"),
        ("customer.created", "Dee Dahl"),
        ("customer.updated", "Dee D."),
        ("customer.created", "Eve Ek"),
        ("customer.updated", "Eve Eklund"),
    ]


def test_created_and_updated_events_carry_what_an_edit_from_chat_would(app, tmp_path):
    _define_employees(app)
    with app.uow() as uow:
        uow.session.add(User(name="Tom Becker"))
    path = tmp_path / "people.csv"
    path.write_text(
        "external_id,name,email,phone,company,country,owner,tags,employees\n"
        'p1,Zoë Müller,Zoe@Example.de,+49 30 1234567,Acme GmbH,de,Tom Becker,"vip, smb",42\n',
        encoding="utf-8",
    )
    _import(app, path)
    [(kind, created)] = _events(app)
    with app.uow() as uow:
        customer = uow.session.scalars(sa.select(Customer)).one()
        owner_id = customer.owner_id
        assert kind == "customer.created" and created == customers.Snapshot.of(customer).created_payload()
    assert created == {
        "customer_id": created["customer_id"],
        "name": "Zoë Müller",
        "kind": "person",
        "email": "zoe@example.de",
        "phone": "+49 30 1234567",
        "company": "Acme GmbH",
        "country": "DE",
        "language": None,
        "owner_id": owner_id,
        "owner": "Tom Becker",
        "tags": ["smb", "vip"],
    }
    path.write_text(
        "external_id,name,email,phone,company,country,owner,tags,employees\n"
        "p1,Zoë Müller,zoe@example.de,,,AT,none,-smb,43\n",
        encoding="utf-8",
    )
    report = _import(app, path)
    assert report.updated == {"customers": 1}
    [(kind, updated)] = _events(app, "customer.updated")
    assert updated["changes"] == {
        "country": {"old": "DE", "new": "AT"},
        "employees": {"old": "42", "new": "43"},
        "owner": {"old": "Tom Becker", "new": None},
        "tags": {"old": "smb,vip", "new": "vip"},
    }


def test_bad_rows_in_several_chunks_are_reported_exactly_and_the_good_ones_imported(app, tmp_path):
    _define_employees(app)
    with app.uow() as uow:
        customers.create_customer(uow, "Old Customer", {"email": "taken@example.com"})
    path = tmp_path / "people.csv"
    path.write_text(
        HEADER
        + "g1,Good One,one@example.com,,,DE,,\n"
        + "b1,Bad Email,not-an-email,,,DE,,\n"
        + "g2,Good Two,two@example.com,,,DE,,\n"
        # chunk 2
        + "b2,,nobody@example.com,,,FR,,\n"
        + "g3,Good Three,three@example.com,,,DE,,\n"
        + "b3,Bad Number,b3@example.com,,,DE,,many\n"
        # chunk 3
        + "b4,Two Faults,b4@example,,,Germany,,\n"
        + "g4,Good Four,four@example.com,,,DE,,\n"
        + "g1,Good One,taken@example.com,,,DE,,\n"
        # chunk 4
        + f"{'x' * 101},Long Id,long@example.com,,,DE,,\n"
        + "g5,Good Five,five@example.com,,,DE,big fish,\n",
        encoding="utf-8",
    )
    report = _import(app, path)
    report.write_errors(error_report_path(path, "customers"))
    with (tmp_path / "people.errors.csv").open(encoding="utf-8", newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines == [
        ["row", "column", "value", "reason"],
        ["3", "email", "not-an-email", "'not-an-email' is not an email address"],
        ["5", "name", "", "a customer needs a name"],
        ["7", "employees", "many", "Employees must be a number, not 'many'"],
        ["8", "email", "b4@example", "'b4@example' is not an email address"],
        ["8", "country", "Germany", "'Germany' is not an ISO 3166 country code (e.g. DE, GB, US)"],
        ["10", "", "", "Old Customer (#1) already has the email taken@example.com"],
        ["11", "external_id", "x" * 101, "the external id is longer than 100 characters"],
        ["12", "tags", "big fish", "'big fish' is not a tag: use letters, digits, - and _"],
    ]
    assert report.skipped_rows == 7 and report.created == {"customers": 4}
    assert sorted(ref for ref in _people(app) if ref) == ["g1", "g2", "g3", "g4"]
    # A skipped row leaves nothing of itself: no customer, company, tag, value or event.
    assert _count(app, Customer) == 5 and _count(app, CustomFieldValue) == 0 and _count(app, CustomerTag) == 0
    assert len(_events(app, "customer.created")) == 5  # the old customer's and the four good rows'


def test_reimport_updates_every_customer_and_duplicates_nothing(app, tmp_path):
    _define_employees(app)
    first = [f"r{i},Person {i},person{i}@example.com,+49 30 100{i:04d},Firm {i % 2},DE,vip,{i}\n" for i in range(8)]
    path = tmp_path / "people.csv"
    path.write_text(HEADER + "".join(first), encoding="utf-8")
    assert _import(app, path).created == {"customers": 8}
    before = _people(app)
    again = _import(app, path)
    assert again.unchanged == {"customers": 8} and again.created == {} and again.updated == {}
    assert _people(app) == before and _events(app, "customer.updated") == []
    # A month later: every row has one value changed; some match by external id, some by email only.
    changed = [
        f"r{i},Person {i}{' Jr.' if i % 2 else ''},person{i}@example.com,+49 30 200{i:04d},Firm {i % 2},DE,b2b,{i + 1}\n"
        for i in range(4)
    ] + [f",Person {i},person{i}@example.com,,,AT,,\n" for i in range(4, 8)]
    path.write_text(HEADER + "".join(changed), encoding="utf-8")
    third = _import(app, path)
    assert third.updated == {"customers": 8} and third.created == {} and third.problems == []
    assert _count(app, Customer) == 8 and _count(app, Company) == 2
    after = _people(app)
    assert after["r1"] == ("Person 1 Jr.", "person1@example.com", "+49 30 2000001", "Firm 1", "DE", ["b2b"], "2")
    assert after["r6"] == ("Person 6", "person6@example.com", "+49 30 1000006", "Firm 0", "AT", ["vip"], "6")
    assert len(_events(app, "customer.updated")) == 8


def test_a_dry_run_writes_nothing(app, tmp_path):
    _define_employees(app)
    path = tmp_path / "people.csv"
    path.write_text(
        HEADER
        + "".join(f"d{i},Dry {i},dry{i}@example.com,,Firm {i},DE,vip,{i}\n" for i in range(7))
        + "d0,Dry Zero,,,,,,\n"
        + "bad,Bad,bad@,,,,,\n",
        encoding="utf-8",
    )
    tables = (Customer, Company, CustomerTag, CustomFieldValue, AuditEntry, DomainEvent)
    before = [_count(app, model) for model in tables]
    report = _import(app, path, dry_run=True)
    assert report.dry_run and report.created == {"customers": 7} and report.updated == {"customers": 1}
    assert [(p.row, p.column) for p in report.problems] == [(10, "email")]
    assert [_count(app, model) for model in tables] == before == [0, 0, 0, 0, 1, 0]  # the field's definition


def test_one_audit_entry_for_the_whole_import_and_search_keys_as_an_edit_makes_them(app, tmp_path):
    _define_employees(app)
    audited_before = _count(app, AuditEntry)  # the field's definition
    path = tmp_path / "people.csv"
    path.write_text(
        HEADER
        + "c1,王小明,xiaoming@example.cn,+86 10 8888 1234,阿克米科技有限公司,CN,vip,5\n"
        + "c2,Zoë Müller-Schmidt,Zoe@Example.DE,+49 (30) 1234-5678,Acme GmbH,DE,b2b,7\n"
        + "c3,Bad,bad,,,,,\n",
        encoding="utf-8",
    )
    report = _import(app, path)
    assert report.created == {"customers": 2}
    with app.uow() as uow:
        entries = uow.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id).offset(audited_before)).all()
        # Customers, companies, tags and custom field values: one entry for them all, none a row.
        assert [(e.action, e.entity_type, e.entity_id) for e in entries] == [("import", "customers", "people.csv")]
        assert entries[0].after == {
            "source": "people.csv",
            "rows": 3,
            "created": {"customers": 2},
            "updated": {},
            "unchanged": {},
            "skipped_rows": 1,
        }
        imported = {c.external_ref: c for c in uow.session.scalars(sa.select(Customer))}
        # The same values through the ORM (as an edit from chat writes them) derive the same columns.
        for ref, values in (
            ("c1", ("王小明", "xiaoming@example.cn", "+86 10 8888 1234")),
            ("c2", ("Zoë Müller-Schmidt", "Zoe@Example.DE", "+49 (30) 1234-5678")),
        ):
            # Flushed, so the blind indexes are derived with the engine's key too; then taken back.
            savepoint = uow.session.begin_nested()
            made = Customer(name=values[0], email=values[1], phone=values[2])
            uow.session.add(made)
            uow.session.flush()
            derived = (
                "search_name",
                "search_keys",
                "email",
                "email_domain",
                "email_index",
                "phone_index",
                "phone_tail",
            )
            expected = [getattr(made, c) for c in derived]
            savepoint.rollback()
            assert [getattr(imported[ref], c) for c in derived] == expected
            assert all(expected)
        found = {hit.name for hit in search.search_customers(uow.session, "小明")}
        assert found == {"王小明"}
        assert [h.name for h in search.search_customers(uow.session, "345678")] == ["Zoë Müller-Schmidt"]
        assert [h.name for h in search.search_customers(uow.session, "科技")] == ["王小明"]
        assert [h.name for h in search.search_customers(uow.session, "zoe@example.de")] == ["Zoë Müller-Schmidt"]


@pytest.mark.parametrize("chunk_size", [1, 2, 50])
def test_emails_swapped_between_two_customers_as_row_by_row(app, tmp_path, chunk_size):
    path = tmp_path / "people.csv"
    path.write_text(HEADER + "a,Ann,ann@example.com,,,,,\nb,Bob,bob@example.com,,,,,\n", encoding="utf-8")
    _import(app, path, chunk_size)
    # Ann moves to a new address, then Bob takes Ann's old one: fine one row at a time, so fine here.
    path.write_text(HEADER + "a,Ann,ann@new.example,,,,,\nb,Bob,ann@example.com,,,,,\n", encoding="utf-8")
    report = _import(app, path, chunk_size)
    assert report.problems == [] and report.updated == {"customers": 2}
    assert {ref: p[1] for ref, p in _people(app).items()} == {"a": "ann@new.example", "b": "ann@example.com"}
    # The other way round, Bob's row comes first while Ann still has the address: refused; then Ann's,
    # while Bob still has hers.
    path.write_text(HEADER + "b,Bob,ann@new.example,,,,,\na,Ann,ann@example.com,,,,,\n", encoding="utf-8")
    report = _import(app, path, chunk_size)
    assert [(p.row, p.reason) for p in report.problems] == [
        (2, "Ann (#1) already has the email ann@new.example"),
        (3, "Bob (#2) already has the email ann@example.com"),
    ]
    assert report.updated == {} and report.unchanged == {}
