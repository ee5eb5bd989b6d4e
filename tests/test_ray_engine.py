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
from ct_io.testing import Azurite, S3Bucket, SizeDetector, moto_s3_bucket, sas_container

RAY = EngineChoice(engine="ray", shard_size=3)
BROKEN = "snapshot_kruger_KRU_S1_25_25_R1_KRU_S1_25_R1_IMAG0012.JPG"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Bucket]:
    """A bucket on moto's S3 server. The AWS settings are in the environment before the
    Ray cluster starts, so its workers (which inherit the environment) reach the server."""
    with moto_s3_bucket(tmp_path_factory.mktemp("aws"), "photos") as bucket:
        yield bucket


@pytest.fixture(scope="module")
def s3_photos(s3: S3Bucket, photos: Path) -> str:
    """The photos (the broken one too) in S3: ``s3://photos/images``."""
    return s3.put(_files(photos, "*"), "images")


def _files(folder: Path, pattern: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob(pattern)) if p.is_file()}


@pytest.fixture(scope="module")
def ray_cluster(s3: S3Bucket) -> Iterator[None]:
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
def azure_photos(azurite: Azurite, photos: Path) -> str:
    """The photos (the broken one too) in Azurite, as a container URL with a read+list SAS
    token (the seed's ``--container-url``): the token travels to the Ray workers in the store."""
    return sas_container(azurite, "ray-photos", _files(photos, "*"), "images")[0]


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


def _predictor(bundle: Path) -> tuple[Any, Any, Any]:
    from ct_infer.classify import RunSettings
    from ct_infer.engine_jobs import predictor_loader
    from ct_infer.precision import Precision

    loader = functools.partial(predictor_loader, bundle, None, None, "cpu", Precision.FP32, False)
    settings = RunSettings(batch_size=8, workers=0, device="cpu", precision=Precision.FP32)
    return loader(), loader, settings


def test_classify_on_ray_equals_local(
    ray_cluster: None,
    s3: S3Bucket,
    azurite: Azurite,
    tiny_bundle: Path,
    local_crops: Path,
    tmp_path: Path,
) -> None:
    """Crops from a folder, from S3 and from an Azure container URL (SAS token) classified
    on Ray: the local engine's probabilities for the folder, the same counted failure."""
    from ct_infer.classify import classify_crops, crops_from_source

    crops = _files(local_crops, "*.jpg")
    azure_url, sig = sas_container(azurite, "ray-crops", crops, "crops")
    roots = {"ray": str(local_crops), "ray-s3": s3.put(crops, "crops"), "ray-azure": azure_url}
    predictor, loader, settings = _predictor(tiny_bundle)
    root, paths = crops_from_source(local_crops)
    paths.append("missing.jpg")  # an unreadable crop: a counted failure with both engines
    here = classify_crops(predictor, root, paths, tmp_path / "local.csv", settings)
    assert list(here.failed) == ["missing.jpg"]
    a = pd.read_csv(tmp_path / "local.csv").set_index("path")
    assert len(a) == len(paths) - 1 == len(crops)
    for name, url in roots.items():
        root, listed = crops_from_source(url)
        assert listed == paths[:-1], name
        there = classify_crops(
            predictor,
            root,
            [*listed, "missing.jpg"],
            tmp_path / f"{name}.csv",
            settings,
            engine=EngineChoice("ray", shard_size=7),
            loader=loader,
        )
        assert list(there.failed) == ["missing.jpg"], name
        assert sig not in str(there.failed)
        b = pd.read_csv(tmp_path / f"{name}.csv").set_index("path")
        assert list(b.index) == list(a.index), name
        assert (a - b).abs().to_numpy().max() <= 1e-5, name


