"""``python -m benchmarks.launch_replay``: the sample holdout replayed as launches, through the
product's own after-launch path.

The latest ``holdout_fraction`` of the catalogue's launches are replayed in date order. A model is
trained (``training.train``, the job's own code) on the launches before them only, so it has seen
none of what it forecasts. Then, one simulated day at a time:

1. yesterday's actual sales of every SKU in its first 7 days arrive (``features.ledger.actuals``,
   by sku id, as a sales system sends them);
2. the service (``serving.predictor.Predictor``, the very object behind ``/predict``) forecasts the
   SKUs launching tomorrow, and writes them to the forecast log; its answers carry the live-error
   guard, which reads the log as it stands that day.

At each week's end the live error (``features.ledger.live``) is read from the log. After the last
day: how early the restock / slow signals fired and whether they were right, the error of the
updated forecast of the remaining days after 1, 3 and 5 days (``features.ledger.track``), and the
leftover units and stock-outs of the recommended quantity (``features.quantity``) against making the
P50. The launches also go back into the history (``training.data.with_launches``), which is checked
against the catalogue rows they came from: the loop closes with the same pictures, copy and sales.

    .venv/bin/python -m benchmarks.launch_replay --catalogue sample/catalogue.parquet --out docs/replay
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

for _var in ("BENTOML_DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
    os.environ.setdefault(_var, "true")

from features.config import Settings
from features.ledger import open_ledger, store
from features.ledger.actuals import ingest
from features.ledger.live import DAYS, LIVE_REASON, live_by_version
from features.ledger.track import replay_gain, track_launch
from features.metrics import wape

CURVE = [f"sales_d{d}" for d in range(1, DAYS + 1)]
VERSION = "replay"
FIELDS = ("sku_id", "title", "description", "category", "cost_price", "list_price", "channel")


def _model(past, settings: Settings):
    """The model the product would have registered the day before the replay starts."""
    from training.gate import check_gate
    from training.jobs import build_model
    from training.train import train

    result = train(past, settings, progress=False)
    gate = check_gate(result.holdout_metrics, settings.gate_metric, settings.gate_threshold, settings.gate_max_abs_bias,
                      settings.gate_min_go_precision, settings.gate_min_go_recall)
    return build_model(result, past, settings, gate), gate


def _record(row: pd.Series) -> dict[str, Any]:
    out = {k: (None if pd.isna(row[k]) else row[k]) for k in FIELDS}
    out["launch_date"] = row["launch_date"].date().isoformat()
    return out


def _actuals_of(launches: pd.DataFrame, day: pd.Timestamp) -> list[dict[str, Any]]:
    """The sales of ``day`` of every SKU in its first 7 days then, as a sales system sends them."""
    selling = launches[(launches["launch_date"] <= day) & (launches["launch_date"] > day - timedelta(days=DAYS))]
    return [{"sku_id": r.sku_id, "date": day.date().isoformat(),
             "units": float(getattr(r, CURVE[(day - r.launch_date).days]))} for r in selling.itertuples()]


def _simulate(predictor, engine, launches: pd.DataFrame, lead_days: int, settings: Settings) -> list[dict]:
    """Day by day: yesterday's actuals in, the launches ``lead_days`` ahead forecast, the live error
    read at each week's end (with how many of that week's answers its guard sent to REVIEW)."""
    first, last = launches["launch_date"].min(), launches["launch_date"].max() + timedelta(days=DAYS)
    weeks, forecasts, guarded = [], 0, 0
    day = first - timedelta(days=lead_days)
    while day <= last:
        rows = _actuals_of(launches, day - timedelta(days=1))
        if rows:
            result = ingest(engine, rows)
            if result["errors"]:
                raise RuntimeError(f"actuals refused: {result['errors'][:3]}")
        predictor.log.refresh()  # the guard reads the log as it stands today
        due = launches[launches["launch_date"] == day + timedelta(days=lead_days)]
        if len(due):
            answers = predictor.predict([_record(r) for _, r in due.iterrows()],
                                        [Path(p).read_bytes() for p in due["image_path"]])
            refused = [a for a in answers if not a["ok"]]
            if refused:
                raise RuntimeError(f"the service refused replayed SKUs: {refused[:3]}")
            forecasts += len(answers)
            guarded += sum(LIVE_REASON in a["decision"]["reasons"] for a in answers)
        if day.day_of_week == 6 or day == last:
            live = live_by_version(engine, settings.gate_threshold, settings.live_min_launches, VERSION)[VERSION]
            weeks.append({"week_ending": day.date().isoformat(), "forecasts": forecasts, "live_reviews": guarded,
                          **{k: live[k] for k in ("n", "wape", "wape_interval", "bias", "coverage", "go_precision",
                                                  "above_gate")}})
            forecasts = guarded = 0
        day += timedelta(days=1)
    return weeks


def _signals(joined: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """When RESTOCK / SLOW first fired (day 1-7) and whether the whole week bore them out:
    RESTOCK right when the 7 days sold more than the recommended quantity (without a restock it
    would have sold out), SLOW right when the 7 days ended under the P10."""
    out: dict[str, Any] = {}
    first = {"RESTOCK": [], "SLOW": []}
    for r in joined.itertuples():
        fired = {}
        for k in range(1, DAYS + 1):
            signal = track_launch(r.curve, r.p10, list(r.daily[:k]), threshold)["signal"]
            fired.setdefault(signal, k)
        for name, days in first.items():
            days.append(fired.get(name))
    truth = {"RESTOCK": joined["actual"] > joined["quantity_units"], "SLOW": joined["actual"] < joined["p10"]}
    for name, days in first.items():
        days = pd.Series(days, dtype=float)
        fired = days.notna().to_numpy()
        real = truth[name].to_numpy()
        out[name] = {
            "fired": int(fired.sum()), "bore_out": int((fired & real).sum()),
            "precision": float((fired & real).sum() / fired.sum()) if fired.any() else None,
            "true_cases": int(real.sum()),
            "caught_by_day_3": float((days[real] <= 3).mean()) if real.any() else None,
            "median_first_day": float(days[fired].median()) if fired.any() else None,
            "first_day_counts": {int(k): int(v) for k, v in days[fired].value_counts().sort_index().items()},
        }
    return out


def _stock(joined: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """Leftover units, stock-outs and 7-day margin of making the recommended quantity vs the P50,
    over the launches the service said GO to (those are the ones made)."""
    go = joined[joined["decision"] == "GO"]
    out: dict[str, Any] = {"launches": len(go)}
    for name, made in (("recommended", go["quantity_units"]), ("p50", go["p50"])):
        made, demand = made.to_numpy(float), go["actual"].to_numpy(float)
        sold = np.minimum(made, demand)
        leftover, short = made - sold, demand - sold
        price, cost = go["price_used"].to_numpy(float), go["cost_price"].to_numpy(float)
        margin = (price - cost) * sold - (1 - settings.salvage_share) * cost * leftover
        out[name] = {"units_made": float(made.sum()), "leftover_units": float(leftover.sum()),
                     "leftover_share": float(leftover.sum() / max(made.sum(), 1e-9)),
                     "stock_out_rate": float((demand > made).mean()) if len(go) else None,
                     "units_short": float(short.sum()), "margin": float(margin.sum())}
    return out


def _joined(engine, launches: pd.DataFrame) -> pd.DataFrame:
    """Each replayed launch's logged forecast beside its actual days."""
    logged = store.read_forecasts(engine, set(), set(launches["sku_id"]), VERSION)
    logged = logged.sort_values("created_at").groupby("sku_id").tail(1)
    frame = launches.merge(logged, on="sku_id", suffixes=("", "_log"))
    frame["daily"] = list(frame[CURVE].to_numpy(float))
    frame["actual"] = frame[CURVE].sum(axis=1)
    # the batch the newsvendor gives (made or not: the signals are measured on every launch)
    frame["quantity_units"] = [(q.get("if_made") or {}).get("units", q["units"]) for q in frame["quantity"]]
    frame["price_used"] = [q_price(f, c) for f, c in zip(frame["fields"], frame["cost_price"])]
    return frame


