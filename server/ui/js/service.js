// A service: its RED over time against its band, operations, callers and
// dependencies, instances, versions and deploys, recent error logs, and
// slow and failing traces. Databases and third parties (nodes without
// spans of their own) are read from their callers' client spans.

import {api, esc, qs, fmtNum, fmtPct, fmtSecs, fmtTime, fill, errorBox, ready, queryLine, lit} from "./api.js";
import {bandPanel, chartFrame} from "./chart.js";
import {rangeOf, picker, wirePicker} from "./timerange.js";
import {redQueries} from "./now.js";
import {health} from "./map.js";
import {logList} from "./logs.js";
import {spanTable} from "./explore.js";

/** `[5m]` for a range of five minutes (whole minutes, at least one). */
function rangeDur(r) {
  return `${Math.max(1, Math.round((r.end - r.start) / 60e3))}m`;
}

/** The vector `query` gives at the end of `r`. */
async function instant(query, r) {
  return (await api("/api/v1/sextant/query", {query, time: r.end / 1000})).result;
}

/** Sums the value of `rows` (a vector) by the label `key`. */
function sumBy(rows, key) {
  const m = new Map();
  for (const x of rows) {
    const k = x.metric[key] || "(none)";
    m.set(k, (m.get(k) || 0) + Number(x.value[1]));
  }
  return m;
}

function edgeTable(edges, side) {
  if (!edges.length) return `<p class="muted">None in the range.</p>`;
  return `<table><thead><tr><th>${side}</th><th class="num">calls/s</th><th class="num">errors</th><th class="num">p99</th></tr></thead><tbody>${edges.map(e => {
    const other = side === "caller" ? e.from : e.to;
    return `<tr><td><span class="key ${health(e.stats.error_ratio)}"></span><a href="#/service/${encodeURIComponent(other)}">${esc(other)}</a></td><td class="num">${fmtNum(e.stats.rate, 3)}</td><td class="num">${fmtPct(e.stats.error_ratio)}</td><td class="num">${fmtSecs(e.stats.latency.p99 || 0)}</td></tr>`;
  }).join("")}</tbody></table>`;
}

