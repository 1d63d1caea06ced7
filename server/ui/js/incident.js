// The incident page (and the diagnosis of any window, which looks the
// same): a timeline, the ranked causes, and for the selected cause the
// metric that proves it against its normal, its log template with lines
// linked to their traces, one failing (else slow) trace as a waterfall, and the
// propagation path lit on the map. Each panel shows its query.

import {api, esc, qs, fmtNum, fmtPct, fmtSecs, fmtIndicator, fmtTime, fmtDateTime, fill, errorBox, ready, queryLine, lit} from "./api.js";
import {bandPanel, chartFrame} from "./chart.js";
import {serviceMap} from "./map.js";
import {waterfall, wireWaterfall} from "./trace.js";

/** Before the window, the proving metric's chart shows this much, ms. */
const LEAD_MS = 30 * 60e3;

/** The incident's moments on a line; labels close together are put on
 * different levels so none hides another. */
function timeline(items, start, end) {
  const span = Math.max(end - start, 1);
  const lastX = [-100, -100, -100];
  // Moments within a minute of each other share one mark.
  const merged = [];
  for (const i of items.filter(i => i.t).sort((a, b) => a.t - b.t)) {
    const prev = merged[merged.length - 1];
    if (prev && i.t - prev.t < 60e3) prev.label += " · " + i.label; else merged.push({...i});
  }
  const marks = merged.map(i => {
    const x = Math.min(Math.max((i.t - start) / span * 100, 0), 100);
    let level = lastX.findIndex(l => l < x - 16);
    if (level < 0) level = lastX.indexOf(Math.min(...lastX));
    lastX[level] = x;
    return `<li class="tl ${i.kind}${x > 60 ? " right" : ""}" style="left:${x}%"><span class="tl-dot"></span><span class="tl-label" style="margin-top:${2 + level * 34}px">${esc(i.label)}<br><span class="muted">${esc(fmtTime(i.t))}</span></span></li>`;
  }).join("");
  return `<section class="panel"><h2>Timeline</h2><ol class="timeline" aria-label="timeline">${marks}</ol></section>`;
}

function causeList(causes, sel, href) {
  return `<ol class="causes">${causes.map((c, i) => `<li class="${i === sel ? "selected" : ""}">
    <a href="${href(i)}" aria-current="${i === sel}"><span class="rank">${i + 1}.</span> <b class="cause-name">${esc(c.name)}</b> <span class="muted">${esc(c.kind)}</span>
    <span class="score"><span class="hbar" style="width:${Math.min(c.score, 1) * 100}%"></span></span><span class="num">${fmtPct(Math.min(c.score, 1))}</span></a></li>`).join("")}</ol>`;
}

/** The text to look a template up by: its longest constant run. */
function templateText(t) {
  return t.split("<*>").map(s => s.trim()).sort((a, b) => b.length - a.length)[0] || t;
}

function logPanel(c, w) {
  const l = c.evidence.log;
  if (!l) return `<section class="panel"><h3>Error logs</h3><p class="muted">No log template surged at ${esc(c.name)}.</p></section>`;
  const svc = l.examples[0] ? l.examples[0].service : c.service;
  const q = `logs({service="${lit(svc)}"} |= "${lit(templateText(l.template))}")`;
  return `<section class="panel" id="log-panel"><h3>Error logs</h3>
    <table><thead><tr><th>template</th><th class="num">now</th><th class="num">normal</th></tr></thead>
    <tbody><tr><td><code class="template">${esc(l.template)}</code></td><td class="num">${l.count}</td><td class="num">${fmtNum(l.baseline_count)}</td></tr></tbody></table>
    <ul class="examples">${l.examples.map(x => `<li><span class="muted">${esc(fmtTime(x.time, true))} ${esc(x.service)}</span> <code>${esc(x.body)}</code>${x.trace_id ? ` <a href="#/trace/${x.trace_id}">trace →</a>` : ""}</li>`).join("")}</ul>
    ${queryLine(q, w.start, w.end)}</section>`;
}

function changePanel(c) {
  const ch = c.evidence.change;
  return ch ? `<section class="panel"><h3>Change</h3><p><span class="badge warn">${esc(ch.kind)}</span> ${esc(ch.description)} at ${esc(fmtTime(ch.at))}</p></section>` : "";
}

