"""Refuse oversize uploads before BentoML reads them into a temporary file.

BentoML and Starlette set no size limit on uploaded files; without this a client could fill the
disk. Requests with a large Content-Length are refused at once; chunked uploads are cut off as
soon as they pass the limit. Both get 413 naming the ``image`` field.
"""

from __future__ import annotations

import json
import typing as t


class BodySizeLimit:
    """Reject request bodies above max_bytes with 413 before BentoML parses them."""

    def __init__(self, app: t.Any, max_bytes: int, paths: tuple[str, ...]):
        self.app, self.max_bytes, self.paths = app, max_bytes, paths

    async def _reply_413(self, send: t.Any) -> None:
        reason = f"the upload is over the limit of {self.max_bytes:,} bytes"
        body = json.dumps({"error": reason, "detail": [{"loc": ["image"], "msg": reason, "type": "too_large"}]}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: t.Any, receive: t.Any, send: t.Any) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        cl = dict(scope["headers"]).get(b"content-length")
        if cl is not None and cl.isdigit() and int(cl) > self.max_bytes:
            return await self._reply_413(send)  # fast path: never read the body
        seen = 0
        too_large = False

        async def limited_receive() -> t.Any:  # chunked uploads without Content-Length
            nonlocal seen, too_large
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    return {"type": "http.disconnect"}  # makes form parsing abort
            return msg

        started = False

        async def guarded_send(msg: t.Any) -> None:
            nonlocal started
            if too_large and not started:
                started = True
                await self._reply_413(send)
                return
            if too_large:
                return  # swallow BentoML's error response
            started = True
            await send(msg)

        await self.app(scope, limited_receive, guarded_send)
