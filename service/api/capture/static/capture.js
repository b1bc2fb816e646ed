/* The phone capture page. Talks only to this service (the dashboard session's
 * /dashboard/capture/api calls). A photo is written to IndexedDB with its
 * Idempotency-Key before it is sent and deleted only once the service has answered
 * it (201, or a refusal with a code): a retry resends the same key, so it is never
 * duplicated, and nothing shown as sent can be lost. No patient name is kept. */
"use strict";

const API = document.body.dataset.api;
const $ = (id) => document.getElementById(id);
const GUIDANCE_INTERVAL_MS = 400; // >= 2 updates a second
const PREVIEW_MAX_SIDE = 1280;
const RETRY_MS = 15000;
let me = null;
let still = null; // {blob, name, target: [x, y] | null}
let stream = null;
let guiding = false;
let lastCheck = null;

function status(text, isError) {
  const el = $("status");
  el.textContent = text || "";
  el.className = isError ? "error" : "";
}

function show(id, on) { $(id).hidden = !on; }

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

async function call(path, options) {
  const r = await fetch(API + path, { credentials: "same-origin", ...(options || {}) });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { const e = new Error(body.detail || r.statusText); e.code = body.code; e.status = r.status; throw e; }
  return body;
}

function post(path, json) {
  return call(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf },
    body: JSON.stringify(json),
  });
}

function fill(select, rows, text, empty) {
  select.innerHTML = "";
  if (!rows.length) { const o = new Option(empty, ""); o.disabled = true; select.add(o); }
  for (const row of rows) select.add(new Option(text(row), row.id));
}

// --- picking study, subject, wound ---------------------------------------------------

async function loadStudies() {
  const rows = await call("/studies");
  fill($("study"), rows, (s) => `${s.id} — ${s.name}`, "no study visible to this key");
  await loadSubjects();
}

async function loadSubjects(select) {
  const study = $("study").value;
  const rows = study ? await call(`/studies/${encodeURIComponent(study)}/subjects`) : [];
  fill($("subject"), rows, (s) => `${s.code} (site ${s.site})`, "no subject yet");
  if (select) $("subject").value = select;
  await loadWounds();
}

async function loadWounds(select) {
  const subject = $("subject").value;
  const rows = subject ? await call(`/subjects/${encodeURIComponent(subject)}/wounds`) : [];
  fill($("wound"), rows, (w) => w.label + (w.location ? ` — ${w.location}` : ""), "no wound yet");
  if (select) $("wound").value = select;
  ready();
}

function ready() {
  const ok = Boolean($("wound").value);
  show("visit", ok);
  show("shoot", ok && me.may_upload);
  if (ok && !me.may_upload) status(`A ${me.role} key may not upload photos: ask for an uploader key.`, true);
}

async function addSubject() {
  try {
    const s = await post(`/studies/${encodeURIComponent($("study").value)}/subjects`, { code: $("new-subject").value.trim() });
    $("new-subject").value = "";
    await loadSubjects(s.id);
    status(`Subject ${s.code} added.`);
  } catch (e) { status(e.message, true); }
}

async function addWound() {
  try {
    const w = await post(`/subjects/${encodeURIComponent($("subject").value)}/wounds`, { label: $("new-wound").value.trim() });
    $("new-wound").value = "";
    await loadWounds(w.id);
    status(`Wound ${w.label} added.`);
  } catch (e) { status(e.message, true); }
}

// --- camera and live guidance -------------------------------------------------------

const ADVICE_OK = "Marker found: hold still and take the photo.";

function guidanceText(check) {
  if (!check.marker_found) return "No marker: put the printed marker flat beside the wound, fully in view.";
  if (!check.quality.length) return ADVICE_OK;
  return check.quality.map((q) => q.message).join(" ");
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    status("No camera access in this browser: choose or take a photo below.", true);
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: { ideal: "environment" }, width: { ideal: 4032 }, height: { ideal: 3024 } },
    });
  } catch (e) {
    status(`The camera could not start (${e.name}): choose or take a photo below.`, true);
    return;
  }
  $("preview").srcObject = stream;
  show("camera", true);
  show("start-camera", false);
  guiding = true;
  guide();
}

