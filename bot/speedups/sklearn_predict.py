"""Two per-message costs of the character n-gram ensemble's scikit-learn pipeline (bot/nlu/intent_ensemble.py),
measured on one message: 4.5 ms in ``LogisticRegression.decision_function`` and 0.9 ms of joblib set-up in
``FeatureUnion.transform``, of ~6 ms for the whole component.

- ``decision_function`` computes ``X @ coef_.T``; ``coef_.T`` is a Fortran-ordered view, and scipy's sparse
  × dense product first copies it into C order (ravel): 28 × 45,000 floats, 10 MB, on every call. The
  C-ordered transpose is kept per estimator (and made again if ``coef_`` is replaced, e.g. by a refit), so
  scipy multiplies the very same numbers in the same order without the copy.
- ``FeatureUnion.transform`` with ``n_jobs`` None or 1 builds a joblib ``Parallel`` to run its transformers
  one after the other; they are run one after the other directly, in the same order.
"""
from __future__ import annotations

import weakref
from typing import Any, Tuple

import numpy as np

_transposed: "weakref.WeakKeyDictionary[Any, Tuple[np.ndarray, np.ndarray]]" = weakref.WeakKeyDictionary()


def _c_ordered_coef_t(estimator: Any) -> np.ndarray:
    coef = estimator.coef_
    cached = _transposed.get(estimator)
    if cached is None or cached[0] is not coef:
        cached = (coef, np.ascontiguousarray(coef.T))
        _transposed[estimator] = cached
    return cached[1]


def install() -> bool:
    """Patch scikit-learn 1.1 (the pinned version, whose method bodies these copy); False for another one."""
    import sklearn

    if not sklearn.__version__.startswith("1.1."):
        return False
    from scipy import sparse
    from sklearn import pipeline
    from sklearn.linear_model._base import LinearClassifierMixin
    from sklearn.utils.extmath import safe_sparse_dot
    from sklearn.utils.validation import check_is_fitted

    original_decision = LinearClassifierMixin.decision_function

    def decision_function(self: Any, X: Any) -> np.ndarray:
        coef = getattr(self, "coef_", None)
        if not (sparse.issparse(X) and isinstance(coef, np.ndarray) and coef.ndim == 2):
            return original_decision(self, X)
        # sklearn 1.1's body, with the C-ordered transpose in place of coef_.T
        check_is_fitted(self)
        X = self._validate_data(X, accept_sparse="csr", reset=False)
        scores = safe_sparse_dot(X, _c_ordered_coef_t(self), dense_output=True) + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    original_transform = pipeline.FeatureUnion.transform

    def transform(self: Any, X: Any) -> Any:
        if self.n_jobs not in (None, 1):
            return original_transform(self, X)
        Xs = [pipeline._transform_one(trans, X, None, weight) for _name, trans, weight in self._iter()]
        if not Xs:
            return np.zeros((X.shape[0], 0))
        return self._hstack(Xs)

    LinearClassifierMixin.decision_function = decision_function
    pipeline.FeatureUnion.transform = transform
    return True
