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
    "label.REVIEW": "需人工判断",
    "label.NO_GO": "不上新",
    "verdict.GO": "预计能收回上新成本。",
    "verdict.NO_GO": "预计收不回上新成本。",
    "verdict.NO_GO_P90": "即使乐观情况（P90）也会亏钱。",
    "verdict.REVIEW": "模型不能替你决定，请人工判断。",
    "lean.LEANS_GO": "证据偏向：上新",
    "lean.LEANS_NO_GO": "证据偏向：不上新",
    "lean.P90": "即使乐观情况（P90）也低于保本销量",
    "r.summary": "预计 7 天卖出 {p50} 件（P10–P90：{p10}–{p90} 件），保本需要 {be} 件。",
    "r.summary_no_be": "预计 7 天卖出 {p50} 件（P10–P90：{p10}–{p90} 件）；售价不高于成本，无法保本。",
    "r.units": "{n} 件",
    "r.live_gate": "注意：模型近期的实际误差超过了 15% 门槛，这次预测不能用来决定生产。",
    "econ.heading": "保本怎么算",
    "econ.launch_cost": "上新成本",
    "econ.list_price": "售价",
    "econ.cost_price": "成本价",
    "econ.margin": "单件毛利（售价 − 成本价）",
    "econ.break_even": "保本销量（上新成本 ÷ 单件毛利）",
    "econ.assumed": "假设：未填写售价，按成本价 × {markup} 估算",
    "econ.given": "已填写（加价率 × {markup}）",
    "econ.no_margin": "售价不高于成本价，无法保本",
    "econ.compare": "P10 / P50 / P90 与保本销量对比",
    "econ.clears": "达到保本",
    "econ.below": "低于保本",
    "econ.chart_label": "P10 {p10}、P50 {p50}、P90 {p90} 件，保本销量 {be} 件",
    "why.heading": "为什么是这个数",
    "why.start": "起点（从图片和文案读出）：{n} 件",
    "why.sentence": "相似的历史商品卖出 {min}–{max} 件（中位数 {median}）；预测 {p50} 件，主要因为 {factors}。",
    "why.sentence_no_analogs": "预测 {p50} 件，从图文读出的 {start} 件出发，主要因为 {factors}。",
    "why.sentence_plain": "预测 {p50} 件，与图文读出的起点 {start} 件基本一致。",
    "why.sentence_analogs_plain": "相似的历史商品卖出 {min}–{max} 件（中位数 {median}）；预测 {p50} 件，与图文读出的起点 {start} 件基本一致。",
    "why.join": "、",
    "why.factor_label": "{group} ×{factor}",
    "group.analogs": "相似商品",
    "group.picture": "图片",
    "group.copy": "文案",
    "group.price": "价格",
    "group.category": "品类",
    "group.season": "季节",
    "group.channel": "渠道",
    "group.readout": "图文读出",
    "group.other": "其他",
    "nov.heading": "与历史商品有多像",
    "nov.picture": "图片相似度",
    "nov.copy": "文案相似度",
    "nov.joint": "综合相似度",
    "nov.floor": "（下限 {floor}）",
    "nov.no_floor": "（无下限）",
    "nov.below": "低于下限",
    "nov.mismatch": "图片更像 {picture}，而不是 {category}",
    "nov.agrees": "图片与品类 {category} 一致",
    "as.heading": "系统代为假设的输入",
    "as.list_price": "售价：{value}（按成本价 × {markup} 估算）",
    "as.category": "品类：{value}（相似历史商品的品类）",
    "as.launch_date": "上新日期：{value}（今天）",
    "as.description": "描述：未填写，只用标题",
    "as.other": "{field}：{value}",
    "ov.heading": "调整相似商品",
    "ov.hint": "排除不该参考的历史商品，或按 SKU 编号固定一个，然后重新计算。",
    "ov.exclude": "排除",
    "ov.excluded": "已排除（点此恢复）",
    "ov.pinned_badge": "已固定",
    "ov.pin_label": "固定一个历史商品（SKU 编号）",
    "ov.pin_add": "固定",
    "ov.remove": "移除 {id}",
    "ov.recompute": "按调整重新计算",
    "ov.applied": "本次结果已按调整计算：排除 {excluded}；固定 {pinned}",
    "ov.none": "无",
    "ov.not_usable": "（{ids} 上新太晚，不能作为参考）",
    "ov.bad_id": "SKU 编号只能包含字母、数字、下划线、点和横线。",
    "ov.nothing": "先排除或固定至少一个历史商品。",
    "reason.INVALID_FORECAST": "模型没有给出可用的预测，需要人工判断",
    "reason.NO_SIMILAR_HISTORY": "没有足够相似的历史商品，需要人工判断",
    "reason.BELOW_BREAK_EVEN": "预计销量（P50）低于保本销量",
    "reason.BELOW_BREAK_EVEN_AT_P90": "即使乐观情况（P90）也低于保本销量",
    "reason.TOO_UNCERTAIN": "预测区间过宽，不确定性太高",
    "reason.CLEARS_BREAK_EVEN": "预计销量（P50）超过保本销量",
    "reason.CLEARS_AT_P10": "即使保守情况（P10）也超过保本销量",
    "reason.ASSUMED_LIST_PRICE": "未填写售价，按该品类常见加价率估算",
    "reason.ASSUMED_DESCRIPTION": "未填写描述，只用标题",
    "reason.INPUT_NEEDED": "缺少的信息会让误差超过 15% 门槛：请补充，或人工判断",
    "reason.PICTURE_UNLIKE_HISTORY": "图片与所有历史商品都不像",
    "reason.COPY_UNLIKE_HISTORY": "文案与所有历史商品都不像",
    "reason.CATEGORY_PICTURE_MISMATCH": "图片看起来属于另一个品类",
    "reason.LEANS_GO": "证据偏向上新：预计销量（P50）超过保本销量",
    "reason.LEANS_NO_GO": "证据偏向不上新：预计销量（P50）低于保本销量",
    "reason.ASSUMED_CATEGORY": "未指定品类，按相似历史商品的品类计算",
    "reason.ASSUMED_LAUNCH_DATE": "未填写上新日期，按今天计算",
    "reason.ANALOGS_OVERRIDDEN": "相似商品经人工调整（排除或固定）",
    "reason.LIVE_ERROR_ABOVE_GATE": "模型近期实际误差超过 15% 门槛，预测不能用来决定生产",
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
    "label.REVIEW": "A person decides",
    "label.NO_GO": "No go",
    "verdict.GO": "Expected to pay back the launch cost.",
    "verdict.NO_GO": "Not expected to pay back the launch cost.",
    "verdict.NO_GO_P90": "Even the optimistic case (P90) loses money.",
    "verdict.REVIEW": "The model cannot decide this one for you: a person decides.",
    "lean.LEANS_GO": "The evidence leans: GO",
    "lean.LEANS_NO_GO": "The evidence leans: NO GO",
    "lean.P90": "even the optimistic case (P90) is below break-even",
    "r.summary": "Expected to sell {p50} units in 7 days (P10–P90: {p10}–{p90}); break-even needs {be}.",
    "r.summary_no_be": "Expected to sell {p50} units in 7 days (P10–P90: {p10}–{p90}); the list price does not exceed the cost, so there is no break-even.",
    "r.units": "{n} units",
    "r.live_gate": "Warning: the model's live error broke the 15% gate; this forecast may not steer production.",
    "econ.heading": "How break-even is worked out",
    "econ.launch_cost": "Launch cost",
    "econ.list_price": "List price",
    "econ.cost_price": "Cost price",
    "econ.margin": "Unit margin (list price − cost price)",
    "econ.break_even": "Break-even units (launch cost ÷ unit margin)",
    "econ.assumed": "Assumed: no list price given, cost price × {markup}",
    "econ.given": "Given (markup × {markup})",
    "econ.no_margin": "The list price does not exceed the cost: no break-even",
    "econ.compare": "P10 / P50 / P90 against break-even",
    "econ.clears": "clears break-even",
    "econ.below": "below break-even",
    "econ.chart_label": "P10 {p10}, P50 {p50}, P90 {p90} units; break-even {be} units",
    "why.heading": "Why this number",
    "why.start": "Start (read off the picture and copy): {n} units",
    "why.sentence": "Similar past SKUs sold {min}–{max} (median {median}); forecast {p50} mainly because of {factors}.",
    "why.sentence_no_analogs": "Forecast {p50}, starting from {start} read off the picture and copy, mainly because of {factors}.",
    "why.sentence_plain": "Forecast {p50}, close to the {start} read off the picture and copy.",
    "why.sentence_analogs_plain": "Similar past SKUs sold {min}–{max} (median {median}); forecast {p50}, close to the {start} read off the picture and copy.",
    "why.join": ", ",
    "why.factor_label": "{group} ×{factor}",
    "group.analogs": "Similar SKUs",
    "group.picture": "Picture",
    "group.copy": "Copy",
    "group.price": "Price",
    "group.category": "Category",
    "group.season": "Season",
    "group.channel": "Channel",
    "group.readout": "Picture & copy read-out",
    "group.other": "Other",
    "nov.heading": "How like the history it is",
    "nov.picture": "Picture similarity",
    "nov.copy": "Copy similarity",
    "nov.joint": "Joint similarity",
    "nov.floor": " (floor {floor})",
    "nov.no_floor": " (no floor)",
    "nov.below": "below the floor",
    "nov.mismatch": "The picture looks like {picture}, not {category}",
    "nov.agrees": "The picture agrees with the category {category}",
    "as.heading": "Inputs the system assumed",
    "as.list_price": "List price: {value} (cost price × {markup})",
    "as.category": "Category: {value} (the category its similar past SKUs share)",
    "as.launch_date": "Launch date: {value} (today)",
    "as.description": "Description: none given, the title alone was used",
    "as.other": "{field}: {value}",
    "ov.heading": "Adjust the similar SKUs",
    "ov.hint": "Exclude past SKUs that should not count, or pin one by its SKU id, then recompute.",
    "ov.exclude": "Exclude",
    "ov.excluded": "Excluded (click to restore)",
    "ov.pinned_badge": "Pinned",
    "ov.pin_label": "Pin a past SKU (SKU id)",
    "ov.pin_add": "Pin",
    "ov.remove": "Remove {id}",
    "ov.recompute": "Recompute with these changes",
    "ov.applied": "This answer uses your changes: excluded {excluded}; pinned {pinned}",
    "ov.none": "none",
    "ov.not_usable": "({ids} launched too late to count)",
    "ov.bad_id": "A SKU id holds only letters, digits, underscores, dots and dashes.",
    "ov.nothing": "Exclude or pin at least one past SKU first.",
    "reason.INVALID_FORECAST": "The model gave no usable forecast: a person should judge",
    "reason.NO_SIMILAR_HISTORY": "No similar enough past SKU: a person should judge",
    "reason.BELOW_BREAK_EVEN": "Expected units (P50) are below break-even",
    "reason.BELOW_BREAK_EVEN_AT_P90": "Even the optimistic case (P90) is below break-even",
    "reason.TOO_UNCERTAIN": "The forecast range is too wide to commit",
    "reason.CLEARS_BREAK_EVEN": "Expected units (P50) clear break-even",
    "reason.CLEARS_AT_P10": "Even the cautious case (P10) clears break-even",
    "reason.ASSUMED_LIST_PRICE": "No list price given: the category's usual markup was assumed",
    "reason.ASSUMED_DESCRIPTION": "No description given: the title alone was used",
    "reason.INPUT_NEEDED": "Without the missing input the error exceeds the 15% gate: give it, or a person decides",
    "reason.PICTURE_UNLIKE_HISTORY": "The picture is unlike every past SKU's picture",
    "reason.COPY_UNLIKE_HISTORY": "The copy is unlike every past SKU's copy",
    "reason.CATEGORY_PICTURE_MISMATCH": "The picture looks like another category than the one given",
    "reason.LEANS_GO": "The evidence leans GO: expected units (P50) clear break-even",
    "reason.LEANS_NO_GO": "The evidence leans NO GO: expected units (P50) are below break-even",
    "reason.ASSUMED_CATEGORY": "No category given: the category of its similar past SKUs was assumed",
    "reason.ASSUMED_LAUNCH_DATE": "No launch date given: today was assumed",
    "reason.ANALOGS_OVERRIDDEN": "The similar past SKUs were adjusted by hand (excluded or pinned)",
    "reason.LIVE_ERROR_ABOVE_GATE": "The model's live error broke the 15% gate: forecasts may not steer production",
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