def q_price(fields: dict, cost: float) -> float:
    """The list price the decision used: given, or what was assumed for it (recorded with the forecast)."""
    assumed = (fields.get("assumed") or {}).get("list_price")
    return float(fields.get("list_price") or assumed or cost)


def _updates(joined: pd.DataFrame, threshold: float) -> list[dict[str, Any]]:
    """WAPE of the remaining days' forecast, prior curve vs updated, after 1, 3 and 5 days."""
    frame = pd.DataFrame({"curve": joined["curve"], "p10": joined["p10"], "actual": joined["daily"]})
    return [{"days_seen": k, **replay_gain(frame, k, threshold)} for k in (1, 3, 5)]


def _loop(past_frame: pd.DataFrame, catalogue, joined: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """The launches back as history (``training.data.with_launches``), checked against the rows they came from."""
    from features.catalogue import Catalogue
    from training.data import with_launches

    merged, report = with_launches(Catalogue(past_frame, catalogue.root, catalogue.spec), settings)
    back = merged.frame[~merged.frame["sku_id"].isin(past_frame["sku_id"])].set_index("sku_id")
    truth = joined.set_index("sku_id")
    same = 0
    for sku, row in back.iterrows():
        if sku not in truth.index:
            continue
        t = truth.loc[sku]
        same += bool(
            all(str(row[k]) == str(t[k]) for k in ("title", "description", "category", "channel"))
            and all(np.isclose(float(row[k]), float(t[k]), equal_nan=True) for k in ("cost_price", "list_price", *CURVE))
            and row["launch_date"] == t["launch_date"]
            and Path(row["image_path"]).read_bytes() == Path(t["image_path"]).read_bytes())
    return {"launches": report["launches"], "added": report["added"], "left_out": len(report["left_out"]),
            "identical_to_catalogue": same}


@dataclass
class Prepared:
    """The catalogue embedded and cut, and the model trained on the launches before the cut."""

    path: Path  # the catalogue file, as given
    catalogue: Any  # features.catalogue.Catalogue
    past: Any  # training.data.Dataset of the launches before the cut
    ahead: pd.DataFrame  # the launches to replay, in date order
    model: Any  # features.model.Model
    gate: Any  # training.gate.GateDecision


def prepare(catalogue: Path, settings: Settings) -> Prepared:
    """Embed the catalogue, cut it where the training holdout starts, train on what came before."""
    from training.data import embed_catalogue, holdout_split, load_history

    history = load_history(catalogue, settings)
    data = embed_catalogue(history, settings, progress=False)
    past_mask, ahead_mask = holdout_split(data.frame, settings.holdout_fraction)
    past = data.subset(past_mask)
    model, gate = _model(past, settings)
    return Prepared(Path(catalogue), history, past, data.frame[ahead_mask].reset_index(drop=True), model, gate)


def replay(prepared: Prepared, settings: Settings, *, launches: int | None = None, lead_days: int = 1,
           drift: float = 1.0) -> dict[str, Any]:
    """Replay the holdout (or its first ``launches``) as launches into the forecast log of
    ``settings``; ``drift`` scales every actual (0.5: each SKU sells half of what it did), to show
    the live guard at work. The report as a dict."""
    from serving.predictor import Predictor

    ahead = prepared.ahead.head(launches) if launches else prepared.ahead.copy()
    ahead[CURVE] = ahead[CURVE] * drift
    engine = open_ledger(settings)
    weeks = _simulate(Predictor(prepared.model, settings, VERSION), engine, ahead, lead_days, settings)
    joined = _joined(engine, ahead)
    final = live_by_version(engine, settings.gate_threshold, settings.live_min_launches, VERSION)[VERSION]
    meta, gate = prepared.model.meta, prepared.gate
    return {
        "catalogue": str(prepared.path), "trained_on": meta["trained_on"], "train_end": meta["train_end"],
        "launches": len(ahead), "first_launch": str(ahead["launch_date"].min().date()),
        "last_launch": str(ahead["launch_date"].max().date()), "lead_days": lead_days, "drift": drift,
        "gate": gate.as_dict(), "restock_threshold": settings.restock_threshold,
        "min_launches": settings.live_min_launches,
        "live": {k: final[k] for k in ("n", "wape", "wape_interval", "bias", "coverage", "go_n", "go_precision",
                                      "above_gate")},
        "p50_wape": wape(joined["actual"], joined["p50"]), "weeks": weeks,
        "signals": _signals(joined, settings.restock_threshold), "updates": _updates(joined, settings.restock_threshold),
        "stock": _stock(joined, settings), "loop": _loop(prepared.past.frame, prepared.catalogue, joined, settings),
    }


def _pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}%}"


