// convcalc design page: edit a spec, see the report and the graph live, verify it, load
// zoo models.  Plain JS, no library, nothing from the network but this service's own API.
// The YAML goes to POST /api/v1/analyse as application/yaml (parsed server-side, so every
// error carries its line); answers are the CLI's JSON report or an RFC 9457 problem.
// The graph is POST /api/v1/draw's SVG (Graphviz's layout, made on the server), inlined;
// its groups carry data-layer / data-group / data-folded, its edges data-from / data-to.
"use strict";

const DEBOUNCE_MS = 300;
const STORAGE_KEY = "convcalc.design-page.v1";
const YAML_TYPE = "application/yaml; charset=utf-8";
const PT_TO_PX = 4 / 3;
const EXAMPLE = `# SimpleConvNet — edit me: the report updates as you type
name: SimpleConvNet
input: [1, 28, 28]            # channels, then 1, 2 or 3 spatial sizes
layers:
  - {type: conv, filters: 30, kernel: 5, stride: 1, padding: 0}
  - relu
  - {type: maxpool, kernel: 2, stride: 2}
  - flatten
  - {type: dense, units: 100}
  - relu
  - {type: dense, units: 10}
  - softmax
`;

const $ = (id) => document.getElementById(id);
const editor = $("spec");
const state = {
  sequence: 0,           // the latest analyse request; older answers are dropped
  timer: null,
  report: null,          // the last good report
  reportText: null,      // the text it is the report of
  verification: null,    // the last verification of the current text, by layer name
  marks: new Map(),      // line -> {severity, messages}
  zooTexts: new Map(),   // zoo model -> its file, as loaded
  model: "",             // the zoo model the editor holds unchanged ("": your spec)
  folded: new Set(),     // block instances drawn (and listed) folded
  foldManual: false,     // false: the service chooses the depth (depth=auto)
  selected: null,        // the selected layer's name
  zoom: "fit",           // "fit" or a scale factor
  nodes: new Map(),      // layer or folded block name -> its <g> in the graph
  verifyRun: null,       // {controller, started, ticker} while a verification runs
  dtype: "float32",      // the memory figures' dtype and optimizer (analyse's query)
  optimizer: "sgd",
  showNotes: false,      // the notes under the editor are open
  verifyTimeout: null,   // the service's limit on a verification, in seconds
};

// --- small helpers --------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function setStatus(text, kind = "") {
  const status = $("status");
  status.textContent = text;
  status.className = kind;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// --- numbers: integers above 2**53 are never rounded nor computed with ----------------------
// The service writes such integers as JSON numbers *and* as exact digits in "exact"
// (convcalc/report.py).  JSON.parse keeps big integers exact as BigInt where the browser
// gives a reviver the number's source text; everywhere else "exact" is used.

function parseJSON(text) {
  return JSON.parse(text, function (key, value, context) {
    if (typeof value === "number" && !Number.isSafeInteger(value) && Number.isInteger(value)
        && context && typeof context.source === "string" && /^-?\d+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  });
}

/** An integer field as the exact value: a safe Number, a BigInt, or null. */
function exact(object, key) {
  if (!object) return null;
  const digits = object.exact && object.exact[key];
  if (typeof digits === "string" && /^-?\d+$/.test(digits)) return BigInt(digits);
  return object[key] ?? null;
}

function groupDigits(digits) {
  const negative = digits.startsWith("-");
  const body = negative ? digits.slice(1) : digits;
  return (negative ? "-" : "") + body.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** An integer as text with thousands separators; a rounded Number says so (≈). */
function count(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "bigint") return groupDigits(value.toString());
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    return "≈" + value.toLocaleString("en-US");
  }
  return typeof value === "number" ? groupDigits(String(value)) : String(value);
}

/** Bytes in binary units with two decimals, as convcalc/units.py's format_bytes. */
function bytesText(value) {
  if (value === null || value === undefined) return "—";
  let size = Number(value);
  if (size < 1024) return `${size} B`;
  let unit = "";
  for (unit of ["KiB", "MiB", "GiB", "TiB", "PiB"]) {
    size /= 1024;
    if (Math.round(size * 100) / 100 < 1024 || unit === "PiB") break;
  }
  return `${size.toFixed(2)} ${unit}`;
}

/** The sum of some byte counts, or null when one is unknown. */
function bytesSum(values) {
  let total = 0;
  for (const value of values) {
    if (value === null || value === undefined) return null;
    total += Number(value);
  }
  return total;
}

/** a − b, exactly, or null when either is not known exactly. */
function difference(a, b) {
  if (a === null || b === null) return null;
  const unsafe = (v) => typeof v === "number" && !Number.isSafeInteger(v);
  if (unsafe(a) || unsafe(b)) return null;
  if (typeof a === "bigint" || typeof b === "bigint") return BigInt(a) - BigInt(b);
  return a - b;
}

const shapeText = (s) => (s ? "[" + s.map(String).join(", ") + "]" : "—");

function axes(values) {
  const texts = values.map((v) => (typeof v === "bigint" || Number.isInteger(v) ? String(v)
    : String(+v.toPrecision(6))));
  return new Set(texts).size === 1 ? texts[0] : texts.join("×");
}

function fieldText(rf) {
  return rf ? `${axes(rf.size)} / ${axes(rf.jump)} / ${axes(rf.padding)}` : "—";
}

// --- messages: problem documents as sentences, never status codes ----------------------------

