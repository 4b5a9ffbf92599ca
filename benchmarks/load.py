"""Load on the real service, loopback only, bounded, stopping by itself (issue 14, item 3).

For 1, 10 and 50 concurrent clients, each sending single-SKU ``/predict`` requests back to back
for ``--seconds`` (every picture new bytes): requests/s, p50 / p95 / p99 latency, errors (any
answer but 200), and each figure's ratio to the 1-client run of the same invocation. Then
``--batches`` concurrent ``/predict_batch`` requests of ``--items`` SKUs each, once.

The machine is shared, so the figures come with what bounds them, measured in the same run: the
load average before and after each step, and the bare picture encoder's pictures/s (this
process, the service's thread count and encoder batch, on the idle service's machine): a closed
loop of N clients waits about N / throughput, so p95 < 5 s at 50 clients needs > ~10 requests/s,
and the encoder's pictures/s is the ceiling of that. The service's resident memory (every process
of it) is read before, after each step and after the run; ``--env NAME=VALUE`` sets the started
service's environment (``MALLOC_ARENA_MAX=2``, ``TRIALCAST_SERVE_ENCODE_BATCH=32`` ...) to compare.

    python benchmarks/load.py --home .trialcast --sample sample          # starts its own service
    python benchmarks/load.py --url http://127.0.0.1:3000 --sample sample --seconds 60
    python benchmarks/load.py --home .trialcast --sample sample --allocator 20   # growth or retention?

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
def service(url: str | None, home: Path | None, extra: dict[str, str] | None = None):
    """The service to load: the one at ``url``, or one started here on ``home`` (127.0.0.1)."""
    if url:
        yield url, None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TRIALCAST_HOME": str(home), **(extra or {})}
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


def load_average() -> float:
    return round(os.getloadavg()[0], 1)


def encoder_rate(sample: Path, extra: dict[str, str], n: int = 32) -> float:
    """The bare picture encoder's pictures/s (decode excluded), as the service runs it: its thread
    budget and encoder batch (``extra`` overrides the environment, as for the service)."""
    import numpy as np

    from features.config import Settings
    from features.encoders import get_encoder
    from features.images import decode_image
    from features.threads import apply, encoder_threads

    names = {k[len("TRIALCAST_"):].lower(): v for k, v in {**os.environ, **extra}.items() if k.startswith("TRIALCAST_")}
    settings = Settings(**{k: v for k, v in names.items() if k in Settings.model_fields})
    apply(settings)
    encoder = get_encoder(settings.image_encoder, "image", encoder_threads(settings, "image"), settings.home)
    pictures = [decode_image((sample / row).read_bytes(), max_bytes=settings.max_image_bytes,
                             max_pixels=settings.max_image_pixels) for row in
                pd.read_csv(sample / "candidates.csv", dtype=str)["image"].head(n)]
    step = settings.serve_encode_batch
    encoder.encode(pictures[:step])  # the first run builds the session's buffers
    rates = []
    for _ in range(3):
        began = time.perf_counter()
        for i in range(0, len(pictures), step):
            encoder.encode(pictures[i:i + step])
        rates.append(len(pictures) / (time.perf_counter() - began))
    return float(np.median(rates))


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


def allocator_variant(home: Path, sample: Path, encode_batch: int, arenas: int, calls: int) -> dict:
    """In this process: the champion's ``Predictor`` answering ``calls`` batches of 32 new SKUs on a
    worker thread (as the service's batcher does), resident memory after the warm-up and after."""
    import asyncio

    from features.config import Settings
    from features.threads import apply
    from serving.champion import load_champion
    from serving.memory import cap_malloc_arenas

    cap_malloc_arenas(arenas)
    settings = Settings(home=home, serve_encode_batch=encode_batch)
    apply(settings)
    predictor, message = load_champion(settings)
    if predictor is None:
        raise SystemExit(message)
    skus = candidates(sample)
    process = psutil.Process()

    def batch(k: int) -> tuple[list[dict], list[bytes]]:
        chosen = [skus[(k * 32 + j) % len(skus)] for j in range(32)]
        return [{**f, "sku_id": "upload"} for f, _ in chosen], [fresh(p) for _, p in chosen]

    async def run() -> dict:
        await asyncio.to_thread(predictor.predict, *batch(0))
        warm = process.memory_info().rss / 2**20
        began = time.perf_counter()
        for k in range(calls):
            await asyncio.to_thread(predictor.predict, *batch(k + 1))
        rate = calls * 32 / (time.perf_counter() - began)
        return {"encode_batch": encode_batch, "arenas": arenas, "warm_mb": warm,
                "after_mb": process.memory_info().rss / 2**20, "skus_s": rate, "load_average": load_average()}

    return asyncio.run(run())


def allocator(home: Path, sample: Path, calls: int) -> None:
    """Growth or retention? Each variant in a fresh process: encoder runs of 32 or 8 pictures,
    glibc's default arenas (0) or 2. Memory flat after the warm-up is retention, not a leak."""
    rows = []
    for encode_batch, arenas in ((32, 0), (32, 2), (8, 0), (8, 2)):
        done = subprocess.run([sys.executable, __file__, "--home", str(home), "--sample", str(sample),
                               "--allocator-variant", f"{encode_batch},{arenas},{calls}"],
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    first = rows[0]
    print(f"{'encode batch':>12} {'arenas':>6} {'after warm-up':>13} {'after':>7} {'growth':>7} {'SKU/s':>6} {'load':>5}"
          f"   ratios to (32, default): growth, SKU/s")
    for r in rows:
        print(f"{r['encode_batch']:>12} {r['arenas'] or 'glibc':>6} {r['warm_mb']:>10.0f} MB {r['after_mb']:>4.0f} MB "
              f"{r['after_mb'] - r['warm_mb']:>+4.0f} MB {r['skus_s']:>6.1f} {r['load_average']:>5}   "
              f"x{(r['after_mb'] - r['warm_mb']) / max(first['after_mb'] - first['warm_mb'], 1):.2f}, "
              f"x{r['skus_s'] / first['skus_s']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running service (default: start one on --home)")
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("TRIALCAST_HOME", ".trialcast")))
    parser.add_argument("--sample", type=Path, default=Path("sample"))
    parser.add_argument("--seconds", type=float, default=20.0, help="per client count (the goal's figure: 60)")
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment of the started service (repeatable)")
    parser.add_argument("--allocator", type=int, metavar="CALLS", default=0,
                        help="instead: memory growth or retention, in-process, CALLS batches of 32 per variant")
    parser.add_argument("--allocator-variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.allocator_variant:
        encode_batch, arenas, calls = (int(x) for x in args.allocator_variant.split(","))
        print(json.dumps(allocator_variant(args.home, args.sample, encode_batch, arenas, calls)))
        return
    if args.allocator:
        return allocator(args.home, args.sample, args.allocator)
    extra = dict(item.split("=", 1) for item in args.env)
    skus = candidates(args.sample)
    with service(args.url, args.home, extra) as (url, pid):
        memory = {"start": resident_mb(pid)}
        print(f"load average {load_average()}; service memory {memory['start']} MB; env {extra or 'default'}", flush=True)
        encoder = encoder_rate(args.sample, {"TRIALCAST_HOME": str(args.home), **extra})
        print(f"reference: bare picture encoder {encoder:.1f} pictures/s (load {load_average()})", flush=True)
        runs = []
        for c in args.clients.split(","):
            runs.append({**load(url, skus, int(c), args.seconds), "load_average": load_average()})
            memory[f"after {c} clients"] = resident_mb(pid)
        batch = batches(url, skus, args.batches, args.items) if args.batches else None
        memory["after batches"] = resident_mb(pid)
    report(runs, batch, memory, encoder)


def report(runs: list[dict], batch: dict | None, memory: dict, encoder: float) -> None:
    reference = runs[0]
    print(f"{'clients':>7} {'req/s':>7} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7} {'errors':>8} {'load':>5}   "
          f"req/s / encoder pictures/s, ratios to 1 client (req/s, p95)")
    for run in runs:
        print(f"{run['clients']:>7} {run['rps']:>7.2f} {run['p50']:>7.2f} {run['p95']:>7.2f} {run['p99']:>7.2f} "
              f"{sum(run['errors'].values()):>8} {run['load_average']:>5}   {run['rps'] / encoder:.2f}, "
              f"x{run['rps'] / reference['rps']:.2f}, x{run['p95'] / reference['p95']:.2f}")
    if batch:
        print(f"{batch['requests']} concurrent /predict_batch x {batch['items']}: statuses {batch['statuses']}, "
              f"{batch['ok_items']} items ok, slowest {batch['slowest_s']:.1f} s")
    if memory.get("start"):
        steps = ", ".join(f"{k} {v:.0f}" for k, v in memory.items() if v is not None)
        print(f"service memory (MB): {steps} (x{memory['after batches'] / memory['start']:.2f})")
    print(json.dumps({"runs": runs, "batch": batch, "memory_mb": memory, "encoder_pictures_s": encoder}))


if __name__ == "__main__":
    main()
