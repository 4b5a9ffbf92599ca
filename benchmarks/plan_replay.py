"""``python -m benchmarks.plan_replay``: does the season plan pick the launches that succeed?

The sample's holdout, as ``benchmarks.launch_replay`` prepares it: a model trained (the training
job's own code) on the launches before the cut forecasts every later launch through the service's
predictor (``serving.predictor.Predictor``), so it has seen none of them. The holdout is split into
periods (calendar months of launch). In each period the candidates are that period's launches and
the budget is a share of them (``--share``, a quarter by default); a launch *succeeds* when its
actual 7-day units are in the top quarter of its period. Four ways to spend the budget:

- plan: ``features.plan.make_plan`` (expected margin under each band, at most the budget);
- kNN: the most units by the analogs' similarity-weighted mean sales (``features.plan.knn_units``);
- random: any subset of the budget's size, whose expected success rate is the period's share of
  successes (exact, not a draw);
- all: every launch of the period (the same share, by definition of the top quarter).

The success rate of a way is its successful picks over all its picks, pooled over the periods.
Beside it, the 7-day margin the plan's and the kNN rule's picks made on their first batches (the
plan's own quantities; the kNN picks at their best quantity): the plan maximises expected margin,
while success here counts units, the measure the issue asks for.

    .venv/bin/python -m benchmarks.plan_replay --catalogue sample/catalogue.parquet
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks import launch_replay
from features.config import Settings
from features.plan import Budget, Candidate, candidate_of, make_plan, options

CHUNK = 64


def answers_of(prepared: launch_replay.Prepared, settings: Settings) -> list[dict[str, Any]]:
    """The service's answer for every holdout launch (not logged: nothing here is a live forecast)."""
    from serving.predictor import Predictor

    predictor = Predictor(prepared.model, settings, launch_replay.VERSION)
    ahead, out = prepared.ahead, []
    for start in range(0, len(ahead), CHUNK):
        rows = ahead.iloc[start:start + CHUNK]
        out += predictor.predict([launch_replay._record(r) for _, r in rows.iterrows()],
                                 [Path(p).read_bytes() for p in rows["image_path"]], to_log=False)
    refused = [a for a in out if not a["ok"]]
    if refused:
        raise RuntimeError(f"the service refused holdout SKUs: {refused[:3]}")
    return out


def realised(c: Candidate, units: float, actual: float, salvage_share: float) -> float:
    """The 7-day margin a launch made: what sold of the first batch, less what was left over
    (valued at salvage) and the launch cost."""
    cost = c.cost_price or 0.0
    sold = min(units, actual)
    return (c.list_price - cost) * sold - (1 - salvage_share) * cost * (units - sold) - c.launch_cost


def period_picks(frame: pd.DataFrame, share: float, salvage_share: float) -> dict[str, Any]:
    """One period's candidates (``frame``: sku_id, answer, actual, success) -> each way's picks
    (sku id, first batch) and the margin they made."""
    n = max(1, math.ceil(share * len(frame)))
    cands = {c.sku_id: c for c in (candidate_of(a) for a in frame["answer"]) if c is not None}
    actual = dict(zip(frame["sku_id"], frame["actual"]))
    plan = make_plan(list(cands.values()), Budget(launches=n), salvage_share)
    ranked = sorted((c for c in cands.values() if c.knn_units is not None and math.isfinite(c.break_even)),
                    key=lambda c: -(c.knn_units or 0.0))[:n]
    knn = [(c.sku_id, max(options(c, salvage_share), key=lambda o: o.margin).units) for c in ranked]
    picks = {"plan": [(p["sku_id"], p["units"]) for p in plan.picks], "knn": knn}
    return {"budget": n, "candidates": len(frame), "successes": int(frame["success"].sum()),
            **{way: [s for s, _ in chosen] for way, chosen in picks.items()},
            "margin": {way: sum(realised(cands[s], q, actual[s], salvage_share) for s, q in chosen)
                       for way, chosen in picks.items()}}


