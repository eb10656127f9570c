"""RFM segments: recency, frequency and monetary value scored 1–5 by quintile, named by pattern."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm_core.i18n import pgettext

if TYPE_CHECKING:
    import numpy as np


def quintile_scores(values: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """1–5 by rank; ties share a score (average rank), so equal customers get equal scores."""
    # numpy is imported here, not with the module: the customer card and segment filters import this
    # module only for the segment names, in every process that builds the app (chatcrm worker,
    # console, import …), and numpy cost those a tenth of a second or more at each start.
    import numpy as np

    if len(values) == 0:
        return np.zeros(0, dtype=int)
    order = values if higher_is_better else -values
    ranks = _average_ranks(order)
    return np.clip(np.ceil(ranks / len(values) * 5), 1, 5).astype(int)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    import numpy as np

    sorter = np.argsort(values, kind="mergesort")
    sorted_values = values[sorter]
    ranks = np.empty(len(values))
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[sorter[start:end]] = (start + 1 + end) / 2
            start = end
    return ranks


def segment(r: int, f: int, m: int) -> str:
    """Common RFM segment names (a marketing convention; see README)."""
    if r >= 4 and f >= 4:
        return "champions"
    if f >= 4:
        return "loyal"
    if r >= 4 and f <= 1:
        return "new"
    if r >= 4:
        return "promising"
    if r <= 2 and f >= 3:
        return "at risk"
    if r <= 2 and m >= 4:
        return "cannot lose"
    if r <= 2:
        return "hibernating"
    return "needs attention"


def segment_label(name: str) -> str:
    """A segment as the reader sees it ("at risk" / "流失风险"); filters and the API keep the English name."""
    return {
        "champions": pgettext("RFM segment", "champions"),
        "loyal": pgettext("RFM segment", "loyal"),
        "new": pgettext("RFM segment", "new"),
        "promising": pgettext("RFM segment", "promising"),
        "at risk": pgettext("RFM segment", "at risk"),
        "cannot lose": pgettext("RFM segment", "cannot lose"),
        "hibernating": pgettext("RFM segment", "hibernating"),
        "needs attention": pgettext("RFM segment", "needs attention"),
    }.get(name, name)
