"""The error gate: a forecast may steer production only while the model's error is under 15%.

Two-sided on purpose. WAPE alone rewards median-type forecasts, which under-forecast totals (on
real launches the WAPE-best models forecast totals 20-27% short), so the bias of the total must
also stay within bounds. Both are measured on the most recent launches the model never saw.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


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
        }

    def as_dict(self) -> dict:
        return asdict(self)


def check_gate(metrics: dict[str, float], metric: str, threshold: float, max_abs_bias: float,
               min_go_precision: float | None = None, min_go_recall: float | None = None) -> GateDecision:
    """Pass when ``metrics[metric] < threshold``, ``|bias| <= max_abs_bias`` and, when
    ``min_go_precision`` is given, the holdout's GO launches paid back their launch cost at least
    that often (a model whose GOs are no better than launching everything must not steer production),
    and, with ``min_go_recall``, gave a GO to at least that share of the launches that did pay back:
    the break-even alone makes the few GOs of a useless model succeed (a shuffled-target model
    scored 79% GO precision on 14 GOs, 7% recall), and a rule that stops launching raises no success rate."""
    if metric not in metrics:
        raise KeyError(f"gate metric {metric!r} is not among the holdout metrics {sorted(metrics)}")
    value, total_bias = float(metrics[metric]), float(metrics["bias"])
    reasons = []
    if not value < threshold:
        reasons.append(f"{metric} {value:.1%} is not under {threshold:.1%}")
    if not abs(total_bias) <= max_abs_bias:  # written so that a NaN bias is refused too
        reasons.append(f"bias of the total {total_bias:+.1%} is outside ±{max_abs_bias:.0%}")
    if min_go_precision is not None:
        precision = float(metrics.get("go_precision", float("nan")))
        if not precision >= min_go_precision:
            shown = "no GO at all" if precision != precision else f"{precision:.0%}"
            reasons.append(f"GO precision {shown} is under {min_go_precision:.0%}")
    if min_go_recall is not None:
        recall = float(metrics.get("go_recall", float("nan")))
        if not recall >= min_go_recall:
            reasons.append(f"GO recall {recall:.0%} is under {min_go_recall:.0%}: GO is given too rarely to count")
    return GateDecision(not reasons, metric, value, threshold, total_bias, max_abs_bias, tuple(reasons),
                        float(metrics.get("go_precision", float("nan"))), min_go_precision,
                        float(metrics.get("screening_precision", float("nan"))))
