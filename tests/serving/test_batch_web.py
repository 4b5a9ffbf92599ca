"""The web batch flow and the answers in the language asked, against the real service: a GBK CSV, a
semicolon CSV (pictures as files) and an Excel file score exactly like the UTF-8 CSV with a zip; the
template reads back as a candidates table; /predict and /predict_batch speak Chinese when asked."""

from __future__ import annotations

import io
import re
import time
import zipfile
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import httpx
import pandas as pd
import pytest

from features.catalogue import read_table_format

# One browser: batch jobs and kept forecasts are its own (its trialcast_client cookie, issue 14 item 7).
BROWSER = httpx.Client()

CJK = re.compile(r"[\u4e00-\u9fff]")
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


def run_job(url: str, files: list) -> list[dict]:
    response = BROWSER.post(url + "/batch", files=files, timeout=120)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 600
    while (job := BROWSER.get(f"{url}/batch/{job_id}", timeout=30).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["status"] == "done", job
    return BROWSER.get(f"{url}/batch/{job_id}/rows", timeout=60).json()["rows"]


def test_files_as_people_have_them_score_like_the_utf8_one(server: dict, sample_dir: Path) -> None:
    frame = pd.read_csv(sample_dir / "candidates.csv", dtype=str, keep_default_na=False).head(6)
    frame.loc[2, "cost_price"] = "-4"  # one bad row, named in every variant
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name in frame["image"]:
            zf.write(sample_dir / name, name)
    pictures = ("pictures", ("pictures.zip", archive.getvalue(), "application/zip"))
    by_name = [("picture_files", (Path(n).name, (sample_dir / n).read_bytes(), "image/png")) for n in frame["image"]]
    xlsx = io.BytesIO()
    frame.to_excel(xlsx, index=False)
    variants = {
        "utf8": [("candidates", ("c.csv", frame.to_csv(index=False).encode(), "text/csv")), pictures],
        "gbk": [("candidates", ("c.csv", frame.to_csv(index=False).encode("gbk"), "text/csv")), pictures],
        "semicolon": [("candidates", ("c.csv", frame.to_csv(index=False, sep=";").encode("utf-8-sig"), "text/csv")),
                      *by_name],
        "xlsx": [("candidates", ("c.xlsx", xlsx.getvalue(), "application/octet-stream")), pictures],
    }
    results = {name: run_job(server["url"], files) for name, files in variants.items()}
    keys = ("sku_id", "title", "ok", "p10", "p50", "p90", "break_even", "decision", "reasons")
    reference = [{k: r[k] for k in keys} for r in results["utf8"]]
    assert [r["ok"] for r in reference] == [True, True, False, True, True, True]
    assert CJK.search(reference[0]["title"])  # the Chinese copy came through every decoding
    for name, rows in results.items():
        assert [{k: r[k] for k in keys} for r in rows] == reference, name
        assert [e["code"] for e in rows[2]["errors"]] == ["not_positive"], name


def test_the_template_is_a_candidates_table(server: dict, tmp_path: Path) -> None:
    for kind in ("csv", "xlsx"):
        response = BROWSER.get(f"{server['url']}/template.{kind}", timeout=30)
        assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
        path = tmp_path / f"template.{kind}"
        path.write_bytes(response.content)
        frame, _ = read_table_format(path)
        assert list(frame.columns)[:2] == ["sku_id", "launch_date"] and len(frame) == 1
        assert frame["category"].iloc[0] in BROWSER.get(server["url"] + "/model", timeout=30).json()["categories"]
        assert float(frame["cost_price"].iloc[0]) > 0 and frame["image"].iloc[0]
    assert BROWSER.get(f"{server['url']}/template.csv", timeout=30).content.startswith(b"\xef\xbb\xbf")


def test_predict_speaks_the_language_asked(server: dict, sample_dir: Path) -> None:
    row = pd.read_csv(sample_dir / "candidates.csv", dtype=str, keep_default_na=False).iloc[4]
    fields = {k: row[k] for k in ("title", "description", "cost_price", "list_price", "category", "launch_date", "channel")}
    files = {"image": ("sku.png", (sample_dir / row["image"]).read_bytes(), "image/png")}
    url = server["url"] + "/predict"

    bad = BROWSER.post(url, data={**fields, "cost_price": "-5"}, files=files, headers=ZH, timeout=120)
    assert bad.status_code in (400, 422)
    detail = bad.json()["detail"][0]
    assert detail["loc"][0] == "cost_price" and detail["code"] == "not_positive" and detail["params"] == {"value": "-5"}
    assert detail["msg"] == "必须大于 0，收到 -5" and bad.json()["error"] == "成本价：必须大于 0，收到 -5"
    guarded = BROWSER.post(url, data=fields, files={"image": (None, "http://example.com/a.png")}, headers=ZH, timeout=120)
    assert guarded.json()["detail"][0]["code"] == "not_a_file" and CJK.search(guarded.json()["error"])  # the guards too
    english = BROWSER.post(url + "?lang=en", data={**fields, "cost_price": "-5"}, files=files, headers=ZH, timeout=120)
    assert english.json()["detail"][0]["msg"] == "must be positive, got -5"  # lang= wins over the header

    zh = BROWSER.post(url, data=fields, files=files, headers=ZH, timeout=120).json()
    en = BROWSER.post(url, data=fields, files=files, timeout=120).json()
    assert zh["lang"] == "zh" and en["lang"] == "en"
    assert CJK.search(zh["decision"]["message"]) and not CJK.search(en["decision"]["message"])
    assert zh["decision"]["message_en"] == en["decision"]["message"]
    assert CJK.search(zh["why"]["sentence"]) and zh["display"]["p50"] == en["display"]["p50"]
    display = zh["display"]
    whole = Decimal(repr(zh["forecast"]["p50"])).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert display["p50"] == f"{whole:,}"
    assert display["band"] == f"{display['p10']}–{display['p90']}"
    assert display["list_price"].startswith("¥") and display["top_similarity"].endswith("%")
    assert display["label"] in ("上新", "需人工判断", "不上新") and all(CJK.search(r) for r in display["reasons"])
    assert en["display"]["category"] != zh["display"]["category"] or not CJK.search(row["category"])
    assert zh["warnings"] == []  # the sample's own launch dates lie inside the history

    # kept whole: listed in the history and reopened as it was answered
    history = BROWSER.get(server["url"] + "/history", timeout=30).json()
    assert en["forecast_id"] in [f["id"] for f in history["forecasts"]]
    again = BROWSER.get(f"{server['url']}/forecasts/{en['forecast_id']}", timeout=30).json()
    assert again["forecast"] == en["forecast"] and again["reopened"]["forecast_id"] == en["forecast_id"]
    missing = BROWSER.get(f"{server['url']}/forecasts/{'0' * 32}", headers=ZH, timeout=30)
    assert missing.status_code == 404 and missing.json()["detail"][0]["msg"] == "找不到该预测记录"


def test_predict_batch_item_errors_in_chinese(server: dict) -> None:
    response = BROWSER.post(server["url"] + "/predict_batch", headers=ZH, timeout=120,
                          json={"items": [{"title": "t", "cost_price": "-2", "image_base64": "!!"}]})
    assert response.status_code == 200, response.text
    answer = response.json()[0]
    assert answer["ok"] is False
    assert {e["field"] for e in answer["errors"]} >= {"image_base64"}
    assert all(CJK.search(e["reason"]) and e["code"] != "other" for e in answer["errors"]), answer["errors"]


@pytest.mark.parametrize("path", ["/batch/0123456789abcdef0123456789abcdef", "/batch/nothex/rows"])
def test_unknown_jobs_are_404_in_words(server: dict, path: str) -> None:
    response = BROWSER.get(server["url"] + path, headers=ZH, timeout=30)
    assert response.status_code == 404 and response.json()["detail"][0]["msg"] == "找不到该批量任务"
