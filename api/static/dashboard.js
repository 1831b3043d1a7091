"use strict";
// Renders any JSON the API answers: arrays of objects become tables, objects become
// key/value tables (nested arrays of objects become sub-tables). No build step.
const KEY = new URLSearchParams(location.search).get("key");

function cell(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.every(v => typeof v !== "object") ? value.join(", ") : table(value);
  if (typeof value === "object") return table(value);
  if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(4);
  return String(value);
}

function table(data) {
  const t = document.createElement("table");
  if (Array.isArray(data)) {
    if (!data.length) { t.innerHTML = "<tr><td>none yet</td></tr>"; return t.outerHTML; }
    const cols = [...new Set(data.flatMap(r => (r && typeof r === "object") ? Object.keys(r) : ["value"]))].slice(0, 8);
    const head = t.insertRow();
    cols.forEach(c => { const th = document.createElement("th"); th.textContent = c; head.appendChild(th); });
    data.slice(0, 25).forEach(r => {
      const row = t.insertRow();
      cols.forEach(c => { row.insertCell().innerHTML = cell(typeof r === "object" ? r[c] : r); });
    });
  } else {
    Object.entries(data).forEach(([k, v]) => {
      const row = t.insertRow();
      const th = document.createElement("th"); th.textContent = k; row.appendChild(th);
      row.insertCell().innerHTML = cell(v);
    });
  }
  return t.outerHTML;
}

function escapeHtml(s) { const d = document.createElement("div"); d.textContent = s; return d.innerHTML; }

async function load(section) {
  const body = section.querySelector(".body");
  try {
    const headers = KEY ? {"Authorization": "Bearer " + KEY} : {};
    const resp = await fetch(section.dataset.url, {headers});
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
    body.innerHTML = cell(data) + (meta.length ? `<div class="meta">${escapeHtml(meta.join(" · "))}</div>` : "");
    section.dataset.loaded = "true";
  } catch (e) {
    body.innerHTML = `<span class="err">${escapeHtml(String(e.message || e))}</span>`;
    section.dataset.loaded = "error";
  }
}

async function refresh() {
  await Promise.all([...document.querySelectorAll("section[data-url]")].map(load));
  document.getElementById("refreshed").textContent = "Refreshed " + new Date().toLocaleTimeString() + ".";
  document.body.dataset.ready = "true";
}
refresh();
setInterval(refresh, 10000);
