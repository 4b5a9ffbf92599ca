"""The SKU schema: what one catalogue row or candidate is, and what each absent optional field means.

One pydantic model per kind of row, used everywhere a SKU comes in: catalogue loading
(``features.catalogue``), ``/predict`` and ``/predict_batch``, the web batch job and ``trialcast
score`` (through ``serving.predictor``), and the MLflow pyfunc. The field rules and their messages
are written once, here, as annotated types; the service's signature reuses the same types.

What an absent optional field means, in training and in serving alike (``ABSENT``, applied by
``Completion.complete`` inside the feature path, and taught to the model by ``mask_optional``):

============  ===============================================================================
field         when absent
============  ===============================================================================
list_price    cost price x the usual markup of the SKU's category in the training history
              (median list / cost; the overall median when the category is absent or unknown);
              ``list_price_assumed`` is set. The break-even of the decision uses the same price.
category      the category of the SKU's most similar past SKUs (similarity-weighted vote of its
              analogs); ``category_assumed`` is set.
channel       no channel, likewise.
description   the copy is the title alone (the copy embedding is of the title).
launch_date   today, the day the forecast is made; ``launch_date_assumed`` is set.
cost_price    no cost: the cost features are missing (LightGBM's missing branch), the list price
              cannot be assumed, and the decision has no break-even (REVIEW COST_PRICE_NEEDED).
              Always allowed in a history; a candidate may lack it only when the model's history
              had SKUs without one (it learnt what that absence means).
image         no picture: the picture features are missing and similarity is the copy's alone;
              allowed in a history, and in a candidate as for the cost price.
attributes    (colour, fabric... columns of the catalogue) no value: that attribute's features
              are missing; a value the history never held is absent too.
============  ===============================================================================

Training masks each of ``MASKED`` on a share of its rows (``mask_optional``), so every flag and
every stand-in value has been seen in training with the outcome it had.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

ABSENT: dict[str, str] = {
    "list_price": "cost price x the category's usual markup in the training history (list_price_assumed)",
    "category": "the category its most similar past SKUs share (category_assumed)",
    "channel": "no channel (the model was trained with channels masked on a share of rows)",
    "description": "the copy is the title alone",
    "launch_date": "today, the day of the forecast (launch_date_assumed)",
}
# Fields that training masks on a share of its rows, so the model has seen them absent (a masked
# description means the row's copy is embedded again as the title alone).
MASKED = ("list_price", "category", "channel", "description")
DEFAULT_MAX_TEXT = 5_000
MAX_NAME = 200
# Plausible values (README "Catalogue contract"): a unit price outside [MIN_PRICE, MAX_PRICE] is a
# typo or an attack, never a garment, and the break-even arithmetic overflows or divides by ~0 on it
# (a cost of 1e308 once came back GO with a break-even of 0 units).
MIN_PRICE = 0.01
MAX_PRICE = 1_000_000.0
# Launch dates: ISO dates (YYYY-MM-DD) in this window. A number is refused rather than read as
# nanoseconds since 1970 (20250702 used to become 1970-01-01), and years like 1 or 9999 are typos.
FIRST_DATE, LAST_DATE = date(2000, 1, 1), date(2099, 12, 31)
# ASCII digits only, as in numbers (``NUMBER_TEXT``).
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?", re.ASCII)


class FieldError(ValueError):
    """One field of one SKU is unusable."""

    def __init__(self, column: str, reason: str):
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


# ---------------------------------------------------------------- field checks (one rule each)
def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip()
    ) or value is pd.NaT


def check_price(column: str, value: Any, *, required: bool) -> float:
    """A price must be a finite positive number within [MIN_PRICE, MAX_PRICE]; absent only where
    the schema allows it."""
    if is_blank(value):
        if required:
            raise FieldError(column, "is missing")
        return float("nan")
    number = _finite_number(column, value)
    if number <= 0:
        raise FieldError(column, f"must be positive, got {number:g}")
    if not MIN_PRICE <= number <= MAX_PRICE:
        raise FieldError(column, f"must be between {MIN_PRICE:g} and {MAX_PRICE:,.0f}, got {number:g}")
    return number


# How a number is written as text, wherever text carries one (a form field, a JSON string, a CSV or
# Excel cell): the ASCII digits 0-9, an optional leading sign, at most one decimal point "." and no
# other character; spaces around it are ignored. So "45", "45.", "1299.50", ".5" and "-5" (then
# refused as not positive) are numbers; "１２", "٤٥", "४५" (other scripts' digits), "1_000", "1,299"
# (no thousands separators: "1,500" is 1.5 in half of Europe), "1e5" (no exponents), "NaN", "inf"
# and anything longer than MAX_NUMBER_CHARS are not. Python's float() accepts all of those, which is
# why it only ever sees text that has passed this rule.
NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
NOT_FINITE_TEXT = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
MAX_NUMBER_CHARS = 32  # more digits than any price or unit count needs (a float keeps 17)
TOO_LONG_FOR_A_NUMBER = f"is over {MAX_NUMBER_CHARS} characters long, more than any number needs"


def read_number(column: str, text: str) -> float:
    """The number ``text`` writes by the rule above (``NUMBER_TEXT``), or ``FieldError`` saying
    why not: too long, not finite, or not written with the digits 0-9 and one decimal point."""
    written = text.strip()
    if len(written) > MAX_NUMBER_CHARS:
        raise FieldError(column, TOO_LONG_FOR_A_NUMBER)
    if NOT_FINITE_TEXT.fullmatch(written):
        raise FieldError(column, f"must be a finite number, got {written!r}")
    if not NUMBER_TEXT.fullmatch(written):
        raise FieldError(column, "must be a number written with the digits 0-9 and at most one decimal point, "
                                 f"without thousands separators (e.g. 1299.50), got {written[:40]!r}")
    return float(written)


def _finite_number(column: str, value: Any) -> float:
    """A number given as text is read by ``read_number``; one given as a number (JSON, Parquet)
    must be finite and within what a float can hold."""
    if isinstance(value, str):
        return read_number(column, value)
    if isinstance(value, bool):
        raise FieldError(column, f"must be a number, got {value!r}")
    if isinstance(value, int) and abs(value) >= 10**MAX_NUMBER_CHARS:  # a JSON number of hundreds of digits
        raise FieldError(column, TOO_LONG_FOR_A_NUMBER)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise FieldError(column, f"must be a number, got {type(value).__name__}") from None
    if not math.isfinite(number):
        raise FieldError(column, f"must be a finite number, got {value!r}")
    return number


def check_text(column: str, value: Any, *, max_chars: int, required: bool) -> str:
    """Text is stripped and otherwise kept as given; a number given where text is expected (a JSON
    number for a title) becomes its text."""
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, (int, float)) and not is_blank(value):
        value = str(value)
    if is_blank(value):
        if required:
            raise FieldError(column, "is empty")
        return ""
    if not isinstance(value, str):
        raise FieldError(column, f"must be text, got {type(value).__name__}")
    _encodable(column, value)
    text = value.strip()
    if len(text) > max_chars:
        raise FieldError(column, f"is {len(text):,} characters, over the limit of {max_chars:,}")
    return text


def _encodable(column: str, text: str) -> None:
    """Text that UTF-8 cannot carry (a lone surrogate, e.g. from a JSON ``\\ud800``) or that holds
    NUL would fail later, in the encoder, the log or the answer: refuse it here, by name."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise FieldError(column, f"holds a character that is not valid Unicode text (position {error.start})") from None
    if "\x00" in text:
        raise FieldError(column, f"holds a NUL character (position {text.index(chr(0))})")


