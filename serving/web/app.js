/* trialcast merchandiser page: one SKU form, batch upload, model facts. Vanilla JS, no dependencies. */
"use strict";

const TEXT = {
  zh: {
    tagline: "新品首 7 天销量预测：上新 / 复核 / 不上新",
    "lang.switch": "English",
    "lang.switch_label": "Switch to English",
    "single.heading": "单个新品预测",
    "single.submit": "预测",
    "single.busy": "预测中…",
    "single.placeholder": "填写左侧表单并提交，这里将显示预测结果。",
    "f.image": "商品图片",
    "f.title": "标题",
    "f.description": "描述",
    "f.cost_price": "成本价",
    "f.list_price": "售价（可选）",
    "f.category": "品类",
    "f.category_none": "（不指定）",
    "f.channel": "渠道",
    "f.channel_none": "（不指定）",
    "f.launch_date": "上新日期",
    "err.image_missing": "请上传商品图片。",
    "err.title_missing": "请填写标题。",
    "err.cost_positive": "成本价必须是大于 0 的数字。",
    "err.list_positive": "售价必须是大于 0 的数字。",
    "err.network": "无法连接到服务，请稍后重试。",
    "err.not_ready": "模型尚未就绪：",
    "err.fix_fields": "请修正标出的字段。",
    "err.unexpected": "服务返回了意外的错误",
    "r.decision": "结论",
    "r.reasons": "原因",
    "r.p50": "预计 7 天销量（P50）",
    "r.band": "P10–P90 区间",
    "r.break_even": "保本销量",
    "r.curve": "每日预计销量",
    "r.day": "第{n}天",
    "r.curve_label": "7 天每日预计销量：{values}",
    "r.no_curve": "该模型没有每日曲线。",
    "r.analogs": "最相似的历史商品",
    "r.no_analogs": "没有相似的历史商品。",
    "r.similarity": "相似度",
    "r.sales": "实际 7 天销量",
    "r.model": "模型版本",
    "label.GO": "上新",
    "label.REVIEW": "需复核",
    "label.NO_GO": "不上新",
    "reason.INVALID_FORECAST": "模型没有给出可用的预测，需要人工判断",
    "reason.NO_SIMILAR_HISTORY": "没有足够相似的历史商品，需要人工判断",
    "reason.BELOW_BREAK_EVEN": "预计销量（P50）低于保本销量",
    "reason.BELOW_BREAK_EVEN_AT_P90": "即使乐观情况（P90）也低于保本销量",
    "reason.TOO_UNCERTAIN": "预测区间过宽，不确定性太高",
    "reason.CLEARS_BREAK_EVEN": "预计销量（P50）超过保本销量",
    "reason.CLEARS_AT_P10": "即使保守情况（P10）也超过保本销量",
    "reason.ASSUMED_LIST_PRICE": "未填写售价，按默认加价率估算",
    "batch.heading": "批量预测",
    "batch.hint": "上传候选新品 CSV（列：sku_id, launch_date, category, title, description, image, cost_price, list_price, channel），以及可选的图片 zip（路径与 CSV 的 image 列一致，如 images/S03001.png）。",
    "b.candidates": "候选新品 CSV",
    "b.pictures": "图片 zip（可选）",
    "batch.submit": "开始批量预测",
    "batch.progress": "进度",
    "batch.running": "已完成 {done} / {total} 行",
    "batch.done": "完成：{done} / {total} 行，成功 {scored}，失败 {failed}",
    "batch.failed_job": "批量任务失败：",
    "batch.download": "下载预测结果 CSV",
    "batch.failed": "未能预测的行",
    "batch.row": "行",
    "batch.reason": "原因",
    "err.candidates_missing": "请选择候选新品 CSV 文件。",
    "err.job_lost": "找不到该批量任务（服务可能已重启）。",
    "facts.loading": "正在读取模型信息…",
    "facts.not_ready": "模型尚未就绪",
    "facts.model": "模型 {version}",
    "facts.trained_on": "训练样本 {n} 个 SKU",
    "facts.gate": "门槛指标 {metric} {value}（阈值 {threshold}）",
  },
  en: {
    tagline: "First-7-day sales forecast for new SKUs: GO / REVIEW / NO GO",
    "lang.switch": "中文",
    "lang.switch_label": "切换到中文",
    "single.heading": "Forecast one SKU",
    "single.submit": "Forecast",
    "single.busy": "Forecasting…",
    "single.placeholder": "Fill in the form and submit; the forecast appears here.",
    "f.image": "Product picture",
    "f.title": "Title",
    "f.description": "Description",
    "f.cost_price": "Cost price",
    "f.list_price": "List price (optional)",
    "f.category": "Category",
    "f.category_none": "(not set)",
    "f.channel": "Channel",
    "f.channel_none": "(not set)",
    "f.launch_date": "Launch date",
    "err.image_missing": "Upload the product picture.",
    "err.title_missing": "Enter a title.",
    "err.cost_positive": "The cost price must be a number above 0.",
    "err.list_positive": "The list price must be a number above 0.",
    "err.network": "Cannot reach the service; try again shortly.",
    "err.not_ready": "The model is not ready: ",
    "err.fix_fields": "Please fix the marked fields.",
    "err.unexpected": "The service answered with an unexpected error",
    "r.decision": "Decision",
    "r.reasons": "Reasons",
    "r.p50": "Expected 7-day units (P50)",
    "r.band": "P10–P90 band",
    "r.break_even": "Break-even units",
    "r.curve": "Expected units per day",
    "r.day": "Day {n}",
    "r.curve_label": "Expected units for each of the 7 days: {values}",
    "r.no_curve": "This model has no daily curve.",
    "r.analogs": "Most similar past SKUs",
    "r.no_analogs": "No similar past SKUs.",
    "r.similarity": "Similarity",
    "r.sales": "Actual 7-day units",
    "r.model": "Model version",
    "label.GO": "Go",
    "label.REVIEW": "Review",
    "label.NO_GO": "No go",
    "reason.INVALID_FORECAST": "The model gave no usable forecast: a person should judge",
    "reason.NO_SIMILAR_HISTORY": "No similar enough past SKU: a person should judge",
    "reason.BELOW_BREAK_EVEN": "Expected units (P50) are below break-even",
    "reason.BELOW_BREAK_EVEN_AT_P90": "Even the optimistic case (P90) is below break-even",
    "reason.TOO_UNCERTAIN": "The forecast range is too wide to commit",
    "reason.CLEARS_BREAK_EVEN": "Expected units (P50) clear break-even",
    "reason.CLEARS_AT_P10": "Even the cautious case (P10) clears break-even",
    "reason.ASSUMED_LIST_PRICE": "No list price given: a default markup was assumed",
    "batch.heading": "Batch forecast",
    "batch.hint": "Upload a candidates CSV (columns: sku_id, launch_date, category, title, description, image, cost_price, list_price, channel) and optionally a zip of pictures (paths as in the CSV's image column, e.g. images/S03001.png).",
    "b.candidates": "Candidates CSV",
    "b.pictures": "Pictures zip (optional)",
    "batch.submit": "Start batch forecast",
    "batch.progress": "Progress",
    "batch.running": "{done} of {total} rows done",
    "batch.done": "Done: {done} of {total} rows, {scored} scored, {failed} failed",
    "batch.failed_job": "The batch job failed: ",
    "batch.download": "Download the scores CSV",
    "batch.failed": "Rows that could not be scored",
    "batch.row": "Row",
    "batch.reason": "Reason",
    "err.candidates_missing": "Choose the candidates CSV file.",
    "err.job_lost": "The batch job is gone (the service may have restarted).",
    "facts.loading": "Reading the model facts…",
    "facts.not_ready": "The model is not ready",
    "facts.model": "Model {version}",
    "facts.trained_on": "trained on {n} SKUs",
    "facts.gate": "gate {metric} {value} (threshold {threshold})",
  },
};