const SENTENCES = {
  "invalid-spec": "The spec is not valid",
  "too-many-layers": "The network has too many layers for this service",
  "network-errors": "The network has errors, so it was not run on the engine",
  "over-memory": "The run would need more memory than this service allows",
  "verify-timeout": "The verification took too long and was stopped",
  "verify-failed": "The verification could not be run",
  "worker-failed": "The verification's worker process stopped without answering",
  "busy": "The service is busy",
  "body-too-large": "The spec is larger than this service accepts",
  "body-timeout": "The spec took too long to arrive",
  "unsupported-media-type": "The service did not accept the spec's format",
  "invalid-request": "The request was not accepted",
  "no-graphviz": "The service cannot draw the graph: Graphviz is not installed where it runs",
  "draw-timeout": "Drawing the graph took too long",
  "draw-failed": "Drawing the graph failed",
  "too-large-to-draw": "The graph is too large to draw",
  "sizes-too-complex": "Which input sizes work could not be worked out",
  "unknown-zoo-model": "There is no such zoo model",
  "too-many-connections": "The service has too many connections open",
  "internal-error": "The service failed on this request",
};

function slugOf(problem) {
  const type = (problem && problem.type) || "";
  return type.slice(type.lastIndexOf("/") + 1);
}

/** The problem's headline: a sentence of words. */
function headline(problem) {
  return SENTENCES[slugOf(problem)] || (problem && problem.title) ||
    "The service could not answer this request";
}

/** The headline and what the service said about it (its detail, without the file name). */
function sentence(problem) {
  const detail = ((problem && problem.detail) || "").replace(/^<request>:(\d+): /gm, "line $1: ");
  const text = headline(problem);
  return detail ? `${text}: ${detail}` : `${text}.`;
}

/** A failed response's problem document (or one made up when the body is not one). */
async function problemOf(response) {
  try {
    const body = parseJSON(await response.text());
    if (body && typeof body === "object") return body;
  } catch (error) { /* not JSON: below */ }
  return { title: "The service could not answer this request", detail: "" };
}

// --- storage: the text survives a reload ------------------------------------------------------

function saveState() {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify({
      text: editor.value, model: state.model,
      batch: $("batch").value, gradcheck: $("gradcheck").checked,
      dtype: state.dtype, optimizer: state.optimizer }));
  } catch (error) { /* storage refused (private mode, quota): nothing kept */ }
}

function loadState() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
    return saved && typeof saved.text === "string" ? saved : null;
  } catch (error) {
    return null;
  }
}

// --- the editor: line numbers and marked lines -----------------------------------------------

function renderLines() {
  const lines = editor.value.split("\n").length;
  const gutter = $("gutter-lines");
  const backdrop = $("backdrop-lines");
  gutter.replaceChildren();
  backdrop.replaceChildren();
  for (let n = 1; n <= lines; n++) {
    const mark = state.marks.get(n);
    const cls = mark ? (mark.severity === "error" ? "err" : "warn") : "";
    const number = el("div", { class: cls, text: String(n) });
    if (mark) number.title = mark.messages.join("\n");
    gutter.append(number);
    backdrop.append(el("div", { class: cls, "data-line": String(n) }));
  }
  syncScroll();
}

function syncScroll() {
  const shift = `translateY(${-editor.scrollTop}px)`;
  $("gutter-lines").style.transform = shift;
  $("backdrop-lines").style.transform = shift;
}

function problemLine(problem, lineOf) {
  return problem.line ?? lineOf.get(problem.layer);
}

function setMarks(problems, report) {
  state.marks = new Map();
  const lineOf = new Map((report ? report.layers : []).map((row) => [row.name, row.line]));
  for (const problem of problems) {
    if (problem.severity === "note") continue;
    const line = problemLine(problem, lineOf);
    if (!line) continue;
    const mark = state.marks.get(line) || { severity: "warning", messages: [] };
    if (problem.severity === "error") mark.severity = "error";
    mark.messages.push(problem.message);
    state.marks.set(line, mark);
  }
  renderLines();
}

function goToLine(line) {
  const lines = editor.value.split("\n");
  const start = lines.slice(0, line - 1).reduce((n, text) => n + text.length + 1, 0);
  editor.focus();
  editor.setSelectionRange(start, start + (lines[line - 1] || "").length);
  const style = getComputedStyle(editor);
  editor.scrollTop = Math.max(0, (line - 3) * parseFloat(style.lineHeight));
  syncScroll();
}

const SEVERITY_CLASS = { error: "err", warning: "warn", note: "note" };

function problemItem(problem, lineOf) {
  const line = problemLine(problem, lineOf);
  const where = [line ? `line ${line}` : "", problem.field || "", problem.layer ? `(${problem.layer})` : ""]
    .filter(Boolean).join(" ");
  const prefix = problem.severity === "error" ? "" : problem.severity + ": ";
  const item = el("li", { class: SEVERITY_CLASS[problem.severity] || "warn" },
    el("b", { text: where ? where + ": " : "" }), prefix + problem.message);
  if (line) {
    item.dataset.line = String(line);
    item.addEventListener("click", () => goToLine(line));
  }
  return item;
}

/** Errors and warnings under the editor; notes (what layers do as their options declare
 * it) folded into one line that opens them. */
function renderProblems(problems, report) {
  const list = $("problems");
  list.replaceChildren();
  const lineOf = new Map((report ? report.layers : []).map((row) => [row.name, row.line]));
  const notes = problems.filter((p) => p.severity === "note");
  for (const problem of problems) {
    if (problem.severity !== "note") list.append(problemItem(problem, lineOf));
  }
  if (!notes.length) return;
  const toggle = el("li", { class: "notes-toggle", role: "button", "aria-expanded": String(state.showNotes) },
    `${state.showNotes ? "▾" : "▸"} ${plural(notes.length, "note")}: what layers do as their options declare it`);
  toggle.addEventListener("click", () => {
    state.showNotes = !state.showNotes;
    renderProblems(problems, report);
  });
  list.append(toggle);
  if (state.showNotes) for (const problem of notes) list.append(problemItem(problem, lineOf));
}

