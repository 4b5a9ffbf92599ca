/* trialcast merchandiser page: one SKU form, batch upload, model facts. Vanilla JS, no dependencies. */
"use strict";

// Every word comes from the one message catalogue (features/messages.json), fetched at start.
let TEXT = { zh: {}, en: {} };

const SKU_FIELDS = ["image", "title", "description", "cost_price", "list_price", "category", "launch_date", "channel"];
const BATCH_FIELDS = ["candidates", "pictures", "picture_files"];
const LANG_KEY = "trialcast.lang";
const $ = (id) => document.getElementById(id);

let lang = "zh";
let CURRENCY = "¥"; // the service's setting (GET /model: currency)
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
  return new Intl.NumberFormat("en-US", { maximumFractionDigits: digits }).format(halfUp(Number(x), digits));
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
  return (v < 0 ? "-" : "") + CURRENCY + new Intl.NumberFormat("en-US", {
    minimumFractionDigits: whole ? 0 : 2, maximumFractionDigits: whole ? 0 : 2 }).format(halfUp(Math.abs(v), whole ? 0 : 2));
}

/** Half away from zero, as features/messages.py rounds (the one precision rule). */
function halfUp(x, digits = 0) {
  const f = 10 ** digits;
  const v = Math.abs(Number(x)) * f;
  return Math.sign(Number(x)) * Math.round(Number(v.toPrecision(15))) / f;
}

/** A similarity (0-1) as a whole percentage: 58%. */
function sim(x) {
  return x !== null && x !== undefined && Number.isFinite(Number(x)) ? `${halfUp(Number(x) * 100)}%` : "–";
}

/** A category or channel name in the page's language (as the model has it when the catalogue does not know it). */
function nameOf(kind, value) {
  if (value === null || value === undefined || value === "") return "–";
  return known(`${kind}.${value}`) ? t(`${kind}.${value}`) : String(value);
}

/** Headers that ask the service to answer in the page's language. */
function langHeaders() {
  return { "Accept-Language": lang === "zh" ? "zh-CN" : "en" };
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
  for (const option of document.querySelectorAll("#category option[value], #channel option[value]")) {
    if (option.value) option.textContent = nameOf(option.parentElement.id, option.value);
  }
  renderFacts();
  if (lastAnswer) renderResult(lastAnswer);
  if (lastBatchJob) renderBatch(lastBatchJob);
  if (lastRows) renderRows();
  if (lastBatchJob && lastBatchJob.status === "done") finishJob(lastBatchJob); // the rows' error texts, in this language
  loadHistory();
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
    const response = await fetch("/predict", { method: "POST", body: data, headers: langHeaders() });
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
      if (body.forecast_id) history.replaceState(null, "", `?forecast=${encodeURIComponent(body.forecast_id)}`);
      $("result").scrollIntoView({ block: "start", behavior: "smooth" }); // on a phone the answer is below the form
      loadHistory();
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
  const values = curve.map((v) => units(v)).join(", ");
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
      el("title", {}, `${t("r.day", { n: i + 1 })}: ${units(v)}`)));
    svg.append(el("text", { x: (x + bar / 2).toFixed(1), y: (y - 5).toFixed(1), class: "value", "text-anchor": "middle" }, units(v)));
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
      el("p", { class: "analog-title user-data" }, a.title || a.sku_id),
      el("p", { class: "analog-meta" }, [a.sku_id, a.category ? nameOf("category", a.category) : null, a.launch_date].filter(Boolean).join(" · ")),
      el("p", { class: "analog-numbers" },
        el("span", {}, `${t("r.similarity")} `, el("strong", { class: "similarity" }, sim(a.similarity))),
        el("span", {}, `${t("r.sales")} `, el("strong", { class: "sales" }, units(a.sales)))),
      toggle));
}

function known(key) {
  return key in TEXT.en;
}

/** The first batch to make, and in one sentence how it was chosen or why nothing is made (features/quantity.py). */
function quantityBlock(q, e) {
  if (!q || !q.status) return null;
  let line;
  if (q.status === "none") {
    line = t("quantity.none", { reason: t(`quantity.reason.${q.reason}`) });
  } else {
    const make = t("quantity.make", { units: units(q.units), margin: money(e.list_price - e.cost_price),
      loss: money(e.cost_price - q.salvage_value), launch_cost: money(q.launch_cost), profit: money(q.expected_profit) });
    line = q.status === "on_approval" ? t("quantity.on_approval", { make }) : make;
  }
  return el("section", { id: "quantity", "data-status": q.status },
    el("h3", {}, t("r.quantity")), el("p", { class: "quantity-sentence" }, line));
}

