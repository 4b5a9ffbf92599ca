/* trialcast's API page: renders the service's own OpenAPI document (/docs.json). No third-party code. */
"use strict";

function node(tag, attrs, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) n.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return n;
}

function schemaLine(schema) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.type === "array") return `array of ${schemaLine(schema.items)}`;
  if (schema.anyOf) return schema.anyOf.map(schemaLine).join(" | ");
  return schema.format ? `${schema.type} (${schema.format})` : schema.type || "object";
}

function operation(path, method, op) {
  const params = (op.parameters || []).map((p) => node("li", {}, node("code", {}, p.name), ` (${p.in}) ${schemaLine(p.schema)}`,
    p.description ? ` — ${p.description}` : ""));
  const body = op.requestBody && op.requestBody.content ? Object.entries(op.requestBody.content) : [];
  const fields = [];
  for (const [media, content] of body) {
    const props = (content.schema && content.schema.properties) || {};
    const required = new Set((content.schema && content.schema.required) || []);
    fields.push(node("p", {}, `Body (${media}):`));
    fields.push(node("ul", {}, Object.entries(props).map(([name, s]) => node("li", {}, node("code", {}, name),
      required.has(name) ? " (required)" : "", ` ${schemaLine(s)}`, s.description ? ` — ${s.description}` : ""))));
    if (content.example || content.examples) {
      const example = content.example || Object.values(content.examples)[0];
      fields.push(node("pre", {}, node("code", {}, JSON.stringify(example.value ?? example, null, 1))));
    }
  }
  const statuses = Object.entries(op.responses || {}).map(([code, r]) => node("li", {}, node("code", {}, code), ` ${r.description || ""}`));
  return node("article", { class: "operation", id: `${method}-${path}`.replace(/[^\w-]/g, "_") },
    node("h3", {}, node("code", {}, method.toUpperCase()), " ", node("code", {}, path)),
    op.summary ? node("p", {}, op.summary) : null,
    op.description ? node("p", { class: "hint" }, op.description) : null,
    params.length ? node("ul", {}, params) : null, fields,
    statuses.length ? node("ul", { class: "statuses" }, statuses) : null);
}

(async () => {
  const box = document.getElementById("operations");
  try {
    const spec = await (await fetch("/docs.json")).json();
    const info = spec.info || {};
    // The title, version and description are trialcast's own (in the page); the spec gives the operations.
    document.getElementById("api-version").textContent += ` · OpenAPI ${spec.openapi || ""}`;
    const ops = [];
    for (const [path, methods] of Object.entries(spec.paths || {})) {
      for (const [method, op] of Object.entries(methods)) ops.push(operation(path, method, op));
    }
    box.replaceChildren(...ops);
  } catch (error) {
    box.replaceChildren(node("p", { class: "error" }, `Could not read /docs.json: ${error}`));
  }
})();
