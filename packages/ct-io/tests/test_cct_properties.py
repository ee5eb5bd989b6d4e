"""Property test: any CCT document with extra keys survives read → write unchanged."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ct_io.cct import read_cct, write_cct

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
scalar = st.one_of(st.booleans(), st.integers(-(2**40), 2**40), text)
extra_value = st.one_of(
    scalar, st.lists(scalar, max_size=3), st.dictionaries(text, scalar, max_size=2)
)
extra_key = st.sampled_from(["note", "tags", "meta", "original_relative_path", "corrupt"])
ids = st.one_of(st.integers(0, 10**6), st.text("abcdef0123456789/_", min_size=1, max_size=10))


@st.composite
def cct_documents(draw):
    image_ids = draw(st.lists(ids, min_size=0, max_size=6, unique_by=lambda v: (type(v), v)))
    images = []
    for image_id in image_ids:
        image = {"id": image_id, "file_name": f"{draw(text.filter(lambda s: '..' not in s))}x.jpg"}
        if draw(st.booleans()):
            image["location"] = draw(st.text("abc123", min_size=1, max_size=4))
        image.update(draw(st.dictionaries(extra_key, extra_value, max_size=2)))
        images.append(image)
    annotations = []
    for k in range(draw(st.integers(0, 6))):
        annotation = {
            "id": k,
            "image_id": draw(st.sampled_from(image_ids)) if image_ids else 0,
            "category_id": draw(st.integers(0, 3)),
        }
        if draw(st.booleans()):
            annotation["bbox"] = draw(
                st.lists(
                    st.floats(0, 1000, allow_nan=False).map(lambda v: round(v, 2)),
                    min_size=4,
                    max_size=4,
                )
            )
        annotation.update(draw(st.dictionaries(extra_key, extra_value, max_size=2)))
        annotations.append(annotation)
    categories = [{"id": i, "name": f"c{i}"} for i in range(4)]
    return {
        "info": draw(st.dictionaries(text, scalar, max_size=2)),
        "images": images,
        "categories": categories,
        "annotations": annotations,
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cct_documents())
def test_round_trip_preserves_every_value(doc):
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(doc), encoding="utf-8")
        write_cct(read_cct(src), out)
        back = json.loads(out.read_text(encoding="utf-8"))
    for image in doc["images"]:  # locations are always written as strings
        if "location" in image:
            image["location"] = str(image["location"])
    assert back == doc
