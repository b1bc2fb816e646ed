"""Calibrate a released model's outline uncertainty and write it into its model.json.

    python -m training.calibrate_uncertainty models/ulcerseg-2.0.0 [--fuseg DIR] [--ood DIR]
        [--sizes 224,512] [--write] [--out benchmarks/model/UNCERTAINTY-<model>.md]

Split-conformal (``service.core.uncertainty``) on photos never trained on: FUSeg validation,
its re-framed views (the wound filling 1-40 % of the frame), injury-ood, woundseg-dfu
validation (another clinic), and a virtual
trial of FUSeg validation wounds photographed as a site would (``VIRTUAL_TRIAL``). Every
photo is segmented as the service does; its signals (band, size, fill) and the true
area are kept (cached in ``runs/``, so a new grid is a re-fit). The photos are split in two by a hash of their set and name: on the
*fit* half a small grid of (size_coef, fill_coef, floor) is tried, each with its
conformal q, and the one with the narrowest interval (mean of the sets' medians) kept; the *held-out*
half reports the coverage per set, which is what the model card quotes. ``--write``
stores the constants in model.json (the ONNX file and its sha256 are untouched).
Torch-free.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from service.config import model_settings_from_env
from service.core.contract import PassSpec, UncertaintySpec, save_spec
from service.core.imaging import read_mask, read_photo
from service.core.measure import SEGMENTATION_UNCERTAIN_PCT, select_component
from service.core.uncertainty import (
    OutlineSignals,
    calibration_half,
    disagreement,
    halfwidth_pct,
    needs_check_look,
    nonconformity,
    outline_signals,
)
from service.runtime.artifacts import models_dirs, resolve_model
from service.runtime.inference import Segmenter
from service.runtime.yardsticks import Yardstick, yardsticks
from service.simulator.demo import deepest_point
from service.simulator.simulate import simulate_trial

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
GRID_SIZE_COEF = (0.0, 1.0, 3.0, 6.0)
GRID_FILL_COEF = (0.0, 0.5, 1.0, 2.0)
GRID_FLOOR = (0.02, 0.05, 0.1)
GRID_BAND_COEF = (0.0, 0.5, 1.0)
GRID_DISAGREE_COEF = (0.5, 1.0, 2.0, 4.0)
CHECK_LOOKS = {"hflip": PassSpec(hflip=True), "zoom0.5": PassSpec(zoom=0.5)}
"""The second looks tried: mirrored (does the outline hold under a flip?) and zoomed out
(does it hold at half the scale? close-ups are where the model errs most)."""
GRID_CHECK_MIN_SCALE = (0.0, 0.08, 0.15)
"""A check look is made only when the first look's scale (without it) is at least this:
a sure first look needs no second opinion (``needs_check_look``)."""
GRID_CHECK_MIN_FILL = (0.0, 0.03, 0.1)
"""A check look is made only for wounds filling at least this share of the photo: a far
shot zoomed out further shows the model a wound too small to see, a disagreement that
says nothing about the outline."""


@dataclass(frozen=True)
class Row:
    set: str
    name: str
    true_px: int
    signals: OutlineSignals
    disagree: dict[str, float]
    """Per check look (``CHECK_LOOKS``): its disagreement with the first look."""

    def with_check(self, u: UncertaintySpec) -> OutlineSignals:
        """The signals the service computes for this photo under ``u``: the check
        look's disagreement only where the runtime would make it (``needs_check_look``)."""
        check = check_name(u)
        used = check is not None and needs_check_look(u, self.signals)
        return replace(self.signals, disagreement=self.disagree[check] if used else 0.0)

    @property
    def area_error(self) -> float:
        """|measured - true| / true (pixels; a false positive on no wound counts 1 per px)."""
        return abs(self.signals.area_px - self.true_px) / max(self.true_px, 1)

    @property
    def fit(self) -> bool:
        return calibration_half(f"{self.set}/{self.name}")


VIRTUAL_TRIAL = {"n_subjects": 24, "weeks": 10, "seed": 11}
"""The virtual trial calibrated on: photos as a site takes them (a marker beside the wound,
tilt, distance, blur, exposure; ``service.simulator.simulate``) of FUSeg validation wounds."""


TAPPED = {"virtual-trial"}
"""Sets whose photos are measured at a target point inside the true wound, as the
virtual trial's site sends it (``service.simulator.demo.replay``)."""


