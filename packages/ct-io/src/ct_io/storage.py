"""Image roots in object storage: ``s3://``, ``gs://``, ``az://``/``abfs://`` and HTTPS.

:func:`open_store` turns an image root (a local folder or a URL) into an
:class:`ImageStore` that lists and reads files by their relative POSIX path. Remote roots
go through fsspec (s3fs, gcsfs, adlfs, fsspec's HTTP filesystem; ``pip install
'ct-io[cloud]'``); local folders never import fsspec, so local runs keep their speed.

A store is picklable (root URL and storage options only): each process builds its own
filesystem on first use, so a store can be handed to worker processes or Ray tasks.

Credentials are taken as the data sources take them:

* S3: the default AWS chain (``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
  an instance role); options ``profile``, ``region``, ``endpoint_url`` (MinIO, moto;
  ``AWS_ENDPOINT_URL`` works too) and ``anon`` (public buckets).
* Azure: an ``https://<account>.blob.core.windows.net/<container>/<prefix>?<SAS>`` container
  URL (the SAS token is the credential, as in the seed's ``--container-url``; without one,
  anonymous reading of a public container), or ``az://<container>/<prefix>`` with
  ``AZURE_STORAGE_CONNECTION_STRING``, or ``AZURE_STORAGE_ACCOUNT_NAME`` plus
  ``AZURE_STORAGE_SAS_TOKEN``/``AZURE_STORAGE_ACCOUNT_KEY`` (options ``account_name``,
  ``sas_token``, ``account_key``, ``connection_string``).
* Google Cloud Storage: gcsfs's defaults (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud``
  login); option ``token="anon"`` for public buckets.
* HTTPS: a base URL; a query string (a signed URL's token) is sent with every request.

Every back-end waits at most 15 s for a connection and 60 s for each read (option
``timeout`` in seconds lowers both); a stalled read is then a counted failure. Every
message shows :meth:`ImageStore.display`, which masks SAS tokens and keys.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from attrs import define, field

from ct_io.errors import CamtrapError, UnsafePathError
from ct_io.paths import unsafe_reason
from ct_io.redact import redact_text, redact_url

#: URL schemes read through fsspec, by the filesystem kind they map to.
SCHEMES = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "http": "http",
    "https": "http",
}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
_INSTALL = (
    "install the cloud extra: pip install 'ct-io[cloud]' (or 'ct-crop[cloud]', 'ct-infer[cloud]')"
)
#: Seconds to wait for a connection and for each read (a stalled server is a counted failure).
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 60.0


class StoreCredentialsError(CamtrapError):
    """The store cannot authenticate at all (no credentials found): the run stops."""


class StoreReadError(OSError):
    """Transport trouble reading one object (refused, reset, timed out, HTTP error)."""


def is_remote(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` names object storage or a web server rather than a local folder."""
    if not isinstance(root, str):
        return False
    m = _SCHEME.match(root)
    return m is not None and m.group(1).lower() != "file"


def open_store(
    root: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
) -> ImageStore:
    """The :class:`ImageStore` for an image root: a local folder, ``file://``, ``s3://``,
    ``gs://``, ``az://``/``abfs://`` or ``http(s)://`` URL. Touches no network."""
    options = dict(storage_options or {})
    if not is_remote(root):
        text = os.fspath(root)
        if isinstance(text, str) and text.lower().startswith("file://"):
            text = urlsplit(text).path
        return ImageStore(str(Path(text)), kind="local", storage_options=options)
    assert isinstance(root, str)
    scheme = _SCHEME.match(root).group(1).lower()  # type: ignore[union-attr]
    kind = SCHEMES.get(scheme)
    if kind is None:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise CamtrapError(f"unsupported image root {redact_url(root)!r}: use a folder or {known}")
    base, _, query = root.partition("?")
    base = base.rstrip("/")
    if kind == "http" and (_is_blob_host(base) or _is_sas(query)):
        kind = "azure"  # a container URL, as the seed's --container-url (SAS token as query)
        if query:
            options.setdefault("sas_token", query)
    elif kind == "http" and query:
        options.setdefault("query", query)
    elif query:
        raise CamtrapError(
            f"{redact_url(root)}: a {scheme}:// root takes no query string — pass credentials "
            "as storage options or the environment"
        )
    parts = urlsplit(base)
    if kind != "http" and not parts.netloc:
        raise CamtrapError(f"{redact_url(root)}: no bucket or container in the URL")
    return ImageStore(base, kind=kind, storage_options=options)


