"""Batch scoring, one process vs Ray with N workers, on the same champion and the same candidates
(the sample's candidates repeated under new ids up to ``--rows``), measured in the same run:

- rows/s of each, and Ray's rate against ``workers x`` the single-process rate (the issue's goal: >= 0.8);
- Ray's fixed cost (start, one model load per worker), and the batch size from which Ray pays:
  fixed cost / (1/single rate - 1/Ray rate), what ``Settings.ray_min_rows`` is set from. The steady
  rates are timed from when each chunk's part file appears, after each worker's first chunk.

    .venv/bin/python benchmarks/scale_scoring.py --home .trialcast --rows 400 --workers 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from features.config import Settings
from serving.batch import score_file
from serving.champion import load_champion


def candidates(sample: Path, rows: int, folder: Path) -> Path:
    """``rows`` candidates: the sample's, repeated under new SKU ids."""
    base = pd.read_csv(sample / "candidates.csv", dtype=str)
    frame = pd.concat([base] * (rows // len(base) + 1), ignore_index=True).head(rows)
    frame["sku_id"] = [f"B{i:07d}" for i in range(rows)]
    (folder / "images").mkdir()
    for name in set(base["image"]):  # copied: a symlink would lead out of the folder, which is refused
        shutil.copyfile(sample / name, folder / name)
    path = folder / "candidates.csv"
    frame.to_csv(path, index=False)
    return path


def _watch(parts: Path, seen: dict[str, float], stop: threading.Event) -> None:
    """When each chunk's part file first appears (the scorer removes them once it merges)."""
    while not stop.is_set():
        for part in parts.glob("*.parquet") if parts.exists() else ():
            seen.setdefault(part.name, time.perf_counter())
        time.sleep(0.02)


def timed(path: Path, predictor, engine: str, workers: int, chunk: int) -> tuple[float, dict, float]:
    """Seconds end to end, the summary, and the steady rate: rows per second between the first
    ``workers`` chunks done and the last (a worker's start and model load fall before its first)."""
    predictor.settings = predictor.settings.model_copy(update={"score_engine": engine, "ray_workers": workers})
    out = path.with_name(f"scores-{engine}.parquet")
    seen: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(out.with_name(out.name + ".parts"), seen, stop), daemon=True)
    watcher.start()
    start = time.perf_counter()
    summary = score_file(path, out, predictor, chunk=chunk, progress=False)
    seconds = time.perf_counter() - start
    stop.set()
    watcher.join()
    times = sorted(seen.values())
    steady = chunk * (len(times) - workers) / (times[-1] - times[workers - 1]) if len(times) > workers + 1 else float("nan")
    return seconds, summary, steady


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=Path(".trialcast"), help="A home with a gated champion.")
    parser.add_argument("--sample", type=Path, default=Path("sample"), help="The sample folder (candidates.csv).")
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    settings = Settings(home=args.home.resolve(), threads=1)
    predictor, message = load_champion(settings)
    if predictor is None:
        raise SystemExit(f"error: {message}")
    with tempfile.TemporaryDirectory() as tmp:
        path = candidates(args.sample.resolve(), args.rows, Path(tmp))
        timed(path, predictor, "local", 1, args.chunk)  # warm-up: encoders loaded, caches hot
        single, _, single_steady = timed(path, predictor, "local", 1, args.chunk)
        small = path.with_name("small.csv")
        pd.read_csv(path, dtype=str).head(args.workers).to_csv(small, index=False)
        fixed, _, _ = timed(small, predictor, "ray", args.workers, 1)  # start + one model load per worker
        ray_time, summary, steady = timed(path, predictor, "ray", args.workers, args.chunk)
    r1, r2 = args.rows / single, args.rows / ray_time
    print(f"{args.rows} rows, chunk {args.chunk}, load {os.getloadavg()[0]:.1f}: one process {r1:.1f} rows/s end to "
          f"end, {single_steady:.1f} steady; Ray x{args.workers} ({summary['ray_workers_used']} workers used) "
          f"{r2:.1f} rows/s end to end, {steady:.1f} steady = {steady / (args.workers * single_steady):.2f} of "
          f"{args.workers} x one process (steady: chunks after each worker's first)")
    gain = 1 / single_steady - 1 / steady
    crossover = f"{fixed / gain:,.0f} rows" if gain > 0 else "never on this machine"
    print(f"Ray fixed cost (start + model load per worker, {args.workers} rows): {fixed:.1f} s; "
          f"Ray pays from about {crossover}")


if __name__ == "__main__":
    main()
