"""Transports for the download engine: plain HTTP(S), S3 (boto3) and Azure Blob (SDK).

Each maps its library's errors onto the engine's three kinds: ``TransientError``
(retry), ``PermanentError`` (count and log) and ``FatalDownloadError`` (stop the run:
missing credentials, missing bucket). Heavy libraries are imported inside constructors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

from ct_io.errors import CamtrapError
from ct_io.redact import redact_text, redact_url
from ct_io.sources.download import (
    BAD_RESPONSE,
    FatalDownloadError,
    PermanentError,
    TransientError,
    stream_to,
)

_CHUNK = 1 << 20
#: Statuses that retrying can fix.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def classify_status(status: int, message: str, retry_after: float | None = None) -> Exception:
    """The engine error for an HTTP status (>= 400)."""
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientError(message, status=status, retry_after=retry_after)
    return PermanentError(message, status=status)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# ---------------------------------------------------------------------- HTTP


class HttpTransport:
    """GET ``base_url + key`` (or ``key`` itself when it is a full URL) with pooled connections.

    A query string on ``base_url`` (an Azure SAS token ``?sv=...&sig=...``) is sent with
    every request; :meth:`url`, used in messages and logs, masks its credentials.
    """

    def __init__(
        self, base_url: str = "", *, max_connections: int = 16, timeout: float = 60.0
    ) -> None:
        import urllib3

        self.base_url, _, self._query = base_url.partition("?")
        self._urllib3 = urllib3
        self._pool = urllib3.PoolManager(
            maxsize=max_connections,
            retries=False,
            timeout=urllib3.Timeout(connect=min(timeout, 15.0), read=timeout),
            headers={"User-Agent": "camtrap-ct-io"},
        )

    def request_url(self, key: str) -> str:
        """The URL fetched for ``key``, credentials included (never log it: see :meth:`url`)."""
        if "://" in key:
            return key
        url = self.base_url + quote(key, safe="/:@!$&'()*+,;=-._~")
        return f"{url}?{self._query}" if self._query else url

    def url(self, key: str) -> str:
        return redact_url(self.request_url(key))

    def download(self, key: str, fh: BinaryIO, on_bytes: Callable[[int], None]) -> int:
        url = self.url(key)
        errors = self._urllib3.exceptions
        try:
            resp = self._pool.request(
                "GET", self.request_url(key), preload_content=False, redirect=True
            )
        except errors.HTTPError as exc:
            raise TransientError(
                f"GET {url}: {type(exc).__name__}: {redact_text(str(exc))}"
            ) from None
        complete = False
        try:
            if resp.status >= 400:
                resp.drain_conn()  # read the small error body so the connection can be reused
                complete = True
                raise classify_status(
                    resp.status,
                    f"GET {url}: HTTP {resp.status} {resp.reason or ''}".rstrip(),
                    _retry_after(resp.headers.get("Retry-After")),
                )
            size = stream_to(fh, resp.stream(_CHUNK), on_bytes)
            complete = True
            return size
        except errors.HTTPError as exc:  # reset mid-body, short body (content-length enforced)
            raise TransientError(
                f"GET {url}: {type(exc).__name__}: {redact_text(str(exc))}"
            ) from None
        finally:
            if not complete:
                resp.close()  # never hand a half-read connection back to the pool
            resp.release_conn()


def fetch_bytes(url: str, *, attempts: int = 5) -> bytes:
    """Download one small file (an index, a CSV) into memory with the engine's retry rules."""
    import io
    import time

    from ct_io.sources.download import RetryPolicy

    transport = HttpTransport(max_connections=1)
    policy = RetryPolicy(attempts=attempts)
    for attempt in range(1, attempts + 1):
        buf = io.BytesIO()
        try:
            transport.download(url, buf, lambda n: None)
            return buf.getvalue()
        except PermanentError as exc:
            raise CamtrapError(f"{exc} — check the URL, or pass a local copy of the file") from None
        except TransientError as exc:
            if attempt == attempts:
                raise CamtrapError(
                    f"{exc} (after {attempts} attempts) — try again later, or pass a local copy"
                ) from None
            time.sleep(policy.delay(attempt, exc.retry_after))
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------- S3


