"""Content-addressed photo storage: local disk (default) or S3-compatible object storage.

A photo's key is derived from the sha256 of its bytes, ``ab/cd/<sha256>.<ext>``, so a
key names exactly one content: ``put`` is idempotent, and a stored object whose bytes
no longer hash to its key is detectably corrupt (``get`` refuses to return it).

``put`` returns only once the bytes are durable: on local disk they are written to a
temporary name in the destination folder, fsynced, renamed over the final name and
the folder fsynced; a crash at any point leaves either nothing or the whole photo
(plus, at worst, a temporary file that ``keys`` ignores and ``woundscope fsck``
reports). On S3 the single ``PutObject`` is atomic and carries a Content-MD5 the
server checks.

``open_store(url, s3_endpoint_url)`` takes ``file:///path`` or ``s3://bucket/prefix``;
for S3 the endpoint is ``s3_endpoint_url`` (``WOUNDSCOPE_S3_ENDPOINT_URL``, passed in
from the settings) or else boto's own (``AWS_ENDPOINT_URL``, or AWS), and the
credentials and region come from the usual AWS variables.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

_CHUNK = 1 << 20
_KEY_RE = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z0-9]{1,8})$")
_SUFFIX_RE = re.compile(r"^[a-z0-9]{1,8}$")
TEMP_PREFIX = ".tmp-"


class StorageError(Exception):
    """Photo storage failed or is unusable; the message says what and where."""


class PhotoNotFound(StorageError):
    """No photo is stored under this key."""


class CorruptPhoto(StorageError):
    """The stored bytes do not hash to the key they are stored under."""


def make_key(sha256_hex: str, suffix: str) -> str:
    """The storage key of content with this sha256 and file suffix (``jpg``, ``.png``)."""
    ext = suffix.lower().lstrip(".")
    if not _SUFFIX_RE.match(ext):
        raise StorageError(f"invalid photo suffix {suffix!r}: 1-8 letters or digits")
    return f"{sha256_hex[:2]}/{sha256_hex[2:4]}/{sha256_hex}.{ext}"


def key_sha256(key: str) -> str:
    """The sha256 a key promises (parsed from the key; reads nothing)."""
    match = _KEY_RE.match(key)
    if not match or match.group(1) != match.group(3)[:2] or match.group(2) != match.group(3)[2:4]:
        raise StorageError(f"invalid photo key {key!r}: expected ab/cd/<sha256>.<ext>")
    return match.group(3)


def is_key(name: str) -> bool:
    try:
        key_sha256(name)
    except StorageError:
        return False
    return True


class PhotoStore(ABC):
    """Where original photos live. Keys are ``ab/cd/<sha256>.<ext>``."""

    url: str

    def put(self, data: bytes, suffix: str) -> str:
        """Store ``data`` durably and return its key. Idempotent; verifies what it wrote.

        Storing content that is already there refreshes its modification time, so
        ``woundscope fsck --repair`` (which spares recent photos) never deletes a photo
        an upload is about to reference.
        """
        key = make_key(hashlib.sha256(data).hexdigest(), suffix)
        self._put(key, data)
        return key

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; ``CorruptPhoto`` when they do not match it."""
        expected = key_sha256(key)
        data = self._read(key)
        if hashlib.sha256(data).hexdigest() != expected:
            raise CorruptPhoto(f"{self.url}: {key} is corrupt (its bytes do not hash to its key)")
        return data

    def sha256_of(self, key: str) -> str:
        """The sha256 of the bytes actually stored under ``key`` (read and hashed)."""
        digest = hashlib.sha256()
        for chunk in self._chunks(key):
            digest.update(chunk)
        return digest.hexdigest()

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove a photo; deleting a missing key is not an error."""

    @abstractmethod
    def keys(self) -> Iterator[str]:
        """Every stored key (temporary and foreign objects are skipped)."""

    @abstractmethod
    def check(self) -> None:
        """Raise ``StorageError`` unless the store can be written, read and deleted now."""

    @abstractmethod
    def modified_at(self, key: str) -> float:
        """When the photo was last stored (Unix time, seconds)."""

    @abstractmethod
    def _put(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def _read(self, key: str) -> bytes: ...

    @abstractmethod
    def _chunks(self, key: str) -> Iterator[bytes]: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalPhotoStore(PhotoStore):
    """Photos under a folder on local disk."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.url = self.root.as_uri() if self.root.is_absolute() else str(self.root)

    def _path(self, key: str) -> Path:
        key_sha256(key)  # refuses anything but ab/cd/<sha256>.<ext>: no path traversal
        return self.root / key

    def _mkdirs(self, folder: Path) -> None:
        """Create ``folder`` and fsync each parent that gained an entry."""
        missing = []
        probe = folder
        while not probe.exists():
            missing.append(probe)
            probe = probe.parent
        for path in reversed(missing):
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                continue  # a concurrent put made it
            _fsync_dir(path.parent)

    def _put(self, key: str, data: bytes) -> None:
        sha = key_sha256(key)
        path = self._path(key)
        try:
            if path.is_file() and self.sha256_of(key) == sha:
                os.utime(path)
                return
        except (PhotoNotFound, OSError):
            pass
        self._write(key, data)
        if self.sha256_of(key) != sha:
            raise StorageError(f"{self.url}: {key} did not read back intact after writing")

    def _write(self, key: str, data: bytes) -> None:
        final = self._path(key)
        try:
            self._mkdirs(final.parent)
            tmp = final.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                tmp.unlink(missing_ok=True)
                raise
            os.close(fd)
            try:
                os.replace(tmp, final)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            _fsync_dir(final.parent)
        except OSError as exc:
            raise StorageError(f"{self.url}: cannot write {key}: {exc.strerror or exc}") from exc

    def _read(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise PhotoNotFound(f"{self.url}: no photo {key}") from None
        except OSError as exc:
            raise StorageError(f"{self.url}: cannot read {key}: {exc.strerror or exc}") from exc

    def _chunks(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    yield chunk
        except FileNotFoundError:
            raise PhotoNotFound(f"{self.url}: no photo {key}") from None
        except OSError as exc:
            raise StorageError(f"{self.url}: cannot read {key}: {exc.strerror or exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def modified_at(self, key: str) -> float:
        try:
            return self._path(key).stat().st_mtime
        except FileNotFoundError:
            raise PhotoNotFound(f"{self.url}: no photo {key}") from None

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
            if path.parent.is_dir():
                _fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(f"{self.url}: cannot delete {key}: {exc.strerror or exc}") from exc

    def keys(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for first in sorted(self.root.iterdir()):
            if not first.is_dir() or len(first.name) != 2:
                continue
            for second in sorted(first.iterdir()):
                if not second.is_dir():
                    continue
                for file in sorted(second.iterdir()):
                    key = f"{first.name}/{second.name}/{file.name}"
                    if file.is_file() and is_key(key):
                        yield key

    def temporary_files(self) -> Iterator[Path]:
        """Temporary files an interrupted ``put`` left behind (never a stored photo)."""
        if not self.root.is_dir():
            return
        for path in self.root.rglob(f"{TEMP_PREFIX}*"):
            if path.is_file():
                yield path

    def check(self) -> None:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            probe = self.root / f"{TEMP_PREFIX}probe-{uuid.uuid4().hex}"
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, b"ok")
                os.fsync(fd)
            finally:
                os.close(fd)
            ok = probe.read_bytes() == b"ok"
            probe.unlink()
        except OSError as exc:
            raise StorageError(
                f"photo storage {self.url} is not usable: {exc.strerror or exc}"
            ) from exc
        if not ok:
            raise StorageError(f"photo storage {self.url} did not read back what was written")


class S3PhotoStore(PhotoStore):
    """Photos in an S3-compatible bucket, under an optional prefix."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None, endpoint_url: str = ""):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client = client if client is not None else _s3_client(endpoint_url)

    def _object(self, key: str) -> str:
        key_sha256(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, action: str, key: str, exc: Exception) -> StorageError:
        code = _error_code(exc)
        if code in ("NoSuchKey", "404", "NotFound"):
            return PhotoNotFound(f"{self.url}: no photo {key}")
        return StorageError(f"{self.url}: cannot {action} {key}: {exc}")

    def _put(self, key: str, data: bytes) -> None:
        # Always PUT: atomic, refreshes LastModified, and the server checks Content-MD5.
        digest = hashlib.md5(data)
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=self._object(key),
                Body=data,
                ContentMD5=base64.b64encode(digest.digest()).decode(),
                ContentType=_content_type(key),
            )
            head = self._client.head_object(Bucket=self.bucket, Key=self._object(key))
        except Exception as exc:  # noqa: BLE001 - botocore raises many kinds
            raise self._fail("write", key, exc) from exc
        # Not the ETag: with SSE-KMS it is not the MD5. Content-MD5 was checked on PUT.
        if head.get("ContentLength") != len(data):
            raise StorageError(f"{self.url}: {key} did not read back intact after writing")

    def _read(self, key: str) -> bytes:
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self._object(key))
            return bytes(answer["Body"].read())
        except Exception as exc:  # noqa: BLE001
            raise self._fail("read", key, exc) from exc

    def _chunks(self, key: str) -> Iterator[bytes]:
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self._object(key))
            yield from answer["Body"].iter_chunks(_CHUNK)
        except Exception as exc:  # noqa: BLE001
            raise self._fail("read", key, exc) from exc

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._object(key))
        except Exception as exc:  # noqa: BLE001
            error = self._fail("look up", key, exc)
            if isinstance(error, PhotoNotFound):
                return False
            raise error from exc
        return True

    def modified_at(self, key: str) -> float:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._object(key))
        except Exception as exc:  # noqa: BLE001
            raise self._fail("look up", key, exc) from exc
        return float(head["LastModified"].timestamp())

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._object(key))
        except Exception as exc:  # noqa: BLE001
            raise self._fail("delete", key, exc) from exc

    def keys(self) -> Iterator[str]:
        start = f"{self.prefix}/" if self.prefix else ""
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(start) :]
                    if is_key(key):
                        yield key
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise StorageError(f"{self.url}: cannot list photos: {exc}") from exc

    def check(self) -> None:
        probe = (
            f"{self.prefix}/.probe/{uuid.uuid4().hex}"
            if self.prefix
            else f".probe/{uuid.uuid4().hex}"
        )
        try:
            self._client.put_object(Bucket=self.bucket, Key=probe, Body=b"ok")
            body = self._client.get_object(Bucket=self.bucket, Key=probe)["Body"].read()
            self._client.delete_object(Bucket=self.bucket, Key=probe)
        except Exception as exc:  # noqa: BLE001
            raise StorageError(f"photo storage {self.url} is not usable: {exc}") from exc
        if body != b"ok":
            raise StorageError(f"photo storage {self.url} did not read back what was written")


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _content_type(key: str) -> str:
    ext = key.rsplit(".", 1)[-1]
    return {
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "png": "image/png",
        "webp": "image/webp",
        "heic": "image/heic",
        "heif": "image/heif",
    }.get(ext, "application/octet-stream")


def _s3_client(endpoint_url: str = "") -> Any:
    """A boto3 S3 client at ``endpoint_url``; empty = boto's own choice, which reads
    ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_S3``) itself, else AWS."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 4, "mode": "standard"},
    )
    return boto3.client("s3", endpoint_url=endpoint_url or None, config=config)


def open_store(url: str, s3_endpoint_url: str = "") -> PhotoStore:
    """``file:///path`` (or a plain path) -> local disk; ``s3://bucket/prefix`` -> S3 at
    ``s3_endpoint_url`` (``Settings.s3_endpoint_url``; empty = boto's default)."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StorageError(f"storage URL {url!r} names no bucket: use s3://bucket/prefix")
        return S3PhotoStore(parsed.netloc, unquote(parsed.path), endpoint_url=s3_endpoint_url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise StorageError(f"storage URL {url!r}: use file:///absolute/path")
        return LocalPhotoStore(Path(unquote(parsed.path)))
    if parsed.scheme == "":
        return LocalPhotoStore(Path(url).expanduser().resolve())
    raise StorageError(f"storage URL {url!r}: use file:///path or s3://bucket/prefix")
