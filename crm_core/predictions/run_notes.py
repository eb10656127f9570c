"""What a churn model run found, said in the reader's language.

A run keeps its outcome and figures in ``ModelRun.metrics`` (``outcome``, ``min_auc``, ``scored``,
``min_examples``, ``horizon_days``); its note is said from them when it is read, so a reader whose
language is not the trainer's (the nightly run trains in the company's) reads it in theirs. Kept
apart from ``churn`` so that showing a run never imports scikit-learn.
"""

from __future__ import annotations

from crm_core import history, i18n
from crm_core.i18n import _, ngettext
from crm_core.models import ModelRun

TOO_LITTLE_HISTORY, PUBLISHED, NOT_PUBLISHED = "too_little_history", "published", "not_published"


def _why(source: str | None, horizon_days: int) -> str:
    if source == history.NEWEST_ORDER:
        return _("the newest order's day; no orders in the last {days} days", days=horizon_days)
    return _("the day asked for")


def describe(run: ModelRun) -> str:
    """What ``run`` found, in the current language. Runs from before the figures were kept say their
    stored note."""
    metrics = run.metrics or {}
    outcome = metrics.get("outcome")
    if outcome is None:
        return run.note or ""
    prefix = ""
    if run.as_of is not None and run.as_of_source not in (None, history.NOW):
        prefix = _(
            "As of {day} ({why}): ",
            day=i18n.display_date(history.day_of(run.as_of)),
            why=_why(run.as_of_source, int(metrics.get("horizon_days", 90))),
        )
    if outcome == TOO_LITTLE_HISTORY:
        return prefix + _(
            "not enough history to train and test honestly: need {count}+ customers with orders before {day} "
            "and both outcomes in each period",
            count=metrics.get("min_examples", 0),
            day=i18n.display_date(run.train_cutoff),
        )
    auc = i18n.format_number(run.roc_auc or 0.0, digits=3)
    min_auc = i18n.format_number(metrics.get("min_auc", 0.0))
    if outcome == PUBLISHED:
        scored = int(metrics.get("scored", 0))
        return prefix + ngettext(
            "holdout ROC AUC {auc} ≥ {min_auc}: published; scored {count} customer",
            "holdout ROC AUC {auc} ≥ {min_auc}: published; scored {count} customers",
            scored,
            auc=auc,
            min_auc=min_auc,
            count=scored,
        )
    return prefix + _("holdout ROC AUC {auc} is below {min_auc}: not published", auc=auc, min_auc=min_auc)
