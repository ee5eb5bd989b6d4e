"""Plugin options and configs: cattrs structuring, one line per problem with its path."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Literal

import attrs
import pytest

from ct_io.errors import CamtrapError
from ct_io.options import ConfigError, parse_key_values, structure
from ct_io.plugins import Registration, build_options


class Split(enum.Enum):
    TRAIN = "train"
    VAL = "val"


@attrs.frozen
class Bucket:
    bucket: str
    prefix: str = ""


@attrs.frozen
class SourceOptions:
    root: Path
    threads: int = attrs.field(default=4, validator=attrs.validators.gt(0))
    mode: Literal["copy", "link"] = "copy"
    split: Split = Split.TRAIN
    buckets: list[Bucket] = attrs.field(factory=list)


def registration(options: type | None) -> Registration:
    return Registration("data source", "s3", lambda o: o, options, "", "p", "d")


def problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        structure(data, SourceOptions, where="data source 's3' options")
    assert "\n" not in str(info.value), "a ConfigError prints as one line"
    assert str(info.value) == "data source 's3' options: " + "; ".join(info.value.lines)
    return info.value.lines


def test_valid_options_are_structured() -> None:
    opts = structure(
        {
            "root": "/data",
            "threads": 8,
            "mode": "link",
            "split": "val",
            "buckets": [{"bucket": "b"}],
        },
        SourceOptions,
    )
    assert opts == SourceOptions(Path("/data"), 8, "link", Split.VAL, [Bucket("b")])


def test_every_problem_gets_one_line_with_its_path() -> None:
    lines = problems(
        {
            "threads": "many",
            "mode": "move",
            "buckets": [{"bucket": "a"}, {"prefix": "x"}, "oops"],
        }
    )
    assert sorted(lines) == sorted(
        [
            "$.root: required option missing",
            "$.threads: expected int",
            "$.mode: expected one of 'copy', 'link', got 'move'",
            "$.buckets[1].bucket: required option missing",
            "$.buckets[2]: expected a mapping",
        ]
    )


def test_unknown_keys_are_rejected_with_suggestions() -> None:
    lines = problems({"root": "r", "thread": 2, "buckets": [{"bukcet": "a", "zzz": 1}]})
    assert (
        "$: unknown key 'thread' (did you mean 'threads'?) — known: root, threads, mode, split, buckets"
        in lines
    )
    assert (
        "$.buckets[0]: unknown keys 'bukcet' (did you mean 'bucket'?), 'zzz' — known: bucket, prefix"
        in lines
    )


def test_enum_values_and_validators_are_explained() -> None:
    assert problems({"root": "r", "split": "test"}) == ["$.split: expected one of 'train', 'val'"]
    (line,) = problems({"root": "r", "threads": 0})
    assert line.startswith("$: ") and "'threads' must be > 0" in line


@pytest.mark.parametrize("data", [["root", "r"], "root=r", None, 3])
def test_options_that_are_not_a_mapping(data: object) -> None:
    assert problems(data) == [f"$: expected a mapping of options, got {type(data).__name__}"]


def test_build_options_validates_against_the_registered_class() -> None:
    reg = registration(SourceOptions)
    assert build_options(reg, {"root": "x"}) == SourceOptions(Path("x"))
    with pytest.raises(ConfigError) as info:
        build_options(reg, {"root": "x", "bukket": 1})
    assert str(info.value).startswith("data source 's3' options: $: unknown key 'bukket'")


def test_build_options_for_a_thing_without_options() -> None:
    reg = registration(None)
    assert build_options(reg, {}) is None
    with pytest.raises(
        ConfigError, match=r"data source 's3' options: \$: takes no options, got a, b"
    ):
        build_options(reg, {"a": 1, "b": 2})


def test_parse_key_values() -> None:
    parsed = parse_key_values(
        ["root=/data", "threads=8", "ratio=0.5", "flag=true", 'names=["a"]', "eq=a=b"]
    )
    assert parsed == {
        "root": "/data",
        "threads": 8,
        "ratio": 0.5,
        "flag": True,
        "names": ["a"],
        "eq": "a=b",
    }
    for bad in ("novalue", "=x"):
        with pytest.raises(CamtrapError, match="is not KEY=VALUE"):
            parse_key_values([bad])


def test_key_values_feed_build_options() -> None:
    opts = build_options(
        registration(SourceOptions), parse_key_values(["root=/d", "threads=2", "mode=link"])
    )
    assert opts == SourceOptions(Path("/d"), 2, "link")
