"""``ct-io combine``: namespacing, label harmonisation, duplicates, broken images."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ct_io.cct import read_cct, validate_cct
from ct_io.cli import app
from ct_io.combine import CombineInput, combine, read_label_mapping
from ct_io.errors import CamtrapError
from ct_io.problems import errors_only


def write_dataset(
    folder: Path,
    name: str,
    images: list[tuple[str, str, Path | None, dict]],
    *,
    info: dict | None = None,
) -> Path:
    """``images``: (file_name, label, source picture or None for 'not on disk', extra image fields)."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = sorted({lab for _, lab, _, _ in images})
    cats = {lab: i + 1 for i, lab in enumerate(labels)}
    recs, anns = [], []
    for i, (fname, lab, pic, extra) in enumerate(images):
        recs.append(
            {
                "id": i,
                "file_name": fname,
                "location": extra.pop("location", "1"),
                "seq_id": f"s{i}",
                **extra,
            }
        )
        anns.append({"id": i, "image_id": i, "category_id": cats[lab]})
        if pic is not None:
            (folder / fname).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(pic, folder / fname)
    path = folder / f"{name}_cct.json"
    path.write_text(
        json.dumps(
            {
                "info": info or {},
                "images": recs,
                "annotations": anns,
                "categories": [{"id": i, "name": n} for n, i in cats.items()],
            }
        )
    )
    return path


@pytest.fixture()
def two_datasets(tmp_path: Path, md_images: list[Path]) -> tuple[Path, Path]:
    p = md_images
    animl = write_dataset(
        tmp_path / "animl",
        "animl",
        [
            ("cam1/a.jpg", "Rodent", p[0], {}),
            ("cam1/b.jpg", "skunk", p[1], {}),
            ("cam2/c.jpg", "rodent ", p[2], {"corrupt": True}),
            ("cam2/d.jpg", "skunk", None, {}),  # listed, never downloaded
            ("cam2/e.jpg", "person", p[3], {}),
        ],
    )
    lila = write_dataset(
        tmp_path / "rats",
        "rats",
        [
            ("L1/x.jpg", "rat", p[4], {"location": "L1"}),
            ("L1/y.jpg", "Rat", p[0], {"location": "L1"}),  # same bytes as animl's cam1/a.jpg
            (
                "L2/z.jpg",
                "empty",
                p[5],
                {"location": "1"},
            ),  # same location name as animl's, other place
        ],
        info={"lila_dataset": "Rat Island Camera Traps"},
    )
    return animl, lila


def test_combine_namespaces_harmonises_and_drops_what_is_broken(two_datasets, tmp_path):
    animl, lila = two_datasets
    inputs = [CombineInput(animl, "animl", animl.parent), CombineInput(lila, "rats", lila.parent)]
    mapping = {(None, "rodent"): "rat", ("animl", "person"): ""}
    ds, report = combine(inputs, mapping=mapping, dedupe="hash")
    assert errors_only(validate_cct(ds)) == []
    assert ds.images["id"].tolist() == ["animl/0", "animl/1", "rats/0", "rats/2"]
    assert ds.images["file_name"].tolist() == [
        "animl/cam1/a.jpg",
        "animl/cam1/b.jpg",
        "rats/L1/x.jpg",
        "rats/L2/z.jpg",
    ]
    assert ds.images["location"].tolist() == ["animl/1", "animl/1", "rats/L1", "rats/1"]
    assert ds.images["dataset"].tolist() == ["animl", "animl", "rats", "rats"]
    assert ds.category_names == {0: "empty", 1: "rat", 2: "skunk"}
    assert Counter(ds.annotations["category_id"].map(ds.category_names)) == {
        "rat": 2,
        "skunk": 1,
        "empty": 1,
    }
    assert set(ds.annotations["image_id"]) == set(ds.images["id"])
    reasons = {(d["dataset"], d["file_name"]): d["reason"] for d in report.dropped}
    assert reasons == {
        ("animl", "cam2/c.jpg"): "corrupt",
        ("animl", "cam2/d.jpg"): "missing on disk",
        ("animl", "cam2/e.jpg"): "all labels dropped by the mapping",
        ("rats", "L1/y.jpg"): "duplicate of animl/0",
    }
    rows = {r["dataset"]: r for r in report.rows}
    assert (rows["animl"]["images_in"], rows["animl"]["images_out"], rows["animl"]["renamed"]) == (
        5,
        2,
        2,
    )
    assert (rows["rats"]["duplicate"], rows["rats"]["images_out"]) == (1, 2)


def test_path_dedupe_catches_the_same_folder_given_twice(two_datasets):
    animl, _ = two_datasets
    ds, report = combine(
        [CombineInput(animl, "a1", animl.parent), CombineInput(animl, "a2", animl.parent)],
        dedupe="path",
    )
    assert set(ds.images["dataset"]) == {"a1"}
    assert {r["dataset"]: r["duplicate"] for r in report.rows} == {"a1": 0, "a2": 3}


