"""The prediction half of the forecaster: three LightGBM boosters -> P10 / P50 / P90 of launch units.

Training (``training.forecaster.Forecaster``) fits and calibrates them; this is what a saved model
holds and serving runs. Saved as plain files in one folder (``save`` / ``load``):

- ``booster_point.txt``, ``booster_lower.txt``, ``booster_upper.txt``: each booster as LightGBM
  model text (``Booster.save_model``; exact: doubles are written with 17 significant digits);
- ``forecaster.json``: ``loss`` (``log_l2`` / ``log_l1`` / ``tweedie``: how the point booster's raw
  score maps back to units), ``rounds`` (boosting rounds per booster), ``scale`` (the total-bias
  correction of P50), ``widen`` (the conformal widening of the log-space P10-P90 band) and
  ``widen_edges`` / ``widen_bins`` (the same widening per fifth of novelty, see ``NOVELTY``) and
  ``analog_weight`` (how far the forecast leans on the like-item rule, see ``like_items_shift``;
  absent in models saved before it: 0).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.analogs import LIKE_ITEMS
from features.assemble import BASE_MARGIN
from features.files import read_json, write_json

INTERVAL = 0.8  # P10-P90
BOOSTERS = ("point", "lower", "upper")
# The band is widened per fifth of this feature (the best joint similarity to an earlier SKU):
# novel SKUs are where the boosters know least, and one widening for all under-covers them.
NOVELTY = "joint_top1_similarity"
NOVELTY_BINS = 5


def novelty_bin(similarity: np.ndarray, edges: list[float]) -> np.ndarray:
    """Which fifth of novelty each row is in (0 = least similar; no similarity counts as least)."""
    similarity = np.nan_to_num(np.asarray(similarity, dtype=float), nan=-np.inf)
    return np.searchsorted(np.asarray(edges, dtype=float), similarity, side="right")


def like_items_shift(X: pd.DataFrame, point: np.ndarray, weight: float) -> np.ndarray:
    """How far (in log1p units) the forecast moves toward the like-item rule: ``weight`` times the
    gap between the analogs' mean sales (``LIKE_ITEMS``) and the boosters' point forecast, so the
    result is their geometric blend, ``(1 + p)^(1 - w) * (1 + analogs)^w``. 0 where a SKU has no
    analog (or the weight is 0).

    Why blend at all: on real launches (VISUELLE's pooled validation folds) the boosters rank new
    products worse than the like-item mean does, and the blend ranked better than either at a lower
    WAPE. The weight is calibrated per catalogue (``Forecaster``)."""
    if weight <= 0 or LIKE_ITEMS not in X:
        return np.zeros(len(X))
    like = X[LIKE_ITEMS].to_numpy(dtype=float)
    return np.where(np.isfinite(like), weight * (like - np.log1p(np.clip(point, 0, None))), 0.0)


def lean(units: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``units`` moved by ``shift`` in log1p units; rows with no shift keep their exact bits (so a
    model with weight 0, e.g. one saved before the blend, forecasts exactly as before)."""
    return np.where(shift == 0, units, np.expm1(np.log1p(units) + shift))


def _inverse(loss: str, raw: np.ndarray) -> np.ndarray:
    """Booster output (raw score incl. base margin) back to units."""
    return np.exp(raw) if loss == "tweedie" else np.expm1(raw)


def lgb_matrix(X: pd.DataFrame, pandas_categorical: list[list] | None) -> np.ndarray:
    """``X`` as the float matrix LightGBM's own pandas path makes of it: each categorical column as
    the codes of the categories the booster was trained with (``pandas_categorical``; NaN where
    unseen or absent), every other column as floats. Why by hand: ``Booster.predict`` redoes this on
    every call, and for one SKU the conversion cost more than the trees (4 calls per forecast:
    3 boosters and the contributions); converted once, every call reads the same matrix, and the
    answers are the same bits (tests/features/test_lgb_matrix.py)."""
    categorical = [name for name, dtype in X.dtypes.items() if isinstance(dtype, pd.CategoricalDtype)]
    known = pandas_categorical or []
    if len(categorical) != len(known):
        raise ValueError(f"the frame has {len(categorical)} categorical columns, the booster was trained on {len(known)}")
    vocabulary = dict(zip(categorical, known))
    out = np.empty(X.shape, dtype=np.float64)
    for j, name in enumerate(X.columns):
        column = X[name]
        if name in vocabulary:
            codes = column.cat.set_categories(vocabulary[name]).cat.codes.to_numpy()
            out[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            out[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def base_margin(loss: str, X: pd.DataFrame) -> np.ndarray:
    """Where boosting starts: the embedding read-out's log-sales forecast (0 when absent).

    Tweedie's log link models log(units) rather than log(1 + units); the shift is small."""
    if BASE_MARGIN not in X:
        return np.zeros(len(X))
    m = X[BASE_MARGIN].to_numpy(dtype=float)
    return np.log(np.clip(np.expm1(m), 0.1, None)) if loss == "tweedie" else m


@dataclass
class QuantileBoosters:
    """Point, lower and upper boosters with the calibration that turns them into P10/P50/P90."""

    loss: str
    _: KW_ONLY  # keeps ``Forecaster(loss, threads)`` positional in the training subclass
    rounds: dict[str, int] = field(default_factory=dict)  # boosting rounds per model, set on calibration
    scale: float = 1.0  # total-bias correction
    widen: float = 0.0  # conformal widening of the log-space band
    widen_edges: list[float] = field(default_factory=list)  # novelty fifths (see NOVELTY)
    widen_bins: list[float] = field(default_factory=list)  # widening per fifth; empty: ``widen`` for all
    analog_weight: float = 0.0  # weight of the like-item rule in the forecast (``like_items_shift``)
    boosters: dict[str, lgb.Booster] = field(default_factory=dict)

    def matrix(self, X: pd.DataFrame) -> np.ndarray:
        """``X`` converted once for every booster (``lgb_matrix``; they share one feature frame)."""
        return lgb_matrix(X, self.boosters["point"].pandas_categorical)

    def _raw(self, X: pd.DataFrame, matrix: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each booster's forecast in units, before bias scale and conformal widening.

        A booster fresh from early stopping knows its best round (``best_iteration`` > 0) and is
        cut there; a refit booster (0), or one read from model text (-1: ``save_model`` writes only
        the best rounds), uses every tree it holds. ``matrix``: ``X`` already converted."""
        out = {}
        shared = self.matrix(X) if matrix is None else matrix
        reference = self.boosters["point"].pandas_categorical
        for name, b in self.boosters.items():
            loss = self.loss if name == "point" else "log_l2"
            stop = self.rounds.get(name) if b.best_iteration > 0 else None
            data = shared if b.pandas_categorical == reference else lgb_matrix(X, b.pandas_categorical)
            score = b.predict(data, num_iteration=stop, raw_score=True)
            out[name] = np.clip(_inverse(loss, score + base_margin(loss, X)), 0, None)
        return out

    def predict(self, X: pd.DataFrame, matrix: np.ndarray | None = None) -> pd.DataFrame:
        """P10/P50/P90: the boosters' forecasts, moved toward the like-item rule (the band with P50,
        in log1p units), P50 scaled for total bias and the band widened by the calibrated amount."""
        raw = self._raw(X, matrix)
        shift = like_items_shift(X, raw["point"], self.analog_weight)
        p50 = lean(raw["point"], shift) * self.scale
        widen = self._widen(X)
        p10 = np.expm1(np.log1p(raw["lower"]) + shift - widen).clip(min=0)
        p90 = np.expm1(np.log1p(raw["upper"]) + shift + widen).clip(min=0)
        # Keep the three ordered whatever the separate models say.
        p10 = np.minimum(p10, p50)
        p90 = np.maximum(p90, p50)
        return pd.DataFrame({"p10": p10, "p50": p50, "p90": p90})

    def _widen(self, X: pd.DataFrame) -> np.ndarray:
        if not self.widen_bins or NOVELTY not in X:
            return np.full(len(X), self.widen)
        return np.asarray(self.widen_bins)[novelty_bin(X[NOVELTY].to_numpy(), self.widen_edges)]

    def start_units(self, X: pd.DataFrame, expected: np.ndarray) -> np.ndarray:
        """The point forecast before any feature moves it: the read-out plus the boosters' mean."""
        return np.clip(_inverse(self.loss, base_margin(self.loss, X) + expected), 0, None) * self.scale

    def importance(self) -> pd.Series:
        b = self.boosters["point"]
        return pd.Series(b.feature_importance("gain"), index=b.feature_name()).sort_values(ascending=False)

    def save(self, folder: Path) -> None:
        """Write the files listed in the module docstring."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, booster in self.boosters.items():
            booster.save_model(folder / f"booster_{name}.txt")
        write_json(folder / "forecaster.json", {"loss": self.loss, "rounds": self.rounds, "scale": self.scale,
                                                "widen": self.widen, "widen_edges": self.widen_edges,
                                                "widen_bins": self.widen_bins, "analog_weight": self.analog_weight,
                                                "boosters": list(self.boosters)})

    @classmethod
    def load(cls, folder: Path) -> QuantileBoosters:
        stored = read_json(folder / "forecaster.json")
        boosters = {name: lgb.Booster(model_file=folder / f"booster_{name}.txt") for name in stored.pop("boosters")}
        return cls(**stored, boosters=boosters)