def virtual_trial(fuseg: Path, out_dir: Path) -> Yardstick | None:
    """The virtual trial's open-wound photos (a closed wound has no area to err on; its
    closure rests on the clinician's observation), simulated once into ``out_dir``."""
    source = fuseg / "validation"
    if not (source / "images").is_dir():
        return None
    if not (out_dir / "truth.json").is_file():
        simulate_trial(out_dir, source_dir=source, workers=2, **VIRTUAL_TRIAL)  # type: ignore[arg-type]
    truth = json.loads((out_dir / "truth.json").read_text())

    def photos() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for p in truth["photos"]:
            if p["area_cm2"] > 0:
                rgb = read_photo(out_dir / p["photo"]).rgb
                yield p["photo"], rgb, read_mask(out_dir / p["mask"], shape=rgb.shape[:2])

    return Yardstick("virtual-trial", photos)


def collect(segmenter: Segmenter, sticks: list[Yardstick]) -> list[Row]:
    rows = []
    for stick in sticks:
        for name, rgb, truth in stick.photos():
            seg = segmenter.segment(rgb)
            mask = seg.mask
            if stick.name in TAPPED and truth.any() and mask.any():
                # A site taps the wound (target_point): only that component is measured.
                mask = (
                    select_component(mask > 0, deepest_point(truth > 0))[0].astype(np.uint8) * 255
                )
            signals = outline_signals(seg.probability, mask, segmenter.spec)
            cut = segmenter.spec.output.threshold
            disagree = {
                check: disagreement(seg.coarse, segmenter.look(rgb, look), mask, cut)
                if seg.coarse is not None and mask.any()
                else 0.0
                for check, look in CHECK_LOOKS.items()
            }
            rows.append(Row(stick.name, name, int((truth > 0).sum()), signals, disagree))
        print(f"{stick.name}: {sum(r.set == stick.name for r in rows)} photos", flush=True)
    return rows


def check_name(u: UncertaintySpec) -> str | None:
    """Which of ``CHECK_LOOKS`` the spec uses (None: no second look)."""
    if u.check_pass is None or u.disagree_coef == 0:
        return None
    return next(
        n
        for n, look in CHECK_LOOKS.items()
        if (look.zoom, look.hflip) == (u.check_pass.zoom, u.check_pass.hflip)
    )


def scale(r: Row, u: UncertaintySpec) -> float:
    return r.with_check(u).scale(u)


