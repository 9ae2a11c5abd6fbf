// pvopt's local page: live status over server-sent events, today's history, commands.
// Plain DOM, no dependency, no build step; every text goes in through textContent.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const COLORS = ["#1f6feb", "#8250df", "#0a8f8f", "#bf3989", "#6e7781", "#953800"];
const SVGNS = "http://www.w3.org/2000/svg";
const state = { session: null, cards: new Map(), names: [], source: null };

function fmtW(w) {
  if (w === null || w === undefined) return "–";
  return Math.abs(w) >= 1000 ? (w / 1000).toFixed(2) + " kW" : Math.round(w) + " W";
}
function fmtEur(x) { return (x < 0 ? "−" : "") + "€" + Math.abs(x).toFixed(2); }
function fmtWh(wh) {
  if (wh === null || wh === undefined) return "–";
  return Math.abs(wh) >= 1000 ? (wh / 1000).toFixed(2) + " kWh" : Math.round(wh) + " Wh";
}
function hhmm(iso) { return iso ? iso.slice(11, 16) : ""; }
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST",
    headers: { "content-type": "application/json", "x-pvopt": "1" },
    body: JSON.stringify(body),
  };
  opts.credentials = "same-origin";
  const resp = await fetch(path, opts);
  let doc = {};
  try { doc = await resp.json(); } catch (e) { doc = { error: resp.statusText }; }
  return { ok: resp.ok, status: resp.status, doc };
}

// -- login ------------------------------------------------------------------------------------
async function boot() {
  const { doc } = await api("/api/session");
  state.session = doc;
  state.names = doc.loads || [];
  $("#logout").hidden = !(doc.password_required && doc.logged_in);
  $("#readonly").hidden = !(doc.can_read && !doc.logged_in);
  document.body.classList.toggle("readonly", !doc.logged_in);
  if (!doc.can_read) {
    $("#login").hidden = false;
    $("#main").hidden = true;
    $("#password").focus();
    return;
  }
  $("#login").hidden = true;
  $("#main").hidden = false;
  live();
  refresh();
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const r = await api("/api/login", { password: $("#password").value });
  $("#password").value = "";
  if (!r.ok) { $("#login-error").textContent = r.doc.error || "refused"; return; }
  $("#login-error").textContent = "";
  boot();
});
$("#logout").addEventListener("click", async () => {
  await api("/api/logout", {});
  if (state.source) state.source.close();
  location.reload();
});
$("#login-to-act").addEventListener("click", () => {
  $("#login").hidden = false;
  $("#password").focus();
});

// -- live -------------------------------------------------------------------------------------
function live() {
  if (state.source) state.source.close();
  const src = new EventSource("/api/events");
  state.source = src;
  src.onopen = () => setLink(true);
  src.onmessage = (ev) => { setLink(true); render(JSON.parse(ev.data)); };
  src.onerror = () => setLink(false);  // EventSource reconnects by itself
}

function setLink(up) {
  const p = $("#link");
  p.textContent = up ? "live" : "reconnecting…";
  p.className = "pill " + (up ? "live" : "down");
}

function render(s) {
  $("#clock").textContent = s.time ? s.time.slice(11, 19) : "";
  const g = s.grid_w;
  const grid = $("#grid");
  grid.dataset.w = g === null ? "" : String(g);
  if (g === null || g === undefined) {
    grid.textContent = "–"; grid.className = "big"; $("#grid-label").textContent = "grid: no meter value";
  } else {
    grid.textContent = fmtW(Math.abs(g));
    grid.className = "big " + (g > 0 ? "import" : "export");
    $("#grid-label").textContent = g > 0 ? "importing from the grid" : "exporting to the grid";
  }
  const meter = s.meter || {};
  $("#pv").textContent = meter.pv_w === null || meter.pv_w === undefined ? "unknown" : fmtW(meter.pv_w);
  $("#meter-age").textContent = meter.age_s === null || meter.age_s === undefined ? "never" : meter.age_s.toFixed(0) + " s ago";
  $("#policy").textContent = s.policy + (s.dry_run ? " (dry run)" : "");
  renderBattery(s.battery);
  renderMoney(s.money);
  let total = 0;
  for (const l of s.loads || []) { total += l.power_w || 0; renderLoad(l); }
  $("#loads-w").textContent = fmtW(total);
  renderAlerts(s);
}

