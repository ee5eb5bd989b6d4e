"""ct_io.storage against real servers: a local folder, moto's S3 server, Azurite (a
container URL with a SAS token, and az:// with a connection string) and a local HTTP
server, each holding the real fixture photos."""

from __future__ import annotations

import pickle
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ct_io.errors import CamtrapError, UnsafePathError
from ct_io.storage import (
    ImageStore,
    StoreCredentialsError,
    StoreReadError,
    is_remote,
    open_store,
)
from ct_io.testing import AZURITE_ACCOUNT, AZURITE_KEY, Azurite, FileServer

SUFFIXES = (".jpg", ".jpeg")
HOSTILE = ["../escape.jpg", "a/../../escape.jpg", "/etc/passwd", "C:/x.jpg", ""]


@pytest.fixture(scope="module")
def photos(md_test: Path) -> dict[str, bytes]:
    """Relative path → bytes: three real photos, two in a subfolder, plus a hidden file."""
    files = sorted((md_test / "images").iterdir())[:3]
    out = {
        files[0].name: files[0].read_bytes(),
        f"sub/{files[1].name}": files[1].read_bytes(),
        f"sub/deeper/{files[2].name}": files[2].read_bytes(),
    }
    return out


@pytest.fixture()
def folder(tmp_path: Path, photos: dict[str, bytes]) -> Path:
    root = tmp_path / "images"
    for rel, data in {**photos, ".hidden/x.jpg": b"x", "notes.txt": b"t"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _expected(photos: dict[str, bytes]) -> list[str]:
    return sorted(photos)


def _check_store(store: ImageStore, photos: dict[str, bytes]) -> None:
    assert store.list_files(SUFFIXES) == _expected(photos)
    for rel, data in photos.items():
        assert store.read_bytes(rel) == data
    with pytest.raises(FileNotFoundError, match=r"missing\.jpg"):
        store.read_bytes("sub/missing.jpg")
    for bad in HOSTILE:
        with pytest.raises(UnsafePathError, match="refusing path"):
            store.read_bytes(bad)
    clone = pickle.loads(pickle.dumps(store))
    assert clone.root == store.root and clone.kind == store.kind
    rel = next(iter(photos))
    assert clone.read_bytes(rel) == photos[rel]


# ---------------------------------------------------------------------- local


def test_local_store_reads_lists_and_refuses_escapes(
    folder: Path, photos: dict[str, bytes]
) -> None:
    store = open_store(folder)
    assert store.is_local and not is_remote(str(folder))
    _check_store(store, photos)
    rel = next(iter(photos))
    assert store.local_path(rel) == folder / rel
    assert store.display(rel) == str(folder / rel)
    assert open_store(f"file://{folder}").list_files(SUFFIXES) == _expected(photos)


def test_local_store_never_imports_fsspec(folder: Path) -> None:
    code = (
        "import sys\nfrom ct_io.storage import open_store\n"
        f"s = open_store({str(folder)!r})\ns.list_files(['.jpg'])\n"
        "print(sorted(m for m in ('fsspec', 's3fs', 'adlfs', 'gcsfs', 'aiohttp') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_unknown_scheme_and_query_on_bucket_url_are_refused() -> None:
    with pytest.raises(CamtrapError, match="unsupported image root"):
        open_store("ftp://host/x")
    with pytest.raises(CamtrapError, match="takes no query string"):
        open_store("s3://bucket/p?token=abcdefgh12345")


# ---------------------------------------------------------------------- S3 (moto)


@pytest.fixture()
def bucket(s3: Any, photos: dict[str, bytes]) -> str:
    name = f"camtrap-store-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    for rel, data in photos.items():
        s3.put_object(Bucket=name, Key=f"proj/images/{rel}", Body=data)
    s3.put_object(Bucket=name, Key="proj/images/notes.txt", Body=b"t")
    s3.put_object(Bucket=name, Key="proj/other.jpg", Body=b"x")  # outside the prefix
    return name


def test_s3_store_with_endpoint_option(
    bucket: str, moto_server: str, photos: dict[str, bytes]
) -> None:
    store = open_store(f"s3://{bucket}/proj/images/", storage_options={"endpoint_url": moto_server})
    assert not store.is_local and store.local_path(next(iter(photos))) is None
    assert store.display("a.jpg") == f"s3://{bucket}/proj/images/a.jpg"
    _check_store(store, photos)


def test_s3_store_endpoint_from_environment(
    bucket: str, moto_server: str, photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    store = open_store(f"s3://{bucket}/proj/images")
    assert store.list_files(SUFFIXES) == _expected(photos)


def test_a_new_store_follows_the_environment_of_its_time(
    bucket: str, moto_server: str, photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two stores with the same options in one process, built under different
    AWS_ENDPOINT_URLs: each reaches its own endpoint (fsspec's instance cache, keyed on the
    arguments only, would hand the second the first's client)."""
    from ct_io.testing import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    assert open_store(f"s3://{bucket}/proj/images").list_files(SUFFIXES) == _expected(photos)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreReadError):
        open_store(f"s3://{bucket}/proj/images").read_bytes(next(iter(photos)))


def test_s3_missing_bucket_is_a_clear_listing_error(bucket: str, moto_server: str) -> None:
    store = open_store("s3://no-such-bucket/x", storage_options={"endpoint_url": moto_server})
    with pytest.raises(CamtrapError, match="no-such-bucket"):
        store.list_files(SUFFIXES)


def test_s3_without_credentials_says_what_to_set(
    bucket: str, moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = open_store(f"s3://{bucket}/proj/images", storage_options={"endpoint_url": moto_server})
    with pytest.raises(StoreCredentialsError, match="AWS_PROFILE"):
        store.read_bytes("x.jpg")


def test_s3_unknown_profile_says_what_to_set(bucket: str, moto_server: str) -> None:
    store = open_store(
        f"s3://{bucket}/proj", storage_options={"endpoint_url": moto_server, "profile": "nope"}
    )
    with pytest.raises(StoreCredentialsError, match="nope"):
        store.read_bytes("x.jpg")


def test_unreachable_endpoint_is_a_read_error(bucket: str) -> None:
    from ct_io.testing import free_port

    store = open_store(
        f"s3://{bucket}/proj",
        storage_options={
            "endpoint_url": f"http://127.0.0.1:{free_port()}",
            "config_kwargs": {"retries": {"max_attempts": 1}},
        },
    )
    with pytest.raises(StoreReadError) as info:
        store.read_bytes("x.jpg")
    assert isinstance(info.value, OSError) and not isinstance(info.value, FileNotFoundError)


# ---------------------------------------------------------------------- Azure (Azurite)


def _sas(azurite: Azurite, container: str) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return generate_container_sas(
        AZURITE_ACCOUNT,
        container,
        account_key=AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


@pytest.fixture(scope="module")
def blob_container(azurite: Azurite, photos: dict[str, bytes]) -> Iterator[str]:
    service = azurite.service()
    container = service.get_container_client("camtrap-store")
    container.create_container()
    for rel, data in photos.items():
        container.upload_blob(f"proj/images/{rel}", data)
    container.upload_blob("proj/images/notes.txt", b"t")
    container.upload_blob("proj/images/.hidden/x.jpg", b"x")
    yield "camtrap-store"
    container.delete_container()


def test_azure_container_url_with_sas(
    azurite: Azurite,
    blob_container: str,
    photos: dict[str, bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sas = _sas(azurite, blob_container)
    sig = next(p for p in sas.split("&") if p.startswith("sig=")).split("=", 1)[1]
    url = f"{azurite.account_url}/{blob_container}/proj/images?{sas}"
    store = open_store(url)
    assert store.kind == "azure" and "?" not in store.root
    _check_store(store, photos)
    with pytest.raises(FileNotFoundError) as info:
        store.read_bytes("gone.jpg")
    texts = [str(info.value), store.display("a.jpg"), repr(store), caplog.text]
    for text in texts:
        assert sig not in text and "sig=" not in text.replace("sig=***", "")


def test_azure_bad_sas_fails_reads_without_leaking_it(
    azurite: Azurite, blob_container: str
) -> None:
    sas = _sas(azurite, blob_container).replace("sig=", "sig=AAAA")
    store = open_store(f"{azurite.account_url}/{blob_container}/proj/images?{sas}")
    with pytest.raises(OSError) as info:
        store.read_bytes("x.jpg")
    assert "AAAA" not in str(info.value)


def test_az_url_with_connection_string(
    azurite: Azurite,
    blob_container: str,
    photos: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    store = open_store(f"az://{blob_container}/proj/images")
    _check_store(store, photos)


def test_az_url_without_account_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(StoreCredentialsError, match="AZURE_STORAGE_CONNECTION_STRING"):
        open_store("abfs://container/x").read_bytes("a.jpg")


def test_public_container_url_reads_anonymously(azurite: Azurite, photos: dict[str, bytes]) -> None:
    """LILA's form: an https container URL without a SAS token, on a public container."""
    container = azurite.service().get_container_client("public-lila")
    container.create_container(public_access="container")
    for rel, data in photos.items():
        container.upload_blob(f"cct_images/{rel}", data)
    store = open_store(f"{azurite.account_url}/public-lila/cct_images/")
    assert store.kind == "azure" and "sas_token" not in store.storage_options
    _check_store(store, photos)


# ---------------------------------------------------------------------- HTTP


def test_http_stalled_read_times_out(photos: dict[str, bytes]) -> None:
    server = FileServer().start()
    try:
        rel, data = next(iter(photos.items()))
        server.files[f"/slow/{rel}"] = data
        server.first_byte_delay = 3.0
        store = open_store(f"{server.url}/slow", storage_options={"timeout": 0.5})
        with pytest.raises(StoreReadError, match="Timeout"):
            store.read_bytes(rel)
    finally:
        server.stop()


def test_http_store_reads_with_token_and_counts_errors(photos: dict[str, bytes]) -> None:
    server = FileServer().start()
    try:
        for rel, data in photos.items():
            server.files[f"/lila/images/{rel}"] = data
        token = "s3cr3tT0kenValue"
        store = open_store(f"{server.url}/lila/images/?token={token}")
        assert store.kind == "http"
        for rel, data in photos.items():
            assert store.read_bytes(rel) == data
        with pytest.raises(FileNotFoundError) as missing:
            store.read_bytes("nope.jpg")
        rel = next(iter(photos))
        server.always[f"/lila/images/{rel}"] = 403
        with pytest.raises(StoreReadError) as failed:
            store.read_bytes(rel)
        with pytest.raises(CamtrapError, match="cannot be listed"):
            store.list_files(SUFFIXES)
        for text in (str(missing.value), str(failed.value), store.display(rel), repr(store)):
            assert token not in text
        server.always.clear()
        assert pickle.loads(pickle.dumps(store)).read_bytes(rel) == photos[rel]
    finally:
        server.stop()
