"""The demo data set: a realistic, deterministic CRM to try chatcrm on (``chatcrm demo``).

Several hundred customers across countries and languages, a product catalogue with bundles
that are bought together (so the nightly mining finds real rules), two years of orders, deals in
every stage, tickets, interactions, custom fields and a user for each role. "Acme Corp" is
customer #1 so the README's first example works. Seeding is idempotent: a second run adds nothing.

``language="zh"`` (``chatcrm demo --lang zh``, and ``make run`` with CHATCRM_LANGUAGE=zh) seeds a
Chinese company instead: Chinese staff, customers in Chinese cities with +86 numbers, prices and
orders in CNY, notes, deals and tickets written in Chinese (crm_core.demo_zh), with
"阿克米科技有限公司" as its first account. Each language's data set is seeded once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from crm_core import clock, demo_zh, i18n, platforms
from crm_core.actor import Actor
from crm_core.models import (
    DEFAULT_PROBABILITY,
    PIPELINE,
    Company,
    Customer,
    CustomerKind,
    CustomerRelationship,
    CustomerTag,
    CustomFieldValue,
    Deal,
    DealStage,
    DealStageChange,
    Direction,
    FieldEntity,
    FieldType,
    Identity,
    Interaction,
    InteractionKind,
    Order,
    OrderKind,
    OrderLine,
    Product,
    RelationshipType,
    Role,
    Ticket,
    TicketPriority,
    TicketStatus,
    User,
)
from crm_core.services import custom_fields, orders
from crm_core.services.sla import due_times
from crm_core.uow import UnitOfWork

DEMO_ACTOR = Actor(user_id=None, name="demo data", platform="system")
MARKER = "demo:acme"
SEED = 20261124

USERS = [
    ("Ada Lindqvist", "ada@demo.chatcrm.example", Role.ADMIN, "Europe/Stockholm", "en"),
    ("Maria Schmidt", "maria@demo.chatcrm.example", Role.MANAGER, "Europe/Berlin", "de"),
    ("Tom Becker", "tom@demo.chatcrm.example", Role.SALES, "Europe/Berlin", "en"),
    ("Li Wei", "li.wei@demo.chatcrm.example", Role.SALES, "Asia/Shanghai", "zh"),
    ("Sofia Rossi", "sofia@demo.chatcrm.example", Role.SALES, "Europe/Rome", "en"),
    ("Jonas Berg", "jonas@demo.chatcrm.example", Role.SUPPORT, "Europe/Oslo", "en"),
    ("Aiko Tanaka", "aiko@demo.chatcrm.example", Role.SUPPORT, "Asia/Tokyo", "en"),
    ("Victor Hale", "victor@demo.chatcrm.example", Role.VIEWER, "America/New_York", "en"),
]

# country, language, timezone, phone prefix, first names, last names, company suffixes
COUNTRIES = [
    (
        "DE",
        "de",
        "Europe/Berlin",
        "+49",
        ["Jürgen", "Anna", "Lukas", "Sabine", "Felix", "Müge", "Katrin"],
        ["Müller", "Schäfer", "Wagner", "Hoffmann", "Köhler", "Weiß", "Zimmermann"],
        ["GmbH", "AG", "KG"],
    ),
    (
        "GB",
        "en",
        "Europe/London",
        "+44",
        ["Oliver", "Amelia", "Harry", "Isla", "George", "Priya"],
        ["Smith", "Taylor", "Brown", "O'Neill", "Patel", "Wright"],
        ["Ltd", "plc", "& Sons"],
    ),
    (
        "FR",
        "fr",
        "Europe/Paris",
        "+33",
        ["Léa", "Hugo", "Chloé", "Théo", "Zoë", "Mathéo"],
        ["Dubois", "Lefèvre", "Moreau", "Girard", "Rousseau", "Faure"],
        ["SA", "SARL", "SAS"],
    ),
    (
        "US",
        "en",
        "America/New_York",
        "+1",
        ["James", "Emma", "Michael", "Olivia", "Ethan", "Ava"],
        ["Johnson", "Williams", "Garcia", "Miller", "Davis", "Rodriguez"],
        ["Inc", "LLC", "Corp"],
    ),
    (
        "CN",
        "zh",
        "Asia/Shanghai",
        "+86",
        ["伟", "芳", "娜", "敏", "静", "强"],
        ["王", "李", "张", "刘", "陈", "杨"],
        ["有限公司", "集团"],
    ),
    (
        "ES",
        "es",
        "Europe/Madrid",
        "+34",
        ["José", "Lucía", "Martín", "Sofía", "Álvaro", "Inés"],
        ["García", "Fernández", "López", "Martínez", "Sánchez", "Pérez"],
        ["SL", "SA"],
    ),
    (
        "IT",
        "it",
        "Europe/Rome",
        "+39",
        ["Giulia", "Francesco", "Chiara", "Lorenzo", "Niccolò"],
        ["Rossi", "Bianchi", "Esposito", "Romano", "Colombo"],
        ["S.p.A.", "S.r.l."],
    ),
    (
        "NL",
        "nl",
        "Europe/Amsterdam",
        "+31",
        ["Daan", "Sanne", "Bram", "Fleur", "Sem"],
        ["de Jong", "Jansen", "de Vries", "van den Berg", "Bakker"],
        ["BV", "NV"],
    ),
    (
        "SE",
        "sv",
        "Europe/Stockholm",
        "+46",
        ["Erik", "Astrid", "Björn", "Saga", "Söre"],
        ["Andersson", "Johansson", "Karlsson", "Nilsson", "Åberg"],
        ["AB"],
    ),
    (
        "JP",
        "ja",
        "Asia/Tokyo",
        "+81",
        ["Haruto", "Yui", "Sota", "Hina", "Ren"],
        ["Sato", "Suzuki", "Takahashi", "Watanabe", "Ito"],
        ["KK", "Co"],
    ),
    (
        "PL",
        "pl",
        "Europe/Warsaw",
        "+48",
        ["Jakub", "Zofia", "Łukasz", "Małgorzata", "Kacper"],
        ["Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kamiński"],
        ["sp. z o.o.", "S.A."],
    ),
    (
        "BR",
        "pt",
        "America/Sao_Paulo",
        "+55",
        ["João", "Maria", "Pedro", "Ana", "Gabriel"],
        ["Silva", "Santos", "Oliveira", "Souza", "Lima"],
        ["Ltda", "S.A."],
    ),
]

COMPANY_WORDS = [
    "Nordwind",
    "Bluebird",
    "Helix",
    "Granite",
    "Lumen",
    "Vertex",
    "Orchard",
    "Meridian",
    "Kestrel",
    "Polaris",
    "Juniper",
    "Riverside",
    "Summit",
    "Cobalt",
    "Harbor",
    "Evergreen",
    "Falcon",
    "Quantum",
    "Saffron",
    "Tundra",
    "Beacon",
    "Cedar",
    "Atlas",
    "Zephyr",
    "Marigold",
    "Ironwood",
    "Copper",
    "Silverline",
    "Oakridge",
    "Pinnacle",
]
COMPANY_KINDS = [
    "Logistics",
    "Dental",
    "Architects",
    "Bakery",
    "Consulting",
    "Robotics",
    "Media",
    "Pharma",
    "Hotels",
    "Legal",
    "Foods",
    "Engineering",
    "Studios",
    "Clinic",
    "Retail",
]
INDUSTRIES = ["manufacturing", "healthcare", "retail", "services", "hospitality", "technology"]

# sku, name, category, price in cents
PRODUCTS = [
    ("PRN-100", "LaserJet Pro Printer", "Printing", 32900),
    ("TON-BK", "Toner Cartridge Black", "Printing", 8900),
    ("TON-CL", "Toner Cartridge Colour Set", "Printing", 21900),
    ("PAP-A4", "A4 Paper, Box of 5 Reams", "Printing", 2990),
    ("DRM-100", "Imaging Drum", "Printing", 11900),
    ("LBL-200", "Label Printer", "Printing", 14900),
    ("COF-M1", "Espresso Machine Barista", "Coffee", 89900),
    ("COF-B1", "Espresso Beans 1 kg", "Coffee", 2490),
    ("COF-D1", "Descaler 4-Pack", "Coffee", 1990),
    ("COF-F1", "Milk Frother", "Coffee", 7900),
    ("COF-C1", "Porcelain Cups, Set of 6", "Coffee", 3490),
    ("TEA-01", "Green Tea Assortment", "Coffee", 1590),
    ("LAP-14", 'Laptop 14" Business', "IT", 129900),
    ("DCK-01", "USB-C Docking Station", "IT", 18900),
    ("MOU-01", "Wireless Mouse", "IT", 3990),
    ("KEY-01", "Wireless Keyboard", "IT", 5990),
    ("MON-27", '27" 4K Monitor', "IT", 44900),
    ("HDM-02", "HDMI Cable 2 m", "IT", 1490),
    ("ARM-01", "Monitor Arm", "IT", 8900),
    ("HDS-01", "Noise-Cancelling Headset", "IT", 17900),
    ("CAM-01", "HD Webcam", "IT", 8900),
    ("HUB-01", "USB-C Hub 7-in-1", "IT", 4990),
    ("SSD-01", "External SSD 1 TB", "IT", 11900),
    ("RTR-01", "Wi-Fi 6 Router", "IT", 19900),
    ("DSK-01", "Standing Desk", "Furniture", 54900),
    ("CHR-01", "Ergonomic Chair", "Furniture", 39900),
    ("LMP-01", "LED Desk Lamp", "Furniture", 6900),
    ("CAB-01", "Filing Cabinet", "Furniture", 22900),
    ("WBD-01", "Whiteboard 120x90", "Furniture", 12900),
    ("MRK-01", "Whiteboard Markers, 12", "Furniture", 1290),
    ("SW-CRM", "chatcrm Seat, 1 Year", "Software", 36000),
    ("SW-AV", "Antivirus, 10 Devices", "Software", 14900),
    ("SW-OFF", "Office Suite Licence", "Software", 9900),
    ("SW-BKP", "Cloud Backup 1 TB, 1 Year", "Software", 11900),
    ("CLN-01", "Screen Cleaning Kit", "Supplies", 990),
    ("BAT-01", "AA Batteries, 24", "Supplies", 1490),
    ("NTB-01", "Notebooks A5, 10", "Supplies", 1990),
    ("PEN-01", "Gel Pens, 20", "Supplies", 1290),
    ("ENV-01", "Envelopes C4, 250", "Supplies", 2490),
    ("STP-01", "Stapler Heavy Duty", "Supplies", 2990),
]

# Bought together: the first item makes the others likely (what the nightly mining should find).
BUNDLES = [
    (["PRN-100"], ["TON-BK", "PAP-A4"], 0.85),
    (["COF-M1"], ["COF-B1", "COF-D1"], 0.8),
    (["LAP-14"], ["DCK-01", "MOU-01"], 0.75),
    (["MON-27"], ["HDM-02", "ARM-01"], 0.7),
    (["DSK-01"], ["CHR-01", "LMP-01"], 0.6),
    (["WBD-01"], ["MRK-01"], 0.9),
    (["COF-B1"], ["COF-C1"], 0.3),
]

NOTES = [
    "Called about the renewal; they want a quote by Friday.",
    "Asked for a demo of the new printer line.",
    "Complained about late delivery of the last order, offered free shipping next time.",
    "Budget approved for Q1, decision maker is the CFO.",
    "Sent the price list and the case study.",
    "Meeting went well; next step is a pilot with 5 seats.",
    "They are comparing us with a competitor on price.",
    "Happy with support, might expand to a second office.",
    "Left a voicemail, will try again next week.",
    "Wants invoices in EUR from now on.",
]
TICKET_SUBJECTS = [
    "Printer jams on double-sided jobs",
    "Toner shows empty although new",
    "Espresso machine leaks water",
    "Docking station does not charge laptop",
    "Monitor flickers at 60 Hz",
    "Invoice address is wrong",
    "Missing item in delivery",
    "Licence key not accepted",
    "Chair armrest broken on arrival",
    "Request to change delivery date",
]


@dataclass(frozen=True)
class Content:
    """What differs between the demo data sets of two languages; the shape of the data does not."""

    language: str
    # external_ref of the first account, which says the set is there.
    marker: str
    ref_prefix: str
    users: list[tuple[str, str, Role, str, str]]
    products: list[tuple[str, str, str, int]]
    currency: str
    notes: list[str]
    ticket_subjects: list[str]
    deal_titles: list[str]
    lost_reason: str
    industries: list[str]
    field_labels: dict[str, str]
    segments: dict[str, str]


EN = Content(
    language="en",
    marker=MARKER,
    ref_prefix="demo:",
    users=USERS,
    products=PRODUCTS,
    currency="EUR",
    notes=NOTES,
    ticket_subjects=TICKET_SUBJECTS,
    deal_titles=[
        "Office refit",
        "Printer fleet",
        "Coffee service contract",
        "Laptop refresh",
        "Licence renewal",
        "New branch setup",
        "Managed print",
        "Ergonomics upgrade",
    ],
    lost_reason="Went with a cheaper offer",
    industries=INDUSTRIES,
    field_labels={"industry": "Industry", "employees": "Employees", "contract_renewal": "Contract renewal"},
    segments={},  # filled below, once DEMO_SEGMENTS is defined
)
ZH = Content(
    language="zh",
    marker="demo-zh:acme",
    ref_prefix="demo-zh:",
    users=[(name, email, Role(role), tz, "zh") for name, email, role, tz in demo_zh.USERS],
    products=demo_zh.PRODUCTS,
    currency="CNY",
    notes=demo_zh.NOTES,
    ticket_subjects=demo_zh.TICKET_SUBJECTS,
    deal_titles=demo_zh.DEAL_TITLES,
    lost_reason=demo_zh.LOST_REASON,
    industries=demo_zh.INDUSTRIES,
    field_labels=demo_zh.FIELD_LABELS,
    segments=demo_zh.SEGMENTS,
)
CONTENTS = {"en": EN, "zh": ZH}


def content_for(language: str | None) -> Content:
    """The demo data set of ``language`` ("zh-CN" -> the Chinese one); English for anything else."""
    base = (language or "en").strip().lower().replace("_", "-").split("-")[0]
    return CONTENTS.get(base, EN)


@dataclass(frozen=True)
class DemoSummary:
    created: bool
    users: int = 0
    customers: int = 0
    products: int = 0
    orders: int = 0
    deals: int = 0
    tickets: int = 0
    interactions: int = 0

    def describe(self) -> str:
        """What was added, in the current language (the CLI's: CHATCRM_LANGUAGE)."""
        if not self.created:
            return i18n._("The demo data is already there; nothing added.")
        return i18n._(
            "Demo data added: {users} users, {customers} customers, {products} products, {orders} orders, "
            "{deals} deals, {tickets} tickets, {interactions} interactions.",
            users=self.users,
            customers=self.customers,
            products=self.products,
            orders=self.orders,
            deals=self.deals,
            tickets=self.tickets,
            interactions=self.interactions,
        )


def is_seeded(uow: UnitOfWork, language: str | None = "en") -> bool:
    marker = content_for(language).marker
    return uow.session.scalars(sa.select(Customer.id).where(Customer.external_ref == marker)).first() is not None


def seed(uow: UnitOfWork, customers: int = 400, language: str | None = "en") -> DemoSummary:
    """Add the demo data set of ``language`` unless it is already there. Runs in the caller's transaction."""
    content = content_for(language)
    if is_seeded(uow, content.language):
        return DemoSummary(created=False)
    rng = random.Random(SEED)
    session = uow.session
    now = clock.utcnow().replace(minute=0, second=0, microsecond=0)

    staff = _users(session, content)
    sales = [u for u in staff if u.role in (Role.SALES, Role.MANAGER)]
    support = [u for u in staff if u.role is Role.SUPPORT]
    products = _products(session, content)
    _custom_fields(uow, content)
    if content.language == "zh":
        people = _customers_zh(session, rng, customers, sales, now)
    else:
        people = _customers(session, rng, customers, sales, now)
    session.flush()
    _field_values(uow, rng, people)
    _relationships(session, rng, people, now)
    order_count = _orders(session, rng, people, products, now, content)
    deal_count = _deals(session, rng, people, sales, now, content)
    ticket_count = _tickets(session, rng, people, support, now, content)
    interaction_count = _interactions(session, rng, people, sales, now, content)
    session.flush()
    orders.refresh_customer_stats(uow)
    _segments(uow, content)
    return DemoSummary(
        True, len(staff), len(people), len(products), order_count, deal_count, ticket_count, interaction_count
    )


def _users(session, content: Content) -> list[User]:
    staff = []
    for name, email, role, tz, language in content.users:
        user = session.scalars(sa.select(User).where(User.email == email)).one_or_none()
        if user is None:
            user = User(name=name, email=email, role=role, timezone=tz, language=language)
            # An identity on each local platform (the console): `chatcrm console --as maria` works out of the box.
            for platform in (p for p in platforms.names() if platforms.traits(p).local):
                user.identities.append(Identity(platform=platform, external_id=email.split("@")[0], display_name=name))
            session.add(user)
        staff.append(user)
    session.flush()
    return staff


def _products(session, content: Content) -> dict[str, Product]:
    # One catalogue per database: a SKU another language's demo added first keeps its name and price.
    catalogue = {}
    for sku, name, category, price in content.products:
        product = session.scalars(sa.select(Product).where(Product.sku == sku)).one_or_none()
        if product is None:
            product = Product(sku=sku, name=name, category=category, price_cents=price, currency=content.currency)
            session.add(product)
        catalogue[sku] = product
    session.flush()
    return catalogue


def _custom_fields(uow: UnitOfWork, content: Content) -> None:
    existing = {d.key for d in custom_fields.definitions(uow, FieldEntity.CUSTOMER)}
    labels = content.field_labels
    wanted = [
        ("industry", FieldType.CHOICE, labels["industry"], content.industries),
        ("employees", FieldType.NUMBER, labels["employees"], None),
        ("contract_renewal", FieldType.DATE, labels["contract_renewal"], None),
    ]
    for key, type_, label, choices in wanted:
        if key not in existing:
            custom_fields.define_field(uow, FieldEntity.CUSTOMER, key, type_, label=label, choices=choices)


def _phone(rng: random.Random, prefix: str) -> str:
    return f"{prefix} {rng.randint(20, 99)} {rng.randint(1000000, 9999999)}"


def _first_account(session, owners: list[User], now: datetime, marker: str, **fields) -> Customer:
    """The data set's key account (customer #1 on a fresh database), with a company of its name."""
    company = Company(name=fields["name"], name_key=fields["name"].casefold(), domain=fields.pop("domain"))
    company.country = fields["country"]
    session.add(company)
    account = Customer(
        kind=CustomerKind.ACCOUNT,
        company=company,
        owner=owners[1] if len(owners) > 1 else owners[0],
        external_ref=marker,
        created_at=now - timedelta(days=700),
        **fields,
    )
    account.tag_rows = [CustomerTag(tag="vip"), CustomerTag(tag="key-account")]
    session.add(account)
    return account


def _customers(session, rng: random.Random, count: int, owners: list[User], now: datetime) -> list[Customer]:
    acme = _first_account(
        session,
        owners,
        now,
        MARKER,
        name="Acme Corp",
        domain="acme.example",
        email="purchasing@acme.example",
        phone="+1 212 5550100",
        country="US",
        language="en",
        timezone="America/New_York",
    )
    people = [acme]
    used_names = {"acme corp"}
    companies: dict[str, Company] = {}
    for index in range(1, count):
        country, language, tz, prefix, firsts, lasts, suffixes = rng.choice(COUNTRIES)
        account = rng.random() < 0.45
        if account:
            name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} {rng.choice(suffixes)}"
            company_name = name
        else:
            first, last = rng.choice(firsts), rng.choice(lasts)
            name = f"{last}{first}" if country == "CN" else f"{first} {last}"
            company_name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} {rng.choice(suffixes)}"
        if name.casefold() in used_names or name.casefold().startswith("acme"):
            name = f"{name} {index}"
        used_names.add(name.casefold())
        company = companies.get(company_name.casefold())
        if company is None:
            company = Company(name=company_name, name_key=company_name.casefold(), country=country)
            companies[company_name.casefold()] = company
            session.add(company)
        slug = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum())[:20] or f"kunde{index}"
        customer = Customer(
            name=name,
            kind=CustomerKind.ACCOUNT if account else CustomerKind.PERSON,
            company=company,
            email=f"{slug}.{index}@example.{country.lower()}",
            phone=_phone(rng, prefix),
            country=country,
            language=language,
            timezone=tz,
            owner=rng.choice(owners),
            external_ref=f"demo:{index}",
            created_at=now - timedelta(days=rng.randint(30, 730)),
        )
        tags = rng.sample(["vip", "newsletter", "partner", "reseller", "trial", "enterprise", "smb"], rng.randint(0, 2))
        customer.tag_rows = [CustomerTag(tag=t) for t in sorted(tags)]
        session.add(customer)
        people.append(customer)
    return people