/** The page of diagnosis `d`; `inc` is its incident, if any. */
async function diagnosisPage(view, d, params, title, inc) {
  const causes = d.causes || [];
  const sel = Math.min(Math.max(Number(params.get("cause")) || 0, 0), Math.max(causes.length - 1, 0));
  const c = causes[sel];
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const href = i => { const p = new URLSearchParams(query || ""); p.set("cause", i); return `#${path}?${p}`; };
  const w = d.window;
  const end = inc ? (inc.resolved || Math.max(inc.updated, w.end)) : w.end;
  const start = Math.min(inc ? inc.opened : w.start, w.start);
  const marks = [];
  if (inc) marks.push({t: inc.opened, label: "opened", kind: "open"});
  // The selected cause's onset, and every change (deploys are rare and
  // always worth seeing).
  if (c && c.evidence.metric && c.evidence.metric.onset) marks.push({t: c.evidence.metric.onset, label: `onset: ${c.name}`, kind: "onset"});
  for (const x of causes) {
    if (x.evidence.change) marks.push({t: x.evidence.change.at, label: `deploy: ${x.name}`, kind: "deploy"});
  }
  if (inc && inc.resolved) marks.push({t: inc.resolved, label: "resolved", kind: "resolved"});
  else marks.push({t: end, label: inc ? "last seen" : "window end", kind: "now"});
  const tlStart = Math.min(start, ...marks.map(m => m.t)) - 60e3;
  const symptoms = (d.symptoms || []).map(s => `<li><b>${esc(s.node)}</b> ${esc(s.indicator.replace(/_/g, " "))}: ${fmtIndicator(s.indicator, s.observed)} <span class="muted">normal ${fmtIndicator(s.indicator, s.baseline)}</span></li>`).join("");
  view.innerHTML = `<h1>${esc(title)}</h1>
    <p class="muted">Diagnosed ${esc(fmtDateTime(w.start))} – ${esc(fmtTime(w.end))}, a ${esc(w.day_kind)} day, against ${w.baseline_starts.length} comparable window${w.baseline_starts.length === 1 ? "" : "s"}; ${d.took_ms} ms.
    ${inc && inc.earlier_causes.length ? `Earlier top causes: ${inc.earlier_causes.map(esc).join(", ")}.` : ""}</p>
    ${d.incident ? "" : `<p><span class="badge ok">normal</span> No incident in this window.</p>`}
    ${(d.lacking || []).map(l => `<p class="warning">${esc(l)}</p>`).join("")}
    ${marks.length ? timeline(marks, tlStart, end) : ""}
    ${causes.length ? `<div class="incident">
      <aside class="panel"><h2>Likely causes</h2>${causeList(causes, sel, href)}
        ${symptoms ? `<h3>Symptoms</h3><ul>${symptoms}</ul>` : ""}
        ${(d.affected || []).length ? `<h3>Propagation</h3><ul>${d.affected.map(a => `<li>${a.path.map(esc).join(" → ")}</li>`).join("")}</ul>` : ""}</aside>
      <div class="cause-detail" id="cause">
        <section class="panel"><h2 id="top-cause">${sel + 1}. ${esc(c.name)} <span class="muted">${esc(c.kind)}${c.service && c.service !== c.name ? " of " + esc(c.service) : ""}</span></h2>
          <p class="explanation">${esc(c.explanation)}</p>
          <p><a href="#/service/${encodeURIComponent(pageOf(c))}">Page of ${esc(pageOf(c))} →</a></p></section>
        ${c.evidence.metric ? chartFrame("metric", metricTitle(c.evidence.metric)) : ""}
        ${logPanel(c, {start: tlStart, end})}
        ${changePanel(c)}
        <section class="panel" id="trace-panel"><h3>A trace through it</h3><p class="muted">${c.evidence.traces.length ? "Loading…" : "No trace crosses this cause in the window."}</p></section>
      </div></div>` : ""}
    <section class="panel"><h2>Propagation on the service map</h2><div id="map"><p class="muted">Loading…</p></div>
    <p class="query-line">From <a href="/api/v1/sextant/service-graph?${qs({start: w.start / 1000, end: w.end / 1000})}"><code>/api/v1/sextant/service-graph</code></a></p></section>`;
  const onPath = new Set();
  for (const a of d.affected || []) for (const n of a.path) onPath.add(n);
  if (c) onPath.add(c.name.split("->").pop());
  const jobs = [api(`/api/v1/sextant/service-graph?${qs({start: w.start / 1000, end: w.end / 1000})}`)
    .then(g => fill("map", serviceMap(g, onPath, c ? c.name : "")))
    .catch(e => fill("map", errorBox(e)))];
  if (c && c.evidence.traces.length) {
    const ev = c.evidence.traces[0];
    jobs.push(api(`/api/v1/sextant/traces/${ev.trace_id}`).then(t => {
      // The diagnosis gives a trace whose span there failed, else its slowest.
      const i = t.spans.findIndex(s => s.spanId === ev.span_id);
      const what = i >= 0 && t.spans[i].status.code === "error" ? "A failing trace" : "A slow trace";
      const el = fill("trace-panel", `<h3>${what} <a href="#/trace/${ev.trace_id}?span=${ev.span_id}">open →</a></h3>
        ${waterfall(t, ev.span_id)}<div id="trace-span" class="details"></div>${queryLine(`trace("${ev.trace_id}")`)}`);
      if (el) {
        const show = wireWaterfall(el, t, "trace-span");
        if (i >= 0) show(i);
      }
    }).catch(e => fill("trace-panel", `<h3>A trace through it</h3>${errorBox(e)}`)));
  }
  await Promise.all(jobs);
  ready(inc ? "incident" : "diagnosis");
  if (c && c.evidence.metric) {
    const m = c.evidence.metric;
    const r = {start: tlStart - LEAD_MS, end: inc && !inc.resolved ? Date.now() : Math.min(end + LEAD_MS, Date.now())};
    r.step = Math.max(15e3, Math.round((r.end - r.start) / 120 / 15e3) * 15e3);
    const onset = m.onset ? [{t: m.onset, label: "onset", kind: "onset"}] : [];
    const deploy = c.evidence.change ? [{t: c.evidence.change.at, label: "deploy", kind: "deploy"}] : [];
    await bandPanel("metric", m.query, r, {label: m.name, markers: onset.concat(deploy), format: metricFormat(m)});
  }
}

