"""Novelty floors per modality and the picture-category check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.analogs import AnalogIndex
from features.novelty import Floors, agrees, category_votes, picture_category_vote


def test_floors_are_the_low_quantile_of_the_holdouts_own_similarities() -> None:
    picture = np.linspace(0.5, 1.0, 101)
    floors = Floors.fit(picture, picture - 0.2, np.r_[np.linspace(0, 1, 100), np.nan])
    assert floors.picture == pytest.approx(0.505) and floors.copy == pytest.approx(0.305)
    assert floors.category_share == pytest.approx(0.01)
    assert Floors.fit(np.array([np.nan]), np.array([0.5]), np.array([np.nan])).picture is None


def test_the_category_check_needs_another_winner_and_a_share_below_the_floor() -> None:
    assert agrees(0.0, "外套", "牛仔裤", floor=0.1) is False
    assert agrees(0.4, "外套", "牛仔裤", floor=0.1) is True  # a fair share: not a contradiction
    assert agrees(0.0, "牛仔裤", "牛仔裤", floor=0.1) is True
    assert agrees(np.nan, "外套", "牛仔裤", floor=0.1) is None  # no picture: nothing to check
    assert agrees(0.0, "外套", "牛仔裤", floor=None) is None


def test_the_pictures_nearest_past_skus_vote_by_similarity() -> None:
    picture = np.eye(3, dtype=np.float32)[[0, 0, 1]]
    copy = np.eye(3, dtype=np.float32)[[2, 2, 2]]
    dates = pd.Series(pd.to_datetime(["2024-01-01"] * 3))
    index = AnalogIndex(np.array(["a", "b", "c"]), dates, np.ones(3), picture, copy)
    categories = np.array(["外套", "外套", "牛仔裤"])
    query = np.eye(3, dtype=np.float32)[[0]]
    winner, share = picture_category_vote(index, categories, query, query, pd.Series(pd.to_datetime(["2024-06-01"])),
                                          pd.Series(["牛仔裤"]), k=3)
    assert winner == ["外套"] and share[0] == pytest.approx(1e-6 / (2 + 3e-6), abs=1e-6)
    assert category_votes(categories, np.array([-1, -1]), np.array([np.nan, np.nan])) is None
