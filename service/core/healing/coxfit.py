"""One way to fit a Cox model (lifelines), for every hazard ratio the study answer
reports: the same convergence, the same site strata rule, the same answer when there
is no estimate."""

from __future__ import annotations

from typing import Any

COX_FIT_OPTIONS = {"precision": 1e-14, "r_precision": 1e-16, "step_size": 0.5, "max_steps": 1000}
"""Newton–Raphson to the maximum: lifelines' defaults stop on a 1e-9 relative change of
the log-likelihood, which on a flat likelihood (few events) leaves the HR off by up to
1e-4; these reach the maximum to 1e-8 (tests/core/healing/test_comparisons.py)."""

IGNORED_WARNINGS = ("It appears your weights are not integers",)
"""lifelines' warnings that say nothing about the estimate: weights from inverse
probabilities (Fine–Gray) are not integers by design."""


def by_site(frame: Any) -> bool:
    """Whether a fit on ``frame`` is stratified by its ``site`` column: with several sites."""
    return frame["site"].nunique() > 1


def fit_cox(frame: Any, duration_col: str, event_col: str, **kwargs: Any) -> tuple[Any, str | None]:
    """lifelines ``CoxPHFitter`` on ``frame`` (Efron ties, ``COX_FIT_OPTIONS``),
    stratified by its ``site`` column when there are several sites; a single site's
    column is dropped (a constant is no covariate, and a text one cannot be fitted).
    Returns (the fitted model, its first warning) or, where no estimate exists (no event
    in a group, separation), (None, "no estimate: …")."""
    import warnings

    from lifelines import CoxPHFitter

    stratified = by_site(frame)
    cph = CoxPHFitter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for message in IGNORED_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        try:
            cph.fit(
                frame if stratified else frame.drop(columns=["site"]),
                duration_col,
                event_col,
                strata=["site"] if stratified else None,
                fit_options=COX_FIT_OPTIONS,
                **kwargs,
            )
        except Exception as exc:  # no events in a group, separation: no estimate, say why
            return None, f"no estimate: {exc}".splitlines()[0]
    return cph, str(caught[0].message).strip().splitlines()[0] if caught else None