const SKU_FIELDS = ["image", "title", "description", "cost_price", "list_price", "category", "launch_date", "channel"];
const BATCH_FIELDS = ["candidates", "pictures"];
const LANG_KEY = "trialcast.lang";
const $ = (id) => document.getElementById(id);

let lang = "zh";
let lastAnswer = null; // re-rendered when the language changes
let modelFacts = null;
let lastBatchJob = null;

try {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved === "en" || saved === "zh") lang = saved;
} catch (_) { /* storage may be disabled: default stays */ }

function t(key, vars) {
  let s = TEXT[lang][key] ?? TEXT.en[key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) s = s.split(`{${k}}`).join(String(v));
  return s;
}

/** Create an element: el("p", {class: "x"}, "text", child). Text is always set as text, never HTML. */
function el(tag, attrs, ...children) {
  const svg = ["svg", "rect", "text", "line", "g", "title"].includes(tag);
  const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function fmt(x, digits = 1) {
  if (x === null || x === undefined || !Number.isFinite(Number(x))) return "–";
  return new Intl.NumberFormat(lang === "zh" ? "zh-CN" : "en-US", { maximumFractionDigits: digits }).format(Number(x));
}

function pct(x) {
  return Number.isFinite(Number(x)) ? `${(Number(x) * 100).toFixed(1)}%` : "–";
}

/* ------------------------------------------------------------------ language */
function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  const toggle = $("lang-toggle");
  toggle.textContent = t("lang.switch");
  toggle.setAttribute("lang", lang === "zh" ? "en" : "zh-CN");
  toggle.setAttribute("aria-label", t("lang.switch_label"));
  renderFacts();
  if (lastAnswer) renderResult(lastAnswer);
  if (lastBatchJob) renderBatch(lastBatchJob);
}

