"""Against the real service: a picture declaring 1 x 100,000 pixels is a 4xx naming its field
(``image``, ``image_base64``) while the workers' memory stays put and the next request answers;
a ``/batch`` table is the uploaded one whatever its zip holds; a lone CR in a quoted cell stays in
its cell; a running job's thumbnails answer 409; a bad ``picture_files`` part is named as such."""

from __future__ import annotations

import base64
import io
import struct
import time
import zipfile
import zlib
from pathlib import Path

import httpx
import pandas as pd
import pytest

BROWSER = httpx.Client(timeout=180)  # one browser: the jobs below are its own (its cookie)
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
GOOD_FIELDS = {"title": "2025夏季新款 蓝色纯棉宽松牛仔裤", "description": "夏季新款 牛仔裤", "cost_price": "65",
               "list_price": "139", "category": "牛仔裤", "launch_date": "2025-07-02", "channel": "web"}
GROWTH_MB = 50  # how much any process of the service may add to its peak while the crafted pictures are sent


def declared_png(width: int, height: int) -> bytes:
    """A 67-byte PNG whose header declares ``width`` x ``height`` (one row of pixels behind it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 2))
            + chunk(b"IEND", b""))


def peaks(server: dict) -> dict[int, int]:
    """Peak resident memory (VmHWM, kB) of every process of the service (its process group)."""
    group, found = server["process"].pid, {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            if int(Path(status.parent, "stat").read_text().rsplit(")", 1)[1].split()[2]) != group:
                continue
        except (OSError, ValueError, IndexError):
            continue  # a process that ended meanwhile
        found[int(status.parent.name)] = next((int(line.split()[1]) for line in text.splitlines()
                                                if line.startswith("VmHWM:")), 0)
    return found


@pytest.fixture(scope="module")
def sample(server: dict) -> dict:
    frame = pd.read_csv(server["sample"] / "candidates.csv", dtype=str, keep_default_na=False)
    return {"frame": frame, "picture": (server["sample"] / frame["image"].iloc[0]).read_bytes()}


def predict(url: str, picture: bytes, **kwargs) -> httpx.Response:
    return BROWSER.post(url + "/predict", data=GOOD_FIELDS, files={"image": ("p.png", picture, "image/png")}, **kwargs)


def test_a_picture_declaring_1_by_100000_is_refused_by_name_and_memory_holds(server: dict, sample: dict) -> None:
    url = server["url"]
    assert predict(url, sample["picture"]).status_code == 200  # warm: the model and encoders are loaded
    before = peaks(server)
    for width, height in ((1, 100_000), (100_000, 1), (1, 40_000_000)):
        refused = predict(url, declared_png(width, height))
        assert refused.status_code == 422, refused.text
        detail = refused.json()["detail"]
        assert [d["loc"][0] for d in detail] == ["image"] and f"{width}x{height}" in detail[0]["msg"], detail
        assert "10,000" in detail[0]["msg"] and detail[0]["code"] == "side_too_long"
    chinese = predict(url, declared_png(1, 100_000), headers=ZH).json()
    assert chinese["detail"][0]["msg"] == "图片有 1x100000 像素：有一边超过上限 10,000 像素"
    assert chinese["error"].startswith("商品图片：")
    batch = BROWSER.post(url + "/predict_batch", json={"items": [
        {**GOOD_FIELDS, "image_base64": base64.b64encode(declared_png(1, 100_000)).decode()},
        {**GOOD_FIELDS, "image_base64": base64.b64encode(sample["picture"]).decode()}]})
    assert batch.status_code == 200, batch.text
    first, second = batch.json()
    assert [(e["field"], e["code"]) for e in first["errors"]] == [("image_base64", "side_too_long")]
    assert second["ok"] is True  # its neighbour's picture never failed it
    after = peaks(server)
    grown = {pid: (after[pid] - kb) // 1024 for pid, kb in before.items() if pid in after}
    assert grown and max(grown.values()) < GROWTH_MB, grown
    assert server["process"].poll() is None
    assert predict(url, sample["picture"]).json()["ok"] is True


def _zip(entries: dict[str, bytes]) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return archive.getvalue()


def _wait(url: str, job_id: str) -> dict:
    deadline = time.monotonic() + 600
    while (job := BROWSER.get(f"{url}/batch/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    return job


def test_a_table_in_the_zip_never_replaces_the_uploaded_one(server: dict, sample: dict) -> None:
    url, frame = server["url"], sample["frame"]
    one = frame.head(1)
    xlsx = io.BytesIO()
    one.to_excel(xlsx, index=False)
    many = pd.concat([one] * 6_000, ignore_index=True).assign(sku_id=[f"Z{i}" for i in range(6_000)])
    pictures = _zip({one["image"].iloc[0]: sample["picture"], "candidates.csv": many.to_csv(index=False).encode()})
    response = BROWSER.post(url + "/batch", files=[("candidates", ("c.xlsx", xlsx.getvalue(), "application/octet-stream")),
                                                   ("pictures", ("pictures.zip", pictures, "application/zip"))])
    assert response.status_code == 202, response.text
    assert response.json()["total"] == 1
    job = _wait(url, response.json()["id"])
    assert job["status"] == "done" and job["total"] == job["done"] == 1, job
    rows = BROWSER.get(f"{url}/batch/{job['id']}/rows").json()["rows"]
    assert [r["sku_id"] for r in rows] == [one["sku_id"].iloc[0]] and rows[0]["ok"] is True


def test_a_lone_cr_in_a_quoted_cell_stays_in_its_cell(server: dict, sample: dict) -> None:
    url, frame = server["url"], sample["frame"].head(2)
    text = frame.to_csv(index=False, lineterminator="\r\n")
    title = frame["title"].iloc[0]
    broken = f"{title[:3]}\r{title[3:]}"
    text = text.replace(title, f'"{broken}"', 1)
    pictures = _zip({name: (server["sample"] / name).read_bytes() for name in frame["image"]})
    response = BROWSER.post(url + "/batch", files=[("candidates", ("c.csv", text.encode(), "text/csv")),
                                                   ("pictures", ("p.zip", pictures, "application/zip"))])
    assert response.status_code == 202 and response.json()["total"] == 2, response.text
    job = _wait(url, response.json()["id"])
    rows = BROWSER.get(f"{url}/batch/{job['id']}/rows").json()["rows"]
    assert [(r["sku_id"], r["title"], r["ok"]) for r in rows] == [
        (frame["sku_id"].iloc[0], broken, True), (frame["sku_id"].iloc[1], frame["title"].iloc[1], True)]


def test_a_running_jobs_thumbnails_answer_409_until_it_is_done(server: dict, sample: dict) -> None:
    url, frame = server["url"], sample["frame"]
    rows = pd.concat([frame] * (3_000 // len(frame) + 1), ignore_index=True).head(3_000)
    pictures = _zip({name: (server["sample"] / name).read_bytes() for name in frame["image"].unique()})
    response = BROWSER.post(url + "/batch", files=[("candidates", ("c.csv", rows.to_csv(index=False).encode(), "text/csv")),
                                                   ("pictures", ("p.zip", pictures, "application/zip"))])
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    try:
        thumbnail = BROWSER.get(f"{url}/batch/{job_id}/pictures/1.jpg", headers=ZH)
        status = BROWSER.get(f"{url}/batch/{job_id}").json()["status"]
        assert status in ("queued", "running"), "the job ended before the thumbnail was asked for"
        assert thumbnail.status_code == 409, thumbnail.text
        assert thumbnail.json()["detail"][0]["code"] == "job_not_finished"
    finally:
        BROWSER.post(f"{url}/batch/{job_id}/cancel")
        _wait(url, job_id)


def test_a_finished_jobs_thumbnail_is_a_jpeg(server: dict, sample: dict) -> None:
    url, frame = server["url"], sample["frame"].head(1)
    pictures = _zip({frame["image"].iloc[0]: sample["picture"]})
    response = BROWSER.post(url + "/batch", files=[("candidates", ("c.csv", frame.to_csv(index=False).encode(), "text/csv")),
                                                   ("pictures", ("p.zip", pictures, "application/zip"))])
    job = _wait(url, response.json()["id"])
    thumbnail = BROWSER.get(f"{url}/batch/{job['id']}/pictures/1.jpg")
    assert thumbnail.status_code == 200 and thumbnail.content.startswith(b"\xff\xd8")


def test_a_picture_files_part_that_is_not_a_file_is_named_picture_files(server: dict, sample: dict) -> None:
    frame = sample["frame"].head(1)
    response = BROWSER.post(server["url"] + "/batch", headers=ZH,
                            files=[("candidates", ("c.csv", frame.to_csv(index=False).encode(), "text/csv")),
                                   ("picture_files", (None, "not a file"))])
    assert 400 <= response.status_code < 500, response.text
    fields = [d["loc"][0] for d in response.json()["detail"]]
    assert fields and set(fields) == {"picture_files"}, response.json()
    assert "0" not in response.json()["error"].split("：")[0] and response.json()["error"].startswith("图片文件")


def test_a_job_refuses_a_table_over_its_limits_before_scoring_a_row(tmp_path: Path) -> None:
    """The limits hold for the table a job reads, not only for the upload that was checked."""
    from serving.batch import score_file

    table = tmp_path / "candidates.csv"
    table.write_text("title,cost_price,image\na,1,a.png\nb,2,b.png\nc,3,c.png\n", encoding="utf-8")
    with pytest.raises(ValueError, match="the file has 3 rows, over the limit of 2 per job"):
        score_file(table, tmp_path / "scores.parquet", None, max_rows=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"the file is {table.stat().st_size:,} bytes, over the limit of 10"):
        score_file(table, tmp_path / "scores.parquet", None, max_bytes=10)  # type: ignore[arg-type]
    assert not (tmp_path / "scores.parquet").exists() and not (tmp_path / "scores.parquet.parts").exists()


def test_an_error_is_named_by_its_field_not_its_position() -> None:
    from serving.localise import localise_error_body

    body = {"error": "x", "detail": [{"loc": ["picture_files", "0"], "msg": "Expected UploadFile, received: <class 'str'>"}]}
    shaped = localise_error_body(body, "zh")
    assert shaped["error"].startswith("图片文件：") and shaped["detail"][0]["loc"] == ["picture_files", "0"]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_a_quoted_lone_cr_stays_in_its_cell_whatever_the_line_ends(tmp_path: Path, newline: str, encoding: str) -> None:
    from features.catalogue import read_table_format

    lines = ["sku_id,title,cost_price,image", 'A1,"白色\rT恤",45,a.png', 'A2,"x\r",46,b.png', "A3,plain,47,c.png"]
    path = tmp_path / "c.csv"
    path.write_bytes((newline.join(lines) + newline).encode(encoding))
    frame, _ = read_table_format(path)
    assert frame.to_dict("records") == [
        {"sku_id": "A1", "title": "白色\rT恤", "cost_price": "45", "image": "a.png"},
        {"sku_id": "A2", "title": "x\r", "cost_price": "46", "image": "b.png"},
        {"sku_id": "A3", "title": "plain", "cost_price": "47", "image": "c.png"}]