export async function serviceView(view, name, params) {
  const r = rangeOf(params);
  const R = rangeDur(r);
  const g = await api(`/api/v1/sextant/service-graph?${qs({start: r.start / 1000, end: r.end / 1000})}`);
  const node = g.nodes.find(n => n.name === name);
  const own = !node || node.kind === "service";
  // The graph says how to select its spans: a service's own work (with
  // the messages it handles), or the client spans calling a peer by the
  // attribute that names it.
  const sel = node ? node.selector : `service="${lit(name)}", kind="server"`;
  const instKey = (node && node.instance_key) || "service.instance.id";
  // Versions and failures: any span of a service, its callers' for a peer.
  const who = own ? `service="${lit(name)}"` : sel;
  const q = redQueries(sel, r.win, "service");
  const badge = node ? `<span class="badge ${health(node.stats.error_ratio)}">${fmtPct(node.stats.error_ratio)} errors</span>` : `<span class="badge warn">no spans in the range</span>`;
  view.innerHTML = `<div class="title-row"><h1>${esc(name)} <span class="muted">${esc(node ? node.kind + (node.system ? ": " + node.system : "") : "")}</span> ${badge}</h1>${picker(params)}</div>
    ${own ? "" : `<p class="muted">${esc(name)} has no server spans of its own: it is seen through the calls made to it.</p>`}
    <div class="grid three">${chartFrame("svc-rate", "Requests per second")}${chartFrame("svc-errors", "Error ratio")}${chartFrame("svc-p99", "p99 latency")}</div>
    <div class="grid two">
      <section class="panel" id="ops"><h2>Operations</h2><p class="muted">Loading…</p></section>
      <section class="panel"><h2>Callers</h2>${edgeTable(g.edges.filter(e => e.to === name), "caller")}
        <h2>Dependencies</h2>${edgeTable(g.edges.filter(e => e.from === name), "dependency")}
        <p class="query-line">From <a href="/api/v1/sextant/service-graph?${qs({start: r.start / 1000, end: r.end / 1000})}"><code>/api/v1/sextant/service-graph</code></a></p></section>
    </div>
    <div class="grid two">
      <section class="panel" id="instances"><h2>Instances</h2><p class="muted">Loading…</p></section>
      <section class="panel" id="versions"><h2>Versions and deploys</h2><p class="muted">Loading…</p></section>
    </div>
    <section class="panel" id="svc-logs"><h2>Recent error logs</h2><p class="muted">Loading…</p></section>
    <div class="grid two">
      <section class="panel" id="failing"><h2>Failing requests</h2><p class="muted">Loading…</p></section>
      <section class="panel" id="slow"><h2>Slowest requests</h2><p class="muted">Loading…</p></section>
    </div>`;
  wirePicker(view);
  const spansOf = extra => `spans({${sel}${extra}})[${R}]`;
  const opsQ = {
    count: `count_over_time(${spansOf("")})`,
    errors: `count_over_time(${spansOf(', status="error"')})`,
    p99: `quantile by (name) (0.99, ${spansOf("")})`,
  };
  const instQ = `count_over_time(spans({${sel}} | by(${instKey}))[${R}])`;
  const instErrQ = `count_over_time(spans({${sel}, status="error"} | by(${instKey}))[${R}])`;
  const verQ = `count_over_time(spans({${who}} | by(service.version))[${r.win}])`;
  const failQ = `spans({${who}, status="error"})[${R}]`;
  const slowQ = `topk(10, spans({${sel}})[${R}])`;
  const jobs = [
    Promise.all([instant(opsQ.count, r), instant(opsQ.errors, r), instant(opsQ.p99, r)]).then(([c, e, p]) => {
      const counts = sumBy(c, "operation"), errs = sumBy(e, "operation"), p99 = new Map(p.map(x => [x.metric.name, Number(x.value[1])]));
      const rows = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([op, n]) => `<tr><td>${esc(op)}</td><td class="num">${fmtNum(n)}</td><td class="num">${fmtPct((errs.get(op) || 0) / n)}</td><td class="num">${p99.has(op) ? fmtSecs(p99.get(op)) : "–"}</td></tr>`).join("");
      fill("ops", `<h2>Operations</h2>${rows ? `<table><thead><tr><th>operation</th><th class="num">requests</th><th class="num">errors</th><th class="num">p99</th></tr></thead><tbody>${rows}</tbody></table>` : `<p class="muted">None in the range.</p>`}${queryLine(opsQ.count, r.start, r.end)}`);
    }).catch(e => fill("ops", `<h2>Operations</h2>${errorBox(e)}`)),
    Promise.all([instant(instQ, r), instant(instErrQ, r)]).then(([c, e]) => {
      const counts = sumBy(c, instKey), errs = sumBy(e, instKey);
      const rows = [...counts.entries()].sort((a, b) => (errs.get(b[0]) || 0) / b[1] - (errs.get(a[0]) || 0) / a[1]).map(([i, n]) => {
        const ratio = (errs.get(i) || 0) / n;
        return `<tr><td><span class="key ${health(ratio)}"></span>${esc(i)}</td><td class="num">${fmtNum(n)}</td><td class="num">${fmtPct(ratio)}</td></tr>`;
      }).join("");
      fill("instances", `<h2>Instances</h2>${rows ? `<table><thead><tr><th>instance</th><th class="num">requests</th><th class="num">errors</th></tr></thead><tbody>${rows}</tbody></table>` : `<p class="muted">None in the range.</p>`}${queryLine(instQ, r.start, r.end)}`);
    }).catch(e => fill("instances", `<h2>Instances</h2>${errorBox(e)}`)),
    api("/api/v1/sextant/logs", {"match[]": `{service="${lit(name)}", level=~"error|fatal"}`, start: r.start / 1000, end: r.end / 1000, limit: "10"})
      .then(rows => fill("svc-logs", `<h2>Recent error logs</h2>${rows.length ? logList(rows) : `<p class="muted">No error lines in the range.</p>`}
        <p><a href="#/logs?${qs({service: name, level: "error"})}">All logs of ${esc(name)} →</a></p>`))
      .catch(e => fill("svc-logs", `<h2>Recent error logs</h2>${errorBox(e)}`)),
    api("/api/v1/sextant/query", {query: failQ, time: r.end / 1000, limit: "10"})
      .then(s => fill("failing", `<h2>Failing requests</h2>${s.result.length ? spanTable(s.result) : `<p class="muted">None in the range.</p>`}${queryLine(failQ, r.start, r.end)}`))
      .catch(e => fill("failing", `<h2>Failing requests</h2>${errorBox(e)}`)),
    api("/api/v1/sextant/query", {query: slowQ, time: r.end / 1000, limit: "10"})
      .then(s => fill("slow", `<h2>Slowest requests</h2>${s.result.length ? spanTable(s.result) : `<p class="muted">None in the range.</p>`}${queryLine(slowQ, r.start, r.end)}`))
      .catch(e => fill("slow", `<h2>Slowest requests</h2>${errorBox(e)}`)),
  ];
  // Versions over the range: a version first seen after the range began is a deploy.
  let deploys = [];
  try {
    const v = await api("/api/v1/sextant/query", {query: verQ, start: r.start / 1000, end: r.end / 1000, step: r.step / 1000 + "s"});
    const seen = new Map();
    for (const s of v.result) {
      const ver = s.metric["service.version"] || "(none)";
      const first = s.values.length ? s.values[0][0] * 1000 : null, last = s.values.length ? s.values[s.values.length - 1][0] * 1000 : null;
      const cur = seen.get(ver) || {first, last, n: 0};
      cur.first = Math.min(cur.first, first); cur.last = Math.max(cur.last, last);
      cur.n += s.values.reduce((a, p) => a + Number(p[1]), 0);
      seen.set(ver, cur);
    }
    const vs = [...seen.entries()].sort((a, b) => a[1].first - b[1].first);
    deploys = vs.slice(1).filter(([, x]) => x.first > r.start + r.step).map(([ver, x]) => ({t: x.first, label: `deploy ${ver}`, kind: "deploy"}));
    fill("versions", `<h2>Versions and deploys</h2>${vs.length ? `<table><thead><tr><th>version</th><th>first seen</th><th>last seen</th></tr></thead><tbody>${vs.map(([ver, x]) => `<tr><td>${esc(ver)}${deploys.some(d => d.label.endsWith(" " + ver)) ? ` <span class="badge warn">deployed in the range</span>` : ""}</td><td class="muted">${esc(fmtTime(x.first))}</td><td class="muted">${esc(fmtTime(x.last))}</td></tr>`).join("")}</tbody></table>` : `<p class="muted">No spans in the range.</p>`}${queryLine(verQ, r.start, r.end)}`);
  } catch (e) {
    fill("versions", `<h2>Versions and deploys</h2>${errorBox(e)}`);
  }
  await Promise.all(jobs);
  ready("service");
  await Promise.all([
    bandPanel("svc-rate", q.rate, r, {label: "requests per second", format: v => fmtNum(v) + "/s", markers: deploys}),
    bandPanel("svc-errors", q.errors, r, {label: "error ratio", format: fmtPct, markers: deploys}),
    bandPanel("svc-p99", q.p99, r, {label: "p99 latency", format: fmtSecs, markers: deploys}),
  ]);
}