/** The text with the top-level ``input:`` set to ``shape`` (null when it cannot be found). */
function withInput(text, shape) {
  const lines = text.split("\n");
  const index = lines.findIndex((line) => /^input\s*:/.test(line));
  if (index < 0) return null;
  const written = "[" + shape.map(String).join(", ") + "]";
  const flow = lines[index].match(/^(input\s*:\s*)\[[^\]\n]*\](.*)$/);
  if (flow) {
    lines[index] = flow[1] + written + flow[2];
    return lines.join("\n");
  }
  const rest = lines[index].replace(/^input\s*:\s*/, "");
  if (rest && !rest.startsWith("#")) return null;        // some other form: leave it alone
  let end = index + 1;                                      // a block sequence: "  - 3"
  while (end < lines.length && /^\s+-\s*\S/.test(lines[end])) end++;
  if (end === index + 1) return null;
  lines.splice(index, end - index, "input: " + written + (rest ? "  " + rest : ""));
  return lines.join("\n");
}

function setText(text) {
  editor.value = text;
  editor.dispatchEvent(new Event("input"));
}

// --- the report ---------------------------------------------------------------------------------

function renderSummary(report) {
  const errors = report.problems.filter((p) => p.severity === "error").length;
  const warnings = report.problems.filter((p) => p.severity === "warning").length;
  const total = exact(report, "total_params");
  const trainable = exact(report, "trainable_params");
  const verdict = errors ? plural(errors, "error") : "no errors";
  $("summary").replaceChildren(
    el("h2", { text: report.name || "(unnamed network)" }),
    el("p", { text: `input ${shapeText(report.input_shape)} → output ${shapeText(report.output_shape)}` +
      ` · ${plural(report.layers.length, "layer")} · ${verdict}` +
      (warnings ? `, ${plural(warnings, "warning")}` : "") }),
    el("p", { class: "totals" }, "params: ", el("b", { id: "total-params", text: count(total) }),
      ` (trainable ${count(trainable)}, frozen ${count(difference(total, trainable))})` +
      ` · buffers: ${count(exact(report, "total_buffers"))} · MACs: `,
      el("b", { id: "total-macs", text: count(exact(report, "total_macs")) })),
    memoryLine(report.memory),
  );
}

/** The dtypes and optimizers analyse takes: its OpenAPI parameters' own lists, read once
 * (until they arrive, or if they cannot be read, only the defaults). */
const memoryChoices = { dtype: ["float32"], optimizer: ["sgd"] };

async function loadMemoryChoices() {
  try {
    const api = await (await fetch("/openapi.json")).json();
    for (const parameter of api.paths["/api/v1/analyse"].post.parameters) {
      const values = parameter.schema && parameter.schema.enum;
      if (parameter.name in memoryChoices && Array.isArray(values)) memoryChoices[parameter.name] = values;
    }
  } catch (error) { /* the defaults stay */ }
}

/** A <select> of the memory figures' dtype or optimizer; a change analyses again. */
function memoryChoice(name, title) {
  const select = el("select", { id: name, title },
    ...memoryChoices[name].map((value) => el("option", { value, text: value })));
  select.value = state[name];
  select.addEventListener("change", () => { state[name] = select.value; saveState(); analyse(); });
  return select;
}

/** A training step's memory (convcalc.footprint), as the CLI's two memory lines, with
 * its dtype and optimizer to choose. */
function memoryLine(memory) {
  if (!memory) return "";
  const size = (key) => bytesText(exact(memory, key));
  return el("p", { class: "memory", id: "memory" },
    `memory at batch ${memory.batch}, `,
    memoryChoice("dtype", "the element type of every tensor"), ", ",
    memoryChoice("optimizer", "whose state is counted: sgd none, momentum one value per parameter, adam two"),
    `: input ${size("input_bytes")}` +
    ` · activations ${size("forward_bytes")} forward + ${size("backward_bytes")} backward` +
    ` · params ${size("params_bytes")} · gradients ${size("gradients_bytes")}` +
    ` · ${memory.optimizer} state ${size("optimizer_state_bytes")} · training total `,
    el("b", { text: size("total_bytes") }));
}

/** Layer name → its problems (notes too). */
function problemsByLayer(report) {
  const byLayer = new Map();
  for (const problem of report.problems) {
    if (!problem.layer) continue;
    if (!byLayer.has(problem.layer)) byLayer.set(problem.layer, []);
    byLayer.get(problem.layer).push(problem);
  }
  return byLayer;
}

function worstOf(problems) {
  if (problems.some((p) => p.severity === "error")) return "err";
  return problems.some((p) => p.severity === "warning") ? "warn" : "";
}

function nameCell(text, depth, title, ...children) {
  const cell = el("td", { class: "name", title }, ...children);
  if (text) cell.append(text);
  cell.style.setProperty("--depth", String(depth));
  return cell;
}

/** The outermost folded block instance that holds ``row`` (or null). */
function foldedHolder(groups) {
  return groups.find((name) => state.folded.has(name)) || null;
}

