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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from features.analogs import Neighbours

QUANTILE = 0.01
# How many past SKUs may stand in for a picture (copy) below its floor: enough that the least of
# them is a cautious reading of what the copy (picture) allows (``stand_in_candidates``).
CANDIDATES = 40


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


# ---------------------------------------------------------------- junk is not demand
def below(similarity: np.ndarray, floor: float | None, present: np.ndarray) -> np.ndarray:
    """Rows whose vector is present but less like the history than the floor allows."""
    if floor is None:
        return np.zeros(len(similarity), dtype=bool)
    return present & ~(np.nan_to_num(similarity, nan=-1.0) >= floor)


def stand_in_candidates(index, categories: np.ndarray, picture: np.ndarray, copy: np.ndarray,
                        launch_dates: pd.Series, declared: pd.Series, floors: Floors, k: int = CANDIDATES
                        ) -> tuple[list[list[str]], dict[int, tuple[np.ndarray, np.ndarray]]]:
    """(which modalities of each row are below their novelty floor, and for each such row the
    (picture, copy) pairs that could stand in for them).

    A picture unlike every past picture (a black square, a page of text) says nothing about demand,
    yet the read-out and the boosters would still read a number off it, often a high one. What the
    rest of the evidence supports is the pictures of the ``k`` past SKUs whose copy is most like this
    SKU's; an unlike copy likewise stands for the copies of the past SKUs whose picture is most like
    this one's. When both are unlike, the one candidate is the mean of the declared category's past
    SKUs launched before it (unit length, as the encoders give vectors)."""
    has_picture = ~np.isnan(picture).any(axis=1)
    found = index.search_kinds(picture, copy, launch_dates, k, ("picture", "copy"))
    bad_picture = below(found["picture"].similarity[:, 0], floors.picture, has_picture)
    bad_copy = below(found["copy"].similarity[:, 0], floors.copy, np.ones(len(copy), dtype=bool))
    candidates: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i in np.flatnonzero(bad_picture | bad_copy):
        if bad_picture[i] and bad_copy[i]:
            rows = np.flatnonzero((categories == str(declared.iloc[i]))
                                  & (index.days <= _day(launch_dates.iloc[i]) - index.gap_days))
            pair = (_unit(index.picture[rows[index.has_picture[rows]]].sum(axis=0))[None, :],
                    _unit(index.copy[rows].sum(axis=0))[None, :])
        elif bad_picture[i]:
            rows = found["copy"].index[i]
            rows = rows[(rows >= 0) & index.has_picture[np.maximum(rows, 0)]]
            pair = (index.picture[rows], np.repeat(copy[i][None, :], len(rows), axis=0))
        else:
            rows = found["picture"].index[i]
            rows = rows[rows >= 0]
            pair = (np.repeat(picture[i][None, :], len(rows), axis=0), index.copy[rows])
        if len(pair[0]) and np.isfinite(pair[0]).all() and np.isfinite(pair[1]).all():
            candidates[int(i)] = pair
    which = [[name for name, bad in (("picture", bad_picture[i]), ("copy", bad_copy[i])) if bad]
             for i in range(len(copy))]
    return which, candidates


def _day(launch: Any) -> int:
    from features.analogs import day_numbers

    return int(day_numbers(pd.Series([launch]))[0])


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else np.full(len(vector), np.nan)
