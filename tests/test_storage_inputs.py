"""Commands that read full photos, reading them straight from object storage: moto's S3
server, Azurite (a SAS container URL, the seed's ``--container-url``) and a local HTTP
server, each holding the real fixture photos. Every run must equal the same run from a
local folder, byte for byte; missing and corrupt objects are counted failures; a SAS
token never reaches the output."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ct_io.testing import (
    Azurite,
    FileServer,
    S3Bucket,
    SizeDetector,
    moto_s3_bucket,
    sas_container,
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
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Bucket]:
    """A bucket on moto's server; AWS_ENDPOINT_URL points at it."""
    with moto_s3_bucket(tmp_path_factory.mktemp("aws"), f"ct-{uuid.uuid4().hex[:8]}") as bucket:
        yield bucket


@pytest.fixture(scope="module")
def s3_root(s3: S3Bucket, photos: dict[str, bytes]) -> str:
    """``s3://bucket/proj/images``."""
    return s3.put(_objects(photos), PREFIX)


@pytest.fixture(scope="module")
def sas_root(azurite: Azurite, photos: dict[str, bytes]) -> tuple[str, str]:
    """An Azure container URL with a read+list SAS token, and the token's signature."""
    return sas_container(azurite, "camtrap", _objects(photos), PREFIX)


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


# ---------------------------------------------------------------------- ct-infer classify


def _classify(crops: str, bundle: Path, out: Path, *extra: str) -> Any:
    import pandas as pd

    from ct_infer.cli import app

    args = ["classify", str(bundle), crops, str(out), "--device", "cpu", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return pd.read_csv(out).set_index("path"), result.output


def test_classify_crops_from_object_storage_equals_local(
    s3: S3Bucket, azurite: Azurite, local_crops: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    """Crops folders in S3 and in an Azure container (SAS URL) are listed and read without
    a local copy; a local manifest reads its crops from S3 or a web server (--crops-dir)."""
    crops = {p.name: p.read_bytes() for p in sorted(local_crops.glob("*.jpg"))}
    assert len(crops) >= 20
    local, _ = _classify(str(local_crops), tiny_bundle, tmp_path / "local.csv")
    s3_url = s3.put(crops, "proj/crops")
    sas_url, sig = sas_container(azurite, "crops", crops, "proj/crops")
    server = FileServer().start()
    server.files.update({f"/lila/crops/{name}": data for name, data in crops.items()})
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path\n" + "".join(f"{name}\n" for name in [*crops, "gone.jpg"]))
    try:
        runs = {
            "s3": (s3_url,),
            "azure": (sas_url,),
            "s3-manifest": (str(manifest), "--crops-dir", s3_url),
            "https-manifest": (str(manifest), "--crops-dir", f"{server.url}/lila/crops"),
        }
        for name, (crops_arg, *extra) in runs.items():
            out = tmp_path / f"{name}.csv"
            probs, output = _classify(crops_arg, tiny_bundle, out, *extra)
            assert list(probs.index) == list(local.index), name
            assert (probs - local).abs().to_numpy().max() <= 1e-5, name
            assert sig not in output and sig not in out.read_text()
            failed = Path(f"{out}.failed.csv")
            if name.endswith("manifest"):  # the missing crop is a counted failure
                assert "1 unreadable" in output and "gone.jpg" in failed.read_text()
            else:
                assert "0 unreadable" in output and not failed.exists()
    finally:
        server.stop()


# ---------------------------------------------------------------------- ct-crop detect


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
        ("ct-infer", "ct_infer.cli", "classify"),
    ],
)
def test_help_of_the_image_root_commands_loads_no_cloud_library(
    script: str, module: str, command: str
) -> None:
    from ct_io.testing import modules_loaded_by

    cloud = ("fsspec", "s3fs", "adlfs", "gcsfs", "aiohttp", "azure.storage.blob")
    loaded, _ = modules_loaded_by(script, module, [command, "--help"], watched=cloud)
    assert loaded == []