def check_date(column: str, value: Any) -> pd.Timestamp:
    """An ISO date (YYYY-MM-DD, a time part allowed) or a date object, within [FIRST_DATE, LAST_DATE]."""
    if is_blank(value):
        raise FieldError(column, "is missing")
    shown = str(value)[:40]
    if isinstance(value, str):
        _encodable(column, value)
        if not ISO_DATE.fullmatch(value.strip()):
            raise FieldError(column, f"is not a date (YYYY-MM-DD), got {shown!r}")
        try:
            day = date.fromisoformat(value.strip()[:10])  # before pandas, whose range ends at 2262
        except ValueError:
            raise FieldError(column, f"is not a date (YYYY-MM-DD), got {shown!r}") from None
        if not FIRST_DATE <= day <= LAST_DATE:
            raise FieldError(column, f"must be between {FIRST_DATE} and {LAST_DATE}, got {day}")
    elif not isinstance(value, (date, datetime, pd.Timestamp, np.datetime64)):
        raise FieldError(column, f"is not a date (YYYY-MM-DD, as text), got {type(value).__name__} {shown!r}")
    try:
        stamp = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise FieldError(column, f"is not a date (YYYY-MM-DD), got {shown!r}") from None
    if pd.isna(stamp):
        raise FieldError(column, "is missing")
    stamp = stamp.tz_localize(None).normalize() if stamp.tzinfo else stamp.normalize()
    if not FIRST_DATE <= stamp.date() <= LAST_DATE:
        raise FieldError(column, f"must be between {FIRST_DATE} and {LAST_DATE}, got {stamp.date()}")
    return stamp


