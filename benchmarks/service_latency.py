"""What does the service add to the bare encoders?

Measures, in one run and interleaved with the bare encoder work so that both see the same machine load:

1. /predict latency (p50, p99) for one SKU with a picture, beside the bare encoders for one SKU
   (EfficientNet-Lite0 forward on the already decoded picture + USE-m3 on its copy);
2. /predict_batch throughput (SKUs/s) with --batch items per request, beside the bare encoders on
   the same pictures and copy in the service's own batch sizes;
3. batch scoring throughput (``serving.batch.score_file`` in this process) beside the same bare work;

and prints each ratio: service time / bare encoder time (the goal: under 1.20). With --profile it also
shows where the time beyond the encoders goes, for one SKU and for a batch, in-process.

The bare floor is the faster of the encoders called from the main thread and from a worker thread
(see ``Runner``: on a busy machine the two differ by up to 10x, and the service calls them from a
worker thread); the in-process measurements then run the same way.

    python benchmarks/service_latency.py                       # starts the service on TRIALCAST_HOME
    python benchmarks/service_latency.py --url http://127.0.0.1:3000 --profile
    python benchmarks/service_latency.py --photo               # also a 1600x1600 JPEG, like a real product shot

Needs a trained home (``trialcast demo --no-serve`` or ``make demo``) and the sample folder
(``trialcast sample``), whose candidates and pictures it sends.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import os
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

for _name, _value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "true",
                      "BENTOML_DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
                      "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_name, _value)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import numpy as np
import pandas as pd
from PIL import Image

from features.config import Settings
from features.encoders import copy_text, get_encoder
from features.images import decode_image

FIELDS = ("title", "description", "cost_price", "list_price", "category", "launch_date", "channel")


# ---------------------------------------------------------------- inputs
def load_skus(sample: Path, n: int) -> list[dict]:
    """``n`` SKUs with distinct pictures: the sample's candidates, then past SKUs relaunched as new."""
    candidates = pd.read_csv(sample / "candidates.csv", dtype=str, keep_default_na=False)
    rows = candidates.to_dict("records")
    if len(rows) < n:
        past = pd.read_parquet(sample / "catalogue.parquet").tail(n - len(rows))
        launch = candidates["launch_date"].iloc[0]
        for r in past.to_dict("records"):
            rows.append({"sku_id": f"re-{r['sku_id']}", "title": r["title"], "description": r["description"],
                         "cost_price": str(r["cost_price"]), "list_price": str(r["list_price"]),
                         "category": r["category"], "launch_date": launch, "channel": r["channel"],
                         "image": r["image"]})
    out = []
    for r in rows[:n]:
        out.append({**{k: str(r[k]) for k in FIELDS}, "sku_id": r["sku_id"], "image": r["image"],
                    "picture": (sample / r["image"]).read_bytes()})
    return out


