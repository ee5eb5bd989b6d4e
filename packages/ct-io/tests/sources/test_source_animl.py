"""The ``animl`` source against moto's S3 server (server mode, boto3 with an endpoint URL)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ct_io.cct import read_cct
from ct_io.cli import app
from ct_io.errors import CamtrapError
from ct_io.options import ConfigError
from ct_io.sources import fetch

pytestmark = pytest.mark.network_server


def make_export(
    tmp_path: Path, images: list[Path], *, extra_images: list[dict] | None = None
) -> tuple[Path, dict[str, bytes]]:
    """An Animl-style CCT export: Animl ids as file names, S3 keys in original_relative_path."""
    recs, anns, blobs = [], [], {}
    for i, p in enumerate(images):
        key = f"camera-{i % 2}/{p.name}"
        recs.append(
            {
                "id": f"img{i}",
                "file_name": f"{uuid.uuid4().hex}-original.jpg",
                "original_relative_path": key,
                "location": f"camera-{i % 2}",
                "datetime": "2023-01-01 00:00:00",
            }
        )
        anns.append({"id": f"ann{i}", "image_id": f"img{i}", "category_id": 1 + i % 2})
        blobs[key] = p.read_bytes()
    recs += extra_images or []
    export = {
        "info": {"description": "Animl export"},
        "images": recs,
        "annotations": anns,
        "categories": [{"id": 1, "name": "rodent"}, {"id": 2, "name": "skunk"}],
    }
    path = tmp_path / "santa_cruz_cct.json"
    path.write_text(json.dumps(export))
    return path, blobs


@pytest.fixture()
def bucket(s3) -> str:
    name = f"animl-test-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    return name


def upload(s3, bucket: str, blobs: dict[str, bytes]) -> None:
    for key, data in blobs.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)


def test_fetch_downloads_every_image_of_the_export_and_writes_a_matching_cct(
    s3, bucket, moto_server, md_images, tmp_path
):
    export, blobs = make_export(tmp_path, md_images[:12])
    upload(s3, bucket, blobs)
    opts = {
        "cct": str(export),
        "bucket": bucket,
        "profile": None,
        "endpoint_url": moto_server,
        "threads": 4,
    }
    result = fetch("animl", tmp_path / "raw", opts)
    assert result.name == "santa_cruz"
    assert result.images_dir == tmp_path / "raw" / "santa_cruz"
    assert result.cct_path == tmp_path / "raw" / "santa_cruz" / "santa_cruz_cct.json"
    for key, data in blobs.items():
        assert (result.images_dir / key).read_bytes() == data
    ds = read_cct(result.cct_path)
    assert sorted(ds.images["file_name"]) == sorted(blobs)
    assert all((result.images_dir / f).is_file() for f in ds.images["file_name"])
    assert ds.images["animl_file_name"].str.endswith("-original.jpg").all()  # Animl's name kept
    assert len(ds.annotations) == 12 and set(ds.category_names.values()) == {"rodent", "skunk"}


def test_missing_and_hostile_keys_are_logged_and_left_out_then_rerun_skips(
    s3, bucket, moto_server, md_images, tmp_path
):
    extra = [
        {
            "id": "gone",
            "file_name": "gone.jpg",
            "original_relative_path": "camera-0/never-uploaded.jpg",
        },
        {"id": "evil", "file_name": "evil.jpg", "original_relative_path": "../../etc/x"},
    ]
    export, blobs = make_export(tmp_path, md_images[:4], extra_images=extra)
    upload(s3, bucket, blobs)
    s3.put_object(Bucket=bucket, Key="../../etc/x", Body=b"not for you")
    from ct_io.sources.animl import AnimlOptions, AnimlSource

    source = AnimlSource(
        AnimlOptions(cct=export, bucket=bucket, profile=None, endpoint_url=moto_server, retries=1)
    )
    result = source.fetch(tmp_path / "raw")
    assert source.report is not None
    assert (source.report.downloaded, source.report.failed) == (4, 2)
    kinds = {f.dest: f.kind for f in source.report.failures}
    assert kinds == {"camera-0/never-uploaded.jpg": "not_found", "../../etc/x": "unsafe_path"}
    log = [
        json.loads(line)
        for line in (result.images_dir / "download_failures.jsonl").read_text().splitlines()
    ]
    assert {x["kind"] for x in log} == {"not_found", "unsafe_path"}
    assert not (tmp_path / "etc").exists() and not (tmp_path / "raw" / "etc").exists()
    ds = read_cct(result.cct_path)
    assert set(ds.images["id"]) == {"img0", "img1", "img2", "img3"}

    again = AnimlSource(
        AnimlOptions(cct=export, bucket=bucket, profile=None, endpoint_url=moto_server, retries=1)
    )
    again.fetch(tmp_path / "raw")
    assert again.report is not None and (again.report.downloaded, again.report.skipped) == (0, 4)


def test_cli_downloads_and_exits_1_when_an_image_failed(
    s3, bucket, moto_server, md_images, tmp_path
):
    export, blobs = make_export(tmp_path, md_images[:3])
    upload(s3, bucket, blobs)
    args = [
        "animl",
        "download",
        str(export),
        str(tmp_path / "raw"),
        "--bucket",
        bucket,
        "--profile",
        "",
        "--endpoint-url",
        moto_server,
        "--dataset",
        "sci",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "downloaded" in result.output and (tmp_path / "raw" / "sci" / "sci_cct.json").is_file()
    s3.delete_object(Bucket=bucket, Key=next(iter(blobs)))
    (tmp_path / "raw" / "sci" / next(iter(blobs))).unlink()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "not_found" in result.output


def test_bad_options_give_one_line_each(tmp_path):
    with pytest.raises(ConfigError) as err:
        fetch("animl", tmp_path, {"threads": 0, "bukket": "x"})
    lines = err.value.lines
    assert any("cct" in x for x in lines)
    assert any("bukket" in x for x in lines)


def test_threads_out_of_range_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="threads must be between 1 and 256"):
        fetch("animl", tmp_path, {"cct": "x.json", "threads": 0})


def test_missing_profile_says_how_to_create_it(aws_env, md_images, tmp_path):
    export, _ = make_export(tmp_path, md_images[:1])
    with pytest.raises(CamtrapError, match=r"aws configure --profile animl"):
        fetch("animl", tmp_path / "raw", {"cct": str(export)})


def test_missing_profile_hint_uses_the_cli_form(aws_env, md_images, tmp_path):
    """The way out is written as the user types it (issue 15 item 12)."""
    export, _ = make_export(tmp_path, md_images[:1])
    args = ["animl", "download", str(export), str(tmp_path / "raw"), "--profile", "nosuch"]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, CamtrapError)
    message = str(result.exception)
    assert "AWS profile 'nosuch' not found" in message
    assert "--profile ''" in message and "profile=null" not in message


def test_missing_bucket_stops_the_run_with_one_line(s3, moto_server, md_images, tmp_path):
    export, _ = make_export(tmp_path, md_images[:2])
    with pytest.raises(CamtrapError, match=r"NoSuchBucket.*check the bucket name"):
        fetch(
            "animl",
            tmp_path / "raw",
            {
                "cct": str(export),
                "bucket": "no-such-bucket-here",
                "profile": None,
                "endpoint_url": moto_server,
            },
        )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, "PermanentError"),
        ("AccessDenied", 403, "PermanentError"),
        ("SlowDown", 503, "TransientError"),
        ("InternalError", 500, "TransientError"),
        ("RequestTimeout", 400, "TransientError"),
        ("NoSuchBucket", 404, "FatalDownloadError"),
        ("InvalidAccessKeyId", 403, "FatalDownloadError"),
        ("SomethingNew", 502, "TransientError"),
        ("SomethingElse", 400, "PermanentError"),
    ],
)
def test_s3_error_codes_map_to_retry_log_or_stop(code, status, expected):
    from botocore.exceptions import ClientError

    from ct_io.sources.transports import _s3_error

    exc = ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )
    assert type(_s3_error(exc, "s3://b/k")).__name__ == expected
