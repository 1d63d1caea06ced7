// Logs: search by service, level, attributes and text, newest first, with
// the volume of what matched over the range by level, older lines a click
// away, each line's details (attributes, resource, trace) on a click, and
// a live tail that keeps adding what arrives.

import {api, serviceNames, esc, fmtTime, fmtNum, qs, fill, errorBox, ready, lit, attrTable, queryLine} from "./api.js";
import {drawChart, zoomTo} from "./chart.js";
import {rangeOf, picker, wirePicker} from "./timerange.js";

/** Lines one search asks for. */
const PAGE = 200;
/** Lines shown at most; the tail drops the oldest past this. */
const MAX_ROWS = 500;
/** How often the tail asks for new lines, ms. */
const TAIL_EVERY_MS = 2000;

const LEVELS = ["", "fatal", "error", "warn", "info", "debug"];
const LEVEL_COLOURS = {fatal: "color-mix(in srgb, var(--bad) 65%, black)", error: "var(--bad)", warn: "var(--warn)", info: "var(--ok)", debug: "var(--muted)", trace: "var(--muted)"};

function levelOf(l) {
  const t = (l.severityText || "").toLowerCase();
  const n = l.severityNumber || 0;
  if (n >= 21 || t.startsWith("fatal")) return "fatal";
  if (n >= 17 || t.startsWith("err")) return "error";
  if (n >= 13 || t.startsWith("warn")) return "warn";
  if (n >= 9 || t.startsWith("info")) return "info";
  return t || "debug";
}

/** The records behind the rows drawn, by the number a row carries, for
 * the details a click opens; the oldest are forgotten past `KEPT`. */
const kept = new Map();
const KEPT = 5000;
let rowsDrawn = 0;

function row(l) {
  const n = rowsDrawn++;
  kept.set(n, l);
  kept.delete(n - KEPT);
  const t = l.timeUnixNano ? Number(l.timeUnixNano) / 1e6 : 0;
  const body = typeof l.body === "string" ? l.body : JSON.stringify(l.body);
  const lv = levelOf(l);
  return `<tr class="log ${lv}" data-row="${n}" tabindex="0" aria-expanded="false" title="details"><td class="muted nowrap">${esc(fmtTime(t, true))}</td><td><a href="#/service/${encodeURIComponent(l.service)}">${esc(l.service)}</a></td><td><span class="lvl ${lv}">${esc(lv)}</span></td><td class="body"><code>${esc(body)}</code>${l.traceId ? ` <a class="trace-link" href="#/trace/${l.traceId}${l.spanId ? "?span=" + l.spanId : ""}">trace →</a>` : ""}</td></tr>`;
}

/** A timestamp to paste elsewhere: RFC 3339 in UTC with the nanoseconds. */
function stamp(ns) {
  const s = String(ns || "0").padStart(10, "0");
  return new Date(Number(s.slice(0, -9)) * 1000).toISOString().slice(0, 19) + "." + s.slice(-9) + "Z";
}

/** Everything a line carries, and where to go from it: its service's
 * lines around it, its trace. */
function lineDetails(l) {
  const t = Number(l.timeUnixNano) / 1e6;
  const body = typeof l.body === "string" ? l.body : JSON.stringify(l.body, null, 2);
  const facts = [
    ["time", `${esc(stamp(l.timeUnixNano))} · ${esc(fmtTime(t, true))}`],
    l.observedTimeUnixNano && l.observedTimeUnixNano !== l.timeUnixNano ? ["observed", esc(stamp(l.observedTimeUnixNano))] : null,
    ["severity", `${esc(l.severityText || levelOf(l))} (${esc(l.severityNumber || 0)})`],
    l.traceId ? ["trace", `<a href="#/trace/${esc(l.traceId)}${l.spanId ? "?span=" + esc(l.spanId) : ""}"><code>${esc(l.traceId)}</code></a>`] : null,
    l.spanId ? ["span", `<code>${esc(l.spanId)}</code>`] : null,
  ].filter(Boolean);
  const around = qs({service: l.service, start: Math.floor(t - 60e3), end: Math.ceil(t + 60e3)});
  return `<div class="line-details">
    <pre>${esc(body)}</pre>
    <table class="attrs">${facts.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join("")}</table>
    ${attrTable("Attributes", l.attributes)}${attrTable("Resource", l.resource)}
    <p><a href="#/logs?${around}">${esc(l.service)}'s lines a minute either side →</a></p></div>`;
}

