"""End-to-end benchmark: a virtual trial through the REST API of a real running service.

    python -m benchmarks.e2e --subjects 20 --weeks 16
    python -m benchmarks.e2e --subjects 40 --source ../shared/datasets/fuseg2021/train
    python -m benchmarks.e2e --url http://127.0.0.1:8000 --admin-key ws_...   # a running one

Simulates the trial (``service.simulator.simulate``; cached in ``out/trial-<seed>-<n>-<weeks>``),
starts ``woundscope serve`` on a free port with a fresh data dir (unless ``--url``),
replays every photo with its date, visit and clinician observation
(``service.simulator.demo.replay``), then compares the service's endpoints with the truth:
area error per photo, PAR-at-week-4 error, closure agreement, time-to-closure error,
and the Kaplan-Meier curves of time to closure of all ulcers, truth and measured, in
one plot. Writes ``out/RESULTS.md`` (committed), ``out/km.png``, ``out/photos-*.csv``
and ``out/results-*.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from service.core import healing as engine
from service.simulator.demo import DemoError, create_study, first_admin_key, replay, wait_ready
from service.simulator.simulate import DEFAULT_SOURCE, SITES, simulate_trial

HERE = Path(__file__).resolve().parent
STUDY = "E2E-BENCH"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _trial(out: Path, subjects: int, weeks: int, seed: int, source: Path) -> Path:
    """The simulated trial, made once per (seed, subjects, weeks, source)."""
    tag = "samples" if source.resolve() == DEFAULT_SOURCE.resolve() else source.name
    folder = out / f"trial-{seed}-{subjects}-{weeks}-{tag}"
    if not (folder / "truth.json").exists():
        t0 = time.perf_counter()
        simulate_trial(
            folder, n_subjects=subjects, weeks=weeks, seed=seed, source_dir=source, workers=2
        )
        print(f"simulated {folder.name} in {time.perf_counter() - t0:.0f} s", flush=True)
    return folder


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _true_subjects(truth: dict[str, Any]) -> list[engine.Subject]:
    """The true series as the engine's input (for the truth's study-level KM)."""
    perimeters = {
        v["assessment"]: v["perimeter_cm"]
        for w in truth["wounds"]
        for v in w["endpoints"]["visits"]
    }
    by_subject: dict[str, dict[str, list[engine.Visit]]] = {}
    arms, index_leg = {}, {}
    for p in truth["photos"]:
        arms[p["subject"]] = p["arm"]
        index_leg[p["wound"]] = p["index_leg"]
        by_subject.setdefault(p["subject"], {}).setdefault(p["wound"], []).append(
            engine.Visit(
                assessment_id=p["photo"],
                captured_at=date.fromisoformat(p["captured_at"]),
                area_cm2=p["area_cm2"],
                perimeter_cm=perimeters[p["photo"]],
                epithelialized=p["epithelialized"],
                drainage=p["drainage"],
            )
        )
    return [
        engine.Subject(
            subject,
            [engine.Wound(w, visits, index_leg=index_leg[w]) for w, visits in wounds.items()],
            code=subject,
            arm=arms[subject],
        )
        for subject, wounds in sorted(by_subject.items())
    ]


def _measure(
    client: httpx.Client, admin_key: str, trial_dir: Path, target_points: bool
) -> dict[str, Any]:
    """Replay the trial and fetch the service's endpoints (admin: per arm too)."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    truth = json.loads((trial_dir / "truth.json").read_text())
    create_study(client, admin_key, STUDY, "end-to-end benchmark", truth["marker_mm"], list(SITES))
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 50 == 0 or done == total:
            print(f"uploaded {done}/{total} ({time.perf_counter() - t0:.0f} s)", flush=True)

    loaded = replay(
        client, trial_dir, STUDY, admin_key, progress=progress, target_points=target_points
    )
    upload_s = time.perf_counter() - t0
    wounds = {
        w: client.get(f"/v1/wounds/{wid}/endpoints", headers=headers).json()
        for w, wid in loaded.wounds.items()
    }
    subjects = {
        s: client.get(f"/v1/subjects/{sid}/endpoints", headers=headers).json()
        for s, sid in loaded.subjects.items()
    }
    study = client.get(f"/v1/studies/{STUDY}/endpoints", headers=headers).json()
    queue = client.get(f"/v1/studies/{STUDY}/review?limit=500", headers=headers).json()
    return {
        "review": {item["assessment"]["id"]: item["reasons"] for item in queue["items"]},
        "truth": truth,
        "assessments": loaded.assessments,
        "wounds": wounds,
        "subjects": subjects,
        "study": study,
        "upload_s": upload_s,
    }


