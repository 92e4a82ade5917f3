// Corpus statistics charts, drawn from the numbers the page passes with json_script.
(() => {
  const s = JSON.parse(document.getElementById("stats-data").textContent);
  const layout = {margin: {t: 10, r: 10, b: 60, l: 50}, height: 300};
  const cfg = {displayModeBar: false, responsive: true};
  // Counts are whole numbers: one tick per PR while there are few, never a fraction.
  const counts = (values) => ({tickformat: ",d", rangemode: "tozero", ...(Math.max(0, ...values) <= 10 ? {dtick: 1} : {})});
  // Horizontal bars: long labels sit on the y axis, in full; a few values need no donut to be compared.
  const bars = (id, data, height) => Plotly.newPlot(id, [{type: "bar", orientation: "h", y: data.labels, x: data.values,
      text: data.values.map((v) => v.toLocaleString("en")), textposition: "auto", hovertemplate: "%{y}: %{x:,d}<extra></extra>"}],
    {...layout, height: height || Math.max(160, 50 + 26 * data.labels.length), margin: {t: 10, r: 10, b: 40, l: 10},
     yaxis: {automargin: true, autorange: "reversed"}, xaxis: counts(data.values)}, cfg);
  bars("chart-repos", s.repos, Math.max(300, 40 + 22 * s.repos.labels.length));
  bars("chart-category", s.category);
  bars("chart-intent", s.intent);
  bars("chart-syntax", s.syntax);
  if (document.getElementById("chart-exclusions")) bars("chart-exclusions", s.exclusions);
  Plotly.newPlot("chart-months", [{type: "bar", x: s.months.labels, y: s.months.values, hovertemplate: "%{x}: %{y:,d} PRs<extra></extra>"}],
    {...layout, xaxis: {type: "category", title: "month merged"}, yaxis: counts(s.months.values)}, cfg);
  // Lengths span orders of magnitude: log-spaced buckets on a log axis, labelled with whole numbers.
  // (A step outline, not bars: plotly sizes bars on a log axis oddly.)
  Plotly.newPlot("chart-length", [{type: "scatter", mode: "lines", line: {shape: "hvh"}, fill: "tozeroy", x: s.length.edges, y: s.length.counts,
      customdata: s.length.lower.map((low, i) => [low, s.length.upper[i]]),
      hovertemplate: "%{customdata[0]:,d}–%{customdata[1]:,d} characters: %{y:,d} PRs<extra></extra>"}],
    {...layout, xaxis: {type: "log", title: "characters", tickformat: ",~r"}, yaxis: counts(s.length.counts)}, cfg);
})();