function renderTable(report) {
  const body = document.querySelector("#layers tbody");
  body.replaceChildren();
  const byLayer = problemsByLayer(report);
  const checks = state.verification;
  $("layers").classList.toggle("verified", Boolean(checks));
  const blocks = new Map(report.groups.map((g) => [g.name, g]));
  const bytesOf = new Map(report.layers.map((row) => [row.name, exact(row, "activation_bytes")]));
  const groupsShown = new Set();
  for (const row of report.layers) {
    row.group.forEach((name, depth) => {   // a header row where each block instance starts
      if (groupsShown.has(name)) return;
      groupsShown.add(name);
      const group = blocks.get(name);
      const folded = state.folded.has(name);
      const inside = group ? group.layers.flatMap((layer) => byLayer.get(layer) || []) : [];
      const parent = depth ? row.group[depth - 1] : "";
      const label = (parent ? name.slice(parent.length + 1) : name) + (group ? ` (${group.block})` : "");
      const toggle = el("button", { type: "button", class: "fold",
        "aria-expanded": String(!folded), title: folded ? "Open this block" : "Fold this block" },
      folded ? "▸" : "▾");
      const tr = el("tr", { class: ("group " + worstOf(inside)).trim(), "data-group": name },
        nameCell(" " + label, depth, name, toggle),
        el("td", { text: group ? "block" : "" }),
        el("td", { text: group ? shapeText(group.output_shape) : "" }),
        el("td", { class: "num", text: group ? count(exact(group, "params")) : "" }),
        el("td", { class: "num", text: group ? count(exact(group, "macs")) : "" }),
        el("td", { class: "num", text: group ? bytesText(bytesSum(group.layers.map((n) => bytesOf.get(n)))) : "" }),
        el("td"), el("td", { class: "engine" }));
      if (folded) tr.classList.add("folded");
      tr.hidden = Boolean(foldedHolder(row.group.slice(0, depth)));
      body.append(tr);
    });
    const problems = byLayer.get(row.name) || [];
    const check = checks ? checks.get(row.name) : null;
    const parent = row.group.length ? row.group[row.group.length - 1] : "";
    const short = parent && row.name.startsWith(parent + ".") ? row.name.slice(parent.length + 1) : row.name;
    const hidden = Boolean(foldedHolder(row.group));
    const tr = el("tr", { class: worstOf(problems), "data-layer": row.name },
      nameCell(short, row.group.length, row.name),
      el("td", { text: row.type }),
      el("td", { class: "shape", text: shapeText(row.output_shape) }),
      el("td", { class: "num", text: count(exact(row, "params")) }),
      el("td", { class: "num", text: count(exact(row, "macs")) }),
      el("td", { class: "num", text: bytesText(exact(row, "activation_bytes")),
        title: `this output's bytes at batch ${report.memory.batch}, ${report.memory.dtype}` }),
      el("td", { class: "field", text: fieldText(row.receptive_field) }),
      el("td", { class: "engine " + (check ? (check.ok ? "ok" : "bad") : ""),
        text: check ? (check.ok ? "✓" : "✗") : "", title: check ? engineTitle(check) : "" }));
    tr.hidden = hidden;
    body.append(tr);
    for (const problem of problems) {
      if (problem.severity === "note") continue;
      const message = el("tr", { class: "msg " + SEVERITY_CLASS[problem.severity], "data-for": row.name },
        el("td", { colspan: "8", text: (problem.severity === "error" ? "✗ " : "! ") +
          (problem.field ? problem.field + ": " : "") + problem.message }));
      message.hidden = hidden;
      body.append(message);
    }
  }
  markSelection(false);
}

function engineTitle(check) {
  const parts = [`observed ${shapeText(check.observed_shape)}, ${count(exact(check, "observed_params"))} params`];
  if (check.gradient_problems.length) parts.push(check.gradient_problems.join("; "));
  return parts.join(" · ");
}

// --- selection: a node in the graph and its row in the table ----------------------------------

function rowFor(name) {
  const rows = document.querySelectorAll("#layers tbody tr[data-layer]");
  const row = [...rows].find((tr) => tr.dataset.layer === name);
  if (!row || !row.hidden || !state.report) return row || null;
  const layer = state.report.layers.find((r) => r.name === name);
  const holder = layer && foldedHolder(layer.group);
  return [...document.querySelectorAll("#layers tbody tr[data-group]")]
    .find((tr) => tr.dataset.group === holder) || row;
}

function nodeFor(name) {
  if (state.nodes.has(name)) return state.nodes.get(name);
  const layer = state.report && state.report.layers.find((r) => r.name === name);
  const holder = layer && layer.group.find((g) => state.nodes.has(g));
  return holder ? state.nodes.get(holder) : null;
}

/** Highlight the selected layer in the table and the graph (scrolling ``reveal``: "table",
 * "graph" or false into view). */
function markSelection(reveal) {
  document.querySelectorAll(".selected").forEach((node) => node.classList.remove("selected"));
  document.querySelectorAll("#picture g.adjacent").forEach((node) => node.classList.remove("adjacent"));
  const name = state.selected;
  if (!name) return;
  const row = rowFor(name);
  const node = nodeFor(name);
  if (row) row.classList.add("selected");
  if (node) {
    node.classList.add("selected");
    const drawn = node.dataset.layer || node.dataset.group;
    for (const edge of document.querySelectorAll("#picture g.edge")) {
      if (edge.dataset.from === drawn || edge.dataset.to === drawn) edge.classList.add("adjacent");
    }
  }
  if (reveal === "table" && row) row.scrollIntoView({ block: "nearest" });
  if (reveal === "graph" && node) scrollNodeIntoView(node);
}

function scrollNodeIntoView(node) {
  const box = $("picture");
  const frame = box.getBoundingClientRect();
  const rect = node.getBoundingClientRect();
  if (rect.top >= frame.top && rect.bottom <= frame.bottom) return;
  box.scrollTop += rect.top - frame.top - (frame.height - rect.height) / 2;
}

function select(name, reveal) {
  state.selected = name;
  markSelection(reveal);
}

// --- folding: one set for the graph and the table --------------------------------------------

/** The blocks the service folds at a depth (its Convcalc-Depth header: a number or "all"). */
function foldedAtDepth(report, depth) {
  if (depth === null || depth === "all") return new Set();
  const level = Number(depth);
  return new Set(report.groups.filter((g) => g.depth > level).map((g) => g.name));
}