def success_table(frame: pd.DataFrame, share: float = 0.25, salvage_share: float = 0.3) -> dict[str, Any]:
    """The success rate of plan / kNN / random / all over ``frame``'s periods (columns: sku_id,
    period, actual, answer), with each period's numbers."""
    frame = frame.copy()
    top = frame.groupby("period")["actual"].transform(lambda s: s.quantile(0.75))
    frame["success"] = frame["actual"] >= top
    hit = dict(zip(frame["sku_id"], frame["success"]))
    periods, counts = [], {"plan": [0, 0], "knn": [0, 0], "random": [0.0, 0], "all": [0, 0]}
    margins = {"plan": 0.0, "knn": 0.0}
    for period, group in frame.groupby("period", sort=True):
        p = period_picks(group, share, salvage_share)
        row = {"period": str(period), "candidates": p["candidates"], "budget": p["budget"]}
        for way in ("plan", "knn"):
            wins = sum(hit[s] for s in p[way])
            counts[way][0] += wins
            counts[way][1] += len(p[way])
            margins[way] += p["margin"][way]
            row[way] = {"picks": len(p[way]), "successes": int(wins), "margin": round(p["margin"][way], 2)}
        base = p["successes"] / p["candidates"]
        counts["random"][0] += base * p["budget"]
        counts["random"][1] += p["budget"]
        counts["all"][0] += p["successes"]
        counts["all"][1] += p["candidates"]
        row["base_rate"] = round(base, 4)
        periods.append(row)
    rates = {way: (round(w / n, 4) if n else None) for way, (w, n) in counts.items()}
    return {"success_rate": rates, "picks": {way: n for way, (_, n) in counts.items()}, "periods": periods,
            "realised_margin": {way: round(m, 2) for way, m in margins.items()},
            "share": share, "launches": len(frame)}


def replay(prepared: launch_replay.Prepared, settings: Settings, share: float = 0.25) -> dict[str, Any]:
    """The report: each holdout launch answered, then the periods' picks scored against the actuals."""
    answers = answers_of(prepared, settings)
    ahead = prepared.ahead
    frame = pd.DataFrame({"sku_id": ahead["sku_id"].astype(str), "period": ahead["launch_date"].dt.to_period("M"),
                          "actual": ahead[launch_replay.CURVE].sum(axis=1), "answer": answers})
    report = success_table(frame, share, settings.salvage_share)
    return {"catalogue": str(prepared.path), "trained_on": prepared.model.meta["trained_on"],
            "train_end": prepared.model.meta["train_end"], **report}


def markdown(r: dict[str, Any]) -> str:
    rates, picks = r["success_rate"], r["picks"]
    lines = ["# Season plan replay", "",
             (f"`python -m benchmarks.plan_replay --catalogue {r['catalogue']}`: {r['launches']} holdout launches in "
              f"{len(r['periods'])} monthly periods, forecast by a model trained on the {r['trained_on']} launches "
              f"before them; budget {r['share']:.0%} of each period's candidates; success = a launch in the top "
              "quarter of its period by 7-day units."), "",
             "| way | picks | success rate |", "| --- | ---: | ---: |"]
    lines += [f"| {way} | {picks[way]:,} | {rates[way]:.1%} |" for way in ("plan", "knn", "random", "all")]
    made = r.get("realised_margin") or {}
    if made:
        lines += ["", (f"7-day margin the picks made on their first batches (after leftovers at salvage and the launch "
                       f"cost): plan {made['plan']:,.0f}, kNN {made['knn']:,.0f}.")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plan_replay", description=__doc__.split("\n")[0])
    parser.add_argument("--catalogue", type=Path, default=Path("sample/catalogue.parquet"))
    parser.add_argument("--share", type=float, default=0.25, help="Budget: this share of each period's launches.")
    parser.add_argument("--home", type=Path, default=None, help="Folder for the replay's model (default: a temp one).")
    parser.add_argument("--cache", type=Path, default=None, help="Embedding cache file (default: the settings').")
    parser.add_argument("--out", type=Path, default=None, help="Also write plan_replay.json and .md here.")
    args = parser.parse_args(argv)
    base = Settings()
    settings = base.model_copy(update={"home": args.home or Path(tempfile.mkdtemp(prefix="trialcast-plan-")),
                                       "database_url": None, "cache_file": args.cache or base.cache_path.resolve()})
    report = replay(launch_replay.prepare(args.catalogue, settings), settings, args.share)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "plan_replay.json").write_text(json.dumps(report, indent=2, default=str))
        (args.out / "plan_replay.md").write_text(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