def save_rows(rows: list[Row], path: Path) -> None:
    """Every photo's signals, so that a new grid is a re-fit, not a re-segmentation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = [
        {"set": r.set, "name": r.name, "true_px": r.true_px, "signals": asdict(r.signals),
         "disagree": r.disagree}
        for r in rows
    ]  # fmt: skip
    path.write_text(json.dumps(plain))


def load_rows(path: Path) -> list[Row]:
    return [
        Row(d["set"], d["name"], d["true_px"], OutlineSignals(**d["signals"]), d["disagree"])
        for d in json.loads(path.read_text())
    ]


def scores(rows: list[Row], u: UncertaintySpec) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in rows:
        if r.signals.area_px > 0:  # an empty mask is no_wound_found: no interval
            s = nonconformity(r.true_px, r.signals.area_px, scale(r, u))
            out.setdefault(r.set, []).append(s)
    return out


def grid(base: UncertaintySpec) -> list[UncertaintySpec]:
    """Every combination tried: without a second look, and with each check look."""
    checks: list[tuple[PassSpec | None, float, float]] = [(None, 0.0, 0.0)]
    checks += [
        (look.model_copy(update={"min_fill": fill}), c, min_scale)
        for look in CHECK_LOOKS.values()
        for fill in GRID_CHECK_MIN_FILL
        for c in GRID_DISAGREE_COEF
        for min_scale in GRID_CHECK_MIN_SCALE
    ]
    return [
        base.model_copy(
            update={
                "band_coef": band,
                "check_pass": look,
                "disagree_coef": coef,
                "check_min_scale": min_scale,
                "size_coef": size_coef,
                "fill_coef": fill_coef,
                "floor": floor,
            }
        )
        for (look, coef, min_scale), band, size_coef, fill_coef, floor in itertools.product(
            checks, GRID_BAND_COEF, GRID_SIZE_COEF, GRID_FILL_COEF, GRID_FLOOR
        )
        if band > 0 or coef > 0
    ]


@dataclass(frozen=True)
class Columns:
    """The rows with a mask as numpy columns, so that a grid of thousands of points is
    a re-fit in seconds (``scale_columns`` equals ``scale`` row by row; a test checks)."""

    sets: list[np.ndarray]
    """Per set, the indices of its rows."""
    log_err: np.ndarray
    """|log(true / measured)|; inf where the photo has no true wound."""
    band_share: np.ndarray
    inv_sqrt_area: np.ndarray
    fill: np.ndarray
    disagree: dict[str, np.ndarray]


def columns(rows: list[Row]) -> Columns:
    shown = [r for r in rows if r.signals.area_px > 0]  # empty mask: no_wound_found
    names = list(dict.fromkeys(r.set for r in shown))
    set_of = np.array([names.index(r.set) for r in shown])
    with np.errstate(divide="ignore"):
        log_err = np.array(
            [
                abs(math.log(r.true_px / r.signals.area_px)) if r.true_px > 0 else math.inf
                for r in shown
            ]
        )
    return Columns(
        sets=[np.flatnonzero(set_of == i) for i in range(len(names))],
        log_err=log_err,
        band_share=np.array([r.signals.band_px / r.signals.area_px for r in shown]),
        inv_sqrt_area=np.array([1 / math.sqrt(max(r.signals.area_model_px, 1.0)) for r in shown]),
        fill=np.array([r.signals.fill for r in shown]),
        disagree={c: np.array([r.disagree.get(c, 0.0) for r in shown]) for c in CHECK_LOOKS},
    )


def scale_columns(c: Columns, u: UncertaintySpec) -> np.ndarray:
    """``OutlineSignals.scale`` of every row, with the check look where
    ``needs_check_look`` makes it."""
    first = u.band_coef * c.band_share + u.size_coef * c.inv_sqrt_area
    first = first + u.fill_coef * c.fill + u.floor
    check = check_name(u)
    if check is None or u.check_pass is None:
        return first
    made = (c.fill >= u.check_pass.min_fill) & (first >= u.check_min_scale)
    return first + u.disagree_coef * c.disagree[check] * made


def _quantile(xs: np.ndarray, p: float) -> float:
    """``conformal_q``'s finite-sample corrected quantile."""
    xs = np.sort(xs)
    k = min(len(xs) - 1, math.ceil((len(xs) + 1) * p) - 1)
    return float(xs[max(k, 0)])


def fit(rows: list[Row], base: UncertaintySpec) -> UncertaintySpec:
    """The grid point with the narrowest interval on the fit half: the mean over sets of
    each set's median half-width. Its q is ``conformal_q`` of the scores (95 % of all,
    90 % of each set)."""
    c = columns(rows)
    best: tuple[float, UncertaintySpec] | None = None
    for u in grid(base):
        sc = scale_columns(c, u)
        score = c.log_err / sc
        q = max(_quantile(score, 0.95), *(_quantile(score[i], 0.90) for i in c.sets if len(i)))
        if not math.isfinite(q):
            continue
        # Every set weighs the same: a grid point narrow on the re-framed views (ten
        # sets) but wide on the virtual trial (how sites photograph) is not the best.
        width = statistics.mean(float(np.median(q * sc[i])) for i in c.sets if len(i))
        if best is None or width < best[0]:
            best = (width, u.model_copy(update={"q": q}))
    if best is None:
        raise SystemExit("no grid point gives a finite interval: too many empty or missed masks")
    return best[1]


REVIEW_CATCH = 0.90
"""The review limit must flag at least this share of the photos off by more than 30 %."""
REVIEW_LIMITS_PCT = tuple(float(x) for x in range(20, 205, 5))


def wilson_lower(hits: int, n: int, z: float = 1.645) -> float:
    """One-sided 95 % Wilson lower bound of a share ``hits / n``."""
    if n == 0:
        return 0.0
    p = hits / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - margin) / (1 + z * z / n)


