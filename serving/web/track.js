/* trialcast launch tracking page: the live error per model version and each launched SKU's days
   against its forecast (GET /launches). Chinese by default, English by the toggle (the choice is
   shared with the main page). Plain DOM, no third-party code. */
"use strict";

const TEXT = {
  zh: {
    "tagline": "上新跟踪：实际销量对比预测，补货 / 滞销信号",
    "live.heading": "模型的实际误差",
    "launches.heading": "已上新的 SKU",
    "launches.note": "每个 SKU 按天对比预测曲线：累计销量高于预测 {pct} 以上为「补货」，低于 P10 路径为「滞销」。",
    "launches.empty": "还没有上新 SKU 的实际销量（用 trialcast actuals 或 POST /actuals 上传）。",
    "live.none": "还没有满 7 天实际销量的上新。",
    "live.line": "模型 v{v}：{n} 个上新，WAPE {wape}（90% 区间 {lo} – {hi}），偏差 {bias}，P10–P90 覆盖率 {cov}，上新决定命中率 {go}",
    "live.above": "超过 {gate} 门槛：预测不能再用来决定生产，所有回答转为复核。",
    "live.under": "低于 {gate} 门槛。",
    "live.serving": "（当前服务的版本）",
    "col.sku": "SKU", "col.version": "版本", "col.decision": "决定", "col.days": "天数",
    "col.actual": "累计实际", "col.forecast": "累计预测", "col.signal": "信号", "col.updated": "7 天预测（原 → 更新）",
    "col.curve": "每日销量",
    "signal.RESTOCK": "补货", "signal.SLOW": "滞销", "signal.ON_TRACK": "正常",
    "decision.GO": "上新", "decision.REVIEW": "复核", "decision.NO_GO": "不上新",
    "legend": "实线：实际；虚线：预测",
    "lang.switch": "English", "lang.switch_label": "Switch to English",
    "error": "无法读取上新数据：{msg}",
  },
  en: {
    "tagline": "Launch tracking: actual sales against the forecast, restock / slow signals",
    "live.heading": "The model's live error",
    "launches.heading": "Launched SKUs",
    "launches.note": "Each SKU day by day against its forecast curve: RESTOCK when sales to date run more than {pct} above the forecast, SLOW when under the P10 path.",
    "launches.empty": "No actual sales of launched SKUs yet (send them with trialcast actuals or POST /actuals).",
    "live.none": "No launch with 7 days of actual sales yet.",
    "live.line": "Model v{v}: {n} launches, WAPE {wape} (90% interval {lo} – {hi}), bias {bias}, P10–P90 coverage {cov}, GO precision {go}",
    "live.above": "At or above the {gate} gate: forecasts may no longer steer production; every answer goes to REVIEW.",
    "live.under": "Under the {gate} gate.",
    "live.serving": "(the version serving now)",
    "col.sku": "SKU", "col.version": "Version", "col.decision": "Decision", "col.days": "Days",
    "col.actual": "Sold to date", "col.forecast": "Forecast to date", "col.signal": "Signal",
    "col.updated": "7-day forecast (prior → updated)", "col.curve": "Daily units",
    "signal.RESTOCK": "Restock", "signal.SLOW": "Slow", "signal.ON_TRACK": "On track",
    "decision.GO": "GO", "decision.REVIEW": "REVIEW", "decision.NO_GO": "NO_GO",
    "legend": "solid: actual; dashed: forecast",
    "lang.switch": "中文", "lang.switch_label": "切换到中文",
    "error": "Could not read the launches: {msg}",
  },
};

const LANG_KEY = "trialcast.lang";
let lang = new URLSearchParams(location.search).get("lang") || localStorage.getItem(LANG_KEY) || "zh";
if (lang !== "en") lang = "zh";
let data = null;

