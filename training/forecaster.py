"""LightGBM forecaster: a point forecast of launch units plus a conformalised P10-P90 band.

Three point losses are compared on an out-of-time calibration fold (``LOSSES``); the same fold
sets a total-bias correction (WAPE-optimal models under-forecast totals) and the conformal widening
of the quantile band, so P10-P90 covers ~80% of launches it has not seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.assemble import BASE_MARGIN

LOSSES = ("log_l2", "log_l1", "tweedie")
INTERVAL = 0.8  # P10-P90

BASE_PARAMS = {
    "learning_rate": 0.03,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "seed": 7,
    "deterministic": True,
    "force_col_wise": True,
}


def _objective(loss: str) -> dict:
    return {
        "log_l2": {"objective": "regression"},
        "log_l1": {"objective": "regression_l1"},
        "tweedie": {"objective": "tweedie", "tweedie_variance_power": 1.3},
    }[loss]


def _target(loss: str, y: np.ndarray) -> np.ndarray:
    return y if loss == "tweedie" else np.log1p(y)


def _inverse(loss: str, raw: np.ndarray) -> np.ndarray:
    """Booster output (raw score incl. base margin) back to units."""
    return np.exp(raw) if loss == "tweedie" else np.expm1(raw)


def base_margin(loss: str, X: pd.DataFrame) -> np.ndarray:
    """Where boosting starts: the embedding read-out's log-sales forecast (0 when absent).

    Tweedie's log link models log(units) rather than log(1 + units); the shift is small."""
    if BASE_MARGIN not in X:
        return np.zeros(len(X))
    m = X[BASE_MARGIN].to_numpy(dtype=float)
    return np.log(np.clip(np.expm1(m), 0.1, None)) if loss == "tweedie" else m


def _train(params: dict, X: pd.DataFrame, y: np.ndarray, init: np.ndarray, rounds: int, valid=None) -> lgb.Booster:
    data = lgb.Dataset(X, y, init_score=init, free_raw_data=False)
    if valid is None:
        return lgb.train(params, data, num_boost_round=rounds)
    v = lgb.Dataset(valid[0], valid[1], init_score=valid[2], reference=data)
    return lgb.train(
        params, data, num_boost_round=rounds, valid_sets=[v], callbacks=[lgb.early_stopping(100, verbose=False)]
    )


@dataclass
class Forecaster:
    loss: str
    threads: int = 2
    rounds: dict[str, int] = field(default_factory=dict)  # boosting rounds per model, set on calibration
    scale: float = 1.0  # total-bias correction
    widen: float = 0.0  # conformal widening of the log-space band
    boosters: dict[str, lgb.Booster] = field(default_factory=dict)

    def _params(self, name: str) -> dict:
        params = {**BASE_PARAMS, "num_threads": self.threads}
        if name == "point":
            return {**params, **_objective(self.loss)}
        alpha = (1 - INTERVAL) / 2 if name == "lower" else 1 - (1 - INTERVAL) / 2
        return {**params, "objective": "quantile", "alpha": alpha}

    def calibrate(self, X_fit: pd.DataFrame, y_fit: np.ndarray, X_cal: pd.DataFrame, y_cal: np.ndarray) -> Forecaster:
        """Fit on one period, then set rounds, bias scale and band width on the next (out of time)."""
        self.boosters = {}
        for name in ("point", "lower", "upper"):
            loss = self.loss if name == "point" else "log_l2"
            self.boosters[name] = _train(
                self._params(name), X_fit, _target(loss, y_fit), base_margin(loss, X_fit), 3000,
                (X_cal, _target(loss, y_cal), base_margin(loss, X_cal)),
            )
        self.rounds = {name: max(1, b.best_iteration or b.current_iteration()) for name, b in self.boosters.items()}
        raw = self._raw(X_cal)
        self.scale = float(np.clip(y_cal.sum() / max(raw["point"].sum(), 1e-9), 0.5, 2.0))
        # Conformalised quantile regression: widen the band by the score quantile on held-out launches.
        lo, hi = raw["lower"], raw["upper"]
        scores = np.maximum(np.log1p(lo) - np.log1p(y_cal), np.log1p(y_cal) - np.log1p(hi))
        level = min(1.0, INTERVAL * (1 + 1 / len(scores)))
        self.widen = float(np.quantile(scores, level))
        return self

    def refit(self, X: pd.DataFrame, y: np.ndarray) -> Forecaster:
        """Refit every booster on more data with the calibrated settings (rounds grown with the data)."""
        grow = 1.1
        self.boosters = {}
        for name, r in self.rounds.items():
            loss = self.loss if name == "point" else "log_l2"
            self.boosters[name] = _train(self._params(name), X, _target(loss, y), base_margin(loss, X), max(1, int(r * grow)))
        return self

    def _raw(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each booster's forecast in units, before bias scale and conformal widening."""
        out = {}
        for name, b in self.boosters.items():
            loss = self.loss if name == "point" else "log_l2"
            score = b.predict(X, num_iteration=self.rounds.get(name) if b.best_iteration else None, raw_score=True)
            out[name] = np.clip(_inverse(loss, score + base_margin(loss, X)), 0, None)
        return out

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        raw = self._raw(X)
        p50 = raw["point"] * self.scale
        p10 = np.expm1(np.log1p(raw["lower"]) - self.widen).clip(min=0)
        p90 = np.expm1(np.log1p(raw["upper"]) + self.widen).clip(min=0)
        # Keep the three ordered whatever the separate models say.
        p10 = np.minimum(p10, p50)
        p90 = np.maximum(p90, p50)
        return pd.DataFrame({"p10": p10, "p50": p50, "p90": p90})

    def importance(self) -> pd.Series:
        b = self.boosters["point"]
        return pd.Series(b.feature_importance("gain"), index=b.feature_name()).sort_values(ascending=False)
