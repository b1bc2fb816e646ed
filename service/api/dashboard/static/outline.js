// The live outline editor of the wound page's correction panels.
//
// Each panel's photo gets an SVG over it in photo-pixel coordinates (its viewBox is
// the photo's size), starting from the outline that counts now (outline.json: the
// mask's outline simplified to a few dozen vertices). Vertices are dragged with the
// mouse (or a finger), clicking the photo adds one after the selected vertex, and
// "Draw anew" starts from nothing (from the keyboard: a small triangle to move).
// Every vertex is focusable: arrow keys move it (Shift: 10 px), Insert/+ adds one,
// Delete/Backspace removes it, [ and ] select the previous/next. The panel's polygon box always holds the drawn polygon, so saving is
// the existing correction form (corrections.correct_mask, audited, as PUT .../mask).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function outlineEditor(panel) {
  const box = panel.querySelector(".outline-editor");
  const field = panel.querySelector("textarea[name=polygon]");
  if (!box || !field) return;
  const img = box.querySelector("img");
  const status = panel.querySelector(".outline-status");
  const state = { points: [], selected: -1, dragging: -1, start: null, width: 0, height: 0 };
  let svg = null;
  let shape = null;
  let handles = null;

  const say = (text) => {
    if (status) status.textContent = text;
  };
  const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
  const rounded = (p) => [Math.round(p[0]), Math.round(p[1])];

  function toPhoto(event) {
    const pt = svg.createSVGPoint();
    pt.x = event.clientX;
    pt.y = event.clientY;
    const p = pt.matrixTransform(svg.getScreenCTM().inverse());
    return [clamp(Math.round(p.x), state.width), clamp(Math.round(p.y), state.height)];
  }

  function writeField() {
    field.value = state.points.length ? JSON.stringify(state.points.map(rounded)) : "";
  }

  function label(i) {
    const [x, y] = rounded(state.points[i]);
    return `vertex ${i + 1} of ${state.points.length} at ${x}, ${y} (arrow keys move it)`;
  }

  function render(focus) {
    if (!svg) return;
    shape.setAttribute("points", state.points.map((p) => p.join(",")).join(" "));
    const radius = Math.max(state.width, state.height) / 90;
    while (handles.children.length > state.points.length) handles.lastChild.remove();
    while (handles.children.length < state.points.length) {
      const c = document.createElementNS(SVG_NS, "circle");
      c.setAttribute("tabindex", "0");
      c.setAttribute("role", "button");
      c.classList.add("vertex");
      handles.appendChild(c);
    }
    Array.from(handles.children).forEach((c, i) => {
      c.setAttribute("cx", state.points[i][0]);
      c.setAttribute("cy", state.points[i][1]);
      c.setAttribute("r", radius);
      c.dataset.index = String(i);
      c.setAttribute("aria-label", label(i));
      c.classList.toggle("selected", i === state.selected);
    });
    writeField();
    if (focus && state.selected >= 0) handles.children[state.selected].focus();
  }

  function select(i, focus) {
    state.selected = state.points.length ? (i + state.points.length) % state.points.length : -1;
    render(focus);
  }

  function insertAfter(i, point) {
    state.points.splice(i + 1, 0, point);
    select(i + 1, false);
  }

  function build(width, height) {
    state.width = width;
    state.height = height;
    svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("aria-label", "outline editor: click to add a vertex, drag a vertex to move it");
    svg.classList.add("outline-svg");
    shape = document.createElementNS(SVG_NS, "polygon");
    handles = document.createElementNS(SVG_NS, "g");
    svg.append(shape, handles);
    box.appendChild(svg);

    svg.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      event.preventDefault();
      const index = event.target.dataset ? Number(event.target.dataset.index) : NaN;
      if (event.target.tagName === "circle" && Number.isInteger(index)) {
        state.dragging = index;
        select(index, true);
        svg.setPointerCapture(event.pointerId);
        return;
      }
      const at = state.selected >= 0 ? state.selected : state.points.length - 1;
      insertAfter(at, toPhoto(event));
      say(`${state.points.length} vertices`);
    });
    svg.addEventListener("pointermove", (event) => {
      if (state.dragging < 0) return;
      state.points[state.dragging] = toPhoto(event);
      render(false);
    });
    const stop = () => {
      if (state.dragging >= 0) say(`moved ${label(state.dragging)}`);
      state.dragging = -1;
    };
    svg.addEventListener("pointerup", stop);
    svg.addEventListener("pointercancel", stop);
    svg.addEventListener("focusin", (event) => {
      const index = Number(event.target.dataset ? event.target.dataset.index : NaN);
      if (Number.isInteger(index) && index !== state.selected) select(index, false);
    });
    svg.addEventListener("keydown", (event) => {
      const i = state.selected;
      if (i < 0) return;
      const step = event.shiftKey ? 10 : 1;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (event.key in moves) {
        const [dx, dy] = moves[event.key];
        const p = state.points[i];
        state.points[i] = [clamp(p[0] + dx, state.width), clamp(p[1] + dy, state.height)];
        render(true);
      } else if (event.key === "Insert" || event.key === "+" || event.key === "=") {
        const p = state.points[i];
        const q = state.points[(i + 1) % state.points.length];
        insertAfter(i, [(p[0] + q[0]) / 2, (p[1] + q[1]) / 2]);
        render(true);
        say(`added ${label(state.selected)}`);
      } else if (event.key === "Delete" || event.key === "Backspace") {
        if (state.points.length <= 3) {
          say("an outline keeps at least 3 vertices: press Draw anew to start over");
        } else {
          state.points.splice(i, 1);
          select(i - 1, true);
          say(`removed a vertex: ${state.points.length} left`);
        }
      } else if (event.key === "]" || event.key === "[") {
        select(i + (event.key === "]" ? 1 : -1), true);
      } else {
        return;
      }
      event.preventDefault();
    });
  }

  function start(points) {
    state.points = points.map((p) => [Number(p[0]), Number(p[1])]);
    state.selected = -1;
    render(false);
  }

  let loaded = [];
  let loading = null;
  function load() {
    // Once: an initially open panel also fires "toggle".
    loading = loading || loadOnce();
    return loading;
  }
  async function loadOnce() {
    const url = box.dataset.outlineUrl;
    let width = 0;
    let height = 0;
    if (url) {
      const answer = await fetch(url, { credentials: "same-origin" });
      if (!answer.ok) {
        say("the current outline could not be loaded: draw anew");
      } else {
        const outline = await answer.json();
        width = outline.width;
        height = outline.height;
        loaded = outline.polygons.length ? outline.polygons[0] : [];
        if (outline.polygons.length > 1) {
          say(`the outline has ${outline.polygons.length} parts: the largest is editable`);
        }
      }
    }
    if (!width) {
      if (!img.complete) await new Promise((resolve) => img.addEventListener("load", resolve, { once: true }));
      width = img.naturalWidth;
      height = img.naturalHeight;
    }
    build(width, height);
    let kept = null;
    try {
      kept = field.value.trim() ? JSON.parse(field.value) : null;
    } catch (error) {
      kept = null;
    }
    start(Array.isArray(kept) && kept.length ? kept : loaded);
    box.dataset.ready = "true";
  }

  const reset = panel.querySelector("button.outline-reset");
  if (reset) reset.addEventListener("click", () => { start(loaded); say("back to the current outline"); });
  const fresh = panel.querySelector("button.outline-new");
  if (fresh) {
    fresh.addEventListener("click", (event) => {
      if (event.detail !== 0 || !svg) {
        start([]);
        say("click around the wound on the photo");
        return;
      }
      // From the keyboard (no pointer): a small triangle at the centre to move and grow.
      const [cx, cy, r] = [state.width / 2, state.height / 2, Math.max(state.width, state.height) / 20];
      start([[cx, cy - r], [cx + r, cy + r], [cx - r, cy + r]].map(rounded));
      select(0, true);
      say("a triangle at the centre: move its vertices with the arrow keys, Insert adds one");
    });
  }
  const clear = panel.querySelector("button.clear-outline");
  if (clear) clear.addEventListener("click", () => start([]));
  field.addEventListener("change", () => {
    try {
      const typed = JSON.parse(field.value);
      if (Array.isArray(typed)) start(typed);
    } catch (error) {
      say("the polygon box is not [[x, y], …]: it is sent as typed");
    }
  });

  if (panel.open) load();
  panel.addEventListener("toggle", () => {
    if (panel.open) load();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("details.correct").forEach(outlineEditor);
});
