"""The merchandiser page at ``/``, end to end: headless Chromium (Selenium) against the real service.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser``). Screenshots land in
``test-artifacts/screenshots/`` at the repository root.
"""

from __future__ import annotations

import base64
import csv
import io
import math
import re
import zipfile
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
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
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
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
    browser.get_log("performance")
    return browser


@pytest.fixture(scope="module")
def candidates(sample_dir: Path) -> list[dict[str, str]]:
    with open(sample_dir / "candidates.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def wait(driver: WebDriver, condition, timeout: float = 30, message: str = ""):
    """Until ``condition`` holds; an element the page re-rendered between finding and reading it
    (stale) is looked up again on the next poll, like one not there yet."""
    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: condition(d), message)


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


LABELS_ZH = {"GO": "上新", "REVIEW": "需人工判断", "NO_GO": "不上新"}
LABELS_EN = {"GO": "Go", "REVIEW": "A person decides", "NO_GO": "No go"}
GROUPS_ZH = {"analogs": "相似商品", "picture": "图片", "copy": "文案", "price": "价格", "category": "品类",
             "season": "季节", "channel": "渠道", "readout": "图文读出"}
GROUPS_EN = {"analogs": "Similar SKUs", "picture": "Picture", "copy": "Copy", "price": "Price", "category": "Category",
             "season": "Season", "channel": "Channel", "readout": "Picture & copy read-out", "attributes": "Attributes"}
CJK = re.compile(r"[\u4e00-\u9fff]")
CODE = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b")


def half_up(x: float, places: int = 0) -> Decimal:
    """Rounded as the browser's Intl.NumberFormat rounds (half away from zero, not Python's half to even)."""
    return Decimal(x).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def units_text(x: float) -> str:
    """How the page writes a unit count (whole units, thousands separators)."""
    return f"{half_up(x):,}"


def money_text(x: float) -> str:
    """How the page writes a price: ¥, thousands separators, cents only when there are any."""
    return f"¥{half_up(x):,}" if abs(x - round(x)) < 0.005 else f"¥{half_up(x, 2):,}"


def percent_text(x: float) -> str:
    """How the page writes a similarity: a whole percentage."""
    return f"{half_up(x * 100)}%"


def post_predict(server: dict, fields: dict[str, str], picture: bytes) -> dict:
    response = httpx.post(server["url"] + "/predict", data=fields,
                          files={"image": ("sku.png", picture, "image/png")}, timeout=SLOW)
    assert response.status_code == 200, response.text
    return response.json()


def result_text_without_analogs(driver: WebDriver) -> str:
    """What the page itself writes in the result (analog titles are catalogue data, often English)."""
    return driver.execute_script(
        "const c = document.getElementById('result').cloneNode(true);"
        "for (const n of c.querySelectorAll('#analogs')) n.remove();"
        "document.body.append(c); const s = c.innerText; c.remove(); return s;")


def assert_reads_chinese(driver: WebDriver, answer: dict) -> None:
    """The Chinese page shows no reason code and none of the English decision texts."""
    text = result_text_without_analogs(driver)
    assert not CODE.findall(text), CODE.findall(text)
    for code in answer["decision"]["reasons"]:
        assert code not in text
    assert answer["decision"]["message"] not in text
    assert answer["why"]["sentence"] not in text
    english = driver.execute_script(
        "return Object.entries(TEXT.en).filter(([k]) => /^(label|reason|verdict|lean|group|econ|why|nov|as|ov)\\./.test(k))"
        ".map(([, v]) => v.split('{')[0].trim()).filter((v) => v.length >= 4)")
    leaked = [e for e in english if e in text]
    assert not leaked, leaked
    for li in driver.find_elements(By.CSS_SELECTOR, "#reasons li"):
        assert CJK.search(li.text), li.text


