"""The ct-io download engine (``download_all`` over HTTP from a local server this test
starts) killed after N finished files (N seeded-random), three times, then rerun."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from faultkit import (
    FileServer,
    assert_whole,
    count_files,
    counts,
    kill_when,
    outputs,
    run_ok,
    temp_files,
)

pytestmark = pytest.mark.faults

DOWNLOAD = """
import json, sys
from ct_io.sources.download import DownloadItem, download_all
from ct_io.sources.transports import HttpTransport
base, out, listing = sys.argv[1:4]
items = [DownloadItem(**x) for x in json.load(open(listing))]
report = download_all(items, out, HttpTransport(base), threads=2)
sys.exit(0 if report.ok else 1)
"""


def test_download_killed_three_times_then_rerun_fetches_every_file_whole(
    http_server: FileServer, md_test: Path, tmp_path: Path
) -> None:
    files = {}
    for i, p in enumerate(sorted((md_test / "images").iterdir())):
        rel = f"cam{i % 3}/{p.name}"
        http_server.files[f"/imgs/{rel}"] = files[rel] = p.read_bytes()
    listing = tmp_path / "items.json"
    listing.write_text(json.dumps([{"key": rel, "dest": rel} for rel in files]))
    http_server.chunk_delay = 0.003  # ~0.1-0.5 s a file: kills land mid-file too

    out = tmp_path / "out"
    cmd = [sys.executable, "-c", DOWNLOAD, http_server.url + "/imgs/", str(out), str(listing)]
    landed = 0
    for n in counts(6, 3, 1, len(files) - 3):
        landed += kill_when(cmd, lambda n=n: count_files(out, ".jpg") >= n)
        assert_whole(out)
        for rel, data in outputs(out).items():  # nothing half-written under a final name
            assert data == files[rel], f"{rel} differs after a kill"
    assert landed, "every download finished before its kill: slow the server down"
    http_server.chunk_delay = 0.0
    run_ok(cmd)
    assert outputs(out) == files
    assert temp_files(out) == []
