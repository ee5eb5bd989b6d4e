from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ct_io.cct import read_cct
from ct_io.tables import read_classification_ds, read_label_index, read_splits


def ct_splits(*args: object) -> subprocess.CompletedProcess[str]:
    code = "import sys; from ct_splits.cli import main; sys.argv[0] = 'ct-splits'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": ""},
    )


@pytest.fixture
def selection(tmp_path: Path, md_test_images: Path) -> tuple[Path, Path, Path]:
    """queried_images.json + crops.csv over the fixture's real photos (each image is its own crop)."""
    files = sorted(p.name for p in md_test_images.iterdir() if p.suffix.lower() == ".jpg")
    labels = ["deer", "fox", "owl"]
    queried, rows = {}, []
    for i, name in enumerate(files):
        queried[f"park/{name}"] = {
            "dataset": "park",
            "location": i % 9,
            "class": labels[i % 3],
            "label": [labels[i % 3]],
        }
        rows.append(
            {
                "crop": name,
                "image": f"park/{name}",
                "box_index": 0,
                "source": "detector",
                "detector": "mdv5a",
                "category": "animal",
                "confidence": 0.9 if i % 10 else 0.3,
            }
        )
    q = tmp_path / "queried_images.json"
    q.write_text(json.dumps(queried))
    m = tmp_path / "crops.csv"
    pd.DataFrame(rows).to_csv(m, index=False)
    return q, m, md_test_images


