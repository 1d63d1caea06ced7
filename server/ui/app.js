// Sextant's web UI: plain JavaScript, no build step, served from the
// binary. Every view reads the public HTTP API (README) and keeps its
// state in the URL (#/view?params), so links can be shared.
"use strict";

const view = document.getElementById("view");

// ---- helpers ---------------------------------------------------------

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

async function api(path, form) {
  const opts = form ? {method: "POST", body: new URLSearchParams(form)} : {};
  const r = await fetch(path, opts);
  const j = await r.json().catch(() => ({status: "error", error: "HTTP " + r.status}));
  if (j.status !== "success") throw new Error(j.error || ("HTTP " + r.status));
  return j.data;
}

function fmtTime(ms) {
  if (!ms) return "";
  const d = new Date(Number(ms));
  const ny = d.toLocaleTimeString("en-US", {timeZone: "America/New_York", hour: "2-digit", minute: "2-digit", hour12: false});
  const utc = d.toISOString().slice(11, 16);
  return `${ny} New York (${utc} UTC)`;
}

function fmtNum(x, digits = 3) {
  if (x === null || x === undefined) return "–";
  const n = Number(x);
  if (Math.abs(n) >= 100) return n.toFixed(0);
  return Number(n.toPrecision(digits)).toString();
}

function health(ratio) {
  if (ratio >= 0.05) return "bad";
  if (ratio >= 0.01) return "warn";
  return "ok";
}

function exploreLink(q, text) {
  return `<a href="#/explore?q=${encodeURIComponent(q)}">${esc(text || q)}</a>`;
}

