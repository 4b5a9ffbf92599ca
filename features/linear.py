"""PCA and ridge as plain arrays: fitted with scikit-learn, applied with numpy.

A saved model must not be a pickle of scikit-learn objects (a new scikit-learn, or a refactor,
would make it unreadable). What a fitted PCA or ridge applies is a few arrays, so that is what the
feature path keeps, in training and in serving alike: the same arrays, the same numpy operations
as scikit-learn's own ``transform`` / ``predict`` (so the numbers are bit-identical to theirs),
and a saved model holds them in ``.npz`` files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge


@dataclass
class Reducer:
    """A fitted PCA (no whitening): scores = (X - mean) @ components.T."""

    mean: np.ndarray  # (d,)
    components: np.ndarray  # (n_components, d)

    @classmethod
    def fit(cls, vectors: np.ndarray, n_components: int) -> Reducer:
        pca = PCA(n_components=n_components, random_state=0).fit(vectors)
        return cls(pca.mean_, pca.components_)

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        # scikit-learn's order of operations (project, then subtract the projected mean): same bits.
        out = np.asarray(vectors, dtype=np.float64) @ self.components.T
        out -= self.mean.reshape(1, -1) @ self.components.T
        return out


@dataclass
class LinearModel:
    """A fitted ridge: prediction = X @ coef + intercept."""

    coef: np.ndarray  # (d,)
    intercept: float

    @classmethod
    def fit_ridge(cls, X: np.ndarray, y: np.ndarray, alpha: float) -> LinearModel:
        ridge = Ridge(alpha=alpha, solver="cholesky").fit(X, y)
        return cls(ridge.coef_, float(ridge.intercept_))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) @ self.coef + self.intercept
