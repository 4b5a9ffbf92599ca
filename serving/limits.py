"""Guards in front of BentoML's request parsing, as ASGI middleware.

``BodySizeLimit``: BentoML and Starlette set no size limit on uploaded files or JSON bodies;
without it a client could fill the disk or the memory. Requests with a large Content-Length are
refused at once; chunked uploads are cut off as soon as they pass the limit. Both get 413 naming
the field that carries the bulk (``image`` for /predict, ``items`` for /predict_batch).

``FileFieldsOnly``: BentoML 1.4 treats a *text* form value sent for a file parameter (``-F
image=http://...``, or ``image=...`` in an urlencoded form) as a URL and downloads it on the
server: a server-side request forgery. This guard lets only multipart/form-data reach /predict and
refuses any ``image`` part that is not a file upload, before BentoML sees the form. It reads the
parts' headers with the same parser Starlette uses, as the body streams through (no buffering).
"""

from __future__ import annotations

import codecs
import json
import typing as t

from python_multipart.multipart import MultipartParser, parse_options_header


def _json_reply(status: int, field: str, reason: str, kind: str) -> tuple[dict, dict]:
    body = json.dumps({"error": f"{field}: {reason}", "detail": [{"loc": [field], "msg": reason, "type": kind}]},
                      ensure_ascii=False).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode()),
                         (b"connection", b"close")]}
    return start, {"type": "http.response.body", "body": body}


class _Refusal:
    """One request's refusal: set once, then sent instead of whatever the app answers."""

    def __init__(self) -> None:
        self.reply: tuple[dict, dict] | None = None

    def refuse(self, status: int, field: str, reason: str, kind: str) -> None:
        if self.reply is None:
            self.reply = _json_reply(status, field, reason, kind)


async def _run_guarded(app: t.Any, scope: t.Any, receive: t.Any, send: t.Any, refusal: _Refusal) -> None:
    """Run ``app``; once ``refusal`` is set, its reply replaces the app's (which then fails to read
    the body, because the guarded ``receive`` reports a disconnect)."""
    sent = False  # a response (ours or the app's) has started

    async def guarded_send(msg: t.Any) -> None:
        nonlocal sent
        if refusal.reply is not None:
            if not sent:
                sent = True
                for part in refusal.reply:
                    await send(part)
            return  # swallow the app's own (error) response
        sent = True
        await send(msg)

    try:
        await app(scope, receive, guarded_send)
    except Exception:
        if refusal.reply is None:
            raise
    if refusal.reply is not None and not sent:
        for part in refusal.reply:
            await send(part)


class BodySizeLimit:
    """Reject request bodies above max_bytes with 413 before BentoML parses them."""

    def __init__(self, app: t.Any, max_bytes: int, paths: tuple[str, ...], field: str = "image"):
        self.app, self.max_bytes, self.paths, self.field = app, max_bytes, paths, field

    @property
    def reason(self) -> str:
        return f"the upload is over the limit of {self.max_bytes:,} bytes"

    async def __call__(self, scope: t.Any, receive: t.Any, send: t.Any) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        cl = dict(scope["headers"]).get(b"content-length")
        if cl is not None and cl.isdigit() and int(cl) > self.max_bytes:
            for part in _json_reply(413, self.field, self.reason, "too_large"):  # never read the body
                await send(part)
            return
        refusal = _Refusal()
        seen = 0

        async def limited_receive() -> t.Any:  # chunked uploads without Content-Length
            nonlocal seen
            if refusal.reply is not None:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    refusal.refuse(413, self.field, self.reason, "too_large")
                    return {"type": "http.disconnect"}  # makes form parsing abort
            return msg

        await _run_guarded(self.app, scope, limited_receive, send, refusal)


class FileFieldsOnly:
    """On ``paths``, accept only multipart/form-data whose ``file_fields`` parts are file uploads."""

    def __init__(self, app: t.Any, paths: tuple[str, ...], file_fields: tuple[str, ...] = ("image",)):
        self.app, self.paths, self.file_fields = app, paths, file_fields

    async def __call__(self, scope: t.Any, receive: t.Any, send: t.Any) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        field = self.file_fields[0]
        raw_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
        media_type, params = parse_options_header(raw_type)
        if media_type != b"multipart/form-data":
            shown = media_type.decode("latin-1") or "none"
            for part in _json_reply(415, field, f"must be uploaded as a file in a multipart/form-data request "
                                    f"(got content type {shown!r})", "unsupported_media_type"):
                await send(part)
            return
        if b"boundary" not in params:
            for part in _json_reply(400, field, "the multipart/form-data request has no boundary", "invalid_input"):
                await send(part)
            return
        # Decode part names exactly as Starlette will (its charset rule), so no spelling slips through.
        charset = params.get(b"charset", b"utf-8").decode("latin-1")
        try:
            charset = codecs.lookup(charset).name
        except LookupError:
            charset = "latin-1"
        refusal = _Refusal()
        header = {"name": b"", "value": b"", "disposition": b""}

        def decode(raw: bytes) -> str:
            try:
                return raw.decode(charset)
            except (UnicodeDecodeError, LookupError):
                return raw.decode("latin-1")

        def on_part_begin() -> None:
            header.update(name=b"", value=b"", disposition=b"")

        def on_header_field(data: bytes, start: int, end: int) -> None:
            header["name"] += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            header["value"] += data[start:end]

        def on_header_end() -> None:
            if header["name"].lower() == b"content-disposition":
                header["disposition"] = header["value"]
            header.update(name=b"", value=b"")

        def on_headers_finished() -> None:
            _, options = parse_options_header(header["disposition"])
            name = decode(options.get(b"name", b""))
            if name in self.file_fields and b"filename" not in options:
                refusal.refuse(422, name, "must be a file upload (e.g. curl -F image=@photo.jpg); "
                               "text values such as URLs are not accepted", "not_a_file")

        parser = MultipartParser(params[b"boundary"], {
            "on_part_begin": on_part_begin, "on_header_field": on_header_field,
            "on_header_value": on_header_value, "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
        })

        async def inspecting_receive() -> t.Any:
            if refusal.reply is not None:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request" and msg.get("body"):
                try:
                    parser.write(msg["body"])
                except Exception as error:  # noqa: BLE001 - malformed body: fail closed
                    refusal.refuse(400, field, f"the multipart/form-data body is malformed ({error})", "invalid_input")
                if refusal.reply is not None:
                    return {"type": "http.disconnect"}
            return msg

        await _run_guarded(self.app, scope, inspecting_receive, send, refusal)
