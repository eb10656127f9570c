"""Admin commands: grant roles (/role), define custom fields (/field), see yourself (/whoami)."""

from __future__ import annotations

from bot.args import Kind, arg, opt
from bot.context import Context
from bot.hookspecs import hookimpl
from bot.messages import Field, Item, Reply, Request, Section, Tone
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core.models import FieldEntity, FieldType, Identity
from crm_core.services import custom_fields, users

group = CommandGroup()
ROLES = ("admin", "manager", "sales", "support", "viewer", "none")


@group.command(
    "role",
    summary="Give a user a role (admin only); a chat identity like slack:U123 creates the user",
    permission=Permission.USERS_MANAGE,
    params=[
        arg("user", label="User", hint="name, email, #id, slack:U123 or telegram:456"),
        arg("role", Kind.CHOICE, choices=ROLES, label="Role"),
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
    return Reply(text=f"{user.name} (#{user.id}) is now {role or 'without a role'}.", tone=Tone.SUCCESS)


@group.command("whoami", summary="Your CRM user, role and linked chat accounts", permission=Permission.ACCOUNT)
def whoami(req: Request, ctx: Context) -> Reply:
    caller = ctx.caller
    if caller.user_id is None:
        return Reply(
            text=f"The CRM does not know you yet ({req.origin.platform}:{req.origin.user_external_id}). "
            "Ask an admin to give you a role.",
            private=True,
        )
    identities = ctx.uow.session.query(Identity).filter(Identity.user_id == caller.user_id).all()
    return Reply(
        title=caller.name,
        fields=(
            Field("Role", caller.role or "none"),
            Field("Timezone", caller.timezone),
            Field("Accounts", ", ".join(f"{i.platform}:{i.external_id}" for i in identities) or "—", short=False),
        ),
        private=True,
    )


@group.command(
    "field list",
    summary="List custom fields",
    permission=Permission.CUSTOMERS_READ,
)
def list_fields(req: Request, ctx: Context) -> Reply:
    sections = []
    for entity in FieldEntity:
        defs = custom_fields.definitions(ctx.uow, entity)
        sections.append(
            Section(
                title=f"{entity.capitalize()} fields",
                items=tuple(
                    Item(
                        text=f"{d.key} ({d.type})"
                        + (" · required" if d.required else "")
                        + (" · personal" if d.personal else ""),
                        detail=d.label + (f" · {', '.join(d.choices)}" if d.choices else ""),
                    )
                    for d in defs
                ),
                empty="None yet.",
            )
        )
    return Reply(title="Custom fields", sections=tuple(sections), footer="Admins add fields with /field new.")


@group.command(
    "field new",
    summary="Define a custom field (admin only)",
    permission=Permission.FIELDS_MANAGE,
    params=[
        arg("entity", Kind.CHOICE, choices=tuple(e.value for e in FieldEntity)),
        arg("key", label="Key", hint="lower_case_name"),
        arg("type", Kind.CHOICE, choices=tuple(t.value for t in FieldType)),
        opt("label", label="Label", max_length=100),
        opt("choices", label="Choices", hint="a|b|c (choice fields)"),
        opt("required", Kind.CHOICE, choices=("yes", "no")),
        opt("personal", Kind.CHOICE, choices=("yes", "no"), hint="personal data: erased on request"),
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
        FieldEntity.CUSTOMER: f"/customer new <name> {key}=… or /customer edit <customer> {key}=…",
        FieldEntity.DEAL: f"/deal new <customer> <title> {key}=… or /deal edit <id> {key}=…",
        FieldEntity.TICKET: f"/ticket new <customer> <subject> {key}=… or /ticket edit <id> {key}=…",
    }[definition.entity]
    required = " It is required: every new one must have it." if definition.required else ""
    return Reply(
        text=f"{definition.entity.capitalize()} field {key!r} ({definition.type}"
        f"{', personal' if definition.personal else ''}) added. Set it with {where}.{required}",
        tone=Tone.SUCCESS,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
