"""Data subject requests from chat (admins): ``/customer export`` hands over everything chatcrm holds
about a person as a JSON file, privately; ``/customer erase`` erases their personal data after a
confirmation. The rules live in crm_core.services.subject_access and crm_core.services.erasure."""

from __future__ import annotations

import hashlib
import json

from bot.args import arg, opt, rest
from bot.context import Context
from bot.messages import Button, File, Reply, Request, Style, Tone
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core.i18n import N_, _, format_number, ngettext
from crm_core.services import customers, erasure, subject_access

group = CommandGroup()


@group.command(
    "customer export",
    summary=N_("Everything held about a customer as a JSON file, sent to you privately (GDPR access request)"),
    permission=Permission.CUSTOMERS_EXPORT,
    params=[arg("customer", label=N_("Customer"), hint=N_("#id, email or name"))],
)
def export_customer(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    document = subject_access.export_customer(ctx.uow, customer.id)
    content = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False).encode()
    name = f"customer-{customer.id}-data.json"
    return Reply(
        text=_(
            "Everything chatcrm holds about customer #{id}: {file} ({size} bytes), sent to you privately. "
            "The export is in the audit log.",
            id=customer.id,
            file=name,
            size=format_number(len(content)),
        ),
        file=File(
            name=name,
            content=content,
            mime="application/json",
            title=_("Data of customer #{id}", id=customer.id),
        ),
        tone=Tone.SUCCESS,
        private=True,
    )


def _confirmation_code(customer_id: int, name: str) -> str:
    # Ties the confirmation to the customer as shown in the preview: a typed guess or an old button
    # for a renamed customer does not erase.
    return hashlib.sha256(f"erase:{customer_id}:{name}".encode()).hexdigest()[:8]


@group.command(
    "customer erase",
    summary=N_("Erase a customer's personal data on request (GDPR); asks for confirmation first"),
    permission=Permission.CUSTOMERS_ERASE,
    params=[
        arg("customer", label=N_("Customer"), hint=N_("#id, email or name")),
        rest("reason", required=False, label=N_("Reason"), max_length=300),
        opt("confirm", label=N_("Confirmation code")),
    ],
)
def erase_customer(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    if customer.erased_at is not None:
        return Reply(text=_("Customer #{id} was already erased.", id=customer.id), tone=Tone.WARNING, private=True)
    reason = (req.args.get("reason") or "").strip() or None
    code = _confirmation_code(customer.id, customer.name)
    if req.args.get("confirm") != code:
        erase = f"/customer erase #{customer.id} confirm={code}" + (f" {reason}" if reason else "")
        return Reply(
            title=_("Erase {name} (#{id})?", name=customer.name, id=customer.id),
            text=_(
                "This removes their name, contact details, chat ids, message and note texts and personal custom "
                "fields for good, and makes what the audit log holds about them unreadable. Orders and figures stay "
                "under the name {pseudonym}. It cannot be undone.",
                pseudonym=repr(erasure.pseudonym(customer.id)),
            ),
            buttons=(Button(_("Erase for good"), erase, Style.DANGER), Button(_("Cancel"), "/cancel")),
            footer=_("Or type: {command}", command=erase),
            tone=Tone.WARNING,
            private=True,
        )
    done = erasure.erase(ctx.uow, customer.id, reason)
    changed = sum(done.counts.values())
    return Reply(
        text=ngettext(
            "Erased customer #{id}: now {pseudonym}; {count} related record scrubbed. "
            "Orders and figures are kept. Plugins and webhooks are told (customer.erased).",
            "Erased customer #{id}: now {pseudonym}; {count} related records scrubbed. "
            "Orders and figures are kept. Plugins and webhooks are told (customer.erased).",
            changed,
            id=customer.id,
            pseudonym=repr(done.pseudonym),
            count=format_number(changed),
        ),
        tone=Tone.SUCCESS,
        private=True,
    )