function route() {
  const h = location.hash.replace(/^#/, "") || "/";
  const [path, query] = h.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  return {parts, params};
}

// ---- views -----------------------------------------------------------

async function nowView() {
  view.innerHTML = `<h1>Now</h1>
    <div class="grid">
      <section class="panel" id="diag"><p class="muted">Diagnosing the last 15 minutes…</p></section>
      <section class="panel" id="incidents"><p class="muted">Loading incidents…</p></section>
    </div>
    <section class="panel"><h2>Service map (last 15 minutes)</h2><div id="map" class="muted">Loading…</div></section>`;
  const [diag, incidents, graph] = await Promise.allSettled([
    api("/api/v1/sextant/diagnose?window=15m"),
    api("/api/v1/sextant/incidents"),
    api("/api/v1/sextant/service-graph?window=15m"),
  ]);
  const d = document.getElementById("diag");
  if (diag.status === "fulfilled") d.innerHTML = diagnosisSummary(diag.value);
  else d.innerHTML = `<div class="error-box">${esc(diag.reason.message)}</div>`;
  const inc = document.getElementById("incidents");
  if (incidents.status === "fulfilled") inc.innerHTML = incidentList(incidents.value);
  else inc.innerHTML = `<div class="error-box">${esc(incidents.reason.message)}</div>`;
  const lit = diag.status === "fulfilled" ? litNodes(diag.value) : new Set();
  const m = document.getElementById("map");
  if (graph.status === "fulfilled") m.innerHTML = serviceMap(graph.value, lit);
  else m.innerHTML = `<div class="error-box">${esc(graph.reason.message)}</div>`;
}

function litNodes(d) {
  const s = new Set();
  for (const a of d.affected || []) for (const n of a.path) s.add(n);
  if (d.causes && d.causes[0]) s.add(d.causes[0].name);
  return s;
}

function diagnosisSummary(d) {
  if (!d.incident) {
    const lack = (d.lacking || []).map(l => `<p class="muted">${esc(l)}</p>`).join("");
    return `<h2><span class="badge ok">normal</span> No incident</h2>
      <p>Every entry point is within its normal for this time (${esc(d.window.day_kind)}).</p>${lack}`;
  }
  const sym = d.symptoms.map(s => `<li>${esc(s.node)}: ${esc(s.indicator)} ${fmtNum(s.observed)} (normal ${fmtNum(s.baseline)})</li>`).join("");
  const top = d.causes[0];
  return `<h2><span class="badge bad">incident</span> Likely cause: ${esc(top ? top.name : "unknown")}</h2>
    ${top ? `<p>${esc(top.explanation)}</p>` : ""}
    <ul>${sym}</ul>
    <p><a href="#/diagnosis?start=${d.window.start}&end=${d.window.end}">All causes and evidence →</a></p>`;
}

function incidentList(list) {
  if (!list.length) return `<h2>Incidents</h2><p class="muted">None yet.</p>`;
  const rows = list.slice(0, 20).map(i => `<tr>
      <td><a href="#/incident/${i.id}">#${i.id}</a></td>
      <td><span class="badge ${i.status === "open" ? "bad" : "ok"}">${esc(i.status)}</span></td>
      <td>${esc(i.top_cause ? i.top_cause.name : "")} <span class="muted">${esc(i.top_cause ? i.top_cause.kind : "")}</span></td>
      <td>${i.top_cause ? fmtNum(i.top_cause.score, 2) : ""}</td>
      <td class="muted">${fmtTime(i.opened)}</td></tr>`).join("");
  return `<h2>Incidents</h2><table><tr><th>id</th><th>status</th><th>top cause</th><th>score</th><th>opened</th></tr>${rows}</table>`;
}

function serviceMap(g, lit) {
  if (!g.nodes.length) return `<p class="muted">No spans in the window.</p>`;
  // Layers: entry points first, then breadth-first along the calls.
  const depth = new Map();
  const out = new Map();
  for (const e of g.edges) {
    if (!out.has(e.from)) out.set(e.from, []);
    out.get(e.from).push(e.to);
  }
  const queue = g.nodes.filter(n => n.entry).map(n => n.name);
  queue.forEach(n => depth.set(n, 0));
  for (let i = 0; i < queue.length; i++) {
    const n = queue[i];
    for (const m of out.get(n) || []) {
      if (!depth.has(m)) { depth.set(m, depth.get(n) + 1); queue.push(m); }
    }
  }
  let maxDepth = 0;
  for (const v of depth.values()) maxDepth = Math.max(maxDepth, v);
  for (const n of g.nodes) if (!depth.has(n.name)) depth.set(n.name, maxDepth + 1);
  const columns = [];
  for (const n of g.nodes) {
    const d = depth.get(n.name);
    (columns[d] = columns[d] || []).push(n);
  }
  const W = 170, H = 44, GX = 60, GY = 14;
  const pos = new Map();
  columns.forEach((col, x) => (col || []).forEach((n, y) => pos.set(n.name, {x: 10 + x * (W + GX), y: 10 + y * (H + GY)})));
  const width = 20 + columns.length * (W + GX);
  const height = 20 + Math.max(...columns.map(c => (c || []).length)) * (H + GY);
  const edges = g.edges.map(e => {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) return "";
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const bad = e.stats.error_ratio >= 0.05 ? " bad" : "";
    const title = `${e.from} → ${e.to}: ${e.stats.requests} calls, ${(e.stats.error_ratio * 100).toFixed(1)}% errors, p99 ${fmtNum((e.stats.latency.p99 || 0) * 1000)} ms`;
    return `<path class="edge${bad}" d="M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}" marker-end="url(#arrow)"><title>${esc(title)}</title></path>`;
  }).join("");
  const colour = {ok: "var(--ok)", warn: "var(--warn)", bad: "var(--bad)"};
  const nodes = g.nodes.map(n => {
    const p = pos.get(n.name);
    const h = health(n.stats.error_ratio);
    const kind = n.kind === "service" ? "" : ` (${n.kind}${n.system ? ": " + n.system : ""})`;
    const link = n.kind === "service" ? `#/explore?q=${encodeURIComponent(`sum by (service) (rate(spans({service="${n.name}", kind="server"})[1m]))`)}` : "#/";
    return `<a href="${link}"><g class="node${lit.has(n.name) ? " lit" : ""}" transform="translate(${p.x},${p.y})">
      <rect width="${W}" height="${H}" rx="${n.kind === "database" ? 14 : 4}" fill="var(--panel)"></rect>
      <rect width="6" height="${H}" fill="${colour[h]}"></rect>
      <text x="12" y="17">${esc(n.name.length > 24 ? n.name.slice(0, 23) + "…" : n.name)}${esc(kind).slice(0, 14)}</text>
      <text x="12" y="34" class="muted">${fmtNum(n.stats.rate, 2)}/s · ${(n.stats.error_ratio * 100).toFixed(1)}% err · p99 ${fmtNum((n.stats.latency.p99 || 0) * 1000)} ms</text>
      <title>${esc(n.name + kind)}</title></g></a>`;
  }).join("");
  return `<svg role="img" aria-label="service map" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="var(--muted)"></path></marker></defs>
    ${edges}${nodes}</svg>`;
}