$("lang-toggle").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  try { localStorage.setItem(LANG_KEY, lang); } catch (_) { /* not remembered, still switched */ }
  applyLanguage();
});

/* ------------------------------------------------------------------ field errors */
function setFieldError(name, message) {
  const box = $(`err-${name}`);
  const input = $(name);
  if (!box) return false;
  box.textContent = message;
  box.hidden = false;
  if (input) input.setAttribute("aria-invalid", "true");
  return true;
}

function clearErrors(names, formErrorId) {
  for (const name of names) {
    const box = $(`err-${name}`);
    if (box) { box.textContent = ""; box.hidden = true; }
    const input = $(name);
    if (input) input.removeAttribute("aria-invalid");
  }
  const general = $(formErrorId);
  general.textContent = "";
  general.hidden = true;
}

function showGeneral(id, message) {
  $(id).textContent = message;
  $(id).hidden = false;
}

/** Show a service error body ({error, detail: [{loc, msg}]} or {error: "not_ready", message}). */
function showServerErrors(status, body, fields, formErrorId) {
  if (body && body.error === "not_ready") {
    showGeneral(formErrorId, t("err.not_ready") + (body.message || ""));
    return;
  }
  const detail = body && Array.isArray(body.detail) ? body.detail : [];
  const leftovers = [];
  let placed = 0;
  for (const d of detail) {
    const loc = Array.isArray(d.loc) ? d.loc : [d.loc];
    const name = loc.find((part) => fields.includes(part));
    const msg = d.msg || d.reason || (body && body.error) || "";
    if (name && setFieldError(name, msg)) placed += 1;
    else leftovers.push(msg);
  }
  if (!detail.length) leftovers.push((body && (body.error || body.message)) || `${t("err.unexpected")} (HTTP ${status})`);
  if (leftovers.length) showGeneral(formErrorId, leftovers.join("; "));
  else if (placed) showGeneral(formErrorId, t("err.fix_fields"));
  const first = document.querySelector(`#${formErrorId}`).closest("form").querySelector("[aria-invalid=true]");
  if (first) first.focus({ preventScroll: false });
}

