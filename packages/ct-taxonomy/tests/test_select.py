"""Selecting images from CCT datasets: one label each, conflicts, exclusions, sampling,
known mislabeled images, boxes, and the queried_images.json it produces."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ct_io.tables import read_queried_images, write_queried_images
from ct_taxonomy.mislabeled import read_mislabeled_csv, read_mislabeled_dir
from ct_taxonomy.sampling import sample_with_priority
from ct_taxonomy.select import NamedDataset, SpecError, select_images
from ct_taxonomy.spec import every_category_spec, spec_from_dict
from ct_taxonomy.taxonomy import Taxonomy

CANID = {"taxa": [{"level": "family", "name": "canidae"}]}
DEER = {"taxa": [{"level": "family", "name": "cervidae"}]}
BOBCAT = {"dataset_labels": {"alpha": ["bobcat"]}}


def keys(sel: object, label: str | None = None) -> set[str]:
    return {k for k, im in sel.images.items() if label is None or label in im.label}  # type: ignore[attr-defined]


def test_each_image_gets_its_label(taxonomy: Taxonomy, datasets: list[NamedDataset]) -> None:
    sel = select_images(
        spec_from_dict({"canid": CANID, "deer": DEER, "bobcat": BOBCAT}), datasets, taxonomy
    )
    assert keys(sel, "canid") == {
        "alpha/a/coyote1.jpg", "alpha/a/coyote2.jpg", "alpha/a/coyote3.jpg", "alpha/a/fox1.jpg", "alpha/a/fox2.jpg",
        "alpha/a/bad1.jpg", "beta/b/coy1.jpg", "beta/b/coy2.jpg", "beta/b/fox1.jpg",
    }  # fmt: skip
    assert keys(sel, "deer") == {
        "alpha/a/deer1.jpg",
        "alpha/a/deer2.jpg",
        "alpha/a/deer3.jpg",
        "alpha/a/deer4.jpg",
        "alpha/a/wrong1.jpg",
        "alpha/a/elk1.jpg",
        "beta/b/mule1.jpg",
        "beta/b/mule2.jpg",
        "beta/b/mule3.jpg",
        "beta/b/cervid1.jpg",
    }
    assert keys(sel, "bobcat") == {"alpha/a/bobcat1.jpg"}
    assert all(len(im.label) == 1 for im in sel.images.values())
    coy = sel.images["beta/b/coy1.jpg"]
    assert (coy.dataset, coy.location, coy.dataset_class, coy.bbox) == ("beta", "0", "Coyote", None)
    assert sel.counts().loc["canid"].to_dict() == {"alpha": 6, "beta": 3}


def test_every_category_spec_selects_each_category_as_its_own_label(
    datasets: list[NamedDataset],
) -> None:
    beta = datasets[1]
    spec = every_category_spec(beta.cct.categories["name"].tolist(), "beta")
    assert list(spec.labels) == ["bird", "blank", "cervid", "coyote", "fox", "human", "muledeer"]
    sel = select_images(spec, [beta], None)
    assert keys(sel, "coyote") == {"beta/b/coy1.jpg", "beta/b/coy2.jpg"}  # "Coyote" in the CCT
    assert keys(sel, "muledeer") == {"beta/b/mule1.jpg", "beta/b/mule2.jpg", "beta/b/mule3.jpg"}
    assert len(sel.images) == 10


def test_two_species_in_one_frame_is_a_reported_conflict(
    taxonomy: Taxonomy, datasets: list[NamedDataset]
) -> None:
    sel = select_images(spec_from_dict({"canid": CANID, "bobcat": BOBCAT}), datasets, taxonomy)
    assert "alpha/a/mixed1.jpg" not in sel.images
    (conflict,) = sel.conflicts
    assert (conflict.image, conflict.kind, conflict.labels, conflict.classes) == (
        "alpha/a/mixed1.jpg",
        "multilabel",
        ["bobcat", "canid"],
        ["bobcat", "coyote"],
    )
    kept = select_images(
        spec_from_dict({"canid": CANID, "bobcat": BOBCAT}),
        datasets,
        taxonomy,
        allow_multilabel=True,
    )
    assert kept.images["alpha/a/mixed1.jpg"].label == ["bobcat", "canid"]
    assert len(kept.images["alpha/a/mixed1.jpg"].bbox or []) == 2


def test_unselected_species_in_the_frame_is_a_mixed_conflict(
    taxonomy: Taxonomy, datasets: list[NamedDataset]
) -> None:
    sel = select_images(spec_from_dict({"canid": CANID}), datasets, taxonomy)
    assert [(c.image, c.kind) for c in sel.conflicts] == [("alpha/a/mixed1.jpg", "mixed")]
    assert "alpha/a/mixed1.jpg" not in sel.images
    kept = select_images(
        spec_from_dict({"canid": CANID}), datasets, taxonomy, allow_multilabel=True
    )
    mixed = kept.images["alpha/a/mixed1.jpg"]
    assert mixed.label == ["canid"]
    assert mixed.dataset_class == "bobcat,coyote"
    assert len(mixed.bbox or []) == 1  # only the coyote's box: the bobcat is not a canid


def test_overlapping_labels_need_allow_multilabel(
    taxonomy: Taxonomy, datasets: list[NamedDataset]
) -> None:
    spec = spec_from_dict(
        {"mammal": {"taxa": [{"level": "class", "name": "mammalia"}]}, "canid": CANID}
    )
    with pytest.raises(SpecError, match="labels 'mammal', 'canid' claim the same"):
        select_images(spec, datasets, taxonomy)
    sel = select_images(spec, datasets, taxonomy, allow_multilabel=True)
    assert sel.images["beta/b/fox1.jpg"].label == ["canid", "mammal"]
    assert {c.kind for c in sel.conflicts} == {"multilabel"}


def test_exclusions(taxonomy: Taxonomy, datasets: list[NamedDataset]) -> None:
    spec = spec_from_dict(
        {
            "canid": {
                **CANID,
                "exclude": {
                    "taxa": [{"level": "genus", "name": "vulpes"}],
                    "dataset_labels": {"beta": ["coyote"]},
                },
            },
            "bird": {
                "taxa": [{"level": "class", "name": "aves"}],
                "exclude": {"dataset_labels": {"alpha": ["turkey"]}},
            },
        }
    )
    sel = select_images(spec, datasets, taxonomy)
    assert keys(sel, "canid") == {
        "alpha/a/coyote1.jpg",
        "alpha/a/coyote2.jpg",
        "alpha/a/coyote3.jpg",
        "alpha/a/fox1.jpg",
        "alpha/a/bad1.jpg",
    }
    assert keys(sel, "bird") == {"alpha/a/crow1.jpg", "beta/b/bird1.jpg"}


def test_dataset_labels_only_need_no_taxonomy(datasets: list[NamedDataset]) -> None:
    spec = spec_from_dict(
        {
            "empty": {"dataset_labels": {"alpha": ["empty"], "beta": ["blank"]}},
            "human": {"dataset_labels": {"beta": ["Human"]}},
        }
    )
    sel = select_images(spec, datasets)
    assert keys(sel) == {"alpha/a/empty1.jpg", "beta/b/blank1.jpg", "beta/b/human1.jpg"}


def test_bad_spec_against_the_datasets(taxonomy: Taxonomy, datasets: list[NamedDataset]) -> None:
    with pytest.raises(SpecError) as err:
        select_images(
            spec_from_dict({"x": {"dataset_labels": {"alpha": ["coyot"], "gamma": ["x"]}}}),
            datasets,
            taxonomy,
        )
    assert [str(p) for p in err.value.problems] == [
        "$['x'].dataset_labels['alpha'][0]: dataset 'alpha' has no label 'coyot' — did you mean 'coyote'?",
        "$['x'].dataset_labels['gamma']: dataset 'gamma' is not in the datasets given — known: alpha, beta",
    ]
    with pytest.raises(SpecError, match="given twice"):
        select_images(spec_from_dict({"canid": CANID}), [*datasets, datasets[0]], taxonomy)


def test_missing_datasets_can_be_ignored(taxonomy: Taxonomy, datasets: list[NamedDataset]) -> None:
    spec = spec_from_dict({"canid": {**CANID, "dataset_labels": {"gamma": ["wolf"]}}})
    sel = select_images(spec, datasets[:1], taxonomy, ignore_missing_datasets=True)
    assert keys(sel, "canid") == {
        "alpha/a/coyote1.jpg",
        "alpha/a/coyote2.jpg",
        "alpha/a/coyote3.jpg",
        "alpha/a/fox1.jpg",
        "alpha/a/fox2.jpg",
        "alpha/a/bad1.jpg",
    }
    assert [p.severity for p in sel.resolution.problems] == ["warning"]


def test_mislabeled_images_are_corrected_or_dropped(
    taxonomy: Taxonomy, datasets: list[NamedDataset], tmp_path: Path
) -> None:
    (tmp_path / "ALPHA.csv").write_text(
        "file,correct_class\na/wrong1.jpg,elk\na/bad1.jpg,\na/gone.jpg,deer\n"
    )
    (tmp_path / "other.csv").write_text("file,correct_class\nx.jpg,\n")
    fixes = read_mislabeled_dir(tmp_path, ["alpha", "beta"])
    assert fixes == {"alpha": {"a/wrong1.jpg": "elk", "a/bad1.jpg": None, "a/gone.jpg": "deer"}}
    spec = spec_from_dict(
        {
            "canid": CANID,
            "deer": {"dataset_labels": {"alpha": ["deer"]}},
            "elk": {"dataset_labels": {"alpha": ["elk"]}},
        }
    )
    sel = select_images(spec, datasets, taxonomy, mislabeled=fixes)
    assert "alpha/a/bad1.jpg" not in sel.images
    assert sel.images["alpha/a/wrong1.jpg"].label == ["elk"]
    assert sel.images["alpha/a/wrong1.jpg"].dataset_class == "elk"
    st = sel.datasets["alpha"]
    assert (st.mislabeled_corrected, st.mislabeled_removed, st.mislabeled_not_found) == (1, 1, 1)


def test_bad_mislabeled_lists(tmp_path: Path) -> None:
    bad = tmp_path / "a.csv"
    bad.write_text("image,label\nx.jpg,deer\n")
    with pytest.raises(Exception, match="needs columns 'file' and 'correct_class'"):
        read_mislabeled_csv(bad)
    bad.write_text("file,correct_class\nx.jpg,deer\nx.jpg,elk\n")
    with pytest.raises(Exception, match=re.escape("line 3: 'x.jpg' is listed twice")):
        read_mislabeled_csv(bad)
    with pytest.raises(Exception, match="not a folder"):
        read_mislabeled_dir(tmp_path / "nope", ["a"])


def test_boxes_are_normalized_and_need_image_size(
    taxonomy: Taxonomy, make_cct: Callable[..., object]
) -> None:
    cct = make_cct([("x/coyote.jpg", ["coyote"]), ("x/edge.jpg", ["coyote"])], boxes=True)
    cct.annotations.loc[1, ["bbox_x", "bbox_w"]] = [350, 100]  # crosses the right edge: clipped
    sel = select_images(
        spec_from_dict({"c": {"dataset_labels": {"x": ["coyote"]}}}),
        [NamedDataset("x", cct)],
        taxonomy,
    )
    assert sel.images["x/x/coyote.jpg"].bbox[0].bbox == [0.1, 0.1, 0.25, 0.25]
    assert sel.images["x/x/edge.jpg"].bbox[0].bbox == [0.875, 0.1, 0.125, 0.25]
    cct.images.loc[0, "width"] = None
    sel = select_images(
        spec_from_dict({"c": {"dataset_labels": {"x": ["coyote"]}}}),
        [NamedDataset("x", cct)],
        taxonomy,
    )
    assert sel.images["x/x/coyote.jpg"].bbox is None
    assert sel.datasets["x"].boxes_without_image_size == 1


def test_unsafe_file_names_are_skipped(taxonomy: Taxonomy, make_cct: Callable[..., object]) -> None:
    cct = make_cct(
        [
            ("../../etc/coyote.jpg", ["coyote"]),
            ("/abs/coyote.jpg", ["coyote"]),
            ("ok/coyote.jpg", ["coyote"]),
        ],
        boxes=False,
    )
    sel = select_images(
        spec_from_dict({"c": {"dataset_labels": {"x": ["coyote"]}}}),
        [NamedDataset("x", cct)],
        taxonomy,
    )
    assert keys(sel) == {"x/ok/coyote.jpg"}
    assert sel.datasets["x"].unsafe_file_names == 2


def test_images_without_location_get_unknown_location(
    taxonomy: Taxonomy, make_cct: Callable[..., object]
) -> None:
    cct = make_cct([("coyote.jpg", ["coyote"])], boxes=False)
    cct.images["location"] = None
    sel = select_images(
        spec_from_dict({"c": {"dataset_labels": {"x": ["coyote"]}}}),
        [NamedDataset("x", cct)],
        taxonomy,
    )
    assert sel.images["x/coyote.jpg"].location == "unknown_location"


def test_max_count_prioritizes_datasets(taxonomy: Taxonomy, datasets: list[NamedDataset]) -> None:
    spec = spec_from_dict(
        {
            "deer": {**DEER, "max_count": 5, "prioritize": [["beta"]]},
            "canid": {**CANID, "max_count": 2},
        }
    )
    sel = select_images(spec, datasets, taxonomy)
    assert keys(sel, "deer") >= {
        "beta/b/mule1.jpg",
        "beta/b/mule2.jpg",
        "beta/b/mule3.jpg",
        "beta/b/cervid1.jpg",
    }
    assert len(keys(sel, "deer")) == 5
    assert len(keys(sel, "canid")) == 2
    assert sel.before_sampling == {"deer": 10, "canid": 9}


def test_max_count_is_deterministic_for_a_seed(
    taxonomy: Taxonomy, datasets: list[NamedDataset]
) -> None:
    spec = spec_from_dict({"deer": {**DEER, "max_count": 3}, "canid": {**CANID, "max_count": 4}})
    runs = [keys(select_images(spec, datasets, taxonomy, seed=7)) for _ in range(2)]
    assert runs[0] == runs[1]
    assert keys(select_images(spec, list(reversed(datasets)), taxonomy, seed=7)) == runs[0]
    seeds = {frozenset(keys(select_images(spec, datasets, taxonomy, seed=s))) for s in range(8)}
    assert len(seeds) > 1  # the seed really drives the sample


def test_sampling_counts_images_kept_for_earlier_labels() -> None:
    images = {f"img{i}": ("a" if i < 4 else "b", ["x", "y"] if i < 2 else ["y"]) for i in range(8)}
    spec = spec_from_dict(
        {
            "x": {"dataset_labels": {"a": ["x"]}},
            "y": {"dataset_labels": {"a": ["y"]}, "max_count": 3, "prioritize": [["b"]]},
        }
    )
    kept = sample_with_priority(images, spec, seed=1)
    # x keeps img0, img1 (both also y): y's quota of 3 leaves room for exactly 1 more, from b first
    assert {"img0", "img1"} <= kept
    assert len(kept) == 3
    assert len(kept - {"img0", "img1"} & {"img4", "img5", "img6", "img7"}) == 1


def test_sampling_fills_quota_across_priority_levels() -> None:
    images = {f"k{i}": ("a" if i < 2 else "b", ["y"]) for i in range(10)}
    spec = spec_from_dict(
        {"y": {"dataset_labels": {"a": ["y"]}, "max_count": 6, "prioritize": [["a"]]}}
    )
    kept = sample_with_priority(images, spec, seed=3)
    assert len(kept) == 6 and {"k0", "k1"} <= kept


def test_queried_images_round_trip(
    taxonomy: Taxonomy, datasets: list[NamedDataset], tmp_path: Path
) -> None:
    sel = select_images(spec_from_dict({"canid": CANID}), datasets, taxonomy)
    write_queried_images(sel.images, tmp_path / "queried_images.json")
    assert read_queried_images(tmp_path / "queried_images.json") == sel.images
