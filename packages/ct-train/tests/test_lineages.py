"""Label lineages for the bundle (``ct_train.pipeline.lineages``) from a taxonomy and a spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from ct_taxonomy.spec import spec_from_dict
from ct_taxonomy.taxonomy import read_taxonomy
from ct_train.pipeline.lineages import label_lineages, lineage_text

TAXONOMY = """dataset_name,query,class,order,family,genus,species
Island Conservation Camera Traps,rat,mammalia,rodentia,muridae,rattus,
Island Conservation Camera Traps,black rat,mammalia,rodentia,muridae,rattus,rattus rattus
santa_cruz,mouse,mammalia,rodentia,cricetidae,peromyscus,
santa_cruz,island fox,mammalia,carnivora,canidae,urocyon,urocyon littoralis
santa_cruz,bird,aves,,,,
"""


@pytest.fixture
def taxonomy(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "taxonomy.csv"
    path.write_text(TAXONOMY)
    return read_taxonomy(path)


def test_spec_rules_give_the_lowest_taxon_holding_everything_they_select(taxonomy) -> None:  # type: ignore[no-untyped-def]
    spec = spec_from_dict(
        {
            "rat": {"dataset_labels": {"island": ["rat", "black rat"]}},
            "rodent": {"dataset_labels": {"island": ["rat"], "santa_cruz": ["mouse"]}},
            "canid": {"taxa": [{"level": "family", "name": "canidae"}]},
            "other": {"dataset_labels": {"santa_cruz": ["unknown thing"]}},
        }
    )
    aliases = {"island": ["Island Conservation Camera Traps"]}
    got = label_lineages(["rat", "rodent", "canid", "other"], taxonomy, spec, aliases)
    assert lineage_text(got["rat"]) == "class:mammalia;order:rodentia;family:muridae;genus:rattus"
    assert lineage_text(got["rodent"]) == "class:mammalia;order:rodentia"
    assert lineage_text(got["canid"]) == "class:mammalia;order:carnivora;family:canidae"
    assert "other" not in got  # nothing known: no lineage rather than a wrong one


def test_without_alias_the_dataset_label_is_unknown_and_names_are_looked_up(taxonomy) -> None:  # type: ignore[no-untyped-def]
    spec = spec_from_dict({"rat": {"dataset_labels": {"island": ["rat"]}}})
    assert label_lineages(["rat"], taxonomy, spec) == {}
    # no spec: labels named after a taxon (scientific or common name, _ for spaces)
    got = label_lineages(["urocyon_littoralis", "peromyscus", "empty"], taxonomy)
    assert lineage_text(got["urocyon_littoralis"]).endswith(
        "genus:urocyon;species:urocyon littoralis"
    )
    assert lineage_text(got["peromyscus"]).endswith("family:cricetidae;genus:peromyscus")
    assert set(got) == {"urocyon_littoralis", "peromyscus"}
