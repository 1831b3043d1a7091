"use strict";
// Renders any JSON the API answers: arrays of objects become tables, objects become
// key/value tables (nested arrays of objects become sub-tables). No build step.
// Every API value is written with textContent (never as markup): strings are data.
// Auth: the login form sets an HttpOnly session cookie; no key is ever put in a URL.

function cell(value) {
  if (value === null || value === undefined) return document.createTextNode("");
  if (Array.isArray(value)) {
    return value.every(v => v === null || typeof v !== "object")
      ? document.createTextNode(value.join(", ")) : table(value);
  }
  if (typeof value === "object") return table(value);
  if (typeof value === "number" && !Number.isInteger(value)) return document.createTextNode(value.toFixed(4));
  return document.createTextNode(String(value));
}

function th(text) { const h = document.createElement("th"); h.textContent = text; return h; }

function table(data) {
  const t = document.createElement("table");
  if (Array.isArray(data)) {
    if (!data.length) { t.insertRow().insertCell().textContent = "none yet"; return t; }
    const cols = [...new Set(data.flatMap(r => (r && typeof r === "object") ? Object.keys(r) : ["value"]))].slice(0, 8);
    const head = t.insertRow();
    cols.forEach(c => head.appendChild(th(c)));
    data.slice(0, 25).forEach(r => {
      const row = t.insertRow();
      cols.forEach(c => { row.insertCell().appendChild(cell(r && typeof r === "object" ? r[c] : r)); });
    });
  } else {
    Object.entries(data).forEach(([k, v]) => {
      const row = t.insertRow();
      row.appendChild(th(k));
      row.insertCell().appendChild(cell(v));
    });
  }
  return t;
}

class Unauthorized extends Error {}

function showLogin() {
  document.getElementById("login").hidden = false;
  document.getElementById("logout").hidden = true;
}

async function load(section) {
  const body = section.querySelector(".body");
  try {
    const resp = await fetch(section.dataset.url, {credentials: "same-origin"});
    if (resp.status === 401) throw new Unauthorized("log in to see this panel");
    const json = await resp.json();
    if (!resp.ok) throw new Error((json.error && json.error.message) || resp.statusText);
    // every read carries how fresh it is: show the watermark's time and lag, not its detail
    const wm = json.watermark;
    const meta = [];
    if (wm && typeof wm === "object") {
      meta.push("data up to " + (wm.max_occurred_at || "—"));
      if (wm.lag !== undefined) meta.push("consumer lag " + wm.lag);
    }
    let data = json.items ?? json.data ?? json;
    if (data && typeof data === "object" && !Array.isArray(data)) {
      data = Object.fromEntries(Object.entries(data).filter(([k]) => k !== "watermark"));
    }
    const nodes = [cell(data)];
    if (meta.length) {
      const m = document.createElement("div");
      m.className = "meta";
      m.textContent = meta.join(" · ");
      nodes.push(m);
    }
    body.replaceChildren(...nodes);
    section.dataset.loaded = "true";
  } catch (e) {
    if (e instanceof Unauthorized) showLogin();
    const err = document.createElement("span");
    err.className = "err";
    err.textContent = String(e.message || e);
    body.replaceChildren(err);
    section.dataset.loaded = "error";
  }
}

async function refresh() {
  await Promise.all([...document.querySelectorAll("section[data-url]")].map(load));
  document.getElementById("refreshed").textContent = "Refreshed " + new Date().toLocaleTimeString() + ".";
  document.body.dataset.ready = "true";
}

if (new URLSearchParams(location.search).get("login") === "failed") {
  showLogin();
  document.getElementById("login-error").hidden = false;
}
refresh();
setInterval(refresh, 10000);
