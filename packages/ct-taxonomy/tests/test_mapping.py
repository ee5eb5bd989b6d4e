"""Mapping a classifier's labels onto target categories."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ct_io.errors import CamtrapError, FormatError
from ct_taxonomy.mapping import (
    OTHER,
    label_nodes,
    map_targets,
    read_target_mapping,
    write_target_mapping,
)
from ct_taxonomy.spec import LabelSpec, spec_from_dict
from ct_taxonomy.taxonomy import Taxon, Taxonomy

CLASSIFIER = {
    "coyote": {"taxa": [{"level": "species", "name": "canis latrans"}]},
    "gray_fox": {"taxa": [{"level": "species", "name": "urocyon cinereoargenteus"}]},
    "red_fox": {"taxa": [{"level": "genus", "name": "vulpes"}]},
    "bobcat": {"dataset_labels": {"alpha": ["bobcat"]}},
    "deer": {"taxa": [{"level": "family", "name": "cervidae"}]},
    "turkey": {"taxa": [{"level": "species", "name": "meleagris gallopavo"}]},
    "crow": {"dataset_labels": {"alpha": ["crow"]}},
    "human": {"dataset_labels": {"beta": ["human"]}},
    "empty": {"dataset_labels": {"alpha": ["empty"], "beta": ["blank"]}},
}
TARGETS = {
    "canid": {"taxa": [{"level": "family", "name": "canidae"}]},
    "cat": {"taxa": [{"level": "family", "name": "felidae"}]},
    "ungulate": {"taxa": [{"level": "order", "name": "artiodactyla"}]},
    "bird": {
        "taxa": [{"level": "class", "name": "aves"}],
        "exclude": {"taxa": [{"level": "genus", "name": "meleagris"}]},
    },
    "nothing": {"dataset_labels": {"alpha": ["empty"], "beta": ["blank"]}},
}


@pytest.fixture
def classifier() -> LabelSpec:
    return spec_from_dict(CLASSIFIER, source="classifier.json")


def test_every_classifier_label_lands_in_exactly_one_target(
    taxonomy: Taxonomy, classifier: LabelSpec
) -> None:
    mapping = map_targets(spec_from_dict(TARGETS), classifier, taxonomy)
    assert mapping == {
        "canid": ["coyote", "gray_fox", "red_fox"],
        "cat": ["bobcat"],
        "ungulate": ["deer"],
        "bird": ["crow"],
        "nothing": ["empty"],
        OTHER: ["human", "turkey"],
    }
    flat = [lb for labels in mapping.values() for lb in labels]
    assert sorted(flat) == sorted(CLASSIFIER)


def test_label_nodes_cover_descendants(taxonomy: Taxonomy, classifier: LabelSpec) -> None:
    nodes = label_nodes(classifier, taxonomy)
    assert nodes["red_fox"] == {Taxon("genus", "vulpes"), Taxon("species", "vulpes vulpes")}
    assert nodes["empty"] == {
        Taxon("dataset_label", "alpha|empty"),
        Taxon("dataset_label", "beta|blank"),
    }


def test_target_splitting_a_classifier_label_is_an_error(
    taxonomy: Taxonomy, classifier: LabelSpec
) -> None:
    targets = spec_from_dict(
        {"mule deer": {"taxa": [{"level": "species", "name": "odocoileus hemionus"}]}}
    )
    with pytest.raises(FormatError, match="covers only part of classifier label 'deer'"):
        map_targets(targets, classifier, taxonomy)


def test_overlapping_targets_are_an_error(taxonomy: Taxonomy, classifier: LabelSpec) -> None:
    targets = spec_from_dict(
        {
            "mammal": {"taxa": [{"level": "class", "name": "mammalia"}]},
            "canid": {"taxa": [{"level": "family", "name": "canidae"}]},
        }
    )
    with pytest.raises(FormatError, match="shares 7 taxa with label 'mammal'"):
        map_targets(targets, classifier, taxonomy)


def test_other_is_reserved(taxonomy: Taxonomy, classifier: LabelSpec) -> None:
    with pytest.raises(CamtrapError, match="'other' is reserved"):
        map_targets(
            spec_from_dict({OTHER: {"taxa": [{"level": "class", "name": "aves"}]}}),
            classifier,
            taxonomy,
        )


def test_label_index_limits_the_classifier_labels(
    taxonomy: Taxonomy, classifier: LabelSpec
) -> None:
    mapping = map_targets(
        spec_from_dict(TARGETS), classifier, taxonomy, ["coyote", "deer", "human"]
    )
    assert mapping == {
        "canid": ["coyote"],
        "cat": [],
        "ungulate": ["deer"],
        "bird": [],
        "nothing": [],
        OTHER: ["human"],
    }
    with pytest.raises(
        CamtrapError,
        match=re.escape(
            "'coyot' of the label index are not in classifier.json — did you mean 'coyote'"
        ),
    ):
        map_targets(spec_from_dict(TARGETS), classifier, taxonomy, ["coyot"])


def test_unknown_taxa_in_either_spec(taxonomy: Taxonomy, classifier: LabelSpec) -> None:
    with pytest.raises(
        FormatError, match="taxon 'family canidea' is not in the taxonomy — did you mean 'canidae'"
    ):
        map_targets(
            spec_from_dict({"canid": {"taxa": [{"level": "family", "name": "canidea"}]}}),
            classifier,
            taxonomy,
        )


def test_mapping_file_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    write_target_mapping({"canid": ["coyote"], OTHER: ["deer"]}, path)
    assert read_target_mapping(path) == {"canid": ["coyote"], OTHER: ["deer"]}
    path.write_text('{"a": ["x"], "b": ["x", 3]}')
    with pytest.raises(FormatError, match="expected a list of classifier label names"):
        read_target_mapping(path)
    path.write_text('{"a": ["x"], "b": ["x"]}')
    with pytest.raises(FormatError, match="'x' is also mapped to 'a'"):
        read_target_mapping(path)
