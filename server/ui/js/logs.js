// Logs: search by service, level, attributes and text, newest first, with
// a live tail that keeps adding what arrives.

import {api, serviceNames, esc, fmtTime, qs, fill, errorBox, ready, lit} from "./api.js";
import {rangeOf, picker, wirePicker} from "./timerange.js";

/** Lines shown at most; the tail drops the oldest past this. */
const MAX_ROWS = 500;
/** How often the tail asks for new lines, ms. */
const TAIL_EVERY_MS = 2000;

const LEVELS = ["", "fatal", "error", "warn", "info", "debug"];

function levelOf(l) {
  const t = (l.severityText || "").toLowerCase();
  const n = l.severityNumber || 0;
  if (n >= 21 || t.startsWith("fatal")) return "fatal";
  if (n >= 17 || t.startsWith("err")) return "error";
  if (n >= 13 || t.startsWith("warn")) return "warn";
  if (n >= 9 || t.startsWith("info")) return "info";
  return t || "debug";
}

function row(l) {
  const t = l.timeUnixNano ? Number(l.timeUnixNano) / 1e6 : 0;
  const body = typeof l.body === "string" ? l.body : JSON.stringify(l.body);
  const lv = levelOf(l);
  return `<tr class="log ${lv}"><td class="muted nowrap">${esc(fmtTime(t, true))}</td><td><a href="#/service/${encodeURIComponent(l.service)}">${esc(l.service)}</a></td><td><span class="lvl ${lv}">${esc(lv)}</span></td><td class="body"><code>${esc(body)}</code>${l.traceId ? ` <a class="trace-link" href="#/trace/${l.traceId}${l.spanId ? "?span=" + l.spanId : ""}">trace →</a>` : ""}</td></tr>`;
}

/** Log records (OTLP JSON names) as a table, in the order given. */
export function logList(rows) {
  return `<table class="logs"><thead><tr><th>time</th><th>service</th><th>level</th><th>message</th></tr></thead><tbody>${rows.map(row).join("")}</tbody></table>`;
}

/** The selector of the filters: `{service="x", level="error", k="v"}`. */
function selector(service, level, attr) {
  const m = [];
  if (service) m.push(`service="${lit(service)}"`);
  if (level) m.push(`level="${lit(level)}"`);
  if (attr) m.push(attr);
  return `{${m.join(", ")}}`;
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
    <div id="err"></div><p id="status" class="muted">Searching…</p><div id="rows"></div>
    <p class="query-line">Query: <a href="#/explore?${qs({q: `logs(${sel}${q ? ` |= "${lit(q)}"` : ""})`})}"><code>${esc(`logs(${sel})`)}</code>${q ? ` text <code>${esc(q)}</code>` : ""}</a></p>`;
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
  const form = {limit: "200"};
  if (sel !== "{}") form["match[]"] = sel;
  if (q) form.q = q;
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
  fill("status", tail ? `Live: newest first, updated every ${TAIL_EVERY_MS / 1000} s.` : `${shown.length}${shown.length === 200 ? "+" : ""} lines, newest first, ${esc(r.label)}.`);
  ready("logs");
  if (!tail) return;
  const key = l => l.timeUnixNano + "|" + l.service + "|" + (typeof l.body === "string" ? l.body : JSON.stringify(l.body));
  let seen = new Set(shown.map(key));
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
      document.querySelectorAll("#rows tbody tr").forEach((tr, i) => { if (i >= MAX_ROWS) tr.remove(); });
      fill("status", `Live: ${more.length} new line${more.length === 1 ? "" : "s"} at ${esc(fmtTime(Date.now(), true))}.`);
    } catch (e) {
      fill("err", errorBox(e));
    }
  }, TAIL_EVERY_MS);
}
