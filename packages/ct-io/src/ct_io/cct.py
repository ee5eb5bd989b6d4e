"""COCO Camera Traps (CCT) JSON as columnar tables.

LILA files reach millions of images, so a CCT is held as three pandas DataFrames
(``images``, ``annotations``, ``categories``) rather than millions of Python objects.
Reading streams the file: msgspec splits the arrays into zero-copy records, pyarrow
parses them in chunks, and pages already parsed are released, so peak memory stays far
below ``json.load``. Keys the project does not model become extra columns and are
written back, so a load/save round trip loses nothing.

Columns:
- images: ``id``, ``file_name``, ``location`` (always a string), optional ``width``,
  ``height``, ``datetime``, ``seq_id``, ``seq_num_frames``, ``frame_num``, ``corrupt``...
- annotations: ``id``, ``image_id``, ``category_id``, ``bbox_x``, ``bbox_y``,
  ``bbox_w``, ``bbox_h`` (absolute pixels, NaN when there is no box), extras.
- categories: ``id``, ``name``, extras.
"""

from __future__ import annotations

import contextlib
import io
import math
import mmap
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from attrs import define, field

from ct_io.atomic import atomic_open
from ct_io.errors import CamtrapError, FormatError
from ct_io.jsonio import describe_decode_error, encode_json
from ct_io.paths import unsafe_mask, unsafe_reason
from ct_io.problems import Problem, errors_only

BBOX_COLUMNS = ("bbox_x", "bbox_y", "bbox_w", "bbox_h")
_CHUNK = 100_000
_INT_TO_NULLABLE = {pa.int64(): pd.Int64Dtype()}
# Strings pyarrow would otherwise turn into timestamps; everything else is inferred.
_PARSE_OPTIONS = {
    "images": pajson.ParseOptions(
        explicit_schema=pa.schema([("datetime", pa.string()), ("date_captured", pa.string())]),
        unexpected_field_behavior="infer",
    ),
    "annotations": pajson.ParseOptions(),
    "categories": pajson.ParseOptions(),
}
_STRING_FIELDS = {
    "images": ("file_name", "location", "datetime"),
    "annotations": (),
    "categories": ("name",),
}


@define
class CocoCameraTraps:
    """A COCO Camera Traps dataset: ``info`` plus three tables."""

    images: pd.DataFrame
    annotations: pd.DataFrame
    categories: pd.DataFrame
    info: dict[str, Any] = field(factory=dict)
    extra: dict[str, Any] = field(factory=dict)

    @property
    def category_names(self) -> dict[int, str]:
        """Category id → name."""
        return dict(
            zip(self.categories["id"].tolist(), self.categories["name"].tolist(), strict=True)
        )

    def __len__(self) -> int:
        return len(self.images)


def empty_cct() -> CocoCameraTraps:
    """A dataset with no images."""
    return from_records([], [], [])


def from_records(
    images: Iterable[Mapping[str, Any]],
    annotations: Iterable[Mapping[str, Any]],
    categories: Iterable[Mapping[str, Any]],
    info: Mapping[str, Any] | None = None,
) -> CocoCameraTraps:
    """Build a dataset from CCT-style dicts (``bbox`` as ``[x, y, w, h]`` pixels)."""
    return CocoCameraTraps(
        images=_images_frame(pd.DataFrame.from_records(list(images))),
        annotations=_annotations_frame(pd.DataFrame.from_records(list(annotations))),
        categories=_categories_frame(pd.DataFrame.from_records(list(categories))),
        info=dict(info or {}),
    )


