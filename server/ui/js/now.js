// Now: the estate's health against its normal. The diagnosis of the last
// 15 minutes, the continuous diagnosis' incidents, the entry points' RED
// (requests, errors, latency) over the range with the seasonal band, and
// the service map coloured by health with the propagation path lit.

import {api, NeedToken, esc, fmtNum, fmtPct, fmtSecs, fmtIndicator, fmtDateTime, fill, errorBox, ready, lit} from "./api.js";
import {bandPanel, chartFrame} from "./chart.js";
import {serviceMap} from "./map.js";
import {rangeOf, picker, wirePicker} from "./timerange.js";

/** The RED queries of the spans matched by `sel`
 * (`kind="server", service=~"a|b"`), by `by`, over the rate window `w`. */
export function redQueries(sel, w, by = "service") {
  const all = `spans({${sel}})[${w}]`;
  const bad = `spans({${sel}, status="error"})[${w}]`;
  return {
    rate: `sum by (${by}) (rate(${all}))`,
    errors: `(sum by (${by}) (rate(${bad})) or 0 * sum by (${by}) (rate(${all}))) / sum by (${by}) (rate(${all}))`,
    p99: `quantile by (${by}) (0.99, ${all})`,
  };
}

/** The nodes a diagnosis lights: the paths from the symptoms to the top
 * cause, and the cause itself. */
export function litNodes(d) {
  const s = new Set();
  for (const a of d.affected || []) for (const n of a.path) s.add(n);
  if (d.causes && d.causes[0]) s.add(d.causes[0].name);
  return s;
}

function diagnosisSummary(d) {
  if (!d.incident) {
    const lack = (d.lacking || []).map(l => `<p class="muted">${esc(l)}</p>`).join("");
    return `<h2><span class="badge ok">normal</span> No incident now</h2>
      <p>Every entry point is within its normal for this moment of a ${esc(d.window.day_kind)} day.</p>${lack}`;
  }
  const sym = d.symptoms.slice(0, 5).map(s => `<li><b>${esc(s.node)}</b>: ${esc(s.indicator.replace(/_/g, " "))} ${fmtIndicator(s.indicator, s.observed)} <span class="muted">(normal ${fmtIndicator(s.indicator, s.baseline)})</span></li>`).join("");
  const top = d.causes[0];
  return `<h2><span class="badge bad">incident</span> Likely cause: <a href="#/service/${encodeURIComponent(top ? top.service || top.name : "")}">${esc(top ? top.name : "unknown")}</a></h2>
    ${top ? `<p>${esc(top.explanation)}</p>` : ""}
    <ul>${sym}</ul>
    <p><a class="button" href="#/diagnosis?start=${d.window.start}&end=${d.window.end}">All causes and their evidence →</a></p>`;
}

/** The continuous diagnosis' incidents; `now` is the diagnosis the page
 * just ran, which may see an incident before the next periodic check. */
function incidentList(list, now) {
  if (!list.length) {
    return `<h2>Incidents</h2><p class="muted">${now && now.incident
      ? "None opened yet: the continuous diagnosis opens one when its next periodic check finds it too."
      : "None: the continuous diagnosis has found nothing."}</p>`;
  }
  const rows = list.slice(0, 12).map(i => `<tr>
      <td><a href="#/incident/${i.id}">#${i.id}</a></td>
      <td><span class="badge ${i.status === "open" ? "bad" : "ok"}">${esc(i.status)}</span></td>
      <td>${esc(i.top_cause ? i.top_cause.name : "")} <span class="muted">${esc(i.top_cause ? i.top_cause.kind : "")}</span></td>
      <td class="num" title="the cause's share of what went wrong">${i.top_cause ? fmtPct(Math.min(i.top_cause.score, 1)) : ""}</td>
      <td class="muted nowrap">${esc(fmtDateTime(i.opened))}</td></tr>`).join("");
  return `<h2>Incidents</h2><table><thead><tr><th>id</th><th>status</th><th>top cause</th><th class="num">confidence</th><th>opened</th></tr></thead><tbody>${rows}</tbody></table>`;
}

export async function nowView(view, params) {
  const r = rangeOf(params);
  view.innerHTML = `<div class="title-row"><h1>Now</h1>${picker(params)}</div>
    <div class="grid two">
      <section class="panel" id="diag"><p class="muted">Diagnosing the last 15 minutes…</p></section>
      <section class="panel" id="incidents"><p class="muted">Loading incidents…</p></section>
    </div>
    <h2>Entry points against their normal</h2>
    <div class="grid three" id="red">${chartFrame("red-rate", "Requests per second")}${chartFrame("red-errors", "Error ratio")}${chartFrame("red-p99", "p99 latency")}</div>
    <section class="panel"><h2>Service map <span class="muted">(last 15 minutes; click a service)</span></h2><div id="map"><p class="muted">Loading…</p></div></section>`;
  wirePicker(view);
  const [diag, incidents, graph] = await Promise.allSettled([
    api("/api/v1/sextant/diagnose?window=15m"),
    api("/api/v1/sextant/incidents"),
    api("/api/v1/sextant/service-graph?window=15m"),
  ]);
  for (const x of [diag, incidents, graph]) if (x.status === "rejected" && x.reason instanceof NeedToken) throw x.reason;
  fill("diag", diag.status === "fulfilled" ? diagnosisSummary(diag.value) : errorBox(diag.reason));
  const d = diag.status === "fulfilled" ? diag.value : {};
  fill("incidents", incidents.status === "fulfilled" ? incidentList(incidents.value, d) : errorBox(incidents.reason));
  const top = d.causes && d.causes[0] ? d.causes[0].name : "";
  fill("map", graph.status === "fulfilled" ? serviceMap(graph.value, litNodes(d), top) : errorBox(graph.reason));
  ready("now");
  const entries = graph.status === "fulfilled" ? graph.value.nodes.filter(n => n.entry && n.kind === "service").map(n => n.name) : [];
  if (!entries.length) {
    fill("red", `<p class="muted">No entry points with spans in the last 15 minutes.</p>`);
    return;
  }
  const q = redQueries(`kind="server", service=~"${entries.map(e => lit(e.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("|")}"`, r.win);
  await Promise.all([
    bandPanel("red-rate", q.rate, r, {label: "requests per second", format: v => fmtNum(v) + "/s"}),
    bandPanel("red-errors", q.errors, r, {label: "error ratio", format: fmtPct}),
    bandPanel("red-p99", q.p99, r, {label: "p99 latency", format: fmtSecs}),
  ]);
}
