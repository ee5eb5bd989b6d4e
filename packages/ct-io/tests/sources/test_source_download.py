"""The download engine against a real local HTTP server: bytes, retries, failures, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ct_io.sources.download import DownloadItem, RetryPolicy, download_all, part_path
from ct_io.sources.transports import HttpTransport

pytestmark = pytest.mark.network_server

FAST_RETRY = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.05)


def serve_images(server, images: list[Path], prefix: str = "/imgs") -> dict[str, bytes]:
    """Put each image on the server under ``prefix/cam<i%3>/<name>``; return dest → bytes."""
    out = {}
    for i, p in enumerate(images):
        rel = f"cam{i % 3}/{p.name}"
        server.files[f"{prefix}/{rel}"] = p.read_bytes()
        out[rel] = p.read_bytes()
    return out


def items_for(files: dict[str, bytes], sizes: bool = False) -> list[DownloadItem]:
    return [
        DownloadItem(key=rel, dest=rel, size=len(b) if sizes else None) for rel, b in files.items()
    ]


def test_downloads_every_file_byte_for_byte_and_rerun_fetches_nothing(
    http_server, md_images, tmp_path
):
    files = serve_images(http_server, md_images)
    transport = HttpTransport(http_server.url + "/imgs/", max_connections=8)
    report = download_all(
        items_for(files), tmp_path / "out", transport, threads=8, retry=FAST_RETRY
    )
    assert (report.downloaded, report.skipped, report.failed) == (len(files), 0, 0)
    assert report.bytes == sum(len(b) for b in files.values())
    for rel, data in files.items():
        assert (tmp_path / "out" / rel).read_bytes() == data
    assert not list((tmp_path / "out").rglob("*.part"))
    assert not (tmp_path / "out" / "download_failures.jsonl").exists()
    before = sum(http_server.gets.values())
    again = download_all(items_for(files), tmp_path / "out", transport, threads=8, retry=FAST_RETRY)
    assert (again.downloaded, again.skipped) == (0, len(files))
    assert sum(http_server.gets.values()) == before  # nothing requested twice


def test_transient_errors_are_retried_until_the_file_arrives(http_server, md_images, tmp_path):
    files = serve_images(http_server, md_images[:4])
    paths = [f"/imgs/{rel}" for rel in files]
    http_server.faults[paths[0]] = [503, 500]
    http_server.faults[paths[1]] = [429]
    http_server.truncate.add(paths[2])  # half a body, then the connection closes
    http_server.faults[paths[3]] = [-1]  # the connection drops before any answer
    report = download_all(
        items_for(files),
        tmp_path,
        HttpTransport(http_server.url + "/imgs/"),
        threads=2,
        retry=FAST_RETRY,
    )
    assert report.failed == 0 and report.downloaded == 4
    assert [http_server.gets[p] for p in paths] == [3, 2, 2, 2]
    assert report.retries == 5
    for rel, data in files.items():
        assert (tmp_path / rel).read_bytes() == data


def test_permanent_errors_are_not_retried_and_are_logged(http_server, md_images, tmp_path):
    files = serve_images(http_server, md_images[:3])
    rels = list(files)
    http_server.always[f"/imgs/{rels[0]}"] = 403
    http_server.always[f"/imgs/{rels[1]}"] = 500  # transient forever: gives up after the attempts
    items = [*items_for(files), DownloadItem(key="cam9/missing.jpg", dest="cam9/missing.jpg")]
    report = download_all(
        items, tmp_path, HttpTransport(http_server.url + "/imgs/"), threads=4, retry=FAST_RETRY
    )
    assert report.downloaded == 1 and report.failed == 3
    assert http_server.gets[f"/imgs/{rels[0]}"] == 1
    assert http_server.gets["/imgs/cam9/missing.jpg"] == 1
    assert http_server.gets[f"/imgs/{rels[1]}"] == FAST_RETRY.attempts
    lines = [json.loads(x) for x in (tmp_path / "download_failures.jsonl").read_text().splitlines()]
    by_dest = {x["dest"]: x for x in lines}
    assert by_dest[rels[0]]["kind"] == "forbidden" and by_dest[rels[0]]["status"] == 403
    assert (
        by_dest["cam9/missing.jpg"]["kind"] == "not_found"
        and by_dest["cam9/missing.jpg"]["status"] == 404
    )
    assert (
        by_dest[rels[1]]["kind"] == "gave_up"
        and by_dest[rels[1]]["attempts"] == FAST_RETRY.attempts
    )
    assert by_dest["cam9/missing.jpg"]["url"].startswith(http_server.url)
    assert not (tmp_path / rels[0]).exists() and not (tmp_path / "cam9" / "missing.jpg").exists()
    # a clean rerun (the server healed) removes the stale failure log
    http_server.always.clear()
    http_server.files["/imgs/cam9/missing.jpg"] = b"late"
    report = download_all(
        items, tmp_path, HttpTransport(http_server.url + "/imgs/"), threads=4, retry=FAST_RETRY
    )
    assert report.ok and report.downloaded == 3 and report.skipped == 1
    assert not (tmp_path / "download_failures.jsonl").exists()


@pytest.mark.parametrize(
    "hostile", ["../../etc/x", "/etc/passwd", "a/../../x", "..\\..\\x", "C:/x"]
)
def test_hostile_paths_are_rejected_and_nothing_is_written_outside(http_server, tmp_path, hostile):
    http_server.files["/imgs/ok.jpg"] = b"fine"
    out = tmp_path / "deep" / "out"
    items = [DownloadItem(key="ok.jpg", dest=hostile), DownloadItem(key="ok.jpg", dest="ok.jpg")]
    before = {p for p in tmp_path.rglob("*")}
    report = download_all(items, out, HttpTransport(http_server.url + "/imgs/"), retry=FAST_RETRY)
    assert report.downloaded == 1 and report.failed == 1
    failure = report.failures[0]
    assert failure.kind == "unsafe_path" and "refusing path" in failure.error
    created = {p for p in tmp_path.rglob("*")} - before
    assert all(out in p.parents or p == out or p == out.parent for p in created), created
    assert http_server.gets["/imgs/ok.jpg"] == 1  # the hostile entry was never requested


def test_wrong_size_or_leftover_part_file_is_not_counted_as_done(http_server, tmp_path):
    http_server.files["/imgs/a.jpg"] = b"A" * 1000
    http_server.files["/imgs/b.jpg"] = b"B" * 1000
    (tmp_path / "a.jpg").write_bytes(b"A" * 10)  # an older, short copy
    part_path(tmp_path / "b.jpg").write_bytes(b"B" * 500)  # a kill -9 left this behind
    items = [DownloadItem("a.jpg", "a.jpg", size=1000), DownloadItem("b.jpg", "b.jpg", size=1000)]
    report = download_all(
        items, tmp_path, HttpTransport(http_server.url + "/imgs/"), retry=FAST_RETRY
    )
    assert report.downloaded == 2
    assert (tmp_path / "a.jpg").read_bytes() == b"A" * 1000
    assert (tmp_path / "b.jpg").read_bytes() == b"B" * 1000
    assert not part_path(tmp_path / "b.jpg").exists()


def test_a_server_sending_the_wrong_size_is_retried_then_reported(http_server, tmp_path):
    http_server.files["/imgs/a.jpg"] = b"A" * 10
    items = [DownloadItem("a.jpg", "a.jpg", size=1000)]
    report = download_all(
        items, tmp_path, HttpTransport(http_server.url + "/imgs/"), retry=FAST_RETRY
    )
    assert report.failed == 1 and report.failures[0].kind == "gave_up"
    assert "expected 1000" in report.failures[0].error
    assert not (tmp_path / "a.jpg").exists()


KILL_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from ct_io.sources.download import DownloadItem, download_all
    from ct_io.sources.transports import HttpTransport
    base, out, listing = sys.argv[1], sys.argv[2], sys.argv[3]
    items = [DownloadItem(**x) for x in json.load(open(listing))]
    download_all(items, out, HttpTransport(base), threads=2)
    """
)


