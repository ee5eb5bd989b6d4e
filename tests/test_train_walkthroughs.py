"""The two walk-throughs of docs/train.md, run offline against real protocol servers.

Each test reads the walk-through's ``spec.json`` and ``config.yml`` blocks from the page
(fenced as ```` ```yaml walkthrough=animl/config.yml ````), so the page cannot drift from
what runs, adds only the local servers' addresses to the source options, and runs
``ct-train run`` as a user would, from the folder holding ``data/`` and ``runs/``:

- Animl: an Animl-style COCO Camera Traps export whose images sit in moto's S3 server
  under Animl's default bucket, read with the default ``animl`` AWS profile;
- LILA: a LILA-style datasets index, taxonomy mapping and zipped CCTs on a local HTTP
  server, Island Conservation's images in Azurite (Azure's emulator, the source's
  default cloud) and Channel Islands' on the HTTP server (``cloud: gcp``).

Both photos and boxes are real: the committed MegaDetector test photos (tests/data) and, as ground-truth
boxes, the most confident detection of each from ``md_output_v5a.json``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from itertools import cycle
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from ct_io.testing import (
    AWS_ENV_UNSET,
    Azurite,
    FileServer,
    fake_aws_env,
    moto_s3_server,
)

pytestmark = pytest.mark.network_server

REPO = Path(__file__).resolve().parents[1]
TRAIN_DOC = REPO / "docs" / "train.md"
MD_TEST = REPO / "tests" / "data" / "md-test-images"  # the committed real-photo set


# ---------------------------------------------------------------- the page's blocks


def doc_block(key: str) -> str:
    """The code of the block fenced with ``walkthrough=KEY`` in docs/train.md (dedented)."""
    lines = TRAIN_DOC.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)```\w+\s+walkthrough=(\S+)\s*$", line)
        if m and m.group(2) == key:
            indent = len(m.group(1))
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            return "\n".join(x[indent:] for x in lines[i + 1 : end]) + "\n"
    raise AssertionError(f"docs/train.md has no block fenced with walkthrough={key}")


def write_walkthrough(root: Path, run: str, name: str, options: list[dict[str, Any]]) -> Path:
    """The page's spec and config in ``root/run``, each source's options extended."""
    run_dir = root / run
    run_dir.mkdir(parents=True)
    spec = doc_block(f"{name}/spec.json")
    json.loads(spec)  # the page's JSON is valid as written
    (run_dir / "spec.json").write_text(spec)
    config = yaml.safe_load(doc_block(f"{name}/config.yml"))
    assert len(config["sources"]) == len(options)
    for source, extra in zip(config["sources"], options, strict=True):
        source["options"].update(extra)
    (run_dir / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return run_dir / "config.yml"


def cli(
    cwd: Path, env: dict[str, str], *args: str, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    """A console script of this environment (``ct-train``...), run from ``cwd`` (where the
    user stands)."""
    script = Path(sys.executable).parent / args[0]
    proc = subprocess.run(
        [str(script), *args[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{args}: {proc.stderr[-3000:]}\n{proc.stdout[-3000:]}"
    assert "Traceback" not in proc.stderr
    return proc


# ---------------------------------------------------------------- real photos with boxes


def photos() -> list[tuple[Path, list[float]]]:
    """Each fixture photo with a box in pixels: its most confident animal detection,
    or the image's central quarter when MegaDetector found none."""
    md = json.loads((MD_TEST / "md_output_v5a.json").read_text())
    out = []
    for im in sorted(md["images"], key=lambda x: x["file"]):
        path = MD_TEST / "images" / im["file"]
        with Image.open(path) as img:
            w, h = img.size
        animals = [d for d in im.get("detections") or [] if d["category"] == "1"]
        x, y, bw, bh = (
            max(animals, key=lambda d: d["conf"])["bbox"]
            if animals and max(d["conf"] for d in animals) >= 0.5
            else [0.25, 0.25, 0.5, 0.5]
        )
        out.append((path, [round(x * w, 1), round(y * h, 1), round(bw * w, 1), round(bh * h, 1)]))
    return out