function renderBattery(b) {  // as pvopt reads it: + charging; present with a battery: block
  $("#battery-fact").hidden = !b;
  if (!b) return;
  const soc = b.soc === null ? "SoC ?" : b.soc.toFixed(0) + " %";
  const flow = b.power_w === null ? "no reading"
    : b.power_w >= 0 ? "charging " + fmtW(b.power_w) : "discharging " + fmtW(-b.power_w);
  $("#battery").textContent = soc + ", " + flow + " (" + b.mode.replace(/_/g, " ") + ")";
}

function renderMoney(m) {  // today's, with a tariff: block (docs/tariff.md)
  $("#money-fact").hidden = !m;
  if (!m) return;
  $("#money").textContent = fmtEur(m.saved_eur) + " saved by the loads, grid bill " + fmtEur(m.cost_eur);
}

function renderAlerts(s) {
  const box = $("#alerts");
  box.replaceChildren();
  const add = (text, bad) => box.append(el("div", text, "alert" + (bad ? " bad" : "")));
  if (s.mqtt && s.mqtt.connected === false) add("MQTT broker unreachable: loads keep their last command", true);
  if (s.meter && s.meter.stale) add("Meter stale: no fresh reading, surplus loads held at 0 W", true);
  const ix = s.influxdb;
  if (ix && (ix.backlog_s > 300 || ix.error)) {  // a few minutes behind is normal batching
    add("InfluxDB backlog: " + Math.round((ix.backlog_s || 0) / 60) + " min waiting" +
      (ix.error ? " — " + ix.error : ""), false);
  }
  if (s.dry_run) add("Dry run: no command is sent", false);
}

function renderLoad(l) {
  let card = state.cards.get(l.name);
  if (!card) {
    card = $("#load-card").content.firstElementChild.cloneNode(true);
    card.dataset.name = l.name;
    $(".name", card).textContent = l.name.replace(/_/g, " ");
    wireCard(card, l.name);
    $("#loads").append(card);
    state.cards.set(l.name, card);
  }
  const st = $(".state", card);
  st.textContent = l.state;
  st.className = "pill state state-" + l.state;
  card.dataset.state = l.state;
  // the words come from the server (views.load_view): measured beside commanded, the badge
  const v = l.view || {};
  $(".power", card).textContent = v.power || fmtW(l.power_w);
  const badge = $(".badge", card);
  badge.hidden = !v.badge;
  if (v.badge && badge.textContent !== v.badge.text) {
    badge.textContent = v.badge.text;
    badge.className = "pill badge badge-" + v.badge.tone;
  }
  card.classList.toggle("trouble", Boolean(v.badge && v.badge.tone === "bad"));
  const from = $(".energy-from", card);
  from.hidden = !v.energy_from;
  from.textContent = v.energy_from || "";
  const hasTemp = l.temperature_c !== null && l.temperature_c !== undefined;
  $(".temp-wrap", card).hidden = !hasTemp && l.temp_max === null;
  $(".temp", card).textContent = hasTemp ? l.temperature_c.toFixed(1) : "?";
  const until = l.forced_until ? " until " + hhmm(l.forced_until) : "";
  $(".mode", card).textContent = l.mode + until;
  $(".reason", card).textContent = l.reason;
  const th = $(".thresholds", card);
  th.hidden = l.temp_max === null;
  if (!th.open) {
    for (const k of ["temp_min", "temp_eco", "temp_sol_min", "temp_max"]) {
      const input = $(`input[name=${k}]`, card);
      if (input && l[k] !== null) input.value = l[k];
    }
  }
}

function wireCard(card, name) {
  const result = $(".result", card);
  const send = async (body) => {
    for (const b of card.querySelectorAll("button")) b.disabled = true;
    result.textContent = "…"; result.className = "result";
    try {
      const r = await api("/api/command", Object.assign({ name }, body));
      if (r.status === 401) { result.textContent = "Log in to act"; result.className = "result refused"; $("#login").hidden = false; return; }
      result.textContent = r.ok ? r.doc.message : "Refused: " + (r.doc.error || r.status);
      result.className = "result " + (r.ok ? "ok" : "refused");
      if (r.ok) setTimeout(refresh, 500);
    } catch (e) {
      result.textContent = "Not sent: " + e.message; result.className = "result refused";
    } finally {
      for (const b of card.querySelectorAll("button")) b.disabled = false;
    }
  };
  card.addEventListener("click", (ev) => {
    const action = ev.target.dataset && ev.target.dataset.action;
    if (!action) return;
    if (action === "boost") {
      const d = $(".duration", card).value;
      send(d ? { command: "force", duration: Number(d) } : { command: "force" });
    } else {
      send({ command: action });
    }
  });
  $(".threshold-form", card).addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = { command: "set" };
    for (const input of ev.target.querySelectorAll("input")) {
      if (input.value !== "") body[input.name] = Number(input.value);
    }
    send(body);
  });
}

