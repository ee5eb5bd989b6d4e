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
from ct_io.jsonio import encode_json
from ct_io.paths import unsafe_mask, unsafe_reason
from ct_io.problems import Problem, errors_only

BBOX_COLUMNS = ("bbox_x", "bbox_y", "bbox_w", "bbox_h")
_CHUNK = 100_000
_INT_TO_NULLABLE = {pa.int64(): pd.Int64Dtype()}
# Strings pyarrow would otherwise turn into timestamps; everything else is inferred.
_PARSE_OPTIONS = {
    "images": pajson.ParseOptions(explicit_schema=pa.schema([("datetime", pa.string())]), unexpected_field_behavior="infer"),
    "annotations": pajson.ParseOptions(),
    "categories": pajson.ParseOptions(),
}
_STRING_FIELDS = {"images": ("file_name", "location", "datetime"), "annotations": (), "categories": ("name",)}


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
        return dict(zip(self.categories["id"].tolist(), self.categories["name"].tolist(), strict=True))

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
    if p.stat().st_size == 0:
        raise CamtrapError(f"{p}: empty file — expected COCO Camera Traps JSON")
    with p.open("rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        info, extra, images, annotations, categories = _read_all(mm, str(p))
    finally:
        try:
            mm.close()
        except BufferError:  # records still referenced by an exception's frames; GC closes it
            pass
    if not isinstance(info, dict):
        raise FormatError(str(p), [Problem("info", "must be an object")])
    return CocoCameraTraps(
        images=_images_frame(images),
        annotations=_annotations_frame(annotations),
        categories=_categories_frame(categories),
        info=info,
        extra=extra,
    )


def _read_all(mm: mmap.mmap, source: str) -> tuple[Any, dict[str, Any], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    try:
        top = msgspec.json.decode(mm, type=dict[str, msgspec.Raw])
    except msgspec.DecodeError as exc:
        raise CamtrapError(f"{source}: malformed JSON ({exc}) — is the file truncated?") from None
    except msgspec.ValidationError:
        raise FormatError(source, [Problem("$", "expected a JSON object", "a CCT file is an object with images, annotations and categories")]) from None
    _release(mm)
    problems = [Problem(k, "missing", "a CCT file needs images, annotations and categories lists") for k in ("images", "annotations", "categories") if k not in top]
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
        table = pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(block_size=max(1 << 20, len(data) + 1)),
            parse_options=_PARSE_OPTIONS[key],
        )
        return _arrow_to_frame(table, key)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError):
        pass
    rows: list[Any] = []
    for i, r in enumerate(chunk):
        obj = msgspec.json.decode(r)
        if not isinstance(obj, dict):
            raise FormatError(source, [Problem(f"{key}[{offset + i}]", f"expected an object, got {type(obj).__name__}")])
        rows.append(obj)
    frame = pd.DataFrame.from_records(rows)
    if key == "annotations" and "bbox" in frame.columns:
        frame = _split_bbox_objects(frame)
    return frame


def _arrow_to_frame(table: pa.Table, key: str) -> pd.DataFrame:
    if key == "annotations" and "bbox" in table.column_names:
        bbox = table.column("bbox")
        if not pa.types.is_list(bbox.type) or not pa.types.is_floating(bbox.type.value_type) and not pa.types.is_integer(bbox.type.value_type):
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
        if isinstance(b, list) and len(b) == 4 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in b):
            out[i] = b
        elif b is not None and not (isinstance(b, float) and math.isnan(b)):
            bad.append(i)
    for j, name in enumerate(BBOX_COLUMNS):
        frame[name] = out[:, j]
    if bad:
        frame["_bad_bbox"] = False
        frame.loc[bad, "_bad_bbox"] = True
        frame["_bad_bbox_value"] = pd.Series([values[i] if i in set(bad) else None for i in range(len(values))], dtype=object)
    return frame