#: The storage emulator's (Azurite's) documented account: its URLs are path style.
EMULATOR_ACCOUNT = "devstoreaccount1"


def split_root(images_dir: str | os.PathLike[str] | ImageStore) -> tuple[Path, ImageStore | None]:
    """``(folder, None)`` for a local image root, ``(placeholder, store)`` for a remote one.

    The placeholder only names images in messages; nothing is read from it.
    """
    if isinstance(images_dir, ImageStore):
        store = images_dir
    elif is_remote(images_dir):
        store = open_store(images_dir)
    else:
        return Path(images_dir), None
    return (Path(store.root), None) if store.is_local else (Path(), store)


def _is_blob_host(url: str) -> bool:
    """An Azure Blob URL: ``<account>.blob.core.windows.net`` (or another Azure cloud's
    ``.blob.core.`` host), or the emulator's ``http://host:port/devstoreaccount1/...``."""
    parts = urlsplit(url)
    first = parts.path.strip("/").split("/", 1)[0]
    return ".blob.core." in (parts.hostname or "") or first == EMULATOR_ACCOUNT


def _is_sas(query: str) -> bool:
    keys = {k.lower() for k in parse_qs(query)}
    return {"sv", "sig"} <= keys


@define(eq=False)
class ImageStore:
    """Files under one image root, read by relative POSIX path (see :func:`open_store`).

    ``root`` never holds a query string: a SAS token or signed-URL query lives in the
    storage options, which are left out of ``repr``.
    """

    root: str
    kind: str = "local"
    storage_options: dict[str, Any] = field(factory=dict, repr=False)
    _fs: Any = field(default=None, init=False, repr=False)
    _pid: int = field(default=0, init=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "kind": self.kind, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    # ------------------------------------------------------------------ paths

    def local_path(self, rel: str) -> Path | None:
        """The file's local path (a lexical join, checked), or None for a remote store."""
        if not self.is_local:
            return None
        _check(rel, self)
        return Path(self.root).joinpath(*rel.replace("\\", "/").split("/"))

    def display(self, rel: str = "") -> str:
        """The root, or one file under it, for messages: credentials masked."""
        if self.is_local:
            return str(Path(self.root) / rel) if rel else self.root
        url = f"{self.root}/{rel}" if rel else self.root
        query = self.storage_options.get("sas_token") or self.storage_options.get("query")
        if query:
            url = f"{url}?{str(query).lstrip('?')}"
        return redact_url(url)

    # ------------------------------------------------------------------ reading

    def read_bytes(self, rel: str) -> bytes:
        """The file's bytes. ``FileNotFoundError`` when it does not exist; another
        ``OSError`` (:class:`StoreReadError` for a remote store) for transport trouble;
        :class:`StoreCredentialsError` when no credentials are configured at all."""
        _check(rel, self)
        if self.is_local:
            path = self.local_path(rel)
            assert path is not None
            return path.read_bytes()
        fs = self.filesystem()
        try:
            return bytes(fs.cat_file(self._remote_path(rel)))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.display(rel)}: not found") from None
        except Exception as exc:
            raise self._translate(exc, rel) from None

    @contextlib.contextmanager
    def local_copy(
        self, rel: str, *, tmp_dir: str | os.PathLike[str] | None = None
    ) -> Iterator[Path]:
        """A local path to the file for readers that need one (video decoders seek): the
        file itself for a local store, else a temporary copy deleted on exit. Raises as
        :meth:`read_bytes` does."""
        local = self.local_path(rel)
        if local is not None:
            yield local
            return
        data = self.read_bytes(rel)
        fd, name = tempfile.mkstemp(suffix=Path(rel).suffix, prefix="ct-store-", dir=tmp_dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            yield Path(name)
        finally:
            Path(name).unlink(missing_ok=True)

    def list_files(self, suffixes: Collection[str]) -> list[str]:
        """Relative POSIX paths of the files whose names end with one of ``suffixes``
        (case-insensitive), recursively, sorted; hidden files and folders are left out."""
        ends = tuple(s.lower() for s in suffixes)
        if self.is_local:
            return _list_local(Path(self.root), ends)
        if self.kind == "http":
            raise CamtrapError(
                f"{self.display()}: a web server cannot be listed — give the images as a list "
                "(an MD JSON or a file list), or use the bucket's s3://, gs:// or az:// URL"
            )
        fs = self.filesystem()
        base = self._remote_path("")
        try:
            found = fs.find(base, withdirs=False)
        except FileNotFoundError:
            raise CamtrapError(f"{self.display()}: no such bucket, container or prefix") from None
        except Exception as exc:
            err = self._translate(exc, "")
            if isinstance(err, CamtrapError):
                raise err from None
            raise CamtrapError(f"cannot list {err}") from None
        out = []
        prefix = base.rstrip("/") + "/" if base.strip("/") else ""
        for found_path in found:
            path = found_path.lstrip("/")
            if prefix and not path.startswith(prefix):
                continue
            rel = path[len(prefix) :]
            if not rel or any(part.startswith(".") for part in rel.split("/")):
                continue
            if rel.lower().endswith(ends):
                out.append(rel)
        return sorted(out)

    # ------------------------------------------------------------------ fsspec

    def filesystem(self) -> Any:
        """This process's fsspec filesystem (built on first use; rebuilt after a fork)."""
        if self.is_local:
            raise ValueError("a local store has no fsspec filesystem")
        if self._fs is None or self._pid != os.getpid():
            self._fs = _build_filesystem(self.kind, self.root, self.storage_options)
            self._pid = os.getpid()
        return self._fs

    def _remote_path(self, rel: str) -> str:
        if self.kind == "http":
            url = f"{self.root}/{quote(rel, safe='/')}" if rel else self.root
            query = self.storage_options.get("query")
            return f"{url}?{query}" if query and rel else url
        bucket_path = _bucket_path(self.kind, self.root)
        return f"{bucket_path}/{rel}" if rel else bucket_path

    def _translate(self, exc: Exception, rel: str) -> Exception:
        where = self.display(rel)
        name = type(exc).__name__
        text = redact_text(_first_line(exc), secrets=_secrets(self.storage_options))
        if name in ("NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError"):
            return StoreCredentialsError(f"{where}: {text} — {_credentials_hint(self.kind)}")
        if isinstance(exc, ModuleNotFoundError):
            return CamtrapError(f"{where}: {text} — {_INSTALL}")
        if isinstance(exc, CamtrapError):
            return exc
        status = getattr(exc, "status", None) or getattr(exc, "status_code", None)
        detail = f"HTTP {status}: {text}" if status and str(status) not in text else text
        return StoreReadError(f"{where}: {name}: {detail}".rstrip(": "))


def _check(rel: str, store: ImageStore) -> None:
    reason = unsafe_reason(rel)
    if reason:
        raise UnsafePathError(
            f"refusing path {rel!r}: {reason} — image paths must be relative and stay inside "
            f"{store.display()}"
        )


def _list_local(root: Path, ends: tuple[str, ...]) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.lower().endswith(ends) and not name.startswith("."):
                out.append(Path(dirpath, name).relative_to(root).as_posix())
    return sorted(out)


def _bucket_path(kind: str, root: str) -> str:
    """``bucket/prefix`` (``container/prefix`` for Azure) of a root URL."""
    parts = urlsplit(root)
    if kind == "azure" and parts.scheme.lower() in ("http", "https"):
        from ct_io.sources.transports import split_blob_url

        _, container, prefix = split_blob_url(root)
        return f"{container}/{prefix}".rstrip("/")
    return f"{parts.netloc}{parts.path}".rstrip("/")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _secrets(options: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in options.items():
        if (
            isinstance(value, str)
            and value
            and key
            in {
                "sas_token",
                "query",
                "account_key",
                "connection_string",
                "secret",
                "key",
                "token",
            }
        ):
            out.append(value)
            out.extend(v for v in re.split(r"[?&;=]", value) if len(v) >= 8)
    return out


def _credentials_hint(kind: str) -> str:
    if kind == "s3":
        return (
            "set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), pass the "
            "storage option profile=NAME, or anon=true for a public bucket"
        )
    if kind == "azure":
        return (
            "add a SAS token to the container URL (https://<account>.blob.core.windows.net/"
            "<container>?<SAS>), or set AZURE_STORAGE_CONNECTION_STRING, or "
            "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_ACCOUNT_KEY"
        )
    if kind == "gcs":
        return (
            "set GOOGLE_APPLICATION_CREDENTIALS or log in with `gcloud auth application-default "
            "login`; token=anon reads a public bucket"
        )
    return "check the URL's credentials"


_TRUE = {"1", "true", "yes", "on"}


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE


def _timeouts(opts: dict[str, Any]) -> tuple[float, float]:
    """``(connect, read)`` seconds: the option ``timeout`` sets both (at most)."""
    value = opts.pop("timeout", None)
    if value is None:
        return CONNECT_TIMEOUT, READ_TIMEOUT
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise CamtrapError(f"storage option timeout={value!r} is not a number of seconds") from None
    return min(seconds, CONNECT_TIMEOUT), seconds


def _build_filesystem(kind: str, root: str, options: Mapping[str, Any]) -> Any:
    """A fresh fsspec filesystem for ``kind`` (imports the back-end here, lazily).

    Fresh indeed: fsspec's instance cache is skipped, since it keys on the arguments only and
    would hand back a filesystem built for an earlier environment (``AWS_ENDPOINT_URL``,
    credentials) in a long-lived process; the store keeps its own per process.
    """
    opts = dict(options)
    opts.setdefault("skip_instance_cache", True)
    try:
        if kind == "s3":
            return _s3(opts)
        if kind == "gcs":
            import gcsfs

            return gcsfs.GCSFileSystem(**opts)
        if kind == "azure":
            return _azure(root, opts)
        return _http(opts)
    except ModuleNotFoundError as exc:
        raise CamtrapError(
            f"reading {redact_url(root)} needs the {exc.name} package — {_INSTALL}"
        ) from None
    except CamtrapError:
        raise
    except Exception as exc:  # a bad option, an unusable profile
        text = redact_text(_first_line(exc), secrets=_secrets(options))
        hint = _credentials_hint(kind)
        if type(exc).__name__ == "ProfileNotFound":
            raise StoreCredentialsError(f"{text} — {hint}") from None
        raise CamtrapError(
            f"cannot open {redact_url(root)}: {type(exc).__name__}: {text} — {hint}"
        ) from None


def _s3(opts: dict[str, Any]) -> Any:
    import s3fs

    region = opts.pop("region", None) or opts.pop("region_name", None)
    client_kwargs = dict(opts.pop("client_kwargs", {}) or {})
    if region:
        client_kwargs.setdefault("region_name", region)
    if opts.get("profile") == "":
        opts.pop("profile")
    if "anon" in opts:
        opts["anon"] = _flag(opts["anon"])
    if not opts.get("anon") and not opts.get("key") and not opts.get("token"):
        # s3fs quietly falls back to unsigned requests; say what to set instead
        import botocore.session

        session = botocore.session.Session(profile=opts.get("profile"))
        if session.get_credentials() is None:
            raise StoreCredentialsError(f"no AWS credentials found — {_credentials_hint('s3')}")
    connect, read = _timeouts(opts)
    config = {
        "connect_timeout": connect,
        "read_timeout": read,
        "retries": {"max_attempts": 3, "mode": "standard"},
        **dict(opts.pop("config_kwargs", {}) or {}),
    }
    return s3fs.S3FileSystem(client_kwargs=client_kwargs, config_kwargs=config, **opts)


def _azure(root: str, opts: dict[str, Any]) -> Any:
    import adlfs

    connect, read = _timeouts(opts)
    opts.setdefault("connection_timeout", connect)
    opts.setdefault("read_timeout", read)

    parts = urlsplit(root)
    if parts.scheme.lower() in ("http", "https"):
        from ct_io.sources.transports import split_blob_url

        account_url, _, _ = split_blob_url(root)
        sas = str(opts.pop("sas_token", "") or "").lstrip("?")
        conn = f"BlobEndpoint={account_url};"
        if sas:
            conn += f"SharedAccessSignature={sas};"
        return adlfs.AzureBlobFileSystem(connection_string=conn, **opts)
    env = os.environ
    named = any(opts.get(k) for k in ("account_name", "connection_string"))
    if not named and not (
        env.get("AZURE_STORAGE_CONNECTION_STRING") or env.get("AZURE_STORAGE_ACCOUNT_NAME")
    ):
        raise StoreCredentialsError(
            f"{redact_url(root)}: no Azure storage account — {_credentials_hint('azure')}"
        )
    if env.get("AZURE_STORAGE_KEY") and not env.get("AZURE_STORAGE_ACCOUNT_KEY"):
        opts.setdefault("account_key", env["AZURE_STORAGE_KEY"])  # the Azure CLI's name
    if "anon" in opts:
        opts["anon"] = _flag(opts["anon"])
    return adlfs.AzureBlobFileSystem(**opts)


def _http(opts: dict[str, Any]) -> Any:
    import aiohttp
    from fsspec.implementations.http import HTTPFileSystem

    opts.pop("query", None)
    connect, read = _timeouts(opts)
    client_kwargs = dict(opts.pop("client_kwargs", {}) or {})
    client_kwargs.setdefault("timeout", aiohttp.ClientTimeout(sock_connect=connect, sock_read=read))
    return HTTPFileSystem(client_kwargs=client_kwargs, **opts)
