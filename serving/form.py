"""The /predict form read as typed: every text field reaches the SKU schema as the text it was.

BentoML's multipart reader (``_bentoml_impl.serde.MultipartSerde.parse_request``) passes each text
value through ``json.loads`` first, so a title ``1e5`` became the number 100000.0 (then the text
"100000.0"), ``"白色T恤"`` lost its quotes, ``null`` and ``NaN`` became absent values, and a 4,301-digit
value hit Python's integer-string limit (a 500). ``text_form`` gives an API's input model the one
step BentoML lets a model own, ``from_http_request``: the form is read by Starlette and its text
values are validated as they are, so numbers are read once, by the schema's rule
(``features.schema.read_number``), like a CSV cell or a JSON string.

What reaches this reader has passed ``serving.limits.FileFieldsOnly``: multipart/form-data only,
file fields as uploads, each text part within ``max_text_bytes`` and valid text in the form's charset.
"""

from __future__ import annotations

import typing as t

from starlette.datastructures import UploadFile

if t.TYPE_CHECKING:
    from bentoml import IODescriptor
    from starlette.requests import Request


def form_values(form: t.Any, file_fields: t.Collection[str]) -> dict[str, t.Any]:
    """The form as the input model's data: uploads for ``file_fields`` (anything else sent there
    is left out, so it is missing), the text of every other field as it came."""
    data: dict[str, t.Any] = {}
    for name in form:
        value = form[name]
        if name in file_fields:
            if isinstance(value, UploadFile):
                data[name] = value
        elif isinstance(value, str):
            data[name] = value
    return data


def text_form(spec: type[IODescriptor], max_text_bytes: int) -> type[IODescriptor]:
    """``spec`` (BentoML's model of an API's parameters) reading its multipart form as text.
    ``max_text_bytes`` is the guard's limit on a text part, given to Starlette as its own (1 MB by
    default, a 500 when hit), which the guard therefore always reaches first."""

    class Input(spec):  # type: ignore[valid-type, misc]  # the name BentoML gives the model in /docs.json
        @classmethod
        async def from_http_request(cls, request: Request, serde: t.Any) -> IODescriptor:
            if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
                return await super().from_http_request(request, serde)
            form = await request.form(max_part_size=max_text_bytes)
            return cls.model_validate(form_values(form, cls.multipart_fields))

    return Input
