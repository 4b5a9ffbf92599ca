"""How new a SKU is, per modality: is its picture like any past picture, its copy like any past
copy, and do the past SKUs its picture resembles share the category it declares?

The joint similarity alone is dominated by the copy: a black square with catalogue copy looks
familiar. So each modality gets its own floor, set on the training run's holdout (launches the
model never saw, analogs only among SKUs launched before them): the floor is the ``QUANTILE``
quantile of the holdout's own nearest-picture (nearest-copy) similarity, i.e. a SKU below it is
less like the history than 99 of 100 real new launches were. The category check is the share of
the similarity-weighted vote of the picture's ``k`` nearest past SKUs that goes to the declared
category; it disagrees when that share is below the same quantile of the holdout's shares (and
another category wins the vote).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from features.analogs import Neighbours

QUANTILE = 0.01


@dataclass(frozen=True)
class Floors:
    picture: float | None
    copy: float | None
    category_share: float | None
    quantile: float = QUANTILE

    @classmethod
    def fit(cls, picture: np.ndarray, copy: np.ndarray, share: np.ndarray, quantile: float = QUANTILE) -> Floors:
        def q(values: np.ndarray) -> float | None:
            values = np.asarray(values, dtype=float)
            values = values[np.isfinite(values)]
            return float(np.quantile(values, quantile)) if len(values) else None

        return cls(q(picture), q(copy), q(share), quantile)

    def as_dict(self) -> dict:
        return asdict(self)


def picture_category_vote(index, history_categories: np.ndarray, picture: np.ndarray, copy: np.ndarray,
                          launch_dates: pd.Series, declared: pd.Series, k: int,
                          nb: Neighbours | None = None) -> tuple[list[str | None], np.ndarray]:
    """(the category the picture's nearest past SKUs vote for, the declared category's share of
    that vote) per row; share NaN where the row has no picture or no past SKU. ``nb``: those k
    picture neighbours, already found."""
    nb = index.search(picture, copy, launch_dates, k, kind="picture") if nb is None else nb
    winners: list[str | None] = []
    shares = np.full(len(picture), np.nan)
    for i, (rows, sims) in enumerate(zip(nb.index, nb.similarity)):
        votes = category_votes(history_categories, rows, sims)
        winners.append(None if votes is None else str(votes.idxmax()))
        if votes is not None:
            shares[i] = float(votes.get(declared.iloc[i], 0.0) / votes.sum())
    return winners, shares


def category_votes(history_categories: np.ndarray, rows: np.ndarray, sims: np.ndarray) -> pd.Series | None:
    """Similarity-weighted votes of one SKU's neighbours per category (None without neighbours)."""
    ok = rows >= 0
    if not ok.any():
        return None
    return pd.Series(np.clip(sims[ok], 0, None) + 1e-6).groupby(history_categories[rows[ok]]).sum()


def agrees(share: float, winner: str | None, declared: str | None, floor: float | None) -> bool | None:
    """None when there is nothing to check (no picture, no history, no floor)."""
    if floor is None or winner is None or declared is None or not np.isfinite(share):
        return None
    return bool(share >= floor or winner == declared)
