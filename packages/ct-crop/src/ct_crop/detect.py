"""Run a detector on images that lack ground-truth boxes, with a per-version cache.

The cache is the seed's ``mdcache/``: ``<cache_dir>/<detector version>/<dataset>.json``,
an MD JSON file holding every image ever detected with that detector version. A rerun
detects only images not in the cache, so nothing is detected twice (a video clip is
cached as one per-video entry, whatever frame sampling made it); the cache is saved
atomically every ``checkpoint_every`` images, so an interrupted run keeps its work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from attrs import frozen

from ct_crop.boxes import safe_detector_version
from ct_crop.detectors import detection_categories
from ct_crop.video_detect import DEFAULT_SAMPLING, detect_media
from ct_io.errors import CamtrapError
from ct_io.md import MDImage, MDInfo, MDResults, read_md, write_md
from ct_io.paths import unsafe_reason
from ct_io.video import Sampling, is_video_file

if TYPE_CHECKING:
    from rich.progress import Progress

    from ct_io.cct import CocoCameraTraps
    from ct_io.engines import EngineChoice
    from ct_io.hookspecs import Detector
    from ct_io.storage import ImageStore


def cache_path(cache_dir: Path, version: str, dataset: str) -> Path:
    """Where detections of ``dataset`` by detector ``version`` are cached."""
    return cache_dir / safe_detector_version(version) / f"{safe_detector_version(dataset)}.json"


def load_cache(path: Path) -> dict[str, MDImage]:
    """Cached entries by file (empty when there is no cache yet)."""
    return read_md(path).by_file() if path.is_file() else {}


def images_without_boxes(cct: CocoCameraTraps) -> list[str]:
    """Files of the CCT's images that have no ground-truth box and are not only ``empty``."""
    ann = cct.annotations
    names = cct.category_names
    empty_ids = {cid for cid, name in names.items() if str(name).lower() == "empty"}
    with_box: set[object] = set()
    non_empty: set[object] = set()
    if len(ann):
        if "bbox_x" in ann.columns:
            with_box = set(ann.loc[ann["bbox_x"].notna(), "image_id"].tolist())
        non_empty = set(ann.loc[~ann["category_id"].isin(list(empty_ids)), "image_id"].tolist())
    ids = cct.images["id"].tolist()
    files = cct.images["file_name"].tolist()
    return sorted(
        f for i, f in zip(ids, files, strict=True) if i not in with_box and i in non_empty
    )


def images_to_detect(
    images_dir: Path | ImageStore, *, cct: Path | None = None, files: Path | None = None
) -> list[str]:
    """The images a detector should see: a CCT's images without ground-truth boxes, those
    listed in a text file (one path per line), or every image and video clip under
    ``images_dir`` (a folder, or an object store: listed there)."""
    store = None if isinstance(images_dir, Path) else images_dir
    if store is None and not images_dir.is_dir():  # type: ignore[union-attr]
        raise CamtrapError(f"images folder {images_dir} does not exist")
    if cct is not None:
        from ct_io.cct import read_cct

        return images_without_boxes(read_cct(cct))
    if files is not None:
        if not files.is_file():
            raise CamtrapError(f"{files}: file not found")
        lines = files.read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip()]
    from ct_crop.images import IMAGE_EXTENSIONS, is_image_name

    if store is not None:
        from ct_io.video import VIDEO_EXTENSIONS

        return store.list_files((*IMAGE_EXTENSIONS, *VIDEO_EXTENSIONS))
    assert isinstance(images_dir, Path)
    return sorted(
        p.relative_to(images_dir).as_posix()
        for p in images_dir.rglob("*")
        if p.is_file() and (is_image_name(p.name) or is_video_file(p.name))
    )


