"""Shared fixtures: offline environment, PIL-drawn pictures and tiny catalogues in temporary folders."""

from __future__ import annotations

import contextlib
import io
import os

# Set before anything imports transformers / huggingface_hub / mlflow / bentoml: nothing in the test
# suite may reach the network or phone home.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist (`make test` runs 2 workers on this 2-core machine) each worker, and every
# service or command it starts, gets one thread per pool: two workers with 2 threads each would
# fight over the cores (features/threads.py; LightGBM and the encoders give the same bits).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TRIALCAST_THREADS", "1")

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

COLOURS = {
    "red": (220, 30, 40),
    "blue": (30, 60, 210),
    "green": (40, 170, 60),
    "black": (20, 20, 20),
    "yellow": (240, 210, 30),
    "purple": (130, 40, 160),
}
SHAPES = ("circle", "square", "triangle", "stripes")

# Copy that reads like a small Chinese marketplace catalogue: (category, title, description).
PRODUCTS = [
    ("tshirt", "纯棉白色T恤", "夏季短袖 纯棉 透气"),
    ("tshirt", "白色棉质短袖", "基础款 圆领 棉质"),
    ("tshirt", "黑色印花T恤", "潮流 印花 宽松"),
    ("cup", "不锈钢保温杯", "500毫升 长效保温"),
    ("cup", "陶瓷马克杯", "简约 咖啡杯 350毫升"),
    ("cup", "玻璃水杯", "耐热 高硼硅 便携"),
    ("shoes", "白色运动鞋", "透气 跑步 轻便"),
    ("shoes", "黑色皮鞋", "商务 真皮 正装"),
]


