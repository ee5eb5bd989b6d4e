from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ct_io.tables import Splits
from ct_splits.report import build_report, sample_crops
from ct_splits.report_html import render_html
from ct_splits.scoring import Targets


def _frame() -> pd.DataFrame:
    rows = []
    # label a: 10 crops at each of locations 1..5; label b: only at locations 1 and 2
    for loc in range(1, 6):
        rows += [("d", str(loc), "a", f"s{loc}") for _ in range(10)]
    rows += [("d", "1", "b", "s1")] * 4 + [("d", "2", "b", "s9")] * 4 + [("d", "9", "a", "s9")]
    return pd.DataFrame(
        [
            {
                "path": f"{i}.jpg",
                "dataset": d,
                "location": loc,
                "dataset_class": lbl,
                "confidence": 1.0,
                "label": lbl,
                "seq_id": s,
            }
            for i, (d, loc, lbl, s) in enumerate(rows)
        ]
    )


def test_report_counts_fractions_and_flags() -> None:
    splits = Splits(train=[("d", "1"), ("d", "2"), ("d", "3")], val=[("d", "4")], test=[("d", "5")])
    rep = build_report(_frame(), splits, targets=Targets.from_fractions(0.2, 0.2), tolerance=0.1)
    row = rep.per_label.set_index(["label", "split"])
    assert row.loc[("a", "train"), "crops"] == 30 and row.loc[("a", "train"), "locations"] == 3
    assert row.loc[("a", "train"), "crop_frac"] == pytest.approx(0.6)
    assert row.loc[("a", "val"), "flags"] == ""
    assert (
        row.loc[("b", "val"), "flags"] == "missing" and row.loc[("b", "test"), "flags"] == "missing"
    )
    assert "crops off target" in row.loc[("b", "train"), "flags"]
    assert rep.unassigned_crops == 1  # location 9 is in no split
    assert rep.straddling_sequences == 0  # s9's frame at location 9 is in no split
    assert any("missing from a split" in p for p in rep.problems)
    assert rep.per_split.set_index("split").loc["train", "crops"] == 38


def test_straddling_sequence_is_reported() -> None:
    frame = _frame()
    frame.loc[frame["location"] == "4", "seq_id"] = "s3"  # s3 now in train (loc 3) and val (loc 4)
    splits = Splits(
        train=[("d", "1"), ("d", "2"), ("d", "3"), ("d", "9")], val=[("d", "4")], test=[("d", "5")]
    )
    rep = build_report(frame, splits)
    assert rep.straddling_sequences == 1  # s3 (s9's locations 2 and 9 are both train)
    assert any("more than one split" in p for p in rep.problems)


def test_html_embeds_thumbnails_and_survives_bad_paths(
    tmp_path: Path, md_test_images: Path
) -> None:
    name = sorted(p.name for p in md_test_images.iterdir() if p.suffix.lower() == ".jpg")[0]
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    frame = pd.DataFrame(
        {
            "path": [name, "broken.jpg", "../../etc/passwd", "nope.jpg"],
            "dataset": "d",
            "location": ["1", "2", "3", "4"],
            "dataset_class": "",
            "confidence": 1.0,
            "label": ["a", "a", "b", "b"],
        }
    )
    rep = build_report(
        frame, Splits(train=[("d", "1"), ("d", "3")], val=[("d", "2")], test=[("d", "4")])
    )
    samples = sample_crops(frame, 5)
    assert samples == {"a": [name, "broken.jpg"], "b": ["../../etc/passwd", "nope.jpg"]}
    page = render_html(rep, {"a": [name], "b": samples["b"]}, md_test_images)
    assert page.count("data:image/jpeg;base64,") == 1
    assert page.count("not found") == 2
    page = render_html(rep, {"a": ["broken.jpg"]}, tmp_path)
    assert "not found" in page and '<td class="bad">' in page
