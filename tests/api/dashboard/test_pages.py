"""Dashboard pages without a browser: sign-in cookie, CSRF, scopes, local assets, figures."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.assets import plotly_js_path
from service.api.figures import (
    POINT_STYLES,
    UNMEASURED_TRACE,
    area_figure,
    figure_json,
    km_band,
    km_figure,
    step_path,
    subject_figure,
)
from service.api.overview import (
    number_at_risk,
    proportions_within_follow_up,
    unmeasured_photos,
    wound_status,
)
from service.api.wording import ci_text, flag_label, plain_flag
from service.core.measure import QUALITY_CODES, QualityLimits
from tests.conftest import need
from tests.core.healing.seed import MODEL_DIR, PHOTO, Trial, seed


@pytest.fixture(scope="module")
def app_trial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Trial]]:
    need((MODEL_DIR / "model.onnx").is_file(), f"the bundled model is not at {MODEL_DIR}")
    need(PHOTO.is_file(), f"the sample photo is not at {PHOTO}")
    from service.api.app import create_app
    from service.config import Settings

    data_dir: Path = tmp_path_factory.mktemp("pages")
    app = create_app(
        Settings(data_dir=data_dir, model=str(MODEL_DIR), log_json=False, log_level="WARNING")
    )
    with TestClient(app) as client:
        yield client, seed(client, app.state.db)


def sign_in(client: TestClient, key: str) -> None:
    client.cookies.clear()
    form = client.get("/dashboard/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    answer = client.post(
        "/dashboard/login", data={"key": key, "csrf": token.group(1)}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["set-cookie"]
    assert "ws_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_pages_need_a_session(app_trial: tuple[TestClient, Trial]) -> None:
    client, trial = app_trial
    client.cookies.clear()
    answer = client.get(f"/dashboard/wounds/{trial.wounds['S01-W1']}", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/login"
    # A bearer header is not a dashboard session.
    answer = client.get("/dashboard/", headers=trial.auth("admin"), follow_redirects=False)
    assert answer.status_code == 303


def test_sign_in_refuses_a_bad_key_and_a_missing_csrf(app_trial: tuple[TestClient, Trial]) -> None:
    client, trial = app_trial
    client.cookies.clear()
    form = client.get("/dashboard/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    wrong = client.post("/dashboard/login", data={"key": "ws_nope", "csrf": token.group(1)})
    assert wrong.status_code == 401
    assert "unknown or revoked" in wrong.text
    forged = client.post(
        "/dashboard/login", data={"key": trial.keys["admin"], "csrf": "x"}, follow_redirects=False
    )
    assert forged.status_code == 401
    assert "ws_session" not in forged.headers.get("set-cookie", "")


def test_every_asset_is_local(app_trial: tuple[TestClient, Trial]) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["admin"])
    for path in (
        "/dashboard/",
        f"/dashboard/studies/{trial.study}",
        f"/dashboard/subjects/{trial.subjects['S01']}",
        f"/dashboard/wounds/{trial.wounds['S01-W1']}",
    ):
        page = client.get(path)
        assert page.status_code == 200, page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith(("/", "#")) for s in sources), sources
    plotly_js = client.get("/dashboard/static/plotly.min.js")
    assert plotly_js.status_code == 200
    assert len(plotly_js.content) == plotly_js_path().stat().st_size
    assert client.get("/dashboard/static/dashboard.js").status_code == 200
    assert client.get("/dashboard/static/nothing.js").status_code == 404


def test_admin_sees_arms_monitor_does_not(app_trial: tuple[TestClient, Trial]) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["admin"])
    assert "active" in client.get(f"/dashboard/studies/{trial.study}").text
    sign_in(client, trial.keys["monitor"])
    page = client.get(f"/dashboard/studies/{trial.study}").text
    assert "active" not in page and "control" not in page
    export = client.get(f"/dashboard/studies/{trial.study}/export.csv")
    assert export.status_code == 200
    assert "arm" not in export.text.splitlines()[0].split(",")
    sign_in(client, trial.keys["clinician"])
    refused = client.get(f"/dashboard/studies/{trial.study}/export.csv")
    assert refused.status_code == 403


def test_correction_errors_render_a_page(app_trial: tuple[TestClient, Trial]) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["clinician"])
    page = client.get(f"/dashboard/wounds/{trial.wounds['S01-W1']}").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    target = trial.assessments["S01-W1"][0]
    answer = client.post(
        f"/dashboard/assessments/{target}/correct",
        data={"csrf": token.group(1), "polygon": "[[1,1],[2,2]]", "reason": "x"},
    )
    assert answer.status_code == 422
    assert "invalid_mask" in answer.text
    answer = client.post(
        f"/dashboard/assessments/{target}/correct",
        data={"csrf": token.group(1), "polygon": "[[1,1],[20,2],[5,30]]", "reason": " "},
    )
    assert answer.status_code == 422
    assert "reason_required" in answer.text


def test_figures_are_safe_to_embed() -> None:
    answer = {
        "visits": [
            {
                "assessment": "a</script><script>alert(1)</script>",
                "captured_at": "2026-01-05",
                "day": 0,
                "area_cm2": 2.0,
                "area_cm2_low": 1.8,
                "area_cm2_high": 2.2,
                "par_pct": 0.0,
                "closed": False,
                "counted": True,
            },
            {
                "assessment": "b",
                "captured_at": "2026-01-19",
                "day": 14,
                "area_cm2": 0.0,
                "area_cm2_low": 0.0,
                "area_cm2_high": 0.0,
                "par_pct": 100.0,
                "closed": True,
                "counted": False,
            },
        ],
        "closure_day": 14,
        "recurrence_day": None,
    }
    figure = area_figure(answer, title="t", manual=frozenset({"b"}))
    names = [t["name"] for t in figure["data"]]
    assert names == [
        "95 % interval",
        "area (cm²)",
        POINT_STYLES["model"][0],
        POINT_STYLES["uncounted"][0],
        "recorded closed (clinician)",
        "closure confirmed (day 14)",
    ]
    # The band is a closed polygon: highs forward, lows backward.
    assert figure["data"][0]["y"] == [2.2, 0.0, 0.0, 1.8]
    assert figure["data"][0]["fill"] == "toself"
    symbols = figure["data"][1]["marker"]["symbol"]
    assert symbols == [POINT_STYLES["model"][1], POINT_STYLES["uncounted"][1]]
    assert figure["data"][-1]["x"] == ["2026-01-19", "2026-01-19"]
    # Awaiting review, a clinician's outline and uncounted points look different.
    answer["visits"][1]["counted"] = True
    marked = area_figure(answer, title="t", manual=frozenset({"b"}), awaiting=frozenset())
    assert marked["data"][1]["marker"]["symbol"][1] == POINT_STYLES["manual"][1]
    waiting = area_figure(answer, title="t", awaiting=frozenset({"b"}))
    assert waiting["data"][1]["marker"]["symbol"][1] == POINT_STYLES["awaiting"][1]
    assert len({style[1] for style in POINT_STYLES.values()}) == len(POINT_STYLES)
    assert len({style[2] for style in POINT_STYLES.values()}) == len(POINT_STYLES)
    embedded = figure_json(figure)
    assert "</script>" not in embedded
    assert json.loads(embedded) == json.loads(json.dumps(figure))
    empty = km_figure({"km": {"timeline_days": [], "survival": []}}, title="none")
    assert empty["data"] == []


def test_clinician_records_closure_monitor_cannot(app_trial: tuple[TestClient, Trial]) -> None:
    client, trial = app_trial
    target = trial.assessments["S01-W1"][1]  # day 14, open
    sign_in(client, trial.keys["monitor"])
    page = client.get(f"/dashboard/wounds/{trial.wounds['S01-W1']}").text
    assert "/observe" not in page
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    refused = client.post(
        f"/dashboard/assessments/{target}/observe",
        data={"csrf": token.group(1), "epithelialized": "yes", "drainage": "no"},
    )
    assert refused.status_code == 403

    sign_in(client, trial.keys["clinician"])
    page = client.get(f"/dashboard/wounds/{trial.wounds['S01-W1']}").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    answer = client.post(
        f"/dashboard/assessments/{target}/observe",
        data={"csrf": token.group(1), "epithelialized": "yes", "drainage": "no"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    endpoints = client.get(
        f"/v1/wounds/{trial.wounds['S01-W1']}/endpoints", headers=trial.auth("clinician")
    ).json()
    assert endpoints["visits"][1]["closed"] is True
    assert endpoints["closure_day"] == 14


def test_km_band_follows_the_steps_both_ways() -> None:
    km = {
        "timeline_days": [0.0, 10.0, 20.0],
        "survival": [1.0, 0.5, 0.25],
        "ci95_low": [1.0, 0.2, 0.05],
        "ci95_high": [1.0, 0.8, 0.6],
    }
    assert step_path([0.0, 10.0, 20.0], [1.0, 0.5, 0.25]) == (
        [0.0, 10.0, 10.0, 20.0, 20.0],
        [1.0, 1.0, 0.5, 0.5, 0.25],
    )
    xs, ys = km_band(km)
    # Upper edge forward, then the lower edge walked back along its own steps: the
    # lower edge never jumps back to day 0 at the band's low value.
    assert xs == [0.0, 10.0, 10.0, 20.0, 20.0, 20.0, 20.0, 10.0, 10.0, 0.0]
    assert ys == [1.0, 1.0, 0.8, 0.8, 0.6, 0.05, 0.2, 0.2, 1.0, 1.0]
    figure = km_figure({"by_arm": {"active": {"km": km}, "control": {"km": km}}}, title="two arms")
    bands = [t for t in figure["data"] if t.get("fill") == "toself"]
    curves = [t for t in figure["data"] if t.get("fill") != "toself"]
    assert len(bands) == len(curves) == 2
    for band, curve in zip(bands, curves, strict=True):
        r, g, b = (int(curve["line"]["color"][i : i + 2], 16) for i in (1, 3, 5))
        assert band["fillcolor"].startswith(f"rgba({r},{g},{b},")
        assert band["legendgroup"] == curve["legendgroup"]
    assert curves[0]["line"]["color"] != curves[1]["line"]["color"]
    assert figure["layout"]["legend"]["orientation"] == "h"


def test_study_numbers_read_well() -> None:
    answer = {
        "km": {"timeline_days": [0.0, 42.0, 90.0]},
        "proportion_healed": {"84": 0.5, "182": 0.5, "365": 0.5},
    }
    rows = proportions_within_follow_up(answer)
    assert [(r["day"], r["beyond"]) for r in rows] == [(84, False), (182, True), (365, True)]
    assert rows[0]["pct"] == 50.0
    assert ci_text(50.0, None) == "50 to not reached days"
    assert ci_text(None, None) == "not estimable"
    assert "—" not in ci_text(12.0, None)


def test_flags_read_as_words_from_one_home() -> None:
    meaning = QUALITY_CODES["outline_uncertain"][0]
    assert plain_flag({"code": "outline_uncertain"})["text"] == meaning
    own = plain_flag({"code": "implausible_change", "message": "The area, 0.01 cm², ..."})
    assert own["text"].startswith("The area") and own["meaning"] == flag_label("implausible_change")
    assert "_" not in plain_flag({"code": "something_new"})["text"]


def test_flags_name_no_setting_and_no_absurd_percentage() -> None:
    """Issue 25: readers saw "marker beyond marker_max_distance_mm" and "area uncertain
    by ±3753 %". Every code's label and default sentence are free of setting names and
    codes; an uncertainty past the cap reads "outline unclear"."""
    settings = set(QualityLimits.model_fields)
    for code in QUALITY_CODES:
        shown = plain_flag({"code": code})
        for text in (shown["meaning"], shown["text"]):
            assert not any(name in text for name in settings), (code, text)
            assert code not in text and "_" not in text, (code, text)
    absurd = plain_flag(
        {"code": "outline_uncertain", "message": "area uncertain by ±3753 % from the outline"}
    )
    assert absurd["text"].startswith("Outline unclear") and "%" not in absurd["text"]
    fine = "The model is unsure (area uncertain by ±40 % from the outline alone): check it."
    assert plain_flag({"code": "outline_uncertain", "message": fine})["text"] == fine
    named = plain_flag(
        {"code": "marker_far_from_wound", "message": "beyond marker_max_distance_mm"}
    )
    assert named["text"] == "Marker too far from the wound."


def csrf_of(page: str) -> str:
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    return token.group(1)


@pytest.fixture(scope="module")
def awaiting(app_trial: tuple[TestClient, Trial]) -> tuple[str, str]:
    """A model-measured photo of a new wound of S01 (site A) under central reading
    (review policy ``all``): it waits in the queue. Returns (wound, assessment)."""
    client, trial = app_trial
    admin = trial.auth("admin")
    client.patch(f"/v1/studies/{trial.study}", json={"review": "all"}, headers=admin)
    wound = client.post(
        f"/v1/subjects/{trial.subjects['S01']}/wounds",
        json={"label": "W2", "location": "left heel", "index_leg": False},
        headers=admin,
    )
    wound.raise_for_status()
    upload = client.post(
        f"/v1/wounds/{wound.json()['id']}/assessments",
        data={"captured_at": "2026-01-05", "px_per_mm": "10"},
        files={"photo": ("photo.jpg", PHOTO.read_bytes(), "image/jpeg")},
        headers=admin,
    )
    upload.raise_for_status()
    return wound.json()["id"], upload.json()["id"]


def queue_ids(page: str) -> list[str]:
    return re.findall(r'<article class="review-item" id="([^"]+)"', page)


def test_review_queue_page_scoped_by_site_and_role(
    app_trial: tuple[TestClient, Trial], awaiting: tuple[str, str]
) -> None:
    client, trial = app_trial
    wound, target = awaiting
    sign_in(client, trial.keys["clinician"])
    study = client.get(f"/dashboard/studies/{trial.study}").text
    assert re.search(r'id="review-link">Review queue: <b>1</b> photo awaiting', study)
    page = client.get(f"/dashboard/studies/{trial.study}/review")
    assert page.status_code == 200
    assert queue_ids(page.text) == [target]
    assert f"/dashboard/assessments/{target}/accept" in page.text
    assert f"/dashboard/assessments/{target}/void" in page.text
    assert (
        f"/dashboard/wounds/{wound}?correct={target}&amp;back=review#correct-{target}" in page.text
    )
    # The photo's overlay names its measurement; the series of its wound is beside it.
    assert re.search(rf"/dashboard/assessments/{target}/overlay.jpg\?measurement=\d+", page.text)
    assert 'class="series"' in page.text
    # The API's queue and the page agree.
    api = client.get(f"/v1/studies/{trial.study}/review", headers=trial.auth("clinician")).json()
    assert [i["assessment"]["id"] for i in api["items"]] == [target]
    # Another site's clinician sees none of it.
    sign_in(client, trial.keys["clinician_b"])
    page = client.get(f"/dashboard/studies/{trial.study}/review")
    assert queue_ids(page.text) == [] and "S01" not in page.text
    assert "<b>0</b> photos awaiting" in client.get(f"/dashboard/studies/{trial.study}").text
    # A monitor reads the queue and can change nothing.
    sign_in(client, trial.keys["monitor"])
    page = client.get(f"/dashboard/studies/{trial.study}/review")
    assert queue_ids(page.text) == [target]
    assert "/accept" not in page.text and "/void" not in page.text
    refused = client.post(
        f"/dashboard/assessments/{target}/accept",
        data={"csrf": csrf_of(page.text), "accepted": "yes", "back": "review"},
    )
    assert refused.status_code == 403
    assert queue_ids(client.get(f"/dashboard/studies/{trial.study}/review").text) == [target]


def test_accept_unaccept_and_void_from_the_dashboard(
    app_trial: tuple[TestClient, Trial], awaiting: tuple[str, str]
) -> None:
    client, trial = app_trial
    wound, target = awaiting
    api = trial.auth("clinician")
    sign_in(client, trial.keys["clinician"])
    page = client.get(f"/dashboard/studies/{trial.study}/review").text
    answer = client.post(
        f"/dashboard/assessments/{target}/accept",
        data={"csrf": csrf_of(page), "accepted": "yes", "back": "review"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/dashboard/studies/{trial.study}/review"
    assert client.get(f"/v1/assessments/{target}", headers=api).json()["review"]["status"] == (
        "accepted"
    )
    assert queue_ids(client.get(f"/dashboard/studies/{trial.study}/review").text) == []
    # Undo from the wound page.
    page = client.get(f"/dashboard/wounds/{wound}").text
    assert "accepted by Test clinician" in page and 'value="no"' in page
    answer = client.post(
        f"/dashboard/assessments/{target}/accept",
        data={"csrf": csrf_of(page), "accepted": "no"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/dashboard/wounds/{wound}#{target}"
    assert client.get(f"/v1/assessments/{target}", headers=api).json()["review"]["status"] == (
        "awaiting"
    )
    # Void without a reason: refused, the review page comes back with the error by the form.
    page = client.get(f"/dashboard/studies/{trial.study}/review").text
    refused = client.post(
        f"/dashboard/assessments/{target}/void",
        data={"csrf": csrf_of(page), "reason": "  ", "back": "review"},
    )
    assert refused.status_code == 422
    assert "reason_required" in refused.text and queue_ids(refused.text) == [target]
    # A correction refused on the wound page keeps what was typed.
    polygon = "[[1,1],[2,2]]"
    refused = client.post(
        f"/dashboard/assessments/{target}/correct",
        data={"csrf": csrf_of(page), "polygon": polygon, "reason": "edge of slough"},
    )
    assert refused.status_code == 422 and "invalid_mask" in refused.text
    assert f">{polygon}</textarea>" in refused.text
    assert 'value="edge of slough"' in refused.text
    assert f'id="correct-{target}" data-assessment="{target}" open' in refused.text
    # Void with a reason: out of the queue; the reason is on the wound page and in the API.
    answer = client.post(
        f"/dashboard/assessments/{target}/void",
        data={"csrf": csrf_of(page), "reason": "photo of the wrong foot", "back": "review"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert queue_ids(client.get(f"/dashboard/studies/{trial.study}/review").text) == []
    assessment = client.get(f"/v1/assessments/{target}", headers=api).json()
    assert assessment["voided"] is True
    assert assessment["void_reason"] == "photo of the wrong foot"
    wound_page = client.get(f"/dashboard/wounds/{wound}").text
    assert '<span class="void-reason">photo of the wrong foot</span>' in wound_page


def test_overlay_urls_name_their_measurement(app_trial: tuple[TestClient, Trial]) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["clinician"])
    page = client.get(f"/dashboard/wounds/{trial.wounds['S01-W1']}").text
    images = re.findall(r'src="(/dashboard/assessments/[^"]+/overlay\.jpg[^"]*)"', page)
    assert images and all(re.search(r"\?measurement=\d+$", url) for url in images), images
    named = client.get(images[0])
    assert named.status_code == 200 and "immutable" in named.headers["cache-control"]
    current = client.get(images[0].split("?")[0])
    assert current.headers["cache-control"] == "no-store"
    # Lightbox: each thumbnail links to its full overlay.
    assert re.search(r'<a class="lightbox" href="/dashboard/assessments/[^"]+\?measurement=', page)
    # The confirmation rule is explained where closure is shown.
    assert "at least 14 days" in page


def test_wound_status_badges() -> None:
    def answer(closed: list[bool], *, healed: bool = False, par: float | None = None) -> dict:
        visits = [{"closed": c, "uncounted_reason": None} for c in closed]
        return {"healed_at_last_visit": healed, "visits": visits, "par_week4_pct": par}

    assert wound_status(answer([False, True, True], healed=True)) == "healed"
    assert wound_status(answer([False, True])) == "pending"
    assert wound_status(answer([False, False], par=20.0)) == "stalled"
    assert wound_status(answer([False, False], par=60.0)) == "open"
    assert wound_status(answer([False])) == "open"


def test_subject_page_has_every_wounds_curve_photo_and_badge(
    app_trial: tuple[TestClient, Trial],
) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["clinician"])
    page = client.get(f"/dashboard/subjects/{trial.subjects['S01']}").text
    figure = json.loads(re.search(r'id="subject-figure">(.*?)</script>', page, re.S).group(1))
    w1 = next(t for t in figure["data"] if t["name"] == "W1")
    assert [c[1] for c in w1["customdata"]] == trial.assessments["S01-W1"]
    card = re.search(rf'data-wound="{trial.wounds["S01-W1"]}">(.*?)</article>', page, re.S)
    assert card is not None
    assert 'class="badge badge-healed"' in card.group(1)
    latest = trial.assessments["S01-W1"][-1]
    assert re.search(
        rf"/dashboard/assessments/{latest}/overlay.jpg\?measurement=\d+", card.group(1)
    )


def test_number_at_risk_counts_subjects_still_followed() -> None:
    rows = [
        {"time_to_closure_days": 30, "arm": "active"},
        {"time_to_closure_days": 60, "arm": "control"},
        {"time_to_closure_days": 90, "arm": "control"},
        {"time_to_closure_days": None, "arm": "active"},
    ]
    pooled = number_at_risk({"subject_rows": rows})
    assert pooled["days"] == [0, 28, 56, 84]
    assert pooled["groups"] == {"all subjects": [3, 3, 2, 1]}
    by_arm = number_at_risk({"subject_rows": rows, "by_arm": {"active": {}, "control": {}}})
    assert by_arm["groups"] == {"active": [1, 1, 0, 0], "control": [2, 2, 2, 1]}
    assert number_at_risk({"subject_rows": []}) == {"days": [], "groups": {}}


def test_study_page_shows_number_at_risk_without_arms_for_monitors(
    app_trial: tuple[TestClient, Trial],
) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["monitor"])
    page = client.get(f"/dashboard/studies/{trial.study}").text
    table = re.search(r'<table id="at-risk">(.*?)</table>', page, re.S)
    assert table is not None and "all subjects" in table.group(1)
    assert "active" not in table.group(1)
    assert "–—" not in page and "—–" not in page
    sign_in(client, trial.keys["admin"])
    table = re.search(
        r'<table id="at-risk">(.*?)</table>',
        client.get(f"/dashboard/studies/{trial.study}").text,
        re.S,
    )
    assert table is not None and "active" in table.group(1) and "control" in table.group(1)


def _visit(assessment: str, day: int, area: float, *, closed: bool = False) -> dict[str, Any]:
    return {
        "assessment": assessment,
        "captured_at": f"2026-01-{day + 1:02d}",
        "day": day,
        "area_cm2": area,
        "area_cm2_low": area * 0.9,
        "area_cm2_high": area * 1.1,
        "par_pct": None,
        "closed": closed,
        "counted": True,
        "uncounted_reason": None,
    }


def test_a_photo_with_no_wound_found_is_a_gap_not_zero() -> None:
    """Issue 25: an unmeasurable photo of an open wound was plotted at 0 cm² (reads as
    healed). It is a gap in the area line (and the subject plot), said in the legend; a
    closed wound's empty outline stays a measured 0."""
    from types import SimpleNamespace

    def row(ident: str, codes: list[str], epithelialized: bool | None) -> dict[str, Any]:
        return {
            "assessment": SimpleNamespace(id=ident, epithelialized=epithelialized),
            "flags": [{"code": c} for c in codes],
        }

    rows = [
        row("a", [], None),
        row("b", ["no_wound_found"], False),
        row("c", ["no_wound_found"], True),
    ]
    gaps = unmeasured_photos(rows)
    assert gaps == frozenset({"b"})
    answer = {
        "visits": [_visit("a", 0, 2.0), _visit("b", 14, 0.0), _visit("c", 28, 0.0, closed=True)],
        "closure_day": None,
        "recurrence_day": None,
    }
    figure = area_figure(answer, title="t", unmeasured=gaps)
    line = next(t for t in figure["data"] if t["name"] == "area (cm²)")
    assert line["y"] == [2.0, None, 0.0]
    assert any(t["name"] == UNMEASURED_TRACE for t in figure["data"])
    band = next(t for t in figure["data"] if t["name"] == "95 % interval")
    assert None not in band["y"] and len(band["y"]) == 4  # a and c, up and back
    whole = subject_figure({"wounds": [{"label": "W1", **answer}]}, title="t", unmeasured=gaps)
    assert whole["data"][0]["y"] == [2.0, None, 0.0]
    assert area_figure(answer, title="t")["data"][1]["y"] == [2.0, 0.0, 0.0]
