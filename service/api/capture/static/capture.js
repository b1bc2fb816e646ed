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
let starting = false;
let lastCheck = null;
let replacing = null; // {id, reason}: the photo the next one sent retakes
let lastResult = null; // the latest answered photo shown in the result box

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
const NO_MARKER = "No marker: put the printed marker flat beside the wound, fully in view.";

async function startCamera() {
  // One stream at a time: a second press (or a press while starting) does nothing, so
  // there is never a second stream nor doubled pre-checks.
  if (stream || starting) return;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    status("No camera access in this browser: choose or take a photo below.", true);
    return;
  }
  starting = true;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: { ideal: "environment" }, width: { ideal: 4032 }, height: { ideal: 3024 } },
    });
  } catch (e) {
    status(`The camera could not start (${e.name}): choose or take a photo below.`, true);
    return;
  } finally { starting = false; }
  $("preview").srcObject = stream;
  show("camera", true);
  show("start-camera", false);
  document.body.classList.add("camera-on");
  lastCheck = null;
  localCheck = null;
  renderGuidance();
  if (!guiding) { guiding = true; guide(); }
}

function stopCamera() {
  guiding = false;
  if (stream) for (const t of stream.getTracks()) t.stop();
  stream = null;
  show("camera", false);
  show("start-camera", true);
  document.body.classList.remove("camera-on");
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

// Live guidance, two checks on the same preview frame, shown as ONE list (see README,
// "The phone capture page"):
// - the server's pre-check (the upload's own code: marker, blur, exposure, tilt) is the
//   authority while its answer is fresh: it decides the shutter and the list; the
//   phone's own check adds only what the server does not judge (the marker's place in
//   the frame), as a tip, never as a contradicting verdict;
// - the phone's marker check (detector.js, js-aruco2) speaks alone only when the server
//   cannot be reached (or has not answered yet); then it enables the shutter by itself
//   (the upload runs every check once it is sent).
// The server is asked on every frame where the phone sees a marker (or has no
// detector), and on every SERVER_EVERY_WITHOUT_MARKER-th frame otherwise.
const SERVER_EVERY_WITHOUT_MARKER = 3;
const SERVER_STALE_MS = 2000;
let localCheck = null;
let serverDown = false;
let serverNote = null; // why the server's check is missing, when it is
let tick = 0;

function phoneItems(c) {
  if (c.state === "none") return [{ text: NO_MARKER, kind: "bad" }];
  if (c.state === "small") return [{ text: `The marker is small (${Math.round(c.side_px)} px, at least ${me.marker_min_side_px} needed): move the camera closer.`, kind: "bad" }];
  if (c.state === "edge") return [{ text: "The marker is near the edge of the picture: aim so it is nearer the middle.", kind: "bad" }];
  return [];
}

function serverFresh() {
  return Boolean(lastCheck && performance.now() - lastCheck.at < SERVER_STALE_MS);
}

// The one list: {state: "ok" | "bad" | "wait", marker: "found" | "none" | "unknown", items}.
function mergedGuidance() {
  if (serverFresh()) {
    const items = [];
    if (!lastCheck.marker_found) items.push({ text: NO_MARKER, kind: "bad" });
    for (const q of lastCheck.quality) {
      if (q.code === "marker_not_found") continue;
      items.push({ text: q.message, kind: lastCheck.usable && !q.severe ? "tip" : "bad" });
    }
    if (lastCheck.usable && localCheck && localCheck.state === "edge") {
      items.push({ text: "Tip: aim so the marker is nearer the middle of the picture.", kind: "tip" });
    }
    if (lastCheck.usable) items.unshift({ text: ADVICE_OK, kind: "ok" });
    return { state: lastCheck.usable ? "ok" : "bad", marker: lastCheck.marker_found ? "found" : "none", items };
  }
  const items = [];
  let marker = "unknown";
  let state = "wait";
  if (localCheck) {
    marker = localCheck.state === "none" ? "none" : "found";
    const own = phoneItems(localCheck);
    items.push(...own);
    if (serverDown && localCheck.found && localCheck.state !== "small" && !own.length) {
      items.unshift({ text: ADVICE_OK, kind: "ok" });
      state = "ok";
    } else if (own.length) state = "bad";
    else if (!serverDown) items.push({ text: "Marker found: checking focus, light and tilt…", kind: "tip" });
  }
  if (serverNote) items.push({ text: serverNote, kind: "tip" });
  if (!items.length) items.push({ text: "Checking the picture…", kind: "tip" });
  return { state, marker, items };
}

function renderGuidance() {
  const g = $("guidance");
  const merged = mergedGuidance();
  g.replaceChildren(...merged.items.map((item) => {
    const li = document.createElement("li");
    li.textContent = item.text;
    li.className = item.kind;
    return li;
  }));
  g.className = "guidance " + (merged.state === "wait" ? "" : merged.state);
  g.dataset.marker = merged.marker;
  // What the phone's own detector sees, whatever the server said (tests read it).
  g.dataset.phone = localCheck ? (localCheck.state === "none" ? "none" : "found") : "unknown";
  if (localCheck) g.dataset.ms = localCheck.ms.toFixed(1);
}

function localGuide(canvas) {
  if (!window.markerDetector) { localCheck = null; return; }
  try {
    localCheck = window.markerDetector.check(canvas, me.marker_min_side_px);
  } catch (e) { localCheck = null; }
}

async function serverGuide(canvas, at) {
  try {
    const form = new FormData();
    form.append("frame", await canvasBlob(canvas, 0.7), "frame.jpg");
    form.append("study", $("study").value);
    const check = await call("/precheck", { method: "POST", body: form });
    lastCheck = { ...check, at: performance.now(), tick: at };
    serverDown = false;
    serverNote = null;
  } catch (e) {
    if (e.code === "rate_limited") return;
    serverDown = !e.status || e.status >= 500;
    serverNote = serverDown
      ? "No connection to the service: blur, light and tilt are checked when the photo is sent."
      : `The service's check is unavailable (${e.message}).`;
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
      renderGuidance();
      updateShutter();
      if (!localCheck || localCheck.found || at % SERVER_EVERY_WITHOUT_MARKER === 1) await serverGuide(canvas, at);
      if (!guiding) break;
      renderGuidance();
      updateShutter();
    }
    const wait = GUIDANCE_INTERVAL_MS - (performance.now() - started);
    await new Promise((r) => setTimeout(r, Math.max(wait, 50)));
  }
}