/** A reason in words; INPUT_NEEDED names each missing field and the error without it (decision.extra.missing). */
function reasonText(code, decision) {
  if (!known(`reason.${code}`)) return code;
  const missing = ((decision || {}).extra || {}).missing;
  if (code !== "INPUT_NEEDED" || !Array.isArray(missing) || !missing.length) return t(`reason.${code}`);
  const fields = missing.map((x) => t("reason.input_field", { field: known(`field.${x.field}`) ? t(`field.${x.field}`) : x.field,
    error: `${Math.round(Number(x.error) * 100)}%` })).join(t("why.join"));
  return t(`reason.${code}`, { fields });
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
      t("nov.mismatch", { picture: nameOf("category", n.picture_category), category: nameOf("category", n.category) })) : null);
}

function assumedBlock(assumed, economics) {
  const names = Object.keys(assumed || {});
  if (!names.length) return null;
  const markup = fmt((economics || {}).markup, 2);
  return el("section", { id: "assumed", class: "panel assumed" },
    el("h3", {}, t("as.heading")),
    el("ul", {}, names.map((name) => {
      const raw = assumed[name];
      const value = name === "list_price" ? money(raw) : name === "category" ? nameOf("category", raw)
        : String(raw ?? "–").slice(0, 10 + (name === "launch_date" ? 0 : 190));
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
  const english = (answer.lang || "en") === "en" ? d.message : d.message_en;
  const summary = t(Number.isFinite(be) ? "r.summary" : "r.summary_no_be",
    { p50: units(f.p50), p10: units(f.p10), p90: units(f.p90), be: units(be) });
  $("result").replaceChildren(...[
    verdictBlock(label, reasons),
    reasons.includes("LIVE_ERROR_ABOVE_GATE") ? el("p", { id: "live-gate-warning", class: "warning" }, t("r.live_gate")) : null,
    reasons.includes("MODEL_ABOVE_GATE") ? el("p", { id: "advisory-warning", class: "warning" },
      t("r.model_above_gate", { failures: gateText(((d.extra || {}).gate || {}).failures) })) : null,
    el("p", { id: "decision-summary", class: "summary" }, summary),
    el("h3", { class: "sr-only" }, t("r.reasons")),
    el("ul", { id: "reasons", class: "reasons" },
      reasons.map((code) => el("li", { "data-code": code }, reasonText(code, d)))),
    // the service's own sentence, when it is in the page's language (the page writes its own summary above)
    english && lang === "en" ? el("p", { id: "decision-message", class: "message", lang: "en" }, english) : null,
    ...(Array.isArray(answer.warnings) ? answer.warnings : []).map((w) =>
      el("p", { class: "warning launch-warning", "data-code": w.code }, t("r.launch_far", w.params || {}))),
    answer.reopened ? el("p", { id: "reopened", class: "hint" }, t("r.reopened", {
      when: when(answer.reopened.created_at), version: (answer.model || {}).version ?? "–" })) : null,
    el("dl", { class: "numbers" },
      el("div", {}, el("dt", {}, t("r.p50")), el("dd", { id: "p50" }, units(f.p50))),
      el("div", {}, el("dt", {}, t("r.band")), el("dd", { id: "band" }, `${units(f.p10)} – ${units(f.p90)}`)),
      el("div", {}, el("dt", {}, t("r.break_even")), el("dd", { id: "break-even" }, Number.isFinite(be) ? units(be) : "∞"))),
    economicsBlock(f, d),
    quantityBlock(answer.quantity, d.economics),
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
    answer.forecast_id ? el("p", { class: "result-actions no-print" },
      button("share-btn", t("r.share"), () => share(answer.forecast_id)),
      button("print-btn", t("r.print"), () => window.print()),
      el("span", { id: "share-note", class: "hint", hidden: true }, t("r.copied"))) : null,
  ].filter(Boolean));
}

/* ------------------------------------------------------------------ batch */
let pollTimer = null;
let lastRows = null; // the finished job's rows (GET /batch/{id}/rows)
const rowView = { filter: "ALL", sort: "row", dir: 1 };

function button(id, label, onClick) {
  const b = el("button", { type: "button", id, class: "secondary" }, label);
  b.addEventListener("click", onClick);
  return b;
}

function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
}

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
  for (const f of $("picture_files").files) data.append("picture_files", f);
  clearTimeout(pollTimer);
  lastBatchJob = null;
  lastRows = null;
  $("batch-btn").disabled = true;
  try {
    const response = await fetch("/batch", { method: "POST", body: data, headers: langHeaders() });
    const body = await readJson(response);
    if (response.status === 202 && body && body.id) {
      showJob(body);
    } else {
      $("batch-btn").disabled = false;
      showServerErrors(response.status, body, BATCH_FIELDS, "err-batch");
    }
  } catch (_) {
    $("batch-btn").disabled = false;
    showGeneral("err-batch", t("err.network"));
  }
});

function showJob(job) {
  lastBatchJob = job;
  history.replaceState(null, "", `?job=${encodeURIComponent(job.id)}`);
  renderBatch(job);
  if (job.status === "queued" || job.status === "running") poll(job.id);
  else finishJob(job);
}

function poll(id) {
  pollTimer = setTimeout(async () => {
    try {
      const response = await fetch(`/batch/${encodeURIComponent(id)}`, { cache: "no-store", headers: langHeaders() });
      const body = await readJson(response);
      if (response.status === 404) {
        lastBatchJob = { id, status: "failed", error: { code: "job_not_found" }, done: 0, total: 0 };
      } else if (response.ok && body) {
        lastBatchJob = body;
      }
    } catch (_) { /* transient: keep polling */ }
    renderBatch(lastBatchJob);
    if (lastBatchJob.status === "running" || lastBatchJob.status === "queued") poll(id);
    else finishJob(lastBatchJob);
  }, 600);
}

async function finishJob(job) {
  $("batch-btn").disabled = false;
  loadHistory();
  if (job.status !== "done") return;
  const response = await fetch(`/batch/${encodeURIComponent(job.id)}/rows`, { cache: "no-store", headers: langHeaders() });
  const body = await readJson(response);
  if (response.ok && body) {
    lastRows = body.rows;
    renderBatch(job);
    renderRows();
  }
}

$("batch-cancel").addEventListener("click", async () => {
  if (!lastBatchJob) return;
  await fetch(`/batch/${encodeURIComponent(lastBatchJob.id)}/cancel`, { method: "POST", headers: langHeaders() });
});

function renderBatch(job) {
  const done = Number(job.done) || 0;
  const total = Number(job.total) || 0;
  $("batch-status").hidden = false;
  $("batch-progress").max = Math.max(total, 1);
  $("batch-progress").value = done;
  const summary = job.summary || {};
  const failedRows = lastRows ? lastRows.filter((r) => !r.ok) : [];
  let line;
  if (job.status === "done") {
    line = t("batch.done", { done, total, scored: summary.scored ?? done - failedRows.length, failed: summary.failed ?? failedRows.length });
  } else if (job.status === "queued") {
    line = t("batch.queued", { ahead: job.queue_position ?? 0 });
  } else if (job.status === "cancelled") {
    line = t("batch.cancelled", { done, total });
  } else {
    line = t("batch.running", { done, total });
  }
  $("batch-text").textContent = line;
  const fmt = summary.format || {};
  $("batch-read-as").hidden = fmt.kind !== "csv";
  if (fmt.kind === "csv") {
    $("batch-read-as").textContent = t("batch.guessed", { encoding: fmt.encoding, delimiter: t(`delim.${fmt.delimiter}`) });
  }
  const failedJob = job.status === "failed";
  $("batch-message").hidden = !failedJob;
  $("batch-message").textContent = failedJob && job.error ? t(`err.${job.error.code}`, job.error.params || {}) : "";
  $("batch-cancel").hidden = !(job.status === "queued" || job.status === "running");
  const finished = job.status === "done";
  $("batch-download").hidden = !finished;
  if (finished) {
    const q = `?lang=${lang}`;
    $("batch-link").href = `/batch/${encodeURIComponent(job.id)}/scores.csv${q}`;
    $("batch-link-xlsx").href = `/batch/${encodeURIComponent(job.id)}/scores.xlsx${q}`;
  }
  const counts = summary.counts || {};
  $("batch-counts").hidden = !finished;
  $("batch-counts").replaceChildren(...(finished ? [
    ["ALL", t("batch.filter_all"), total],
    ...["GO", "REVIEW", "NO_GO"].map((d) => [d, t(`label.${d}`), counts[d] ?? 0]),
    ["FAILED", t("batch.count_failed"), summary.failed ?? 0],
  ].map(([code, label, n]) => {
    const b = el("button", { type: "button", class: `count count-${code}`, "data-filter": code,
      "aria-pressed": String(rowView.filter === code) }, el("span", { class: "count-label" }, label), " ",
      el("strong", { class: "count-n" }, fmt0(n)));
    b.addEventListener("click", () => { rowView.filter = code; renderBatch(lastBatchJob); renderRows(); });
    return b;
  }) : []));
  $("batch-failed").hidden = !failedRows.length;
  $("batch-failed-rows").replaceChildren(...failedRows.map((r) =>
    el("tr", {}, el("td", {}, r.row), el("td", { class: "user-data" }, r.sku_id ?? ""),
      el("td", { class: "reason" }, r.errors.map((e) => e.text).join(t("list.join"))))));
}

function fmt0(n) { return fmt(n, 0); }

const SORTS = {
  row: (r) => r.row, sku: (r) => r.sku_id, p50: (r) => r.p50 ?? -1, be: (r) => r.break_even ?? -1,
  decision: (r) => r.decision || "~", analog: (r) => (r.top_analog ? r.top_analog.sales : -1),
};

function renderRows() {
  const table = $("batch-results");
  if (!lastRows) { table.hidden = true; return; }
  table.hidden = false;
  const keep = lastRows.filter((r) => rowView.filter === "ALL" || (rowView.filter === "FAILED" ? !r.ok : r.decision === rowView.filter));
  const key = SORTS[rowView.sort] || SORTS.row;
  keep.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * rowView.dir; });
  for (const th of document.querySelectorAll("#batch-results th[data-sort]")) {
    th.setAttribute("aria-sort", th.dataset.sort === rowView.sort ? (rowView.dir > 0 ? "ascending" : "descending") : "none");
  }
  $("batch-result-rows").replaceChildren(...keep.map((r) => el("tr", { "data-row": r.row, "data-decision": r.decision || "FAILED" },
    el("td", { class: "sku user-data" }, r.sku_id, el("br"), el("span", { class: "hint" }, r.title)),
    el("td", {}, r.ok ? el("img", { src: `/batch/${encodeURIComponent(lastBatchJob.id)}/pictures/${r.row}.jpg`, alt: r.sku_id, width: 48, height: 48, loading: "lazy" }) : null),
    el("td", { class: "num p50" }, r.ok ? units(r.p50) : "–", r.ok ? el("span", { class: "band" }, ` (${units(r.p10)}–${units(r.p90)})`) : null),
    el("td", { class: "num be" }, r.ok ? units(r.break_even) : "–"),
    el("td", {}, r.ok ? el("span", { class: `badge badge-${r.decision}`, "data-label": r.decision }, t(`label.${r.decision}`)) : el("span", { class: "error" }, t("batch.count_failed"))),
    el("td", { class: "reasons-cell" }, r.ok ? r.reasons.map((c) => (known(`reason.${c}`) ? t(`reason.${c}`) : c)).join(t("list.join"))
      : r.errors.map((e) => e.text).join(t("list.join"))),
    el("td", { class: "analog-cell" }, r.top_analog ? t("batch.analog_line", { sku: r.top_analog.sku_id,
      similarity: sim(r.top_analog.similarity), sales: units(r.top_analog.sales) }) : "–"))));
}