def test_dataset_split_report_end_to_end(
    tmp_path: Path, selection: tuple[Path, Path, Path]
) -> None:
    q, m, crops = selection
    out = tmp_path / "run"
    r = ct_splits(
        "dataset",
        out,
        "-q",
        q,
        "-c",
        crops,
        "--manifest",
        m,
        "--threshold",
        "0.5",
        "--min-locs",
        "3",
    )
    assert r.returncode == 0, r.stderr
    table = read_classification_ds(out / "classification_ds.csv")
    assert len(table) == 13 - 2  # images 0 and 10 are below the threshold (13 images)
    assert read_label_index(out / "label_index.json") == ["deer", "fox", "owl"]
    assert table["location"].map(type).eq(str).all()

    r = ct_splits(
        "split", out, "--seed", "3", "--trials", "500", "--val-frac", "0.2", "--test-frac", "0.2"
    )
    assert r.returncode == 0, r.stderr
    first = (out / "splits.json").read_bytes()
    r = ct_splits(
        "split", out, "--seed", "3", "--trials", "500", "--val-frac", "0.2", "--test-frac", "0.2"
    )
    assert (out / "splits.json").read_bytes() == first
    splits = read_splits(out / "splits.json")
    assert {loc for locs in splits.as_dict().values() for loc in locs} == set(
        zip(table["dataset"], table["location"], strict=True)
    )

    r = ct_splits("report", out, "-c", crops, "--samples", "3")
    assert r.returncode == 0, r.stderr
    report = pd.read_csv(out / "report.csv")
    assert set(report["split"]) == {"train", "val", "test"}
    assert (
        report.groupby("label")["crops"].sum().to_dict() == table["label"].value_counts().to_dict()
    )
    page = (out / "report.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 9  # 3 samples × 3 labels, embedded
    assert "Labels" in r.stdout and "deer" in r.stdout


def test_match_test_and_per_split_cct(tmp_path: Path, selection: tuple[Path, Path, Path]) -> None:
    q, m, crops = selection
    out = tmp_path / "run"
    assert (
        ct_splits(
            "dataset", out, "-q", q, "-c", crops, "--manifest", m, "--threshold", "0.1"
        ).returncode
        == 0
    )
    assert ct_splits("split", out, "--trials", "300").returncode == 0
    earlier = read_splits(out / "splits.json")
    (tmp_path / "earlier.json").write_bytes((out / "splits.json").read_bytes())
    r = ct_splits(
        "split", out, "--match-test", tmp_path / "earlier.json", "--seed", "5", "--trials", "300"
    )
    assert r.returncode == 0, r.stderr
    assert read_splits(out / "splits.json").test == earlier.test

    files = sorted(p.name for p in crops.iterdir() if p.suffix.lower() == ".jpg")
    cct = tmp_path / "park.json"
    cct.write_text(
        json.dumps(
            {
                "info": {},
                "images": [
                    {"id": i, "file_name": f"park/{n}", "location": i % 9}
                    for i, n in enumerate(files)
                ]
                + [{"id": 99, "file_name": "park/none.jpg", "location": 42}],
                "annotations": [
                    {"id": i, "image_id": i, "category_id": 1} for i in range(len(files))
                ],
                "categories": [{"id": 1, "name": "animal"}],
            }
        )
    )
    r = ct_splits("split", out, "--trials", "300", "--cct", cct)
    assert r.returncode == 0, r.stderr
    splits = read_splits(out / "splits.json")
    total = 0
    for name, locs in splits.as_dict().items():
        part = read_cct(out / f"{name}_cct.json")
        total += len(part)
        assert set(part.images["location"]) <= {loc for _, loc in locs}
        assert set(part.annotations["image_id"]) <= set(part.images["id"])
    assert total == len(files)  # the image at location 42 is in no split and left out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["split", "missing_dir"], "file not found"),
        (["split", "BAD", "--val-frac", "0.9", "--test-frac", "0.5"], "frac"),
        (["report", "BAD"], "splits.json"),
    ],
)
def test_bad_input_is_one_line_error(tmp_path: Path, args: list[str], message: str) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    pd.DataFrame(
        {
            "path": ["x.jpg"],
            "dataset": ["d"],
            "location": ["1"],
            "dataset_class": ["a"],
            "confidence": [1.0],
            "label": ["a"],
        }
    ).to_csv(bad / "classification_ds.csv", index=False)
    args = [
        str(bad) if a == "BAD" else str(tmp_path / a) if a == "missing_dir" else a for a in args
    ]
    r = ct_splits(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert message in r.stderr
    assert len([line for line in r.stderr.splitlines() if "error" in line]) == 1


def test_malformed_queried_images_and_manifest(tmp_path: Path) -> None:
    q = tmp_path / "q.json"
    q.write_text('{"park/a.jpg": {"dataset": "park"')
    (tmp_path / "crops").mkdir()
    r = ct_splits("dataset", tmp_path / "out", "-q", q, "-c", tmp_path / "crops")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "malformed JSON" in r.stderr
    q.write_text('{"park/a.jpg": {"dataset": "park", "label": ["x"]}}')
    r = ct_splits("dataset", tmp_path / "out", "-q", q, "-c", tmp_path / "crops")
    assert r.returncode == 2 and "crops.csv: file not found" in r.stderr
    (tmp_path / "crops" / "crops.csv").write_text("crop,image,confidence\nzz.jpg,park/a.jpg,1.0\n")
    r = ct_splits("dataset", tmp_path / "out", "-q", q, "-c", tmp_path / "crops")
    assert r.returncode == 2 and "no crops left" in r.stderr and "crop file missing" in r.stderr


def test_a_cct_named_by_the_seed_convention_names_its_dataset(
    tmp_path: Path, selection: tuple[Path, Path, Path]
) -> None:
    """``park_cct.json`` holds dataset ``park``, not ``park_cct`` (issue 15 item 11)."""
    _, m, crops = selection
    files = sorted(p.name for p in crops.iterdir() if p.suffix.lower() == ".jpg")
    cct = tmp_path / "park_cct.json"
    cct.write_text(
        json.dumps(
            {
                "info": {},
                "images": [
                    {"id": i, "file_name": f"park/{n}", "location": i % 9}
                    for i, n in enumerate(files)
                ],
                "annotations": [
                    {"id": i, "image_id": i, "category_id": 1 + i % 3} for i in range(len(files))
                ],
                "categories": [
                    {"id": k, "name": n} for k, n in ((1, "deer"), (2, "fox"), (3, "owl"))
                ],
            }
        )
    )
    out = tmp_path / "run"
    r = ct_splits("dataset", out, "--cct", cct, "-c", crops, "--manifest", m, "--threshold", "0.1")
    assert r.returncode == 0, r.stderr
    table = read_classification_ds(out / "classification_ds.csv")
    assert set(table["dataset"]) == {"park"}
    assert ct_splits("split", out, "--trials", "50").returncode == 0
    assert {d for locs in read_splits(out / "splits.json").as_dict().values() for d, _ in locs} == {
        "park"
    }