/** Units for people: whole units, thousands separators. */
function units(x) {
  return fmt(x, 0);
}

/** A price: ¥, thousands separators, cents only when there are any. */
function money(x) {
  if (x === null || x === undefined || !Number.isFinite(Number(x))) return "–";
  const v = Number(x);
  const whole = Math.abs(v - Math.round(v)) < 0.005;
  return "¥" + new Intl.NumberFormat(lang === "zh" ? "zh-CN" : "en-US", {
    minimumFractionDigits: whole ? 0 : 2, maximumFractionDigits: whole ? 0 : 2 }).format(v);
}

/** A similarity (0-1): always two decimals. */
function sim(x) {
  return Number.isFinite(Number(x)) && x !== null ? Number(x).toFixed(2) : "–";
}

/** A multiplicative factor: ×1.4, ×0.85. */
function factor(x) {
  return Number.isFinite(Number(x)) ? `×${Number(x).toFixed(2)}` : "–";
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

let lastRequest = null; // the form's fields as sent, re-posted by "recompute"
const override = { excluded: new Set(), pinned: [] };
const OVERRIDE_FIELDS = [...SKU_FIELDS, "exclude_analogs", "pin_analogs"];

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(OVERRIDE_FIELDS, "err-form");
  if (!checkForm()) {
    showGeneral("err-form", t("err.fix_fields"));
    const first = form.querySelector("[aria-invalid=true]");
    if (first) first.focus();
    return;
  }
  const entries = [["image", $("image").files[0]]];
  for (const name of SKU_FIELDS.slice(1)) entries.push([name, $(name).value.trim()]);
  override.excluded.clear();
  override.pinned = [];
  await send(entries, $("predict-btn"));
});

