// Talking to the server and formatting what it says. Every page reads the
// public HTTP API (README) through `api`, which adds the bearer token a
// server started with --auth-token asks for.

/** Thrown when the server wants a token the page does not have. */
export class NeedToken extends Error {}

const TOKEN_KEY = "sextant.token";

/** The market's time zone (from /api/v1/sextant/calendar at start). */
export const market = {zone: "America/New_York", label: "New York"};

export function setToken(t) {
  if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY);
}

/** GET `path`, or POST `form` to it; the `data` of a success, else throws
 * with the server's own error text. */
export async function api(path, form) {
  const headers = {};
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const opts = form ? {method: "POST", body: new URLSearchParams(form), headers} : {headers};
  const r = await fetch(path, opts);
  if (r.status === 401) throw new NeedToken("this server needs its access token");
  const j = await r.json().catch(() => ({status: "error", error: "HTTP " + r.status}));
  if (j.status !== "success") throw new Error(j.error || ("HTTP " + r.status));
  if (j.warnings && j.warnings.length) j.data.__warnings = j.warnings;
  return j.data;
}

let names = null;

/** The names in the last hour's service graph (services, databases,
 * third parties): what `service` of a log or span can be. */
export function serviceNames() {
  if (!names) names = api("/api/v1/sextant/service-graph?window=1h").then(g => g.nodes.map(n => n.name)).catch(() => { names = null; return []; });
  return names;
}

export function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

/** A query string of `params`, skipping empty values. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
  return p.toString();
}

function clock(d, zone, seconds) {
  return d.toLocaleTimeString("en-GB", {timeZone: zone, hour: "2-digit", minute: "2-digit", second: seconds ? "2-digit" : undefined, hour12: false});
}

/** `14:05 New York (19:05 UTC)`: the market's time first, UTC beside it. */
export function fmtTime(ms, seconds) {
  if (!ms) return "";
  const d = new Date(Number(ms));
  return `${clock(d, market.zone, seconds)} ${market.label} (${clock(d, "UTC", seconds)} UTC)`;
}

/** `Mon 7 Dec 14:05 New York (19:05 UTC)` for moments not today. */
export function fmtDateTime(ms) {
  if (!ms) return "";
  const d = new Date(Number(ms));
  const day = d.toLocaleDateString("en-GB", {timeZone: market.zone, weekday: "short", day: "numeric", month: "short"});
  return `${day} ${fmtTime(ms)}`;
}

/** The market's wall clock only, for chart axes. */
export function fmtClock(ms) {
  return clock(new Date(Number(ms)), market.zone, false);
}

export function fmtNum(x, digits = 3) {
  if (x === null || x === undefined || x === "") return "–";
  const n = Number(x);
  if (!isFinite(n)) return String(x);
  if (Math.abs(n) >= 1000) return n.toFixed(0);
  if (Math.abs(n) >= 100) return Number.isInteger(n) ? String(n) : n.toFixed(1);
  return Number(n.toPrecision(digits)).toString();
}

export function fmtPct(r) {
  return r === null || r === undefined ? "–" : (Number(r) * 100).toFixed(Number(r) < 0.01 ? 2 : 1) + "%";
}

/** Seconds, as a duration a person reads (`850 ms`, `2.3 s`). */
export function fmtSecs(s) {
  const n = Number(s);
  if (!isFinite(n)) return "–";
  if (n === 0) return "0";
  if (n < 0.001) return (n * 1e6).toFixed(0) + " µs";
  if (n < 1) return fmtNum(n * 1000) + " ms";
  return fmtNum(n) + " s";
}

/** A symptom's value: its error ratio as a percentage; its latency or
 * consumer lag, given in seconds, as a duration. */
export function fmtIndicator(indicator, v) {
  return indicator === "error_ratio" ? fmtPct(v) : fmtSecs(v);
}

export function fmtNanos(ns) {
  return fmtSecs(Number(ns) / 1e9);
}

/** A link to Explore running `q` over `[start, end]`. */
export function exploreHref(q, start, end) {
  return "#/explore?" + qs({q, start, end});
}

/** The panel footer every panel carries: the query behind it, one click
 * from Explore. */
export function queryLine(q, start, end) {
  return `<p class="query-line">Query: <a href="${exploreHref(q, start, end)}" title="open in Explore"><code>${esc(q)}</code></a></p>`;
}

/** `"` and `\` escaped for a string literal of the query language. */
export function lit(s) {
  return String(s).replace(/\\/g, "\\\\").replace(/"/g, '\\"');
}

/** A colour per service (or series), stable across pages. The name's
 * FNV-1a hash, mixed so names that differ in a few letters (a chart's
 * series share most of theirs) land on hues apart. */
export function colourOf(name) {
  let h = 2166136261;
  for (const c of String(name)) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h = (h ^ (h >>> 13)) >>> 0;
  return `hsl(${h % 360} 55% 52%)`;
}

/** Renders `html` into the element with `id`, if the page still has it
 * (the user may have moved on while the data loaded). */
export function fill(id, html) {
  const el = document.getElementById(id);
  if (el) el.innerHTML = html;
  return el;
}

/** Attributes (a JSON object) as a table under `title`; nothing when there
 * are none. */
export function attrTable(title, attrs) {
  const e = Object.entries(attrs || {});
  if (!e.length) return "";
  // A long key breaks after its dots, not inside a word.
  return `<h4>${esc(title)}</h4><table class="attrs">${e.map(([k, v]) => `<tr><td>${esc(k).replace(/\./g, ".<wbr>")}</td><td><code>${esc(typeof v === "string" ? v : JSON.stringify(v))}</code></td></tr>`).join("")}</table>`;
}

export function errorBox(e) {
  return `<div class="error-box" role="alert">${esc(e.message || e)}</div>`;
}

/** Marks the moment a page shows its data, for the first-paint figures
 * (`performance.getEntriesByName("sextant:ready")`). */
export function ready(view) {
  performance.mark("sextant:ready", {detail: view});
  document.body.dataset.ready = view;
}