def draw_picture(
    shape: str, colour: str | tuple[int, int, int], size: tuple[int, int] = (96, 96), shift: int = 0
) -> Image.Image:
    """A product shot: one coloured shape on white. ``shift`` nudges it a few pixels."""
    rgb = COLOURS[colour] if isinstance(colour, str) else colour
    w, h = size
    image = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(image)
    box = (w // 5 + shift, h // 5 + shift, 4 * w // 5 + shift, 4 * h // 5 + shift)
    if shape == "circle":
        d.ellipse(box, fill=rgb)
    elif shape == "square":
        d.rectangle(box, fill=rgb)
    elif shape == "triangle":
        d.polygon([(w // 2 + shift, box[1]), (box[0], box[3]), (box[2], box[3])], fill=rgb)
    elif shape == "stripes":
        for y in range(box[1], box[3], 8):
            d.rectangle((box[0], y, box[2], y + 3), fill=rgb)
    else:
        raise ValueError(shape)
    return image


def picture_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def catalogue_rows(
    n: int, *, start: str = "2024-01-01", every_days: int = 3, seed: int = 0, curve: bool = True
) -> list[dict]:
    """``n`` valid catalogue rows (picture files named in ``image``, not yet drawn)."""
    rng = np.random.default_rng(seed)
    rows = []
    day0 = pd.Timestamp(start)
    for i in range(n):
        category, title, description = PRODUCTS[i % len(PRODUCTS)]
        daily = rng.poisson(5 + 3 * (i % 5), size=7)
        row = {
            "sku_id": f"SKU{i:04d}",
            "launch_date": (day0 + pd.Timedelta(days=every_days * i)).date().isoformat(),
            "category": category,
            "title": f"{title} {i}",
            "description": description,
            "image": f"img/{i:04d}.png",
            "cost_price": f"{10 + i % 7 * 2.5:.2f}",
            "list_price": f"{25 + i % 7 * 5:.2f}",
            "channel": ("app", "web")[i % 2],
            "sales_7d": str(int(daily.sum())),
        }
        if curve:
            row.update({f"sales_d{d + 1}": str(int(v)) for d, v in enumerate(daily)})
        rows.append(row)
    return rows


def draw_row_picture(folder: Path, row: dict, i: int) -> None:
    path = folder / row["image"]
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = SHAPES[i % len(SHAPES)]
    colour = list(COLOURS)[(i // len(SHAPES)) % len(COLOURS)]
    draw_picture(shape, colour, shift=i % 3).save(path)


def write_catalogue(
    folder: Path, rows: list[dict], *, fmt: str = "csv", draw: bool = True, name: str = "catalogue"
) -> Path:
    """Write ``rows`` as a CSV or Parquet table in ``folder`` and draw each row's picture."""
    folder.mkdir(parents=True, exist_ok=True)
    if draw:
        for i, row in enumerate(rows):
            if (
                row.get("image")
                and not Path(str(row["image"])).is_absolute()
                and ".." not in str(row["image"])
            ):
                draw_row_picture(folder, row, i)
    frame = pd.DataFrame(rows)
    path = folder / f"{name}.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False, encoding="utf-8")
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        raise ValueError(fmt)
    return path


@pytest.fixture
def make_catalogue(tmp_path: Path) -> Callable[..., Path]:
    """Build a catalogue of ``n`` valid SKUs in a fresh folder; returns the table's path."""
    counter = iter(range(10_000))

    def build(
        n: int = 8, *, fmt: str = "csv", rows: list[dict] | None = None, **row_options
    ) -> Path:
        folder = tmp_path / f"catalogue{next(counter)}"
        return write_catalogue(
            folder, rows if rows is not None else catalogue_rows(n, **row_options), fmt=fmt
        )

    return build


@pytest.fixture
def settings(tmp_path: Path):
    """Product settings with all state in a temporary home (default encoders)."""
    from features.config import Settings

    return Settings(home=tmp_path / "home")


@pytest.fixture(scope="session")
def history(tmp_path_factory):
    """A 24-SKU catalogue embedded once with the real default encoders, shared by the session.

    Returns (catalogue, embeddings, settings, catalogue path).
    """
    from features.cache import EmbeddingCache
    from features.catalogue import load_catalogue
    from features.config import Settings
    from features.embed import embed_frame

    folder = tmp_path_factory.mktemp("history")
    path = write_catalogue(folder, catalogue_rows(24, every_days=3, seed=1))
    catalogue = load_catalogue(path)
    settings = Settings(home=folder / "home", analog_k=5, picture_components=4, copy_components=4)
    cache = EmbeddingCache(settings.cache_path)
    embeddings = embed_frame(catalogue.frame, settings, cache=cache)
    cache.close()
    return catalogue, embeddings, settings, path


@pytest.fixture(scope="session")
def kit():
    """The drawing and catalogue helpers above, for tests (robust to how pytest imports conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        draw_picture=draw_picture,
        picture_bytes=picture_bytes,
        catalogue_rows=catalogue_rows,
        write_catalogue=write_catalogue,
        colours=COLOURS,
        shapes=SHAPES,
    )


# ---------------------------------------------------------------- the trained sample (shared)
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shared_root(tmp_path_factory) -> Path:
    """A folder every pytest-xdist worker of this run sees (the parent of the workers' own
    temporary roots); the session's own temporary root when there are no workers."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def shared_embedding_cache(tmp_path_factory) -> Path:
    """One embedding cache for the whole run when ``TRIALCAST_TEST_CACHE`` is unset (CI): a file
    under the root every xdist worker sees, so the sample is embedded once, not once per fixture
    that embeds it (trained home, kill, offline, launch replay). Safe for several processes: the
    cache is content-keyed SQLite in WAL mode with a busy timeout (features/cache.py)."""
    if not os.environ.get("TRIALCAST_TEST_CACHE"):
        os.environ["TRIALCAST_TEST_CACHE"] = str(_shared_root(tmp_path_factory) / "embeddings.sqlite")
    return Path(os.environ["TRIALCAST_TEST_CACHE"])


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """The default SYNTHETIC sample catalogue (3,000 SKUs), written once per run (under a file
    lock, so that pytest-xdist workers share one copy instead of drawing 3,000 pictures each).

    ``TRIALCAST_TEST_SAMPLE_DIR`` reuses a folder between local runs (it is generated there if empty)."""
    from filelock import FileLock

    from features.sample import write_sample_catalogue

    shared = _shared_root(tmp_path_factory)
    folder = Path(os.environ.get("TRIALCAST_TEST_SAMPLE_DIR") or shared / "sample")
    with FileLock(str(shared / "sample.lock")):
        if not (folder / "catalogue.parquet").exists():
            folder.mkdir(parents=True, exist_ok=True)
            write_sample_catalogue(folder)
    return folder


def _write_small_sample(sample_dir: Path, folder: Path) -> None:
    """Every third SKU of the sample, pictures hard-linked (same bytes, so every vector is cached)."""
    import pandas as pd

    frame = pd.read_parquet(sample_dir / "catalogue.parquet").iloc[::3].reset_index(drop=True)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for name in frame["image"]:
        target = folder / name
        if not target.exists():
            try:
                os.link(sample_dir / name, target)
            except OSError:  # another file system: a copy gives the same bytes
                target.write_bytes((sample_dir / name).read_bytes())
    frame.to_parquet(folder / "catalogue.parquet")


@pytest.fixture(scope="session")
def small_sample(sample_dir: Path, tmp_path_factory) -> Path:
    """A 1,000-SKU catalogue (every third SKU of the 3,000-SKU sample) for mechanism tests whose
    numbers do not depend on the sample's size (kill, offline, gate's weak model): a third of the
    training time. Written once per run under a file lock; returns the folder (``catalogue.parquet``
    and ``images/``). Read-only: tests copy it to change it."""
    from filelock import FileLock

    shared = _shared_root(tmp_path_factory)
    folder = shared / "small-sample"
    with FileLock(str(shared / "small-sample.lock")):
        if not (folder / "catalogue.parquet").exists():
            _write_small_sample(sample_dir, folder)
    return folder


def _train_sample(sample_dir: Path, home: Path) -> dict:
    from features.config import Settings
    from training.jobs import run_train

    cache = os.environ.get("TRIALCAST_TEST_CACHE")
    settings = Settings(home=home, cache_file=Path(cache) if cache else None)
    return run_train(sample_dir / "catalogue.parquet", settings, progress=False, echo=lambda *_: None)


@pytest.fixture(scope="session")
def trained(sample_dir: Path, tmp_path_factory) -> dict:
    """A fresh trialcast home (MLflow store, registry) whose champion was trained on the sample.

    Trained once per run: under pytest-xdist the first worker that needs it trains into a shared
    folder (file lock) and every worker gets its own copy of that home (tests change their home:
    aliases, forecast log), relocated to itself like any copied home (``features.store.relocate``).
    ``TRIALCAST_TEST_CACHE`` shares the embedding cache between local runs (content-keyed, so safe)."""
    import pickle
    import shutil

    from filelock import FileLock

    from features.config import Settings
    from features.store import relocate

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        home = tmp_path_factory.mktemp("home")
        summary = _train_sample(sample_dir, home)
    else:
        shared = _shared_root(tmp_path_factory)
        with FileLock(str(shared / "trained.lock")):
            if not (shared / "trained.pickle").exists():
                summary = _train_sample(sample_dir, shared / "trained-home")
                (shared / "trained.pickle").write_bytes(pickle.dumps(summary))
        summary = pickle.loads((shared / "trained.pickle").read_bytes())
        home = tmp_path_factory.mktemp("home")
        shutil.copytree(shared / "trained-home", home, dirs_exist_ok=True)
    cache = os.environ.get("TRIALCAST_TEST_CACHE")
    settings = Settings(home=home, cache_file=Path(cache) if cache else None)
    relocate(settings)
    return {"home": home, "settings": settings, "summary": summary, "sample": sample_dir}


@contextlib.contextmanager
def serving(env: dict[str, str], folder: Path):
    """``bentoml serve`` of the service with ``env`` on a free loopback port, until ready; stopped after."""
    import signal
    import subprocess
    import sys
    import time

    import httpx

    port = _free_port()
    bentoml = Path(sys.executable).with_name("bentoml")
    with open(folder / "server.log", "wb") as log:  # the child keeps its copy
        proc = subprocess.Popen(
            [str(bentoml), "serve", "serving.service:Trialcast", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited with {proc.returncode}; see {log.name}")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise RuntimeError(f"the service did not become ready in 180 s; see {log.name}")
        time.sleep(0.5)
    try:
        yield {"url": base, "process": proc, "log": Path(log.name)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def server_env(trained: dict, **settings: str) -> dict[str, str]:
    """Environment of a service on the trained home, plus ``TRIALCAST_<NAME>`` settings."""
    env = {**os.environ, "TRIALCAST_HOME": str(trained["home"])}
    if trained["settings"].cache_file:
        env["TRIALCAST_CACHE_FILE"] = str(trained["settings"].cache_file)
    return {**env, **{f"TRIALCAST_{k.upper()}": v for k, v in settings.items()}}


@pytest.fixture(scope="session")
def server(trained: dict, tmp_path_factory):
    """The real service (``bentoml serve``) on a free loopback port, serving the sample champion."""
    with serving(server_env(trained), tmp_path_factory.mktemp("server")) as running:
        yield {**running, **trained}


@pytest.fixture(scope="session")
def start_server():
    """``start_server(env, folder)``: a context manager running another real service (test modules
    cannot import this conftest under ``--import-mode=importlib``), and ``server_env``."""
    from types import SimpleNamespace

    return SimpleNamespace(serving=serving, env=server_env)


# ---------------------------------------------------------------- a real PostgreSQL server
def _postgres_bin() -> Path:
    """The newest installed PostgreSQL's binaries (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make system` (apt-get install postgresql)")
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL cluster (initdb + pg_ctl, as the ``postgres`` user when we are root)
    on a free loopback port; yields a SQLAlchemy URL of a fresh database, stops the cluster after."""
    import pwd
    import shutil
    import subprocess
    import tempfile

    binaries = _postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="trialcast-pg-"))
    as_user: list[str] = []
    user = pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:  # postgres refuses to run as root
        user = "postgres"
        shutil.chown(folder, user)
        as_user = ["runuser", "-u", user, "--"]
    data, port = folder / "data", _free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=120)

    run(str(binaries / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8")
    run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60", "-o",
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder}", "start")
    try:
        run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, "trialcast")
        yield f"postgresql+psycopg://{user}@127.0.0.1:{port}/trialcast"
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path) -> str:
    """The URL of an empty forecast log: a SQLite file, or a fresh database on the PostgreSQL server
    (tests that take it run against both backends)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'forecasts.sqlite'}"
    import uuid

    import sqlalchemy as sa

    base = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return base.rsplit("/", 1)[0] + f"/{name}"


# ---------------------------------------------------------------- markers, applied automatically
# Fixtures that need the 3,000-SKU sample, train a model or start a real server. A test that uses
# one of them (directly or through another fixture: ``item.fixturenames`` is the whole closure) is
# ``slow``. Listed by name, including the ones that only depend on the first three, so that a
# fixture rewritten without them stays slow until someone decides otherwise.
SLOW_FIXTURES = frozenset({
    "sample_dir",        # writes the 3,000-SKU sample
    "small_sample",      # a third of it
    "trained",           # embeds and trains on it
    "server",            # `bentoml serve` on the trained home
    "drift_server",      # tests/serving/test_forecast_log.py: a second service on a drifting log
    "empty_server",      # tests/serving/test_not_ready.py: `bentoml serve` on an empty home
    "candidates_table",  # tests/serving/conftest.py: the sample's candidates
    "scored",            # tests/serving/conftest.py: `trialcast score` with the champion
    "cli",               # tests/serving/conftest.py: subprocesses on the trained home
    "weak",              # tests/training/test_gate.py: trains a second model
    "life",              # tests/training/test_retrain.py: retrains, kills, promotes
    "champion",          # tests/training/test_model_behaviour.py: the trained champion
    "advisory_home",     # tests/serving/test_advisory.py: trains a refused model, then a passing one,
    "advisory_answers",  # and serves each
    "champion_answers",
})


def _markers_for(item: pytest.Item, root: Path) -> list[str]:
    """The markers an item gets from where it lives and which fixtures it uses."""
    try:
        parts = Path(str(item.path)).resolve().relative_to(root).parts
    except ValueError:
        parts = Path(str(item.path)).parts
    names = []
    if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
        names.append("slow")
    if "e2e" in parts:
        names.append("browser")
    if "benchmarks" in parts or "visuelle" in item.nodeid.lower():
        names.append("benchmark")
    return names


# ---------------------------------------------------------------- order: the longest work first
# With `--dist loadfile --no-loadscope-reorder` (Makefile) xdist hands out files in collection order:
# the first file to worker 1, the second to worker 2, so these start at once, on different workers.
# Entries are node-id prefixes: a file goes before the others, a test first within its file. The
# VISUELLE reproduction (8-12 min) first; then a file whose first test trains the sample (`trained`,
# ~5 min, which the other worker's later files wait for); then the other long files. Only the order
# changes: a stale entry (renamed file, test now quick) costs balance, never a result.
LONGEST_FIRST = (
    "tests/benchmarks/test_visuelle_benchmark.py::test_benchmark_command_reproduces_the_committed_report",
    "tests/training/test_gate.py::test_weak_model_is_refused_by_the_gate",
    "tests/benchmarks/test_launch_replay.py",
    "tests/training/test_retrain.py::test_first_training_registers_a_champion",
    "tests/training/test_kill.py",
    "tests/serving/test_offline.py",
)


def _longest_first_key(nodeid: str) -> tuple[int, int]:
    """(rank of the item's file in LONGEST_FIRST, rank of the item itself); unlisted: last, as
    collected (the sort is stable)."""
    unlisted = len(LONGEST_FIRST)
    path = nodeid.split("::", 1)[0]
    files = [i for i, entry in enumerate(LONGEST_FIRST) if entry.split("::", 1)[0] == path]
    tests = [i for i, entry in enumerate(LONGEST_FIRST) if "::" in entry and nodeid.startswith(entry)]
    return (files[0] if files else unlisted, tests[0] if tests else unlisted)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test ``slow`` / ``browser`` / ``benchmark`` by its fixtures and path, so that
    ``-m "not slow and not browser and not benchmark"`` (``make test-fast``) needs no decorator;
    then put the LONGEST_FIRST work first."""
    root = Path(str(config.rootpath)).resolve()
    for item in items:
        for name in _markers_for(item, root):
            item.add_marker(getattr(pytest.mark, name))
    items.sort(key=lambda item: _longest_first_key(item.nodeid))