/** POST /predict with the given fields (+ the analog override when there is one) and show the answer. */
async function send(entries, button) {
  const data = new FormData();
  for (const [k, v] of entries) data.append(k, v);
  if (override.excluded.size) data.append("exclude_analogs", [...override.excluded].join(","));
  if (override.pinned.length) data.append("pin_analogs", override.pinned.join(","));
  const label = button.textContent;
  for (const b of [$("predict-btn"), $("recompute-btn")]) if (b) b.disabled = true;
  button.textContent = t("single.busy");
  $("result").setAttribute("aria-busy", "true");
  $("result").classList.add("stale"); // an earlier answer no longer matches the form until this one lands
  let shown = false;
  try {
    const response = await fetch("/predict", { method: "POST", body: data });
    const body = await readJson(response);
    if (response.ok && body && body.ok !== false) {
      lastRequest = entries;
      lastAnswer = body;
      const applied = body.override || {};
      if (Array.isArray(applied.excluded)) override.excluded = new Set(applied.excluded);
      if (Array.isArray(applied.pinned)) override.pinned = [...applied.pinned];
      renderResult(body);
      $("result").classList.remove("stale");
      shown = true;
    } else {
      showServerErrors(response.status, body, OVERRIDE_FIELDS, "err-form");
    }
  } catch (_) {
    showGeneral("err-form", t("err.network"));
  } finally {
    $("predict-btn").disabled = false;
    $("predict-btn").textContent = t("single.submit");
    if (!shown && $("recompute-btn")) { $("recompute-btn").disabled = false; $("recompute-btn").textContent = label; }
    $("result").removeAttribute("aria-busy");
  }
}

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
  const excluded = override.excluded.has(a.sku_id);
  const pinned = a.pinned === true || override.pinned.includes(a.sku_id);
  const toggle = el("button", {
    type: "button", class: "exclude-toggle", "data-sku": a.sku_id, "aria-pressed": excluded ? "true" : "false",
  }, excluded ? t("ov.excluded") : t("ov.exclude"));
  toggle.addEventListener("click", () => {
    if (override.excluded.has(a.sku_id)) override.excluded.delete(a.sku_id);
    else override.excluded.add(a.sku_id);
    renderResult(lastAnswer);
  });
  return el("li", { class: `analog${excluded ? " excluded" : ""}${pinned ? " pinned" : ""}`, "data-sku": a.sku_id },
    el("img", { src: `/analogs/${encodeURIComponent(a.sku_id)}.jpg`, alt: a.title || a.sku_id, width: 96, height: 96 }),
    el("div", { class: "analog-body" },
      pinned ? el("span", { class: "pin-badge" }, t("ov.pinned_badge")) : null,
      el("p", { class: "analog-title" }, a.title || a.sku_id),
      el("p", { class: "analog-meta" }, [a.sku_id, a.category, a.launch_date].filter(Boolean).join(" · ")),
      el("p", { class: "analog-numbers" },
        el("span", {}, `${t("r.similarity")} `, el("strong", { class: "similarity" }, sim(a.similarity))),
        el("span", {}, `${t("r.sales")} `, el("strong", { class: "sales" }, units(a.sales)))),
      toggle));
}

