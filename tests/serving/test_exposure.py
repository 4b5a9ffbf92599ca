"""Who may call the service (issue 14, item 7), on a real server started the way the code
suggests, ``bentoml serve serving.service:Trialcast`` with no ``--host`` (it used to bind
0.0.0.0), and with an API token configured: the token is required (constant-time compared) as
``Authorization: Bearer`` or as the HttpOnly SameSite=Strict cookie the served /login form sets,
so the page's own fetch calls work unchanged once signed in."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

TOKEN = "s3cret-token-for-the-test"
FIELDS = {"title": "白色纯棉T恤 white cotton tee", "cost_price": "45", "list_price": "119", "category": "T恤",
          "launch_date": "2025-07-02"}


def listening(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                raw = bytes.fromhex(address)
                if width == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


@pytest.fixture(scope="module")
def guarded(trained: dict, tmp_path_factory, start_server) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = start_server.env(trained, api_token=TOKEN)
    folder = tmp_path_factory.mktemp("guarded")
    bentoml = Path(sys.executable).with_name("bentoml")
    with open(folder / "server.log", "wb") as log:
        proc = subprocess.Popen([str(bentoml), "serve", "serving.service:Trialcast", "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while not _ready(url):
            assert proc.poll() is None, (folder / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "not ready in 240 s"
            time.sleep(0.5)
        yield {"url": url, "port": port, "log": folder / "server.log", **trained}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def picture(trained: dict) -> bytes:
    first = pd.read_csv(trained["sample"] / "candidates.csv", dtype=str, keep_default_na=False).iloc[0]
    return (trained["sample"] / first["image"]).read_bytes()


def test_serve_without_host_binds_loopback_only(guarded: dict) -> None:
    assert listening(guarded["port"]) == {"127.0.0.1"}


def test_probes_stay_open_and_everything_else_needs_the_token(guarded: dict, picture: bytes) -> None:
    url = guarded["url"]
    for path in ("/healthz", "/livez", "/readyz"):
        assert httpx.get(url + path, timeout=30).status_code == 200, path
    for path in ("/model", "/docs.json", "/analogs/S00010.jpg"):
        response = httpx.get(url + path, timeout=30)
        assert response.status_code == 401, (path, response.status_code)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["detail"][0]["loc"] == ["authorization"]
    response = httpx.post(url + "/predict", data=FIELDS, files={"image": ("p.png", picture, "image/png")}, timeout=120)
    assert response.status_code == 401
    for wrong in ("Bearer nope", "Bearer " + TOKEN[:-1], "Basic " + TOKEN, TOKEN):
        assert httpx.get(url + "/model", headers={"authorization": wrong}, timeout=30).status_code == 401, wrong


def test_a_bearer_token_is_accepted(guarded: dict, picture: bytes) -> None:
    headers = {"authorization": f"Bearer {TOKEN}"}
    assert httpx.get(guarded["url"] + "/model", headers=headers, timeout=30).json()["ready"] is True
    response = httpx.post(guarded["url"] + "/predict", data=FIELDS, headers=headers,
                          files={"image": ("p.png", picture, "image/png")}, timeout=120)
    assert response.status_code == 200 and response.json()["ok"]


def test_the_page_asks_once_then_its_own_calls_work_with_the_cookie(guarded: dict, picture: bytes) -> None:
    url = guarded["url"]
    with httpx.Client(base_url=url, timeout=120) as browser:
        page = browser.get("/", headers={"accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/login"
        form = browser.get("/login")
        assert form.status_code == 200 and 'name="token"' in form.text
        assert "http" not in form.text.split("<body", 1)[1]  # nothing loaded from anywhere
        wrong = browser.post("/login", data={"token": "nope"}, headers={"origin": url})
        assert wrong.status_code == 401 and not browser.cookies
        signed = browser.post("/login", data={"token": TOKEN}, headers={"origin": url, "sec-fetch-site": "same-origin"})
        assert signed.status_code == 303 and signed.headers["location"] == "/"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        assert browser.get("/").status_code == 200
        assert browser.get("/model").json()["ready"] is True
        answer = browser.post("/predict", data=FIELDS, files={"image": ("p.png", picture, "image/png")},
                              headers={"sec-fetch-site": "same-origin", "origin": url})
        assert answer.status_code == 200 and answer.json()["ok"]


def test_with_a_token_a_job_belongs_to_the_token(guarded: dict, picture: bytes) -> None:
    """Item 7: with a token configured, a job is the token holder's: a bearer client creates it and
    the page signed in with the same token reads it; a wrong token reads nothing."""
    url, bearer = guarded["url"], {"authorization": f"Bearer {TOKEN}"}
    table = b"sku_id,title,cost_price,image\nT1,white tee,45,t1.png\n"
    created = httpx.post(url + "/batch", headers=bearer, timeout=120, files=[
        ("candidates", ("c.csv", table, "text/csv")), ("picture_files", ("t1.png", picture, "image/png"))])
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    with httpx.Client(base_url=url, timeout=60) as browser:
        browser.post("/login", data={"token": TOKEN}, headers={"origin": url, "sec-fetch-site": "same-origin"})
        assert browser.get(f"/batch/{job_id}").status_code == 200
        assert job_id in [j["id"] for j in browser.get("/history").json()["jobs"]]
    wrong = httpx.get(f"{url}/batch/{job_id}", headers={"authorization": "Bearer wrong"}, timeout=30)
    assert wrong.status_code == 401


def test_login_from_another_site_is_refused(guarded: dict) -> None:
    response = httpx.post(guarded["url"] + "/login", data={"token": TOKEN}, headers={"sec-fetch-site": "cross-site"},
                          timeout=30)
    assert response.status_code == 403 and "set-cookie" not in response.headers


def test_refusals_are_one_log_line_each(guarded: dict) -> None:
    httpx.get(guarded["url"] + "/model", timeout=30)
    text = guarded["log"].read_text(errors="replace")
    assert "refused GET /model" in text and "Traceback" not in text