def _customers_zh(session, rng: random.Random, count: int, owners: list[User], now: datetime) -> list[Customer]:
    """Chinese companies (accounts) in a dozen cities and the people who buy for them."""
    account = _first_account(
        session,
        owners,
        now,
        ZH.marker,
        name=demo_zh.ACCOUNT,
        domain="akmi.example.cn",
        email="caigou@akmi.example.cn",
        phone="+86 21 6123 4567",
        country="CN",
        language="zh",
        timezone="Asia/Shanghai",
    )
    first = account.company
    assert first is not None
    people = [account]
    used_names = {demo_zh.ACCOUNT}
    companies: dict[str, tuple[Company, str]] = {demo_zh.ACCOUNT: (first, "21")}
    brands = [b for b in demo_zh.BRANDS if b != "阿克米"]
    for index in range(1, count):
        city, registered, area_code = rng.choice(demo_zh.CITIES)
        is_account = rng.random() < 0.4
        if is_account or len(companies) < 3:
            name = demo_zh.company_name(rng, rng.choice(brands))
            company_name = name
        else:
            name = demo_zh.person_name(rng)
            # A few buy for 阿克米 too, so its card has people and /customer 阿克米 lists them.
            company_name = demo_zh.ACCOUNT if rng.random() < 0.08 else rng.choice(list(companies))
        if name in used_names:
            # Namesakes are common in Chinese; a CRM tells them apart by their city.
            name = f"{name}（{city}）"
            if name in used_names:
                name = f"{name}{index}"
        used_names.add(name)
        if company_name not in companies:
            company = Company(name=company_name, name_key=company_name.casefold(), country="CN")
            companies[company_name] = (company, area_code)
            session.add(company)
        company, company_area = companies[company_name]
        customer = Customer(
            name=name,
            kind=CustomerKind.ACCOUNT if is_account else CustomerKind.PERSON,
            company=company,
            email=f"kh{index:04d}@example.cn",
            phone=demo_zh.landline(rng, company_area) if is_account else demo_zh.mobile(rng),
            country="CN",
            language="zh",
            timezone="Asia/Shanghai",
            owner=rng.choice(owners),
            external_ref=f"{ZH.ref_prefix}{index}",
            created_at=now - timedelta(days=rng.randint(30, 730)),
        )
        tags = rng.sample(["vip", "partner", "reseller", "trial", "enterprise", "smb"], rng.randint(0, 2))
        customer.tag_rows = [CustomerTag(tag=t) for t in sorted(tags)]
        session.add(customer)
        people.append(customer)
    return people