function known(key) {
  return key in TEXT.en;
}

/** Verdict: the label in words, and for a REVIEW which way the evidence leans. */
function verdictBlock(label, reasons) {
  const lean = [];
  let line;
  if (label === "REVIEW") {
    line = t("verdict.REVIEW");
    if (reasons.includes("LEANS_GO")) lean.push(t("lean.LEANS_GO"));
    if (reasons.includes("LEANS_NO_GO")) lean.push(t("lean.LEANS_NO_GO"));
    if (reasons.includes("BELOW_BREAK_EVEN_AT_P90")) lean.push(t("lean.P90"));
  } else if (label === "NO_GO") {
    line = reasons.includes("BELOW_BREAK_EVEN_AT_P90") ? t("verdict.NO_GO_P90") : t("verdict.NO_GO");
  } else {
    line = known(`verdict.${label}`) ? t(`verdict.${label}`) : "";
  }
  const leanCode = reasons.includes("LEANS_GO") ? "GO" : reasons.includes("LEANS_NO_GO") ? "NO_GO" : "";
  return el("div", { class: `verdict verdict-${label}` },
    el("span", { id: "decision-badge", class: `badge badge-${label}`, "data-label": label },
      known(`label.${label}`) ? t(`label.${label}`) : label),
    el("div", { class: "verdict-words" },
      el("p", { class: "verdict-text" }, line),
      lean.length ? el("p", { id: "decision-lean", class: `lean lean-${leanCode || "NONE"}`, "data-lean": leanCode },
        lean.join(lang === "zh" ? "；" : "; ")) : null));
}

