"""The role table: which role may do what. The one place permissions are decided.

Every command names a permission; a role not listed for it is refused (deny by default).
Someone the CRM does not know gets the role set by ``CHATCRM_UNKNOWN_ROLE`` (default: none,
which allows only /help and the like), except where customers write to us (a platform with a
support desk, or someone whose customer chat the CRM knows): there they are a ``customer``, who
may write (their messages become tickets), /start, /help, /link, /rate, /stop and /cancel.
"""

from __future__ import annotations

import enum

from crm_core.models import Role


class Permission(enum.StrEnum):
    # Help, /link, /rate, /start, /cancel: everyone, customers included.
    HELP = "help"
    # Your CRM account (/whoami, the Home tab): everyone but customers, who have none.
    ACCOUNT = "account"
    CUSTOMERS_READ = "customers.read"
    CUSTOMERS_WRITE = "customers.write"
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
    # Build segments and draft, preview, test and watch campaigns.
    CAMPAIGNS_DRAFT = "campaigns.draft"
    # Start, confirm, pause, resume and cancel campaigns: managers and admins only.
    CAMPAIGNS_RUN = "campaigns.run"
    # Record a customer's consent (a Slack shared channel) or their opt-out given elsewhere.
    CONSENT_MANAGE = "consent.manage"
    # Anyone, customers included, may stop campaign messages to themselves.
    OPT_OUT = "opt_out"


_VIEWER = {
    Permission.HELP,
    Permission.ACCOUNT,
    Permission.CUSTOMERS_READ,
    Permission.DEALS_READ,
    Permission.TICKETS_READ,
    Permission.PROFILE,
    Permission.OPT_OUT,
}
_SALES = _VIEWER | {
    Permission.CUSTOMERS_WRITE,
    Permission.NOTES_WRITE,
    Permission.DEALS_WRITE,
    Permission.FOLLOWUPS,
    Permission.CAMPAIGNS_DRAFT,
}
_SUPPORT = _VIEWER | {
    Permission.CUSTOMERS_WRITE,
    Permission.NOTES_WRITE,
    Permission.TICKETS_WRITE,
    Permission.FOLLOWUPS,
}
_MANAGER = _SALES | _SUPPORT | {Permission.MODELS_READ, Permission.DIGESTS_MANAGE, Permission.CAMPAIGNS_RUN}

ROLE_PERMISSIONS: dict[Role | None, frozenset[Permission]] = {
    None: frozenset({Permission.HELP, Permission.ACCOUNT, Permission.OPT_OUT}),
    Role.CUSTOMER: frozenset({Permission.HELP, Permission.OPT_OUT}),
    Role.VIEWER: frozenset(_VIEWER),
    Role.SALES: frozenset(_SALES),
    Role.SUPPORT: frozenset(_SUPPORT),
    Role.MANAGER: frozenset(_MANAGER),
    Role.ADMIN: frozenset(Permission),
}


def allows(role: Role | str | None, permission: Permission) -> bool:
    key = Role(role) if role else None
    return permission in ROLE_PERMISSIONS.get(key, frozenset())
