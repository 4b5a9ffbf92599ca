"""How the cost of each step grows with the catalogue: 3k, 30k and 300k past SKUs.

    .venv/bin/python -m benchmarks.growth --sample sample --sizes 3000 30000 300000

Each (step, size) runs in a child process of its own, so its peak memory (``VmHWM``) is its own.
The catalogues are SYNTHETIC: launch days spread over four years, picture (1,280-d) and copy
(512-d) vectors drawn around one centre per family of alike SKUs (the sizes past the sample have
no pictures to encode), sales from the family, the price and the season. What is timed is the
product's own code on them:

- ``embed``: the real encoders on the sample's real pictures and copy, one process and Ray with 2
  workers (``features.embed``, ``features.scale``); measured at a few hundred SKUs and projected to
  each size at the measured rate (an encoder's cost per SKU does not depend on the catalogue).
- ``analogs-exact`` / ``analogs-approx``: what training asks of the analog index, every SKU's
  analogs among those launched before it (``AnalogIndex.search_kinds``, three kinds), timed on
  ``--queries`` SKUs drawn over the catalogue and scaled to all n (plus the graphs' full build on
  the approximate path), with recall@20 of the approximate path against exact search.
- ``serve-search``: one new SKU's analogs against the whole history (what each scored candidate
  costs), exact and approximate, 200 requests one at a time (seconds per request).
- ``projection``: the time-honest ridge read-out fitted on the whole catalogue.
- ``boost``: LightGBM, the product's forecaster (calibrate on a fold, refit), on n rows x 53
  features: the reference cost the issue excludes ("beyond LightGBM's own cost").
- ``train-local1`` / ``train-local2`` / ``train-ray2``: a whole training run on the sample's real
  catalogue (warm ``--cache``), its independent fits in one process, in two local processes, or as
  Ray tasks on a local Ray of 2 CPUs; at the first size only (it needs real pictures and copy).

The growth exponent is the slope of log time against log n over the sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

PICTURE_DIM, COPY_DIM = 1280, 512
DAY0 = pd.Timestamp("2021-01-01")


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def synthetic(n: int, seed: int = 0) -> dict:
    """A synthetic history of ``n`` SKUs in launch order (see the module docstring)."""
    rng = np.random.default_rng(seed)
    families = max(30, n // 60)
    family = rng.integers(0, families, n)
    days = np.sort(rng.integers(0, 4 * 365, n))
    picture = np.empty((n, PICTURE_DIM), dtype=np.float32)
    copy = np.empty((n, COPY_DIM), dtype=np.float32)
    for out, dim in ((picture, PICTURE_DIM), (copy, COPY_DIM)):
        centres = rng.normal(size=(families, dim)).astype(np.float32)
        for start in range(0, n, 50_000):  # in slices: the noise of 300k x 1,280 at once is 3 GB
            stop = min(n, start + 50_000)
            out[start:stop] = _unit(centres[family[start:stop]] + 1.1 * rng.normal(size=(stop - start, dim)))
    picture[rng.random(n) < 0.1] = np.nan  # SKUs without a picture
    cost = rng.uniform(20, 200, n)
    season = np.sin(2 * np.pi * days / 365.25)
    sales = np.round(np.exp(3.0 + rng.normal(0, 0.6, families)[family] - 0.4 * np.log(cost / 60) + 0.3 * season
                            + rng.normal(0, 0.3, n)))
    frame = pd.DataFrame({
        "sku_id": [f"G{i:07d}" for i in range(n)],
        "launch_date": DAY0 + pd.to_timedelta(days, unit="D"),
        "category": np.array(["T恤", "连衣裙", "牛仔裤", "外套", "卫衣", "衬衫", "半身裙", "短裤"])[family % 8],
        "channel": np.array(["web", "app", "store"])[rng.integers(0, 3, n)],
        "cost_price": cost, "list_price": cost * rng.uniform(2.0, 3.0, n), "sales_7d": sales,
    })
    return {"frame": frame, "picture": picture, "copy": copy, "days": days}


def _index(data: dict, exact_max_rows: int | None):
    from features.analogs import AnalogIndex

    f = data["frame"]
    return AnalogIndex(f["sku_id"].to_numpy(), f["launch_date"], f["sales_7d"].to_numpy(), data["picture"],
                       data["copy"], list_price=f["list_price"].to_numpy(), exact_max_rows=exact_max_rows)


def _queries(n: int, count: int) -> np.ndarray:
    return np.sort(np.random.default_rng(1).choice(n, min(n, count), replace=False))


def _search(index, data: dict, rows: np.ndarray, dates: pd.Series | None = None, exact: bool = False) -> dict:
    """Analogs of history rows ``rows``, read back from the index itself (the benchmark keeps no
    second copy of 300k vectors); ``exact``: the same index searched exactly (the reference)."""
    from features.analogs import ANALOG_KINDS

    dates = data["frame"]["launch_date"].iloc[rows] if dates is None else dates
    picture = np.where(index.has_picture[rows, None], index.picture[rows], np.nan)
    kept, index.exact_max_rows = index.exact_max_rows, None if exact else index.exact_max_rows
    try:
        return index.search_kinds(picture, index.copy[rows], dates, 20, ANALOG_KINDS,
                                  exclude_ids=data["frame"]["sku_id"].to_numpy()[rows], chunk=64 if exact else 1024)
    finally:
        index.exact_max_rows = kept


def _recalls(approx: dict, exact: dict) -> np.ndarray:
    """Recall@20 of each query, averaged over the kinds (NaN where exact search found nothing)."""
    per_kind = []
    for kind, reference in exact.items():
        row = [len(set(a[a >= 0]) & set(e[e >= 0])) / (e >= 0).sum() if (e >= 0).any() else np.nan
               for a, e in zip(approx[kind].index, reference.index)]
        per_kind.append(row)
    return np.nanmean(np.array(per_kind, dtype=float), axis=0)


def _recall(approx: dict, exact: dict) -> float:
    return float(np.nanmean(_recalls(approx, exact)))


def _walked(index, data: dict, rows: np.ndarray) -> np.ndarray:
    """The size of the graph each query walks (0: the query is searched exactly)."""
    from features.analogs import day_numbers

    prefix = index._prefix(day_numbers(data["frame"]["launch_date"].iloc[rows]))
    sizes = np.array(sorted(index._ann()["picture"].sizes))
    walked = sizes[np.minimum(np.searchsorted(sizes, prefix), len(sizes) - 1)]
    return np.where(prefix > index.exact_max_rows, walked, 0)


def _sweep(index, data: dict, check: np.ndarray, exact: dict, args: argparse.Namespace) -> list[dict]:
    """Recall and query time of other beams and candidate counts on the graphs already built."""
    graphs = [index._ann()["picture"], index._ann()["copy"]]
    kept = graphs[0].ef_search, graphs[0].candidates
    walked = _walked(index, data, check)
    out = []
    try:
        for ef in args.sweep_ef:
            for count in args.sweep_candidates:
                for g in graphs:
                    g.ef_search, g.candidates = ef, count
                start = time.perf_counter()
                found = _search(index, data, check)
                ms = 1000 * (time.perf_counter() - start) / len(check)
                per_query = _recalls(found, exact)
                by_size = {int(w): round(float(np.nanmean(per_query[walked == w])), 4) for w in np.unique(walked)}
                out.append({"step": "analogs-approx-sweep", "ef_search": ef, "candidates": count,
                            "recall_at_20": float(np.nanmean(per_query)), "per_query_ms": ms,
                            "recall_by_graph_walked": by_size, "seconds": 0.0})
                print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    finally:
        for g in graphs:
            g.ef_search, g.candidates = kept
    return out


def step_analogs(n: int, args: argparse.Namespace, approximate: bool) -> list[dict]:
    """Training's search (every SKU among those before it) and serving's (a new SKU against all of
    the history), on one index: the approximate path's graphs are built once for both."""
    data = synthetic(n)
    rows = _queries(n, args.queries)
    index = _index(data, args.exact_max_rows if approximate else None)
    del data["picture"], data["copy"]  # the index holds them (in float64)
    build = 0.0
    if approximate and len(index) > args.exact_max_rows:
        start = time.perf_counter()
        index._ann()
        build = time.perf_counter() - start
    start = time.perf_counter()
    found = _search(index, data, rows)
    per_query = (time.perf_counter() - start) / len(rows)
    train = {"seconds": build + per_query * n, "build_seconds": build, "per_query_ms": 1000 * per_query,
             "timed_queries": len(rows)}
    today = pd.Series([data["frame"]["launch_date"].max() + pd.Timedelta(days=30)])
    new = _queries(n, 200)
    start = time.perf_counter()
    for row in new:  # one request at a time, as the service gets them
        _search(index, data, np.array([row]), today)
    serve = {"seconds": (time.perf_counter() - start) / len(new)}
    train["search_peak_mb"] = serve["search_peak_mb"] = _peak_mb()  # before the exact reference below
    sweep = []
    if approximate:
        check = rows[np.linspace(0, len(rows) - 1, min(len(rows), args.recall_queries)).astype(int)]
        exact = _search(index, data, check, exact=True)
        keep = np.isin(rows, check)
        train["recall_at_20"] = _recall({k: type(v)(v.index[keep], v.similarity[keep]) for k, v in found.items()}, exact)
        sweep = _sweep(index, data, check, exact, args) if args.sweep_ef and len(index) > args.exact_max_rows else []
    kind = "approx" if approximate else "exact"
    return [{"step": f"analogs-{kind}", **train}, {"step": f"serve-search-{kind}", **serve}, *sweep]


