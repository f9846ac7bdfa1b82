"""The linear head on embeddings: a standardised L2 logistic regression, the same for every
method chapters 4 and 10 compare (and for the real-vs-synthetic probe)."""

from __future__ import annotations

from idc_utils.core.threads import one_blas_thread


def linear_head(C: float = 0.5, seed: int = 0):
    """An unfitted standardised L2 logistic regression: the linear head on embeddings that
    chapters 4 and 10 compare methods with (and the real-vs-synthetic probe)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=C, max_iter=3000, random_state=seed)
    )


def fit_head(X, y, sample_weight=None, seed: int = 0, C: float = 0.5):
    """The linear head (:func:`linear_head`) fitted on ``(X, y)``."""
    head = linear_head(C, seed)
    with one_blas_thread():
        head.fit(X, y, logisticregression__sample_weight=sample_weight)
    return head
