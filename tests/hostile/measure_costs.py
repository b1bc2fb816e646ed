"""What the hostile requests cost the server, as numbers (not a test; the tests in
this folder assert bounds on the same measurements).

    PYTHONPATH=. python -m tests.hostile.measure_costs

1. 300 MB sent as ``Transfer-Encoding: chunked`` to a live ``woundscope serve``,
   without a key and with one: the answer, how much the client got to send, the
   peak of what the server spooled to its TMPDIR (open files included) and its RSS.
2. ``PUT /v1/assessments/{id}/mask`` with a 12 KB PNG that declares 10000 x 10000
   pixels, in-process: the answer and the process's RSS growth.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from service.api.app import create_app
from service.domain.auth import create_key
from tests.api.conftest import Service, bearer, make_settings, make_trial, sample_photo
from tests.hostile.live import Peaks, live_server, send_chunked
from tests.hostile.test_hostile import PeakRss


def chunked() -> None:
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp)) as live:
        for label, headers in (("no key", {}), ("valid key", live.headers())):
            with Peaks(live.pid, live.spool) as p:
                status, _, sent = send_chunked(
                    live.port, "/v1/wounds/wnd_000000000000/assessments", headers, 300 << 20
                )
            print(
                f"chunked 300 MB, {label}: {status}; client sent {sent / 2**20:.1f} MB;"
                f" server spool peak {p.disk_peak_mb:.1f} MB; RSS +{p.rss_growth_mb:.0f} MB"
            )


def mask_bomb() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp), f"sqlite:///{tmp}/w.db")
        app = create_app(settings)
        with TestClient(app) as client:
            with app.state.db.session() as s:
                _, key = create_key(s, role="admin", holder="measure")
            trial = make_trial(Service(app, client, settings, bearer(key)))
            wound = trial.wound("A")
            upload = trial.upload(wound, sample_photo("0078"), px_per_mm="10").json()
            buf = io.BytesIO()
            Image.new("1", (10_000, 10_000), 0).save(buf, "PNG", optimize=True)
            bomb = buf.getvalue()
            with PeakRss() as rss:
                r = client.put(
                    f"/v1/assessments/{upload['id']}/mask",
                    files={"mask": ("m.png", bomb, "image/png")},
                    data={"reason": "bomb"},
                    headers=trial.keys["clinician"],
                )
            print(
                f"mask PNG {len(bomb) / 1024:.0f} KB declaring 10000x10000: {r.status_code}"
                f" {r.json()['code']}; RSS +{rss.growth_mb:.0f} MB"
            )


if __name__ == "__main__":
    chunked()
    mask_bomb()
