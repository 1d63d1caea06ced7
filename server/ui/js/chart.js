// Time-series charts in SVG: lines for what was observed, a shaded band
// for the normal (what the same query gave at comparable moments), marks
// for onsets and deploys. Hover reads values; dragging zooms the page's
// range. Small on purpose: no charting library to load.

import {esc, fmtClock, fmtTime, fmtNum, colourOf, api, fill, errorBox, queryLine} from "./api.js";

const PAD = {l: 52, r: 12, t: 10, b: 24};
/** Series a hover lists at most. */
const TIP_ROWS = 10;

/** The axis' top: a round number at least `v`; with `whole`, one whose
 * quarters (the grid lines) are whole numbers, for counts. */
function niceMax(v, whole) {
  if (!(v > 0)) return whole ? 4 : 1;
  let p = Math.pow(10, Math.floor(Math.log10(v)));
  // From 100 up every candidate's quarter is whole: three decades at most.
  for (let decade = 0; decade < 3; decade++, p *= 10) {
    for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
      const top = m * p;
      if (top >= v && (!whole || (top >= 4 && Math.abs(top / 4 - Math.round(top / 4)) < 1e-9))) return top;
    }
  }
  return Math.ceil(v / 4) * 4;
}

function timeTicks(start, end, n) {
  const span = end - start;
  const steps = [60e3, 5 * 60e3, 10 * 60e3, 15 * 60e3, 30 * 60e3, 3600e3, 2 * 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3];
  const step = steps.find(s => span / s <= n) || 24 * 3600e3;
  const out = [];
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) out.push(t);
  return out;
}

/**
 * Draws `opts.series` ({name, values: [[sec, "v"]], lower?, upper?}) into
 * `el` over [opts.start, opts.end] (ms). `opts.format` formats values,
 * `opts.markers` ({t, label, kind}) are vertical marks, `opts.onZoom(a, b)`
 * is called with the dragged range; with `opts.bars` (ms) the series are
 * stacked bars that wide; `opts.shade` ({start, end, label}) greys a part
 * of the range the series leave out.
 */
