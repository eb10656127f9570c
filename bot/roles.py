"""Permissions and the role table: which role may do what. The one place permissions are decided.

Every command names a permission; a role not granted it is refused (deny by default). The
grants come from the ``register_permissions`` hook: chatcrm's own are below (this module is a
built-in plugin), and a plugin adds its permissions and says which roles get them. ``admin`` has
every permission. Someone the CRM does not know gets the role set by ``CHATCRM_UNKNOWN_ROLE``
(default: none, which allows only what is granted to ``anyone``: /help, /whoami and opting out),
except where customers write to us (a platform with a support desk, or someone whose customer
chat the CRM knows): there they are a ``customer``, who may write (their messages become
tickets), /start, /help, /link, /rate, /stop and /cancel.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from bot.hookspecs import hookimpl
from bot.plugin_types import PermissionGrant
from crm_core.i18n import pgettext
from crm_core.models import STAFF_ROLES, Role

# The pseudo-role of someone with no role (unknown to the CRM, or given none).
ANYONE = "anyone"


class Permission(enum.StrEnum):
    """chatcrm's own permissions. Plugins name theirs as plain strings ("quotes.create")."""

    # Help, /link, /rate, /start, /cancel: everyone, customers included.
    HELP = "help"
    # Your CRM account (/whoami, the Home tab): everyone but customers, who have none.
    ACCOUNT = "account"
    CUSTOMERS_READ = "customers.read"
    CUSTOMERS_WRITE = "customers.write"
    # Merge duplicate customers (/customer merge): managers and admins.
    CUSTOMERS_MERGE = "customers.merge"
    NOTES_WRITE = "notes.write"
    DEALS_READ = "deals.read"
    DEALS_WRITE = "deals.write"
    USERS_MANAGE = "users.manage"
    FIELDS_MANAGE = "fields.manage"
    MODELS_READ = "models.read"
    MODELS_TRAIN = "models.train"
    MINING_RUN = "mining.run"
    TICKETS_READ = "tickets.read"
    TICKETS_WRITE = "tickets.write"
    # Your own settings (/tz).
    PROFILE = "profile"
    FOLLOWUPS = "followups"
    DIGESTS_MANAGE = "digests.manage"
    TEMPLATES_MANAGE = "templates.manage"
    # Admins only: the log shows every change, with values, to any record.
    AUDIT_READ = "audit.read"
    # Build segments and draft, preview, test and watch campaigns.
    CAMPAIGNS_DRAFT = "campaigns.draft"
    # Start, confirm, pause, resume and cancel campaigns: managers and admins only.
    CAMPAIGNS_RUN = "campaigns.run"
    # Record a customer's consent (a shared channel) or their opt-out given elsewhere.
    CONSENT_MANAGE = "consent.manage"
    # Anyone, customers included, may stop campaign messages to themselves.
    OPT_OUT = "opt_out"
    # Make and revoke your own personal access tokens for the REST API (/token).
    API_TOKENS = "api.tokens"
    # Record orders and edit the product catalogue (an ERP or shop pushing them over the API).
    ORDERS_WRITE = "orders.write"
    # Add, list, test and remove outgoing webhooks (/webhook, /api/v1/webhooks): admins only.
    WEBHOOKS_MANAGE = "webhooks.manage"
    # Data subject requests (GDPR): everything about a customer as a file, and erasure. Admins only.
    CUSTOMERS_EXPORT = "customers.export"
    CUSTOMERS_ERASE = "customers.erase"
    # A segment's customers as a spreadsheet (/export segment): sales, managers and admins, who build segments.
    # Not viewers or support: reading one card at a time is not carrying every contact of a list away.
    SEGMENTS_EXPORT = "segments.export"
    # Import customers from a file uploaded in chat (/import customers): admins only, like `chatcrm import`.
    DATA_IMPORT = "data.import"


_DESCRIPTIONS = {
    Permission.HELP: "see the commands you can use",
    Permission.ACCOUNT: "see your own CRM account (/whoami, the Home tab)",
    Permission.CUSTOMERS_READ: "look up customers and their cards",
    Permission.CUSTOMERS_WRITE: "create and edit customers",
    Permission.CUSTOMERS_MERGE: "merge duplicate customers into one",
    Permission.NOTES_WRITE: "log notes, calls and meetings",
    Permission.DEALS_READ: "see deals and the pipeline",
    Permission.DEALS_WRITE: "create deals and move them through stages",
    Permission.USERS_MANAGE: "give roles and link chat accounts",
    Permission.FIELDS_MANAGE: "define custom fields",
    Permission.MODELS_READ: "see churn scores and RFM segments",
    Permission.MODELS_TRAIN: "train the churn model",
    Permission.MINING_RUN: "mine association rules",
    Permission.TICKETS_READ: "see support tickets",
    Permission.TICKETS_WRITE: "open, assign and answer tickets",
    Permission.PROFILE: "change your own settings",
    Permission.FOLLOWUPS: "set follow-up reminders",
    Permission.DIGESTS_MANAGE: "subscribe channels to digests",
    Permission.TEMPLATES_MANAGE: "edit message templates",
    Permission.AUDIT_READ: "read the audit log",
    Permission.CAMPAIGNS_DRAFT: "build segments and draft campaigns",
    Permission.CAMPAIGNS_RUN: "start, pause and cancel campaigns",
    Permission.CONSENT_MANAGE: "record customers' consent and opt-outs",
    Permission.OPT_OUT: "stop marketing messages to yourself",
    Permission.API_TOKENS: "make and revoke your own tokens for the REST API",
    Permission.ORDERS_WRITE: "record orders and edit products",
    Permission.WEBHOOKS_MANAGE: "add, test and remove outgoing webhooks",
    Permission.CUSTOMERS_EXPORT: "export everything held about a customer (a data subject access request)",
    Permission.CUSTOMERS_ERASE: "erase a customer's personal data on request",
    Permission.SEGMENTS_EXPORT: "export a segment's customers as a spreadsheet",
    Permission.DATA_IMPORT: "import customers from a CSV or .xlsx file uploaded in chat",
}


