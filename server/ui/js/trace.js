// A trace: the waterfall (services by colour, the critical path, errors),
// the selected span's details (attributes, events, resource) and the lines
// the trace logged, inline.

import {api, esc, fmtNanos, fmtTime, colourOf, ready, queryLine, attrTable} from "./api.js";
import {logList} from "./logs.js";

/** Most rows a waterfall draws; a bigger trace says what it left out. */
const MAX_ROWS = 2000;

/** The indexes of the spans on the critical path: from each root, the
 * child that ends last, down to a leaf (the chain the request waited on). */
export function criticalPath(spans) {
  const kids = spans.map(() => []);
  const roots = [];
  spans.forEach((s, i) => {
    const p = s.parentIndex;
    if (p !== null && p !== undefined && p >= 0 && p < spans.length) kids[p].push(i); else roots.push(i);
  });
  const on = new Set();
  const end = i => Number(spans[i].endTimeUnixNano);
  let n = roots.reduce((a, b) => (a === null || end(b) > end(a) ? b : a), null);
  for (let guard = 0; n !== null && guard < spans.length; guard++) {
    on.add(n);
    n = kids[n].reduce((a, b) => (a === null || end(b) > end(a) ? b : a), null);
  }
  return {on, kids, roots};
}

/** Spans in tree order (parents before children, siblings by start), with
 * their depth; iterative, so no trace can exhaust the stack. */
function treeOrder(spans, kids, roots) {
  const out = [];
  const start = i => Number(spans[i].startTimeUnixNano);
  const stack = roots.slice().sort((a, b) => start(b) - start(a)).map(i => [i, 0]);
  const seen = new Set();
  while (stack.length && out.length < MAX_ROWS) {
    const [i, d] = stack.pop();
    if (seen.has(i)) continue;
    seen.add(i);
    out.push([i, d]);
    for (const k of kids[i].slice().sort((a, b) => start(b) - start(a))) stack.push([k, d + 1]);
  }
  return out;
}

/**
 * The waterfall of `trace` (/api/v1/sextant/traces/{id}) with span id
 * `focus` highlighted; rows carry `data-span` for the details panel.
 */
export function waterfall(trace, focus) {
  const spans = trace.spans;
  if (!spans.length) return `<p class="muted">No spans.</p>`;
  const t0 = Math.min(...spans.map(s => Number(s.startTimeUnixNano)));
  const t1 = Math.max(...spans.map(s => Number(s.endTimeUnixNano)));
  const total = Math.max(t1 - t0, 1);
  const {on, kids, roots} = criticalPath(spans);
  const order = treeOrder(spans, kids, roots);
  const rows = order.map(([i, d]) => {
    const s = spans[i];
    const left = (Number(s.startTimeUnixNano) - t0) / total * 100;
    const width = Math.max(Number(s.durationNano) / total * 100, 0.25);
    const failing = s.status.code === "error";
    const cls = ["row", failing ? "failing" : "", s.spanId === focus ? "focus" : "", on.has(i) ? "critical" : ""].join(" ");
    return `<button type="button" class="${cls}" data-span="${i}" title="${esc(s.name + (s.status.message ? ": " + s.status.message : ""))}">
      <span class="label" style="padding-left:${Math.min(d, 40) * 12}px"><i style="background:${colourOf(s.service)}"></i>${esc(s.service)} <span class="muted">${esc(s.name)}</span></span>
      <span class="track"><span class="bar${failing ? " error" : ""}" style="left:${left}%;width:${width}%;background:${failing ? "" : colourOf(s.service)}"></span><span class="dur" style="left:${Math.min(left + width, 88)}%">${fmtNanos(s.durationNano)}</span></span></button>`;
  }).join("");
  const cut = order.length < spans.length ? `<p class="muted">The first ${order.length} of ${spans.length} spans are drawn.</p>` : "";
  return `<div class="waterfall" role="list">${rows}</div>${cut}
    <p class="muted legend-line"><span class="key bad"></span>failing span <span class="key critical"></span>critical path <span class="key focus"></span>selected</p>`;
}

/** The details of one span. */
export function spanDetails(s) {
  const events = (s.events || []).map(e => `<li>${esc(fmtTime(Number(e.timeUnixNano) / 1e6, true))} <b>${esc(e.name)}</b> ${Object.entries(e.attributes || {}).map(([k, v]) => `<code>${esc(k)}=${esc(typeof v === "string" ? v : JSON.stringify(v))}</code>`).join(" ")}</li>`).join("");
  return `<h3>${esc(s.service)}: ${esc(s.name)}</h3>
    <p><span class="badge ${s.status.code === "error" ? "bad" : "ok"}">${esc(s.status.code)}</span> ${esc(s.status.message || "")}
    · ${esc(s.kind)} · ${fmtNanos(s.durationNano)} · started ${esc(fmtTime(Number(s.startTimeUnixNano) / 1e6, true))}</p>
    <p class="muted">span <code>${esc(s.spanId)}</code>${s.parentSpanId ? ` · parent <code>${esc(s.parentSpanId)}</code>` : " · root"}</p>
    ${attrTable("Attributes", s.attributes)}
    ${events ? `<h4>Events</h4><ul>${events}</ul>` : ""}
    ${attrTable("Resource", s.resource)}`;
}

/** Wires the rows of the waterfall in `root` to show details in `detailsId`. */
export function wireWaterfall(root, trace, detailsId) {
  const show = i => {
    const el = document.getElementById(detailsId);
    if (el) el.innerHTML = spanDetails(trace.spans[i]);
    root.querySelectorAll(".waterfall .row.selected").forEach(r => r.classList.remove("selected"));
    const row = root.querySelector(`.waterfall .row[data-span="${i}"]`);
    if (row) row.classList.add("selected");
  };
  root.querySelectorAll(".waterfall .row").forEach(r => r.addEventListener("click", () => show(Number(r.dataset.span))));
  return show;
}

export async function traceView(view, id, params) {
  const t = await api(`/api/v1/sextant/traces/${encodeURIComponent(id)}`);
  const spans = t.spans;
  const focus = params.get("span") || (spans.find(s => s.status.code === "error") || {}).spanId;
  const t0 = Math.min(...spans.map(s => Number(s.startTimeUnixNano)));
  const t1 = Math.max(...spans.map(s => Number(s.endTimeUnixNano)));
  const services = [...new Set(spans.map(s => s.service))];
  const errors = spans.filter(s => s.status.code === "error").length;
  view.innerHTML = `<h1>Trace <code>${esc(id)}</code></h1>
    <p class="muted">${spans.length} spans over ${services.length} services, ${fmtNanos(t1 - t0)}, started ${esc(fmtTime(t0 / 1e6, true))}; ${errors} failing.
    Services: ${services.map(s => `<a href="#/service/${encodeURIComponent(s)}"><i class="dot" style="background:${colourOf(s)}"></i>${esc(s)}</a>`).join(" ")}</p>
    <div class="split"><section class="panel">${waterfall(t, focus)}</section><section class="panel details" id="span-details"><p class="muted">Select a span.</p></section></div>
    <section class="panel"><h2>Logs of this trace</h2>${t.logs.length ? logList(t.logs) : `<p class="muted">The trace logged nothing.</p>`}
    ${queryLine(`trace("${id}")`)}</section>`;
  const show = wireWaterfall(view, t, "span-details");
  const fi = spans.findIndex(s => s.spanId === focus);
  if (fi >= 0) show(fi);
  ready("trace");
}