def _compare(run: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    truth = run["truth"]
    visit_of = {v["assessment"]: v for w in run["wounds"].values() for v in w["visits"]}
    rows = []
    for p in truth["photos"]:
        got = visit_of[run["assessments"][p["photo"]]]
        rows.append(
            {
                "photo": p["photo"],
                "true_area_cm2": p["area_cm2"],
                "measured_area_cm2": got["area_cm2"],
                "low_cm2": got.get("area_cm2_low"),
                "high_cm2": got.get("area_cm2_high"),
                "counted": got["counted"],
                "uncounted_reason": got.get("uncounted_reason"),
                "epithelialized": p["epithelialized"],
            }
        )
    open_rows = [r for r in rows if r["true_area_cm2"] > 0]
    counted = [r for r in open_rows if r["counted"]]
    abs_err = [abs(r["measured_area_cm2"] - r["true_area_cm2"]) for r in counted]
    rel_err = [
        abs(r["measured_area_cm2"] - r["true_area_cm2"]) / r["true_area_cm2"] * 100 for r in counted
    ]
    bias = [
        (r["measured_area_cm2"] - r["true_area_cm2"]) / r["true_area_cm2"] * 100 for r in counted
    ]
    # The 95 % interval with the model's masks, over every open photo that has one.
    with_interval = [r for r in open_rows if r["low_cm2"] is not None and r["measured_area_cm2"]]
    covered = [r for r in with_interval if r["low_cm2"] <= r["true_area_cm2"] <= r["high_cm2"]]
    halfwidth = [
        (r["high_cm2"] - r["low_cm2"]) / 2 / r["measured_area_cm2"] * 100 for r in with_interval
    ]
    off30 = [
        r
        for r in open_rows
        if r["measured_area_cm2"] is None
        or abs(r["measured_area_cm2"] - r["true_area_cm2"]) > 0.3 * r["true_area_cm2"]
    ]
    off30_held = [r for r in off30 if not r["counted"]]
    closed_rows = [r for r in rows if r["true_area_cm2"] == 0]
    closed_seen_empty = [
        r for r in closed_rows if not r["counted"] or (r["measured_area_cm2"] or 0) == 0
    ]

    collapses, mismatches = _unflagged_implausible(run, rows)

    par_err, par_class, closure_same, ttc_err, healed_same = [], [], [], [], []
    for w in truth["wounds"]:
        t, m = w["endpoints"], run["wounds"][w["wound"]]
        if t["par_week4_pct"] is not None and m["par_week4_pct"] is not None:
            par_err.append(abs(m["par_week4_pct"] - t["par_week4_pct"]))
            par_class.append((m["par_week4_pct"] >= 50) == (t["par_week4_pct"] >= 50))
        closure_same.append(m["closure_confirmed"] == t["closure_confirmed"])
        ttc_err.append(abs(m["time_to_closure_days"] - t["time_to_closure_days"]))
    true_subjects = _true_subjects(truth)
    true_study = engine.study_endpoints(true_subjects, by_arm=True)
    for s in true_subjects:
        t_answer = engine.subject_endpoints(s.wounds)
        healed_same.append(
            run["subjects"][s.subject_id]["all_wounds_healed"] == t_answer["all_wounds_healed"]
        )
    m_study = run["study"]
    summary = {
        "subjects": len(run["subjects"]),
        "wounds": len(truth["wounds"]),
        "photos": len(rows),
        "photos_open": len(open_rows),
        "photos_counted": len(counted),
        "uncounted_reasons": sorted(
            {str(r["uncounted_reason"]) for r in open_rows if not r["counted"]}
        ),
        "area_abs_err_cm2_median": statistics.median(abs_err) if abs_err else None,
        "area_abs_err_cm2_p90": _quantile(abs_err, 0.9) if abs_err else None,
        "area_rel_err_pct_median": statistics.median(rel_err) if rel_err else None,
        "area_rel_err_pct_p90": _quantile(rel_err, 0.9) if rel_err else None,
        "area_bias_pct_median": statistics.median(bias) if bias else None,
        "interval_coverage": len(covered) / len(with_interval) if with_interval else None,
        "interval_photos": len(with_interval),
        "interval_halfwidth_pct_median": statistics.median(halfwidth) if halfwidth else None,
        "off30_photos": len(off30),
        "off30_held_share": len(off30_held) / len(off30) if off30 else None,
        "collapses_unflagged": collapses,
        "closure_mismatch_unflagged": mismatches,
        "closed_photos": len(closed_rows),
        "closed_photos_model_sees_no_wound": len(closed_seen_empty),
        "par_week4_wounds": len(par_err),
        "par_week4_abs_err_pp_median": statistics.median(par_err) if par_err else None,
        "par_week4_abs_err_pp_p90": _quantile(par_err, 0.9) if par_err else None,
        "par_week4_ge50_agreement": sum(par_class) / len(par_class) if par_class else None,
        "closure_agreement": sum(closure_same) / len(closure_same),
        "time_to_closure_abs_err_days_max": max(ttc_err),
        "all_healed_agreement": sum(healed_same) / len(healed_same),
        "true_median_time_to_closure_days": true_study["median_time_to_closure_days"],
        "measured_median_time_to_closure_days": m_study["median_time_to_closure_days"],
        "upload_s": run["upload_s"],
    }
    return {"summary": summary, "true_study": true_study, "measured_study": m_study}, rows


def _unflagged_implausible(run: dict[str, Any], rows: list[dict[str, Any]]) -> tuple[int, int]:
    """The demo-trial targets of the review flags: counted areas of open wounds under 5 %
    of both neighbours' (an outline that lost the wound), and photos recorded closed
    whose outline measures over ``review.CLOSED_MAX_AREA_CM2``, that no flag holds for
    a clinician (``implausible_change``, ``closure_area_mismatch``). Both should be 0."""
    from service.core.review import CLOSED_MAX_AREA_CM2

    closed_by_obs = {run["assessments"][r["photo"]] for r in rows if r["epithelialized"]}
    collapses = mismatches = 0
    for wound in run["wounds"].values():
        visits = [v for v in wound["visits"] if v["area_cm2"] is not None]
        for before, v, after in zip(visits, visits[1:], visits[2:], strict=False):
            low = min(before["area_cm2"], after["area_cm2"])
            open_now = v["assessment"] not in closed_by_obs
            if open_now and v["counted"] and low > 0 and v["area_cm2"] < 0.05 * low:
                collapses += 1
        for v in visits:
            held = v["assessment"] in run["review"]
            if (
                v["assessment"] in closed_by_obs
                and v["area_cm2"] > CLOSED_MAX_AREA_CM2
                and not held
            ):
                mismatches += 1
    return collapses, mismatches


def _plot_km(true_study: dict[str, Any], measured_study: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    curves = [("all", true_study, measured_study, "k")]
    colours = {"active": "tab:blue", "control": "tab:orange"}
    for arm, colour in colours.items():
        t_arm = true_study.get("by_arm", {}).get(arm)
        m_arm = measured_study.get("by_arm", {}).get(arm)
        if t_arm and m_arm:
            curves.append((arm, t_arm, m_arm, colour))
    for name, t, m, colour in curves:
        for answer, style, what in ((t, "-", "truth"), (m, "--", "measured")):
            km = answer["km"]
            healed = [1.0 - s for s in km["survival"]]
            ax.step(
                km["timeline_days"],
                healed,
                where="post",
                ls=style,
                color=colour,
                lw=2.6 if style == "-" else 1.2,
                alpha=0.45 if style == "-" else 1.0,
                marker=None if style == "-" else "o",
                markersize=3,
                label=f"{name}: {what}",
            )
    ax.set_xlabel("days since baseline")
    ax.set_ylabel("proportion with all ulcers healed (1 - KM)")
    ax.set_title("Time to closure of all ulcers: truth (solid) vs service (dashed, dots)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncols=3, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


ROWS: list[tuple[str, str]] = [
    (
        "photos of open wounds counted (calibrated, no severe flag, no review flag awaiting a clinician)",
        "{photos_counted} / {photos_open}",
    ),
    (
        "area error per photo, median / p90 (cm²)",
        "{area_abs_err_cm2_median:.3f} / {area_abs_err_cm2_p90:.3f}",
    ),
    (
        "area error per photo, median / p90 (%)",
        "{area_rel_err_pct_median:.1f} / {area_rel_err_pct_p90:.1f}",
    ),
    ("area bias, median signed (%)", "{area_bias_pct_median:+.1f}"),
    (
        "95 % interval: holds the true area / median half-width (%)",
        "{interval_coverage:.0%} of {interval_photos} / ±{interval_halfwidth_pct_median:.0f}",
    ),
    (
        "photos off by > 30 % held out of the endpoints (flagged or severe)",
        "{off30_held_share:.0%} of {off30_photos}",
    ),
    (
        "counted areas under 5 % of both neighbours, unflagged / recorded-closed photos"
        " outlined over the mismatch limit, not held for review (targets 0 / 0)",
        "{collapses_unflagged} / {closure_mismatch_unflagged}",
    ),
    (
        "healed-wound photos where the model finds no wound",
        "{closed_photos_model_sees_no_wound} / {closed_photos}",
    ),
    (
        "PAR at week 4: abs error median / p90 (points)",
        "{par_week4_abs_err_pp_median:.1f} / {par_week4_abs_err_pp_p90:.1f}",
    ),
    (
        "PAR at week 4 ≥ 50 %: agreement with truth",
        "{par_week4_ge50_agreement:.0%} of {par_week4_wounds}",
    ),
    ("confirmed closure: agreement per wound", "{closure_agreement:.0%}"),
    ("time to closure: max abs error (days)", "{time_to_closure_abs_err_days_max}"),
    ("all ulcers healed: agreement per subject", "{all_healed_agreement:.0%}"),
    (
        "median time to closure of all ulcers, truth / service (days)",
        "{true_median_time_to_closure_days} / {measured_median_time_to_closure_days}",
    ),
    ("upload time, all photos (s)", "{upload_s:.0f}"),
]
MODES = {"target": "target point sent", "no-target": "no target point"}


def _cell(template: str, summary: dict[str, Any]) -> str:
    try:
        return template.format(**summary)
    except (TypeError, ValueError):  # a None where a number was expected
        return "n/a"


def _results_md(summaries: dict[str, dict[str, Any]], command: str, setup: str) -> str:
    first = next(iter(summaries.values()))
    modes = [m for m in MODES if m in summaries]
    lines = [
        "# End-to-end benchmark: virtual trial through the REST API",
        "",
        f"Command: `{command}` (and with `--no-target-point`); {setup}.",
        "",
        f"{first['subjects']} subjects, {first['wounds']} wounds, {first['photos']} photos"
        f" ({first['photos_open']} of open wounds, {first['closed_photos']} of healed ones).",
        "Target point: each photo of an open wound is uploaded with a `target_point` inside",
        "the wound (a nurse tapping it), so that the service measures that component only.",
        "",
        "| quantity | " + " | ".join(MODES[m] for m in modes) + " |",
        "| --- | " + " | ".join("---" for _ in modes) + " |",
    ]
    for name, template in ROWS:
        lines.append(
            f"| {name} | " + " | ".join(_cell(template, summaries[m]) for m in modes) + " |"
        )
    lines += [
        "",
        "`out/km.png` (not committed; rerun to draw it): Kaplan-Meier time to closure of all",
        "ulcers, truth (solid) and service (dashed), overall and per arm.",
        "",
        "Closure, its day and time to closure rest on the clinician's observations and the",
        "visit dates (DESIGN.md: a segmented area of zero is supporting evidence, never",
        "closure), so they and the KM curves agree exactly by construction; what the",
        "segmentation and the marker move are the cm² endpoints (area, PAR, rates).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.e2e",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--weeks", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--url", help="a running service (default: start one here)")
    parser.add_argument("--admin-key", default=os.environ.get("WOUNDSCOPE_ADMIN_KEY"))
    parser.add_argument(
        "--no-target-point",
        action="store_true",
        help="upload without a target point: the service measures every component it finds",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    trial_dir = _trial(args.out, args.subjects, args.weeks, args.seed, args.source)

    server = None
    with tempfile.TemporaryDirectory(prefix="woundscope-e2e-") as data_dir:
        if args.url is None:
            os.environ["WOUNDSCOPE_DATA_DIR"] = data_dir
            os.environ.pop("WOUNDSCOPE_DATABASE_URL", None)
            os.environ.pop("WOUNDSCOPE_STORAGE_URL", None)
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            log = open(args.out / "serve.log", "wb")  # noqa: SIM115 - lives as long as the server
            server = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        else:
            url = args.url
        try:
            with httpx.Client(base_url=url, timeout=120.0) as client:
                wait_ready(client, alive=(lambda: server.poll() is None) if server else None)
                admin_key = args.admin_key or first_admin_key("e2e benchmark")
                run = _measure(client, admin_key, trial_dir, not args.no_target_point)
                ready = client.get("/readyz").json()
        except DemoError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)

    result, rows = _compare(run)
    mode = "no-target" if args.no_target_point else "target"
    with open(args.out / f"photos-{mode}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    model_check = ready.get("checks", {}).get("model", {})
    setup = (
        f"{date.today().isoformat()}, model `{model_check.get('default')}`"
        f" on {model_check.get('provider')}, {os.cpu_count()} CPU cores"
    )
    summary = {**result["summary"], "setup": setup, "trial": trial_dir.name}
    (args.out / f"results-{mode}.json").write_text(json.dumps(summary, indent=1) + "\n")
    _plot_km(result["true_study"], result["measured_study"], args.out / "km.png")
    summaries = {}
    for m in MODES:
        path = args.out / f"results-{m}.json"
        if path.exists():
            found = json.loads(path.read_text())
            if found.get("trial") == trial_dir.name:  # same trial only
                summaries[m] = found
    command = f"python -m benchmarks.e2e --subjects {args.subjects} --weeks {args.weeks} --seed {args.seed}"
    if args.source != DEFAULT_SOURCE:
        command += f" --source {args.source}"
    (args.out / "RESULTS.md").write_text(_results_md(summaries, command, setup))
    print((args.out / "RESULTS.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
