"""The run's figures: predicted vs actual, error by category, interval calibration.

Figures are built with matplotlib's object API (``Figure``), not pyplot: no backend is chosen or
forced here, nothing opens a window, and a notebook that imports this module keeps its own
backend. Category names are often Chinese, which matplotlib's bundled DejaVu fonts cannot draw:
a CJK font installed on the machine (Debian: fonts-wqy-microhei or fonts-noto-cjk) is added as a
per-glyph fallback; without one, labels fall back to escaped code points rather than empty boxes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.figure import Figure

CJK_FONT_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
CJK_FAMILIES = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans CJK JP",
                "Droid Sans Fallback", "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC")


@lru_cache(maxsize=1)
def cjk_family() -> str | None:
    """The name of an installed CJK-capable font (registered with matplotlib), or None."""
    for path in CJK_FONT_FILES:
        if Path(path).is_file():
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    known = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FAMILIES if name in known), None)


def style() -> dict:
    """rcParams for our figures: DejaVu Sans first, the CJK font as per-glyph fallback.

    Fallback works across the families listed in ``font.family`` (not within the generic
    ``sans-serif`` list), and a text's families are fixed when it is created, so figures drawn
    under this style render the same when saved later."""
    family = cjk_family()
    return {} if family is None else {"font.family": ["DejaVu Sans", family]}


def label(text: object) -> str:
    """A label the installed fonts can draw: as is with a CJK font, else non-ASCII escaped."""
    text = str(text)
    if text.isascii() or cjk_family() is not None:
        return text
    return text.encode("ascii", "backslashreplace").decode("ascii")


def _figure(size: tuple[float, float]) -> tuple[Figure, object]:
    fig = Figure(figsize=size)
    return fig, fig.subplots()


def predicted_vs_actual(holdout: pd.DataFrame) -> Figure:
    with matplotlib.rc_context(style()):
        fig, ax = _figure((5, 5))
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


def category_wape(holdout: pd.DataFrame) -> pd.Series:
    """WAPE of the P50 per category, smallest first."""
    grouped = holdout.assign(err=(holdout["actual"] - holdout["p50"]).abs()).groupby("category")
    return (grouped["err"].sum() / grouped["actual"].sum()).sort_values()


def error_by_category(holdout: pd.DataFrame) -> Figure:
    wape = category_wape(holdout)
    with matplotlib.rc_context(style()):
        fig, ax = _figure((6, 0.3 * len(wape) + 1.5))
        ax.barh([label(c) for c in wape.index], wape.to_numpy() * 100)
        ax.axvline(15, color="r", ls="--", lw=1, label="15% gate")
        ax.set(xlabel="WAPE %", title="Holdout error by category")
        ax.legend()
        fig.tight_layout()
    return fig


def interval_calibration(holdout: pd.DataFrame) -> Figure:
    y = holdout["actual"].to_numpy()
    shares = [np.mean(y < holdout["p10"]), np.mean((y >= holdout["p10"]) & (y <= holdout["p90"])), np.mean(y > holdout["p90"])]
    with matplotlib.rc_context(style()):
        fig, ax = _figure((5, 3.5))
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