def _ensure(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    for c in columns:
        if c not in frame.columns:
            frame[c] = pd.Series([None] * len(frame), dtype=object)
    return frame


def _as_str_or_none(series: pd.Series) -> pd.Series:
    """Locations as strings whatever the file used (ints in old datasets), NaN when absent."""
    if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(series.dtype):
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


def _records(frame: pd.DataFrame, *, bbox: bool = False) -> list[dict[str, Any]]:
    internal = {"_bad_bbox", "_bad_bbox_value", *BBOX_COLUMNS}
    cols = [c for c in frame.columns if c not in internal]
    col_values = [frame[c].tolist() for c in cols]
    boxes = frame[list(BBOX_COLUMNS)].to_numpy().tolist() if bbox and len(frame) else None
    out: list[dict[str, Any]] = []
    for i in range(len(frame)):
        rec = {}
        for c, values in zip(cols, col_values, strict=True):
            v = values[i]
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                continue
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, float) and v.is_integer() and c in ("width", "height", "seq_num_frames", "frame_num", "category_id", "count"):
                v = int(v)
            rec[c] = v
        if boxes is not None and not math.isnan(boxes[i][0]):
            rec["bbox"] = boxes[i]
        out.append(rec)
    return out


def cct_to_dict(ds: CocoCameraTraps) -> dict[str, Any]:
    """The dataset as a plain CCT dict (extra keys and columns included)."""
    return {
        "info": ds.info,
        "images": _records(ds.images),
        "categories": _records(ds.categories),
        "annotations": _records(ds.annotations, bbox=True),
        **ds.extra,
    }


def write_cct(ds: CocoCameraTraps, path: str | os.PathLike[str], *, indent: int | None = None) -> None:
    """Write a CCT file atomically; compact output is streamed in chunks (bounded memory)."""
    if indent is not None:
        with atomic_open(path, "wb") as fh:
            fh.write(encode_json(cct_to_dict(ds), indent=indent) + b"\n")
        return
    with atomic_open(path, "wb") as fh:
        fh.write(b'{"info":' + encode_json(ds.info, indent=None))
        for key, frame, bbox in (("images", ds.images, False), ("categories", ds.categories, False), ("annotations", ds.annotations, True)):
            fh.write(b',"' + key.encode() + b'":[')
            for start in range(0, len(frame), _CHUNK):
                if start:
                    fh.write(b",")
                fh.write(encode_json(_records(frame.iloc[start : start + _CHUNK], bbox=bbox), indent=None)[1:-1])
            fh.write(b"]")
        for key, value in ds.extra.items():
            fh.write(b"," + encode_json(key, indent=None) + b":" + encode_json(value, indent=None))
        fh.write(b"}\n")


# ---------------------------------------------------------------- validation


