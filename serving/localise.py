"""Answers in the language asked: an ASGI middleware that gives every JSON answer of the API its
codes, parameters and sentences from the message catalogue (``features.messages``), and ``display``
fields with the numbers written by the one rule.

The predictor and the schema stay language-free (codes and English reasons); this is the one place
that renders them, for ``/predict``, ``/predict_batch`` and the page's own routes alike. A client
that asks for nothing (no ``lang=``, no ``Accept-Language``) gets the English it always got, plus
the codes and ``display`` fields.
"""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Any
from urllib.parse import parse_qs

from features import messages as m

LOCALISED = ("/predict", "/predict_batch", "/plan", "/batch", "/actuals", "/history", "/forecasts", "/model")
FAR_DAYS = 183  # a launch this far outside the history's dates gets a warning


# ---------------------------------------------------------------- errors
def error_item(field: str, reason: str, lang: str) -> dict[str, Any]:
    """One field error with its code and parameters, and the sentence in ``lang``."""
    code, params = m.parse_reason(reason)
    if code == "unknown_category" and "shown" in params and lang == "en":
        # the values to send stay as the model has them, each with its English name beside it
        named = [(c.strip(), m.name("category", c.strip(), lang)) for c in params["shown"].split(",")]
        params["shown"] = ", ".join(c if n == c else f"{c} ({n})" for c, n in named)
        return {"code": code, "params": params, "text": m.reason_text(code, params, lang)}
    shown = reason if lang == "en" else m.reason_text(code, params, lang)
    return {"code": code, "params": params, "text": shown}


def field_of(loc: list[Any]) -> str:
    """The field an error's ``loc`` names: its last name, not a list position (``["picture_files",
    "0"]``: the first of the picture files) nor FastAPI's "where" prefix."""
    names = [str(p) for p in loc if isinstance(p, str) and p not in ("body", "rows") and not p.isdigit()]
    return names[-1] if names else "record"


def localise_error_body(body: dict[str, Any], lang: str) -> dict[str, Any]:
    """``{"error", "detail": [{"loc", "msg"}]}`` with ``code``/``params`` per detail and ``msg`` in ``lang``."""
    detail = body.get("detail")
    if not isinstance(detail, list):
        return body
    lines = []
    for d in detail:
        if not isinstance(d, dict) or not isinstance(d.get("msg"), str):
            continue
        loc = d.get("loc") if isinstance(d.get("loc"), list) else [d.get("loc")]
        field = field_of(loc)
        if "code" not in d:
            item = error_item(field, d["msg"], lang)
            d.update(code=item["code"], params=item["params"], msg=item["text"])
        else:  # the page's own routes give codes already
            d["msg"] = m.reason_text(d["code"], d.get("params") or {}, lang)
        lines.append(f"{m.field_name(field, lang)}{'：' if lang == 'zh' else ': '}{d['msg']}")
    if lines:
        body["error"] = m.text("list.join", lang).join(lines)
    body["lang"] = lang
    return body


def localise_item_errors(answer: dict[str, Any], lang: str) -> None:
    """A batch item's ``errors: [{"field", "reason"}]`` with codes and reasons in ``lang``."""
    for e in answer.get("errors") or []:
        if isinstance(e, dict) and isinstance(e.get("reason"), str) and "code" not in e:
            item = error_item(str(e.get("field")), e["reason"], lang)
            e.update(code=item["code"], params=item["params"], reason=item["text"])


# ---------------------------------------------------------------- answers
def history_span() -> tuple[date, date] | None:
    """First and last launch date of the serving model's history (None when no model is loaded)."""
    from serving import web

    predictor = web.state.predictor
    if predictor is None:
        return None
    cached = getattr(predictor, "_history_span", None)
    if cached is None:
        import pandas as pd

        dates = pd.to_datetime(predictor.bundle.pipeline.history["launch_date"])
        cached = (dates.min().date(), dates.max().date())
        predictor._history_span = cached
    return cached


def launch_warning(launch: str | None, span: tuple[date, date] | None, lang: str) -> dict[str, Any] | None:
    if not launch or span is None:
        return None
    try:
        day = date.fromisoformat(str(launch)[:10])
    except ValueError:
        return None
    start, end = span
    if (start - day).days <= FAR_DAYS and (day - end).days <= FAR_DAYS:
        return None
    params = {"date": day.isoformat(), "start": start.isoformat(), "end": end.isoformat()}
    return {"code": "LAUNCH_FAR_FROM_HISTORY", "params": params, "message": m.text("r.launch_far", lang, **params)}


