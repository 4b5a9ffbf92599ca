"""The go/no-go rule: turn a forecast band, its novelty evidence and the unit economics into
GO / REVIEW / NO_GO with reasons. Core library, because serving answers with it and training
measures it on the holdout (decision quality, gated) with exactly the same code.

Break-even units = launch cost / unit margin (list price - cost price). The list price is the one
the model used: given, or assumed (features.schema: cost x the category's usual markup); the answer
says which, and at what markup.

In order (every check runs; a REVIEW lists all that apply, in this order):
0. A forecast that is not a finite number:                      REVIEW  INVALID_FORECAST
1. An absent input whose absence breaks the gate on the holdout REVIEW  INPUT_NEEDED
   (``extra["missing"]``: each such field and the error without it).
   Novel SKU, any of: no similar past SKU jointly               REVIEW  NO_SIMILAR_HISTORY
   (best joint similarity below the floor), picture unlike        PICTURE_UNLIKE_HISTORY
   every past picture, copy unlike every past copy (floors set     COPY_UNLIKE_HISTORY
   on the holdout: see features.novelty), the picture's nearest    CATEGORY_PICTURE_MISMATCH
   past SKUs are of another category than the one declared.
   A REVIEW also says which way the evidence leans: LEANS_GO (P50 clears break-even), LEANS_NO_GO,
   and BELOW_BREAK_EVEN_AT_P90 when even the optimistic case loses money.
2. P50 below break-even:                                         NO_GO   BELOW_BREAK_EVEN
   (with P90 also below: even the optimistic case loses money:   + BELOW_BREAK_EVEN_AT_P90)
3. P50 clears break-even but the band is too wide
   ((P90 - P10) / P50 > max_relative_spread) and P10 does not:   REVIEW  TOO_UNCERTAIN (+ LEANS_GO)
4. Otherwise:                                                    GO      CLEARS_BREAK_EVEN (+ CLEARS_AT_P10)
Assumed inputs add ASSUMED_LIST_PRICE / ASSUMED_CATEGORY / ASSUMED_LAUNCH_DATE to any answer, and
analogs chosen by a person (excluded or pinned) add ANALOGS_OVERRIDDEN.
Without a cost price (a model trained on a history without cost prices accepts a SKU without one)
there is no break-even: REVIEW COST_PRICE_NEEDED, with the novelty reasons, whatever the forecast.

A model its gate refused (registered ``advisory``, served while there is no champion) turns every
answer into REVIEW MODEL_ABOVE_GATE with the lean (``above_gate``): the band, the analogs and the
economics stay, for the person who decides; which gate failed, and by how much, is in the answer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class DecisionRule:
    launch_cost: float = 2000.0
    default_markup: float = 2.5
    max_relative_spread: float = 1.2
    min_similarity: float = 0.8


@dataclass(frozen=True)
class Evidence:
    """How much like the history a SKU is, per modality, and the floors it is held to (None: no check)."""

    joint: float | None
    picture: float | None = None
    copy: float | None = None
    picture_floor: float | None = None
    copy_floor: float | None = None
    category: str | None = None  # the declared (or assumed) category
    picture_category: str | None = None  # what the picture's nearest past SKUs are
    category_agrees: bool | None = None

    def reasons(self, rule: DecisionRule) -> list[str]:
        out = []
        if not _finite(self.joint) or self.joint < rule.min_similarity:
            out.append("NO_SIMILAR_HISTORY")
        if self.picture_floor is not None and (not _finite(self.picture) or self.picture < self.picture_floor):
            out.append("PICTURE_UNLIKE_HISTORY")
        if self.copy_floor is not None and (not _finite(self.copy) or self.copy < self.copy_floor):
            out.append("COPY_UNLIKE_HISTORY")
        if self.category_agrees is False:
            out.append("CATEGORY_PICTURE_MISMATCH")
        return out


@dataclass(frozen=True)
class Economics:
    """The break-even and how it was derived, as every answer shows it."""

    launch_cost: float
    cost_price: float
    list_price: float
    list_price_assumed: bool
    markup: float
    unit_margin: float
    break_even_units: float

    @classmethod
    def of(cls, cost_price: float, list_price: float | None, rule: DecisionRule, assumed: bool | None = None
           ) -> Economics:
        absent = list_price is None or not math.isfinite(list_price)
        price = cost_price * rule.default_markup if absent else float(list_price)
        margin = price - cost_price
        units = rule.launch_cost / margin if margin > 0 else math.inf
        return cls(rule.launch_cost, cost_price, price, bool(absent if assumed is None else assumed or absent),
                   price / cost_price, margin, units)


@dataclass
class Decision:
    label: str  # GO, REVIEW or NO_GO
    reasons: list[str]  # machine-readable codes
    message: str  # one sentence for people
    break_even_units: float
    assumed_list_price: bool = False
    economics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def break_even_units(cost_price: float, list_price: float | None, rule: DecisionRule) -> tuple[float, bool]:
    """Units needed to pay back the launch cost, and whether the list price was assumed."""
    e = Economics.of(cost_price, list_price, rule)
    return e.break_even_units, e.list_price_assumed


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _lean(p50: float, p90: float, units: float) -> list[str]:
    if p50 >= units:
        return ["LEANS_GO"]
    return ["LEANS_NO_GO", *(["BELOW_BREAK_EVEN_AT_P90"] if p90 < units else [])]


def decide(p10: float, p50: float, p90: float, top_similarity: float | None, cost_price: float,
           list_price: float | None, rule: DecisionRule, *, evidence: Evidence | None = None,
           assumed: tuple[str, ...] = (), list_price_assumed: bool | None = None, overridden: bool = False,
           costly: dict[str, float] | None = None) -> Decision:
    """The rule of the module docstring. ``assumed`` names the inputs that were absent;
    ``overridden`` says a person chose (some of) the analogs (ANALOGS_OVERRIDDEN); ``costly`` maps
    absent inputs to the holdout error without them when that error breaks the gate.

    Every check runs before the label is chosen, so one answer lists every reason at once, in the
    order a person acts on them: inputs to give, novelty per modality, category, economics, lean."""
    if cost_price is None or not math.isfinite(cost_price):
        return _no_break_even(p50, evidence or Evidence(top_similarity), rule, assumed, overridden, costly or {})
    econ = Economics.of(cost_price, list_price, rule, list_price_assumed)
    units = econ.break_even_units
    evidence = evidence or Evidence(top_similarity)
    codes = [f"ASSUMED_{name.upper()}" for name in assumed if name != "list_price"]
    codes = (["ASSUMED_LIST_PRICE"] if econ.list_price_assumed else []) + codes
    codes += ["ANALOGS_OVERRIDDEN"] if overridden else []
    be = "no positive margin" if math.isinf(units) else f"{units:.0f} units"
    missing = [{"field": name, "error": float(error)} for name, error in (costly or {}).items()]
    extra = {"missing": missing} if missing else {}

    def answer(label: str, reasons: list[str], message: str) -> Decision:
        return Decision(label, [*reasons, *codes], message, units, econ.list_price_assumed, asdict(econ), extra)

    if not all(math.isfinite(x) for x in (p10, p50, p90)):  # never let a broken number read as GO
        return answer("REVIEW", ["INVALID_FORECAST"], f"The model gave no usable forecast (P10/P50/P90 = "
                      f"{p10}/{p50}/{p90}): a person should judge this SKU.")
    held = (["INPUT_NEEDED"] if missing else []) + evidence.reasons(rule)
    label, money, said = _economics(p10, p50, p90, units, be, rule)
    if not held:
        return answer(label, money, said)
    economics = [c for c in money if c == "TOO_UNCERTAIN"]  # the lean below says which side of break-even
    lean = _lean(p50, p90, units)
    said_lean = f"The forecast of {p50:.0f} units against the break-even of {be} is only a lean."
    if JUNK & set(held) and "LEANS_GO" in lean:  # a picture or copy unlike any product is no evidence for GO
        lean, economics = [], []
        said, said_lean = "", (f"The forecast of {p50:.0f} units reads what is unlike the history as what the rest "
                               "of the evidence supports; it is no lean towards GO.")
    sentences = [_held_sentence(missing, evidence, rule), said, said_lean]
    return answer("REVIEW", [*held, *economics, *lean], " ".join(s for s in sentences if s))


# A picture or copy unlike every past one: read as what the rest of the evidence says (features.novelty.stand_ins).
JUNK = frozenset({"PICTURE_UNLIKE_HISTORY", "COPY_UNLIKE_HISTORY"})


def field_words(field: str) -> str:
    """An input's name as the English sentences write it (``launch_date``: launch date)."""
    return field.replace("_", " ")


