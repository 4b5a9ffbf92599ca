"""Replay of the quick-response update (features.ledger.track) on simulated launches: the true level
of each launch is its forecast x a lognormal surprise (sd 0.5), days are Poisson around it. Prints the
WAPE of the remaining days' forecast, prior vs updated, after 1, 3 and 5 days observed.

    .venv/bin/python benchmarks/track_replay.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.ledger.track import replay_gain

CURVE = np.array([20.0, 18.0, 15.0, 14.0, 12.0, 11.0, 10.0]) / 100  # shares of the 7 days


def simulated(n: int = 2000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        curve = rng.lognormal(np.log(100), 0.6) * CURVE
        actual = rng.poisson(curve * rng.lognormal(0, 0.5)).astype(float)
        rows.append({"curve": list(curve), "p10": 0.5 * curve.sum(), "actual": actual})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    frame = simulated()
    for days in (1, 3, 5):
        g = replay_gain(frame, days, 0.3)
        print(f"after {days} day(s), {g['n']} launches: remaining-days WAPE prior {g['prior_wape']:.1%} "
              f"-> updated {g['updated_wape']:.1%}")