def as_photo(picture: bytes, side: int = 1600) -> bytes:
    """The sample's 128 px picture blown up to a product-photo-sized JPEG (with grain, like a camera's)."""
    image = Image.open(io.BytesIO(picture)).convert("RGB").resize((side, side), Image.BICUBIC)
    grain = np.random.default_rng(0).integers(-6, 7, size=(side, side, 3))
    image = Image.fromarray(np.clip(np.asarray(image, dtype=np.int16) + grain, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


# ---------------------------------------------------------------- the bare encoders
class Runner:
    """Runs in-process work on the main thread or on one long-lived worker thread.

    Where the encoders are called from matters a great deal on a busy machine: torch's OpenMP team
    of ``threads`` threads, called from the main thread, waits at every layer for a partner thread the
    OS has descheduled; called from another thread (as BentoML calls our API, from anyio's worker
    threads) it runs without that wait. On a 2-CPU box at load 7 we measured 1.5 s vs 0.11 s for one
    EfficientNet forward. So the bare encoders are timed both ways and the faster one is the floor.
    """

    def __init__(self, mode: str):
        self.mode = mode
        self._pool = ThreadPoolExecutor(max_workers=1) if mode == "worker" else None

    def __call__(self, fn, *args, **kwargs):
        if self._pool is None:
            return fn(*args, **kwargs)
        return self._pool.submit(fn, *args, **kwargs).result()


class Bare:
    """The encoders alone, on pictures decoded beforehand: the floor any service must pay."""

    def __init__(self, settings: Settings, runner: Runner | None = None):
        self.settings = settings
        self.runner = runner or Runner("main")
        self.image = get_encoder(settings.image_encoder, "image", settings.threads)
        self.text = get_encoder(settings.text_encoder, "text", settings.threads)

    def decode(self, picture: bytes) -> Image.Image:
        return decode_image(picture, max_bytes=self.settings.max_image_bytes, max_pixels=self.settings.max_image_pixels)

    def encode(self, images: list[Image.Image], copies: list[str]) -> float:
        """Seconds for the encoders on these items, in the batch sizes the feature path uses."""
        return self.runner(self._encode, images, copies)

    def _encode(self, images: list[Image.Image], copies: list[str]) -> float:
        start = time.perf_counter()
        for i in range(0, len(images), self.settings.batch_size):
            self.image.encode(images[i : i + self.settings.batch_size])
        for i in range(0, len(copies), 256):
            self.text.encode(copies[i : i + 256])
        return time.perf_counter() - start


def copies_of(skus: list[dict]) -> list[str]:
    return [copy_text(s["title"], s["description"]) for s in skus]


# ---------------------------------------------------------------- the service
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(home: Path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="trialcast-bench-")) / "server.log"
    env = {**os.environ, "TRIALCAST_HOME": str(home.resolve())}
    bentoml = Path(sys.executable).with_name("bentoml")
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([str(bentoml), "serve", "serving.service:Trialcast", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the service exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url, log
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise SystemExit(f"the service was not ready in 300 s; see {log}")
        time.sleep(0.5)


def predict_once(client: httpx.Client, url: str, sku: dict, picture: bytes, name: str) -> float:
    start = time.perf_counter()
    response = client.post(url + "/predict", files={"image": (name, picture)}, data={k: sku[k] for k in FIELDS})
    seconds = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"/predict answered {response.status_code}: {response.text[:300]}")
    return seconds


def batch_once(client: httpx.Client, url: str, skus: list[dict], pictures: list[bytes]) -> float:
    items = [{"sku_id": s["sku_id"], **{k: s[k] for k in FIELDS}, "image_base64": base64.b64encode(p).decode()}
             for s, p in zip(skus, pictures)]
    start = time.perf_counter()
    response = client.post(url + "/predict_batch", json={"items": items})
    seconds = time.perf_counter() - start
    if response.status_code != 200 or not all(a["ok"] for a in response.json()):
        raise SystemExit(f"/predict_batch answered {response.status_code}: {response.text[:300]}")
    return seconds


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


# ---------------------------------------------------------------- where the time goes (in-process)
def _buckets() -> list[tuple[str, object, str | None]]:
    """(label, function, caller): the cumulative time of each function (only when called from
    ``caller``, if given). Functions are matched by their code object, as cProfile records them."""
    import lightgbm.basic

    from features import analogs, assemble, cache, encoders, forecast, images, projection

    return [
        ("picture encoder (EfficientNet-Lite0 forward)", encoders.EfficientNetLite0.encode, None),
        ("copy encoder (USE-m3)", encoders.UniversalSentenceEncoderM3.encode, None),
        ("picture decodes (all calls)", images.decode_image, None),
        ("  of which: validation decode (check_record)", images.decode_image, "check_record"),
        ("content hashes of pictures and copy", cache.content_key, None),
        ("FeaturePipeline.transform (all features)", assemble.FeaturePipeline.transform, None),
        ("  analog features (3 searches)", analogs.analog_features, None),
        ("  ridge projection read-out", projection.TimeHonestRidge.predict, None),
        ("analog searches, all (5 per forecast)", analogs.AnalogIndex.search, None),
        ("  of which: similarity matrix products", analogs.AnalogIndex.similarity, None),
        ("curve (4th search + weighting)", assemble.FeaturePipeline.curve, None),
        ("similar SKUs shown (5th search + rows)", assemble.FeaturePipeline.similar, None),
        ("LightGBM, 3 boosters (incl. pandas input)", forecast.QuantileBoosters.predict, None),
        ("  of which: LightGBM's pandas conversion", lightgbm.basic._data_from_pandas, None),
    ]


def profile(predictor, skus: list[dict], pictures: list[bytes], repeat: int) -> list[tuple[str, float]]:
    """Mean seconds per call of Predictor.predict on these SKUs, and of each bucket inside it."""
    records = [{k: s[k] for k in (*FIELDS, "sku_id")} for s in skus]
    predictor.predict(records, pictures)  # warm
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(repeat):
        predictor.predict(records, pictures)
    profiler.disable()
    total = (time.perf_counter() - start) / repeat
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    rows = [("whole Predictor.predict (profiled)", total)]
    for label, function, caller in _buckets():
        code = function.__code__
        key = (code.co_filename, code.co_firstlineno, code.co_name)
        entry = stats.get(key)
        if entry is None:
            seconds = 0.0
        elif caller is None:
            seconds = entry[3]
        else:
            seconds = sum(v[3] for k, v in entry[4].items() if k[2] == caller)
        rows.append((label, seconds / repeat))
    return rows


# ---------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="A running service (default: start one on --home).")
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("TRIALCAST_HOME", ".trialcast")))
    parser.add_argument("--sample", type=Path, default=Path(os.environ.get("TRIALCAST_SAMPLE_DIR", "sample")),
                        help="Sample folder (candidates.csv, catalogue.parquet, images/).")
    parser.add_argument("--requests", type=int, default=50, help="/predict requests for the latency figures.")
    parser.add_argument("--batch", type=int, default=64, help="Items per /predict_batch request.")
    parser.add_argument("--batches", type=int, default=3, help="/predict_batch requests.")
    parser.add_argument("--rows", type=int, default=128, help="Rows for in-process batch scoring.")
    parser.add_argument("--calibrate", type=int, default=8, help="Calls per thread mode to pick the floor.")
    parser.add_argument("--photo", action="store_true", help="Also time /predict with a 1600x1600 JPEG.")
    parser.add_argument("--profile", action="store_true", help="Show where the time beyond the encoders goes.")
    args = parser.parse_args()
    os.environ["TRIALCAST_HOME"] = str(args.home.resolve())
    settings = Settings()

    skus = load_skus(args.sample, max(args.batch, args.rows))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"encoder threads {settings.threads}; home {args.home}")
    # The floor: the bare encoders called from the main thread or from a worker thread, whichever is
    # faster here and now (see Runner); everything in-process below then runs the same way.
    one = [Bare(settings).decode(skus[0]["picture"])], copies_of(skus[:1])
    speed = {}
    for mode in ("main", "worker"):
        candidate = Bare(settings, Runner(mode))
        for _ in range(2):
            candidate.encode(*one)
        speed[mode] = statistics.median(candidate.encode(*one) for _ in range(args.calibrate))
    mode = min(speed, key=speed.get)
    runner = Runner(mode)
    bare = Bare(settings, runner)
    print("bare encoders, one SKU, median of {}: main thread {:.1f} ms, worker thread {:.1f} ms -> floor: {}"
          .format(args.calibrate, speed["main"] * 1000, speed["worker"] * 1000, mode))

    proc = None
    url = args.url
    if url is None:
        print("starting the service ...", flush=True)
        proc, url, log = start_service(args.home)
        print(f"service at {url} (log {log})")
    results: list[tuple[str, float, float, str]] = []
    try:
        with httpx.Client(timeout=600) as client:
            # ---- 1. one SKU per request
            cases = [("/predict, 128 px PNG", skus[0]["picture"], "sku.png")]
            if args.photo:
                cases.append(("/predict, 1600 px JPEG", as_photo(skus[0]["picture"]), "sku.jpg"))
            copy = copies_of(skus[:1])
            for label, picture, name in cases:
                decoded = bare.decode(picture)
                for _ in range(3):  # warm both sides
                    predict_once(client, url, skus[0], picture, name)
                    bare.encode([decoded], copy)
                served, floor = [], []
                for _ in range(args.requests):  # interleaved: both see the same load
                    served.append(predict_once(client, url, skus[0], picture, name))
                    floor.append(bare.encode([decoded], copy))
                print(f"\n{label}: {args.requests} requests, one at a time")
                print(f"  service latency  p50 {pct(served, 50) * 1000:8.1f} ms   p99 {pct(served, 99) * 1000:8.1f} ms"
                      f"   mean {statistics.mean(served) * 1000:8.1f} ms")
                print(f"  bare encoders    p50 {pct(floor, 50) * 1000:8.1f} ms   p99 {pct(floor, 99) * 1000:8.1f} ms"
                      f"   mean {statistics.mean(floor) * 1000:8.1f} ms")
                ratio = pct(served, 50) / pct(floor, 50)
                print(f"  ratio (p50 / p50) {ratio:.2f}   ratio (mean / mean) "
                      f"{statistics.mean(served) / statistics.mean(floor):.2f}")
                results.append((label + " (p50)", pct(served, 50), pct(floor, 50), "s/SKU"))

            # ---- 2. /predict_batch
            group = skus[: args.batch]
            pictures = [s["picture"] for s in group]
            decoded = [bare.decode(p) for p in pictures]
            copies = copies_of(group)
            batch_once(client, url, group, pictures)
            bare.encode(decoded, copies)
            served, floor = [], []
            for _ in range(args.batches):
                served.append(batch_once(client, url, group, pictures))
                floor.append(bare.encode(decoded, copies))
            s, f = statistics.median(served), statistics.median(floor)
            print(f"\n/predict_batch: {args.batches} requests of {args.batch} SKUs (distinct pictures)")
            print(f"  service          {args.batch / s:8.1f} SKUs/s   ({s:.2f} s per request)")
            print(f"  bare encoders    {args.batch / f:8.1f} SKUs/s   ({f:.2f} s for the same items)")
            print(f"  ratio (time)     {s / f:.2f}")
            results.append((f"/predict_batch x{args.batch}", s / args.batch, f / args.batch, "s/SKU"))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    # ---- 3. batch scoring in this process (the service is stopped: it would share the CPUs)
    from serving.batch import score_file
    from serving.champion import load_champion

    predictor, message = load_champion(settings)
    if predictor is None:
        raise SystemExit(message)
    rows = skus[: args.rows]
    folder = Path(tempfile.mkdtemp(prefix="trialcast-bench-score-"))
    try:
        for s in rows:
            (folder / s["image"]).parent.mkdir(parents=True, exist_ok=True)
            (folder / s["image"]).write_bytes(s["picture"])
        table = pd.DataFrame([{k: v for k, v in s.items() if k != "picture"} for s in rows])
        table.to_csv(folder / "candidates.csv", index=False)
        decoded = [bare.decode(s["picture"]) for s in rows]
        copies = copies_of(rows)
        def timed_score(out: Path) -> float:
            start = time.perf_counter()
            summary = score_file(folder / "candidates.csv", out, predictor, progress=False)
            assert summary["failed"] == 0, summary
            return time.perf_counter() - start

        runner(timed_score, folder / "warm.parquet")
        served, floor = [], []
        for i in range(2):
            served.append(runner(timed_score, folder / f"scores{i}.parquet"))
            floor.append(bare.encode(decoded, copies))
        s, f = min(served), min(floor)
        print(f"\nbatch scoring (serving.batch.score_file, in-process on the {mode} thread, chunk 64): "
              f"{len(rows)} rows")
        print(f"  score_file       {len(rows) / s:8.1f} SKUs/s   ({s:.2f} s)")
        print(f"  bare encoders    {len(rows) / f:8.1f} SKUs/s   ({f:.2f} s)")
        print(f"  ratio (time)     {s / f:.2f}")
        results.append((f"score_file x{len(rows)}", s / len(rows), f / len(rows), "s/SKU"))

        # The model path alone, without HTTP: the same SKU through Predictor.predict in this process.
        record = [{k: rows[0][k] for k in (*FIELDS, "sku_id")}]
        first = [rows[0]["picture"]]
        one = [bare.decode(rows[0]["picture"])], copies_of(rows[:1])
        runner(predictor.predict, record, first)
        served, floor = [], []
        for _ in range(args.requests // 2):
            start = time.perf_counter()
            runner(predictor.predict, record, first)
            served.append(time.perf_counter() - start)
            floor.append(bare.encode(*one))
        print(f"\nPredictor.predict in-process (no HTTP), one SKU (128 px PNG), {len(served)} calls")
        print(f"  model path       p50 {pct(served, 50) * 1000:8.1f} ms   bare encoders p50 {pct(floor, 50) * 1000:8.1f} ms"
              f"   ratio {pct(served, 50) / pct(floor, 50):.2f}")
        results.append(("Predictor.predict x1, no HTTP", pct(served, 50), pct(floor, 50), "s/SKU"))

        if args.profile:
            for label, group, repeat in [("one SKU (128 px PNG)", rows[:1], 10),
                                         (f"{min(64, len(rows))} SKUs in one call", rows[:64], 2)]:
                pictures = [s["picture"] for s in group]
                print(f"\nwhere the time goes, in-process Predictor.predict, {label} (mean of {repeat}):")
                table = runner(profile, predictor, group, pictures, repeat)
                whole = table[0][1]
                for name, seconds in table:
                    print(f"  {name:<48} {seconds * 1000 / len(group):9.1f} ms/SKU  {seconds / whole:6.1%}")
            if args.photo:
                photo = as_photo(rows[0]["picture"])
                print("\nwhere the time goes, one SKU with a 1600 px JPEG (mean of 10):")
                table = runner(profile, predictor, rows[:1], [photo], 10)
                whole = table[0][1]
                for name, seconds in table:
                    print(f"  {name:<48} {seconds * 1000:9.1f} ms/SKU  {seconds / whole:6.1%}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print("\nsummary (service time / bare encoder time; goal < 1.20):")
    for label, service_s, bare_s, _ in results:
        print(f"  {label:<32} service {service_s * 1000:8.1f} ms/SKU   bare {bare_s * 1000:8.1f} ms/SKU"
              f"   ratio {service_s / bare_s:5.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