def check_sales(column: str, value: Any) -> float:
    if is_blank(value):
        raise FieldError(column, "is missing")
    number = _finite_number(column, value)
    if number < 0:
        raise FieldError(column, f"must not be negative, got {number:g}")
    return number


# ---------------------------------------------------------------- the checks as pydantic types
def _as_pydantic(check: Callable[[Any, ValidationInfo], Any]) -> BeforeValidator:
    """A check that raises ``FieldError`` as a validator that raises with our message, not pydantic's."""

    def validate(value: Any, info: ValidationInfo) -> Any:
        try:
            return check(value, info)
        except FieldError as error:
            raise PydanticCustomError("trialcast", "{reason}", {"reason": error.reason}) from None

    return BeforeValidator(validate)


def _limit(info: ValidationInfo) -> int:
    return int((info.context or {}).get("max_text_chars", DEFAULT_MAX_TEXT))


def _text(required: bool, name: bool = False) -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> str | None:
        limit = MAX_NAME if name else _limit(info)
        return check_text(info.field_name or "text", value, max_chars=limit, required=required) or None

    return _as_pydantic(check)


def _price(required: bool) -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> float | None:
        context = info.context or {}
        if isinstance(value, float) and math.isnan(value) and not context.get("table"):
            # A NaN cell of a table is an empty cell; a NaN sent in a request is a bad number.
            raise FieldError(info.field_name or "price", "must be a finite number, got nan")
        needed = required and context.get("require_cost_price", True)
        number = check_price(info.field_name or "price", value, required=needed)
        return None if math.isnan(number) else number

    return _as_pydantic(check)


def _date(required: bool) -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> date | None:
        if not required and is_blank(value):
            return None
        return check_date(info.field_name or "date", value).date()

    return _as_pydantic(check)


NO_NUL = "^[^\u0000]*$"  # the schema's statement of ``_encodable`` (lone surrogates cannot be said in a pattern)
Title = Annotated[str, _text(True), Field(json_schema_extra={"minLength": 1, "maxLength": DEFAULT_MAX_TEXT,
                                                             "pattern": NO_NUL})]
OptionalText = Annotated[str | None, _text(False), Field(json_schema_extra={"maxLength": DEFAULT_MAX_TEXT,
                                                                            "pattern": NO_NUL})]
Name = Annotated[str, _text(True, name=True), Field(json_schema_extra={"maxLength": MAX_NAME, "pattern": NO_NUL})]
OptionalName = Annotated[str | None, _text(False, name=True), Field(json_schema_extra={"maxLength": MAX_NAME,
                                                                                      "pattern": NO_NUL})]
