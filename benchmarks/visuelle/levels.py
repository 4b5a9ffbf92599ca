"""Where the 15% can hold on real launches: the committed VISUELLE test forecasts at each level and
stage, the evidence behind the gate's default (``features.config``: ``gate_level``, ``gate_stage``).

``python -m benchmarks.visuelle.levels --data DIR [--out docs/benchmarks]`` reads the product's
committed forecasts of the 497 test products (``visuelle_test_forecasts.csv``, weeks 0-11) and the
actual weekly units of ``test.csv``, and measures the WAPE of the 6-week totals (the study's target)
per product, per category x launch month (the plan level) and per category, before launch and after
a trial of the first one or two weeks, updated with the product's own rule
(``features.trial.reforecast``) and with the plain ratio (no shrinkage) beside it. It writes
``visuelle_levels.md`` and ``visuelle_levels.json``.

A week of a 6-week horizon is not a day of a 7-day one: the closest VISUELLE stage to a 3-day trial
on 7 days (3/7 of the horizon seen) is weeks 0-1 (2/6).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.visuelle.adapter import SCALE
from training.evaluate import LEVELS, level_stage_metrics

WEEKS = 6  # the study's target: 6-week units
STAGES = {"pre_launch": 0, "after_week_0": 1, "after_weeks_0_1": 2}
FORECASTS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks" / "visuelle_test_forecasts.csv"


def _plain_ratio(plan: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """The days left x observed / forecast to date, unshrunk: the comparison for the product's rule."""
    k = seen.shape[1]
    to_date = plan[:, :k].sum(axis=1)
    ratio = np.where(to_date > 0, seen.sum(axis=1) / np.where(to_date > 0, to_date, 1), 1.0)
    return seen.sum(axis=1) + plan[:, k:].sum(axis=1) * ratio


def measure(data: Path, forecasts: Path = FORECASTS) -> dict[str, dict[str, float]]:
    """{rule: {wape_{level}_{stage}: value}} for the product's rule and the plain ratio."""
    test = pd.read_csv(data / "test.csv").set_index("external_code")
    plan = pd.read_csv(forecasts).pivot(index="external_code", columns="week", values="forecast").iloc[:, :WEEKS]
    rows = test.loc[plan.index]
    actual = rows[[str(w) for w in range(WEEKS)]].to_numpy(float) * SCALE
    daily_plan = plan.to_numpy(float)
    args = (actual.sum(axis=1), daily_plan.sum(axis=1), rows["category"], pd.to_datetime(rows["release_date"]))
    return {"product_rule": level_stage_metrics(*args, daily_plan, actual, stages=STAGES),
            "plain_ratio": level_stage_metrics(*args, daily_plan, actual, stages=STAGES, update=_plain_ratio)}


def table(measured: dict[str, dict[str, float]]) -> str:
    """The markdown report: one row per stage and rule, one column per level."""
    lines = ["| stage | update | " + " | ".join(LEVELS) + " |", "|---|---|" + "---:|" * len(LEVELS)]
    for stage in STAGES:
        for rule, metrics in measured.items():
            if stage == "pre_launch" and rule != "product_rule":
                continue
            cells = [f"{100 * metrics[f'wape_{level}_{stage}']:.1f}%" for level in LEVELS]
            lines.append(f"| {stage} | {rule.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.visuelle.levels", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="VISUELLE folder (test.csv).")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    args = parser.parse_args()
    measured = measure(args.data)
    report = ("# VISUELLE: the error at each level and stage\n\n"
              "WAPE of the 6-week totals of the 497 test products, from the committed forecasts "
              "(`visuelle_test_forecasts.csv`) and `test.csv`; levels: per product (sku), per category x "
              "launch month (plan), per category. Regenerate: `python -m benchmarks.visuelle.levels --data DIR`.\n\n"
              + table(measured) + "\n")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "visuelle_levels.md").write_text(report, encoding="utf-8")
    (args.out / "visuelle_levels.json").write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
