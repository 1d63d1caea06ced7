// The service map: who calls whom, from spans (databases, caches, topics
// and third parties included), laid out in columns from the entry points
// along the calls. Nodes are coloured by health, edges by error ratio and
// latency; a propagation path is lit.

import {esc, fmtNum, fmtPct, fmtSecs} from "./api.js";

/** ok / warn / bad for an error ratio. */
export function health(ratio) {
  if (ratio >= 0.05) return "bad";
  if (ratio >= 0.01) return "warn";
  return "ok";
}

/** Column of each node: entry points first, then breadth-first along the
 * calls; nodes no entry point reaches go last. */
function columns(g) {
  const out = new Map();
  for (const e of g.edges) {
    if (!out.has(e.from)) out.set(e.from, []);
    out.get(e.from).push(e.to);
  }
  const depth = new Map();
  const queue = g.nodes.filter(n => n.entry).map(n => n.name);
  queue.forEach(n => depth.set(n, 0));
  for (let i = 0; i < queue.length; i++) {
    for (const m of out.get(queue[i]) || []) {
      if (!depth.has(m)) { depth.set(m, depth.get(queue[i]) + 1); queue.push(m); }
    }
  }
  const last = Math.max(0, ...depth.values()) + 1;
  const cols = [];
  for (const n of g.nodes) {
    const d = depth.has(n.name) ? depth.get(n.name) : last;
    (cols[d] = cols[d] || []).push(n);
  }
  return cols.filter(Boolean);
}

/**
 * The map of graph `g` (/api/v1/sextant/service-graph) as SVG. `lit` is a
 * set of node names on the propagation path (their edges light too), `top`
 * the top cause.
 */
export function serviceMap(g, lit = new Set(), top = "") {
  if (!g.nodes.length) return `<p class="muted">No spans in the range.</p>`;
  const cols = columns(g);
  const W = 176, H = 46, GX = 64, GY = 12;
  const pos = new Map();
  cols.forEach((col, x) => col.forEach((n, y) => pos.set(n.name, {x: 10 + x * (W + GX), y: 10 + y * (H + GY)})));
  const width = 20 + cols.length * (W + GX) - GX;
  const height = 20 + Math.max(...cols.map(c => c.length)) * (H + GY);
  const edges = g.edges.map(e => {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) return "";
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const back = x2 <= x1;
    const d = back
      ? `M${a.x + W / 2},${a.y + H} C${a.x + W / 2},${a.y + H + 30} ${b.x + W / 2},${b.y + H + 30} ${b.x + W / 2},${b.y + H}`
      : `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}`;
    const cls = ["edge", health(e.stats.error_ratio), lit.has(e.from) && lit.has(e.to) ? "lit" : ""].join(" ");
    const p99 = e.stats.latency.p99 || 0;
    const w = Math.min(1 + Math.log10(1 + e.stats.rate || 0) * 1.5, 5);
    const title = `${e.from} → ${e.to}: ${fmtNum(e.stats.rate, 2)} calls/s, ${fmtPct(e.stats.error_ratio)} errors, p99 ${fmtSecs(p99)}`;
    return `<path class="${cls}" stroke-width="${w.toFixed(1)}" d="${d}" marker-end="url(#arrow)"><title>${esc(title)}</title></path>`;
  }).join("");
  const nodes = g.nodes.map(n => {
    const p = pos.get(n.name);
    const h = health(n.stats.error_ratio);
    const kind = n.kind === "service" ? "" : n.system || n.kind;
    const name = n.name.length > 22 ? n.name.slice(0, 21) + "…" : n.name;
    const cls = ["node", h, lit.has(n.name) ? "lit" : "", n.name === top ? "top" : ""].join(" ");
    return `<a href="#/service/${encodeURIComponent(n.name)}" aria-label="${esc(n.name)}"><g class="${cls}" transform="translate(${p.x},${p.y})">
      <rect class="box" width="${W}" height="${H}" rx="${n.kind === "service" ? 4 : 16}"></rect>
      <rect class="health" width="6" height="${H}" rx="2"></rect>
      <text x="12" y="17">${esc(name)}${kind ? ` <tspan class="muted">${esc(kind.slice(0, 12))}</tspan>` : ""}</text>
      <text x="12" y="35" class="muted">${fmtNum(n.stats.rate, 2)}/s · ${fmtPct(n.stats.error_ratio)} · p99 ${fmtSecs(n.stats.latency.p99 || 0)}</text>
      <title>${esc(n.name + (kind ? ` (${n.kind}: ${kind})` : ""))}</title></g></a>`;
  }).join("");
  return `<div class="map-scroll"><svg class="map" role="img" aria-label="service map" width="${width}" height="${height + 30}" viewBox="0 0 ${width} ${height + 30}">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrow"></path></marker></defs>
    ${edges}${nodes}</svg></div>
    <p class="muted legend-line"><span class="key ok"></span>healthy <span class="key warn"></span>≥ 1% errors <span class="key bad"></span>≥ 5% errors <span class="key lit"></span>propagation path</p>`;
}
