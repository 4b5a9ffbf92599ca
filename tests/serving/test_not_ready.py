"""The service on an empty home (no champion yet): it starts, says it is alive but not ready, and
tells whoever calls /predict what to run."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("empty_home")
    port = free_port()
    # No TRIALCAST_* and no MLFLOW_TRACKING_URI: MLflow exports the latter into the test process's
    # environment once any fixture trained a model, and it would point the service at that registry.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRIALCAST_", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"))}
    env["TRIALCAST_HOME"] = str(home)
    log_path = tmp_path_factory.mktemp("empty_server") / "server.log"
    bentoml = Path(sys.executable).with_name("bentoml")
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [str(bentoml), "serve", "serving.service:Trialcast", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while True:
            assert proc.poll() is None, f"the service exited with {proc.returncode}: {log_path.read_text()[-3000:]}"
            try:
                if httpx.get(base + "/livez", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the service did not come alive in 240 s: {log_path.read_text()[-3000:]}"
            time.sleep(0.5)
        yield {"url": base, "process": proc, "home": home}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_alive_but_not_ready(empty_server: dict) -> None:
    url = empty_server["url"]
    assert httpx.get(url + "/livez", timeout=10).status_code == 200
    assert httpx.get(url + "/readyz", timeout=10).status_code == 503


def test_predict_says_what_to_run(empty_server: dict, kit) -> None:
    picture = kit.picture_bytes(kit.draw_picture("circle", "red"))
    response = httpx.post(empty_server["url"] + "/predict", files={"image": ("a.png", picture, "image/png")},
                          data={"title": "白色T恤", "cost_price": "45"}, timeout=60)
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "not_ready"
    assert "trialcast train" in body["message"]


def test_batch_answers_every_item_with_the_reason(empty_server: dict, kit) -> None:
    picture = base64.b64encode(kit.picture_bytes(kit.draw_picture("square", "blue"))).decode()
    items = [{"sku_id": "a", "title": "x", "cost_price": 3, "image_base64": picture}, {"sku_id": "b"}]
    response = httpx.post(empty_server["url"] + "/predict_batch", json={"items": items}, timeout=60)
    assert response.status_code == 200
    answers = response.json()
    assert [(a["sku_id"], a["ok"]) for a in answers] == [("a", False), ("b", False)]
    assert all("trialcast train" in a["errors"][0]["reason"] for a in answers)


def test_model_says_not_ready(empty_server: dict) -> None:
    response = httpx.get(empty_server["url"] + "/model", timeout=10)
    assert response.status_code == 200
    facts = response.json()
    assert facts["ready"] is False and "trialcast train" in facts["message"]


def test_the_web_page_still_loads(empty_server: dict) -> None:
    assert httpx.get(empty_server["url"] + "/", timeout=10).status_code == 200
