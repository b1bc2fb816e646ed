"""Static assets: content-hashed URLs cached immutable, gzip bodies, stale hashes 404."""

from __future__ import annotations

import gzip
import hashlib
import re

import pytest
from fastapi.testclient import TestClient

from service.api.assets import (
    IMMUTABLE_CACHE,
    STATIC_DIR,
    accepts_gzip,
    asset_url,
    plotly_js_path,
)
from tests.api.dashboard.test_pages import app_trial, sign_in  # noqa: F401  (fixture)
from tests.core.healing.seed import Trial

ASSETS = {
    "plotly.min.js": plotly_js_path(),
    **{p.name: p for p in STATIC_DIR.iterdir() if p.is_file()},
}


def raw_get(client: TestClient, url: str, accept: str) -> tuple[int, dict[str, str], bytes]:
    """The response as sent on the wire (TestClient would undo the gzip)."""
    with client.stream("GET", url, headers={"Accept-Encoding": accept}) as answer:
        return answer.status_code, dict(answer.headers), b"".join(answer.iter_raw())


def test_asset_url_carries_the_file_hash() -> None:
    for name, path in ASSETS.items():
        sha8 = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
        stem, _, ext = name.rpartition(".")
        assert asset_url(name) == f"/dashboard/static/{stem}.{sha8}.{ext}"


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_hashed_url_is_immutable_and_gzipped(
    app_trial: tuple[TestClient, Trial],  # noqa: F811
    name: str,
) -> None:
    client, _ = app_trial
    status, headers, body = raw_get(client, asset_url(name), "gzip, deflate, br")
    assert status == 200
    assert headers["cache-control"] == IMMUTABLE_CACHE
    assert headers["content-encoding"] == "gzip"
    assert "accept-encoding" in headers["vary"].lower()
    assert int(headers["content-length"]) == len(body)
    assert gzip.decompress(body) == ASSETS[name].read_bytes()
    if name == "plotly.min.js":
        assert len(body) < len(ASSETS[name].read_bytes()) / 2
    # A client that takes no gzip gets the plain file.
    status, headers, body = raw_get(client, asset_url(name), "identity")
    assert status == 200 and "content-encoding" not in headers
    assert body == ASSETS[name].read_bytes()


def test_bare_name_keeps_working_with_a_short_cache(
    app_trial: tuple[TestClient, Trial],  # noqa: F811
) -> None:
    client, _ = app_trial
    status, headers, body = raw_get(client, "/dashboard/static/dashboard.js", "gzip")
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert "immutable" not in headers["cache-control"]
    assert gzip.decompress(body) == ASSETS["dashboard.js"].read_bytes()


@pytest.mark.parametrize(
    "url",
    [
        "/dashboard/static/plotly.min.00000000.js",
        "/dashboard/static/dashboard.deadbeef.css",
        "/dashboard/static/nothing.12345678.js",
        "/dashboard/static/nothing.js",
        "/dashboard/static/.js",
    ],
)
def test_a_wrong_hash_or_name_is_404(
    app_trial: tuple[TestClient, Trial],  # noqa: F811
    url: str,
) -> None:
    client, _ = app_trial
    assert client.get(url).status_code == 404


def test_accepts_gzip() -> None:
    assert accepts_gzip("gzip, deflate, br")
    assert accepts_gzip("br;q=1.0, gzip;q=0.8")
    assert accepts_gzip("*")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("identity")
    assert not accepts_gzip("")


def test_pages_reference_only_hashed_assets(
    app_trial: tuple[TestClient, Trial],  # noqa: F811
) -> None:
    client, trial = app_trial
    pages = [
        "/dashboard/",
        f"/dashboard/studies/{trial.study}",
        f"/dashboard/studies/{trial.study}/quality",
        f"/dashboard/studies/{trial.study}/review",
        f"/dashboard/subjects/{trial.subjects['S01']}",
        f"/dashboard/wounds/{trial.wounds['S01-W1']}",
        f"/dashboard/wounds/{trial.wounds['S01-W1']}/compare",
        "/dashboard/audit",
    ]
    client.cookies.clear()
    login = client.get("/dashboard/login").text
    sign_in(client, trial.keys["admin"])
    seen: set[str] = set()
    for text in [login] + [client.get(p).text for p in pages]:
        statics = re.findall(r'(?:src|href)="(/dashboard/static/[^"]+)"', text)
        assert statics, "no static asset linked"
        for url in statics:
            assert url in {asset_url(n) for n in ASSETS}, url
            seen.add(url)
    assert asset_url("outline.js") in seen and asset_url("plotly.min.js") in seen
