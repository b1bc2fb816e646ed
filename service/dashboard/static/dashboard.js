// Renders the plots embedded as JSON (no inline scripts), with PNG and SVG download
// buttons, and lets a clinician outline a wound by clicking on its photo.
"use strict";

function renderPlots() {
  document.querySelectorAll("[data-figure]").forEach((div) => {
    const source = document.getElementById(div.dataset.figure);
    if (!source || typeof Plotly === "undefined") return;
    const figure = JSON.parse(source.textContent);
    const filename = div.dataset.filename || "plot";
    const config = {
      displaylogo: false,
      responsive: true,
      toImageButtonOptions: { format: "png", filename: filename, scale: 2 },
      modeBarButtonsToAdd: [
        {
          name: "Download plot as SVG",
          icon: Plotly.Icons.disk,
          click: (gd) => Plotly.downloadImage(gd, { format: "svg", filename: filename }),
        },
      ],
    };
    Plotly.newPlot(div, figure.data, figure.layout, config).then(() => {
      div.dataset.rendered = "true";
    });
  });
}

function outlineByClicking() {
  document.querySelectorAll("details.correct").forEach((panel) => {
    const img = panel.querySelector("img.outline-source");
    const field = panel.querySelector("textarea[name=polygon]");
    const clear = panel.querySelector("button.clear-outline");
    const points = [];
    img.addEventListener("click", (event) => {
      const box = img.getBoundingClientRect();
      const x = ((event.clientX - box.left) * img.naturalWidth) / box.width;
      const y = ((event.clientY - box.top) * img.naturalHeight) / box.height;
      points.push([Math.round(x), Math.round(y)]);
      field.value = JSON.stringify(points);
    });
    clear.addEventListener("click", () => {
      points.length = 0;
      field.value = "";
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  renderPlots();
  outlineByClicking();
});
