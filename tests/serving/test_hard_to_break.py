"""Issue 14, against the real server: no input harms another request, malformed forms are 4xx,
implausible values are refused by name, every refusal has the one error shape and one log line,
and the exposure guards (Host, cross-site, security headers) hold.

Each test reproduces a defect the issue found on the landed service (500s, a poisoned batch, a
1e308 cost answered GO, a numeric launch date read as 1970-01-01, tracebacks in the log)."""

from __future__ import annotations

import base64
import io
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pandas as pd
import pytest
from PIL import Image

from features import messages

TIMEOUT = 300
FIELDS = {"title": "2025夏季新款 蓝色纯棉宽松牛仔裤 Blue Cotton Jeans", "description": "夏季新款 牛仔裤",
          "cost_price": "65", "list_price": "139", "category": "牛仔裤", "launch_date": "2025-07-02", "channel": "web"}


def dds_with_unknown_pixel_format() -> bytes:
    """A DDS header whose pixel-format flags Pillow does not implement: ``Image.open(...).load()``
    raises NotImplementedError (the decoder failure that used to escape as a 500)."""
    pixel_format = struct.pack("<IIIIIIII", 32, 0x4000_0000, 0, 0, 0, 0, 0, 0)
    header = struct.pack("<IIIIIII", 124, 0x1007, 8, 8, 0, 0, 0) + bytes(44) + pixel_format + bytes(20)
    return b"DDS " + header + bytes(256)


def avif() -> bytes:
    """A valid AVIF: a format outside the allow-list (Pillow's AVIF decoder raises RuntimeError on
    corrupt files), refused before any decoder runs."""
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(buffer, format="AVIF")
    return buffer.getvalue()


def test_the_dds_really_breaks_pillow() -> None:
    """The control: without the allow-list this file raises NotImplementedError inside Pillow."""
    with pytest.raises(NotImplementedError), Image.open(io.BytesIO(dds_with_unknown_pixel_format())) as image:
        image.load()


@pytest.fixture(scope="module")
def url(server: dict) -> str:
    return server["url"]


@pytest.fixture(scope="module")
def picture(server: dict) -> bytes:
    first = pd.read_csv(server["sample"] / "candidates.csv", dtype=str, keep_default_na=False).iloc[0]
    return (server["sample"] / first["image"]).read_bytes()


def refused(response: httpx.Response, status: int | tuple[int, ...], field: str, *words: str) -> dict:
    """The one error shape: {"error": "field: reason", "detail": [{"loc": [field], "msg", "type"}]}."""
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text[:400])
    body = response.json()
    assert isinstance(body, dict) and isinstance(body["error"], str), body
    assert [d["loc"] for d in body["detail"]] == [[field]], body
    # no pydantic URLs, no inputs echoed; the message code and its parameters (serving/localise.py)
    assert {"loc", "msg", "type"} <= set(body["detail"][0]) <= {"loc", "msg", "type", "code", "params"}, body
    said = "record" if field == "body" else field  # a request body as a whole is "the record" to people
    assert body["error"].startswith(f"{messages.field_name(said, 'en')}: "), body  # the field as people call it
    for word in words:
        assert word.lower() in body["detail"][0]["msg"].lower(), (word, body)
    return body


def still_serving(url: str, picture: bytes) -> None:
    response = httpx.post(url + "/predict", data=FIELDS, files={"image": ("p.png", picture, "image/png")},
                          timeout=TIMEOUT)
    assert response.status_code == 200 and response.json()["ok"], response.text[:300]


# ---------------------------------------------------------------- one bad picture, many clients
@pytest.mark.parametrize("name,data", [("dds", dds_with_unknown_pixel_format()), ("avif", avif())])
def test_unusual_picture_formats_are_a_4xx_naming_the_image(url: str, picture: bytes, name: str, data: bytes) -> None:
    response = httpx.post(url + "/predict", data=FIELDS, files={"image": (f"p.{name}", data, "image/png")},
                          timeout=TIMEOUT)
    refused(response, 422, "image", "not a picture", "JPEG")
    still_serving(url, picture)


