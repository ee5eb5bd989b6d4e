"""Taxonomic rollup: the lowest taxon that is sure enough when no label is."""

from __future__ import annotations

import numpy as np
import pytest

from ct_taxonomy.rollup import (
    LABEL_LEVEL,
    Rollup,
    common_lineage,
    name_lineages,
    rollup,
    rollup_array,
    spec_lineages,
)
from ct_taxonomy.spec import spec_from_dict
from ct_taxonomy.taxonomy import Taxon, Taxonomy


def lineages(taxonomy: Taxonomy) -> dict:
    return name_lineages(
        ["coyote", "gray_fox", "red_fox", "bobcat", "white-tailed deer", "other"], taxonomy
    )


def test_canidae_when_neither_coyote_nor_fox_is_sure(taxonomy: Taxonomy) -> None:
    probs = {
        "coyote": 0.48,
        "gray_fox": 0.43,
        "red_fox": 0.0,
        "bobcat": 0.05,
        "white-tailed deer": 0.04,
        "other": 0.0,
    }
    found = rollup(probs, lineages(taxonomy), 0.9)
    assert found is not None
    assert (found.name, found.level) == ("canidae", "family")
    assert abs(found.conf - 0.91) < 1e-9
    assert str(found) == "family canidae 0.91"


def test_a_sure_label_wins(taxonomy: Taxonomy) -> None:
    probs = {
        "coyote": 0.95,
        "gray_fox": 0.05,
        "red_fox": 0.0,
        "bobcat": 0.0,
        "white-tailed deer": 0.0,
        "other": 0.0,
    }
    assert rollup(probs, lineages(taxonomy), 0.9) == Rollup("coyote", LABEL_LEVEL, 0.95)


def test_climbs_as_far_as_needed(taxonomy: Taxonomy) -> None:
    probs = {
        "coyote": 0.4,
        "gray_fox": 0.2,
        "red_fox": 0.0,
        "bobcat": 0.3,
        "white-tailed deer": 0.1,
        "other": 0.0,
    }
    # the sum's last bit depends on the order the machine's BLAS adds in (0.9 vs 0.9000000000000001)
    assert rollup(probs, lineages(taxonomy), 0.85) == Rollup(
        "carnivora", "order", pytest.approx(probs["coyote"] + probs["gray_fox"] + probs["bobcat"])
    )
    assert rollup(probs, lineages(taxonomy), 0.95).name == "mammalia"


def test_nothing_clears(taxonomy: Taxonomy) -> None:
    probs = {
        "coyote": 0.3,
        "gray_fox": 0.0,
        "red_fox": 0.0,
        "bobcat": 0.0,
        "white-tailed deer": 0.0,
        "other": 0.7,
    }
    assert rollup(probs, lineages(taxonomy), 0.9) is None


def test_lower_threshold_prefers_deeper_then_larger(taxonomy: Taxonomy) -> None:
    lin = lineages(taxonomy)
    probs = np.array([[0.3, 0.1, 0.1, 0.45, 0.05, 0.0]])
    names, levels, confs = rollup_array(probs, list(lin), lin, 0.4)
    assert (names[0], levels[0], confs[0]) == ("bobcat", LABEL_LEVEL, 0.45)
    names, levels, confs = rollup_array(probs, list(lin), lin, 0.46)
    assert (names[0], levels[0]) == (
        "canidae",
        "family",
    )  # canidae 0.5 and felidae 0.45 are equally deep


def test_vectorized_matches_single_rows(taxonomy: Taxonomy) -> None:
    lin = lineages(taxonomy)
    labels = list(lin)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(len(labels)) * 0.5, size=200)
    names, _levels, confs = rollup_array(probs, labels, lin, 0.8)
    for i in range(0, 200, 17):
        single = rollup(dict(zip(labels, probs[i], strict=True)), lin, 0.8)
        assert (single.name if single else "") == names[i]
        assert single is None or np.isclose(single.conf, confs[i])


def test_spec_lineages_are_lowest_common_ancestors(taxonomy: Taxonomy) -> None:
    spec = spec_from_dict(
        {
            "canid": {
                "taxa": [{"level": "species", "name": "canis latrans"}],
                "dataset_labels": {"beta": ["fox"]},
            },
            "deer": {"taxa": [{"level": "family", "name": "cervidae"}]},
            "empty": {"dataset_labels": {"alpha": ["empty"]}},
        }
    )
    lin = spec_lineages(spec, taxonomy)
    assert lin["canid"][-1] == Taxon("family", "canidae")
    assert lin["deer"][-1] == Taxon("family", "cervidae")
    assert lin["empty"] == ()


def test_common_lineage() -> None:
    a, b, c = Taxon("kingdom", "animalia"), Taxon("class", "aves"), Taxon("class", "mammalia")
    assert common_lineage([(a, b), (a, c)]) == (a,)
    assert common_lineage([]) == ()