def role_name(role: Role | str) -> str:
    """A role as people read it, in the current language; users still type the English word (/role)."""
    value = str(role.value if isinstance(role, Role) else role)
    names = {
        Role.ADMIN.value: pgettext("role", "admin"),
        Role.MANAGER.value: pgettext("role", "manager"),
        Role.SALES.value: pgettext("role", "sales"),
        Role.SUPPORT.value: pgettext("role", "support"),
        Role.VIEWER.value: pgettext("role", "viewer"),
        Role.CUSTOMER.value: pgettext("role", "customer"),
    }
    return names.get(value, value)


_CUSTOMER = {Permission.HELP, Permission.OPT_OUT}
_ANYONE = _CUSTOMER | {Permission.ACCOUNT}
_VIEWER = _ANYONE | {
    Permission.CUSTOMERS_READ,
    Permission.DEALS_READ,
    Permission.TICKETS_READ,
    Permission.PROFILE,
    Permission.API_TOKENS,
}
_SALES = _VIEWER | {
    Permission.CUSTOMERS_WRITE,
    Permission.NOTES_WRITE,
    Permission.DEALS_WRITE,
    Permission.FOLLOWUPS,
    Permission.CAMPAIGNS_DRAFT,
    Permission.SEGMENTS_EXPORT,
}
_SUPPORT = _VIEWER | {
    Permission.CUSTOMERS_WRITE,
    Permission.NOTES_WRITE,
    Permission.TICKETS_WRITE,
    Permission.FOLLOWUPS,
}
_MANAGER = (
    _SALES
    | _SUPPORT
    | {
        Permission.CUSTOMERS_MERGE,
        Permission.MODELS_READ,
        Permission.DIGESTS_MANAGE,
        Permission.CAMPAIGNS_RUN,
        Permission.ORDERS_WRITE,
    }
)

_BUILTIN_ROLES: dict[str, set[Permission]] = {
    ANYONE: _ANYONE,
    # Customers writing to us have no CRM account to look at.
    Role.CUSTOMER.value: _CUSTOMER,
    Role.VIEWER.value: _VIEWER,
    Role.SALES.value: _SALES,
    Role.SUPPORT.value: _SUPPORT,
    Role.MANAGER.value: _MANAGER,
}


@hookimpl
def register_permissions() -> list[PermissionGrant]:
    return [
        PermissionGrant(
            permission.value,
            _DESCRIPTIONS[permission],
            roles=[role for role, granted in _BUILTIN_ROLES.items() if permission in granted],
        )
        for permission in Permission
    ]


class PermissionTable:
    """Which role has which permission, from every plugin's grants. Admins have every permission."""

    def __init__(self, grants: Iterable[PermissionGrant]):
        self.descriptions: dict[str, str] = {}
        self._by_role: dict[str, set[str]] = {}
        known_roles = {role.value for role in Role} | {ANYONE}
        for grant in grants:
            self.descriptions.setdefault(grant.permission, grant.description)
            for role in grant.roles:
                if role not in known_roles:
                    raise ValueError(f"permission {grant.permission!r} is granted to an unknown role {role!r}")
                self._by_role.setdefault(role, set()).add(grant.permission)
        self._by_role[Role.ADMIN.value] = set(self.descriptions)
        # Whatever anyone may do, every staff role may do (customers get only what is granted to them).
        for role in {r.value for r in STAFF_ROLES}:
            self._by_role.setdefault(role, set()).update(self._by_role.get(ANYONE, set()))

    def names(self) -> set[str]:
        return set(self.descriptions)

    def allows(self, role: Role | str | None, permission: str) -> bool:
        key = str(role.value if isinstance(role, Role) else role) if role else ANYONE
        return str(permission) in self._by_role.get(key, set())

    def granted(self, role: Role | str | None) -> set[str]:
        key = str(role.value if isinstance(role, Role) else role) if role else ANYONE
        return set(self._by_role.get(key, set()))