function causePanel(c, i) {
  const ev = c.evidence || {};
  const m = ev.metric;
  const metric = m ? `<h3>Metric</h3>
      <p>${esc(m.name)}: <b>${fmtNum(m.baseline)}</b> normally → <b>${fmtNum(m.observed)}</b>${m.onset ? `, from ${fmtTime(m.onset)}` : ""}</p>
      <p>${exploreLink(m.query, "Query: " + m.query)}</p>` : "";
  const l = ev.log;
  const log = l ? `<h3>Log template</h3><pre>${esc(l.template)}</pre>
      <p>${l.count} lines now, ${fmtNum(l.baseline_count)} normally</p>
      <ul>${l.examples.map(x => `<li><code>${esc(x.body)}</code> <span class="muted">${esc(x.service)}</span>${x.trace_id ? ` <a href="#/trace/${x.trace_id}">trace</a>` : ""}</li>`).join("")}</ul>` : "";
  const traces = (ev.traces || []).length ? `<h3>Traces</h3><ul>${ev.traces.map(t => `<li><a href="#/trace/${t.trace_id}?span=${t.span_id}">${t.trace_id}</a> <span class="muted">span ${t.span_id}</span></li>`).join("")}</ul>` : "";
  const change = ev.change ? `<h3>Change</h3><p>${esc(ev.change.description)} at ${fmtTime(ev.change.at)}</p>` : "";
  return `<section class="panel cause${i > 0 ? " minor" : ""}">
    <h2>${i + 1}. ${esc(c.name)} <span class="muted">${esc(c.kind)}${c.service && c.service !== c.name ? ", " + esc(c.service) : ""}</span> <span class="badge ${i === 0 ? "bad" : "warn"}">score ${fmtNum(c.score, 2)}</span></h2>
    <p>${esc(c.explanation)}</p>${metric}${log}${traces}${change}</section>`;
}

function diagnosisPage(d, title) {
  const path = (d.affected || []).map(a => `<li>${a.path.map(esc).join(" → ")}</li>`).join("");
  return `<h1>${esc(title)}</h1>
    <p class="muted">Window ${fmtTime(d.window.start)} – ${fmtTime(d.window.end)}, a ${esc(d.window.day_kind)} day; diagnosed in ${d.took_ms} ms.</p>
    ${d.incident ? "" : `<p><span class="badge ok">normal</span> No incident in this window.</p>`}
    ${path ? `<section class="panel"><h2>Propagation</h2><ul>${path}</ul></section>` : ""}
    ${(d.causes || []).map(causePanel).join("")}
    ${(d.lacking || []).map(l => `<p class="muted">${esc(l)}</p>`).join("")}`;
}

async function incidentView(id) {
  const inc = await api(`/api/v1/sextant/incidents/${encodeURIComponent(id)}`);
  const timeline = `<p>Opened ${fmtTime(inc.opened)}, last seen ${fmtTime(inc.updated)}${inc.resolved ? `, resolved ${fmtTime(inc.resolved)}` : ""}.
    ${inc.earlier_causes.length ? `Earlier top causes: ${inc.earlier_causes.map(esc).join(", ")}.` : ""}</p>`;
  view.innerHTML = diagnosisPage(inc.diagnosis, `Incident #${inc.id} (${inc.status})`).replace("</h1>", "</h1>" + timeline);
}