function toggleFold(name) {
  if (!state.report) return;
  const folded = new Set(state.folded);
  if (folded.has(name)) folded.delete(name); else folded.add(name);
  state.folded = folded;
  state.foldManual = true;
  renderTable(state.report);
  requestDrawing();
}

// --- the graph: the service's SVG, inlined ----------------------------------------------------

/** Runs ``work(value)`` one at a time: a value given while one runs waits, replacing any
 * other waiting value (so a slow answer is never overtaken, nor queued behind stale ones). */
function singleFlight(work) {
  let running = false;
  let waiting = null;
  async function run(value) {
    if (running) { waiting = { value }; return; }
    running = true;
    try { await work(value); } finally {
      running = false;
      if (waiting) { const next = waiting.value; waiting = null; run(next); }
    }
  }
  return run;
}

function drawQuery() {
  const query = new URLSearchParams({ format: "svg" });
  if (!state.foldManual) {
    query.set("depth", "auto");
    return query;
  }
  query.set("depth", "all");
  const known = new Set(state.report.groups.map((g) => g.name));
  for (const name of state.folded) if (known.has(name)) query.append("fold", name);
  return query;
}

const drawNow = singleFlight(async (job) => {
  const { text, report, query } = job;
  const current = () => editor.value === text && state.report === report;
  $("picture").classList.add("stale");
  let response;
  try {
    response = await fetch("/api/v1/draw?" + query.toString(), { method: "POST", body: text,
      headers: { "Content-Type": YAML_TYPE } });
  } catch (error) {
    if (current()) setCaption("The graph could not be drawn: the service does not answer.", "err");
    return;
  }
  if (!current()) return;
  if (!response.ok) {
    const problem = await problemOf(response);
    if (slugOf(problem) === "busy") {   // another drawing is running: try again shortly
      setTimeout(() => { if (current()) requestDrawing(); }, 1000);
      return;
    }
    setCaption(sentence(problem), "err");
    return;
  }
  const depth = response.headers.get("Convcalc-Depth");
  const nodes = Number(response.headers.get("Convcalc-Nodes"));
  const svgText = await response.text();
  if (!current()) return;
  if (!state.foldManual) {
    state.folded = foldedAtDepth(report, depth);
    renderTable(report);
  }
  showDrawing(svgText, report, depth, nodes);
});

function requestDrawing() {
  if (!state.report || state.reportText !== editor.value) return;
  drawNow({ text: editor.value, report: state.report, query: drawQuery() });
}

function setCaption(text, kind = "") {
  const caption = $("graph-caption");
  caption.textContent = text;
  caption.className = kind;
}

function showDrawing(svgText, report, depth, nodes) {
  const parsed = new DOMParser().parseFromString(svgText, "image/svg+xml");
  const root = parsed.documentElement;
  if (root.nodeName !== "svg" || parsed.querySelector("parsererror")) {
    setCaption("The graph could not be shown: the drawing is not valid SVG.", "err");
    return;
  }
  const svg = document.importNode(root, true);
  const box = (svg.getAttribute("viewBox") || "0 0 0 0").split(/[\s,]+/).map(Number);
  svg.dataset.width = String(box[2] * PT_TO_PX);
  svg.dataset.height = String(box[3] * PT_TO_PX);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `the graph of ${report.name || "the network"}`);
  for (const cluster of svg.querySelectorAll("g.cluster[data-group]")) {
    const title = cluster.querySelector("title");
    if (title) title.textContent += "\nclick its name to fold it";
  }
  for (const node of svg.querySelectorAll("g[data-folded]")) {
    const title = node.querySelector("title");
    if (title) title.textContent += "\nclick to open it";
  }
  const picture = $("picture");
  const scrolled = picture.scrollTop;
  picture.replaceChildren(svg);
  picture.scrollTop = scrolled;
  picture.classList.remove("stale");
  state.nodes = new Map();
  for (const node of svg.querySelectorAll("g[data-layer], g[data-folded]")) {
    state.nodes.set(node.dataset.layer || node.dataset.group, node);
  }
  applyZoom();
  const folded = svg.querySelectorAll("g[data-folded]").length;
  const how = folded ? `${plural(folded, "block")} folded` +
    (!state.foldManual && depth !== "all" ? ` (those nested deeper than ${depth})` : "")
    : "every block open";
  const hint = report.groups.length ? " · click a block's name to fold it, a folded block to open it" : "";
  setCaption(`${plural(nodes, "node")} · ${how}${hint}`);
  document.body.dataset.drawn = String(Number(document.body.dataset.drawn || 0) + 1);
  markSelection(false);
}

function applyZoom() {
  const svg = $("picture").querySelector("svg");
  if (!svg) return;
  const width = Number(svg.dataset.width), height = Number(svg.dataset.height);
  const room = $("picture").clientWidth - 2;
  const fit = Math.min(1, room / width);
  const scale = state.zoom === "fit" ? fit : state.zoom;
  svg.setAttribute("width", String(Math.floor(width * scale)));
  svg.setAttribute("height", String(Math.floor(height * scale)));
  $("zoom-fit").classList.toggle("active", state.zoom === "fit");
}

function zoomBy(factor) {
  const svg = $("picture").querySelector("svg");
  if (!svg) return;
  const current = Number(svg.getAttribute("width")) / Number(svg.dataset.width);
  state.zoom = Math.min(3, Math.max(0.2, current * factor));
  applyZoom();
}

function onPictureClick(event) {
  const node = event.target.closest("g.node");
  if (node) {
    if (node.dataset.folded) toggleFold(node.dataset.group);
    else if (node.dataset.layer) select(node.dataset.layer, "table");
    return;
  }
  const cluster = event.target.closest("g.cluster[data-group]");
  if (!cluster) return;
  const label = cluster.querySelector("text");
  const band = label ? label.getBoundingClientRect().bottom + 3 : -Infinity;
  if (event.target.tagName === "text" || event.clientY <= band) toggleFold(cluster.dataset.group);
}

