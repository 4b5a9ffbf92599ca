"""From raw SKU records (web form, JSON batch, candidates file) to answers, one row in, one row out.

Every record is checked with the one SKU schema (``features.schema``); a bad record gets its
field errors and never stops the others. Good records go through the model's feature path
(the same one training used) and the decision rule.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from features.analogs import Override
from features.assemble import OVERRIDE
from features.catalogue import attribute_value
from features.config import Settings
from features.decision import DecisionRule, Evidence, above_gate, decide, gate_failures
from features.images import CheckedPicture, ImageError, decode_image
from features.ledger.live import guard
from features.model import Model
from features.quantity import first_batch, sentence
from features.schema import FieldError, Sku, validate
from serving.forecast_log import ForecastLog

_log = logging.getLogger("trialcast.serving")


@dataclass
class FieldProblem:
    field: str
    reason: str


class InvalidSku(ValueError):
    def __init__(self, problems: list[FieldProblem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))


def decision_rule(settings: Settings) -> DecisionRule:
    return DecisionRule(settings.launch_cost, settings.default_markup, settings.max_relative_spread,
                        settings.ood_similarity)


def check_record(record: dict[str, Any], image: bytes | None, settings: Settings, categories: list[str],
                 *, image_required: bool = True, history: frozenset[str] | None = None,
                 keep_pixels: int = 0, cost_required: bool = True,
                 attributes: tuple[str, ...] = ()) -> tuple[dict[str, Any], CheckedPicture | None]:
    """A clean, typed record (the one SKU schema, ``features.schema.Sku``, plus the model's
    ``attributes`` as short text) and its checked picture, or ``InvalidSku`` listing every field
    problem at once. Absent optional fields stay absent here: their meaning is given inside the
    model's feature path, the same way training gave it. The picture keeps its decoded image for
    the encoder when it has at most ``keep_pixels`` pixels."""
    context = {"max_text_chars": settings.max_text_chars, "categories": categories, "history": history,
               "require_cost_price": cost_required}
    sku, found = validate(Sku, record, context)
    problems = [FieldProblem(name, reason) for name, reason in found]
    values = {}
    for column in attributes:
        try:
            values[column] = attribute_value(column, record.get(column))
        except FieldError as error:
            problems.append(FieldProblem(column, error.reason))
    checked = None
    if image is None and image_required:
        problems.append(FieldProblem("image", "is missing: upload the product picture"))
    elif image is not None:
        try:
            decoded = decode_image(image, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels,
                                   max_side=settings.max_image_side, max_aspect=settings.max_image_aspect)
            checked = CheckedPicture(image, decoded if decoded.width * decoded.height <= keep_pixels else None)
        except ImageError as error:
            problems.append(FieldProblem("image", str(error)))
    if problems or sku is None:
        raise InvalidSku(problems)
    clean = {**sku.model_dump(), **values}
    clean["sku_id"] = clean["sku_id"] or "new-sku"
    clean["list_price"] = math.nan if clean["list_price"] is None else clean["list_price"]
    clean["launch_date"] = pd.NaT if clean["launch_date"] is None else pd.Timestamp(clean["launch_date"])
    excluded, pinned = clean.pop("exclude_analogs"), clean.pop("pin_analogs")
    clean[OVERRIDE] = Override(excluded, pinned) if excluded or pinned else None
    return clean, checked


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or infinite number as None, as JSON can carry it (a history without
    prices has no GO precision: NaN)."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


class Predictor:
    """A loaded model plus the decision rule; answers lists of records. A SKU may lack a cost
    price or a picture only when the model's history lacked them too (``absent_share``)."""

    def __init__(self, bundle: Model, settings: Settings, version: str | None = None):
        self.bundle = bundle  # the champion (a ``features.model.Model``)
        self.settings = settings
        self.version = version
        self.rule = decision_rule(settings)
        # The encoder runs at most serve_encode_batch pictures at once (the same vectors at any batch size).
        self.encode_settings = settings.model_copy(update={"batch_size": settings.serve_encode_batch})
        self.history = frozenset(bundle.pipeline.history["sku_id"].astype(str))
        self.log = ForecastLog(settings, version)  # the forecast log and this version's live error
        # What a SKU may lack: what the model's history lacked too (it learnt what absence means).
        absent = bundle.pipeline.absent_share
        self.cost_required = not absent.get("cost_price", 0.0) > 0
        self.image_required = not absent.get("image", 0.0) > 0
        self.attributes = tuple(bundle.pipeline.attributes)
        self.gate = bundle.meta.get("gate") or {}
        # Refused by its gate (served as advisory, or promoted past it by hand): every answer is REVIEW.
        self.advisory = self.gate.get("passed") is False

    @property
    def categories(self) -> list[str]:
        return self.bundle.categories

    def model_facts(self) -> dict[str, Any]:
        gate = self.bundle.meta.get("gate", {})
        holdout = self.bundle.meta.get("holdout", {})
        facts = {
            "version": self.version,
            "trained_on": self.bundle.meta.get("trained_on"),
            "train_end": self.bundle.meta.get("train_end"),
            "gate_metric": gate.get("metric"),
            "gate_value": gate.get("value"),
            "gate_threshold": gate.get("threshold"),
            "gate_bias": gate.get("bias"),
            "gate_passed": gate.get("passed"),
            "gate_level": gate.get("level", "sku"),
            "gate_stage": gate.get("stage", "pre_launch"),
            "gate_reasons": list(gate.get("reasons") or []),
            "advisory": self.advisory,
            "gate_failures": gate_failures(gate) if self.advisory else [],
            "image_encoder": self.bundle.image_encoder,
            "text_encoder": self.bundle.text_encoder,
            "categories": self.categories,
            "decisions": {k: holdout.get(k) for k in ("go_precision", "go_recall", "review_rate", "base_rate")},
            "novelty_floors": self.bundle.meta.get("novelty"),
            "absence": self.bundle.meta.get("absence"),
            "attributes": {column: len(values) for column, values in self.bundle.pipeline.attributes.items()},
            "optional": {"cost_price": not self.cost_required, "image": not self.image_required},
        }
        return finite_or_none(facts)

    def _costly(self, assumed: list[str]) -> dict[str, float]:
        """Absent inputs whose absence broke the gate on the training holdout (README: what absence costs)."""
        absence, gate = self.bundle.meta.get("absence") or {}, self.bundle.meta.get("gate") or {}
        threshold = gate.get("threshold")
        metric = gate.get("metric", "wape")
        return {name: absence[name][metric] for name in assumed
                if threshold is not None and metric in absence.get(name, {}) and absence[name][metric] >= threshold}

    def _answer(self, row: dict[str, Any], forecast: dict[str, Any]) -> dict[str, Any]:
        """One SKU's answer: the band, the decision on the very inputs the model used, and why."""
        used, novelty = forecast["inputs"], forecast["novelty"]
        evidence = Evidence(**{k: novelty[k] for k in ("joint", "picture", "copy", "picture_floor", "copy_floor",
                                                      "category", "picture_category", "category_agrees")})
        decision = decide(forecast["p10"], forecast["p50"], forecast["p90"], novelty["joint"], row["cost_price"],
                          used["list_price"], self.rule, evidence=evidence, assumed=tuple(used["assumed"]),
                          list_price_assumed="list_price" in used["assumed"], overridden=bool(forecast["override"]),
                          costly=self._costly(used["assumed"]))
        decision = guard(decision, self.log.live())
        if self.advisory:
            decision = above_gate(decision, self.gate, forecast["p50"], forecast["p90"])
        quantity = first_batch(decision.label, decision.reasons, forecast["p10"], forecast["p50"], forecast["p90"],
                               decision.economics, self.settings.salvage_share)
        quantity["sentence"] = sentence(quantity, decision.economics, "en")
        facts = self.model_facts()
        return {
            "sku_id": row["sku_id"],
            "ok": True,
            "forecast": {"p10": round(forecast["p10"], 1), "p50": round(forecast["p50"], 1),
                         "p90": round(forecast["p90"], 1), "unit": "units in the first 7 days",
                         "curve": forecast["curve"]},
            "decision": decision.as_dict(),
            "quantity": quantity,
            "assumed": {name: used[name] for name in used["assumed"]},
            "launch_date": used["launch_date"],  # the date forecast for, given or assumed (far-date warning)
            "novelty": novelty,
            "why": forecast["why"],
            "override": forecast["override"],
            "analogs": forecast["analogs"],
            "model": {"version": self.version, "gate_metric": facts["gate_metric"], "gate_value": facts["gate_value"],
                      "gate_level": facts["gate_level"], "gate_stage": facts["gate_stage"], "advisory": self.advisory},
        }

    def predict(self, records: list[dict[str, Any]], images: list[bytes | None], *,
                image_required: bool = True, to_log: bool = True,
                owners: list[str | None] | None = None, ids: list[str] | None = None) -> list[dict[str, Any]]:
        """One answer per record, in order: a forecast and decision, or the record's field errors.
        Each ok answer is written to the forecast log (unless ``to_log`` is False) and carries its
        ``forecast_id`` (random, or the record's in ``ids``: a batch row keeps its id when its chunk
        is scored again); ``owners`` (who asked, per record) decides whose history lists it."""
        answers: list[dict[str, Any] | None] = [None] * len(records)
        good, clean_rows, good_images = [], [], []
        budget = self.settings.serve_decoded_pixels  # decoded pixels this call keeps for the encoder
        for i, (record, image) in enumerate(zip(records, images)):
            try:
                clean, picture = check_record(record, image, self.settings, self.categories, keep_pixels=budget,
                                              image_required=image_required and self.image_required,
                                              history=self.history, cost_required=self.cost_required,
                                              attributes=self.attributes)
                clean_rows.append(clean)
                good.append(i)
                good_images.append(picture)
                if picture is not None and picture.image is not None:
                    budget -= picture.image.width * picture.image.height
            except InvalidSku as error:
                answers[i] = {"sku_id": record.get("sku_id"), "ok": False,
                              "errors": [{"field": p.field, "reason": p.reason} for p in error.problems]}
        if good:
            done = self._forecast_each(good, clean_rows, good_images, answers)
            if to_log and done:
                asked = owners or [None] * len(records)
                self.log.record([clean_rows[k] for k in done], [good_images[k] for k in done],
                                [answers[good[k]] for k in done],  # type: ignore[misc]
                                [asked[good[k]] for k in done],
                                None if ids is None else [ids[good[k]] for k in done])
        return answers  # type: ignore[return-value]

    def _forecast(self, rows: list[dict[str, Any]], images: list[bytes | None]) -> list[dict[str, Any]]:
        frame = pd.DataFrame(rows)
        frame["image"] = None
        frame["image_path"] = None
        forecasts = self.bundle.forecast(frame, self.encode_settings, images=images, show=self.settings.analog_show)
        return [self._answer(row, forecast) for row, forecast in zip(rows, forecasts)]

    def _forecast_each(self, good: list[int], rows: list[dict[str, Any]], images: list[bytes | None],
                       answers: list[dict[str, Any] | None]) -> list[int]:
        """Forecast the checked rows together; if that fails, row by row, so that a row the model
        cannot forecast is that row's ``ok: false`` and never its neighbours' (adaptive batching
        merges different clients' items). Returns the positions (in ``rows``) that were answered."""
        try:
            for i, answer in zip(good, self._forecast(rows, images)):
                answers[i] = answer
            return list(range(len(rows)))
        except Exception as error:  # noqa: BLE001 - isolate the row at fault below
            _log.info("a batch of %d failed together (%s); forecasting row by row", len(rows), type(error).__name__)
        done = []
        for k, (i, row, image) in enumerate(zip(good, rows, images)):
            try:
                answers[i] = self._forecast([row], [image])[0]
                done.append(k)
            except Exception as error:  # noqa: BLE001 - this row only
                _log.warning("sku %r could not be forecast: %s: %s", row.get("sku_id"), type(error).__name__, error)
                answers[i] = {"sku_id": row.get("sku_id"), "ok": False, "errors": [
                    {"field": "record", "reason": f"could not be forecast ({type(error).__name__})"}]}
        return done


