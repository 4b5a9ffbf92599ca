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
It also refuses what Starlette's form parser would turn into a 500: a part without a name (400)
and more parts than any /predict form needs (413). The text parts are held to what the form's
reader (``serving.form``) can take as typed: at most ``max_text_bytes`` each (413, the field named:
Starlette's own part limit answers 500), valid text in the form's charset (422: Starlette would
quietly read bytes that are not as Latin-1), and typed, not uploaded as a file (422).

``BodyTimeout``: uvicorn waits for a request body as long as the client keeps the connection, so
a body that stops arriving (or trickles in forever) would hold the request, and a queue slot, until
the client gives up. Each piece must come within ``idle_s`` of the last and the whole body within
``total_s``; else 408, the field named.

``Exposure``: who may call the service, outermost: the Host header must be one of the configured
names (DNS rebinding), state-changing requests from another site are refused (``Sec-Fetch-Site`` /
``Origin``), an optional API token (``Authorization: Bearer``, or an HttpOnly SameSite=Strict cookie
set by the small ``/login`` form served here, so the page's own fetch calls need no change), and the
security headers on every answer. Each refusal logs one line. It also names the caller for the
routes that keep things per person (batch jobs, kept forecasts: ``OWNER_KEY`` in the ASGI scope):
with a token, the token's identity; without one, a per-browser HttpOnly SameSite=Strict cookie
holding 256 random bits, set by the first request that creates something.
"""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import hmac
import json
import logging
import re
import secrets
import typing as t
from urllib.parse import parse_qs, urlsplit

from python_multipart.multipart import MultipartParser, parse_options_header

_log = logging.getLogger("trialcast.serving")
# More parts than a /predict form has fields (12), with room to spare; Starlette's own limit (1,000)
# answers 500.
MAX_FORM_PARTS = 64


def _json_reply(status: int, field: str, reason: str, kind: str,
                headers: list[tuple[bytes, bytes]] | None = None) -> tuple[dict, dict]:
    """The one error shape of the service: {"error": "field: reason", "detail": [{loc, msg, type}]}."""
    body = json.dumps({"error": f"{field}: {reason}", "detail": [{"loc": [field], "msg": reason, "type": kind}]},
                      ensure_ascii=False).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode()),
                         (b"connection", b"close"), *(headers or [])]}
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

    def __init__(self, app: t.Any, paths: tuple[str, ...], file_fields: tuple[str, ...] = ("image",),
                 known: tuple[str, ...] = (), max_text_bytes: int = 1024 * 1024):
        self.app, self.paths, self.file_fields, self.known = app, paths, file_fields, frozenset(known)
        self.max_text_bytes = max_text_bytes

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

        parts = 0
        seen: set[str] = set()
        text = _TextPart(charset, self.max_text_bytes, refusal)

        def on_headers_finished() -> None:
            nonlocal parts
            parts += 1
            _, options = parse_options_header(header["disposition"])
            text.begin(decode(options.get(b"name", b"")) if b"filename" not in options else None)
            if parts > MAX_FORM_PARTS:
                refusal.refuse(413, "form", f"has more than {MAX_FORM_PARTS} parts", "too_large")
            if b"name" not in options:  # Starlette's parser would raise KeyError (a 500)
                refusal.refuse(400, "form", "a multipart part has no name (Content-Disposition: form-data; "
                               'name="...")', "invalid_input")
            name = decode(options.get(b"name", b""))
            if name in self.file_fields and b"filename" not in options:
                refusal.refuse(422, name, "must be a file upload (e.g. curl -F image=@photo.jpg); "
                               "text values such as URLs are not accepted", "not_a_file")
            if name in self.known and name not in self.file_fields and b"filename" in options:
                refusal.refuse(422, name, "must be typed text, not an uploaded file", "not_text")
            if name in seen and name in self.known:  # which one counts would be the parser's guess
                refusal.refuse(400, name, "is given more than once", "invalid_input")
            seen.add(name)

        try:
            parser = MultipartParser(params[b"boundary"], {
                "on_part_begin": on_part_begin, "on_header_field": on_header_field,
                "on_header_value": on_header_value, "on_header_end": on_header_end,
                "on_headers_finished": on_headers_finished, "on_part_data": text.data, "on_part_end": text.end,
            })
        except Exception as error:  # noqa: BLE001 - e.g. a boundary over 256 characters (RFC 2046: 70)
            for part in _json_reply(400, field, f"the multipart/form-data body is malformed ({error})", "invalid_input"):
                await send(part)
            return

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


class _TextPart:
    """The text part of a multipart form being read: its size and whether its bytes are text in
    the form's charset (decoded incrementally, strictly, as they stream: nothing is buffered)."""

    def __init__(self, charset: str, max_bytes: int, refusal: _Refusal):
        self.charset, self.max_bytes, self.refusal = charset, max_bytes, refusal
        self.name: str | None = None
        self.size = 0
        self.decoder: codecs.IncrementalDecoder | None = None

    def begin(self, name: str | None) -> None:
        """A new part: ``name`` when it is a text part, None for a file (not checked here)."""
        self.name, self.size = name, 0
        self.decoder = codecs.getincrementaldecoder(self.charset)("strict") if name is not None else None

    def data(self, data: bytes, start: int, end: int) -> None:
        if self.name is None or self.decoder is None:
            return
        if self.size + end - start > self.max_bytes:
            self.refusal.refuse(413, self.name, f"the field is over the limit of {self.max_bytes:,} bytes",
                                "too_large")
            self.decoder = None
            return
        self._decode(data[start:end], final=False)
        self.size += end - start

    def end(self) -> None:
        if self.name is not None and self.decoder is not None:
            self._decode(b"", final=True)
        self.name = self.decoder = None

    def _decode(self, chunk: bytes, *, final: bool) -> None:
        assert self.decoder is not None and self.name is not None
        pending = len(self.decoder.getstate()[0])  # bytes of an unfinished character from the last chunk
        try:
            self.decoder.decode(chunk, final=final)
        except UnicodeDecodeError as error:
            where = self.size - pending + error.start + 1
            self.refusal.refuse(422, self.name, f"is not valid {self.charset.upper()} text (it cannot be decoded "
                                f"from byte {where:,})", "invalid_text")
            self.decoder = None


class BodyTimeout:
    """On ``paths``, a request body must keep arriving: each piece within ``idle_s`` of the last,
    the whole within ``total_s`` (None: no bound on the whole, for uploads of any size); else 408."""

    def __init__(self, app: t.Any, paths: tuple[str, ...], idle_s: float, total_s: float | None = None,
                 field: str = "body"):
        self.app, self.paths, self.idle_s, self.total_s, self.field = app, paths, idle_s, total_s, field

    async def __call__(self, scope: t.Any, receive: t.Any, send: t.Any) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.total_s if self.total_s is not None else None
        refusal = _Refusal()
        whole = False  # the body has arrived: a later receive() waits for a disconnect, for as long as it takes

        async def timed_receive() -> t.Any:
            nonlocal whole
            if refusal.reply is not None:
                return {"type": "http.disconnect"}
            if whole:
                return await receive()
            left = self.idle_s if deadline is None else deadline - loop.time()
            by_deadline = left < self.idle_s  # which limit this wait ends at, and so which one was passed
            try:
                msg = await asyncio.wait_for(receive(), timeout=max(min(left, self.idle_s), 0.0))
            except TimeoutError:
                refusal.refuse(408, self.field, self._reason(by_deadline), "timeout")
                return {"type": "http.disconnect"}  # makes body parsing abort
            whole = msg["type"] != "http.request" or not msg.get("more_body", False)
            return msg

        await _run_guarded(self.app, scope, timed_receive, send, refusal)

    def _reason(self, past_deadline: bool) -> str:
        if past_deadline:
            return f"the request body did not arrive within {self.total_s:g} s"
        return f"the request body stopped arriving: nothing came for {self.idle_s:g} s"


# ---------------------------------------------------------------- who may call, and what answers carry
# Everything the page and /docs load comes from this server ('self'); inline styles and scripts
# are allowed for BentoML's Swagger page, never another origin.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
                    (b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-resource-policy", b"same-origin")]
OPEN_PATHS = ("/healthz", "/livez", "/readyz", "/login")  # probes, and the form that asks for the token
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
COOKIE = "trialcast_session"
CLIENT_COOKIE = "trialcast_client"  # who created a job, without a token: 256 random bits per browser
CLIENT_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)
OWNER_KEY = "trialcast.owner"  # the ASGI scope key the routes read the caller's identity from
LOGIN_PAGE = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>trialcast</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 28em; margin: 4em auto">
<h1>trialcast</h1>
<form method="post" action="/login">
<label>访问令牌 / Access token<br><input type="password" name="token" autocomplete="current-password"
 required autofocus style="width: 100%"></label>
<p>{message}</p>
<button type="submit">登录 / Sign in</button>
</form></body></html>"""


def _host_name(value: str) -> str:
    """The name of a Host header or an origin's authority, without the port ([::1]:3000 -> ::1)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Exposure:
    """Host check, cross-site refusal, optional token and security headers, in front of everything."""

    def __init__(self, app: t.Any, token: str | None = None, allowed_hosts: str = "127.0.0.1,localhost,::1"):
        self.app = app
        self.token = token or None
        self.hosts = {_host_name(h) for h in allowed_hosts.split(",") if h.strip()}
        # The cookie carries a MAC of the token, not the token itself.
        self.session = hmac.new(self.token.encode(), b"trialcast-session", hashlib.sha256).hexdigest() if self.token else ""

    async def __call__(self, scope: t.Any, receive: t.Any, send: t.Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope.get("method", "GET"), scope.get("path", "/")

        async def with_headers(msg: t.Any) -> None:
            if msg["type"] == "http.response.start":
                names = {k.lower() for k, _ in msg.get("headers", [])}
                msg = {**msg, "headers": [*msg.get("headers", []),
                                          *[(k, v) for k, v in SECURITY_HEADERS if k not in names]]}
            await send(msg)

        problem = self._refusal(method, path, headers)
        if problem is not None:
            status, field, reason, kind, extra = problem
            client = (scope.get("client") or ("?",))[0]
            _log.warning("refused %s %s from %s: %d %s: %s", method, path, client, status, field, reason)
            if status == 401 and method == "GET" and "text/html" in headers.get("accept", ""):
                return await self._redirect(with_headers, "/login")
            for part in _json_reply(status, field, reason, kind, extra):
                await with_headers(part)
            return
        if path == "/login" and self.token:
            return await self._login(method, receive, with_headers)
        owner, cookie = self._owner(method, headers)
        scope[OWNER_KEY] = owner

        async def with_cookie(msg: t.Any) -> None:
            if cookie is not None and msg["type"] == "http.response.start":
                msg = {**msg, "headers": [*msg.get("headers", []), (b"set-cookie", cookie)]}
            await with_headers(msg)

        await self.app(scope, receive, with_cookie if path not in OPEN_PATHS else with_headers)

    def _owner(self, method: str, headers: dict[str, str]) -> tuple[str | None, bytes | None]:
        """(SHA-256 of the caller's identity, a Set-Cookie to send or None). With a token every
        authorised caller is the token's holder; without one, the browser's own random cookie,
        made by the first request that creates something (a forecast, a job). Never by a read: a
        link followed from another site arrives without the SameSite=Strict cookie, and a new one
        set then would replace the browser's identity and lose its jobs."""
        if self.token:
            return hashlib.sha256(b"token:" + self.session.encode()).hexdigest(), None
        for pair in headers.get("cookie", "").split(";"):
            name, _, value = pair.strip().partition("=")
            if name == CLIENT_COOKIE and CLIENT_PATTERN.match(value):
                return hashlib.sha256(b"client:" + value.encode()).hexdigest(), None
        if method in SAFE_METHODS:
            return None, None
        value = secrets.token_urlsafe(32)
        cookie = f"{CLIENT_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=31536000"
        return hashlib.sha256(b"client:" + value.encode()).hexdigest(), cookie.encode()

    def _refusal(self, method: str, path: str, headers: dict[str, str]) -> tuple | None:
        host = _host_name(headers.get("host", ""))
        if host not in self.hosts:
            return 400, "host", f"{host or 'none'!r} is not a name this service answers to", "invalid_host", None
        if method not in SAFE_METHODS:
            site = headers.get("sec-fetch-site")
            if site is not None and site not in ("same-origin", "none"):
                return 403, "origin", f"cross-site requests are refused (Sec-Fetch-Site: {site})", "cross_site", None
            origin = headers.get("origin")
            if origin is not None and origin != "null" and urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
                return 403, "origin", f"cross-site requests are refused (Origin: {origin[:80]})", "cross_site", None
            if origin == "null":
                return 403, "origin", "cross-site requests are refused (Origin: null)", "cross_site", None
        if self.token and path not in OPEN_PATHS and not self._authorised(headers):
            reason = "an API token is required (Authorization: Bearer TOKEN, or sign in at /login)"
            return 401, "authorization", reason, "unauthorized", [(b"www-authenticate", b'Bearer realm="trialcast"')]
        return None

    def _authorised(self, headers: dict[str, str]) -> bool:
        assert self.token is not None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return True
        for pair in headers.get("cookie", "").split(";"):
            name, _, value = pair.strip().partition("=")
            if name == COOKIE and hmac.compare_digest(value.encode(), self.session.encode()):
                return True
        return False

    async def _login(self, method: str, receive: t.Any, send: t.Any) -> None:
        """GET: the form. POST (urlencoded ``token``): the session cookie and back to the page."""
        message = ""
        if method == "POST":
            body = b""
            while len(body) <= 4096:
                msg = await receive()
                body += msg.get("body", b"")
                if msg["type"] != "http.request" or not msg.get("more_body"):
                    break
            given = (parse_qs(body[:4096].decode("utf-8", "replace")).get("token") or [""])[0]
            if hmac.compare_digest(given.encode(), self.token.encode()):  # type: ignore[union-attr]
                cookie = f"{COOKIE}={self.session}; HttpOnly; SameSite=Strict; Path=/"
                return await self._redirect(send, "/", [(b"set-cookie", cookie.encode())])
            _log.warning("refused POST /login: wrong token")
            message = "令牌不对 / Wrong token."
        page = LOGIN_PAGE.format(message=message).encode()
        await send({"type": "http.response.start", "status": 200 if not message else 401,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"),
                                (b"content-length", str(len(page)).encode()), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": page})

    @staticmethod
    async def _redirect(send: t.Any, where: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", where.encode()), (b"content-length", b"0"), *(extra or [])]})
        await send({"type": "http.response.body", "body": b""})


# ---------------------------------------------------------------- one error shape, one log line
def error_shape(body: t.Any) -> dict | None:
    """BentoML's and FastAPI's own 4xx bodies in the service's one shape (None when not an error
    body): pydantic's errors lose their documentation URLs and inputs; a bare ``[{"error": ...}]``
    becomes an object; FastAPI's ``{"detail": ...}`` gains ``error``; ``error`` is always
    "field: reason; ..." (not "1 validation error for Input"). Other keys are kept."""
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict):
        body = body[0]
    if not isinstance(body, dict) or ("error" not in body and not isinstance(body.get("detail"), (list, str))):
        return None
    raw = body.get("detail")
    detail = []
    if isinstance(raw, str):
        detail = [{"loc": ["request"], "msg": raw, "type": "http"}]
    for d in raw if isinstance(raw, list) else []:
        if isinstance(d, dict):
            loc = [str(x) for x in (d.get("loc") or [])]
            if len(loc) > 1 and loc[0] in ("body", "query", "path", "header"):
                loc = loc[1:]  # FastAPI's "where" prefix: the field is what the client named
            item = {"loc": loc or ["body"], "msg": str(d.get("msg", "")), "type": str(d.get("type", "invalid_input"))}
            # A message code and its parameters (the page's own routes, serving/localise.py) stay:
            # they are what renders the sentence in the language asked.
            item.update({k: d[k] for k in ("code", "params") if k in d})
            detail.append(item)
    if not detail:
        detail = [{"loc": ["body"], "msg": str(body.get("error")), "type": "invalid_input"}]
    text = "; ".join(f"{d['loc'][0]}: {d['msg']}" for d in detail)
    return {**body, "error": text, "detail": detail}


def unusable_values(status: int, shaped: dict) -> int:
    """422 for BentoML's 400 when every field it names was refused by a rule of the SKU schema
    (pydantic type ``trialcast``, ``features.schema``): a value present but unusable, which the
    predictor's own checks answer 422 too; a missing field or a malformed body stays 400."""
    kinds = {d.get("type") for d in shaped.get("detail") or []}
    return 422 if status == 400 and kinds == {"trialcast"} else status


class ErrorShape:
    """Rewrite BentoML's own 4xx JSON answers into the service's one error shape; a request whose
    only faults are unusable field values is 422 (``unusable_values``)."""

    LIMIT = 256 * 1024

    def __init__(self, app: t.Any):
        self.app = app

    async def __call__(self, scope: t.Any, receive: t.Any, send: t.Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        held: dict | None = None
        chunks: list[bytes] = []

        async def reshaping_send(msg: t.Any) -> None:
            nonlocal held
            if msg["type"] == "http.response.start":
                kind = dict(msg.get("headers", [])).get(b"content-type", b"")
                if 400 <= msg["status"] < 500 and kind.startswith((b"application/json", b"text/plain")):
                    held = msg
                    return
            elif held is not None and msg["type"] == "http.response.body":
                chunks.append(msg.get("body", b""))
                if msg.get("more_body") and sum(map(len, chunks)) < self.LIMIT:
                    return
                body = b"".join(chunks)
                try:
                    shaped = error_shape(json.loads(body))
                except ValueError:  # Starlette's plain-text 404 / 405: the same shape, named after the path
                    reason = body.decode("utf-8", "replace").strip()[:200] or "refused"
                    shaped = {"error": f"path: {reason}", "detail": [{"loc": ["path"], "msg": reason, "type": "http"}]}
                status = held["status"]
                if shaped is not None:
                    body = json.dumps(shaped, ensure_ascii=False).encode()
                    status = unusable_values(status, shaped)
                headers = [(k, v) for k, v in held["headers"]
                           if k.lower() not in (b"content-length", b"content-type")]
                headers.append((b"content-type", b"application/json"))
                await send({**held, "status": status,
                            "headers": [*headers, (b"content-length", str(len(body)).encode())]})
                held = None
                await send({"type": "http.response.body", "body": body, "more_body": bool(msg.get("more_body"))})
                return
            await send(msg)

        await self.app(scope, receive, reshaping_send)


class OneLineRefusals(logging.Filter):
    """BentoML logs a full traceback for every request it refuses (a validation error, a body our
    guards cut off): ~2 KB of log per bad request. Keep one line for those; real errors keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or not record.exc_info[1]:
            return True
        error = record.exc_info[1]
        code = getattr(getattr(error, "error_code", None), "value", 500)
        refused = type(error).__name__ in ("ValidationError", "ClientDisconnect", "MultiPartException") or (
            isinstance(code, int) and 400 <= code < 500)
        if refused:
            record.msg = f"{record.getMessage()}: refused: {type(error).__name__}: {str(error)[:300]}".replace("\n", " ")
            record.args, record.exc_info, record.exc_text = (), None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_refusals() -> None:
    logging.getLogger("bentoml._internal.server.http_app").addFilter(OneLineRefusals())


class JsonOnly:
    """On ``paths``, a POST body must be JSON: BentoML would try to parse a form there (a 500 when
    the form has no boundary)."""

    def __init__(self, app: t.Any, paths: tuple[str, ...], field: str = "items"):
        self.app, self.paths, self.field = app, paths, field

    async def __call__(self, scope: t.Any, receive: t.Any, send: t.Any) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        raw_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
        media_type, _ = parse_options_header(raw_type)
        if media_type not in (b"application/json", b""):
            shown = media_type.decode("latin-1")
            for part in _json_reply(415, self.field, f"must be sent as application/json (got content type "
                                    f"{shown!r})", "unsupported_media_type"):
                await send(part)
            return
        await self.app(scope, receive, send)


class QueueBound:
    """The stated queue bound: at most ``bound`` requests on the model routes at once (running or
    waiting for the worker); one more is answered 503 with ``Retry-After`` at once, instead of
    waiting minutes or being shed by BentoML's batcher without a word on when to come back."""

    def __init__(self, app: t.Any, bound: int, paths: tuple[str, ...], retry_after: int = 5):
        self.app, self.bound, self.paths, self.retry_after = app, bound, paths, retry_after
        self.inflight = 0

    async def __call__(self, scope: t.Any, receive: t.Any, send: t.Any) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        if self.inflight >= self.bound:
            _log.warning("refused POST %s: %d requests in flight, the queue bound", scope["path"], self.inflight)
            retry = [(b"retry-after", str(self.retry_after).encode())]
            for part in _json_reply(503, "queue", f"the service is at its queue bound of {self.bound} requests; "
                                    f"retry in {self.retry_after} s", "overloaded", retry):
                await send(part)
            return
        self.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1
