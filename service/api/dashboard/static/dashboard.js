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
    Plotly.newPlot(div, figure.data, clearOfToolbar(figure.layout, div), config).then(() => {
      div.dataset.rendered = "true";
    });
  });
}

// On a narrow screen the title would run under plotly's tool bar (top right): the
// title moves to a line of its own below the bar, in a smaller font.
const NARROW_PLOT_PX = 700;
const TOOLBAR_PX = 34;

function clearOfToolbar(layout, div) {
  if (div.clientWidth >= NARROW_PLOT_PX || !layout.title) return layout;
  const title = {
    ...layout.title,
    font: { size: 14 },
    x: 0,
    xanchor: "left",
    xref: "container",
    y: 1,
    yanchor: "top",
    yref: "container",
    pad: { t: TOOLBAR_PX + 6, l: 8 },
  };
  const margin = { ...(layout.margin || {}), t: TOOLBAR_PX + 50 };
  return { ...layout, title, margin };
}

// A refused form comes back with its error beside the control: bring it into view
// (opening its panel) and put the cursor in the form, instead of leaving the reader at
// the top of a long page.
function showFormError() {
  const alert = document.querySelector("main form .error[role=alert], main .error[role=alert]");
  if (!alert) return;
  const panel = alert.closest("details");
  if (panel) panel.open = true;
  alert.scrollIntoView({ block: "center" });
  const form = alert.closest("form");
  const field = form && form.querySelector("input:not([type=hidden]), textarea, select");
  if (field) field.focus({ preventScroll: true });
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
  showFormError();
});