/** Break-even, its derivation, and P10/P50/P90 against it. */
function economicsBlock(f, d) {
  const e = d.economics || {};
  const be = Number(e.break_even_units ?? d.break_even_units);
  const finiteBe = Number.isFinite(be);
  const assumed = Boolean(e.list_price_assumed ?? d.assumed_list_price);
  const markup = fmt(e.markup, 2);
  const rows = [
    ["launch-cost", t("econ.launch_cost"), money(e.launch_cost), null],
    ["list-price", t("econ.list_price"), money(e.list_price),
      el("span", { id: "econ-price-source", class: assumed ? "tag tag-assumed" : "tag", "data-assumed": String(assumed) },
        assumed ? t("econ.assumed", { markup }) : t("econ.given", { markup }))],
    ["cost-price", t("econ.cost_price"), money(e.cost_price), null],
    ["margin", t("econ.margin"), `${money(e.list_price)} − ${money(e.cost_price)} = ${money(e.unit_margin)}`, null],
    ["break-even", t("econ.break_even"), finiteBe
      ? `${money(e.launch_cost)} ÷ ${money(e.unit_margin)} = ${t("r.units", { n: units(be) })}` : t("econ.no_margin"), null],
  ];
  const quantiles = [["p10", f.p10], ["p50", f.p50], ["p90", f.p90]];
  const top = Math.max(...quantiles.map(([, v]) => Number(v) || 0), finiteBe ? be : 0, 1) * 1.08;
  const at = (v) => `${Math.max(0, Math.min(100, (Number(v) / top) * 100)).toFixed(1)}%`;
  const bar = el("div", {
    id: "be-bar", class: "be-bar", role: "img",
    "aria-label": t("econ.chart_label", { p10: units(f.p10), p50: units(f.p50), p90: units(f.p90), be: finiteBe ? units(be) : "–" }),
  },
    el("div", { class: "be-band", style: `left:${at(f.p10)};width:calc(${at(f.p90)} - ${at(f.p10)})` }),
    el("div", { class: "be-p50", style: `left:${at(f.p50)}` }),
    finiteBe ? el("div", { class: "be-line", style: `left:${at(be)}` }) : null);
  return el("section", { id: "economics", class: "panel" },
    el("h3", {}, t("econ.heading")),
    el("dl", { class: "econ" }, rows.map(([id, name, value, extra]) =>
      el("div", { class: "econ-row" }, el("dt", {}, name), el("dd", { id: `econ-${id}` }, value, extra ? " " : null, extra)))),
    el("p", { class: "be-caption" }, t("econ.compare")),
    bar,
    el("ul", { id: "be-compare", class: "be-compare" }, quantiles.map(([q, v]) => {
      const clears = finiteBe && Number(v) >= be;
      return el("li", { "data-q": q, "data-clears": String(clears), class: clears ? "clears" : "below" },
        el("span", { class: "q" }, q.toUpperCase()), " ", el("strong", {}, t("r.units", { n: units(v) })), " ",
        el("span", { class: "mark" }, clears ? `✓ ${t("econ.clears")}` : `✗ ${t("econ.below")}`));
    })));
}

