"""The served OpenAPI document, made true to its version and to the service's answers.

BentoML and FastAPI emit JSON Schema 2020-12 inside an ``openapi: 3.0.2`` document (``anyOf`` with
``type: null``, ``contentMediaType``, ``type: file``, numeric ``exclusiveMinimum``), which
spec-driven tools refuse, and they document neither the service's one error shape nor most of
its statuses. ``openapi_30`` rewrites the schemas to OpenAPI 3.0 (the same meaning), and
``document_errors`` adds the ``Error`` schema and every status each operation can answer.
``Contract`` serves the result at ``/docs.json`` (the document Swagger at ``/docs`` reads).
"""

from __future__ import annotations

import copy
import json
import typing as t

ERROR = {
    "type": "object", "required": ["error", "detail"],
    "description": "The one error shape: `error` is 'field: reason; ...', `detail` one entry per field.",
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "array", "items": {
            "type": "object", "required": ["loc", "msg", "type"],
            "properties": {"loc": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                           "msg": {"type": "string"}, "type": {"type": "string"}}}},
    },
}
STATUSES = {
    "400": "Bad input: malformed body or form, a part without a name, a missing field, or a Host header "
           "that is not one of the configured names",
    "401": "An API token is configured and the request carries none, or a wrong one",
    "403": "A cross-site state-changing request (Sec-Fetch-Site / Origin)",
    "404": "No such resource",
    "408": "The request body stopped arriving, or did not arrive in full in time",
    "413": "The upload is over a size limit, or the form has too many parts",
    "415": "Wrong content type (e.g. /predict takes multipart/form-data only)",
    "409": "The job is not finished: its results are not there yet",
    "422": "The request is well-formed but a field is unusable (the field and the reason are named)",
    "500": "An unexpected error (the server log has the details)",
    "503": "Not ready (no model registered yet), or over the stated queue bound (then with Retry-After)",
}
READ = ("400", "401", "404", "500", "503")
# A batch job as its creator sees it (serving.web.job_view): never a server path.
JOB = {
    "type": "object", "required": ["id", "status", "done", "total"],
    "description": "A batch job of the page, as its creator sees it (anyone else gets 404).",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "128 random bits"},
        "status": {"type": "string", "enum": ["queued", "running", "done", "failed", "cancelled"]},
        "status_text": {"type": "string"}, "done": {"type": "integer", "minimum": 0},
        "total": {"type": "integer", "minimum": 0}, "filename": {"type": "string", "nullable": True},
        "created_at": {"type": "string"}, "updated_at": {"type": "string"},
        "queue_position": {"type": "integer", "minimum": 0},
        "summary": {"type": "object", "description": "rows, pictures, how the table was read; counts by "
                    "decision when done"},
        "read_as": {"type": "string"},
        "error": {"type": "object", "description": "why the job failed: code, params, message"},
    },
}
ROWS = {"type": "object", "required": ["id", "rows"], "properties": {
    "id": {"type": "string"}, "lang": {"type": "string"},
    "rows": {"type": "array", "items": {"type": "object"}, "description": "one per input row, in order"}}}
METRICS = {"description": "Prometheus metrics of the service (requests, latencies, in flight)", "content": {"text/plain": {"schema": {"type": "string"}}}}
WRITE = (*READ, "403", "413", "415", "422")
# The routes whose request body must keep arriving (serving.limits.BodyTimeout, set up in serving/service.py).
TIMED = ("/predict", "/predict_batch", "/batch")


def openapi_30(node: t.Any) -> t.Any:
    """A copy of ``node`` with JSON Schema 2020-12 constructs written the OpenAPI 3.0 way."""
    if isinstance(node, list):
        return [openapi_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_30(v) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            options = [o for o in out[key] if o != {"type": "null"}]
            if len(options) < len(out[key]):
                out["nullable"] = True
            if len(options) == 1:
                del out[key]
                out = {**options[0], **out}
            else:
                out[key] = options
    if isinstance(out.get("type"), list):
        kinds = [k for k in out["type"] if k != "null"]
        out["nullable"] = out.get("nullable") or len(kinds) < len(out["type"])
        out["type"] = kinds[0] if kinds else "string"
    if out.get("type") == "file" or "contentMediaType" in out:
        out.pop("contentMediaType", None)
        out.update(type="string", format="binary")
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), (int, float)) and not isinstance(out[bound], bool):
            out[plain], out[bound] = out[bound], True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("examples"), list) and "type" in out:
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    if "default" in out and out["default"] is None:
        out["nullable"] = True
    return out


def document_errors(doc: dict) -> dict:
    """Every operation documents each status it can answer, all with the one ``Error`` body."""
    doc.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = WRITE if method in ("post", "put", "patch", "delete") else READ
            if method == "post" and path in TIMED:
                statuses = (*statuses, "408")
            if path in ("/healthz", "/livez", "/readyz"):
                statuses = ("400", "503") if path == "/readyz" else ("400",)
            schema = (operation.get("requestBody") or {}).get("content", {})
            if any(media.get("schema", {}).get("required") for media in schema.values()):
                operation["requestBody"]["required"] = True  # a body without its required fields is a 400
            responses = operation["responses"]
            declared = [k for k in responses if k in STATUSES and k not in statuses]  # e.g. 409 of a route
            for status in (*statuses, *declared):
                responses[status] = {"description": STATUSES[status], "content": copy.deepcopy(body)}
                if status == "503":
                    responses[status]["headers"] = {"Retry-After": {
                        "description": "Seconds to wait, when the queue is full", "schema": {"type": "integer"}}}
    return doc


def document_bentoml(doc: dict) -> dict:
    """BentoML's own routes, which it documents as JSON without a body: ``/metrics`` is text."""
    metrics = doc.get("paths", {}).get("/metrics", {}).get("get")
    if metrics:
        metrics["responses"]["200"] = copy.deepcopy(METRICS)
    return doc


def form_fields_as_text(doc: dict) -> dict:
    """BentoML documents each text field of a multipart form as a JSON part; the service reads them
    as the text typed (``serving.form``), which is what a form field is: ``text/plain``."""
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            form = ((operation.get("requestBody") or {}).get("content") or {}).get("multipart/form-data") \
                if isinstance(operation, dict) else None
            for encoding in ((form or {}).get("encoding") or {}).values():
                if encoding.get("contentType") == "application/json":
                    encoding["contentType"] = "text/plain"
    return doc


def contract(doc: dict) -> dict:
    return document_errors(document_bentoml(form_fields_as_text(openapi_30(doc))))


class Contract:
    """Serve ``/docs.json`` through ``contract`` (BentoML builds it; this corrects it)."""

    def __init__(self, app: t.Any, path: str = "/docs.json"):
        self.app, self.path = app, path

    async def __call__(self, scope: t.Any, receive: t.Any, send: t.Any) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path or scope.get("method") not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        start: dict | None = None
        chunks: list[bytes] = []

        async def collect(msg: t.Any) -> None:
            nonlocal start
            if msg["type"] == "http.response.start":
                start = msg
                return
            chunks.append(msg.get("body", b""))
            if msg.get("more_body"):
                return
            body = b"".join(chunks)
            if start is not None and start["status"] == 200:
                body = json.dumps(contract(json.loads(body)), ensure_ascii=False).encode()
            headers = [(k, v) for k, v in (start or {}).get("headers", []) if k.lower() != b"content-length"]
            await send({**(start or {"type": "http.response.start", "status": 500}),
                        "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})

        await self.app(scope, receive, collect)
