"""What serving does after answering: write every forecast to the log (features.ledger) with an id
the caller gets back, and ask the log how its model version is doing live (cached).

Writing the log must never make a forecast fail: a database error is logged and the answers are
returned without a ``forecast_id`` (None), so the caller knows the forecast is not on record.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from datetime import date
from typing import Any

from features.config import Settings

log = logging.getLogger("trialcast.ledger")
FIELDS = ("sku_id", "title", "description", "category", "cost_price", "list_price", "launch_date", "channel")


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a record value (NaN / NaT as None, dates as ISO text)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "isoformat"):
        try:
            return value.date().isoformat() if hasattr(value, "date") else value.isoformat()
        except ValueError:  # NaT
            return None
    return value


def entry(forecast_id: str, row: dict[str, Any], image: bytes | None, answer: dict[str, Any],
          version: str | None) -> dict[str, Any]:
    """The log row of one answered SKU: inputs (picture by sha256), band, curve, decision."""
    f, d = answer["forecast"], answer["decision"]
    launch = answer.get("assumed", {}).get("launch_date") or _plain(row.get("launch_date"))
    return {
        "id": forecast_id, "created_at": _now(), "model_version": None if version is None else str(version),
        "sku_id": row.get("sku_id"), "image_sha256": hashlib.sha256(image).hexdigest() if image else None,
        # The inputs as given, what was assumed for the absent ones, and any analog override by a person.
        "fields": {**{k: _plain(row.get(k)) for k in FIELDS}, "assumed": answer.get("assumed"),
                   "override": answer.get("override")},
        "launch_date": date.fromisoformat(launch) if launch else None,
        "p10": f["p10"], "p50": f["p50"], "p90": f["p90"], "curve": f["curve"],
        "decision": d["label"], "reasons": d["reasons"], "message": d["message"],
        "break_even_units": d["break_even_units"] if math.isfinite(d["break_even_units"]) else None,
        "quantity": answer.get("quantity"),
    }


def _now():
    from features.ledger.store import now

    return now()


class ForecastLog:
    """The serving side of the ledger for one model version: record answers, report the live error."""

    def __init__(self, settings: Settings, version: str | None):
        self.settings, self.version = settings, version
        self._live: tuple[float, dict[str, Any] | None] | None = None

    def record(self, rows: list[dict[str, Any]], images: list[bytes | None], answers: list[dict[str, Any]],
               owners: list[str | None] | None = None, ids: list[str] | None = None) -> None:
        """Give each ok answer a ``forecast_id`` and write them all, the single forecasts kept whole
        for their ``owners``; on a database error log it and set the ids to None (the answers still
        go out). An id is 128 random bits (it is a share link), or the one in ``ids``: a batch chunk
        gives each row the id it had when the chunk was scored before, so scoring it again after a
        kill replaces its rows in the log instead of adding them (``serving.batch``)."""
        from features.ledger import open_ledger
        from features.ledger.store import write_forecasts

        entries = []
        for n, (row, image, answer) in enumerate(zip(rows, images, answers)):
            answer["forecast_id"] = ids[n] if ids is not None else secrets.token_hex(16)
            entries.append(entry(answer["forecast_id"], row, image, answer, self.version))
        try:
            write_forecasts(open_ledger(self.settings), entries, images)
            keep_answers(self.settings, rows, answers, owners or [None] * len(rows))
        except Exception:
            log.exception("could not write %d forecasts to the log %s", len(entries), self.settings.ledger_url)
            for answer in answers:
                answer["forecast_id"] = None

    def refresh(self) -> None:
        """Forget the cached live error: the next answer reads it from the log again."""
        self._live = None

    def live(self) -> dict[str, Any] | None:
        """This version's live error (features.ledger.live), re-read at most every
        ``live_cache_seconds``; None when the log cannot be read (the forecast goes on)."""
        stamp = time.monotonic()
        if self._live is not None and stamp - self._live[0] < self.settings.live_cache_seconds:
            return self._live[1]
        try:
            from features.ledger import open_ledger
            from features.ledger.live import live_by_version

            state = live_by_version(open_ledger(self.settings), self.settings.gate_threshold,
                                    self.settings.live_min_launches, version=str(self.version))[str(self.version)]
        except Exception:
            log.exception("could not read the live error from %s", self.settings.ledger_url)
            state = None
        self._live = (stamp, state)
        return state


# ---------------------------------------------------------------- history (features/ledger/jobs.py)
SINGLE = "upload"  # the sku_id /predict gives its one SKU: those answers are kept whole, to reopen


def keep_answers(settings: Settings, rows: list[dict[str, Any]], answers: list[dict[str, Any]],
                 owners: list[str | None]) -> None:
    """The whole answer of each single forecast (``/predict``), so the page can list (to who asked:
    ``owners``), reopen and share it; batch rows are in their job's scores, not here."""
    from features.ledger import open_ledger
    from features.ledger.jobs import write_answers

    keep = [(row, a, o) for row, a, o in zip(rows, answers, owners)
            if row.get("sku_id") == SINGLE and a.get("forecast_id")]
    write_answers(open_ledger(settings), [
        {"forecast_id": a["forecast_id"], "created_at": _now(), "source": "predict",
         "title": str(row.get("title") or "")[:200], "answer": _json_safe(a), "owner": owner}
        for row, a, owner in keep])


def _json_safe(value: Any) -> Any:
    """A JSON copy with numbers that are not finite (an infinite break-even) as None."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return _plain(value) if hasattr(value, "isoformat") else str(value)


def recent(settings: Settings, limit: int, lang: str, owner: str | None) -> list[dict[str, Any]]:
    """The newest single forecasts ``owner`` asked for: when, title, decision, P50 and band as
    people read them."""
    from features import messages as m
    from features.ledger import open_ledger
    from features.ledger.jobs import recent_answers

    out = []
    for row in recent_answers(open_ledger(settings), limit, owner=owner):
        a = row["answer"] or {}
        f, d = a.get("forecast") or {}, a.get("decision") or {}
        label = d.get("label")
        out.append({"id": row["forecast_id"], "created_at": m.stamp(row["created_at"]), "title": row["title"],
                    "decision": label, "label": m.text(f"label.{label}", lang) if label else "",
                    "p50": m.units(f.get("p50")), "band": f"{m.units(f.get('p10'))}–{m.units(f.get('p90'))}",
                    "model_version": (a.get("model") or {}).get("version")})
    return out


def reopen(settings: Settings, forecast_id: str) -> dict[str, Any] | None:
    """A single forecast as it was answered, with when it was made."""
    from features.ledger import open_ledger
    from features.ledger.jobs import read_answer

    row = read_answer(open_ledger(settings), forecast_id)
    if row is None or not row["answer"]:
        return None
    from features.messages import stamp

    return {**row["answer"], "reopened": {"created_at": stamp(row["created_at"]), "forecast_id": forecast_id}}
