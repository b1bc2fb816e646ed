/* The in-browser marker check of the capture page: js-aruco2 (vendored, see
 * vendor/SOURCE.md) finds the printed DICT_4X4_50 marker in a preview frame on the
 * phone, with no network, so "marker found / too small / off-centre" updates even
 * offline and without a round trip. Blur, exposure and tilt stay with the server's
 * pre-check, which runs the upload's own code (service/precheck.py).
 *
 * window.markerDetector = null when the vendored scripts did not load.
 * markerDetector.check(canvas, minSidePx[, {halfPass}]) -> {found, state, markers,
 *   side_px, centre_offset, pass, ms}: state is "none" | "small" | "edge" | "found".
 *
 * Two passes: the frame as it is, then (only when that found nothing) a half-size copy.
 * js-aruco2's adaptive threshold has a fixed small window, so at full size it loses a
 * strongly blurred marker that the half-size copy still shows with sharp enough edges;
 * the half-size copy alone loses markers under about 70 px (benchmarks/capture_browser.py). */
"use strict";

(function () {
  const CENTRE_ZONE = 0.6;
  const HALF_PASS_MIN_SIDE_PX = 800; // a frame smaller than this gets no half-size pass
  // The marker's centre must lie in the middle 60 % of the frame (each axis): near the
  // edge the lens distorts most and a small move puts the marker out of the photo.
  if (typeof AR === "undefined" || !AR.DICTIONARIES || !AR.DICTIONARIES.ARUCO_4X4_1000) {
    window.markerDetector = null;
    return;
  }
  // DICT_4X4_50 = the first 50 codes of ARUCO_4X4_1000; tau 1 = exact match only.
  AR.DICTIONARIES.DICT_4X4_50 = {
    nBits: 16, tau: 1, codeList: AR.DICTIONARIES.ARUCO_4X4_1000.codeList.slice(0, 50),
  };
  const detector = new AR.Detector({ dictionaryName: "DICT_4X4_50", maxHammingDistance: 1 });

  function side(corners) {
    let sum = 0;
    for (let i = 0; i < 4; i++) {
      const a = corners[i], b = corners[(i + 1) % 4];
      sum += Math.hypot(b.x - a.x, b.y - a.y);
    }
    return sum / 4;
  }

  function detect(imageData) {
    return detector.detectImage(imageData.width, imageData.height, imageData.data).map((m) => ({
      id: m.id, corners: m.corners.map((p) => [p.x, p.y]), side_px: side(m.corners),
    }));
  }

  function pixels(canvas) {
    return canvas.getContext("2d", { willReadFrequently: true })
      .getImageData(0, 0, canvas.width, canvas.height);
  }

  function detectHalf(canvas) {
    const half = document.createElement("canvas");
    half.width = Math.round(canvas.width / 2);
    half.height = Math.round(canvas.height / 2);
    half.getContext("2d", { willReadFrequently: true }).drawImage(canvas, 0, 0, half.width, half.height);
    const sx = canvas.width / half.width, sy = canvas.height / half.height;
    return detect(pixels(half)).map((m) => {
      const corners = m.corners.map(([x, y]) => [x * sx, y * sy]);
      return { id: m.id, corners, side_px: side(corners.map(([x, y]) => ({ x, y }))) };
    });
  }

  function check(canvas, minSidePx, options) {
    const halfPass = !options || options.halfPass !== false;
    const t0 = performance.now();
    let markers = detect(pixels(canvas));
    let pass = "full";
    if (!markers.length && halfPass && Math.max(canvas.width, canvas.height) >= HALF_PASS_MIN_SIDE_PX) {
      markers = detectHalf(canvas);
      pass = "half";
    }
    const ms = performance.now() - t0;
    if (!markers.length) return { found: false, state: "none", markers, side_px: null, centre_offset: null, pass, ms };
    const m = markers.reduce((a, b) => (b.side_px > a.side_px ? b : a));
    const cx = m.corners.reduce((s, p) => s + p[0], 0) / 4;
    const cy = m.corners.reduce((s, p) => s + p[1], 0) / 4;
    // 0 at the frame's centre, 1 at its edge (the larger of the two axes).
    const offset = Math.max(Math.abs(2 * cx / canvas.width - 1), Math.abs(2 * cy / canvas.height - 1));
    let state = "found";
    if (minSidePx && m.side_px < minSidePx) state = "small";
    else if (offset > CENTRE_ZONE) state = "edge";
    return { found: true, state, markers, side_px: m.side_px, centre_offset: offset, pass, ms };
  }

  window.markerDetector = { check, detect, CENTRE_ZONE };
})();
