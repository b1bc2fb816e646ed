// Renders the plots embedded as JSON (no inline scripts), with PNG and SVG download
// buttons, lets a clinician outline a wound by clicking on its photo, and enlarges
// thumbnails in a lightbox.
//
// Privacy: plotly's "Share chart"/"Edit in Chart Studio" would send the chart's data
// (subjects, areas, arms) to Plotly's cloud: showSendToCloud, showEditInChartStudio
// and showLink are off, and the mode bar keeps only what clinicians use.
"use strict";

function renderPlots() {
  document.querySelectorAll("[data-figure]").forEach((div) => {
    const source = document.getElementById(div.dataset.figure);
    if (!source || typeof Plotly === "undefined") return;
    const figure = JSON.parse(source.textContent);
    const filename = div.dataset.filename || "plot";
    const config = {
      displaylogo: false,
      showSendToCloud: false,
      showEditInChartStudio: false,
      showLink: false,
      responsive: true,
      modeBarButtonsToRemove: [
        "sendChartToCloud",
        "sendDataToCloud",
        "editInChartStudio",
        "select2d",
        "lasso2d",
        "autoScale2d",
        "toggleSpikelines",
        "hoverClosestCartesian",
        "hoverCompareCartesian",
      ],
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

function lightbox() {
  const dialog = document.getElementById("lightbox");
  if (!dialog || typeof dialog.showModal !== "function") return;
  const img = dialog.querySelector("img");
  const caption = dialog.querySelector(".caption");
  document.querySelectorAll("a.lightbox").forEach((link) => {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      img.src = link.href;
      img.alt = link.dataset.caption || "";
      caption.textContent = link.dataset.caption || "";
      dialog.showModal();
    });
  });
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  renderPlots();
  outlineByClicking();
  lightbox();
});
