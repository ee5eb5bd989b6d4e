"""Validating a spec against the taxonomy (and against the CCT datasets being used)."""

from __future__ import annotations

from ct_taxonomy.resolve import resolve_spec
from ct_taxonomy.spec import spec_dict_from_csv, spec_from_dict
from ct_taxonomy.taxonomy import Taxonomy


def problems(spec_data: dict, taxonomy: Taxonomy | None, **kw: object) -> list[str]:
    return [
        f"{p.severity}: {p}"
        for p in resolve_spec(spec_from_dict(spec_data), taxonomy, **kw).problems
    ]  # type: ignore[arg-type]


def test_taxa_rows_and_exclusions_resolve(taxonomy: Taxonomy) -> None:
    spec = spec_from_dict(
        {
            "canid": {
                "taxa": [{"level": "family", "name": "canidae"}],
                "exclude": {"taxa": [{"level": "genus", "name": "vulpes"}]},
            },
            "deer": {
                "taxa": [{"level": "family", "name": "cervidae", "datasets": ["beta"]}],
                "dataset_labels": {"alpha": ["deer"]},
            },
            "bird": {
                "taxa": [{"level": "class", "name": "AVES"}],
                "exclude": {"dataset_labels": {"alpha": ["turkey"]}},
            },
        }
    )
    res = resolve_spec(spec, taxonomy)
    assert res.problems == []
    assert res.labels == {
        "canid": {("alpha", "coyote"), ("alpha", "gray_fox"), ("beta", "coyote")},
        "deer": {("beta", "muledeer"), ("beta", "cervid"), ("alpha", "deer")},
        "bird": {("alpha", "crow"), ("beta", "bird")},
    }


def test_unknown_names_get_near_matches(taxonomy: Taxonomy) -> None:
    found = problems(
        {
            "a": {"taxa": [{"level": "family", "name": "canidea"}]},
            "b": {"taxa": [{"level": "genus", "name": "cervidae"}]},
            "c": {"dataset_labels": {"alpha": ["coyotte"]}},
            "d": {"dataset_labels": {"alpah": ["coyote"]}},
        },
        taxonomy,
    )
    assert found == [
        "error: $['a'].taxa[0]: taxon 'family canidea' is not in the taxonomy — did you mean 'canidae'?",
        "error: $['b'].taxa[0]: taxon 'genus cervidae' is not in the taxonomy — the taxonomy has 'family cervidae'",
        "error: $['c'].dataset_labels['alpha'][0]: dataset 'alpha' has no label 'coyotte' — did you mean 'coyote'?",
        "error: $['d'].dataset_labels['alpah']: dataset 'alpah' is not in the taxonomy — did you mean 'alpha'?",
    ]


def test_overlapping_labels_are_errors_unless_multilabel(taxonomy: Taxonomy) -> None:
    data = {
        "mammal": {"taxa": [{"level": "class", "name": "mammalia"}]},
        "canid": {"taxa": [{"level": "family", "name": "canidae"}]},
    }
    (err,) = problems(data, taxonomy)
    assert err.startswith(
        "error: $['canid']: labels 'mammal', 'canid' claim the same 5 dataset label(s): alpha|coyote, alpha|gray_fox"
    )
    (warn,) = problems(data, taxonomy, allow_multilabel=True)
    assert warn.startswith("warning: ")
    res = resolve_spec(spec_from_dict(data), taxonomy, allow_multilabel=True)
    assert res.overlaps[("beta", "fox")] == ["mammal", "canid"]


def test_exclusion_that_excludes_nothing_warns(taxonomy: Taxonomy) -> None:
    data = {
        "canid": {
            "taxa": [{"level": "family", "name": "canidae"}],
            "exclude": {"taxa": [{"level": "family", "name": "felidae"}]},
        }
    }
    assert problems(data, taxonomy) == [
        "warning: $['canid'].exclude: excludes nothing this label selects — check the excluded taxa and dataset labels"
    ]


def test_label_excluded_to_nothing_is_an_error(taxonomy: Taxonomy) -> None:
    data = {
        "fox": {
            "dataset_labels": {"beta": ["fox"]},
            "exclude": {"taxa": [{"level": "genus", "name": "vulpes"}]},
        }
    }
    assert problems(data, taxonomy) == [
        "error: $['fox']: matches no dataset label — check its taxa and dataset labels against the taxonomy"
    ]


def test_taxa_without_a_taxonomy(taxonomy: Taxonomy) -> None:
    assert problems({"a": {"taxa": [{"level": "family", "name": "canidae"}]}}, None) == [
        "error: $['a'].taxa[0]: selects taxon 'family canidae' but no taxonomy was given — pass --taxonomy with LILA's taxonomy mapping CSV"
    ]
    assert problems({"a": {"dataset_labels": {"x": ["y"]}}}, None) == []


def test_checked_against_the_given_datasets(taxonomy: Taxonomy) -> None:
    cats = {"alpha": {"coyote", "deer"}}
    data = {
        "a": {"dataset_labels": {"alpha": ["coyote", "dear"], "gamma": ["x"]}},
        "b": {"dataset_labels": {"alpha": ["deer"]}, "max_count": 2, "prioritize": [["gamma"]]},
    }
    assert problems(data, taxonomy, dataset_categories=cats) == [
        "error: $['a'].dataset_labels['alpha'][1]: dataset 'alpha' has no label 'dear' — did you mean 'deer'?",
        "error: $['a'].dataset_labels['gamma']: dataset 'gamma' is not in the datasets given — known: alpha",
    ]
    assert problems(data, taxonomy, dataset_categories=cats, ignore_missing_datasets=True)[
        1
    ].startswith("warning: $['a'].dataset_labels['gamma']")


def test_csv_problems_carry_line_numbers(taxonomy: Taxonomy) -> None:
    data, lines = spec_dict_from_csv(
        "output_label,type,content\ncanid,family,canidae\ncanid,genus,vulpez\n", source="spec.csv"
    )
    spec = spec_from_dict(data, source="spec.csv", lines=lines)
    (p,) = resolve_spec(spec, taxonomy).problems
    assert p.path == "line 3 ($['canid'].taxa[1])"
    assert "did you mean 'vulpes'" in p.hint
