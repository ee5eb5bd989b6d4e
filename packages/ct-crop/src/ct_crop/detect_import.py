"""``ct-crop detect --import MD.json``: detections made elsewhere into the detector cache.

The seed's ``cache_batchapi_outputs.py``: an MD JSON from a batch service, another
machine or another tool is merged into ``<cache_dir>/<detector version>/<dataset>.json``,
so those images are never detected again. An image already in the cache keeps its cached
entry unless that entry is a failure and the imported one is not. The file is validated
as it is read (paths that would escape the images folder are refused there); a cache
whose detection categories differ from the imported file's is an error rather than a
silent mix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from attrs import define, field

from ct_crop.boxes import safe_detector_version
from ct_crop.detect import cache_path, load_cache, save_cache
from ct_io.errors import CamtrapError
from ct_io.md import MDInfo, MDResults, read_md


@define
class ImportReport:
    """What an import did, and the cached detections of the images a run wants."""

    version: str
    path: Path
    added: int = 0
    replaced_failures: int = 0
    kept: int = 0
    #: The wanted images the cache holds, and those it does not (a detector must see them).
    results: MDResults | None = None
    missing: list[str] = field(factory=list)

    def summary(self) -> str:
        """One line for the console."""
        parts = [f"{self.added} added"]
        if self.replaced_failures:
            parts.append(f"{self.replaced_failures} failures replaced")
        if self.kept:
            parts.append(f"{self.kept} already cached, kept")
        return f"imported into {self.path} (detector version {self.version}): " + ", ".join(parts)


def cache_version_of(md: MDResults, given: str | None) -> str:
    """The cache's version key: ``given``, else the file's ``info.detector`` (its stem when it
    names a model file, ``md_v5a.0.0.pt`` → ``md_v5a.0.0``, as the megadetector plugin does)."""
    name = given or md.info.detector
    if not name:
        raise CamtrapError(
            "the MD JSON names no detector (info.detector): pass --detector-version, the "
            "version your detector plugin reports (e.g. md_v5a.0.0)"
        )
    name = str(name)
    if Path(name).suffix.lower() in (".pt", ".pb", ".onnx", ".torchscript"):
        name = Path(name).stem
    return safe_detector_version(name)


def import_detections(
    source: Path,
    cache_dir: Path,
    dataset: str,
    *,
    version: str | None = None,
    wanted: Sequence[str] = (),
) -> ImportReport:
    """Merge the MD JSON ``source`` into the cache of ``dataset``; then look up ``wanted``."""
    md = read_md(source)
    ver = cache_version_of(md, version)
    path = cache_path(cache_dir, ver, dataset)
    cache = load_cache(path)
    categories = dict(md.detection_categories)
    if path.is_file():
        cached = dict(read_md(path).detection_categories)
        if cached != categories:
            raise CamtrapError(
                f"{source}: detection categories {categories} differ from the cache's {cached} "
                f"({path}) — import into another --cache-dir, or use the same detector's output"
            )
    report = ImportReport(version=ver, path=path)
    for image in md.images:
        file = image.file
        old = cache.get(file)
        if old is None:
            report.added += 1
        elif old.detections is None and image.detections is not None:
            report.replaced_failures += 1
        else:
            report.kept += 1
            continue
        cache[file] = image
    save_cache(cache, path, ver, categories)
    found = [cache[f] for f in dict.fromkeys(wanted) if f in cache]
    report.results = MDResults(
        info=MDInfo(detector=ver), detection_categories=categories, images=found
    )
    report.missing = [f for f in dict.fromkeys(wanted) if f not in cache]
    return report


def check_same_version(report: ImportReport, detector_version: str) -> None:
    """The detector that will see the missing images must read and write the same cache."""
    if safe_detector_version(detector_version) != report.version:
        raise CamtrapError(
            f"the imported detections are cached as version {report.version}, but the detector "
            f"reports {detector_version}: pass --detector-version {detector_version} to import "
            f"under its version, or set the detector's version option (-o version={report.version})"
        )
