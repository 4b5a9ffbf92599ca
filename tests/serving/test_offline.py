"""Nothing leaves the machine, checked where it happens: in the kernel, not in Python.

Each run is a process tree in a network namespace of its own (``unshare -n -m``) whose
``/etc/resolv.conf`` names a resolver on 127.0.0.1:53 that records every query (``RESOLVER``,
stdlib only; it answers NXDOMAIN), the whole tree traced by
``strace -f -e trace=connect,sendto,sendmsg,sendmmsg``. So a lookup or connection made by a C
library is seen like one made by Python. (A Python audit hook is not enough: ONNX Runtime's
telemetry uploader is C++ with a libcurl of its own, and without a network it fails silently.)
Besides loopback the namespace has an interface with an address (``OUTSIDE``) and a default route
leading nowhere, as a connected machine has: with loopback alone, a lookup asked with
``AI_ADDRCONFIG`` never reaches the resolver and a program that looks for the machine's outside
address (Ray's ``8.8.8.8:53`` probe) finds none and never connects, so the trace would miss both.

The product is started in an environment of ``KEPT`` variables only: no ``CI``/``GITHUB_ACTIONS``
or other CI variable (ONNX Runtime and MLflow report nothing whenever one is set, and CI sets
one), no telemetry opt-out. Whatever keeps it quiet is its own switch (``features/offline.py``).

- ``clean_run``: ``trialcast serve`` with ``/predict`` and ``/predict_batch``, then ``IDLE`` s of
  serving nothing, then ``trialcast score``, the same on a local Ray (``--engine ray``: Ray's head
  processes, agents and workers) and ``trialcast train``. No query may be recorded and no address
  other than loopback, nor port 53, may appear in the trace.
- ``control_run``: the same ``trialcast serve``, but every Python process loads ONNX Runtime at
  start-up without the switch (a ``sitecustomize`` removes ``ORT_DISABLE_TELEMETRY`` and imports
  ``onnxruntime`` before trialcast's code can set it), stopped at the first query. The resolver
  must record ONNX Runtime's lookup: the same harness does see it when the switch is missing.
- ``ray_control_run``: a local Ray started as Ray starts by default (``ray.init`` in plain Python,
  without trialcast's switches). The harness must see it probe for the machine's outside address
  (``8.8.8.8:53``) and ask the cloud metadata services (``metadata.google.internal``,
  ``169.254.169.254:80``): what ``features/offline.py`` and ``features/engine.py`` switch off.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

# How long the clean service serves nothing before it is stopped. Without the switch ONNX Runtime
# looks its collector up about 10 s after it loads and then every 6-22 s (the control measures the
# first one); 30 s of idling, after a warm-up and two forecasts, covers the first lookup and more
# than one longest period after it.
IDLE = 30
# How long the control may take, from start, to show the lookup.
CONTROL_DEADLINE = 240
TELEMETRY_HOST = "mobile.events.data.microsoft.com"
# The namespace's non-loopback address (its interface leads nowhere).
OUTSIDE = "10.99.0.2"
CHECKOUT = Path(__file__).resolve().parents[2]

# The only variables the runs inherit; HOME is a fresh folder (ONNX Runtime would write its device
# id under it). Everything else, CI markers and opt-outs included, is left out.
KEPT = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONDONTWRITEBYTECODE", "TRIALCAST_THREADS")
# Variables that make a library keep quiet on its own (ONNX Runtime 1.32's list, read from its
# binary, and MLflow's): none may reach the runs.
QUIETING = ("CI", "CONTINUOUS_INTEGRATION", "GITHUB_ACTIONS", "TF_BUILD", "GITLAB_CI", "CIRCLECI",
            "TRAVIS", "JENKINS_URL", "CODEBUILD_BUILD_ID", "CODEBUILD_BUILD_ARN", "BUILDKITE",
            "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER", "ORT_RUNNING_UNIT_TESTS",
            "PYTEST_CURRENT_TEST", "ORT_DISABLE_TELEMETRY", "DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY",
            "BENTOML_DO_NOT_TRACK", "RAY_USAGE_STATS_ENABLED", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER",
            "HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "all_proxy", "ALL_PROXY", "http_proxy", "HTTP_PROXY",
            "no_proxy", "NO_PROXY")

RESOLVER = r'''
import socket, sys, time
log = open(sys.argv[1], "a", buffering=1)
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("127.0.0.1", 53))
open(sys.argv[2], "w").close()  # listening
while True:
    query, client = server.recvfrom(4096)
    at, labels = 12, []
    while at < len(query) and query[at]:
        labels.append(query[at + 1:at + 1 + query[at]].decode("ascii", "replace"))
        at += 1 + query[at]
    log.write(f"{time.time():.3f} {'.'.join(labels)} {int.from_bytes(query[at + 1:at + 3], 'big')}\n")
    flags = 0x8000 | (int.from_bytes(query[2:4], "big") & 0x0100) | 0x0080 | 3  # answer, NXDOMAIN
    server.sendto(query[:2] + flags.to_bytes(2, "big") + query[4:6] + bytes(6) + query[12:at + 5], client)
'''

# In the control only: every Python process of the service loads ONNX Runtime at start-up, before
# trialcast's own code runs, and without the switch (children inherit it from their parent).
CONTROL_HOOK = '''
import os
os.environ.pop("ORT_DISABLE_TELEMETRY", None)
import onnxruntime
'''

# In the Ray control only: a local Ray as Ray starts it by default, one task, then until the cloud
# probe has been looked up (it runs in Ray's dashboard process, next to start-up) or 60 s.
RAY_CONTROL = r'''
import sys, time
from pathlib import Path
import ray
ray.init(include_dashboard=False, log_to_driver=False, num_cpus=1)
assert ray.get(ray.remote(lambda: 1).remote()) == 1
until = time.monotonic() + 60
while time.monotonic() < until and "metadata.google.internal" not in Path(sys.argv[1]).read_text():
    time.sleep(0.5)
ray.shutdown()
'''

DRIVER = r'''
import base64, json, os, signal, socket, subprocess, sys, time
from pathlib import Path
import httpx

mode, bin_dir, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
args = json.loads(sys.argv[4])
result = {}
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
env = dict(os.environ)
if mode == "control":
    env["PYTHONPATH"] = os.pathsep.join([args["hook"], env["PYTHONPATH"]])
if mode == "ray-control":
    done = subprocess.run([str(bin_dir / "python"), "-c", args["code"], args["queries"]], env=env,
                          capture_output=True, text=True)
    print(json.dumps({"ray": done.returncode, "ray_tail": (done.stdout + done.stderr)[-1500:]}))
    sys.exit(0)
started = time.monotonic()
with open(work / f"{mode}-server.log", "wb") as log:
    server = subprocess.Popen([str(bin_dir / "trialcast"), "serve", "--port", str(port)], env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
url = f"http://127.0.0.1:{port}"
queries = Path(args["queries"])
try:
    if mode == "control":  # until the first lookup: the service need not be ready for it
        while time.monotonic() < started + args["deadline"] and not queries.read_text().strip():
            time.sleep(0.5)
        result["first_lookup_after"] = time.monotonic() - started if queries.read_text().strip() else None
    else:
        while time.monotonic() < started + 240 and server.poll() is None:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    result["ready_after"] = time.monotonic() - started
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        picture = Path(args["picture"]).read_bytes()
        fields = {"title": "白色纯棉T恤 white cotton tee", "cost_price": "45", "list_price": "119", "category": "T恤"}
        answer = httpx.post(url + "/predict", data=fields, files={"image": ("p.png", picture, "image/png")}, timeout=120)
        result["predict"] = answer.json().get("ok")
        batch = httpx.post(url + "/predict_batch", timeout=120,
                           json={"items": [{**fields, "image_base64": base64.b64encode(picture).decode()}]})
        result["predict_batch"] = batch.json()[0].get("ok")
        idle_from = time.monotonic()
        time.sleep(args["idle"])
        result["idled"] = time.monotonic() - idle_from
        result["served_after_ready"] = time.monotonic() - started - result["ready_after"]
finally:
    result["server_exited_early"] = server.poll()
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=60)
if mode == "clean":
    score = subprocess.run([str(bin_dir / "trialcast"), "score", args["candidates"], "--out", args["out"]],
                           capture_output=True, text=True)
    result["score"] = score.returncode
    result["score_tail"] = (score.stdout + score.stderr)[-1500:]
    on_ray = subprocess.run([str(bin_dir / "trialcast"), "score", args["candidates"], "--out", args["out_ray"],
                             "--engine", "ray"], capture_output=True, text=True)
    result["score_ray"] = on_ray.returncode
    result["score_ray_tail"] = (on_ray.stdout + on_ray.stderr)[-1500:]
    train_env = {**os.environ, "TRIALCAST_HOME": args["train_home"]}
    train = subprocess.run([str(bin_dir / "trialcast"), "train", args["catalogue"]], env=train_env,
                           capture_output=True, text=True)
    result["train"] = train.returncode
    result["train_tail"] = (train.stdout + train.stderr)[-1500:]
print(json.dumps(result))
'''

# Inside the namespace: loopback up, the recording resolver as the only name server (and plain
# `files dns` lookups, so no nscd or systemd-resolved socket outside the namespace is asked), then
# the driver and everything it starts under strace.
NAMESPACE = r'''
set -eu
ip link set lo up
ip link add outside type veth peer name nowhere
ip addr add "$OUTSIDE/24" dev outside
ip link set outside up
ip link set nowhere up
ip route add default via "${OUTSIDE%.*}.1" dev outside
mount --bind "$WORK/resolv.conf" /etc/resolv.conf
mount --bind "$WORK/nsswitch.conf" /etc/nsswitch.conf
"$PY" "$WORK/resolver.py" "$QUERIES" "$QUERIES.listening" &
resolver=$!
while [ ! -e "$QUERIES.listening" ]; do sleep 0.1; done
status=0
strace -f --seccomp-bpf -qq -e trace=connect,sendto,sendmsg,sendmmsg -e signal=none -o "$TRACE" \
  "$PY" "$WORK/driver.py" "$@" || status=$?
kill $resolver
exit $status
'''

ADDRESS = re.compile(r'sa_family=AF_INET6?, sin6?_port=htons\((\d+)\).*?'
                     r'(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")')


def _in_namespace(work: Path, mode: str, args: dict, env: dict[str, str]) -> dict:
    """Run the driver in ``mode`` in a fresh namespace; its result, the queries and the trace."""
    for tool in ("unshare", "ip", "strace", "mount"):
        if shutil.which(tool) is None:
            pytest.fail(f"this test needs `{tool}` (Debian: util-linux, iproute2, strace; `make system`)")
    queries, trace = work / f"{mode}-queries.log", work / f"{mode}.trace"
    queries.write_text("")
    args = {**args, "queries": str(queries)}
    done = subprocess.run(
        ["unshare", "-n", "-m", "sh", "-c", NAMESPACE, "namespace", mode, str(Path(sys.executable).parent),
         str(work), json.dumps(args)],
        env={**env, "WORK": str(work), "PY": sys.executable, "QUERIES": str(queries), "TRACE": str(trace),
             "OUTSIDE": OUTSIDE},
        capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    lookups = [line.split()[1] for line in queries.read_text().splitlines()]
    return {"result": result, "lookups": lookups, "trace": _whole_calls(trace.read_text().splitlines()),
            "home": Path(env["HOME"]), "work": work}


def _whole_calls(trace: list[str]) -> list[str]:
    """The trace with each call on one line: under ``-f`` strace splits a call that another thread
    interrupts into ``... <unfinished ...>`` and a later ``<... connect resumed>) = result`` line of
    the same pid, and a check of a call's result needs both halves."""
    lines, pending = [], {}
    for line in trace:
        pid, _, rest = line.partition(" ")
        if line.endswith("<unfinished ...>"):
            pending[pid] = line[:-len("<unfinished ...>")].rstrip()
        elif (resumed := re.match(r"\s*<\.\.\. \w+ resumed>(.*)", rest)) and pid in pending:
            lines.append(pending.pop(pid) + resumed.group(1))
        else:
            lines.append(line)
    return lines + list(pending.values())