def test_kill_minus_nine_mid_download_then_rerun_loses_nothing_and_fetches_nothing_twice(
    http_server, md_images, tmp_path
):
    files = serve_images(http_server, md_images)
    http_server.chunk_delay = 0.004  # ~0.1-0.8 s per file, so the kill lands mid-file
    # a slow server (or a loaded machine): each GET is counted 0.3 s after it arrives, so
    # requests the killed run sent just before the kill are counted after it
    http_server.first_byte_delay = 0.3
    out = tmp_path / "out"
    listing = tmp_path / "items.json"
    listing.write_text(json.dumps([{"key": rel, "dest": rel} for rel in files]))
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, http_server.url + "/imgs/", str(out), str(listing)]
    )
    deadline = time.monotonic() + 120
    try:
        while True:
            assert time.monotonic() < deadline, "no moment with 6 files done and 1 in progress"
            done = (
                [p for p in out.rglob("*.*") if not p.name.endswith(".part")]
                if out.exists()
                else []
            )
            if len(done) >= 6 and list(out.rglob("*.part")):
                break
            assert proc.poll() is None, (
                "the download finished before it could be killed; slow the server down"
            )
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    complete_before = {
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and not p.name.endswith(".part")
    }
    assert 6 <= len(complete_before) < len(files)
    for rel in complete_before:  # nothing half-written under a final name
        assert (out / rel).read_bytes() == files[rel]

    # The rerun reads the same files under another prefix, so its requests are counted
    # apart: a request the killed run sent just before the kill is counted only later (a
    # snapshot of the counts taken here once booked it to the rerun: a flaky failure).
    serve_images(http_server, md_images, prefix="/rerun")
    http_server.chunk_delay = http_server.first_byte_delay = 0.0
    report = download_all(
        items_for(files),
        out,
        HttpTransport(http_server.url + "/rerun/"),
        threads=4,
        retry=FAST_RETRY,
    )
    assert report.ok
    assert report.skipped == len(complete_before)
    assert report.downloaded == len(files) - len(complete_before)
    for rel, data in files.items():
        assert (out / rel).read_bytes() == data
        # files finished before the kill were never requested again; the others once
        assert http_server.gets[f"/rerun/{rel}"] == (0 if rel in complete_before else 1), rel
        assert http_server.gets[f"/imgs/{rel}"] <= 1, rel  # the killed run: once at most
        if rel in complete_before:
            assert http_server.gets[f"/imgs/{rel}"] == 1, rel
    assert not list(out.rglob("*.part"))


