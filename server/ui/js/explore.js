// Explore: the query language in an editor with completion (metric names,
// label names and values, log and span fields), the parser's `line:col`
// errors shown where they are, and each result type drawn its own way.
// The query, range and tab live in the URL.

import {api, serviceNames, esc, qs, fill, errorBox, ready, fmtNum, fmtNanos, fmtTime, colourOf} from "./api.js";
import {rangeOf, picker, wirePicker} from "./timerange.js";
import {drawChart, seriesName, zoomTo} from "./chart.js";
import {logList} from "./logs.js";

const DEFAULT_QUERY = 'sum by (service) (rate(spans({kind="server"})[1m]))';

const FUNCTIONS = ["rate", "irate", "increase", "delta", "sum", "avg", "min", "max", "count", "topk", "bottomk", "limitk",
  "quantile", "histogram_quantile", "quantile_over_time", "avg_over_time", "max_over_time", "min_over_time",
  "sum_over_time", "count_over_time", "error_ratio", "bytes_over_time", "bytes_rate", "present_over_time",
  "absent_over_time", "abs", "clamp_min", "clamp_max", "label_replace", "label_join", "time", "vector",
  "scalar", "sort", "sort_desc", "logs", "spans", "trace", "traces", "exemplar_traces", "by", "without", "on",
  "ignoring", "group_left", "group_right", "offset", "and", "or", "unless"];

/** Fields of the record selectors (docs/query-language.md). */
const FIELDS = {
  logs: ["service", "level", "trace_id", "span_id"],
  spans: ["service", "name", "kind", "status", "duration", "trace_id", "span_id", "parent_span_id"],
};
const FIELD_VALUES = {
  level: ["trace", "debug", "info", "warn", "error", "fatal"],
  kind: ["server", "client", "producer", "consumer", "internal"],
  status: ["error", "ok", "unset"],
};

const cache = new Map();
function cached(path) {
  if (!cache.has(path)) cache.set(path, api(path).catch(() => []));
  return cache.get(path);
}

/** What to complete at `pos` of `text`: {from, prefix, items}. */
async function suggestions(text, pos) {
  const before = text.slice(0, pos);
  const word = /[A-Za-z_.:][\w.:]*$/.exec(before);
  const prefix = word ? word[0] : "";
  const from = pos - prefix.length;
  const open = before.lastIndexOf("{"), close = before.lastIndexOf("}");
  if (open > close) {
    const inside = before.slice(open + 1);
    const signal = /(logs|spans)\(\s*$/.exec(before.slice(0, open));
    const metric = /([A-Za-z_:][\w:]*)\s*$/.exec(before.slice(0, open));
    const val = /([\w.]+)\s*(=|!=|=~|!~)\s*"([^"]*)$/.exec(inside);
    if (val) {
      const name = val[1];
      const items = FIELD_VALUES[name] || (signal && name === "service" ? await serviceNames() : await cached(`/api/v1/label/${encodeURIComponent(name)}/values`));
      return {from: pos - val[3].length, prefix: val[3], items, quote: true};
    }
    if (/(^|,)\s*[\w.]*$/.test(inside)) {
      const items = signal ? FIELDS[signal[1]] : metric && !/^(by|without|on|ignoring)$/.test(metric[1])
        ? await cached(`/api/v1/labels?${qs({"match[]": metric[1]})}`) : await cached("/api/v1/labels");
      return {from, prefix, items};
    }
    return null;
  }
  if (!prefix) return null;
  const names = await cached("/api/v1/label/__name__/values");
  return {from, prefix, items: FUNCTIONS.concat(names)};
}

/** The editor's completion list: arrows move, Tab or Enter takes, Escape
 * closes; Ctrl+Enter runs the query. */
function wireCompletion(ta, list, run) {
  let items = [], sel = 0, at = null;
  const close = () => { list.hidden = true; items = []; };
  const take = i => {
    const it = items[i];
    if (!it) return;
    const v = ta.value;
    const text = at.quote ? it : it + (FUNCTIONS.includes(it) && !["by", "without", "on", "ignoring", "and", "or", "unless", "offset"].includes(it) ? "(" : "");
    ta.value = v.slice(0, at.from) + text + v.slice(ta.selectionStart);
    const p = at.from + text.length;
    ta.setSelectionRange(p, p);
    close();
    ta.focus();
  };
  const draw = () => {
    list.innerHTML = items.map((it, i) => `<li role="option" data-i="${i}"${i === sel ? ' aria-selected="true" class="sel"' : ""}>${esc(it)}</li>`).join("");
    list.hidden = !items.length;
  };
  let asked = 0;
  const update = async () => {
    // Answers arrive out of order (some wait for the server): only the
    // latest keystroke's counts.
    const me = ++asked;
    const s = await suggestions(ta.value, ta.selectionStart);
    if (me !== asked) return;
    if (!s) return close();
    const p = s.prefix.toLowerCase();
    items = [...new Set(s.items)].filter(x => x.toLowerCase().startsWith(p) && x !== s.prefix).slice(0, 12);
    sel = 0; at = s;
    draw();
  };
  ta.addEventListener("input", update);
  ta.addEventListener("keydown", e => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); close(); run(); return; }
    if (list.hidden) return;
    if (e.key === "ArrowDown") { sel = (sel + 1) % items.length; draw(); e.preventDefault(); }
    else if (e.key === "ArrowUp") { sel = (sel + items.length - 1) % items.length; draw(); e.preventDefault(); }
    else if (e.key === "Tab" || e.key === "Enter") { take(sel); e.preventDefault(); }
    else if (e.key === "Escape") { close(); e.preventDefault(); }
  });
  list.addEventListener("mousedown", e => { const li = e.target.closest("li"); if (li) { e.preventDefault(); take(Number(li.dataset.i)); } });
  ta.addEventListener("blur", () => setTimeout(close, 150));
}

