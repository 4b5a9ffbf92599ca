"""The trialcast BentoML service: the registry's champion answers GO / REVIEW / NO_GO.

Start with ``trialcast serve`` (or ``bentoml serve serving.service:Trialcast``); both bind
127.0.0.1 unless told otherwise (``--host``), the service's own ``http.host`` below.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Annotated, Any

from features.offline import opt_out

opt_out()  # before bentoml and mlflow load: no library reports home (features/offline.py)

import bentoml
from pydantic import Field
from starlette.responses import JSONResponse

from features.config import get_settings
from features.schema import OptionalDate, OptionalName, OptionalPrice, OptionalText, Title
from serving import web
from serving.champion import load_champion
from serving.contract import Contract
from serving.form import text_form
from serving.limits import (
    OWNER_KEY,
    BodySizeLimit,
    BodyTimeout,
    ErrorShape,
    Exposure,
    FileFieldsOnly,
    JsonOnly,
    QueueBound,
    quiet_refusals,
)
from serving.localise import Localise
from serving.memory import cap_malloc_arenas
from serving.predictor import Batcher


def _invalid(errors: list[dict[str, str]]) -> JSONResponse:
    """422 in the same shape as BentoML's own 400 validation errors: one format for clients."""
    return JSONResponse(
        {"error": "; ".join(f"{e['field']}: {e['reason']}" for e in errors),
         "detail": [{"loc": [e["field"]], "msg": e["reason"], "type": "invalid_input"} for e in errors]},
        status_code=422,
    )


def _status(ctx: Any, response: JSONResponse) -> JSONResponse:
    """BentoML gives an API that takes ``ctx`` the status of ``ctx.response`` (200 unless set), even
    when it returns a response of its own: carry the response's status over."""
    if ctx is not None:
        ctx.response.status_code = response.status_code
    return response


def _warm_up(predictor: Any) -> str | None:
    """One throw-away forecast before the service reports ready. The encoders' first call is several
    times slower than the next ones (lazy kernels and buffers), and no client should pay for that; and
    a champion that cannot forecast at all (a model in another format is refused before this, when it
    is loaded) must make the service not ready with the reason, not answer 500 to every request.
    Returns that reason."""
    import io
    import logging

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (224, 224), (255, 255, 255)).save(buffer, format="PNG")
    try:
        answer = predictor.predict([{"sku_id": "warm-up", "title": "warm-up", "cost_price": 1.0}],
                                   [buffer.getvalue()], to_log=False)[0]
    except Exception as error:
        logging.getLogger("trialcast.serving").exception("the champion failed its warm-up forecast")
        return (f"the champion (version {predictor.version}) cannot forecast with the installed code "
                f"({type(error).__name__}: {error}); retrain it with `trialcast train CATALOGUE`")
    if not answer["ok"]:
        return f"the champion (version {predictor.version}) refused the warm-up SKU: {answer['errors']}"
    return None


