// The compare page: training and validation loss of every chosen run, overlaid.
hrgcRunCharts.start({
  runs: JSON.parse(document.getElementById("chart-runs").textContent),
  charts: [
    { id: "compare-chart", title: "Training loss", traces: [{ kind: "train", metric: "loss", label: "train", smooth: true }] },
    { id: "compare-val", title: "Validation loss", traces: [{ kind: "eval", metric: "val_loss", label: "val", markers: true }] },
  ],
  controls: { x: document.getElementById("x-axis"), smoothing: document.getElementById("smoothing"),
              logY: document.getElementById("log-y"), smoothingLabel: document.getElementById("smoothing-value") },
});
