"""The Markdown report of the VISUELLE benchmark, with its figures (matplotlib object API only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

# Exploration done while building the benchmark, before the candidate list of ``benchmark.py`` was
# fixed (all on train.csv folds, never on test). Numbers are means over the season-tail folds
# unless a fold is named; they come from scratch runs, not from this command.
EXPLORATION = [
    "Validation design. `train_validation_split` (fit SS17-AW18, validate on the train.csv part of "
    "SS19+AW19) has a level shift against the test: those products sold 246-259 units in 6 weeks "
    "against 330-384 in the seasons fitted on, so every model over-forecasts there (attribute kNN "
    "bias +36%), while the test's products (the last launches of SS19/AW19) sell 297-359. The test "
    "is the *tail* of two seasons, so the folds are the tails of AW17, SS18, AW18, SS19 and AW19 "
    "(last quarter of each season's launches, fitted on everything launched before). Their level "
    "against the fit set swings from +70% (AW18 tail) to -19% (AW19 tail): the sign of the bias on "
    "one season is mostly the season's level, which no feature here predicted (see below).",
    "Product feature path alone (FeaturePipeline + one log-L2 Forecaster, weekday shares): WAPE6 "
    "55.1 on the tails vs 62.8 for the attribute kNN; bias -17%; screening 50.5%.",
    "Adding the benchmark columns (colour/fabric/extra categoricals, calendar, honest target "
    "encodings, Google Trends) to log-L2: 55.3 (fold-level changes of +-4 points either way; no "
    "clear gain on its own). Without Google Trends: 57.4 on the four first folds vs 57.0 with.",
    "Boosting base: the ridge read-out (product default) 55.3; a seasonal level reference "
    "(last year's level x this year's trend) 55.6; both 57.3; none 54.7 but bias -27%. Kept the "
    "ridge read-out.",
    "Losses (weekday shares): log-L2 55.3 (bias -19%), Tweedie 55.2 (bias -5%), Huber on log 54.9 "
    "(-12%), L1 on log 56.0 (-17%); slower/smaller trees (lr 0.01, 15 leaves, 50 per leaf) 55.0 / "
    "55.8; more regularised log-L2 (feature fraction 0.5, lambda 10) 54.5 (-19%). Averaging "
    "log-L2 and Tweedie: 54.6 (-12%), screening 50.7%.",
    "Weekly shape: with the *actual* 6-week totals, spreading them by launch-weekday mean shares "
    "gives WAPE6 26.0 (12 weeks 43.6), by the analogs' curves 31.0, by one mean curve 28.0, by a "
    "LightGBM share model over (week, weekday, ISO week of the cell, category, colour, fabric, "
    "season position) 24.2 (12 weeks 40.1). With forecast totals the share model takes the blend "
    "from 54.6 to 53.9 (12 weeks 59.7 -> 57.7).",
    "Level: fixed multipliers on the blend's total: x1.1 -> 55.2 (bias -3%), x1.2 -> 57.3 (+6%); "
    "the Forecaster's own bias scale (set on the last 20% of the fit period) is a candidate below.",
]


def _pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:+.{digits}f}%"


def _num(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _metric_row(name: str, m: dict) -> str:
    return (
        f"| {name} | {_num(m['wape6'])} | {_num(m['mae6'])} | {_num(m['wape12'])} | {_num(m['mae12'])} "
        f"| {_pct(m['bias6'])} | {_num(100 * m['screen_p25'])}% |"
    )


HEADER = "| | WAPE 6w | MAE 6w | WAPE 12w | MAE 12w | bias 6w total | screening @25% |\n|---|---|---|---|---|---|---|"


def _plots(out_dir: Path, document: dict, frame: pd.DataFrame, y: np.ndarray, f: np.ndarray, published: dict) -> dict[str, str]:
    names = {}
    knn = published["attribute kNN (k=11)"]

    # 1. mean weekly curve per test season
    fig = Figure(figsize=(9, 3.4))
    seasons = sorted(frame["season"].unique())
    for i, season in enumerate(seasons):
        ax = fig.add_subplot(1, len(seasons), i + 1)
        mask = (frame["season"] == season).to_numpy()
        weeks = np.arange(y.shape[1])
        ax.plot(weeks, y[mask].mean(axis=0), "k-o", ms=3, label="actual")
        ax.plot(weeks, f[mask].mean(axis=0), "C0-o", ms=3, label="model")
        ax.plot(weeks, knn[mask].mean(axis=0), "C1--", label="attribute kNN")
        ax.axvline(5.5, color="0.7", lw=0.8)
        ax.set_title(f"test {season} ({mask.sum()} products)")
        ax.set_xlabel("week after release")
        if i == 0:
            ax.set_ylabel("mean units per product")
            ax.legend(fontsize=8)
    fig.tight_layout()
    names["curve"] = "visuelle_curve.png"
    fig.savefig(out_dir / names["curve"], dpi=110)

    # 2. 6-week totals, forecast vs actual
    fig = Figure(figsize=(4.6, 4.4))
    ax = fig.add_subplot(1, 1, 1)
    actual, forecast = y[:, :6].sum(axis=1), f[:, :6].sum(axis=1)
    ax.scatter(forecast + 1, actual + 1, s=8, alpha=0.5)
    lim = [1, max(actual.max(), forecast.max()) * 1.5]
    ax.plot(lim, lim, color="0.5", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("forecast units, weeks 0-5 (+1)")
    ax.set_ylabel("actual units, weeks 0-5 (+1)")
    ax.set_title("test products")
    fig.tight_layout()
    names["scatter"] = "visuelle_scatter.png"
    fig.savefig(out_dir / names["scatter"], dpi=110)

    # 3. WAPE 6w: baselines, ablation steps
    fig = Figure(figsize=(8, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    labels = list(document["test"]["baselines"]) + [a["step"] for a in document["ablation"]]
    values = [m["wape6"] for m in document["test"]["baselines"].values()] + [a["wape6"] for a in document["ablation"]]
    colours = ["C1"] * len(document["test"]["baselines"]) + ["C0"] * len(document["ablation"])
    ax.barh(range(len(labels)), values, color=colours)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(document["goal"]["wape6_target"], color="k", ls="--", lw=0.8, label="goal")
    for i, v in enumerate(values):
        ax.text(v + 0.3, i, f"{v:.1f}", va="center", fontsize=8)
    ax.set_xlabel("test WAPE, weeks 0-5")
    ax.set_xlim(40, max(values) + 5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    names["ablation"] = "visuelle_ablation.png"
    fig.savefig(out_dir / names["ablation"], dpi=110)

    # 4. validation folds: chosen model vs attribute kNN
    val = document.get("validation")
    if val:
        fig = Figure(figsize=(7, 3.2))
        ax = fig.add_subplot(1, 1, 1)
        folds = [f["fold"] for f in val["folds"]]
        x = np.arange(len(folds))
        model = [val["candidates"][val["chosen"]][fold]["wape6"] for fold in folds]
        base = [val["baselines"][fold]["attribute kNN (k=11)"]["wape6"] for fold in folds]
        ax.bar(x - 0.2, base, 0.4, color="C1", label="attribute kNN")
        ax.bar(x + 0.2, model, 0.4, color="C0", label="model (chosen)")
        ax.set_xticks(x, folds)
        ax.set_ylabel("validation WAPE, weeks 0-5")
        ax.set_ylim(30, max(base + model) + 5)
        ax.legend(fontsize=8)
        fig.tight_layout()
        names["validation"] = "visuelle_validation.png"
        fig.savefig(out_dir / names["validation"], dpi=110)
    return names


def write_report(
    document: dict, out_dir: Path, frame: pd.DataFrame, y: np.ndarray, f: np.ndarray, published: dict
) -> Path:
    out_dir = Path(out_dir)
    plots = _plots(out_dir, document, frame, y, f, published)
    test = document["test"]
    goal = document["goal"]
    knn = test["baselines"]["attribute kNN (k=11)"]
    cfg = document["config"]
    lines = [
        "# VISUELLE benchmark",
        "",
        "Real new-product launch sales: 5,080 training and 497 test products of one fast-fashion retailer "
        "(VISUELLE v1, Skenderi et al., *Well Googled is Half Done*, arXiv 2109.09824). "
        "Reproduce: `trialcast benchmark visuelle --data ../shared/benchmarks/visuelle --out docs/benchmarks/` "
        f"(this run: {document['timings_seconds']['total'] / 60:.1f} min on {document['environment']['threads']} threads).",
        "",
        "Protocol (the data set's README): fit on train.csv only; every setting chosen on time-based validation "
        "folds inside train.csv; test.csv scored once. WAPE = 100 * sum|y - f| / sum y over products x weeks, "
        "MAE in units; 6 weeks = weeks 0..5, 12 weeks = weeks 0..11. Bias = (sum f - sum y) / sum y over "
        "weeks 0..5. Screening precision: of the quarter of test products with the highest 6-week forecast, "
        "the share truly in the top quarter (random = 25%).",
        "",
        "## Test results",
        "",
        HEADER,
        _metric_row("**trialcast (chosen)**", test["model"]),
    ]
    for name, m in test["baselines"].items():
        lines.append(_metric_row(name, m))
    lines += [
        "",
        f"Chosen configuration: **{cfg['label']}** (see Validation).",
        f"P10-P90 band of the 6-week total covers {100 * test['p10_p90_coverage_of_6w_total']:.0f}% of test products (nominal 80%).",
        "",
        "### Against the goal",
        "",
        "| goal | target | result | met |",
        "|---|---|---|---|",
        f"| 6-week WAPE at least 5 points below the attribute kNN ({_num(knn['wape6'])}) | <= {_num(goal['wape6_target'])} "
        f"| {_num(goal['wape6'])} ({_num(goal['wape6_gain_vs_knn'])} points below) | {'yes' if goal['wape6_met'] else 'no'} |",
        f"| bias of the 6-week total within +-10% | +-10% | {_pct(goal['bias6'])} | {'yes' if goal['bias6_met'] else 'no'} |",
        f"| screening precision | >= 48% | {_num(100 * goal['screen_p25'])}% | {'yes' if goal['screen_p25_met'] else 'no'} |",
        "",
    ]
    if not goal["all_met"]:
        misses = []
        if not goal["wape6_met"]:
            misses.append(f"WAPE 6w misses by {goal['wape6'] - goal['wape6_target']:.1f} points")
        if not goal["bias6_met"]:
            misses.append(f"the bias is {100 * (abs(goal['bias6']) - 0.10):.1f} points outside +-10%")
        if not goal["screen_p25_met"]:
            misses.append(f"screening precision misses by {100 * (0.48 - goal['screen_p25']):.1f} points")
        lines += [f"**Goal not fully met:** {'; '.join(misses)}. What was tried is listed below.", ""]
    else:
        lines += ["**All three goals are met on test.**", ""]
    lines += ["By test season:", "", "| season | n | model WAPE 6w | kNN WAPE 6w | model bias 6w | kNN bias 6w | model screening | kNN screening |",
              "|---|---|---|---|---|---|---|---|"]
    for season, s in test["by_season"].items():
        m, k = s["model"], s["attribute kNN (k=11)"]
        lines.append(
            f"| {season} | {s['n']} | {_num(m['wape6'])} | {_num(k['wape6'])} | {_pct(m['bias6'])} | {_pct(k['bias6'])} "
            f"| {_num(100 * m['screen_p25'])}% | {_num(100 * k['screen_p25'])}% |"
        )
    lines += [
        "",
        f"![mean weekly curve]({plots['curve']})",
        "",
        f"![forecast vs actual]({plots['scatter']})",
        "",
        "### Harness check (fixed baselines against the README's reference values)",
        "",
        "| baseline | metric | measured here | README |",
        "|---|---|---|---|",
    ]
    for name, refs in document["harness_check"].items():
        for metric, pair in refs.items():
            lines.append(f"| {name} | {metric} | {_num(pair['measured'], 2)} | {_num(pair['readme'])} |")
    lines += [
        "",
        "The published attribute kNN (k=11 over category/colour/fabric, all ties at the k-th distance kept) uses "
        "every training product, including ones launched after the test product (AW19 products of train.csv were "
        "released until 2019-10-25, after the SS19 test products) and ones whose 12 weeks were not over at the test "
        "launch. The honest variant keeps only neighbours launched at least 84 days (12 weeks) before.",
        "",
        "## Where the signal comes from (ablation on test)",
        "",
        "Same configuration, growing feature groups. Rows without the picture use a pipeline fitted with every "
        "picture removed (its ridge read-out, PCA and analogs see the copy only). The copy is text built from the "
        "attribute words (VISUELLE has no free text), embedded by USE-m3.",
        "",
        "| step | WAPE 6w | WAPE 12w | bias 6w | screening | WAPE 6w, products with a picture |",
        "|---|---|---|---|---|---|",
    ]
    for a in document["ablation"]:
        lines.append(
            f"| {a['step']} | {_num(a['wape6'])} | {_num(a['wape12'])} | {_pct(a['bias6'])} | {_num(100 * a['screen_p25'])}% "
            f"| {_num(a['with_picture_subset']['wape6'])} |"
        )
    pe = document["picture_effect"]
    lines += [
        "",
        f"Pictures: {pe['n_train_with_picture']} training and {pe['n_test_with_picture']} test products have one "
        "(most pictures of the official release are not in this copy). On the test products with a picture: "
        f"WAPE 6w {_num(pe['without_picture']['wape6'])} without it, {_num(pe['with_picture']['wape6'])} with it "
        f"(bias {_pct(pe['without_picture']['bias6'])} -> {_pct(pe['with_picture']['bias6'])}). "
        f"With {pe['n_test_with_picture']} products, a difference of a few points is within noise.",
        "",
        f"![WAPE by step]({plots['ablation']})",
        "",
        "Google Trends: for the category, colour and fabric word of each product, the 52 weekly values before "
        "launch (only weeks over before the release day) summarised as the 52-week mean, the last 4 weeks "
        "(absolute and relative), the 13-week trend, and last year's value over the 6 coming weeks.",
        "",
    ]
    val = document.get("validation")
    lines += ["## Validation (train.csv only) and what was tried", ""]
    if val:
        lines += [
            "Folds: the last quarter of each season's launches (the test is the last launches of SS19 and AW19), "
            "each fitted on every train.csv product launched before it. Selection rule: the lowest mean 6-week "
            "WAPE among candidates whose mean 6-week bias is within +-10%.",
            "",
            "| fold | fit | validation | launches | mean units 6w: fit | validation |",
            "|---|---|---|---|---|---|",
        ]
        for fold in val["folds"]:
            lines.append(
                f"| {fold['fold']} | {fold['n_fit']} | {fold['n_validation']} | {fold['validation_launches'][0]} .. "
                f"{fold['validation_launches'][1]} | {_num(fold['fit_mean_units6'], 0)} | {_num(fold['validation_mean_units6'], 0)} |"
            )
        folds = [fold["fold"] for fold in val["folds"]]
        lines += [
            "",
            "Mean over the folds (per-fold WAPE 6w in the last column):",
            "",
            "| candidate | WAPE 6w | WAPE 12w | bias 6w | screening | WAPE 6w per fold (" + ", ".join(folds) + ") |",
            "|---|---|---|---|---|---|",
        ]
        for label, m in val["mean"].items():
            per_fold = val["candidates"].get(label) or {f: val["baselines"][f][label] for f in folds}
            mark = " **(chosen)**" if label == val["chosen"] else ""
            lines.append(
                f"| {label}{mark} | {_num(m['wape6'])} | {_num(m['wape12'])} | {_pct(m['bias6'])} | {_num(100 * m['screen_p25'])}% "
                f"| {', '.join(_num(per_fold[f]['wape6']) for f in folds)} |"
            )
        lines += ["", f"![validation]({plots['validation']})", ""]
    else:
        lines += ["This run skipped the validation folds (`--no-validation`); the configuration was given.", ""]
    lines += ["Exploration before the candidate list was fixed (scratch runs on the same folds, not re-run by this command):", ""]
    lines += [f"- {item}" for item in EXPLORATION]
    lines += [
        "",
        "## Model",
        "",
        "- Features: the product's `FeaturePipeline` with `VISUELLE_SPEC` (target `sales_6w`, curve "
        f"`sales_w0..w11`, no price): picture ({cfg['image_encoder']}) and copy ({cfg['text_encoder']}) embeddings, "
        f"their PCA axes ({cfg['picture_components']} / {cfg['copy_components']}), the time-honest ridge read-out "
        f"used as the boosting base, analog features (gap {cfg['analog_gap_days']} days: a product's 6-week sales are "
        "known 42 days after launch). Plus, in `training/visuelle/features.py`: colour, fabric, extra and season "
        "type as LightGBM categoricals; launch weekday, days in week 0, day of year, days into the season; honest "
        "target encodings of each attribute word and pair (products launched >= 42 days before) and recent sales "
        "levels; Google Trends summaries.",
        "- Total: the product's `Forecaster` (LightGBM from the ridge base margin, rounds by early stopping on "
        "the last 20% of the fit period, then refit on everything) once per loss; P50 averaged over the losses.",
        "- Weekly curve: total x shares of a LightGBM share model over (product, week) cells: week, launch weekday, "
        "ISO week and day of year of the cell, category, season type, colour, fabric, days into the season.",
        "- Week 0 is only the rest of the release day's calendar week (a Sunday release has one day): the launch "
        "weekday drives both the week-0 share and the 6-week total.",
        f"- Negative returns: {document['data']['clipped_negative_values']} weekly values of train.csv "
        f"({document['data']['clipped_negative_units']} units) are clipped to 0 by the adapter.",
        "",
        "## Files",
        "",
        "- `visuelle.json`: every number of this report.",
        "- `visuelle_test_forecasts.csv`: external_code, week (0..11), forecast (units) for every test product.",
        "",
        "Timings (s): " + ", ".join(f"{k} {v}" for k, v in document["timings_seconds"].items()) + ".",
        "",
    ]
    path = out_dir / "visuelle.md"
    path.write_text("\n".join(lines))
    return path