def read_cct(path: str | os.PathLike[str]) -> CocoCameraTraps:
    """Read a CCT file into tables (streaming; see the module docstring).

    Raises ``CamtrapError`` for a missing or malformed file and ``FormatError`` when the
    structure is wrong (with the JSON path of each problem).
    """
    p = Path(path)
    if not p.is_file():
        raise CamtrapError(f"{p}: file not found")
    size = p.stat().st_size
    if size == 0 or (size < 64 and not p.read_bytes().strip()):
        raise CamtrapError(f"{p}: empty file — expected COCO Camera Traps JSON")
    with p.open("rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        info, extra, images, annotations, categories = _read_all(mm, str(p))
    except msgspec.DecodeError as exc:  # a value msgspec cannot hold (e.g. a number out of range)
        raise CamtrapError(f"{p}: unreadable JSON value: {exc} — fix or remove it") from None
    finally:
        with contextlib.suppress(BufferError):  # records still referenced by an exception's frames
            mm.close()
    if not isinstance(info, dict):
        raise FormatError(str(p), [Problem("info", "must be an object")])
    return CocoCameraTraps(
        images=_images_frame(images),
        annotations=_annotations_frame(annotations),
        categories=_categories_frame(categories),
        info=info,
        extra=extra,
    )


def _read_all(
    mm: mmap.mmap, source: str
) -> tuple[Any, dict[str, Any], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    try:
        top = msgspec.json.decode(mm, type=dict[str, msgspec.Raw])
    except msgspec.ValidationError:  # valid JSON, but not an object (a subclass of DecodeError)
        raise FormatError(
            source,
            [
                Problem(
                    "$",
                    "expected a JSON object",
                    "a CCT file is an object with images, annotations and categories",
                )
            ],
        ) from None
    except msgspec.DecodeError as exc:
        raise CamtrapError(f"{source}: {describe_decode_error(exc, mm)}") from None
    _release(mm)
    problems = [
        Problem(k, "missing", "a CCT file needs images, annotations and categories lists")
        for k in ("images", "annotations", "categories")
        if k not in top
    ]
    if problems:
        raise FormatError(source, problems)
    images = _read_table(top.pop("images"), "images", source, mm)
    annotations = _read_table(top.pop("annotations"), "annotations", source, mm)
    categories = _read_table(top.pop("categories"), "categories", source, mm)
    info = msgspec.json.decode(top.pop("info")) if "info" in top else {}
    extra = {k: msgspec.json.decode(top.pop(k)) for k in list(top)}
    return info, extra, images, annotations, categories


def _release(mm: mmap.mmap) -> None:
    """Drop the file's pages from this process's memory (they are re-read on demand)."""
    if hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mm.madvise(mmap.MADV_DONTNEED)


def _read_table(raw: msgspec.Raw, key: str, source: str, mm: mmap.mmap) -> pd.DataFrame:
    try:
        records = msgspec.json.decode(raw, type=list[msgspec.Raw])
    except msgspec.ValidationError:
        raise FormatError(source, [Problem(key, "must be a list")]) from None
    del raw
    frames: list[pd.DataFrame] = []
    start = 0
    while records:
        chunk, records[:_CHUNK] = records[:_CHUNK], []
        frames.append(_parse_chunk(chunk, key, source, start))
        start += len(chunk)
        del chunk
        _release(mm)
    if not frames:
        return pd.DataFrame()
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _parse_chunk(chunk: list[msgspec.Raw], key: str, source: str, offset: int) -> pd.DataFrame:
    """Parse records with pyarrow's NDJSON reader; fall back to msgspec for odd types."""
    data = b"\n".join(chunk)
    try:
        if not all(memoryview(r)[:1] == b"{" for r in chunk):
            raise ValueError("not every record is an object")  # pyarrow crashes on bare values
        table = pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(block_size=max(1 << 20, len(data) + 1)),
            parse_options=_PARSE_OPTIONS[key],
        )
        frame = _arrow_to_frame(table, key)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError):
        pass
    else:
        for name in _nested_columns(table, key):  # lists/objects from other tools: exact values
            frame[name] = pd.Series(_column_values(chunk, name), dtype=object)
        return frame
    rows: list[Any] = []
    for i, r in enumerate(chunk):
        try:
            obj = msgspec.json.decode(r)
        except msgspec.DecodeError as exc:  # e.g. 1e999: a number out of range
            where = f"{key}[{offset + i}]"
            raise FormatError(
                source, [Problem(where, str(exc), "fix or remove the value")]
            ) from None
        if not isinstance(obj, dict):
            raise FormatError(
                source,
                [Problem(f"{key}[{offset + i}]", f"expected an object, got {type(obj).__name__}")],
            )
        rows.append(obj)
    frame = pd.DataFrame.from_records(rows)
    if key == "annotations" and "bbox" in frame.columns:
        frame = _split_bbox_objects(frame)
    return frame