function stopCamera() {
  guiding = false;
  if (stream) for (const t of stream.getTracks()) t.stop();
  stream = null;
  show("camera", false);
  show("start-camera", true);
}

function frameCanvas(maxSide) {
  const v = $("preview");
  const scale = Math.min(1, maxSide / Math.max(v.videoWidth, v.videoHeight));
  const c = document.createElement("canvas");
  c.width = Math.round(v.videoWidth * scale);
  c.height = Math.round(v.videoHeight * scale);
  c.getContext("2d", { willReadFrequently: true }).drawImage(v, 0, 0, c.width, c.height);
  return c;
}

function canvasBlob(c, quality) {
  return new Promise((resolve) => c.toBlob(resolve, "image/jpeg", quality));
}

function frameBlob(maxSide, quality) { return canvasBlob(frameCanvas(maxSide), quality); }

// Live guidance, two checks on the same preview frame (see README, "The phone capture page"):
// - the phone's own marker check (detector.js, js-aruco2) on every frame: found / too small /
//   off-centre, with no network;
// - the server's pre-check (the upload's own code: marker, blur, exposure, tilt) decides
//   whether the shutter is enabled. It is asked on every frame where the phone sees a marker
//   (or has no detector), and on every SERVER_EVERY_WITHOUT_MARKER-th frame otherwise, so a
//   marker the phone misses is still found. When the service cannot be reached, the phone's
//   check alone enables the shutter (the upload runs every check once it is sent).
const SERVER_EVERY_WITHOUT_MARKER = 3;
const SERVER_STALE_MS = 2000;
let localCheck = null;
let serverDown = false;
let tick = 0;

function markerGuideText(c) {
  if (c.state === "none") return "Phone: no marker in view. Put the printed marker flat beside the wound, fully in view.";
  if (c.state === "small") return `Phone: the marker is small (${Math.round(c.side_px)} px, at least ${me.marker_min_side_px} needed): move the camera closer.`;
  if (c.state === "edge") return "Phone: the marker is near the edge of the picture: aim so it is nearer the middle.";
  return "Phone: marker in view.";
}

function localGuide(canvas) {
  if (!window.markerDetector) { localCheck = null; return; }
  try {
    localCheck = window.markerDetector.check(canvas, me.marker_min_side_px);
  } catch (e) { localCheck = null; return; }
  const g = $("marker-guide");
  g.hidden = false;
  g.textContent = markerGuideText(localCheck);
  g.className = "guidance " + (localCheck.state === "found" ? "ok" : "bad");
  g.dataset.marker = localCheck.state;
  g.dataset.ms = localCheck.ms.toFixed(1);
}

async function serverGuide(canvas, at) {
  const g = $("guidance");
  try {
    const form = new FormData();
    form.append("frame", await canvasBlob(canvas, 0.7), "frame.jpg");
    form.append("study", $("study").value);
    const check = await call("/precheck", { method: "POST", body: form });
    lastCheck = { ...check, at: performance.now(), tick: at };
    serverDown = false;
    g.textContent = guidanceText(lastCheck);
    g.className = "guidance " + (lastCheck.ok ? "ok" : "bad");
    g.dataset.marker = lastCheck.marker_found ? "found" : "none";
  } catch (e) {
    if (e.code === "rate_limited") { g.textContent = "…"; return; }
    serverDown = !e.status || e.status >= 500;
    g.className = "guidance";
    g.dataset.marker = "unknown";
    g.textContent = serverDown && window.markerDetector
      ? "No connection to the service: the marker check above is the phone's own; blur, light and tilt are checked when the photo is sent."
      : `Guidance unavailable (${e.message}).`;
  }
}

async function guide() {
  while (guiding) {
    const started = performance.now();
    const v = $("preview");
    if (v.videoWidth) {
      const canvas = frameCanvas(PREVIEW_MAX_SIDE);
      const at = ++tick;
      localGuide(canvas);
      updateShutter();
      if (!localCheck || localCheck.found || at % SERVER_EVERY_WITHOUT_MARKER === 1) await serverGuide(canvas, at);
      updateShutter();
    }
    const wait = GUIDANCE_INTERVAL_MS - (performance.now() - started);
    await new Promise((r) => setTimeout(r, Math.max(wait, 50)));
  }
}

