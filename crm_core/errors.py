"""Errors the CRM core raises for the caller to show a user.

``CrmError`` and its subclasses carry a message meant for a person; anything else that escapes
a service is a bug and is reported with a reference by the bot layer.
"""

from __future__ import annotations


class CrmError(Exception):
    """A problem the user can fix; ``str(error)`` is a short sentence for them."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(CrmError):
    """The thing asked for does not exist."""


class ValidationError(CrmError):
    """Input that the CRM refuses; ``field`` names the offending input when there is one."""

    def __init__(self, message: str, field: str | None = None, errors: dict[str, str] | None = None):
        super().__init__(message)
        self.field = field
        # Every invalid field with its message, so a form can show them all at once.
        self.errors = dict(errors or ({field: message} if field else {}))


class Conflict(CrmError):
    """The change clashes with the current state (e.g. a duplicate email)."""


class Forbidden(CrmError):
    """The actor's role does not allow this."""


class SetupError(Exception):
    """chatcrm cannot start as configured (the database is unreachable or behind, a setting is wrong).

    Not a ``CrmError``: it is for the operator at a terminal, and ``chatcrm`` prints it as one line
    without a traceback. Kept in this module, which imports nothing, so the command line can catch it
    without loading SQLAlchemy first.
    """
