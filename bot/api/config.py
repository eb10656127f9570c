"""The API's settings, read from ``Settings.extra`` (the environment) once when the API is built.

- ``CHATCRM_API_RATE`` (default 20): requests per second per token, sustained;
- ``CHATCRM_API_BURST`` (default 40): requests a token may make at once after a quiet spell;
- ``CHATCRM_API_MAX_BODY`` (default 1 MB) and ``CHATCRM_API_MAX_BULK_BODY`` (10 MB, bulk endpoints).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import Settings, SettingsError, env_number
from crm_core.i18n import _

MB = 1024 * 1024


@dataclass(frozen=True)
class ApiConfig:
    rate: float = 20.0
    burst: float = 40.0
    max_body: int = MB
    max_bulk_body: int = 10 * MB

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiConfig:
        env = settings.extra
        config = cls(
            rate=env_number(env, "CHATCRM_API_RATE", cls.rate),
            burst=env_number(env, "CHATCRM_API_BURST", cls.burst),
            max_body=int(env_number(env, "CHATCRM_API_MAX_BODY", cls.max_body)),
            max_bulk_body=int(env_number(env, "CHATCRM_API_MAX_BULK_BODY", cls.max_bulk_body)),
        )
        if config.rate <= 0 or config.burst < 1:
            raise SettingsError(_("CHATCRM_API_RATE must be above 0 and CHATCRM_API_BURST at least 1"))
        return config
