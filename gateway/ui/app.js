// trainhouse dashboard: views over the gateway's REST API, and the one thing it changes: an
// agent's aliases and tags (the routes the CLI and REST clients use; the token's scopes decide).
// No build step, no dependencies, no network access beyond this origin. Every call sends the token the page asked
// for once (kept in sessionStorage) as a bearer header; a "#...?token=" fragment also sets it
// (for scripted runs) and is removed from the address bar at once.
"use strict";

const TOKEN_KEY = "trainhouse.token";
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const POLL_MS = 3000;
const COLORS = { loss: "#2f6fed", validation_loss: "#e8590c", accuracy: "#1a7f4b", validation_accuracy: "#9c36b5" };
// One colour per run when runs are overlaid (the HTML report's palette, services/evaluation/charts.py).
const RUN_COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];
const COMPARE_MAX = 10; // CompareRuns takes 2..10 runs

let current = null; // AbortController of the view on screen: leaving a view stops its polls and streams

// ---- small helpers ------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const enc = encodeURIComponent;
const fmtTime = (v) => (v ? new Date(typeof v === "number" ? v : Date.parse(v)).toLocaleString() : "—");
const fmtNum = (v, d = 4) => (typeof v === "number" && isFinite(v) ? Number(v.toFixed(d)).toString() : "—");
const badge = (status) => h("span", { class: `badge ${status || ""}`, "data-status": status }, status || "—");
const link = (href, text) => h("a", { href }, text);

function token() { return sessionStorage.getItem(TOKEN_KEY); }

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function messageOf(body, status) {
  if (body && body.error && typeof body.error === "object") return body.error.message || body.error.code;
  if (body && typeof body.error === "string") return body.error;
  if (body && body.message) return body.message;
  return `HTTP ${status}`;
}

// The last answer to each GET, by path: the next poll names its ETag (If-None-Match), and an
// unchanged answer comes back as 304 with no body, which does not spend the token's hourly request
// budget (gateway/conditional.py). An open tab polls every few seconds: ~1,200 requests an hour.
const lastAnswers = new Map();
const MAX_REMEMBERED = 64;

async function api(path, signal) {
  const known = lastAnswers.get(path);
  const headers = { Authorization: `Bearer ${token()}`, Accept: "application/json" };
  if (known) headers["If-None-Match"] = known.etag;
  const res = await fetch(path, { headers, cache: "no-store", signal });
  if (res.status === 304 && known) return known.body;
  let body = null;
  try { body = await res.json(); } catch (_) { /* not JSON */ }
  if (res.status === 401) { askForToken("The token was refused (401). Enter another one."); throw new ApiError(401, "unauthorized"); }
  if (!res.ok) throw new ApiError(res.status, messageOf(body, res.status));
  const etag = res.headers.get("ETag");
  lastAnswers.delete(path);
  if (etag) {
    lastAnswers.set(path, { etag, body });
    if (lastAnswers.size > MAX_REMEMBERED) lastAnswers.delete(lastAnswers.keys().next().value);
  }
  return body;
}

