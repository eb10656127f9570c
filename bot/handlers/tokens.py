"""/token: personal access tokens for the REST API (make one, list yours, revoke one).

A new token is shown once, and only where no one else can read it: a private chat, or an
ephemeral reply on a platform that has them (Slack). Asked in a shared chat elsewhere, the
command refuses and makes nothing.
"""

from __future__ import annotations

from bot.args import Kind, arg, opt, rest
from bot.context import Context
from bot.handlers.common import fmt_date
from bot.hookspecs import hookimpl
from bot.messages import Field, Item, Reply, Request, Section, Tone
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import clock, platforms
from crm_core.errors import ValidationError
from crm_core.i18n import N_, _
from crm_core.services import api_tokens, users

group = CommandGroup()


def _me(ctx: Context):
    if ctx.caller.user_id is None:
        raise ValidationError(_("the CRM does not know you yet: ask an admin to add you before making API tokens"))
    return users.find_user(ctx.uow, f"#{ctx.caller.user_id}")


def _scope_names(scopes: list[str]) -> str:
    return ", ".join(s.replace(".", ":") for s in scopes) if scopes else _("everything your role may do")


@group.command(
    "token new",
    summary=N_("Make a personal access token for the REST API (shown once, privately)"),
    permission=Permission.API_TOKENS,
    params=[
        arg("name", label=N_("Token name"), max_length=40),
        rest(
            "scopes", Kind.TEXT, required=False, label=N_("Scopes (e.g. customers:read deals:write)"), max_length=1000
        ),
        opt("expires", label=N_("Expires after (90d, 12w, 48h or never)"), max_length=10),
    ],
    usage=N_("<name> [scopes …] [expires=90d]"),
)
def new_token(req: Request, ctx: Context) -> Reply:
    if not (req.origin.is_private or platforms.traits(req.origin.platform).ephemeral):
        return Reply(
            text=_(
                "Ask me for an API token in a private chat with the bot: a token posted here could be used by anyone "
                "reading it."
            ),
            tone=Tone.WARNING,
            private=True,
        )
    me = _me(ctx)
    known = ctx.router.permissions.names()
    scopes = api_tokens.normalize_scopes((req.args.get("scopes") or "").split(), known)
    beyond = [s for s in scopes if not ctx.can(s)]
    if beyond:
        names = ", ".join(s.replace(".", ":") for s in beyond)
        raise ValidationError(
            _("your role does not allow {scopes}, so a token of yours cannot either", scopes=names), field="scopes"
        )
    lifetime = api_tokens.parse_lifetime(req.args.get("expires") or "90d")
    made = api_tokens.create(ctx.uow, me, req.args["name"], scopes, lifetime)
    expires = fmt_date(made.token.expires_at, ctx.caller.timezone) if made.token.expires_at else _("never")
    return Reply(
        title=_("API token {name}", name=made.token.name),
        text=made.secret,
        fields=(Field(_("Scopes"), _scope_names(scopes)), Field(_("Expires"), expires)),
        footer=_(
            "Copy it now: it is shown this once and stored only as a hash. Send it as "
            "'Authorization: Bearer <token>' to /api/v1. Revoke it with /token revoke {name}.",
            name=made.token.name,
        ),
        tone=Tone.SUCCESS,
        private=True,
    )


@group.command("token list", summary=N_("List your API tokens"), permission=Permission.API_TOKENS)
def list_tokens(req: Request, ctx: Context) -> Reply:
    me = _me(ctx)
    now = clock.utcnow()
    tz = ctx.caller.timezone
    items = []
    for token in api_tokens.list_for(ctx.uow, me):
        if token.revoked_at is not None:
            state = _("revoked {date}", date=fmt_date(token.revoked_at, tz))
        elif token.expires_at is not None and token.expires_at <= now:
            state = _("expired {date}", date=fmt_date(token.expires_at, tz))
        elif token.expires_at:
            state = _("expires {date}", date=fmt_date(token.expires_at, tz))
        else:
            state = _("never expires")
        if token.last_used_at:
            used = _("last used {date}", date=fmt_date(token.last_used_at, tz))
        else:
            used = _("never used")
        items.append(
            Item(text=f"{token.name} ({token.prefix}…)", detail=f"{_scope_names(token.scopes)} · {state} · {used}")
        )
    return Reply(
        title=_("Your API tokens"),
        sections=(Section(items=tuple(items), empty=_("No tokens yet: /token new <name>")),),
        private=True,
    )


@group.command(
    "token revoke",
    summary=N_("Revoke one of your API tokens (it stops working at once)"),
    permission=Permission.API_TOKENS,
    params=[arg("name", label=N_("Token name"), max_length=40)],
)
def revoke_token(req: Request, ctx: Context) -> Reply:
    token = api_tokens.revoke(ctx.uow, _me(ctx), req.args["name"])
    return Reply(
        text=_("Revoked the token {name}: it no longer works.", name=token.name), tone=Tone.SUCCESS, private=True
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
