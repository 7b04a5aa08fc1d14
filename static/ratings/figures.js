// Draws a page's server-built plotly figures: figure NAME from the #figures JSON into the element #chart-NAME.
(function () {
  "use strict";
  const source = document.getElementById("figures");
  if (!source || !window.Plotly) return;
  for (const [name, figure] of Object.entries(JSON.parse(source.textContent))) {
    const node = document.getElementById("chart-" + name);
    if (node) Plotly.newPlot(node, figure.data, figure.layout, { responsive: true, displaylogo: false });
  }
})();
