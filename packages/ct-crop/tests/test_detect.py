from __future__ import annotations

import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pytest
from attrs import define
from typer.testing import CliRunner

from ct_crop.detect import cache_path, detect_cached, images_without_boxes
from ct_crop.detectors import get_detector, list_detectors
from ct_io import hookimpl
from ct_io.cct import from_records
from ct_io.errors import PluginError
from ct_io.md import MDDetection, MDImage, read_md
from ct_io.options import ConfigError
from ct_io.plugins import make_plugin_manager


@define
class FakeOptions:
    version: str = "fake-1.0"
    fail_on: str = ""


class FakeDetector:
    """A detector defined by the test: one box per image, counts what it is asked."""

    calls: ClassVar[list[list[str]]] = []

    def __init__(self, options: FakeOptions) -> None:
        self.version = options.version
        self.fail_on = options.fail_on

    def detect(self, images_dir: Path, files: Sequence[str]) -> Iterator[MDImage]:
        FakeDetector.calls.append(list(files))
        for f in files:
            if f == self.fail_on:
                yield MDImage(f, None, failure="cannot read")
            else:
                yield MDImage(f, [MDDetection("1", 0.9, [0.1, 0.2, 0.3, 0.4])])


@hookimpl
def ct_register_detectors(register):  # type: ignore[no-untyped-def]
    register("fake", FakeDetector, options=FakeOptions, description="test detector")


@pytest.fixture()
def pm():  # type: ignore[no-untyped-def]
    manager = make_plugin_manager(load_entry_points=False)
    manager.register_plugin(
        types.SimpleNamespace(ct_register_detectors=ct_register_detectors),
        "fake-plugin",
        distribution="tests",
    )
    FakeDetector.calls = []
    return manager


def test_accessors_build_registered_detectors(pm) -> None:  # type: ignore[no-untyped-def]
    assert [r.name for r in list_detectors(pm)] == ["fake"]
    det = get_detector("fake", {"version": "v9"}, pm)
    assert det.version == "v9"
    with pytest.raises(PluginError, match="did you mean 'fake'"):
        get_detector("fak", pm=pm)
    with pytest.raises(ConfigError, match="colour"):
        get_detector("fake", {"colour": "red"}, pm)


def test_megadetector_is_a_builtin_that_never_downloads(tmp_path: Path) -> None:
    regs = {r.name: r for r in list_detectors(make_plugin_manager())}
    assert regs["megadetector"].distribution == "ct-crop"
    with pytest.raises((PluginError, ConfigError)) as info:
        get_detector("megadetector", {"model_file": "MDV5A"}, make_plugin_manager())
    assert "pip install megadetector" in str(info.value) or "never downloads" in str(info.value)