/** Opens or closes the details under a line's row. */
function toggle(tr) {
  const next = tr.nextElementSibling;
  if (next && next.classList.contains("log-details")) {
    next.remove();
    tr.setAttribute("aria-expanded", "false");
    return;
  }
  const l = kept.get(Number(tr.dataset.row));
  if (!l) return;
  tr.insertAdjacentHTML("afterend", `<tr class="log-details"><td colspan="4">${lineDetails(l)}</td></tr>`);
  tr.setAttribute("aria-expanded", "true");
}

// One listener for every log table of every page (they are drawn as HTML).
document.addEventListener("click", ev => {
  const tr = ev.target.closest("table.logs tr.log");
  if (tr && !ev.target.closest("a") && !String(getSelection())) toggle(tr);
});
document.addEventListener("keydown", ev => {
  const tr = ev.key === "Enter" && ev.target.closest && ev.target.closest("table.logs tr.log");
  if (tr && !ev.target.closest("a")) toggle(tr);
});

/** Log records (OTLP JSON names) as a table, in the order given; a click
 * on a line shows its details. */
export function logList(rows) {
  return `<table class="logs"><thead><tr><th>time</th><th>service</th><th>level</th><th>message</th></tr></thead><tbody>${rows.map(row).join("")}</tbody></table>`;
}

/** The volume of the search `form` over the range `r`, by level, drawn in
 * the element `id`. */
async function volume(id, form, r) {
  const el = document.getElementById(id);
  try {
    const d = await api("/api/v1/sextant/logs/volume", {...form, start: r.start / 1000, end: r.end / 1000, step: r.step / 1000});
    if (!el.isConnected) return;
    if (!d.lines) {
      el.innerHTML = "";
      return;
    }
    const series = d.result.map(s => ({name: s.level, values: s.values, colour: LEVEL_COLOURS[s.level]}));
    el.innerHTML = `<div class="chart-body"></div><p class="muted">${esc(d.lines.toLocaleString("en-US"))} line${d.lines === 1 ? "" : "s"}${d.complete ? "" : `, the newest counted (from ${esc(fmtTime(d.from * 1000))})`}; drag to zoom.</p>`;
    const shade = d.complete ? null : {start: r.start, end: d.from * 1000, label: "not counted: too many lines (narrow the search or the range)"};
    drawChart(el.querySelector(".chart-body"), {series, start: r.start, end: r.end, bars: d.step * 1000, height: 110, shade, label: "lines by level", format: v => Number.isInteger(+v) ? String(+v) : fmtNum(v), onZoom: zoomTo});
  } catch (e) {
    el.innerHTML = errorBox(e);
  }
}

/** The selector of the filters: `{service="x", level="error", k="v"}`. */
function selector(service, level, attr) {
  const m = [];
  if (service) m.push(`service="${lit(service)}"`);
  if (level) m.push(`level="${lit(level)}"`);
  if (attr) m.push(attr);
  return `{${m.join(", ")}}`;
}

/** Where the lines come from. Without a text query, the selector in
 * Explore; with one, the search API itself: the language's `|=` is a
 * substring, not the text query's terms, phrases and OR. */
function queryLineOf(sel, q, r, tail) {
  if (!q) return queryLine(`logs(${sel})`, tail ? undefined : r.start, tail ? undefined : r.end);
  const form = {q, limit: PAGE};
  if (sel !== "{}") form["match[]"] = sel;
  if (!tail) Object.assign(form, {start: r.start / 1000, end: r.end / 1000});
  const url = `/api/v1/sextant/logs?${qs(form)}`;
  return `<p class="query-line">From <a href="${esc(url)}"><code>${esc(url)}</code></a></p>`;
}

let tailTimer = null;

export function stopTail() {
  if (tailTimer) clearInterval(tailTimer);
  tailTimer = null;
}