// --- valid input sizes ----------------------------------------------------------------------

/** The spatial sizes of the input that the sizes endpoint can be asked about. */
function spatialSizes(report) {
  return report.input_shape.slice(1).filter((n) => typeof n === "number" && Number.isSafeInteger(n));
}

const sizesCache = new Map();   // text + sizes → the per-axis answers (or a problem)

const sizesNow = singleFlight(async (job) => {
  const { text, report, key } = job;
  const current = () => editor.value === text && state.report === report;
  if (!sizesCache.has(key)) {
    $("sizes").classList.add("stale");
    const answers = await fetchSizes(text, report);
    sizesCache.set(key, answers);
    if (sizesCache.size > 20) sizesCache.delete(sizesCache.keys().next().value);
  }
  if (current()) renderSizes(report, sizesCache.get(key));
});

/** Per axis: the sizes answer asked ``near`` that axis's size (one request per distinct size). */
async function fetchSizes(text, report) {
  const wanted = [...new Set(spatialSizes(report))];
  const byNear = new Map();
  try {
    await Promise.all(wanted.map(async (n) => {
      const response = await fetch(`/api/v1/sizes?near=${n}`, { method: "POST", body: text,
        headers: { "Content-Type": YAML_TYPE } });
      if (!response.ok) throw await problemOf(response);
      byNear.set(n, parseJSON(await response.text()));
    }));
  } catch (problem) {
    return { problem: problem instanceof Error
      ? { title: "The valid input sizes could not be asked for: the service does not answer" } : problem };
  }
  const sizes = report.input_shape.slice(1);
  return { axes: sizes.map((n, i) => byNear.has(n) ? byNear.get(n).axes[i] : null) };
}

function requestSizes(report) {
  const text = editor.value;
  if (report.input_shape.length < 2) { $("sizes").replaceChildren(); return; }
  if (report.sizes) { renderOpenSizes(report); return; }
  sizesNow({ text, report, key: text });
}

function axisLine(axis) {
  return `${axis.description}` + (axis.smallest !== null ? ` (smallest ${axis.smallest})` : "");
}

function renderOpenSizes(report) {
  const box = $("sizes");
  box.classList.remove("stale");
  box.className = "";
  const parts = report.sizes.map((axis) => axisLine(axis));
  box.replaceChildren(el("span", { class: "label", text: "Valid input sizes: " }),
    parts.join(" · ") + ` — the report is at the smallest: ${shapeText(report.input_shape)}`);
}

function sizeButton(text, shape, title) {
  const button = el("button", { type: "button", class: "size-fix", title }, text);
  button.addEventListener("click", () => {
    const changed = withInput(editor.value, shape);
    if (changed === null) {
      setStatus(`set input: ${shapeText(shape)} in the spec (its input line was not found)`, "err");
      return;
    }
    setText(changed);
  });
  return button;
}

function renderSizes(report, answer) {
  const box = $("sizes");
  box.classList.remove("stale");
  if (answer.problem) {
    box.className = "err";
    box.replaceChildren(sentence(answer.problem));
    return;
  }
  const shape = report.input_shape;
  const invalid = [];
  const items = answer.axes.map((axis, i) => {
    if (!axis) return el("span", { text: `axis ${i + 1}: —` });
    const near = axis.near;
    const ok = near ? near.valid : null;
    if (ok === false) invalid.push({ index: i + 1, axis, near });
    return el("span", { class: ok === false ? "axis bad" : "axis" },
      (ok === false ? "✗ " : "") + axisLine(axis));
  });
  const rows = [el("div", {}, el("span", { class: "label", text: "Valid input sizes: " }),
    ...items.flatMap((item, i) => (i ? [" · ", item] : [item])))];
  box.className = invalid.length ? "err" : "";
  if (invalid.length) {
    const buttons = [];
    const outputs = (near, m) => {   // the output's size along the axis, if it has one
      const size = near.output ? near.output[String(m)] : null;
      return size === null || size === undefined ? "" : ` (→ ${size})`;
    };
    for (const { index, axis, near } of invalid) {
      for (const m of [near.below, near.above]) {
        if (m === null || m === undefined) continue;
        const fixed = shape.slice();
        fixed[index] = m;
        buttons.push(sizeButton(`${axis.axis} = ${m}${outputs(near, m)}`, fixed,
          `set the input to ${shapeText(fixed)}`));
      }
    }
    if (invalid.length > 1) {   // every failing axis to its nearest below / above at once
      const together = ["below", "above"].filter((side) => invalid.every((item) => item.near[side] !== null))
        .map((side) => {
          const fixed = shape.slice();
          for (const item of invalid) fixed[item.index] = item.near[side];
          return sizeButton(shapeText(fixed), fixed, `set the input to ${shapeText(fixed)}`);
        });
      if (together.length) buttons.push(" or at once: ", ...together);
    }
    const sizes = invalid.map((item) => `${item.axis.axis} = ${item.near.size}`).join(", ");
    rows.push(el("div", { class: "fixes" },
      `${sizes} does not suit this network; the nearest valid: `, ...buttons));
  }
  box.replaceChildren(...rows);
}

// --- render a report -----------------------------------------------------------------------------