def _environment(home: Path, trialcast_home: Path, cache_file: Path | None) -> dict[str, str]:
    """``KEPT`` and the settings; ``PYTHONPATH`` is this checkout, so that the commands run its code
    (the venv's editable install may point at another checkout)."""
    env = {name: os.environ[name] for name in KEPT if name in os.environ}
    env.update(HOME=str(home), TRIALCAST_HOME=str(trialcast_home), PYTHONPATH=str(CHECKOUT))
    if cache_file:
        env["TRIALCAST_CACHE_FILE"] = str(cache_file)
    assert not set(env) & set(QUIETING)
    return env


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("offline")
    (root / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    (root / "nsswitch.conf").write_text("hosts: files dns\n")
    (root / "resolver.py").write_text(RESOLVER)
    (root / "driver.py").write_text(DRIVER)
    (root / "hook").mkdir()
    (root / "hook" / "sitecustomize.py").write_text(CONTROL_HOOK)
    return root


@pytest.fixture(scope="module")
def control_run(trained: dict, work: Path) -> dict:
    home = work / "control-home"
    home.mkdir()
    env = _environment(home, trained["home"], trained["settings"].cache_file)
    return _in_namespace(work, "control", {"hook": str(work / "hook"), "deadline": CONTROL_DEADLINE}, env)


@pytest.fixture(scope="module")
def ray_control_run(work: Path) -> dict:
    home = work / "ray-control-home"
    home.mkdir()
    return _in_namespace(work, "ray-control", {"code": RAY_CONTROL}, _environment(home, work / "unused", None))


@pytest.fixture(scope="module")
def clean_run(trained: dict, small_sample: Path, work: Path) -> dict:
    sample: Path = trained["sample"]
    # A few candidates (pictures beside them), and a small catalogue to train on (cached vectors).
    cands = pd.read_csv(sample / "candidates.csv", dtype=str, keep_default_na=False).head(6)
    folder = work / "cands"
    (folder / "images").mkdir(parents=True)
    for name in cands["image"]:
        shutil.copy(sample / name, folder / name)
    cands.to_csv(folder / "candidates.csv", index=False)
    (work / "out").mkdir()
    home = work / "clean-home"
    home.mkdir()
    env = _environment(home, trained["home"], trained["settings"].cache_file)
    args = {"idle": IDLE, "picture": str(sample / cands["image"].iloc[0]),
            "candidates": str(folder / "candidates.csv"), "out": str(work / "out" / "scores.csv"),
            "out_ray": str(work / "out" / "scores-ray.csv"),
            "catalogue": str(small_sample / "catalogue.parquet"), "train_home": str(work / "train-home")}
    return _in_namespace(work, "clean", args, env)


def _off_loopback(trace: list[str]) -> list[str]:
    """Trace lines that address a host other than loopback, or a name server (port 53)."""
    found = []
    for line in trace:
        for port, ipv4, ipv6 in ADDRESS.findall(line):
            host = ipv4 or ipv6
            if not (host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1")) or port == "53":
                found.append(line)
    return found


def test_control_the_harness_sees_onnx_runtime_look_its_collector_up(control_run: dict) -> None:
    result = control_run["result"]
    assert result["server_exited_early"] is None, result  # still serving (starting) when it looked up
    assert TELEMETRY_HOST in control_run["lookups"], (result, control_run["lookups"])
    # The lookup goes through the kernel to the namespace's resolver, and the trace shows it.
    assert _off_loopback(control_run["trace"]), control_run["trace"][:20]
    assert (control_run["home"] / ".cache" / "Microsoft").exists()  # ONNX Runtime's device id


def test_serve_predict_score_and_train_work_without_a_network(clean_run: dict) -> None:
    result = clean_run["result"]
    assert result.get("ready_after") is not None and result["server_exited_early"] is None, result
    assert result["predict"] is True and result["predict_batch"] is True, result
    assert result["idled"] >= IDLE, result
    assert result["score"] == 0, result["score_tail"]
    assert result["score_ray"] == 0, result["score_ray_tail"]
    assert result["train"] == 0, result["train_tail"]
    assert len(pd.read_csv(clean_run["work"] / "out" / "scores.csv")) == 6
    assert len(pd.read_csv(clean_run["work"] / "out" / "scores-ray.csv")) == 6
    # The Ray run did start a Ray: its processes reached each other through the session's sockets.
    assert any("/ray/session_" in line for line in clean_run["trace"])


def test_control_the_harness_sees_ray_look_outside_without_the_switches(ray_control_run: dict) -> None:
    """Ray as it starts by default probes for the machine's outside address and asks who hosts it;
    the clean run's Ray, started by trialcast, must do neither."""
    assert ray_control_run["result"]["ray"] == 0, ray_control_run["result"]
    assert "metadata.google.internal" in ray_control_run["lookups"], ray_control_run["lookups"]
    seen = _off_loopback(ray_control_run["trace"])
    assert any('inet_addr("8.8.8.8")' in line and "htons(53)" in line for line in seen), seen[:20]
    assert any('inet_addr("169.254.169.254")' in line and "htons(80)" in line for line in seen), seen[:20]
    assert any(f'inet_addr("{OUTSIDE}")' in line for line in seen)  # and serves on the outside address


def test_the_clean_service_ran_longer_than_the_control_took_to_look_up(control_run: dict,
                                                                        clean_run: dict) -> None:
    """The clean service loads ONNX Runtime before it is ready (its warm-up forecast) and serves
    ``IDLE`` s more after two forecasts: longer than the control needed, from start, to look up."""
    first = control_run["result"]["first_lookup_after"]
    assert clean_run["result"]["served_after_ready"] > first, (first, clean_run["result"])


def test_no_process_looks_a_name_up_or_connects_off_loopback(clean_run: dict) -> None:
    # The trace is of the whole tree: the driver's own requests to the service are in it.
    assert any("127.0.0.1" in line and "connect(" in line for line in clean_run["trace"])
    assert clean_run["lookups"] == []
    assert _off_loopback(clean_run["trace"]) == []
    # glibc asks nscd first; a socket outside the namespace would answer for it (it is absent here).
    assert not [line for line in clean_run["trace"] if "nscd" in line and not line.endswith("(No such file or directory)")]
    assert not (clean_run["home"] / ".cache" / "Microsoft").exists()  # no ONNX Runtime device id


def test_importing_features_forces_every_opt_out_before_onnx_runtime_loads() -> None:
    """An inherited ``ORT_DISABLE_TELEMETRY=0`` or ``DO_NOT_TRACK=false`` does not turn reporting
    back on: the values are forced, and they are in place before anything imports ONNX Runtime."""
    from features.offline import OPT_OUTS

    probe = ("import json, os, sys; import features; "
             f"print(json.dumps([{{k: os.environ.get(k) for k in {list(OPT_OUTS)!r}}}, 'onnxruntime' in sys.modules]))")
    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "0", "DO_NOT_TRACK": "false", "MLFLOW_DISABLE_TELEMETRY": "false"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    values, loaded = json.loads(done.stdout)
    assert values == OPT_OUTS and loaded is False
