"""The web page's batch jobs: a queue in the forecast log's database (``features.ledger.jobs``), a
fixed number of worker threads, cancellation, retention and clean-up, and the results as a person
reads them (table rows, CSV with a BOM, Excel).

A job's files live in ``<home>/batch_jobs/<id>/``: the table as uploaded, the pictures, and
``scores.parquet`` written by ``serving.batch.score_file`` chunk by chunk. A service that restarts,
or was killed with SIGKILL, finds the unfinished jobs in the database and resumes each from its
finished chunks: no row is lost or scored twice. Nothing a client sees names a server path.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from features import messages as m
from features.config import Settings
from features.ledger import jobs as store
from features.ledger import open_ledger

log = logging.getLogger("trialcast.jobs")
ORPHAN_SECONDS = 3600  # a job folder without a row (an upload refused mid-way by a crash) is removed after this
DECISIONS = ("GO", "REVIEW", "NO_GO")


ABSOLUTE_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\s'\"\\/:]+){2,}[\\/]?")


def scrub_paths(text: str) -> str:
    """An error text fit for a client: absolute file paths (the server's folders) replaced by "…"."""
    return ABSOLUTE_PATH.sub("…", text)


class Cancelled(Exception):
    """The job was cancelled while it ran."""


def job_folder(settings: Settings, job_id: str) -> Path:
    return settings.home / "batch_jobs" / job_id


TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx")
PICTURES = "pictures"  # a job's pictures (zip entries, picture files) live in this subfolder, never beside its table


def table_path(folder: Path, suffix: str) -> Path:
    """Where a job's uploaded table is kept: at the top of its folder, where no zip entry can land."""
    return folder / f"candidates{suffix}"


def candidates_file(folder: Path) -> Path | None:
    """The job's uploaded table: the one file ``table_path`` names (nothing from the pictures)."""
    return next((path for suffix in TABLE_SUFFIXES if (path := table_path(folder, suffix)).is_file()), None)


def pictures_folder(folder: Path) -> Path:
    """The folder a job's rows find their pictures in (jobs accepted before the pictures had their
    own subfolder keep them at the top of the job folder)."""
    pictures = folder / PICTURES
    return pictures if pictures.is_dir() else folder


def scored_summary(scores: pd.DataFrame, chunk: int) -> dict[str, int]:
    """What ``score_file`` reports, read back from a job's finished scores (every chunk resumed)."""
    failed = int(scores["error"].notna().sum())
    return {"rows": len(scores), "scored": len(scores) - failed, "failed": failed,
            "resumed_chunks": -(-len(scores) // chunk)}


class JobRunner:
    """``workers`` threads taking queued jobs oldest first; ``wake`` when a job is queued."""

    def __init__(self, settings: Settings, predictor_of: Any) -> None:
        self.settings, self.predictor_of = settings, predictor_of
        self.engine = open_ledger(settings)
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        """Resume what a restart interrupted, clean up, then start the workers."""
        for job in store.active_jobs(self.engine):
            if job["status"] == "running":  # its worker died with the last process
                store.set_job(self.engine, job["id"], status="queued")
        self.clean()
        for n in range(self.settings.batch_workers):
            thread = threading.Thread(target=self._loop, name=f"trialcast-batch-{n}", daemon=True)
            thread.start()
            self.threads.append(thread)
        self.wake.set()

    def queued(self) -> int:
        return sum(1 for j in store.active_jobs(self.engine) if j["status"] == "queued")

    def position(self, job_id: str) -> int:
        """How many jobs are ahead of a queued one."""
        ids = [j["id"] for j in store.active_jobs(self.engine)]
        return ids.index(job_id) if job_id in ids else 0

    def _claim(self) -> dict[str, Any] | None:
        with self.lock:
            for job in store.active_jobs(self.engine):
                if job["status"] == "queued":
                    store.set_job(self.engine, job["id"], status="running")
                    return job
        return None

    def _loop(self) -> None:
        while True:
            job = self._claim()
            if job is None:
                self.wake.wait(timeout=5)
                self.wake.clear()
                continue
            try:
                self.run(job)
            except Exception:  # a job reports its failure; the worker lives on
                log.exception("batch job %s failed", job["id"])
            self.clean()

    def run(self, job: dict[str, Any]) -> None:
        from serving.batch import score_file

        job_id = job["id"]
        folder = job_folder(self.settings, job_id)
        predictor = self.predictor_of()
        table = candidates_file(folder)
        if predictor is None or table is None:
            reason = "the model is not ready" if predictor is None else "the uploaded file is gone"
            store.set_job(self.engine, job_id, status="failed", error={"code": "job_failed", "params": {"reason": reason}})
            return

        def progress(done: int, total: int) -> None:
            current = store.get_job(self.engine, job_id) or {}
            if current.get("cancel"):
                raise Cancelled
            store.set_job(self.engine, job_id, done=done, total=total)

        out, summary = folder / "scores.parquet", None
        try:
            if not out.exists():  # it does when a kill came after scoring, before "done": never score twice
                summary = score_file(table, out, predictor, engine="local",  # never Ray in the server
                                     chunk=self.settings.batch_chunk, pictures=pictures_folder(folder),
                                     max_rows=self.settings.batch_max_rows, max_bytes=self.settings.batch_max_file_bytes,
                                     progress=False, on_progress=progress, by_name=True)
        except Cancelled:
            store.set_job(self.engine, job_id, status="cancelled")
            return
        except Exception as error:
            store.set_job(self.engine, job_id, status="failed",
                          error={"code": "job_failed", "params": {"reason": scrub_paths(f"{type(error).__name__}: {error}")}})
            raise
        scores = pd.read_parquet(out)
        summary = summary or scored_summary(scores, self.settings.batch_chunk)
        counts = {d: int((scores["decision"] == d).sum()) for d in DECISIONS}
        store.set_job(self.engine, job_id, status="done", done=summary["rows"], total=summary["rows"],
                      summary={**(job.get("summary") or {}), "counts": counts, "scored": summary["scored"],
                               "failed": summary["failed"], "resumed_chunks": summary["resumed_chunks"]})

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        job = store.get_job(self.engine, job_id)
        if job is None or job["status"] in store.FINISHED:
            return job
        if job["status"] == "queued":
            store.set_job(self.engine, job_id, status="cancelled", cancel=1)
        else:
            store.set_job(self.engine, job_id, cancel=1)  # the worker stops at its next chunk
        return store.get_job(self.engine, job_id)

    def clean(self) -> None:
        """Expired jobs and their files; folders no job row owns (older than an hour)."""
        root = self.settings.home / "batch_jobs"
        for job_id in store.expire_jobs(self.engine, timedelta(days=self.settings.batch_retention_days)):
            shutil.rmtree(root / job_id, ignore_errors=True)
        if not root.is_dir():
            return
        known = store.job_ids(self.engine)
        for folder in root.iterdir():
            if folder.name not in known and time.time() - folder.stat().st_mtime > ORPHAN_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- results as people read them
def _split(text: Any) -> list[str]:
    return [x for x in str(text).split(",") if x] if isinstance(text, str) and text else []


def row_errors(text: Any, lang: str) -> list[dict[str, Any]]:
    """A scores row's ``error`` ("field: reason; ...") as codes, parameters and sentences in ``lang``."""
    out = []
    for part in str(text).split("; ") if isinstance(text, str) and text else []:
        field, _, reason = part.partition(": ")
        code, params = m.parse_reason(reason)
        out.append({"field": field, "code": code, "params": params,
                    "text": f"{m.field_name(field, lang)}{'：' if lang == 'zh' else ': '}"
                            f"{reason if lang == 'en' else m.reason_text(code, params, lang)}"})
    return out


def result_rows(scores: pd.DataFrame, lang: str, currency: str) -> list[dict[str, Any]]:
    """One entry per input row for the page's table: numbers, their display, words, the top analog."""
    rows = []
    for number, r in enumerate(scores.to_dict("records"), start=1):
        ok = not isinstance(r.get("error"), str) or not r.get("error")
        skus, sales, sims = _split(r.get("similar_skus")), _split(r.get("similar_sales")), _split(r.get("similar_similarity"))
        codes = _split(r.get("reasons"))
        top = ({"sku_id": skus[0], "sales": float(sales[0]) if sales else None,
                "similarity": float(sims[0]) if sims else None} if ok and skus else None)
        rows.append({
            "row": number, "sku_id": r.get("sku_id") or "", "title": r.get("title") or "", "ok": ok,
            "p10": m.whole(r.get("p10")), "p50": m.whole(r.get("p50")), "p90": m.whole(r.get("p90")),
            "break_even": m.whole(r.get("break_even_units")), "decision": r.get("decision") if ok else None,
            "reasons": codes, "reason_words": [m.text(f"reason.{c}", lang) if m.has(f"reason.{c}") else c for c in codes],
            "top_analog": top,
            "display": {"p50": m.units(r.get("p50")), "band": f"{m.units(r.get('p10'))}–{m.units(r.get('p90'))}",
                        "break_even": m.units(r.get("break_even_units")),
                        "label": m.text(f"label.{r.get('decision')}", lang) if ok else "",
                        "top_analog": m.text("batch.analog_line", lang, sku=top["sku_id"],
                                             similarity=m.percent(top["similarity"]), sales=m.units(top["sales"]))
                        if top else ""},
            "errors": row_errors(r.get("error"), lang),
        })
    return rows


def export_frame(scores: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The scores file a person opens: the input's columns, then whole units, decisions and reasons
    in words, similarities as percentages, the similar SKUs with their sales; machine codes kept
    in their own columns."""
    from serving.batch import OUTPUT_COLUMNS

    inputs = [c for c in scores.columns if c not in OUTPUT_COLUMNS]
    out = scores[inputs].copy()
    rows = result_rows(scores, lang, "")
    join = m.text("list.join", lang)
    out["decision"] = [r["display"]["label"] for r in rows]
    out["decision_code"] = [r["decision"] or "" for r in rows]
    for q in ("p10", "p50", "p90"):
        out[q] = pd.array([r[q] for r in rows], dtype="Int64")
    out["break_even_units"] = pd.array([r["break_even"] for r in rows], dtype="Int64")
    out["quantity"] = pd.array([m.whole(v) for v in scores["quantity"]], dtype="Int64")
    out["reasons"] = [join.join(r["reason_words"]) for r in rows]
    out["reason_codes"] = [",".join(r["reasons"]) for r in rows]
    out["top_similarity_pct"] = pd.array([m.whole(r["top_analog"]["similarity"] * 100) if r["top_analog"] else None
                                          for r in rows], dtype="Int64")
    out["similar_skus"] = [_similar_line(r, lang) for r in scores.to_dict("records")]
    out["message"] = [_message(r, lang) for r in scores.to_dict("records")]
    out["forecast_id"] = scores["forecast_id"].fillna("")
    out["error"] = [join.join(e["text"] for e in r["errors"]) for r in rows]
    return out


def _similar_line(r: dict[str, Any], lang: str) -> str:
    skus, sales, sims = _split(r.get("similar_skus")), _split(r.get("similar_sales")), _split(r.get("similar_similarity"))
    return m.text("list.join", lang).join(
        m.text("batch.analog_line", lang, sku=s, similarity=m.percent(float(p)), sales=m.units(float(u)))
        for s, u, p in zip(skus, sales, sims))


def _message(r: dict[str, Any], lang: str) -> str:
    from serving.localise import decision_sentence

    if isinstance(r.get("error"), str) and r["error"] or not isinstance(r.get("decision"), str):
        return ""
    answer = {"forecast": {"p10": r["p10"], "p50": r["p50"], "p90": r["p90"]},
              "decision": {"label": r["decision"], "reasons": _split(r.get("reasons")),
                           "break_even_units": r.get("break_even_units")}}
    return decision_sentence(answer, lang)
