"""/audit: the audit log for admins, newest first, filtered and paged (an "Older" button).

Each entry says what happened in the reader's language, at the reader's local time; the raw action
(``action=update``) stays beside it, as the filter takes it, and the values before and after are
shown as stored (column names and values: data).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from bot.args import Kind, arg, opt
from bot.context import Context
from bot.handlers.common import fmt_datetime
from bot.hookspecs import hookimpl
from bot.messages import Button, Item, Reply, Request, Section
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core.clock import utcnow
from crm_core.errors import ValidationError
from crm_core.i18n import N_, _, ngettext
from crm_core.services import audit_log, customers, users

group = CommandGroup()
PAGE = 20
_DAYS = re.compile(r"^(\d{1,4})d$")


def _since(raw: str | None) -> datetime | None:
    """``2026-05-01`` (UTC midnight) or ``7d`` (seven days ago)."""
    if not raw:
        return None
    text = raw.strip().lower()
    days = _DAYS.match(text)
    if days:
        return utcnow() - timedelta(days=int(days.group(1)))
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        raise ValidationError(
            _("since={value}: write a date (2026-05-01) or days back (7d)", value=repr(raw)), field="since"
        ) from None


def _values(before: dict | None, after: dict | None) -> str:
    changed = sorted(set(before or {}) | set(after or {}))
    parts = []
    for key in changed[:6]:
        old, new = (before or {}).get(key), (after or {}).get(key)
        if before is None:
            parts.append(f"{key}={json.dumps(new, ensure_ascii=False)}")
        elif after is None:
            parts.append(_("{key} was {value}", key=key, value=json.dumps(old, ensure_ascii=False)))
        else:
            parts.append(f"{key}: {json.dumps(old, ensure_ascii=False)} → {json.dumps(new, ensure_ascii=False)}")
    if len(changed) > 6:
        parts.append(ngettext("… {n} more", "… {n} more", len(changed) - 6))
    return "; ".join(parts)


@group.command(
    "audit",
    summary=N_("Read the audit log (admins): who changed what, newest first"),
    permission=Permission.AUDIT_READ,
    params=[
        arg("subject", required=False, label=N_("Customer or user:NAME"), hint=N_("acme, #12 or user:maria")),
        opt("since", label=N_("Since"), hint=N_("2026-05-01 or 7d")),
        opt("action", Kind.CHOICE, choices=audit_log.ACTIONS, label=N_("Action")),
        opt("before", Kind.INT, label=N_("Older than entry #")),
    ],
)
def read_audit(req: Request, ctx: Context) -> Reply:
    subject = (req.args.get("subject") or "").strip()
    customer_id = user_id = None
    about = _("everything")
    if subject.lower().startswith("user:"):
        user = users.find_user(ctx.uow, subject[5:].strip())
        user_id, about = user.id, _("changes by {name}", name=user.name)
    elif subject:
        customer = customers.resolve_customer(ctx.uow, subject)
        customer_id, about = customer.id, f"{customer.name} (#{customer.id})"
    where = audit_log.AuditFilter(customer_id, user_id, _since(req.args.get("since")), req.args.get("action"))
    entries = audit_log.page(ctx.uow, where, before_id=req.args.get("before"), limit=PAGE + 1)
    shown = entries[:PAGE]
    tz = ctx.caller.timezone
    items = tuple(
        Item(
            text=f"#{entry.id} · {fmt_datetime(entry.at, tz)} · {audit_log.summary(entry)}",
            # The raw action, as the action= filter takes it.
            detail=" · ".join(
                [_by(entry.actor_name, entry.platform), f"action={entry.action}"]
                + ([_values(entry.before, entry.after)] if entry.before or entry.after else [])
            ),
        )
        for entry in shown
    )
    buttons: tuple[Button, ...] = ()
    if len(entries) > PAGE:
        options = [subject] if subject else []
        options += [f"{name}={req.args[name]}" for name in ("since", "action") if req.args.get(name)]
        buttons = (Button(_("Older"), " ".join(["/audit", *options, f"before={shown[-1].id}"])),)
    return Reply(
        title=_("Audit log · {about}", about=about),
        sections=(Section(items=items, empty=_("No entries match.")),),
        buttons=buttons,
        footer=_("Newest first; times in {timezone}.", timezone=tz),
        private=True,
    )


def _by(actor: str | None, platform: str | None) -> str:
    if actor is None:
        return _("by system ({platform})", platform=platform) if platform else _("by system")
    return _("by {name} ({platform})", name=actor, platform=platform) if platform else _("by {name}", name=actor)


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
