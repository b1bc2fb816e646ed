"""Study overview, per-site data quality, subject events and the audit page, without a
browser (issue 16): statuses from the subject page's badges, shareable filters, the
event form through the API's domain functions, the audit log scoped as GET /v1/audit."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api import auditlog, overview
from service.api.overview import competing_at_risk, subject_status
from service.api.wording import NO_SCHEDULE_TEXT
from service.domain.followup import OVERDUE_AFTER_DAYS, is_overdue
from tests.api.dashboard.test_pages import sign_in
from tests.conftest import need
from tests.core.healing.seed import MODEL_DIR, PHOTO, PX_PER_MM, SERIES, Trial, seed


@pytest.fixture(scope="module")
def app_trial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Trial]]:
    """Its own service and seeded trial (this module records events and voids them)."""
    need((MODEL_DIR / "model.onnx").is_file(), f"the bundled model is not at {MODEL_DIR}")
    need(PHOTO.is_file(), f"the sample photo is not at {PHOTO}")
    from service.api.app import create_app
    from service.config import Settings

    data_dir: Path = tmp_path_factory.mktemp("study-views")
    app = create_app(
        Settings(data_dir=data_dir, model=str(MODEL_DIR), log_json=False, log_level="WARNING")
    )
    with TestClient(app) as client:
        yield client, seed(client, app.state.db)


LAST_S02 = date.fromisoformat(SERIES["S02-W1"][-1][0])


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def subjects_shown(page: str) -> list[str]:
    table = re.search(r'<table id="subjects">(.*?)</table>', page, re.S)
    assert table is not None
    return re.findall(r'data-subject="([^"]+)"', table.group(1))


def test_subject_status_comes_from_the_wound_badges() -> None:
    assert subject_status(["healed", "healed"], True) == "healed"
    assert subject_status(["healed", "pending"], False) == "pending"
    assert subject_status(["pending", "stalled"], False) == "stalled"
    assert subject_status(["open", "healed"], False) == "open"
    assert subject_status([], None) == "open"


def test_overdue_is_late_only_while_in_follow_up() -> None:
    last = date(2026, 1, 1)
    late = date.fromordinal(last.toordinal() + OVERDUE_AFTER_DAYS + 1)
    on_time = date.fromordinal(last.toordinal() + OVERDUE_AFTER_DAYS)
    assert is_overdue(last, late, status="open", in_follow_up=True)
    assert not is_overdue(last, on_time, status="open", in_follow_up=True)
    assert not is_overdue(last, late, status="healed", in_follow_up=True)
    assert not is_overdue(last, late, status="open", in_follow_up=False)
    assert not is_overdue(None, late, status="open", in_follow_up=True)


def test_competing_at_risk_counts_competing_risk_time() -> None:
    answer = {"subject_rows": [{"cr_time_days": 10}, {"cr_time_days": 40}, {"cr_time_days": None}]}
    assert competing_at_risk(answer, [0, 28, 56]) == [2, 1, 0]


def test_study_table_has_status_last_visit_area_and_filters(
    app_trial: tuple[TestClient, Trial], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["monitor"])
    base = f"/dashboard/studies/{trial.study}"
    page = client.get(base).text
    assert subjects_shown(page) == ["S01", "S02"]
    row1 = re.search(r'data-subject="S01" data-status="(\w+)">(.*?)</tr>', page, re.S)
    row2 = re.search(r'data-subject="S02" data-status="(\w+)">(.*?)</tr>', page, re.S)
    assert row1 is not None and row2 is not None
    assert row1.group(1) == "healed" and "badge-healed" in row1.group(2)
    assert row2.group(1) in ("open", "stalled")
    assert LAST_S02.isoformat() in row2.group(2)
    # The API's subject answer says S02's wound never closed; its area is the last counted.
    api = client.get(f"/v1/subjects/{trial.subjects['S02']}/endpoints", headers=trial.auth("admin"))
    visits = api.json()["wounds"][0]["visits"]
    assert f"{visits[-1]['area_cm2']:.2f}" in row2.group(2)
    # The study sets no visit schedule: nobody is overdue, the filter is not offered (a
    # shared link with it shows everyone), and the page says why.
    assert "overdue</b>" not in page and 'name="overdue"' not in page
    assert NO_SCHEDULE_TEXT in page
    assert subjects_shown(client.get(f"{base}?overdue=yes").text) == ["S01", "S02"]
    # With a schedule, "overdue" is followup's answer.
    monkeypatch.setattr(overview, "has_visit_schedule", lambda study: True)
    page = client.get(base).text
    row1 = re.search(r'data-subject="S01" data-status="(\w+)">(.*?)</tr>', page, re.S)
    row2 = re.search(r'data-subject="S02" data-status="(\w+)">(.*?)</tr>', page, re.S)
    assert row1 is not None and row2 is not None
    overdue = (date.today() - LAST_S02).days > OVERDUE_AFTER_DAYS
    assert ("overdue</b>" in row2.group(2)) == overdue
    assert "overdue</b>" not in row1.group(2)  # healed: no visit expected

    assert subjects_shown(client.get(f"{base}?site=A").text) == ["S01"]
    assert subjects_shown(client.get(f"{base}?status=healed").text) == ["S01"]
    assert subjects_shown(client.get(f"{base}?q=s02").text) == ["S02"]
    assert subjects_shown(client.get(f"{base}?overdue=yes").text) == (["S02"] if overdue else [])
    assert subjects_shown(client.get(f"{base}?site=B&status=healed").text) == []
    filtered = client.get(f"{base}?site=B")
    assert '<option value="B" selected>' in filtered.text  # the form shows the filter in use
    refused = client.get(f"{base}?status=great")
    assert refused.status_code == 422 and "invalid_request" in refused.text

    # A site key sees its site only, in the table and in the site filter.
    sign_in(client, trial.keys["clinician"])
    page = client.get(base).text
    assert subjects_shown(page) == ["S01"]
    assert '<option value="B"' not in page


def test_study_page_has_cumulative_incidence_from_the_study_answer(
    app_trial: tuple[TestClient, Trial],
) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["monitor"])
    page = client.get(f"/dashboard/studies/{trial.study}").text
    figure = re.search(
        r'<script type="application/json" id="incidence-figure">(.*?)</script>', page
    )
    assert figure is not None and 'id="incidence-plot"' in page
    curve = json.loads(figure.group(1))["data"][-1]
    api = client.get(f"/v1/studies/{trial.study}/endpoints", headers=trial.auth("monitor")).json()
    ci = api["cumulative_incidence"]
    assert curve["x"] == ci["timeline_days"] and curve["y"] == ci["cumulative_incidence"]
    table = re.search(r'<table id="at-risk">(.*?)</table>', page, re.S)
    assert table is not None and "competing-risk analysis" in table.group(1)
    assert f"{ci['healed']} healed" in page


def test_quality_page_counts_per_site(app_trial: tuple[TestClient, Trial]) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["monitor"])
    page = client.get(f"/dashboard/studies/{trial.study}/quality")
    assert page.status_code == 200, page.text
    rows = dict(re.findall(r'<tr data-site="(\w)">(.*?)</tr>', page.text, re.S))
    assert set(rows) == {"A", "B"}
    cells = {site: re.findall(r"<td[^>]*>(?:<a [^>]*>)?(\d+)", text) for site, text in rows.items()}
    # subjects, photos (every seeded photo is live)
    assert cells["A"][:2] == ["1", str(len(SERIES["S01-W1"]))]
    assert cells["B"][:2] == ["1", str(len(SERIES["S02-W1"]))]
    assert cells["A"][4] == cells["B"][4] == "0"  # no retakes yet
    # A second photo of S02's wound on its last visit day is a retake of site B.
    client.post(
        f"/v1/wounds/{trial.wounds['S02-W1']}/assessments",
        data={"captured_at": LAST_S02.isoformat(), "px_per_mm": str(PX_PER_MM)},
        files={"photo": ("photo.jpg", PHOTO.read_bytes(), "image/jpeg")},
        headers=trial.auth("admin"),
    ).raise_for_status()
    page = client.get(f"/dashboard/studies/{trial.study}/quality")
    rows = dict(re.findall(r'<tr data-site="(\w)">(.*?)</tr>', page.text, re.S))
    cells = {site: re.findall(r"<td[^>]*>(?:<a [^>]*>)?(\d+)", text) for site, text in rows.items()}
    assert cells["B"][1] == str(len(SERIES["S02-W1"]) + 1) and cells["B"][4] == "1"
    assert cells["A"][4] == "0"
    sign_in(client, trial.keys["clinician_b"])
    page = client.get(f"/dashboard/studies/{trial.study}/quality")
    assert re.findall(r'<tr data-site="(\w)">', page.text) == ["B"]


def test_events_are_recorded_and_voided_through_the_api_functions(
    app_trial: tuple[TestClient, Trial],
) -> None:
    client, trial = app_trial
    subject = trial.subjects["S01"]
    url = f"/dashboard/subjects/{subject}"
    sign_in(client, trial.keys["clinician"])
    page = client.get(url).text
    assert 'id="event-form"' in page and "No event recorded." in page
    token = csrf_of(page)

    # Refused: a major amputation without its leg; the typed values are kept.
    refused = client.post(
        f"{url}/events",
        data={"kind": "major_amputation", "on": "2026-03-01", "note": "typed", "csrf": token},
    )
    assert refused.status_code == 422
    assert "needs its" in refused.text and 'value="typed"' in refused.text
    assert '<option value="major_amputation" selected>' in refused.text
    bad_date = client.post(f"{url}/events", data={"kind": "death", "on": "soon", "csrf": token})
    assert bad_date.status_code == 422 and "date" in bad_date.text
    forged = client.post(f"{url}/events", data={"kind": "death", "on": "2026-03-01", "csrf": "x"})
    assert forged.status_code == 403

    done = client.post(
        f"{url}/events",
        data={"kind": "revascularisation", "on": "2026-03-02", "leg": "index", "csrf": token},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].endswith("#events")
    events = client.get(f"/v1/subjects/{subject}/events", headers=trial.auth("admin")).json()
    assert [(e["kind"], e["date"], e["leg"]) for e in events] == [
        ("revascularisation", "2026-03-02", "index")
    ]
    event_id = events[0]["id"]

    no_reason = client.post(f"{url}/events/{event_id}/void", data={"reason": " ", "csrf": token})
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    voided = client.post(
        f"{url}/events/{event_id}/void",
        data={"reason": "wrong subject", "csrf": token},
        follow_redirects=False,
    )
    assert voided.status_code == 303
    again = client.post(f"{url}/events/{event_id}/void", data={"reason": "twice", "csrf": token})
    assert again.status_code == 409 and "event_already_voided" in again.text
    page = client.get(url).text
    row = re.search(rf'<tr data-event="{event_id}" class="voided">(.*?)</tr>', page, re.S)
    assert row is not None and "voided: wrong subject" in row.group(1)
    api = client.get(f"/v1/subjects/{subject}/events", headers=trial.auth("admin")).json()
    assert api[0]["voided"] and api[0]["void_reason"] == "wrong subject"

    # Monitors read the list, get no form, and a hand-made POST is refused as by the API.
    sign_in(client, trial.keys["monitor"])
    page = client.get(url).text
    assert "voided: wrong subject" in page and 'id="event-form"' not in page
    refused = client.post(
        f"{url}/events", data={"kind": "death", "on": "2026-03-01", "csrf": csrf_of(page)}
    )
    assert refused.status_code == 403
    # Another site's clinician does not see the subject at all.
    sign_in(client, trial.keys["clinician_b"])
    assert client.get(url).status_code == 404


def test_audit_page_is_admins_filtered_and_paged(
    app_trial: tuple[TestClient, Trial], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["admin"])
    page = client.get("/dashboard/audit")
    assert page.status_code == 200, page.text
    api = client.get("/v1/audit", headers=trial.auth("admin"), params={"limit": 1}).json()
    assert f"{api['total']} entries" in page.text
    actions = re.findall(r'<tr data-action="([^"]+)">', page.text)
    assert len(actions) == min(50, api["total"])

    only_masks = client.get("/dashboard/audit", params={"action": "measurement."}).text
    masks = re.findall(r'<tr data-action="([^"]+)">', only_masks)
    assert masks and all(a.startswith("measurement.") for a in masks)

    s02 = client.get("/dashboard/audit", params={"subject": "S02", "study": trial.study}).text
    resources = re.findall(r"<td>((?:subject|wound|assessment|event)/[^<]+)</td>", s02)
    assert f"subject/{trial.subjects['S02']}" in resources
    assert all(trial.subjects["S01"] not in r for r in resources)
    assert all(a not in s02 for a in trial.assessments["S01-W1"])
    # Each row names what it is about: the subject, the wound and the photo's day.
    about = re.findall(r'<td class="about"><a href="[^"]+">([^<]+)</a></td>', s02)
    photos = [a for a in about if a.startswith("subject S02 · wound W1 · ")]
    assert photos and all(re.search(r"\d{4}-\d\d-\d\d \(day \d+\)$", a) for a in photos)
    assert "(day 0)" in " ".join(photos)
    unknown = client.get("/dashboard/audit", params={"subject": "nobody", "study": trial.study})
    assert unknown.status_code == 404

    # Paged: two a page, newest first, the pages together are the API's order.
    monkeypatch.setattr(auditlog, "AUDIT_PAGE_SIZE", 2)
    first = client.get("/dashboard/audit").text
    second = client.get("/dashboard/audit", params={"page": 1}).text
    assert 'rel="next"' in first and 'rel="prev"' not in first
    assert "page 2 of" in second and 'rel="prev"' in second
    ids = client.get("/v1/audit", headers=trial.auth("admin"), params={"limit": 4}).json()
    shown = re.findall(r"<td>([a-z]+/[^<]+)</td>", first + second)
    assert shown == [e["resource"] for e in ids["items"]]

    for role in ("monitor", "clinician"):
        sign_in(client, trial.keys[role])
        refused = client.get("/dashboard/audit")
        assert refused.status_code == 403 and "admin" in refused.text
