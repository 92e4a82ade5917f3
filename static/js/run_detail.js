// The run page: live charts (run_charts.js) and the numbers, log, checkpoints and samples beside them.
(() => {
  const runs = JSON.parse(document.getElementById("chart-runs").textContent);
  const page = document.getElementById("run-charts");
  const initialStatus = page.dataset.runStatus;
  const fmt = hrgcRunCharts.fmt;
  const set = (id, text) => { const el = document.getElementById(id); if (el) el.textContent = text; };
  const bytes = (n) => n ? (n / 1048576).toFixed(1) + " MB" : "—";
  const dur = (s) => { if (s === null || s === undefined) return "—"; s = Math.round(s); const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
    return h ? `${h}h ${String(m).padStart(2, "0")}m` : (m ? `${m}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`); };
  const esc = (t) => String(t).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  let shownCheckpoints = null, shownSamples = null;
  function onSummary(run, data) {
    const r = data.run;
    if (r.status !== initialStatus) { window.location.reload(); return; }  // actions offered depend on the status
    set("run-status", r.status); set("run-message", r.message);
    set("run-step", r.step.toLocaleString("en"));
    document.getElementById("run-progress").style.width = (r.max_steps ? 100 * r.step / r.max_steps : 0) + "%";
    set("run-eta", r.active && r.eta_seconds ? dur(r.eta_seconds) : "—"); set("run-elapsed", dur(r.elapsed_seconds));
    set("run-loss", fmt(r.last_loss)); set("run-best-val", fmt(r.best_val_loss));
    set("run-tokens", r.tokens.toLocaleString("en")); set("run-tps", r.tokens_per_sec ? Math.round(r.tokens_per_sec).toLocaleString("en") : "—");
    set("run-device", r.device || "—"); set("run-memory", bytes(r.memory_bytes)); set("run-memory-now", bytes(r.memory_now));
    set("log", r.log.join("\n") || "(nothing logged yet)");
    set("points-note", `updated ${new Date().toLocaleTimeString()}` + (data.downsampled ? " · overview downsampled to ~1,500 points per metric" : ""));
    const checkpointKey = JSON.stringify(r.checkpoints.map((c) => c.step));
    if (shownCheckpoints !== null && checkpointKey !== shownCheckpoints || (shownCheckpoints === null && r.checkpoints.length)) {
      document.querySelector("#checkpoints tbody").innerHTML = r.checkpoints.map((c) => {
        const best = c.step === r.best_checkpoint_step && c.val_loss !== null;
        return `<tr${best ? ' class="best"' : ""}><td class="num">${c.step.toLocaleString("en")}</td><td class="num">${fmt(c.val_loss)}${best ? ' <span class="badge ok">best</span>' : ""}</td>`
          + `<td class="num">${bytes(c.size)}</td><td><code class="small">${esc(c.path)}</code></td></tr>`;
      }).join("");
    }
    shownCheckpoints = checkpointKey;
    renderRanks(r.ranks);
    if (r.samples_step && r.samples_step !== shownSamples) {
      shownSamples = r.samples_step;
      set("samples-note", `at step ${r.samples_step} · ${r.parse_share === null ? "—" : Math.round(100 * r.parse_share) + "%"} of final code parses`);
      document.getElementById("samples").innerHTML = r.samples.map((s) =>
        `<div class="card sample"><b>${esc(s.title)}</b> <span class="${s.syntax_ok ? "ok" : "bad"}">${s.syntax_ok ? "parses" : "does not parse"}</span> <span class="muted small">${s.iterations} attempt(s), ${esc(s.stopped)}</span><pre>${esc(s.code)}</pre></div>`).join("");
    }
  }
  // A torchrun run's ranks, as run_detail.html draws them; a rank's log left open stays open.
  function renderRanks(ranks) {
    const body = document.querySelector("#ranks tbody");
    if (!body || !ranks || !ranks.length) return;
    const open = new Set([...body.querySelectorAll("details[open]")].map((d) => d.closest("tr").id));
    body.innerHTML = ranks.map((k) => {
      const state = k.silent ? '<span class="badge bad">silent</span>'
        : (k.state === "running" ? '<span class="badge ok">running</span>' : esc(k.state));
      const step = k.step === null || k.step === undefined ? "—" : k.step.toLocaleString("en");
      return `<tr id="rank-${k.rank}"><td class="num">${k.rank}</td><td>${esc(k.host)}</td><td class="num">${k.pid}</td>`
        + `<td class="num">${step}</td><td>${state}</td><td>${Math.round(k.age)} s ago</td>`
        + `<td><details${open.has("rank-" + k.rank) ? " open" : ""}><summary class="small">${k.log.length} line(s)</summary>`
        + `<pre class="small">${k.log.map((line) => esc(line) + "\n").join("")}</pre></details></td></tr>`;
    }).join("");
  }
  hrgcRunCharts.start({
    runs,
    charts: [
      { id: "chart-loss", title: "Loss (train, val)", traces: [{ kind: "train", metric: "loss", label: "train", smooth: true }, { kind: "eval", metric: "val_loss", label: "val", markers: true }] },
      { id: "chart-sections", title: "Loss per section", traces: [{ kind: "train", prefix: "loss_", label: "train ", smooth: true }, { kind: "eval", prefix: "val_loss_", label: "val ", markers: true }] },
      { id: "chart-lr", title: "Learning rate", traces: [{ kind: "train", metric: "lr", label: "lr" }] },
      { id: "chart-tps", title: "Tokens/s", zero: true, traces: [{ kind: "train", metric: "tokens_per_sec", label: "tokens/s", smooth: true }] },
      { id: "chart-grad", title: "Gradient norm (before clipping)", traces: [{ kind: "train", metric: "grad_norm", label: "grad norm", smooth: true }] },
      { id: "chart-parse", title: "Share of sampled code that parses", higherIsBetter: true, log: false, zero: true,
        empty: page.dataset.parseEmpty,
        traces: [{ kind: "samples", metric: "parse_share", label: "final code", markers: true }, { kind: "samples", metric: "attempt_parse_share", label: "all attempts", markers: true }] },
    ],
    controls: { x: document.getElementById("x-axis"), smoothing: document.getElementById("smoothing"),
                logY: document.getElementById("log-y"), smoothingLabel: document.getElementById("smoothing-value") },
    onSummary,
  });
})();

// Export form: safetensors keeps full precision, so the quantization choice does not apply to it.
(() => {
  const form = document.getElementById("export-form");
  if (!form) return;
  form.elements.format.addEventListener("change", () => {
    form.quant.disabled = form.elements.format.value === "safetensors";
    form.querySelector(".quant-note").hidden = form.elements.format.value !== "safetensors";
  });
})();