def reason_params(code: str, decision: dict[str, Any], lang: str) -> dict[str, str]:
    """The parameters a reason's sentence names: INPUT_NEEDED names each missing field in words,
    with the holdout error without it (``decision.extra.missing``)."""
    if code != "INPUT_NEEDED":
        return {}
    missing = (decision.get("extra") or {}).get("missing") or []
    named = [m.text("reason.input_field", lang, field=m.field_name(str(x.get("field")), lang),
                    error=m.percent(x.get("error"))) for x in missing if isinstance(x, dict)]
    return {"fields": m.text("why.join", lang).join(named)} if named else {}


def reason_words(codes: list[str], lang: str, decision: dict[str, Any] | None = None) -> list[str]:
    return [m.text(f"reason.{c}", lang, **reason_params(c, decision or {}, lang)) if m.has(f"reason.{c}") else c
            for c in codes]


def verdict(label: str, reasons: list[str], lang: str) -> str:
    if label == "NO_GO" and "BELOW_BREAK_EVEN_AT_P90" in reasons:
        return m.text("verdict.NO_GO_P90", lang)
    return m.text(f"verdict.{label}", lang) if m.has(f"verdict.{label}") else label


def decision_sentence(answer: dict[str, Any], lang: str) -> str:
    """The page's sentence for this decision: verdict, the numbers against break-even, the reasons."""
    f, d = answer["forecast"], answer["decision"]
    be = d.get("break_even_units")
    numbers = {"p50": m.units(f["p50"]), "p10": m.units(f["p10"]), "p90": m.units(f["p90"]), "be": m.units(be)}
    summary = m.text("r.summary" if m._finite(be) else "r.summary_no_be", lang, **numbers)
    words = [w for c, w in zip(d["reasons"], reason_words(d["reasons"], lang, d))
             if c not in ("CLEARS_BREAK_EVEN", "BELOW_BREAK_EVEN")]
    tail = m.text("decision.reasons", lang, reasons=m.text("why.join", lang).join(words)) if words else ""
    sentence = m.text("decision.sentence", lang, verdict=verdict(d["label"], d["reasons"], lang), summary=summary) + (
        (" " if lang == "en" else "") + tail if tail else "")
    gate = gate_sentence(answer, lang)
    return f"{gate}{' ' if lang == 'en' else ''}{sentence}" if gate else sentence


def gate_sentence(answer: dict[str, Any], lang: str) -> str:
    """Which checks of its gate the answering model failed, by how much (an advisory model's
    answers); empty for a model that passed."""
    d = answer.get("decision") or {}
    failures = ((d.get("extra") or {}).get("gate") or {}).get("failures")
    return m.gate_sentence(failures, lang) if "MODEL_ABOVE_GATE" in (d.get("reasons") or []) and failures else ""


def why_sentence(why: dict[str, Any], p50: float, lang: str) -> str:
    """As the page writes it (``whySentence`` in app.js), from the same catalogue entries."""
    strong = [x for x in why.get("factors") or [] if m._finite(x.get("factor")) and float(x["factor"]) > 0
              and abs(math.log(float(x["factor"]))) >= 0.01][:2]
    group = lambda g: m.text(f"group.{g}", lang) if m.has(f"group.{g}") else m.text("group.other", lang)
    factors = m.text("why.join", lang).join(
        m.text("why.factor_label", lang, group=group(x["group"]), factor=f"{m.rounded(x['factor'], 2)}") for x in strong)
    analogs = why.get("analogs")
    numbers = {"p50": m.units(p50), "start": m.units(why.get("start_units"))}
    if analogs:
        numbers.update(min=m.units(analogs.get("min")), max=m.units(analogs.get("max")),
                       median=m.units(analogs.get("median")))
    if not factors:
        return m.text("why.sentence_analogs_plain" if analogs else "why.sentence_plain", lang, **numbers)
    return m.text("why.sentence" if analogs else "why.sentence_no_analogs", lang, factors=factors, **numbers)