/** The sentence of the why-panel, from the numbers, in the page's language. */
function whySentence(why, p50) {
  const strong = (why.factors || []).filter((x) => Math.abs(Math.log(Number(x.factor) || 1)) >= 0.01).slice(0, 2);
  const factors = strong.map((x) => t("why.factor_label", { group: groupName(x.group), factor: Number(x.factor).toFixed(2) }))
    .join(t("why.join"));
  if (!factors && why.analogs) {
    return t("why.sentence_analogs_plain", { min: units(why.analogs.min), max: units(why.analogs.max),
      median: units(why.analogs.median), p50: units(p50), start: units(why.start_units) });
  }
  if (!factors) return t("why.sentence_plain", { p50: units(p50), start: units(why.start_units) });
  if (why.analogs) {
    return t("why.sentence", { min: units(why.analogs.min), max: units(why.analogs.max),
      median: units(why.analogs.median), p50: units(p50), factors });
  }
  return t("why.sentence_no_analogs", { p50: units(p50), start: units(why.start_units), factors });
}

function groupName(group) {
  return known(`group.${group}`) ? t(`group.${group}`) : t("group.other");
}

function whyBlock(why, p50) {
  const factors = Array.isArray(why.factors) ? why.factors : [];
  const widest = Math.max(...factors.map((x) => Math.abs(Math.log(Number(x.factor) || 1))), 1e-6);
  return el("section", { id: "why", class: "panel" },
    el("h3", {}, t("why.heading")),
    el("p", { id: "why-sentence", class: "why-sentence" }, whySentence(why, p50)),
    el("p", { class: "why-start" }, t("why.start", { n: units(why.start_units) })),
    el("ul", { id: "factors", class: "factors" }, factors.map((x) => {
      const size = Math.log(Number(x.factor) || 1);
      return el("li", { "data-group": x.group, "data-factor": x.factor, class: size >= 0 ? "up" : "down" },
        el("span", { class: "factor-name" }, groupName(x.group)),
        el("span", { class: "factor-track" },
          el("span", { class: "factor-bar", style: `width:${((Math.abs(size) / widest) * 100).toFixed(1)}%` })),
        el("span", { class: "factor-value" }, factor(x.factor)));
    })));
}