def test_one_bad_picture_in_a_merged_batch_fails_only_its_own_item(url: str, picture: bytes) -> None:
    """The issue's 40-of-40: adaptive batching merges concurrent /predict_batch requests into one
    call; one DDS item among them made every merged request answer 500. Now 40 innocent clients
    and 4 sending the DDS run at once: every innocent item is ok, every DDS item is its own
    ``ok: false`` naming ``image_base64``."""
    good = base64.b64encode(picture).decode()
    bad = base64.b64encode(dds_with_unknown_pixel_format()).decode()
    start = threading.Barrier(44)

    def client(i: int) -> tuple[int, int, list]:
        item = {**FIELDS, "sku_id": f"c{i}", "image_base64": bad if i % 11 == 0 else good}
        start.wait()
        response = httpx.post(url + "/predict_batch", json={"items": [item]}, timeout=TIMEOUT)
        return i, response.status_code, response.json()

    with ThreadPoolExecutor(44) as pool:
        results = list(pool.map(client, range(44)))
    innocent = [r for r in results if r[0] % 11 != 0]
    guilty = [r for r in results if r[0] % 11 == 0]
    assert len(innocent) == 40 and len(guilty) == 4
    failed = [(i, status, body) for i, status, body in innocent if status != 200 or not body[0]["ok"]]
    assert failed == [], failed[:3]
    for i, status, body in guilty:
        assert status == 200, body
        assert body[0]["sku_id"] == f"c{i}" and body[0]["ok"] is False
        assert [e["field"] for e in body[0]["errors"]] == ["image_base64"], body


def test_batch_keeps_every_row_around_a_bad_picture(url: str, picture: bytes) -> None:
    good = base64.b64encode(picture).decode()
    items = [{**FIELDS, "sku_id": "a", "image_base64": good},
             {**FIELDS, "sku_id": "dds", "image_base64": base64.b64encode(dds_with_unknown_pixel_format()).decode()},
             {**FIELDS, "sku_id": "avif", "image_base64": base64.b64encode(avif()).decode()},
             {**FIELDS, "sku_id": "b", "image_base64": good}]
    answers = httpx.post(url + "/predict_batch", json={"items": items}, timeout=TIMEOUT).json()
    assert [(a["sku_id"], a["ok"]) for a in answers] == [("a", True), ("dds", False), ("avif", False), ("b", True)]


# ---------------------------------------------------------------- malformed forms
BOUNDARY = "x-boundary"


def post_raw(url: str, body: bytes) -> httpx.Response:
    return httpx.post(url + "/predict", content=body, timeout=TIMEOUT,
                      headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})


def test_a_part_without_a_name_is_400(url: str, picture: bytes) -> None:
    """Used to be a 500 (``KeyError: b'name'`` in Starlette's form parser)."""
    body = f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--{BOUNDARY}--\r\n".encode()
    refused(post_raw(url, body), 400, "form", "no name")
    still_serving(url, picture)


def test_too_many_parts_is_413(url: str, picture: bytes) -> None:
    """Used to be a 500 (Starlette's limit of 1,000 parts raised inside BentoML)."""
    body = b"".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nx\r\n'.encode()
                    for i in range(1_200)) + f"--{BOUNDARY}--\r\n".encode()
    refused(post_raw(url, body), 413, "form", "parts")
    still_serving(url, picture)


# ---------------------------------------------------------------- plausible values only
@pytest.mark.parametrize("field,value,words", [
    ("cost_price", "90000000000000000", ("between",)),  # 1e308 answered GO with a break-even of 0 units
    ("cost_price", "0.000000001", ("between",)),        # 1e-320 answered 1.3e168 units
    ("list_price", "90000000000000000", ("between",)),
    ("cost_price", "1e308", ("digits 0-9",)),           # no exponents (features.schema.NUMBER_TEXT)
    ("launch_date", "0001-01-01", ("between",)),
    ("launch_date", "9999-12-31", ("between",)),
    ("launch_date", "20250702", ("not a date",)),
])
def test_implausible_values_are_refused_by_name(url: str, picture: bytes, field: str, value: str, words) -> None:
    response = httpx.post(url + "/predict", data={**FIELDS, field: value},
                          files={"image": ("p.png", picture, "image/png")}, timeout=TIMEOUT)
    refused(response, (400, 422), field, *words)


def test_batch_refuses_numeric_dates_and_huge_prices_per_item(url: str, picture: bytes) -> None:
    """A numeric launch date (20250702) in /predict_batch silently became 1970-01-01 (GO -> REVIEW)."""
    good = base64.b64encode(picture).decode()
    items = [{**FIELDS, "sku_id": "date", "launch_date": 20250702, "image_base64": good},
             {**FIELDS, "sku_id": "cost", "cost_price": 1e308, "list_price": None, "image_base64": good},
             {**FIELDS, "sku_id": "ok", "image_base64": good}]
    answers = {a["sku_id"]: a for a in httpx.post(url + "/predict_batch", json={"items": items}, timeout=TIMEOUT).json()}
    assert [e["field"] for e in answers["date"]["errors"]] == ["launch_date"]
    assert "not a date" in answers["date"]["errors"][0]["reason"]
    assert [e["field"] for e in answers["cost"]["errors"]] == ["cost_price"]
    assert answers["ok"]["ok"] is True