def _field_values(uow: UnitOfWork, rng: random.Random, people: list[Customer]) -> None:
    defs = {d.key: d for d in custom_fields.definitions(uow, FieldEntity.CUSTOMER)}
    # The choices of the definition as it is (another language's demo may have defined it first).
    industries = defs["industry"].choices or INDUSTRIES
    today = clock.utcnow().date()
    for customer in people:
        if customer.kind is not CustomerKind.ACCOUNT:
            continue
        uow.session.add_all(
            [
                CustomFieldValue(
                    definition_id=defs["industry"].id, entity_id=customer.id, value_text=rng.choice(industries)
                ),
                CustomFieldValue(
                    definition_id=defs["employees"].id,
                    entity_id=customer.id,
                    value_number=float(rng.choice([8, 25, 60, 120, 450, 1200])),
                ),
                CustomFieldValue(
                    definition_id=defs["contract_renewal"].id,
                    entity_id=customer.id,
                    value_date=today + timedelta(days=rng.randint(10, 360)),
                ),
            ]
        )


def _relationships(session, rng: random.Random, people: list[Customer], now: datetime) -> None:
    accounts = [c for c in people if c.kind is CustomerKind.ACCOUNT]
    persons = [c for c in people if c.kind is CustomerKind.PERSON]
    for person in rng.sample(persons, min(40, len(persons))):
        session.add(
            CustomerRelationship(
                customer_id=person.id,
                related_customer_id=rng.choice(accounts).id,
                type=RelationshipType.COLLEAGUE,
                started_on=(now - timedelta(days=rng.randint(30, 600))).date(),
            )
        )
    for child in rng.sample(accounts[1:], min(6, len(accounts) - 1)):
        session.add(
            CustomerRelationship(
                customer_id=child.id,
                related_customer_id=accounts[0].id,
                type=RelationshipType.SUBSIDIARY,
                started_on=date(2024, 1, 1),
            )
        )


