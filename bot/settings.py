"""Settings read once from the environment by the composition root (bot.bootstrap)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from crm_core import i18n
from crm_core.actor import EditScope
from crm_core.db import DEFAULT_DATABASE_URL, normalize_url
from crm_core.errors import SetupError
from crm_core.i18n import _
from crm_core.models import STAFF_ROLES, Role
from crm_core.services import sla
from crm_core.services.users import PlatformId, parse_admins


class SettingsError(SetupError):
    """A configuration value is wrong; the message names the variable."""


def env_number(env: Mapping[str, str], name: str, default: float) -> float:
    """A numeric setting (seconds, counts); SettingsError naming the variable if it is not a number."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(_("{setting} is not a number", setting=f"{name}={raw!r}")) from None


def _role(value: str | None, name: str) -> Role | None:
    if not value or value.strip().lower() in ("", "none"):
        return None
    try:
        role = Role(value.strip().lower())
    except ValueError:
        role = None
    if role not in STAFF_ROLES:
        known = ", ".join(r.value for r in STAFF_ROLES)
        raise SettingsError(
            _("{setting} is not a role ({roles} or none)", setting=f"{name}={value!r}", roles=known)
        ) from None
    return role


def _plugin_modules(raw: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    for name in names:
        if not all(piece.isidentifier() for piece in name.split(".")):
            raise SettingsError(
                "CHATCRM_PLUGINS: "
                + _("{name} is not a module path (write e.g. mycompany.crm_plugin)", name=repr(name))
            )
    return names


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(_("{setting}: write 1 or 0", setting=f"{name}={raw!r}"))


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    admins: tuple[PlatformId, ...] = ()
    # The role of someone the CRM does not know (None: only /help).
    unknown_role: Role | None = None
    # Longest command line accepted from chat.
    max_input_chars: int = 4000
    currency: str = "EUR"
    # CHATCRM_EDIT_SCOPE: reps change only their own and unassigned records (own), or everything (all).
    edit_scope: EditScope = EditScope.OWN
    log_level: str = "INFO"
    # CHATCRM_TEMPLATES_DIR: a template folder used instead of the built-in one.
    templates_dir: str | None = None
    # CHATCRM_PLUGINS: modules to load as plugins besides the installed (entry-point) ones.
    plugins: tuple[str, ...] = ()
    # CHATCRM_WEBHOOK_ALLOW_PRIVATE=1: webhook URLs may be http:// and reach private, loopback and
    # link-local addresses (tests, on-premises receivers); otherwise https to public addresses only.
    webhook_allow_private: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)
    # CHATCRM_SECRET_KEY: encrypts backups and wraps customers' data keys (crm_core.secret_key, crm_core.customer_keys).
    secret_key: str | None = field(default=None, repr=False)
    # CHATCRM_BACKUP_DIR: where the nightly backup writes (no nightly backup when unset).
    backup_dir: str | None = None
    # CHATCRM_BACKUP_KEEP: how many nightly backups are kept.
    backup_keep: int = 14
    # CHATCRM_LANGUAGE: the language of users who chose none and whose chat app gives no hint.
    language: str = "en"
    # CHATCRM_CHAT_EXPORT_MAX_ROWS: the most customers /export segment puts in a file a chat carries
    # (50,000 rows of xlsx stay well under Telegram's 50 MB; `chatcrm export` has no cap).
    chat_export_max_rows: int = 50_000

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        try:
            admins = tuple(parse_admins(env.get("CHATCRM_ADMINS", "")))
        except Exception as exc:  # noqa: BLE001 - re-raised with the variable's name
            raise SettingsError(f"CHATCRM_ADMINS: {exc}") from None
        try:
            sla.targets_from_env(env)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        currency = env.get("CHATCRM_CURRENCY", "EUR").strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise SettingsError(
                _("{setting} is not a three-letter currency code", setting=f"CHATCRM_CURRENCY={currency!r}")
            )
        backup_keep = env_number(env, "CHATCRM_BACKUP_KEEP", 14)
        if backup_keep < 1 or backup_keep != int(backup_keep):
            raise SettingsError(
                _(
                    "{setting} is not a whole number of 1 or more",
                    setting=f"CHATCRM_BACKUP_KEEP={env.get('CHATCRM_BACKUP_KEEP')!r}",
                )
            )
        max_rows = env_number(env, "CHATCRM_CHAT_EXPORT_MAX_ROWS", 50_000)
        if max_rows < 1 or max_rows != int(max_rows):
            raise SettingsError(
                _(
                    "{setting} is not a whole number of 1 or more",
                    setting=f"CHATCRM_CHAT_EXPORT_MAX_ROWS={env.get('CHATCRM_CHAT_EXPORT_MAX_ROWS')!r}",
                )
            )
        raw_scope = env.get("CHATCRM_EDIT_SCOPE", "own").strip().lower()
        try:
            edit_scope = EditScope(raw_scope)
        except ValueError:
            raise SettingsError(_("{setting} is not own or all", setting=f"CHATCRM_EDIT_SCOPE={raw_scope!r}")) from None
        language = (env.get("CHATCRM_LANGUAGE") or "en").strip()
        if i18n.supported(language) is None:
            raise SettingsError(
                _(
                    "{setting} is not one of {languages}",
                    setting=f"CHATCRM_LANGUAGE={language!r}",
                    languages=", ".join(i18n.LANGUAGES),
                )
            )
        return cls(
            language=i18n.supported(language) or "en",
            database_url=normalize_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL),
            admins=admins,
            unknown_role=_role(env.get("CHATCRM_UNKNOWN_ROLE"), "CHATCRM_UNKNOWN_ROLE"),
            currency=currency,
            edit_scope=edit_scope,
            log_level=env.get("CHATCRM_LOG_LEVEL", "INFO").upper(),
            plugins=_plugin_modules(env.get("CHATCRM_PLUGINS", "")),
            templates_dir=env.get("CHATCRM_TEMPLATES_DIR") or None,
            webhook_allow_private=_flag(env, "CHATCRM_WEBHOOK_ALLOW_PRIVATE"),
            # Every variable: platform plugins read their own (SLACK_*, TELEGRAM_*, a new platform's).
            extra=dict(env),
            secret_key=env.get("CHATCRM_SECRET_KEY") or None,
            backup_dir=env.get("CHATCRM_BACKUP_DIR") or None,
            backup_keep=int(backup_keep),
            chat_export_max_rows=int(max_rows),
        )
