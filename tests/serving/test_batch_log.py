"""Exactly once in the forecast log, without a model: ``serving.batch.score_file`` with a predictor
that logs through the real ``ForecastLog``, on SQLite and on the PostgreSQL server. A chunk whose
forecasts were logged but whose part file was never written (a kill in between) is scored again
on resume under the same ids, so the log ends with one row per scored row, the scores' ids, and
the values the scores file holds. And a web job killed after its scores were written is finished
on restart, never scored again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from features.config import Settings
from serving import batch
from serving.forecast_log import ForecastLog

CHUNK = 4


class Killed(Exception):
    """Stands for a SIGKILL between a chunk's log write and its part file."""


class LoggingPredictor:
    """Answers every record alike (P50 from the pass number, so a replay is told apart) and logs
    the answers through the real forecast log, as ``serving.predictor.Predictor.predict`` does."""

    image_required = True  # as a model trained on pictures

    def __init__(self, settings: Settings) -> None:
        self.settings, self.version, self.passes = settings, "7", 0
        self.log = ForecastLog(settings, self.version)

    def predict(self, records: list[dict[str, Any]], images: list[bytes | None], *,
                ids: list[str] | None = None) -> list[dict[str, Any]]:
        self.passes += 1
        answers = [answer(100.0 + self.passes) for _ in records]
        self.log.record(records, images, answers, ids=ids)
        return answers


def answer(p50: float) -> dict[str, Any]:
    return {"ok": True, "assumed": {}, "analogs": [], "model": {"version": "7"}, "quantity": {"units": p50},
            "forecast": {"p10": p50 / 2, "p50": p50, "p90": p50 * 2, "curve": [p50 / 7] * 7},
            "decision": {"label": "GO", "reasons": ["CLEARS_BREAK_EVEN"], "message": "m", "break_even_units": 60.0}}


def candidates(folder: Path, rows: int) -> Path:
    """A candidates table of ``rows`` SKUs with a picture each, and one row whose picture is missing."""
    (folder / "images").mkdir(parents=True)
    for n in range(rows):
        (folder / "images" / f"{n}.png").write_bytes(f"picture {n}".encode())
    table = pd.DataFrame({"sku_id": [f"S{n:03d}" for n in range(rows)], "title": "t", "cost_price": "10",
                          "image": [f"images/{n}.png" for n in range(rows)]})
    table.loc[6, "image"] = "images/missing.png"  # an error row: no forecast, no log row
    path = folder / "candidates.csv"
    table.to_csv(path, index=False)
    return path


def test_a_chunk_scored_again_after_a_kill_adds_no_log_row(ledger_url: str, logged, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=tmp_path / "home", database_url=ledger_url)
    table, out = candidates(tmp_path / "in", 11), tmp_path / "scores.parquet"
    parts = out.with_name(out.name + ".parts")
    write = batch._atomic_write

    def killed_at_second_part(frame: pd.DataFrame, path: Path) -> None:
        if path == parts / f"{CHUNK:09d}.parquet":
            raise Killed
        write(frame, path)

    monkeypatch.setattr(batch, "_atomic_write", killed_at_second_part)
    with pytest.raises(Killed):
        batch.score_file(table, out, LoggingPredictor(settings), chunk=CHUNK, progress=False)
    assert sorted(p.name for p in parts.glob("*.parquet")) == ["000000000.parquet"]
    assert len(logged(ledger_url)) == 2 * CHUNK - 1  # the second chunk is on the log (one error row)

    monkeypatch.setattr(batch, "_atomic_write", write)
    summary = batch.score_file(table, out, LoggingPredictor(settings), chunk=CHUNK, progress=False)
    assert summary["resumed_chunks"] == 1 and summary["rows"] == 11 and summary["failed"] == 1
    scores = pd.read_parquet(out)
    ok = scores[scores["error"].isna()]
    assert scores["forecast_id"].isna().tolist() == [n == 6 for n in range(11)]
    assert ok["forecast_id"].str.fullmatch(r"[0-9a-f]{32}").all() and not ok["forecast_id"].duplicated().any()
    # One log row per scored row, none lost, none doubled, each as the scores file has it.
    assert logged(ledger_url) == dict(zip(ok["forecast_id"], ok["p50"]))


def test_runs_of_the_same_file_get_ids_of_their_own(logged, tmp_path: Path) -> None:
    """The ids are keyed by the run, not by the file: scoring a file again is a new set of forecasts."""
    settings = Settings(home=tmp_path / "home")
    table = candidates(tmp_path / "in", 8)
    first = batch.score_file(table, tmp_path / "a.parquet", LoggingPredictor(settings), chunk=CHUNK, progress=False)
    second = batch.score_file(table, tmp_path / "b.parquet", LoggingPredictor(settings), chunk=CHUNK, progress=False)
    ids = [set(pd.read_parquet(s["out"])["forecast_id"].dropna()) for s in (first, second)]
    assert len(ids[0]) == len(ids[1]) == 7 and not ids[0] & ids[1]
    assert set(logged(settings.ledger_url)) == ids[0] | ids[1]


def test_a_job_killed_after_its_scores_were_written_is_finished_not_scored_again(logged, tmp_path: Path) -> None:
    from features.ledger import jobs as store
    from serving.jobs import JobRunner, job_folder

    settings = Settings(home=tmp_path / "home", batch_chunk=CHUNK)
    predictor = LoggingPredictor(settings)
    runner = JobRunner(settings, lambda: predictor)
    job = store.create_job(runner.engine, "j" * 32, lang="en", filename="c.csv", total=11, summary={"pictures": 11})
    folder = job_folder(settings, job["id"])
    table = candidates(folder, 11)
    batch.score_file(table, folder / "scores.parquet", predictor, chunk=CHUNK, progress=False)
    before, passes = logged(settings.ledger_url), predictor.passes

    runner.run(store.get_job(runner.engine, job["id"]))  # the restart's run of the job still "running"
    assert predictor.passes == passes and logged(settings.ledger_url) == before
    done = store.get_job(runner.engine, job["id"])
    assert done["status"] == "done" and (done["done"], done["total"]) == (11, 11)
    assert done["summary"] == {"pictures": 11, "counts": {"GO": 10, "REVIEW": 0, "NO_GO": 0}, "scored": 10,
                               "failed": 1, "resumed_chunks": 3}
