"""Load a virtual trial into a running service through its own REST API.

``replay`` is the one client of the wire contract (DESIGN.md) that the demo, the
end-to-end benchmark and the end-to-end test share: it creates the study, its
sites, subjects (with their arm, as an admin), wounds, and uploads every photo of
``truth.json`` with its date, visit and clinician observation, in visit order.
``run_demo`` adds what ``woundscope demo`` needs around it: keys, and a record of
them in the data dir so that a second run loads nothing and prints them again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import numpy as np

    from service.config import Settings
    from service.simulator.simulate import TruthPhoto

DEMO_STUDY = "DEMO-001"
DEMO_KEYS_FILE = "demo-keys.json"
DEMO_SUBJECTS = 6
DEMO_WEEKS = 12
DEMO_SEED = 2026
DEMO_UPLOADS_AT_ONCE = 3
"""Wounds the demo uploads at once (at most the service's inference workers + 1, far
below its queue): the client reads the next photo and finds its target point while
the service measures. No faster on a saturated 2-core machine, where one upload
already keeps both cores busy (benchmarks/demo/README.md)."""


class DemoError(RuntimeError):
    """The service answered something the demo cannot go on from."""


@dataclass
class DemoKey:
    role: str
    holder: str
    site: str | None
    key: str


@dataclass
class Loaded:
    """Server ids of what ``replay`` created, by the names in ``truth.json``."""

    study: str
    subjects: dict[str, str]
    wounds: dict[str, str]
    assessments: dict[str, str]
    """photo path (as in truth.json) -> assessment id"""


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code not in (200, 201):
        raise DemoError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _create(
    client: httpx.Client,
    path: str,
    payload: dict[str, Any],
    key: str,
    what: str,
    existing: Callable[[], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """POST a create; on 409 (made by an earlier, interrupted run) return the existing one."""
    response = client.post(path, json=payload, headers=_auth(key))
    if response.status_code == 409 and existing is not None:
        found = existing()
        if found is not None:
            return found
    return _check(response, what)


def create_study(
    client: httpx.Client, admin_key: str, study: str, name: str, marker_mm: float, sites: list[str]
) -> None:
    """The study and its sites (admin); those that exist already are kept."""
    _create(
        client,
        "/v1/studies",
        {"id": study, "name": name, "marker_mm": marker_mm},
        admin_key,
        f"create study {study}",
        lambda: _check(client.get(f"/v1/studies/{study}", headers=_auth(admin_key)), study),
    )
    for site in sites:
        _create(
            client,
            f"/v1/studies/{study}/sites",
            {"id": site, "name": f"Site {site}"},
            admin_key,
            f"create site {site}",
            partial(dict, id=site),
        )


def _find_subject(client: httpx.Client, key: str, study: str, code: str) -> dict[str, Any] | None:
    offset = 0
    while True:
        page = _check(
            client.get(
                f"/v1/studies/{study}/subjects",
                params={"limit": 100, "offset": offset},
                headers=_auth(key),
            ),
            "list subjects",
        )
        for item in page["items"]:
            if item["code"] == code:
                return dict(item)
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return None


def _find_wound(
    client: httpx.Client, key: str, subject_id: str, label: str
) -> dict[str, Any] | None:
    response = client.get(f"/v1/subjects/{subject_id}/wounds", headers=_auth(key))
    items = response.json() if response.status_code == 200 else []
    items = items.get("items", []) if isinstance(items, dict) else items
    return next((dict(w) for w in items if w["label"] == label), None)


def wound_point(mask_path: Path) -> tuple[int, int] | None:
    """The point deepest inside a true mask file (x, y px), None for an empty mask."""
    import cv2

    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    if mask is None or not mask.any():
        return None
    return deepest_point(mask > 127)


def deepest_point(wound: np.ndarray) -> tuple[int, int]:
    """The point deepest inside a non-empty boolean mask (x, y px): where a nurse taps."""
    import cv2
    import numpy as np

    depth = cv2.distanceTransform(np.asarray(wound).astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(x), int(y)


UPLOAD_RETRIES = 5
"""How often one upload is sent again after a 503 (``busy``: the service's queue is full)."""


def upload_photo(
    client: httpx.Client,
    truth_dir: Path,
    photo: TruthPhoto,
    wound_id: str,
    key: str,
    idempotency_key: str,
    target_points: bool = True,
) -> str:
    """One photo of ``truth.json`` to its wound; the assessment id. A 503 is retried
    after its ``Retry-After`` (the ``Idempotency-Key`` makes a resend safe)."""
    fields = {
        "captured_at": photo["captured_at"],
        "visit": photo["visit"],
        "epithelialized": str(photo["epithelialized"]).lower(),
        "drainage": str(photo["drainage"]).lower(),
    }
    if target_points:
        point = wound_point(truth_dir / photo["mask"])
        if point is not None:
            fields["target_point"] = f"{point[0]},{point[1]}"
    jpeg = (truth_dir / photo["photo"]).read_bytes()
    for attempt in range(UPLOAD_RETRIES + 1):
        response = client.post(
            f"/v1/wounds/{wound_id}/assessments",
            files={"photo": (Path(photo["photo"]).name, jpeg, "image/jpeg")},
            data=fields,
            headers={**_auth(key), "Idempotency-Key": idempotency_key},
        )
        if response.status_code != 503 or attempt == UPLOAD_RETRIES:
            break
        time.sleep(min(float(response.headers.get("Retry-After", "1")), 10.0))
    return str(_check(response, f"upload {photo['photo']}")["id"])


def replay(
    client: httpx.Client,
    truth_dir: Path,
    study: str,
    admin_key: str,
    uploader_keys: dict[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    target_points: bool = True,
    concurrency: int = 1,
) -> Loaded:
    """Upload a simulated trial (``truth_dir/truth.json``) into an existing study.

    Subjects are created by the admin (only an admin may set the arm); wounds and
    photos by the site's uploader when ``uploader_keys`` has one, else the admin.
    With ``target_points``, each photo of an open wound is sent with a
    ``target_point`` inside it (as a nurse tapping the wound on a phone would), so
    that the service measures that wound and not whatever else the model outlines.
    Subjects and wounds are created first, one at a time; then the photos go up,
    ``concurrency`` wounds at once (``httpx.Client`` is thread-safe), each wound's
    photos one after another in visit order, as a site would send them.
    Safe to run again after an interruption: creates that answer 409 pick up what
    exists, and every upload carries an ``Idempotency-Key``.
    """
    truth = json.loads((truth_dir / "truth.json").read_text())
    photos: list[TruthPhoto] = sorted(
        truth["photos"], key=lambda p: (p["subject"], p["captured_at"], p["wound"])
    )
    loaded = Loaded(study=study, subjects={}, wounds={}, assessments={})
    keys = _Keys(admin_key, uploader_keys or {})
    for photo in photos:
        _create_subject_and_wound(client, loaded, photo, keys)
    lock = threading.Lock()

    def send(batch: list[TruthPhoto]) -> None:
        for photo in batch:
            assessment = upload_photo(
                client,
                truth_dir,
                photo,
                loaded.wounds[photo["wound"]],
                keys.of_site(photo["site"]),
                f"{study}/{photo['photo']}",
                target_points,
            )
            with lock:
                loaded.assessments[photo["photo"]] = assessment
                if progress is not None:
                    progress(len(loaded.assessments), len(photos))

    if concurrency <= 1:
        send(photos)
    else:
        with ThreadPoolExecutor(concurrency, thread_name_prefix="demo-upload") as pool:
            for future in [pool.submit(send, batch) for batch in _by_wound(photos)]:
                future.result()
    return loaded


@dataclass(frozen=True)
class _Keys:
    """Who ``replay`` acts as: the admin, and each site's uploader where given."""

    admin: str
    uploaders: dict[str, str]

    def of_site(self, site: str) -> str:
        """The site's uploader key, else the admin's."""
        return self.uploaders.get(site, self.admin)


def _create_subject_and_wound(
    client: httpx.Client, loaded: Loaded, photo: TruthPhoto, keys: _Keys
) -> None:
    """The photo's subject (by the admin: it sets the arm) and wound (by the site's
    uploader), unless ``loaded`` has them; on 409 the existing one is looked up."""
    study = loaded.study
    code = photo["subject"]
    if code not in loaded.subjects:
        body = _create(
            client,
            f"/v1/studies/{study}/subjects",
            {"code": code, "site": photo["site"], "arm": photo["arm"]},
            keys.admin,
            f"create subject {code}",
            partial(_find_subject, client, keys.admin, study, code),
        )
        loaded.subjects[code] = str(body["id"])
    subject_id = loaded.subjects[code]
    wound = photo["wound"]
    if wound not in loaded.wounds:
        label = wound.removeprefix(f"{code}-")
        body = _create(
            client,
            f"/v1/subjects/{subject_id}/wounds",
            {"label": label, "location": "foot", "index_leg": photo["index_leg"]},
            keys.of_site(photo["site"]),
            f"create wound {wound}",
            partial(_find_wound, client, keys.admin, subject_id, label),
        )
        loaded.wounds[wound] = str(body["id"])


def _by_wound(photos: list[TruthPhoto]) -> list[list[TruthPhoto]]:
    """The photos grouped by wound (each in visit order), the wounds with most photos
    first, so that the last one does not finish alone."""
    by_wound: dict[str, list[TruthPhoto]] = {}
    for photo in photos:
        by_wound.setdefault(photo["wound"], []).append(photo)
    return sorted(by_wound.values(), key=len, reverse=True)


# ---------------------------------------------------------------------------- keys


def first_admin_key(holder: str, settings: Settings | None = None) -> str:
    """An admin key made in-process in the database of ``settings`` (default: read
    from ``WOUNDSCOPE_*``), as ``woundscope keys create --role admin`` does; audited as
    made by the demo."""
    from service.config import Settings
    from service.domain import keys
    from service.domain.auth import Caller
    from service.persistence.db import Database

    db = Database((settings or Settings()).database_url)
    try:
        db.ensure_schema()
        with db.session() as session:
            _, key = keys.issue_key(
                session, Caller.cli("woundscope demo"), role="admin", holder=holder
            )
    finally:
        db.dispose()
    return key


def api_key(
    client: httpx.Client, admin_key: str, role: str, holder: str, study: str, site: str | None
) -> str:
    """A key made by an admin over the API (``POST /v1/keys``)."""
    payload = {"role": role, "holder": holder, "study": study, "site": site}
    body = _check(
        client.post("/v1/keys", json=payload, headers=_auth(admin_key)), f"key for {holder}"
    )
    return str(body["key"])


UNREACHABLE_S = 30.0
"""How long ``woundscope demo`` (without --serve) waits for a service at the URL when
nothing listens there at all (a service that answers but is not ready yet, loading
its model, is waited for up to ``wait_ready``'s timeout)."""


def wait_ready(
    client: httpx.Client,
    timeout_s: float = 600.0,
    alive: Callable[[], bool] | None = None,
    unreachable_s: float | None = None,
) -> None:
    """Poll /readyz until it answers 200; ``DemoError`` after ``timeout_s``, or after
    ``unreachable_s`` in which nothing answered at all."""
    started = time.monotonic()
    deadline = started + timeout_s
    last = "no answer"
    answered = False
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise DemoError("the service exited before it was ready (see its log above)")
        try:
            response = client.get("/readyz", timeout=5.0)
            answered = True
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code} {response.text[:200]}"
        except httpx.TransportError as exc:
            last = str(exc) or type(exc).__name__
        waited_s = time.monotonic() - started
        if not answered and unreachable_s is not None and waited_s > unreachable_s:
            raise DemoError(
                f"nothing answers at {client.base_url} after {unreachable_s:.0f} s ({last}):"
                " start `woundscope serve` there first, or run `woundscope demo --serve`"
            )
        time.sleep(0.5)
    raise DemoError(
        f"the service at {client.base_url} was not ready after {timeout_s:.0f} s: {last}"
    )


# ---------------------------------------------------------------------------- demo


def _save_keys(data_dir: Path, keys: list[DemoKey], complete: bool) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DEMO_KEYS_FILE
    payload = {"study": DEMO_STUDY, "complete": complete, "keys": [asdict(k) for k in keys]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)


def _load_keys(data_dir: Path) -> tuple[list[DemoKey], bool] | None:
    path = data_dir / DEMO_KEYS_FILE
    if not path.exists():
        return None
    payload = json.loads(path.read_text())
    return [DemoKey(**item) for item in payload["keys"]], bool(payload.get("complete"))


def load_demo(
    client: httpx.Client,
    data_dir: Path,
    admin_key: str | None = None,
    say: Callable[[str], None] = print,
    subjects: int = DEMO_SUBJECTS,
    weeks: int = DEMO_WEEKS,
    settings: Settings | None = None,
) -> list[DemoKey]:
    """Load the demo trial unless ``data_dir`` records a complete load; returns its keys.

    Keys are made first and recorded in ``data_dir/demo-keys.json``, so a run that
    was interrupted resumes (replay is idempotent) instead of loading twice. The
    demo's own size (``DEMO_SUBJECTS`` x ``DEMO_WEEKS``) is shipped already simulated
    (``shipped_trial``); another size is simulated into ``data_dir/demo-trial-*``,
    where it waits until the load is complete, so a resumed load does not simulate
    again. Progress lines say counts and seconds.
    Without ``admin_key``, the first one is made in the database of ``settings``
    (``first_admin_key``).
    """
    recorded = _load_keys(data_dir)
    if recorded is not None and recorded[1]:
        return recorded[0]
    if recorded is not None:
        keys = recorded[0]
        say("resuming an interrupted demo load")
    else:
        keys = _make_keys(client, data_dir, admin_key or first_admin_key("demo admin", settings))
    admin = next(k.key for k in keys if k.role == "admin")
    uploaders = {k.site: k.key for k in keys if k.role == "uploader" and k.site}
    started = time.monotonic()

    def elapsed() -> str:
        return f"{time.monotonic() - started:.0f} s"

    shipped = shipped_trial(subjects, weeks)
    trial_dir = shipped or data_dir / trial_name(subjects, weeks)
    if shipped is not None:
        say(f"using the virtual trial shipped in {shipped} ({simulate_command(subjects, weeks)})")
    else:
        _simulate_once(trial_dir, subjects, weeks, say, elapsed)

    def uploaded(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            say(f"uploaded {done}/{total} photos, {elapsed()}")

    replay(
        client, trial_dir, DEMO_STUDY, admin, uploaders, uploaded, concurrency=DEMO_UPLOADS_AT_ONCE
    )
    _save_keys(data_dir, keys, complete=True)
    if shipped is None:
        shutil.rmtree(trial_dir, ignore_errors=True)  # the service keeps its own copies
    return keys


def trial_name(subjects: int = DEMO_SUBJECTS, weeks: int = DEMO_WEEKS) -> str:
    """The folder name of the demo's virtual trial (in the data dir, or shipped)."""
    return f"demo-trial-{subjects}x{weeks}-{DEMO_SEED}"


def simulate_command(subjects: int = DEMO_SUBJECTS, weeks: int = DEMO_WEEKS) -> str:
    """The command that writes the demo's virtual trial (what is shipped is its output)."""
    return f"woundscope simulate --subjects {subjects} --weeks {weeks} --seed {DEMO_SEED}"


def shipped_trial(subjects: int = DEMO_SUBJECTS, weeks: int = DEMO_WEEKS) -> Path | None:
    """The demo's virtual trial as shipped with the samples (``data/samples/``), already
    simulated, so a first start need not simulate it; None when not shipped (another
    size). ``tests/simulator/test_demo_trial.py`` checks it is what
    ``simulate_command`` writes."""
    from service.resources import samples_dir

    folder = samples_dir() / trial_name(subjects, weeks)
    return folder if (folder / "truth.json").is_file() else None


def _make_keys(client: httpx.Client, data_dir: Path, admin: str) -> list[DemoKey]:
    """The demo study and its sites, and its keys (admin; per site an uploader and a
    clinician; a monitor), recorded as an incomplete load before anything is uploaded."""
    from service.core.marker import MARKER_MM
    from service.simulator.simulate import SITES

    create_study(client, admin, DEMO_STUDY, "Virtual trial (demo)", MARKER_MM, list(SITES))
    keys = [DemoKey("admin", "demo admin", None, admin)]
    for site in SITES:
        for role, person in (("uploader", "nurse"), ("clinician", "clinician")):
            holder = f"site {site} {person}"
            keys.append(
                DemoKey(role, holder, site, api_key(client, admin, role, holder, DEMO_STUDY, site))
            )
    monitor = api_key(client, admin, "monitor", "demo monitor", DEMO_STUDY, None)
    keys.append(DemoKey("monitor", "demo monitor", None, monitor))
    _save_keys(data_dir, keys, complete=False)
    return keys


def _simulate_once(
    trial_dir: Path,
    subjects: int,
    weeks: int,
    say: Callable[[str], None],
    elapsed: Callable[[], str],
) -> None:
    """The demo's virtual trial in ``trial_dir``, unless an earlier run finished it
    there (its truth.json is written last)."""
    from service.simulator.simulate import simulate_trial

    if (trial_dir / "truth.json").is_file():
        say(f"reusing the virtual trial simulated in {trial_dir}")
        return
    say(f"simulating {subjects} subjects over {weeks} weeks (virtual trial) ...")

    def simulated(wounds_done: int, wounds: int, photos: int) -> None:
        say(f"simulated {wounds_done}/{wounds} wounds ({photos} photos), {elapsed()}")

    simulate_trial(
        trial_dir,
        n_subjects=subjects,
        weeks=weeks,
        seed=DEMO_SEED,
        workers=max(1, os.cpu_count() or 1),
        progress=simulated,
    )


def print_keys(keys: list[DemoKey], url: str, say: Callable[[str], None] = print) -> None:
    """The keys, with the one to sign in to the dashboard on the last lines."""
    say("")
    say(f"demo study {DEMO_STUDY}: API keys (kept in {DEMO_KEYS_FILE} in the data dir)")
    for k in keys:
        scope = f"site {k.site}" if k.site else "all sites"
        say(f"  {k.role:<10} {scope:<10} {k.holder:<18} {k.key}")
    admin = next(k for k in keys if k.role == "admin")
    say("")
    say(f"dashboard: {url.rstrip('/')}/dashboard/ - sign in with the demo admin key:")
    say(admin.key)


def run_demo(
    url: str,
    data_dir: Path,
    admin_key: str | None = None,
    say: Callable[[str], None] = print,
    alive: Callable[[], bool] | None = None,
    settings: Settings | None = None,
) -> list[DemoKey]:
    """Wait for the service at ``url``, load the demo once, print its keys. Without
    ``alive`` (a service started elsewhere), give up after ``UNREACHABLE_S`` when
    nothing listens at ``url``."""
    with httpx.Client(base_url=url, timeout=60.0) as client:
        if alive is None:
            say(f"waiting for {url} (a running `woundscope serve`) ...")
        wait_ready(client, alive=alive, unreachable_s=None if alive else UNREACHABLE_S)
        keys = load_demo(client, data_dir, admin_key, say, settings=settings)
    print_keys(keys, url, say)
    return keys


def serve_and_demo(
    host: str,
    port: int,
    data_dir: Path,
    say: Callable[[str], None] = print,
    settings: Settings | None = None,
) -> int:
    """``woundscope serve`` in a subprocess (same environment, same data dir; its log
    goes to ``data_dir/serve.log`` so the keys stay the last lines on the terminal),
    the demo loaded into it (its admin key made in the database of ``settings``, the
    caller's, which the subprocess reads from the same environment), then serving until
    Ctrl-C. Returns the service's exit status."""
    env = {**os.environ, "WOUNDSCOPE_DATA_DIR": str(data_dir)}
    cmd = [sys.executable, "-m", "service.cli", "serve", "--host", host, "--port", str(port)]
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "serve.log"
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    say(f"starting the service at {url} (data dir {data_dir}, log {log_path})")
    with open(log_path, "ab") as log:
        server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            run_demo(url, data_dir, say=say, alive=lambda: server.poll() is None, settings=settings)
            say(f"serving at {url} until Ctrl-C")
            return server.wait()
        except KeyboardInterrupt:
            return 0
        except DemoError as exc:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            raise DemoError("\n".join([str(exc), f"last lines of {log_path}:", *tail])) from None
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGINT)
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
