"""Training's independent fits side by side (training/fits.py): other processes, the same bits."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from features.config import Settings
from training.fits import run_side_by_side, workers_for


def where(label: str, settings: Settings) -> tuple[str, int, int]:
    """A task that says which process ran it, under which thread budget."""
    return label, os.getpid(), settings.threads


def fails(label: str, settings: Settings) -> None:
    raise ValueError(f"task {label} failed")


def test_tasks_run_in_other_processes_in_task_order(tmp_path) -> None:
    settings = Settings(home=tmp_path, threads=2, train_workers=2)
    answers = run_side_by_side([(where, (str(i),)) for i in range(5)], settings)
    assert [label for label, _, _ in answers] == ["0", "1", "2", "3", "4"]
    pids = {pid for _, pid, _ in answers}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert {threads for _, _, threads in answers} == {1}  # the budget shared, not doubled
    for pid in pids:  # no worker outlives its stage (nor holds the caller's stdout)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    alone = run_side_by_side([(where, ("a",))], settings)  # one task: no process started for it
    assert alone == [("a", os.getpid(), 2)]
    assert run_side_by_side([(where, ("b",))] * 3, settings.model_copy(update={"train_workers": 1}))[0][1] == os.getpid()


def test_a_failing_task_raises_its_own_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="task x failed"):
        run_side_by_side([(where, ("ok",)), (fails, ("x",))], Settings(home=tmp_path, train_workers=2))


def test_workers_are_capped_by_tasks_and_cores(tmp_path) -> None:
    settings = Settings(home=tmp_path, train_workers=8)
    assert workers_for(settings, 1) == 1
    assert workers_for(settings, 100) == min(8, os.cpu_count() or 1)
    assert workers_for(settings.model_copy(update={"train_workers": 1}), 100) == 1


def _vectors(cache: Path) -> dict[tuple[str, str], bytes]:
    with sqlite3.connect(cache) as db:
        return {(e, k): v for e, k, v in db.execute("SELECT encoder, key, vector FROM embeddings")}


@pytest.fixture(scope="module")
def small_history(tmp_path_factory):
    """400 SKUs of the synthetic sample embedded into a cache of their own (no title-only copies yet)."""
    from features.sample import write_sample_catalogue
    from training.data import load_dataset

    folder = tmp_path_factory.mktemp("fits")
    path = write_sample_catalogue(folder, n=400, candidates=0)
    settings = Settings(home=folder / "home", cache_file=folder / "base.sqlite", threads=2)
    return load_dataset(path, settings, progress=False), settings, folder


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_run_with_two_workers_gives_the_bits_of_one(small_history, engine) -> None:
    """From the same cache, without the title-only copies training embeds: the same metrics, the
    same model and the same vectors written to the cache, whichever process asked for them (two
    loky processes, or Ray tasks reading the copies the driver embedded from entries it sent)."""
    from training.train import train

    data, settings, folder = small_history
    results, caches = {}, {}
    for workers in (1, 2):
        caches[workers] = folder / f"cache-{engine}-{workers}.sqlite"
        with sqlite3.connect(folder / "base.sqlite") as base, sqlite3.connect(caches[workers]) as copy:
            base.backup(copy)
        run = settings.model_copy(update={"train_workers": workers, "cache_file": caches[workers],
                                          "train_engine": engine if workers == 2 else "local"})
        results[workers] = train(data, run, progress=False)
    one, two = results[1], results[2]
    assert len(_vectors(caches[1])) > len(_vectors(folder / "base.sqlite"))  # training embedded copies
    assert _vectors(caches[1]) == _vectors(caches[2])
    assert len(one.backtest) == 3 and one.backtest == two.backtest  # every fold, to the last bit
    assert one.holdout_metrics == two.holdout_metrics and one.loss_comparison == two.loss_comparison
    assert one.absence == two.absence and one.params == two.params
    served = [fitted.predict(data.frame, data.embeddings) for fitted in (one.final, two.final)]
    pd.testing.assert_frame_equal(served[0], served[1], check_exact=True)  # the model that serves, too


def test_fits_on_ray_are_ray_tasks_reading_the_entries_sent(tmp_path) -> None:
    """With the Ray engine each task runs in a Ray worker (a local Ray of 2 CPUs, started and
    stopped here), in task order, and reads the copies the driver sent from a cache of its own,
    never the driver's cache (a cluster has no access to it)."""
    import numpy as np

    def reads(label: str, settings: Settings) -> tuple[str, int, str, dict]:
        from features.cache import EmbeddingCache

        cache = EmbeddingCache(settings.cache_path)
        try:
            found = cache.get_many("enc", ["k1", "k2"], 3)
        finally:
            cache.close()
        return label, os.getpid(), str(settings.cache_path), {k: v.tolist() for k, v in found.items()}

    driver = tmp_path / "driver.sqlite"
    settings = Settings(home=tmp_path, threads=2, train_engine="ray", ray_workers=2, cache_file=driver)
    entries = ("enc", {"k1": np.array([1.0, 2.0, 3.0], dtype=np.float32)})
    answers = run_side_by_side([(reads, (str(i),)) for i in range(3)], settings, entries)
    assert [label for label, *_ in answers] == ["0", "1", "2"]
    assert os.getpid() not in {pid for _, pid, _, _ in answers}
    assert all(path != str(driver) for _, _, path, _ in answers) and not driver.exists()
    assert all(found == {"k1": [1.0, 2.0, 3.0]} for *_, found in answers)
    with pytest.raises(ValueError, match="task x failed"):  # a failing task raises its own error here
        run_side_by_side([(fails, ("x",))], settings)
    import ray

    assert not ray.is_initialized()  # the local Ray this started is stopped


def test_a_fit_whose_ray_worker_is_killed_is_run_again(tmp_path) -> None:
    """A Ray worker killed mid-task (SIGKILL) loses no fit: Ray runs the task again on another
    worker, and every answer comes back once, in task order (a task writes nothing the driver reads)."""
    import signal
    import threading
    import time

    def slow_the_first_time(label: str, folder: str, settings: Settings) -> tuple[str, int]:
        first = Path(folder) / f"attempt-{label}"
        if label == "1" and not first.exists():
            first.write_text(str(os.getpid()))
            time.sleep(120)  # killed here
        return label, os.getpid()

    killed: list[int] = []

    def kill_when_started() -> None:
        marker, deadline = tmp_path / "attempt-1", time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if marker.exists() and marker.read_text():
                pid = int(marker.read_text())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_started, daemon=True)
    killer.start()
    settings = Settings(home=tmp_path, threads=2, train_engine="ray", ray_workers=2)
    answers = run_side_by_side([(slow_the_first_time, (str(i), str(tmp_path))) for i in range(3)], settings)
    killer.join(timeout=5)
    assert killed, "the task's worker was never seen"
    assert [label for label, _ in answers] == ["0", "1", "2"]
    assert answers[1][1] != killed[0]  # answered by the retry, in another worker