def detect_cached(
    detector: Detector,
    images_dir: Path | ImageStore,
    files: Sequence[str],
    cache_dir: Path,
    *,
    dataset: str,
    retry_failures: bool = False,
    checkpoint_every: int = 200,
    on_image: Callable[[MDImage], None] | None = None,
    sampling: Sampling = DEFAULT_SAMPLING,
    engine: EngineChoice | None = None,
    loader: Callable[[], Detector] | None = None,
    progress: Progress | None = None,
) -> tuple[MDResults, int]:
    """Detections for ``files`` (from the cache or the detector); returns them and how many were new.

    Video clips among ``files`` are detected on their ``sampling`` frames and cached as
    MegaDetector per-video entries (:mod:`ct_crop.video_detect`). ``images_dir`` may be
    an object store (:mod:`ct_crop.store_detect` stages its photos in small batches). With
    a distributed ``engine`` (``ray``), ``loader`` builds the detector once per worker (e.g.
    ``functools.partial(get_detector, name, options)``) and ``progress`` shows the shards.
    """
    version = str(detector.version)
    path = cache_path(cache_dir, version, dataset)
    cache = load_cache(path)
    categories = detection_categories(detector)
    todo = [
        f
        for f in dict.fromkeys(files)
        if f not in cache or (retry_failures and cache[f].detections is None)
    ]
    bad = [f for f in todo if unsafe_reason(f)]
    if bad:
        raise CamtrapError(
            f"refusing image path {bad[0]!r}: {unsafe_reason(bad[0])} (paths must be relative to {_where(images_dir)})"
        )
    new = 0
    if todo:
        entries: Iterable[MDImage]
        if engine is not None and engine.engine != "local":
            if loader is None:
                raise CamtrapError(f"--engine {engine.engine} needs a detector loader")
            entries = _detect_sharded(path, images_dir, todo, sampling, engine, loader, progress)
        else:
            entries = _media(detector, images_dir, todo, sampling)
        for entry in _checked(entries, set(todo)):
            cache[entry.file] = entry
            new += 1
            if on_image is not None:
                on_image(entry)
            if new % checkpoint_every == 0:
                save_cache(cache, path, version, categories)
        save_cache(cache, path, version, categories)
    images = [cache[f] for f in dict.fromkeys(files) if f in cache]
    return MDResults(
        info=MDInfo(detector=version), detection_categories=categories, images=images
    ), new


#: Images per shard with a distributed engine (``--shard-size`` changes it).
SHARD_IMAGES = 64


@frozen
class _DetectorModel:
    """The engine's ``model`` step: the detector, built once per worker."""

    load: Callable[[], Detector]
    images_dir: Path | ImageStore
    sampling: Sampling

    def __call__(self) -> Callable[[Sequence[str]], list[MDImage]]:
        detector = self.load()
        return lambda files: list(_media(detector, self.images_dir, files, self.sampling))


def _media(
    detector: Detector, images_dir: Path | ImageStore, files: Sequence[str], sampling: Sampling
) -> Iterator[MDImage]:
    """Entries for ``files`` from a folder, or from an object store (staged in batches)."""
    if isinstance(images_dir, Path):
        return detect_media(detector, images_dir, files, sampling)
    from ct_crop.store_detect import detect_store

    return detect_store(detector, images_dir, files, sampling)


def _files(files: Sequence[str]) -> Sequence[str]:
    """The ``prepare`` step of a detect shard: the detector reads its files itself."""
    return files


def _detect_sharded(
    cache: Path,
    images_dir: Path | ImageStore,
    todo: Sequence[str],
    sampling: Sampling,
    engine: EngineChoice,
    loader: Callable[[], Detector],
    progress: Progress | None,
) -> Iterator[MDImage]:
    """Detect ``todo`` on a distributed engine: shards beside the cache file, yielded in
    order once all are written (a rerun after a killed run skips the finished shards)."""
    import shutil

    from ct_io.engines import JobSteps, read_shards

    steps = JobSteps(
        "detecting",
        cache.with_name(cache.name + ".shards"),
        _files,
        model=_DetectorModel(loader, images_dir, sampling),
    )
    shards = engine.shards(todo, SHARD_IMAGES, salt="detect")
    engine.build().run(steps, shards, progress)
    for _, entries in read_shards(steps, shards):
        yield from entries
    shutil.rmtree(steps.shard_dir, ignore_errors=True)


def _checked(entries: Iterable[MDImage], wanted: set[str]) -> Iterable[MDImage]:
    for entry in entries:
        if entry.file not in wanted:
            raise CamtrapError(
                f"detector returned an entry for {entry.file!r}, which it was not asked about"
            )
        yield entry


def save_cache(
    cache: dict[str, MDImage], path: Path, version: str, categories: dict[str, str]
) -> None:
    """Write the cache (every entry, sorted by file) atomically."""
    images = [cache[f] for f in sorted(cache)]
    write_md(
        MDResults(info=MDInfo(detector=version), detection_categories=categories, images=images),
        path,
    )


def _where(images_dir: Path | ImageStore) -> str:
    return str(images_dir) if isinstance(images_dir, Path) else images_dir.display()