for (const th of document.querySelectorAll("#batch-results th[data-sort]")) {
  th.addEventListener("click", () => {
    rowView.dir = rowView.sort === th.dataset.sort ? -rowView.dir : 1;
    rowView.sort = th.dataset.sort;
    renderRows();
  });
}

/* ------------------------------------------------------------------ history, share links */
async function loadHistory() {
  let body = null;
  try {
    const response = await fetch("/history?limit=20", { cache: "no-store", headers: langHeaders() });
    body = response.ok ? await readJson(response) : null;
  } catch (_) { body = null; }
  if (!body) return;
  const forecasts = body.forecasts || [];
  const jobs = body.jobs || [];
  $("history-forecasts").replaceChildren(...(forecasts.length ? forecasts.map((f) => el("li", { "data-id": f.id },
    el("a", { href: `?forecast=${encodeURIComponent(f.id)}`, class: "history-open" }, `${when(f.created_at)} · `,
      el("span", { class: "user-data" }, f.title)),
    " ", el("span", { class: `badge badge-${f.decision}` }, t(`label.${f.decision}`)), " ",
    el("span", { class: "hint" }, t("r.units", { n: f.p50 })))) : [el("li", { class: "hint" }, t("hist.empty"))]));
  $("history-jobs").replaceChildren(...(jobs.length ? jobs.map((j) => el("li", { "data-id": j.id },
    el("a", { href: `?job=${encodeURIComponent(j.id)}`, class: "history-open" },
      t("hist.job_line", { when: when(j.created_at), name: "", rows: fmt0(j.total), status: t(`status.${j.status}`) })),
    " ", el("span", { class: "user-data hint" }, j.filename || ""))) : [el("li", { class: "hint" }, t("hist.empty"))]));
}

