"""The one place that tells every library trialcast runs not to report home.

Why: nothing a user gives trialcast, and nothing about its use, may leave the machine, and several
of its libraries report usage by default:

- ONNX Runtime (the default picture encoder) uploads telemetry to ``mobile.events.data.microsoft.com``
  from threads of its own. Measured with onnxruntime 1.32.0 on Linux: an idle process looks that
  name up about 10 s after ``import onnxruntime`` and every 6-22 s after that (a session need not
  even exist), and writes a device id and an event cache under
  ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/``. ``ORT_DISABLE_TELEMETRY=1`` stops all of
  it, but only if it is in the environment when ONNX Runtime loads: the library reads it once, at
  import. Set after the import, or replaced by ``onnxruntime.disable_telemetry_events()``, the
  uploader keeps running; ``DO_NOT_TRACK`` is not read. ``=0`` turns it on.
- MLflow creates its telemetry client when ``mlflow`` is imported; BentoML, Ray and huggingface_hub
  read their switches when they first report.
- Ray (2.60.0) finds "this machine's address" by connecting a UDP socket to ``8.8.8.8:53`` (its
  C++ ``node_ip_address_from_perspective``), in the driver at ``ray.init`` and again in its agents,
  and then runs every one of its servers on that outside address. It skips this, and uses loopback,
  only where it believes it cannot form a cluster: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (the
  macOS/Windows default). Ray reads it once, at import, so it belongs here. Passing
  ``_node_ip_address="127.0.0.1"`` to ``ray.init`` does not do it: Ray replaces a loopback address
  with the probed one. A configured cluster is unaffected: a driver joining one takes its node's
  address from the cluster. (Ray's other look outside, its cloud probe, is switched off where a
  local Ray is started: ``features/engine.py``.)

The values are forced, not defaulted: an inherited ``ORT_DISABLE_TELEMETRY=0`` or
``DO_NOT_TRACK=false`` must not turn reporting back on. ``features/__init__.py`` applies them, so
they hold in every process that runs trialcast code before it can load ONNX Runtime (every import of
it is inside ``features``). The entry points that load MLflow or BentoML themselves import
``features`` first (``trialcast/cli.py``, ``serving/service.py``). Child processes (BentoML's
workers, Ray's, the training pool) inherit the environment.

ONNX Runtime and MLflow are also silent whenever a CI variable such as ``CI=true`` is set, so a test
run in CI says nothing about a user's machine: ``tests/serving/test_offline.py`` starts the product
without any such variable, in a network namespace with a resolver that records every lookup.
"""

from __future__ import annotations

import os

OPT_OUTS = {
    "ORT_DISABLE_TELEMETRY": "1",  # ONNX Runtime: no uploader, no device id (read at import)
    "MLFLOW_DISABLE_TELEMETRY": "true",  # read when mlflow is imported
    "BENTOML_DO_NOT_TRACK": "true",
    "DO_NOT_TRACK": "true",  # the cross-tool convention (MLflow reads it too)
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # Ray on loopback, no 8.8.8.8 probe (read at import)
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def opt_out() -> None:
    """Put every switch of ``OPT_OUTS`` in this process's environment (and so its children's)."""
    os.environ.update(OPT_OUTS)