def cct(records: list[tuple[str, str, str, Path, list[float]]], **info: Any) -> dict[str, Any]:
    """A CCT dict from ``(file_name, location, label, photo, bbox)``; ``empty`` gets no box."""
    names = sorted({r[2] for r in records})
    cat = {n: i for i, n in enumerate(["empty", *[n for n in names if n != "empty"]])}
    images, anns = [], []
    for i, (file_name, location, label, photo, bbox) in enumerate(records):
        with Image.open(photo) as img:
            w, h = img.size
        images.append(
            {"id": f"img{i}", "file_name": file_name, "location": location, "width": w, "height": h}
        )
        ann: dict[str, Any] = {"id": f"ann{i}", "image_id": f"img{i}", "category_id": cat[label]}
        if label != "empty":
            ann["bbox"] = bbox
        anns.append(ann)
    return {
        "info": info,
        "images": images,
        "annotations": anns,
        "categories": [{"id": i, "name": n} for n, i in cat.items()],
    }


# ---------------------------------------------------------------- Animl export in S3


#: the export's categories, cycled over the images: every dataset label the page's spec
#: names, so its four labels (fox, skunk, rodent, bird) take turns
ANIML_LABELS = [
    "island fox", "skunk", "rodent", "bird", "fox", "skunk", "mouse", "bird", "island fox",
    "skunk", "rat", "bird",
]  # fmt: skip
#: the walk-through's optional taxonomy (own-CSV format: dataset label → ranks)
ANIML_TAXONOMY = [
    ("island fox", "mammalia", "carnivora", "canidae", "urocyon", "urocyon littoralis"),
    ("fox", "mammalia", "carnivora", "canidae", "urocyon", ""),
    ("skunk", "mammalia", "carnivora", "mephitidae", "spilogale", ""),
    ("rodent", "mammalia", "rodentia", "", "", ""),
    ("mouse", "mammalia", "rodentia", "cricetidae", "peromyscus", ""),
    ("rat", "mammalia", "rodentia", "muridae", "rattus", ""),
    ("bird", "aves", "", "", "", ""),
]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_s3_server() as url:
        yield url


