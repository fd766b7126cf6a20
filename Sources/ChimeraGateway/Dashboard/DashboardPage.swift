/// The dashboard: one self-contained page (no build step, nothing fetched from elsewhere), its
/// charts drawn on canvases by the few lines below. It follows `/v1/chimera/events` with fetch
/// rather than EventSource, because EventSource cannot send the bearer token; the token is asked
/// for once and kept in the tab's session storage.
enum DashboardPage {
    static func html(basePath: String) -> String {
        let quoted = "\"" + basePath.replacing("\\", with: "").replacing("\"", with: "") + "\""
        return template.replacing("__BASE_PATH__", with: quoted)
    }

    static let template = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="icon" href="data:,">
        <title>Chimera dashboard</title>
        <style>
        :root { --fg:#1d2330; --muted:#6b7385; --line:#dfe3ea; --bg:#f6f7f9; --card:#fff; --ok:#1a7f37; --bad:#c62828; --warn:#b26a00; --accent:#2f5bd3; }
        * { box-sizing: border-box; }
        body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
        header { display:flex; align-items:center; gap:16px; padding:10px 20px; background:#1d2330; color:#fff; }
        header h1 { font-size:18px; margin:0; font-weight:600; }
        header .spacer { flex:1; }
        header button { background:#39425a; color:#fff; border:0; border-radius:4px; padding:5px 10px; cursor:pointer; }
        .badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; background:#e8ebf1; color:var(--fg); }
        .badge.ok { background:#d8f0de; color:var(--ok); } .badge.bad { background:#fbdada; color:var(--bad); }
        .badge.warn { background:#fdebd0; color:var(--warn); }
        main { display:grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap:14px; padding:14px 20px; }
        section { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:10px 14px; min-width:0; }
        section.wide { grid-column: 1 / -1; }
        h2 { font-size:14px; margin:0 0 8px; color:var(--muted); font-weight:600; text-transform:uppercase; letter-spacing:.04em; }
        table { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
        th, td { text-align:left; padding:3px 6px; border-bottom:1px solid var(--line); white-space:nowrap; }
        th { color:var(--muted); font-weight:500; font-size:12px; }
        td.num, th.num { text-align:right; }
        tr.dead td { color:var(--muted); text-decoration: line-through; }
        .bar { background:#e8ebf1; border-radius:3px; height:8px; width:120px; display:inline-block; vertical-align:middle; }
        .bar > span { display:block; height:100%; background:var(--accent); border-radius:3px; }
        canvas { width:100%; height:220px; display:block; }
        form { display:flex; flex-wrap:wrap; gap:8px 12px; align-items:end; }
        label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); }
        input, select { font:inherit; padding:3px 6px; border:1px solid var(--line); border-radius:4px; min-width:90px; }
        button.primary { background:var(--accent); color:#fff; border:0; border-radius:4px; padding:6px 14px; cursor:pointer; }
        button.small { font-size:12px; padding:2px 8px; cursor:pointer; }
        #message { margin-top:6px; min-height:18px; }
        #message.bad { color:var(--bad); } #message.ok { color:var(--ok); }
        #log { max-height:180px; overflow:auto; font-size:12px; font-family: ui-monospace, monospace; }
        .empty { color:var(--muted); font-style:italic; }
        iframe { width:100%; height:520px; border:1px solid var(--line); border-radius:4px; }
        .legend { font-size:12px; color:var(--muted); }
        .legend span { margin-right:10px; }
        </style>
        </head>
        <body>
        <header>
          <h1>Chimera</h1>
          <span id="mode" class="badge">…</span>
          <span id="master" class="badge">connecting</span>
          <span id="job-badge" class="badge">no job</span>
          <span class="spacer"></span>
          <button id="token-button" type="button">Token</button>
        </header>
        <main>
          <section class="wide">
            <h2>Workers</h2>
            <table id="workers"><thead><tr><th>name</th><th>host</th><th class="num">pid</th><th>state</th><th class="num">clock</th><th class="num">rows</th><th class="num">last heard</th><th>stage</th></tr></thead><tbody></tbody></table>
            <div id="workers-empty" class="empty">no workers yet</div>
            <div id="servers-box" hidden>
              <h2>Parameter servers</h2>
              <table id="servers"><thead><tr><th>name</th><th>endpoint</th><th class="num">pid</th><th>holds</th><th class="num">last heard</th></tr></thead><tbody></tbody></table>
            </div>
          </section>
          <section class="wide">
            <h2>Jobs</h2>
            <table id="jobs"><thead><tr><th class="num">id</th><th>state</th><th>model</th><th>algorithm</th><th>staleness</th><th>progress</th><th class="num">it/s</th><th class="num">ETA</th><th class="num">loss</th><th></th></tr></thead><tbody></tbody></table>
            <div id="jobs-empty" class="empty">no jobs yet</div>
            <form id="fit-form">
              <label>model <select name="model">
                <option value="auto">auto</option><option>logistic</option><option>linear</option><option>softmax</option>
                <option>svm</option><option>mlp</option><option>tree_classifier</option><option>tree_regressor</option></select></label>
              <label class="ps">hidden <input name="hidden" placeholder="64,32"></label>
              <label class="ps">algorithm <select name="algorithm"><option>ssgd</option><option>ma</option><option>bmuf</option><option>easgd</option><option>asgd</option></select></label>
              <label class="ps">staleness <input name="staleness" value="0" size="8"></label>
              <label class="ps">iterations <input name="iterations" value="200" size="8"></label>
              <label class="ps">eta0 <input name="eta0" placeholder="0.1" size="8"></label>
              <label class="trees">trees per worker <input name="trees_per_worker" value="1" size="6"></label>
              <button id="fit-button" class="primary" type="submit">Start fit</button>
            </form>
            <div id="message"></div>
          </section>
          <section>
            <h2>Training loss vs iteration</h2>
            <canvas id="loss-iteration" data-points="0"></canvas>
          </section>
          <section>
            <h2>Training loss vs wall time (s)</h2>
            <canvas id="loss-time" data-points="0"></canvas>
          </section>
          <section>
            <h2>Worker clocks vs time (s)</h2>
            <canvas id="clocks" data-points="0"></canvas>
            <div id="clocks-legend" class="legend"></div>
          </section>
          <section>
            <h2>Barrier wait share per worker</h2>
            <canvas id="barrier" data-points="0"></canvas>
          </section>
          <section>
            <h2>Observed staleness (iterations ahead of the slowest)</h2>
            <canvas id="staleness" data-points="0"></canvas>
          </section>
          <section>
            <h2>Master bytes per second</h2>
            <canvas id="bytes" data-points="0"></canvas>
          </section>
          <section class="wide">
            <h2>Sweeps</h2>
            <div id="sweeps" class="empty">…</div>
            <iframe id="sweep-frame" title="sweep report" hidden sandbox="allow-same-origin"></iframe>
          </section>
          <section class="wide">
            <h2>Events</h2>
            <div id="log"></div>
          </section>
        </main>
        <script>
        "use strict";
        const base = __BASE_PATH__;
        const colors = ["#2f5bd3", "#d3472f", "#1a7f37", "#b26a00", "#7b3fc4", "#0f8b8d", "#c2185b", "#5d6b82"];
        const state = { token: sessionStorage.getItem("chimera-token") || "", mode: "", workers: [], servers: [], jobs: [],
          jobID: 0, losses: [], clocks: {}, clockStart: null, bytes: [], barrier: [], staleness: [], follow: null };
        const $ = (id) => document.getElementById(id);

        function headers(extra) {
          const h = Object.assign({}, extra || {});
          if (state.token) h["Authorization"] = "Bearer " + state.token;
          return h;
        }
        function askToken(why) {
          const value = prompt((why ? why + "\n" : "") + "Bearer token for this gateway (kept in this tab only):", state.token);
          if (value === null) return false;
          state.token = value.trim();
          sessionStorage.setItem("chimera-token", state.token);
          return true;
        }
        function say(text, kind) { const m = $("message"); m.textContent = text; m.className = kind || ""; }
        function log(text) {
          const line = document.createElement("div");
          line.textContent = new Date().toLocaleTimeString() + "  " + text;
          const box = $("log"); box.prepend(line);
          while (box.childNodes.length > 200) box.removeChild(box.lastChild);
        }
        function number(v, digits) {
          if (typeof v === "string") return v;
          if (v === null || v === undefined || !isFinite(v)) return "–";
          const a = Math.abs(v);
          if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
          return v.toFixed(digits === undefined ? 4 : digits);
        }
        function duration(s) {
          if (s === null || s === undefined || !isFinite(s)) return "–";
          if (s < 60) return s.toFixed(0) + " s";
          if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
          return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
        }
        function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; return td; }

        // ---- tables
        function drawWorkers() {
          const body = $("workers").tBodies[0];
          body.textContent = "";
          $("workers-empty").hidden = state.workers.length > 0;
          for (const w of state.workers.slice().sort((a, b) => a.id - b.id)) {
            const row = body.insertRow();
            row.dataset.worker = w.name;
            row.dataset.state = w.alive ? (w.ready ? "ready" : "alive") : "dead";
            if (!w.alive) row.className = "dead";
            cell(row, w.name); cell(row, w.host || "–"); cell(row, String(w.pid || "–"), "num");
            const s = cell(row, "");
            const b = document.createElement("span");
            b.className = "badge " + (w.alive ? (w.ready ? "ok" : "warn") : "bad");
            b.textContent = w.alive ? (w.ready ? "ready" : "joining") : "dead";
            s.appendChild(b);
            cell(row, String(w.clock), "num"); cell(row, w.rows === undefined ? "–" : String(w.rows), "num");
            cell(row, w.alive && w.silent_seconds !== undefined ? w.silent_seconds.toFixed(1) + " s" : "–", "num");
            cell(row, w.stage || "");
          }
        }
        function drawServers() {
          const body = $("servers").tBodies[0];
          body.textContent = "";
          $("servers-box").hidden = state.servers.length === 0;
          for (const s of state.servers) {
            const row = body.insertRow();
            row.dataset.server = s.name;
            cell(row, s.name); cell(row, s.endpoint); cell(row, String(s.pid || "–"), "num");
            cell(row, s.shard === undefined || s.shard === null ? "idle" : "shard " + s.shard + ": parameters [" + s.start + ", " + s.end + ")");
            cell(row, s.silent_seconds.toFixed(1) + " s", "num");
          }
        }
        function drawJobs() {
          const body = $("jobs").tBodies[0];
          body.textContent = "";
          $("jobs-empty").hidden = state.jobs.length > 0;
          for (const j of state.jobs) {
            const row = body.insertRow();
            row.dataset.job = j.job_id; row.dataset.state = j.state;
            cell(row, String(j.job_id), "num");
            const s = cell(row, "");
            const b = document.createElement("span");
            b.className = "badge " + ({ succeeded: "ok", failed: "bad", cancelled: "warn" }[j.state] || "");
            b.textContent = j.state; if (j.error) b.title = j.error;
            s.appendChild(b);
            cell(row, j.model + (j.parallelism && j.parallelism !== "data" ? " (" + j.parallelism + ")" : ""));
            cell(row, j.algorithm || "–"); cell(row, j.staleness || "–");
            const p = cell(row, "");
            if (j.max_iterations) {
              const bar = document.createElement("span"); bar.className = "bar";
              const fill = document.createElement("span");
              fill.style.width = Math.min(100, 100 * j.iteration / j.max_iterations).toFixed(1) + "%";
              bar.appendChild(fill); p.appendChild(bar);
              p.appendChild(document.createTextNode(" " + j.iteration + " / " + j.max_iterations));
            } else { p.textContent = j.members ? j.members + " trees" : String(j.iteration); }
            cell(row, j.state === "running" ? number(j.iterations_per_second, 1) : "–", "num");
            cell(row, j.state === "running" ? duration(j.eta_seconds) : duration(j.wall_seconds), "num");
            cell(row, j.members ? "–" : number(j.loss), "num");
            const c = cell(row, "");
            if (j.state === "running") {
              const button = document.createElement("button");
              button.className = "small"; button.textContent = "cancel"; button.type = "button";
              button.onclick = () => cancel(j.job_id);
              c.appendChild(button);
            } else if (j.error) { c.textContent = j.error.slice(0, 120); c.title = j.error; c.style.whiteSpace = "normal"; }
          }
          const current = state.jobs[0];
          const badge = $("job-badge");
          if (!current) { badge.textContent = "no job"; badge.className = "badge"; }
          else {
            badge.textContent = "job " + current.job_id + " " + current.state;
            badge.className = "badge " + ({ succeeded: "ok", failed: "bad", cancelled: "warn", running: "warn" }[current.state] || "");
          }
        }
        function showMode() {
          $("mode").textContent = state.mode || "…";
          const trees = state.mode === "aggregation";
          for (const e of document.querySelectorAll("#fit-form .ps")) e.hidden = trees;
          for (const e of document.querySelectorAll("#fit-form .trees")) e.hidden = !trees;
        }

        // ---- charts: a line chart of several series, and a bar chart
        function prepare(canvas) {
          const ratio = window.devicePixelRatio || 1;
          const w = canvas.clientWidth || 400, h = canvas.clientHeight || 220;
          if (canvas.width !== Math.round(w * ratio)) { canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio); }
          const g = canvas.getContext("2d");
          g.setTransform(ratio, 0, 0, ratio, 0, 0);
          g.clearRect(0, 0, w, h);
          g.font = "11px system-ui, sans-serif";
          return { g, w, h, left: 56, right: w - 10, top: 8, bottom: h - 22 };
        }
        function ticks(lo, hi, n) {
          const span = hi - lo || 1, step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
          const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) || step0;
          const out = [];
          for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) out.push(v);
          return out;
        }
        function label(v, values) {
          // As many decimals as the tick step needs.
          const step = values.length > 1 ? Math.abs(values[1] - values[0]) : Math.abs(v) || 1;
          const a = Math.abs(v);
          if (a !== 0 && (a < 1e-4 || a >= 1e6)) return v.toExponential(1);
          return v.toFixed(Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9))));
        }
        function axes(c, x0, x1, y0, y1) {
          const { g, left, right, top, bottom } = c;
          g.strokeStyle = "#dfe3ea"; g.fillStyle = "#6b7385"; g.lineWidth = 1;
          const ys = ticks(y0, y1, 4), xs = x1 > x0 ? ticks(x0, x1, 6) : [];
          for (const v of ys) {
            const y = bottom - (v - y0) / ((y1 - y0) || 1) * (bottom - top);
            g.beginPath(); g.moveTo(left, y); g.lineTo(right, y); g.stroke();
            g.textAlign = "right"; g.fillText(label(v, ys), left - 4, y + 4);
          }
          for (const v of xs) {
            const x = left + (v - x0) / ((x1 - x0) || 1) * (right - left);
            g.textAlign = "center"; g.fillText(label(v, xs), x, bottom + 15);
          }
          g.strokeStyle = "#9aa3b5"; g.beginPath(); g.moveTo(left, top); g.lineTo(left, bottom); g.lineTo(right, bottom); g.stroke();
        }
        function lineChart(canvas, series) {
          const c = prepare(canvas);
          let points = 0, x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
          for (const s of series) for (const [x, y] of s.points) {
            if (!isFinite(x) || !isFinite(y)) continue;
            points++; x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
          }
          canvas.dataset.points = String(points);
          if (!points) { c.g.fillStyle = "#6b7385"; c.g.fillText("no data yet", c.left + 10, c.top + 20); return; }
          if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
          if (x0 === x1) { x1 = x0 + 1; }
          axes(c, x0, x1, y0, y1);
          const X = (x) => c.left + (x - x0) / (x1 - x0) * (c.right - c.left);
          const Y = (y) => c.bottom - (y - y0) / (y1 - y0) * (c.bottom - c.top);
          series.forEach((s, i) => {
            c.g.strokeStyle = s.color || colors[i % colors.length]; c.g.lineWidth = 1.5; c.g.beginPath();
            let started = false;
            for (const [x, y] of s.points) {
              if (!isFinite(x) || !isFinite(y)) continue;
              if (started) c.g.lineTo(X(x), Y(y)); else { c.g.moveTo(X(x), Y(y)); started = true; }
            }
            c.g.stroke();
          });
        }
        function barChart(canvas, bars, maxValue) {
          const c = prepare(canvas);
          canvas.dataset.points = String(bars.length);
          if (!bars.length) { c.g.fillStyle = "#6b7385"; c.g.fillText("no data yet", c.left + 10, c.top + 20); return; }
          const top = Math.max(maxValue || 0, ...bars.map((b) => b.value), 1e-12);
          axes(c, 0, 0, 0, top);
          const width = (c.right - c.left) / bars.length;
          bars.forEach((b, i) => {
            const h = b.value / top * (c.bottom - c.top);
            c.g.fillStyle = b.color || colors[i % colors.length];
            c.g.fillRect(c.left + i * width + width * 0.15, c.bottom - h, width * 0.7, h);
            c.g.fillStyle = "#6b7385"; c.g.textAlign = "center";
            c.g.fillText(b.label, c.left + (i + 0.5) * width, c.bottom + 15);
          });
        }
        let drawPending = false;
        function drawCharts() {
          if (drawPending) return;
          drawPending = true;
          requestAnimationFrame(() => {
            drawPending = false;
            lineChart($("loss-iteration"), [{ points: state.losses.map((p) => [p[0], p[2]]) }]);
            lineChart($("loss-time"), [{ points: state.losses.map((p) => [p[1], p[2]]) }]);
            const names = Object.keys(state.clocks).sort();
            lineChart($("clocks"), names.map((n) => ({ points: state.clocks[n] })));
            const legend = $("clocks-legend"); legend.textContent = "";
            names.forEach((n, i) => { const s = document.createElement("span"); s.style.color = colors[i % colors.length]; s.textContent = "■ " + n; legend.appendChild(s); });
            // Each worker keeps its clock chart's colour.
            const colour = (name) => colors[Math.max(0, names.indexOf(name)) % colors.length];
            const waits = state.barrier.slice().sort((a, b) => a.worker < b.worker ? -1 : a.worker > b.worker ? 1 : 0);
            barChart($("barrier"), waits.map((b) => ({ label: b.worker, value: b.barrier_wait_share, color: colour(b.worker) })), 1);
            barChart($("staleness"), state.staleness.map((v, k) => ({ label: String(k), value: v, color: "#5d6b82" })));
            lineChart($("bytes"), [{ points: state.bytesRelative || [] }]);
          });
        }

        // ---- events
        function resetJob(id) {
          state.jobID = id; state.losses = []; state.clocks = {}; state.clockStart = null; state.barrier = []; state.staleness = [];
        }
        function takeJob(job) {
          const i = state.jobs.findIndex((j) => j.job_id === job.job_id);
          if (i >= 0) state.jobs.splice(i, 1);
          state.jobs.unshift(job);
          state.jobs = state.jobs.slice(0, 20);
          if (job.job_id !== state.jobID) resetJob(job.job_id);
        }
        function takeProgress(p) {
          takeJob(p.job);
          if (state.clockStart === null) state.clockStart = p.time;
          const t = p.time - state.clockStart;
          for (const c of p.clocks) {
            const s = state.clocks[c.worker] || (state.clocks[c.worker] = []);
            s.push([t, c.clock]);
            if (s.length > 2000) s.splice(0, s.length - 2000);
          }
          state.barrier = p.clocks; state.staleness = p.staleness_histogram || [];
          // The workers table shows the clocks as they move.
          let moved = false;
          for (const c of p.clocks) {
            const w = state.workers.find((w) => w.name === c.worker);
            if (w && w.clock !== c.clock) { w.clock = c.clock; moved = true; }
          }
          if (moved) { drawWorkers(); drawServers(); }
        }
        function takeCluster(c) {
          state.mode = c.mode; state.workers = c.workers || []; state.servers = c.servers || [];
          state.bytes.push([c.time, c.bytes_per_second]);
          if (state.bytes.length > 600) state.bytes.splice(0, state.bytes.length - 600);
          const t0 = state.bytes[0][0];
          state.bytesRelative = state.bytes.map(([t, v]) => [t - t0, v]);
        }
        const handlers = {
          snapshot(d) {
            state.jobs = d.jobs || [];
            if (d.cluster) takeCluster(d.cluster);
            resetJob(state.jobs.length ? state.jobs[0].job_id : 0);
            if (d.progress) takeProgress(d.progress);
            if (d.losses && d.losses.job_id === state.jobID) state.losses = d.losses.points.slice();
            $("master").textContent = d.master_reachable ? "master reachable" : "master unreachable";
            $("master").className = "badge " + (d.master_reachable ? "ok" : "bad");
            showMode(); drawWorkers(); drawServers(); drawJobs(); drawCharts();
          },
          cluster(d) { takeCluster(d); showMode(); drawWorkers(); drawServers(); drawCharts(); },
          worker(d) {
            log("worker " + d.worker.name + " " + d.change + (d.worker.host ? " (" + d.worker.host + ", pid " + d.worker.pid + ")" : ""));
            const i = state.workers.findIndex((w) => w.id === d.worker.id);
            if (i >= 0) state.workers[i] = d.worker; else state.workers.push(d.worker);
            drawWorkers(); drawServers();
          },
          progress(d) { takeProgress(d); drawJobs(); drawCharts(); },
          loss(d) {
            if (d.job_id !== state.jobID) resetJob(d.job_id);
            for (const p of d.points) state.losses.push(p);
            if (state.losses.length > 20000) state.losses.splice(0, state.losses.length - 20000);
            drawCharts();
          },
          job_end(d) {
            takeJob(d);
            log("job " + d.job_id + " " + d.state + (d.error ? ": " + d.error : ""));
            drawJobs();
            refreshSweeps();
          },
          dropped(d) { log(d.message); },
        };
        function dispatch(name, data) {
          const handler = handlers[name];
          if (!handler) return;
          let value;
          try { value = JSON.parse(data); } catch (e) { log("unreadable " + name + " event"); return; }
          handler(value);
        }

        async function follow() {
          // fetch + a stream reader instead of EventSource: EventSource cannot send the token.
          for (;;) {
            let response;
            try {
              response = await fetch(base + "/v1/chimera/events", { headers: headers(), cache: "no-store" });
            } catch (e) {
              $("master").textContent = "gateway unreachable"; $("master").className = "badge bad";
              await new Promise((r) => setTimeout(r, 2000)); continue;
            }
            if (response.status === 401) {
              $("master").textContent = "token needed"; $("master").className = "badge warn";
              if (!askToken(state.token ? "That token was refused." : "This gateway needs a token.")) {
                await new Promise((r) => setTimeout(r, 5000));
              }
              continue;
            }
            if (!response.ok || !response.body) { await new Promise((r) => setTimeout(r, 2000)); continue; }
            refreshSweeps();
            const reader = response.body.getReader();
            const decoder = new TextDecoder();
            let buffer = "";
            try {
              for (;;) {
                const { value, done } = await reader.read();
                if (done) break;
                buffer += decoder.decode(value, { stream: true });
                let end;
                while ((end = buffer.indexOf("\n\n")) >= 0) {
                  const message = buffer.slice(0, end); buffer = buffer.slice(end + 2);
                  let name = "message", data = "";
                  for (const line of message.split("\n")) {
                    if (line.startsWith("event: ")) name = line.slice(7);
                    else if (line.startsWith("data: ")) data += line.slice(6);
                  }
                  if (data) dispatch(name, data);
                }
              }
            } catch (e) { /* the connection ended: follow again */ }
            $("master").textContent = "reconnecting"; $("master").className = "badge warn";
            await new Promise((r) => setTimeout(r, 1000));
          }
        }

        // ---- actions
        async function call(method, path, body) {
          for (let attempt = 0; attempt < 2; attempt++) {
            const response = await fetch(base + path, {
              method, headers: headers(body ? { "Content-Type": "application/json" } : {}),
              body: body ? JSON.stringify(body) : undefined,
            });
            if (response.status === 401 && attempt === 0 && askToken("This gateway needs a token.")) continue;
            let data = null;
            try { data = await response.json(); } catch (e) { data = null; }
            return { status: response.status, data };
          }
          return { status: 401, data: { message: "no token" } };
        }
        function fitBody() {
          const form = $("fit-form"), body = {};
          const get = (name) => form.elements[name].value.trim();
          body.model = get("model");
          if (state.mode === "aggregation") {
            if (get("trees_per_worker")) body.trees_per_worker = Number(get("trees_per_worker"));
            return body;
          }
          if (body.model === "mlp" && get("hidden")) body.hidden = get("hidden").split(",").map((v) => Number(v.trim()));
          body.algorithm = get("algorithm");
          const s = get("staleness");
          if (s) body.staleness = s === "unbounded" ? s : Number(s);
          if (get("iterations")) body.iterations = Number(get("iterations"));
          if (get("eta0")) body.eta0 = Number(get("eta0"));
          return body;
        }
        $("fit-form").addEventListener("submit", async (event) => {
          event.preventDefault();
          say("starting…");
          try {
            const { status, data } = await call("POST", "/v1/chimera/jobs", fitBody());
            if (status === 202) { say("job " + data.job_id + " started", "ok"); log("started job " + data.job_id); }
            else say((data && data.details && data.details.errorMessage) || (data && data.message) || ("HTTP " + status), "bad");
          } catch (e) { say("the gateway did not answer: " + e, "bad"); }
        });
        async function cancel(id) {
          const { status, data } = await call("POST", "/v1/chimera/jobs/" + id + "/cancel");
          if (status === 200) say("job " + id + " cancelled", "ok");
          else say((data && data.details && data.details.errorMessage) || ("HTTP " + status), "bad");
        }
        async function refreshSweeps() {
          let listing;
          try { listing = await call("GET", "/v1/chimera/sweeps"); } catch (e) { return; }
          const box = $("sweeps");
          if (listing.status !== 200 || !listing.data) { box.textContent = "sweeps unavailable (HTTP " + listing.status + ")"; return; }
          const sweeps = listing.data.sweeps || [];
          box.textContent = "";
          box.className = sweeps.length ? "" : "empty";
          if (!listing.data.directory) { box.textContent = "no sweeps folder (start the gateway with --sweeps-dir)"; return; }
          if (!sweeps.length) { box.textContent = "no finished sweeps in " + listing.data.directory; return; }
          const table = document.createElement("table");
          table.innerHTML = "<thead><tr><th>sweep</th><th class='num'>runs</th><th>finished</th><th></th></tr></thead>";
          const body = table.createTBody();
          for (const s of sweeps) {
            const row = body.insertRow();
            cell(row, s.name); cell(row, String(s.runs), "num"); cell(row, new Date(s.modified * 1000).toLocaleString());
            const button = document.createElement("button");
            button.className = "small"; button.type = "button"; button.textContent = "open";
            button.onclick = () => openSweep(s.name);
            row.insertCell().appendChild(button);
          }
          box.appendChild(table);
        }
        async function openSweep(name) {
          const response = await fetch(base + "/v1/chimera/sweeps/" + encodeURIComponent(name), { headers: headers() });
          const frame = $("sweep-frame");
          frame.hidden = false;
          frame.srcdoc = response.ok ? await response.text() : "<p>HTTP " + response.status + "</p>";
        }
        $("token-button").onclick = () => { if (askToken("")) location.reload(); };
        window.addEventListener("resize", drawCharts);
        drawCharts();
        follow();
        </script>
        </body>
        </html>
        """#
}
