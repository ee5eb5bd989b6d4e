"""The ``lila`` source and ``ct-io lila`` against a fake LILA: an index CSV, zipped CCTs,
the taxonomy mapping and the all-images table on a local HTTP server, images on
GCS/AWS-style HTTP paths and in Azurite (Azure's emulator)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from attrs import frozen
from typer.testing import CliRunner

from ct_io.cct import read_cct
from ct_io.cli import app
from ct_io.errors import CamtrapError
from ct_io.options import ConfigError
from ct_io.sources import fetch
from ct_io.sources.lila import LilaOptions, LilaSource
from ct_io.sources.lila_locations import find_locations
from ct_io.tables import UNKNOWN_LOCATION

pytestmark = pytest.mark.network_server

# (name, short name, [(location or None, label), ...]); one image per entry
DATASETS = [
    (
        "Rat Island Camera Traps",
        "rat-island",
        [
            ("L1", "Rat"),
            ("L1", "rat"),
            ("L1", "mouse"),
            ("L2", "bird"),
            ("L2", "bird"),
            ("L2", "empty"),
            ("L3", "rat"),
            ("L3", "empty"),
            ("L3", "mouse"),
            ("L3", "mouse"),
        ],
    ),
    (
        "Other Cams",
        "other-cams",
        [(None, "deer"), (None, "deer"), (None, "black rat"), (None, "empty")],
    ),
]
# dataset label → (scientific name, common name, [(level, name), ...] most specific first)
TAXA = {
    "rat": ("rattus", "rats", [("genus", "rattus"), ("family", "muridae"), ("class", "mammalia")]),
    "mouse": (
        "mus musculus",
        "house mouse",
        [
            ("species", "mus musculus"),
            ("genus", "mus"),
            ("family", "muridae"),
            ("class", "mammalia"),
        ],
    ),
    "bird": ("aves", "birds", [("class", "aves")]),
    "deer": (
        "odocoileus",
        "deer",
        [("genus", "odocoileus"), ("family", "cervidae"), ("class", "mammalia")],
    ),
    "black rat": (
        "rattus rattus",
        "black rat",
        [
            ("species", "rattus rattus"),
            ("genus", "rattus"),
            ("family", "muridae"),
            ("class", "mammalia"),
        ],
    ),
}
RANK_COLUMNS = ("class", "family", "genus", "species")


@frozen
class FakeLila:
    http: Any  # conftest.FileServer
    azurite: Any  # conftest.Azurite
    index_url: str
    taxonomy_url: str
    all_images_url: str
    images: dict[tuple[str, str], bytes]  # (short name, file_name) → bytes
    entries: dict[str, list[dict[str, Any]]]  # short name → image records


def _taxonomy_string(label: str) -> str:
    _, common, levels = TAXA[label]
    return repr(
        [(i, level, name, [common] if i == 0 else []) for i, (level, name) in enumerate(levels)]
    )


@pytest.fixture(scope="module")
def fake_lila(azurite: Any, md_images: list[Path], file_server_class: Any) -> Any:
    http = file_server_class().start()
    service = azurite.service()
    container = service.get_container_client("lila-wildlife")
    if not container.exists():
        container.create_container(public_access="container")
    pictures = iter(md_images * 2)
    images: dict[tuple[str, str], bytes] = {}
    entries: dict[str, list[dict[str, Any]]] = {}
    index_rows, taxonomy_rows, all_rows = [], [], []
    for name, short, spec in DATASETS:
        labels = sorted({lab.lower() for _, lab in spec})
        cat_ids = {lab: i for i, lab in enumerate(["empty", *[x for x in labels if x != "empty"]])}
        cats = [{"id": i, "name": lab} for lab, i in cat_ids.items()]
        recs, anns = [], []
        for i, (loc, label) in enumerate(spec):
            rel = f"{loc or 'all'}/IMG_{i:04d}.JPG"
            data = next(pictures).read_bytes()
            images[(short, rel)] = data
            rec = {"id": f"{short}-{i}", "file_name": rel, "seq_id": f"seq{i // 2}"}
            if loc is not None:
                rec["location"] = loc
            recs.append(rec)
            anns.append(
                {"id": f"a{i}", "image_id": rec["id"], "category_id": cat_ids[label.lower()]}
            )
            http.files[f"/public-datasets-lila/{short}/{rel}"] = data
            http.files[f"/agentmorris/lila-wildlife/{short}/{rel}"] = data
            container.upload_blob(f"{short}/{rel}", data, overwrite=True)
            lab = label.lower()
            sci, common, levels = TAXA.get(lab, ("", "", []))
            row = {
                "dataset_name": name,
                "url_gcp": "",
                "url_aws": "",
                "url_azure": "",
                "image_id": rec["id"],
                "sequence_id": rec["seq_id"],
                "location_id": f"{name} : {loc}" if loc else "",
                "frame_num": 1,
                "original_label": lab,
                "scientific_name": sci,
                "common_name": common,
                "datetime": "",
                "annotation_level": "image",
            }
            row.update({r: dict((lv, nm) for lv, nm in levels).get(r, "") for r in RANK_COLUMNS})
            all_rows.append(row)
        entries[short] = recs
        cct = json.dumps(
            {"info": {"version": "1"}, "images": recs, "annotations": anns, "categories": cats}
        ).encode()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(f"{short}.json", cct)
        http.files[f"/public-datasets-lila/{short}/{short}.json.zip"] = buf.getvalue()
        http.files[f"/agentmorris/lila-wildlife/{short}/{short}.json.zip"] = buf.getvalue()
        container.upload_blob(f"{short}/{short}.json.zip", buf.getvalue(), overwrite=True)
        index_rows.append(
            {
                "name": name,
                "short_name": short,
                "continent": "Oceania",
                "country": "NZ",
                "region": "",
                "image_base_url_relative": f"{short}/",
                "metadata_url_relative": f"{short}/{short}.json.zip",
                "bbox_url_relative": "",
                "image_base_url_gcp": f"{http.url}/public-datasets-lila/{short}/",
                "metadata_url_gcp": f"{http.url}/public-datasets-lila/{short}/{short}.json.zip",
                "bbox_url_gcp": "",
                "image_base_url_aws": f"{http.url}/agentmorris/lila-wildlife/{short}/",
                "metadata_url_aws": f"{http.url}/agentmorris/lila-wildlife/{short}/{short}.json.zip",
                "bbox_url_aws": "",
                "image_base_url_azure": f"{azurite.account_url}/lila-wildlife/{short}/",
                "metadata_url_azure": f"{azurite.account_url}/lila-wildlife/{short}/{short}.json.zip",
                "box_url_azure": "",
            }
        )
        for lab in labels:
            sci, common, levels = TAXA.get(lab, ("", "", []))
            taxonomy_rows.append(
                {
                    "dataset_name": name,
                    "query": lab,
                    "scientific_name": sci,
                    "common_name": common,
                    "taxonomy_level": levels[0][0] if levels else "",
                    "taxonomy_string": _taxonomy_string(lab) if lab in TAXA else "",
                }
            )
    http.files["/lila_camera_trap_datasets.csv"] = _csv(index_rows)
    http.files["/public/lila-taxonomy-mapping_release.csv"] = _csv(taxonomy_rows)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("lila_image_urls_and_labels.csv", _csv(all_rows))
    http.files["/public/lila_image_urls_and_labels.csv.zip"] = buf.getvalue()
    yield FakeLila(
        http,
        azurite,
        f"{http.url}/lila_camera_trap_datasets.csv",
        f"{http.url}/public/lila-taxonomy-mapping_release.csv",
        f"{http.url}/public/lila_image_urls_and_labels.csv.zip",
        images,
        entries,
    )
    http.stop()


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def expected_files(short: str, keep) -> set[str]:
    spec = dict((s, sp) for _, s, sp in DATASETS)[short]
    return {
        f"{loc or 'all'}/IMG_{i:04d}.JPG"
        for i, (loc, label) in enumerate(spec)
        if keep(loc, label.lower())
    }


def assert_downloaded(lila: FakeLila, short: str, folder: Path, files: set[str]) -> None:
    ds = read_cct(folder / f"{short}_cct.json")
    assert set(ds.images["file_name"]) == files
    for rel in files:
        assert (folder / rel).read_bytes() == lila.images[(short, rel)], rel
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*.JPG")}
    assert on_disk == files


def options(lila: FakeLila, tmp_path: Path, **kw: Any) -> dict[str, Any]:
    return {
        "index": lila.index_url,
        "taxonomy": lila.taxonomy_url,
        "threads": 4,
        "retries": 1,
        **kw,
    }


def test_whole_dataset_from_gcp_style_urls(fake_lila, tmp_path):
    result = fetch(
        "lila",
        tmp_path / "raw",
        options(fake_lila, tmp_path, dataset="Rat Island Camera Traps", cloud="gcp"),
    )
    assert result.name == "rat-island" and result.images_dir == tmp_path / "raw" / "rat-island"
    assert_downloaded(
        fake_lila,
        "rat-island",
        result.images_dir,
        expected_files("rat-island", lambda loc, lab: True),
    )
    assert read_cct(result.cct_path).info["lila_dataset"] == "Rat Island Camera Traps"
    assert fake_lila.http.gets["/public-datasets-lila/rat-island/L1/IMG_0000.JPG"] >= 1


def test_taxon_subset_from_aws_style_urls_uses_the_taxonomy_mapping(fake_lila, tmp_path):
    out = tmp_path / "raw"
    fetch(
        "lila", out, options(fake_lila, tmp_path, dataset="rat-island", cloud="aws", taxa="rattus")
    )
    assert_downloaded(
        fake_lila,
        "rat-island",
        out / "rat-island",
        expected_files("rat-island", lambda loc, lab: lab == "rat"),
    )
    # "black rat" is rattus rattus: found through the genus in its taxonomy string
    fetch(
        "lila",
        out,
        options(fake_lila, tmp_path, dataset="other-cams", cloud="aws", taxa=["Rattus"]),
    )
    assert_downloaded(
        fake_lila,
        "other-cams",
        out / "other-cams",
        expected_files("other-cams", lambda loc, lab: lab == "black rat"),
    )


def test_azure_blob_sdk_downloads_every_image_at_the_locations_holding_the_taxon(
    fake_lila, tmp_path
):
    source = LilaSource(
        LilaOptions(
            **options(
                fake_lila, tmp_path, dataset="rat-island", taxa=["rattus"], locations_of_taxa=True
            )
        )
    )
    result = source.fetch(tmp_path / "raw")
    rat_locations = {loc for loc, lab in DATASETS[0][2] if lab.lower() == "rat"}
    assert rat_locations == {"L1", "L3"}
    assert_downloaded(
        fake_lila,
        "rat-island",
        result.images_dir,
        expected_files("rat-island", lambda loc, lab: loc in rat_locations),
    )
    assert source.report is not None and source.report.downloaded == 7


def test_azure_over_https_with_caps_per_label_and_location(fake_lila, tmp_path):
    opts = options(
        fake_lila, tmp_path, dataset="rat-island", azure_transport="https", max_per_label=1, seed=3
    )
    result = fetch("lila", tmp_path / "raw", opts)
    ds = read_cct(result.cct_path)
    labels = Counter(ds.annotations["category_id"].map(ds.category_names))
    assert labels == {"empty": 1, "rat": 1, "mouse": 1, "bird": 1}
    for rel in ds.images["file_name"]:
        assert (result.images_dir / rel).read_bytes() == fake_lila.images[("rat-island", rel)]
    capped = fetch(
        "lila",
        tmp_path / "raw2",
        options(fake_lila, tmp_path, dataset="rat-island", cloud="gcp", max_per_location=2),
    )
    per_location = Counter(read_cct(capped.cct_path).images["location"])
    assert per_location == {"L1": 2, "L2": 2, "L3": 2}


def test_rerun_downloads_nothing_again(fake_lila, tmp_path):
    opts = options(fake_lila, tmp_path, dataset="other-cams", cloud="gcp")
    fetch("lila", tmp_path / "raw", opts)
    gets = sum(n for p, n in fake_lila.http.gets.items() if p.endswith(".JPG"))
    source = LilaSource(LilaOptions(**opts))
    source.fetch(tmp_path / "raw")
    assert source.report is not None and (source.report.downloaded, source.report.skipped) == (0, 4)
    assert sum(n for p, n in fake_lila.http.gets.items() if p.endswith(".JPG")) == gets


def test_locations_query_lists_every_location_holding_the_taxon(fake_lila, tmp_path):
    from ct_io.sources.lila_meta import local_copy

    table = find_locations(local_copy(fake_lila.all_images_url, tmp_path), ["rattus"])
    got = {(r.dataset, r.location): (r.taxon_images, r.total_images) for r in table.itertuples()}
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    for name, _, spec in DATASETS:
        for loc in {loc for loc, _ in spec}:
            here = [lab.lower() for lc, lab in spec if lc == loc]
            rats = sum(1 for lab in here if lab in ("rat", "black rat"))
            if rats:
                expected[(name, loc or UNKNOWN_LOCATION)] = (rats, len(here))
    assert got == expected
    l3 = table[(table["dataset"] == "Rat Island Camera Traps") & (table["location"] == "L3")].iloc[
        0
    ]
    assert l3["taxon_labels"] == "rat:1" and l3["other_labels"] == "mouse:2; empty:1"


def test_cli_locations_then_download_that_subset_from_two_datasets(fake_lila, tmp_path):
    runner = CliRunner()
    locs = tmp_path / "rat_locations.csv"
    cache = ["--metadata-dir", str(tmp_path / "cache")]
    res = runner.invoke(
        app,
        [
            "lila",
            "locations",
            "--taxon",
            "rattus",
            "--all-images",
            fake_lila.all_images_url,
            "-o",
            str(locs),
            *cache,
        ],
    )
    assert res.exit_code == 0, res.output
    assert "3 locations hold rattus" in res.output
    out = tmp_path / "data"
    res = runner.invoke(
        app,
        [
            "lila",
            "download",
            str(out),
            "--from-locations",
            str(locs),
            "--index",
            fake_lila.index_url,
            "--threads",
            "4",
            *cache,
        ],
    )
    assert res.exit_code == 0, res.output
    assert_downloaded(
        fake_lila,
        "rat-island",
        out / "rat-island",
        expected_files("rat-island", lambda loc, lab: loc in ("L1", "L3")),
    )
    assert_downloaded(
        fake_lila,
        "other-cams",
        out / "other-cams",
        expected_files("other-cams", lambda loc, lab: True),
    )
    assert "ct-io combine" in res.output


def test_cli_datasets_lists_the_index(fake_lila, tmp_path):
    res = CliRunner().invoke(
        app, ["lila", "datasets", "--index", fake_lila.index_url, "--metadata-dir", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    assert "Rat Island Camera Traps" in res.output and "other-cams" in res.output


def test_missing_blob_is_logged_and_the_cli_exits_1(fake_lila, tmp_path):
    fake_lila.azurite.service().get_container_client("lila-wildlife").delete_blob(
        "other-cams/all/IMG_0003.JPG"
    )
    res = CliRunner().invoke(
        app,
        [
            "lila",
            "download",
            str(tmp_path / "d"),
            "-d",
            "Other Cams",
            "--index",
            fake_lila.index_url,
            "--retries",
            "0",
        ],
    )
    assert res.exit_code == 1, res.output
    log = [
        json.loads(x)
        for x in (tmp_path / "d" / "other-cams" / "download_failures.jsonl")
        .read_text()
        .splitlines()
    ]
    assert [(x["dest"], x["kind"], x["status"]) for x in log] == [
        ("all/IMG_0003.JPG", "not_found", 404)
    ]
    assert len(read_cct(tmp_path / "d" / "other-cams" / "other-cams_cct.json").images) == 3


def test_local_copies_of_the_metadata_work_offline(fake_lila, tmp_path):
    index = tmp_path / "index.csv"
    index.write_bytes(fake_lila.http.files["/lila_camera_trap_datasets.csv"])
    zipped = tmp_path / "other-cams.json.zip"
    zipped.write_bytes(fake_lila.http.files["/public-datasets-lila/other-cams/other-cams.json.zip"])
    gets = fake_lila.http.gets["/public-datasets-lila/other-cams/other-cams.json.zip"]
    opts = {"dataset": "other-cams", "cloud": "gcp", "index": str(index), "metadata": str(zipped)}
    result = fetch("lila", tmp_path / "raw", opts)
    assert len(read_cct(result.cct_path).images) == 4
    assert fake_lila.http.gets["/public-datasets-lila/other-cams/other-cams.json.zip"] == gets


def test_unknown_dataset_suggests_close_names(fake_lila, tmp_path):
    with pytest.raises(CamtrapError, match="did you mean 'rat-island'"):
        fetch("lila", tmp_path, options(fake_lila, tmp_path, dataset="rat-islnd"))


def test_bad_options_give_one_line_each(tmp_path):
    with pytest.raises(ConfigError) as err:
        fetch(
            "lila",
            tmp_path,
            {"dataset": "x", "cloud": "dropbox", "max_per_label": 0, "colour": "red"},
        )
    lines = err.value.lines
    assert len(lines) == 2
    assert lines[0].startswith("$.cloud:") and "dropbox" in lines[0]
    assert "colour" in lines[1]
    with pytest.raises(ConfigError, match="max_per_label must be at least 1"):
        fetch("lila", tmp_path, {"dataset": "x", "max_per_label": 0})


def test_console_script_exit_codes(fake_lila, tmp_path):
    """Through the real entry point: 1 when an image failed, 2 with one line for bad input."""
    import subprocess
    import sys

    missing = "/public-datasets-lila/rat-island/L2/IMG_0003.JPG"
    fake_lila.http.always[missing] = 404
    cmd = [sys.executable, "-c", "from ct_io.cli import main; main()", "lila", "download"]
    try:
        args = [
            str(tmp_path / "d"),
            "-d",
            "rat-island",
            "--cloud",
            "gcp",
            "--index",
            fake_lila.index_url,
            "--retries",
            "0",
        ]
        done = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)
    finally:
        del fake_lila.http.always[missing]
    assert done.returncode == 1, done.stdout + done.stderr
    assert "not_found" in done.stdout
    bad = subprocess.run([*cmd, str(tmp_path / "e")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "say what to download" in bad.stderr and "Traceback" not in bad.stderr