async function diagnosisView(params) {
  const q = new URLSearchParams();
  for (const k of ["start", "end", "time", "window"]) if (params.get(k)) q.set(k, /^\d{12,}$/.test(params.get(k)) ? Number(params.get(k)) / 1000 : params.get(k));
  const d = await api(`/api/v1/sextant/diagnose?${q}`);
  view.innerHTML = diagnosisPage(d, "Diagnosis");
}

async function traceView(id, params) {
  const t = await api(`/api/v1/sextant/traces/${encodeURIComponent(id)}`);
  const spans = t.spans;
  const start = Math.min(...spans.map(s => Number(s.startTimeUnixNano)));
  const end = Math.max(...spans.map(s => Number(s.endTimeUnixNano)));
  const total = Math.max(end - start, 1);
  const depth = spans.map(() => 0);
  spans.forEach((s, i) => { let p = s.parentIndex, d = 0; while (p !== null && p !== undefined && p >= 0 && d < 256) { d++; p = spans[p].parentIndex; } depth[i] = d; });
  const focus = params.get("span");
  const rows = spans.map((s, i) => {
    const left = (Number(s.startTimeUnixNano) - start) / total * 100;
    const width = Math.max(Number(s.durationNano) / total * 100, 0.3);
    const failing = s.status.code === "error";
    return `<div class="row${failing ? " failing" : ""}${s.spanId === focus ? " focus" : ""}" title="${esc(s.status.message)}">
      <div class="label" style="padding-left:${depth[i] * 12}px">${esc(s.service)} <span class="muted">${esc(s.name)}</span></div>
      <div class="track"><div class="bar${failing ? " error" : ""}" style="left:${left}%;width:${width}%"></div></div></div>`;
  }).join("");
  view.innerHTML = `<h1>Trace ${esc(id)}</h1>
    <p class="muted">${spans.length} spans, ${(total / 1e6).toFixed(1)} ms; failing spans in red.</p>
    <div class="panel waterfall">${rows}</div>`;
}

async function exploreView(params) {
  const q = params.get("q") || 'sum by (service) (rate(spans({kind="server"})[5m]))';
  view.innerHTML = `<h1>Explore</h1>
    <form id="qf"><textarea id="q" aria-label="query" spellcheck="false">${esc(q)}</textarea>
    <p><button type="submit">Run</button> <span class="muted">PromQL, logs({…}), spans({…}), joins: docs/query-language.md</span></p></form>
    <div id="err"></div><div id="result"></div>`;
  document.getElementById("qf").addEventListener("submit", e => {
    e.preventDefault();
    location.hash = "#/explore?q=" + encodeURIComponent(document.getElementById("q").value);
  });
  try {
    const data = await api("/api/v1/sextant/query", {query: q, limit: "200"});
    document.getElementById("result").innerHTML = resultTable(data);
  } catch (e) {
    document.getElementById("err").innerHTML = `<div class="error-box" role="alert">${esc(e.message)}</div>`;
  }
}

function labelsOf(m) {
  return "{" + Object.entries(m || {}).map(([k, v]) => `${k}="${v}"`).join(", ") + "}";
}