function updateShutter() {
  const override = $("override").open && $("override-reason").value.trim().length > 0;
  // The server's answer counts while it is fresh and about this frame, or the phone still sees a marker.
  const serverOk = Boolean(lastCheck && lastCheck.usable
    && performance.now() - lastCheck.at < SERVER_STALE_MS
    && (lastCheck.tick === tick || (localCheck && localCheck.found)));
  const phoneOk = Boolean(serverDown && localCheck && localCheck.found && localCheck.state !== "small");
  $("shutter").disabled = !(serverOk || phoneOk || override);
}

async function shutter() {
  const blob = await frameBlob(100000, 0.95);
  stopCamera();
  review(blob, "camera.jpg");
}

// --- review, tap, send ---------------------------------------------------------------

function review(blob, name) {
  still = { blob, name, target: null };
  const img = $("still");
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  show("tap", false);
  show("review", true);
  show("result", false);
  $("send").disabled = false;
}

function tap(event) {
  const img = $("still");
  const rect = img.getBoundingClientRect();
  const x = ((event.clientX - rect.left) / rect.width) * img.naturalWidth;
  const y = ((event.clientY - rect.top) / rect.height) * img.naturalHeight;
  still.target = [Math.round(x), Math.round(y)];
  const dot = $("tap");
  dot.style.left = `${event.clientX - rect.left}px`;
  dot.style.top = `${event.clientY - rect.top}px`;
  show("tap", true);
}

function radio(name) {
  const v = document.querySelector(`input[name=${name}]:checked`).value;
  return v === "" ? null : v;
}

async function send() {
  $("send").disabled = true;
  const fields = { captured_at: $("captured-at").value };
  const visit = $("visit-label").value.trim();
  if (visit) fields.visit = visit;
  for (const name of ["epithelialized", "drainage"]) { const v = radio(name); if (v !== null) fields[name] = v; }
  if (still.target) fields.target_point = still.target.join(",");
  const item = {
    key: newKey(), wound: $("wound").value, fields, name: still.name, blob: still.blob,
    label: `${$("subject").selectedOptions[0].text} ${$("wound").selectedOptions[0].text}`,
    queued_at: new Date().toISOString(),
  };
  await queuePut(item);
  show("review", false);
  await deliver(item, true);
}

