// The outline editor of the wound page's correction panels.
//
// Each panel's photo gets an SVG over it in photo-pixel coordinates (its viewBox is
// the photo's size), starting from the outline that counts now (outline.json).
//
// One gesture: with the Box tool, drag a box around the wound and the server suggests
// an outline (POST /dashboard/assessments/{id}/suggest, the assist engine; nothing is
// stored). "+ region" / "− region" clicks add or remove a part (a point sent with the
// box). Then adjust: drag a vertex (the one nearest the pointer, so a drag at any zoom
// moves the vertex aimed at), zoom (wheel, pinch, buttons, + / −) and pan (Pan tool,
// two fingers, arrow keys on the photo), undo (button, Ctrl+Z). Handles keep their
// screen size at any zoom. Every vertex is focusable: arrow keys move it (Shift: 10
// px), Insert/+ adds one, Delete/Backspace removes it, [ and ] select the previous /
// next. The panel's polygon box (behind "Advanced") always holds the drawn outline
// (one part: [[x, y], …]; several: a list of them), so saving is the existing
// correction form (corrections.correct_mask, audited, as PUT …/mask).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const HANDLE_SCREEN_PX = 7; // a vertex's radius on screen, at any zoom
const HIT_SCREEN_PX = 14; // how near a press must be to grab a vertex
const MAX_HANDLES = 40; // a part with more vertices is simplified to about this many
const ZOOM_MAX = 16;
const TOOL_KEYS = { b: "box", a: "add", r: "remove", v: "vertex", h: "pan" };

// Douglas-Peucker on a closed ring, loosening until it has at most `max` vertices.
function simplify(ring, max) {
  if (ring.length <= max) return ring;
  const dist = (p, a, b) => {
    const [dx, dy] = [b[0] - a[0], b[1] - a[1]];
    const len = Math.hypot(dx, dy) || 1;
    return Math.abs(dy * p[0] - dx * p[1] + b[0] * a[1] - b[1] * a[0]) / len;
  };
  const dp = (pts, eps) => {
    if (pts.length < 3) return pts;
    let [best, at] = [0, 0];
    for (let i = 1; i < pts.length - 1; i += 1) {
      const d = dist(pts[i], pts[0], pts[pts.length - 1]);
      if (d > best) [best, at] = [d, i];
    }
    if (best <= eps) return [pts[0], pts[pts.length - 1]];
    return dp(pts.slice(0, at + 1), eps).slice(0, -1).concat(dp(pts.slice(at), eps));
  };
  let eps = 0.5;
  let out = ring;
  while (out.length > max && eps < 1e4) {
    out = dp(ring.concat([ring[0]]), eps).slice(0, -1);
    eps *= 1.4;
  }
  return out.length >= 3 ? out : ring.slice(0, max);
}

