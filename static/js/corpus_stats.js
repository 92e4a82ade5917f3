// Corpus statistics charts, drawn from the numbers the page passes with json_script.
(() => {
  const s = JSON.parse(document.getElementById("stats-data").textContent);
  const layout = {margin: {t: 10, r: 10, b: 60, l: 50}, height: 300};
  const cfg = {displayModeBar: false, responsive: true};
  // Counts are whole numbers: one tick per PR while there are few, never a fraction.
  const counts = (values) => ({tickformat: ",d", rangemode: "tozero", ...(Math.max(0, ...values) <= 10 ? {dtick: 1} : {})});
  // Horizontal bars: long owner/name labels sit on the y axis, in full, however many repositories there are.
  Plotly.newPlot("chart-repos", [{type: "bar", orientation: "h", y: s.repos.labels, x: s.repos.values}],
    {...layout, height: Math.max(300, 40 + 22 * s.repos.labels.length), margin: {t: 10, r: 10, b: 40, l: 10},
     yaxis: {automargin: true, autorange: "reversed"}, xaxis: counts(s.repos.values)}, cfg);
  for (const [id, key] of [["chart-category", "category"], ["chart-intent", "intent"], ["chart-license", "license"], ["chart-syntax", "syntax"]]) {
    Plotly.newPlot(id, [{type: "pie", labels: s[key].labels, values: s[key].values, hole: .4, sort: false}], layout, cfg);
  }
  Plotly.newPlot("chart-length", [{type: "bar", x: s.length.edges, y: s.length.counts}], {...layout, bargap: 0.05, xaxis: {title: "characters"}, yaxis: counts(s.length.counts)}, cfg);
})();
