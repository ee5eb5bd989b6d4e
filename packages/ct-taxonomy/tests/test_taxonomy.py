"""The taxonomy table: both LILA formats, lookups by any rank, ancestors and descendants."""

from __future__ import annotations

import gzip
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from ct_io.errors import CamtrapError
from ct_taxonomy.taxonomy import Taxon, Taxonomy, read_taxonomy

DATA = Path(__file__).parent / "data"

CANIDAE = Taxon("family", "canidae")
COYOTE = Taxon("species", "canis latrans")


def test_mapping_csv_becomes_rank_columns(taxonomy: Taxonomy) -> None:
    assert len(taxonomy) == 16
    row = taxonomy.frame.set_index(["dataset_name", "query"]).loc[("alpha", "gray_fox")]
    assert (row["family"], row["genus"], row["species"]) == (
        "canidae",
        "urocyon",
        "urocyon cinereoargenteus",
    )
    assert pd.isna(row["subfamily"])
    assert pd.isna(taxonomy.frame.loc[taxonomy.frame["query"] == "empty", "kingdom"].iloc[0])
    assert {"kingdom", "family", "species"} <= taxonomy.levels


def test_lookup_by_any_rank_and_common_name(taxonomy: Taxonomy) -> None:
    assert taxonomy.find("Canidae") == [CANIDAE]
    assert taxonomy.find("coyote") == [COYOTE]
    assert taxonomy.find("gray fox") == [Taxon("species", "urocyon cinereoargenteus")]
    assert taxonomy.find("canidae", level="genus") == []
    assert [t.name for t in taxonomy.at_level("family")] == [
        "canidae",
        "cervidae",
        "corvidae",
        "felidae",
        "hominidae",
        "phasianidae",
    ]
    assert taxonomy.label_taxon("BETA", "coyote") == COYOTE
    assert taxonomy.label_taxon("alpha", "empty") is None


def test_ancestors_descendants_and_lca(taxonomy: Taxonomy) -> None:
    assert [str(t) for t in taxonomy.ancestors(COYOTE)] == [
        "genus canis", "family canidae", "order carnivora", "class mammalia", "phylum chordata", "kingdom animalia",
    ]  # fmt: skip
    assert {t.name for t in taxonomy.descendants(CANIDAE)} == {
        "canis", "urocyon", "vulpes", "canis latrans", "urocyon cinereoargenteus", "vulpes vulpes",
    }  # fmt: skip
    assert taxonomy.descendants(COYOTE) == set()
    assert taxonomy.lowest_common_ancestor([COYOTE, Taxon("species", "vulpes vulpes")]) == CANIDAE
    assert taxonomy.lowest_common_ancestor(
        [COYOTE, Taxon("species", "meleagris gallopavo")]
    ) == Taxon("phylum", "chordata")
    assert taxonomy.lowest_common_ancestor([COYOTE, Taxon("genus", "nope")]) is None
    assert [str(t) for t in taxonomy.lineage(CANIDAE)][-2:] == ["order carnivora", "family canidae"]


def test_dataset_labels_under_a_taxon(taxonomy: Taxonomy) -> None:
    assert taxonomy.dataset_labels_under(CANIDAE) == {
        ("alpha", "coyote"),
        ("alpha", "gray_fox"),
        ("alpha", "red_fox"),
        ("beta", "coyote"),
        ("beta", "fox"),
    }
    assert taxonomy.dataset_labels_under(CANIDAE, ["Beta"]) == {("beta", "coyote"), ("beta", "fox")}
    assert set(taxonomy.rows_under(Taxon("class", "aves"))["query"]) == {"turkey", "crow", "bird"}


def test_suggestions(taxonomy: Taxonomy) -> None:
    assert taxonomy.suggest_taxon(Taxon("genus", "canidae")) == "the taxonomy has 'family canidae'"
    assert taxonomy.suggest_taxon(Taxon("family", "canidea")) == "did you mean 'canidae'?"
    assert taxonomy.suggest_label("alpha", "coyotee") == "did you mean 'coyote'?"
    assert taxonomy.suggest_dataset("alpah") == "did you mean 'alpha'?"


def test_all_images_table_gives_the_same_taxonomy(taxonomy: Taxonomy, tmp_path: Path) -> None:
    zipped = tmp_path / "lila_image_urls_and_labels.csv.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.write(DATA / "all_images.csv", "lila_image_urls_and_labels.csv")
    for path in (DATA / "all_images.csv", zipped):
        table = read_taxonomy(path)
        assert len(table) == len(taxonomy)
        assert table.dataset_labels_under(CANIDAE) == taxonomy.dataset_labels_under(CANIDAE)
        assert table.ancestors(COYOTE) == taxonomy.ancestors(COYOTE)
        assert table.label_taxon("beta", "fox") == Taxon("genus", "vulpes")
        assert table.frame.set_index("query").loc["fox", "taxonomy_level"] == "genus"


def test_gzipped_mapping(tmp_path: Path, taxonomy: Taxonomy) -> None:
    gz = tmp_path / "taxonomy.csv.gz"
    with (DATA / "taxonomy.csv").open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert read_taxonomy(gz).dataset_labels_under(CANIDAE) == taxonomy.dataset_labels_under(CANIDAE)


def test_two_parents_are_both_ancestors(tmp_path: Path) -> None:
    """GBIF and iNat lineages can disagree on granularity: the taxon gets both parents."""
    path = tmp_path / "tax.csv"
    path.write_text(
        "dataset_name,query,scientific_name,common_name,taxonomy_level,taxonomy_string\n"
        "a,squirrel,sciurus,,genus,\"[(1, 'genus', 'sciurus', []), (2, 'family', 'sciuridae', [])]\"\n"
        "a,gray squirrel,sciurus carolinensis,,species,\"[(3, 'species', 'sciurus carolinensis', []), (1, 'genus', 'sciurus', []), (4, 'tribe', 'sciurini', []), (2, 'family', 'sciuridae', [])]\"\n"
    )
    t = read_taxonomy(path)
    assert t.parents(Taxon("genus", "sciurus")) == {
        Taxon("family", "sciuridae"),
        Taxon("tribe", "sciurini"),
    }
    assert [str(x) for x in t.ancestors(Taxon("species", "sciurus carolinensis"))] == [
        "genus sciurus",
        "tribe sciurini",
        "family sciuridae",
    ]
    assert t.dataset_labels_under(Taxon("family", "sciuridae")) == {
        ("a", "squirrel"),
        ("a", "gray squirrel"),
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "dataset_name,query,taxonomy_string\na,b,\"[(1, 'genus', 'x', [])]\"\na,c,not a list\n",
            "line 3: taxonomy_string is not a list",
        ),
        (
            'dataset_name,query,taxonomy_string\na,b,"[(1, 2)]"\n',
            "line 2: taxonomy_string is not a list",
        ),
        (
            "dataset_name,query,taxonomy_string\n,b,\"[(1, 'genus', 'x', [])]\"\n",
            "line 2: empty dataset_name or query",
        ),
        ("name,label\na,b\n", "not a taxonomy table"),
        ("dataset_name,query\na,b\n", "neither a taxonomy_string column nor rank columns"),
        ("dataset_name,original_label,image_id\na,b,c\n", "needs rank columns"),
        ("", "cannot read CSV"),
    ],
)
def test_bad_taxonomy_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tax.csv"
    path.write_text(content)
    with pytest.raises(CamtrapError, match=message):
        read_taxonomy(path)


def test_missing_taxonomy_file(tmp_path: Path) -> None:
    with pytest.raises(CamtrapError, match="file not found"):
        read_taxonomy(tmp_path / "nope.csv")