export function drawChart(el, opts) {
  const {series, start, end} = opts;
  const fmt = opts.format || fmtNum;
  const W = Math.max(el.clientWidth || 600, 320), H = opts.height || 170;
  const iw = W - PAD.l - PAD.r, ih = H - PAD.t - PAD.b;
  let max = 0;
  for (const s of series) {
    for (const [, v] of s.values) if (isFinite(+v)) max = Math.max(max, +v);
    for (const [, v] of s.upper || []) if (isFinite(+v)) max = Math.max(max, +v);
  }
  // Stacked bars reach the sum of a moment's values.
  const stacked = new Map();
  if (opts.bars) for (const s of series) for (const [t, v] of s.values) stacked.set(t, (stacked.get(t) || 0) + (+v || 0));
  for (const v of stacked.values()) max = Math.max(max, v);
  max = niceMax(max * 1.05, opts.bars);
  const x = t => PAD.l + (t - start) / (end - start) * iw;
  const y = v => PAD.t + ih - Math.min(+v, max) / max * ih;
  const path = pts => {
    let d = "", prev = null;
    for (const [t, v] of pts) {
      const ms = t * 1000;
      if (!isFinite(+v)) { prev = null; continue; }
      d += (prev === null ? "M" : "L") + x(ms).toFixed(1) + "," + y(v).toFixed(1);
      prev = ms;
    }
    return d;
  };
  const bands = series.filter(s => s.lower && s.lower.length).map(s => {
    const lo = s.lower.map(([t, v]) => `${x(t * 1000).toFixed(1)},${y(v).toFixed(1)}`);
    const hi = s.upper.map(([t, v]) => `${x(t * 1000).toFixed(1)},${y(v).toFixed(1)}`).reverse();
    return `<polygon class="band" points="${lo.concat(hi).join(" ")}" fill="${s.colour || colourOf(s.name)}"><title>normal for ${esc(s.name)}</title></polygon>`;
  }).join("");
  const lines = opts.bars ? bars(series, opts.bars, x, y) : series.map(s => `<path class="line" d="${path(s.values)}" stroke="${s.colour || colourOf(s.name)}"></path>`).join("");
  const yt = [0, 0.25, 0.5, 0.75, 1].map(f => `<line class="grid" x1="${PAD.l}" x2="${W - PAD.r}" y1="${y(max * f)}" y2="${y(max * f)}"></line><text class="tick" x="${PAD.l - 4}" y="${y(max * f) + 4}" text-anchor="end">${esc(fmt(max * f))}</text>`).join("");
  const xt = timeTicks(start, end, Math.floor(iw / 70)).map(t => `<text class="tick" x="${x(t)}" y="${H - 6}" text-anchor="middle">${esc(fmtClock(t))}</text>`).join("");
  // A part of the range the series do not cover, greyed and named.
  const sh = opts.shade && opts.shade.end > start ? {a: x(Math.max(opts.shade.start, start)), b: x(Math.min(opts.shade.end, end))} : null;
  const shade = sh ? `<g class="shade"><rect x="${sh.a.toFixed(1)}" y="${PAD.t}" width="${(sh.b - sh.a).toFixed(1)}" height="${ih}"></rect><text x="${((sh.a + sh.b) / 2).toFixed(1)}" y="${PAD.t + ih / 2 + 4}" text-anchor="middle">${esc(opts.shade.label)}</text></g>` : "";
  // Labels alternate between two heights so marks close together stay legible.
  const marks = (opts.markers || []).filter(m => m.t >= start && m.t <= end).map((m, i) => `<g class="marker ${m.kind || ""}"><line x1="${x(m.t)}" x2="${x(m.t)}" y1="${PAD.t}" y2="${PAD.t + ih}"></line><text x="${x(m.t) + 3}" y="${PAD.t + 10 + (i % 2) * 12}">${esc(m.label)}</text><title>${esc(m.label + " at " + fmtTime(m.t, true))}</title></g>`).join("");
  const legend = series.length > 1 || series.some(s => s.lower)
    ? `<div class="legend">${series.slice(0, 12).map(s => `<span><i style="background:${s.colour || colourOf(s.name)}"></i>${esc(s.name)}</span>`).join("")}${series.length > 12 ? `<span class="muted">and ${series.length - 12} more</span>` : ""}${series.some(s => s.lower && s.lower.length) ? `<span class="muted"><i class="band-key"></i>normal</span>` : ""}</div>`
    : "";
  el.innerHTML = `<svg class="chart" role="img" aria-label="${esc(opts.label || "chart")}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">
    ${yt}${xt}${shade}${bands}${lines}${marks}
    <line class="cursor" y1="${PAD.t}" y2="${PAD.t + ih}" x1="-10" x2="-10"></line>
    <rect class="drag" x="0" y="${PAD.t}" width="0" height="${ih}"></rect>
    <rect class="hit" x="${PAD.l}" y="${PAD.t}" width="${iw}" height="${ih}"></rect></svg>
    <div class="tip" hidden></div>${legend}`;
  const svg = el.querySelector("svg"), tip = el.querySelector(".tip"), cur = el.querySelector(".cursor"), drag = el.querySelector(".drag");
  const tAt = ev => start + (ev.offsetX - PAD.l) / iw * (end - start);
  let down = null;
  svg.addEventListener("mousemove", ev => {
    const t = tAt(ev);
    cur.setAttribute("x1", ev.offsetX); cur.setAttribute("x2", ev.offsetX);
    if (down !== null) {
      drag.setAttribute("x", Math.min(down, ev.offsetX)); drag.setAttribute("width", Math.abs(ev.offsetX - down));
    }
    // Each series' point nearest the cursor; the largest first, at most TIP_ROWS.
    const near = [];
    for (const s of series) {
      let best = null;
      for (const p of s.values) if (best === null || Math.abs(p[0] * 1000 - t) < Math.abs(best[0] * 1000 - t)) best = p;
      if (best) near.push({s, v: best[1]});
    }
    near.sort((a, b) => (+b.v || 0) - (+a.v || 0));
    const rows = near.slice(0, TIP_ROWS).map(({s, v}) => `<div><i style="background:${s.colour || colourOf(s.name)}"></i>${esc(s.name)}: <b>${esc(fmt(v))}</b></div>`).join("");
    const more = near.length > TIP_ROWS ? `<div class="muted">and ${near.length - TIP_ROWS} smaller</div>` : "";
    tip.innerHTML = `<div class="muted">${esc(fmtTime(t))}</div>${rows}${more}`;
    tip.hidden = false;
    tip.style.left = Math.min(ev.offsetX + 12, W - 200) + "px";
  });
  svg.addEventListener("mouseleave", () => { tip.hidden = true; cur.setAttribute("x1", -10); cur.setAttribute("x2", -10); });
  svg.addEventListener("mousedown", ev => { down = ev.offsetX; });
  svg.addEventListener("mouseup", ev => {
    const a = down; down = null; drag.setAttribute("width", 0);
    if (a !== null && Math.abs(ev.offsetX - a) > 6 && opts.onZoom) {
      const t0 = start + (Math.min(a, ev.offsetX) - PAD.l) / iw * (end - start);
      const t1 = start + (Math.max(a, ev.offsetX) - PAD.l) / iw * (end - start);
      opts.onZoom(Math.round(t0), Math.round(t1));
    }
  });
}