// A change (PUT/PATCH/DELETE with a JSON body), or a computation (POST); its error message is shown
// where it was asked for.
async function send(method, path, body, signal) {
  const res = await fetch(path, {
    method, headers: { Authorization: `Bearer ${token()}`, Accept: "application/json", "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store", signal,
  });
  let out = null;
  try { out = await res.json(); } catch (_) { /* not JSON */ }
  if (res.status === 401) { askForToken("The token was refused (401). Enter another one."); throw new ApiError(401, "unauthorized"); }
  if (!res.ok) throw new ApiError(res.status, messageOf(out, res.status));
  return out;
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

// Server-Sent Events over fetch (EventSource cannot send an Authorization header).
async function streamEvents(jobId, after, onEvent, signal) {
  const res = await fetch(`/api/v1/training/train-agent/${enc(jobId)}/events?afterSequence=${after}`, {
    headers: { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" }, signal,
  });
  if (!res.ok) throw new ApiError(res.status, `events: HTTP ${res.status}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message"; let data = null; let id = null;
      for (const line of frame.split("\n")) {
        if (line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const key = i < 0 ? line : line.slice(0, i);
        const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (key === "event") event = val; else if (key === "data") data = val; else if (key === "id") id = Number(val);
      }
      if (data !== null) onEvent(event, JSON.parse(data), id);
    }
  }
}

// ---- charts -------------------------------------------------------------------------------

function niceTicks(lo, hi, count) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((st) => st >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

// The plotting frame two charts share: the y range padded by 5 % (a flat one widened), pixel
// scales for x and y, and the y grid with its labels drawn into `svg`.
function plotFrame(svg, box, x0, x1, y0, y1) {
  const { W, H, L, R, T, B } = box;
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
  const px = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
  for (const t of niceTicks(y0, y1, 5)) {
    if (t < y0 || t > y1) continue;
    svg.append(s("line", { class: "grid", x1: L, x2: W - R, y1: py(t), y2: py(t) }));
    svg.append(s("text", { x: L - 6, y: py(t) + 4, "text-anchor": "end" }, fmtNum(t, 3)));
  }
  return { px, py };
}

// One line chart as inline SVG: series = [{name, points: [[x, y], ...], color?}] (colour by
// metric name unless given). The legend wraps onto more rows when the names do not fit one.
function lineChart(key, title, series, xLabel) {
  const W = 560, L = 52, R = 16, B = 44;
  const legend = [];
  let lx = L + 8, ly = 34;
  for (const se of series) {
    if (!se.points.length) continue;
    const width = 18 + se.name.length * 6.5;
    if (lx + width > W - R && lx > L + 8) { lx = L + 8; ly += 15; }
    legend.push({ se, x: lx, y: ly });
    lx += width;
  }
  const T = ly + 12, H = 264 + T;
  const all = series.flatMap((se) => se.points);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, "data-chart": key, role: "img", "aria-label": title });
  svg.append(s("text", { class: "title", x: L, y: 18 }, title));
  if (!all.length) {
    svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no points yet"));
    return svg;
  }
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x1 === x0) { x1 = x0 + 1; }
  const { px, py } = plotFrame(svg, { W, H, L, R, T, B }, x0, x1, Math.min(...ys), Math.max(...ys));
  for (const t of niceTicks(x0, x1, 6)) {
    if (t < x0 || t > x1) continue;
    svg.append(s("text", { x: px(t), y: H - B + 16, "text-anchor": "middle" }, fmtNum(t, 2)));
  }
  svg.append(s("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
  svg.append(s("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  svg.append(s("text", { x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle" }, xLabel));
  for (const { se, x: kx, y: ky } of legend) {
    const color = se.color || COLORS[se.name] || "#555";
    const d = se.points.map((p, i) => `${i ? "L" : "M"}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(" ");
    svg.append(s("path", { class: "series", d, stroke: color, "data-series": se.name, "data-points": se.points.length }));
    if (se.points.length === 1) {
      const [x, y] = se.points[0];
      svg.append(s("circle", { cx: px(x), cy: py(y), r: 3, fill: color }));
    }
    svg.append(s("rect", { x: kx, y: ky - 5, width: 10, height: 3, fill: color }));
    svg.append(s("text", { x: kx + 14, y: ky }, se.name));
  }
  return svg;
}

// ---- views --------------------------------------------------------------------------------

const main = () => document.getElementById("main");

function show(...nodes) { main().replaceChildren(...nodes); }

function failure(err) {
  if (err.name === "AbortError" || err.status === 401) return;
  show(h("div", { class: "card error", "data-error": err.status || "network" }, `Could not load: ${err.message}`));
  document.body.dataset.state = "error";
}

const MAX_JOBS = 200;

async function jobsView(signal) {
  const table = h("table", { "data-view": "jobs" });
  const note = h("p", { class: "muted" }, `Refreshed every ${POLL_MS / 1000} s.`);
  const problem = h("p", { class: "error", hidden: true });
  // Completed jobs ticked here are compared side by side (#/compare/a,b,...); the ticks outlive refreshes.
  const selected = new Set();
  const compare = h("button", { type: "button", "data-compare": "", disabled: true,
    onclick: () => { location.hash = `#/compare/${[...selected].map(enc).join(",")}`; } }, "Compare selected");
  const picked = () => {
    compare.disabled = selected.size < 2 || selected.size > COMPARE_MAX;
    compare.textContent = `Compare selected (${selected.size})`;
  };
  const tick = (j) => (j.status === "completed"
    ? h("input", { type: "checkbox", "data-select": j.id, checked: selected.has(j.id), "aria-label": `select ${j.id}`,
      onchange: (e) => { if (e.target.checked) selected.add(j.id); else selected.delete(j.id); picked(); } })
    : null);
  show(h("h1", {}, "Training jobs"), note, problem,
    h("p", { class: "toolbar" }, compare, h("span", { class: "muted" }, ` Tick 2 to ${COMPARE_MAX} completed jobs.`)),
    table);
  while (!signal.aborted) {
    let jobs;
    try {
      ({ jobs } = await api("/api/training/jobs", signal));
    } catch (err) {
      if (signal.aborted || err.status === 401) return;
      // Keep the last list on screen and try again: a service may be restarting.
      problem.textContent = `Refresh failed: ${err.message}`;
      problem.hidden = false;
      await sleep(POLL_MS, signal);
      continue;
    }
    problem.hidden = true;
    note.textContent = `${jobs.length} jobs${jobs.length > MAX_JOBS ? `, newest ${MAX_JOBS} shown` : ""}; ` +
      `refreshed every ${POLL_MS / 1000} s.`;
    table.replaceChildren(
      h("tr", {}, ["", "Job", "Agent", "Status", "Created", "Completed", "Model version"].map((t) => h("th", {}, t))),
      ...jobs.slice(0, MAX_JOBS).map((j) => h("tr", { "data-job": j.id },
        h("td", {}, tick(j)),
        h("td", {}, link(`#/job/${enc(j.id)}`, j.id)),
        h("td", {}, link(`#/agent/${enc(j.model)}`, j.model)),
        h("td", {}, badge(j.status)),
        h("td", {}, fmtTime(j.createdAt)),
        h("td", {}, fmtTime(j.completedAt)),
        h("td", {}, j.modelId ? j.modelId.split("@").pop() : "—"))),
    );
    if (!jobs.length) table.append(h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No jobs yet.")));
    document.body.dataset.state = "ready";
    await sleep(POLL_MS, signal);
  }
}

// The metric names the job and compare pages chart, and how many points of each they ask for:
// the server samples a long history evenly (first and last point kept), so a 1M-point job's
// charts come from one request of at most 4 x 1000 points instead of ~100 pages of 10k.
const CHARTED_METRICS = ["loss", "validation_loss", "accuracy", "validation_accuracy"];
const CHART_POINTS = 1000;

async function metricHistory(jobId, signal) {
  const q = `names=${CHARTED_METRICS.map(enc).join(",")}&maxPointsPerMetric=${CHART_POINTS}`;
  const { data } = await api(`/api/v1/training/train-agent/${enc(jobId)}/metrics?${q}`, signal);
  return data.points;
}

// Epoch-level points by metric name: [[epoch, value], ...] (the last value per epoch among the
// points fetched: with a sampled history of more than CHART_POINTS points, the last sampled one).
function seriesOf(points, names) {
  const by = Object.fromEntries(names.map((n) => [n, new Map()]));
  for (const p of points) if (p.name in by && p.value !== null && p.epoch > 0) by[p.name].set(p.epoch, p.value);
  return names.map((name) => ({ name, points: [...by[name].entries()].sort((a, b) => a[0] - b[0]) }));
}

function jobCard(job) {
  const m = job.metrics || {};
  const items = [
    ["Status", badge(job.status)], ["Agent", link(`#/agent/${enc(job.agentId)}`, job.agentId)],
    ["Epoch", `${job.currentEpoch} / ${job.totalEpochs}`], ["Progress", `${Math.round(job.progress * 100)}%`],
    ["Training loss", fmtNum(m.trainingLoss)], ["Validation loss", fmtNum(m.validationLoss)],
    ["Accuracy", fmtNum(m.accuracy)], ["Validation accuracy", fmtNum(m.validationAccuracy)],
    ["Model version", job.modelVersion || "—"], ["Started", fmtTime(job.startTime)],
    ["Ended", fmtTime(job.endTime)], ["Examples", `${job.trainExamples ?? 0} train / ${job.validationExamples ?? 0} held out`],
  ];
  return h("div", { class: "card", "data-job-status": job.status },
    h("dl", { class: "grid kv" }, items.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
    job.error ? h("p", { class: "error" }, `${job.error.code}: ${job.error.message}`) : null,
    progressBar(job.progress));
}

function progressBar(share) {
  const bar = h("div", { "data-progress": share });
  bar.style.width = `${Math.round(share * 100)}%`; // a property, not an attribute: allowed by the CSP
  return h("div", { class: "progress" }, bar);
}

async function jobView(signal, jobId) {
  const head = h("div"), charts = h("div", { class: "charts" });
  show(h("h1", {}, `Job ${jobId}`), head, h("h2", {}, "Training curves"), charts);
  let job = (await api(`/api/v1/training/train-agent/${enc(jobId)}`, signal)).data;
  const points = await metricHistory(jobId, signal);
  const draw = () => {
    head.replaceChildren(jobCard(job));
    charts.replaceChildren(
      lineChart("loss", "Loss", seriesOf(points, ["loss", "validation_loss"]), "epoch"),
      lineChart("accuracy", "Accuracy", seriesOf(points, ["accuracy", "validation_accuracy"]), "epoch"));
  };
  draw();
  document.body.dataset.state = "ready";
  if (TERMINAL.has(job.status)) return;
  // Live: epoch events extend the curves, status events move the badge; resume after drops.
  let last = 0;
  while (!signal.aborted && !TERMINAL.has(job.status)) {
    try {
      await streamEvents(jobId, last, (event, data, id) => {
        if (id) last = id;
        if (event === "epoch") {
          for (const [name, value] of Object.entries(data.metrics || {})) points.push({ name, value, epoch: data.epoch });
          job = { ...job, currentEpoch: data.epoch, totalEpochs: data.totalEpochs,
            progress: data.totalSteps ? data.step / data.totalSteps : job.progress };
          draw();
        } else if (event === "status") {
          job = { ...job, status: data.status };
          draw();
        }
      }, signal);
    } catch (err) {
      if (signal.aborted || err.status === 401) return;
    }
    if (!signal.aborted) {
      job = (await api(`/api/v1/training/train-agent/${enc(jobId)}`, signal)).data;
      draw();
      if (!TERMINAL.has(job.status)) await sleep(2000, signal);
    }
  }
}

// Runs overlaid (one chart per training metric, one colour per run) and every pair's tests with
// Holm-adjusted p-values, from compareTrainingRuns (scope training:evaluate) and each run's metrics.
const COMPARED_CURVES = [["loss", "Training loss"], ["validation_loss", "Validation loss"],
  ["accuracy", "Training accuracy"], ["validation_accuracy", "Validation accuracy"]];

async function compareView(signal, ids) {
  show(h("h1", {}, `Comparing ${ids.length} runs`), h("p", { class: "muted" }, "Evaluating the runs…"));
  const [reply, ...histories] = await Promise.all([
    send("POST", "/api/v1/functions/compareTrainingRuns", { run_ids: ids, statistical_tests: true }, signal),
    ...ids.map((id) => metricHistory(id, signal))]);
  const c = reply.data;
  const color = Object.fromEntries(ids.map((id, i) => [id, RUN_COLORS[i % RUN_COLORS.length]]));
  const charts = COMPARED_CURVES.map(([name, title]) => lineChart(name, title,
    ids.map((id, i) => ({ name: id, color: color[id], points: seriesOf(histories[i], [name])[0].points })), "epoch"));
  const ranking = c.overall_ranking.map((r) => h("tr", { "data-rank": r.job_id },
    h("td", {}, r.rank), h("td", {}, h("span", { class: "swatch", "data-color": color[r.job_id] }), link(`#/job/${enc(r.job_id)}`, r.job_id)),
    h("td", {}, fmtNum(r.score, 3)),
    ...["accuracy", "final_performance", "validation_loss"].map((m) =>
      h("td", {}, fmtNum((c.runs.find((x) => x.job_id === r.job_id) || {}).results?.[m])))));
  const sa = c.statistical_analysis;
  const pairs = (sa ? sa.pairwise : []).map((p) => h("tr", { "data-pair": `${p.metric}:${p.job_a}:${p.job_b}`,
    "data-significant": p.significant ? "yes" : "no" },
  h("td", {}, p.metric), h("td", {}, p.job_a), h("td", {}, p.job_b), h("td", {}, p.test),
  h("td", {}, fmtNum(p.difference)), h("td", {}, fmtNum(p.p_value)),
  h("td", { "data-adjusted": "" }, fmtNum(p.adjusted_p_value)), h("td", {}, p.significant ? "yes" : "no")));
  show(
    h("h1", {}, `Comparing ${ids.length} runs`),
    h("p", { class: "muted" }, `Evaluated on ${c.evaluation_set === "shared" ? `${c.shared_examples} shared held-out examples (paired tests)`
      : "each run's own held-out split (unpaired tests)"}.`),
    h("div", { class: "charts", "data-view": "compare-charts" }, charts),
    h("h2", {}, "Ranking"),
    h("table", { "data-view": "ranking" },
      h("tr", {}, ["Rank", "Job", "Score", "Accuracy", "F1", "Validation loss"].map((t) => h("th", {}, t))), ...ranking),
    h("h2", {}, "Pairwise tests"),
    h("p", { class: "muted" }, sa ? `Every pair on each metric; p-values ${sa.correction}-adjusted across the pairs, ` +
      `significant when the adjusted p < ${sa.alpha}.` : "No tests."),
    h("table", { "data-view": "pairwise" },
      h("tr", {}, ["Metric", "Job A", "Job B", "Test", "A − B", "p", "p (Holm)", "Significant"].map((t) => h("th", {}, t))),
      ...pairs));
  for (const sw of document.querySelectorAll("[data-color]")) sw.style.background = sw.dataset.color; // CSP: no inline style attributes
  document.body.dataset.state = "ready";
}

async function agentsView(signal) {
  const { data } = await api("/api/v1/agents?limit=100", signal);
  const rows = data.agents.map((a) => h("tr", { "data-agent": a.agentId },
    h("td", {}, link(`#/agent/${enc(a.agentId)}`, a.agentId)), h("td", { class: "wrap" }, a.name || ""),
    h("td", {}, a.activeVersionId || "—"), h("td", {}, a.versionCount), h("td", {}, fmtTime(a.updatedAt))));
  show(h("h1", {}, "Agents"), h("p", { class: "muted" }, `${data.pagination.total} agents`),
    h("table", { "data-view": "agents" },
      h("tr", {}, ["Agent", "Name", "Active version", "Versions", "Updated"].map((t) => h("th", {}, t))), ...rows));
  document.body.dataset.state = "ready";
}

async function agentView(signal, agentId) {
  const base = `/api/v1/training/models/${enc(agentId)}`;
  const [agent, versions, deployments, jobs, aliases] = await Promise.all([
    api(`/api/v1/agents/${enc(agentId)}`, signal), api(`${base}/versions?limit=100`, signal),
    api(`${base}/deployments?limit=20`, signal), api("/api/training/jobs", signal), api(`${base}/aliases`, signal)]);
  const a = agent.data;
  const versionRows = versions.data.versions.map((v) => h("tr", { "data-version": v.versionId },
    h("td", {}, v.versionId), h("td", { "data-serving": v.serving || "" }, badge(v.serving)),
    h("td", { class: "muted" }, v.servingReason || "—"), h("td", {}, (v.aliases || []).join(", ") || "—"),
    h("td", {}, badge(v.status)), h("td", {}, fmtTime(v.trainedAt)),
    h("td", {}, fmtNum(v.metrics.accuracy ?? v.metrics.validation_accuracy)), h("td", {}, v.method || "—"),
    h("td", {}, v.size), h("td", {}, v.jobId ? link(`#/job/${enc(v.jobId)}`, v.jobId) : "—"),
    h("td", { "data-tags": v.versionId }, Object.entries(v.tags || {}).map(([k, t]) => `${k}=${t}`).join(", ") || "—")));
  const deploymentRows = deployments.data.deployments.map((d) => h("tr", { "data-deployment": d.deploymentId },
    h("td", {}, d.deploymentId), h("td", {}, d.versionId), h("td", {}, d.environment), h("td", {}, badge(d.status)),
    h("td", {}, d.strategy), h("td", {}, `${fmtNum(d.currentPercentage, 1)}%`), h("td", {}, fmtTime(d.createdAt))));
  const jobRows = jobs.jobs.filter((j) => j.model === agentId).map((j) => h("tr", {},
    h("td", {}, link(`#/job/${enc(j.id)}`, j.id)), h("td", {}, badge(j.status)), h("td", {}, fmtTime(j.createdAt))));
  const empty = (n, text) => h("tr", {}, h("td", { colspan: n, class: "muted" }, text));
  show(
    h("h1", {}, `Agent ${a.agentId}`),
    h("div", { class: "card" }, h("dl", { class: "grid kv" },
      [["Name", a.name || "—"], ["Serving in production", a.activeVersionId || "nothing"],
        ["First version serves", a.serveFirstVersion === false ? "no" : "yes"], ["Versions", a.versionCount],
        ["Created", fmtTime(a.createdAt)]].map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
      a.description ? h("p", { class: "muted" }, a.description) : null),
    h("h2", {}, "Versions"),
    h("table", { "data-view": "versions" },
      h("tr", {}, ["Version", "Serving", "Why", "Aliases", "Status", "Trained", "Accuracy", "Method", "Size", "Job",
        "Tags"].map((t) => h("th", {}, t))),
      ...(versionRows.length ? versionRows : [empty(11, "No versions yet.")])),
    aliasEditor(base, aliases.data.aliases, versions.data.versions),
    h("h2", {}, "Deployments"),
    h("table", { "data-view": "deployments" },
      h("tr", {}, ["Deployment", "Version", "Environment", "Status", "Strategy", "Traffic", "Created"].map((t) => h("th", {}, t))),
      ...(deploymentRows.length ? deploymentRows : [empty(7, "No deployments.")])),
    h("h2", {}, "Jobs"),
    h("table", {}, h("tr", {}, ["Job", "Status", "Created"].map((t) => h("th", {}, t))),
      ...(jobRows.length ? jobRows : [empty(3, "No jobs.")])));
  document.body.dataset.state = "ready";
}

// Aliases (set, move, delete) and tags of the agent's versions; every change reloads the view.
function aliasEditor(base, aliases, versions) {
  const status = h("p", { class: "error", "data-edit-status": "", hidden: true });
  const fail = (e) => { status.textContent = e.message; status.hidden = false; };
  const reload = () => route();
  const versionSelect = (name) => h("select", { name }, versions.map((v) => h("option", { value: v.versionId }, v.versionId)));
  const rows = aliases.map((a) => h("tr", { "data-alias": a.alias },
    h("td", {}, a.alias), h("td", { "data-alias-version": a.alias }, a.versionId), h("td", {}, fmtTime(a.updatedAt)),
    h("td", {}, h("button", { type: "button", "data-delete-alias": a.alias,
      onclick: () => send("DELETE", `${base}/aliases/${enc(a.alias)}`).then(reload, fail) }, "Delete"))));
  const aliasForm = h("form", { "data-form": "alias" },
    h("input", { name: "alias", placeholder: "alias, e.g. champion", required: true }), versionSelect("version"),
    h("button", { type: "submit" }, "Set alias"));
  aliasForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = aliasForm.elements;
    send("PUT", `${base}/aliases/${enc(f.alias.value.trim())}`, { versionId: f.version.value }).then(reload, fail);
  });
  const tagForm = h("form", { "data-form": "tag" }, versionSelect("version"),
    h("input", { name: "set", placeholder: "key=value to set" }), h("input", { name: "remove", placeholder: "key to remove" }),
    h("button", { type: "submit" }, "Update tags"));
  tagForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = tagForm.elements;
    const body = { set: {}, remove: [] };
    const pair = f.set.value.trim();
    if (pair) {
      const i = pair.indexOf("=");
      if (i < 1) { fail(new Error("tags are set as key=value")); return; }
      body.set[pair.slice(0, i)] = pair.slice(i + 1);
    }
    if (f.remove.value.trim()) body.remove.push(f.remove.value.trim());
    send("PATCH", `${base}/versions/${enc(f.version.value)}/tags`, body).then(reload, fail);
  });
  return h("div", {},
    h("h2", {}, "Aliases"),
    h("table", { "data-view": "aliases" }, h("tr", {}, ["Alias", "Version", "Updated", ""].map((t) => h("th", {}, t))),
      ...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No aliases."))])),
    aliasForm, tagForm, status);
}

// ---- sweeps ---------------------------------------------------------------------------------

async function sweepsView(signal) {
  const { data } = await api("/api/v1/sweeps?limit=100", signal);
  const rows = data.sweeps.map((w) => h("tr", { "data-sweep": w.sweepId },
    h("td", {}, link(`#/sweep/${enc(w.sweepId)}`, w.sweepId)), h("td", {}, link(`#/agent/${enc(w.agentId)}`, w.agentId)),
    h("td", {}, badge(w.state)), h("td", {}, `${w.trials.length} / ${w.maxTrials}`),
    h("td", {}, `${w.objective.metric} (${w.objective.direction})`),
    h("td", {}, w.bestTrial ? fmtNum(w.bestTrial.objective) : "—"), h("td", {}, fmtTime(w.createdAt))));
  show(h("h1", {}, "Sweeps"), h("p", { class: "muted" }, `${data.sweeps.length} sweeps`),
    h("table", { "data-view": "sweeps" },
      h("tr", {}, ["Sweep", "Agent", "State", "Trials", "Objective", "Best", "Created"].map((t) => h("th", {}, t))),
      ...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No sweeps yet."))])));
  document.body.dataset.state = "ready";
}

// One searched parameter of a sweep against its objective as an inline SVG scatter: x is the
// trial's value (log scale for a log range, one slot per value for choices), y the objective;
// one point per finished trial, hollow when the sweep stopped it early, the best trial filled and
// larger, so which region of the space pays off is visible at a glance.
function sweepScatter(w, param) {
  const W = 460, H = 260, L = 52, R = 16, T = 30, B = 44;
  const key = param.field;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, "data-scatter": key, role: "img",
    "aria-label": `${key} vs ${w.objective.metric}` });
  svg.append(s("text", { class: "title", x: L, y: 18 }, `${key} vs ${w.objective.metric}`));
  const done = w.trials.filter((t) => TERMINAL.has(t.state) && typeof t.objective === "number" && key in t.params);
  if (!done.length) {
    svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no finished trials yet"));
    return svg;
  }
  // x: a choice's slot (compared as JSON, choices may be lists), or the value itself (log10 on a log range).
  const choices = param.choices ? param.choices.map((c) => JSON.stringify(c)) : null;
  const log = !choices && param.range.log;
  const xOf = (v) => (choices ? choices.indexOf(JSON.stringify(v)) : log ? Math.log10(v) : v);
  let [x0, x1] = choices ? [-0.5, choices.length - 0.5]
    : log ? [Math.log10(param.range.low), Math.log10(param.range.high)] : [param.range.low, param.range.high];
  if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
  const ys = done.map((t) => t.objective);
  const { px, py } = plotFrame(svg, { W, H, L, R, T, B }, x0, x1, Math.min(...ys), Math.max(...ys));
  const xTicks = choices ? choices.map((c, i) => [i, c])
    : niceTicks(x0, x1, 5).filter((t) => t >= x0 && t <= x1).map((t) => [t, log ? fmtNum(10 ** t, 5) : fmtNum(t, 3)]);
  for (const [t, label] of xTicks) svg.append(s("text", { x: px(t), y: H - B + 16, "text-anchor": "middle" }, label));
  svg.append(s("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
  svg.append(s("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  svg.append(s("text", { x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle" }, log ? `${key} (log scale)` : key));
  const best = w.bestTrial ? w.bestTrial.number : null;
  for (const t of done) {
    const isBest = t.number === best;
    const color = isBest ? "#dc2626" : "#2563eb";
    svg.append(s("circle", { cx: px(xOf(t.params[key])).toFixed(1), cy: py(t.objective).toFixed(1), r: isBest ? 6 : 4,
      fill: t.stoppedEarly ? "none" : color, stroke: color, "stroke-width": 1.5, "data-trial": t.number,
      "data-value": JSON.stringify(t.params[key]), "data-stopped": t.stoppedEarly, "data-best": isBest },
    s("title", {}, `trial ${t.number}: ${key}=${JSON.stringify(t.params[key])}, ${w.objective.metric}=${fmtNum(t.objective)}`
      + (t.stoppedEarly ? " (stopped early)" : ""))));
  }
  return svg;
}

async function sweepView(signal, sweepId) {
  while (!signal.aborted) {
    const w = (await api(`/api/v1/sweeps/${enc(sweepId)}`, signal)).data;
    const best = w.bestTrial ? w.bestTrial.number : null;
    const trials = w.trials.map((t) => h("tr", { "data-trial": t.number, class: t.number === best ? "best" : "" },
      h("td", {}, t.number), h("td", {}, link(`#/job/${enc(t.jobId)}`, t.jobId)), h("td", {}, badge(t.state)),
      h("td", { class: "wrap" }, JSON.stringify(t.params)), h("td", {}, fmtNum(t.objective)), h("td", {}, t.epochs),
      h("td", { class: "wrap", "data-stopped": t.stoppedEarly }, t.stoppedEarly ? t.stopReason : "")));
    const events = w.events.slice(-30).map((e) => h("tr", {}, h("td", {}, fmtTime(e.time)), h("td", {}, e.kind),
      h("td", { class: "wrap" }, e.message)));
    show(h("h1", {}, `Sweep ${w.sweepId}`),
      h("div", { class: "card", "data-sweep-state": w.state },
        h("dl", { class: "grid kv" }, [["State", badge(w.state)], ["Agent", link(`#/agent/${enc(w.agentId)}`, w.agentId)],
          ["Objective", `${w.objective.metric} (${w.objective.direction})`], ["Sampler", w.sampler],
          ["Early stopping", w.earlyStopping.rule], ["Trials", `${w.trials.length} / ${w.maxTrials}`],
          ["Best", w.bestTrial ? `trial ${best}: ${fmtNum(w.bestTrial.objective)}` : "—"], ["Message", w.message || "—"]]
          .map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))))),
      h("h2", {}, "Trials"),
      h("table", { "data-view": "sweep-trials" },
        h("tr", {}, ["#", "Job", "State", "Params", "Objective", "Epochs", "Stopped early"].map((t) => h("th", {}, t))),
        ...trials),
      h("h2", {}, "Parameters vs objective"),
      h("p", { class: "muted" }, "Hollow: stopped early. Red: the best trial."),
      h("div", { class: "charts", "data-view": "sweep-scatters" }, w.space.map((p) => sweepScatter(w, p))),
      h("h2", {}, "Events"), h("table", { "data-view": "sweep-events" }, ...events));
    document.body.dataset.state = "ready";
    if (TERMINAL.has(w.state)) return;
    await sleep(POLL_MS, signal);
  }
}

// ---- routing and the token ----------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#/, "");
  const [path, query] = raw.split("?");
  return { parts: (path || "/jobs").split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query || "") };
}

