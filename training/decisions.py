"""Decision quality on the holdout: the go/no-go rule run on every launch as the service would run it.

The business measures launches, not units: a launch succeeds when its first 7 days pay back the
launch cost (units >= break-even). ``go_precision`` is the share of GO launches that succeeded (the
success rate the business wants from 25% to 48%), ``go_recall`` the share of succeeding launches
that got a GO, ``review_rate`` how many go to a person, ``base_rate`` the success rate of launching
everything. The same function scores the analog-kNN baseline (its forecast as a band of width 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import Settings
from features.decision import DecisionRule, Evidence, decide
from features.novelty import Floors, agrees


def rule_of(settings: Settings) -> DecisionRule:
    return DecisionRule(settings.launch_cost, settings.default_markup, settings.max_relative_spread,
                        settings.ood_similarity)


def evidence_rows(novelty: pd.DataFrame, floors: Floors) -> list[Evidence]:
    """The service's evidence for each row of ``FeaturePipeline.novelty``, held to ``floors``."""
    out = []
    for row in novelty.itertuples(index=False):
        out.append(Evidence(
            joint=row.joint, picture=row.picture, copy=row.copy, picture_floor=floors.picture,
            copy_floor=floors.copy, category=row.category, picture_category=row.picture_category,
            category_agrees=agrees(row.category_share, row.picture_category, row.category, floors.category_share),
        ))
    return out


def labels(p10: np.ndarray, p50: np.ndarray, p90: np.ndarray, evidence: list[Evidence], frame: pd.DataFrame,
           rule: DecisionRule) -> tuple[list[str], np.ndarray]:
    """(GO / REVIEW / NO_GO, break-even units) per launch, from the SKU's own cost and list price."""
    out, units = [], []
    for i, ev in enumerate(evidence):
        price = frame["list_price"].iloc[i]
        d = decide(float(p10[i]), float(p50[i]), float(p90[i]), ev.joint, float(frame["cost_price"].iloc[i]),
                   None if pd.isna(price) else float(price), rule, evidence=ev)
        out.append(d.label)
        units.append(d.break_even_units)
    return out, np.asarray(units, dtype=float)


def decision_metrics(y: np.ndarray, decided: list[str], break_even: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, dtype=float)
    success = y >= break_even
    go = np.array([label == "GO" for label in decided])
    return {
        "go_precision": float(success[go].mean()) if go.any() else float("nan"),
        "go_recall": float(go[success].mean()) if success.any() else float("nan"),
        "review_rate": float(np.mean([label == "REVIEW" for label in decided])),
        "go_rate": float(go.mean()),
        "base_rate": float(success.mean()),
        "n_go": float(go.sum()),
    }
