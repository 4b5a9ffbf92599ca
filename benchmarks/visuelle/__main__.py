"""``python -m benchmarks.visuelle --data DIR --out docs/benchmarks/``: the VISUELLE benchmark.

A thin command over ``benchmark.run_benchmark``. It lives outside the ``trialcast`` command because
the product never imports the benchmarks. As with ``trialcast``, a user error (a missing data
file, a folder that breaks the contract, a bad option) ends in one line ``error: ...`` on stderr and
exit status 2, without a traceback; anything else (a bug) keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

for _var in ("BENTOML_DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
    os.environ.setdefault(_var, "true")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line ends in the same one ``error:`` line as other user errors."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parser() -> argparse.ArgumentParser:
    """The command line (the options of the former ``trialcast benchmark visuelle``)."""
    p = _Parser(
        prog="python -m benchmarks.visuelle",
        description="VISUELLE under its published protocol: validate on train.csv, report on test.csv.",
    )
    p.add_argument("--data", type=Path, required=True,
                   help="VISUELLE folder (train.csv, test.csv, gtrends.csv, image_index.csv, images/).")
    p.add_argument("--out", type=Path, default=Path("docs/benchmarks"),
                   help="Where visuelle.md, visuelle.json and the forecasts go (default docs/benchmarks).")
    p.add_argument("--home", type=Path, default=None,
                   help="Embedding cache folder (default $TRIALCAST_HOME, else the temp dir).")
    p.add_argument("--threads", type=_positive, default=2, help="CPU threads of the encoders (default 2).")
    p.add_argument("--validation", action=argparse.BooleanOptionalAction, default=True,
                   help="Choose the configuration on the validation folds (default: yes).")
    return p  # fmt: skip


def _positive(text: str) -> int:
    """A thread count: a whole number >= 1 (argparse turns the error into its one line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, print its headline numbers as JSON; user errors exit 2 in one line."""
    args = parser().parse_args(argv)
    from benchmarks.visuelle.benchmark import run_benchmark

    try:
        doc = run_benchmark(
            args.data, args.out, home=args.home, threads=args.threads, validation=args.validation
        )
    except (ValueError, OSError) as error:  # bad input or a missing file: the user fixes it
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    summary = {"test": doc["test"]["model"], "goal": doc["goal"], "config": doc["config"]["label"]}
    print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