def validate_cct(ds: CocoCameraTraps, *, images_dir: str | os.PathLike[str] | None = None) -> list[Problem]:
    """Every problem of a dataset, each with its JSON path and a hint (vectorized)."""
    problems: list[Problem] = []
    add = problems.append
    im, an, cat = ds.images, ds.annotations, ds.categories

    def rows(mask: Any) -> list[int]:
        return np.flatnonzero(np.asarray(mask, dtype=bool)).tolist()

    for i in rows(im["id"].isna()):
        add(Problem(f"images[{i}].id", "missing", "every image needs an id"))
    for i in rows(im["id"].duplicated(keep="first") & im["id"].notna()):
        add(Problem(f"images[{i}].id", f"duplicate id {im['id'].iat[i]!r}", "image ids must be unique"))
    fnames = im["file_name"]
    for i in rows(unsafe_mask(fnames)):
        f = fnames.iat[i]
        if not isinstance(f, str):
            add(Problem(f"images[{i}].file_name", "missing or not a string", "every image needs its relative path"))
            continue
        reason = unsafe_reason(f)
        if reason:
            add(Problem(f"images[{i}].file_name", f"{f!r}: {reason}", "file names must be relative paths inside the dataset folder"))
    for col in ("width", "height"):
        if col in im.columns:
            vals = pd.to_numeric(im[col], errors="coerce")
            for i in rows(im[col].notna() & ~(vals > 0)):
                add(Problem(f"images[{i}].{col}", f"{im[col].iat[i]!r} is not a positive number"))
    for i in rows(im["location"].isna()):
        add(Problem(f"images[{i}].location", "missing", "images without a location get a pseudo-location; splits by location cannot protect them", "warning"))
        if len(problems) > 10_000:
            break
    cat_ids = cat["id"]
    for i, v in enumerate(cat["id"].tolist()):
        if not isinstance(v, int) or isinstance(v, bool):
            add(Problem(f"categories[{i}].id", f"{v!r} is not an integer"))
    for i in rows(cat["id"].duplicated()):
        add(Problem(f"categories[{i}].id", f"duplicate category id {cat['id'].iat[i]!r}"))
    for i in rows(an["id"].duplicated(keep="first") & an["id"].notna()):
        add(Problem(f"annotations[{i}].id", f"duplicate id {an['id'].iat[i]!r}", "annotation ids must be unique"))
    for i in rows(~an["image_id"].isin(im["id"])):
        add(Problem(f"annotations[{i}].image_id", f"{an['image_id'].iat[i]!r} is not an image id", "remove the annotation or add its image"))
    for i in rows(~an["category_id"].isin(cat_ids)):
        add(Problem(f"annotations[{i}].category_id", f"{an['category_id'].iat[i]!r} is not a category id", "add the category or fix the id"))
    if "_bad_bbox" in an.columns:
        for i in rows(an["_bad_bbox"].fillna(False)):
            add(Problem(f"annotations[{i}].bbox", f"{an['_bad_bbox_value'].iat[i]!r} is not 4 numbers", "CCT boxes are [x, y, width, height] in pixels"))
    x, y, w, h = (an[c].to_numpy(dtype=float) for c in BBOX_COLUMNS)
    has = ~np.isnan(x) | ~np.isnan(y) | ~np.isnan(w) | ~np.isnan(h)
    finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(w) & np.isfinite(h)
    for i in rows(has & ~finite):
        add(Problem(f"annotations[{i}].bbox", "has a NaN or infinite value", "CCT boxes are [x, y, width, height] in pixels"))
    ok = has & finite
    for i in rows(ok & ((w <= 0) | (h <= 0))):
        add(Problem(f"annotations[{i}].bbox", f"non-positive size (w={w[i]}, h={h[i]})", "boxes need width and height > 0"))
    if {"width", "height"} <= set(im.columns) and len(an):
        dims = im.set_index("id")[["width", "height"]]
        dims = dims[~dims.index.duplicated()]
        iw = pd.to_numeric(an["image_id"].map(dims["width"]), errors="coerce").to_numpy(dtype=float)
        ih = pd.to_numeric(an["image_id"].map(dims["height"]), errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            outside = ok & ((x >= iw) | (y >= ih) | (x + w <= 0) | (y + h <= 0))
            over = ok & ~outside & ((x < 0) | (y < 0) | (x + w > iw + 1) | (y + h > ih + 1))
        for i in rows(outside):
            add(Problem(f"annotations[{i}].bbox", f"box {[x[i], y[i], w[i], h[i]]} lies outside the {iw[i]:.0f}x{ih[i]:.0f} image", "CCT boxes are absolute pixels, not normalized"))
        for i in rows(over):
            add(Problem(f"annotations[{i}].bbox", "box crosses the image edge", "it will be clipped", "warning"))
        with np.errstate(invalid="ignore"):
            tiny = ok & (w <= 1) & (h <= 1) & (iw > 2)
        if tiny.any():
            i = rows(tiny)[0]
            add(Problem(f"annotations[{i}].bbox", f"{int(tiny.sum())} boxes are at most 1x1 pixels", "are they normalized? CCT boxes are absolute pixels", "warning"))
    if images_dir is not None:
        root = Path(images_dir)
        for i, f in enumerate(fnames.tolist()):
            if isinstance(f, str) and not unsafe_reason(f) and not (root / f).is_file():
                add(Problem(f"images[{i}].file_name", f"{f!r} not found under {root}", "download it or drop the image", "warning"))
    return problems


def check_cct(ds: CocoCameraTraps, source: str) -> None:
    """Raise ``FormatError`` when the dataset has errors (warnings pass)."""
    errors = errors_only(validate_cct(ds))
    if errors:
        raise FormatError(source, errors)
