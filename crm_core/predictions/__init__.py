"""Predictions about customers with scikit-learn: churn risk (with an honest time-based holdout)
and RFM segments. ``refresh_scores`` runs both and stores the results."""
