"""Image lists for external copy tools (the seed's json_to_azcopy_list.py) and downloading
such a list back, against a real local HTTP server standing in for a cloud bucket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ct_io.cli import app
from ct_io.errors import CamtrapError
from ct_io.url_lists import plan_list_download, selection_files

pytestmark = pytest.mark.network_server

FILES = {"rats": ["L1/IMG 0001.JPG", "L2/IMG_0002.JPG"], "cams": ["all/a.jpg"]}


@pytest.fixture()
def bucket(http_server, md_images, tmp_path):  # type: ignore[no-untyped-def]
    """The images on the server, a LILA index naming ``rats``, a selection of both datasets."""
    pictures = iter(md_images)
    data = {}
    for name, files in FILES.items():
        for rel in files:
            data[(name, rel)] = next(pictures).read_bytes()
            http_server.files[f"/lila/{name}/{rel}"] = data[(name, rel)]
    index = tmp_path / "index.csv"
    index.write_text(
        "name,short_name,image_base_url_gcp,image_base_url_azure\n"
        f"Rat Island,rats,{http_server.url}/lila/rats/,"
        f"{http_server.url}/lila/rats?sv=1&sig=SECRET\n"
    )
    selection = tmp_path / "queried_images.json"
    selection.write_text(
        json.dumps(
            {
                f"{name}/{rel}": {"dataset": name, "location": "x", "class": "c", "label": ["c"]}
                for name, files in FILES.items()
                for rel in files
            }
        )
    )
    return http_server, index, selection, data


def test_urls_then_download_brings_every_image_to_its_path(bucket, tmp_path):  # type: ignore[no-untyped-def]
    server, index, selection, data = bucket
    lists = tmp_path / "lists"
    cams = f"{server.url}/lila/cams"
    res = CliRunner().invoke(
        app,
        ["urls", str(selection), str(lists), "--index", str(index), "--base-url", f"cams={cams}"],
    )
    assert res.exit_code == 0, (res.output, res.exception)
    rats = (lists / "rats_images.txt").read_text().splitlines()
    assert rats == [
        f"{server.url}/lila/rats/L1/IMG%200001.JPG",
        f"{server.url}/lila/rats/L2/IMG_0002.JPG",
    ]
    assert (lists / "cams_images.txt").read_text().splitlines() == [f"{cams}/all/a.jpg"]
    for name, base in (("rats", None), ("cams", cams)):
        args = ["download", str(lists / f"{name}_images.txt"), str(tmp_path / "dl" / name)]
        res = CliRunner().invoke(app, args + (["--base-url", base] if base else []))
        assert res.exit_code == 0, (res.output, res.exception)
        for rel in FILES[name]:
            assert (tmp_path / "dl" / name / rel).read_bytes() == data[(name, rel)]


def test_paths_for_azcopy_keep_the_sas_token_out_of_the_list(bucket, tmp_path):  # type: ignore[no-untyped-def]
    server, index, selection, data = bucket
    lists = tmp_path / "lists"
    res = CliRunner().invoke(
        app,
        [
            *("urls", str(selection), str(lists), "--index", str(index), "--cloud", "azure"),
            *("--format", "paths", "--base-url", f"cams={server.url}/lila/cams"),
        ],
    )
    assert res.exit_code == 0, (res.output, res.exception)
    listed = (lists / "rats_images.txt").read_text()
    assert listed.splitlines() == FILES["rats"] and "SECRET" not in listed + res.output
    res = CliRunner().invoke(
        app,
        [
            *("download", str(lists / "rats_images.txt"), str(tmp_path / "dl")),
            *("--base-url", f"{server.url}/lila/rats?sv=1&sig=SECRET"),
        ],
    )
    assert res.exit_code == 0, (res.output, res.exception)
    assert "SECRET" not in res.output
    assert (tmp_path / "dl" / "L1" / "IMG 0001.JPG").read_bytes() == data[
        ("rats", "L1/IMG 0001.JPG")
    ]


def test_a_missing_file_is_counted_and_the_rest_arrive(bucket, tmp_path):  # type: ignore[no-untyped-def]
    server, _, _, data = bucket
    image_list = tmp_path / "list.txt"
    image_list.write_text(
        f"# rats\n{server.url}/lila/rats/L2/IMG_0002.JPG\n{server.url}/lila/rats/L9/gone.jpg\n"
    )
    res = CliRunner().invoke(
        app,
        [
            "download",
            str(image_list),
            str(tmp_path / "dl"),
            "--base-url",
            f"{server.url}/lila/rats/",
        ],
    )
    assert res.exit_code == 1
    assert (tmp_path / "dl" / "L2" / "IMG_0002.JPG").read_bytes() == data[
        ("rats", "L2/IMG_0002.JPG")
    ]
    assert "not_found" in (tmp_path / "dl" / "download_failures.jsonl").read_text()


def test_a_dataset_with_no_url_names_the_option(bucket, tmp_path):  # type: ignore[no-untyped-def]
    _, index, selection, _ = bucket
    res = CliRunner().invoke(app, ["urls", str(selection), str(tmp_path), "--index", str(index)])
    assert isinstance(res.exception, CamtrapError)
    assert "no LILA dataset called 'cams'" in str(res.exception)


def test_a_combined_cct_lists_each_dataset_under_its_own_folder(tmp_path: Path) -> None:
    cct = tmp_path / "combined_cct.json"
    cct.write_text(
        json.dumps(
            {
                "info": {},
                "images": [
                    {"id": "a/1", "file_name": "a/x/1.jpg", "dataset": "a"},
                    {"id": "b/2", "file_name": "b/2.jpg", "dataset": "b"},
                ],
                "annotations": [],
                "categories": [],
            }
        )
    )
    assert selection_files(cct) == {"a": ["x/1.jpg"], "b": ["2.jpg"]}


def test_list_entries_are_checked() -> None:
    with pytest.raises(CamtrapError, match="mixes"):
        plan_list_download(["https://h/b/a.jpg", "c.jpg"])
    with pytest.raises(CamtrapError, match="give --base-url"):
        plan_list_download(["a.jpg"])
    with pytest.raises(CamtrapError, match="refusing"):
        plan_list_download(["../../etc/passwd"], "https://h/b/")
    with pytest.raises(CamtrapError, match="not under --base-url"):
        plan_list_download(["https://h/c/a.jpg"], "https://h/b")
    plan = plan_list_download(["gs://bucket/ds/x/a.jpg", "gs://bucket/ds/y/b.jpg"])
    assert plan.base_url == "https://storage.googleapis.com/bucket/ds/"
    assert plan.dests == ("x/a.jpg", "y/b.jpg")