/** The error under the editor: the message, and the line of the query
 * with a caret under the column the parser named. */
function showError(ta, e) {
  const m = /^(\d+):(\d+): (.*)$/s.exec(e.message);
  if (!m) return fill("err", errorBox(e));
  const line = Number(m[1]), col = Number(m[2]);
  const text = ta.value.split("\n")[line - 1] || "";
  fill("err", `<div class="error-box parse-error" role="alert"><b>${line}:${col}</b> ${esc(m[3])}<pre class="where">${esc(text)}\n${" ".repeat(Math.max(col - 1, 0))}^</pre></div>`);
  const offset = ta.value.split("\n").slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0) + col - 1;
  ta.setSelectionRange(offset, Math.min(offset + 1, ta.value.length));
}

/** Spans as a table linking to their traces (Service and Explore); a
 * failure's message is in its status cell's tooltip and the span's page. */
export function spanTable(spans) {
  return `<table class="spans"><thead><tr><th>start</th><th>service</th><th>span</th><th>kind</th><th class="num">duration</th><th>status</th><th>trace</th></tr></thead><tbody>${spans.map(s => `<tr class="${s.status.code === "error" ? "failing" : ""}">
    <td class="muted nowrap">${esc(fmtTime(Number(s.startTimeUnixNano) / 1e6, true))}</td>
    <td class="nowrap"><a href="#/service/${encodeURIComponent(s.service)}"><i class="dot" style="background:${colourOf(s.service)}"></i>${esc(s.service)}</a></td><td>${esc(s.name)}</td><td>${esc(s.kind)}</td>
    <td class="num nowrap">${fmtNanos(s.durationNano)}</td><td title="${esc(s.status.message)}"><span class="badge ${s.status.code === "error" ? "bad" : "ok"}">${esc(s.status.code)}</span></td>
    <td><a href="#/trace/${s.traceId}?span=${s.spanId}"><code>${s.traceId.slice(0, 8)}…</code></a></td></tr>`).join("")}</tbody></table>`;
}

function traceList(traces) {
  return `<table><thead><tr><th>trace</th><th>root</th><th>spans</th><th>services</th><th>duration</th><th>failing</th></tr></thead><tbody>${traces.map(t => {
    const s = t.spans;
    const root = s.find(x => x.parentIndex === null || x.parentIndex === undefined || x.parentIndex < 0) || s[0] || {};
    const t0 = Math.min(...s.map(x => Number(x.startTimeUnixNano))), t1 = Math.max(...s.map(x => Number(x.endTimeUnixNano)));
    const bad = s.filter(x => x.status.code === "error").length;
    return `<tr><td><a href="#/trace/${t.traceId}"><code>${t.traceId}</code></a></td><td>${esc(root.service)} <span class="muted">${esc(root.name)}</span></td>
      <td class="num">${s.length}</td><td class="num">${new Set(s.map(x => x.service)).size}</td><td class="num">${fmtNanos(t1 - t0)}</td><td class="num">${bad ? `<span class="badge bad">${bad}</span>` : "0"}</td></tr>`;
  }).join("")}</tbody></table>`;
}

/** A native histogram point `[t, {count, sum, buckets}]` as the float
 * the tables and charts show for it (its count), and as text. */
const histCount = p => [p[0], p[1].count];
const histText = h => `histogram: count ${fmtNum(h.count, 4)}, sum ${fmtNum(h.sum, 4)}, ${(h.buckets || []).length} buckets`;

/** A result series' points: floats, or its histograms' counts. */
const pointsOf = s => (s.values || []).concat((s.histograms || []).map(histCount)).sort((a, b) => a[0] - b[0]);

function vectorTable(rows) {
  const num = r => Number(r.value ? r.value[1] : r.histogram[1].count);
  const max = Math.max(...rows.map(r => Math.abs(num(r))).filter(isFinite), 0) || 1;
  const sorted = rows.slice().sort((a, b) => num(b) - num(a));
  return `<table><thead><tr><th>series</th><th class="num">value</th><th></th></tr></thead><tbody>${sorted.map(r => `<tr><td><code>${esc(labelsText(r.metric))}</code></td><td class="num">${esc(r.value ? fmtNum(r.value[1], 4) : histText(r.histogram[1]))}</td>
    <td class="barcell"><span class="hbar" style="width:${Math.abs(num(r)) / max * 100}%"></span></td></tr>`).join("")}</tbody></table>`;
}

