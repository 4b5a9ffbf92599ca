/* trialcast launch tracking page: the live error per model version and each launched SKU's days
   against its forecast (GET /launches). Chinese by default, English by the toggle (the choice is
   shared with the main page). Plain DOM, no third-party code. */
"use strict";

// Every word comes from the one message catalogue (features/messages.json, keys track.* and lang.*).
let TEXT = { zh: {}, en: {} };

const LANG_KEY = "trialcast.lang";
let lang = new URLSearchParams(location.search).get("lang") || localStorage.getItem(LANG_KEY) || "zh";
if (lang !== "en") lang = "zh";
let data = null;

function t(key, vars) {
  const name = key.startsWith("lang.") ? key : `track.${key}`;
  let s = TEXT[lang][name] ?? TEXT.en[name] ?? key;
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

fetch("/messages.json", { cache: "no-cache" }).then((r) => r.json()).then((catalogue) => {
  TEXT = catalogue;
  render();
  return fetch("/launches");
}).then(async (response) => {
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || body.error || response.status);
  data = body;
  render();
}).catch((e) => {
  render();
  document.getElementById("live").append(el("p", { class: "warning" }, t("error", { msg: e.message })));
});