# JSON-schema bounds that OpenAPI 3.0 and 3.1 read alike (no numeric exclusiveMinimum).
_PRICE_SCHEMA = {"minimum": MIN_PRICE, "maximum": MAX_PRICE}
Price = Annotated[float, _price(True), Field(json_schema_extra=_PRICE_SCHEMA)]
OptionalPrice = Annotated[float | None, _price(False), Field(json_schema_extra=_PRICE_SCHEMA)]
LaunchDate = Annotated[date, _date(True)]
# The window as the schema can say it (years 20xx): keep in step with FIRST_DATE / LAST_DATE.
DATE_PATTERN = "^20[0-9]{2}-[0-9]{2}-[0-9]{2}"
assert (FIRST_DATE.year, LAST_DATE.year) == (2000, 2099), "DATE_PATTERN states this window"
OptionalDate = Annotated[date | None, _date(False), Field(json_schema_extra={"format": "date", "pattern": DATE_PATTERN})]


def _ids(value: Any) -> tuple[str, ...]:
    """Past SKU ids as a list or one comma-separated text (what a form field can carry)."""
    if is_blank(value):
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise PydanticCustomError("trialcast", "must be past SKU ids, separated by commas")
    ids = tuple(dict.fromkeys(str(i).strip() for i in items if str(i).strip()))
    if len(ids) > 50:
        raise PydanticCustomError("trialcast", "names {n} SKUs, over the limit of 50", {"n": len(ids)})
    return ids


SkuIds = Annotated[tuple[str, ...], BeforeValidator(_ids), Field(json_schema_extra={"type": "string"})]