function upload(item, onProgress) {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("photo", item.blob, item.name);
    for (const [k, v] of Object.entries(item.fields)) form.append(k, v);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${API}/wounds/${encodeURIComponent(item.wound)}/assessments`);
    xhr.setRequestHeader("Idempotency-Key", item.key);
    xhr.setRequestHeader("X-CSRF-Token", me.csrf);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable && onProgress) onProgress((100 * e.loaded) / e.total); };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => resolve({ status: 0, body: {} });
    xhr.send(form);
  });
}

async function deliver(item, foreground) {
  if (foreground) { show("progress-box", true); $("progress").value = 0; }
  const r = await upload(item, foreground ? (p) => { $("progress").value = p; } : null);
  if (foreground) show("progress-box", false);
  if (r.status === 401) { // the session ended: keep the photo, ask for a new sign-in
    status("Your sign-in has ended: sign in again on the dashboard; the photos waiting here are kept and sent after.", true);
    show("signin", true);
    await renderQueue();
    return false;
  }
  const retry = r.status === 0 || r.status === 429 || r.status >= 500;
  if (retry) {
    if (foreground) status("No connection to the service: the photo is kept on this phone and will be sent when the network returns.", true);
    await renderQueue();
    return false;
  }
  await queueDelete(item.key); // answered: stored, or refused with a reason
  await renderQueue();
  if (r.status === 201) {
    if (foreground) { status(r.body.measurement ? "Measured." : "Sent."); showResult(r.body); }
    else status(`A photo kept offline was sent (${item.label}).`);
    return true;
  }
  status(`The service refused the photo (${r.body.code || r.status}): ${r.body.detail || ""}`, true);
  return false;
}

function fmt(v, digits) { return v === null || v === undefined ? "—" : Number(v).toFixed(digits); }

function showResult(a) {
  const m = a.measurement || {};
  $("area").textContent = m.area_cm2 !== null && m.area_cm2 !== undefined
    ? `${fmt(m.area_cm2, 2)} cm²` : `${m.area_px || 0} pixels (not calibrated)`;
  $("interval").textContent = m.area_cm2_low !== null && m.area_cm2_low !== undefined
    ? `95 % interval ${fmt(m.area_cm2_low, 2)}–${fmt(m.area_cm2_high, 2)} cm²` : "";
  $("overlay").src = `/dashboard/assessments/${encodeURIComponent(a.id)}/overlay.jpg`;
  const list = $("flags");
  list.innerHTML = "";
  for (const q of m.quality || []) {
    const li = document.createElement("li");
    li.textContent = q.message;
    li.dataset.code = q.code;
    if (q.severe) li.className = "severe";
    list.appendChild(li);
  }
  if ((m.components || 0) > 1) {
    const li = document.createElement("li");
    li.textContent = "Several wounds were outlined: retake and tap this wound on the photo before sending.";
    list.appendChild(li);
  }
  show("result", true);
  // The service has the photo now: the page keeps no copy of it.
  const img = $("still");
  if (img.src) { URL.revokeObjectURL(img.src); img.removeAttribute("src"); }
  still = null;
}

// --- the offline queue (IndexedDB) -------------------------------------------------

function db() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open("woundscope-capture", 1);
    req.onupgradeneeded = () => req.result.createObjectStore("pending", { keyPath: "key" });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function store(mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const tx = d.transaction("pending", mode);
    const req = fn(tx.objectStore("pending"));
    tx.oncomplete = () => { d.close(); resolve(req.result); };
    tx.onerror = () => { d.close(); reject(tx.error); };
  });
}

const queuePut = (item) => store("readwrite", (s) => s.put(item));
const queueDelete = (key) => store("readwrite", (s) => s.delete(key));
const queueAll = () => store("readonly", (s) => s.getAll());

async function renderQueue() {
  const items = await queueAll();
  const list = $("queue");
  list.innerHTML = "";
  for (const item of items) {
    const li = document.createElement("li");
    li.textContent = `${item.label}, ${item.fields.captured_at} (taken ${item.queued_at.slice(11, 16)} UTC)`;
    li.dataset.key = item.key;
    list.appendChild(li);
  }
  show("queue-box", items.length > 0);
  return items;
}

let flushing = false;
async function flush() {
  if (flushing || !me) return;
  flushing = true;
  try {
    for (const item of await queueAll()) {
      if (!(await deliver(item, false)) && !navigator.onLine) break;
    }
  } finally { flushing = false; }
}

// --- start -----------------------------------------------------------------------------

async function start() {
  $("captured-at").value = new Date().toISOString().slice(0, 10);
  try {
    me = await call("/session");
  } catch (e) {
    show("signin", true);
    status(e.status === 401 ? "Not signed in." : e.message, e.status !== 401);
    return;
  }
  $("who").textContent = `${me.holder} · ${me.role}${me.site ? " · site " + me.site : ""}`;
  for (const el of document.querySelectorAll("[data-create]")) el.hidden = !me.may_create;
  show("pick", true);
  $("study").addEventListener("change", () => loadSubjects().catch((e) => status(e.message, true)));
  $("subject").addEventListener("change", () => loadWounds().catch((e) => status(e.message, true)));
  $("wound").addEventListener("change", ready);
  $("add-subject").addEventListener("click", addSubject);
  $("add-wound").addEventListener("click", addWound);
  $("start-camera").addEventListener("click", startCamera);
  $("shutter").addEventListener("click", shutter);
  $("override").addEventListener("toggle", updateShutter);
  $("override-reason").addEventListener("input", updateShutter);
  $("file").addEventListener("change", () => {
    const f = $("file").files[0];
    if (f) { stopCamera(); review(f, f.name || "photo.jpg"); }
    $("file").value = "";
  });
  $("still").addEventListener("click", tap);
  $("send").addEventListener("click", () => send().catch((e) => status(e.message, true)));
  $("discard").addEventListener("click", () => { show("review", false); still = null; });
  $("retake").addEventListener("click", () => { show("result", false); $("start-camera").focus(); });
  $("next").addEventListener("click", () => { show("result", false); });
  window.addEventListener("online", flush);
  setInterval(() => { if (navigator.onLine) flush(); }, RETRY_MS);
  try { await loadStudies(); } catch (e) { status(e.message, true); }
  await renderQueue();
  flush();
}

start();
