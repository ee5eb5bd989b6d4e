"""Download-engine throughput against local servers, at 1, 8 and 32 threads.

Servers (all on 127.0.0.1, started and stopped here): a threaded HTTP server holding the
files in memory (the LILA GCS/AWS path), moto's S3 server (the Animl path; needs the
``moto[server]`` test dependency) and Azurite (the LILA Azure path; needs
``npm install -g azurite``). A server whose tool is missing is reported as skipped.

The files are the shared real camera-trap JPEGs (``../shared/data/md-test-images``),
repeated under distinct names. Every run writes into a fresh folder, fsync included; each setting runs
``--repeat`` times and the median run is reported (the machine may be shared).

Reference rows: the tools users run for the same job, against the same server and objects,
at the largest ``--threads``: the AWS CLI (``aws s3 cp --recursive --endpoint-url``, its
``max_concurrent_requests`` set to the thread count; installed by ``pip install awscli`` into
``bench/.venvs/awscli``, timed as a whole process as users run it, start-up included), the
same transfer manager in process (boto3's ``s3transfer.TransferManager``, which the CLI
runs, ``max_request_concurrency`` = threads), and the Azure SDK's
documented way to fetch many blobs (``ContainerClient.list_blobs`` and ``download_blob``
from a thread pool). None of them fsyncs, so our engine is timed beside them without fsync too.
Every run checks that each file arrived with the same bytes.

    uv run --package ct-io --group test python bench/bench_download.py [--copies 4] [--threads 1 8 32]

Prints a markdown table (files/s, MB/s) and writes ``bench/out/bench_download.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchpage import md_test_images

from ct_io.sources.download import DownloadItem, Transport, download_all

ROOT = Path(__file__).resolve().parents[1]
IMAGES = md_test_images() / "images"
AWSCLI_VENV = ROOT / "bench" / ".venvs" / "awscli"

#: a peer tool's run: (files, output folder, threads) → seconds
Peer = Callable[[dict[str, bytes], Path, int], float]
#: what a server's context yields: our engine's transport, and the peer tools' names and runs
Served = tuple[Transport, dict[str, Peer]]


def aws_cli() -> Path:
    """The AWS CLI from PyPI in its own venv (made on first use; seconds from a warm uv cache)."""
    aws = AWSCLI_VENV / "bin" / "aws"
    if not aws.exists():
        subprocess.run(
            ["uv", "venv", "-q", "--python", sys.executable, str(AWSCLI_VENV)], check=True
        )
        subprocess.run(
            [
                "uv",
                "pip",
                "install",
                "-q",
                "--python",
                str(AWSCLI_VENV / "bin" / "python"),
                "awscli",
            ],
            check=True,
        )
    return aws


def check_same_bytes(files: dict[str, bytes], out: Path) -> None:
    """Every file fetched, byte for byte, and nothing else."""
    got = {p.relative_to(out).as_posix(): p for p in out.rglob("*") if p.is_file()}
    if set(got) != set(files):
        raise SystemExit(
            f"{len(set(files) - set(got))} files missing, {len(set(got) - set(files))} extra in {out}"
        )
    bad = [k for k in files if got[k].read_bytes() != files[k]]
    if bad:
        raise SystemExit(f"{len(bad)} files differ from the server's, e.g. {bad[0]}")


def load_files(copies: int) -> dict[str, bytes]:
    pics = sorted(p for p in IMAGES.iterdir() if p.is_file())
    return {f"cam{c}/{p.name}": p.read_bytes() for c in range(copies) for p in pics}


@contextmanager
def http_server(files: dict[str, bytes], latency: float = 0.0) -> Iterator[Served]:
    from ct_io.sources.transports import HttpTransport
    from ct_io.testing import FileServer

    server = FileServer()
    server.files = {f"/lila/{key}": data for key, data in files.items()}
    server.first_byte_delay = latency  # time to first byte of a distant server
    server.start()
    try:
        yield HttpTransport(f"{server.url}/lila/", max_connections=64), {}
    finally:
        server.stop()


@contextmanager
def s3_server(files: dict[str, bytes]) -> Iterator[Served]:
    import boto3

    from ct_io.sources.transports import S3Transport
    from ct_io.testing import moto_s3_server

    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-west-2"
    )
    with moto_s3_server() as url:
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-west-2")
        s3.create_bucket(
            Bucket="bench", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
        for key, data in files.items():
            s3.put_object(Bucket="bench", Key=key, Body=data)

        def cli(files: dict[str, bytes], out: Path, threads: int) -> float:
            config = out.parent / "aws-config"
            config.write_text(
                f"[default]\nregion = us-west-2\ns3 =\n  max_concurrent_requests = {threads}\n"
            )
            cmd = [str(aws_cli()), "s3", "cp", "s3://bench/", str(out), "--recursive"]
            start = time.perf_counter()
            subprocess.run(
                [*cmd, "--endpoint-url", url, "--only-show-errors"],
                check=True,
                env={**os.environ, "AWS_CONFIG_FILE": str(config)},
            )
            return time.perf_counter() - start

        def sdk(files: dict[str, bytes], out: Path, threads: int) -> float:
            from botocore.config import Config
            from s3transfer.manager import TransferConfig, TransferManager

            start = time.perf_counter()
            client = boto3.client(  # as the CLI does: one pooled connection per thread
                "s3", endpoint_url=url, config=Config(max_pool_connections=threads)
            )
            config = TransferConfig(max_request_concurrency=threads)
            with TransferManager(client, config) as manager:
                futures = []
                for page in client.get_paginator("list_objects_v2").paginate(Bucket="bench"):
                    for obj in page.get("Contents", []):
                        target = out / obj["Key"]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        futures.append(manager.download("bench", obj["Key"], str(target)))
                for future in futures:
                    future.result()
            return time.perf_counter() - start

        transport = S3Transport("bench", endpoint_url=url, region="us-west-2", max_connections=64)
        yield (
            transport,
            {
                "AWS CLI `aws s3 cp --recursive`": cli,
                "boto3's s3transfer `TransferManager`, in process": sdk,
            },
        )


@contextmanager
def azurite_server(files: dict[str, bytes]) -> Iterator[Served]:
    from ct_io.sources.transports import AzureBlobTransport
    from ct_io.testing import azurite_blob_server

    with azurite_blob_server() as azurite:
        container = azurite.service().create_container("lila-wildlife", public_access="container")
        for name, data in files.items():
            container.upload_blob(f"bench/{name}", data)

        def sdk(files: dict[str, bytes], out: Path, threads: int) -> float:
            from concurrent.futures import ThreadPoolExecutor

            from azure.storage.blob import ContainerClient

            start = time.perf_counter()
            client = ContainerClient.from_container_url(f"{azurite.account_url}/lila-wildlife")

            def fetch(name: str) -> None:
                target = out / name.removeprefix("bench/")
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as fh:
                    client.download_blob(name).readinto(fh)

            names = [b.name for b in client.list_blobs(name_starts_with="bench/")]
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(fetch, names))
            return time.perf_counter() - start

        transport = AzureBlobTransport(
            f"{azurite.account_url}/lila-wildlife/bench/", max_connections=64
        )
        yield transport, {"Azure SDK `download_blob` from a thread pool": sdk}


def http_server_with_latency(files: dict[str, bytes]) -> Any:
    return http_server(files, latency=0.05)


SERVERS: dict[str, Callable[[dict[str, bytes]], Any]] = {
    "HTTP (LILA GCS/AWS path)": http_server,
    "HTTP + 50 ms to first byte (a distant cloud)": http_server_with_latency,
    "S3, moto server (Animl path)": s3_server,
    "Azure Blob SDK, Azurite (LILA Azure path)": azurite_server,
}


def compare_with_peers(
    label: str,
    files: dict[str, bytes],
    transport: Transport,
    peers: dict[str, Peer],
    threads: int,
    repeat: int,
) -> list[dict[str, Any]]:
    """The peer tools and our engine without fsync (as the peers), interleaved run by run;
    each run's folder checked byte for byte. Returns one row per tool (median run)."""
    items = [DownloadItem(key=k, dest=k) for k in files]
    seconds: dict[str, list[float]] = {name: [] for name in peers}
    seconds[OURS_NO_FSYNC] = []
    for _ in range(repeat):
        for name, run_peer in peers.items():
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "peer"
                out.mkdir()
                took = run_peer(files, out, threads)
                check_same_bytes(files, out)
                seconds[name].append(took)
        with tempfile.TemporaryDirectory() as tmp:
            report = download_all(items, tmp, transport, threads=threads, fsync=False)
            assert report.ok and report.downloaded == len(files), report
            check_same_bytes(files, Path(tmp))
            seconds[OURS_NO_FSYNC].append(report.seconds)
    rows = []
    for tool, runs in seconds.items():
        median = sorted(runs)[len(runs) // 2]
        mb = sum(map(len, files.values())) / 1e6
        rows.append(
            {
                "server": label,
                "tool": tool,
                "threads": threads,
                "files": len(files),
                "seconds": round(median, 3),
                "files_per_s": round(len(files) / median, 1),
                "mb_per_s": round(mb / median, 1),
            }
        )
    return rows


OURS_NO_FSYNC = "ct-io engine, no fsync"


def main() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--copies", type=int, default=4, help="copies of the 31 test images (default 4 → 124 files)"
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per setting; the median is reported"
    )
    parser.add_argument("--no-fsync", action="store_true", help="skip the per-file fsync")
    args = parser.parse_args()
    files = load_files(args.copies)
    total_mb = sum(map(len, files.values())) / 1e6
    print(
        f"{len(files)} files, {total_mb:.1f} MB per run; fsync={'off' if args.no_fsync else 'on'}",
        file=sys.stderr,
    )
    items = [DownloadItem(key=k, dest=k) for k in files]
    results: list[dict[str, Any]] = []
    for label, factory in SERVERS.items():
        try:
            with factory(files) as (transport, peers):
                for threads in args.threads:
                    runs = []
                    for _ in range(args.repeat):
                        with tempfile.TemporaryDirectory() as out:
                            report = download_all(
                                items, out, transport, threads=threads, fsync=not args.no_fsync
                            )
                        assert report.ok and report.downloaded == len(files), report
                        runs.append(report)
                    report = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]  # the median run
                    row = {
                        "server": label,
                        "threads": threads,
                        "files": report.downloaded,
                        "seconds": round(report.seconds, 3),
                        "files_per_s": round(report.downloaded / report.seconds, 1),
                        "mb_per_s": round(report.bytes / 1e6 / report.seconds, 1),
                    }
                    results.append(row)
                    print(
                        f"{label:45s} {threads:3d} threads: {row['files_per_s']:7.1f} files/s {row['mb_per_s']:7.1f} MB/s",
                        file=sys.stderr,
                    )
                if peers:
                    rows = compare_with_peers(
                        label, files, transport, peers, max(args.threads), args.repeat
                    )
                    results += rows
                    for row in rows:
                        print(
                            f"{row['server'] + ', ' + row['tool']:80s} {row['threads']:3d} threads: {row['files_per_s']:7.1f} files/s",
                            file=sys.stderr,
                        )
        except (ImportError, RuntimeError) as exc:  # ct_io.testing.ServerError is one
            results.append({"server": label, "skipped": str(exc)})
            print(f"{label}: skipped ({exc})", file=sys.stderr)
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench_download.json").write_text(
        json.dumps(
            {"files": len(files), "mb_per_run": round(total_mb, 1), "results": results}, indent=1
        )
    )
    save_section(results, len(files), total_mb)
    print(
        f"\n### Download throughput ({len(files)} real camera-trap JPEGs, {total_mb:.0f} MB, loopback)\n"
    )
    print(TABLE_HEAD)
    print("\n".join(map(table_row, results)))


