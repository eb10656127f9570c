"""Exceptions raised by the miners."""

from __future__ import annotations


class NotFittedError(ValueError, AttributeError):
    """A learned attribute (``itemsets_``, ``rules_``) was read before ``fit``.

    Subclasses AttributeError so that ``hasattr(model, "rules_")`` is False before fitting,
    and ValueError as scikit-learn's exception of the same name does.
    """
