// lastro's dashboard: polls dashboard.json every 2 s and draws what it says. Plain JS, no dependency.
"use strict";

(() => {
  const POLL_MS = 2000;
  const KEEP_MS = 5 * 60 * 1000; // what the charts keep; they span what they have, 20 s at least
  const MIN_SPAN_MS = 20 * 1000;
  const TOKEN_KEY = "lastro.dashboard.token";
  const $ = (id) => document.getElementById(id);
  const history = { rps: [], p50: [], p95: [], p99: [], err5: [], err4: [], cpu: [], pool: [] };
  let last = null; // the last document, for redrawing on resize
  let timer = null;
  const askingWhy = $("login-reason").textContent;

  // Numbers -----------------------------------------------------------------------------------------------
  function fmt(value, digits = 0) {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  function percent(rate) {
    return rate === null || rate === undefined ? "—" : fmt(rate * 100, rate > 0 && rate < 0.1 ? 2 : 1) + "%";
  }
  function setValue(id, value, text) {
    const element = $(id);
    element.textContent = text;
    element.dataset.value = value === null || value === undefined ? "" : String(value);
  }
  function ago(seconds) {
    if (seconds < 1) return "now";
    if (seconds < 90) return Math.round(seconds) + " s ago";
    return Math.round(seconds / 60) + " min ago";
  }
  function age(seconds) {
    if (seconds < 120) return Math.round(seconds) + " s";
    if (seconds < 7200) return Math.round(seconds / 60) + " min";
    if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
    return (seconds / 86400).toFixed(1) + " d";
  }

  // Charts ------------------------------------------------------------------------------------------------
  function color(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }
  function niceCeiling(value) {
    if (value <= 0) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    const step = [1, 2, 2.5, 5, 10].find((m) => m * power >= value);
    return step * power;
  }
  function span(ms) {
    return ms >= 90000 ? Math.round(ms / 60000) + " min" : Math.round(ms / 1000) + " s";
  }
  // lines: [{points: [[ms, value|null], ...], color: "--c1"}]; unit: after the top label; floor: the
  // least the vertical axis shows.
  function draw(canvas, lines, now, unit, floor = 0) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    let first = now;
    for (const line of lines) if (line.points.length) first = Math.min(first, line.points[0][0]);
    const shown = Math.min(Math.max(now - first, MIN_SPAN_MS), KEEP_MS);
    const start = now - shown;
    let top = floor;
    for (const line of lines) for (const [, v] of line.points) if (v !== null && v > top) top = v;
    top = top > floor ? niceCeiling(top) : floor || 1; // the pool's chart tops at its size
    const x = (t) => ((t - start) / shown) * (width - 1);
    const y = (v) => height - 14 - (v / top) * (height - 26);
    context.font = "11px system-ui, sans-serif";
    context.lineWidth = 1;
    for (const fraction of [0, 0.5, 1]) {
      context.strokeStyle = color("--grid");
      context.beginPath();
      context.moveTo(0, Math.round(y(top * fraction)) + 0.5);
      context.lineTo(width, Math.round(y(top * fraction)) + 0.5);
      context.stroke();
    }
    context.fillStyle = color("--muted");
    context.fillText(fmt(top, top < 10 ? 1 : 0) + (unit ? " " + unit : ""), 2, 10);
    context.fillText(span(shown) + " ago", 2, height - 2);
    context.textAlign = "right";
    context.fillText("now", width - 2, height - 2);
    context.textAlign = "left";
    let drawn = 0;
    context.lineWidth = 1.75;
    context.lineJoin = "round";
    for (const line of lines) {
      context.strokeStyle = color(line.color);
      context.beginPath();
      let open = false;
      for (const [t, v] of line.points) {
        if (v === null || t < start) {
          open = false;
          continue;
        }
        if (open) context.lineTo(x(t), y(v));
        else context.moveTo(x(t), y(v));
        open = true;
        drawn += 1;
      }
      context.stroke();
    }
    canvas.dataset.points = String(drawn);
  }

  function remember(now, doc) {
    const pool = doc.pool;
    const values = {
      rps: doc.requests_per_second,
      p50: doc.latency_ms.p50,
      p95: doc.latency_ms.p95,
      p99: doc.latency_ms.p99,
      err5: doc.error_rate === null ? null : doc.error_rate * 100,
      err4: doc.client_error_rate === null ? null : doc.client_error_rate * 100,
      cpu: doc.worker_totals.cpu_percent,
      pool: pool ? pool.in_use : null,
    };
    for (const [name, value] of Object.entries(values)) {
      const points = history[name];
      points.push([now, value]);
      while (points.length && points[0][0] < now - KEEP_MS) points.shift();
    }
  }

  function drawCharts() {
    if (!last) return;
    const now = last.at * 1000;
    draw($("chart-rps"), [{ points: history.rps, color: "--c1" }], now, "req/s");
    const latency = [
      { points: history.p50, color: "--c1" },
      { points: history.p95, color: "--c2" },
      { points: history.p99, color: "--c3" },
    ];
    draw($("chart-latency"), latency, now, "ms");
    const errors = [
      { points: history.err4, color: "--c2" },
      { points: history.err5, color: "--c4" },
    ];
    draw($("chart-errors"), errors, now, "%", 1);
    draw($("chart-cpu"), [{ points: history.cpu, color: "--c1" }], now, "% CPU", 10);
    const size = last.pool ? last.pool.size : 1;
    draw($("chart-pool"), [{ points: history.pool, color: "--c1" }], now, "in use", size);
  }

  // Cards and tables --------------------------------------------------------------------------------------
  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }
  function fill(tableId, items, columns, empty) {
    const body = $(tableId).tBodies[0];
    body.replaceChildren();
    if (!items.length) {
      const td = cell(body.insertRow(), empty, "empty");
      td.colSpan = columns;
    }
    return body;
  }

  function render(doc) {
    last = doc;
    const service = doc.service;
    $("service").textContent = `${service.name} ${service.version} · ${service.environment}`;
    document.title = `${service.name} · lastro dashboard`;
    setValue("rps", doc.requests_per_second, fmt(doc.requests_per_second, doc.requests_per_second < 10 ? 1 : 0));
    setValue("total-requests", doc.totals.requests, fmt(doc.totals.requests));
    for (const name of ["p50", "p95", "p99"]) {
      const value = doc.latency_ms[name];
      setValue(name, value, fmt(value, value !== null && value < 10 ? 1 : 0));
    }
    setValue("window", doc.window_seconds, fmt(doc.window_seconds, doc.window_seconds < 10 ? 1 : 0));
    setValue("error-rate", doc.error_rate, percent(doc.error_rate));
    setValue("client-error-rate", doc.client_error_rate, percent(doc.client_error_rate));
    const counts = Object.entries(doc.status_counts).filter(([kind, n]) => n || kind === "5xx");
    const described = counts.map(([kind, n]) => `${kind} ${fmt(n)}`).join(" · ");
    $("status-counts").textContent = described || "—";
    const totals = doc.worker_totals;
    setValue("worker-count", totals.workers, fmt(totals.workers));
    setValue("cpu-total", totals.cpu_percent, fmt(totals.cpu_percent, 1));
    setValue("rss-total", totals.rss_mb, fmt(totals.rss_mb, 0));
    const pool = doc.pool;
    setValue("pool-in-use", pool ? pool.in_use : null, pool ? fmt(pool.in_use) : "—");
    setValue("pool-size", pool ? pool.size : null, pool ? fmt(pool.size) : "—");
    const share = pool ? pool.in_use / pool.size : 0;
    $("pool-meter").style.width = `${Math.min(share, 1) * 100}%`;
    $("pool-meter").className = share >= 0.9 ? "high" : "";

    const slowest = fill("slowest", doc.slowest, 7, "no request in the last 5 minutes");
    for (const request of doc.slowest) {
      const row = slowest.insertRow();
      cell(row, request.method);
      cell(row, request.route);
      cell(row, String(request.status), "n " + (request.status >= 500 ? "s5" : request.status >= 400 ? "s4" : ""));
      cell(row, fmt(request.duration_ms, request.duration_ms < 10 ? 1 : 0), "n");
      cell(row, ago(doc.at - request.at)).title = new Date(request.at * 1000).toISOString();
      cell(row, request.request_id || "—", "id");
      cell(row, String(request.pid), "n");
    }
    const workers = fill("workers", doc.workers, 5, "no worker has reported yet");
    for (const worker of doc.workers) {
      const row = workers.insertRow();
      row.dataset.pid = String(worker.pid);
      cell(row, String(worker.pid), "n");
      cell(row, fmt(worker.rss_mb, 1), "n");
      cell(row, fmt(worker.cpu_percent, 1), "n");
      cell(row, fmt(worker.requests), "n");
      cell(row, age(worker.age_seconds), "n");
    }
    const jobs = fill("jobs", doc.jobs, 4, "no background job");
    for (const job of doc.jobs) {
      const row = jobs.insertRow();
      cell(row, job.name);
      cell(row, fmt(job.failures), "n");
      cell(row, fmt(job.consecutive_failures), "n");
      const badge = document.createElement("span");
      badge.className = job.degraded ? "badge bad" : "badge";
      badge.textContent = job.degraded ? "degraded" : "ok";
      row.insertCell().append(badge);
    }
    drawCharts();
  }

  // Polling and the token ---------------------------------------------------------------------------------
  function status(state, text) {
    $("status").dataset.state = state;
    $("status-text").textContent = text;
  }
  function problem(text) {
    $("problem").hidden = !text;
    $("problem").textContent = text || "";
  }
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch("dashboard.json", { headers, cache: "no-store" });
    } catch {
      status("offline", "service unreachable, retrying");
      return schedule();
    }
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      status("refused", "token needed");
      $("login-reason").textContent = token ? "The service refused that token: try again." : askingWhy;
      $("login").hidden = false;
      $("board").hidden = true;
      $("token").focus();
      return; // until a token is given
    }
    if (!response.ok) {
      let detail = `${response.status} ${response.statusText}`;
      try {
        detail = (await response.json()).detail || detail;
      } catch {}
      status("refused", `answered ${response.status}`);
      problem(detail);
      return schedule();
    }
    const doc = await response.json();
    problem("");
    $("login").hidden = true;
    $("board").hidden = false;
    remember(doc.at * 1000, doc);
    render(doc);
    status("live", `live · ${new Date(doc.at * 1000).toLocaleTimeString()}`);
    schedule();
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    poll();
  });
  window.addEventListener("resize", drawCharts);
  poll();
})();