/** Whose page a cause's link opens: a database's or third party's own
 * (its callers' calls to it), else the service's it belongs to (an
 * instance's, a link's caller's). */
function pageOf(c) {
  return c.kind === "database" || c.kind === "external" ? c.name : (c.service || c.name);
}

/** How the chart of the cause's metric writes its values: a ratio as a
 * percentage, a time per call (its query charts seconds) as a duration. */
function metricFormat(m) {
  if (m.name.includes("ratio")) return fmtPct;
  return m.name.includes("_ms_") ? fmtSecs : fmtNum;
}

/** `time per call: 7.4 ms normally → 201 ms`: the metric's name, then its
 * baseline and observed values in their unit (times are given in ms). */
function metricTitle(m) {
  const ms = m.name.includes("_ms_");
  const f = ms ? v => fmtSecs(v / 1000) : metricFormat(m);
  const name = m.name.replace(/_ms_/, "_").replace(/_/g, " ");
  return `${name}: ${f(m.baseline)} normally → ${f(m.observed)}`;
}

export async function incidentView(view, id, params) {
  const inc = await api(`/api/v1/sextant/incidents/${encodeURIComponent(id)}`);
  const state = inc.status === "open" ? "open" : `resolved ${fmtTime(inc.resolved)}`;
  await diagnosisPage(view, inc.diagnosis, params, `Incident #${inc.id} (${state})`, inc);
}

export async function diagnosisView(view, params) {
  const q = {};
  for (const k of ["start", "end", "time", "window"]) {
    const v = params.get(k);
    if (v) q[k] = /^\d{12,}$/.test(v) ? Number(v) / 1000 : v;
  }
  const d = await api(`/api/v1/sextant/diagnose?${qs(q)}`);
  await diagnosisPage(view, d, params, "Diagnosis");
}
