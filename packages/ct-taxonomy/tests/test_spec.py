"""Label specs: the JSON and CSV syntaxes, conversion, and errors with lines and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from ct_io.errors import CamtrapError, FormatError
from ct_io.jsonio import read_json
from ct_taxonomy.spec import (
    every_category_spec,
    read_spec,
    spec_dict_from_csv,
    spec_from_dict,
    spec_to_dict,
    write_spec_json,
)

SEED_CSV = """\
# comment lines starting with '#' are allowed
output_label,type,content

cervid,row,idfg|deer
cervid,row,idfg|elk
cervid,row,idfg_swwlf_2019|elk
cervid,max_count,50000
cervid,family,cervidae
cervid,datasettaxon,idfg|family|cervidae

bird,row,idfg_swwlf_2019|bird
bird,class,aves
bird,max_count,50000
bird,prioritize,"[['idfg_swwlf_2019'], ['idfg']]"
!bird,row,idfg_swwlf_2019|turkey
!bird,genus,meleagris
!bird,datasettaxon,idfg|species|corvus corax
"""


def test_csv_every_row_type_converts_to_the_json_syntax() -> None:
    data, lines = spec_dict_from_csv(SEED_CSV)
    assert list(data) == ["cervid", "bird"]
    assert data["cervid"] == {
        "dataset_labels": {"idfg": ["deer", "elk"], "idfg_swwlf_2019": ["elk"]},
        "max_count": 50000,
        "taxa": [
            {"level": "family", "name": "cervidae"},
            {"level": "family", "name": "cervidae", "datasets": ["idfg"]},
        ],
    }
    assert data["bird"]["prioritize"] == [["idfg_swwlf_2019"], ["idfg"]]
    assert data["bird"]["exclude"] == {
        "dataset_labels": {"idfg_swwlf_2019": ["turkey"]},
        "taxa": [
            {"level": "genus", "name": "meleagris"},
            {"level": "species", "name": "corvus corax", "datasets": ["idfg"]},
        ],
    }
    # every element remembers its line
    assert lines["$['cervid'].dataset_labels['idfg'][1]"] == 5
    assert lines["$['bird'].exclude.taxa[1]"] == 17
    assert lines["$['bird'].prioritize"] == 14


def test_spec_to_json_writes_the_seed_key_order(tmp_path: Path) -> None:
    src = tmp_path / "spec.csv"
    src.write_text(SEED_CSV)
    spec = read_spec(src)
    write_spec_json(spec, tmp_path / "spec.json")
    written = read_json(tmp_path / "spec.json")
    assert list(written["bird"]) == ["dataset_labels", "taxa", "exclude", "max_count", "prioritize"]
    again = read_spec(tmp_path / "spec.json")
    assert spec_to_dict(again) == spec_to_dict(spec)
    assert again.labels["cervid"].taxa[1].datasets == ["idfg"]


def test_csv_without_header_and_with_windows_line_endings() -> None:
    data, _ = spec_dict_from_csv("deer,species,odocoileus virginianus\r\ndeer,row,a|deer\r\n")
    assert data == {
        "deer": {
            "taxa": [{"level": "species", "name": "odocoileus virginianus"}],
            "dataset_labels": {"a": ["deer"]},
        }
    }


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("x,row,idfg", "line 2: content 'idfg' must be dataset_name|dataset_label"),
        ("x,datasettaxon,idfg|family", "must be dataset_name|taxon_level|taxon_name"),
        ("x,familly,cervidae", "unknown type 'familly'"),
        ("x,max_count,lots", "max_count 'lots' is not an integer"),
        ("x,prioritize,[['a'], 'b']", "expected 3 fields"),
        ("x,prioritize,\"[['a'], 'b']\"", "is not a list of lists of dataset names"),
        ("x,prioritize,\"__import__('os')\"", "is not a list of lists"),
        ("!x,max_count,3", "max_count cannot be excluded"),
        (",row,a|b", "empty output_label"),
        ("x,class", "expected 3 fields"),
    ],
)
def test_bad_csv_rows_name_their_line(row: str, message: str) -> None:
    with pytest.raises(FormatError) as err:
        spec_dict_from_csv(f"output_label,type,content\n{row}\n", source="spec.csv")
    assert message in str(err.value)
    assert str(err.value).startswith("spec.csv: line 2")


def test_unknown_csv_type_suggests_the_level() -> None:
    with pytest.raises(FormatError, match="did you mean 'family'"):
        spec_dict_from_csv("x,familly,cervidae\n")


def test_every_bad_row_is_listed() -> None:
    with pytest.raises(FormatError) as err:
        spec_dict_from_csv("a,max_count,1\na,max_count,2\nb,row,x\n")
    lines = [str(p) for p in err.value.problems]
    assert lines == [
        "line 2: max_count for 'a' already set on line 1",
        "line 3: content 'x' must be dataset_name|dataset_label",
    ]


def test_csv_semantic_errors_point_at_lines(tmp_path: Path) -> None:
    src = tmp_path / "spec.csv"
    src.write_text("deer,family,cervidae\nbird,class,aves\nbird,prioritize,\"[['a']]\"\n")
    with pytest.raises(FormatError) as err:
        read_spec(src)
    assert (
        str(err.value.problems[0])
        == "line 3 ($['bird'].prioritize): has no effect without max_count — add max_count or remove prioritize"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"x": {"taxa": [{"level": "family"}]}}, "$['x'].taxa[0].name: required key missing"),
        (
            {"x": {"taxa": [{"level": "family", "name": "a"}], "maxcount": 3}},
            "$['x']: unknown key(s) maxcount",
        ),
        (
            {"x": {"dataset_labels": {"a": "deer"}}},
            "$['x'].dataset_labels['a']: expected a list, got 'deer'",
        ),
        (
            {"x": {"dataset_labels": {"a": ["deer"]}, "max_count": "5"}},
            "$['x'].max_count: expected an integer, got '5'",
        ),
        (
            {"x": {"dataset_labels": {"a": ["deer"]}, "max_count": 0}},
            "$['x'].max_count: must be at least 1",
        ),
        (
            {"x": {"taxa": [{"level": "famly", "name": "a"}]}},
            "$['x'].taxa[0].level: unknown taxonomy level 'famly' — did you mean 'family'",
        ),
        ({"x": {}}, "$['x']: selects nothing"),
        ({"x": 3}, "$['x']: expected an object"),
        ([], "$: expected an object of label → rule"),
        (
            {
                "x": {
                    "dataset_labels": {"a": ["deer"]},
                    "max_count": 3,
                    "prioritize": [["a"], ["b", "a"]],
                }
            },
            "dataset 'a' is already in priority group 0",
        ),
    ],
)
def test_bad_json_specs_name_the_json_path(data: object, expected: str) -> None:
    with pytest.raises(FormatError) as err:
        spec_from_dict(data, source="spec.json")
    assert any(expected in str(p) for p in err.value.problems), err.value.problems


def test_read_spec_bad_files(tmp_path: Path) -> None:
    with pytest.raises(CamtrapError, match="file not found"):
        read_spec(tmp_path / "missing.csv")
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": {"taxa": [')
    with pytest.raises(CamtrapError, match="malformed JSON"):
        read_spec(bad)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CamtrapError, match="not a UTF-8"):
        read_spec(binary)


def test_every_category_spec_leaves_out_empty_and_needs_one_other() -> None:
    spec = every_category_spec(["Empty", " Deer ", "deer", "fox", ""], "cams")
    assert spec_to_dict(spec) == {
        "deer": {"dataset_labels": {"cams": ["deer"]}},
        "fox": {"dataset_labels": {"cams": ["fox"]}},
    }
    with pytest.raises(CamtrapError, match=r"^cams: no category other than 'empty' to train on$"):
        every_category_spec(["empty", "EMPTY"], "cams")
