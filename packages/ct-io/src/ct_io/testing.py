"""Real protocol servers for tests: a local HTTP file server (with injectable faults and
request counts), moto's S3 server and Azurite (Microsoft's Azure Storage emulator, npm).

Shared by the test suites of every package (``ct-io``'s source tests, the workspace's
walk-through tests); importing this module starts nothing and needs neither moto nor
Azurite — each starter imports or finds what it needs when called.
"""

from __future__ import annotations

import ast
import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Azurite's documented development account (public, emulator-only).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class ServerError(RuntimeError):
    """A test server could not be started (the message says what to install or check)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# ---------------------------------------------------------------------- HTTP


class _QuietServer(ThreadingHTTPServer):
    """Clients closing connections early (as downloaders must) is not an error here."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FileServer:
    """Serves ``files`` (URL path → bytes) over HTTP/1.1 on loopback.

    ``faults[path]`` is a list of statuses answered (in order) before the file is served
    (-1: close the connection without an answer);
    ``always[path]`` a status always answered; ``truncate`` paths get half a body once;
    ``chunk_delay`` slows every body (seconds per 16 KiB); ``first_byte_delay`` delays
    every answer (a distant server). ``gets`` counts GETs per path.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list[int]] = {}
        self.always: dict[str, int] = {}
        self.truncate: set[str] = set()
        self.chunk_delay = 0.0
        self.first_byte_delay = 0.0
        self.gets: Counter[str] = Counter()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                from urllib.parse import unquote, urlsplit

                path = unquote(urlsplit(self.path).path)
                if server.first_byte_delay:
                    time.sleep(server.first_byte_delay)
                with server.lock:
                    server.gets[path] += 1
                    faults = server.faults.get(path)
                    fault = faults.pop(0) if faults else server.always.get(path)
                    cut = path in server.truncate
                    server.truncate.discard(path)
                if fault == -1:  # drop the connection without answering (a reset)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault:
                    body = f"status {fault}".encode()
                    self.send_response(fault)
                    if fault in (429, 503):
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                data = server.files.get(path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if cut:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                step = 1 << 14 if server.chunk_delay else len(data) or 1
                try:
                    for i in range(0, len(data), step):
                        self.wfile.write(data[i : i + step])
                        if server.chunk_delay:
                            time.sleep(server.chunk_delay)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FileServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------- S3 (moto server mode)


@contextlib.contextmanager
def moto_s3_server() -> Iterator[str]:
    """moto's S3-compatible server on a loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


#: Environment for boto3 against moto: fake credentials, no real AWS config files.
def fake_aws_env(config_dir: Path) -> dict[str, str]:
    """Variables to set (``AWS_PROFILE``, ``AWS_SESSION_TOKEN``, ``AWS_ENDPOINT_URL`` must be unset)."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_CONFIG_FILE": str(config_dir / "aws_config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(config_dir / "aws_credentials"),
    }


AWS_ENV_UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")


class S3Bucket:
    """A bucket on a running moto server (see :func:`moto_s3_bucket`)."""

    def __init__(self, endpoint: str, name: str) -> None:
        self.endpoint = endpoint
        self.name = name

    def put(self, objects: Mapping[str, bytes], prefix: str) -> str:
        """Upload ``objects`` (relative path → bytes) under ``prefix``; their ``s3://`` root."""
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-west-2")
        for rel, data in objects.items():
            s3.put_object(Bucket=self.name, Key=f"{prefix}/{rel}", Body=data)
        return f"s3://{self.name}/{prefix}"


@contextlib.contextmanager
def moto_s3_bucket(config_dir: Path, name: str = "photos") -> Iterator[S3Bucket]:
    """An empty bucket on moto's S3 server, with this process's environment pointing the
    AWS clients at it (fake credentials, ``AWS_ENDPOINT_URL``) until exit.

    Processes started meanwhile inherit the environment: start a Ray cluster inside, and
    its workers reach the same server.
    """
    import os

    import boto3

    names = (*AWS_ENV_UNSET, *fake_aws_env(config_dir))
    saved = {k: os.environ.get(k) for k in names}
    with moto_s3_server() as endpoint:
        for k in AWS_ENV_UNSET:
            os.environ.pop(k, None)
        os.environ.update(fake_aws_env(config_dir))
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        try:
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-west-2")
            s3.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
            )
            yield S3Bucket(endpoint, name)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


