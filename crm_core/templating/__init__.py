"""Message templates: Jinja2 files per kind, format and language, admin overrides, safe rendering.

``render_message(session, kind, platform, language, context)`` is what features call; the
result's ``payload()`` goes into the outbox. See ``catalog`` for how a variant is chosen and
``sandbox`` for what a template may do.
"""

from crm_core.templating.catalog import (
    DEFAULT_LANGUAGE,
    TEMPLATES_ENV,
    MessageRenderer,
    Rendered,
    Variant,
    current_variant,
    has_built_in,
    kinds,
    language_chain,
    languages,
    list_overrides,
    render_message,
    reset_override,
    sample_context,
    set_override,
    templates_dir,
    validate_override,
    variant_label,
)
from crm_core.templating.sandbox import FORMATS, TemplateRefused, escape_mrkdwn

__all__ = [
    "DEFAULT_LANGUAGE",
    "MessageRenderer",
    "TEMPLATES_ENV",
    "Rendered",
    "Variant",
    "current_variant",
    "has_built_in",
    "kinds",
    "language_chain",
    "languages",
    "list_overrides",
    "render_message",
    "reset_override",
    "sample_context",
    "set_override",
    "templates_dir",
    "validate_override",
    "variant_label",
    "FORMATS",
    "TemplateRefused",
    "escape_mrkdwn",
]