def _basket(rng: random.Random, skus: list[str]) -> dict[str, int]:
    basket: dict[str, int] = {}
    for _ in range(rng.choice([1, 1, 2, 2, 3])):
        anchor = rng.choice(skus)
        basket[anchor] = basket.get(anchor, 0) + rng.randint(1, 3)
        for triggers, extras, probability in BUNDLES:
            if anchor in triggers and rng.random() < probability:
                for extra in extras:
                    if rng.random() < 0.9:
                        basket[extra] = basket.get(extra, 0) + rng.randint(1, 4)
    return basket


def _orders(
    session, rng: random.Random, people: list[Customer], products: dict[str, Product], now: datetime, content: Content
) -> int:
    skus = list(products)
    count = 0
    for customer in people:
        # Activity levels: loyal, regular, occasional, and customers who stopped buying (churned).
        profile = rng.choices(["loyal", "regular", "occasional", "churned"], [0.2, 0.35, 0.3, 0.15])[0]
        n_orders = {
            "loyal": rng.randint(12, 24),
            "regular": rng.randint(5, 12),
            "occasional": rng.randint(1, 4),
            "churned": rng.randint(2, 8),
        }[profile]
        if customer.external_ref == content.marker:
            n_orders = 18
        latest_day = 240 if profile == "churned" else 0
        for _ in range(n_orders):
            ordered_at = now - timedelta(days=rng.randint(latest_day, 730), hours=rng.randint(0, 23))
            count += 1
            order = Order(
                number=f"{'DEMO' if content.language == 'en' else 'DEMO-' + content.language.upper()}-{count:06d}",
                customer_id=customer.id,
                kind=OrderKind.PURCHASE,
                ordered_at=ordered_at,
                currency=content.currency,
                country=customer.country,
                source="demo",
            )
            total = 0
            for sku, quantity in _basket(rng, skus).items():
                product = products[sku]
                total += product.price_cents * quantity
                order.lines.append(
                    OrderLine(
                        product_id=product.id,
                        quantity=quantity,
                        unit_price_cents=product.price_cents,
                        line_total_cents=product.price_cents * quantity,
                    )
                )
            order.total_cents = total
            session.add(order)
    return count


