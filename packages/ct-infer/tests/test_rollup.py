"""Label lineages for rollup: the bundle's taxonomy format, a ct-taxonomy CSV, target
mappings, and what ``run``/``merge`` do when a model carries no taxonomy."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ct_infer.cli import app
from ct_infer.rollup import (
    lineages_from_meta,
    lineages_to_meta,
    parse_lineage,
    rollup_lineages,
)
from ct_io.errors import CamtrapError
from ct_taxonomy.taxonomy import Taxon

LABELS = ["antelope", "bird", "carnivore", "primate"]
TAXONOMY = {
    "antelope": "class:mammalia;order:artiodactyla;family:bovidae",
    "bird": "class:aves",
    "carnivore": "class:mammalia;order:carnivora",
    "primate": "class:mammalia;order:primates",
}


def _names(lineage: tuple[Taxon, ...]) -> list[str]:
    return [str(t) for t in lineage]


def test_bundle_taxonomy_format_round_trips() -> None:
    lineages = lineages_from_meta(TAXONOMY)
    assert _names(lineages["antelope"]) == [
        "class mammalia",
        "order artiodactyla",
        "family bovidae",
    ]
    assert lineages_to_meta(lineages) == TAXONOMY


def test_other_spellings_are_read_and_bad_ones_say_what_to_pass() -> None:
    root_first = ["class mammalia", "order carnivora", "family canidae"]
    assert (
        _names(parse_lineage("x", "Class:Mammalia; order:carnivora ;family:canidae")) == root_first
    )
    assert _names(parse_lineage("x", "family:canidae;order:carnivora;class:mammalia")) == root_first
    pairs = [["class", "mammalia"], ["order", "carnivora"], ["family", "canidae"]]
    assert _names(parse_lineage("x", pairs)) == root_first
    assert parse_lineage("blank", "") == () and parse_lineage("blank", None) == ()
    with pytest.raises(CamtrapError, match=r"level:name.*--taxonomy"):
        parse_lineage("x", "mammalia;carnivora")
    with pytest.raises(CamtrapError, match="--taxonomy"):
        parse_lineage("x", {"class": "mammalia"})


def test_target_lineage_is_what_its_labels_share() -> None:
    mapping = {"mammal": ["antelope", "carnivore", "primate"], "bird": ["bird"]}
    found = rollup_lineages(LABELS, bundle_taxonomy=TAXONOMY, target_mapping=mapping)
    assert _names(found["mammal"]) == ["class mammalia"]
    assert _names(found["bird"]) == ["class aves"]


def test_no_taxonomy_is_an_error_naming_the_option() -> None:
    with pytest.raises(CamtrapError, match=r"--taxonomy TAXONOMY\.csv"):
        rollup_lineages(LABELS, bundle_taxonomy={})
    with pytest.raises(CamtrapError, match="none of the labels"):
        rollup_lineages(LABELS, bundle_taxonomy={"zebra": "class:mammalia"})
    with pytest.raises(CamtrapError, match="--rollup-spec needs --taxonomy"):
        rollup_lineages(LABELS, bundle_taxonomy=TAXONOMY, rollup_spec="spec.json")


def test_partial_taxonomy_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    found = rollup_lineages(LABELS, bundle_taxonomy={"antelope": TAXONOMY["antelope"]})
    assert found["bird"] == () and len(found["antelope"]) == 3
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "3 of 4 labels have no lineage" in warnings[0].getMessage()


@pytest.fixture()
def taxonomy_csv(tmp_path: Path) -> Path:
    """A ct-taxonomy mapping CSV (rank columns) whose common names are the tiny labels."""
    rows = [
        ("antelope", "mammalia", "artiodactyla", "bovidae"),
        ("bird", "aves", "", ""),
        ("carnivore", "mammalia", "carnivora", ""),
        ("primate", "mammalia", "primates", ""),
    ]
    frame = pd.DataFrame(
        [
            {
                "dataset_name": "demo",
                "query": label,
                "common_name": label,
                "class": c,
                "order": o,
                "family": f,
            }
            for label, c, o, f in rows
        ]
    )
    path = tmp_path / "taxonomy.csv"
    frame.to_csv(path, index=False)
    return path


def test_lineages_from_a_taxonomy_csv_by_name_and_by_spec(
    taxonomy_csv: Path, tmp_path: Path
) -> None:
    by_name = rollup_lineages(LABELS, taxonomy_csv=taxonomy_csv)
    assert lineages_to_meta(by_name) == TAXONOMY
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "hoofed": {"taxa": [{"level": "order", "name": "artiodactyla"}]},
                "predator": {"dataset_labels": {"demo": ["carnivore"]}},
            }
        )
    )
    by_spec = rollup_lineages(["hoofed", "predator"], taxonomy_csv=taxonomy_csv, rollup_spec=spec)
    assert _names(by_spec["hoofed"]) == ["class mammalia", "order artiodactyla"]
    assert _names(by_spec["predator"]) == ["class mammalia", "order carnivora"]


def _invoke(args: list[str]) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output, result.exception


def test_run_rollup_with_a_taxonomy_csv_when_the_bundle_has_none(
    tiny_bundle: Path, md_dir: Path, md_json: Path, taxonomy_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.json"
    base = ["run", str(md_dir / "images"), str(tiny_bundle), "-d", str(md_json), "-o", str(out)]
    code, _, exc = _invoke([*base, "--workers", "0", "--rollup", "0.6"])
    assert code != 0 and isinstance(exc, CamtrapError) and "--taxonomy" in str(exc)
    assert not out.exists()  # refused before any work
    code, output, exc = _invoke(
        [*base, "--workers", "0", "--rollup", "0.6", "--taxonomy", str(taxonomy_csv)]
    )
    assert code == 0, (output, exc)
    assert "named at a taxon above the labels" in " ".join(output.split())
    doc = json.loads(out.read_text())
    assert "rollup: class mammalia" in doc["classification_categories"].values()


def test_merge_rolls_up_with_the_bundle_taxonomy(
    tiny_bundle_factory, crops_dir: Path, crop_paths: list[str], md_json: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    bundle = tiny_bundle_factory("merge-taxo", taxonomy=TAXONOMY)
    csv = tmp_path / "probs.csv"
    code, output, exc = _invoke(
        ["classify", str(bundle), str(crops_dir), str(csv), "--workers", "0"]
    )
    assert code == 0, (output, exc)
    out = tmp_path / "merged.json"
    code, output, exc = _invoke(
        [
            "merge",
            str(csv),
            "-d",
            str(md_json),
            "-o",
            str(out),
            "--bundle",
            str(bundle),
            "--rollup",
            "0.6",
        ]
    )
    assert code == 0, (output, exc)
    doc = json.loads(out.read_text())
    cats = doc["classification_categories"]
    assert doc["info"]["classifier"] == "merge-taxo"
    probs = pd.read_csv(csv)
    unsure = int((probs[LABELS].max(axis=1) < 0.6).sum())
    firsts = [
        cats[d["classifications"][0][0]]
        for im in doc["images"]
        for d in im["detections"] or []
        if d.get("classifications")
    ]
    assert sum(f.startswith("rollup: ") for f in firsts) == unsure > 0
    assert f"{unsure} named at a taxon" in " ".join(output.split())
    # merge with a mapping: targets get their labels' common lineage
    mapping = tmp_path / "map.json"
    mapping.write_text(
        json.dumps({"mammal": ["antelope", "carnivore", "primate"], "bird": ["bird"]})
    )
    code, output, exc = _invoke(
        ["merge", str(csv), "-d", str(md_json), "-o", str(out), "--bundle", str(bundle),
         "--target-mapping", str(mapping), "--rollup", "0.99"]
    )  # fmt: skip
    assert code == 0, (output, exc)
    names = set(json.loads(out.read_text())["classification_categories"].values())
    assert {"mammal", "bird"} <= names and names <= {"mammal", "bird", "rollup: class mammalia"}
