"""Load on the real service, loopback only, bounded, stopping by itself (issue 14, item 3).

For 1, 10 and 50 concurrent clients, each sending single-SKU ``/predict`` requests back to back
for ``--seconds`` (every picture new to the embedding cache): requests/s, p50 / p95 / p99 latency, errors (any answer but 200), and each
figure's ratio to the 1-client run of the same invocation (the reference). Then ``--batches``
concurrent ``/predict_batch`` requests of ``--items`` SKUs each, once. The service's resident
memory (every process of it) is read before and after.

    python benchmarks/load.py --home .trialcast --sample sample          # starts its own service
    python benchmarks/load.py --url http://127.0.0.1:3000 --sample sample --seconds 60

Needs a trained home (``make demo`` or ``trialcast demo --no-serve``) and the sample folder.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import psutil

FIELDS = ("title", "description", "cost_price", "list_price", "category", "launch_date", "channel")
_counter = iter(range(10**9))


def fresh(picture: bytes) -> bytes:
    """The same picture as new bytes (a tag after PNG's IEND, which decoders ignore), so that the
    embedding cache, keyed by content hash, never answers for the encoder: every request pays the
    full picture encoding, as a new SKU's picture does."""
    return picture + f"trialcast-load-{next(_counter)}".encode()


def candidates(sample: Path, n: int = 50) -> list[tuple[dict, bytes]]:
    frame = pd.read_csv(sample / "candidates.csv", dtype=str, keep_default_na=False).head(n)
    return [({k: row[k] for k in FIELDS if row[k]}, (sample / row["image"]).read_bytes()) for _, row in frame.iterrows()]


@contextmanager
def service(url: str | None, home: Path | None):
    """The service to load: the one at ``url``, or one started here on ``home`` (127.0.0.1)."""
    if url:
        yield url, None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TRIALCAST_HOME": str(home)}
    proc = subprocess.Popen([str(Path(sys.executable).with_name("bentoml")), "serve", "serving.service:Trialcast",
                             "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"the service exited with {proc.returncode}")
            time.sleep(0.5)
        else:
            raise SystemExit("the service was not ready in 300 s")
        yield base, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def resident_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20
    except psutil.Error:
        return None


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def load(url: str, skus: list[tuple[dict, bytes]], clients: int, seconds: float) -> dict:
    """``clients`` threads, each posting /predict back to back until ``seconds`` have passed."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(k: int) -> None:
        with httpx.Client(timeout=300) as http:
            i = k
            while time.monotonic() < stop:
                fields, picture = skus[i % len(skus)]
                start = time.perf_counter()
                try:
                    status = str(http.post(url + "/predict", data=fields,
                                           files={"image": ("p.png", fresh(picture), "image/png")}).status_code)
                except httpx.HTTPError as error:
                    status = type(error).__name__
                with lock:
                    if status == "200":
                        latencies.append(time.perf_counter() - start)
                    else:
                        errors[status] = errors.get(status, 0) + 1
                i += clients

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    elapsed = time.perf_counter() - began
    return {"clients": clients, "requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed,
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "p99": percentile(latencies, 99)}


def batches(url: str, skus: list[tuple[dict, bytes]], n: int, items: int) -> dict:
    """``n`` concurrent /predict_batch requests of ``items`` SKUs each, started together."""
    barrier = threading.Barrier(n)

    def one(k: int) -> tuple[str, float, int]:
        chosen = [skus[(k * items + j) % len(skus)] for j in range(items)]
        body = {"items": [{**f, "sku_id": f"b{k}-{j}", "image_base64": base64.b64encode(fresh(p)).decode()}
                          for j, (f, p) in enumerate(chosen)]}
        barrier.wait()
        start = time.perf_counter()
        try:
            response = httpx.post(url + "/predict_batch", json=body, timeout=600)
            ok = sum(bool(a.get("ok")) for a in response.json()) if response.status_code == 200 else 0
            return str(response.status_code), time.perf_counter() - start, ok
        except httpx.HTTPError as error:
            return type(error).__name__, time.perf_counter() - start, 0

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    statuses: dict[str, int] = {}
    for status, _, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    return {"requests": n, "items": items, "statuses": statuses, "ok_items": sum(r[2] for r in results),
            "slowest_s": max(r[1] for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running service (default: start one on --home)")
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("TRIALCAST_HOME", ".trialcast")))
    parser.add_argument("--sample", type=Path, default=Path("sample"))
    parser.add_argument("--seconds", type=float, default=20.0, help="per client count (the goal's figure: 60)")
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--items", type=int, default=16)
    args = parser.parse_args()
    skus = candidates(args.sample)
    with service(args.url, args.home) as (url, pid):
        before = resident_mb(pid)
        runs = [load(url, skus, int(c), args.seconds) for c in args.clients.split(",")]
        batch = batches(url, skus, args.batches, args.items)
        after = resident_mb(pid)
    reference = runs[0]
    print(f"{'clients':>7} {'req/s':>7} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7} {'errors':>8}   ratios to 1 client (req/s, p95)")
    for run in runs:
        print(f"{run['clients']:>7} {run['rps']:>7.2f} {run['p50']:>7.2f} {run['p95']:>7.2f} {run['p99']:>7.2f} "
              f"{sum(run['errors'].values()):>8}   x{run['rps'] / reference['rps']:.2f}, x{run['p95'] / reference['p95']:.2f}")
    print(f"{batch['requests']} concurrent /predict_batch x {batch['items']}: statuses {batch['statuses']}, "
          f"{batch['ok_items']} items ok, slowest {batch['slowest_s']:.1f} s")
    if before is not None:
        print(f"service memory: {before:.0f} MB before, {after:.0f} MB after (x{after / before:.2f})")
    print(json.dumps({"runs": runs, "batch": batch, "memory_mb": {"before": before, "after": after}}))


if __name__ == "__main__":
    main()