def display(answer: dict[str, Any], lang: str, currency: str) -> dict[str, Any]:
    """The answer's numbers and names as a person reads them, in ``lang``."""
    f, d = answer["forecast"], answer["decision"]
    e = d.get("economics") or {}
    analogs = answer.get("analogs") or []
    category = (answer.get("novelty") or {}).get("category")
    return {
        "p10": m.units(f["p10"]), "p50": m.units(f["p50"]), "p90": m.units(f["p90"]),
        "band": f"{m.units(f['p10'])}–{m.units(f['p90'])}",
        "curve": [m.units(v) for v in f.get("curve") or []],
        "break_even": m.units(d.get("break_even_units")),
        "launch_cost": m.money(e.get("launch_cost"), currency), "cost_price": m.money(e.get("cost_price"), currency),
        "list_price": m.money(e.get("list_price"), currency), "unit_margin": m.money(e.get("unit_margin"), currency),
        "markup": factor_plain(e.get("markup")),
        "quantity": m.units((answer.get("quantity") or {}).get("units")),
        "quantity_sentence": quantity_sentence(answer.get("quantity"), e, lang, currency),
        "top_similarity": m.percent(analogs[0]["similarity"]) if analogs else "–",
        "category": m.name("category", category, lang) if category else "–",
        "label": m.text(f"label.{d['label']}", lang) if m.has(f"label.{d['label']}") else d["label"],
        "reasons": reason_words(d["reasons"], lang, d),
        "message": decision_sentence(answer, lang),
        "gate": gate_sentence(answer, lang),
        "analogs": [{"sku_id": a.get("sku_id"), "similarity": m.percent(a.get("similarity")),
                     "sales": m.units(a.get("sales")), "category": m.name("category", a.get("category"), lang)}
                    for a in analogs],
    }


def quantity_sentence(quantity: Any, economics: dict[str, Any], lang: str, currency: str) -> str:
    """How the first batch was chosen, or why nothing is made (``features.quantity.sentence``)."""
    from features.quantity import sentence

    if not isinstance(quantity, dict) or "status" not in quantity:
        return ""
    return sentence(quantity, economics, lang, currency)


def factor_plain(x: Any) -> str:
    return f"{m.rounded(x, 2)}" if m._finite(x) else "–"


def localise_answer(answer: dict[str, Any], lang: str, currency: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        return answer
    if answer.get("ok") is False:
        localise_item_errors(answer, lang)
        return answer
    if not isinstance(answer.get("forecast"), dict) or not isinstance(answer.get("decision"), dict):
        return answer
    answer["display"] = display(answer, lang, currency)
    launch = (answer.get("assumed") or {}).get("launch_date") or answer.get("launch_date")
    warning = launch_warning(launch, history_span(), lang)
    answer["warnings"] = [warning] if warning else []
    if lang != "en":  # the English sentences stay the decision rule's own (kept for a page switched to English)
        answer["decision"]["message_en"] = answer["decision"].get("message")
        answer["decision"]["message"] = answer["display"]["message"]
        if isinstance(answer.get("quantity"), dict) and answer["display"]["quantity_sentence"]:
            answer["quantity"]["sentence_en"] = answer["quantity"].get("sentence")
            answer["quantity"]["sentence"] = answer["display"]["quantity_sentence"]
        if isinstance(answer.get("why"), dict):
            answer["why"]["sentence"] = why_sentence(answer["why"], answer["forecast"]["p50"], lang)
    answer["lang"] = lang
    return answer


def localise(body: Any, status: int, lang: str, currency: str) -> Any:
    if isinstance(body, list):
        return [localise_answer(a, lang, currency) for a in body]
    if not isinstance(body, dict):
        return body
    if status >= 400:
        return localise_error_body(body, lang)
    if "forecast" in body:
        return localise_answer(body, lang, currency)
    return body


# ---------------------------------------------------------------- the middleware
class Localise:
    """Rewrite JSON answers of ``LOCALISED`` paths (they are small: a body is read whole)."""

    def __init__(self, app: Any, currency: str = "¥") -> None:
        self.app, self.currency = app, currency

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(LOCALISED):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("lang", [None])[0]
        lang = m.language(headers.get("accept-language"), asked)
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                kind = dict(message.get("headers", [])).get(b"content-type", b"")
                if not kind.startswith(b"application/json"):
                    start["passthrough"] = True
                    await send(message)
                return
            if start.get("passthrough"):
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                await self._send(start, b"".join(chunks), lang, send)

        await self.app(scope, receive, capture)

    async def _send(self, start: dict, raw: bytes, lang: str, send: Any) -> None:
        try:
            body = json.dumps(localise(json.loads(raw), start["status"], lang, self.currency),
                              ensure_ascii=False).encode()
        except (ValueError, TypeError, KeyError):
            body = raw  # not ours to fix: pass it on as it was
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers += [(b"content-length", str(len(body)).encode()), (b"content-language", lang.encode())]
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await send({"type": "http.response.body", "body": body})