function noveltyBlock(n) {
  const row = (modality, value, floor) => {
    const below = floor !== null && floor !== undefined && Number.isFinite(Number(value)) && Number(value) < Number(floor);
    return el("li", { "data-modality": modality, "data-below": String(below), class: below ? "below" : "" },
      el("span", {}, t(`nov.${modality}`)), " ", el("strong", { class: "value" }, sim(value)),
      modality === "joint" ? null : el("span", { class: "floor" },
        floor === null || floor === undefined ? t("nov.no_floor") : t("nov.floor", { floor: sim(floor) })),
      below ? el("span", { class: "mark" }, ` ✗ ${t("nov.below")}`) : null);
  };
  const mismatch = n.category_agrees === false && n.picture_category;
  return el("section", { id: "novelty", class: "panel" },
    el("h3", {}, t("nov.heading")),
    el("ul", { class: "novelty" },
      row("picture", n.picture, n.picture_floor), row("copy", n.copy, n.copy_floor), row("joint", n.joint, null)),
    mismatch ? el("p", { id: "category-mismatch", class: "warning" },
      t("nov.mismatch", { picture: n.picture_category, category: n.category || "–" })) : null);
}

function assumedBlock(assumed, economics) {
  const names = Object.keys(assumed || {});
  if (!names.length) return null;
  const markup = fmt((economics || {}).markup, 2);
  return el("section", { id: "assumed", class: "panel assumed" },
    el("h3", {}, t("as.heading")),
    el("ul", {}, names.map((name) => {
      const raw = assumed[name];
      const value = name === "list_price" ? money(raw) : String(raw ?? "–").slice(0, 10 + (name === "launch_date" ? 0 : 190));
      const key = known(`as.${name}`) ? `as.${name}` : "as.other";
      return el("li", { "data-field": name }, t(key, { value, markup, field: name }));
    })));
}

const SKU_ID = /^[\w.\-]{1,200}$/;

function overrideBlock(answer) {
  const applied = answer.override;
  const input = el("input", { type: "text", id: "pin_analogs", autocomplete: "off", "aria-describedby": "err-pin_analogs" });
  const add = el("button", { type: "button", id: "pin-add", class: "secondary" }, t("ov.pin_add"));
  const err = el("p", { class: "error", id: "err-pin_analogs", hidden: true });
  const pinIt = () => {
    const id = input.value.trim();
    if (!SKU_ID.test(id)) {
      err.textContent = t("ov.bad_id");
      err.hidden = false;
      input.setAttribute("aria-invalid", "true");
      return;
    }
    if (!override.pinned.includes(id)) override.pinned.push(id);
    override.excluded.delete(id);
    renderResult(lastAnswer);
    $("pin_analogs").focus();
  };
  add.addEventListener("click", pinIt);
  input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); pinIt(); } });
  const recompute = el("button", { type: "button", id: "recompute-btn", class: "primary" }, t("ov.recompute"));
  recompute.addEventListener("click", () => {
    clearErrors(OVERRIDE_FIELDS, "err-form");
    if (!override.excluded.size && !override.pinned.length && !(applied && (applied.excluded || []).length + (applied.pinned || []).length)) {
      err.textContent = t("ov.nothing");
      err.hidden = false;
      return;
    }
    if (lastRequest) send(lastRequest, recompute);
  });
  const list = (ids) => (ids && ids.length ? ids.join(", ") : t("ov.none"));
  return el("section", { id: "override", class: "panel" },
    el("h3", {}, t("ov.heading")),
    el("p", { class: "hint" }, t("ov.hint")),
    applied ? el("p", { id: "override-applied", class: "applied" },
      t("ov.applied", { excluded: list(applied.excluded), pinned: list(applied.pinned) }),
      (applied.not_usable || []).length ? ` ${t("ov.not_usable", { ids: applied.not_usable.join(", ") })}` : null) : null,
    el("div", { class: "pin-row" },
      el("label", { for: "pin_analogs" }, t("ov.pin_label")),
      el("div", { class: "pin-input" }, input, add),
      err),
    override.pinned.length ? el("ul", { id: "pinned", class: "chips" }, override.pinned.map((id) => {
      const remove = el("button", { type: "button", class: "chip-remove", "aria-label": t("ov.remove", { id }) }, "×");
      remove.addEventListener("click", () => {
        override.pinned = override.pinned.filter((x) => x !== id);
        renderResult(lastAnswer);
      });
      return el("li", { "data-sku": id }, id, " ", remove);
    })) : null,
    override.excluded.size ? el("p", { id: "excluded-list", class: "hint" },
      `${t("ov.exclude")}: ${[...override.excluded].join(", ")}`) : null,
    recompute);
}

