// Live run charts: the first fetch brings a downsampled overview, every later one only points after `last_id`.
window.hrgcRunCharts = (() => {
  const X_TITLES = { step: "step", tokens: "tokens", elapsed: "training time (s)" };
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

  function ema(ys, weight) {
    if (!weight) return ys;
    let value = null, debias = 0;
    return ys.map((y) => {
      if (y === null || Number.isNaN(y)) return null;
      value = value === null ? 0 : value;
      value = weight * value + (1 - weight) * y;
      debias = weight * debias + (1 - weight);
      return value / debias;  // TensorBoard's debiased EMA: the first points are not pulled to zero
    });
  }
  const fmt = (v) => v === null || v === undefined || Number.isNaN(v) ? "—"
    : (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en") : (Math.abs(v) < 0.01 && v !== 0 ? v.toExponential(2) : v.toFixed(4)));

  function start({ runs, charts, controls, onSummary, pollMs = 2000 }) {
    const store = Object.fromEntries(runs.map((run) => [run.id, { lastId: 0, series: {}, active: run.active }]));
    let dirty = true, sharedRange = null;

    function merge(run, data) {
      const target = store[run.id].series;
      for (const [kind, metrics] of Object.entries(data.series)) {
        target[kind] = target[kind] || {};
        for (const [name, points] of Object.entries(metrics)) {
          const into = target[kind][name] = target[kind][name] || { step: [], tokens: [], elapsed: [], y: [] };
          for (const key of ["step", "tokens", "elapsed", "y"]) into[key].push(...points[key]);
          dirty = true;
        }
      }
      store[run.id].lastId = data.last_id;
    }

    function tracesFor(chart, xKey, smoothing) {
      const traces = [], stats = [];
      runs.forEach((run, runIndex) => {
        const series = store[run.id].series;
        chart.traces.forEach((spec, specIndex) => {
          const metrics = series[spec.kind] || {};
          const names = spec.prefix ? Object.keys(metrics).filter((n) => n.startsWith(spec.prefix)).sort() : [spec.metric];
          names.forEach((name, nameIndex) => {
            const points = metrics[name];
            if (!points || !points.y.length) return;
            const label = (runs.length > 1 ? run.name + " · " : "") + (spec.prefix ? (spec.label || "") + name.slice(spec.prefix.length) : (spec.label || name));
            const color = COLORS[(runs.length > 1 ? runIndex * 2 + specIndex : specIndex * 4 + nameIndex) % COLORS.length];
            const x = points[xKey];
            const smooth = spec.smooth && smoothing > 0;
            if (smooth) traces.push({ x, y: points.y, name: label + " (raw)", mode: "lines", showlegend: false,
                                      hoverinfo: "skip", line: { color, width: 1 }, opacity: 0.25 });
            traces.push({ x, y: smooth ? ema(points.y, smoothing) : points.y, name: label,
                          mode: points.y.length < 3 || spec.markers ? "lines+markers" : "lines", line: { color, width: 2 } });
            let last = null, min = Infinity, max = -Infinity, count = 0;
            for (const v of points.y) {
              if (v === null || Number.isNaN(v)) continue;
              last = v; count += 1; if (v < min) min = v; if (v > max) max = v;
            }
            stats.push({ label, last, min, max, best: chart.higherIsBetter ? max : min, count });
          });
        });
      });
      return { traces, stats };
    }

    function render() {
      if (!dirty || !window.Plotly) return;
      dirty = false;
      const xKey = controls.x.value, smoothing = Number(controls.smoothing.value), logY = controls.logY.checked;
      for (const chart of charts) {
        const el = document.getElementById(chart.id);
        if (!el) continue;
        const { traces, stats } = tracesFor(chart, xKey, smoothing);
        if (!traces.length && chart.empty) {
          // A line of text instead of an empty axis, until the first point arrives.
          if (!el.dataset.empty) { if (window.Plotly) Plotly.purge(el); delete el.dataset.linked; el.dataset.empty = "1"; }
          el.replaceChildren(Object.assign(document.createElement("p"), { className: "muted chart-empty", textContent: chart.empty }));
          const emptyStats = document.getElementById(chart.id + "-stats");
          if (emptyStats) emptyStats.textContent = "";
          continue;
        }
        if (el.dataset.empty) { el.replaceChildren(); delete el.dataset.empty; }
        const layout = {
          margin: { l: 55, r: 10, t: 30, b: 40 }, title: { text: chart.title, font: { size: 14 } },
          xaxis: { title: { text: X_TITLES[xKey] }, range: sharedRange || undefined, autorange: !sharedRange },
          // On a log axis plotly labels the ticks between powers of ten with their first digit only ("9 8 7" for
          // 0.9 0.8 0.7); a tick format makes every label the whole number.
          yaxis: logY && chart.log !== false ? { type: "log", tickformat: ".3~g" }
            : { type: "linear", rangemode: chart.zero ? "tozero" : undefined },
          legend: { orientation: "h", y: -0.25 }, uirevision: xKey + logY, showlegend: true,
        };
        if (!traces.length) layout.annotations = [{ text: "no points yet", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }];
        Plotly.react(el, traces, layout, { responsive: true, displaylogo: false });
        if (!el.dataset.linked) {
          el.dataset.linked = "1";
          // One x range for every chart: zooming one zooms all (Aim #3023).
          el.on("plotly_relayout", (event) => {
            if (event["xaxis.autorange"]) sharedRange = null;
            else if (event["xaxis.range[0]"] !== undefined) sharedRange = [event["xaxis.range[0]"], event["xaxis.range[1]"]];
            else return;
            dirty = true; render();
          });
        }
        const statsEl = document.getElementById(chart.id + "-stats");
        if (statsEl) statsEl.innerHTML = stats.map((s) =>
          `<span><b>${s.label}</b> last ${fmt(s.last)} · ${chart.higherIsBetter ? "best" : "min"} ${fmt(s.best)} · max ${fmt(s.max)} <span class="muted">(${s.count} pts)</span></span>`
        ).join("<br>") || '<span class="muted">no points yet</span>';
      }
    }

    async function tick() {
      let anyActive = false;
      await Promise.all(runs.map(async (run) => {
        const state = store[run.id];
        if (state.fetched && !state.active) return;
        let response;
        try {
          response = await fetch(`${run.url}?after_id=${state.lastId}`, { headers: { Accept: "application/json" } });
        } catch (error) { response = null; }
        // A failed request (server restarting, network blip) is tried again on the next tick;
        // only a run that is gone (404) stops the polling.
        if (!response || !response.ok) { if (!response || response.status !== 404) anyActive = true; return; }
        const data = await response.json();
        merge(run, data);
        state.fetched = true;
        state.active = data.run.active;
        if (state.active) anyActive = true;
        if (onSummary) onSummary(run, data);
      }));
      render();
      return anyActive;
    }

    // Chart settings live in the URL (?x=tokens&smooth=0.8&log=1): a reload keeps them and a link shares them.
    const params = new URLSearchParams(window.location.search);
    if ([...controls.x.options].some((o) => o.value === params.get("x"))) controls.x.value = params.get("x");
    const smooth = Number(params.get("smooth"));
    if (params.has("smooth") && smooth >= 0 && smooth <= Number(controls.smoothing.max)) controls.smoothing.value = String(smooth);
    if (params.has("log")) controls.logY.checked = params.get("log") === "1";
    const showSmoothing = () => {
      if (controls.smoothingLabel) controls.smoothingLabel.textContent = Number(controls.smoothing.value).toFixed(2);
    };
    showSmoothing();
    function remember() {
      const url = new URL(window.location.href);
      const defaults = { x: "step", smooth: controls.smoothing.defaultValue, log: "0" };
      const values = { x: controls.x.value, smooth: controls.smoothing.value, log: controls.logY.checked ? "1" : "0" };
      for (const [key, value] of Object.entries(values)) {
        if (value === defaults[key]) url.searchParams.delete(key); else url.searchParams.set(key, value);
      }
      window.history.replaceState(null, "", url);
    }
    for (const el of [controls.x, controls.smoothing, controls.logY]) el.addEventListener("input", () => {
      if (el === controls.x) sharedRange = null;
      showSmoothing(); remember();
      dirty = true; render();
    });
    return hrgc.poll(tick, pollMs, 15000);
  }
  return { start, fmt };
})();