def _deals(
    session, rng: random.Random, people: list[Customer], owners: list[User], now: datetime, content: Content
) -> int:
    # Chinese deals are in CNY: about seven times the euro amounts.
    unit = 10000 if content.currency == "EUR" else 70000
    count = 0
    for customer in people:
        if customer.external_ref != content.marker and rng.random() > 0.4:
            continue
        for _ in range(3 if customer.external_ref == content.marker else 1):
            stage = rng.choice(list(DealStage))
            created = now - timedelta(days=rng.randint(5, 400))
            title = rng.choice(content.deal_titles)
            deal = Deal(
                title=demo_zh.deal_title(title, created.year)
                if content.language == "zh"
                else f"{title} {created.year}",
                customer_id=customer.id,
                owner_id=customer.owner_id or rng.choice(owners).id,
                stage=stage,
                amount_cents=rng.randint(20, 600) * unit,
                currency=content.currency,
                expected_close_on=(now + timedelta(days=rng.randint(-30, 120))).date(),
                probability=DEFAULT_PROBABILITY[stage],
                created_at=created,
                updated_at=created,
                closed_at=None if stage.is_open else created + timedelta(days=rng.randint(10, 60)),
                lost_reason=content.lost_reason if stage is DealStage.LOST else None,
            )
            session.add(deal)
            session.flush()
            # A believable path through the pipeline up to the deal's stage.
            path = (
                list(PIPELINE[: PIPELINE.index(stage) + 1])
                if stage.is_open
                else (list(PIPELINE[: rng.randint(1, len(PIPELINE))]) + [stage])
            )
            moment = created
            previous = None
            for step in path:
                session.add(
                    DealStageChange(
                        deal_id=deal.id,
                        from_stage=previous,
                        to_stage=step,
                        changed_at=moment,
                        changed_by_id=deal.owner_id,
                    )
                )
                previous = step
                moment += timedelta(days=rng.randint(2, 20))
            count += 1
    return count