def _held_sentence(missing: list[dict], evidence: Evidence, rule: DecisionRule) -> str:
    """Why a person decides: each input to give (with the holdout error without it) and each way
    the SKU is unlike the history."""
    out = []
    if missing:
        shown = ", ".join(f"the {field_words(m['field'])} (error {m['error']:.0%} on past launches without it)"
                          for m in missing)
        out.append(f"Give {shown}: without it the model's error is above the gate, so a person decides.")
    novel = evidence.reasons(rule)
    if novel:
        sim = f"{evidence.joint:.2f}" if _finite(evidence.joint) else "none"
        out.append(f"This SKU is unlike the history the model learnt from ({', '.join(novel)}; best joint "
                   f"similarity {sim}): a person decides.")
    return " ".join(out)


def _economics(p10: float, p50: float, p90: float, units: float, be: str, rule: DecisionRule
               ) -> tuple[str, list[str], str]:
    """The label, codes and sentence the band and the break-even alone give (steps 2-4)."""
    if p50 < units:
        extra = ["BELOW_BREAK_EVEN_AT_P90"] if p90 < units else []
        return "NO_GO", ["BELOW_BREAK_EVEN", *extra], (f"Expected {p50:.0f} units in 7 days is below the break-even "
                                                      f"of {be}" + (" even in the optimistic case (P90)." if extra else "."))
    spread = (p90 - p10) / p50 if p50 > 0 else math.inf
    if spread > rule.max_relative_spread and p10 < units:
        return "REVIEW", ["TOO_UNCERTAIN", "LEANS_GO"], (f"Expected {p50:.0f} units clears the break-even of {be}, but "
                                                         f"the range {p10:.0f}-{p90:.0f} is too wide to commit without "
                                                         "a second look.")
    return "GO", ["CLEARS_BREAK_EVEN", *(["CLEARS_AT_P10"] if p10 >= units else [])], (
        f"Expected {p50:.0f} units (range {p10:.0f}-{p90:.0f}) clears the break-even of {be}.")