function renderResult(answer) {
  const f = answer.forecast || {};
  const d = answer.decision || {};
  const label = d.label || "REVIEW";
  const reasons = Array.isArray(d.reasons) ? d.reasons : [];
  const curve = Array.isArray(f.curve) ? f.curve.map(Number) : [];
  const analogs = Array.isArray(answer.analogs) ? answer.analogs : [];
  const be = Number(d.break_even_units);
  const summary = t(Number.isFinite(be) ? "r.summary" : "r.summary_no_be",
    { p50: units(f.p50), p10: units(f.p10), p90: units(f.p90), be: units(be) });
  $("result").replaceChildren(...[
    verdictBlock(label, reasons),
    reasons.includes("LIVE_ERROR_ABOVE_GATE") ? el("p", { id: "live-gate-warning", class: "warning" }, t("r.live_gate")) : null,
    el("p", { id: "decision-summary", class: "summary" }, summary),
    el("h3", { class: "sr-only" }, t("r.reasons")),
    el("ul", { id: "reasons", class: "reasons" },
      reasons.map((code) => el("li", { "data-code": code }, known(`reason.${code}`) ? t(`reason.${code}`) : code))),
    // the service's own sentence is English: shown on the English page only (the Chinese page has its own)
    d.message && lang === "en" ? el("p", { id: "decision-message", class: "message", lang: "en" }, d.message) : null,
    el("dl", { class: "numbers" },
      el("div", {}, el("dt", {}, t("r.p50")), el("dd", { id: "p50" }, units(f.p50))),
      el("div", {}, el("dt", {}, t("r.band")), el("dd", { id: "band" }, `${units(f.p10)} – ${units(f.p90)}`)),
      el("div", {}, el("dt", {}, t("r.break_even")), el("dd", { id: "break-even" }, Number.isFinite(be) ? units(be) : "∞"))),
    economicsBlock(f, d),
    assumedBlock(answer.assumed, d.economics),
    answer.why ? whyBlock(answer.why, f.p50) : null,
    answer.novelty ? noveltyBlock(answer.novelty) : null,
    el("figure", { class: "curve" },
      el("figcaption", {}, t("r.curve")),
      curve.length ? curveChart(curve) : el("p", {}, t("r.no_curve"))),
    el("h3", {}, t("r.analogs")),
    analogs.length ? el("ul", { id: "analogs", class: "analogs" }, analogs.map(analogCard)) : el("p", {}, t("r.no_analogs")),
    overrideBlock(answer),
    answer.model ? el("p", { class: "model-line" }, `${t("r.model")}: ${answer.model.version ?? "–"}`) : null,
  ].filter(Boolean));
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