// -- today, history, schedules ----------------------------------------------------------------
async function refresh() {
  const [today, hist] = await Promise.all([api("/api/today"), api("/api/history")]);
  if (today.ok) { renderChart(today.doc); renderEnergy(today.doc); }
  if (hist.ok) { renderHistory(hist.doc.transitions); renderSchedules(hist.doc.schedules); }
}
setInterval(() => { if (!$("#main").hidden) refresh(); }, 60000);

function svg(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.append(e);
  return e;
}

function renderChart(doc) {
  const box = $("#chart");
  // drawn at the box's own width, so labels keep their size on a phone
  const W = Math.max(300, Math.round(box.clientWidth || 640));
  const H = Math.round(Math.min(260, Math.max(190, W * 0.5))), L = 50, R = 30, T = 10, B = 22;
  box.replaceChildren();
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" }, box);
  const pts = doc.points;
  const names = doc.names;
  // the hours that have data, up to the next hour from now; the whole day when empty
  let t0 = doc.start, t1 = doc.end;
  if (pts.length) {
    const hour = (t, up) => doc.start + (up ? Math.ceil : Math.floor)((t - doc.start) / 3600) * 3600;
    t0 = hour(pts[0].end - pts[0].interval_s, false);
    t1 = Math.min(doc.end, Math.max(hour(Date.now() / 1000, true), hour(pts[pts.length - 1].end, true)));
    if (t1 - t0 < 3 * 3600) t0 = Math.max(doc.start, t1 - 3 * 3600);
  }
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  let top = 500, bottom = 0, tmin = Infinity, tmax = -Infinity;
  for (const p of pts) {
    const sum = names.reduce((a, n) => a + (p.loads_w[n] || 0), 0);
    top = Math.max(top, sum, p.import_w, p.pv_w || 0);
    bottom = Math.min(bottom, -p.export_w);
    for (const t of Object.values(p.temperature_c)) { tmin = Math.min(tmin, t); tmax = Math.max(tmax, t); }
  }
  top *= 1.05;
  const y = (w) => T + ((top - w) / (top - bottom)) * (H - T - B);
  // hour grid and labels, at most about one label per 50 px
  const spanH = (t1 - t0) / 3600;
  const stepH = [1, 2, 3, 4, 6].find((s) => (spanH / s) * 50 <= W - L - R) || 6;
  for (let t = t0; t <= t1; t += stepH * 3600) {
    const xx = x(t);
    svg("line", { x1: xx, x2: xx, y1: T, y2: H - B, class: "axis" }, root);
    const h = Math.round((t - doc.start) / 3600);
    svg("text", { x: xx, y: H - 6, "text-anchor": "middle" }, root).textContent = String(h).padStart(2, "0") + "h";
  }
  svg("line", { x1: L, x2: W - R, y1: y(0), y2: y(0), class: "axis" }, root);
  for (const w of [top / 1.05, bottom].filter((v) => v !== 0)) {
    const label = Math.abs(w) >= 1000 ? (w / 1000).toFixed(1) + " kW" : Math.round(w) + " W";
    svg("text", { x: L - 4, y: y(w) + 4, "text-anchor": "end" }, root).textContent = label;
  }
  const legend = $("#legend");
  legend.replaceChildren();
  const key = (label, color) => { const s = el("span", label); const i = el("i"); i.style.background = color; s.prepend(i); legend.append(s); };
  if (!pts.length) {
    svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, root).textContent = "no history yet today";
    return;
  }
  const step = (p) => [x(p.end - p.interval_s), x(p.end)];
  // stacked loads: each interval a column from the running base
  const base = pts.map(() => 0);
  names.forEach((n, i) => {
    const color = COLORS[i % COLORS.length];
    let d = "";
    pts.forEach((p, k) => {
      const w = p.loads_w[n] || 0;
      if (w <= 0) return;
      const [x0, x1] = step(p);
      d += `M${x0},${y(base[k])}H${x1}V${y(base[k] + w)}H${x0}Z`;
      base[k] += w;
    });
    svg("path", { d, fill: color, "fill-opacity": "0.75" }, root);
    key(n.replace(/_/g, " "), color);
  });
  // export below zero, import and PV as lines
  let ex = "";
  for (const p of pts) { if (p.export_w > 0) { const [x0, x1] = step(p); ex += `M${x0},${y(0)}H${x1}V${y(-p.export_w)}H${x0}Z`; } }
  svg("path", { d: ex, fill: "#2e9e5b", "fill-opacity": "0.6" }, root);
  key("export", "#2e9e5b");
  const line = (f) => pts.map((p, k) => `${k ? "L" : "M"}${x(p.end - p.interval_s / 2)},${y(f(p))}`).join("");
  svg("path", { d: line((p) => p.import_w), fill: "none", stroke: "#d1453b", "stroke-width": 1.5 }, root);
  key("import", "#d1453b");
  if (pts.some((p) => p.pv_w !== null)) {
    svg("path", { d: line((p) => p.pv_w || 0), fill: "none", stroke: "#e0a800", "stroke-width": 1.5 }, root);
    key("PV", "#e0a800");
  }
  if (tmin <= tmax) {  // water temperature on its own scale, right axis
    const lo = Math.floor(tmin - 2), hi = Math.ceil(tmax + 2);
    const yt = (t) => T + ((hi - t) / (hi - lo)) * (H - T - B);
    svg("text", { x: W - R + 4, y: yt(hi) + 10 }, root).textContent = hi + "°";
    svg("text", { x: W - R + 4, y: yt(lo) }, root).textContent = lo + "°";
    for (const n of names) {
      const tp = pts.filter((p) => n in p.temperature_c);
      if (!tp.length) continue;
      const d = tp.map((p, k) => `${k ? "L" : "M"}${x(p.end - p.interval_s / 2)},${yt(p.temperature_c[n])}`).join("");
      svg("path", { d, fill: "none", stroke: "#bf3989", "stroke-width": 1.5, "stroke-dasharray": "4 3" }, root);
      key(n.replace(/_/g, " ") + " °C", "#bf3989");
    }
  }
}