async function readJson(response) {
  try { return await response.json(); } catch (_) { return null; }
}

/* ------------------------------------------------------------------ single SKU */
const form = $("sku-form");
let previewUrl = null;

$("image").addEventListener("change", () => {
  const file = $("image").files[0];
  const img = $("preview");
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
  img.hidden = true;
  if (file && file.type.startsWith("image/")) {
    previewUrl = URL.createObjectURL(file);
    img.src = previewUrl;
    img.alt = file.name;
    img.hidden = false;
  }
});
$("preview").addEventListener("error", () => { $("preview").hidden = true; });

/** Client-side checks that mirror the service; the service stays the authority. */
function checkForm() {
  let ok = true;
  const fail = (name, key) => { setFieldError(name, t(key)); ok = false; };
  if (!$("image").files.length) fail("image", "err.image_missing");
  if (!$("title").value.trim()) fail("title", "err.title_missing");
  const cost = Number($("cost_price").value.trim() || NaN);
  if (!(cost > 0 && Number.isFinite(cost))) fail("cost_price", "err.cost_positive");
  const list = $("list_price").value.trim();
  if ($("list_price").validity.badInput || (list !== "" && !(Number(list) > 0 && Number.isFinite(Number(list))))) {
    fail("list_price", "err.list_positive");
  }
  return ok;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(SKU_FIELDS, "err-form");
  if (!checkForm()) {
    showGeneral("err-form", t("err.fix_fields"));
    const first = form.querySelector("[aria-invalid=true]");
    if (first) first.focus();
    return;
  }
  const data = new FormData();
  data.append("image", $("image").files[0]);
  for (const name of SKU_FIELDS.slice(1)) data.append(name, $(name).value.trim());
  const button = $("predict-btn");
  button.disabled = true;
  button.textContent = t("single.busy");
  $("result").setAttribute("aria-busy", "true");
  $("result").classList.add("stale"); // an earlier answer no longer matches the form until this one lands
  try {
    const response = await fetch("/predict", { method: "POST", body: data });
    const body = await readJson(response);
    if (response.ok && body && body.ok !== false) {
      lastAnswer = body;
      renderResult(body);
      $("result").classList.remove("stale");
    } else {
      showServerErrors(response.status, body, SKU_FIELDS, "err-form");
    }
  } catch (_) {
    showGeneral("err-form", t("err.network"));
  } finally {
    button.disabled = false;
    button.textContent = t("single.submit");
    $("result").removeAttribute("aria-busy");
  }
});

function curveChart(curve) {
  const w = 340, h = 190, left = 8, right = 8, top = 22, bottom = 26;
  const max = Math.max(...curve, 1e-9);
  const slot = (w - left - right) / curve.length;
  const bar = slot * 0.62;
  const plot = h - top - bottom;
  const values = curve.map((v) => fmt(v)).join(", ");
  const svg = el("svg", {
    id: "curve-chart", class: "chart", viewBox: `0 0 ${w} ${h}`, role: "img",
    "aria-label": t("r.curve_label", { values }), preserveAspectRatio: "xMidYMid meet",
  });
  svg.append(el("line", { x1: left, x2: w - right, y1: top + plot, y2: top + plot, class: "axis" }));
  curve.forEach((v, i) => {
    const bh = Math.max((v / max) * plot, v > 0 ? 1 : 0);
    const x = left + i * slot + (slot - bar) / 2;
    const y = top + plot - bh;
    svg.append(el("rect", { x: x.toFixed(1), y: y.toFixed(1), width: bar.toFixed(1), height: bh.toFixed(1), rx: 3, class: "bar" },
      el("title", {}, `${t("r.day", { n: i + 1 })}: ${fmt(v)}`)));
    svg.append(el("text", { x: (x + bar / 2).toFixed(1), y: (y - 5).toFixed(1), class: "value", "text-anchor": "middle" }, fmt(v)));
    svg.append(el("text", { x: (x + bar / 2).toFixed(1), y: h - 8, class: "day", "text-anchor": "middle" }, t("r.day", { n: i + 1 })));
  });
  return svg;
}

