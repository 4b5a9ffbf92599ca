"""The merchandiser page at ``/``, end to end: headless Chromium (Selenium) against the real service.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser``). Screenshots land in
``test-artifacts/screenshots/`` at the repository root.
"""

from __future__ import annotations

import base64
import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LAPTOP = (1366, 900)
PHONE = (375, 812)
SLOW = 240  # seconds: the first forecast loads the encoders; CI machines can be busy

CHROME_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
)


# ---------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = CHROMIUM
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument(f"--window-size={LAPTOP[0]},{LAPTOP[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: WebDriver, server: dict) -> WebDriver:
    """A freshly loaded page at laptop size with no remembered language and an empty console log."""
    browser.set_window_size(*LAPTOP)
    browser.get(server["url"] + "/")
    browser.execute_script("localStorage.clear()")
    browser.get(server["url"] + "/")
    wait_for_model(browser)
    browser.get_log("browser")  # drop what earlier tests left
    return browser


@pytest.fixture(scope="module")
def candidates(sample_dir: Path) -> list[dict[str, str]]:
    with open(sample_dir / "candidates.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def wait(driver: WebDriver, condition, timeout: float = 30, message: str = ""):
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: condition(d), message)


def wait_for_model(driver: WebDriver) -> None:
    """The page has read GET /model: categories are in the select and the footer shows the facts."""
    wait(driver, lambda d: d.find_element(By.ID, "fact-version").is_displayed()
         and len(Select(d.find_element(By.ID, "category")).options) > 1, message="model facts never loaded")


def screenshot(driver: WebDriver, name: str) -> Path:
    """A full-page PNG (beyond the viewport) under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Capturing beyond the viewport lays the page out without a vertical scrollbar: use the full width.
    size = driver.execute_script("const d = document.documentElement;"
                                 "return [Math.max(d.scrollWidth, window.innerWidth), d.scrollHeight]")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}})
    path = SCREENSHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 1000
    return path


def console_errors(driver: WebDriver, *, allow_http_errors: bool = False) -> list[str]:
    """SEVERE console entries (script errors, failed loads); optionally ignoring expected 4xx answers."""
    out = []
    for entry in driver.get_log("browser"):
        if entry["level"] != "SEVERE":
            continue
        if allow_http_errors and "the server responded with a status of 4" in entry["message"]:
            continue
        out.append(entry["message"])
    return out


def set_value(driver: WebDriver, element_id: str, value: str) -> None:
    """Set an input the way a date picker would (typing into date inputs depends on the locale)."""
    driver.execute_script(
        "const e = document.getElementById(arguments[0]); e.value = arguments[1];"
        "e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true}));",
        element_id, value)


def type_into(driver: WebDriver, element_id: str, text: str) -> None:
    element = driver.find_element(By.ID, element_id)
    element.clear()
    element.send_keys(text)


def fill_sku(driver: WebDriver, row: dict[str, str], picture: Path, *, list_price: bool = True) -> None:
    driver.find_element(By.ID, "image").send_keys(str(picture))
    type_into(driver, "title", row["title"])
    type_into(driver, "description", row["description"])
    type_into(driver, "cost_price", row["cost_price"])
    type_into(driver, "list_price", row["list_price"] if list_price else "")
    Select(driver.find_element(By.ID, "category")).select_by_value(row["category"])
    Select(driver.find_element(By.ID, "channel")).select_by_value(row["channel"])
    set_value(driver, "launch_date", row["launch_date"])


def submit_sku(driver: WebDriver) -> None:
    driver.find_element(By.ID, "predict-btn").click()


def wait_for_answer(driver: WebDriver) -> WebElement:
    """Wait until the forecast is shown and the submit button is usable again."""
    wait(driver, lambda d: d.find_elements(By.ID, "decision-badge") and d.find_element(By.ID, "predict-btn").is_enabled()
         and "stale" not in d.find_element(By.ID, "result").get_attribute("class"), SLOW, "no forecast was shown")
    return driver.find_element(By.ID, "decision-badge")


def wait_for_thumbnails(driver: WebDriver, n: int) -> None:
    script = ("const imgs = [...document.querySelectorAll('#analogs img')];"
              "return imgs.length === arguments[0] && imgs.every(i => i.complete && i.naturalWidth > 0);")
    wait(driver, lambda d: d.execute_script(script, n), 60, "the analog thumbnails did not all load")


def number(text: str) -> float:
    return float(text.replace(",", "").strip())


def no_horizontal_scroll(driver: WebDriver) -> bool:
    return driver.execute_script(
        "const d = document.documentElement;"
        "return d.scrollWidth <= d.clientWidth && document.body.scrollWidth <= d.clientWidth;")


def error_text(driver: WebDriver, field: str) -> str:
    box = driver.find_element(By.ID, f"err-{field}")
    return box.text if box.is_displayed() else ""


def predict_via_api(server: dict, row: dict[str, str], picture: Path) -> dict:
    fields = {k: row[k] for k in ("title", "description", "cost_price", "list_price", "category", "launch_date", "channel")}
    response = httpx.post(server["url"] + "/predict", data=fields,
                          files={"image": (picture.name, picture.read_bytes(), "image/png")}, timeout=SLOW)
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------- tests
def test_single_sku_round_trip(page: WebDriver, server: dict, candidates, sample_dir: Path) -> None:
    row = candidates[0]
    picture = sample_dir / row["image"]
    fill_sku(page, row, picture)
    preview = page.find_element(By.ID, "preview")
    wait(page, lambda d: preview.is_displayed() and d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", preview), message="no picture preview")
    submit_sku(page)
    badge = wait_for_answer(page)
    expected = predict_via_api(server, row, picture)

    label = expected["decision"]["label"]
    assert badge.get_attribute("data-label") == label
    assert badge.text == label.replace("_", " ")
    assert f"badge-{label}" in badge.get_attribute("class")
    colour = page.execute_script("return getComputedStyle(arguments[0]).backgroundColor", badge)
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent")

    codes = [li.get_attribute("data-code") for li in page.find_elements(By.CSS_SELECTOR, "#reasons li")]
    assert codes == expected["decision"]["reasons"]
    for li in page.find_elements(By.CSS_SELECTOR, "#reasons li"):  # human labels, not codes
        assert li.text and li.text != li.get_attribute("data-code") and not li.text.startswith("reason.")
    assert page.find_element(By.ID, "decision-message").text == expected["decision"]["message"]

    forecast = expected["forecast"]
    assert number(page.find_element(By.ID, "p50").text) == pytest.approx(forecast["p50"], abs=0.051)
    low, high = page.find_element(By.ID, "band").text.split("–")
    assert (number(low), number(high)) == pytest.approx((forecast["p10"], forecast["p90"]), abs=0.051)
    assert number(page.find_element(By.ID, "break-even").text) == pytest.approx(
        expected["decision"]["break_even_units"], abs=0.51)

    chart = page.find_element(By.CSS_SELECTOR, "svg#curve-chart")
    assert chart.is_displayed() and chart.size["width"] > 200
    bars = chart.find_elements(By.CSS_SELECTOR, "rect.bar")
    assert len(forecast["curve"]) == 7 and len(bars) == 7
    heights = [float(b.get_attribute("height")) for b in bars]
    peak = max(range(7), key=lambda i: forecast["curve"][i])
    assert heights[peak] == max(heights) > 0

    cards = page.find_elements(By.CSS_SELECTOR, "#analogs li.analog")
    assert len(cards) == 5 == len(expected["analogs"])
    wait_for_thumbnails(page, 5)
    for card, analog in zip(cards, expected["analogs"]):
        img = card.find_element(By.TAG_NAME, "img")
        assert img.get_attribute("src").endswith(f"/analogs/{analog['sku_id']}.jpg")
        assert analog["sku_id"] in card.text and analog["title"] in card.text
        assert number(card.find_element(By.CLASS_NAME, "similarity").text) == pytest.approx(analog["similarity"], abs=0.006)
        assert number(card.find_element(By.CLASS_NAME, "sales").text) == pytest.approx(analog["sales"], abs=0.51)

    # the form still holds what was typed, so a merchandiser can tweak and resubmit
    assert page.find_element(By.ID, "title").get_attribute("value") == row["title"]
    assert page.find_element(By.ID, "image").get_property("files")
    assert no_horizontal_scroll(page)
    assert console_errors(page) == []
    screenshot(page, "single-sku-laptop")


def test_field_errors_keep_what_was_typed(page: WebDriver, server: dict, candidates, sample_dir: Path,
                                          tmp_path: Path) -> None:
    row = candidates[1]
    picture = sample_dir / row["image"]

    # 1. Client-side check: nothing is sent, the error sits next to the cost price.
    fill_sku(page, {**row, "cost_price": "-5"}, picture)
    submit_sku(page)
    assert "0" in error_text(page, "cost_price")
    assert page.find_element(By.ID, "cost_price").get_attribute("aria-invalid") == "true"
    assert page.find_elements(By.ID, "result-placeholder"), "a request went out despite the client-side check"

    # 2. The server is the authority: a category the page never offered (injected like a stale page
    #    or a tampered form would) passes the client checks and comes back as the service's 422.
    type_into(page, "cost_price", row["cost_price"])
    page.execute_script(
        "const s = document.getElementById('category'); s.add(new Option('Gadgets', 'Gadgets')); s.value = 'Gadgets';")
    submit_sku(page)
    wait(page, lambda d: error_text(d, "category"), SLOW, "the server's category error was not shown")
    assert "unknown category" in error_text(page, "category") and "Gadgets" in error_text(page, "category")
    assert error_text(page, "cost_price") == ""
    assert page.find_element(By.ID, "title").get_attribute("value") == row["title"]
    assert page.find_element(By.ID, "description").get_attribute("value") == row["description"]
    assert page.find_element(By.ID, "cost_price").get_attribute("value") == row["cost_price"]
    assert page.find_element(By.ID, "list_price").get_attribute("value") == row["list_price"]
    assert page.execute_script("return document.getElementById('image').files[0].name") == picture.name
    assert page.find_element(By.ID, "preview").is_displayed()
    assert page.find_elements(By.ID, "result-placeholder")
    screenshot(page, "field-error-server-category")

    # 3. BentoML's own validation (400): a title over the service's length limit.
    Select(page.find_element(By.ID, "category")).select_by_value(row["category"])
    set_value(page, "title", "长" * 5001)
    submit_sku(page)
    wait(page, lambda d: error_text(d, "title"), SLOW, "the service's title error was not shown")
    assert error_text(page, "category") == ""

    # 4. A file that is not a picture: the client only checks one is chosen, the service decodes it.
    type_into(page, "title", row["title"])
    fake = tmp_path / "not-a-picture.png"
    fake.write_text("just some text, not a PNG")
    page.find_element(By.ID, "image").send_keys(str(fake))
    submit_sku(page)
    wait(page, lambda d: error_text(d, "image"), SLOW, "the server's picture error was not shown")
    assert error_text(page, "title") == ""
    assert page.find_element(By.ID, "cost_price").get_attribute("value") == row["cost_price"]
    assert console_errors(page, allow_http_errors=True) == []

    # 5. Fixed: the same page answers without a reload and the errors go away.
    page.find_element(By.ID, "image").send_keys(str(picture))
    submit_sku(page)
    wait_for_answer(page)
    for field in ("image", "title", "cost_price", "category"):
        assert error_text(page, field) == ""


def test_batch_round_trip(page: WebDriver, server: dict, candidates, sample_dir: Path, tmp_path: Path) -> None:
    good = candidates[:5]
    bad = {**candidates[5], "sku_id": "BAD-ROW", "cost_price": "-3"}
    rows = [*good[:3], bad, *good[3:]]
    csv_path = tmp_path / "candidates.csv"
    with open(csv_path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(candidates[0]))
        writer.writeheader()
        writer.writerows(rows)
    zip_path = tmp_path / "pictures.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        for r in rows:
            zf.write(sample_dir / r["image"], r["image"])

    page.find_element(By.ID, "candidates").send_keys(str(csv_path))
    page.find_element(By.ID, "pictures").send_keys(str(zip_path))
    page.find_element(By.ID, "batch-btn").click()
    wait(page, lambda d: d.find_element(By.ID, "batch-status").is_displayed(), 30, "no batch progress shown")
    link = wait(page, lambda d: d.find_element(By.ID, "batch-link") if d.find_element(By.ID, "batch-link").is_displayed()
                else None, SLOW, "the batch job never finished")

    progress = page.find_element(By.ID, "batch-progress")
    assert progress.get_property("value") == progress.get_property("max") == len(rows)
    assert f"{len(rows)} / {len(rows)}" in page.find_element(By.ID, "batch-text").text
    assert not page.find_element(By.ID, "batch-message").is_displayed()

    response = httpx.get(link.get_attribute("href"), timeout=30)
    assert response.status_code == 200 and "text/csv" in response.headers["content-type"]
    scored = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["sku_id"] for r in scored] == [r["sku_id"] for r in rows]
    by_id = {r["sku_id"]: r for r in scored}
    assert "cost_price" in by_id["BAD-ROW"]["error"] and not by_id["BAD-ROW"]["decision"]
    for r in good:
        assert by_id[r["sku_id"]]["decision"] in {"GO", "REVIEW", "NO_GO"} and not by_id[r["sku_id"]]["error"]

    failed = page.find_elements(By.CSS_SELECTOR, "#batch-failed-rows tr")
    assert len(failed) == 1
    cells = [td.text for td in failed[0].find_elements(By.TAG_NAME, "td")]
    assert cells[0] == "4" and cells[1] == "BAD-ROW" and "cost_price" in cells[2]
    assert no_horizontal_scroll(page)
    assert console_errors(page) == []
    screenshot(page, "batch-done")


def test_language_switch_persists(page: WebDriver, server: dict, candidates, sample_dir: Path) -> None:
    def texts() -> dict[str, str]:
        return {
            "lang": page.find_element(By.TAG_NAME, "html").get_attribute("lang"),
            "heading": page.find_element(By.ID, "single-heading").text,
            "submit": page.find_element(By.ID, "predict-btn").text,
            "title_label": page.find_element(By.CSS_SELECTOR, "label[for=title]").text,
            "toggle": page.find_element(By.ID, "lang-toggle").text,
            "facts": page.find_element(By.ID, "model-facts").text,
        }

    zh = texts()
    assert zh["lang"] == "zh-CN" and zh["heading"] == "单个新品预测" and zh["submit"] == "预测"
    assert zh["title_label"].startswith("标题") and zh["toggle"] == "English" and "训练样本" in zh["facts"]

    # a forecast without a list price carries ASSUMED_LIST_PRICE: its label follows the language too
    row = candidates[2]
    fill_sku(page, row, sample_dir / row["image"], list_price=False)
    submit_sku(page)
    wait_for_answer(page)
    assumed = page.find_element(By.CSS_SELECTOR, "#reasons li[data-code=ASSUMED_LIST_PRICE]")
    assert assumed.text == "未填写售价，按默认加价率估算"
    zh_verdict = page.find_element(By.CLASS_NAME, "verdict-text").text
    screenshot(page, "language-zh")

    page.find_element(By.ID, "lang-toggle").click()
    en = texts()
    assert en["lang"] == "en" and en["heading"] == "Forecast one SKU" and en["submit"] == "Forecast"
    assert en["title_label"].startswith("Title") and en["toggle"] == "中文" and "trained on" in en["facts"]
    assumed = page.find_element(By.CSS_SELECTOR, "#reasons li[data-code=ASSUMED_LIST_PRICE]")
    assert assumed.text == "No list price given: a default markup was assumed"
    assert page.find_element(By.CLASS_NAME, "verdict-text").text not in ("", zh_verdict)
    assert page.find_element(By.ID, "title").get_attribute("value") == row["title"]  # switching keeps the form
    assert page.execute_script("return localStorage.getItem('trialcast.lang')") == "en"
    screenshot(page, "language-en")

    page.refresh()
    wait_for_model(page)
    assert texts() == en  # remembered across a reload
    page.find_element(By.ID, "lang-toggle").click()
    assert texts()["heading"] == "单个新品预测"
    page.refresh()
    wait_for_model(page)
    assert texts() == zh
    assert console_errors(page) == []


def test_phone_width_has_no_horizontal_scroll(page: WebDriver, server: dict, candidates, sample_dir: Path) -> None:
    page.set_window_size(*PHONE)
    page.refresh()
    wait_for_model(page)
    assert page.execute_script("return window.innerWidth") == PHONE[0]
    assert no_horizontal_scroll(page)

    row = candidates[3]
    fill_sku(page, row, sample_dir / row["image"])
    submit_sku(page)
    wait_for_answer(page)
    wait_for_thumbnails(page, 5)
    assert no_horizontal_scroll(page)

    # one column: the results sit below the form, and both fit the screen
    form = page.find_element(By.ID, "sku-form").rect
    result = page.find_element(By.ID, "result").rect
    assert result["y"] >= form["y"] + form["height"]
    for element_id in ("sku-form", "result", "curve-chart", "analogs", "batch-form", "model-facts"):
        rect = page.find_element(By.ID, element_id).rect
        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= PHONE[0] + 0.5, element_id
    assert page.find_element(By.ID, "lang-toggle").is_displayed()
    assert console_errors(page) == []
    screenshot(page, "single-sku-phone")
