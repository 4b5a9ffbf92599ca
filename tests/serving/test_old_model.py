"""A champion written by an older trialcast (a pickled bundle, no plain-file model): the service
starts but is not ready and says why in one line, and the ``trialcast`` CLI refuses it with
``error: ...`` and exit status 2, never a traceback. Nothing here needs a trained model: the old
champion is a stand-in registered the way format-1 models were (artifact ``bundle.joblib``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

OLD_PYFUNC = """
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class Old(PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


set_model(Old())
"""


@pytest.fixture(scope="module")
def old_home(tmp_path_factory) -> dict:
    """A home whose gated champion is a format-1 model."""
    import mlflow

    from features.config import Settings
    from training.registry import CHAMPION, connect

    home = tmp_path_factory.mktemp("old_home")
    work = tmp_path_factory.mktemp("old_model")
    (work / "old.py").write_text(OLD_PYFUNC)
    (work / "bundle.joblib").write_bytes(b"\x80\x04a pickle of training classes")
    settings = Settings(home=home)
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        client = connect(settings)
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(name="model", python_model=str(work / "old.py"),
                                           artifacts={"bundle": str(work / "bundle.joblib")}, pip_requirements=[])
        version = mlflow.register_model(info.model_uri, settings.model_name,
                                        tags={"gate.passed": "true", "gate.metric": "wape", "gate.value": "0.1200"})
        client.set_registered_model_alias(settings.model_name, CHAMPION, version.version)
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRIALCAST_", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"))}
    env["TRIALCAST_HOME"] = str(home)
    return {"home": home, "settings": settings, "env": env, "version": str(version.version)}


def _one_line_refusal(message: str, version: str) -> None:
    assert "\n" not in message.strip(), message
    assert f"version {version}" in message and "older trialcast" in message, message
    assert "`trialcast train CATALOGUE`" in message, message


def test_load_champion_says_why_in_one_line(old_home: dict) -> None:
    from serving.champion import load_champion

    predictor, message = load_champion(old_home["settings"])
    assert predictor is None
    _one_line_refusal(message, old_home["version"])


def test_retraining_over_it_compares_with_its_recorded_number(old_home: dict) -> None:
    """``trialcast train`` is the fix the refusal names, so it must not trip over the old champion:
    it falls back to the champion's recorded gate value (the data is never needed for that)."""
    from training.jobs import _champion_value

    settings = old_home["settings"]
    # The old champion carries no gate level or stage: it was gated per SKU before launch. Under
    # that gate its recorded number is compared; under another gate it measures something else.
    same_gate = settings.model_copy(update={"gate_level": "sku", "gate_stage": "pre_launch"})
    champion, mine, how = _champion_value(same_gate, None, None, "sales_7d", 0.11)
    assert (champion, mine) == (0.12, 0.11)
    assert how == f"champion v{old_home['version']}'s recorded holdout value (older model format)"
    if (settings.gate_level, settings.gate_stage) != ("sku", "pre_launch"):
        champion, mine, how = _champion_value(settings, None, None, "sales_7d", 0.11)
        assert (champion, mine) == (None, 0.11) and "not comparable" in how


@pytest.mark.parametrize("command", [["evaluate", "catalogue.csv"], ["score", "candidates.csv", "--out", "x.csv"]])
def test_the_cli_refuses_it_with_one_error_line(old_home: dict, command: list[str], tmp_path: Path) -> None:
    trialcast = str(Path(sys.executable).with_name("trialcast"))
    # The input file exists (a missing one is reported before any model loads: tests/test_cli_startup.py).
    (tmp_path / command[1]).write_text("sku_id\n")
    done = subprocess.run([trialcast, *command], env=old_home["env"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), done.stderr
    _one_line_refusal(last, old_home["version"])


def test_the_service_is_not_ready_and_says_why(old_home: dict, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bentoml = Path(sys.executable).with_name("bentoml")
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen([str(bentoml), "serve", "serving.service:Trialcast", "--host", "127.0.0.1",
                                 "--port", str(port)], env=old_home["env"], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                if httpx.get(base + "/livez", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        assert httpx.get(base + "/readyz", timeout=10).status_code == 503
        facts = httpx.get(base + "/model", timeout=10).json()
        assert facts["ready"] is False
        _one_line_refusal(facts["message"], old_home["version"])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
