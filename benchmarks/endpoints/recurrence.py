"""What keeping the first confirmed healing as the study event changes (issue 14).

Plans a virtual trial with the simulator's trajectories (``service.simulator.simulate.plan_trial``:
some closed wounds re-open), feeds the planned observations to the endpoint engine, and
reports the study's events and median under the DESIGN definition (first confirmed
healing of all index-leg ulcers) beside the old one (healed at the last visit, which a
recurrence erases). No photos are drawn: this measures the endpoint rule only.

    PYTHONPATH=. python -m benchmarks.endpoints.recurrence [--subjects 300] [--weeks 52]
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from lifelines import KaplanMeierFitter

from service.core.healing import Subject, Visit, Wound, study_endpoints, subject_endpoints
from service.simulator import simulate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=300)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    sources = [
        simulate.Source(f"src{i}", Path("."), Path("."), 20_000 + 5_000 * i) for i in range(8)
    ]
    plans = simulate.plan_trial(
        np.random.default_rng(args.seed), args.subjects, args.weeks, sources
    )
    by_subject: dict[str, list[Wound]] = {}
    arms: dict[str, str] = {}
    for plan in plans:
        visits = [
            Visit(
                assessment_id=f"{plan.wound}-{v.visit}",
                captured_at=v.captured_at,
                area_cm2=v.area_cm2,
                epithelialized=v.epithelialized,
                drainage=v.drainage,
                uploaded_at=datetime(2026, 1, 1) + timedelta(days=v.day),
            )
            for v in plan.visits
        ]
        by_subject.setdefault(plan.subject, []).append(
            Wound(plan.wound, visits, index_leg=plan.index_leg)
        )
        arms[plan.subject] = plan.arm
    subjects = [Subject(s, w, code=s, arm=arms[s]) for s, w in by_subject.items()]
    answer = study_endpoints(subjects)
    # The old rule: the event only when healed at the last visit, else censored there.
    old_t, old_e = [], []
    for subject in subjects:
        sub = subject_endpoints(subject.wounds)
        if sub["last_visit_day"] is None or sub["all_wounds_healed"] is None:
            continue
        old_e.append(bool(sub["all_wounds_healed"]))
        old_t.append(sub["all_healed_day"] if sub["all_wounds_healed"] else sub["last_visit_day"])
    old = KaplanMeierFitter().fit(old_t, old_e)
    print(f"subjects {answer['subjects']}, with a recurrence {answer['recurred']}")
    print(
        f"first confirmed healing (DESIGN): events {answer['healed']}, median "
        f"{answer['median_time_to_closure_days']} days, 95 % CI "
        f"{answer['median_time_to_closure_days_ci95']}"
    )
    print(
        f"healed at the last visit (old rule): events {sum(old_e)}, median "
        f"{old.median_survival_time_} days"
    )


if __name__ == "__main__":
    main()
