"""The season plan through the product: candidates answered by the champion, then planned
(``features.plan``) within a budget; used by ``trialcast plan`` and ``POST /plan``.

The plan reads only what every ``/predict`` answer carries (the band, the economics the break-even
was made with, the analogs), so candidates may come as rows to answer or as forecasts already
answered (kept by their forecast id).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from features.catalogue import read_table
from features.plan import Budget, candidate_of, make_plan
from serving.predictor import Predictor, finite_or_none

MAX_CANDIDATES = 500  # one plan: a season's candidates, not a catalogue
PLAN_COLUMNS = ("sku_id", "chosen", "rank", "units", "capital", "expected_margin", "p_success", "break_even_units",
                "p10", "p50", "p90", "knn_units", "decision", "why", "risk", "reason", "error")


def budget_of(launches: Any, capital: Any) -> tuple[Budget | None, list[dict[str, str]]]:
    """The budget from what a caller sent, or the field problems (worded as ``features/messages.json``)."""
    problems, values = [], {}
    for name, given, kind in (("budget_launches", launches, int), ("budget_capital", capital, float)):
        if given is None or given == "":
            values[name] = None
            continue
        try:
            number = float(given)
        except (TypeError, ValueError):
            problems.append({"field": name, "reason": f"must be a number, got {given!r}"})
            continue
        if kind is int and (not math.isfinite(number) or number != int(number)):
            problems.append({"field": name, "reason": f"must be a whole number, got {given!r}"})
            continue
        values[name] = int(number) if kind is int else number
    if values.get("budget_launches") is None and values.get("budget_capital") is None and not problems:
        problems.append({"field": "budget_launches", "reason": "is missing: give budget_launches, budget_capital or both"})
    budget = Budget(values.get("budget_launches"), values.get("budget_capital")) if not problems else None
    problems += budget.errors() if budget else []
    return (None if problems else budget), problems


def plan_answers(answers: list[dict[str, Any]], budget: Budget, salvage_share: float) -> dict[str, Any]:
    """The plan over the answers that are forecasts; the others are listed as refused with their errors."""
    candidates = [c for c in (candidate_of(a) for a in answers) if c is not None]
    plan = make_plan(candidates, budget, salvage_share).as_dict()
    plan["refused"] = [{"sku_id": a.get("sku_id"), "errors": a.get("errors", [])} for a in answers if not a.get("ok")]
    return finite_or_none(plan)


def plan_frame(plan: dict[str, Any]) -> pd.DataFrame:
    """One row per candidate: the picks first (in rank order), then what was left out and why."""
    rows = [{**{k: v for k, v in p.items() if k != "risk"}, "chosen": True, "risk": p["risk"]["text"]}
            for p in plan["picks"]]
    rows += [{**o, "chosen": False} for o in plan["left_out"]]
    rows += [{"sku_id": r["sku_id"], "chosen": False,
              "error": "; ".join(f"{e['field']}: {e['reason']}" for e in r["errors"])} for r in plan["refused"]]
    return pd.DataFrame(rows).reindex(columns=list(PLAN_COLUMNS))


def write_plan(plan: dict[str, Any], out: Path) -> None:
    """``out`` as .json (the whole plan), or .csv / .xlsx / .parquet (``plan_frame``)."""
    from features import spreadsheet

    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".json":
        out.write_text(json.dumps(plan, indent=2, ensure_ascii=False))
    elif suffix == ".parquet":
        plan_frame(plan).to_parquet(out, index=False)
    elif suffix in (".csv", ".xlsx"):
        spreadsheet.write(plan_frame(plan), out)
    else:
        raise ValueError(f"--out {out}: the plan is written as .json, .csv, .xlsx or .parquet")


def plan_file(candidates: Path, out: Path, predictor: Predictor, budget: Budget) -> dict[str, Any]:
    """Answer every row of a candidates table (as ``trialcast score`` reads it), plan, write ``out``;
    returns the totals and counts."""
    from serving.batch import answer_rows

    raw = read_table(Path(candidates))
    if len(raw) > MAX_CANDIDATES:
        raise ValueError(f"{candidates} holds {len(raw)} candidates, over the limit of {MAX_CANDIDATES} for one plan")
    raw = raw.astype(object).where(raw.notna(), None)
    plan = plan_answers(answer_rows(raw, Path(candidates).parent, predictor), budget, predictor.settings.salvage_share)
    write_plan(plan, Path(out))
    return {"candidates": len(raw), "chosen": [p["sku_id"] for p in plan["picks"]], "refused": len(plan["refused"]),
            "budget": plan["budget"], "totals": plan["totals"], "out": str(out)}


def _decoded(items: list[Any]) -> tuple[list[dict[str, Any]], list[bytes | None], dict[int, str]]:
    """The items as records and pictures (``image_base64``, as ``/predict_batch`` takes them)."""
    import base64
    import binascii

    records, pictures, broken = [], [], {}
    for i, item in enumerate(items):
        record = item if isinstance(item, dict) else {}
        encoded = record.get("image_base64")
        try:
            pictures.append(base64.b64decode(encoded, validate=True) if encoded else None)
        except (binascii.Error, TypeError, ValueError):
            broken[i] = "image_base64 is not valid base64"
            pictures.append(None)
        records.append(record)
    return records, pictures, broken


def _answers(predictor: Predictor, items: list[Any]) -> list[dict[str, Any]]:
    """Each item answered (a broken picture is that item's error, never its neighbours')."""
    records, pictures, broken = _decoded(items)
    keep = [i for i in range(len(items)) if i not in broken]
    answered = predictor.predict([records[i] for i in keep], [pictures[i] for i in keep])
    out: list[dict[str, Any]] = [{} for _ in items]
    for i, answer in zip(keep, answered):
        out[i] = answer
    for i, reason in broken.items():
        out[i] = {"sku_id": records[i].get("sku_id"), "ok": False, "errors": [{"field": "image_base64", "reason": reason}]}
    return out


def _reopened(settings: Any, ids: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The answers kept under ``ids`` (``serving.forecast_log.reopen``), or the ids not found."""
    from serving.forecast_log import reopen

    found = {str(i): reopen(settings, str(i)) for i in ids}
    missing = [i for i, answer in found.items() if answer is None]
    if missing:
        return [], [{"field": "forecast_ids", "reason": f"unknown forecast {', '.join(missing[:5])}: "
                                                        "forecast it with /predict first"}]
    return [a for a in found.values() if a is not None], []


def plan_request(predictor: Predictor, items: Any, forecast_ids: Any, launches: Any, capital: Any
                 ) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    """``POST /plan``: candidates as items to answer or as forecast ids already answered, and a
    budget; the plan, or the field problems (nothing is answered when the request is wrong)."""
    budget, problems = budget_of(launches, capital)
    given = items if items else forecast_ids
    field = "items" if items else "forecast_ids"
    if not given:
        problems.append({"field": "items", "reason": "is missing: give items or forecast_ids"})
    elif not isinstance(given, list):
        problems.append({"field": field, "reason": "must be a list"})
    elif len(given) > MAX_CANDIDATES:
        problems.append({"field": field, "reason": f"holds {len(given)} candidates, over the limit of "
                                                   f"{MAX_CANDIDATES} for one plan"})
    if problems or budget is None:
        return None, problems
    if items:
        answers = _answers(predictor, items)
    else:
        answers, problems = _reopened(predictor.settings, forecast_ids)
        if problems:
            return None, problems
    return plan_answers(answers, budget, predictor.settings.salvage_share), []