function renderReport(report, text) {
  const sameNetwork = state.report && sameGroups(state.report, report);
  state.report = report;
  state.reportText = text;
  if (!sameNetwork) {   // keep the user's folds that still name a block, else let the service choose
    const known = new Set(report.groups.map((g) => g.name));
    const kept = [...state.folded].filter((name) => known.has(name));
    if (!kept.length) state.foldManual = false;
    state.folded = state.foldManual ? new Set(kept) : new Set();
  }
  $("report-pane").classList.remove("stale");
  renderSummary(report);
  renderTable(report);
  renderProblems(report.problems, report);
  setMarks(report.problems, report);
  requestDrawing();
  requestSizes(report);
}

function sameGroups(a, b) {
  return a.groups.length === b.groups.length && a.groups.every((g, i) => g.name === b.groups[i].name);
}

function renderInvalid(problem) {
  // the spec does not validate: keep the last report, dimmed, and show the problems
  $("report-pane").classList.add("stale");
  const note = el("p", { class: "stale-note", text: `${headline(problem)}: the report below is the last valid one` });
  $("summary").querySelectorAll(".stale-note").forEach((old) => old.remove());
  if (!state.report) $("summary").replaceChildren(note); else $("summary").prepend(note);
  const problems = problem.problems && problem.problems.length ? problem.problems
    : [{ severity: "error", message: sentence(problem), line: null, field: null, layer: null }];
  renderProblems(problems, null);
  setMarks(problems, null);
  return problems;
}

// --- talking to the service -----------------------------------------------------------------------

async function post(path, text, signal) {
  const response = await fetch(path, { method: "POST", body: text, signal,
    headers: { "Content-Type": YAML_TYPE } });
  const body = parseJSON(await response.text());
  return { ok: response.ok, body };
}

/** The batch field's value, a whole number of at least 1. */
const batchValue = () => Math.min(2 ** 31 - 1, Math.max(1, parseInt($("batch").value, 10) || 1));

async function analyse() {
  const sequence = ++state.sequence;
  const text = editor.value;
  state.verification = null;
  setStatus("analysing…");
  let answer;
  try {
    // the batch field sets the memory figures' batch too (as convcalc check --batch)
    const query = new URLSearchParams({ batch: batchValue(), dtype: state.dtype, optimizer: state.optimizer });
    answer = await post(`/api/v1/analyse?${query}`, text);
  } catch (error) {
    if (sequence === state.sequence) setStatus("The service does not answer: is convcalc serve running?", "err");
    return;
  }
  if (sequence !== state.sequence) return;   // the text changed meanwhile
  if (answer.ok) {
    renderReport(answer.body, text);
    const errors = answer.body.problems.filter((p) => p.severity === "error").length;
    setStatus(errors ? `${plural(errors, "error")} in the network` : "ok", errors ? "err" : "ok");
  } else {
    const problems = renderInvalid(answer.body);
    const mistakes = slugOf(answer.body) === "invalid-spec"
      ? ` — ${plural(problems.length, "mistake")}, listed under the editor` : "";
    setStatus(headline(answer.body) + mistakes, "err");
  }
  document.body.dataset.analysed = String(sequence);
}

function scheduleAnalyse() {
  clearTimeout(state.timer);
  state.timer = setTimeout(analyse, DEBOUNCE_MS);
}

// --- verify: elapsed time, and a cancel that stops the run on the service ---------------------

function seconds(ms) {
  return (ms / 1000).toFixed(1) + " s";
}

function progressText(started) {
  const limit = state.verifyTimeout ? ` (the service stops it at ${state.verifyTimeout} s)` : "";
  return `Verifying on the engine… ${seconds(performance.now() - started)}${limit}`;
}

function showVerifying(started) {
  const panel = $("verification");
  panel.className = "running";
  panel.replaceChildren(el("span", { class: "spinner", "aria-hidden": "true" }),
    el("span", { id: "verify-progress", text: progressText(started) }));
}

async function loadLimits() {
  try {
    const response = await fetch("/api/v1/health");
    if (response.ok) state.verifyTimeout = (await response.json()).limits.verify_timeout;
  } catch (error) { /* the limit is not shown */ }
}

function stopTicker() {
  if (state.verifyRun) clearInterval(state.verifyRun.ticker);
  $("verify").disabled = false;
  $("cancel").hidden = true;
}

async function verify() {
  if (state.verifyRun) return;
  const batch = batchValue();
  const gradcheck = $("gradcheck").checked;
  const text = editor.value;
  const controller = new AbortController();
  const started = performance.now();
  const run = { controller, started, ticker: null };
  state.verifyRun = run;
  $("verify").disabled = true;
  $("cancel").hidden = false;
  showVerifying(started);
  run.ticker = setInterval(() => {
    const progress = $("verify-progress");
    if (progress) progress.textContent = progressText(started);
  }, 100);
  setStatus("verifying on the engine…");
  const panel = $("verification");
  const query = new URLSearchParams({ batch: String(batch) });
  if (gradcheck) query.set("gradcheck", "true");
  try {
    const answer = await post(`/api/v1/verify?${query}`, text, controller.signal);
    const took = seconds(performance.now() - started);
    const stale = editor.value !== text;
    if (answer.ok) {
      const result = answer.body;
      const failing = result.layers.filter((row) => !row.ok);
      const parts = Object.entries(result.seconds).map(([k, v]) => `${k} ${Number(v).toFixed(2)} s`).join(", ");
      panel.className = result.ok ? "ok" : "err";
      panel.textContent = (result.ok
        ? `✓ verified: all ${result.layers.length} layers agree on output shapes, parameter counts and gradient shapes${gradcheck ? " and gradients" : ""} (batch ${result.batch}; ${parts}; ${took} in all)`
        : `✗ ${result.engine_error ? "the engine run failed: " + result.engine_error + "; " : ""}${failing.length} of ${result.layers.length} layers disagree: ${failing.map((r) => r.name).join(", ")}`)
        + (stale ? " — for the spec as it was when you pressed Verify" : "");
      setStatus(result.ok ? "verified" : "verification failed", result.ok ? "ok" : "err");
      if (!stale) {
        state.verification = new Map(result.layers.map((row) => [row.name, row]));
        if (state.report) renderTable(state.report);
      }
    } else {
      panel.className = "err";
      panel.textContent = sentence(answer.body);
      setStatus(headline(answer.body), "err");
    }
  } catch (error) {
    const took = seconds(performance.now() - started);
    panel.className = error.name === "AbortError" ? "cancelled" : "err";
    if (error.name === "AbortError") {
      panel.textContent = `Verification cancelled after ${took}: the service stopped the run and freed its worker.`;
      setStatus("verification cancelled");
    } else {
      panel.textContent = "The verification got no answer: the service does not answer.";
      setStatus("the service does not answer", "err");
    }
  } finally {
    stopTicker();
    state.verifyRun = null;
  }
}