async function share(id) {
  const url = `${location.origin}/?forecast=${encodeURIComponent(id)}`;
  try { await navigator.clipboard.writeText(url); } catch (_) { /* not allowed: the address bar holds it too */ }
  history.replaceState(null, "", `?forecast=${encodeURIComponent(id)}`);
  $("share-note").hidden = false;
}

/** ?forecast=ID reopens a single forecast on record; ?job=ID a batch job. */
async function openFromLink() {
  const params = new URLSearchParams(location.search);
  const forecastId = params.get("forecast");
  const jobId = params.get("job");
  if (forecastId) {
    const response = await fetch(`/forecasts/${encodeURIComponent(forecastId)}`, { headers: langHeaders() });
    const body = await readJson(response);
    if (response.ok && body && body.forecast) {
      lastAnswer = body;
      renderResult(body);
      $("result").scrollIntoView({ block: "start" });
    } else {
      $("result").replaceChildren(el("p", { id: "not-on-record", class: "error" }, t("r.not_found")));
    }
  } else if (jobId) {
    const response = await fetch(`/batch/${encodeURIComponent(jobId)}`, { headers: langHeaders() });
    const body = await readJson(response);
    if (response.ok && body) {
      showJob(body);
      $("batch-status").scrollIntoView({ block: "start" });
    }
  }
}

