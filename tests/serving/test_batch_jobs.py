"""The web page's batch jobs against the real service: bounded uploads that leave nothing behind,
a queue with a bound, cancellation, jobs kept in the database through a SIGKILL of the server and
resumed from their finished chunks, pictures found by file name, no server path in any answer."""

from __future__ import annotations

import io
import signal
import time
import zipfile
from pathlib import Path

import httpx
import pandas as pd
import pytest

# One browser: batch jobs and kept forecasts are its own (its trialcast_client cookie, issue 14 item 7).
BROWSER = httpx.Client()

LIMITS = {"batch_chunk": "4", "batch_max_rows": "45", "batch_max_file_bytes": "60000",
          "batch_max_unzipped_bytes": str(8 * 1024 * 1024), "batch_max_pictures": "100", "batch_max_queued": "1"}
ZH = {"Accept-Language": "zh-CN"}


def candidates_csv(sample_dir: Path, **options) -> bytes:
    frame = pd.read_csv(sample_dir / "candidates.csv", dtype=str, keep_default_na=False)
    return frame.to_csv(index=False, **options).encode(options.get("encoding", "utf-8"))


def picture_files(sample_dir: Path) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Every candidate's picture as its own upload, named by file name only (no folder)."""
    frame = pd.read_csv(sample_dir / "candidates.csv", dtype=str, keep_default_na=False)
    return [("picture_files", (Path(p).name, (sample_dir / p).read_bytes(), "image/png")) for p in frame["image"]]


def post(url: str, table: bytes, name: str = "candidates.csv", extra: list | None = None, headers=None):
    return BROWSER.post(url + "/batch", files=[("candidates", (name, table, "text/csv")), *(extra or [])],
                      headers=headers, timeout=120)


