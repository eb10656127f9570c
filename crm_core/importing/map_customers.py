"""Customers: columns named like CRM fields (name, email, phone, company, country, language, timezone,
owner, tags, kind, a custom field key) or mapped; external_ref is the id in the source system.

A row updates the customer with the same external_ref or, failing that, the same email, and creates one
otherwise, by the rules of an edit from chat (crm_core.services.customers: the same parsing and
messages, required custom fields, one customer an email, who may change an owned customer, and a
``customer.created`` or ``customer.updated`` event with what changed). A bad row is reported and skipped,
leaving nothing of itself behind; the rest is imported.

Rows go in chunks of ``CHUNK`` (``options["chunk_size"]``), not one at a time: a chunk's rows are
checked in Python; the customers they match are read with one query by external_ref and one by email,
their tags and custom fields with one query each; then the chunk is written with one multi-row statement
a table (customers inserted, updated, their companies, tags and custom field values). The writes are
Core statements on the session's connection, past the per-row audit listener: the import writes one
audit entry for the whole file (crm_core.importing.run). Columns derived from others (search keys,
the normalised email, phone keys) come from the model's own validators (``models.base.row_values``),
as on an ORM write.

Rows count in file order, as if taken one by one: a row that an earlier row of its chunk may have
changed the answer for (the same external_ref or email, the same customer) ends the chunk and starts
the next, which reads the database again.

The whole import is still one transaction, the caller's: a failure half way through a file (the
database gone, the process killed) leaves nothing of it, and running it again starts afresh. The price:
the events of the customers it creates or changes wait in the session for that commit (crm_core.events
gives events their ids at commit), about 4 KB each, so memory grows with them, not with the rows read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, cast

import sqlalchemy as sa

from crm_core import clock, db, field_crypto, text
from crm_core.errors import CrmError, ValidationError
from crm_core.i18n import _
from crm_core.importing.columns import FieldSpec
from crm_core.importing.report import ImportReport
from crm_core.importing.rows import Mapper, Row, reject
from crm_core.models import Company, Customer, CustomerTag, CustomFieldValue, FieldEntity, User
from crm_core.models.base import row_values
from crm_core.models.customers import contact_indexes
from crm_core.services import companies, custom_fields, customers, ownership
from crm_core.services.customers import ParsedChanges, Snapshot
from crm_core.uow import UnitOfWork

EXTERNAL_ALIASES = ("external_id", "external id", "ext_id")
# Rows a chunk takes: big enough that a chunk's dozen statements cost little a row, small enough that its
# lookups stay short IN lists and its rows little memory.
CHUNK = 2000
MAX_EXTERNAL_REF = 100  # customers.external_ref is a VARCHAR(100)
# The columns a row may set; the derived ones follow from them (row_values).
_WRITTEN = ("name", "kind", "email", "phone", "company_id", "country", "language", "timezone", "owner_id")

_customers = cast(sa.Table, Customer.__table__)
# What a chunk reads of the customers it matches: every column but the ones an import never writes.
_READ = [
    column
    for column in _customers.columns
    if column.name
    not in (
        "created_at",
        "updated_at",
        "erased_at",
        "lifetime_value_cents",
        "order_count",
        "first_order_at",
        "last_order_at",
    )
]
_tags = cast(sa.Table, CustomerTag.__table__)
_values = cast(sa.Table, CustomFieldValue.__table__)


def _fields(uow: UnitOfWork) -> list[FieldSpec]:
    specs = [FieldSpec("name", ("full name", "customer", "customer name"), required=True)]
    specs += [FieldSpec(f, ("e-mail", "mail") if f == "email" else ()) for f in customers.CORE_FIELDS if f != "name"]
    specs.append(FieldSpec("external_ref", EXTERNAL_ALIASES))
    specs += [FieldSpec(d.key) for d in custom_fields.definitions(uow, FieldEntity.CUSTOMER)]
    return specs


@dataclass
class _Stored:
    """A customer as the chunk read it from the database."""

    snapshot: Snapshot
    row: dict[str, Any]  # its customers row (the _READ columns), by column name
    custom: dict[str, str]  # its custom field values as text, by key

    @property
    def id(self) -> int:
        assert self.snapshot.id is not None
        return self.snapshot.id

    def text(self) -> dict[str, str]:
        return self.snapshot.text() | self.custom


@dataclass
class _Change:
    """What one good row does: create a customer (``stored`` None) or change one."""

    row: Row
    stored: _Stored | None
    parsed: ParsedChanges
    external_ref: str | None


class _Later(Exception):
    """The row depends on what an earlier row of the chunk changes: it goes into the next chunk."""


@dataclass
class _Plan:
    """A chunk's good rows, and what they touch: a later row touching the same waits for the next chunk."""

    changes: list[_Change] = field(default_factory=list)
    refs: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    touched: set[int] = field(default_factory=set)

    def depends(self, ref: str | None, email: str | None, stored: _Stored | None) -> bool:
        return bool(
            (ref and ref in self.refs)
            or (email and email in self.emails)
            or (stored is not None and stored.id in self.touched)
        )

    def add(self, change: _Change, email: str | None) -> None:
        self.changes.append(change)
        stored = change.stored
        for ref in (change.external_ref, stored.row["external_ref"] if stored else None):
            if ref:
                self.refs.add(ref)
        for address in (email, stored.snapshot.email if stored else None):
            if address:
                self.emails.add(address)
        if stored is not None:
            self.touched.add(stored.id)