def _tickets(
    session, rng: random.Random, people: list[Customer], agents: list[User], now: datetime, content: Content
) -> int:
    count = 0
    for customer in rng.sample(people, min(90, len(people))) + [people[0]]:
        opened = now - timedelta(days=rng.randint(0, 120), hours=rng.randint(0, 23))
        priority = rng.choice(list(TicketPriority))
        status = rng.choices(list(TicketStatus), [0.3, 0.15, 0.35, 0.2])[0]
        first_due, resolve_due = due_times(priority, opened)
        responded = (
            opened + timedelta(minutes=rng.randint(5, 600))
            if status is not TicketStatus.OPEN or rng.random() < 0.5
            else None
        )
        resolved = responded + timedelta(hours=rng.randint(1, 96)) if responded and not status.is_open else None
        rating = rng.choice([3, 4, 4, 5, 5, 2]) if resolved and rng.random() < 0.6 else None
        session.add(
            Ticket(
                customer_id=customer.id,
                subject=rng.choice(content.ticket_subjects),
                status=status,
                priority=priority,
                assignee_id=rng.choice(agents).id if rng.random() < 0.8 else None,
                channel=rng.choice(["chat", "email", "phone"]),
                created_at=opened,
                updated_at=resolved or responded or opened,
                first_response_due_at=first_due,
                resolve_due_at=resolve_due,
                first_responded_at=responded,
                resolved_at=resolved,
                closed_at=resolved + timedelta(days=2) if status is TicketStatus.CLOSED and resolved else None,
                rating=rating,
                rated_at=resolved + timedelta(hours=3) if rating and resolved else None,
            )
        )
        count += 1
    return count