function analogCard(a) {
  return el("li", { class: "analog" },
    el("img", { src: `/analogs/${encodeURIComponent(a.sku_id)}.jpg`, alt: a.title || a.sku_id, loading: "lazy", width: 96, height: 96 }),
    el("div", { class: "analog-body" },
      el("p", { class: "analog-title" }, a.title || a.sku_id),
      el("p", { class: "analog-meta" }, [a.sku_id, a.category, a.launch_date].filter(Boolean).join(" · ")),
      el("p", { class: "analog-numbers" },
        el("span", {}, `${t("r.similarity")} `, el("strong", { class: "similarity" }, fmt(a.similarity, 2))),
        el("span", {}, `${t("r.sales")} `, el("strong", { class: "sales" }, fmt(a.sales, 0))))));
}

function renderResult(answer) {
  const f = answer.forecast || {};
  const d = answer.decision || {};
  const label = d.label || "REVIEW";
  const curve = Array.isArray(f.curve) ? f.curve.map(Number) : [];
  const analogs = Array.isArray(answer.analogs) ? answer.analogs : [];
  const box = $("result");
  box.replaceChildren(
    el("div", { class: `verdict verdict-${label}` },
      el("span", { id: "decision-badge", class: `badge badge-${label}`, "data-label": label }, label.replace("_", " ")),
      el("span", { class: "verdict-text" }, `label.${label}` in TEXT.en ? t(`label.${label}`) : "")),
    el("h3", { class: "sr-only" }, t("r.reasons")),
    el("ul", { id: "reasons", class: "reasons" },
      (d.reasons || []).map((code) => el("li", { "data-code": code },
        `reason.${code}` in TEXT.en ? t(`reason.${code}`) : code))),
    d.message ? el("p", { id: "decision-message", class: "message", lang: "en" }, d.message) : null,
    el("dl", { class: "numbers" },
      el("div", {}, el("dt", {}, t("r.p50")), el("dd", { id: "p50" }, fmt(f.p50))),
      el("div", {}, el("dt", {}, t("r.band")), el("dd", { id: "band" }, `${fmt(f.p10)} – ${fmt(f.p90)}`)),
      el("div", {}, el("dt", {}, t("r.break_even")), el("dd", { id: "break-even" }, fmt(d.break_even_units, 0)))),
    el("figure", { class: "curve" },
      el("figcaption", {}, t("r.curve")),
      curve.length ? curveChart(curve) : el("p", {}, t("r.no_curve"))),
    el("h3", {}, t("r.analogs")),
    analogs.length ? el("ul", { id: "analogs", class: "analogs" }, analogs.map(analogCard)) : el("p", {}, t("r.no_analogs")),
    answer.model ? el("p", { class: "model-line" }, `${t("r.model")}: ${answer.model.version ?? "–"}`) : null,
  );
}

/* ------------------------------------------------------------------ batch */
let pollTimer = null;

$("batch-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(BATCH_FIELDS, "err-batch");
  if (!$("candidates").files.length) {
    setFieldError("candidates", t("err.candidates_missing"));
    $("candidates").focus();
    return;
  }
  const data = new FormData();
  data.append("candidates", $("candidates").files[0]);
  if ($("pictures").files.length) data.append("pictures", $("pictures").files[0]);
  clearTimeout(pollTimer);
  lastBatchJob = null;
  $("batch-btn").disabled = true;
  try {
    const response = await fetch("/batch", { method: "POST", body: data });
    const body = await readJson(response);
    if (response.status === 202 && body && body.id) {
      lastBatchJob = body;
      renderBatch(body);
      poll(body.id);
    } else {
      $("batch-btn").disabled = false;
      showServerErrors(response.status, body, BATCH_FIELDS, "err-batch");
    }
  } catch (_) {
    $("batch-btn").disabled = false;
    showGeneral("err-batch", t("err.network"));
  }
});