def wait_job(url: str, job_id: str, until, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = BROWSER.get(f"{url}/batch/{job_id}", timeout=30).json()
        if until(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.3)


def kill_minus_9(pid: int) -> None:
    """SIGKILL the server and its workers (BentoML starts each worker in a session of its own, so
    killing the process group would leave the worker running)."""
    import psutil

    parent = psutil.Process(pid)
    victims = [parent, *parent.children(recursive=True)]
    for process in victims:
        process.send_signal(signal.SIGKILL)
    _gone, alive = psutil.wait_procs(victims, timeout=30)
    assert not alive, alive


def refused(response: httpx.Response, status: int, field: str, code: str) -> dict:
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert [d["loc"][0] for d in body["detail"]] == [field] and body["detail"][0]["code"] == code, body
    return body


@pytest.fixture(scope="module")
def env(trained: dict, start_server, tmp_path_factory) -> dict:
    """A service of its own (own job database), so its queue is not shared with the session's server."""
    database = tmp_path_factory.mktemp("jobs-db") / "ledger.sqlite"
    return start_server.env(trained, database_url=f"sqlite:///{database}", **LIMITS)


def test_jobs_are_bounded_kept_through_a_kill_and_resumed(env: dict, start_server, trained: dict, sample_dir: Path,
                                                           logged, tmp_path: Path) -> None:
    home = str(trained["home"])
    seen: list[str] = []  # every answer body, to check that none names a server path
    jobs_root = Path(home) / "batch_jobs"
    before = set(jobs_root.iterdir()) if jobs_root.is_dir() else set()

    with start_server.serving(env, tmp_path) as running:
        url = running["url"]
        table = candidates_csv(sample_dir)

        # ---- refused uploads: one clear reason each, in the language asked, and no folder left behind
        bomb = io.BytesIO()
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("images/huge.png", b"\0" * (64 * 1024 * 1024))  # 64 MiB of zeros in ~64 KB
        escape = io.BytesIO()
        with zipfile.ZipFile(escape, "w") as zf:
            zf.writestr("../../outside.png", b"x")
        too_many = pd.concat([pd.read_csv(io.BytesIO(table), dtype=str)] * 2).to_csv(index=False).encode()
        no_cost = pd.read_csv(io.BytesIO(table), dtype=str).drop(columns=["cost_price"]).to_csv(index=False).encode()
        cases = [
            (post(url, table, extra=[("pictures", ("p.zip", bomb.getvalue(), "application/zip"))]), 413, "pictures", "zip_too_big"),
            (post(url, table, extra=[("pictures", ("p.zip", escape.getvalue(), "application/zip"))]), 422, "pictures", "zip_escape"),
            (post(url, table, extra=[("pictures", ("p.zip", b"not a zip", "application/zip"))]), 422, "pictures", "zip_bad"),
            (post(url, too_many, extra=picture_files(sample_dir)[:1]), 413, "candidates", "batch_too_many_rows"),
            (post(url, table + b"x" * 70_000, extra=picture_files(sample_dir)[:1]), 413, "candidates", "batch_too_big"),
            (post(url, no_cost, extra=picture_files(sample_dir)[:1], headers=ZH), 422, "candidates", "columns_missing"),
            (post(url, table, headers=ZH), 422, "pictures", "no_pictures"),
            (post(url, b"PK\x03\x04", name="notes.docx"), 415, "candidates", "batch_format"),
            (post(url, b"", extra=picture_files(sample_dir)[:1]), 422, "candidates", "batch_empty"),
        ]
        for response, status, field, code in cases:
            refused(response, status, field, code)
            seen.append(response.text)
        missing = cases[5][0].json()
        assert missing["detail"][0]["params"] == {"columns": "cost_price"}  # named once, not once per row
        assert "成本价" not in missing["error"] and "缺少必需的列" in missing["error"]
        assert "没有收到任何图片" in cases[6][0].json()["error"]
        assert BROWSER.get(url + "/healthz", timeout=5).status_code == 200
        left = set(jobs_root.iterdir()) - before if jobs_root.is_dir() else set()
        assert left == set(), left

        # ---- a job with its pictures given by file name, no zip; a second one waits; a third is refused
        first = post(url, table, extra=picture_files(sample_dir))
        assert first.status_code == 202, first.text
        job = first.json()
        assert len(job["id"]) == 32 and job["total"] == 40 and job["summary"]["pictures"] == 40
        waiting = post(url, table, extra=picture_files(sample_dir)[:3]).json()
        wait_job(url, job["id"], lambda j: j["status"] == "running" and j["done"] >= 8)
        third = post(url, table, extra=picture_files(sample_dir)[:3])
        refused(third, 503, "candidates", "queue_full")
        assert third.headers["retry-after"] == "30"
        cancelled = BROWSER.post(f"{url}/batch/{waiting['id']}/cancel", timeout=30).json()
        assert cancelled["status"] == "cancelled"
        seen += [first.text, third.text, str(cancelled)]

        # ---- SIGKILL the server mid-job
        partial = wait_job(url, job["id"], lambda j: j["done"] >= 12)
        assert partial["status"] == "running" and partial["done"] < 40, partial
        kill_minus_9(running["process"].pid)

    with start_server.serving(env, tmp_path) as running:
        url = running["url"]
        done = wait_job(url, job["id"], lambda j: j["status"] not in ("queued", "running"))
        assert done["status"] == "done", done
        assert done["summary"]["resumed_chunks"] >= 3  # the chunks finished before the kill were kept
        assert done["summary"]["scored"] + done["summary"]["failed"] == 40
        assert sum(done["summary"]["counts"].values()) == done["summary"]["scored"]
        rows = BROWSER.get(f"{url}/batch/{job['id']}/rows", timeout=60).json()["rows"]
        expected = pd.read_csv(sample_dir / "candidates.csv", dtype=str)["sku_id"].tolist()
        assert [r["sku_id"] for r in rows] == expected  # every row once, in order, none lost or doubled
        assert all(r["ok"] and r["decision"] in ("GO", "REVIEW", "NO_GO") for r in rows)
        # The forecast log (this service's own) holds the job's 40 forecasts once each, as scored.
        scores = pd.read_parquet(jobs_root / job["id"] / "scores.parquet")
        assert scores["forecast_id"].str.fullmatch(r"[0-9a-f]{32}").all()
        assert logged(env["TRIALCAST_DATABASE_URL"]) == dict(zip(scores["forecast_id"], scores["p50"]))
        assert BROWSER.get(f"{url}/batch/{waiting['id']}", timeout=30).json()["status"] == "cancelled"
        listed = BROWSER.get(url + "/history", timeout=30).json()["jobs"]
        assert {job["id"], waiting["id"]} <= {j["id"] for j in listed}

        # ---- a running job cancelled stops at its next chunk
        running_job = post(url, table, extra=picture_files(sample_dir)).json()
        wait_job(url, running_job["id"], lambda j: j["status"] == "running" and j["done"] >= 4)
        BROWSER.post(f"{url}/batch/{running_job['id']}/cancel", timeout=30)
        stopped = wait_job(url, running_job["id"], lambda j: j["status"] not in ("queued", "running"))
        assert stopped["status"] == "cancelled" and stopped["done"] < 40, stopped
        assert BROWSER.get(f"{url}/batch/{running_job['id']}/scores.csv", timeout=30).status_code == 409
        seen += [str(done), str(rows), str(listed), str(stopped)]

    for body in seen:
        assert home not in body and "batch_jobs" not in body, body[:300]
