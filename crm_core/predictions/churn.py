"""The churn-risk model: probability that a customer places no order in the next 90 days.

Evaluation is time-based, never a random split: the model is trained on behaviour up to one
cut-off with labels from the 90 days after it, and tested on behaviour up to a later cut-off with
labels from the 90 days after that (which end now, or at the run's "as of" end: a day an admin
names, or the newest order's day when nobody ordered in the last 90 days, crm_core.history). Logistic regression is the baseline; a
gradient-boosted tree ensemble replaces it only if it does better on that holdout. ROC AUC and a
calibration table are stored with the run; a model below ``MIN_AUC`` is recorded but not
published, so the card never shows risk from a model no better than a coin toss. The published
model is then refitted on the most recent labelled window with the same settings and scores
every customer as of that end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from crm_core import history
from crm_core.clock import utcnow
from crm_core.models import ModelRun
from crm_core.predictions.features import FEATURES, Snapshot, snapshot
from crm_core.predictions.run_notes import NOT_PUBLISHED, PUBLISHED, TOO_LITTLE_HISTORY, describe
from crm_core.uow import UnitOfWork

HORIZON = timedelta(days=90)
MIN_AUC = 0.6
MIN_EXAMPLES = 30


class _Classifier(Protocol):
    """What churn needs of a scikit-learn classifier (sklearn ships no type hints)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Any: ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


def _candidates() -> dict[str, _Classifier]:
    # scikit-learn (and SciPy under it) costs seconds to import: only once there is a model to train,
    # not for a run that finds too little history (a small or new CRM, the demo's first minutes).
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "gradient-boosted trees": HistGradientBoostingClassifier(
            max_iter=150, learning_rate=0.05, max_leaf_nodes=15, l2_regularization=1.0, random_state=0
        ),
    }


@dataclass
class ChurnResult:
    run: ModelRun
    # customer id -> probability of churn, only when the run was published.
    risks: dict[int, float]


def _usable(shot: Snapshot) -> bool:
    return shot.y is not None and len(shot.y) >= MIN_EXAMPLES and 0 < shot.y.sum() < len(shot.y)


def train(
    uow: UnitOfWork, now: datetime | None = None, min_auc: float = MIN_AUC, as_of: date | None = None
) -> ChurnResult:
    """Train, evaluate and (if good enough) score as of ``as_of`` (a day, inclusive), now, or the newest order's day."""
    started = time.perf_counter()
    now = now or utcnow()
    session = uow.session
    end = history.resolve(session, HORIZON.days, now, as_of)
    test_cutoff = end.end - HORIZON
    train_cutoff = test_cutoff - HORIZON
    train_shot = snapshot(session, train_cutoff, HORIZON)
    test_shot = snapshot(session, test_cutoff, HORIZON)
    run = ModelRun(
        kind="churn",
        trained_at=now,
        train_cutoff=train_cutoff,
        test_cutoff=test_cutoff,
        train_size=len(train_shot.customer_ids),
        test_size=len(test_shot.customer_ids),
        metrics={},
        as_of=end.end,
        as_of_source=end.source,
    )
    session.add(run)
    if not (_usable(train_shot) and _usable(test_shot)):
        run.metrics = {
            "outcome": TOO_LITTLE_HISTORY,
            "min_examples": MIN_EXAMPLES,
            "horizon_days": HORIZON.days,
        }
        run.note = describe(run)
        run.duration_ms = int((time.perf_counter() - started) * 1000)
        session.flush()
        return ChurnResult(run, {})
    assert train_shot.y is not None and test_shot.y is not None, "_usable checked both are labelled"
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss, roc_auc_score

    scores: dict[str, float] = {}
    predictions: dict[str, np.ndarray] = {}
    for name, model in _candidates().items():
        model.fit(train_shot.X, train_shot.y)
        predicted = model.predict_proba(test_shot.X)[:, 1]
        scores[name] = float(roc_auc_score(test_shot.y, predicted))
        predictions[name] = predicted
    # The ensemble must beat the baseline on the holdout to be chosen.
    best = max(scores, key=lambda name: (scores[name], name == "logistic regression"))
    predicted = predictions[best]
    observed, mean_predicted = calibration_curve(test_shot.y, predicted, n_bins=5, strategy="quantile")
    # The same quantile bins calibration_curve uses, to say how many customers each row stands for.
    edges = np.percentile(predicted, np.linspace(0, 100, 6))
    counts = np.bincount(np.searchsorted(edges[1:-1], predicted), minlength=5)
    counts = counts[counts > 0]
    run.algorithm = best
    run.roc_auc = round(scores[best], 4)
    run.metrics = {
        "brier": round(float(brier_score_loss(test_shot.y, predicted)), 4),
        "churn_rate_test": round(float(test_shot.y.mean()), 4),
        "calibration": [
            [round(float(p), 3), round(float(o), 3), int(c)]
            for p, o, c in zip(mean_predicted, observed, counts, strict=False)
        ],
        "candidates": {name: round(auc, 4) for name, auc in scores.items()},
        "features": list(FEATURES),
        "min_auc": min_auc,
        "horizon_days": HORIZON.days,
    }
    run.published = run.roc_auc >= min_auc
    risks: dict[int, float] = {}
    if run.published:
        final = _candidates()[best]
        final.fit(test_shot.X, test_shot.y)
        current = snapshot(session, end.end)
        if len(current.customer_ids):
            probabilities = final.predict_proba(current.X)[:, 1]
            risks = {int(cid): round(float(p), 4) for cid, p in zip(current.customer_ids, probabilities, strict=True)}
        run.metrics = {**run.metrics, "scored": len(risks)}
    run.metrics = {**run.metrics, "outcome": PUBLISHED if run.published else NOT_PUBLISHED}
    # Kept in the trainer's language for logs and the CLI; readers get ``describe(run)`` in theirs.
    run.note = describe(run)
    run.duration_ms = int((time.perf_counter() - started) * 1000)
    session.flush()
    return ChurnResult(run, risks)