function cancelVerify() {
  if (state.verifyRun) state.verifyRun.controller.abort();
}

// --- the zoo, download --------------------------------------------------------------------------

async function loadZooList() {
  try {
    const response = await fetch("/api/v1/zoo");
    if (!response.ok) throw new Error("no zoo");
    const models = parseJSON(await response.text());
    const select = $("zoo");
    for (const model of models) {
      select.append(el("option", { value: model.name,
        text: `${model.title} — ${count(exact(model, "params"))} params` }));
    }
    select.value = state.model;
  } catch (error) {
    setStatus("The zoo could not be loaded: the service does not answer.", "err");
  }
}

async function loadZooModel(name) {
  if (!name) return;
  setStatus(`loading ${name}…`);
  let response;
  try {
    response = await fetch(`/api/v1/zoo/${encodeURIComponent(name)}`);
  } catch (error) {
    setStatus("The model could not be loaded: the service does not answer.", "err");
    return;
  }
  const model = parseJSON(await response.text());
  if (!response.ok) { setStatus(sentence(model), "err"); return; }
  state.zooTexts.set(model.name, model.text);
  state.model = model.name;
  state.foldManual = false;
  state.folded = new Set();
  state.selected = null;
  state.zoom = "fit";
  $("zoo").value = model.name;
  editor.value = model.text;
  editor.scrollTop = 0;
  $("picture").scrollTop = 0;
  $("table-box").scrollTop = 0;
  onEdited();
  clearTimeout(state.timer);
  analyse();
}

/** The zoo model whose text the editor holds, or "". */
function modelOfText(text) {
  if (state.model && state.zooTexts.get(state.model) === text) return state.model;
  for (const [name, zooText] of state.zooTexts) if (zooText === text) return name;
  return "";
}

function fileName() {
  if (state.model) return `${state.model}.yaml`;
  const named = editor.value.match(/^name\s*:\s*["']?([^"'#\n]+?)["']?\s*(#.*)?$/m);
  const slug = named ? named[1].trim().toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") : "";
  return (slug || "spec") + ".yaml";
}

function download() {
  const blob = new Blob([editor.value], { type: "application/yaml" });
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: fileName() });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  setStatus(`downloaded ${fileName()}`);
}

// --- start ------------------------------------------------------------------------------------

function onEdited() {
  if (state.verifyRun === null) {
    $("verification").replaceChildren();
    $("verification").className = "";
  }
  state.model = modelOfText(editor.value);
  $("zoo").value = state.model;
  if (!state.model && $("zoo").value !== "") $("zoo").value = "";
  renderLines();
  saveState();
}

function start() {
  const saved = loadState();
  if (saved) {
    editor.value = saved.text;
    if (saved.model) { state.model = saved.model; state.zooTexts.set(saved.model, saved.text); }
    if (saved.batch) $("batch").value = saved.batch;
    $("gradcheck").checked = Boolean(saved.gradcheck);
    if (typeof saved.dtype === "string") state.dtype = saved.dtype;
    if (typeof saved.optimizer === "string") state.optimizer = saved.optimizer;
  } else {
    editor.value = EXAMPLE;
  }
  editor.addEventListener("input", () => { onEdited(); scheduleAnalyse(); });
  editor.addEventListener("scroll", syncScroll);
  editor.addEventListener("keydown", (event) => {   // Tab indents two spaces
    if (event.key !== "Tab") return;
    event.preventDefault();
    editor.setRangeText("  ", editor.selectionStart, editor.selectionEnd, "end");
    editor.dispatchEvent(new Event("input"));
  });
  $("zoo").addEventListener("change", (event) => {
    if (event.target.value) loadZooModel(event.target.value);
    else event.target.value = state.model;
  });
  $("verify").addEventListener("click", verify);
  $("cancel").addEventListener("click", cancelVerify);
  $("download").addEventListener("click", download);
  $("batch").addEventListener("change", () => { saveState(); analyse(); });
  $("gradcheck").addEventListener("change", saveState);
  $("picture").addEventListener("click", onPictureClick);
  $("zoom-in").addEventListener("click", () => zoomBy(1.25));
  $("zoom-out").addEventListener("click", () => zoomBy(0.8));
  $("zoom-fit").addEventListener("click", () => { state.zoom = "fit"; applyZoom(); });
  window.addEventListener("resize", applyZoom);
  document.querySelector("#layers tbody").addEventListener("click", (event) => {
    const row = event.target.closest("tr");
    if (!row) return;
    if (row.dataset.group) toggleFold(row.dataset.group);
    else if (row.dataset.layer) select(row.dataset.layer, "graph");
  });
  renderLines();
  loadZooList();
  loadLimits();
  loadMemoryChoices().then(() => { if (state.report) renderSummary(state.report); });
  const wanted = new URLSearchParams(location.hash.slice(1)).get("zoo");
  if (wanted) loadZooModel(wanted); else analyse();
}

start();