function labelsText(m) {
  const name = m.__name__ || "";
  return name + "{" + Object.entries(m).filter(([k]) => k !== "__name__").map(([k, v]) => `${k}="${v}"`).join(", ") + "}";
}

/** Renders a result of /api/v1/sextant/query into `el`. */
function render(el, d, r) {
  const warn = (d.__warnings || []).map(w => `<p class="warning">${esc(w)}</p>`).join("");
  switch (d.resultType) {
    case "matrix": {
      el.innerHTML = `${warn}<p class="muted">${d.result.length} series (graph).</p><div class="chart-body" id="explore-chart"></div>
        <table><thead><tr><th>series</th><th class="num">points</th><th class="num">last</th></tr></thead><tbody>${d.result.slice(0, 200).map(s => { const p = pointsOf(s); return `<tr><td><code>${esc(labelsText(s.metric))}</code></td><td class="num">${p.length}</td><td class="num">${esc(fmtNum(p.length ? p[p.length - 1][1] : "", 4))}</td></tr>`; }).join("")}</tbody></table>`;
      // Histogram series are drawn by their count.
      const series = d.result.slice(0, 20).map(s => ({name: seriesName(s.metric), values: pointsOf(s), lower: s.lower, upper: s.upper}));
      if (series.length) drawChart(el.querySelector("#explore-chart"), {series, start: r.start, end: r.end, onZoom: zoomTo, label: "query result"});
      return;
    }
    case "vector": el.innerHTML = `${warn}<p class="muted">${d.result.length} series (instant vector).</p>${vectorTable(d.result)}`; return;
    case "scalar": case "string": el.innerHTML = `${warn}<p class="big-number"><code>${esc(d.result[1])}</code></p>`; return;
    case "logs": el.innerHTML = `${warn}<p class="muted">${d.result.length} log lines, newest first.</p>${logList(d.result)}`; return;
    case "spans": el.innerHTML = `${warn}<p class="muted">${d.result.length} spans.</p>${spanTable(d.result)}`; return;
    case "traces": el.innerHTML = `${warn}<p class="muted">${d.result.length} traces.</p>${traceList(d.result)}`; return;
    default: el.innerHTML = `<pre>${esc(JSON.stringify(d, null, 2))}</pre>`;
  }
}

export async function exploreView(view, params) {
  const q = params.get("q") || DEFAULT_QUERY;
  const tab = params.get("tab") === "table" ? "table" : "graph";
  const band = params.get("band") === "1";
  const r = rangeOf(params);
  view.innerHTML = `<h1>Explore</h1>
    <form id="qf" class="editor">
      <div class="ta-wrap"><textarea id="q" name="q" aria-label="query" spellcheck="false" rows="3" autocomplete="off">${esc(q)}</textarea>
      <ul id="complete" class="complete" role="listbox" hidden></ul></div>
      <div class="toolbar"><button type="submit">Run</button>
        <span class="tabs" role="tablist"><label><input type="radio" name="tab" value="graph"${tab === "graph" ? " checked" : ""}> over the range</label>
        <label><input type="radio" name="tab" value="table"${tab === "table" ? " checked" : ""}> at the end</label></span>
        <label><input type="checkbox" name="band"${band ? " checked" : ""}> normal band</label>
        <span class="muted">Ctrl+Enter runs · PromQL, <code>logs({…})</code>, <code>spans({…})</code>, joins: docs/query-language.md</span></div>
    </form>
    ${picker(params)}
    <div id="err"></div><div id="result" class="panel"><p class="muted">Running…</p></div>`;
  wirePicker(view);
  const f = view.querySelector("#qf"), ta = f.q;
  const run = () => {
    const p = new URLSearchParams(location.hash.split("?")[1] || "");
    p.set("q", ta.value);
    p.set("tab", f.tab.value);
    if (f.band.checked) p.set("band", "1"); else p.delete("band");
    const next = "#/explore?" + p;
    if (next === location.hash) exploreView(view, p); else location.hash = next;
  };
  f.addEventListener("submit", e => { e.preventDefault(); run(); });
  f.band.addEventListener("change", run);
  f.querySelectorAll("input[name=tab]").forEach(i => i.addEventListener("change", run));
  wireCompletion(ta, view.querySelector("#complete"), run);
  const when = tab === "graph" ? {start: r.start / 1000, end: r.end / 1000, step: r.step / 1000 + "s"} : {time: r.end / 1000};
  try {
    const d = band && tab === "graph"
      ? await api("/api/v1/sextant/query_band", {query: q, ...when})
      : await api("/api/v1/sextant/query", {query: q, limit: "200", ...when});
    render(document.getElementById("result"), d, r);
  } catch (e) {
    document.getElementById("result").remove();
    showError(ta, e);
  }
  ready("explore");
}