/** Stacked bars of `series`, each value covering `width` ms from its
 * moment, the first series at the bottom. */
function bars(series, width, x, y) {
  const base = new Map();
  return series.map(s => s.values.map(([t, v]) => {
    const below = base.get(t) || 0, top = below + (+v || 0);
    base.set(t, top);
    if (!(+v > 0)) return "";
    const x0 = x(t * 1000), x1 = x(t * 1000 + width);
    return `<rect class="bar" x="${x0.toFixed(1)}" y="${y(top).toFixed(1)}" width="${Math.max(x1 - x0 - 1, 1).toFixed(1)}" height="${(y(below) - y(top)).toFixed(1)}" style="fill:${s.colour || colourOf(s.name)}"></rect>`;
  }).join("")).join("");
}

/** Sets the page's range to `[a, b]` (ms), keeping its other parameters. */
export function zoomTo(a, b) {
  const [path, q] = location.hash.replace(/^#/, "").split("?");
  const p = new URLSearchParams(q || "");
  p.delete("range"); p.set("start", a); p.set("end", b);
  location.hash = "#" + path + "?" + p;
}

/** The label set of a series, as its legend shows it. */
export function seriesName(metric) {
  const e = Object.entries(metric || {}).filter(([k]) => k !== "__name__");
  if (!e.length) return metric && metric.__name__ ? metric.__name__ : "value";
  return e.map(([k, v]) => e.length === 1 ? v : `${k}=${v}`).join(", ");
}

/**
 * A panel `id` charting `query` over the range `r` beside its normal
 * (/api/v1/sextant/query_band), with the query under it.
 */
export async function bandPanel(id, query, r, opts = {}) {
  try {
    const d = await api("/api/v1/sextant/query_band", {query, start: r.start / 1000, end: r.end / 1000, step: r.step / 1000 + "s"});
    const el = document.getElementById(id);
    if (!el) return d;
    const body = el.querySelector(".chart-body");
    const series = d.result.slice(0, 12).map(s => ({name: seriesName(s.metric), values: s.values, lower: s.lower, upper: s.upper}));
    if (!series.length) body.innerHTML = `<p class="muted">No data in the range.</p>`;
    else drawChart(body, {...opts, series, start: r.start, end: r.end, onZoom: zoomTo});
    const basis = d.baseline.starts.length
      ? (d.baseline.basis === "comparable" ? `normal: ${d.baseline.starts.length} comparable days` : `normal: the ${d.baseline.starts.length === 1 ? "hour" : d.baseline.starts.length + " hours"} before (no comparable day stored)`)
      : "no history to compare with";
    el.querySelector(".chart-foot").innerHTML = `<span class="muted">${esc(basis)}</span>${queryLine(query, r.start, r.end)}`;
    return d;
  } catch (e) {
    fill(id, `<h3>${esc(opts.label || "")}</h3>${errorBox(e)}`);
    return null;
  }
}

/** The empty frame `bandPanel` fills. */
export function chartFrame(id, title) {
  return `<section class="panel chart-panel" id="${id}"><h3>${esc(title)}</h3><div class="chart-body"><p class="muted">Loading…</p></div><div class="chart-foot"></div></section>`;
}
