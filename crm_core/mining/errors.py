"""Exceptions raised by the miners."""

from __future__ import annotations


class NotFittedError(ValueError, AttributeError):
    """A learned attribute (``itemsets_``, ``rules_``) was read before ``fit``.

    Subclasses AttributeError so that ``hasattr(model, "rules_")`` is False before fitting,
    and ValueError as scikit-learn's exception of the same name does.
    """


class NoBaskets(ValueError):
    """There is nothing to mine (an empty basket file, no orders); the CLI says so in its language."""

    def __init__(self) -> None:
        super().__init__("no baskets: need at least one basket to mine")
