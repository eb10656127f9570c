"""A customer list as a company migrating to chatcrm would bring it, for the customer import benchmark.

Names (one in seven Chinese), emails, phones, about 3,000 companies, countries, languages, an owner,
tags and a custom field (``employees``, a number), keyed by the old system's id; about 1% of the
rows are bad in one way or another (an email without a domain, a country name, no name, a word where
a number goes, a tag with a space). ``version=2`` is the same list a month later: every good row has
one value changed, so importing it after version 1 updates every customer.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

FIRST = "Anna Ben Chloé David Emma Felix Greta Hugo Ida Jonas Klara Lukas Mia Noah Olivia Paul Rosa Sven Tilda Zoë"
LAST = "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Smith Jones Brown Taylor Dubois"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"
COMPANY_WORDS = "Acme Globex Initech Umbrella Hooli Vandelay Stark Wayne Wonka Tyrell Cyberdyne Soylent"
COMPANY_FORMS = ("GmbH", "Ltd", "Inc", "SARL", "AG", "科技有限公司")
COUNTRIES = ("DE", "GB", "CN", "FR", "US", "AT", "CH")
LANGUAGES = ("de", "en", "zh", "fr", "en", "de", "de")
TAGS = ("", "vip", "newsletter", "b2b", "vip,b2b", "newsletter,b2b", "")
OWNERS = ("Tom Becker", "Li Wei", "Sara Okafor")
HEADER = ["external_id", "name", "email", "phone", "company", "country", "language", "owner", "tags", "employees"]
BAD = (
    ("email", "no-domain@"),
    ("country", "Germany"),
    ("name", ""),
    ("employees", "many"),
    ("tags", "big fish"),
)


def rows(count: int, version: int = 1, seed: int = 15) -> Iterator[list[str]]:
    rng = random.Random(seed)
    later = random.Random(seed + 1)  # version 2's new values, drawn apart so both versions share the rest
    first, last = FIRST.split(), LAST.split()
    words = COMPANY_WORDS.split()
    for i in range(count):
        if i % 7 == 3:
            name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(("", rng.choice(GIVEN)))
            email = f"kunde{i}@example.cn"
        else:
            given, family = rng.choice(first), rng.choice(last)
            name = f"{given} {family}"
            email = f"{given.lower()}.{family.lower()}.{i}@example.com".replace("ü", "ue").replace("é", "e")
            email = email.replace("ë", "e")
        area = rng.randrange(20, 99)
        phone = f"+49 {area} {rng.randrange(1_000_000, 9_999_999)}"
        company_no = rng.randrange(3000)
        form = COMPANY_FORMS[company_no % len(COMPANY_FORMS)]
        company = f"{words[company_no % len(words)]} {company_no} {form}" if company_no % 5 else ""
        where = rng.randrange(len(COUNTRIES))
        row = {
            "external_id": f"old:{i}",
            "name": name,
            "email": email,
            "phone": phone if i % 4 else "",
            "company": company,
            "country": COUNTRIES[where],
            "language": LANGUAGES[where],
            "owner": OWNERS[i % len(OWNERS)] if i % 3 == 0 else "",
            "tags": TAGS[i % len(TAGS)],
            "employees": str(rng.randrange(1, 5000)) if i % 2 else "",
        }
        if i * 7919 % 100 == 42:  # 1% of the rows, spread evenly
            column, value = BAD[i // 100 % len(BAD)]
            row[column] = value
        elif version == 2:
            # One value changed in every good row, in turn: an update for every customer.
            change = i % 4
            if change == 0:
                row["phone"] = f"+49 {area} {later.randrange(1_000_000, 9_999_999)}"
            elif change == 1:
                row["employees"] = str(int(row["employees"] or 0) + 1)
            elif change == 2:
                row["tags"] = (row["tags"] + ",moved").strip(",")
            else:
                row["name"] = name + " Jr." if i % 7 != 3 else name + "明"
        yield [row[column] for column in HEADER]


def write(path: Path, count: int, version: int = 1) -> None:
    """The list as .xlsx (openpyxl's write-only mode) or CSV, by the file's suffix."""
    if path.suffix == ".xlsx":
        import openpyxl

        workbook = openpyxl.Workbook(write_only=True)
        sheet = workbook.create_sheet("Customers")
        sheet.append(HEADER)
        for row in rows(count, version):
            sheet.append(row)
        workbook.save(path)
        return
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows(count, version))


def prepare(url: str) -> None:
    """A migrated, empty database with what the list refers to: the owners and the custom field."""
    from crm_core import db
    from crm_core.models import FieldEntity, FieldType, User
    from crm_core.services import custom_fields
    from crm_core.uow import UnitOfWork

    engine = db.create_engine(url)
    db.upgrade(engine)
    with UnitOfWork(db.session_factory(engine)) as uow:
        for owner in OWNERS:
            uow.session.add(User(name=owner))
        custom_fields.define_field(uow, FieldEntity.CUSTOMER, "employees", FieldType.NUMBER)
    engine.dispose()