def test_classify_on_ray_with_onnxruntime_equals_torch(
    ray_cluster: None, tiny_bundle: Path, local_crops: Path, tmp_path: Path
) -> None:
    """Each Ray worker runs the bundle on ONNX Runtime from the cached export."""
    from ct_infer.classify import classify_crops, crops_from_source
    from ct_infer.engine_jobs import predictor_loader
    from ct_infer.precision import Precision

    torch_predictor, _, settings = _predictor(tiny_bundle)
    loader = functools.partial(
        predictor_loader, tiny_bundle, None, None, "cpu", Precision.FP32, False, True, "onnxruntime"
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
    tiny_bundle: Path,
    photos: Path,
    s3_photos: str,
    azure_photos: str,
    md_test: Path,
    tmp_path: Path,
) -> None:
    """The same MD JSON from a local folder on both engines, and on Ray from S3 and Azure."""
    from ct_infer.run import RunOptions as InferRunOptions
    from ct_infer.run import run_pipeline

    predictor, loader, settings = _predictor(tiny_bundle)
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


def test_detect_on_ray_equals_local(
    ray_cluster: None, photos: Path, s3_photos: str, azure_photos: str, tmp_path: Path
) -> None:
    """A detector plugin on Ray, reading photos from a folder, from S3 and from an Azure
    container URL (SAS token): the local engine's detections for the folder."""
    from ct_crop.detect import detect_cached
    from ct_io.storage import open_store

    files = sorted(p.name for p in photos.iterdir())
    ray = EngineChoice("ray", shard_size=5)
    runs = {"local": (photos, None), "ray": (photos, ray),
            "ray-s3": (open_store(s3_photos), ray), "ray-azure": (open_store(azure_photos), ray)}  # fmt: skip
    results = {}
    for name, (root, engine) in runs.items():
        md, new = detect_cached(
            SizeDetector(),
            root,
            files,
            tmp_path / name,
            dataset="photos",
            engine=engine,
            loader=SizeDetector,
        )
        assert new == len(files), name
        results[name] = md
    failed = [im.file for im in results["local"].images if im.detections is None]
    assert failed == [BROKEN], "the broken photo is a counted failure"
    for name in ("ray", "ray-s3", "ray-azure"):
        assert results[name] == results["local"], name


# ---------------------------------------------------------------- ct-train's crop stage


def test_train_pipeline_crops_on_ray_equal_local(
    ray_cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``crop: {engine: ray}`` in a ``ct-train run`` config: the pipeline's crop stage (on
    the demo source) writes the local engine's crops and manifest, byte for byte."""
    import yaml

    from ct_io.engine_ray import RayEngine
    from ct_train.config import load_config
    from ct_train.pipeline.runner import RAN, run_pipeline

    shards: list[int] = []
    original = RayEngine.run

    def counting(self: RayEngine, steps: Any, todo: Any, progress: Any = None) -> Any:
        shards.append(len(todo))
        return original(self, steps, todo, progress)

    monkeypatch.setattr(RayEngine, "run", counting)
    crops = {}
    for name, engine in (("local", {}), ("ray", {"engine": "ray", "shard_size": 8})):
        run_dir = tmp_path / name
        run_dir.mkdir()
        config = {
            "sources": [{"name": "demo", "options": {"num_images": 24, "num_locations": 3}}],
            "data": {"sources_dir": "data"},
            "crop": {"size": 48, "workers": 1, **engine},
        }
        (run_dir / "config.yml").write_text(yaml.safe_dump(config))
        result = run_pipeline(load_config(run_dir / "config.yml"), stop="crop")
        assert result.ok, result.error
        assert result.stage("crop").status == RAN and result.stage("crop").counts["crops"] > 10
        crops[name] = run_dir / "crops"
        assert bool(shards) == (name == "ray"), "only the ray config ran on Ray"
    assert shards[0] >= 3, "24 photos in shards of 8"
    assert not (crops["ray"] / SHARDS_DIR_NAME).exists(), "shards merged and removed"
    _same_tree(crops["local"], crops["ray"])


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
