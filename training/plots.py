"""The run's figures: predicted vs actual, error by category, interval calibration."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures go to files, never to a screen
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def predicted_vs_actual(holdout: pd.DataFrame) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.errorbar(
        holdout["actual"], holdout["p50"],
        yerr=[holdout["p50"] - holdout["p10"], holdout["p90"] - holdout["p50"]],
        fmt="o", ms=2, alpha=0.35, elinewidth=0.5,
    )
    top = float(max(holdout["actual"].max(), holdout["p90"].max()))
    ax.plot([0, top], [0, top], "k--", lw=1)
    ax.set(xlabel="actual launch units", ylabel="forecast P50 (bars: P10-P90)", title="Holdout: forecast vs actual")
    fig.tight_layout()
    return fig


def error_by_category(holdout: pd.DataFrame) -> Figure:
    grouped = holdout.assign(err=(holdout["actual"] - holdout["p50"]).abs()).groupby("category")
    wape = (grouped["err"].sum() / grouped["actual"].sum()).sort_values()
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(wape) + 1.5))
    ax.barh(wape.index.astype(str), wape.to_numpy() * 100)
    ax.axvline(15, color="r", ls="--", lw=1, label="15% gate")
    ax.set(xlabel="WAPE %", title="Holdout error by category")
    ax.legend()
    fig.tight_layout()
    return fig


def interval_calibration(holdout: pd.DataFrame) -> Figure:
    y = holdout["actual"].to_numpy()
    shares = [np.mean(y < holdout["p10"]), np.mean((y >= holdout["p10"]) & (y <= holdout["p90"])), np.mean(y > holdout["p90"])]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(["below P10", "inside P10-P90", "above P90"], np.array(shares) * 100, color=["#c44", "#4a4", "#c44"])
    for x, target in enumerate([10, 80, 10]):
        ax.hlines(target, x - 0.4, x + 0.4, colors="k", linestyles="--")
    ax.set(ylabel="% of holdout launches", title="Interval calibration (dashes: ideal)")
    fig.tight_layout()
    return fig


ALL = {
    "predicted_vs_actual.png": predicted_vs_actual,
    "error_by_category.png": error_by_category,
    "interval_calibration.png": interval_calibration,
}