class Sku(BaseModel):
    """A candidate SKU: what a merchandiser or planner gives. Absent optional fields: see ``ABSENT``.

    Validation context (all optional): ``table`` (True for rows of a table, where NaN is an empty
    cell); ``max_text_chars``; ``categories`` (the model's known
    categories: an unknown one is refused rather than silently treated as absent);
    ``require_cost_price`` (False only for benchmark data that has none)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sku_id: OptionalName = None
    title: Title
    description: OptionalText = None
    category: OptionalName = None
    cost_price: OptionalPrice = Field(None, validate_default=True)
    list_price: OptionalPrice = None
    launch_date: OptionalDate = None
    channel: OptionalName = None
    # Not inputs of the SKU but a person's say over its analogs (features.analogs.Override).
    exclude_analogs: SkuIds = ()
    pin_analogs: SkuIds = ()

    @field_validator("cost_price", mode="before")
    @classmethod
    def _cost_required(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, float) and math.isnan(value) and not (info.context or {}).get("table"):
            return value  # a bad number, not an absent one: the type's check says so
        if is_blank(value) and (info.context or {}).get("require_cost_price", True):
            raise PydanticCustomError("trialcast", "is missing")
        return value

    @field_validator("list_price")
    @classmethod
    def _above_cost(cls, value: float | None, info: ValidationInfo) -> float | None:
        cost = info.data.get("cost_price")
        if value is not None and cost is not None and value <= cost:
            raise PydanticCustomError("trialcast", "must be above the cost price ({cost})", {"cost": f"{cost:g}"})
        return value

    @field_validator("exclude_analogs", "pin_analogs")
    @classmethod
    def _known_skus(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        known = (info.context or {}).get("history")
        unknown = [sku for sku in value if known is not None and sku not in known]
        if unknown:
            raise PydanticCustomError("trialcast", "unknown past SKU {ids}: the model's history does not hold it",
                                      {"ids": ", ".join(unknown[:5])})
        return value

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str | None, info: ValidationInfo) -> str | None:
        known = (info.context or {}).get("categories")
        if value is not None and known is not None and value not in known:
            shown = ", ".join(list(known)[:20])
            raise PydanticCustomError("trialcast", "unknown category {value}; known: {shown}",
                                      {"value": repr(value), "shown": shown})
        return value


class LaunchedSku(Sku):
    """A catalogue row of a SKU already launched: its id, launch date and category are required
    (the history is what analogs and training are made of); the sales are checked by the catalogue."""

    sku_id: Name
    category: Name
    launch_date: LaunchDate


def validate(model: type[Sku], record: dict[str, Any], context: dict[str, Any] | None = None
             ) -> tuple[Sku | None, list[tuple[str, str]]]:
    """(the typed SKU, []) or (None, every (field, reason)) for one record."""
    try:
        return model.model_validate(record, context=context), []
    except ValidationError as error:
        problems = []
        for e in error.errors(include_url=False):
            name = str(e["loc"][0]) if e["loc"] else "record"
            problems.append((name, "is missing" if e["type"] == "missing" else e["msg"]))
        return None, problems


# ---------------------------------------------------------------- what absent means, in numbers
@dataclass
class Completion:
    """The values that stand in for absent optional fields, fitted on the training history."""

    markups: dict[str, float] = field(default_factory=dict)  # category -> median list / cost price
    markup: float = 2.5  # overall median, or the configured default when the history has no prices

    @classmethod
    def fit(cls, frame: pd.DataFrame, default_markup: float) -> Completion:
        ratio = frame["list_price"].astype(float) / frame["cost_price"].astype(float)
        ok = np.isfinite(ratio.to_numpy())
        if not ok.any():
            return cls({}, float(default_markup))
        by_category = ratio[ok].groupby(frame.loc[ok, "category"].astype(str)).median()
        return cls({str(k): float(v) for k, v in by_category.items()}, float(ratio[ok].median()))

    @staticmethod
    def dates(frame: pd.DataFrame, today: date | None = None) -> pd.DataFrame:
        """Absent copy fields as empty text, an absent launch date as ``today``, flagged.

        Idempotent: a frame completed once keeps its flags when completed again."""
        out = frame.copy()
        for column in ("category", "channel", "description"):
            if column not in out:
                out[column] = None
        out["description"] = out["description"].fillna("")
        for column in ("category", "channel"):
            out[column] = out[column].astype(object).where(~out[column].map(is_blank), None)
        dates = pd.to_datetime(out["launch_date"]) if "launch_date" in out else pd.Series(pd.NaT, index=out.index)
        out["launch_date_assumed"] = dates.isna().to_numpy() | flag(out, "launch_date_assumed")
        out["launch_date"] = dates.fillna(pd.Timestamp(today or date.today()))
        return out

    def prices(self, frame: pd.DataFrame) -> pd.DataFrame:
        """An absent list price as cost x the category's usual markup, flagged ``list_price_assumed``."""
        out = frame.copy()
        cost = out["cost_price"].astype(float)
        price = out["list_price"].astype(float) if "list_price" in out else pd.Series(np.nan, index=out.index)
        category = out["category"].astype("string")
        markup = category.map(self.markups).astype(float).fillna(self.markup)
        assumed = price.isna() & cost.notna()
        out["list_price"] = price.where(~assumed, (cost * markup).round(2))
        out["list_price_assumed"] = assumed.to_numpy() | flag(out, "list_price_assumed")
        return out


def flag(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].fillna(False).to_numpy(dtype=bool) if column in frame else np.zeros(len(frame), bool)


def mask_optional(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """A copy of training rows with each field of ``MASKED`` blanked on ``share`` of them (drawn
    independently per field), so the model learns what an absent value means instead of meeting
    it for the first time in serving.

    The launch date is not masked: absent, it is today, a date like any other. Masking it (a day
    drawn up to 120 days before the real launch) was measured on the sample holdout and made the
    model worse (WAPE 13.4% -> 13.7%) without making the absent-date band any better calibrated."""
    out = frame.copy()
    if share <= 0 or out.empty:
        return out
    rng = np.random.default_rng(seed)
    for column in MASKED:
        hit = rng.random(len(out)) < share
        out[column] = out[column].astype(object).where(~hit, "" if column == "description" else None)
        if column == "list_price":
            out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    return out
