"""Nothing leaves the machine (issue 14, item 8).

One run, inside a network namespace of its own (``unshare -n``: only a loopback interface, so
any attempt to reach another host fails), does what a user does: ``bentoml serve`` + ``/predict``
+ ``/predict_batch``, ``trialcast score`` and ``trialcast train``. Every Python process of that run
loads an audit hook (a ``sitecustomize`` on ``PYTHONPATH``) that records each ``socket.connect``
address, attempted or not. The tests check the run worked offline and that every recorded
address is loopback (or a Unix socket)."""

from __future__ import annotations

import ast
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

HOOK = '''
import os, sys

def _record(event, args):
    if event == "socket.connect":
        address = args[1]
        with open(os.path.join(os.environ["TRIALCAST_TEST_CONNECTS"], f"{os.getpid()}.log"), "a") as out:
            out.write(repr(address) + "\\n")

sys.addaudithook(_record)
'''

DRIVER = r'''
import base64, json, os, signal, socket, subprocess, sys, time
from pathlib import Path
import httpx

bin_dir, home, candidates, catalogue, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
picture = Path(sys.argv[6]).read_bytes()
result = {}
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
server = subprocess.Popen([str(bin_dir / "bentoml"), "serve", "serving.service:Trialcast", "--port", str(port)],
                          env={**os.environ, "TRIALCAST_HOME": home}, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)
url = f"http://127.0.0.1:{port}"
try:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    fields = {"title": "白色纯棉T恤 white cotton tee", "cost_price": "45", "list_price": "119", "category": "T恤"}
    answer = httpx.post(url + "/predict", data=fields, files={"image": ("p.png", picture, "image/png")}, timeout=120)
    result["predict"] = answer.json().get("ok")
    batch = httpx.post(url + "/predict_batch", json={"items": [{**fields, "image_base64": base64.b64encode(picture).decode()}]},
                       timeout=120)
    result["predict_batch"] = batch.json()[0].get("ok")
finally:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=60)
env = {**os.environ, "TRIALCAST_HOME": home}
score = subprocess.run([str(bin_dir / "trialcast"), "score", candidates, "--out", out], env=env, capture_output=True, text=True)
result["score"] = score.returncode
train_env = {**os.environ, "TRIALCAST_HOME": str(Path(out).parent / "train-home")}
train = subprocess.run([str(bin_dir / "trialcast"), "train", catalogue], env=train_env, capture_output=True, text=True)
result["train"] = train.returncode
result["train_tail"] = (train.stdout + train.stderr)[-1500:]
print(json.dumps(result))
'''


@pytest.fixture(scope="module")
def offline_run(trained: dict, small_sample: Path, tmp_path_factory) -> dict:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("this test needs util-linux `unshare` and iproute2 `ip` (Debian: util-linux, iproute2)")
    root = tmp_path_factory.mktemp("offline")
    (root / "hook").mkdir()
    (root / "hook" / "sitecustomize.py").write_text(HOOK)
    connects = root / "connects"
    connects.mkdir()
    sample: Path = trained["sample"]
    # A few candidates (pictures beside them), and a small catalogue to train on (cached vectors).
    cands = pd.read_csv(sample / "candidates.csv", dtype=str, keep_default_na=False).head(6)
    folder = root / "cands"
    (folder / "images").mkdir(parents=True)
    for name in cands["image"]:
        shutil.copy(sample / name, folder / name)
    cands.to_csv(folder / "candidates.csv", index=False)
    catalogue = small_sample  # 1,000 SKUs, read only: training writes to the home
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"))}
    env.update(PYTHONPATH=str(root / "hook"), TRIALCAST_TEST_CONNECTS=str(connects))
    if trained["settings"].cache_file:
        env["TRIALCAST_CACHE_FILE"] = str(trained["settings"].cache_file)
    (root / "driver.py").write_text(DRIVER)
    command = (f"ip link set lo up && exec {sys.executable} {root / 'driver.py'} {Path(sys.executable).parent} "
               f"{trained['home']} {folder / 'candidates.csv'} {catalogue / 'catalogue.parquet'} "
               f"{root / 'out' / 'scores.csv'} {sample / cands['image'].iloc[0]}")
    (root / "out").mkdir()
    done = subprocess.run(["unshare", "-n", "sh", "-c", command], env=env, capture_output=True, text=True,
                          timeout=1800, check=False)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    addresses = [line for log in connects.glob("*.log") for line in log.read_text().splitlines()]
    return {"result": json.loads(done.stdout.strip().splitlines()[-1]), "addresses": addresses,
            "processes": len(list(connects.glob("*.log"))), "scores": root / "out" / "scores.csv"}


def test_serve_predict_score_and_train_work_without_a_network(offline_run: dict) -> None:
    result = offline_run["result"]
    assert result["predict"] is True and result["predict_batch"] is True, result
    assert result["score"] == 0, result
    assert result["train"] == 0, result["train_tail"]
    assert len(pd.read_csv(offline_run["scores"])) == 6


def test_every_connect_is_to_loopback(offline_run: dict) -> None:
    addresses = offline_run["addresses"]
    # The control: the driver's own requests to the service were recorded, so the hook is in place.
    assert any("127.0.0.1" in a for a in addresses), "the audit hook recorded nothing: it is not installed"
    foreign = []
    for text in addresses:
        value = ast.literal_eval(text)
        if isinstance(value, (str, bytes)):
            continue  # a Unix socket
        host = str(value[0]).split("%")[0]
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False  # a host name other than localhost
        if not loopback:
            foreign.append(value)
    assert foreign == [], foreign