function updateShutter() {
  const override = $("override").open && $("override-reason").value.trim().length > 0;
  $("shutter").disabled = !(mergedGuidance().state === "ok" || override);
}

async function shutter() {
  const blob = await frameBlob(100000, 0.95);
  stopCamera();
  review(blob, "camera.jpg");
}

// --- review, tap, send ---------------------------------------------------------------

function review(blob, name) {
  still = { blob, name, target: null };
  const note = $("replacing");
  note.hidden = !replacing;
  note.textContent = replacing ? `This photo replaces the earlier one, which is voided once this is sent (reason: ${replacing.reason}).` : "";
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
  if (replacing) { fields.replaces = replacing.id; fields.replace_reason = replacing.reason; }
  const item = {
    key: newKey(), wound: $("wound").value, fields, name: still.name, blob: still.blob,
    label: `${$("subject").selectedOptions[0].text} ${$("wound").selectedOptions[0].text}`,
    queued_at: new Date().toISOString(),
  };
  replacing = null;
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
    addSent(item, r.body, !foreground);
    const replaced = r.body.replaced ? " The earlier photo is voided." : "";
    if (foreground) { status((r.body.measurement ? "Measured." : "Sent.") + replaced); showResult(r.body); }
    else status(`A photo kept offline was sent: ${item.label}, ${areaText(r.body)}.${replaced}`);
    return true;
  }
  // A refusal names what to do (its code stays a data attribute, not the words).
  status(`The service refused the photo: ${r.body.detail || r.status}`, true);
  $("status").dataset.code = r.body.code || "";
  return false;
}