_S3_PERMANENT = {
    "NoSuchKey": 404,
    "NotFound": 404,
    "404": 404,
    "AccessDenied": 403,
    "403": 403,
    "InvalidObjectState": 403,
}
_S3_FATAL = {
    "NoSuchBucket",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AuthorizationHeaderMalformed",
    "PermanentRedirect",
}


class S3Transport:
    """``GetObject`` from one bucket with boto3; credentials from a named profile or the environment."""

    def __init__(
        self,
        bucket: str,
        *,
        profile: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        max_connections: int = 16,
        anonymous: bool = False,
    ) -> None:
        import boto3
        import botocore
        from botocore.config import Config
        from botocore.exceptions import ProfileNotFound

        self.bucket = bucket
        self.endpoint_url = endpoint_url
        try:
            session = boto3.Session(profile_name=profile or None, region_name=region or None)
        except ProfileNotFound:
            raise CamtrapError(
                f"AWS profile {profile!r} not found — create it with `aws configure --profile {profile}`, "
                "or use the default credential chain (AWS_* variables, instance role) with "
                "--profile '' (-o profile= with ct-io fetch, profile: '' in a config)"
            ) from None
        config = Config(
            max_pool_connections=max_connections,
            retries={
                "max_attempts": 1,
                "mode": "standard",
            },  # the engine retries, with its own counts
            connect_timeout=15,
            read_timeout=60,
            signature_version=botocore.UNSIGNED if anonymous else None,
        )
        self._client = session.client("s3", endpoint_url=endpoint_url or None, config=config)

    def url(self, key: str) -> str:
        base = self.endpoint_url.rstrip("/") + "/" if self.endpoint_url else "s3://"
        return f"{base}{self.bucket}/{key}"

    def download(self, key: str, fh: BinaryIO, on_bytes: Callable[[int], None]) -> int:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        where = self.url(key)
        try:
            obj = self._client.get_object(Bucket=self.bucket, Key=key)
            with contextlib.closing(obj["Body"]):  # an aborted body must not go back to the pool
                size = stream_to(fh, obj["Body"].iter_chunks(_CHUNK), on_bytes)
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise FatalDownloadError(
                f"{exc} — configure credentials (`aws configure --profile animl`) or set profile"
            ) from None
        except ClientError as exc:
            raise _s3_error(exc, where) from None
        except BotoCoreError as exc:  # endpoint unreachable, read timeout, short body
            raise TransientError(
                f"{where}: {type(exc).__name__}: {redact_text(str(exc))}"
            ) from None
        except OSError as exc:
            if getattr(exc, "errno", None) is not None and not isinstance(exc, ConnectionError):
                raise  # local disk trouble
            raise TransientError(
                f"{where}: {type(exc).__name__}: {redact_text(str(exc))}"
            ) from None
        expected = obj.get("ContentLength")
        if expected is not None and size != expected:
            raise TransientError(f"{where}: got {size} of {expected} bytes")
        return size


