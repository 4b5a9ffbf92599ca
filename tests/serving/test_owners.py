"""Jobs tied to their creator (issue 14, item 7), against the real service without a token: a web
batch job is readable, cancellable and downloadable only by the browser that created it (its
HttpOnly SameSite=Strict ``trialcast_client`` cookie, 256 random bits); anyone else, a browser
without the cookie or with a forged one, gets the same 404 as for a job that does not exist. The
history lists each browser's own jobs and forecasts; a single forecast's share link still opens
for whoever has it. Job and forecast ids are 128 random bits (32 hex digits).

The landed defect: "anyone with a job id reads its results", and ``/history`` listed every job
and forecast of every user to anyone."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

HEX128 = re.compile(r"^[0-9a-f]{32}$")


def small_job(sample_dir: Path) -> list:
    frame = pd.read_csv(sample_dir / "candidates.csv", dtype=str, keep_default_na=False).head(2)
    table = frame.to_csv(index=False).encode()
    return [("candidates", ("candidates.csv", table, "text/csv")),
            *[("picture_files", (Path(p).name, (sample_dir / p).read_bytes(), "image/png")) for p in frame["image"]]]


@pytest.fixture(scope="module")
def alice_job(server: dict, sample_dir: Path):
    with httpx.Client(base_url=server["url"], timeout=120) as alice:
        created = alice.post("/batch", files=small_job(sample_dir))
        assert created.status_code == 202, created.text
        job = created.json()
        deadline = time.monotonic() + 600
        while (job := alice.get(f"/batch/{job['id']}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.3)
        assert job["status"] == "done", job
        yield {"alice": alice, "job": job, "set_cookie": created.headers.get("set-cookie", "")}


JOB_ROUTES = ("/batch/{id}", "/batch/{id}/rows", "/batch/{id}/scores.csv", "/batch/{id}/scores.xlsx",
              "/batch/{id}/pictures/1.jpg")


def test_the_creator_reads_and_downloads_its_job(alice_job: dict) -> None:
    alice, job = alice_job["alice"], alice_job["job"]
    assert HEX128.match(job["id"])
    cookie = alice_job["set_cookie"]
    value = re.search(r"trialcast_client=([^;]+)", cookie).group(1)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and len(value) == 43  # 256 bits, base64url
    for route in JOB_ROUTES:
        assert alice.get(route.format(id=job["id"])).status_code == 200, route
    assert job["id"] in [j["id"] for j in alice.get("/history").json()["jobs"]]
    # a status reply is the job's row, not its results (one was 4.3 MB when jobs lived in memory)
    assert len(alice.get(f"/batch/{job['id']}").content) < 10_000


@pytest.mark.parametrize("who", ["another browser", "no cookie", "a forged cookie"])
def test_nobody_else_reads_cancels_or_lists_it(alice_job: dict, server: dict, who: str) -> None:
    job_id = alice_job["job"]["id"]
    cookies = {"trialcast_client": secrets.token_urlsafe(32)} if who == "a forged cookie" else None
    with httpx.Client(base_url=server["url"], timeout=60, cookies=cookies) as other:
        if who == "another browser":
            other.post(f"/batch/{'0' * 32}/cancel")  # a request that may create something: a cookie of its own
            assert other.cookies.get("trialcast_client") not in (None, alice_job["alice"].cookies["trialcast_client"])
        for route in JOB_ROUTES:
            if who == "no cookie":
                other.cookies.clear()
            answer = other.get(route.format(id=job_id))
            assert answer.status_code == 404 and answer.json()["detail"][0]["code"] == "job_not_found", (route, answer.text)
        if who == "no cookie":
            other.cookies.clear()
        cancel = other.post(f"/batch/{job_id}/cancel")
        assert cancel.status_code == 404, cancel.text
        assert job_id not in [j["id"] for j in other.get("/history").json()["jobs"]]
    assert alice_job["alice"].get(f"/batch/{job_id}").json()["status"] == "done"  # untouched


def test_forecasts_are_listed_to_who_asked_and_open_by_their_link(server: dict, sample_dir: Path) -> None:
    row = pd.read_csv(sample_dir / "candidates.csv", dtype=str, keep_default_na=False).iloc[0]
    fields = {k: row[k] for k in ("title", "description", "cost_price", "list_price", "category") if row[k]}
    with httpx.Client(base_url=server["url"], timeout=120) as alice, \
            httpx.Client(base_url=server["url"], timeout=120) as bob:
        answer = alice.post("/predict", data=fields,
                            files={"image": ("p.png", (sample_dir / row["image"]).read_bytes(), "image/png")}).json()
        forecast_id = answer["forecast_id"]
        assert HEX128.match(forecast_id)
        assert forecast_id in [f["id"] for f in alice.get("/history").json()["forecasts"]]
        assert forecast_id not in [f["id"] for f in bob.get("/history").json()["forecasts"]]
        shared = bob.get(f"/forecasts/{forecast_id}")  # the share link: whoever has it may open it
        assert shared.status_code == 200 and shared.json()["forecast"] == answer["forecast"]


def test_a_read_never_replaces_the_browsers_identity(server: dict) -> None:
    """A link followed from another site arrives without the SameSite=Strict cookie: the answer
    must not set a new one (it would replace the browser's and lose its jobs)."""
    for path in ("/", "/history", f"/batch/{'0' * 32}"):
        answer = httpx.get(server["url"] + path, timeout=30)
        assert "trialcast_client" not in answer.headers.get("set-cookie", ""), path
    assert httpx.get(server["url"] + "/history", timeout=30).json() == {"forecasts": [], "jobs": []}
