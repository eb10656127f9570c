"""The ``chatcrm`` command in the company's language (CHATCRM_LANGUAGE), argparse's own words included.

``bot.cli`` imports this only when CHATCRM_LANGUAGE is not English, so an English ``chatcrm --help`` and
``chatcrm mine`` on a file start as cheaply as before (tests/test_startup.py).

argparse writes its headings, usage line and errors ("usage:", "options", "invalid choice: …") through
the ``gettext`` functions it bound as module globals at import (``argparse._``, ``argparse.ngettext``),
in gettext's global domain, which would need compiled .mo files and the process's locale variables.
``speak`` points those two names at our catalog instead, for this process (the CLI's own): the
messages below are argparse's (Python 3.11 and later), marked so ``make catalogs`` extracts them;
their ``%(name)s`` placeholders are argparse's, filled by argparse after the lookup.
"""

from __future__ import annotations

import argparse

from crm_core import i18n
from crm_core.i18n import N_

# argparse's user-facing messages (what a person running chatcrm can see); the rest are programming errors.
ARGPARSE_MESSAGES = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("%(prog)s: error: %(message)s\n"),
    N_("unrecognized arguments: %s"),
    N_("the following arguments are required: %s"),
    N_("one of the arguments %s is required"),
    N_("not allowed with argument %s"),
    N_("ignored explicit argument %r"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("unknown parser %(parser_name)r (choices: %(choices)s)"),
    N_("can't open '%(filename)s': %(error)s"),
    N_("unexpected option string: %s"),
)


# argparse's own gettext functions, put back when the CLI speaks English again (in-process callers: tests).
_ARGPARSE_OWN = (argparse._, argparse.ngettext)  # type: ignore[attr-defined]


def _argparse_ngettext(singular: str, plural: str, n: int) -> str:
    # argparse's one plural ("expected %s argument(s)"), filled by argparse itself.
    return i18n.ngettext(singular, plural, n)


def _marked_plurals() -> None:
    """argparse's plural, marked for extraction (never called)."""
    i18n.ngettext("expected %s argument", "expected %s arguments", 2)


def speak(language: str) -> None:
    """Make ``language`` the CLI's for the rest of the process (crm_core.i18n's default) and have
    argparse say its words in it."""
    i18n.set_default_language(language)
    if i18n.default_language() == i18n.DEFAULT_LANGUAGE:
        argparse._, argparse.ngettext = _ARGPARSE_OWN  # type: ignore[attr-defined]
        return
    argparse._ = i18n._  # type: ignore[attr-defined]
    argparse.ngettext = _argparse_ngettext  # type: ignore[attr-defined]
