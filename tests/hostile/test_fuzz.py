"""Fuzz the loaders of user files: arbitrary or mutated bytes may only raise the project's
own one-line errors (``CamtrapError`` subclasses), never a bare Python exception."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ct_io.cct import read_cct
from ct_io.errors import CamtrapError
from ct_io.md import parse_md, read_md
from ct_taxonomy.spec import read_spec

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

GOOD_CCT: dict[str, Any] = {
    "info": {"version": "1"},
    "images": [
        {"id": "a", "file_name": "a.jpg", "width": 100, "height": 80, "location": "L1"},
        {"id": "b", "file_name": "b.jpg", "width": 100, "height": 80, "location": 2},
    ],
    "annotations": [
        {"id": "x", "image_id": "a", "category_id": 1, "bbox": [1, 2, 30, 40]},
        {"id": "y", "image_id": "b", "category_id": 0},
    ],
    "categories": [{"id": 0, "name": "empty"}, {"id": 1, "name": "deer"}],
}
GOOD_MD: dict[str, Any] = {
    "info": {"format_version": "1.3", "detector": "md_v5a"},
    "detection_categories": {"1": "animal", "2": "person"},
    "images": [
        {
            "file": "a.jpg",
            "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.5, 0.5]}],
        },
        {"file": "b.jpg", "failure": "Failure image access"},
    ],
}
GOOD_SPEC: dict[str, Any] = {
    "deer": {"dataset_labels": {"ds": ["deer", "elk"]}, "max_count": 10},
    "empty": {"dataset_labels": {"ds": ["empty"]}},
}

# Any JSON value, including the odd ones (NaN, huge ints, nesting, unicode).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value (dict keys and list indices)."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return copy


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    """``base`` with one node replaced by any JSON value, serialised, maybe truncated."""
    paths = _paths(base)
    path = draw(st.sampled_from(paths))
    doc = _replace(base, path, draw(json_values))
    data = json.dumps(doc, allow_nan=True).encode()
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data


def _load(loader: Any, path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        loader(path)
    except CamtrapError as exc:
        assert str(exc).strip(), "an error must say something"


@FUZZ
@given(data=st.binary(max_size=200) | mutated(GOOD_CCT))
def test_read_cct_raises_only_project_errors(tmp_path: Path, data: bytes) -> None:
    _load(read_cct, tmp_path / "fuzz.json", data)


@FUZZ
@given(data=st.binary(max_size=200) | mutated(GOOD_MD))
def test_read_md_raises_only_project_errors(tmp_path: Path, data: bytes) -> None:
    _load(read_md, tmp_path / "fuzz.json", data)


@FUZZ
@given(doc=json_values | st.builds(lambda d: d, mutated(GOOD_MD)).map(lambda b: b))
def test_parse_md_raises_only_project_errors(doc: Any) -> None:
    if isinstance(doc, bytes):
        try:
            doc = json.loads(doc)
        except ValueError:
            return
    with contextlib.suppress(CamtrapError):  # any other exception fails the test
        parse_md(doc)


@FUZZ
@given(data=st.binary(max_size=200) | mutated(GOOD_SPEC))
def test_json_label_spec_raises_only_project_errors(tmp_path: Path, data: bytes) -> None:
    _load(read_spec, tmp_path / "spec.json", data)


csv_cells = st.text(alphabet=st.sampled_from('abc,;|:"=\n 12.-_é\t'), max_size=16)


@FUZZ
@given(
    rows=st.lists(st.lists(csv_cells, min_size=0, max_size=6), max_size=5),
    raw=st.binary(max_size=120),
    use_raw=st.booleans(),
)
def test_csv_label_spec_raises_only_project_errors(
    tmp_path: Path, rows: list[list[str]], raw: bytes, use_raw: bool
) -> None:
    header = "output_label,type,content\n"
    body = header + "\n".join(",".join(r) for r in rows)
    _load(read_spec, tmp_path / "spec.csv", raw if use_raw else body.encode())


@pytest.mark.parametrize(
    "text",
    [
        "output_label,type,content\ndeer,dataset_labels,ds|deer\n",
        "output_label,type,content\ndeer,max_count,notanumber\n",
        "output_label,type,content\ndeer,weird_type,x\n",
        "",
        "\ufeff",
    ],
)
def test_csv_label_spec_examples(tmp_path: Path, text: str) -> None:
    _load(read_spec, tmp_path / "spec.csv", text.encode())


@pytest.mark.parametrize(
    "text",
    [
        '{"images":[],"annotations":[{"id":1,"image_id":1,"bbox":[1e999,0,5,5]}],"categories":[]}',
        '{"info":{"x":1e999},"images":[],"annotations":[],"categories":[]}',
        '{"images":[],"annotations":[],"categories":[],"extra":-1e999}',
        '{"images":[{"id":1,"width":123456789012345678901234567890}],"annotations":[],"categories":[]}',
    ],
)
def test_cct_numbers_out_of_range_are_one_line_errors(tmp_path: Path, text: str) -> None:
    """Regression: msgspec's 'Number out of range' escaped read_cct as a traceback."""
    _load(read_cct, tmp_path / "big.json", text.encode())


def test_bare_values_in_a_table_are_an_error_not_a_segfault(tmp_path: Path) -> None:
    """Regression: pyarrow's NDJSON reader segfaulted on non-object records (found by the
    fuzz above); run in a child process so a crash fails this test instead of pytest."""
    import subprocess
    import sys

    path = tmp_path / "bare.json"
    path.write_text('{"images": [null, -1e-05, "x", null], "annotations": [], "categories": []}')
    code = "from ct_io.cct import read_cct\nimport sys\nread_cct(sys.argv[1])"
    for _ in range(5):  # the crash was intermittent
        proc = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True
        )
        assert proc.returncode == 1, proc.stderr[-2000:]
        assert "FormatError" in proc.stderr and "expected an object" in proc.stderr