def step_projection(n: int, args: argparse.Namespace) -> dict:
    from features.projection import TimeHonestRidge

    data = synthetic(n)
    frame = data["frame"]
    start = time.perf_counter()
    TimeHonestRidge(sorted(frame["category"].unique())).fit(frame, data["picture"], data["copy"],
                                                            np.log1p(frame["sales_7d"].to_numpy()))
    return {"seconds": time.perf_counter() - start}


def step_boost(n: int, args: argparse.Namespace) -> dict:
    from training.forecaster import Forecaster

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(n, 53)).astype(np.float32), columns=[f"f{i}" for i in range(53)])
    X["base_margin"] = 0.0
    y = np.round(np.exp(3 + X["f0"] - 0.5 * X["f1"] * X["f2"] + rng.normal(0, 0.3, n)).to_numpy())
    cut = int(0.8 * n)
    start = time.perf_counter()
    Forecaster("log_l2", threads=1).calibrate(X[:cut], y[:cut], X[cut:], y[cut:]).refit(X, y)
    return {"seconds": time.perf_counter() - start}


def _start_local_ray() -> float:
    """Start a local Ray of 2 CPUs as ``features.engine`` does (workers at normal priority), so the
    step's own session reuses it; returns the seconds the start took (timed apart from the step)."""
    import ray

    os.environ.setdefault("RAY_worker_niceness", "0")
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    return time.perf_counter() - start