def _no_break_even(p50: float, evidence: Evidence, rule: DecisionRule, assumed: tuple[str, ...],
                   overridden: bool, costly: dict[str, float]) -> Decision:
    """REVIEW for a SKU without a cost price: the forecast stands, the break-even cannot be made."""
    missing = [{"field": name, "error": float(error)} for name, error in costly.items()]
    codes = [*(["INPUT_NEEDED"] if missing else []), *evidence.reasons(rule),
             *(f"ASSUMED_{name.upper()}" for name in assumed if name != "list_price"),
             *(["ANALOGS_OVERRIDDEN"] if overridden else [])]
    shown = f"{p50:.0f} units" if math.isfinite(p50) else "no usable forecast"
    return Decision("REVIEW", ["COST_PRICE_NEEDED", *codes],
                    f"Without a cost price there is no break-even: the forecast of {shown} in 7 days is for a "
                    f"person to weigh against the launch cost, or give the cost price. "
                    f"{_held_sentence(missing, evidence, rule)}".strip(), math.nan,
                    extra={"missing": missing} if missing else {})


MODEL_ABOVE_GATE = "MODEL_ABOVE_GATE"


def _share(x: Any, places: int = 1) -> str:
    from features.messages import percent

    return percent(x, places)


def gate_failures(gate: dict[str, Any]) -> list[dict[str, Any]]:
    """Which checks of a model's gate failed, as codes with their numbers written as shares (the
    level and stage as codes, named in each language by the catalogue: ``gate.fail.*``)."""
    def number(key: str) -> float:
        value = gate.get(key)
        return float("nan") if value is None else float(value)

    value, threshold = number("value"), number("threshold")
    out = []
    if not value < threshold:
        out.append({"code": "error", "params": {"metric": str(gate.get("metric") or "wape").upper(),
                                                "level": gate.get("level") or "sku",
                                                "stage": gate.get("stage") or "pre_launch",
                                                "value": _share(value), "threshold": _share(threshold)}})
    if not abs(number("bias")) <= number("max_abs_bias"):
        out.append({"code": "bias", "params": {"value": _share(number("bias")), "threshold": _share(number("max_abs_bias"), 0)}})
    base = _share(number("base_rate"), 0)
    for name in ("go_precision", "go_recall"):
        floor = gate.get(f"min_{name}")
        if floor is not None and not number(name) >= float(floor):
            out.append({"code": name, "params": {"value": _share(number(name), 0), "threshold": _share(floor, 0),
                                                 "base": base}})
    return out


def above_gate(decision: Decision, gate: dict[str, Any], p50: float, p90: float) -> Decision:
    """The decision of a model its gate refused: REVIEW MODEL_ABOVE_GATE, with the lean the rule's
    numbers give, the gate's failed checks (``extra["gate"]``) and the rule's own label and sentence
    kept, so a person sees what the model would have said and why it may not say it."""
    from features.messages import gate_sentence

    failures = gate_failures(gate)
    # A GO or NO_GO gets its lean; a REVIEW of the rule keeps the lean it has, or its reason for none
    # (a picture unlike any product leans no way: JUNK). No lean without numbers: a broken forecast,
    # or no break-even (no cost price).
    ruled = decision.extra.get("label_before_live_check", decision.label)
    weighable = all(math.isfinite(x) for x in (p50, p90)) and not math.isnan(decision.break_even_units)
    lean = _lean(p50, p90, decision.break_even_units) if weighable and ruled != "REVIEW" else []
    lean = [c for c in lean if c not in decision.reasons]
    message = f"{gate_sentence(failures, 'en')} The rule alone said {decision.label}: {decision.message}"
    return replace(decision, label="REVIEW", reasons=[MODEL_ABOVE_GATE, *lean, *decision.reasons], message=message,
                   extra={**decision.extra, "label_before_gate": decision.label,
                          "gate": {"failures": failures, "level": gate.get("level") or "sku",
                                   "stage": gate.get("stage") or "pre_launch"}})
