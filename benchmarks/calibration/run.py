"""Calibration benchmark: how true is the cm² on a photo taken by hand?

    nice -n 10 .venv/bin/python -m benchmarks.calibration                  # 6 repo samples
    nice -n 10 .venv/bin/python -m benchmarks.calibration --fuseg ../shared/datasets/fuseg2021
    options: --cases N (default 240), --seed S, --no-model, --model ID|DIR, --out FILE.md

Each case is honest and synthetic: a real FUSeg photo and its expert mask are laid
on a flat plane at a random true size (the 512 px photo spans 50-100 mm), with a
printed 20 mm ArUco marker (random id, position beside the wound, rotation), and
photographed by the virtual pinhole camera of ``service/simulator/scene.py`` at a random tilt
(0-60°, any direction), rotation, distance, focal length, defocus blur, exposure,
sensor noise and JPEG quality. The true area is the plane mask's, exactly.

For every case, ``service.core.measure.measure`` is run on the rendered photo with:
- the photo's true mask (the plane mask warped to the photo: only calibration and
  pixel quantisation can err) — with perspective correction (the marker's
  homography), and without it (the marker's scale alone, px/mm at the marker, as a
  ruler would give);
- the bundled model's mask (end to end), when a model is installed.

It prints, and writes to ``benchmarks/calibration/RESULTS.md``, the |area error| %
(median, p95, max) by tilt band, the 95 % interval's coverage and half-width, the
tilt estimate's error, and detection failures. Targets (true masks, tilt <= 45°):
median <= 1 %, p95 <= 3 %, coverage >= 90 %.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from service.core.imaging import read_mask, read_photo
from service.core.marker import detect_markers
from service.core.measure import measure
from service.simulator import scene

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples" / "fuseg"
BANDS = [(0, 15), (15, 30), (30, 45), (45, 60)]
OUT_SIZES = [(1024, 768), (1280, 960), (1600, 1200), (768, 1024)]
PLANE_PX_PER_MM = 8.0


@dataclass(frozen=True)
class Case:
    """One synthetic photo with its truth."""

    name: str
    rgb: np.ndarray
    true_mask: np.ndarray
    true_area_cm2: float
    tilt_deg: float
    """The camera's tilt: its optical axis vs the plane's normal."""
    params: dict


def pairs(fuseg: Path | None) -> list[tuple[str, Path, Path]]:
    """(name, photo, mask) pairs with a wound: the repo samples, or FUSeg validation."""
    folder = (fuseg / "validation") if fuseg else SAMPLES
    out = []
    for img in sorted((folder / "images").glob("*.jpg")):
        label = folder / "labels" / f"{img.stem}.png"
        if label.exists():
            out.append((img.stem, img, label))
    return out


def make_case(
    name: str, photo_rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> Case | None:
    """Lay the photo and mask on a plane with a marker and photograph it at random."""
    field_mm = rng.uniform(50, 100)  # what the 512 px photo spans on the skin
    size_px = round(field_mm * PLANE_PX_PER_MM)
    skin = photo_rgb[(mask == 0) & (photo_rgb.max(axis=2) > 30)]
    skin_rgb = np.median(skin, axis=0) if len(skin) else np.array([190, 140, 120])
    photo_big = cv2.resize(photo_rgb, (size_px, size_px), interpolation=cv2.INTER_CUBIC)
    mask_big = cv2.resize(mask, (size_px, size_px), interpolation=cv2.INTER_NEAREST)
    pad_mm = 45.0
    pad = round(pad_mm * PLANE_PX_PER_MM)
    side = int(rng.integers(4))  # marker left, right, above or below the photo
    h = w = size_px
    plane_h = h + (pad if side >= 2 else 0)
    plane_w = w + (pad if side < 2 else 0)
    plane = np.empty((plane_h, plane_w, 3), np.uint8)
    noise = rng.normal(0, 6, (plane_h // 8 + 1, plane_w // 8 + 1, 3))
    texture = cv2.resize(noise, (plane_w, plane_h), interpolation=cv2.INTER_CUBIC)
    plane[:] = np.clip(skin_rgb + texture, 0, 255).astype(np.uint8)
    plane_mask = np.zeros((plane_h, plane_w), np.uint8)
    oy = pad if side == 2 else 0
    ox = pad if side == 0 else 0
    plane[oy : oy + h, ox : ox + w] = photo_big
    plane_mask[oy : oy + h, ox : ox + w] = mask_big
    along = rng.uniform(0.25, 0.75) * field_mm
    across = pad_mm / 2 + rng.uniform(-4, 4)
    centre = {
        0: (across, along),
        1: (field_mm + across, along),
        2: (along, across),
        3: (along, field_mm + across),
    }[side]
    plane, corners_mm = scene.paste_marker(
        plane,
        PLANE_PX_PER_MM,
        centre,
        20.0,
        marker_id=int(rng.integers(50)),
        rotation_deg=rng.uniform(0, 360),
    )
    out_size = OUT_SIZES[int(rng.integers(len(OUT_SIZES)))]
    extent_mm = math.hypot(plane_w, plane_h) / PLANE_PX_PER_MM
    ys, xs = np.nonzero(plane_mask)
    look = (
        (xs.mean() + np.mean(corners_mm[:, 0]) * PLANE_PX_PER_MM) / 2 / PLANE_PX_PER_MM,
        (ys.mean() + np.mean(corners_mm[:, 1]) * PLANE_PX_PER_MM) / 2 / PLANE_PX_PER_MM,
    )
    tilt = rng.uniform(0, 60)
    for _ in range(20):
        distance = rng.uniform(150, 450)
        focal = scene.fit_focal_px(out_size, distance, extent_mm * rng.uniform(0.7, 1.3))
        pose = scene.CameraPose(
            tilt_deg=tilt,
            tilt_axis_deg=rng.uniform(0, 360),
            rotation_deg=rng.uniform(0, 360),
            distance_mm=distance,
            focal_px=focal,
            look_at_mm=look,
        )
        h_mm = scene.plane_mm_to_photo(pose, out_size, look)
        pts = np.vstack(
            [corners_mm, np.column_stack([xs, ys])[:: max(1, len(xs) // 500)] / PLANE_PX_PER_MM]
        )
        proj = cv2.perspectiveTransform(pts.reshape(-1, 1, 2), h_mm).reshape(-1, 2)
        margin = 8
        if np.all((proj >= margin) & (proj < np.array(out_size) - margin)):
            break
    else:
        return None
    blur = rng.uniform(0.0, 1.5)
    params = {
        "field_mm": round(field_mm, 1),
        "tilt_deg": round(tilt, 1),
        "distance_mm": round(distance, 0),
        "blur_px": round(blur, 2),
        "out_size": out_size,
    }
    photo = scene.render(
        plane,
        PLANE_PX_PER_MM,
        pose,
        out_size,
        blur_sigma_px=blur,
        jpeg_quality=int(rng.integers(70, 96)),
        gain=rng.uniform(0.7, 1.3),
        noise_sigma=0.004,
        seed=int(rng.integers(1 << 30)),
    )
    true_mask = scene.warp_mask(plane_mask, PLANE_PX_PER_MM, photo.H_plane_mm_to_photo, out_size)
    return Case(
        name=name,
        rgb=photo.rgb,
        true_mask=true_mask,
        true_area_cm2=scene.true_area_cm2(plane_mask, PLANE_PX_PER_MM),
        tilt_deg=tilt,
        params=params,
    )


def _stats(errors: list[float]) -> str:
    if not errors:
        return "– | – | –"
    a = np.abs(np.asarray(errors))
    return f"{np.median(a):.2f} | {np.percentile(a, 95):.2f} | {a.max():.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fuseg", type=Path, help="the FUSeg copy (uses its validation split)")
    ap.add_argument("--cases", type=int, default=240)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-model", action="store_true", help="skip the model's masks")
    ap.add_argument("--model", help="model folder or installed id (default: highest installed)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    sources = pairs(args.fuseg)
    loaded = []
    for name, img, lab in sources:
        rgb = read_photo(img).rgb
        mask = read_mask(lab, shape=rgb.shape[:2])
        if np.count_nonzero(mask) >= 200:  # an empty or speck mask has no area to err on
            loaded.append((name, rgb, mask))
    segmenter = None
    model_note = "model: skipped (--no-model)"
    if not args.no_model:
        try:
            from service.runtime.artifacts import resolve_model
            from service.runtime.inference import Segmenter

            segmenter = Segmenter(resolve_model(args.model))
            model_note = f"model: {segmenter.id} (sha256 {segmenter.sha256[:12]})"
        except Exception as exc:  # noqa: BLE001 - no model installed yet is a normal state
            model_note = f"model: none ({exc}); the model column is empty"
    print(model_note, file=sys.stderr)

    rows = []
    started = time.perf_counter()
    for i in range(args.cases):
        name, rgb, mask = loaded[i % len(loaded)]
        case = make_case(name, rgb, mask, rng)
        if case is None:
            continue
        markers = detect_markers(case.rgb)
        m = measure(case.rgb, case.true_mask, markers=markers)
        row = {"case": case, "found": m.calibration == "marker", "tilt": case.tilt_deg}
        if m.area_cm2 is not None and m.px_per_mm:
            truth = case.true_area_cm2
            row["pc"] = 100 * (m.area_cm2 / truth - 1)
            row["covered"] = m.area_cm2_low <= truth <= m.area_cm2_high  # type: ignore[operator]
            row["half_pct"] = 100 * (m.area_cm2_high - m.area_cm2_low) / 2 / m.area_cm2  # type: ignore[operator]
            # Without perspective correction: the marker's scale (px/mm) alone.
            row["nopc"] = 100 * (m.area_px / m.px_per_mm**2 / 100 / truth - 1)
            row["tilt_err"] = (m.tilt_deg or 0.0) - case.tilt_deg
            row["codes"] = [f.code for f in m.quality]
            if segmenter is not None:
                seg = segmenter.segment(case.rgb)
                h = segmenter.outline_log_halfwidth(case.rgb, seg, seg.mask)
                mm = measure(case.rgb, seg.mask, markers=markers, segmentation_log_halfwidth=h)
                if mm.area_cm2 is not None:
                    row["model"] = 100 * (mm.area_cm2 / truth - 1)
                    row["model_covered"] = mm.area_cm2_low <= truth <= mm.area_cm2_high  # type: ignore[operator]
                    row["model_half_pct"] = (
                        100 * (mm.area_cm2_high - mm.area_cm2_low) / 2 / mm.area_cm2
                    )  # type: ignore[operator]
                    row["model_flagged"] = any(f.code == "outline_uncertain" for f in mm.quality)
        rows.append(row)
        if (i + 1) % 40 == 0:
            print(
                f"{i + 1}/{args.cases} cases, {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )

    table = report(rows, args, model_note, len(loaded))
    print(table)
    args.out.write_text(table)
    return 0


def model_interval_lines(rows: list[dict]) -> list[str]:
    """The interval a trial is given with the model's own outline: does it hold the truth,
    how wide is it, and are the badly wrong areas flagged ``outline_uncertain``?"""
    with_model = [r for r in rows if "model_covered" in r]
    if not with_model:
        return []
    out = ["", "With the model's masks (the interval the service reports: marker and outline):", ""]
    out += [
        "| tilt | n | coverage | median half-width | off > 30 %: flagged | within 10 %: flagged |"
    ]
    out += ["| --- | --- | --- | --- | --- | --- |"]
    for lo, hi in [(0, 45), (0, 60)]:
        sel = [r for r in with_model if r["tilt"] < hi and r["tilt"] >= lo]
        if not sel:
            continue
        cov = 100 * np.mean([r["model_covered"] for r in sel])
        half = np.median([r["model_half_pct"] for r in sel])
        bad = [r for r in sel if abs(r["model"]) > 30]
        good = [r for r in sel if abs(r["model"]) <= 10]
        bad_s = f"{sum(r['model_flagged'] for r in bad)} of {len(bad)}" if bad else "–"
        good_s = f"{sum(r['model_flagged'] for r in good)} of {len(good)}" if good else "–"
        out.append(
            f"| {lo}–{hi}° | {len(sel)} | {cov:.1f} % | ±{half:.0f} % | {bad_s} | {good_s} |"
        )
    return out


def report(rows: list[dict], args: argparse.Namespace, model_note: str, n_sources: int) -> str:
    src = (
        f"FUSeg validation at {args.fuseg}"
        if args.fuseg
        else "the 6 repo samples (data/samples/fuseg)"
    )
    cmd = "python -m benchmarks.calibration" + (f" --fuseg {args.fuseg}" if args.fuseg else "")
    cmd += f" --cases {args.cases} --seed {args.seed}" + (" --no-model" if args.no_model else "")
    lines = [
        "# Calibration benchmark",
        "",
        f"`{cmd}` — {len(rows)} synthetic photos from {src} ({n_sources} photos with a wound);",
        f"{model_note}; {platform.machine()}, Python {platform.python_version()}.",
        "",
        "Signed-error magnitudes |measured / true − 1| in %, as median | p95 | max. *PC*: with",
        "perspective correction (marker homography); *no PC*: the marker's px/mm alone;",
        "*true*: the photo's true mask; *model*: the model's mask, end to end. Coverage: share of",
        "true-mask cases whose 95 % interval holds the true area; half-width: its mean ± %.",
        "",
        "| tilt | n | found | PC true: median | p95 | max | no PC true: median | p95 | max"
        " | PC model: median | p95 | max | coverage | half-width | tilt err (median, °) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    bands = [*BANDS, (0, 45), (0, 60)]
    for lo, hi in bands:
        sel = [r for r in rows if lo <= r["tilt"] < hi or (hi == 60 and r["tilt"] >= 60)]
        ok = [r for r in sel if "pc" in r]
        cov = f"{100 * np.mean([r['covered'] for r in ok]):.1f} %" if ok else "–"
        half = f"±{np.mean([r['half_pct'] for r in ok]):.2f} %" if ok else "–"
        terr = f"{np.median(np.abs([r['tilt_err'] for r in ok])):.1f}" if ok else "–"
        label = f"**{lo}–{hi}°**" if (lo, hi) in ((0, 45), (0, 60)) else f"{lo}–{hi}°"
        lines.append(
            f"| {label} | {len(sel)} | {len(ok)} | {_stats([r['pc'] for r in ok])} |"
            f" {_stats([r['nopc'] for r in ok])} | {_stats([r['model'] for r in ok if 'model' in r])} |"
            f" {cov} | {half} | {terr} |"
        )
    lines.append("")
    within = [r for r in rows if r["tilt"] < 45 and "pc" in r]
    if within:
        a = np.abs([r["pc"] for r in within])
        cov = 100 * np.mean([r["covered"] for r in within])
        verdict = all([np.median(a) <= 1.0, np.percentile(a, 95) <= 3.0, cov >= 90.0])
        lines.append(
            f"Targets (true masks, tilt < 45°): median {np.median(a):.2f} % (≤ 1), p95"
            f" {np.percentile(a, 95):.2f} % (≤ 3), coverage {cov:.1f} % (≥ 90): "
            + ("**met**." if verdict else "**not met**.")
        )
    lines.extend(model_interval_lines(rows))
    missed = [r for r in rows if not r["found"]]
    lines.append(
        f"Marker not found in {len(missed)} of {len(rows)} photos (counted in n, not in the errors)."
    )
    codes: dict[str, int] = {}
    for r in rows:
        for c in r.get("codes", []):
            codes[c] = codes.get(c, 0) + 1
    if codes:
        lines.append(
            "Flags raised: " + ", ".join(f"`{c}` {n}" for c, n in sorted(codes.items())) + "."
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
