"""/audit: the audit log for admins, newest first, filtered and paged (an "Older" button)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from bot.args import Kind, arg, opt
from bot.context import Context
from bot.hookspecs import hookimpl
from bot.messages import Button, Item, Reply, Request, Section
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core.clock import utcnow
from crm_core.errors import ValidationError
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
        raise ValidationError(f"since={raw!r}: write a date (2026-05-01) or days back (7d)", field="since") from None


def _values(before: dict | None, after: dict | None) -> str:
    changed = sorted(set(before or {}) | set(after or {}))
    parts = []
    for key in changed[:6]:
        old, new = (before or {}).get(key), (after or {}).get(key)
        if before is None:
            parts.append(f"{key}={json.dumps(new, ensure_ascii=False)}")
        elif after is None:
            parts.append(f"{key} was {json.dumps(old, ensure_ascii=False)}")
        else:
            parts.append(f"{key}: {json.dumps(old, ensure_ascii=False)} → {json.dumps(new, ensure_ascii=False)}")
    if len(changed) > 6:
        parts.append(f"… {len(changed) - 6} more")
    return "; ".join(parts)


@group.command(
    "audit",
    summary="Read the audit log (admins): who changed what, newest first",
    permission=Permission.AUDIT_READ,
    params=[
        arg("subject", required=False, label="Customer or user:NAME", hint="acme, #12 or user:maria"),
        opt("since", label="Since", hint="2026-05-01 or 7d"),
        opt("action", Kind.CHOICE, choices=audit_log.ACTIONS, label="Action"),
        opt("before", Kind.INT, label="Older than entry #"),
    ],
)
def read_audit(req: Request, ctx: Context) -> Reply:
    subject = (req.args.get("subject") or "").strip()
    customer_id = user_id = None
    about = "everything"
    if subject.lower().startswith("user:"):
        user = users.find_user(ctx.uow, subject[5:].strip())
        user_id, about = user.id, f"changes by {user.name}"
    elif subject:
        customer = customers.resolve_customer(ctx.uow, subject)
        customer_id, about = customer.id, f"{customer.name} (#{customer.id})"
    where = audit_log.AuditFilter(customer_id, user_id, _since(req.args.get("since")), req.args.get("action"))
    entries = audit_log.page(ctx.uow, where, before_id=req.args.get("before"), limit=PAGE + 1)
    shown = entries[:PAGE]
    items = tuple(
        Item(
            text=f"#{entry.id} {entry.at:%Y-%m-%d %H:%M} {entry.action} {entry.entity_type} {entry.entity_id}",
            detail=f"by {entry.actor_name or 'system'}{f' ({entry.platform})' if entry.platform else ''}"
            + (f" · {_values(entry.before, entry.after)}" if entry.before or entry.after else ""),
        )
        for entry in shown
    )
    buttons: tuple[Button, ...] = ()
    if len(entries) > PAGE:
        options = [subject] if subject else []
        options += [f"{name}={req.args[name]}" for name in ("since", "action") if req.args.get(name)]
        buttons = (Button("Older", " ".join(["/audit", *options, f"before={shown[-1].id}"])),)
    return Reply(
        title=f"Audit log · {about}",
        sections=(Section(items=items, empty="No entries match."),),
        buttons=buttons,
        footer="Newest first; UTC times.",
        private=True,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
