"""Summing classifier probabilities into target columns, streaming on CSV.gz files."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ct_io.errors import CamtrapError
from ct_io.tables import read_label_index
from ct_taxonomy.aggregate import Aggregation, RollupConfig, aggregate_csv, aggregate_frame
from ct_taxonomy.rollup import name_lineages
from ct_taxonomy.taxonomy import Taxonomy

LABELS = ["bobcat", "coyote", "deer", "gray_fox", "human"]
MAPPING = {"canid": ["coyote", "gray_fox"], "cat": ["bobcat"], "other": ["deer", "human"]}


def classifier_output(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(len(LABELS)), size=n)
    frame = pd.DataFrame(probs, columns=LABELS)
    frame.insert(0, "path", [f"site{i % 4}/img{i:05d}.jpg___crop00_mdv5a.jpg" for i in range(n)])
    frame.insert(1, "label", ["coyote"] * n)
    return frame


def test_streaming_gz_equals_in_memory(tmp_path: Path) -> None:
    frame = classifier_output(1000)
    src = tmp_path / "classifier_output.csv.gz"
    frame.to_csv(src, index=False)
    out = tmp_path / "remapped.csv.gz"
    rows = aggregate_csv(src, out, MAPPING, output_label_index=tmp_path / "idx.json", chunk_rows=97)
    assert rows == 1000
    streamed = pd.read_csv(out)
    expected = pd.DataFrame(
        {
            "path": frame["path"],
            "label": frame["label"],
            "canid": frame["coyote"] + frame["gray_fox"],
            "cat": frame["bobcat"],
            "other": frame["deer"] + frame["human"],
        }
    )
    pd.testing.assert_frame_equal(streamed, expected, check_exact=False, rtol=1e-6)
    in_memory = aggregate_frame(pd.read_csv(src), Aggregation.from_mapping(MAPPING))
    pd.testing.assert_frame_equal(streamed, in_memory, check_exact=False, rtol=1e-6)
    assert read_label_index(tmp_path / "idx.json") == ["canid", "cat", "other"]
    with gzip.open(out, "rt") as fh:
        assert fh.readline().strip() == "path,label,canid,cat,other"


def test_streaming_with_rollup_equals_in_memory(tmp_path: Path, taxonomy: Taxonomy) -> None:
    frame = classifier_output(300, seed=1)
    src = tmp_path / "out.csv"
    frame.to_csv(src, index=False)
    mapping = {lb: [lb] for lb in LABELS}
    config = RollupConfig(threshold=0.6, lineages=name_lineages(LABELS, taxonomy))
    aggregate_csv(src, tmp_path / "r.csv", mapping, rollup=config, chunk_rows=50)
    streamed = pd.read_csv(tmp_path / "r.csv", keep_default_na=False, na_values=[""])
    in_memory = aggregate_frame(frame, Aggregation.from_mapping(mapping), config)
    assert streamed["rollup_label"].fillna("").tolist() == in_memory["rollup_label"].tolist()
    assert set(streamed["rollup_level"].dropna()) <= {
        "label",
        "family",
        "order",
        "class",
        "phylum",
        "kingdom",
        "species",
    }
    row = streamed[streamed["rollup_level"] == "family"].iloc[0]
    assert row["rollup_label"] == "canidae"
    assert np.isclose(row["rollup_conf"], row["coyote"] + row["gray_fox"])


def test_empty_input_writes_a_header(tmp_path: Path) -> None:
    src = tmp_path / "empty.csv"
    src.write_text("path," + ",".join(LABELS) + "\n")
    assert aggregate_csv(src, tmp_path / "o.csv", MAPPING) == 0
    assert (tmp_path / "o.csv").read_text().strip() == "path,canid,cat,other"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "path,bobcat,coyote,deer,gray_fox,human\na.jpg,0.1,0.2,0.3,0.2,0.2\nb.jpg,0.1,high,0.3,0.2,0.2\n",
            "line 3: column 'coyote' is 'high', not a probability",
        ),
        (
            "path,bobcat,coyote,deer,gray_fox,human\na.jpg,0.1,0.2,0.3,0.2,\n",
            "line 2: column 'human' is empty, not a probability",
        ),
        (
            "path,bobcat,coyote,deer,gray_fox,human\na.jpg,0.1,0.2,0.3,0.2,0.2\nb.jpg,0.1,0.2,0.3,0.2,0.2,9,9\n",
            "line 3",
        ),
        (
            "path,bobcat,coyot,deer,gray_fox,human\n",
            "no column for classifier label(s) 'coyote' — did you mean 'coyot'",
        ),
    ],
)
def test_bad_input_rows(tmp_path: Path, content: str, message: str) -> None:
    src = tmp_path / "in.csv"
    src.write_text(content)
    with pytest.raises(CamtrapError, match=re.escape(message)):
        aggregate_csv(src, tmp_path / "out.csv", MAPPING, chunk_rows=1)
    assert not (tmp_path / "out.csv").exists()  # nothing half-written


def test_truncated_gzip(tmp_path: Path) -> None:
    src = tmp_path / "in.csv.gz"
    classifier_output(5000).to_csv(src, index=False)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(CamtrapError, match="cannot read CSV"):
        aggregate_csv(src, tmp_path / "out.csv", MAPPING)
    assert not (tmp_path / "out.csv").exists()


def test_plan_rejects_a_label_in_two_targets() -> None:
    with pytest.raises(CamtrapError, match="coyote are mapped to more than one target"):
        Aggregation.from_mapping({"a": ["coyote"], "b": ["coyote"]})