export async function logsView(view, params) {
  const service = params.get("service") || "", level = params.get("level") || "";
  const attr = params.get("attr") || "", q = params.get("q") || "", tail = params.get("tail") === "1";
  const r = rangeOf(params);
  const sel = selector(service, level, attr);
  view.innerHTML = `<h1>Logs</h1>
    <form id="lf" class="filters">
      <input name="service" aria-label="service" placeholder="service" value="${esc(service)}" list="services">
      <datalist id="services"></datalist>
      <select name="level" aria-label="level">${LEVELS.map(l => `<option value="${l}"${l === level ? " selected" : ""}>${l || "any level"}</option>`).join("")}</select>
      <input name="attr" aria-label="attribute" placeholder='attribute: http.route="/orders"' value="${esc(attr)}" size="24">
      <input name="q" aria-label="text" placeholder='text: timeout OR "connection refused"' value="${esc(q)}" size="34">
      <button type="submit">Search</button>
      <label class="tail"><input type="checkbox" name="tail"${tail ? " checked" : ""}> live tail</label>
    </form>
    ${tail ? "" : picker(params)}
    <div id="volume" class="volume"></div>
    <div id="err"></div><p id="status" class="muted">Searching…</p><div id="rows"></div><div id="older"></div>
    ${queryLineOf(sel, q, r, tail)}`;
  wirePicker(view);
  const f = view.querySelector("#lf");
  const go = () => {
    const p = {service: f.service.value, level: f.level.value, attr: f.attr.value, q: f.q.value, tail: f.tail.checked ? "1" : ""};
    if (!f.tail.checked) for (const k of ["range", "start", "end"]) if (params.get(k)) p[k] = params.get(k);
    location.hash = "#/logs?" + qs(p);
  };
  f.addEventListener("submit", e => { e.preventDefault(); go(); });
  f.tail.addEventListener("change", go);
  serviceNames().then(v => fill("services", v.map(s => `<option value="${esc(s)}">`).join("")));
  const search = {};
  if (sel !== "{}") search["match[]"] = sel;
  if (q) search.q = q;
  const form = {...search, limit: String(PAGE)};
  const shownVolume = tail ? null : volume("volume", search, r);
  let shown = [];
  try {
    shown = await api("/api/v1/sextant/logs", tail ? form : {...form, start: r.start / 1000, end: r.end / 1000});
  } catch (e) {
    fill("err", errorBox(e));
    fill("status", "");
    ready("logs");
    return;
  }
  fill("rows", shown.length ? logList(shown) : `<p class="muted">No lines match.</p>`);
  const key = l => l.timeUnixNano + "|" + l.service + "|" + (typeof l.body === "string" ? l.body : JSON.stringify(l.body));
  let seen = new Set(shown.map(key));
  if (!tail) {
    const status = full => fill("status", `${shown.length}${full ? "+" : ""} lines, newest first, ${esc(r.label)}.`);
    const olderButton = full => fill("older", full ? `<button type="button">Older lines</button>` : "");
    status(shown.length === PAGE);
    olderButton(shown.length === PAGE);
    // Lines of the oldest shown millisecond come again: they are told
    // apart from new ones by what they hold. A millisecond of more lines
    // than a page is stepped over once it gives nothing new.
    view.querySelector("#older").addEventListener("click", async ev => {
      if (!ev.target.closest("button")) return;
      fill("older", `<p class="muted">Searching…</p>`);
      let end = Number(shown[shown.length - 1].timeUnixNano) / 1e9, fresh = [], got = [];
      try {
        for (let tries = 0; tries < 2 && !fresh.length; tries++, end -= 0.001) {
          got = await api("/api/v1/sextant/logs", {...form, start: r.start / 1000, end});
          fresh = got.filter(l => !seen.has(key(l)));
        }
      } catch (e) {
        fill("older", errorBox(e));
        return;
      }
      for (const l of fresh) seen.add(key(l));
      shown = shown.concat(fresh);
      const body = document.querySelector("#rows tbody");
      if (body) body.insertAdjacentHTML("beforeend", fresh.map(row).join(""));
      status(got.length === PAGE);
      olderButton(got.length === PAGE && fresh.length > 0);
    });
    await shownVolume;
    ready("logs");
    return;
  }
  fill("status", `Live: newest first, updated every ${TAIL_EVERY_MS / 1000} s.`);
  ready("logs");
  tailTimer = setInterval(async () => {
    const newest = shown.length ? Number(shown[0].timeUnixNano) / 1e9 : Date.now() / 1000 - 60;
    try {
      const more = (await api("/api/v1/sextant/logs", {...form, start: newest, end: Date.now() / 1000 + 1})).filter(l => !seen.has(key(l)));
      if (!more.length) return;
      shown = more.concat(shown).slice(0, MAX_ROWS);
      seen = new Set(shown.map(key));
      const body = document.querySelector("#rows tbody");
      if (body) body.insertAdjacentHTML("afterbegin", more.map(row).join(""));
      else fill("rows", logList(shown));
      document.querySelectorAll("#rows tbody tr.log").forEach((tr, i) => {
        if (i < MAX_ROWS) return;
        if (tr.getAttribute("aria-expanded") === "true") tr.nextElementSibling.remove();
        tr.remove();
      });
      fill("status", `Live: ${more.length} new line${more.length === 1 ? "" : "s"} at ${esc(fmtTime(Date.now(), true))}.`);
    } catch (e) {
      fill("err", errorBox(e));
    }
  }, TAIL_EVERY_MS);
}