def _interactions(
    session, rng: random.Random, people: list[Customer], staff: list[User], now: datetime, content: Content
) -> int:
    count = 0
    for customer in people:
        for _ in range(5 if customer.external_ref == content.marker else rng.randint(0, 3)):
            kind = rng.choice(
                [InteractionKind.NOTE, InteractionKind.CALL, InteractionKind.EMAIL, InteractionKind.MEETING]
            )
            session.add(
                Interaction(
                    customer_id=customer.id,
                    user_id=(customer.owner_id or rng.choice(staff).id),
                    kind=kind,
                    direction=Direction.OUTBOUND if kind is not InteractionKind.NOTE else Direction.INTERNAL,
                    channel={"call": "phone", "email": "email"}.get(kind.value, "chat"),
                    text=rng.choice(content.notes),
                    occurred_at=now - timedelta(days=rng.randint(0, 300), hours=rng.randint(0, 23)),
                )
            )
            count += 1
    return count


# Saved segments to try /segment show and /campaign new with. No consents are seeded: demo
# customers have no real chats, and a campaign must never write to made-up addresses.
DEMO_SEGMENTS = {
    "vip-germany": "country=DE tag=vip",
    "big-spenders": "ltv>=1000 orders>=3",
    "lapsed": "last_order>90d",
}


EN.segments.update(DEMO_SEGMENTS)


def _segments(uow: UnitOfWork, content: Content) -> None:
    from crm_core.services import segments

    for name, filter_text in content.segments.items():
        segments.create(uow, name, filter_text, None)


def prime(uow: UnitOfWork) -> str:
    """What the nightly jobs would have produced for the demo data: rules and churn scores, so the
    first session shows /recommend and churn risk without waiting for 02:00."""
    from crm_core.predictions import run_notes
    from crm_core.predictions.scores import refresh_scores
    from crm_core.services.market_basket import run_mining

    mining = run_mining(uow, trigger="demo")
    model = refresh_scores(uow)
    return i18n._(
        "Mined {rules} rules from {orders} orders; churn model: {note}.",
        rules=mining.n_rules,
        orders=i18n.format_number(mining.n_baskets),
        note=run_notes.describe(model),
    )
