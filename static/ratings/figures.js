// Draws a page's server-built plotly figures: figure NAME from the #figures JSON into the element #chart-NAME.
(function () {
  "use strict";
  const source = document.getElementById("figures");
  if (!source || !window.Plotly) return;
  for (const [name, figure] of Object.entries(JSON.parse(source.textContent))) {
    const node = document.getElementById("chart-" + name);
    if (!node) continue;
    Plotly.newPlot(node, figure.data, figure.layout, { responsive: true, displaylogo: false });
    // A chart is a picture to a screen reader: named by its title (its figures are in the table folded under it).
    const title = figure.layout && figure.layout.title;
    node.setAttribute("role", "img");
    node.setAttribute("aria-label", (title && (title.text || title)) || name.replace(/_/g, " "));
  }
})();