function fmt(v, digits) { return v === null || v === undefined ? "—" : Number(v).toFixed(digits); }

function areaText(a) {
  const m = a.measurement || {};
  return m.area_cm2 !== null && m.area_cm2 !== undefined
    ? `${fmt(m.area_cm2, 2)} cm²` : `${m.area_px || 0} pixels (not calibrated)`;
}

// The service's flags in the dashboard's words (the answer's "advice"): the one list of
// what the phone says about a sent photo, so it always agrees with what was stored.
function adviceList(list, a) {
  list.replaceChildren();
  for (const q of a.advice || []) {
    const li = document.createElement("li");
    li.textContent = q.text;
    li.dataset.code = q.code;
    if (q.severe) li.className = "severe";
    list.appendChild(li);
  }
}

function addSent(item, a, late) {
  const li = document.createElement("li");
  li.dataset.assessment = a.id;
  if (late) li.className = "late";
  const head = document.createElement("div");
  head.textContent = `${item.label}, taken ${clock(item.queued_at)}: ${areaText(a)}`
    + (late ? " (sent after reconnecting)" : "");
  const flags = document.createElement("ul");
  flags.className = "flags";
  adviceList(flags, a);
  li.append(head, flags);
  $("sent").prepend(li);
  show("sent-box", true);
}

function showResult(a) {
  const m = a.measurement || {};
  lastResult = a;
  $("area").textContent = areaText(a);
  $("interval").textContent = m.area_cm2_low !== null && m.area_cm2_low !== undefined
    ? `95 % interval ${fmt(m.area_cm2_low, 2)}–${fmt(m.area_cm2_high, 2)} cm²` : "";
  $("overlay").src = `/dashboard/assessments/${encodeURIComponent(a.id)}/overlay.jpg`;
  adviceList($("flags"), a);
  show("retake-why", false);
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
    li.textContent = `${item.label}, ${item.fields.captured_at} (taken ${clock(item.queued_at)})`;
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

// --- the clinic's wall clock ---------------------------------------------------------

// Times and today's date in the site's time zone (the service's clinic_timezone; the
// phone's own zone when the service names none), never in UTC.
function zone() { return (me && me.timezone) || undefined; }

function clock(iso) {
  return new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", timeZone: zone() })
    .format(new Date(iso));
}

function today() {
  // en-CA formats a date as YYYY-MM-DD, what <input type=date> takes.
  return new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", day: "2-digit", timeZone: zone() })
    .format(new Date());
}

// --- retake ----------------------------------------------------------------------------

function askRetake() {
  show("retake-why", true);
  show("retake-error", false);
  $("retake-reason").focus();
}

function retake() {
  const reason = $("retake-reason").value.trim();
  if (!reason) {
    $("retake-error").textContent = "Say why the photo is retaken: it is voided with this reason.";
    show("retake-error", true);
    $("retake-reason").setAttribute("aria-invalid", "true");
    $("retake-reason").focus();
    return;
  }
  $("retake-reason").removeAttribute("aria-invalid");
  replacing = { id: lastResult.id, reason };
  $("retake-reason").value = "";
  show("result", false);
  startCamera();
}

// --- start -----------------------------------------------------------------------------

async function start() {
  try {
    me = await call("/session");
  } catch (e) {
    show("signin", true);
    status(e.status === 401 ? "Not signed in." : e.message, e.status !== 401);
    return;
  }
  $("captured-at").value = today();
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
  $("close-camera").addEventListener("click", stopCamera);
  $("retake").addEventListener("click", askRetake);
  $("retake-go").addEventListener("click", retake);
  $("next").addEventListener("click", () => { show("result", false); replacing = null; });
  window.addEventListener("online", flush);
  setInterval(() => { if (navigator.onLine) flush(); }, RETRY_MS);
  try { await loadStudies(); } catch (e) { status(e.message, true); }
  await renderQueue();
  flush();
}

start();
