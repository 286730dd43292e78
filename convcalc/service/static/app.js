// convcalc design page: edit a spec, see the report live, verify it, load zoo models.
// Plain JS, no library, nothing from the network but this service's own API.
// The YAML goes to POST /api/v1/analyse as application/yaml (parsed server-side, so every
// error carries its line); answers are the CLI's JSON report or an RFC 9457 problem.
"use strict";

const DEBOUNCE_MS = 300;
const SVG = "http://www.w3.org/2000/svg";
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
  sequence: 0,         // the latest analyse request; older answers are dropped
  timer: null,
  report: null,        // the last good report
  verification: null,  // the last verification of the current text, by layer name
  marks: new Map(),    // line -> {severity, messages}
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

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const count = (n) => (n === null || n === undefined ? "—" : n.toLocaleString("en-US"));
const shapeText = (s) => (s ? "[" + s.join(", ") + "]" : "—");

function axes(values) {
  const texts = values.map((v) => (Number.isInteger(v) ? String(v) : String(+v.toPrecision(6))));
  return new Set(texts).size === 1 ? texts[0] : texts.join("×");
}

function fieldText(rf) {
  return rf ? `${axes(rf.size)} / ${axes(rf.jump)} / ${axes(rf.padding)}` : "—";
}

function setStatus(text, kind = "") {
  const status = $("status");
  status.textContent = text;
  status.className = kind;
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

function setMarks(problems, report) {
  state.marks = new Map();
  const lineOf = new Map((report ? report.layers : []).map((row) => [row.name, row.line]));
  for (const problem of problems) {
    const line = problem.line ?? lineOf.get(problem.layer);
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

function renderProblems(problems, report) {
  const list = $("problems");
  list.replaceChildren();
  const lineOf = new Map((report ? report.layers : []).map((row) => [row.name, row.line]));
  for (const problem of problems) {
    const line = problem.line ?? lineOf.get(problem.layer);
    const where = [line ? `line ${line}` : "", problem.field || "", problem.layer ? `(${problem.layer})` : ""]
      .filter(Boolean).join(" ");
    const item = el("li", { class: problem.severity === "error" ? "err" : "warn" },
      el("b", { text: where ? where + ": " : "" }),
      (problem.severity === "warning" ? "warning: " : "") + problem.message);
    if (line) {
      item.dataset.line = String(line);
      item.addEventListener("click", () => goToLine(line));
    }
    list.append(item);
  }
}

// --- the report ---------------------------------------------------------------------------------

function renderSummary(report) {
  const errors = report.problems.filter((p) => p.severity === "error").length;
  const warnings = report.problems.length - errors;
  const frozen = report.total_params - report.trainable_params;
  const verdict = errors ? `${errors} error${errors > 1 ? "s" : ""}` : "no errors";
  $("summary").replaceChildren(
    el("h2", { text: report.name || "(unnamed network)" }),
    el("p", { text: `input ${shapeText(report.input_shape)} → output ${shapeText(report.output_shape)}` +
      ` · ${report.layers.length} layers · ${verdict}` +
      (warnings ? `, ${warnings} warning${warnings > 1 ? "s" : ""}` : "") }),
    el("p", { class: "totals" }, "params: ", el("b", { id: "total-params", text: count(report.total_params) }),
      ` (trainable ${count(report.trainable_params)}, frozen ${count(frozen)}) · buffers: ${count(report.total_buffers)}` +
      " · MACs: ", el("b", { id: "total-macs", text: count(report.total_macs) })),
  );
}

function renderTable(report) {
  const body = document.querySelector("#layers tbody");
  body.replaceChildren();
  const byLayer = new Map();
  for (const problem of report.problems) {
    if (!problem.layer) continue;
    if (!byLayer.has(problem.layer)) byLayer.set(problem.layer, []);
    byLayer.get(problem.layer).push(problem);
  }
  const checks = state.verification;
  document.getElementById("layers").classList.toggle("verified", Boolean(checks));
  const groupsShown = new Set();
  const blocks = new Map(report.groups.map((g) => [g.name, g]));
  for (const row of report.layers) {
    row.group.forEach((name, depth) => {   // a header row where each block instance starts
      if (groupsShown.has(name)) return;
      groupsShown.add(name);
      const group = blocks.get(name);
      const label = group ? `${name} (${group.block})` : name;
      body.append(el("tr", { class: "group" },
        el("td", { colspan: "2", text: "  ".repeat(depth) + "▸ " + label }),
        el("td", { text: group ? shapeText(group.output_shape) : "" }),
        el("td", { class: "num", text: group ? count(group.params) : "" }),
        el("td", { class: "num", text: group ? count(group.macs) : "" }),
        el("td"), el("td", { class: "engine" })));
    });
    const problems = byLayer.get(row.name) || [];
    const severity = problems.some((p) => p.severity === "error") ? "err" : problems.length ? "warn" : "";
    const check = checks ? checks.get(row.name) : null;
    const indent = "  ".repeat(row.group.length);
    const short = row.group.length ? row.name.slice(row.group[row.group.length - 1].length + 1) : row.name;
    const tr = el("tr", { class: severity, "data-layer": row.name },
      el("td", { text: indent + short, title: row.name }),
      el("td", { text: row.type }),
      el("td", { class: "shape", text: shapeText(row.output_shape) }),
      el("td", { class: "num", text: count(row.params) }),
      el("td", { class: "num", text: count(row.macs) }),
      el("td", { text: fieldText(row.receptive_field) }),
      el("td", { class: "engine " + (check ? (check.ok ? "ok" : "bad") : ""),
        text: check ? (check.ok ? "✓" : "✗") : "", title: check ? engineTitle(check) : "" }));
    body.append(tr);
    for (const problem of problems) {
      body.append(el("tr", { class: "msg " + (problem.severity === "error" ? "err" : "warn") },
        el("td", { colspan: "7", text: (problem.severity === "error" ? "✗ " : "! ") +
          (problem.field ? problem.field + ": " : "") + problem.message })));
    }
  }
}

function engineTitle(check) {
  const parts = [`observed ${shapeText(check.observed_shape)}, ${count(check.observed_params)} params`];
  if (check.gradient_problems.length) parts.push(check.gradient_problems.join("; "));
  return parts.join(" · ");
}

// --- the picture: feature-map volumes, sized by the log of their sizes ---------------------------

const COLORS = { conv: "#5b8def", conv_transpose: "#7c6cf0", maxpool: "#43a86b", avgpool: "#43a86b",
  minpool: "#43a86b", global_avgpool: "#2f8f5b", global_maxpool: "#2f8f5b", dense: "#f0a040",
  add: "#9aa5b1", concat: "#9aa5b1", input: "#b0b8c2" };

function volumes(report) {
  // the input, then every layer that changes the shape (folded to block outputs when many)
  const items = [{ name: "input", type: "input", shape: report.input_shape }];
  let previous = JSON.stringify(report.input_shape);
  const changing = report.layers.filter((row) => {
    const now = JSON.stringify(row.output_shape);
    const keep = now !== previous || row.output_shape === null;
    previous = now;
    return keep;
  });
  let rows = changing;
  if (changing.length > 24) {   // fold each top-level block instance into its output
    const last = new Map();
    for (const row of report.layers) last.set(row.group.length ? row.group[0] : row.name, row);
    rows = [...last.entries()].map(([name, row]) => ({ ...row, name }));
    rows = rows.filter((row, i) => i === rows.length - 1 ||
      JSON.stringify(row.output_shape) !== JSON.stringify(rows[i + 1].output_shape) || row.group.length);
  }
  for (const row of rows) items.push({ name: row.name, type: row.type, shape: row.output_shape });
  return items;
}

function renderPicture(report, errorLayers) {
  const scale = (n) => 6 + 11 * Math.log2(Math.max(1, n));      // spatial size → pixels
  const thick = (c) => 3 + 5 * Math.log2(Math.max(1, c));       // channels → pixels
  const boxes = volumes(report).map((item) => {
    const shape = item.shape;
    if (!shape) return { ...item, w: 14, h: 40, d: 0, flat: false, missing: true };
    if (shape.length === 1) return { ...item, w: 6, h: scale(shape[0]) * 0.9, d: 0, flat: true };
    const spatial = shape.slice(1);
    const height = spatial.length >= 2 ? spatial[spatial.length - 2] : 1;
    const width = spatial[spatial.length - 1];
    return { ...item, w: thick(shape[0]), h: scale(height), d: scale(width) * 0.45, flat: false };
  });
  const top = Math.max(...boxes.map((b) => b.h / 2 + b.d * 0.6)) + 8;
  const bottom = Math.max(...boxes.map((b) => b.h / 2)) + 34;
  let x = 12;
  const picture = svg("svg", { role: "img", "aria-label": "feature maps layer by layer" });
  for (const box of boxes) {
    const y = top - box.h / 2;
    const dx = box.d * 0.8, dy = box.d * 0.6;
    const bad = box.missing || errorLayers.has(box.name);
    const fill = bad ? "#e57373" : (COLORS[box.type] || "#9aa5b1");
    const group = svg("g", { "data-layer": box.name });
    const title = svg("title", {}, `${box.name} (${box.type}): ${shapeText(box.shape)}`);
    group.append(title);
    if (box.missing) {
      group.append(svg("rect", { x, y, width: box.w, height: box.h, fill: "none", stroke: fill,
        "stroke-dasharray": "3 2" }));
    } else {
      if (box.d > 0) {
        group.append(svg("polygon", { points: `${x},${y} ${x + dx},${y - dy} ${x + box.w + dx},${y - dy} ${x + box.w},${y}`,
          fill, "fill-opacity": 0.55, stroke: "#334" , "stroke-width": 0.5 }));
        group.append(svg("polygon", { points: `${x + box.w},${y} ${x + box.w + dx},${y - dy} ${x + box.w + dx},${y + box.h - dy} ${x + box.w},${y + box.h}`,
          fill, "fill-opacity": 0.75, stroke: "#334", "stroke-width": 0.5 }));
      }
      group.append(svg("rect", { x, y, width: box.w, height: box.h, fill, stroke: "#334", "stroke-width": 0.5 }));
    }
    const cx = x + (box.w + dx) / 2;
    const label = box.shape ? (box.shape.length === 1 ? String(box.shape[0]) : box.shape.join("×")) : "?";
    group.append(svg("text", { x: cx, y: top + bottom - 20, "text-anchor": "middle", class: bad ? "err" : "" }, label));
    group.append(svg("text", { x: cx, y: top + bottom - 8, "text-anchor": "middle", class: "name" },
      box.name.length > 12 ? "…" + box.name.slice(-11) : box.name));
    picture.append(group);
    x += Math.max(box.w + dx, 70) + 14;
  }
  picture.setAttribute("width", String(x));
  picture.setAttribute("height", String(top + bottom));
  $("picture").replaceChildren(picture);
}

function renderReport(report) {
  state.report = report;
  $("report-pane").classList.remove("stale");
  renderSummary(report);
  const errorLayers = new Set(report.problems.filter((p) => p.severity === "error").map((p) => p.layer));
  renderPicture(report, errorLayers);
  renderTable(report);
  renderProblems(report.problems, report);
  setMarks(report.problems, report);
}

function renderInvalid(problem) {
  // the spec does not validate: keep the last report, dimmed, and show the problems
  $("report-pane").classList.add("stale");
  const note = el("p", { class: "stale-note", text: `${problem.title}: the report below is the last valid one` });
  if (!state.report) $("summary").replaceChildren(note); else $("summary").prepend(note);
  const problems = problem.problems && problem.problems.length ? problem.problems
    : [{ severity: "error", message: problem.detail, line: null, field: null, layer: null }];
  renderProblems(problems, null);
  setMarks(problems, null);
}

// --- talking to the service -----------------------------------------------------------------------

async function post(path, text) {
  const response = await fetch(path, { method: "POST", body: text,
    headers: { "Content-Type": "application/yaml; charset=utf-8" } });
  const body = await response.json();
  return { ok: response.ok, status: response.status, body };
}

async function analyse() {
  const sequence = ++state.sequence;
  state.verification = null;
  setStatus("analysing…");
  let answer;
  try {
    answer = await post("/api/v1/analyse", editor.value);
  } catch (error) {
    if (sequence === state.sequence) setStatus("the service does not answer", "err");
    return;
  }
  if (sequence !== state.sequence) return;   // the text changed meanwhile
  if (answer.ok) {
    renderReport(answer.body);
    const errors = answer.body.problems.filter((p) => p.severity === "error").length;
    setStatus(errors ? `${errors} error${errors > 1 ? "s" : ""} in the network` : "ok", errors ? "err" : "ok");
  } else {
    renderInvalid(answer.body);
    setStatus(`${answer.status}: ${answer.body.title || "error"}`, "err");
  }
  document.body.dataset.analysed = String(sequence);
}

function scheduleAnalyse() {
  clearTimeout(state.timer);
  state.timer = setTimeout(analyse, DEBOUNCE_MS);
}

async function verify() {
  const button = $("verify");
  const batch = Math.max(1, parseInt($("batch").value, 10) || 1);
  const text = editor.value;
  button.disabled = true;
  setStatus("verifying on the engine…");
  const panel = $("verification");
  try {
    const answer = await post(`/api/v1/verify?batch=${batch}`, text);
    if (editor.value !== text) return;   // edited meanwhile: the answer is for old text
    if (answer.ok) {
      const result = answer.body;
      state.verification = new Map(result.layers.map((row) => [row.name, row]));
      const failing = result.layers.filter((row) => !row.ok);
      const seconds = Object.entries(result.seconds).map(([k, v]) => `${k} ${v.toFixed(2)} s`).join(", ");
      panel.className = result.ok ? "ok" : "err";
      panel.textContent = result.ok
        ? `✓ verified: all ${result.layers.length} layers agree on output shapes, parameter counts and gradient shapes (batch ${result.batch}; ${seconds})`
        : `✗ ${result.engine_error ? "the engine run failed: " + result.engine_error + "; " : ""}${failing.length} of ${result.layers.length} layers disagree: ${failing.map((r) => r.name).join(", ")}`;
      setStatus(result.ok ? "verified" : "verification failed", result.ok ? "ok" : "err");
      if (state.report) renderTable(state.report);
    } else {
      panel.className = "err";
      panel.textContent = `${answer.status} ${answer.body.title}: ${answer.body.detail}`;
      setStatus(`verify: ${answer.body.title}`, "err");
    }
  } catch (error) {
    panel.className = "err";
    panel.textContent = "the service does not answer";
    setStatus("the service does not answer", "err");
  } finally {
    button.disabled = false;
  }
}

async function loadZooList() {
  try {
    const response = await fetch("/api/v1/zoo");
    const models = await response.json();
    const select = $("zoo");
    for (const model of models) {
      select.append(el("option", { value: model.name,
        text: `${model.title} — ${count(model.params)} params` }));
    }
  } catch (error) {
    setStatus("could not load the zoo", "err");
  }
}

async function loadZooModel(name) {
  if (!name) return;
  setStatus(`loading ${name}…`);
  const response = await fetch(`/api/v1/zoo/${encodeURIComponent(name)}`);
  const model = await response.json();
  if (!response.ok) { setStatus(model.detail, "err"); return; }
  editor.value = model.text;
  editor.scrollTop = 0;
  $("verification").replaceChildren();
  $("verification").className = "";
  renderLines();
  analyse();
}

function start() {
  editor.value = EXAMPLE;
  editor.addEventListener("input", () => {
    $("verification").replaceChildren();
    $("verification").className = "";
    renderLines();
    scheduleAnalyse();
  });
  editor.addEventListener("scroll", syncScroll);
  editor.addEventListener("keydown", (event) => {   // Tab indents two spaces
    if (event.key !== "Tab") return;
    event.preventDefault();
    editor.setRangeText("  ", editor.selectionStart, editor.selectionEnd, "end");
    editor.dispatchEvent(new Event("input"));
  });
  $("zoo").addEventListener("change", (event) => loadZooModel(event.target.value));
  $("verify").addEventListener("click", verify);
  renderLines();
  loadZooList();
  const wanted = new URLSearchParams(location.hash.slice(1)).get("zoo");
  if (wanted) loadZooModel(wanted); else analyse();
}

start();