def _nested_columns(table: pa.Table, key: str) -> list[str]:
    """Columns pyarrow would not give back as written: lists and objects (besides ``bbox``),
    which pandas turns into arrays, and date-like strings it parsed into timestamps."""
    skip = {"bbox", *BBOX_COLUMNS} if key == "annotations" else set()
    return [
        f.name
        for f in table.schema
        if f.name not in skip and (pa.types.is_nested(f.type) or pa.types.is_temporal(f.type))
    ]


def _column_values(chunk: list[msgspec.Raw], name: str) -> list[Any]:
    """The values of one key of each record, decoded exactly as written."""
    values: list[Any] = []
    for r in chunk:
        raw = _RECORD.decode(r).get(name)
        values.append(None if raw is None else msgspec.json.decode(raw))
    return values


_RECORD = msgspec.json.Decoder(dict[str, msgspec.Raw])


def _arrow_to_frame(table: pa.Table, key: str) -> pd.DataFrame:
    if key == "annotations" and "bbox" in table.column_names:
        bbox = table.column("bbox")
        if not pa.types.is_list(bbox.type) or not (
            pa.types.is_floating(bbox.type.value_type) or pa.types.is_integer(bbox.type.value_type)
        ):
            raise ValueError("bbox is not a list of numbers")
        lengths = pc.list_value_length(bbox)
        if pc.any(pc.and_(pc.is_valid(lengths), pc.not_equal(lengths, 4))).as_py():
            raise ValueError("a bbox without 4 values")
        cols = {}
        for j, name in enumerate(BBOX_COLUMNS):
            cols[name] = pc.cast(pc.list_element(bbox, j), pa.float64())
        table = table.drop_columns(["bbox"])
        for name, col in cols.items():
            table = table.append_column(name, col)
    forced = [f.name for f in _PARSE_OPTIONS[key].explicit_schema or []]
    absent = [
        n for n in forced if n in table.column_names and table.column(n).null_count == len(table)
    ]
    if absent:  # the explicit schema adds its columns even when no record has them
        table = table.drop_columns(absent)
    frame = table.to_pandas(types_mapper=_INT_TO_NULLABLE.get)
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.ArrowDtype):
            frame[name] = frame[name].astype(object)
    return frame


def _split_bbox_objects(frame: pd.DataFrame) -> pd.DataFrame:
    values = frame.pop("bbox").tolist()
    out = np.full((len(values), 4), np.nan)
    bad = []
    for i, b in enumerate(values):
        if (
            isinstance(b, list)
            and len(b) == 4
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in b)
        ):
            out[i] = b
        elif b is not None and not (isinstance(b, float) and math.isnan(b)):
            bad.append(i)
    for j, name in enumerate(BBOX_COLUMNS):
        frame[name] = out[:, j]
    if bad:
        frame["_bad_bbox"] = False
        frame.loc[bad, "_bad_bbox"] = True
        frame["_bad_bbox_value"] = pd.Series(
            [values[i] if i in set(bad) else None for i in range(len(values))], dtype=object
        )
    return frame


