// The page's frame: the router (every view's state is in the URL, as
// #/view?params, so links can be shared), the clock in the market's time
// and UTC, the theme, keyboard shortcuts, and the token prompt for a
// server started with --auth-token.

import {api, esc, fmtTime, market, setToken, NeedToken, errorBox} from "./api.js";
import {nowView} from "./now.js";
import {incidentView, diagnosisView} from "./incident.js";
import {serviceView} from "./service.js";
import {traceView} from "./trace.js";
import {exploreView} from "./explore.js";
import {logsView, stopTail} from "./logs.js";

const view = document.getElementById("view");

function route() {
  const h = location.hash.replace(/^#/, "") || "/";
  const i = h.indexOf("?");
  const path = i < 0 ? h : h.slice(0, i);
  const params = new URLSearchParams(i < 0 ? "" : h.slice(i + 1));
  return {parts: path.split("/").filter(Boolean).map(decodeURIComponent), params};
}

function tokenForm(message) {
  view.innerHTML = `<h1>Sign in</h1><section class="panel narrow"><p>${esc(message)}: the token the server was started with (<code>--auth-token</code>).</p>
    <form id="tf"><input type="password" name="token" aria-label="access token" autocomplete="current-password" size="40" autofocus> <button type="submit">Sign in</button></form>
    <p class="muted">It is kept in this browser only and sent as <code>Authorization: Bearer …</code>.</p></section>`;
  view.querySelector("#tf").addEventListener("submit", e => {
    e.preventDefault();
    setToken(e.target.token.value.trim());
    render();
  });
}

let rendering = 0;
let lastPage = null;

async function render() {
  const me = ++rendering;
  stopTail();
  const {parts, params} = route();
  document.querySelectorAll("header nav a").forEach(a => a.classList.toggle("active", a.dataset.view === (parts[0] || "now")));
  delete document.body.dataset.ready;
  // A new page starts at its top; the same page with new parameters
  // (a range, a selected cause) keeps the reader's place.
  const page = parts.slice(0, 2).join("/");
  if (page !== lastPage) window.scrollTo(0, 0);
  lastPage = page;
  try {
    switch (parts[0]) {
      case undefined: await nowView(view, params); break;
      case "incident": await incidentView(view, parts[1], params); break;
      case "diagnosis": await diagnosisView(view, params); break;
      case "service": await serviceView(view, parts[1], params); break;
      case "trace": await traceView(view, parts[1], params); break;
      case "explore": await exploreView(view, params); break;
      case "logs": await logsView(view, params); break;
      default: view.innerHTML = `<p>No such page. <a href="#/">Now</a></p>`;
    }
  } catch (e) {
    if (me !== rendering) return;
    if (e instanceof NeedToken) tokenForm(e.message);
    else view.innerHTML = errorBox(e);
  }
  if (me === rendering && document.activeElement === document.body) view.focus({preventScroll: true});
}

function tick() {
  document.getElementById("clock").textContent = fmtTime(Date.now());
}

function setTheme(t) {
  document.documentElement.dataset.theme = t;
  localStorage.setItem("sextant.theme", t);
}

document.getElementById("theme").addEventListener("click", () => {
  const dark = document.documentElement.dataset.theme === "dark" ||
    (!document.documentElement.dataset.theme && matchMedia("(prefers-color-scheme: dark)").matches);
  setTheme(dark ? "light" : "dark");
});
if (localStorage.getItem("sextant.theme")) document.documentElement.dataset.theme = localStorage.getItem("sextant.theme");

// g then n/e/l: go to Now, Explore, Logs; "/" focuses the page's first field.
let g = false;
document.addEventListener("keydown", e => {
  if (e.target.closest("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "/") {
    const f = view.querySelector("textarea, input");
    if (f) { e.preventDefault(); f.focus(); }
  } else if (g && ({n: "#/", e: "#/explore", l: "#/logs"})[e.key]) {
    location.hash = ({n: "#/", e: "#/explore", l: "#/logs"})[e.key];
  }
  g = e.key === "g";
});

document.getElementById("goto").addEventListener("submit", e => {
  e.preventDefault();
  const id = e.target.trace.value.trim().toLowerCase();
  if (id) location.hash = "#/trace/" + encodeURIComponent(id);
  e.target.trace.value = "";
});

window.addEventListener("hashchange", render);
setInterval(tick, 10000);
api("/api/v1/sextant/calendar").then(c => {
  market.zone = c.time_zone;
  market.label = c.time_zone.split("/").pop().replace(/_/g, " ");
}).catch(() => {}).finally(() => { tick(); render(); });
