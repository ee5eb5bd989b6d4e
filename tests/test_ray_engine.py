"""``--engine ray`` against ``local`` on the committed real photos, on a real local Ray cluster.

One small cluster (2 CPUs, 100 MB object store) serves every test of this file. Each
test runs the same job with both engines and compares what they write: crops byte for
byte, probabilities within 1e-5, the MD JSON of ``run``; a rerun after an interrupted run
skips the shards already written; a Ray worker SIGKILLed mid-run changes nothing.
"""

from __future__ import annotations

import filecmp
import functools
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.progress import Progress

from ct_crop.boxes import BoxSelection
from ct_crop.crop import SHARDS_DIR_NAME, crop_boxes
from ct_crop.settings import CropSettings, RunOptions
from ct_io.engines import EngineChoice
from ct_io.md import read_md

RAY = EngineChoice(engine="ray", shard_size=3)
BROKEN = "snapshot_kruger_KRU_S1_25_25_R1_KRU_S1_25_R1_IMAG0012.JPG"


@pytest.fixture(scope="module")
def s3_photos(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The photos (the broken one too) in moto's S3 server: ``s3://bucket/images``.

    The AWS settings are in the environment before the Ray cluster starts, so its workers
    (which inherit the environment) reach the same server.
    """
    import boto3

    from ct_io.testing import AWS_ENV_UNSET, fake_aws_env, moto_s3_server

    names = (*AWS_ENV_UNSET, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
             "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL")  # fmt: skip
    saved = {k: os.environ.get(k) for k in names}
    with moto_s3_server() as endpoint:
        for k in AWS_ENV_UNSET:
            os.environ.pop(k, None)
        os.environ.update(fake_aws_env(tmp_path_factory.mktemp("aws")))
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        try:
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-west-2")
            s3.create_bucket(
                Bucket="photos", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
            )
            for path in sorted(photos.iterdir()):
                s3.put_object(Bucket="photos", Key=f"images/{path.name}", Body=path.read_bytes())
            yield "s3://photos/images"
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(scope="module")
def ray_cluster(s3_photos: str) -> Iterator[None]:
    """A real local Ray cluster for this module, shut down at its end."""
    import ray

    ray.init(
        num_cpus=2,
        object_store_memory=100 * 1024**2,
        include_dashboard=False,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(md_test: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture's photos with one of them broken (its first 2 KB only: truncated)."""
    folder = tmp_path_factory.mktemp("photos")
    shutil.copytree(md_test / "images", folder, dirs_exist_ok=True)
    broken = folder / BROKEN
    broken.write_bytes(broken.read_bytes()[:2048])
    return folder


def _crop(photos: Path, md_test: Path, out: Path, engine: EngineChoice | None, **kw: Any) -> Any:
    return crop_boxes(
        photos,
        out,
        md=read_md(md_test / "md_output_v5a.json"),
        boxes=BoxSelection(threshold=0.2),
        settings=CropSettings(size=96),
        options=RunOptions(workers=1),
        engine=engine,
        **kw,
    )


def _same_tree(a: Path, b: Path) -> None:
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    match, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert (mismatch, errors) == ([], []) and len(match) == len(names)


@pytest.fixture(scope="module")
def local_crops(photos: Path, md_test: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "crops"
    summary = _crop(photos, md_test, out, None)
    assert summary.images_failed == 1 and summary.crops_made > 20
    return out


def test_crop_on_ray_equals_local(
    ray_cluster: None, photos: Path, md_test: Path, local_crops: Path, tmp_path: Path
) -> None:
    summary = _crop(photos, md_test, tmp_path / "crops", RAY)
    _same_tree(local_crops, tmp_path / "crops")  # crops, crops.csv, crop_failures.csv
    assert summary.images_failed == 1, "the broken photo is a counted failure, as locally"
    failures = pd.read_csv(tmp_path / "crops" / "crop_failures.csv")
    assert failures["image"].tolist() == [BROKEN]
    assert not (tmp_path / "crops" / SHARDS_DIR_NAME).exists(), "shards merged and removed"


@pytest.fixture(scope="module")
def azure_photos(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The photos (the broken one too) in Azurite, as a container URL with a read+list SAS
    token (the seed's ``--container-url``): the token travels to the Ray workers in the store."""
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    from ct_io.testing import AZURITE_ACCOUNT, AZURITE_KEY, ServerError, azurite_blob_server

    try:
        with azurite_blob_server(tmp_path_factory.mktemp("azurite")) as server:
            container = server.service().get_container_client("photos")
            container.create_container()
            for path in sorted(photos.iterdir()):
                container.upload_blob(f"images/{path.name}", path.read_bytes())
            sas = generate_container_sas(
                AZURITE_ACCOUNT,
                "photos",
                account_key=AZURITE_KEY,
                permission=ContainerSasPermissions(read=True, list=True),
                expiry=datetime.now(UTC) + timedelta(hours=1),
            )
            yield f"{server.account_url}/photos/images?{sas}"
    except ServerError as exc:
        pytest.fail(str(exc))


@pytest.mark.parametrize("root", ["s3_photos", "azure_photos"])
def test_crop_from_object_storage_on_ray_equals_local(
    ray_cluster: None,
    root: str,
    md_test: Path,
    local_crops: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """Ray workers read the photos straight from S3 or an Azure container URL with a SAS
    token (``ct_io.storage``), no local copy; the token is never written."""
    url: str = request.getfixturevalue(root)
    summary = _crop(url, md_test, tmp_path / "crops", RAY)  # type: ignore[arg-type]
    out = tmp_path / "crops"
    crops = sorted(p.name for p in local_crops.glob("*.jpg"))
    assert crops == sorted(p.name for p in out.glob("*.jpg"))
    _, mismatch, errors = filecmp.cmpfiles(local_crops, out, [*crops, "crops.csv"], shallow=False)
    assert (mismatch, errors) == ([], [])
    assert summary.images_failed == 1
    assert pd.read_csv(out / "crop_failures.csv")["image"].tolist() == [BROKEN]
    if "sig=" in url:
        written = "".join(p.read_text() for p in out.glob("*.csv"))
        assert url.split("sig=", 1)[1].split("&", 1)[0] not in written


class _StopError(Exception):
    """Stands for the user's Ctrl-C (a real KeyboardInterrupt would stop pytest)."""


class _StopAfter(Progress):
    """A progress display that interrupts the run after ``n`` finished shards."""

    def __init__(self, n: int) -> None:
        super().__init__(disable=True)
        self.left = n

    def advance(self, task_id: Any, advance: float = 1) -> None:
        self.left -= 1
        if self.left < 0:
            raise _StopError


def test_rerun_skips_finished_shards(
    ray_cluster: None,
    photos: Path,
    md_test: Path,
    local_crops: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "crops"
    with pytest.raises(_StopError):
        _crop(photos, md_test, out, RAY, progress=_StopAfter(1))
    written = sorted((out / SHARDS_DIR_NAME).iterdir())
    assert written, "the interrupted run left its finished shards"
    made = {p: p.stat().st_mtime_ns for p in written}

    from ct_io.engine_ray import RayEngine

    ran: list[int] = []
    original = RayEngine.run

    def counting(self: RayEngine, steps: Any, shards: Any, progress: Any = None) -> Any:
        report = original(self, steps, shards, progress)
        ran.append(report.skipped)
        return report

    monkeypatch.setattr(RayEngine, "run", counting)
    _crop(photos, md_test, out, RAY)
    assert ran and ran[0] >= len(written), "the rerun skipped every finished shard"
    assert all(p.stat().st_mtime_ns == t for p, t in made.items() if p.exists())
    _same_tree(local_crops, out)


def _ray_workers() -> list[int]:
    """Pids of this test's Ray workers running a map task (descendants of this process titled
    ``ray::Map(...)``): not Ray's own agents (whose death takes the node down), nor other
    Ray clusters on the machine."""
    parents: dict[int, int] = {}
    titles: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        titles[int(entry.name)] = title

    def ours(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == os.getpid():
                return True
        return False

    return [pid for pid, title in titles.items() if title.startswith("ray::Map") and ours(pid)]


def test_a_killed_ray_worker_changes_nothing(
    ray_cluster: None, photos: Path, md_test: Path, local_crops: Path, tmp_path: Path
) -> None:
    killed: list[int] = []
    stop = threading.Event()

    def assassin() -> None:
        while not stop.is_set() and not killed:
            for pid in _ray_workers():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed.append(pid)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=assassin, daemon=True)
    thread.start()
    try:
        summary = _crop(photos, md_test, tmp_path / "crops", EngineChoice("ray", shard_size=1))
    finally:
        stop.set()
        thread.join()
    assert killed, "a Ray worker was killed mid-run"
    assert summary.images_failed == 1
    _same_tree(local_crops, tmp_path / "crops")


# ---------------------------------------------------------------- classify and run


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
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


def _predictor(bundle: Path) -> tuple[Any, Any, Any]:
    from ct_infer.classify import RunSettings
    from ct_infer.engine_jobs import predictor_loader
    from ct_infer.precision import Precision

    loader = functools.partial(predictor_loader, bundle, None, None, "cpu", Precision.FP32, False)
    settings = RunSettings(batch_size=8, workers=0, device="cpu", precision=Precision.FP32)
    return loader(), loader, settings


def test_classify_on_ray_equals_local(
    ray_cluster: None, bundle: Path, local_crops: Path, tmp_path: Path
) -> None:
    from ct_infer.classify import classify_crops, crops_from_source

    predictor, loader, settings = _predictor(bundle)
    root, paths = crops_from_source(local_crops)
    paths.append("missing.jpg")  # an unreadable crop: a counted failure with both engines
    here = classify_crops(predictor, root, paths, tmp_path / "local.csv", settings)
    there = classify_crops(
        predictor,
        root,
        paths,
        tmp_path / "ray.csv",
        settings,
        engine=EngineChoice("ray", shard_size=7),
        loader=loader,
    )
    assert list(there.failed) == list(here.failed) == ["missing.jpg"]
    a = pd.read_csv(tmp_path / "local.csv").set_index("path")
    b = pd.read_csv(tmp_path / "ray.csv").set_index("path")
    assert list(b.index) == list(a.index) and len(a) == len(paths) - 1
    assert (a - b).abs().to_numpy().max() <= 1e-5


def test_classify_on_ray_with_onnxruntime_equals_torch(
    ray_cluster: None, bundle: Path, local_crops: Path, tmp_path: Path
) -> None:
    """Each Ray worker runs the bundle on ONNX Runtime from the cached export."""
    from ct_infer.classify import classify_crops, crops_from_source
    from ct_infer.engine_jobs import predictor_loader
    from ct_infer.precision import Precision

    torch_predictor, _, settings = _predictor(bundle)
    loader = functools.partial(
        predictor_loader, bundle, None, None, "cpu", Precision.FP32, False, True, "onnxruntime"
    )
    ort_predictor = loader()
    assert ort_predictor.runtime.runtime == "onnxruntime"
    root, paths = crops_from_source(local_crops)
    classify_crops(torch_predictor, root, paths, tmp_path / "local.csv", settings)
    classify_crops(
        ort_predictor,
        root,
        paths,
        tmp_path / "ray.csv",
        settings,
        engine=EngineChoice("ray", shard_size=7),
        loader=loader,
    )
    a = pd.read_csv(tmp_path / "local.csv").set_index("path")
    b = pd.read_csv(tmp_path / "ray.csv").set_index("path")
    assert list(b.index) == list(a.index) and len(a) == len(paths)
    assert (a - b).abs().to_numpy().max() <= 1e-4


def test_run_on_ray_writes_the_same_md_json(
    ray_cluster: None,
    bundle: Path,
    photos: Path,
    s3_photos: str,
    azure_photos: str,
    md_test: Path,
    tmp_path: Path,
) -> None:
    """The same MD JSON from a local folder on both engines, and on Ray from S3 and Azure."""
    from ct_infer.run import RunOptions as InferRunOptions
    from ct_infer.run import run_pipeline

    predictor, loader, settings = _predictor(bundle)
    md = read_md(md_test / "md_output_v5a.json")
    outputs = {}
    ray = EngineChoice("ray", shard_size=4)
    runs = {"local": (photos, None), "ray": (photos, ray), "ray-s3": (s3_photos, ray),
            "ray-azure": (azure_photos, ray)}  # fmt: skip
    for name, (root, engine) in runs.items():
        out = tmp_path / name / "out.json"
        out.parent.mkdir()
        report = run_pipeline(
            predictor,
            root,  # type: ignore[arg-type]
            md,
            out,
            settings,
            InferRunOptions(),
            progress=False,
            engine=engine,
            loader=loader,
        )
        assert [f[0] for f in report.failures] == [BROKEN]
        outputs[name] = json.loads(out.read_text())
        del outputs[name]["info"]["classification_completion_time"]
    for name in ("ray", "ray-s3", "ray-azure"):
        assert outputs[name] == outputs["local"], name


# ---------------------------------------------------------------- detect


class SizeDetector:
    """A detector defined here: one box per photo, placed from the photo's pixel size (so
    it really reads each file); an unreadable photo is a failed entry."""

    version = "size-1"

    def detect(self, images_dir: Path, files: Any) -> Iterator[Any]:
        from PIL import Image

        from ct_io.md import MDDetection, MDImage

        for f in files:
            try:
                with Image.open(images_dir / f) as im:
                    im.load()
                    w, h = im.size
            except OSError as exc:
                yield MDImage(f, None, failure=f"cannot read: {type(exc).__name__}")
                continue
            yield MDImage(f, [MDDetection("1", 0.9, [0.1, 0.1, 100 / w, 100 / h])])


def test_detect_on_ray_equals_local(ray_cluster: None, photos: Path, tmp_path: Path) -> None:
    import sys

    import ray.cloudpickle

    from ct_crop.detect import detect_cached

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack this module
    files = sorted(p.name for p in photos.iterdir())
    results = {}
    for name, engine in (("local", None), ("ray", EngineChoice("ray", shard_size=5))):
        md, new = detect_cached(
            SizeDetector(),
            photos,
            files,
            tmp_path / name,
            dataset="photos",
            engine=engine,
            loader=SizeDetector,
        )
        assert new == len(files)
        results[name] = md
    assert results["ray"] == results["local"]
    failed = [im.file for im in results["ray"].images if im.detections is None]
    assert failed == [BROKEN], "the broken photo is a counted failure, as locally"


@pytest.mark.parametrize(
    ("script", "module", "command"),
    [
        ("ct-crop", "ct_crop.cli", "crop"),
        ("ct-crop", "ct_crop.cli", "detect"),
        ("ct-infer", "ct_infer.cli", "classify"),
        ("ct-infer", "ct_infer.cli", "run"),
    ],
)
def test_help_of_the_engine_commands_loads_no_ray(script: str, module: str, command: str) -> None:
    from ct_io.testing import modules_loaded_by

    loaded, _ = modules_loaded_by(script, module, [command, "--help"], watched=("ray",))
    assert loaded == []
