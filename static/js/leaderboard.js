// Leaderboard chart: the chosen metric against training tokens, one line per run evaluated at several checkpoints.
(() => {
  const series = JSON.parse(document.getElementById("token-series").textContent);
  const labels = JSON.parse(document.getElementById("metric-labels").textContent);
  const select = document.getElementById("chart-metric");
  const draw = () => {
    const key = select.value;
    const traces = series.map((s) => ({
      type: "scatter", mode: "lines+markers", name: `${s.run} (${s.family})`, x: s.tokens, y: s.metrics[key],
      customdata: s.steps, connectgaps: false,
      hovertemplate: `${s.run}<br>step %{customdata:,d}, %{x:,d} tokens<br>${labels[key]}: %{y:.4g}<extra></extra>`,
    }));
    Plotly.react("tokens-chart", traces, {
      margin: {t: 10, r: 10, b: 50, l: 60}, xaxis: {title: "training tokens", tickformat: ",d"},
      yaxis: {title: labels[key]}, legend: {orientation: "h"},
    }, {displayModeBar: false, responsive: true});
  };
  const wanted = new URLSearchParams(location.search).get("sort");
  if (wanted && labels[wanted.replace(/^-/, "")]) select.value = wanted.replace(/^-/, "");
  select.addEventListener("change", draw);
  draw();
})();