def _attributes(given: Any, names: tuple[str, ...]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The ``attributes`` form field (a JSON object: attribute column -> value) as record fields, or
    the problem with it. A name the model does not know is refused (a typo would be silently absent)."""
    if given is None or given == "":
        return {}, []
    if isinstance(given, str):  # the form's text as typed (serving/form.py)
        try:
            given = json.loads(given)
        except ValueError:
            given = None
    if not isinstance(given, dict):
        return {}, [{"field": "attributes", "reason": 'must be a JSON object, e.g. {"colour": "red"}'}]
    unknown = [str(k) for k in given if k not in names]
    if unknown:
        known = ", ".join(names) or "none"
        return {}, [{"field": "attributes", "reason": f"unknown attribute {', '.join(unknown[:5])}; known: {known}"}]
    return dict(given), []


@bentoml.service(workers=1, threads=2, traffic={"timeout": 120}, http={"host": "127.0.0.1"})
@bentoml.asgi_app(web.app, path="/")
class Trialcast:
    """Forecast a new SKU's first-7-day sales from its picture, copy and cost price."""

    def __init__(self) -> None:
        self.settings = get_settings()
        cap_malloc_arenas(self.settings.serve_malloc_arenas)  # before the threads that allocate start
        self.predictor, message = load_champion(self.settings)
        if self.predictor is not None and (problem := _warm_up(self.predictor)) is not None:
            self.predictor, message = None, problem
        web.state.predictor, web.state.message, web.state.settings = self.predictor, message, self.settings
        web.start_jobs()  # batch jobs left unfinished by a restart or a kill resume now
        self.batcher = Batcher.from_settings(self.predictor, self.settings) if self.predictor is not None else None

    def __is_ready__(self) -> bool:
        return self.predictor is not None

    @bentoml.api(route="/predict")
    async def predict(
        self,
        title: Annotated[Title, Field(description="Product title, Chinese and/or English.")],
        # ``Path`` with a None default, not ``Path | None``: BentoML recognises a file field only in a
        # plain annotation (it leaves a ``|`` union unpatched, and fails on an Optional file).
        image: Annotated[Path, Field(  # noqa: RUF013 (see above)
            description="Product picture (JPEG, PNG, WebP); may be left out only when the model's history had "
                        "SKUs without one (see /model).")] = None,  # type: ignore[assignment]
        cost_price: Annotated[OptionalPrice, Field(description="Unit cost price, > 0, written with the digits "
                                                               "0-9 and at most one decimal point (e.g. 45.50); may be "
                                                               "left out only when the model's history had SKUs without "
                                                               "one (then REVIEW: no break-even).")] = None,
        description: Annotated[OptionalText, Field(description="Product description.")] = None,
        category: Annotated[OptionalName, Field(description="One of the model's categories (see /model); "
                                                        "absent: the category of its most similar past SKUs.")] = None,
        list_price: Annotated[OptionalPrice, Field(description="Planned list price, > cost price; absent: cost "
                                                               "x the category's usual markup.")] = None,
        launch_date: Annotated[OptionalDate, Field(description="Planned launch date YYYY-MM-DD; absent: today.")] = None,
        channel: Annotated[OptionalName, Field(description="Sales channel.")] = None,
        attributes: Annotated[Any, Field(description='The model\'s attribute columns (see "attributes" in '
                                                 '/model) as a JSON object, e.g. {"colour": "red", "fabric": '
                                                 '"silk"}; an absent or unknown value is absent.')] = None,
        exclude_analogs: Annotated[OptionalText, Field(description="Past sku_ids never to use as analogs, "
                                                                   "comma-separated.")] = None,
        pin_analogs: Annotated[OptionalText, Field(description="Past sku_ids to use as analogs whatever their "
                                                               "rank, comma-separated.")] = None,
        ctx: bentoml.Context = None,  # type: ignore[assignment]  # who asked (serving.limits.Exposure)
    ) -> dict:
        """One SKU (the fields of ``features.schema.Sku``, and the model's attribute columns, e.g. colour
        or fabric, in ``attributes``): P10/P50/P90 of 7-day
        units, the daily curve, GO / REVIEW / NO_GO with reasons, the 5 most similar past SKUs, the model
        version and gate metric."""
        if self.predictor is None:
            return _status(ctx, web.not_ready())
        try:
            picture = image.read_bytes() if image is not None else None
        except OSError:
            return _status(ctx, _invalid([{"field": "image", "reason": "the upload could not be read"}]))
        record = {"title": title, "description": description, "cost_price": cost_price, "category": category,
                  "list_price": list_price, "launch_date": launch_date, "channel": channel, "sku_id": "upload",
                  "exclude_analogs": exclude_analogs, "pin_analogs": pin_analogs}
        values, problems = _attributes(attributes, self.predictor.attributes)
        if problems:
            return _status(ctx, _invalid(problems))
        record.update(values)
        owner = ctx.request.scope.get(OWNER_KEY) if ctx is not None else None
        answer = await self.batcher.submit(record, picture, owner)  # shares a model call with concurrent requests
        return answer if answer["ok"] else _status(ctx, _invalid(answer["errors"]))

    @bentoml.api(route="/predict_batch", batchable=True, max_batch_size=64, max_latency_ms=120_000)
    def predict_batch(self, items: list[dict[str, Any]]) -> list[dict]:
        """Many SKUs as JSON: ``{"items": [{"sku_id", "title", "description", "cost_price", "list_price",
        "category", "launch_date", "channel", "image_base64"}, ...]}``. One answer per item, in order:
        ``ok: true`` with the forecast and decision, or ``ok: false`` with the field errors."""
        if self.predictor is None:
            return [{"sku_id": item.get("sku_id") if isinstance(item, dict) else None, "ok": False,
                     "errors": [{"field": "model", "reason": web.state.message}]} for item in items]
        pictures: list[bytes | None] = []
        broken: dict[int, str] = {}
        for i, item in enumerate(items):
            encoded = item.get("image_base64") if isinstance(item, dict) else None
            try:
                pictures.append(base64.b64decode(encoded, validate=True) if encoded else None)
            except (binascii.Error, TypeError, ValueError):
                broken[i] = "image_base64 is not valid base64"
                pictures.append(None)
        records = [item if isinstance(item, dict) else {} for item in items]
        keep = [i for i in range(len(items)) if i not in broken]
        answers = self.predictor.predict([records[i] for i in keep], [pictures[i] for i in keep])
        out: list[dict] = [{} for _ in items]
        for i, answer in zip(keep, answers):
            out[i] = answer
        for answer in out:
            for problem in answer.get("errors", []):
                if problem["field"] == "image":  # a batch item carries its picture in image_base64
                    problem["field"] = "image_base64"
        for i, reason in broken.items():
            out[i] = {"sku_id": records[i].get("sku_id"), "ok": False, "errors": [{"field": "image_base64", "reason": reason}]}
        return out

    @bentoml.api(route="/plan")
    def plan(self, items: list[dict[str, Any]] | None = None, forecast_ids: list[str] | None = None,
             budget_launches: Any = None, budget_capital: Any = None,
             ctx: bentoml.Context = None) -> dict:  # type: ignore[assignment]
        """A season plan (``serving.planning``): candidates as ``items`` (the ``/predict_batch`` items)
        or as ``forecast_ids`` already answered, and a budget (``budget_launches``, ``budget_capital``
        or both): which to launch and how many of each to make first, with why, what each risks, and
        the totals against launching all and against picking by the analogs (kNN)."""
        if self.predictor is None:
            return _status(ctx, web.not_ready())
        from serving.planning import plan_request

        plan, problems = plan_request(self.predictor, items, forecast_ids, budget_launches, budget_capital)
        return plan if plan is not None else _status(ctx, _invalid(problems))


# A JSON batch is read into memory whole: cap it too (64 items of 1 MB pictures fit, base64 and all).
MAX_BATCH_BODY = 128 * 1024 * 1024
# The form's text values reach the schema as typed (BentoML would decode each as JSON first).
Trialcast.apis["predict"].input_spec = text_form(Trialcast.apis["predict"].input_spec,
                                                 get_settings().max_form_field_bytes)

# Outermost (Starlette runs the first-added user middleware first): who may call, and the headers.
Trialcast.add_asgi_middleware(Exposure, token=get_settings().api_token, allowed_hosts=get_settings().allowed_hosts)
Trialcast.add_asgi_middleware(ErrorShape)
Trialcast.add_asgi_middleware(Contract)  # /docs.json: valid OpenAPI 3.0, every status and the error shape
Trialcast.add_asgi_middleware(QueueBound, bound=get_settings().max_queue, paths=("/predict", "/predict_batch"))
# A body that stops arriving is answered 408 in seconds, not held until the client gives up.
Trialcast.add_asgi_middleware(BodyTimeout, paths=("/predict", "/predict_batch"), field="body",  # contract.TIMED
                              idle_s=get_settings().body_idle_timeout_s, total_s=get_settings().body_timeout_s)
Trialcast.add_asgi_middleware(BodyTimeout, paths=("/batch",), field="body", idle_s=get_settings().body_idle_timeout_s)
quiet_refusals()
Trialcast.add_asgi_middleware(BodySizeLimit, max_bytes=get_settings().max_image_bytes + 512 * 1024,
                              paths=("/predict",))
Trialcast.add_asgi_middleware(BodySizeLimit, max_bytes=MAX_BATCH_BODY, paths=("/predict_batch", "/plan"), field="items")
# BentoML downloads a text value given for a file parameter (SSRF): only real uploads may reach /predict.
Trialcast.add_asgi_middleware(FileFieldsOnly, paths=("/predict",), file_fields=("image",),
                              known=tuple(Trialcast.apis["predict"].input_spec.model_fields),
                              max_text_bytes=get_settings().max_form_field_bytes)
Trialcast.add_asgi_middleware(JsonOnly, paths=("/predict_batch", "/plan"), field="items")
# The page's batch upload: the whole request (table + pictures) is bounded before it is parsed.
Trialcast.add_asgi_middleware(BodySizeLimit, max_bytes=get_settings().batch_max_upload_bytes, paths=("/batch",),
                              field="candidates")
# Every JSON answer in the language asked (Accept-Language or lang=), with codes and display fields: the
# outermost middleware (Starlette runs the first one outermost), so the guards' refusals are rendered too.
Trialcast.middlewares.insert(0, (Localise, {"currency": get_settings().currency}))