function outlineEditor(panel) {
  const box = panel.querySelector(".outline-editor");
  const field = panel.querySelector("textarea[name=polygon]");
  if (!box || !field) return;
  const stage = box.querySelector(".outline-stage") || box;
  const img = box.querySelector("img");
  const status = panel.querySelector(".outline-status");
  const suggestion = panel.querySelector(".suggestion");
  const reason = panel.querySelector("form[action$='/correct'] input[name=reason]");
  const csrfInput = panel.querySelector("input[name=csrf]");
  const state = {
    parts: [], // [[x, y], …] per part, photo pixels
    selected: null, // {part, index}
    dragging: null,
    width: 0,
    height: 0,
    tool: "box",
    prompt: { box: null, points: [] },
    zoom: 1,
    tx: 0,
    ty: 0,
    undo: [],
    request: 0,
  };
  let svg = null;
  let shapes = null;
  let handles = null;
  let marks = null;
  let rubber = null;

  const say = (text) => {
    if (status) status.textContent = text;
  };
  const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
  const rounded = (p) => [Math.round(p[0]), Math.round(p[1])];
  const copy = () => ({
    parts: state.parts.map((r) => r.map((p) => [p[0], p[1]])),
    prompt: { box: state.prompt.box, points: state.prompt.points.slice() },
  });
  const count = () => state.parts.reduce((n, r) => n + r.length, 0);

  function remember() {
    state.undo.push(copy());
    if (state.undo.length > 100) state.undo.shift();
  }
  function undo() {
    const last = state.undo.pop();
    if (!last) {
      say("nothing to undo");
      return;
    }
    state.parts = last.parts;
    state.prompt = last.prompt;
    state.selected = null;
    render(false);
    say(`undone: ${count()} vertices`);
  }

  // Screen px per photo px: the photo fills the editor's width, times the zoom (worked
  // out here rather than read from the SVG, which may lag a style change).
  function screenScale() {
    const base = box.clientWidth && state.width ? box.clientWidth / state.width : 1;
    return base * state.zoom;
  }
  function toPhoto(event) {
    const pt = svg.createSVGPoint();
    pt.x = event.clientX;
    pt.y = event.clientY;
    const p = pt.matrixTransform(svg.getScreenCTM().inverse());
    return [clamp(p.x, state.width), clamp(p.y, state.height)];
  }

  function writeField() {
    const parts = state.parts.filter((r) => r.length).map((r) => r.map(rounded));
    if (!parts.length) field.value = "";
    else field.value = JSON.stringify(parts.length === 1 ? parts[0] : parts);
  }

  function label(part, i) {
    const ring = state.parts[part];
    const [x, y] = rounded(ring[i]);
    const of = state.parts.length > 1 ? ` of part ${part + 1}` : "";
    return `vertex ${i + 1} of ${ring.length}${of} at ${x}, ${y} (arrow keys move it)`;
  }

  function render(focus) {
    if (!svg) return;
    const radius = HANDLE_SCREEN_PX / screenScale();
    // Strokes keep their screen width too (vector-effect does not see the CSS zoom).
    svg.style.setProperty("--sw", String(2 / screenScale()));
    while (shapes.children.length > state.parts.length) shapes.lastChild.remove();
    while (shapes.children.length < state.parts.length) shapes.appendChild(document.createElementNS(SVG_NS, "polygon"));
    state.parts.forEach((ring, k) => shapes.children[k].setAttribute("points", ring.map((p) => p.join(",")).join(" ")));
    const flat = [];
    state.parts.forEach((ring, k) => ring.forEach((p, i) => flat.push([k, i, p])));
    while (handles.children.length > flat.length) handles.lastChild.remove();
    while (handles.children.length < flat.length) {
      const c = document.createElementNS(SVG_NS, "circle");
      c.setAttribute("tabindex", "0");
      c.setAttribute("role", "button");
      c.classList.add("vertex");
      handles.appendChild(c);
    }
    flat.forEach(([k, i, p], n) => {
      const c = handles.children[n];
      c.setAttribute("cx", p[0]);
      c.setAttribute("cy", p[1]);
      c.setAttribute("r", radius);
      c.dataset.part = String(k);
      c.dataset.index = String(i);
      c.setAttribute("aria-label", label(k, i));
      c.classList.toggle("selected", !!state.selected && state.selected.part === k && state.selected.index === i);
    });
    marks.replaceChildren();
    if (state.prompt.box) {
      const [x0, y0, x1, y1] = state.prompt.box;
      const r = document.createElementNS(SVG_NS, "rect");
      Object.entries({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 }).forEach(([k, v]) => r.setAttribute(k, v));
      r.classList.add("prompt-box");
      marks.appendChild(r);
    }
    state.prompt.points.forEach(([x, y, l]) => {
      const m = document.createElementNS(SVG_NS, "circle");
      m.setAttribute("cx", x);
      m.setAttribute("cy", y);
      m.setAttribute("r", (HANDLE_SCREEN_PX * 0.8) / screenScale());
      m.classList.add(l ? "prompt-add" : "prompt-remove");
      marks.appendChild(m);
    });
    writeField();
    if (focus && state.selected) {
      const n = handleIndex(state.selected);
      if (n >= 0) handles.children[n].focus();
    }
  }

  function handleIndex(sel) {
    let n = 0;
    for (let k = 0; k < sel.part; k += 1) n += state.parts[k].length;
    return sel.index < state.parts[sel.part].length ? n + sel.index : -1;
  }

  function select(part, i, focus) {
    const ring = state.parts[part];
    state.selected = ring && ring.length ? { part, index: (i + ring.length) % ring.length } : null;
    render(focus);
  }

  // --- zoom and pan: the stage (photo + SVG) is scaled and moved inside the box.
  function applyView() {
    const w = box.clientWidth;
    const h = box.clientHeight;
    state.zoom = Math.min(Math.max(state.zoom, 1), ZOOM_MAX);
    state.tx = Math.min(0, Math.max(w - w * state.zoom, state.tx));
    state.ty = Math.min(0, Math.max(h - h * state.zoom, state.ty));
    stage.style.transform = `translate(${state.tx}px, ${state.ty}px) scale(${state.zoom})`;
    box.dataset.zoom = state.zoom.toFixed(2);
    render(false);
  }
  function zoomAt(factor, clientX, clientY) {
    const rect = box.getBoundingClientRect();
    const sx = (clientX === undefined ? rect.width / 2 : clientX - rect.left);
    const sy = (clientY === undefined ? rect.height / 2 : clientY - rect.top);
    const z2 = Math.min(Math.max(state.zoom * factor, 1), ZOOM_MAX);
    state.tx = sx - ((sx - state.tx) * z2) / state.zoom;
    state.ty = sy - ((sy - state.ty) * z2) / state.zoom;
    state.zoom = z2;
    applyView();
    say(`zoom ${state.zoom.toFixed(1)}×`);
  }
  function fit() {
    state.zoom = 1;
    state.tx = 0;
    state.ty = 0;
    applyView();
    say("the whole photo");
  }
  function panBy(dx, dy) {
    state.tx += dx;
    state.ty += dy;
    applyView();
  }

  function setTool(tool) {
    state.tool = tool;
    panel.querySelectorAll("button.tool").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.tool === tool)));
    if (svg) svg.dataset.tool = tool;
  }

  // --- the assist engine
  async function suggest() {
    const url = box.dataset.suggestUrl;
    if (!url) return;
    const body = {};
    if (state.prompt.box) body.box = state.prompt.box.map((v) => Math.round(v * 10) / 10);
    if (state.prompt.points.length) body.points = state.prompt.points.map((p) => [Math.round(p[0]), Math.round(p[1]), p[2]]);
    if (!body.box && !body.points) return;
    const ticket = (state.request += 1);
    box.dataset.busy = "true";
    say("finding the wound…");
    let answer;
    try {
      answer = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfInput ? csrfInput.value : "" },
        body: JSON.stringify(body),
      });
    } catch (error) {
      answer = null;
    }
    if (ticket !== state.request) return; // a newer gesture asked since
    box.dataset.busy = "false";
    if (!answer || !answer.ok) {
      let detail = "the suggestion failed: draw by hand or try again";
      try {
        detail = (await answer.json()).detail || detail;
      } catch (error) { /* keep the plain message */ }
      say(detail);
      return;
    }
    const s = await answer.json();
    state.parts = s.polygons.map((r) => simplify(r.map((p) => [Number(p[0]), Number(p[1])]), MAX_HANDLES));
    state.selected = null;
    render(false);
    const area = s.area_cm2 === null ? "not calibrated" : `${s.area_cm2.toFixed(2)} cm² (95 % ${s.area_cm2_low.toFixed(2)}–${s.area_cm2_high.toFixed(2)})`;
    const text = state.parts.length ? `suggested outline: ${area}` : "no wound found in the box: draw a larger box, or click + region on the wound";
    if (suggestion) {
      suggestion.textContent = text;
      suggestion.dataset.areaCm2 = s.area_cm2 === null ? "" : String(s.area_cm2);
    }
    say(`${text} · ${count()} vertices · ${Math.round(s.ms)} ms`);
    if (reason && !reason.value.trim() && state.parts.length) reason.value = "outline redrawn from a box (assisted)";
    box.dataset.suggested = String(ticket);
  }

  // --- pointer: vertices, boxes, points, pan, pinch
  const pointers = new Map();
  let gesture = null;

  function nearestVertex(event) {
    const p = toPhoto(event);
    const limit = HIT_SCREEN_PX / screenScale();
    let best = null;
    state.parts.forEach((ring, k) => ring.forEach((q, i) => {
      const d = Math.hypot(q[0] - p[0], q[1] - p[1]);
      if (d <= limit && (!best || d < best.d)) best = { part: k, index: i, d };
    }));
    return best;
  }

  function onDown(event) {
    if (event.button !== 0 && event.pointerType === "mouse") return;
    event.preventDefault();
    pointers.set(event.pointerId, [event.clientX, event.clientY]);
    svg.setPointerCapture(event.pointerId);
    if (pointers.size === 2) {
      const [a, b] = Array.from(pointers.values());
      gesture = { kind: "pinch", dist: Math.hypot(a[0] - b[0], a[1] - b[1]), mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2] };
      rubber.setAttribute("width", 0);
      return;
    }
    // The region tools place points, even on a vertex; the others grab the nearest one.
    const hit = state.tool === "box" || state.tool === "vertex" ? nearestVertex(event) : null;
    if (hit) {
      remember();
      gesture = { kind: "vertex" };
      state.dragging = hit;
      select(hit.part, hit.index, true);
      return;
    }
    const at = toPhoto(event);
    if (state.tool === "pan" || event.shiftKey && state.zoom > 1) {
      gesture = { kind: "pan", last: [event.clientX, event.clientY] };
    } else if (state.tool === "box") {
      gesture = { kind: "box", from: at, to: at };
    } else {
      gesture = { kind: "click", from: at, screen: [event.clientX, event.clientY] };
    }
  }

  function onMove(event) {
    if (!pointers.has(event.pointerId) || !gesture) return;
    pointers.set(event.pointerId, [event.clientX, event.clientY]);
    if (gesture.kind === "pinch" && pointers.size === 2) {
      const [a, b] = Array.from(pointers.values());
      const dist = Math.hypot(a[0] - b[0], a[1] - b[1]);
      const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
      panBy(mid[0] - gesture.mid[0], mid[1] - gesture.mid[1]);
      if (gesture.dist > 0) zoomAt(dist / gesture.dist, mid[0], mid[1]);
      gesture.dist = dist;
      gesture.mid = mid;
    } else if (gesture.kind === "vertex" && state.dragging) {
      const { part, index } = state.dragging;
      state.parts[part][index] = toPhoto(event);
      render(false);
    } else if (gesture.kind === "pan") {
      panBy(event.clientX - gesture.last[0], event.clientY - gesture.last[1]);
      gesture.last = [event.clientX, event.clientY];
    } else if (gesture.kind === "box") {
      gesture.to = toPhoto(event);
      const [x0, y0] = [Math.min(gesture.from[0], gesture.to[0]), Math.min(gesture.from[1], gesture.to[1])];
      rubber.setAttribute("x", x0);
      rubber.setAttribute("y", y0);
      rubber.setAttribute("width", Math.abs(gesture.to[0] - gesture.from[0]));
      rubber.setAttribute("height", Math.abs(gesture.to[1] - gesture.from[1]));
    }
  }

  function onUp(event) {
    pointers.delete(event.pointerId);
    const g = gesture;
    if (pointers.size > 0) return; // the rest of a pinch
    gesture = null;
    rubber.setAttribute("width", 0);
    if (!g || event.type === "pointercancel") {
      state.dragging = null;
      return;
    }
    if (g.kind === "vertex") {
      if (state.dragging) say(`moved ${label(state.dragging.part, state.dragging.index)}`);
      state.dragging = null;
    } else if (g.kind === "box") {
      const [x0, x1] = [Math.min(g.from[0], g.to[0]), Math.max(g.from[0], g.to[0])];
      const [y0, y1] = [Math.min(g.from[1], g.to[1]), Math.max(g.from[1], g.to[1])];
      const minPx = Math.max(4, 6 / screenScale());
      if (x1 - x0 < minPx || y1 - y0 < minPx) {
        say("drag a box around the wound (or pick + region and click on it)");
        return;
      }
      remember();
      state.prompt = { box: [x0, y0, x1, y1], points: [] };
      render(false);
      suggest();
    } else if (g.kind === "click") {
      if (state.tool === "vertex") {
        remember();
        if (!state.parts.length) state.parts.push([]);
        const sel = state.selected || { part: 0, index: state.parts[0].length - 1 };
        state.parts[sel.part].splice(sel.index + 1, 0, g.from);
        select(sel.part, sel.index + 1, false);
        say(`${count()} vertices`);
      } else if (state.tool === "add" || state.tool === "remove") {
        if (state.prompt.points.length >= 20) {
          say("at most 20 points: draw a new box to start again");
          return;
        }
        remember();
        state.prompt.points.push([g.from[0], g.from[1], state.tool === "add" ? 1 : 0]);
        render(false);
        suggest();
      }
    }
  }

  function onKey(event) {
    const target = event.target;
    const onVertex = target && target.classList && target.classList.contains("vertex");
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      undo();
      event.preventDefault();
      return;
    }
    if (onVertex) {
      vertexKey(event);
      return;
    }
    const k = event.key;
    if (k in TOOL_KEYS && !event.ctrlKey && !event.metaKey && !event.altKey) setTool(TOOL_KEYS[k]);
    else if (k === "+" || k === "=") zoomAt(1.25);
    else if (k === "-" || k === "_") zoomAt(0.8);
    else if (k === "0") fit();
    else if (k.startsWith("Arrow") && state.zoom > 1) {
      const step = event.shiftKey ? 120 : 40;
      const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
      panBy(...moves[k]);
    } else return;
    event.preventDefault();
  }

  function vertexKey(event) {
    const sel = state.selected;
    if (!sel) return;
    const ring = state.parts[sel.part];
    const i = sel.index;
    const step = event.shiftKey ? 10 : 1;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (event.key in moves) {
      remember();
      const [dx, dy] = moves[event.key];
      ring[i] = [clamp(ring[i][0] + dx, state.width), clamp(ring[i][1] + dy, state.height)];
      render(true);
    } else if (event.key === "Insert" || event.key === "+" || event.key === "=") {
      remember();
      const q = ring[(i + 1) % ring.length];
      ring.splice(i + 1, 0, [(ring[i][0] + q[0]) / 2, (ring[i][1] + q[1]) / 2]);
      select(sel.part, i + 1, true);
      say(`added ${label(sel.part, i + 1)}`);
    } else if (event.key === "Delete" || event.key === "Backspace") {
      if (ring.length <= 3) {
        say("an outline keeps at least 3 vertices: press Draw anew to start over");
      } else {
        remember();
        ring.splice(i, 1);
        select(sel.part, i - 1, true);
        say(`removed a vertex: ${ring.length} left`);
      }
    } else if (event.key === "]" || event.key === "[") {
      select(sel.part, i + (event.key === "]" ? 1 : -1), true);
    } else {
      return;
    }
    event.preventDefault();
  }

  function build(width, height) {
    state.width = width;
    state.height = height;
    svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("aria-label", "outline editor: drag a box around the wound; drag a vertex to move it");
    svg.classList.add("outline-svg");
    shapes = document.createElementNS(SVG_NS, "g");
    handles = document.createElementNS(SVG_NS, "g");
    marks = document.createElementNS(SVG_NS, "g");
    rubber = document.createElementNS(SVG_NS, "rect");
    rubber.classList.add("rubber-band");
    rubber.setAttribute("width", 0);
    svg.append(shapes, marks, rubber, handles);
    stage.appendChild(svg);
    svg.addEventListener("pointerdown", onDown);
    svg.addEventListener("pointermove", onMove);
    svg.addEventListener("pointerup", onUp);
    svg.addEventListener("pointercancel", onUp);
    svg.addEventListener("focusin", (event) => {
      const t = event.target;
      if (!t.dataset || t.dataset.index === undefined) return;
      const [k, i] = [Number(t.dataset.part), Number(t.dataset.index)];
      if (!state.selected || state.selected.part !== k || state.selected.index !== i) select(k, i, false);
    });
    box.addEventListener("wheel", (event) => {
      event.preventDefault();
      zoomAt(Math.exp(-event.deltaY * 0.0015), event.clientX, event.clientY);
    }, { passive: false });
    box.addEventListener("keydown", onKey);
    setTool(state.tool);
  }

  function start(points) {
    const parts = points.length && Array.isArray(points[0]) && Array.isArray(points[0][0]) ? points : [points];
    state.parts = parts.filter((r) => r.length).map((r) => r.map((p) => [Number(p[0]), Number(p[1])]));
    state.selected = null;
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
        say("the current outline could not be loaded: drag a box around the wound");
      } else {
        const outline = await answer.json();
        width = outline.width;
        height = outline.height;
        loaded = outline.polygons;
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

  const on = (selector, fn) => {
    const el = panel.querySelector(selector);
    if (el) el.addEventListener("click", fn);
  };
  panel.querySelectorAll("button.tool").forEach((b) => b.addEventListener("click", () => setTool(b.dataset.tool)));
  on("button.zoom-in", () => zoomAt(1.5));
  on("button.zoom-out", () => zoomAt(1 / 1.5));
  on("button.zoom-fit", fit);
  on("button.outline-undo", undo);
  on("button.outline-reset", () => { remember(); start(loaded); say("back to the current outline"); });
  const fresh = panel.querySelector("button.outline-new");
  if (fresh) {
    fresh.addEventListener("click", (event) => {
      remember();
      state.prompt = { box: null, points: [] };
      if (event.detail !== 0 || !svg) {
        start([]);
        setTool("vertex");
        say("click around the wound on the photo");
        return;
      }
      // From the keyboard (no pointer): a small triangle at the centre to move and grow.
      const [cx, cy, r] = [state.width / 2, state.height / 2, Math.max(state.width, state.height) / 20];
      start([[cx, cy - r], [cx + r, cy + r], [cx - r, cy + r]].map(rounded));
      select(0, 0, true);
      say("a triangle at the centre: move its vertices with the arrow keys, Insert adds one");
    });
  }
  on("button.clear-outline", () => { remember(); start([]); });
  panel.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z" && !box.contains(event.target)
      && !["INPUT", "TEXTAREA"].includes(event.target.tagName)) {
      undo();
      event.preventDefault();
    }
  });
  field.addEventListener("change", () => {
    try {
      const typed = JSON.parse(field.value);
      if (Array.isArray(typed)) { remember(); start(typed); }
    } catch (error) {
      say("the polygon box is not [[x, y], …]: it is sent as typed");
    }
  });
  window.addEventListener("resize", () => { if (svg) applyView(); });

  if (panel.open) load();
  panel.addEventListener("toggle", () => {
    if (panel.open) load();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("details.correct").forEach(outlineEditor);
});