def review_limit(rows: list[Row], u: UncertaintySpec) -> float:
    """The loosest ``outline_uncertain`` limit (± %) whose catch of ``rows`` (fit half,
    with an interval) off by more than 30 % is ``REVIEW_CATCH`` at a one-sided 95 %
    lower bound (``wilson_lower``): the fewest good photos sent to a clinician for the
    catch the trial needs, with a margin so that photos never fitted on keep it."""
    assert u.q is not None
    q = u.q
    far = [halfwidth_pct(q * scale(r, u)) for r in rows if r.area_error > 0.3]
    if not far:
        return SEGMENTATION_UNCERTAIN_PCT
    ok = [
        lim
        for lim in REVIEW_LIMITS_PCT
        if wilson_lower(sum(w > lim for w in far), len(far)) >= REVIEW_CATCH
    ]
    return max(ok) if ok else REVIEW_LIMITS_PCT[0]


def limit_of(u: UncertaintySpec) -> float:
    return u.review_halfwidth_pct or SEGMENTATION_UNCERTAIN_PCT


def report(rows: list[Row], u: UncertaintySpec) -> dict[str, dict]:
    """Per set, on the given rows: coverage of the 95 % interval, median half-width,
    photos without an interval (empty mask), photos flagged outline_uncertain."""
    assert u.q is not None
    out: dict[str, dict] = {}
    for name in dict.fromkeys(r.set for r in rows):
        mine = [r for r in rows if r.set == name]
        shown = [r for r in mine if r.signals.area_px > 0]
        covered, widths, flagged, err_flagged, err_kept = 0, [], 0, [], []
        for r in shown:
            h = u.q * scale(r, u)
            ok = r.true_px > 0 and abs(math.log(r.true_px / r.signals.area_px)) <= h
            covered += ok
            pct = halfwidth_pct(h)
            widths.append(pct)
            err = r.area_error
            if pct > limit_of(u):
                flagged += 1
                err_flagged.append(err)
            else:
                err_kept.append(err)
        out[name] = {
            "photos": len(mine),
            "with_interval": len(shown),
            "coverage": covered / len(shown) if shown else float("nan"),
            "median_halfwidth_pct": statistics.median(widths) if widths else float("nan"),
            "flagged_share": flagged / len(shown) if shown else float("nan"),
            "second_look_share": (
                sum(check_name(u) is not None and needs_check_look(u, r.signals) for r in shown)
                / len(shown)
                if shown
                else float("nan")
            ),
            "median_area_error_flagged": statistics.median(err_flagged) if err_flagged else None,
            "median_area_error_kept": statistics.median(err_kept) if err_kept else None,
        }
    return out