def test_detections_are_cached_per_version_and_never_redone(pm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    det = get_detector("fake", {"fail_on": "b.jpg"}, pm)
    cache = tmp_path / "mdcache"
    results, new = detect_cached(det, tmp_path, ["a.jpg", "b.jpg"], cache, dataset="ds")
    assert new == 2 and FakeDetector.calls == [["a.jpg", "b.jpg"]]
    assert [im.file for im in results.images] == ["a.jpg", "b.jpg"]
    assert results.images[1].failure == "cannot read" and results.info.detector == "fake-1.0"
    assert cache_path(cache, "fake-1.0", "ds").is_file()
    results, new = detect_cached(det, tmp_path, ["c.jpg", "a.jpg", "b.jpg"], cache, dataset="ds")
    assert new == 1 and FakeDetector.calls[-1] == ["c.jpg"]
    assert [im.file for im in results.images] == ["c.jpg", "a.jpg", "b.jpg"]
    _, new = detect_cached(det, tmp_path, ["b.jpg"], cache, dataset="ds", retry_failures=True)
    assert new == 1 and FakeDetector.calls[-1] == ["b.jpg"]
    # another detector version has its own cache
    other = get_detector("fake", {"version": "fake-2.0"}, pm)
    _, new = detect_cached(other, tmp_path, ["a.jpg"], cache, dataset="ds")
    assert new == 1
    assert sorted(p.name for p in cache.iterdir()) == ["fake-1.0", "fake-2.0"]
    assert {im.file for im in read_md(cache_path(cache, "fake-1.0", "ds")).images} == {
        "a.jpg",
        "b.jpg",
        "c.jpg",
    }


def test_images_without_boxes_skips_boxed_and_empty_images() -> None:
    cct = from_records(
        [{"id": i, "file_name": f"{i}.jpg", "location": "x"} for i in range(4)],
        [
            {"id": 0, "image_id": 0, "category_id": 1, "bbox": [1, 2, 3, 4]},
            {"id": 1, "image_id": 1, "category_id": 1},
            {"id": 2, "image_id": 2, "category_id": 0},
        ],
        [{"id": 0, "name": "empty"}, {"id": 1, "name": "deer"}],
    )
    assert images_without_boxes(cct) == ["1.jpg"]


def test_detect_cli_with_a_plugin_then_crop(
    pm, md_test: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from ct_crop import cli
    from ct_io import plugins

    monkeypatch.setattr(plugins, "get_plugin_manager", lambda: pm)
    files = tmp_path / "files.txt"
    names = sorted(p.name for p in (md_test / "images").iterdir())[:2]
    files.write_text("\n".join(names))
    runner = CliRunner()
    args = [
        "detect",
        str(md_test / "images"),
        str(tmp_path / "det.json"),
        "--detector",
        "fake",
        "--files",
        str(files),
        "--cache-dir",
        str(tmp_path / "mdcache"),
    ]
    r = runner.invoke(cli.app, args)
    assert r.exit_code == 0, r.output
    assert "2 detected now" in r.output
    r = runner.invoke(cli.app, args)
    assert "0 detected now, 2 from the cache" in r.output and len(FakeDetector.calls) == 1
    r = runner.invoke(
        cli.app,
        [
            "crop",
            str(tmp_path / "crops"),
            "-i",
            str(md_test / "images"),
            "-d",
            str(tmp_path / "det.json"),
            "-w",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "crops").glob("*.jpg")) == [
        f"{n}___crop00_fake-1.0.jpg" for n in names
    ]


# ---------------------------------------------------------------- --import (the seed's cache_batchapi_outputs.py)


def _detect_args(md_test: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "detect",
        str(md_test / "images"),
        str(tmp_path / "det.json"),
        "--detector",
        "fake",
        "--cache-dir",
        str(tmp_path / "mdcache"),
        "--dataset",
        "md",
        *extra,
    ]


def test_import_fills_the_cache_and_nothing_is_detected_again(
    pm, md_test: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The real MD v5a output of the fixture, made elsewhere, imported: no detector runs."""
    from ct_crop import cli
    from ct_io import plugins

    monkeypatch.setattr(plugins, "get_plugin_manager", lambda: pm)
    md_json = md_test / "md_output_v5a.json"
    theirs = read_md(md_json)
    args = _detect_args(md_test, tmp_path, "--import", str(md_json), "-o", "version=v5a")
    r = CliRunner().invoke(cli.app, [*args, "--detector-version", "v5a"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert f"{len(theirs.images)} added" in r.output and FakeDetector.calls == []
    cached = read_md(cache_path(tmp_path / "mdcache", "v5a", "md"))
    assert [im.file for im in cached.images] == sorted(im.file for im in theirs.images)
    out = read_md(tmp_path / "det.json")
    assert {im.file: im.detections for im in out.images} == {
        im.file: im.detections for im in theirs.images
    }
    # a later plain run with a detector of that version finds everything in the cache
    r = CliRunner().invoke(cli.app, [*_detect_args(md_test, tmp_path), "-o", "version=v5a"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert f"0 detected now, {len(theirs.images)} from the cache" in r.output
    assert FakeDetector.calls == []


def test_import_then_detect_only_what_the_file_lacks(
    pm, md_test: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import json

    from ct_crop import cli
    from ct_io import plugins

    monkeypatch.setattr(plugins, "get_plugin_manager", lambda: pm)
    doc = json.loads((md_test / "md_output_v5a.json").read_text())
    doc["info"]["detector"] = "fake-1.0.pt"  # a model file name: the cache key is its stem
    lacking = doc["images"].pop()["file"]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(doc))
    r = CliRunner().invoke(cli.app, _detect_args(md_test, tmp_path, "--import", str(partial)))
    assert r.exit_code == 0, (r.output, r.exception)
    assert FakeDetector.calls == [[lacking]]
    assert "1 detected now" in r.output
    assert len(read_md(tmp_path / "det.json").images) == len(doc["images"]) + 1


def test_import_under_another_version_than_the_detector_is_an_error(
    pm, md_test: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import json

    from ct_crop import cli
    from ct_io import plugins
    from ct_io.errors import CamtrapError

    monkeypatch.setattr(plugins, "get_plugin_manager", lambda: pm)
    doc = json.loads((md_test / "md_output_v5a.json").read_text())
    doc["images"].pop()
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(doc))
    r = CliRunner().invoke(cli.app, _detect_args(md_test, tmp_path, "--import", str(partial)))
    assert isinstance(r.exception, CamtrapError)
    assert "cached as version megadetector_v5_camonly" in str(r.exception)
    assert "--detector-version fake-1.0" in str(r.exception)
    assert FakeDetector.calls == []


def test_import_keeps_cached_entries_and_replaces_failures(tmp_path: Path) -> None:
    from ct_crop.detect_import import import_detections
    from ct_io.md import MDInfo, MDResults, write_md

    def md(*images: MDImage) -> Path:
        path = tmp_path / f"in{len(list(tmp_path.glob('in*')))}.json"
        write_md(MDResults(info=MDInfo(detector="v1"), images=list(images)), path)
        return path

    box = [MDDetection("1", 0.9, [0.1, 0.2, 0.3, 0.4])]
    other = [MDDetection("1", 0.5, [0.5, 0.5, 0.1, 0.1])]
    first = import_detections(
        md(MDImage("a.jpg", box), MDImage("b.jpg", None, failure="x")), tmp_path / "c", "d"
    )
    assert (first.added, first.kept) == (2, 0)
    second = import_detections(
        md(MDImage("a.jpg", other), MDImage("b.jpg", box)),
        tmp_path / "c",
        "d",
        wanted=["a.jpg", "b.jpg", "z.jpg"],
    )
    assert (second.added, second.replaced_failures, second.kept) == (0, 1, 1)
    assert second.missing == ["z.jpg"]
    assert second.results is not None
    by_file = second.results.by_file()
    assert by_file["a.jpg"].detections == box and by_file["b.jpg"].detections == box