function resultTable(d) {
  switch (d.resultType) {
    case "vector":
      return `<table><tr><th>series</th><th>value</th></tr>${d.result.map(r => `<tr><td><code>${esc(labelsOf(r.metric))}</code></td><td>${esc(r.value[1])}</td></tr>`).join("")}</table>`;
    case "matrix":
      return `<table><tr><th>series</th><th>points</th><th>last</th></tr>${d.result.map(r => `<tr><td><code>${esc(labelsOf(r.metric))}</code></td><td>${r.values.length}</td><td>${esc(r.values.length ? r.values[r.values.length - 1][1] : "")}</td></tr>`).join("")}</table>`;
    case "scalar":
    case "string":
      return `<p><code>${esc(d.result[1])}</code></p>`;
    case "logs":
      return logTable(d.result);
    case "spans":
      return `<table><tr><th>service</th><th>span</th><th>duration</th><th>status</th><th>trace</th></tr>${d.result.map(s => `<tr><td>${esc(s.service)}</td><td>${esc(s.name)}</td><td>${(Number(s.durationNano) / 1e6).toFixed(1)} ms</td><td>${esc(s.status.code)}</td><td><a href="#/trace/${s.traceId}?span=${s.spanId}">${s.traceId.slice(0, 12)}…</a></td></tr>`).join("")}</table>`;
    case "traces":
      return `<ul>${d.result.map(t => `<li><a href="#/trace/${t.traceId}">${t.traceId}</a> <span class="muted">${t.spans.length} spans</span></li>`).join("")}</ul>`;
    default:
      return `<pre>${esc(JSON.stringify(d, null, 2))}</pre>`;
  }
}

function logTable(rows) {
  return `<table><tr><th>time</th><th>service</th><th>level</th><th>message</th></tr>${rows.map(l => {
    const t = l.timeUnixNano ? Number(l.timeUnixNano) / 1e6 : 0;
    const body = typeof l.body === "string" ? l.body : JSON.stringify(l.body);
    return `<tr><td class="muted">${fmtTime(t)}</td><td>${esc(l.service)}</td><td>${esc(l.severityText || "")}</td><td><code>${esc(body)}</code>${l.traceId ? ` <a href="#/trace/${l.traceId}">trace</a>` : ""}</td></tr>`;
  }).join("")}</table>`;
}

async function logsView(params) {
  const service = params.get("service") || "", level = params.get("level") || "", q = params.get("q") || "";
  view.innerHTML = `<h1>Logs</h1>
    <form id="lf"><input id="svc" aria-label="service" placeholder="service" value="${esc(service)}">
    <select id="lvl" aria-label="level">${["", "error", "warn", "info"].map(l => `<option${l === level ? " selected" : ""}>${l}</option>`).join("")}</select>
    <input id="txt" aria-label="text" placeholder="text (\"exact phrase\" OR word)" value="${esc(q)}" size="40">
    <button type="submit">Search</button></form><div id="err"></div><div id="rows" class="muted">Searching…</div>`;
  document.getElementById("lf").addEventListener("submit", e => {
    e.preventDefault();
    const p = new URLSearchParams({service: svc.value, level: lvl.value, q: txt.value});
    location.hash = "#/logs?" + p;
  });
  const m = [];
  if (service) m.push(`service="${service.replace(/"/g, "")}"`);
  if (level) m.push(`level="${level}"`);
  const form = {limit: "200"};
  if (m.length) form["match[]"] = `{${m.join(",")}}`;
  if (q) form.q = q;
  try {
    const rows = await api("/api/v1/sextant/logs", form);
    document.getElementById("rows").innerHTML = rows.length ? logTable(rows) : "No lines.";
  } catch (e) {
    document.getElementById("err").innerHTML = `<div class="error-box" role="alert">${esc(e.message)}</div>`;
  }
}

async function render() {
  const {parts, params} = route();
  try {
    switch (parts[0]) {
      case undefined: await nowView(); break;
      case "incident": await incidentView(parts[1]); break;
      case "diagnosis": await diagnosisView(params); break;
      case "trace": await traceView(parts[1], params); break;
      case "explore": await exploreView(params); break;
      case "logs": await logsView(params); break;
      default: view.innerHTML = `<p>No such page. <a href="#/">Now</a></p>`;
    }
  } catch (e) {
    view.innerHTML = `<div class="error-box" role="alert">${esc(e.message)}</div>`;
  }
  view.focus({preventScroll: true});
}

function tick() {
  document.getElementById("clock").textContent = fmtTime(Date.now());
}

window.addEventListener("hashchange", render);
setInterval(tick, 10000);
tick();
render();