function t(key, vars) {
  let s = TEXT[lang][key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replaceAll(`{${k}}`, v);
  return s;
}
const pct = (x, d = 1) => (x == null ? "–" : `${(100 * x).toFixed(d)}%`);
const units = (x) => new Intl.NumberFormat(lang === "zh" ? "zh-CN" : "en-US", { maximumFractionDigits: 0 }).format(Math.round(x));

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) if (c != null) node.append(c);
  return node;
}

function sparkline(actual, forecast) {
  const ns = "http://www.w3.org/2000/svg";
  const w = 120, h = 36, top = Math.max(1, ...actual, ...forecast);
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", t("legend"));
  const path = (ys, dashed) => {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", ys.map((y, i) => `${(i * (w - 4)) / 6 + 2},${h - 2 - (y / top) * (h - 4)}`).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", dashed ? "#5b6676" : "#2457c5");
    line.setAttribute("stroke-width", "2");
    if (dashed) line.setAttribute("stroke-dasharray", "3 3");
    svg.append(line);
  };
  path(forecast, true);
  path(actual, false);
  return svg;
}

function renderLive() {
  const box = document.getElementById("live");
  box.replaceChildren();
  const versions = Object.entries(data.live || {}).filter(([, m]) => m.n);
  if (!versions.length) return box.append(el("p", { class: "muted" }, t("live.none")));
  for (const [v, m] of versions) {
    const band = m.wape_interval || [null, null];
    const line = t("live.line", { v, n: m.n, wape: pct(m.wape), lo: pct(band[0]), hi: pct(band[1]), bias: pct(m.bias),
                                  cov: pct(m.coverage, 0), go: pct(m.go_precision, 0) });
    const verdict = t(m.above_gate ? "live.above" : "live.under", { gate: pct(m.threshold, 0) });
    box.append(el("p", { class: m.above_gate ? "warning live-version" : "live-version", "data-version": v },
                  line + " " + (v === data.serving_version ? t("live.serving") + " " : "") + verdict));
  }
}

function renderLaunches() {
  const table = document.getElementById("launches");
  const cols = ["sku", "version", "decision", "days", "actual", "forecast", "signal", "updated", "curve"];
  table.tHead.replaceChildren(el("tr", {}, ...cols.map((c) => el("th", { scope: "col" }, t(`col.${c}`)))));
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const r of data.launches) {
    body.append(el("tr", { "data-sku": r.sku_id, "data-forecast": r.forecast_id, "data-signal": r.signal },
      el("td", {}, r.sku_id), el("td", {}, `v${r.model_version}`), el("td", {}, t(`decision.${r.decision}`)),
      el("td", {}, `${r.days}/7`), el("td", {}, units(r.actual_to_date)), el("td", {}, units(r.forecast_to_date)),
      el("td", { class: `signal signal-${r.signal.toLowerCase()}` }, t(`signal.${r.signal}`)),
      el("td", {}, `${units(r.prior_7d)} → ${units(r.updated_7d)}`),
      el("td", {}, sparkline(r.daily_actual, r.daily_forecast))));
  }
  const empty = document.getElementById("launches-empty");
  empty.hidden = data.launches.length > 0;
  empty.textContent = t("launches.empty");
}

function render() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = `trialcast · ${t("launches.heading")}`;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n, { pct: pct(data?.restock_threshold ?? 0.3, 0) });
  const toggle = document.getElementById("lang-toggle");
  toggle.textContent = t("lang.switch");
  toggle.setAttribute("aria-label", t("lang.switch_label"));
  toggle.setAttribute("lang", lang === "zh" ? "en" : "zh-CN");
  if (data) { renderLive(); renderLaunches(); }
}

document.getElementById("lang-toggle").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem(LANG_KEY, lang);
  render();
});

fetch("/launches").then(async (response) => {
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || body.error || response.status);
  data = body;
  render();
}).catch((e) => {
  render();
  document.getElementById("live").append(el("p", { class: "warning" }, t("error", { msg: e.message })));
});
render();