class CustomerImport:
    """Imports rows of customers in chunks of ``chunk_size`` into ``uow``'s transaction."""

    def __init__(self, uow: UnitOfWork, report: ImportReport, chunk_size: int = CHUNK):
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.uow = uow
        self.report = report
        self.chunk_size = chunk_size
        self.rules = customers.Rules.load(uow)

    def run(self, rows: Iterable[Row]) -> None:
        source = iter(rows)
        waiting: list[Row] = []
        while chunk := waiting + list(islice(source, self.chunk_size - len(waiting))):
            taken = self._chunk(chunk)
            waiting = chunk[taken:]

    # -- one chunk -------------------------------------------------------------------------------

    def _chunk(self, rows: list[Row]) -> int:
        """Check and write ``rows`` up to the first that must wait; how many rows it took (at least one)."""
        given = [row.given() for row in rows]
        refs = [values.pop("external_ref", None) for values in given]
        emails = [text.normalize_email(values.get("email")) for values in given]
        by_ref, by_email = self._read(refs, emails)
        plan = _Plan()
        taken = len(rows)
        for index, row in enumerate(rows):
            ref, email = refs[index], emails[index]
            stored = (by_ref.get(ref) if ref else None) or (by_email.get(email) if email else None)
            try:
                if plan.depends(ref, email, stored):
                    raise _Later
                change = self._check(row, given[index], ref, stored, by_email, plan)
            except _Later:
                taken = index
                break
            except CrmError as exc:
                reject(self.report, row, exc)
                continue
            if change is not None:
                plan.add(change, email)
        self._write(plan.changes)
        return taken

    def _check(
        self,
        row: Row,
        given: dict[str, str],
        ref: str | None,
        stored: _Stored | None,
        by_email: dict[str, _Stored],
        plan: _Plan,
    ) -> _Change | None:
        """The row's change, checked like an edit from chat; None when it changes nothing."""
        uow, rules = self.uow, self.rules
        if ref and len(ref) > MAX_EXTERNAL_REF:
            raise ValidationError(
                _("the external id is longer than {limit} characters", limit=MAX_EXTERNAL_REF), field="external_ref"
            )
        if stored is None:
            # As customers.create_customer reads it: the name first, then the other fields.
            parsed = customers.parse_changes(uow, {"name": given.pop("name", ""), **given}, rules)
            rules.check_required(uow, parsed, creating=True)
            return _Change(row, None, parsed, ref)
        changes = customers.differing(stored.text(), given)
        if not changes:
            if ref and ref != stored.row["external_ref"]:
                return _Change(row, stored, ParsedChanges(), ref)
            self.report.count("unchanged", "customers")
            return None
        ownership.check_customer(uow, stored.snapshot)
        parsed = customers.parse_changes(uow, changes, rules)
        rules.check_required(uow, parsed, creating=False)
        email = text.normalize_email(parsed.core.get("email"))
        holder = by_email.get(email) if email and email != stored.snapshot.email else None
        if holder is not None and holder.id != stored.id:
            if holder.id in plan.touched:
                raise _Later  # an earlier row of the chunk may have taken that email from them
            raise customers.email_taken(holder.snapshot.name, holder.id, parsed.core["email"])
        return _Change(row, stored, parsed, ref)

    def _read(self, refs: list[str | None], emails: list[str | None]) -> tuple[dict[str, _Stored], dict[str, _Stored]]:
        """The customers the chunk's rows name, by external_ref and by email: one query for each."""
        session = self.uow.session
        query = (
            sa.select(*_READ, Company.name.label("company_name"), User.name.label("owner_name"))
            .outerjoin(Company, Company.id == _customers.c.company_id)
            .outerjoin(User, User.id == _customers.c.owner_id)
            .order_by(_customers.c.id)
        )
        wanted_refs = sorted({ref for ref in refs if ref})
        wanted_emails = sorted({email for email in emails if email})
        found: dict[int, sa.RowMapping] = {}
        if wanted_refs:
            for row in session.execute(query.where(db.one_of(session, _customers.c.external_ref, wanted_refs))):
                found[row.id] = row._mapping
        if wanted_emails:
            for row in session.execute(query.where(customers.with_email(session, wanted_emails))):
                found[row.id] = row._mapping
        stored = self._stored(found)
        by_ref: dict[str, _Stored] = {}
        by_email: dict[str, _Stored] = {}
        for customer in stored:  # oldest first: of two customers with one email, the first is matched
            if customer.row["external_ref"]:
                by_ref[customer.row["external_ref"]] = customer
            if customer.snapshot.email:
                by_email.setdefault(customer.snapshot.email, customer)
        return by_ref, by_email

    def _stored(self, found: dict[int, sa.RowMapping]) -> list[_Stored]:
        if not found:
            return []
        session = self.uow.session
        ids = sorted(found)
        tags: dict[int, list[str]] = {}
        for customer_id, tag in session.execute(
            sa.select(_tags.c.customer_id, _tags.c.tag)
            .where(db.one_of(session, _tags.c.customer_id, ids))
            .order_by(_tags.c.tag)
        ):
            tags.setdefault(customer_id, []).append(tag)
        custom = custom_fields.values_for_many(self.uow, FieldEntity.CUSTOMER, ids) if self.rules.definitions else {}
        stored = []
        for customer_id in ids:
            row = found[customer_id]
            snapshot = Snapshot(
                id=customer_id,
                name=row["name"],
                kind=row["kind"],
                email=row["email"],
                phone=row["phone"],
                company=row["company_name"],
                country=row["country"],
                language=row["language"],
                timezone=row["timezone"],
                owner_id=row["owner_id"],
                owner=row["owner_name"],
                tags=tuple(tags.get(customer_id, ())),
            )
            values = {v.definition.key: v.display for v in custom.get(customer_id, ())}
            columns = {column.name: row[column.name] for column in _READ}
            stored.append(_Stored(snapshot, columns, values))
        return stored

    # -- writing a chunk -------------------------------------------------------------------------

    def _write(self, changes: list[_Change]) -> None:
        """Write a chunk's changes, a statement a table, then emit their events in the rows' order."""
        if not changes:
            return
        uow, connection, now = self.uow, self.uow.session.connection(), clock.utcnow()
        named = companies.find_or_create_many(
            uow, (c.parsed.core["company"] for c in changes if c.parsed.core.get("company"))
        )
        outcomes = [self._outcome(change, named) for change in changes]
        new = [o for o in outcomes if o.change.stored is None]
        if new:
            for outcome, customer_id in zip(new, db.new_ids(uow.session, _customers, len(new)), strict=True):
                outcome.after = dataclasses.replace(outcome.after, id=customer_id)
            connection.execute(
                sa.insert(_customers),
                [{**o.columns, "id": o.after.id, "created_at": now, "updated_at": now} for o in new],
            )
        # Updates grouped by the columns they set (an executemany sets the same columns in every row).
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for o in outcomes:
            if o.change.stored is not None:
                row = o.change.stored.row
                changed = {k: v for k, v in o.columns.items() if row[k] != v}
                if changed:
                    updates.setdefault(tuple(sorted(changed)), []).append(
                        {"_id": row["id"], **changed, "updated_at": now}
                    )
        for params in updates.values():
            connection.execute(sa.update(_customers).where(_customers.c.id == sa.bindparam("_id")), params)
        self._write_tags(connection, outcomes)
        self._write_custom(connection, outcomes)
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        for o in outcomes:
            if o.change.stored is None:
                customers.emit_created(uow, o.after)
                counts["created"] += 1
            else:
                told = customers.emit_updated(uow, o.change.stored.id, o.after.name, o.change.stored.text(), o.text())
                counts["updated" if told else "unchanged"] += 1
        for bucket, n in counts.items():
            if n:
                self.report.count(bucket, "customers", n)

    def _outcome(self, change: _Change, named: dict[str, tuple[int, str]]) -> _Outcome:
        """The customer once ``change`` is applied: its snapshot, custom field texts and customers columns."""
        stored, core = change.stored, change.parsed.core
        base = stored.snapshot if stored else Snapshot(id=None, name="")
        # A new customer: every column a row may set. A stored one: only what the row changes goes through
        # the model's validators; the columns derived from the rest stay as they are stored.
        values: dict[str, Any] = {} if stored else dict.fromkeys(_WRITTEN) | {"kind": base.kind}
        values |= {key: value for key, value in core.items() if key != "company"}
        company = base.company
        if "company" in core:
            values["company_id"], company = (
                named[companies.name_key(core["company"])] if core["company"] else (None, None)
            )
        if change.external_ref:
            values["external_ref"] = change.external_ref
        owner = base.owner
        if "owner_id" in core:
            owner = self.rules.owner_name(core["owner_id"]) if core["owner_id"] else None
        columns = (dict(stored.row) if stored else {}) | row_values(Customer, **values)
        if stored is None or "email" in values or "phone" in values:
            # The blind indexes of the email and phone (crm_core.field_crypto): an ORM flush derives
            # them with the engine's key (models.customers._set_blind_indexes); a Core write must too.
            keys = field_crypto.keys_for(self.uow.session.connection())
            columns |= contact_indexes(keys, columns["email"], columns["phone"])
        after = dataclasses.replace(
            base,
            **{key: columns[key] for key in ("name", "kind", "email", "phone", "country", "language", "timezone")},
            owner_id=columns["owner_id"],
            owner=owner,
            company=company,
            tags=tuple(sorted(change.parsed.tags_after(base.tags))),
        )
        custom = dict(stored.custom) if stored else {}
        for definition, value in change.parsed.custom.values():
            if value is None:
                custom.pop(definition.key, None)
            else:
                custom[definition.key] = custom_fields.FieldValue(definition, value).display
        return _Outcome(change, after, custom, columns)

    def _write_tags(self, connection: sa.Connection, outcomes: list[_Outcome]) -> None:
        added, removed = [], []
        for o in outcomes:
            before = set(o.change.stored.snapshot.tags) if o.change.stored else set()
            after = set(o.after.tags)
            added += [{"customer_id": o.after.id, "tag": tag} for tag in sorted(after - before)]
            removed += [{"_customer": o.after.id, "_tag": tag} for tag in sorted(before - after)]
        if removed:
            connection.execute(
                sa.delete(_tags).where(
                    _tags.c.customer_id == sa.bindparam("_customer"), _tags.c.tag == sa.bindparam("_tag")
                ),
                removed,
            )
        if added:
            connection.execute(sa.insert(_tags), added)

    def _write_custom(self, connection: sa.Connection, outcomes: list[_Outcome]) -> None:
        """Custom field values given: the old value row (if any) goes, the new one (if any) comes."""
        cleared, stored = [], []
        for o in outcomes:
            for definition, value in o.change.parsed.custom.values():
                if o.change.stored is not None:
                    cleared.append({"_definition": definition.id, "_entity": o.after.id})
                if value is not None:
                    stored.append(
                        {
                            "definition_id": definition.id,
                            "entity_id": o.after.id,
                            **custom_fields.value_columns(value, personal=definition.personal),
                        }
                    )
        if cleared:
            connection.execute(
                sa.delete(_values).where(
                    _values.c.definition_id == sa.bindparam("_definition"),
                    _values.c.entity_id == sa.bindparam("_entity"),
                ),
                cleared,
            )
        if stored:
            connection.execute(sa.insert(_values), stored)


@dataclass
class _Outcome:
    """A customer as a chunk leaves it."""

    change: _Change
    after: Snapshot
    custom: dict[str, str]
    columns: dict[str, Any]  # its customers columns (the ones a row may set, and those derived from them)

    def text(self) -> dict[str, str]:
        return self.after.text() | self.custom


def import_rows(uow: UnitOfWork, rows: Iterator[Row], report: ImportReport, options: dict[str, Any]) -> None:
    CustomerImport(uow, report, int(options.get("chunk_size") or CHUNK)).run(rows)


MAPPER = Mapper("customers", "customer", _fields, import_rows)
