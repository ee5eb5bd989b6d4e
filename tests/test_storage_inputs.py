"""Commands that read full photos, reading them straight from object storage: moto's S3
server, Azurite (a SAS container URL, the seed's ``--container-url``) and a local HTTP
server, each holding the real fixture photos. Every run must equal the same run from a
local folder, byte for byte; missing and corrupt objects are counted failures; a SAS
token never reaches the output."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ct_io.testing import (
    AWS_ENV_UNSET,
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    Azurite,
    FileServer,
    ServerError,
    azurite_blob_server,
    fake_aws_env,
    moto_s3_server,
)

PREFIX = "proj/images"
CORRUPT = "corrupt/not-really.jpg"
MISSING = "missing/gone.jpg"


@pytest.fixture(scope="module")
def photos(md_test: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((md_test / "images").iterdir())}


@pytest.fixture(scope="module")
def detections(md_test: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture's MD JSON plus an entry for a corrupt object and one for a missing one."""
    md = json.loads((md_test / "md_output_v5a.json").read_text())
    box = {"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.5, 0.5]}
    md["images"] += [
        {"file": CORRUPT, "detections": [box]},
        {"file": MISSING, "detections": [box]},
    ]
    out = tmp_path_factory.mktemp("md") / "md.json"
    out.write_text(json.dumps(md))
    return out


@pytest.fixture(scope="module")
def local_root(photos: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("local") / "images"
    for rel, data in {**photos, CORRUPT: b"\xff\xd8 not a jpeg"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _objects(photos: dict[str, bytes]) -> dict[str, bytes]:
    return {**photos, CORRUPT: b"\xff\xd8 not a jpeg"}


@pytest.fixture(scope="module")
def s3_root(photos: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``s3://bucket/proj/images`` on moto's server; AWS_ENDPOINT_URL points at it."""
    import boto3

    saved = {k: os.environ.get(k) for k in (*AWS_ENV_UNSET, "AWS_ACCESS_KEY_ID",
             "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE",
             "AWS_SHARED_CREDENTIALS_FILE")}  # fmt: skip
    with moto_s3_server() as endpoint:
        for k in AWS_ENV_UNSET:
            os.environ.pop(k, None)
        os.environ.update(fake_aws_env(tmp_path_factory.mktemp("aws")))
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        try:
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-west-2")
            bucket = f"ct-{uuid.uuid4().hex[:8]}"
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
            )
            for rel, data in _objects(photos).items():
                s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{rel}", Body=data)
            yield f"s3://{bucket}/{PREFIX}"
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    try:
        with azurite_blob_server(tmp_path_factory.mktemp("azurite")) as server:
            yield server
    except ServerError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def sas_root(azurite: Azurite, photos: dict[str, bytes]) -> tuple[str, str]:
    """An Azure container URL with a read+list SAS token, and the token's signature."""
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    container = azurite.service().get_container_client("camtrap")
    container.create_container()
    for rel, data in _objects(photos).items():
        container.upload_blob(f"{PREFIX}/{rel}", data)
    sas = generate_container_sas(
        AZURITE_ACCOUNT,
        "camtrap",
        account_key=AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    sig = next(p for p in sas.split("&") if p.startswith("sig=")).split("=", 1)[1]
    return f"{azurite.account_url}/camtrap/{PREFIX}?{sas}", sig


@pytest.fixture(scope="module")
def http_root(photos: dict[str, bytes]) -> Iterator[str]:
    server = FileServer().start()
    for rel, data in _objects(photos).items():
        server.files[f"/lila/{PREFIX}/{rel}"] = data
    yield f"{server.url}/lila/{PREFIX}"
    server.stop()


def _crop(root: str, out: Path, detections: Path, *extra: str) -> Any:
    from ct_crop.cli import app

    result = CliRunner().invoke(
        app, ["crop", str(out), "--images-dir", root, "-d", str(detections), "-w", "2", *extra]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "crop_failures.csv"
    }


def _failures(folder: Path) -> dict[str, str]:
    import pandas as pd

    frame = pd.read_csv(folder / "crop_failures.csv")
    return dict(zip(frame["image"], frame["kind"], strict=True))


@pytest.fixture(scope="module")
def local_crops(
    local_root: Path, detections: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("crops-local")
    _crop(str(local_root), out, detections)
    return out


def _check_same_as_local(out: Path, local_crops: Path) -> None:
    ours, theirs = _tree(out), _tree(local_crops)
    assert sorted(ours) == sorted(theirs)
    assert sum(name.endswith(".jpg") for name in ours) >= 20
    assert ours == theirs  # crops byte-identical, same crops.csv
    failures = _failures(out)
    assert failures == _failures(local_crops)
    assert failures[MISSING] == "nonexistent" and failures[CORRUPT] == "bad"


def test_crop_from_s3_equals_local(
    s3_root: str, detections: Path, local_crops: Path, tmp_path: Path
) -> None:
    out = tmp_path / "crops"
    _crop(s3_root, out, detections)
    _check_same_as_local(out, local_crops)
    again = _crop(s3_root, out, detections)  # resumes: nothing left to make
    assert "0 crops made" in again.output


def test_crop_from_s3_without_credentials_is_one_clear_error(
    s3_root: str, detections: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ct_crop.cli import app
    from ct_io.storage import StoreCredentialsError

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    args = ["crop", str(tmp_path / "c"), "-i", s3_root, "-d", str(detections)]
    result = CliRunner().invoke(app, args)  # the console script prints it as one line, exit 2
    assert isinstance(result.exception, StoreCredentialsError)
    assert "AWS_PROFILE" in str(result.exception) and result.exception.exit_code == 2
    assert not (tmp_path / "c" / "crops.csv").exists()


def test_crop_from_azure_container_url_with_sas(
    sas_root: tuple[str, str], detections: Path, local_crops: Path, tmp_path: Path
) -> None:
    url, sig = sas_root
    out = tmp_path / "crops"
    from ct_crop.cli import app

    result = CliRunner().invoke(
        app, ["crop", str(out), "--container-url", url, "-d", str(detections), "-w", "2"]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    _check_same_as_local(out, local_crops)
    written = "".join(p.read_text(errors="replace") for p in out.glob("*.csv"))
    written += "".join(p.read_text() for p in out.glob("*.json"))
    assert sig not in result.output and sig not in written


def test_crop_from_http_equals_local(
    http_root: str, detections: Path, local_crops: Path, tmp_path: Path
) -> None:
    out = tmp_path / "crops"
    _crop(http_root, out, detections)
    _check_same_as_local(out, local_crops)


# ---------------------------------------------------------------------- ct-infer run


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised tiny timm network (64 px) saved as a bundle."""
    import torch

    from ct_infer.backbones import build_backbone
    from ct_infer.bundle import make_meta, save_bundle

    torch.manual_seed(0)
    labels = ["antelope", "bird", "carnivore", "primate"]
    built = build_backbone("timm:test_efficientnet", len(labels), None, {"input_size": 64})
    path = tmp_path_factory.mktemp("bundle") / "tiny.safetensors"
    meta = make_meta("timm:test_efficientnet", labels, built.preprocessing, built.options)
    save_bundle(path, built.module, meta)  # type: ignore[arg-type]
    return path


def _infer(root: str, bundle: Path, detections: Path, out: Path) -> dict[str, Any]:
    from ct_infer.cli import app

    args = ["run", root, str(bundle), "-d", str(detections), "-o", str(out), "--workers", "2"]
    result = CliRunner().invoke(app, [*args, "--device", "cpu"])
    assert result.exit_code == 0, (result.output, result.exception)
    doc = json.loads(out.read_text())
    doc["info"].pop("classification_completion_time", None)
    doc["info"].pop("detection_completion_time", None)
    return {"doc": doc, "output": result.output}


def test_infer_run_from_s3_and_azure_equals_local(
    local_root: Path,
    s3_root: str,
    sas_root: tuple[str, str],
    tiny_bundle: Path,
    detections: Path,
    tmp_path: Path,
) -> None:
    local = _infer(str(local_root), tiny_bundle, detections, tmp_path / "local.json")
    assert "2 failures" in local["output"]
    from_s3 = _infer(s3_root, tiny_bundle, detections, tmp_path / "s3.json")
    assert from_s3["doc"] == local["doc"]
    url, sig = sas_root
    from_az = _infer(url, tiny_bundle, detections, tmp_path / "az.json")
    assert from_az["doc"] == local["doc"]
    assert sig not in from_az["output"] and sig not in (tmp_path / "az.json").read_text()
    import pandas as pd

    probs = {
        name: pd.read_csv(tmp_path / f"{name}.json.classifications.csv.gz")
        for name in ("local", "s3", "az")
    }
    for name in ("s3", "az"):
        assert probs[name].equals(probs["local"])


# ---------------------------------------------------------------------- ct-crop detect


class SizeDetector:
    """A detector plugin that reads each file it is given: one box from its pixel size."""

    version = "size-1"

    def detect(self, images_dir: Path, files: list[str]) -> Iterator[Any]:
        from PIL import Image

        from ct_io.md import MDDetection, MDImage

        for file in files:
            try:
                with Image.open(images_dir / file) as im:
                    w, h = im.size
            except OSError as exc:
                yield MDImage(file, None, failure=type(exc).__name__)
                continue
            box = [0.0, 0.0, round(100 / w, 6), round(100 / h, 6)]
            yield MDImage(file, [MDDetection(category="1", conf=0.9, bbox=box)])


def test_detect_from_s3_lists_and_reads_the_bucket(
    local_root: Path, s3_root: str, tmp_path: Path
) -> None:
    from ct_crop.detect import detect_cached, images_to_detect
    from ct_io.storage import open_store

    store = open_store(s3_root)
    wanted = images_to_detect(store)
    assert wanted == images_to_detect(local_root)
    remote, new = detect_cached(SizeDetector(), store, wanted, tmp_path / "c1", dataset="d")
    local, _ = detect_cached(SizeDetector(), local_root, wanted, tmp_path / "c2", dataset="d")
    assert new == len(wanted) == 14
    assert remote.images == local.images
    assert [im.file for im in remote.images if im.failure] == [CORRUPT]


# ---------------------------------------------------------------------- start-up


@pytest.mark.parametrize(
    ("script", "module", "command"),
    [
        ("ct-crop", "ct_crop.cli", "crop"),
        ("ct-crop", "ct_crop.cli", "detect"),
        ("ct-infer", "ct_infer.cli", "run"),
    ],
)
def test_help_of_the_image_root_commands_loads_no_cloud_library(
    script: str, module: str, command: str
) -> None:
    from ct_io.testing import modules_loaded_by

    cloud = ("fsspec", "s3fs", "adlfs", "gcsfs", "aiohttp", "azure.storage.blob")
    loaded, _ = modules_loaded_by(script, module, [command, "--help"], watched=cloud)
    assert loaded == []
