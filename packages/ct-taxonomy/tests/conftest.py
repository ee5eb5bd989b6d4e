"""Fixtures: a small taxonomy (tests/data) and two CCT datasets built for the tests.

Dataset ``alpha`` (with boxes and image sizes):
  a/coyote1..3  coyote          a/fox1  gray_fox     a/fox2  red_fox
  a/bobcat1     bobcat          a/deer1..4 deer      a/elk1  elk
  a/turkey1     turkey          a/crow1 crow         a/empty1 empty
  a/mixed1      coyote + bobcat (two species in one frame)
  a/wrong1      deer (really an elk: fixed by the mislabeled list)
  a/bad1        coyote (mislabeled, no correct class: dropped)
Dataset ``beta`` (no boxes, integer locations):
  b/coy1..2 Coyote   b/fox1 fox   b/mule1..3 muledeer   b/cervid1 cervid
  b/bird1 bird       b/human1 human   b/blank1 blank
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ct_io.cct import CocoCameraTraps, from_records, write_cct
from ct_taxonomy.select import NamedDataset
from ct_taxonomy.taxonomy import Taxonomy, read_taxonomy

DATA = Path(__file__).parent / "data"

ALPHA = [
    ("a/coyote1.jpg", ["coyote"]),
    ("a/coyote2.jpg", ["coyote"]),
    ("a/coyote3.jpg", ["coyote"]),
    ("a/fox1.jpg", ["gray_fox"]),
    ("a/fox2.jpg", ["red_fox"]),
    ("a/bobcat1.jpg", ["bobcat"]),
    ("a/deer1.jpg", ["deer"]),
    ("a/deer2.jpg", ["deer"]),
    ("a/deer3.jpg", ["deer"]),
    ("a/deer4.jpg", ["deer"]),
    ("a/elk1.jpg", ["elk"]),
    ("a/turkey1.jpg", ["turkey"]),
    ("a/crow1.jpg", ["crow"]),
    ("a/empty1.jpg", ["empty"]),
    ("a/mixed1.jpg", ["coyote", "bobcat"]),
    ("a/wrong1.jpg", ["deer"]),
    ("a/bad1.jpg", ["coyote"]),
]
BETA = [
    ("b/coy1.jpg", ["Coyote"]),
    ("b/coy2.jpg", ["Coyote"]),
    ("b/fox1.jpg", ["fox"]),
    ("b/mule1.jpg", ["muledeer"]),
    ("b/mule2.jpg", ["muledeer"]),
    ("b/mule3.jpg", ["muledeer"]),
    ("b/cervid1.jpg", ["cervid"]),
    ("b/bird1.jpg", ["bird"]),
    ("b/human1.jpg", ["human"]),
    ("b/blank1.jpg", ["blank"]),
]


def make_cct(
    items: list[tuple[str, list[str]]], *, boxes: bool, int_locations: bool = False
) -> CocoCameraTraps:
    """A CCT with one image per item, one annotation per class, box 100x50 at (40, 20)."""
    names = sorted({c for _, classes in items for c in classes})
    cat_id = {n: i + 1 for i, n in enumerate(names)}
    images, annotations = [], []
    for i, (file, classes) in enumerate(items):
        image = {
            "id": f"img{i}",
            "file_name": file,
            "location": (i % 3) if int_locations else f"loc{i % 3}",
        }
        if boxes:
            image.update(width=400, height=200)
        images.append(image)
        for c in classes:
            ann = {"id": f"ann{len(annotations)}", "image_id": f"img{i}", "category_id": cat_id[c]}
            if boxes:
                ann["bbox"] = [40, 20, 100, 50]
            annotations.append(ann)
    categories = [{"id": i, "name": n} for n, i in cat_id.items()]
    return from_records(images, annotations, categories)


@pytest.fixture(name="make_cct")
def make_cct_fixture() -> object:
    """The :func:`make_cct` builder, for tests that need their own dataset."""
    return make_cct


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return read_taxonomy(DATA / "taxonomy.csv")


@pytest.fixture
def datasets() -> list[NamedDataset]:
    return [
        NamedDataset("alpha", make_cct(ALPHA, boxes=True)),
        NamedDataset("beta", make_cct(BETA, boxes=False, int_locations=True)),
    ]


@pytest.fixture
def cct_files(tmp_path: Path, datasets: list[NamedDataset]) -> dict[str, Path]:
    out = {}
    for d in datasets:
        path = tmp_path / f"{d.name}_cct.json"
        write_cct(d.cct, path)
        out[d.name] = path
    return out