def test_lone_surrogate_in_json_is_refused_not_500(url: str) -> None:
    body = b'{"items": [{"title": "a\\ud800b", "cost_price": 10}]}'
    response = httpx.post(url + "/predict_batch", content=body, headers={"content-type": "application/json"},
                          timeout=TIMEOUT)
    refused(response, 400, "body", "json")


# ---------------------------------------------------------------- one shape, one log line
def test_refusals_log_one_line_not_a_traceback(server: dict, url: str, picture: bytes) -> None:
    log = server["log"]
    before = log.read_bytes().count(b"Traceback")
    for value in ("cheap", "-1", "1e308"):
        httpx.post(url + "/predict", data={**FIELDS, "cost_price": value},
                   files={"image": ("p.png", picture, "image/png")}, timeout=TIMEOUT)
    post_raw(url, f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nv\r\n--{BOUNDARY}--\r\n".encode())
    httpx.post(url + "/predict_batch", json={"items": "everything"}, timeout=TIMEOUT)
    text = log.read_bytes()
    assert text.count(b"Traceback") == before, text[-3000:].decode(errors="replace")
    assert b"refused" in text


# ---------------------------------------------------------------- exposure
def test_every_answer_carries_the_security_headers(url: str) -> None:
    for path in ("/", "/healthz", "/model", "/docs", "/docs.json", "/no-such-page"):
        headers = httpx.get(url + path, timeout=30).headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, (path, csp)
        assert "http:" not in csp and "https:" not in csp and "*" not in csp, csp  # no other origin
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path
        assert headers["x-frame-options"] == "DENY", path


def test_a_foreign_host_header_is_refused(url: str) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example."""
    refused(httpx.get(url + "/model", headers={"host": "evil.example"}, timeout=30), 400, "host", "evil.example")
    assert httpx.get(url + "/model", headers={"host": "localhost"}, timeout=30).status_code == 200


@pytest.mark.parametrize("headers", [{"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"},
                                     {"origin": "http://evil.example"}, {"origin": "null"}])
def test_cross_site_state_changing_requests_are_refused(url: str, picture: bytes, headers: dict) -> None:
    response = httpx.post(url + "/predict", data=FIELDS, files={"image": ("p.png", picture, "image/png")},
                          headers=headers, timeout=TIMEOUT)
    refused(response, 403, "origin", "cross-site")
    same = httpx.post(url + "/predict", data=FIELDS, files={"image": ("p.png", picture, "image/png")},
                      headers={"sec-fetch-site": "same-origin", "origin": url}, timeout=TIMEOUT)
    assert same.status_code == 200, same.text[:300]


def test_a_field_given_twice_is_400(url: str, picture: bytes) -> None:
    """Which of two launch dates counted was the parser's choice (the last); now it is refused."""
    response = httpx.post(url + "/predict", data=FIELDS, timeout=TIMEOUT,
                          files=[("image", ("p.png", picture, "image/png")), ("launch_date", (None, "2025-09-01"))])
    refused(response, 400, "launch_date", "more than once")


# ---------------------------------------------------------------- the batch tools: a bad picture is that row's error
def _with_bad_pictures(sample, folder, rows: int = 4):
    """The first candidates plus a DDS and an AVIF row, pictures beside them."""
    (folder / "images").mkdir(parents=True)
    frame = pd.read_csv(sample / "candidates.csv", dtype=str, keep_default_na=False).head(rows)
    import shutil

    for name in frame["image"]:
        shutil.copy(sample / name, folder / name)
    (folder / "images" / "bad.dds").write_bytes(dds_with_unknown_pixel_format())
    (folder / "images" / "bad.avif").write_bytes(avif())
    bad = [{**frame.iloc[0].to_dict(), "sku_id": "DDS", "image": "images/bad.dds"},
           {**frame.iloc[0].to_dict(), "sku_id": "AVIF", "image": "images/bad.avif"}]
    return pd.concat([frame.iloc[:2], pd.DataFrame(bad), frame.iloc[2:]], ignore_index=True)


def test_score_turns_a_bad_picture_into_that_rows_error(server: dict, cli, tmp_path) -> None:
    """``trialcast score`` crashed on the DDS (traceback, no output; a rerun crashed on the same chunk)."""
    frame = _with_bad_pictures(server["sample"], tmp_path / "batch")
    path = tmp_path / "batch" / "candidates.csv"
    frame.to_csv(path, index=False)
    cli.run_score(path, tmp_path / "scores.csv", 2)
    scores = pd.read_csv(tmp_path / "scores.csv", dtype={"error": str})
    assert scores["sku_id"].tolist() == frame["sku_id"].tolist()  # no row lost, in order
    errors = dict(zip(scores["sku_id"], scores["error"]))
    assert "image" in errors["DDS"] and "not a picture" in errors["DDS"]
    assert "image" in errors["AVIF"] and "not a picture" in errors["AVIF"]
    good = scores[~scores["sku_id"].isin(["DDS", "AVIF"])]
    assert good["error"].isna().all() and good["decision"].notna().all()


def test_embed_names_the_row_with_a_bad_picture(server: dict, cli, tmp_path) -> None:
    """``trialcast embed`` crashed with a traceback; now the catalogue check names row and field."""
    import subprocess

    history = pd.read_parquet(server["sample"] / "catalogue.parquet").head(4)
    folder = tmp_path / "history"
    (folder / "images").mkdir(parents=True)
    import shutil

    for name in history["image"]:
        shutil.copy(server["sample"] / name, folder / name)
    (folder / "images" / "bad.dds").write_bytes(dds_with_unknown_pixel_format())
    history.loc[2, "image"] = "images/bad.dds"
    history.to_parquet(folder / "catalogue.parquet")
    done = subprocess.run(cli.command("embed", str(folder / "catalogue.parquet")), env=cli.env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 2, (done.stdout[-1000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    assert "image" in done.stderr and "not a picture" in done.stderr, done.stderr[-1000:]


def test_a_web_job_keeps_every_row_around_a_bad_picture_and_escapes_formulas(url: str, picture: bytes) -> None:
    """A web batch job lost all its rows on one DDS picture; and titles such as ``=HYPERLINK(...)``
    came back unescaped in the scores CSV planners open in Excel. Now the DDS row is that row's
    error, the others are scored, and the formula is written behind an apostrophe."""
    import time

    formula = '=HYPERLINK("http://evil.example/x","click")'
    table = pd.DataFrame([{**FIELDS, "sku_id": "GOOD-1", "image": "good.png"},
                          {**FIELDS, "sku_id": "DDS", "image": "bad.dds"},
                          {**FIELDS, "sku_id": "FORMULA", "title": formula, "image": "good.png"}]).to_csv(index=False)
    with httpx.Client(base_url=url, timeout=TIMEOUT) as browser:
        created = browser.post("/batch", files=[("candidates", ("c.csv", table.encode(), "text/csv")),
                                                ("picture_files", ("good.png", picture, "image/png")),
                                                ("picture_files", ("bad.dds", dds_with_unknown_pixel_format(), "image/x-dds"))])
        assert created.status_code == 202, created.text
        job_id, deadline = created.json()["id"], time.monotonic() + 600
        while (job := browser.get(f"/batch/{job_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.3)
        assert job["status"] == "done" and job["summary"]["scored"] == 2 and job["summary"]["failed"] == 1, job
        rows = {r["sku_id"]: r for r in browser.get(f"/batch/{job_id}/rows").json()["rows"]}
        assert rows["GOOD-1"]["ok"] and rows["FORMULA"]["ok"] and not rows["DDS"]["ok"]
        assert any(e["field"] == "image" for e in rows["DDS"]["errors"]), rows["DDS"]
        scores = browser.get(f"/batch/{job_id}/scores.csv").content.decode("utf-8-sig")
    cells = set(pd.read_csv(io.StringIO(scores), dtype=str, keep_default_na=False).to_numpy().ravel())
    assert "'" + formula in cells and formula not in cells


def test_twenty_concurrent_batches_are_all_answered(url: str, picture: bytes) -> None:
    """20 concurrent /predict_batch requests got 15-16 answers of 503 ("process is overloaded"):
    BentoML's batcher shed them past its latency budget. Now all 20 are answered, every item ok."""
    item = {**FIELDS, "image_base64": base64.b64encode(picture).decode()}
    barrier = threading.Barrier(20)

    def one(k: int) -> tuple[int, int]:
        body = {"items": [{**item, "sku_id": f"c{k}-{j}"} for j in range(8)]}
        barrier.wait()
        response = httpx.post(url + "/predict_batch", json=body, timeout=TIMEOUT)
        return response.status_code, sum(bool(a.get("ok")) for a in response.json()) if response.status_code == 200 else 0

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    assert [status for status, _ in results] == [200] * 20, results
    assert sum(ok for _, ok in results) == 160