def step_embed(n: int, args: argparse.Namespace, engine: str) -> dict:
    """The encoders' measured rate on the sample's real pictures, projected to ``n`` SKUs."""
    from features.catalogue import load_catalogue
    from features.config import Settings
    from features.embed import embed_frame

    frame = load_catalogue(Path(args.sample) / "catalogue.parquet").frame.iloc[:args.embed_rows]
    settings = Settings(home=Path(args.home), embed_engine=engine, ray_workers=2, threads=1)
    # Ray's start is a fixed cost; the actors' start and encoder loads are in the rate.
    fixed = _start_local_ray() if engine == "ray" else 0.0
    start = time.perf_counter()
    done = embed_frame(frame, settings)  # no cache: every vector computed
    seconds = time.perf_counter() - start
    return {"seconds": fixed + seconds * n / len(frame), "fixed_seconds": fixed, "measured_seconds": seconds,
            "measured_rows": len(frame), "rate_per_s": len(frame) / seconds, "vectors": done.computed}


def step_train(n: int, args: argparse.Namespace, mode: str) -> dict:
    """A whole training run on the sample's real catalogue (warm cache): the independent fits in one
    process, in 2 local processes, or as Ray tasks on a local Ray of 2 CPUs (its start timed apart)."""
    from features.config import Settings
    from training.data import load_dataset
    from training.train import train

    engine, workers = {"local1": ("local", 1), "local2": ("local", 2), "ray2": ("ray", 2)}[mode]
    settings = Settings(home=Path(args.home), cache_file=args.cache, threads=2, train_engine=engine,
                        train_workers=workers, ray_workers=2)
    data = load_dataset(Path(args.sample) / "catalogue.parquet", settings, progress=False)
    fixed = _start_local_ray() if engine == "ray" else 0.0
    start = time.perf_counter()
    result = train(data, settings, progress=False)
    return {"seconds": fixed + time.perf_counter() - start, "fixed_seconds": fixed, "rows": len(data.frame),
            "holdout_wape": result.holdout_metrics["wape"]}


STEPS = {
    "embed-local": lambda n, a: step_embed(n, a, "local"),
    "embed-ray2": lambda n, a: step_embed(n, a, "ray"),
    "analogs-exact": lambda n, a: step_analogs(n, a, False),  # and serve-search-exact
    "analogs-approx": lambda n, a: step_analogs(n, a, True),  # and serve-search-approx
    "projection": step_projection,
    "boost": step_boost,
    "train-local1": lambda n, a: step_train(n, a, "local1"),  # the sample's real catalogue only
    "train-local2": lambda n, a: step_train(n, a, "local2"),
    "train-ray2": lambda n, a: step_train(n, a, "ray2"),
}


def child(step: str, n: int, args: argparse.Namespace) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = STEPS[step](n, args)
    for result in results if isinstance(results, list) else [{"step": step, **results}]:
        print(json.dumps({**result, "n": n, "peak_mb": _peak_mb()}))