class Batcher:
    """Concurrent single-SKU requests share model calls: with one worker a request otherwise waits
    for every request ahead of it, one at a time.

    ``submit`` queues one record; a gathering task takes whatever is queued (after ``window``
    seconds, so that arrivals of the same moment join; at most ``max_items``) and answers them in
    one ``Predictor.predict`` call on a thread. Up to ``concurrency`` calls run at once: the picture
    encoder (ONNX Runtime) and numpy release the GIL, so on 2 cores one call encodes while another
    runs the feature path and the forecast log; the next batch gathers meanwhile. A record that
    fails is that record's ``ok: false`` (``Predictor.predict`` isolates it), never its
    batch-mates'. Sizes set by measurement (``benchmarks/load.py``, settings ``serve_batch_*``)."""

    def __init__(self, predictor: Predictor, max_items: int = 16, window: float = 0.005, concurrency: int = 2):
        self.predictor, self.max_items, self.window = predictor, max_items, window
        self.concurrency = max(1, concurrency)
        self._queue: Any = None
        self._task: Any = None

    @classmethod
    def from_settings(cls, predictor: Predictor, settings: Settings) -> Batcher:
        return cls(predictor, settings.serve_batch_items, settings.serve_batch_wait_ms / 1000,
                   settings.serve_batch_concurrency)

    async def submit(self, record: dict[str, Any], image: bytes | None, owner: str | None = None) -> dict[str, Any]:
        import asyncio

        loop = asyncio.get_running_loop()
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._run())
        future = loop.create_future()
        await self._queue.put((record, image, owner, future))
        return await future

    async def _run(self) -> None:
        import asyncio

        slots = asyncio.Semaphore(self.concurrency)
        running: set[Any] = set()
        while True:
            items = [await self._queue.get()]
            await slots.acquire()  # gather while every slot is busy: the next call takes what queued
            await asyncio.sleep(self.window)
            while len(items) < self.max_items and not self._queue.empty():
                items.append(self._queue.get_nowait())
            task = asyncio.get_running_loop().create_task(self._answer(items, slots))
            running.add(task)
            task.add_done_callback(running.discard)

    async def _answer(self, items: list[tuple], slots: Any) -> None:
        import asyncio

        try:
            answers = await asyncio.to_thread(self.predictor.predict, [i[0] for i in items], [i[1] for i in items],
                                              owners=[i[2] for i in items])
        except Exception as error:  # noqa: BLE001 - e.g. the forecast log's database: fail these, keep serving
            _log.exception("a batch of %d single requests failed", len(items))
            for *_, future in items:
                if not future.done():
                    future.set_exception(error)
            return
        finally:
            slots.release()
        for (*_, future), answer in zip(items, answers):
            if not future.done():
                future.set_result(answer)