function askForToken(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (current) current.abort();
  document.getElementById("signout").hidden = true;
  const form = document.getElementById("token-form").content.firstElementChild.cloneNode(true);
  const error = form.querySelector(".error");
  if (message) { error.textContent = message; error.hidden = false; }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, form.elements.token.value.trim());
    route();
  });
  show(form);
  document.body.dataset.state = "token";
}

function route() {
  const { parts, params } = parseHash();
  if (params.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, params.get("token"));
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", `${location.pathname}#/${parts.map(enc).join("/")}${rest ? `?${rest}` : ""}`);
  }
  if (!token()) { askForToken(); return; }
  document.getElementById("signout").hidden = false;
  if (current) current.abort();
  current = new AbortController();
  const { signal } = current;
  document.body.dataset.state = "loading";
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === parts[0] || (a.dataset.nav === "agents" && parts[0] === "agent")
    || (a.dataset.nav === "jobs" && parts[0] === "compare") || (a.dataset.nav === "sweeps" && parts[0] === "sweep"));
  show(h("p", { class: "muted" }, "Loading…"));
  const [view, id] = parts;
  const run = view === "job" && id ? jobView(signal, id)
    : view === "compare" && id ? compareView(signal, id.split(",").filter(Boolean))
    : view === "agents" ? agentsView(signal)
      : view === "sweeps" ? sweepsView(signal)
      : view === "sweep" && id ? sweepView(signal, id)
      : view === "agent" && id ? agentView(signal, id)
        : jobsView(signal);
  run.catch(failure);
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("signout").addEventListener("click", () => askForToken("Token forgotten."));
  route();
});