def _s3_error(exc: Any, where: str) -> Exception:
    err = exc.response.get("Error", {})
    code = str(err.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    message = f"{where}: {code or status} {err.get('Message', '')}".rstrip()
    if code in _S3_FATAL:
        hint = (
            "check the bucket name"
            if code == "NoSuchBucket"
            else "check the AWS profile's credentials"
        )
        return FatalDownloadError(f"{message} — {hint}")
    if code in _S3_PERMANENT:
        return PermanentError(message, status=_S3_PERMANENT[code])
    if code in (
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeTooSkewed",
    ):
        return TransientError(message, status=status or 503)
    if status:
        return classify_status(status, message)
    return TransientError(message)


# ---------------------------------------------------------------------- Azure


def split_blob_url(url: str) -> tuple[str, str, str]:
    """``(account_url, container, prefix)`` of an Azure Blob URL.

    Handles the cloud form ``https://<account>.blob.core.windows.net/<container>/<prefix>``
    and the emulator's path style ``http://127.0.0.1:10000/<account>/<container>/<prefix>``.
    """
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    host_style = parts.hostname is not None and ".blob." in parts.hostname
    need = 1 if host_style else 2
    if not parts.scheme or not parts.netloc or len(segments) < need:
        raise CamtrapError(
            f"{url!r} is not an Azure Blob container URL (https://<account>.blob.core.windows.net/<container>/...)"
        )
    account_path = "" if host_style else "/" + segments[0]
    container = segments[need - 1]
    prefix = "/".join(segments[need:])
    if prefix and url.endswith("/"):
        prefix += "/"
    return f"{parts.scheme}://{parts.netloc}{account_path}", container, prefix


#: bytes per read of a blob's body (azure-storage-blob's ``DATA_BLOCK_SIZE``)
AZURE_DATA_BLOCK_SIZE = 256 * 1024


class AzureBlobTransport:
    """Download blobs of one container with the Azure Blob SDK (anonymous unless a credential
    is given; a SAS token as the container URL's query string is the credential)."""

    def __init__(
        self,
        container_url: str,
        *,
        credential: Any = None,
        max_connections: int = 16,
        timeout: float = 60.0,
    ) -> None:
        import requests
        from azure.core.pipeline.transport import RequestsTransport
        from azure.storage.blob import ContainerClient

        container_url, _, sas = container_url.partition("?")
        if sas and credential is None:
            credential = sas
        account_url, container, prefix = split_blob_url(container_url)
        self.prefix = prefix
        self._base = container_url if container_url.endswith("/") else container_url + "/"
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=max_connections, pool_maxsize=max_connections
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._client = ContainerClient(
            account_url,
            container,
            credential=credential,
            retry_total=0,  # the engine retries, with its own counts
            transport=RequestsTransport(
                session=session,
                session_owner=False,
                connection_timeout=15,
                read_timeout=timeout,
                # the storage SDK's own block size for the transport it makes itself; a
                # transport passed in gets azure-core's 4 KiB, which halves throughput
                connection_data_block_size=AZURE_DATA_BLOCK_SIZE,
            ),
        )

    def url(self, key: str) -> str:
        return self._base + key

    def download(self, key: str, fh: BinaryIO, on_bytes: Callable[[int], None]) -> int:
        from azure.core.exceptions import (
            AzureError,
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
        )

        where = self.url(key)
        blob = self.prefix.rstrip("/") + "/" + key if self.prefix else key
        try:
            stream = self._client.download_blob(blob, max_concurrency=1)
            size = stream_to(fh, stream.chunks(), on_bytes)
            expected = stream.size
        except ResourceNotFoundError as exc:
            code = getattr(exc, "error_code", None)
            if code == "ContainerNotFound":
                raise FatalDownloadError(
                    f"{where}: container not found — check the container URL"
                ) from None
            raise PermanentError(
                f"{where}: HTTP 404 {code or 'BlobNotFound'}", status=404
            ) from None
        except ClientAuthenticationError as exc:
            raise PermanentError(
                f"{where}: HTTP {exc.status_code} {getattr(exc, 'error_code', '') or 'not authorized'}",
                status=exc.status_code or 403,
            ) from None
        except HttpResponseError as exc:
            status = exc.status_code or 0
            msg = f"{where}: HTTP {status} {getattr(exc, 'error_code', '') or exc.reason or ''}".rstrip()
            raise (classify_status(status, msg) if status else TransientError(msg)) from None
        except AzureError as exc:  # connection refused/reset, timeouts, short body
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise TransientError(f"{where}: {type(exc).__name__}: {redact_text(first)}") from None
        except (
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
        ) as exc:  # SDK parsing an odd answer
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise PermanentError(
                f"{where}: not an Azure Blob Storage answer ({type(exc).__name__}: "
                f"{redact_text(first)}) — check the container URL",
                kind=BAD_RESPONSE,
            ) from None
        if expected is not None and size != expected:
            raise TransientError(f"{where}: got {size} of {expected} bytes")
        return size