function poll(id) {
  pollTimer = setTimeout(async () => {
    try {
      const response = await fetch(`/batch/${encodeURIComponent(id)}`, { cache: "no-store" });
      const body = await readJson(response);
      if (response.status === 404) {
        lastBatchJob = { id, status: "failed", message: t("err.job_lost"), done: 0, total: 0 };
      } else if (response.ok && body) {
        lastBatchJob = body;
      }
    } catch (_) { /* transient: keep polling */ }
    renderBatch(lastBatchJob);
    if (lastBatchJob.status === "running") poll(id);
    else $("batch-btn").disabled = false;
  }, 600);
}

function renderBatch(job) {
  const done = Number(job.done) || 0;
  const total = Number(job.total) || 0;
  $("batch-status").hidden = false;
  $("batch-progress").max = Math.max(total, 1);
  $("batch-progress").value = done;
  const summary = job.summary || {};
  $("batch-text").textContent = job.status === "done"
    ? t("batch.done", { done, total, scored: summary.scored ?? done - (job.failed || []).length, failed: (job.failed || []).length })
    : t("batch.running", { done, total });
  const failedJob = job.status === "failed";
  $("batch-message").hidden = !failedJob;
  $("batch-message").textContent = failedJob ? t("batch.failed_job") + (job.message || "") : "";
  const finished = job.status === "done";
  $("batch-download").hidden = !finished;
  if (finished) $("batch-link").href = `/batch/${encodeURIComponent(job.id)}/scores.csv`;
  const failed = finished && Array.isArray(job.failed) ? job.failed : [];
  $("batch-failed").hidden = !failed.length;
  $("batch-failed-rows").replaceChildren(...failed.map((f) =>
    el("tr", {}, el("td", {}, f.row), el("td", {}, f.sku_id ?? ""), el("td", { class: "reason" }, f.error ?? ""))));
}

/* ------------------------------------------------------------------ model facts */
function renderFacts() {
  const footer = $("model-facts");
  const banner = $("model-banner");
  if (!modelFacts) return;
  if (!modelFacts.ready) {
    footer.replaceChildren(el("span", {}, t("facts.not_ready")));
    banner.textContent = `${t("facts.not_ready")}: ${modelFacts.message || ""}`;
    banner.hidden = false;
    return;
  }
  banner.hidden = true;
  footer.replaceChildren(
    el("span", { id: "fact-version" }, t("facts.model", { version: modelFacts.version ?? "–" })),
    el("span", { id: "fact-trained" }, t("facts.trained_on", { n: fmt(modelFacts.trained_on, 0) })),
    el("span", { id: "fact-gate" }, t("facts.gate", {
      metric: String(modelFacts.gate_metric || "").toUpperCase(),
      value: pct(modelFacts.gate_value),
      threshold: pct(modelFacts.gate_threshold),
    })));
}

async function loadModel() {
  try {
    const response = await fetch("/model", { cache: "no-store" });
    modelFacts = await readJson(response);
  } catch (_) {
    modelFacts = null;
  }
  if (!modelFacts) {
    $("model-facts").replaceChildren(el("span", {}, t("err.network")));
    return;
  }
  const select = $("category");
  for (const c of modelFacts.categories || []) select.append(el("option", { value: c }, c));
  renderFacts();
}

/* ------------------------------------------------------------------ start */
if (!$("launch_date").value) {
  const now = new Date();
  const local = new Date(now.getTime() - now.getTimezoneOffset() * 60000);
  $("launch_date").value = local.toISOString().slice(0, 10);
}
applyLanguage();
loadModel();
