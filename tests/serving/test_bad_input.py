"""Every bad input to the real service gets a clear 4xx naming the field and saying why, and the
next good request still works. Also: the batch endpoint answers every item in order, the health,
model and docs routes, and the image-URL download (SSRF) that BentoML would do is refused."""

from __future__ import annotations

import base64
import http.server
import struct
import threading
import zlib
from collections.abc import Callable

import httpx
import pandas as pd
import pytest

TIMEOUT = 180
GOOD_FIELDS = {"title": "2025夏季新款 蓝色纯棉宽松牛仔裤 Blue Cotton Jeans", "description": "夏季新款 牛仔裤",
               "cost_price": "65", "list_price": "139", "category": "牛仔裤", "launch_date": "2025-07-02",
               "channel": "web"}


# ---------------------------------------------------------------- helpers
def png(width: int, height: int, colour: tuple[int, int, int] = (220, 30, 40)) -> bytes:
    """A real PNG of one colour, built by hand: 1-bit palette rows of zeros, deflated. A header of
    30000x30000 costs ~100 KB this way; PIL would need gigabytes of memory to save it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes((width + 7) // 8)  # filter byte 0, then every pixel is palette entry 0
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 3, 0, 0, 0)  # 1 bit, palette
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"PLTE", bytes(colour))
            + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def picture(server: dict) -> bytes:
    first = pd.read_csv(server["sample"] / "candidates.csv", dtype=str, keep_default_na=False).iloc[0]
    return (server["sample"] / first["image"]).read_bytes()


@pytest.fixture(scope="module")
def url(server: dict) -> str:
    return server["url"]


def predict(url: str, picture: bytes | None = None, fields: dict | None = None, **kwargs) -> httpx.Response:
    if "files" not in kwargs and "content" not in kwargs and "json" not in kwargs:
        kwargs["files"] = {"image": ("product.png", picture, "image/png")}
    data = GOOD_FIELDS if fields is None else fields
    if "content" in kwargs or "json" in kwargs:
        return httpx.post(url + "/predict", timeout=TIMEOUT, **kwargs)
    return httpx.post(url + "/predict", data=data, timeout=TIMEOUT, **kwargs)


def assert_refused(response: httpx.Response, field: str, *words: str, statuses=(400, 413, 422)) -> None:
    """A 4xx whose detail names exactly ``field`` and whose message says why (holds ``words``)."""
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    body = response.json()
    detail = body["detail"]
    assert [d["loc"][0] for d in detail] == [field], detail
    message = detail[0]["msg"].lower()
    for word in words:
        assert word.lower() in message, (word, detail[0]["msg"])


def assert_still_serving(url: str, picture: bytes) -> None:
    response = predict(url, picture)
    assert response.status_code == 200, response.text[:500]
    assert response.json()["ok"] is True


def without(name: str) -> dict:
    return {k: v for k, v in GOOD_FIELDS.items() if k != name}


def with_(**changes: str) -> dict:
    return {**GOOD_FIELDS, **changes}


# ---------------------------------------------------------------- /predict, one bad field at a time
# (id, request builder (url, good picture) -> response, field, statuses, words the message must hold)
CASES: list[tuple[str, Callable[[str, bytes], httpx.Response], str, tuple[int, ...], tuple[str, ...]]] = [
    ("text-file-as-image", lambda u, p: predict(u, files={"image": ("notes.png", b"just some text\n", "image/png")}),
     "image", (422,), ("not a picture",)),
    ("truncated-picture", lambda u, p: predict(u, p[: len(p) // 2]), "image", (422,), ("truncated",)),
    ("empty-file", lambda u, p: predict(u, b""), "image", (400, 422), ("empty",)),
    ("oversize-upload", lambda u, p: predict(u, p + bytes(11 * 1024 * 1024)), "image", (413,), ("over the limit",)),
    ("oversize-chunked-upload", lambda u, p: predict(
        u, content=_chunked_multipart(p + bytes(11 * 1024 * 1024)),
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"}), "image", (413,), ("over the limit",)),
    ("bomb-30000x30000", lambda u, p: predict(u, png(30000, 30000)), "image", (422,), ("pixels",)),
    ("bomb-7000x7000", lambda u, p: predict(u, png(7000, 7000)), "image", (422,), ("7000x7000", "pixels")),
    # Optional in the signature (a model trained without pictures or cost prices takes SKUs without
    # them); the sample's model had both for every SKU, so it refuses their absence by name.
    ("no-image", lambda u, p: predict(u, files={"other": ("a.txt", b"x", "text/plain")}), "image", (422,),
     ("missing",)),
    ("missing-cost", lambda u, p: predict(u, p, without("cost_price")), "cost_price", (422,), ("missing",)),
    ("negative-cost", lambda u, p: predict(u, p, with_(cost_price="-5")), "cost_price", (400, 422), ("positive",)),
    ("zero-cost", lambda u, p: predict(u, p, with_(cost_price="0")), "cost_price", (400, 422), ("positive",)),
    ("nan-cost", lambda u, p: predict(u, p, with_(cost_price="NaN")), "cost_price", (400, 422), ("finite",)),
    ("inf-cost", lambda u, p: predict(u, p, with_(cost_price="inf")), "cost_price", (400, 422), ("finite",)),
    ("text-cost", lambda u, p: predict(u, p, with_(cost_price="cheap")), "cost_price", (400, 422), ("number",)),
    ("empty-title", lambda u, p: predict(u, p, with_(title="")), "title", (400, 422), ("empty",)),
    ("whitespace-title", lambda u, p: predict(u, p, with_(title=" \t  ")), "title", (400, 422), ("empty",)),
    ("missing-title", lambda u, p: predict(u, p, without("title")), "title", (400,), ("required",)),
    ("title-100k-chars", lambda u, p: predict(u, p, with_(title="好" * 100_000)), "title", (400, 422),
     ("100,000 characters", "limit")),
    ("description-100k-chars", lambda u, p: predict(u, p, with_(description="x" * 100_000)), "description",
     (400, 422), ("100,000 characters", "limit")),
    ("unknown-category", lambda u, p: predict(u, p, with_(category="火箭发射器")), "category", (422,),
     ("unknown category", "牛仔裤")),
    ("list-price-below-cost", lambda u, p: predict(u, p, with_(list_price="50")), "list_price", (422,),
     ("above the cost price",)),
    ("list-price-equal-cost", lambda u, p: predict(u, p, with_(list_price="65")), "list_price", (422,),
     ("above the cost price",)),
    ("negative-list-price", lambda u, p: predict(u, p, with_(list_price="-1")), "list_price", (400, 422),
     ("positive",)),
    ("bad-launch-date", lambda u, p: predict(u, p, with_(launch_date="2025-13-45")), "launch_date", (400, 422),
     ("not a date",)),
    ("words-as-launch-date", lambda u, p: predict(u, p, with_(launch_date="next tuesday")), "launch_date", (400, 422),
     ("not a date",)),
    ("json-body", lambda u, p: predict(u, json={**GOOD_FIELDS, "image": base64.b64encode(p).decode()}), "image",
     (415,), ("multipart/form-data", "application/json")),
    ("text-plain-body", lambda u, p: predict(u, content=b"title=x", headers={"content-type": "text/plain"}), "image",
     (415,), ("multipart/form-data", "text/plain")),
    ("multipart-without-boundary", lambda u, p: predict(u, content=b"--x\r\n",
                                                        headers={"content-type": "multipart/form-data"}),
     "image", (400,), ("boundary",)),
]
BOUNDARY = "trialcast-test-boundary"


def _chunked_multipart(payload: bytes):
    """A multipart body sent as a generator: httpx uses chunked encoding, so no Content-Length."""
    def body():
        yield (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
               "Content-Type: image/png\r\n\r\n").encode()
        for start in range(0, len(payload), 256 * 1024):
            yield payload[start : start + 256 * 1024]
        for name, value in GOOD_FIELDS.items():
            yield f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()
        yield f"\r\n--{BOUNDARY}--\r\n".encode()
    return body()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_by_name_and_the_next_request_works(case, url: str, picture: bytes) -> None:
    _, send, field, statuses, words = case
    assert_refused(send(url, picture), field, *words, statuses=statuses)
    assert_still_serving(url, picture)


def test_a_good_request_is_answered(url: str, picture: bytes) -> None:
    """The control for the cases above: the same request builder with nothing wrong gets a forecast."""
    response = predict(url, picture)
    assert response.status_code == 200, response.text
    assert response.json()["forecast"]["p50"] > 0


# ---------------------------------------------------------------- image given as a URL (SSRF)
@pytest.fixture
def listener():
    """A local HTTP server that records every request it gets: it must get none."""
    hits: list[str] = []
    picture = png(64, 64)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(picture)))
            self.end_headers()
            self.wfile.write(picture)

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/product.png", hits
    httpd.shutdown()
    httpd.server_close()


def test_image_as_a_text_url_is_refused_and_never_fetched(url: str, picture: bytes, listener) -> None:
    target, hits = listener
    # curl -F image=http://... : a multipart text part (no filename) named image
    response = predict(url, files={"image": (None, target)})
    assert_refused(response, "image", "file upload", statuses=(422,))
    # the same with a real file beside it, in case only the first image part were checked
    response = predict(url, files=[("image", ("a.png", picture, "image/png")), ("image", (None, target))])
    assert_refused(response, "image", "file upload", statuses=(422,))
    # an urlencoded form goes to the same multipart parser in BentoML
    response = httpx.post(url + "/predict", data={**GOOD_FIELDS, "image": target}, timeout=TIMEOUT)
    assert_refused(response, "image", "multipart/form-data", statuses=(415,))
    assert_still_serving(url, picture)
    # the brief's example: the service's own /model as the picture
    response = predict(url, files={"image": (None, url + "/model")})
    assert_refused(response, "image", "file upload", statuses=(422,))
    assert hits == [], f"the service fetched {hits}"


# ---------------------------------------------------------------- /predict_batch
def test_batch_mixes_good_and_bad_items_one_answer_each_in_order(url: str, picture: bytes) -> None:
    good = base64.b64encode(picture).decode()
    items = [
        {"sku_id": "good-1", **GOOD_FIELDS, "image_base64": good},
        {"sku_id": "bad-cost", **GOOD_FIELDS, "cost_price": -3, "image_base64": good},
        {"sku_id": "bad-base64", **GOOD_FIELDS, "image_base64": "this is not base64!"},
        {"sku_id": "no-picture", **GOOD_FIELDS},
        {"sku_id": "not-a-picture", **GOOD_FIELDS, "image_base64": base64.b64encode(b"hello").decode()},
        {"sku_id": "several", "title": " ", "cost_price": "NaN", "category": "火箭", "image_base64": good},
        {"sku_id": "long-copy", **GOOD_FIELDS, "description": "x" * 100_000, "image_base64": good},
        {"sku_id": "bad-date", **GOOD_FIELDS, "launch_date": "2025-02-30", "image_base64": good},
        {"sku_id": "bomb", **GOOD_FIELDS, "image_base64": base64.b64encode(png(30000, 30000)).decode()},
        {"sku_id": "good-2", **GOOD_FIELDS, "list_price": None, "image_base64": good},
    ]
    response = httpx.post(url + "/predict_batch", json={"items": items}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:500]
    answers = response.json()
    assert [a["sku_id"] for a in answers] == [i["sku_id"] for i in items]
    by_id = {a["sku_id"]: a for a in answers}
    assert by_id["good-1"]["ok"] and by_id["good-2"]["ok"]
    assert by_id["good-1"]["forecast"]["p50"] > 0 and by_id["good-2"]["decision"]["assumed_list_price"] is True
    expected = {
        "bad-cost": {"cost_price": "positive"},
        "bad-base64": {"image_base64": "not valid base64"},
        "no-picture": {"image_base64": "missing"},
        "not-a-picture": {"image_base64": "not a picture"},
        "several": {"title": "empty", "cost_price": "finite", "category": "unknown category"},
        "long-copy": {"description": "100,000 characters"},
        "bad-date": {"launch_date": "not a date"},
        "bomb": {"image_base64": "pixels"},
    }
    for sku, fields in expected.items():
        answer = by_id[sku]
        assert answer["ok"] is False, answer
        got = {e["field"]: e["reason"] for e in answer["errors"]}
        assert set(got) == set(fields), (sku, got)
        for field, word in fields.items():
            assert word in got[field], (sku, field, got[field])
    assert_still_serving(url, picture)


def test_batch_of_nothing_is_nothing(url: str) -> None:
    response = httpx.post(url + "/predict_batch", json={"items": []}, timeout=TIMEOUT)
    assert response.status_code == 200 and response.json() == []


def test_batch_that_is_not_a_list_is_refused_by_name(url: str) -> None:
    response = httpx.post(url + "/predict_batch", json={"items": "everything"}, timeout=TIMEOUT)
    assert_refused(response, "items", "array", statuses=(400,))


# ---------------------------------------------------------------- health, model facts, docs
def test_health_and_readiness(url: str) -> None:
    assert httpx.get(url + "/healthz", timeout=10).status_code == 200
    assert httpx.get(url + "/livez", timeout=10).status_code == 200
    assert httpx.get(url + "/readyz", timeout=10).status_code == 200


def test_model_facts(url: str, server: dict) -> None:
    facts = httpx.get(url + "/model", timeout=10).json()
    assert facts["ready"] is True
    assert facts["version"] == str(server["summary"]["version"])
    assert facts["gate_metric"] == "wape" and facts["gate_passed"] is True
    assert 0 <= facts["gate_value"] < facts["gate_threshold"]
    assert facts["trained_on"] > 0 and facts["train_end"]
    assert facts["image_encoder"] == "efficientnet-lite0-onnx" and facts["text_encoder"] == "use-m3"
    catalogue = pd.read_parquet(server["sample"] / "catalogue.parquet")
    assert facts["categories"] == sorted(catalogue["category"].unique().tolist())


def test_docs_page_and_schema_document_the_apis(url: str, server: dict) -> None:
    page = httpx.get(url + "/docs", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "trialcast API" in page.text and "googletagmanager" not in page.text  # our own page (issue 13)
    schema = httpx.get(url + "/docs.json", timeout=10)
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for route in ("/predict", "/predict_batch", "/model"):
        assert route in paths, sorted(paths)
    form = paths["/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    # The picture and the cost price are optional in the form: the model decides (serving.predictor).
    assert "title" in form["required"] and not {"image", "cost_price"} & set(form["required"])
    assert form["properties"]["image"]["format"] == "binary"
    assert form["properties"]["title"]["maxLength"] == server["settings"].max_text_chars
    assert "items" in str(paths["/predict_batch"]["post"]["requestBody"])
