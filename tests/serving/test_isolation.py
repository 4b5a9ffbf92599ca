"""One request's failure stays its own (issue 14, item 1), in-process: a batch the model cannot
forecast as a whole is forecast row by row and only the row at fault fails; concurrent single
requests share one model call (``Batcher``) and each gets its own answer."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from serving.predictor import Batcher, Predictor


class Poisoned(Predictor):
    """A predictor whose model raises on any batch holding the SKU ``poison`` (what an unforeseen
    failure inside the feature path looks like to its neighbours)."""

    def __init__(self) -> None:  # no model: only the isolation logic is under test
        self.calls: list[list[str]] = []

    def _forecast(self, rows, images):
        self.calls.append([r["sku_id"] for r in rows])
        if any(r["sku_id"] == "poison" for r in rows):
            raise RuntimeError("the model broke on this row")
        return [{"sku_id": r["sku_id"], "ok": True} for r in rows]


def test_a_row_the_model_cannot_forecast_fails_alone() -> None:
    predictor = Poisoned()
    rows = [{"sku_id": s} for s in ("a", "poison", "b")]
    answers: list = [None] * 5
    done = predictor._forecast_each([0, 2, 4], rows, [b"", b"", b""], answers)
    assert done == [0, 2]  # only those go to the forecast log
    assert answers[0] == {"sku_id": "a", "ok": True} and answers[4] == {"sku_id": "b", "ok": True}
    assert answers[2]["ok"] is False and answers[2]["errors"][0]["field"] == "record"
    assert "RuntimeError" in answers[2]["errors"][0]["reason"]
    assert predictor.calls[0] == ["a", "poison", "b"]  # tried together first, then one by one


def test_a_healthy_batch_is_one_model_call() -> None:
    predictor = Poisoned()
    answers: list = [None] * 2
    assert predictor._forecast_each([0, 1], [{"sku_id": "a"}, {"sku_id": "b"}], [b"", b""], answers) == [0, 1]
    assert predictor.calls == [["a", "b"]]


class Counting:
    """Stands in for ``Predictor.predict``: records each call's records, answers each by name."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def predict(self, records, images, owners=None):
        self.calls.append([r["sku_id"] for r in records])
        self.owners = [*getattr(self, "owners", []), *(owners or [])]
        return [{"sku_id": r["sku_id"], "ok": r["sku_id"] != "bad"} for r in records]


def test_concurrent_single_requests_share_one_model_call() -> None:
    counting = Counting()
    batcher = Batcher(counting, max_items=32, window=0.01)  # type: ignore[arg-type]

    async def clients() -> list[dict]:
        return await asyncio.gather(*(batcher.submit({"sku_id": f"s{i}"}, b"") for i in range(20)),
                                    batcher.submit({"sku_id": "bad"}, b""))

    answers = asyncio.run(clients())
    assert [a["sku_id"] for a in answers] == [f"s{i}" for i in range(20)] + ["bad"]  # each gets its own
    assert [a["ok"] for a in answers] == [True] * 20 + [False]
    assert len(counting.calls) == 1 and len(counting.calls[0]) == 21


def test_the_batch_size_is_bounded() -> None:
    counting = Counting()
    batcher = Batcher(counting, max_items=8, window=0.01)  # type: ignore[arg-type]

    async def clients() -> list[dict]:
        return await asyncio.gather(*(batcher.submit({"sku_id": f"s{i}"}, b"") for i in range(20)))

    asyncio.run(clients())
    assert all(len(call) <= 8 for call in counting.calls) and sum(map(len, counting.calls)) == 20


class Slow(Counting):
    """A model call that takes a while and counts how many run at once."""

    def __init__(self) -> None:
        super().__init__()
        self.now = self.most = 0
        self.lock = threading.Lock()

    def predict(self, records, images, owners=None):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.05)
        with self.lock:
            self.now -= 1
        return super().predict(records, images, owners)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_model_calls_in_flight_are_bounded_and_each_request_keeps_its_owner(concurrency: int) -> None:
    slow = Slow()
    batcher = Batcher(slow, max_items=4, window=0.001, concurrency=concurrency)  # type: ignore[arg-type]

    async def clients() -> list[dict]:
        return await asyncio.gather(*(batcher.submit({"sku_id": f"s{i}"}, b"", f"o{i}") for i in range(24)))

    answers = asyncio.run(clients())
    assert [a["sku_id"] for a in answers] == [f"s{i}" for i in range(24)]
    assert slow.most == concurrency  # as many calls at once as allowed, never more
    assert sorted(slow.owners) == sorted(f"o{i}" for i in range(24))
