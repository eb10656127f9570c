"""Admin commands: grant roles (/role), define custom fields (/field), see yourself (/whoami)."""

from __future__ import annotations

from bot.args import Kind, arg, opt
from bot.context import Context
from bot.hookspecs import hookimpl
from bot.messages import Field, Item, Reply, Request, Section, Tone
from bot.roles import Permission, role_name
from bot.router import CommandGroup
from crm_core.i18n import N_, _, pgettext
from crm_core.models import FieldEntity, FieldType, Identity
from crm_core.services import custom_fields, users

group = CommandGroup()
ROLES = ("admin", "manager", "sales", "support", "viewer", "none")


@group.command(
    "role",
    summary=N_("Give a user a role (admin only); a chat identity like slack:U123 creates the user"),
    permission=Permission.USERS_MANAGE,
    params=[
        arg("user", label=N_("User"), hint=N_("name, email, #id, slack:U123 or telegram:456")),
        arg("role", Kind.CHOICE, choices=ROLES, label=N_("Role")),
    ],
)
def grant_role(req: Request, ctx: Context) -> Reply:
    reference = req.args["user"]
    role = None if req.args["role"] == "none" else users.parse_role(req.args["role"])
    if ":" in reference:
        user = users.ensure_user(ctx.uow, users.parse_platform_id(reference))
    else:
        user = users.find_user(ctx.uow, reference)
    users.grant_role(ctx.uow, user, role)
    if role is None:
        text = _("{name} (#{id}) is now without a role.", name=user.name, id=user.id)
    else:
        text = _("{name} (#{id}) is now {role}.", name=user.name, id=user.id, role=role_name(role))
    return Reply(text=text, tone=Tone.SUCCESS)


@group.command("whoami", summary=N_("Your CRM user, role and linked chat accounts"), permission=Permission.ACCOUNT)
def whoami(req: Request, ctx: Context) -> Reply:
    caller = ctx.caller
    if caller.user_id is None:
        identity = f"{req.origin.platform}:{req.origin.user_external_id}"
        return Reply(
            text=_("The CRM does not know you yet ({identity}). Ask an admin to give you a role.", identity=identity),
            private=True,
        )
    identities = ctx.uow.session.query(Identity).filter(Identity.user_id == caller.user_id).all()
    return Reply(
        title=caller.name,
        fields=(
            Field(_("Role"), role_name(caller.role) if caller.role else pgettext("role", "none")),
            Field(_("Timezone"), caller.timezone),
            Field(_("Accounts"), ", ".join(f"{i.platform}:{i.external_id}" for i in identities) or "—", short=False),
        ),
        private=True,
    )


def _entity_fields(entity: FieldEntity) -> str:
    return {
        FieldEntity.CUSTOMER: _("Customer fields"),
        FieldEntity.DEAL: _("Deal fields"),
        FieldEntity.TICKET: _("Ticket fields"),
    }.get(entity, entity.capitalize())


@group.command(
    "field list",
    read_only=True,
    summary=N_("List custom fields"),
    permission=Permission.CUSTOMERS_READ,
)
def list_fields(req: Request, ctx: Context) -> Reply:
    sections = []
    for entity in FieldEntity:
        defs = custom_fields.definitions(ctx.uow, entity)
        sections.append(
            Section(
                title=_entity_fields(entity),
                items=tuple(
                    Item(
                        text=f"{d.key} ({d.type})"
                        + (_(" · required") if d.required else "")
                        + (_(" · personal") if d.personal else ""),
                        detail=d.label + (f" · {', '.join(d.choices)}" if d.choices else ""),
                    )
                    for d in defs
                ),
                empty=_("None yet."),
            )
        )
    return Reply(title=_("Custom fields"), sections=tuple(sections), footer=_("Admins add fields with /field new."))


@group.command(
    "field new",
    summary=N_("Define a custom field (admin only)"),
    permission=Permission.FIELDS_MANAGE,
    params=[
        arg("entity", Kind.CHOICE, choices=tuple(e.value for e in FieldEntity), label=N_("Record type")),
        arg("key", label=N_("Key"), hint="lower_case_name"),
        arg("type", Kind.CHOICE, choices=tuple(t.value for t in FieldType), label=N_("Field type")),
        opt("label", label=N_("Label"), max_length=100),
        opt("choices", label=N_("Choices"), hint=N_("a|b|c (choice fields)")),
        opt("required", Kind.CHOICE, choices=("yes", "no"), label=N_("Required")),
        opt(
            "personal",
            Kind.CHOICE,
            choices=("yes", "no"),
            label=N_("Personal data"),
            hint=N_("personal data: erased on request"),
        ),
    ],
)
def new_field(req: Request, ctx: Context) -> Reply:
    choices = [c for c in req.args.get("choices", "").replace(",", "|").split("|") if c.strip()]
    definition = custom_fields.define_field(
        ctx.uow,
        FieldEntity(req.args["entity"]),
        req.args["key"],
        FieldType(req.args["type"]),
        label=req.args.get("label"),
        choices=choices or None,
        required=req.args.get("required") == "yes",
        personal=req.args.get("personal") == "yes",
    )
    key = definition.key
    where = {
        FieldEntity.CUSTOMER: _("/customer new <name> {key}=… or /customer edit <customer> {key}=…", key=key),
        FieldEntity.DEAL: _("/deal new <customer> <title> {key}=… or /deal edit <id> {key}=…", key=key),
        FieldEntity.TICKET: _("/ticket new <customer> <subject> {key}=… or /ticket edit <id> {key}=…", key=key),
    }[definition.entity]
    personal = _(", personal") if definition.personal else ""
    kind = f"{definition.type}{personal}"
    text = {
        FieldEntity.CUSTOMER: _(
            "Customer field {key} ({kind}) added. Set it with {where}.", key=repr(key), kind=kind, where=where
        ),
        FieldEntity.DEAL: _(
            "Deal field {key} ({kind}) added. Set it with {where}.", key=repr(key), kind=kind, where=where
        ),
        FieldEntity.TICKET: _(
            "Ticket field {key} ({kind}) added. Set it with {where}.", key=repr(key), kind=kind, where=where
        ),
    }[definition.entity]
    if definition.required:
        text += _(" It is required: every new one must have it.")
    return Reply(text=text, tone=Tone.SUCCESS)


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
