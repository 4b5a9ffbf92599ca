"""The one message catalogue (``messages.json``): every sentence the product shows, in Chinese and
English, by code with parameters; and the one rule for writing numbers for people.

The page fetches the catalogue (``/messages.json``) and renders from it; the service renders the
same entries into its answers in the language asked (``Accept-Language`` or ``lang=``). The schema
writes its field reasons in English; ``parse_reason`` reads such a reason back into its code and
parameters by matching the catalogue's English templates, so the schema keeps one text per rule and
the catalogue stays the only place a translation lives.

Numbers: units are whole (half away from zero), prices carry the currency and cents only when there
are any, similarities are whole percentages, error rates one decimal; thousands separated by ",".
"""

from __future__ import annotations

import json
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOGUE_FILE = Path(__file__).resolve().parent / "messages.json"
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "en"  # API clients that ask for nothing get the language of the code and the logs
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, str]]:
    return json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))


def language(accept: str | None = None, asked: str | None = None) -> str:
    """``lang=`` wins, then the first of ``Accept-Language`` we speak, then English."""
    for candidate in [asked or "", *(part.split(";")[0] for part in (accept or "").split(","))]:
        code = candidate.strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


def has(key: str) -> bool:
    return key in catalogue()["en"]


def text(key: str, lang: str, **params: Any) -> str:
    """The entry ``key`` in ``lang`` with ``{name}`` replaced (unknown names are left as written)."""
    table = catalogue()
    template = table.get(lang, table["en"]).get(key, table["en"].get(key, key))
    return _PLACEHOLDER.sub(lambda m: str(params[m.group(1)]) if m.group(1) in params else m.group(0), template)


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    """The English error templates as patterns, the most specific (longest fixed text) first."""
    found = []
    for key, template in catalogue()["en"].items():
        if not key.startswith("err.") or key == "err.other":
            continue
        parts = _PLACEHOLDER.split(template)
        regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
        found.append((key[4:], re.compile(f"^{regex}$", re.DOTALL), len(_PLACEHOLDER.sub("", template))))
    return [(code, pattern) for code, pattern, _ in sorted(found, key=lambda x: -x[2])]


def parse_reason(reason: str) -> tuple[str, dict[str, str]]:
    """(code, parameters) of an English reason; ``other`` with the text when no template matches."""
    for code, pattern in _patterns():
        match = pattern.match(reason.strip())
        if match:
            return code, match.groupdict()
    return "other", {"text": reason}


def reason_text(code: str, params: dict[str, Any], lang: str) -> str:
    return text(f"err.{code}", lang, **params)


def field_name(field: str, lang: str) -> str:
    return text(f"field.{field}", lang) if has(f"field.{field}") else field


def name(kind: str, value: str | None, lang: str) -> str:
    """A category or channel name in ``lang`` (as given when the catalogue does not know it)."""
    if value is None:
        return "–"
    return text(f"{kind}.{value}", lang) if has(f"{kind}.{value}") else str(value)


def gate_text(failures: list[dict[str, Any]], lang: str) -> str:
    """The failed checks of a model's gate (``features.decision.gate_failures``) in ``lang``."""
    said = []
    for failure in failures:
        params = dict(failure.get("params") or {})
        for kind in ("level", "stage"):
            if kind in params and has(f"gate.{kind}.{params[kind]}"):
                params[kind] = text(f"gate.{kind}.{params[kind]}", lang)
        said.append(text(f"gate.fail.{failure['code']}", lang, **params))
    return text("list.join", lang).join(said)


def gate_sentence(failures: list[dict[str, Any]], lang: str) -> str:
    """What an answer of a model its gate refused says first: which checks failed, by how much."""
    return text("r.model_above_gate", lang, failures=gate_text(failures, lang))


# ---------------------------------------------------------------- numbers for people
def _finite(x: Any) -> bool:
    try:
        return x is not None and not isinstance(x, bool) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def rounded(x: Any, places: int = 0) -> Decimal:
    """Half away from zero, as the page's ``Intl.NumberFormat`` rounds (not Python's half to even)."""
    return Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def whole(x: Any) -> int | None:
    """A unit count as a whole number (None when it is not a number): the CSV and xlsx cells."""
    return int(rounded(x)) if _finite(x) else None


def units(x: Any) -> str:
    return f"{rounded(x):,}" if _finite(x) else "–"


def money(x: Any, currency: str = "¥") -> str:
    if not _finite(x):
        return "–"
    value = float(x)
    cents = abs(value - round(value)) >= 0.005
    return f"{'-' if value < 0 else ''}{currency}{rounded(abs(value), 2 if cents else 0):,}"


def percent(x: Any, places: int = 0) -> str:
    """A share (0-1) as a percentage: similarities whole (58%), error rates with one decimal."""
    return f"{rounded(float(x) * 100, places)}%" if _finite(x) else "–"


def factor(x: Any) -> str:
    return f"×{rounded(x, 2)}" if _finite(x) else "–"


def stamp(value: Any) -> str:
    """A database time as ISO text with its zone (SQLite returns it without one; it is UTC)."""
    from datetime import UTC

    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).isoformat()