def table(model_id: str, u: UncertaintySpec, held: dict[str, dict]) -> list[str]:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.0f} %"

    lines = [
        f"# Outline uncertainty of {model_id} (held-out half)",
        "",
        f"Constants (fit half): q = {u.q:.3f}, band_coef = {u.band_coef:g}, check look ="
        f" {check_name(u) or 'none'} x {u.disagree_coef:g}"
        f" (for wounds filling ≥ {u.check_pass.min_fill if u.check_pass else 0:g} of the photo),"
        f" size_coef = {u.size_coef:g},"
        f" fill_coef = {u.fill_coef:g}, floor = {u.floor:g}, band [{u.band_lo:g},"
        f" {u.band_hi:g}); outline_uncertain beyond ±{limit_of(u):g} %",
        f" (the loosest limit flagging ≥ {REVIEW_CATCH:.0%} of the fit photos off by > 30 %"
        " at a one-sided 95 % lower bound);"
        f" a check look only when the first look's scale is ≥ {u.check_min_scale:g}.",
        "",
        "| set | photos | with an interval | coverage of the 95 % interval"
        " | median half-width | flagged outline_uncertain"
        " | median area error, flagged | median area error, not flagged | second look made |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in held.items():
        lines.append(
            f"| {name} | {m['photos']} | {m['with_interval']} | {pct(m['coverage'])}"
            f" | ±{m['median_halfwidth_pct']:.0f} % | {pct(m['flagged_share'])}"
            f" | {pct(m['median_area_error_flagged'])} | {pct(m['median_area_error_kept'])}"
            f" | {pct(m['second_look_share'])} |"
        )
    return lines


def main() -> None:
    args = _arguments()
    model_dir = resolve_model(args.model, models_dirs(model_settings_from_env().models_dirs))
    segmenter = Segmenter(model_dir, threads=2)
    rows = _rows(args, segmenter)
    fit_rows = [r for r in rows if r.fit]
    u = fit(fit_rows, UncertaintySpec())
    shown = [r for r in fit_rows if r.signals.area_px > 0]
    u = u.model_copy(update={"review_halfwidth_pct": review_limit(shown, u)})
    held = report([r for r in rows if not r.fit], u)
    u = u.model_copy(
        update={
            "calibrated_on": list(held),
            "coverage": {n: round(m["coverage"], 4) for n, m in held.items()},
            "median_halfwidth_pct": {
                n: round(m["median_halfwidth_pct"], 1) for n, m in held.items()
            },
        }
    )
    lines = table(segmenter.id, u, held)
    lines += ["", "What the outline_uncertain limit sends to review (held-out half):", ""]
    lines += limit_lines([r for r in rows if not r.fit and r.signals.area_px > 0], u)
    print("\n".join(lines))
    out = args.out or ROOT / "benchmarks" / "model" / f"UNCERTAINTY-{segmenter.id}.md"
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(
        json.dumps({"uncertainty": u.model_dump(), "held_out": held}, indent=2) + "\n"
    )
    if args.write:
        spec = segmenter.spec.model_copy(update={"uncertainty": u})
        save_spec(spec, model_dir)
        print(f"wrote the constants into {model_dir / 'model.json'}")


def _arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("model", help="model id or folder")
    ap.add_argument("--fuseg", type=Path, default=DATASETS / "fuseg2021")
    ap.add_argument("--ood", type=Path, default=DATASETS / "injury-ood")
    ap.add_argument(
        "--other-clinic",
        type=Path,
        default=DATASETS / "woundseg-dfu",
        help="its validation split joins the held-out sets",
    )
    ap.add_argument("--sizes", default="224,512", help="re-framed sizes, px")
    ap.add_argument("--write", action="store_true", help="store the constants in model.json")
    ap.add_argument("--rows", type=Path, default=None, help="signals cache (JSON)")
    ap.add_argument("--recollect", action="store_true", help="segment again, ignore the cache")
    ap.add_argument("--out", type=Path, default=None)
    return ap.parse_args()


def _rows(args: argparse.Namespace, segmenter: Segmenter) -> list[Row]:
    """Every calibration photo's signals: those of sets already in the cache (unless
    ``--recollect``) are read from it, the others segmented now; the cache is rewritten."""
    sizes = tuple(int(s) for s in args.sizes.split(","))
    cache = (
        args.rows or ROOT / "runs" / f"uncertainty-rows-{segmenter.id}-{segmenter.sha256[:12]}.json"
    )
    sticks = yardsticks(args.fuseg, args.ood, sizes=sizes, other_clinic=args.other_clinic)
    trial = virtual_trial(args.fuseg, ROOT / "runs" / "uncertainty-virtual-trial")
    sticks += [trial] if trial is not None else []
    rows = load_rows(cache) if cache.is_file() and not args.recollect else []
    have = {r.set for r in rows}
    if have:
        print(f"signals of {sorted(have)} from {cache} (--recollect to segment again)")
    rows += collect(segmenter, [s for s in sticks if s.name not in have])
    save_rows(rows, cache)
    if not rows:
        raise SystemExit(f"no calibration data under {args.fuseg} or {args.ood}")
    return rows


def limit_lines(held_rows: list[Row], u: UncertaintySpec) -> list[str]:
    """What a stricter or looser outline_uncertain limit would send to review: per
    limit, the share of held-out photos flagged, of those off by > 30 % and of those
    within 10 % (``held_rows``: held-out photos with an interval)."""
    far = [r for r in held_rows if r.area_error > 0.3]
    near = [r for r in held_rows if r.area_error <= 0.1]
    lines = []
    for limit in sorted({30.0, 45.0, 60.0, 100.0, 150.0, limit_of(u)}):

        def flagged(r: Row, limit: float = limit) -> bool:
            assert u.q is not None
            return halfwidth_pct(u.q * scale(r, u)) > limit

        lines.append(
            f"- limit ±{limit:g} %: flags {sum(map(flagged, held_rows)) / len(held_rows):.0%}"
            f" of held-out photos; {sum(map(flagged, far)) / max(len(far), 1):.0%} of the"
            f" {len(far)} off by > 30 %; {sum(map(flagged, near)) / max(len(near), 1):.0%}"
            f" of the {len(near)} within 10 %"
        )
    return lines


if __name__ == "__main__":
    main()
