// pimpi monitor: polls /api/state every 2 s and redraws; text only through textContent.
"use strict";
const TOKEN = new URLSearchParams(location.search).get("token") || "";
const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 2000;

function el(tag, attrs, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.setAttribute("class", value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function duration(seconds) {
  if (seconds == null || !isFinite(seconds)) return "–";
  seconds = Math.max(0, Math.round(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return h ? `${h} h ${String(m).padStart(2, "0")} min` : m ? `${m} min ${String(s).padStart(2, "0")} s` : `${s} s`;
}

function bytes(count) {
  if (count == null) return "–";
  const mib = count / 1048576;
  return mib >= 1024 ? `${(mib / 1024).toFixed(1)} GiB` : `${Math.round(mib)} MiB`;
}

function spark(series) {
  if (!series || series.length < 2) return el("span", { class: "muted", text: "–" });
  const temps = series.map(p => p[1]), lo = Math.min(...temps) - 1, hi = Math.max(...temps) + 1;
  const t0 = series[0][0], t1 = series[series.length - 1][0] || t0 + 1;
  const points = series.map(([t, c]) => `${((t - t0) / Math.max(1, t1 - t0) * 100).toFixed(1)},${(20 - (c - lo) / (hi - lo) * 20).toFixed(1)}`);
  const svg = el("svg:svg", { class: "spark", viewBox: "0 0 100 20", preserveAspectRatio: "none" },
    el("svg:polyline", { points: points.join(" "), fill: "none", stroke: "currentColor", "stroke-width": "1.5" }));
  svg.append(el("svg:title", { text: `${Math.min(...temps).toFixed(1)}–${Math.max(...temps).toFixed(1)} °C over ${duration(t1 - t0)}` }));
  return svg;
}

function nodeRow(row, now) {
  const f = row.facts || {};
  const thr = f.throttled;
  const throttling = thr == null ? "–" : (thr.flags && thr.flags.length ? thr.flags.join(", ") : "none");
  const reach = row.reachable === null ? "asking…" : row.reachable ? `${duration(now - row.checked)} ago` : `unreachable: ${row.error}`;
  const tr = el("tr", { class: row.reachable === false ? "down" : "" },
    el("td", { text: row.host }),
    el("td", { text: f.pi_model || f.cpu_model || f.machine || "–" }),
    el("td", { class: f.temp_c >= 80 ? "bad" : "", text: f.temp_c == null ? "–" : f.temp_c.toFixed(1) }),
    el("td", {}, spark(f.thermal_series)),
    el("td", { class: thr && thr.now ? "bad" : "", text: throttling }),
    el("td", { text: f.loadavg ? f.loadavg.join(" ") : "–" }),
    el("td", { text: bytes(f.mem_available) }),
    el("td", { text: f.pimpi ? f.pimpi + (f.pimpi_build ? ` (${String(f.pimpi_build).slice(0, 10)})` : "") : "–" }),
    el("td", { text: reach }));
  tr.dataset.host = row.host;
  return tr;
}

function gantt(job) {
  const events = job.events || [];
  if (!events.length) return null;
  const ranks = Math.max(job.ranks || 1, 1 + Math.max(...events.map(e => e[1])));
  const end = Math.max(...events.map(e => e[3]), job.elapsed || 0, 0.001);
  const rowH = 10, width = 600, height = ranks * rowH + 14;
  const svg = el("svg:svg", { class: "gantt", viewBox: `0 0 ${width + 40} ${height}`, role: "img" });
  svg.append(el("svg:title", { text: `who did what: ${events.length} attempts on ${ranks} ranks over ${duration(end)}` }));
  for (let r = 0; r < ranks; r++) {
    svg.append(el("svg:text", { x: 0, y: r * rowH + 8, "font-size": 8, fill: "currentColor", text: `r${r}` }));
  }
  for (const [key, rank, start, stop, ok] of events) {
    const rect = el("svg:rect", { x: (40 + start / end * width).toFixed(1), y: rank * rowH + 1,
      width: Math.max(0.8, (stop - start) / end * width).toFixed(1), height: rowH - 2,
      fill: ok ? "#3b82f6" : "#c62828" });
    rect.append(el("svg:title", { text: `${key} on rank ${rank}: ${duration(stop - start)}${ok ? "" : " (failed)"}` }));
    svg.append(rect);
  }
  svg.append(el("svg:text", { x: 40, y: height - 2, "font-size": 8, fill: "currentColor", text: `0 … ${duration(end)}` }));
  return svg;
}

function jobCard(job) {
  const card = el("div", { class: "job" });
  card.dataset.job = job.id;
  card.dataset.state = job.state;
  const total = job.total || 0, done = job.done || 0;
  const pct = total ? Math.min(100, done / total * 100) : (job.state === "done" ? 100 : 0);
  card.append(el("div", { class: "job-head" },
    el("span", { class: `state ${job.state}`, text: job.state }),
    el("strong", { text: `${job.kind || "job"} ${job.name || ""}` }),
    el("span", { class: "muted", text: job.folder === "." ? job.root : `${job.root}/${job.folder}` })));
  if (job.state === "unreadable") {
    card.append(el("p", { class: "bad", text: `status file unreadable: ${job.error}` }));
    return card;
  }
  const bar = el("div", { class: "progress" }, el("div"));
  bar.firstChild.style.width = `${pct.toFixed(1)}%`;
  card.append(bar);
  const facts = el("div", { class: "facts" },
    el("div", { class: "count", text: `${done} / ${total} done` + (job.skipped ? ` (+${job.skipped} from an earlier run)` : "")
      + (job.failed_count ? `, ${job.failed_count} failed` : "") }),
    el("div", { text: `rate ${job.rate ? job.rate.toFixed(2) + " /s" : "–"} · elapsed ${duration(job.elapsed)} · `
      + (job.state === "running" ? `ETA ${job.eta == null ? "–" : duration(job.eta)}` : `ended ${duration(job.age)} ago`) }),
    el("div", { class: "muted", text: `${job.ranks || "?"} ranks · rank 0 on ${job.host} · updated ${duration(job.age)} ago` }));
  if (job.error) facts.append(el("div", { class: "bad", text: job.error }));
  if (job.failed && job.failed.length) {
    const list = el("ul", { class: "failures" });
    for (const f of job.failed) list.append(el("li", { text: `${f.unit}: ${f.message}` }));
    facts.append(list);
  }
  const body = el("div", { class: "job-body" }, facts);
  if (job.thumbnail) {
    const q = new URLSearchParams({ job: job.id, name: job.latest });
    if (TOKEN) q.set("token", TOKEN);
    body.append(el("img", { class: "thumb", alt: `latest: ${job.latest}`, title: job.latest, src: `/api/image?${q}` }));
  }
  card.append(body);
  const chart = gantt(job);
  if (chart) card.append(chart);
  return card;
}

function draw(state) {
  document.getElementById("where").textContent = `on ${state.host} · pimpi ${state.version}`;
  const problems = document.getElementById("problems");
  problems.replaceChildren(...state.problems.map(p => el("li", { class: "bad", text: p })));
  document.getElementById("problems-box").hidden = !state.problems.length;
  const body = document.querySelector("#nodes tbody");
  body.replaceChildren(...state.nodes.map(n => nodeRow(n, state.now)));
  document.getElementById("node-count").textContent = `(${state.nodes.length})`;
  const jobs = document.getElementById("jobs");
  if (state.jobs.length) jobs.replaceChildren(...state.jobs.map(jobCard));
  document.getElementById("job-count").textContent = `(${state.jobs.length})`;
  const slurm = state.slurm;
  document.getElementById("slurm-box").hidden = !slurm;
  if (slurm) {
    const error = document.getElementById("slurm-error");
    error.hidden = !slurm.error;
    error.textContent = slurm.error || "";
    document.querySelector("#slurm tbody").replaceChildren(...slurm.jobs.map(j =>
      el("tr", {}, ...["id", "name", "user", "state", "time", "nodes", "where"].map(k => el("td", { text: j[k] || "" })))));
  }
  document.getElementById("footer").textContent = `watching ${state.folders.join(", ")} · page updated ${new Date().toLocaleTimeString()}`;
}

async function poll() {
  const conn = document.getElementById("conn");
  try {
    const response = await fetch("/api/state", { headers: TOKEN ? { "X-Pimpi-Token": TOKEN } : {}, cache: "no-store" });
    if (!response.ok) throw new Error(response.status === 403 ? "wrong or missing token" : `HTTP ${response.status}`);
    draw(await response.json());
    conn.textContent = "live";
    conn.className = "badge ok";
  } catch (err) {
    conn.textContent = `not updating: ${err.message}`;
    conn.className = "badge bad";
  }
  setTimeout(poll, POLL_MS);
}

poll();