TABLE_HEAD = "| server | tool | threads | files/s | MB/s |\n| --- | --- | ---: | ---: | ---: |"


def table_row(r: dict[str, Any]) -> str:
    if "skipped" in r:
        return f"| {r['server']} | – | – | skipped: {r['skipped']} | |"
    tool = r.get("tool", "ct-io engine")
    return f"| {r['server']} | {tool} | {r['threads']} | {r['files_per_s']} | {r['mb_per_s']} |"


def save_section(results: list[dict[str, Any]], files: int, total_mb: float) -> None:
    """Headline figures for docs/benchmarks.md: the most threads, per server."""
    from benchpage import Figure, Section, save

    measured = [r for r in results if "skipped" not in r and "tool" not in r]
    best: dict[str, dict[str, Any]] = {}
    for r in measured:
        if r["threads"] >= best.get(r["server"], {"threads": -1})["threads"]:
            best[r["server"]] = r
    single = {r["server"]: r for r in measured if r["threads"] == 1}
    figures = [
        Figure(
            f"{server}, {r['threads']} threads",
            r["files_per_s"],
            "files/s",
            single[server]["files_per_s"] if server in single else None,
            "the same engine with 1 thread",
        )
        for server, r in best.items()
    ]
    by_tool = {(r["server"], r["tool"]): r for r in results if "tool" in r}
    for (server, tool), r in by_tool.items():
        if tool != OURS_NO_FSYNC:
            ours = by_tool[(server, OURS_NO_FSYNC)]
            figures.append(
                Figure(
                    f"{server}, {r['threads']} threads, no fsync (as the peer)",
                    ours["files_per_s"],
                    "files/s",
                    r["files_per_s"],
                    tool,
                )
            )
    save(
        Section(
            "download",
            "Downloads (local servers over loopback)",
            figures,
            f"{files} real camera-trap JPEGs, {total_mb:.0f} MB per run, median of the runs; "
            "every file written to a `.part`, fsynced and renamed (rows naming a peer tool: "
            "that tool, and our engine beside it without fsync, interleaved run by run; the AWS "
            "CLI timed as a whole process, start-up included, as users run it; every file "
            "checked byte for byte).\n\n" + TABLE_HEAD + "\n" + "\n".join(map(table_row, results)),
        )
    )


if __name__ == "__main__":
    main()