def user_env(home: Path) -> dict[str, str]:
    """This environment, with fake AWS credentials under the ``animl`` profile only."""
    env = {k: v for k, v in os.environ.items() if k not in AWS_ENV_UNSET}
    env.update(fake_aws_env(home))
    env.pop("AWS_ACCESS_KEY_ID")
    env.pop("AWS_SECRET_ACCESS_KEY")
    (home / "aws_credentials").write_text(
        "[animl]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    (home / "aws_config").write_text("[profile animl]\nregion = us-west-2\n")
    return env


def animl_project(root: Path, endpoint: str) -> tuple[Path, dict[str, str]]:
    """``data/raw/santa_cruz_cct.json`` + ``data/taxonomy.csv`` and the images in S3."""
    import boto3

    from ct_io.source_options import DEFAULT_BUCKET

    env = user_env(root)
    s3 = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        "s3", endpoint_url=endpoint, region_name="us-west-2"
    )
    s3.create_bucket(
        Bucket=DEFAULT_BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )
    records = []
    for i, (photo, bbox) in zip(range(24), cycle(photos())):  # 13 photos, reused at other cameras
        key = f"camera-{i % 7}/{photo.name}"
        s3.put_object(Bucket=DEFAULT_BUCKET, Key=key, Body=photo.read_bytes())
        records.append((key, f"camera-{i % 7}", ANIML_LABELS[i % len(ANIML_LABELS)], photo, bbox))
    export = cct(records, description="Animl export")
    for im in export["images"]:  # Animl names files by id; the S3 key is its own field
        im["original_relative_path"] = im["file_name"]
        im["file_name"] = f"{im['id']}-original.jpg"
    raw = root / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "santa_cruz_cct.json").write_text(json.dumps(export))
    with (root / "data" / "taxonomy.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["dataset_name", "query", "class", "order", "family", "genus", "species"])
        writer.writerows(("santa_cruz", *row) for row in ANIML_TAXONOMY)
    return root, env


def test_animl_walkthrough_to_split(tmp_path: Path, moto_endpoint: str) -> None:
    root, env = animl_project(tmp_path, moto_endpoint)
    config = write_walkthrough(
        root, "runs/efficientnet-b3/santa-cruz", "animl", [{"endpoint_url": moto_endpoint}]
    )
    rel = config.relative_to(root).as_posix()
    out = cli(root, env, "ct-train", "run", rel, "--to", "split").stdout
    for stage in ("fetch", "select", "crop", "table", "split"):
        assert re.search(rf"{stage}\s+│\s+ran", out), out
    assert re.search(r"detect\s+│\s+not needed", out), out  # every selected image has a box
    run_dir = config.parent
    images = root / "data" / "raw" / "santa_cruz"
    assert len([p for p in images.glob("camera-*/*") if p.is_file()]) == 24
    labels = json.loads((run_dir / "label_index.json").read_text())
    assert sorted(labels.values() if isinstance(labels, dict) else labels) == [
        "bird",
        "fox",
        "rodent",
        "skunk",
    ]
    splits = json.loads((run_dir / "splits.json").read_text())
    assert all(splits[name] for name in ("train", "val", "test"))
    cli(root, env, "ct-splits", "report", run_dir.relative_to(root).as_posix())
    assert (run_dir / "report.html").is_file() or any(run_dir.rglob("report.html"))


# ---------------------------------------------------------------- LILA subset in Azurite


#: (LILA name, short name, [(location, label), ...]); one image each.
LILA_DATASETS = [
    (
        "Island Conservation Camera Traps",
        "island-conservation",
        [
            ("I1", "rat"),
            ("I1", "bird"),
            ("I1", "rat"),
            ("I2", "black rat"),
            ("I2", "bird"),
            ("I2", "empty"),
            ("I3", "rat"),
            ("I3", "bird"),
            ("I3", "rat"),
            ("I4", "bird"),
            ("I4", "bird"),
            ("I4", "empty"),
        ],
    ),
    (
        "Channel Islands Camera Traps",
        "channel-islands",
        [
            ("C1", "island fox"),
            ("C1", "bird"),
            ("C1", "rat"),
            ("C2", "island fox"),
            ("C2", "island fox"),
            ("C2", "rat"),
            ("C3", "island fox"),
            ("C3", "bird"),
            ("C3", "rat"),
            ("C4", "island fox"),
            ("C4", "bird"),
            ("C4", "empty"),
        ],
    ),
]
#: label → lineage, most specific first (LILA's taxonomy_string order)
LILA_TAXA = {
    "rat": [
        ("genus", "rattus"),
        ("family", "muridae"),
        ("order", "rodentia"),
        ("class", "mammalia"),
    ],
    "black rat": [
        ("species", "rattus rattus"),
        ("genus", "rattus"),
        ("family", "muridae"),
        ("order", "rodentia"),
        ("class", "mammalia"),
    ],
    "island fox": [
        ("species", "urocyon littoralis"),
        ("genus", "urocyon"),
        ("family", "canidae"),
        ("order", "carnivora"),
        ("class", "mammalia"),
    ],
    "bird": [("class", "aves")],
}


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _zipped(name: str, data: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, json.dumps(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def fake_lila(azurite: Azurite) -> Iterator[dict[str, str]]:
    """LILA's index, taxonomy mapping and zipped CCTs over HTTP; images in Azurite (Island
    Conservation) and on the HTTP server (Channel Islands). Yields the two URLs."""
    http = FileServer().start()
    container = azurite.service().get_container_client("lila-wildlife")
    container.create_container(public_access="container")
    pictures = cycle(photos())
    index, mapping = [], []
    for name, short, spec in LILA_DATASETS:
        records = []
        for i, (location, label) in enumerate(spec):
            photo, bbox = next(pictures)
            rel = f"{location}/IMG_{i:04d}.JPG"
            if short == "island-conservation":
                container.upload_blob(f"{short}/{rel}", photo.read_bytes(), overwrite=True)
            else:
                http.files[f"/gcp/{short}/{rel}"] = photo.read_bytes()
            records.append((rel, location, label, photo, bbox))
        data = _zipped(f"{short}.json", cct(records, version="1"))
        http.files[f"/gcp/{short}/{short}.json.zip"] = data
        container.upload_blob(f"{short}/{short}.json.zip", data, overwrite=True)
        azure = f"{azurite.account_url}/lila-wildlife/{short}/"
        index.append(
            {
                "name": name,
                "short_name": short,
                "image_base_url_gcp": f"{http.url}/gcp/{short}/",
                "metadata_url_gcp": f"{http.url}/gcp/{short}/{short}.json.zip",
                "image_base_url_azure": azure,
                "metadata_url_azure": f"{azure}{short}.json.zip",
            }
        )
        for label in sorted({lab for _, lab in spec} - {"empty"}):
            lineage = LILA_TAXA[label]
            mapping.append(
                {
                    "dataset_name": name,
                    "query": label,
                    "scientific_name": lineage[0][1],
                    "common_name": label,
                    "taxonomy_level": lineage[0][0],
                    "taxonomy_string": repr(
                        [
                            (k, lv, nm, [label] if k == 0 else [])
                            for k, (lv, nm) in enumerate(lineage)
                        ]
                    ),
                }
            )
    http.files["/lila_camera_trap_datasets.csv"] = _csv(index)
    http.files["/lila-taxonomy-mapping_release.csv"] = _csv(mapping)
    yield {
        "index": f"{http.url}/lila_camera_trap_datasets.csv",
        "taxonomy": f"{http.url}/lila-taxonomy-mapping_release.csv",
    }
    http.stop()


def lila_project(root: Path, urls: dict[str, str]) -> Path:
    extra = {"index": urls["index"], "taxonomy": urls["taxonomy"], "threads": 4, "retries": 1}
    return write_walkthrough(root, "runs/efficientnet-lite0/rats", "lila", [extra, extra])


def test_lila_walkthrough_to_split(tmp_path: Path, fake_lila: dict[str, str]) -> None:
    config = lila_project(tmp_path, fake_lila)
    out = cli(
        tmp_path,
        dict(os.environ),
        "ct-train",
        "run",
        str(config.relative_to(tmp_path)),
        "--to",
        "split",
    ).stdout
    assert re.search(r"detect\s+│\s+not needed", out), out
    raw = tmp_path / "data" / "raw"
    # Island Conservation: every image at the locations with rats (I1-I3), none from I4
    island = {
        p.relative_to(raw / "island-conservation").as_posix()
        for p in raw.glob("island-conservation/*/*.JPG")
    }
    assert {p.split("/")[0] for p in island} == {"I1", "I2", "I3"} and len(island) == 9
    assert len(list(raw.glob("channel-islands/*/*.JPG"))) == 12
    run_dir = config.parent
    record = json.loads((run_dir / "sources" / "dataset.json").read_text())
    assert record["name"] == "combined" and Path(record["taxonomy"]).is_file()
    assert "Island Conservation Camera Traps" in record["aliases"]["island_conservation"]
    labels = json.loads((run_dir / "label_index.json").read_text())
    assert sorted(labels.values() if isinstance(labels, dict) else labels) == ["bird", "fox", "rat"]
    splits = json.loads((run_dir / "splits.json").read_text())
    assert all(splits[name] for name in ("train", "val", "test"))


@pytest.mark.slow
def test_lila_walkthrough_end_to_end_bundle_has_taxonomy_and_temperature(
    tmp_path: Path, fake_lila: dict[str, str]
) -> None:
    """The whole chain with a tiny budget (``--set`` as a user would): the bundle carries
    LILA's lineages for ``ct-infer run --rollup`` and the calibration outcome."""
    from ct_infer.bundle import read_bundle_meta

    config = lila_project(tmp_path, fake_lila)
    out = cli(
        tmp_path,
        dict(os.environ, COLUMNS="400"),  # one summary row per line: the note is read below
        "ct-train",
        "run",
        str(config.relative_to(tmp_path)),
        "--set",
        "train.epochs=1",
        "--set",
        "data.batch_size=4",
        "--set",
        "data.image_size=64",
        "--set",
        "data.num_workers=0",
        "--set",
        "export.formats=[]",
        timeout=900,
    ).stdout
    meta = read_bundle_meta(config.parent / "model" / "rats.safetensors")
    assert meta.taxonomy["rat"] == "class:mammalia;order:rodentia;family:muridae;genus:rattus"
    assert meta.taxonomy["fox"].endswith("family:canidae;genus:urocyon;species:urocyon littoralis")
    assert meta.taxonomy["bird"] == "class:aves"
    # one epoch on a dozen crops: calibrated when val has mistakes, else left at 1 and said so
    fit = meta.extra.get("calibration")
    if fit is not None:
        assert meta.temperature == fit["temperature"] and fit["count"] > 0
    else:  # nothing to calibrate on, or a fit at its bound: temperature 1, and the run says why
        import numpy as np

        with np.load(config.parent / "final_val_outputs.npz") as npz:
            all_right = bool((npz["probs"].argmax(1) == npz["targets"]).all())
        said = "no mistake to calibrate on" if all_right else "ran to its bound"
        assert meta.temperature == 1.0 and said in " ".join(out.split()), out[-2000:]