def test_taxonomy_mapping_renames_lila_labels(two_datasets, tmp_path):
    _, lila = two_datasets
    tax = tmp_path / "taxonomy.csv"
    tax.write_text(
        "dataset_name,query,scientific_name,common_name,taxonomy_level,taxonomy_string\nRat Island Camera Traps,rat,rattus,rats,genus,\n"
    )
    runner = CliRunner()
    out = tmp_path / "combined.json"
    res = runner.invoke(
        app,
        [
            "combine",
            f"lila={lila}",
            "-o",
            str(out),
            "--taxonomy",
            str(tax),
            "--taxonomy-field",
            "scientific_name",
        ],
    )
    assert res.exit_code == 0, res.output
    ds = read_cct(out)
    assert sorted(ds.category_names.values()) == ["empty", "rattus"]
    assert "rat → rattus" in res.output


def test_cli_combine_writes_the_file_and_the_dropped_log(two_datasets, tmp_path):
    animl, lila = two_datasets
    mapping = tmp_path / "map.csv"
    mapping.write_text("dataset,original_label,label\n,rodent,rat\naniml,person,\n")
    out = tmp_path / "combined.json"
    res = CliRunner().invoke(
        app,
        [
            "combine",
            str(animl),
            str(lila),
            "-o",
            str(out),
            "--mapping",
            str(mapping),
            "--dedupe",
            "hash",
        ],
    )
    assert res.exit_code == 0, res.output
    ds = read_cct(out)
    assert len(ds.images) == 4 and set(ds.images["dataset"]) == {"animl", "rats"}
    dropped = [
        json.loads(x) for x in (tmp_path / "combined.dropped.jsonl").read_text().splitlines()
    ]
    assert len(dropped) == 4
    assert "missing on disk" in res.output and "duplicate" in res.output and "animl" in res.output


def test_label_mapping_json_forms(tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"Rodent": "rat", "animl": {"Person": None}}))
    assert read_label_mapping(p) == {(None, "rodent"): "rat", ("animl", "person"): ""}


def test_same_name_twice_is_a_clear_error(two_datasets):
    animl, _ = two_datasets
    with pytest.raises(CamtrapError, match="given twice"):
        combine([CombineInput(animl, "a", animl.parent), CombineInput(animl, "a", animl.parent)])


# ---------------------------------------------------------------- issue 15, item 1


def test_images_are_found_where_the_sources_put_them(tmp_path, md_images):
    """The demo source keeps images in ``images/`` beside its CCT; the folder source records
    its images folder in ``info``; neither needs ``--images-dir``."""
    demo = write_dataset(
        tmp_path / "demo" / "images", "demo", [("loc/a.jpg", "fox", md_images[0], {})]
    )
    demo = demo.rename(tmp_path / "demo" / "demo_cct.json")
    elsewhere = tmp_path / "photos"
    folder_cct = write_dataset(elsewhere, "cams", [("c/b.jpg", "deer", md_images[1], {})])
    doc = json.loads(folder_cct.read_text())
    doc["info"] = {"images_dir": str(elsewhere)}
    (tmp_path / "cams").mkdir()
    moved = tmp_path / "cams" / "cams_cct.json"
    moved.write_text(json.dumps(doc))
    out = tmp_path / "combined.json"
    res = CliRunner().invoke(app, ["combine", f"demo={demo}", str(moved), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert read_cct(out).images["file_name"].tolist() == ["demo/loc/a.jpg", "cams/c/b.jpg"]


def test_folder_source_records_where_its_images_are(tmp_path, md_images):
    from ct_io.sources.folder import FolderOptions, FolderSource

    root = tmp_path / "photos"
    (root / "fox").mkdir(parents=True)
    shutil.copy(md_images[0], root / "fox" / "a.jpg")
    fetched = FolderSource(FolderOptions(root=str(root))).fetch(tmp_path / "out")
    ds, _ = combine([CombineInput(fetched.cct_path, "photos")])
    assert ds.images["file_name"].tolist() == ["photos/fox/a.jpg"]


def test_a_dataset_with_no_image_on_disk_is_an_error_naming_the_option(two_datasets, tmp_path):
    animl, _ = two_datasets
    out = tmp_path / "combined.json"
    res = CliRunner().invoke(
        app, ["combine", f"a={animl}", "-o", str(out), "--images-dir", f"a={tmp_path / 'nope'}"]
    )
    assert isinstance(res.exception, CamtrapError)  # one line, exit 2 (``clitools.run_cli``)
    assert "none of its 4 images" in str(res.exception)
    assert "--images-dir a=DIR" in str(res.exception)
    assert not out.exists()


def test_a_result_with_no_image_is_an_error(two_datasets, tmp_path):
    _, lila = two_datasets
    everything_dropped = {(None, lab): "" for lab in ("rat", "empty")}
    with pytest.raises(CamtrapError, match="kept no image"):
        combine([CombineInput(lila, "rats", lila.parent)], mapping=everything_dropped)