def _ensure(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    for c in columns:
        if c not in frame.columns:
            frame[c] = pd.Series([None] * len(frame), dtype=object)
    return frame


def _as_str_or_none(series: pd.Series) -> pd.Series:
    """Locations as strings whatever the file used (ints in old datasets), NaN when absent."""
    if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(
        series.dtype
    ):
        return series
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.astype("Int64").astype("str").where(series.notna(), np.nan).astype("str")

    def conv(v: Any) -> Any:
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return None
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    return pd.Series([conv(v) for v in series.tolist()], index=series.index, dtype="str")


def _images_frame(frame: pd.DataFrame) -> pd.DataFrame:
    frame = _ensure(frame, ("id", "file_name", "location"))
    frame["location"] = _as_str_or_none(frame["location"])
    return frame.reset_index(drop=True)


def _annotations_frame(frame: pd.DataFrame) -> pd.DataFrame:
    frame = _ensure(frame, ("id", "image_id", "category_id"))
    if "bbox" in frame.columns:
        frame = _split_bbox_objects(frame)
    for c in BBOX_COLUMNS:
        if c not in frame.columns:
            frame[c] = np.nan
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    return frame.reset_index(drop=True)


def _categories_frame(frame: pd.DataFrame) -> pd.DataFrame:
    frame = _ensure(frame, ("id", "name"))
    return frame.reset_index(drop=True)


# ---------------------------------------------------------------- writing


_INT_COLUMNS = (
    "id",
    "image_id",
    "width",
    "height",
    "seq_num_frames",
    "frame_num",
    "category_id",
    "count",
)
_INTERNAL_COLUMNS = {"_bad_bbox", "_bad_bbox_value", *BBOX_COLUMNS}


def _column_values_for_json(series: pd.Series, name: str) -> list[Any]:
    """A column as plain Python values, ``None`` where missing (dropped when written).

    Whole-number floats in integer fields (a column that gained a NaN) go back to ints.
    """
    missing = series.isna().to_numpy()
    if name in _INT_COLUMNS and pd.api.types.is_float_dtype(series.dtype):
        vals = series.to_numpy(dtype=float)
        if np.all(missing | (vals == np.round(vals))):
            series = series.astype("Int64")
    values = series.tolist()
    if pd.api.types.is_object_dtype(series.dtype):
        values = [v.item() if isinstance(v, np.generic) else v for v in values]
    if missing.any():
        values = [None if m else v for v, m in zip(values, missing.tolist(), strict=True)]
    return values


def _row_columns(frame: pd.DataFrame, *, bbox: bool) -> tuple[list[str], list[list[Any]]]:
    """Column names and their Python values (``None`` = leave the key out) in CCT order."""
    cols = [c for c in frame.columns if c not in _INTERNAL_COLUMNS]
    columns = [_column_values_for_json(frame[c], c) for c in cols]
    if bbox and len(frame):
        boxes = frame[list(BBOX_COLUMNS)].to_numpy(dtype=float)
        has_box = ~np.isnan(boxes[:, 0])
        cols.append("bbox")
        columns.append(
            [b if h else None for b, h in zip(boxes.tolist(), has_box.tolist(), strict=True)]
        )
    return cols, columns


def _records(frame: pd.DataFrame, *, bbox: bool = False) -> list[dict[str, Any]]:
    """Rows as CCT dicts: missing values left out, the box columns joined into ``bbox``."""
    cols, columns = _row_columns(frame, bbox=bbox)
    if not columns:
        return [{} for _ in range(len(frame))]
    return [
        {c: v for c, v in zip(cols, row, strict=True) if v is not None}
        for row in zip(*columns, strict=True)
    ]


def _encode_rows(frame: pd.DataFrame, *, bbox: bool) -> bytes:
    """Rows as the comma-separated body of a JSON array, fast: each row becomes a msgspec
    struct whose ``None`` fields are omitted, so no per-row dict is built."""
    cols, columns = _row_columns(frame, bbox=bbox)
    if not columns:
        return b",".join(b"{}" for _ in range(len(frame)))
    names = [f"f{i}" for i in range(len(cols))]
    row_type = msgspec.defstruct(
        "Row",
        [(n, Any, None) for n in names],
        omit_defaults=True,
        rename=dict(zip(names, cols, strict=True)),
    )
    return encode_json([row_type(*row) for row in zip(*columns, strict=True)], indent=None)[1:-1]


def cct_to_dict(ds: CocoCameraTraps) -> dict[str, Any]:
    """The dataset as a plain CCT dict (extra keys and columns included)."""
    return {
        "info": ds.info,
        "images": _records(ds.images),
        "categories": _records(ds.categories),
        "annotations": _records(ds.annotations, bbox=True),
        **ds.extra,
    }


def write_cct(
    ds: CocoCameraTraps, path: str | os.PathLike[str], *, indent: int | None = None
) -> None:
    """Write a CCT file atomically; compact output is streamed in chunks (bounded memory)."""
    if indent is not None:
        with atomic_open(path, "wb") as fh:
            fh.write(encode_json(cct_to_dict(ds), indent=indent) + b"\n")
        return
    with atomic_open(path, "wb") as fh:
        fh.write(b'{"info":' + encode_json(ds.info, indent=None))
        for key, frame, bbox in (
            ("images", ds.images, False),
            ("categories", ds.categories, False),
            ("annotations", ds.annotations, True),
        ):
            fh.write(b',"' + key.encode() + b'":[')
            for start in range(0, len(frame), _CHUNK):
                if start:
                    fh.write(b",")
                fh.write(_encode_rows(frame.iloc[start : start + _CHUNK], bbox=bbox))
            fh.write(b"]")
        for key, value in ds.extra.items():
            fh.write(b"," + encode_json(key, indent=None) + b":" + encode_json(value, indent=None))
        fh.write(b"}\n")


# ---------------------------------------------------------------- validation


def validate_cct(
    ds: CocoCameraTraps, *, images_dir: str | os.PathLike[str] | None = None
) -> list[Problem]:
    """Every problem of a dataset, each with its JSON path and a hint (vectorized).

    Errors make the file invalid; warnings (missing locations, boxes crossing the edge,
    missing image files) do not. Many identical warnings are summarized in one line.
    """
    problems: list[Problem] = []
    _image_problems(ds.images, problems)
    _category_problems(ds.categories, problems)
    image_row = _lookup(ds.annotations["image_id"], ds.images["id"])
    _annotation_problems(ds, image_row, problems)
    _bbox_problems(ds, image_row, problems)
    if images_dir is not None:
        _missing_file_problems(ds.images["file_name"], Path(images_dir), problems)
    return problems


_MAX_LISTED_WARNINGS = 20


def _rows(mask: Any) -> list[int]:
    return np.flatnonzero(np.asarray(mask, dtype=bool)).tolist()


def _py(value: Any) -> Any:
    """A plain Python value for messages (``1``, not ``np.int64(1)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _warn_rows(rows: list[int], path: str, message: str, hint: str, out: list[Problem]) -> None:
    """One warning per row, or one summary line when there are many."""
    if len(rows) <= _MAX_LISTED_WARNINGS:
        out.extend(Problem(path.format(i), message, hint, "warning") for i in rows)
    elif rows:
        out.append(
            Problem(
                path.format(rows[0]),
                f"{message} (and {len(rows) - 1:,} more images)",
                hint,
                "warning",
            )
        )


def _duplicated(values: pd.Series) -> np.ndarray:
    return np.asarray(values.duplicated(keep="first") & values.notna(), dtype=bool)


def _lookup(keys: pd.Series, table: pd.Series) -> np.ndarray:
    """Row in ``table`` of each key's first match, -1 when absent (``1`` never matches ``"1"``)."""
    if not len(keys) or not len(table):
        return np.full(len(keys), -1, dtype=np.int64)
    try:
        k, t = pa.array(keys, from_pandas=True), pa.array(table, from_pandas=True)
        if k.type == t.type and not pa.types.is_null(k.type):
            return np.asarray(
                pc.index_in(k, value_set=t).fill_null(-1).to_numpy(zero_copy_only=False),
                dtype=np.int64,
            )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    first = np.flatnonzero(~np.asarray(table.duplicated(keep="first"), dtype=bool))
    codes = pd.Index(table.iloc[first].astype(object)).get_indexer(keys.astype(object))
    out = np.where(codes >= 0, first[np.maximum(codes, 0)], -1)
    return np.where(keys.isna().to_numpy(), -1, out).astype(np.int64)


def _non_strings(values: pd.Series) -> np.ndarray:
    """True where a value is present but not a string."""
    if pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_object_dtype(
        values.dtype
    ):
        return np.zeros(len(values), dtype=bool)
    return np.fromiter(
        (not isinstance(v, str) for v in values.tolist()), dtype=bool, count=len(values)
    )


def _image_problems(im: pd.DataFrame, out: list[Problem]) -> None:
    add = out.append
    for i in _rows(im["id"].isna()):
        add(Problem(f"images[{i}].id", "missing", "every image needs an id"))
    for i in _rows(_duplicated(im["id"])):
        add(
            Problem(
                f"images[{i}].id",
                f"duplicate id {_py(im['id'].iat[i])!r}",
                "image ids must be unique",
            )
        )
    fnames = im["file_name"]
    for i in _rows(_non_strings(fnames) | fnames.isna().to_numpy()):
        add(
            Problem(
                f"images[{i}].file_name",
                "missing or not a string",
                "every image needs its relative path",
            )
        )
    for i in _rows(unsafe_mask(fnames)):
        f = fnames.iat[i]
        reason = unsafe_reason(f) if isinstance(f, str) else None
        if reason:
            add(
                Problem(
                    f"images[{i}].file_name",
                    f"{f!r}: {reason}",
                    "file names must be relative paths inside the dataset folder",
                )
            )
    for col in ("width", "height"):
        if col in im.columns:
            vals = pd.to_numeric(im[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                bad = im[col].notna().to_numpy() & ~(vals > 0)
            for i in _rows(bad):
                add(
                    Problem(
                        f"images[{i}].{col}",
                        f"{_py(im[col].iat[i])!r} is not a positive number",
                        "image sizes are in pixels",
                    )
                )
    _warn_rows(
        _rows(im["location"].isna()),
        "images[{}].location",
        "missing",
        "images without a location get a pseudo-location; splits by location cannot protect them",
        out,
    )


def _category_problems(cat: pd.DataFrame, out: list[Problem]) -> None:
    ids = cat["id"]
    if not pd.api.types.is_integer_dtype(ids.dtype):
        for i, v in enumerate(ids.tolist()):
            if not isinstance(v, int) or isinstance(v, bool):
                out.append(
                    Problem(
                        f"categories[{i}].id",
                        f"{v!r} is not an integer",
                        "category ids are integers (0 is 'empty')",
                    )
                )
    for i in _rows(_duplicated(ids)):
        out.append(
            Problem(
                f"categories[{i}].id",
                f"duplicate category id {_py(ids.iat[i])!r}",
                "category ids must be unique",
            )
        )
    for i in _rows(_non_strings(cat["name"]) | cat["name"].isna().to_numpy()):
        out.append(
            Problem(
                f"categories[{i}].name", "missing or not a string", "every category needs a name"
            )
        )


def _annotation_problems(ds: CocoCameraTraps, image_row: np.ndarray, out: list[Problem]) -> None:
    an = ds.annotations
    add = out.append
    for i in _rows(_duplicated(an["id"])):
        add(
            Problem(
                f"annotations[{i}].id",
                f"duplicate id {_py(an['id'].iat[i])!r}",
                "annotation ids must be unique",
            )
        )
    for i in _rows(image_row < 0):
        add(
            Problem(
                f"annotations[{i}].image_id",
                f"{_py(an['image_id'].iat[i])!r} is not an image id",
                "remove the annotation or add its image",
            )
        )
    for i in _rows(_lookup(an["category_id"], ds.categories["id"]) < 0):
        add(
            Problem(
                f"annotations[{i}].category_id",
                f"{_py(an['category_id'].iat[i])!r} is not a category id",
                "add the category or fix the id",
            )
        )
    if "_bad_bbox" in an.columns:
        for i in _rows(an["_bad_bbox"].fillna(False)):
            add(
                Problem(
                    f"annotations[{i}].bbox",
                    f"{an['_bad_bbox_value'].iat[i]!r} is not 4 numbers",
                    "CCT boxes are [x, y, width, height] in pixels",
                )
            )


def _bbox_problems(ds: CocoCameraTraps, image_row: np.ndarray, out: list[Problem]) -> None:
    an, im = ds.annotations, ds.images
    add = out.append
    hint = "CCT boxes are [x, y, width, height] in pixels"
    x, y, w, h = (an[c].to_numpy(dtype=float) for c in BBOX_COLUMNS)
    has = ~(np.isnan(x) & np.isnan(y) & np.isnan(w) & np.isnan(h))
    finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(w) & np.isfinite(h)
    for i in _rows(has & ~finite):
        add(Problem(f"annotations[{i}].bbox", "has a NaN or infinite value", hint))
    ok = has & finite
    for i in _rows(ok & ((w <= 0) | (h <= 0))):
        add(
            Problem(
                f"annotations[{i}].bbox",
                f"non-positive size (w={w[i]:g}, h={h[i]:g})",
                "boxes need width and height > 0",
            )
        )
    if not ({"width", "height"} <= set(im.columns) and len(an)):
        return
    found = image_row >= 0
    rows = np.where(found, image_row, 0)
    iw = np.where(
        found,
        pd.to_numeric(im["width"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[rows]
        if len(im)
        else np.nan,
        np.nan,
    )
    ih = np.where(
        found,
        pd.to_numeric(im["height"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[rows]
        if len(im)
        else np.nan,
        np.nan,
    )
    with np.errstate(invalid="ignore"):
        sized = ok & (w > 0) & (h > 0) & (iw > 0) & (ih > 0)
        outside = sized & ((x >= iw) | (y >= ih) | (x + w <= 0) | (y + h <= 0))
        over = sized & ~outside & ((x < 0) | (y < 0) | (x + w > iw + 1) | (y + h > ih + 1))
        tiny = sized & (w <= 1) & (h <= 1) & (iw > 2)
    for i in _rows(outside):
        box = f"[{x[i]:g}, {y[i]:g}, {w[i]:g}, {h[i]:g}]"
        add(
            Problem(
                f"annotations[{i}].bbox",
                f"box {box} lies outside the {iw[i]:.0f}x{ih[i]:.0f} image",
                "CCT boxes are absolute pixels, not normalized",
            )
        )
    over_rows = _rows(over)
    if len(over_rows) <= _MAX_LISTED_WARNINGS:
        out.extend(
            Problem(
                f"annotations[{i}].bbox",
                "box crosses the image edge",
                "it will be clipped",
                "warning",
            )
            for i in over_rows
        )
    else:
        add(
            Problem(
                f"annotations[{over_rows[0]}].bbox",
                f"{len(over_rows):,} boxes cross the image edge",
                "they will be clipped",
                "warning",
            )
        )
    if tiny.any():
        i = _rows(tiny)[0]
        add(
            Problem(
                f"annotations[{i}].bbox",
                f"{int(tiny.sum())} boxes are at most 1x1 pixels",
                "are they normalized? CCT boxes are absolute pixels",
                "warning",
            )
        )


def _missing_file_problems(fnames: pd.Series, root: Path, out: list[Problem]) -> None:
    missing = [
        i
        for i, f in enumerate(fnames.tolist())
        if isinstance(f, str) and not unsafe_reason(f) and not (root / f).is_file()
    ]
    _warn_rows(
        missing,
        "images[{}].file_name",
        f"not found under {root}",
        "download it or drop the image",
        out,
    )


def check_cct(ds: CocoCameraTraps, source: str) -> None:
    """Raise ``FormatError`` when the dataset has errors (warnings pass)."""
    errors = errors_only(validate_cct(ds))
    if errors:
        raise FormatError(source, errors)