def drawn_picture() -> bytes:
    """A red disc on white: unlike every picture in the sample's history."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (224, 224), (255, 255, 255))
    ImageDraw.Draw(image).ellipse((40, 40, 180, 180), fill=(220, 30, 40))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


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
    assert badge.text == LABELS_ZH[label]
    assert f"badge-{label}" in badge.get_attribute("class")
    colour = page.execute_script("return getComputedStyle(arguments[0]).backgroundColor", badge)
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent")

    codes = [li.get_attribute("data-code") for li in page.find_elements(By.CSS_SELECTOR, "#reasons li")]
    assert codes == expected["decision"]["reasons"]
    for li in page.find_elements(By.CSS_SELECTOR, "#reasons li"):  # human labels, not codes
        assert li.text and li.text != li.get_attribute("data-code") and not li.text.startswith("reason.")
    assert not page.find_elements(By.ID, "decision-message")  # the service's English sentence: English page only

    forecast = expected["forecast"]
    assert number(page.find_element(By.ID, "p50").text) == pytest.approx(forecast["p50"], abs=0.51)
    low, high = page.find_element(By.ID, "band").text.split("–")
    assert (number(low), number(high)) == pytest.approx((forecast["p10"], forecast["p90"]), abs=0.51)
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
        assert card.find_element(By.CLASS_NAME, "similarity").text == percent_text(analog["similarity"])
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
    # said in the page's language, with what was typed and the model's categories
    assert error_text(page, "category").startswith("未知品类 'Gadgets'；可选：") and "T恤" in error_text(page, "category")
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
    assert error_text(page, "title") == "有 5,001 个字符，超过上限 5,000"
    assert error_text(page, "category") == ""

    # 4. A file that is not a picture: the client only checks one is chosen, the service decodes it.
    type_into(page, "title", row["title"])
    fake = tmp_path / "not-a-picture.png"
    fake.write_text("just some text, not a PNG")
    page.find_element(By.ID, "image").send_keys(str(fake))
    submit_sku(page)
    wait(page, lambda d: error_text(d, "image"), SLOW, "the server's picture error was not shown")
    assert error_text(page, "image").startswith("不是本服务能读取的图片")
    assert error_text(page, "title") == ""
    assert page.find_element(By.ID, "cost_price").get_attribute("value") == row["cost_price"]
    assert console_errors(page, allow_http_errors=True) == []

    # 5. Fixed: the same page answers without a reload and the errors go away.
    page.find_element(By.ID, "image").send_keys(str(picture))
    submit_sku(page)
    wait_for_answer(page)
    for field in ("image", "title", "cost_price", "category"):
        assert error_text(page, field) == ""


def write_rows(path: Path, rows: list[dict[str, str]], *, encoding: str = "utf-8", delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding=encoding) as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def own_requests_only(driver: WebDriver, server: dict) -> list[str]:
    """Every request the page made since the log was last read (Chrome's network log): each must go
    to the service itself (or be a data: / blob: URL the page made locally). Returns the URLs."""
    import json
    from urllib.parse import urlsplit

    own = urlsplit(server["url"]).netloc
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    foreign = [u for u in urls if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).netloc != own]
    assert not foreign, foreign
    return urls


def test_batch_round_trip(page: WebDriver, server: dict, candidates, sample_dir: Path, tmp_path: Path) -> None:
    """A batch with a bad row and a formula-looking title: counts, a sortable and filterable table,
    the failed row in words, CSV (with a BOM) and Excel downloads, at desktop and phone widths."""
    import openpyxl

    good = candidates[:5]
    bad = {**candidates[5], "sku_id": "BAD-ROW", "cost_price": "-3"}
    formula = {**candidates[6], "sku_id": "FORMULA", "title": '=HYPERLINK("http://evil.example","click")'}
    rows = [*good[:3], bad, *good[3:], formula]
    csv_path = write_rows(tmp_path / "candidates.csv", rows)
    zip_path = tmp_path / "pictures.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        for r in rows:
            zf.write(sample_dir / r["image"], r["image"])

    page.find_element(By.ID, "candidates").send_keys(str(csv_path))
    page.find_element(By.ID, "pictures").send_keys(str(zip_path))
    page.find_element(By.ID, "batch-btn").click()
    wait(page, lambda d: d.find_element(By.ID, "batch-status").is_displayed(), 30, "no batch progress shown")
    wait(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#batch-result-rows tr")) == len(rows), SLOW,
         "the batch results never showed")
    job_id = page.current_url.split("job=")[1]
    # the job is this browser's (its HttpOnly trialcast_client cookie): read it as the same browser
    as_page = {"trialcast_client": page.get_cookie("trialcast_client")["value"]}
    api = httpx.get(f"{server['url']}/batch/{job_id}/rows", cookies=as_page, timeout=30).json()["rows"]
    by_id = {r["sku_id"]: r for r in api}

    progress = page.find_element(By.ID, "batch-progress")
    assert progress.get_property("value") == progress.get_property("max") == len(rows)
    assert f"{len(rows)} / {len(rows)}" in page.find_element(By.ID, "batch-text").text
    assert not page.find_element(By.ID, "batch-message").is_displayed()

    # counts by decision, from the rows themselves
    counts = {b.get_attribute("data-filter"): int(b.find_element(By.CLASS_NAME, "count-n").text)
              for b in page.find_elements(By.CSS_SELECTOR, "#batch-counts .count")}
    assert counts["ALL"] == len(rows) and counts["FAILED"] == 1
    for label in ("GO", "REVIEW", "NO_GO"):
        assert counts[label] == sum(r["decision"] == label for r in api)
    assert page.find_element(By.CSS_SELECTOR, "#batch-counts [data-filter=GO] .count-label").text == "上新"

    # the table: whole units, the decision and reasons in words, the closest analog with its sales
    for tr in page.find_elements(By.CSS_SELECTOR, "#batch-result-rows tr"):
        r = api[int(tr.get_attribute("data-row")) - 1]
        if not r["ok"]:
            assert "成本价" in tr.text and "必须大于 0" in tr.text
            continue
        assert tr.find_element(By.CSS_SELECTOR, "td.p50").text == f"{r['p50']:,} ({r['p10']:,}–{r['p90']:,})"
        assert tr.find_element(By.CSS_SELECTOR, "td.be").text == f"{r['break_even']:,}"
        assert tr.find_element(By.CSS_SELECTOR, ".badge").text == LABELS_ZH[r["decision"]]
        assert CJK.search(tr.find_element(By.CLASS_NAME, "reasons-cell").text)
        top = r["top_analog"]
        assert tr.find_element(By.CLASS_NAME, "analog-cell").text == (
            f"{top['sku_id']}（相似度 {percent_text(top['similarity'])}，卖出 {units_text(top['sales'])} 件）")
    wait(page, lambda d: d.execute_script("return [...document.querySelectorAll('#batch-result-rows img')]"
                                          ".every(i => i.complete && i.naturalWidth > 0)"), 60, "thumbnails missing")

    # filter by decision, sort by P50 both ways
    page.find_element(By.CSS_SELECTOR, "#batch-counts [data-filter=FAILED]").click()
    shown = page.find_elements(By.CSS_SELECTOR, "#batch-result-rows tr")
    assert [tr.get_attribute("data-decision") for tr in shown] == ["FAILED"]
    page.find_element(By.CSS_SELECTOR, "#batch-counts [data-filter=ALL]").click()
    page.find_element(By.CSS_SELECTOR, "#batch-results th[data-sort=p50]").click()
    p50s = [api[int(tr.get_attribute("data-row")) - 1]["p50"] for tr in page.find_elements(By.CSS_SELECTOR, "#batch-result-rows tr")]
    ok = [x for x in p50s if x is not None]
    assert ok == sorted(ok)
    page.find_element(By.CSS_SELECTOR, "#batch-results th[data-sort=p50]").click()
    p50s = [api[int(tr.get_attribute("data-row")) - 1]["p50"] for tr in page.find_elements(By.CSS_SELECTOR, "#batch-result-rows tr")]
    assert [x for x in p50s if x is not None] == sorted(ok, reverse=True)

    # the failed row, in words
    failed = page.find_elements(By.CSS_SELECTOR, "#batch-failed-rows tr")
    assert len(failed) == 1
    cells = [td.text for td in failed[0].find_elements(By.TAG_NAME, "td")]
    assert cells[0] == "4" and cells[1] == "BAD-ROW" and cells[2].startswith("成本价：必须大于 0")

    # CSV with a BOM, in the page's language, formulas neutralised, whole units; Excel alike
    response = httpx.get(page.find_element(By.ID, "batch-link").get_attribute("href"), cookies=as_page, timeout=30)
    assert response.status_code == 200 and "text/csv" in response.headers["content-type"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    scored = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["sku_id"] for r in scored] == [r["sku_id"] for r in rows]
    got = {r["sku_id"]: r for r in scored}
    assert got["BAD-ROW"]["error"].startswith("成本价：") and not got["BAD-ROW"]["decision"]
    assert got["FORMULA"]["title"] == "'" + formula["title"]
    for r in good:
        line = got[r["sku_id"]]
        assert line["decision"] == LABELS_ZH[line["decision_code"]] and not line["error"]
        assert line["p50"] == str(by_id[r["sku_id"]]["p50"]) and line["p50"].isdigit()
        assert CJK.search(line["reasons"]) and "相似度" in line["similar_skus"] and "卖出" in line["similar_skus"]
    book = openpyxl.load_workbook(io.BytesIO(httpx.get(page.find_element(By.ID, "batch-link-xlsx").get_attribute("href"),
                                                       cookies=as_page, timeout=30).content))
    sheet = [list(r) for r in book.active.iter_rows(values_only=True)]
    header = sheet[0]
    assert len(sheet) == len(rows) + 1
    p50 = header.index("p50")
    assert [line[p50] for line in sheet[1:]][:3] == [by_id[r["sku_id"]]["p50"] for r in good[:3]]
    assert sheet[-1][header.index("title")] == "'" + formula["title"]
    assert no_horizontal_scroll(page)
    assert console_errors(page) == []
    own_requests_only(page, server)
    screenshot(page, "batch-done")
    page.set_window_size(*PHONE)
    wait(page, lambda d: no_horizontal_scroll(d), 10, "horizontal scroll at phone width")
    screenshot(page, "batch-done-phone")


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
    assert assumed.text == "未填写售价，按该品类常见加价率估算"
    zh_verdict = page.find_element(By.CLASS_NAME, "verdict-text").text
    screenshot(page, "language-zh")

    page.find_element(By.ID, "lang-toggle").click()
    en = texts()
    assert en["lang"] == "en" and en["heading"] == "Forecast one SKU" and en["submit"] == "Forecast"
    assert en["title_label"].startswith("Title") and en["toggle"] == "中文" and "trained on" in en["facts"]
    assumed = page.find_element(By.CSS_SELECTOR, "#reasons li[data-code=ASSUMED_LIST_PRICE]")
    assert assumed.text == "No list price given: the category's usual markup was assumed"
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

    # one column: the results sit below the form, and both fit the screen; the page scrolls to the answer
    form = page.find_element(By.ID, "sku-form").rect
    result = page.find_element(By.ID, "result").rect
    assert result["y"] >= form["y"] + form["height"]
    wait(page, lambda d: -5 <= d.execute_script("return document.getElementById('result').getBoundingClientRect().top")
         <= PHONE[1] / 2, 10, "the page did not scroll to the answer")
    for element_id in ("sku-form", "result", "curve-chart", "analogs", "batch-form", "model-facts"):
        rect = page.find_element(By.ID, element_id).rect
        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= PHONE[0] + 0.5, element_id
    assert page.find_element(By.ID, "lang-toggle").is_displayed()
    assert console_errors(page) == []
    screenshot(page, "single-sku-phone")


# ---------------------------------------------------------------- a go/no-go a merchandiser can trust
def test_economics_and_why_in_both_languages(page: WebDriver, server: dict, candidates, sample_dir: Path) -> None:
    row = candidates[0]
    picture = sample_dir / row["image"]
    fill_sku(page, row, picture)
    submit_sku(page)
    wait_for_answer(page)
    answer = predict_via_api(server, row, picture)
    econ, forecast, why = answer["decision"]["economics"], answer["forecast"], answer["why"]
    be = econ["break_even_units"]

    # the derivation: launch cost, list price (given here), cost, margin = list - cost, break-even = cost / margin
    text = lambda i: page.find_element(By.ID, i).text
    assert text("econ-launch-cost") == money_text(econ["launch_cost"])
    assert text("econ-list-price").startswith(money_text(econ["list_price"]))
    assert page.find_element(By.ID, "econ-price-source").get_attribute("data-assumed") == "false"
    assert text("econ-cost-price") == money_text(econ["cost_price"])
    assert text("econ-margin") == (f"{money_text(econ['list_price'])} − {money_text(econ['cost_price'])} = "
                                   f"{money_text(econ['unit_margin'])}")
    assert text("econ-break-even") == (f"{money_text(econ['launch_cost'])} ÷ {money_text(econ['unit_margin'])} = "
                                       f"{units_text(be)} 件")
    assert text("break-even") == units_text(be)
    for q in ("p10", "p50", "p90"):
        item = page.find_element(By.CSS_SELECTOR, f"#be-compare li[data-q={q}]")
        assert item.get_attribute("data-clears") == str(forecast[q] >= be).lower()
        assert units_text(forecast[q]) in item.text and ("达到保本" if forecast[q] >= be else "低于保本") in item.text
    assert page.find_element(By.ID, "be-bar").is_displayed()

    # the contributions, largest first, with Chinese group names, and a Chinese sentence from the numbers
    items = page.find_elements(By.CSS_SELECTOR, "#factors li")
    assert [li.get_attribute("data-group") for li in items] == [f["group"] for f in why["factors"]]
    for li, f in zip(items, why["factors"]):
        assert li.find_element(By.CLASS_NAME, "factor-name").text == GROUPS_ZH[f["group"]]
        assert li.find_element(By.CLASS_NAME, "factor-value").text == f"×{f['factor']:.2f}"
    sentence = text("why-sentence")
    a = why["analogs"]
    # The page names the largest effects when any moves the forecast by 1% or more, else says so.
    strong = [f for f in why["factors"] if abs(math.log(f["factor"])) >= 0.01]
    assert sentence.startswith(f"相似的历史商品卖出 {units_text(a['min'])}–{units_text(a['max'])} 件"
                               f"（中位数 {units_text(a['median'])}）；预测 {units_text(forecast['p50'])} 件，"
                               + ("主要因为 " if strong else "与图文读出的起点"))
    if strong:
        assert GROUPS_ZH[strong[0]["group"]] in sentence
    nov = answer["novelty"]
    picture_row = page.find_element(By.CSS_SELECTOR, "#novelty li[data-modality=picture]").text
    assert percent_text(nov["picture"]) in picture_row and percent_text(nov["picture_floor"]) in picture_row
    assert_reads_chinese(page, answer)
    screenshot(page, "economics-why-zh")

    page.find_element(By.ID, "lang-toggle").click()
    assert text("econ-break-even").endswith(f"= {units_text(be)} units")
    assert page.find_element(By.CSS_SELECTOR, "#economics dt").text == "Launch cost"
    for li, f in zip(page.find_elements(By.CSS_SELECTOR, "#factors li"), why["factors"]):
        assert li.find_element(By.CLASS_NAME, "factor-name").text == GROUPS_EN[f["group"]]
    assert text("why-sentence").startswith(
        f"Similar past SKUs sold {units_text(a['min'])}–{units_text(a['max'])} (median {units_text(a['median'])}); "
        f"forecast {units_text(forecast['p50'])}" + (" mainly because of " if strong else ", close to the "))
    assert text("decision-badge") == LABELS_EN[answer["decision"]["label"]]
    assert text("decision-message") == answer["decision"]["message"]
    assert console_errors(page) == []
    screenshot(page, "economics-why-en")


def test_review_reads_as_a_person_decides(page: WebDriver, server: dict) -> None:
    """A SKU unlike the history (a drawn disc sold as a thermos), without list price or category."""
    picture = drawn_picture()
    path = SCREENSHOTS.parent / "drawn-disc.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(picture)
    page.find_element(By.ID, "image").send_keys(str(path))
    type_into(page, "title", "不锈钢保温杯 steel thermos")
    type_into(page, "description", "500毫升 长效保温")
    type_into(page, "cost_price", "30")
    launch = page.find_element(By.ID, "launch_date").get_attribute("value")
    submit_sku(page)
    badge = wait_for_answer(page)
    answer = post_predict(server, {"title": "不锈钢保温杯 steel thermos", "description": "500毫升 长效保温",
                                   "cost_price": "30", "launch_date": launch}, picture)
    decision = answer["decision"]
    assert decision["label"] == "REVIEW", decision

    # a person decides: said in words, and not dressed like a verdict
    assert badge.get_attribute("data-label") == "REVIEW" and badge.text == "需人工判断"
    style = page.execute_script("const s = getComputedStyle(arguments[0]);"
                                "return [s.borderTopStyle, s.fontWeight, s.backgroundColor, s.color]", badge)
    assert style[0] == "dashed" and int(style[1]) < 700 and style[2] != style[3]
    assert page.find_element(By.CLASS_NAME, "verdict-text").text == "模型不能替你决定，请人工判断。"
    lean = page.find_element(By.ID, "decision-lean")
    if "LEANS_GO" in decision["reasons"]:
        assert lean.get_attribute("data-lean") == "GO" and "证据偏向：上新" in lean.text
    else:
        assert "LEANS_NO_GO" in decision["reasons"]
        assert lean.get_attribute("data-lean") == "NO_GO" and "证据偏向：不上新" in lean.text
    assert ("即使乐观情况" in lean.text) == ("BELOW_BREAK_EVEN_AT_P90" in decision["reasons"])

    # what was assumed is shown as assumed: the list price (at what markup), the category
    assumed = answer["assumed"]
    assert "list_price" in assumed and "category" in assumed
    price_item = page.find_element(By.CSS_SELECTOR, "#assumed li[data-field=list_price]").text
    assert money_text(assumed["list_price"]) in price_item and "估算" in price_item
    assert assumed["category"] in page.find_element(By.CSS_SELECTOR, "#assumed li[data-field=category]").text
    source = page.find_element(By.ID, "econ-price-source")
    assert source.get_attribute("data-assumed") == "true" and "假设" in source.text
    assert page.find_element(By.ID, "econ-list-price").text.startswith(money_text(assumed["list_price"]))

    # the novelty against its floors
    nov = answer["novelty"]
    for modality in ("picture", "copy"):
        item = page.find_element(By.CSS_SELECTOR, f"#novelty li[data-modality={modality}]")
        below = nov[f"{modality}_floor"] is not None and nov[modality] < nov[f"{modality}_floor"]
        assert item.get_attribute("data-below") == str(below).lower()
        assert ("低于下限" in item.text) == below
    mismatch = page.find_elements(By.ID, "category-mismatch")
    assert bool(mismatch) == (nov["category_agrees"] is False)
    assert_reads_chinese(page, answer)
    screenshot(page, "review-zh")

    page.find_element(By.ID, "lang-toggle").click()
    assert page.find_element(By.ID, "decision-badge").text == "A person decides"
    assert page.find_element(By.ID, "decision-lean").text.startswith("The evidence leans: ")
    assert "cost price ×" in page.find_element(By.CSS_SELECTOR, "#assumed li[data-field=list_price]").text
    assert console_errors(page) == []
    screenshot(page, "review-en")


def test_no_go_at_p90_says_the_optimistic_case_loses(page: WebDriver, server: dict, candidates,
                                                     sample_dir: Path) -> None:
    items = [{**{k: r[k] for k in ("title", "description", "cost_price", "list_price", "category", "launch_date",
                                   "channel")},
              "image_base64": base64.b64encode((sample_dir / r["image"]).read_bytes()).decode()} for r in candidates[:20]]
    answers = httpx.post(server["url"] + "/predict_batch", json={"items": items}, timeout=SLOW).json()
    hit = [i for i, a in enumerate(answers) if a.get("ok") and a["decision"]["label"] == "NO_GO"
           and "BELOW_BREAK_EVEN_AT_P90" in a["decision"]["reasons"]]
    assert hit, "no candidate among the first 20 is NO_GO even at P90"
    row = candidates[hit[0]]
    fill_sku(page, row, sample_dir / row["image"])
    submit_sku(page)
    badge = wait_for_answer(page)
    assert badge.get_attribute("data-label") == "NO_GO" and badge.text == "不上新"
    assert page.find_element(By.CLASS_NAME, "verdict-text").text == "即使乐观情况（P90）也会亏钱。"
    p90 = page.find_element(By.CSS_SELECTOR, "#be-compare li[data-q=p90]")
    assert p90.get_attribute("data-clears") == "false" and "低于保本" in p90.text
    page.find_element(By.ID, "lang-toggle").click()
    assert page.find_element(By.CLASS_NAME, "verdict-text").text == "Even the optimistic case (P90) loses money."
    assert console_errors(page) == []


def test_catalogue_translates_every_decision_code(page: WebDriver) -> None:
    """Every code the decision rule can give and every contribution group has a Chinese and an English text."""
    from features.why import GROUPS

    source = (ROOT / "features" / "decision.py").read_text(encoding="utf-8")
    codes = set(re.findall(r'"([A-Z][A-Z0-9_]{5,})"', source)) | {"BELOW_BREAK_EVEN_AT_P90", "CLEARS_AT_P10"}
    codes |= {f"ASSUMED_{name.upper()}" for name in ("list_price", "category", "launch_date")}
    text = page.execute_script("return TEXT")
    for code in sorted(codes):
        key = f"label.{code}" if code in LABELS_ZH else f"reason.{code}"
        assert key in text["zh"] and key in text["en"], key
        assert CJK.search(text["zh"][key]) and not CJK.search(text["en"][key]), key
    for label, words in LABELS_ZH.items():
        assert text["zh"][f"label.{label}"] == words and text["en"][f"label.{label}"] == LABELS_EN[label]
    for group in GROUPS:
        assert CJK.search(text["zh"][f"group.{group}"]) and text["en"][f"group.{group}"] == GROUPS_EN[group]
    assert set(text["zh"]) == set(text["en"])


def test_analog_override_round_trip(page: WebDriver, server: dict, candidates, sample_dir: Path) -> None:
    import pandas as pd

    row = candidates[0]
    picture = sample_dir / row["image"]
    fill_sku(page, row, picture)
    submit_sku(page)
    wait_for_answer(page)
    first = predict_via_api(server, row, picture)
    shown = [a["sku_id"] for a in first["analogs"]]
    history = pd.read_parquet(sample_dir / "catalogue.parquet")
    early = pd.to_datetime(history["launch_date"]) < pd.Timestamp(row["launch_date"]) - pd.Timedelta(days=30)
    pin = history[(history["category"] == row["category"]) & ~history["sku_id"].isin(shown) & early]["sku_id"].iloc[0]
    excluded = shown[0]

    # exclude the closest analog, pin another past SKU by id (a bad id is refused next to the input)
    toggle = page.find_element(By.CSS_SELECTOR, f"#analogs li[data-sku='{excluded}'] .exclude-toggle")
    toggle.click()
    toggle = page.find_element(By.CSS_SELECTOR, f"#analogs li[data-sku='{excluded}'] .exclude-toggle")
    assert toggle.get_attribute("aria-pressed") == "true"
    assert "excluded" in page.find_element(By.CSS_SELECTOR, f"#analogs li[data-sku='{excluded}']").get_attribute("class")
    type_into(page, "pin_analogs", "bad id!")
    page.find_element(By.ID, "pin-add").click()
    assert page.find_element(By.ID, "err-pin_analogs").is_displayed()
    type_into(page, "pin_analogs", pin)
    page.find_element(By.ID, "pin-add").click()
    assert [li.get_attribute("data-sku") for li in page.find_elements(By.CSS_SELECTOR, "#pinned li")] == [pin]

    page.find_element(By.ID, "recompute-btn").click()
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#reasons li[data-code=ANALOGS_OVERRIDDEN]")
         and d.find_element(By.ID, "predict-btn").is_enabled()
         and "stale" not in d.find_element(By.ID, "result").get_attribute("class"), SLOW, "no recomputed answer")
    fields = {k: row[k] for k in ("title", "description", "cost_price", "list_price", "category", "launch_date", "channel")}
    again = post_predict(server, {**fields, "exclude_analogs": excluded, "pin_analogs": pin}, picture.read_bytes())
    assert again["override"]["excluded"] == [excluded] and again["override"]["pinned"] == [pin]
    cards = [li.get_attribute("data-sku") for li in page.find_elements(By.CSS_SELECTOR, "#analogs li.analog")]
    assert cards == [a["sku_id"] for a in again["analogs"]]
    assert excluded not in cards and pin in cards
    assert "pinned" in page.find_element(By.CSS_SELECTOR, f"#analogs li[data-sku='{pin}']").get_attribute("class")
    applied = page.find_element(By.ID, "override-applied").text
    assert excluded in applied and pin in applied and "排除" in applied
    assert number(page.find_element(By.ID, "p50").text) == pytest.approx(again["forecast"]["p50"], abs=0.51)
    reason = page.find_element(By.CSS_SELECTOR, "#reasons li[data-code=ANALOGS_OVERRIDDEN]")
    assert reason.text == "相似商品经人工调整（排除或固定）"
    assert console_errors(page) == []
    screenshot(page, "analog-override")


# ---------------------------------------------------------------- one language per page, own requests, history
ENGLISH_RUN = re.compile(r"[A-Za-z]{2,}(?:[ ,'’]+[A-Za-z]{2,}){2,}")  # three English words in a row: a sentence


def page_words(driver: WebDriver) -> str:
    """What the page itself writes (visible text), without user and catalogue data (titles, SKU ids,
    file names: marked ``user-data``), form values and the language switch (named in the other language)."""
    return driver.execute_script(
        "const c = document.body.cloneNode(true);"
        "for (const n of c.querySelectorAll('.user-data, input, textarea, select, script, #lang-toggle, code, pre'))"
        " n.remove();"
        "document.body.append(c); const s = c.innerText; c.remove(); return s;")


def options_text(driver: WebDriver, select_id: str) -> list[str]:
    return [o.text for o in Select(driver.find_element(By.ID, select_id)).options if o.get_attribute("value")]


def assert_one_language(driver: WebDriver, language: str) -> None:
    """The Chinese page writes no English sentence and no entry of the English catalogue; the English
    page writes no Chinese at all; category and channel names follow the language."""
    words = page_words(driver)
    if language == "zh":
        assert not ENGLISH_RUN.findall(words), ENGLISH_RUN.findall(words)
        english = driver.execute_script(
            "return Object.entries(TEXT.en).filter(([k, v]) => v !== TEXT.zh[k])"
            ".map(([, v]) => v.split('{')[0].trim()).filter((v) => v.length >= 6 && /[a-z]{3}/.test(v))")
        leaked = [e for e in english if e in words]
        assert not leaked, leaked
        assert "T恤" in options_text(driver, "category") and options_text(driver, "channel") == ["App", "网店", "门店"]
    else:
        assert not CJK.search(words), CJK.findall(words)[:20]
        for select_id in ("category", "channel"):
            assert not any(CJK.search(o) for o in options_text(driver, select_id)), options_text(driver, select_id)
        assert "T-shirts" in options_text(driver, "category")


def test_every_word_follows_the_language(page: WebDriver, server: dict, candidates, sample_dir: Path,
                                         tmp_path: Path) -> None:
    """A forecast (no launch date: its default is shown, with a warning far from the history), a small
    batch and the history, in Chinese then English, at desktop and phone widths."""
    row = candidates[7]
    fill_sku(page, row, sample_dir / row["image"])
    set_value(page, "launch_date", "")
    facts = httpx.get(server["url"] + "/model", timeout=30).json()
    assert facts["train_end"][:10] in page.find_element(By.ID, "launch-hint").text
    submit_sku(page)
    wait_for_answer(page)
    launch = page.find_element(By.CSS_SELECTOR, "#assumed li[data-field=launch_date]").text
    assert re.search(r"\d{4}-\d{2}-\d{2}", launch) and "今天" in launch
    warning = page.find_element(By.CSS_SELECTOR, ".launch-warning").text
    assert facts["history"]["last_launch"] in warning and "较远" in warning

    rows = [candidates[8], {**candidates[9], "cost_price": "-1", "sku_id": "BAD"}]
    write_rows(tmp_path / "two.csv", rows, encoding="gbk", delimiter=";")  # as Chinese Excel writes it
    page.find_element(By.ID, "candidates").send_keys(str(tmp_path / "two.csv"))
    page.find_element(By.ID, "picture_files").send_keys("\n".join(str(sample_dir / r["image"]) for r in rows))
    page.find_element(By.ID, "batch-btn").click()
    wait(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#batch-result-rows tr")) == 2, SLOW, "no batch rows")
    assert "gb18030" in page.find_element(By.ID, "batch-read-as").text
    assert "分号" in page.find_element(By.ID, "batch-read-as").text
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#history-jobs li[data-id]"), 30, "the job is not in the history")

    for width, suffix in ((LAPTOP, "laptop"), (PHONE, "phone")):
        page.set_window_size(*width)
        assert_one_language(page, "zh")
        assert no_horizontal_scroll(page)
        screenshot(page, f"one-language-zh-{suffix}")
    page.find_element(By.ID, "lang-toggle").click()
    wait(page, lambda d: "cost price: must be positive" in d.find_element(By.CSS_SELECTOR, "#batch-result-rows tr[data-decision=FAILED]").text,
         30, "the failed row was not said again in English")
    for width, suffix in ((PHONE, "phone"), (LAPTOP, "laptop")):
        page.set_window_size(*width)
        assert_one_language(page, "en")
        screenshot(page, f"one-language-en-{suffix}")
    assert console_errors(page) == []
    own_requests_only(page, server)


def test_history_reopens_prints_and_shares(page: WebDriver, server: dict, candidates, sample_dir: Path) -> None:
    row = candidates[3]
    fill_sku(page, row, sample_dir / row["image"])
    submit_sku(page)
    wait_for_answer(page)
    forecast_id = page.current_url.split("forecast=")[1]
    p50 = page.find_element(By.ID, "p50").text
    reasons = [li.get_attribute("data-code") for li in page.find_elements(By.CSS_SELECTOR, "#reasons li")]

    # listed after a reload, and reopened from the list
    page.get(server["url"] + "/")
    wait_for_model(page)
    link = wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, f"#history-forecasts li[data-id='{forecast_id}'] a"),
                30, "the forecast is not in the history")[0]
    assert row["title"] in link.text
    link.click()
    wait(page, lambda d: d.find_elements(By.ID, "reopened"), 30, "the forecast was not reopened")
    assert page.find_element(By.ID, "p50").text == p50
    assert [li.get_attribute("data-code") for li in page.find_elements(By.CSS_SELECTOR, "#reasons li")] == reasons
    assert "的预测记录" in page.find_element(By.ID, "reopened").text
    screenshot(page, "reopened")

    # the share link opens the same answer on a fresh page, in the reader's language
    page.execute_script("localStorage.setItem('trialcast.lang', 'en')")
    page.get(f"{server['url']}/?forecast={forecast_id}")
    wait(page, lambda d: d.find_elements(By.ID, "reopened"), 30, "the share link did not open the forecast")
    assert page.find_element(By.ID, "p50").text == p50
    assert page.find_element(By.ID, "reopened").text.startswith("Forecast on record from")
    assert_one_language(page, "en")

    # the print stylesheet keeps the answer and drops the forms
    page.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert page.find_element(By.ID, "result").is_displayed()
        for hidden in ("sku-form", "batch-form", "history-forecasts", "share-btn", "lang-toggle"):
            assert not page.find_element(By.ID, hidden).is_displayed(), hidden
        screenshot(page, "print")
    finally:
        page.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})

    page.get(f"{server['url']}/?forecast={'0' * 32}")
    wait(page, lambda d: d.find_elements(By.ID, "not-on-record"), 30, "an unknown forecast id said nothing")
    assert page.find_element(By.ID, "not-on-record").text == "This forecast is not on record."
    assert console_errors(page, allow_http_errors=True) == []
    own_requests_only(page, server)


def test_docs_page_is_trialcasts_own_and_loads_nothing_from_elsewhere(page: WebDriver, server: dict) -> None:
    from importlib.metadata import version

    page.get(server["url"] + "/docs")
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, ".operation"), 30, "no operations listed")
    text = page.find_element(By.TAG_NAME, "body").text
    assert page.find_element(By.TAG_NAME, "h1").text == "trialcast API"
    assert f"trialcast {version('trialcast')}" in text and "OpenAPI 3" in text
    assert "BentoML" not in text and "pypi" not in text.lower()
    headings = [h.text for h in page.find_elements(By.CSS_SELECTOR, ".operation h3")]
    for operation in ("POST /predict", "POST /predict_batch", "GET /model", "POST /batch", "GET /history"):
        assert operation in headings, headings
    assert "Accept-Language" in text and "curl" in text
    urls = own_requests_only(page, server)
    assert any(u.endswith("/docs.json") for u in urls)
    page.set_window_size(*PHONE)
    assert no_horizontal_scroll(page)
    screenshot(page, "docs-phone")
    page.set_window_size(*LAPTOP)
    screenshot(page, "docs")
    assert console_errors(page) == []