def markdown(r: dict[str, Any]) -> str:
    """The report a planner reads: live error by week, signals, updated forecasts, stock."""
    lines = [
        "# Launch replay", "",
        *([f"**Drifted stream**: every actual scaled by {r['drift']}.", ""] if r["drift"] != 1.0 else []),
        (f"`python -m benchmarks.launch_replay --catalogue {r['catalogue']}`: {r['launches']} launches "
        f"({r['first_launch']} to {r['last_launch']}) forecast {r['lead_days']} day(s) ahead by a model trained on "
        f"the {r['trained_on']} launches before them (to {r['train_end']}; its own holdout gate: "
        f"{'passed' if r['gate']['passed'] else 'refused'}, {r['gate']['metric']} {_pct(r['gate']['value'])})."), "",
        (f"Live error at the end: WAPE {_pct(r['live']['wape'])} over {r['live']['n']} launches "
        f"(90% interval {' - '.join(_pct(x) for x in r['live']['wape_interval'] or [])}), bias {_pct(r['live']['bias'])}, "
        f"P10-P90 coverage {_pct(r['live']['coverage'], 0)}, GO precision {_pct(r['live']['go_precision'], 0)} "
        f"of {r['live']['go_n']} GO launches."), "",
        "## Live error by week (what `trialcast status` would have said)", "",
        "| week ending | forecasts | sent to REVIEW by the live guard | complete launches | WAPE | 90% interval | bias | above gate |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for w in r["weeks"]:
        band = " - ".join(_pct(x) for x in w["wape_interval"]) if w["wape_interval"] else ""
        lines.append(f"| {w['week_ending']} | {w['forecasts']} | {w['live_reviews']} | {w['n']} | {_pct(w['wape'])} "
                     f"| {band} | {_pct(w['bias'])} | {'yes' if w['above_gate'] else 'no'} |")
    lines += ["", f"## Quick-response signals (RESTOCK at +{r['restock_threshold']:.0%} to date, SLOW under the P10 path)", "",
              ("Borne out: RESTOCK when the week sold more than the recommended quantity (it would have sold out "
              "without a restock), SLOW when the week ended under the P10."), "",
              "| signal | fired | borne out by the week | precision | true cases | caught by day 3 | median first day |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, s in r["signals"].items():
        lines.append(f"| {name} | {s['fired']} | {s['bore_out']} | {_pct(s['precision'], 0)} | {s['true_cases']} | "
                     f"{_pct(s['caught_by_day_3'], 0)} | {s['median_first_day'] if s['median_first_day'] else 'n/a'} |")
    lines += ["", "## Updated forecast of the remaining days", "",
              "| days observed | launches | WAPE prior curve | WAPE updated |", "| ---: | ---: | ---: | ---: |"]
    lines += [f"| {u['days_seen']} | {u['n']} | {_pct(u['prior_wape'])} | {_pct(u['updated_wape'])} |" for u in r["updates"]]
    st = r["stock"]
    lines += ["", f"## Making the recommended quantity vs the P50 ({st['launches']} GO launches, 7 days)", "",
              "| made | units | leftover units | leftover share | stock-out rate | units short | margin |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in ("recommended", "p50"):
        m = st[name]
        lines.append(f"| {name} | {m['units_made']:,.0f} | {m['leftover_units']:,.0f} | {_pct(m['leftover_share'])} | "
                     f"{_pct(m['stock_out_rate'], 0)} | {m['units_short']:,.0f} | {m['margin']:,.0f} |")
    lp = r["loop"]
    lines += ["", "## The loop closes", "",
              (f"{lp['added']} of {lp['launches']} replayed launches came back as training history from the forecast log "
              f"(`trialcast retrain` adds them), {lp['identical_to_catalogue']} identical to their catalogue rows "
              f"(picture bytes, copy, prices, launch date, daily sales); {lp['left_out']} left out."), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.launch_replay", description=__doc__.split("\n")[0])
    parser.add_argument("--catalogue", type=Path, default=Path("sample/catalogue.parquet"))
    parser.add_argument("--out", type=Path, default=Path("docs/replay"), help="Where replay.md and replay.json go.")
    parser.add_argument("--home", type=Path, default=None,
                        help="An empty folder for the replay's model and forecast log (default: a new temp folder).")
    parser.add_argument("--cache", type=Path, default=None, help="Embedding cache file (default: the settings').")
    parser.add_argument("--launches", type=int, default=None, help="Replay only the first N holdout launches.")
    parser.add_argument("--drift", type=float, default=1.0,
                        help="Scale every actual by this (0.5: a stream that sells half its forecast).")
    args = parser.parse_args(argv)
    import tempfile

    home = args.home or Path(tempfile.mkdtemp(prefix="trialcast-replay-"))
    if (home / "forecasts.sqlite").exists():
        parser.error(f"--home {home} already holds a forecast log: give an empty folder")
    base = Settings()
    settings = base.model_copy(update={"home": home, "database_url": None, "live_cache_seconds": 1e9,
                                       "cache_file": args.cache or base.cache_path.resolve()})
    report = replay(prepare(args.catalogue, settings), settings, launches=args.launches, drift=args.drift)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "replay.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    (args.out / "replay.md").write_text(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
