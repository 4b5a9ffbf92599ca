"""The error gate: a forecast may steer production only while the model's error is under 15%.

Two-sided on purpose. WAPE alone rewards median-type forecasts, which under-forecast totals (on
real launches the WAPE-best models forecast totals 20-27% short), so the bias of the total must
also stay within bounds. Both are measured on the most recent launches the model never saw, at the
level and stage the settings name (``gate_level``, ``gate_stage``: where production is decided;
``training.evaluate.level_stage_metrics`` measures every pair). GO precision and recall are gated
beside the error, each shown against the base rate (the share of launches that paid back: what
launching everything would score).

A model the gate refuses is registered ``advisory``, never champion: with no champion the service
serves it, every answer a REVIEW (``features.decision.above_gate``). ``advice`` says what was
measured and what would help.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, get_args

from features.config import GateLevel
from features.trial import STAGE_DAYS

LEVELS: tuple[str, ...] = get_args(GateLevel)  # sku, plan, category
STAGES: tuple[str, ...] = tuple(STAGE_DAYS)  # pre_launch, trial_1d, trial_3d


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    metric: str
    value: float
    threshold: float
    bias: float
    max_abs_bias: float
    reasons: tuple[str, ...]
    go_precision: float = float("nan")
    min_go_precision: float | None = None
    # Logged beside WAPE, not gated: of the quarter of holdout SKUs ranked highest, the share truly in
    # the top quarter (random = 25%) -- how well the model orders launches, which WAPE does not see.
    screening_precision: float = float("nan")
    level: str = "sku"
    stage: str = "pre_launch"
    go_recall: float = float("nan")
    min_go_recall: float | None = None
    base_rate: float = float("nan")  # share of holdout launches that paid back: launching everything

    def as_tags(self) -> dict[str, str]:
        return {
            "gate.passed": str(self.passed).lower(),
            "gate.metric": self.metric,
            "gate.value": f"{self.value:.4f}",
            "gate.threshold": f"{self.threshold:.4f}",
            "gate.bias": f"{self.bias:.4f}",
            "gate.max_abs_bias": f"{self.max_abs_bias:.4f}",
            "gate.reasons": "; ".join(self.reasons) or "passed",
            "gate.go_precision": f"{self.go_precision:.4f}",
            "gate.min_go_precision": "none" if self.min_go_precision is None else f"{self.min_go_precision:.4f}",
            "gate.screening_precision": f"{self.screening_precision:.4f}",
            "gate.level": self.level,
            "gate.stage": self.stage,
            "gate.go_recall": f"{self.go_recall:.4f}",
            "gate.min_go_recall": "none" if self.min_go_recall is None else f"{self.min_go_recall:.4f}",
            "gate.base_rate": f"{self.base_rate:.4f}",
        }

    def as_dict(self) -> dict:
        return asdict(self)


def gated_key(metric: str, level: str = "sku", stage: str = "pre_launch") -> str:
    """The holdout metric the gate reads: ``metric`` itself per SKU before launch, else
    ``{metric}_{level}_{stage}`` (``training.evaluate.level_stage_metrics``)."""
    return metric if (level, stage) == ("sku", "pre_launch") else f"{metric}_{level}_{stage}"


def bias_key(stage: str = "pre_launch") -> str:
    """The bias of the total at ``stage`` (the same at every level: the total is the total)."""
    return "bias" if stage == "pre_launch" else f"bias_{stage}"


def check_gate(metrics: dict[str, float], metric: str, threshold: float, max_abs_bias: float,
               min_go_precision: float | None = None, min_go_recall: float | None = None,
               level: str = "sku", stage: str = "pre_launch") -> GateDecision:
    """Pass when the error ``metric`` at ``level`` and ``stage`` is under ``threshold``, the bias
    of the total at that stage is within ``max_abs_bias`` and, when ``min_go_precision`` is given,
    the holdout's GO launches paid back their launch cost at least that often (a model whose GOs are
    no better than launching everything must not steer production), and, with ``min_go_recall``,
    gave a GO to at least that share of the launches that did pay back: the break-even alone makes
    the few GOs of a useless model succeed (a shuffled-target model scored 79% GO precision on 14
    GOs, 7% recall), and a rule that stops launching raises no success rate. GO is decided before
    launch, so both are measured there whatever the stage."""
    key = gated_key(metric, level, stage)
    if key not in metrics:
        raise KeyError(f"gate metric {key!r} is not among the holdout metrics {sorted(metrics)}")
    value, total_bias = float(metrics[key]), float(metrics.get(bias_key(stage), float("nan")))
    base = float(metrics.get("base_rate", float("nan")))
    against = "" if math.isnan(base) else f" (launching everything: {base:.0%})"
    reasons = []
    if math.isnan(value) and stage != "pre_launch":
        reasons.append(f"{key} cannot be measured: the history has no daily sales (sales_d1..) to replay a trial")
    elif not value < threshold:
        reasons.append(f"{key} {value:.1%} is not under {threshold:.1%}")
    if not abs(total_bias) <= max_abs_bias:  # written so that a NaN bias is refused too
        reasons.append(f"bias of the total {total_bias:+.1%} is outside ±{max_abs_bias:.0%}")
    if min_go_precision is not None:
        precision = float(metrics.get("go_precision", float("nan")))
        if not precision >= min_go_precision:
            shown = "no GO at all" if math.isnan(precision) else f"{precision:.0%}"
            reasons.append(f"GO precision {shown} is under {min_go_precision:.0%}{against}")
    if min_go_recall is not None:
        recall = float(metrics.get("go_recall", float("nan")))
        if not recall >= min_go_recall:
            reasons.append(f"GO recall {recall:.0%} is under {min_go_recall:.0%}: GO is given too rarely to count")
    return GateDecision(not reasons, metric, value, threshold, total_bias, max_abs_bias, tuple(reasons),
                        float(metrics.get("go_precision", float("nan"))), min_go_precision,
                        float(metrics.get("screening_precision", float("nan"))), level, stage,
                        float(metrics.get("go_recall", float("nan"))), min_go_recall, base)


def advice(gate: dict[str, Any], metrics: dict[str, float], n_history: int) -> list[str]:
    """After a refusal: what was measured at every level and stage, and what would help. Never
    "train one": the user just did. ``gate`` is a gate as a dict (``GateDecision.as_dict`` or the
    registry's status); ``metrics`` the holdout's."""
    reasons = gate.get("reasons") or ()
    reasons = reasons.split("; ") if isinstance(reasons, str) else list(reasons)
    level, stage = gate.get("level") or "sku", gate.get("stage") or "pre_launch"
    value, threshold = float(gate.get("value", math.nan)), float(gate.get("threshold", math.nan))
    lines = [f"refused by the gate at the {level} level, {stage}: " + "; ".join(reasons),
             "measured on the holdout (WAPE of 7-day units; sku / plan = category x launch month / category):"]
    for at in STAGES:
        cells = [f"{where} {metrics.get(gated_key('wape', where, at), math.nan):.1%}" for where in LEVELS]
        lines.append(f"  {at:<10} " + ", ".join(cells) + f"; bias {metrics.get(bias_key(at), math.nan):+.1%}")
    passing = [(where, at) for at in STAGES for where in LEVELS
               if metrics.get(gated_key("wape", where, at), math.inf) < threshold]
    lines += ["what would help:",
              (f"  more history: {n_history} past launches trained this model; the error falls as launches "
               "like the candidates accumulate")]
    if not value < threshold and passing:
        where, at = passing[0]
        lines.append(f"  the error is under {threshold:.0%} at the {where} level, {at}: gate there "
                     f"(TRIALCAST_GATE_LEVEL={where} TRIALCAST_GATE_STAGE={at}) if production is decided there")
    elif not value < threshold:
        lines.append(f"  no level or stage is under {threshold:.0%}: decide production after a trial (presale or "
                     "first days' sales, `trialcast track`) and at the plan level, where the error is smallest")
    if any(r.startswith("GO ") for r in reasons):
        lines.append(f"  GO is decided before launch; launching everything paid back for "
                     f"{float(gate.get('base_rate', math.nan)):.0%} of the holdout's launches: a trial stage lets the "
                     "quantity follow the first days' sales instead")
    lines.append("meanwhile the model serves as advisory: every answer is REVIEW, with its band, lean, analogs and "
                 "economics")
    return lines
