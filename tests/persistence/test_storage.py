"""Photo storage: local disk and S3 (moto's server mode, a real S3 API over HTTP)."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.persistence.storage import (
    CorruptPhoto,
    LocalPhotoStore,
    PhotoNotFound,
    PhotoStore,
    S3PhotoStore,
    StorageError,
    key_sha256,
    open_store,
)

PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
OTHER = b"\x89PNG\r\n\x1a\n" + b"other photo" * 100


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the store's endpoint is passed to ``open_store`` (as the service
    passes ``Settings.s3_endpoint_url``), never read from the environment by it."""
    import boto3

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"photos-{os.urandom(4).hex()}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> PhotoStore:
    if request.param == "local":
        return open_store((tmp_path / "photos").as_uri())
    bucket = request.getfixturevalue("s3_env")
    return open_store(f"s3://{bucket}/trial/photos", request.getfixturevalue("s3_endpoint"))


def test_put_get_roundtrip_and_key_is_content_address(store: PhotoStore) -> None:
    key = store.put(PHOTO, ".JPG")
    sha = hashlib.sha256(PHOTO).hexdigest()
    assert key == f"{sha[:2]}/{sha[2:4]}/{sha}.jpg"
    assert key_sha256(key) == sha
    assert store.get(key) == PHOTO
    assert store.exists(key)
    assert store.sha256_of(key) == sha


def test_put_is_idempotent(store: PhotoStore) -> None:
    first = store.put(PHOTO, "jpg")
    second = store.put(PHOTO, "jpg")
    assert first == second
    assert list(store.keys()) == [first]


def test_put_again_refreshes_modified_time(store: PhotoStore) -> None:
    import time

    key = store.put(PHOTO, "jpg")
    if isinstance(store, LocalPhotoStore):
        os.utime(store.root / key, (0, 0))
    else:
        time.sleep(1.1)  # S3 LastModified has one-second resolution
    before = store.modified_at(key)
    store.put(PHOTO, "jpg")
    assert store.modified_at(key) > before
    with pytest.raises(PhotoNotFound):
        store.modified_at(store.put(OTHER, "png").replace(".png", ".jpg"))


def test_keys_lists_every_photo_and_delete_removes(store: PhotoStore) -> None:
    a = store.put(PHOTO, "jpg")
    b = store.put(OTHER, "png")
    assert sorted(store.keys()) == sorted([a, b])
    store.delete(a)
    assert not store.exists(a)
    assert list(store.keys()) == [b]
    store.delete(a)  # deleting a missing photo is not an error
    with pytest.raises(PhotoNotFound):
        store.get(a)
    with pytest.raises(PhotoNotFound):
        store.sha256_of(a)


def test_check_passes_and_leaves_nothing(store: PhotoStore) -> None:
    store.check()
    assert list(store.keys()) == []


@pytest.mark.parametrize(
    "key", ["../../etc/passwd", "ab/cd/xyz.jpg", "00/00/" + "a" * 64 + ".jpg", "", "a" * 64]
)
def test_invalid_keys_are_refused(store: PhotoStore, key: str) -> None:
    with pytest.raises(StorageError):
        store.get(key)
    with pytest.raises(StorageError):
        store.exists(key)


def test_invalid_suffix_is_refused(store: PhotoStore) -> None:
    with pytest.raises(StorageError):
        store.put(PHOTO, "../x")


# Local disk: atomicity and corruption


def test_local_layout_and_no_temporary_files_left(tmp_path: Path) -> None:
    store = LocalPhotoStore(tmp_path / "photos")
    keys = [store.put(PHOTO, "jpg"), store.put(OTHER, "png"), store.put(PHOTO, "jpg")]
    store.check()
    files = sorted(
        p.relative_to(tmp_path / "photos").as_posix() for p in tmp_path.rglob("*") if p.is_file()
    )
    assert files == sorted(set(keys))
    assert list(store.temporary_files()) == []


def test_local_corrupt_photo_is_detected_and_put_repairs_it(tmp_path: Path) -> None:
    store = LocalPhotoStore(tmp_path / "photos")
    key = store.put(PHOTO, "jpg")
    path = tmp_path / "photos" / key
    path.write_bytes(PHOTO[:-1] + b"\x00")  # bit rot
    with pytest.raises(CorruptPhoto):
        store.get(key)
    assert store.sha256_of(key) != key_sha256(key)
    assert store.put(PHOTO, "jpg") == key  # the retried upload rewrites the right bytes
    assert store.get(key) == PHOTO


def test_local_interrupted_put_leaves_only_a_temporary_file(tmp_path: Path) -> None:
    store = LocalPhotoStore(tmp_path / "photos")
    key = store.put(PHOTO, "jpg")
    leftover = (tmp_path / "photos" / key).parent / ".tmp-crashed"
    leftover.write_bytes(b"half a photo")
    assert list(store.keys()) == [key]
    assert list(store.temporary_files()) == [leftover]


def test_local_write_failure_is_a_storage_error(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.write_bytes(b"a file where the folder should be")
    store = LocalPhotoStore(root)
    with pytest.raises(StorageError):
        store.put(PHOTO, "jpg")
    with pytest.raises(StorageError):
        store.check()


def test_open_store_urls(tmp_path: Path) -> None:
    local = open_store((tmp_path / "p q").as_uri())
    assert isinstance(local, LocalPhotoStore)
    assert local.root == tmp_path / "p q"
    assert isinstance(open_store(str(tmp_path)), LocalPhotoStore)
    for bad in ["ftp://x/y", "s3:///prefix", "file://host/path"]:
        with pytest.raises(StorageError):
            open_store(bad)


# S3


def test_s3_objects_live_under_the_prefix(s3_env: str, s3_endpoint: str) -> None:
    import boto3

    store = open_store(f"s3://{s3_env}/trial/photos", s3_endpoint)
    assert isinstance(store, S3PhotoStore)
    key = store.put(PHOTO, "jpg")
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    listed = [o["Key"] for o in client.list_objects_v2(Bucket=s3_env)["Contents"]]
    assert listed == [f"trial/photos/{key}"]
    head = client.head_object(Bucket=s3_env, Key=f"trial/photos/{key}")
    assert head["ContentType"] == "image/jpeg"


def test_s3_corrupt_object_is_detected(s3_env: str, s3_endpoint: str) -> None:
    import boto3

    store = open_store(f"s3://{s3_env}/p", s3_endpoint)
    key = store.put(PHOTO, "jpg")
    boto3.client("s3", endpoint_url=s3_endpoint).put_object(
        Bucket=s3_env, Key=f"p/{key}", Body=b"tampered"
    )
    with pytest.raises(CorruptPhoto):
        store.get(key)
    assert store.put(PHOTO, "jpg") == key
    assert store.get(key) == PHOTO


def test_s3_endpoint_falls_back_to_boto_own_variable(
    s3_env: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No endpoint passed: boto reads ``AWS_ENDPOINT_URL`` itself (as it did before the
    endpoint became a setting)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    store = open_store(f"s3://{s3_env}/p")
    key = store.put(PHOTO, "jpg")
    assert store.get(key) == PHOTO


def test_s3_missing_bucket_fails_check(s3_env: str, s3_endpoint: str) -> None:
    store = open_store("s3://no-such-bucket-here/p", s3_endpoint)
    with pytest.raises(StorageError):
        store.check()
    with pytest.raises(StorageError):
        store.put(PHOTO, "jpg")