/* ------------------------------------------------------------------ model facts */
// The failed checks of a model's gate (features.decision.gate_failures), in the page's language.
function gateText(failures) {
  return (Array.isArray(failures) ? failures : []).map((f) => {
    const p = { ...(f.params || {}) };
    if (p.level) p.level = t(`gate.level.${p.level}`);
    if (p.stage) p.stage = t(`gate.stage.${p.stage}`);
    return t(`gate.fail.${f.code}`, p);
  }).join(t("list.join"));
}

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
  banner.hidden = !modelFacts.advisory; // a model its gate refused serves: say so above everything
  banner.classList.toggle("advisory", Boolean(modelFacts.advisory));
  if (modelFacts.advisory) {
    banner.textContent = t("facts.advisory", { version: modelFacts.version ?? "–", failures: gateText(modelFacts.gate_failures) });
  }
  $("launch-hint").textContent = modelFacts.train_end ? t("f.launch_date_hint", { end: String(modelFacts.train_end).slice(0, 10) }) : "";
  footer.replaceChildren(
    el("span", { id: "fact-version" }, t("facts.model", { version: modelFacts.version ?? "–" })),
    el("span", { id: "fact-trained" }, t("facts.trained_on", { n: fmt(modelFacts.trained_on, 0) })),
    el("span", { id: "fact-gate" }, t("facts.gate", {
      metric: String(modelFacts.gate_metric || "").toUpperCase(),
      level: t(`gate.level.${modelFacts.gate_level || "sku"}`),
      stage: t(`gate.stage.${modelFacts.gate_stage || "pre_launch"}`),
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
  for (const c of modelFacts.categories || []) select.append(el("option", { value: c }, nameOf("category", c)));
  if (modelFacts.currency) CURRENCY = modelFacts.currency;
  renderFacts();
}

/* ------------------------------------------------------------------ start */
async function loadCatalogue() {
  try {
    const response = await fetch("/messages.json", { cache: "no-cache" });
    if (response.ok) TEXT = await response.json();
  } catch (_) { /* the page keeps the Chinese of index.html */ }
}

(async () => {
  await loadCatalogue();
  applyLanguage();
  await loadModel();
  openFromLink();
})();
