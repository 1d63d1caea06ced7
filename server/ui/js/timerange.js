// The time range every view reads from its URL: `range=1h` (ending now)
// or `start=…&end=…` (ms), shown in the market's local time and UTC.

import {esc, fmtDateTime} from "./api.js";

export const RANGES = {"15m": 15 * 60e3, "1h": 3600e3, "3h": 3 * 3600e3, "6h": 6 * 3600e3, "24h": 24 * 3600e3};

/** `{start, end, step, win, label}` (ms) of the view's URL parameters;
 * `win` is the rate window the charts use (at least one step). */
export function rangeOf(params, fallback = "1h") {
  let start = Number(params.get("start")), end = Number(params.get("end"));
  let label;
  if (!(start > 0 && end > start)) {
    const r = RANGES[params.get("range")] ? params.get("range") : fallback;
    end = Date.now();
    start = end - RANGES[r];
    label = "last " + r;
  } else {
    label = `${fmtDateTime(start)} – ${fmtDateTime(end)}`;
  }
  const step = Math.max(15e3, Math.round((end - start) / 120 / 15e3) * 15e3);
  const win = step >= 60e3 ? `${Math.round(step / 60e3)}m` : "1m";
  return {start, end, step, win, label};
}

/** The picker: preset ranges, and absolute start/end in the market's
 * time (UTC shown beside). Choosing one rewrites the URL. */
export function picker(params) {
  const r = rangeOf(params);
  const cur = params.get("range") || (params.get("start") ? "" : "1h");
  const opts = Object.keys(RANGES).map(k => `<option value="${k}"${k === cur ? " selected" : ""}>last ${k}</option>`).join("");
  return `<form class="range" data-range>
    <label>Range <select name="range" aria-label="time range">${opts}<option value=""${cur ? "" : " selected"}>custom</option></select></label>
    <span class="muted">${esc(fmtDateTime(r.start))} → ${esc(fmtDateTime(r.end))}</span>
  </form>`;
}

/** Wires the picker of `root`: a preset replaces start/end in the URL. */
export function wirePicker(root) {
  const f = root.querySelector("[data-range]");
  if (!f) return;
  f.range.addEventListener("change", () => {
    const [path, q] = location.hash.replace(/^#/, "").split("?");
    const p = new URLSearchParams(q || "");
    p.delete("start"); p.delete("end");
    if (f.range.value) p.set("range", f.range.value); else p.delete("range");
    location.hash = "#" + path + "?" + p;
  });
}
