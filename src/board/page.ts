/**
 * The board's one page: HTML, CSS and a little JavaScript, served by the server itself (no framework, no
 * CDN: it works offline and with `npm install && npm start`). It reads `/board/api/…` (Board.ts) and
 * follows `/board/api/stream` for live updates. With authentication on it asks for an admin's key once
 * (kept in this tab's sessionStorage) and sends it as `Authorization: Bearer`.
 *
 * (The script uses no template literals, so this file can hold it in one.)
 */
export const page = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>a2a-ledger board</title>
<style>
  :root { --bg: #f6f7f9; --panel: #fff; --ink: #1d2330; --muted: #6b7385; --line: #e2e5ec; --accent: #3b5bdb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg); }
  header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; background: #1d2330; color: #fff; }
  header h1 { font-size: 16px; margin: 0; font-weight: 600; }
  header nav button { background: none; border: 0; color: #c9cfdc; font: inherit; padding: 6px 10px; cursor: pointer; border-radius: 4px; }
  header nav button.on { background: #3a4358; color: #fff; }
  header .live { margin-left: auto; font-size: 12px; color: #9aa3b5; }
  header .live.up::before { content: "● "; color: #40c057; }
  header select { font: inherit; }
  main { padding: 16px 20px; display: grid; gap: 16px; grid-template-columns: minmax(0, 1fr); }
  main.split { grid-template-columns: minmax(0, 1.1fr) minmax(0, 1fr); }
  section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 14px; min-width: 0; }
  h2 { font-size: 15px; margin: 0 0 10px; }
  h3 { font-size: 13px; margin: 14px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: 5px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-size: 12px; color: var(--muted); font-weight: 500; }
  tr.task { cursor: pointer; }
  tr.task:hover, tr.task.sel { background: #eef2ff; }
  .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
  .muted { color: var(--muted); }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 11px; font-weight: 600; white-space: nowrap; }
  .s-SUBMITTED { background: #e7f5ff; color: #1864ab; } .s-WORKING { background: #fff3bf; color: #8a6d00; }
  .s-INPUT_REQUIRED, .s-AUTH_REQUIRED { background: #ffe8cc; color: #a24a00; }
  .s-COMPLETED { background: #d3f9d8; color: #2b8a3e; } .s-FAILED { background: #ffe3e3; color: #c92a2a; }
  .s-CANCELED { background: #e9ecef; color: #495057; } .s-REJECTED { background: #f3d9fa; color: #862e9c; }
  .filters { display: flex; gap: 8px; flex-wrap: wrap; margin-bottom: 10px; }
  input, select, textarea { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
  button.act { font: inherit; padding: 5px 12px; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
  button.act.plain { background: #fff; color: var(--accent); }
  button.act.danger { border-color: #c92a2a; background: #c92a2a; }
  .kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; }
  .msg { border-left: 3px solid var(--line); padding: 2px 8px; margin: 4px 0; white-space: pre-wrap; }
  .msg.agent { border-color: #748ffc; } .msg.user { border-color: #ced4da; }
  .travel { display: flex; align-items: center; gap: 10px; margin: 8px 0; }
  .travel input { flex: 1; }
  .row { display: flex; gap: 16px; flex-wrap: wrap; }
  .card { flex: 1; min-width: 180px; border: 1px solid var(--line); border-radius: 6px; padding: 10px; }
  .big { font-size: 22px; font-weight: 600; }
  .error { color: #c92a2a; margin: 6px 0; }
  .hidden { display: none !important; }
  #signin { max-width: 420px; margin: 60px auto; }
  pre { white-space: pre-wrap; margin: 0; }
  .legend span { margin-right: 12px; font-size: 12px; }
  .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; vertical-align: -1px; }
</style>
</head>
<body>
<header>
  <h1>a2a-ledger board</h1>
  <select id="agent" data-testid="agent" title="agent"></select>
  <nav>
    <button data-view="tasks" class="on">Tasks</button>
    <button data-view="overview">Overview</button>
    <button data-view="dead">Dead letters</button>
    <button data-view="instances">Instances</button>
  </nav>
  <span id="live" class="live" data-testid="live">offline</span>
</header>
<div id="signin" class="hidden"><section>
  <h2>Sign in</h2>
  <p class="muted">This server has authentication on: the board needs the API key or token of a principal listed in <code>auth.admins</code>.</p>
  <form id="signin-form"><input id="key" type="password" placeholder="API key or JWT" style="width:100%" autocomplete="off">
  <p><button class="act" type="submit">Open the board</button></p></form>
  <div id="signin-error" class="error"></div>
</section></div>
<main id="main">
  <section id="tasks-view">
    <h2>Tasks</h2>
    <div class="filters">
      <select id="f-state" data-testid="filter-state"><option value="">every state</option></select>
      <input id="f-context" placeholder="context id" data-testid="filter-context">
      <input id="f-tenant" placeholder="tenant (* for all)" value="*" data-testid="filter-tenant">
    </div>
    <table><thead><tr><th>state</th><th>task</th><th>context</th><th>tenant / owner</th><th>age</th><th>last update</th><th>status message</th></tr></thead>
    <tbody id="task-rows" data-testid="task-rows"></tbody></table>
    <p><button id="more" class="act plain hidden">More</button></p>
  </section>
  <section id="task-view" class="hidden" data-testid="task-view"></section>
  <section id="overview-view" class="hidden" data-testid="overview-view"></section>
  <section id="dead-view" class="hidden" data-testid="dead-view"></section>
  <section id="instances-view" class="hidden" data-testid="instances-view"></section>
</main>
<script>
(function () {
  "use strict";
  var STATES = ["SUBMITTED", "WORKING", "INPUT_REQUIRED", "AUTH_REQUIRED", "COMPLETED", "FAILED", "CANCELED", "REJECTED"];
  var COLORS = { COMPLETED: "#40c057", FAILED: "#fa5252", CANCELED: "#868e96", REJECTED: "#be4bdb" };
  var state = { agent: "", view: "tasks", selected: null, version: null, after: null, rows: [] };
  var $ = function (id) { return document.getElementById(id); };
  var short = function (s) { return s ? String(s).replace(/^TASK_STATE_/, "") : ""; };
  var esc = function (s) { return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]; }); };
  var badge = function (s) { var n = short(s); return '<span class="badge s-' + esc(n) + '" data-state="' + esc(n) + '">' + esc(n) + "</span>"; };
  var age = function (iso) {
    var ms = Date.now() - Date.parse(iso); if (!(ms >= 0)) return "";
    var s = Math.floor(ms / 1000); if (s < 60) return s + " s"; var m = Math.floor(s / 60); if (m < 60) return m + " min";
    var h = Math.floor(m / 60); if (h < 48) return h + " h"; return Math.floor(h / 24) + " d";
  };
  var time = function (iso) { var d = new Date(iso); return isNaN(d) ? "" : d.toLocaleTimeString() + "." + String(d.getMilliseconds()).padStart(3, "0"); };
  var headers = function () { var k = sessionStorage.getItem("a2a-ledger-board-key"); return k ? { authorization: "Bearer " + k } : {}; };
  function api(path, options) {
    options = options || {};
    var h = headers(); if (options.body) h["content-type"] = "application/json";
    return fetch(path, { method: options.method || "GET", headers: h, body: options.body ? JSON.stringify(options.body) : undefined }).then(function (res) {
      if (res.status === 401 || (res.status === 403 && !sessionStorage.getItem("a2a-ledger-board-key") && state.needsKey)) { signIn(); throw new Error("sign in first"); }
      return res.json().then(function (body) { if (!res.ok) throw new Error((body.error && body.error.message) || ("HTTP " + res.status)); return body; });
    });
  }
  var withAgent = function (path) { return path + (path.indexOf("?") < 0 ? "?" : "&") + "agent=" + encodeURIComponent(state.agent); };

  function signIn(message) {
    $("main").classList.add("hidden"); $("signin").classList.remove("hidden"); state.needsKey = true;
    if (message) $("signin-error").textContent = message;
  }
  $("signin-form").addEventListener("submit", function (e) {
    e.preventDefault(); sessionStorage.setItem("a2a-ledger-board-key", $("key").value.trim());
    $("signin").classList.add("hidden"); $("main").classList.remove("hidden"); start();
  });

  function show(view) {
    state.view = view;
    document.querySelectorAll("header nav button").forEach(function (b) { b.classList.toggle("on", b.getAttribute("data-view") === view); });
    ["tasks", "overview", "dead", "instances"].forEach(function (v) { $(v + "-view").classList.toggle("hidden", v !== view); });
    $("task-view").classList.toggle("hidden", !(view === "tasks" && state.selected));
    $("main").classList.toggle("split", view === "tasks" && !!state.selected);
    if (view === "overview") loadOverview(); if (view === "dead") loadDead(); if (view === "instances") loadInstances();
  }
  document.querySelectorAll("header nav button").forEach(function (b) { b.addEventListener("click", function () { show(b.getAttribute("data-view")); }); });

  // Tasks: the first page again on every change (live), more pages on demand.
  function query(after) {
    var q = "/board/api/tasks?pageSize=50";
    if ($("f-state").value) q += "&state=TASK_STATE_" + $("f-state").value;
    if ($("f-context").value.trim()) q += "&contextId=" + encodeURIComponent($("f-context").value.trim());
    var tenant = $("f-tenant").value.trim(); q += "&tenant=" + encodeURIComponent(tenant === "" ? "*" : tenant);
    if (after) q += "&after=" + encodeURIComponent(after);
    return withAgent(q);
  }
  function renderRows() {
    $("task-rows").innerHTML = state.rows.map(function (t) {
      return '<tr class="task' + (t.id === state.selected ? " sel" : "") + '" data-task="' + esc(t.id) + '">' +
        "<td>" + badge(t.state) + '</td><td class="mono">' + esc(t.id) + '</td><td class="mono">' + esc(t.contextId.slice(0, 13)) + "…</td>" +
        "<td>" + esc(t.tenant || "—") + " / " + esc(t.owner || "—") + "</td><td>" + age(t.createdAt) + "</td><td>" + age(t.updatedAt) + " ago</td>" +
        '<td class="muted">' + esc(t.message.slice(0, 80)) + "</td></tr>";
    }).join("") || '<tr><td colspan="7" class="muted">No tasks.</td></tr>';
    document.querySelectorAll("tr.task").forEach(function (tr) { tr.addEventListener("click", function () { openTask(tr.getAttribute("data-task"), null); }); });
  }
  // Answers can come back out of order (a slow one after a newer one): only the latest request's answer is
  // shown, or a stale task could overwrite a newer one and, with no change to come, stay on the page.
  var latestList = 0, latestTask = 0;
  function loadTasks() {
    var ticket = ++latestList;
    return api(query(null)).then(function (page) {
      if (ticket !== latestList) return;
      var extra = state.rows.length > 50 ? state.rows.slice(50) : [];
      state.rows = page.tasks.concat(extra.filter(function (r) { return !page.tasks.some(function (t) { return t.id === r.id; }); }));
      if (extra.length === 0) state.after = page.next || null;
      $("more").classList.toggle("hidden", !state.after); renderRows();
    }).catch(showError);
  }
  $("more").addEventListener("click", function () {
    api(query(state.after)).then(function (page) { state.rows = state.rows.concat(page.tasks); state.after = page.next || null; $("more").classList.toggle("hidden", !state.after); renderRows(); });
  });
  ["f-state", "f-context", "f-tenant"].forEach(function (id) { $(id).addEventListener("change", function () { state.rows = []; loadTasks(); }); });

  // One task: its head, actions, time travel, timeline, history, artifacts, deliveries.
  function openTask(id, version) {
    state.selected = id; state.version = version;
    var ticket = ++latestTask;
    return api(withAgent("/board/api/task?id=" + encodeURIComponent(id) + (version ? "&version=" + version : ""))).then(function (t) {
      if (ticket !== latestTask) return;
      renderTask(t); renderRows(); show("tasks");
    }).catch(showError);
  }
  function part(p) {
    if (p.text != null) return '<pre>' + esc(p.text) + "</pre>";
    if (p.data != null) return '<pre class="mono">' + esc(JSON.stringify(p.data, null, 2)) + "</pre>";
    if (p.url) return '<a href="' + esc(p.url) + '" target="_blank" rel="noopener">' + esc(p.filename || p.url) + "</a>";
    return '<span class="muted">(file: ' + esc(p.filename || p.mediaType || "bytes") + ")</span>";
  }
  function renderTask(t) {
    var terminal = ["COMPLETED", "FAILED", "CANCELED", "REJECTED"].indexOf(short(t.state)) >= 0;
    var asking = short(t.state) === "INPUT_REQUIRED" || short(t.state) === "AUTH_REQUIRED";
    var latest = t.version === t.latestVersion;
    var task = t.task;
    var html = '<h2>Task <span class="mono">' + esc(task.id) + "</span> " + badge(task.status.state) + "</h2>" +
      '<div class="kv"><span class="muted">context</span><span class="mono">' + esc(task.contextId) + '</span><span class="muted">tenant / owner</span><span>' +
      esc(t.tenant || "—") + " / " + esc(t.owner || "—") + '</span><span class="muted">last turn by</span><span class="mono">' + esc(t.worker.lastTurnBy || "—") + "</span>" +
      (t.worker.lease ? '<span class="muted">lease</span><span class="mono">' + esc(t.worker.lease.owner) + " (epoch " + t.worker.lease.epoch + ", until " + time(new Date(t.worker.lease.expiresAt).toISOString()) + ")</span>" : "") +
      "</div>";
    html += '<div class="travel"><span class="muted">version</span><input type="range" id="travel" data-testid="travel" min="1" max="' + t.latestVersion + '" value="' + t.version + '">' +
      '<span data-testid="version-label">' + (latest ? "latest (" + t.version + ")" : t.version + " of " + t.latestVersion) + "</span>" +
      (latest ? "" : '<button class="act plain" id="travel-latest">latest</button>') + "</div>";
    if (latest && !terminal) html += '<p><button class="act danger" id="cancel" data-testid="cancel">Cancel task</button></p>';
    if (latest && asking) html += '<form id="answer-form"><textarea id="answer" data-testid="answer" rows="2" style="width:100%" placeholder="Your answer to the agent"></textarea>' +
      '<p><button class="act" type="submit" data-testid="send-answer">Send answer</button></p></form>';
    html += '<div id="task-error" class="error"></div>';
    html += "<h3>Timeline</h3><table data-testid=\"timeline\"><thead><tr><th>v</th><th>time</th><th>event</th><th>state after</th><th>what</th><th>by</th></tr></thead><tbody>" +
      t.timeline.map(function (e) {
        return "<tr" + (e.version === t.version && !latest ? ' style="background:#fff9db"' : "") + (e.version > t.version ? ' class="muted"' : "") + '><td>' + e.version + "</td><td>" + time(e.at) + '</td><td class="mono">' + esc(e.type) +
          "</td><td>" + badge(e.state) + "</td><td>" + esc(e.summary) + '</td><td class="mono">' + esc((e.instanceId || "").slice(0, 8)) + "</td></tr>";
      }).join("") + "</tbody></table>";
    html += '<h3>History</h3><div data-testid="history">' + ((task.history || []).map(function (m) {
      var agent = m.role === "ROLE_AGENT";
      return '<div class="msg ' + (agent ? "agent" : "user") + '"><span class="muted">' + (agent ? "agent" : "user") + "</span> " + (m.parts || []).map(part).join("") + "</div>";
    }).join("") || '<p class="muted">None.</p>') + "</div>";
    html += "<h3>Artifacts</h3>" + ((task.artifacts || []).map(function (a) {
      return '<div class="msg"><b>' + esc(a.name || a.artifactId) + "</b> " + (a.parts || []).map(part).join("") + "</div>";
    }).join("") || '<p class="muted">None.</p>');
    html += "<h3>Webhook deliveries</h3>" + (t.deliveries.length === 0 ? '<p class="muted">None.</p>' :
      "<table data-testid=\"deliveries\"><thead><tr><th>id</th><th>version</th><th>status</th><th>attempts</th><th>last error</th><th></th></tr></thead><tbody>" +
      t.deliveries.map(function (d) {
        return "<tr><td>" + d.id + "</td><td>" + d.version + "</td><td>" + esc(d.status) + "</td><td>" + d.attempts + "</td><td>" + esc(d.lastError || "") + "</td><td>" +
          (d.status === "dead" ? '<button class="act plain" data-redeliver="' + d.id + '">Redeliver</button>' : "") + "</td></tr>";
      }).join("") + "</tbody></table>");
    // A redraw keeps an answer being typed to the same question.
    var typing = $("answer") && $("task-view").getAttribute("data-task") === task.id ? $("answer").value : "";
    var focused = typing !== "" && document.activeElement === $("answer");
    $("task-view").innerHTML = html;
    $("task-view").setAttribute("data-task", task.id);
    if ($("answer") && typing !== "") { $("answer").value = typing; if (focused) $("answer").focus(); }
    $("travel").addEventListener("change", function () { var v = Number($("travel").value); openTask(task.id, v === t.latestVersion ? null : v); });
    if ($("travel-latest")) $("travel-latest").addEventListener("click", function () { openTask(task.id, null); });
    if ($("cancel")) $("cancel").addEventListener("click", function () {
      api(withAgent("/board/api/cancel?id=" + encodeURIComponent(task.id)), { method: "POST", body: {} }).then(function () { loadTasks(); return openTask(task.id, null); }).catch(function (e) { $("task-error").textContent = e.message; });
    });
    if ($("answer-form")) $("answer-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      api(withAgent("/board/api/answer?id=" + encodeURIComponent(task.id)), { method: "POST", body: { text: $("answer").value } }).then(function () { loadTasks(); return openTask(task.id, null); }).catch(function (e) { $("task-error").textContent = e.message; });
    });
    document.querySelectorAll("[data-redeliver]").forEach(function (b) {
      b.addEventListener("click", function () { redeliver([Number(b.getAttribute("data-redeliver"))]).then(function () { openTask(task.id, state.version); }); });
    });
  }
  function redeliver(ids) { return api(withAgent("/board/api/redeliver"), { method: "POST", body: { ids: ids } }).catch(showError); }

  // Overview: a chart of the last hour, active tasks, the outbox, commit latency.
  function chart(perMinute) {
    var now = Date.now(), W = 720, H = 160, bw = W / 60;
    var minutes = []; for (var i = 59; i >= 0; i--) minutes.push(new Date(now - i * 60000).toISOString().slice(0, 16));
    var by = {}; perMinute.forEach(function (r) { (by[r.minute] = by[r.minute] || {})[short(r.state)] = r.n; });
    var max = 1; minutes.forEach(function (m) { var s = 0; for (var k in by[m] || {}) s += by[m][k]; if (s > max) max = s; });
    var bars = minutes.map(function (m, i) {
      var y = H, out = "";
      ["COMPLETED", "FAILED", "CANCELED", "REJECTED"].forEach(function (k) {
        var n = (by[m] || {})[k] || 0; if (!n) return; var h = n / max * (H - 16); y -= h;
        out += '<rect x="' + (i * bw + 1) + '" y="' + y + '" width="' + (bw - 2) + '" height="' + h + '" fill="' + COLORS[k] + '"><title>' + m.slice(11) + " " + k + ": " + n + "</title></rect>";
      });
      return out;
    }).join("");
    var axis = '<div class="muted" style="display:flex;justify-content:space-between;font-size:11px"><span>60 min ago</span><span>up to ' + max + ' a minute</span><span>now</span></div>';
    return '<svg data-testid="chart" viewBox="0 0 ' + W + " " + H + '" preserveAspectRatio="none" width="100%" height="' + H + '" style="background:#fafbfc;border-bottom:1px solid #e2e5ec">' + bars + "</svg>" + axis +
      '<div class="legend">' + Object.keys(COLORS).map(function (k) { return '<span><i style="background:' + COLORS[k] + '"></i>' + k.toLowerCase() + "</span>"; }).join("") + "</div>";
  }
  function hbars(items) {
    var max = Math.max.apply(null, items.map(function (i) { return i.n; }).concat([1]));
    return '<svg viewBox="0 0 300 ' + items.length * 22 + '" preserveAspectRatio="xMinYMin meet" width="300" height="' + items.length * 22 + '">' + items.map(function (it, i) {
      return '<text x="0" y="' + (i * 22 + 14) + '" font-size="11" fill="#6b7385">' + esc(it.label) + '</text><rect x="110" y="' + (i * 22 + 4) + '" height="14" width="' + Math.max(1, it.n / max * 160) +
        '" fill="' + it.color + '"></rect><text x="' + (116 + it.n / max * 160) + '" y="' + (i * 22 + 15) + '" font-size="11">' + it.n + "</text>";
    }).join("") + "</svg>";
  }
  function loadOverview() {
    api(withAgent("/board/api/overview")).then(function (o) {
      var c = o.commits;
      $("overview-view").innerHTML = "<h2>Overview: " + esc(o.agent) + "</h2><h3>Tasks per minute by final state, last hour</h3>" + chart(o.finishedPerMinute) +
        '<div class="row"><div class="card"><h3>Active tasks</h3>' + hbars(o.active.map(function (a) { return { label: short(a.state).toLowerCase(), n: a.n, color: "#748ffc" }; })) + "</div>" +
        '<div class="card"><h3>Webhook outbox</h3>' + hbars([{ label: "pending", n: o.outbox.pending, color: "#fab005" }, { label: "dead letters", n: o.outbox.dead, color: "#fa5252" }]) + "</div>" +
        '<div class="card"><h3>Commit latency</h3>' + (c ? hbars([{ label: "p50 (ms)", n: Math.round(c.p50Ms * 10) / 10, color: "#40c057" }, { label: "p99 (ms)", n: Math.round(c.p99Ms * 10) / 10, color: "#fd7e14" }]) +
          '<p class="muted">last ' + c.count + " batches</p>" : '<p class="muted">No commits yet (or metrics are off).</p>') + "</div></div>";
    }).catch(showError);
  }
  function loadDead() {
    api(withAgent("/board/api/dead-letters")).then(function (r) {
      $("dead-view").innerHTML = "<h2>Dead letters</h2>" + (r.deliveries.length === 0 ? '<p class="muted">None.</p>' :
        '<p><button class="act" id="redeliver-all">Redeliver all</button></p><table><thead><tr><th>id</th><th>task</th><th>version</th><th>attempts</th><th>last error</th><th>since</th><th></th></tr></thead><tbody>' +
        r.deliveries.map(function (d) {
          return "<tr><td>" + d.id + '</td><td class="mono">' + esc(d.taskId) + "</td><td>" + d.version + "</td><td>" + d.attempts + "</td><td>" + esc(d.lastError || "") + "</td><td>" + age(d.updatedAt) +
            ' ago</td><td><button class="act plain" data-redeliver="' + d.id + '">Redeliver</button></td></tr>';
        }).join("") + "</tbody></table>");
      document.querySelectorAll("#dead-view [data-redeliver]").forEach(function (b) { b.addEventListener("click", function () { redeliver([Number(b.getAttribute("data-redeliver"))]).then(loadDead); }); });
      if ($("redeliver-all")) $("redeliver-all").addEventListener("click", function () { redeliver(r.deliveries.map(function (d) { return d.id; })).then(loadDead); });
    }).catch(showError);
  }
  function loadInstances() {
    api(withAgent("/board/api/instances")).then(function (r) {
      $("instances-view").innerHTML = "<h2>Instances and leases</h2><p>This instance: <span class=\"mono\">" + esc(r.instance) + "</span>, store: " + esc(r.store) + "</p>" +
        (r.store !== "postgres" ? '<p class="muted">A SQLite store has one process and no leases.</p>' : r.leases.length === 0 ? '<p class="muted">No live leases.</p>' :
          "<table><thead><tr><th>task</th><th>held by</th><th>epoch</th><th>expires</th></tr></thead><tbody>" + r.leases.map(function (l) {
            return '<tr><td class="mono">' + esc(l.taskId) + '</td><td class="mono">' + esc(l.owner) + "</td><td>" + l.epoch + "</td><td>" + time(new Date(l.expiresAt).toISOString()) + "</td></tr>";
          }).join("") + "</tbody></table>");
    }).catch(showError);
  }
  function showError(e) { if (e && e.message !== "sign in first") { var box = document.createElement("p"); box.className = "error"; box.textContent = e.message; $("main").prepend(box); setTimeout(function () { box.remove(); }, 6000); } }

  // Live: one stream of every commit (fetch, so the key can go in a header); each change reloads what shows it.
  // The open task is read again only when it changed: reading it redraws its panel.
  var pending = null, selectedChanged = false;
  function changed(ev) {
    if (ev.agent !== state.agent) return;
    if (ev.taskId === state.selected) selectedChanged = true;
    if (pending) return;
    pending = setTimeout(function () {
      pending = null;
      var reopen = selectedChanged; selectedChanged = false;
      if (state.view === "tasks") { loadTasks(); if (reopen && state.selected && state.version === null) openTask(state.selected, null); }
      if (state.view === "overview") loadOverview();
    }, 150);
  }
  function follow() {
    fetch("/board/api/stream", { headers: headers() }).then(function (res) {
      if (!res.ok || !res.body) throw new Error("HTTP " + res.status);
      $("live").textContent = "live"; $("live").classList.add("up");
      var reader = res.body.getReader(), decoder = new TextDecoder(), buffer = "";
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) throw new Error("ended");
          buffer += decoder.decode(r.value, { stream: true });
          var parts = buffer.split("\n\n"); buffer = parts.pop();
          parts.forEach(function (p) { p.split("\n").forEach(function (line) { if (line.indexOf("data: ") === 0) changed(JSON.parse(line.slice(6))); }); });
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      $("live").textContent = "reconnecting…"; $("live").classList.remove("up"); setTimeout(follow, 2000);
    });
  }

  STATES.forEach(function (s) { var o = document.createElement("option"); o.value = s; o.textContent = s.toLowerCase(); $("f-state").appendChild(o); });
  $("agent").addEventListener("change", function () { state.agent = $("agent").value; state.selected = null; state.rows = []; loadTasks(); show(state.view); });
  function start() {
    api("/board/api/agents").then(function (r) {
      $("agent").innerHTML = r.agents.map(function (a) { return '<option value="' + esc(a.name) + '">' + esc(a.title) + (a.path !== "/" ? " (" + esc(a.path) + ")" : "") + "</option>"; }).join("");
      state.agent = r.agents.length ? r.agents[0].name : "";
      loadTasks(); follow();
    }).catch(function (e) { if (e.message !== "sign in first") signIn(e.message); });
  }
  start();
})();
</script>
</body>
</html>
`
