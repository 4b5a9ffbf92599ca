"""The launch tracking page at ``/track``, end to end: two SKUs forecast by the real service, their
first days of sales sent to ``POST /actuals``, then the page in headless Chromium (Chinese by
default, English by the toggle) lists them with the right signals and the live error."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def launched(server: dict, sample_dir: Path) -> dict[str, str]:
    """Two forecast SKUs: one selling double its forecast for 3 days, one a tenth (forecast id ->
    the signal it must get; page uploads carry no SKU id, so the forecast id is what identifies them)."""
    with open(sample_dir / "candidates.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))[:2]
    ids, actuals = {}, []
    for row, factor, signal in zip(rows, (2.0, 0.1), ("RESTOCK", "SLOW")):
        with open(sample_dir / row["image"], "rb") as picture:
            answer = httpx.post(server["url"] + "/predict", timeout=240, files={"image": picture}, data={
                "title": row["title"], "description": row["description"], "category": row["category"],
                "cost_price": row["cost_price"], "list_price": row["list_price"], "launch_date": "2025-07-01"}).json()
        ids[answer["forecast_id"]] = signal
        actuals += [{"forecast_id": answer["forecast_id"], "date": (date(2025, 7, 1) + timedelta(days=d)).isoformat(),
                     "units": factor * answer["forecast"]["curve"][d]} for d in range(3)]
    done = httpx.post(server["url"] + "/actuals", json={"rows": actuals}, timeout=30)
    assert done.status_code == 200, done.text
    return ids


def test_launches_api_lists_signals(server: dict, launched: dict[str, str]) -> None:
    body = httpx.get(server["url"] + "/launches", timeout=30).json()
    mine = {r["forecast_id"]: r for r in body["launches"] if r["forecast_id"] in launched}
    assert {f: r["signal"] for f, r in mine.items()} == launched
    assert all(r["days"] == 3 and len(r["daily_actual"]) == 3 for r in mine.values())
    assert body["serving_version"] in body["live"] or body["live"] == {}


def test_track_page_in_both_languages(server: dict, launched: dict[str, str], tmp_path_factory) -> None:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                f"--user-data-dir={tmp_path_factory.mktemp('track-profile')}", "--window-size=1366,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(server["url"] + "/track")
        first, second = (f"tr[data-forecast='{f}']" for f in launched)
        rows = WebDriverWait(driver, 60).until(
            lambda d: [r for r in d.find_elements(By.CSS_SELECTOR, "tr[data-forecast]") if r.get_attribute("data-forecast") in launched])
        words = {"RESTOCK": "补货", "SLOW": "滞销"}
        assert {r.get_attribute("data-forecast"): r.find_element(By.CSS_SELECTOR, ".signal").text for r in rows} == {
            f: words[s] for f, s in launched.items()}
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
        assert rows[0].find_elements(By.CSS_SELECTOR, "svg polyline")  # forecast vs actual curve
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOTS / "track-zh.png"))
        driver.find_element(By.ID, "lang-toggle").click()
        WebDriverWait(driver, 10).until(
            lambda d: d.find_element(By.CSS_SELECTOR, f"{first} .signal").text == "Restock")
        assert driver.find_element(By.CSS_SELECTOR, f"{second} .signal").text == "Slow"
        assert "Launched SKUs" in driver.find_element(By.ID, "launches-heading").text
        driver.save_screenshot(str(SCREENSHOTS / "track-en.png"))
    finally:
        driver.quit()