# ---------------------------------------------------------------------- Azure (Azurite)


class Azurite:
    """A running Azurite blob service: its account URL and connection string."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.account_url = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
        self.connection_string = (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={self.account_url};"
        )

    def service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)


def sas_container(
    server: Azurite, container: str, objects: Mapping[str, bytes], prefix: str
) -> tuple[str, str]:
    """A new container holding ``objects`` under ``prefix``, as a container URL with a
    read+list SAS token (the seed's ``--container-url``); also the token's signature, which
    must never be written anywhere."""
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    client = server.service().get_container_client(container)
    client.create_container()
    for rel, data in objects.items():
        client.upload_blob(f"{prefix}/{rel}", data)
    sas = generate_container_sas(
        AZURITE_ACCOUNT,
        container,
        account_key=AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    sig = next(p for p in sas.split("&") if p.startswith("sig=")).split("=", 1)[1]
    return f"{server.account_url}/{container}/{prefix}?{sas}", sig


@contextlib.contextmanager
def azurite_blob_server(workdir: Path | None = None) -> Iterator[Azurite]:
    """Azurite's blob service on a loopback port, in memory; stopped on exit.

    Raises :class:`ServerError` when ``azurite-blob`` is missing (``npm install -g
    azurite``) or does not start.
    """
    exe = shutil.which("azurite-blob")
    if exe is None:
        raise ServerError(
            "azurite-blob not found on PATH — install Azurite with `npm install -g azurite` (CI's .ci/run does)"
        )
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="azurite-")))
        port = free_port()
        log_path = workdir / "azurite.log"
        log = stack.enter_context(log_path.open("wb"))
        proc = subprocess.Popen(
            [
                exe,
                "--inMemoryPersistence",
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                "--skipApiVersionCheck",
                "--loose",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        try:
            try:
                wait_for_port(port, timeout=60, proc=proc)
            except (RuntimeError, TimeoutError) as exc:
                log.flush()
                raise ServerError(
                    f"Azurite did not start: {exc}: {log_path.read_text()[-500:]}"
                ) from None
            yield Azurite(port)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------------- a detector plugin


class SizeDetector:
    """A detector plugin (the ``detect``/``version`` protocol) that really reads every file
    it is given: one box per photo, placed from its pixel size; a photo that cannot be
    decoded (missing, truncated, not an image) is a failed entry. Importable by worker
    processes and Ray workers, unlike a class defined in a test module."""

    version = "size-1"

    def detect(self, images_dir: Path, files: Any) -> Iterator[Any]:
        from PIL import Image

        from ct_io.md import MDDetection, MDImage

        for file in files:
            try:
                with Image.open(images_dir / file) as im:
                    im.load()
                    w, h = im.size
            except OSError as exc:
                yield MDImage(file, None, failure=f"cannot read: {type(exc).__name__}")
                continue
            box = [0.1, 0.1, round(100 / w, 6), round(100 / h, 6)]
            yield MDImage(file, [MDDetection(category="1", conf=0.9, bbox=box)])


#: Libraries a command must not load just to answer ``--help``.
HEAVY_MODULES = ("pandas", "numpy", "pyarrow", "PIL", "torch", "fsspec", "s3fs", "adlfs", "gcsfs")


def modules_loaded_by(
    script: str, module: str, args: list[str], watched: tuple[str, ...] = HEAVY_MODULES
) -> tuple[list[str], str]:
    """Run console script ``script`` (``module``'s ``main``) with ``args`` in a fresh
    interpreter; return which of ``watched`` landed in ``sys.modules``, and its stdout.
    Fails (AssertionError) when the command does."""
    code = (
        "import sys\n"
        f"sys.argv = {[script, *args]!r}\n"
        f"from {module} import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        f"print(sorted(m for m in {watched!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    *out, loaded = done.stdout.strip().splitlines()
    return ast.literal_eval(loaded), "\n".join(out)