def test_a_sas_query_on_the_base_url_is_sent_with_every_request_and_masked_in_messages() -> None:
    from ct_io.sources.lila_meta import image_base_url
    from ct_io.sources.transports import AzureBlobTransport, HttpTransport

    row = {"image_base_url_azure": "https://acct.blob.core.windows.net/c/imgs?sv=1&sig=SECRET"}
    base = image_base_url(row, "azure")  # type: ignore[arg-type]
    assert base == "https://acct.blob.core.windows.net/c/imgs/?sv=1&sig=SECRET"
    http = HttpTransport(base)
    assert http.request_url("a b/x.jpg") == (
        "https://acct.blob.core.windows.net/c/imgs/a%20b/x.jpg?sv=1&sig=SECRET"
    )
    assert http.url("a b/x.jpg").endswith("x.jpg?sv=1&sig=***")
    blob = AzureBlobTransport(base)
    assert blob.url("x.jpg") == "https://acct.blob.core.windows.net/c/imgs/x.jpg"
    assert blob.prefix == "imgs/"


# ---------------------------------------------------------------- issue 15, item 6


def test_azure_sdk_answers_it_cannot_parse_are_counted_failures(http_server, md_images, tmp_path):
    """A server that is not Azure Blob Storage (no Content-Range): the SDK raises a bare
    ValueError; each file becomes a logged ``bad_response`` failure, and the run ends."""
    from ct_io.sources.transports import AzureBlobTransport

    files = serve_images(http_server, md_images[:3], prefix="/acct/c")
    transport = AzureBlobTransport(http_server.url + "/acct/c")
    report = download_all(
        items_for(files), tmp_path / "out", transport, threads=2, retry=FAST_RETRY
    )
    assert (report.downloaded, report.failed) == (0, 3)
    assert {f.kind for f in report.failures} == {"bad_response"}
    assert all("not an Azure Blob Storage answer" in f.error for f in report.failures)
    logged = (tmp_path / "out" / "download_failures.jsonl").read_text().splitlines()
    assert len(logged) == 3 and json.loads(logged[0])["kind"] == "bad_response"


class OddTransport:
    """Serves over HTTP, except that one key makes the client library raise something no
    transport maps (a bug or a malformed answer)."""

    def __init__(self, inner: HttpTransport, odd: str) -> None:
        self.inner, self.odd = inner, odd

    def url(self, key: str) -> str:
        return self.inner.url(key)

    def download(self, key, fh, on_bytes):  # type: ignore[no-untyped-def]
        if key == self.odd:
            raise KeyError("x-ms-blob-type")
        return self.inner.download(key, fh, on_bytes)


def test_an_unexpected_transport_error_fails_that_file_and_the_rest_arrive(
    http_server, md_images, tmp_path
):
    files = serve_images(http_server, md_images)
    odd = sorted(files)[0]
    transport = OddTransport(HttpTransport(http_server.url + "/imgs/"), odd)
    report = download_all(
        items_for(files), tmp_path / "out", transport, threads=4, retry=FAST_RETRY
    )
    assert report.downloaded == len(files) - 1
    (failure,) = report.failures
    assert (failure.dest, failure.kind, failure.attempts) == (odd, "bad_response", 1)
    assert "KeyError" in failure.error
    assert not (tmp_path / "out" / odd).exists()


def test_azure_transport_reads_bodies_in_the_storage_sdks_block_size() -> None:
    """A transport handed to the SDK gets azure-core's 4 KiB reads unless told otherwise;
    the storage SDK's own transport reads 256 KiB blocks, twice the files/s on Azurite
    (bench/bench_download.py). Ours must read as the SDK's own does."""
    from azure.storage.blob._shared.constants import DATA_BLOCK_SIZE

    from ct_io.sources.transports import AzureBlobTransport

    blob = AzureBlobTransport("https://acct.blob.core.windows.net/c/imgs")
    transport = blob._client._config.transport
    assert transport.connection_config.data_block_size == DATA_BLOCK_SIZE