def exponent(sizes: list[int], seconds: list[float]) -> float:
    ok = [(s, t) for s, t in zip(sizes, seconds) if t and t > 0]
    if len(ok) < 2:
        return float("nan")
    return float(np.polyfit(np.log([s for s, _ in ok]), np.log([t for _, t in ok]), 1)[0])


def run(args: argparse.Namespace) -> list[dict]:
    results = []
    for step in args.steps:
        for n in args.sizes:
            if step == "analogs-exact" and n > args.exact_up_to:
                continue  # n^2: projected from the exponent of the sizes measured, said so in the table
            if step.startswith("train") and n != args.sizes[0]:
                continue  # a real training run needs real pictures and copy: the sample's size only
            if step.startswith("embed") and n != args.sizes[0]:  # one measurement, at its rate per SKU
                first = next(r for r in results if r["step"] == step)
                scaled = first["fixed_seconds"] + (first["seconds"] - first["fixed_seconds"]) * n / first["n"]
                results.append({**first, "n": n, "seconds": scaled})
                continue
            command = [sys.executable, "-m", "benchmarks.growth", "--child", step, str(n), *sys.argv[1:]]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{step} n={n} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            for line in done.stdout.strip().splitlines():
                if line.startswith("{"):
                    results.append(json.loads(line))
                    print(line, flush=True)
    return results


def table(results: list[dict], sizes: list[int]) -> str:
    lines = ["| step | " + " | ".join(f"n={n:,}: time, peak" for n in sizes) + " | exponent |",
             "| --- |" + " --- |" * (len(sizes) + 1)]
    for step in dict.fromkeys(r["step"] for r in results if not r["step"].endswith("-sweep")):
        by_n = {r["n"]: r for r in results if r["step"] == step}
        measured = [n for n in sizes if n in by_n]
        k = exponent(measured, [by_n[n]["seconds"] for n in measured])
        cells = []
        for n in sizes:
            if n in by_n:
                r = by_n[n]
                extra = f", recall {r['recall_at_20']:.3f}" if "recall_at_20" in r else ""
                peak = r.get("search_peak_mb", r["peak_mb"])  # the search's own, without the exact reference
                cells.append(f"{r['seconds']:.3g} s, {peak:,.0f} MB{extra}")
            elif measured and np.isfinite(k):
                last = measured[-1]
                cells.append(f"~{by_n[last]['seconds'] * (n / last) ** k:.3g} s (projected)")
            else:
                cells.append("")
        lines.append(f"| {step} | " + " | ".join(cells) + f" | {k:.2f} |")
    return "\n".join(lines)


def sweep_table(results: list[dict]) -> str:
    """Recall@20 and query time per beam and candidate count, overall and by graph size walked."""
    lines = ["| n | beam | candidates | recall@20 | ms per query | recall by graph walked (0: exact) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in (r for r in results if r["step"] == "analogs-approx-sweep"):
        walked = ", ".join(f"{int(k):,}: {v:.3f}" for k, v in r["recall_by_graph_walked"].items())
        lines.append(f"| {r['n']:,} | {r['ef_search']} | {r['candidates']} | {r['recall_at_20']:.4f} "
                     f"| {r['per_query_ms']:.1f} | {walked} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default="sample", help="The sample catalogue folder (real pictures for embed).")
    parser.add_argument("--home", default=".trialcast", help="State folder (the exported ONNX encoder).")
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 30000, 300000])
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=list(STEPS))
    parser.add_argument("--queries", type=int, default=1000, help="SKUs whose analogs are timed per size.")
    parser.add_argument("--recall-queries", type=int, default=200)
    parser.add_argument("--exact-max-rows", type=int, default=5000, help="Approximate search past this many SKUs.")
    parser.add_argument("--exact-up-to", type=int, default=30000, help="Largest size timed with exact training search.")
    parser.add_argument("--sweep-ef", type=int, nargs="*", default=[],
                        help="analogs-approx: also measure recall at these beams on the same graphs.")
    parser.add_argument("--sweep-candidates", type=int, nargs="*", default=[200],
                        help="With --sweep-ef: candidates per kind to try at each beam.")
    parser.add_argument("--cache", type=Path, default=None, help="train-*: the sample's embedding cache (warm).")
    parser.add_argument("--embed-rows", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    parser.add_argument("--child", nargs=2, metavar=("STEP", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]), args)
    print(f"growth benchmark: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, SYNTHETIC catalogues", flush=True)
    results = run(args)
    print(table(results, args.sizes))
    if any(r["step"] == "analogs-approx-sweep" for r in results):
        print(sweep_table(results))
    print(f"done; load {os.getloadavg()[0]:.1f}")
    if args.out:
        args.out.write_text(json.dumps({"load": os.getloadavg()[0], "results": results}, indent=1))


if __name__ == "__main__":
    main()