function renderEnergy(doc) {
  const t = doc.totals, table = $("#energy");
  table.replaceChildren();
  const row = (label, value) => { const tr = el("tr"); tr.append(el("th", label), el("td", value, "num")); table.append(tr); };
  row("Imported", fmtWh(t.import_wh));
  row("Exported", fmtWh(t.export_wh));
  if (t.pv_wh !== null) row("PV", fmtWh(t.pv_wh));
  for (const [n, wh] of Object.entries(t.loads)) row(n.replace(/_/g, " "), fmtWh(wh));
  row("Surplus diverted", fmtWh(t.diverted_wh));
  row("Share of surplus kept", t.surplus_kept === null ? "–" : (100 * t.surplus_kept).toFixed(0) + " %");
  if (t.self_consumption !== null) row("Self-consumption", (100 * t.self_consumption).toFixed(0) + " %");
}

function renderHistory(rows) {
  const table = $("#transitions");
  table.replaceChildren();
  if (!rows.length) { table.append(el("caption", "no transition yet", "muted")); return; }
  for (const r of rows) {
    const tr = el("tr");
    tr.append(el("td", hhmm(r.at)), el("td", r.load.replace(/_/g, " ")),
      el("td", r.source + " → " + r.dest), el("td", r.trigger, "muted"), el("td", r.reason));
    table.append(tr);
  }
}

function renderSchedules(items) {
  const ul = $("#schedules");
  ul.replaceChildren();
  if (!items.length) { ul.append(el("li", "no schedule", "muted")); return; }
  for (const s of items) {
    const next = s.next.map((e) => e.event + " " + e.at.slice(5, 16).replace("T", " ")).join(", ");
    const li = el("li");
    li.append(el("b", s.name), ` — ${s.load.replace(/_/g, " ")}, ${s.action}, ${s.when}. Next: ${next || "—"}`);
    ul.append(li);
  }
}

boot();
