"""MegaDetector batch-output JSON ("MD JSON"): models, reading, validation, writing.

Reads format 1.1 to 1.6 (video results in both of MegaDetector's forms, see
:mod:`ct_io.md_video`) and the variants tools write (SpeciesNet's numeric
``format_version``, animl-py's "3.0" with an "empty" category, PytorchWildlife's empty
``max_detection_conf``); writes canonical 1.5+. Keys the models do not know are kept in
``extra`` and written back, so a load/save round trip loses nothing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import cattrs
from attrs import define, field, fields

from ct_io.errors import FormatError
from ct_io.jsonio import read_json, write_json
from ct_io.md_video_checks import video_problems
from ct_io.paths import unsafe_reason
from ct_io.problems import Problem, errors_only
from ct_io.video import is_video_file

DEFAULT_DETECTION_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}
WRITE_FORMAT_VERSION = "1.5"
BBOX_TOLERANCE = 1e-3
#: A classification category named ``label: <name>`` holds a crop's true label, added for
#: review (conf 1.0, first or last; the seed's ``--label first|last``): it is not a
#: prediction, so it stands outside the order by confidence.
TRUE_LABEL_PREFIX = "label: "


@define
class MDDetection:
    """One box: detection category id, confidence, normalized ``[x, y, w, h]``."""

    category: str
    conf: float
    bbox: list[float] | None = None
    classifications: list[list[Any]] | None = None
    extra: dict[str, Any] = field(factory=dict)


@define
class MDImage:
    """One image's detections (``None`` with ``failure`` set when processing failed)."""

    file: str
    detections: list[MDDetection] | None = None
    failure: str | None = None
    extra: dict[str, Any] = field(factory=dict)


@define
class MDInfo:
    """The ``info`` block; ``format_version`` is always stored as a string."""

    format_version: str = WRITE_FORMAT_VERSION
    detector: str | None = None
    detection_completion_time: str | None = None
    classifier: str | None = None
    classification_completion_time: str | None = None
    extra: dict[str, Any] = field(factory=dict)


@define
class MDResults:
    """A whole MD JSON file."""

    info: MDInfo = field(factory=MDInfo)
    detection_categories: dict[str, str] = field(factory=lambda: dict(DEFAULT_DETECTION_CATEGORIES))
    images: list[MDImage] = field(factory=list)
    classification_categories: dict[str, str] | None = None
    classification_category_descriptions: dict[str, str] | None = None
    extra: dict[str, Any] = field(factory=dict)

    def by_file(self) -> dict[str, MDImage]:
        """Images keyed by their ``file``."""
        return {im.file: im for im in self.images}

    def iter_detections(self) -> Iterator[tuple[MDImage, int, MDDetection]]:
        """Every (image, index in the image's list, detection)."""
        for im in self.images:
            for k, det in enumerate(im.detections or []):
                yield im, k, det


_MODELS = (MDDetection, MDImage, MDInfo, MDResults)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    for cls in _MODELS:
        names = [a.name for a in fields(cls) if a.name != "extra"]
        base_structure = cattrs.gen.make_dict_structure_fn(cls, conv)
        base_unstructure = cattrs.gen.make_dict_unstructure_fn(cls, conv)

        def structure(
            data: dict[str, Any], _: type, *, _names: list[str] = names, _base: Any = base_structure
        ) -> Any:
            known = {k: v for k, v in data.items() if k in _names}
            obj = _base(known, _)
            obj.extra = {k: v for k, v in data.items() if k not in _names}
            return obj

        def unstructure(obj: Any, *, _base: Any = base_unstructure) -> dict[str, Any]:
            out = {k: v for k, v in _base(obj).items() if v is not None and k != "extra"}
            out.update(obj.extra)
            return out

        conv.register_structure_hook(cls, structure)
        conv.register_unstructure_hook(cls, unstructure)
    return conv


converter = _make_converter()


def parse_md(data: Any, *, source: str = "<md json>") -> MDResults:
    """Validate and structure already-decoded MD JSON; raises ``FormatError`` listing problems."""
    problems = validate_md_dict(data)
    errors = errors_only(problems)
    if errors:
        raise FormatError(source, errors)
    normalized = dict(data)
    info = dict(normalized.get("info") or {})
    info["format_version"] = str(info.get("format_version"))
    normalized["info"] = info
    if normalized.get("images"):
        normalized["images"] = [_normalize_image(im) for im in normalized["images"]]
    return converter.structure(normalized, MDResults)


def read_md(path: str | os.PathLike[str]) -> MDResults:
    """Read and validate an MD JSON file."""
    return parse_md(read_json(path), source=os.fspath(path))


def md_to_dict(results: MDResults) -> dict[str, Any]:
    """Plain JSON-ready dict of ``results`` (extra keys included)."""
    out: dict[str, Any] = converter.unstructure(results)
    for im in out.get("images", []):
        if "detections" not in im:  # a failed image: detections must be present as null
            im["detections"] = None
    return out


def write_md(results: MDResults, path: str | os.PathLike[str]) -> None:
    """Write MD JSON atomically (pretty-printed, one-space indent as MegaDetector does)."""
    write_json(path, md_to_dict(results))


def _normalize_image(im: Any) -> Any:
    if not isinstance(im, dict):
        return im
    im = dict(im)
    if im.get("max_detection_conf") == "":  # PytorchWildlife writes ""; keep it as an extra
        pass
    return im


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def validate_md_dict(data: Any) -> list[Problem]:
    """Every problem of a decoded MD JSON document, each with its JSON path and a hint."""
    problems: list[Problem] = []
    add = problems.append
    if not isinstance(data, dict):
        return [
            Problem(
                "$",
                f"expected a JSON object, got {type(data).__name__}",
                "an MD JSON file is an object with info, detection_categories and images",
            )
        ]
    info = data.get("info")
    if not isinstance(info, dict):
        add(Problem("info", "missing or not an object", 'add "info": {"format_version": "1.5"}'))
    else:
        fv = info.get("format_version")
        if fv is None:
            add(
                Problem(
                    "info.format_version",
                    "missing",
                    'MD JSON requires info.format_version, e.g. "1.5"',
                )
            )
        elif isinstance(fv, int | float) and not isinstance(fv, bool):
            add(
                Problem(
                    "info.format_version",
                    f"is the number {fv}, not a string",
                    "read as a string; written as one",
                    "warning",
                )
            )
        elif not isinstance(fv, str):
            add(
                Problem(
                    "info.format_version",
                    f"expected a string, got {type(fv).__name__}",
                    'use a version string such as "1.5"',
                )
            )
        else:
            try:
                float(fv)
            except ValueError:
                add(
                    Problem(
                        "info.format_version", f"{fv!r} is not a version number", 'use e.g. "1.5"'
                    )
                )
    det_cats = data.get("detection_categories")
    if not isinstance(det_cats, dict):
        add(
            Problem(
                "detection_categories",
                "missing or not an object",
                'add e.g. {"1": "animal", "2": "person", "3": "vehicle"}',
            )
        )
        det_cats = {}
    else:
        for k, v in det_cats.items():
            if not isinstance(v, str):
                add(
                    Problem(
                        f"detection_categories.{k}",
                        f"name must be a string, got {type(v).__name__}",
                    )
                )
    cls_cats = data.get("classification_categories")
    if cls_cats is not None:
        if not isinstance(cls_cats, dict):
            add(Problem("classification_categories", "must be an object of id → name"))
            cls_cats = {}
        else:
            for k in cls_cats:
                if not k.isdigit():
                    add(
                        Problem(
                            f"classification_categories.{k}",
                            "id must be a non-negative integer string",
                        )
                    )
    images = data.get("images")
    if not isinstance(images, list):
        add(Problem("images", "missing or not a list", "MD JSON needs an images list"))
        return problems
    seen: dict[str, int] = {}
    version = _version_number(info)
    for i, im in enumerate(images):
        p = f"images[{i}]"
        if not isinstance(im, dict):
            add(Problem(p, f"expected an object, got {type(im).__name__}"))
            continue
        fname = im.get("file")
        if not isinstance(fname, str):
            add(
                Problem(
                    f"{p}.file",
                    "missing or not a string",
                    "each image needs its relative path in 'file'",
                )
            )
        else:
            reason = unsafe_reason(fname)
            if reason:
                add(
                    Problem(
                        f"{p}.file",
                        f"{fname!r}: {reason}",
                        "paths must be relative to the images folder",
                    )
                )
            if fname in seen:
                add(
                    Problem(
                        f"{p}.file",
                        f"duplicate of images[{seen[fname]}]",
                        "each image may appear once",
                        "warning",
                    )
                )
            seen.setdefault(fname, i)
            if is_video_file(fname):
                video_problems(im, p, version, add)
        dets = im.get("detections", "missing")
        if dets == "missing":
            if "failure" not in im:
                add(
                    Problem(
                        f"{p}.detections",
                        "missing",
                        "use [] for an image with nothing found, null with 'failure' for a failed one",
                    )
                )
            continue
        if dets is None:
            if not im.get("failure"):
                add(
                    Problem(
                        f"{p}.detections",
                        "null without a 'failure' reason",
                        "set 'failure' or use []",
                        "warning",
                    )
                )
            continue
        if not isinstance(dets, list):
            add(Problem(f"{p}.detections", f"expected a list, got {type(dets).__name__}"))
            continue
        for k, det in enumerate(dets):
            _validate_detection(det, f"{p}.detections[{k}]", det_cats, cls_cats, add)
    return problems


def _version_number(info: Any) -> float:
    """``info.format_version`` as a number (0 when missing or not a number)."""
    try:
        return float(str(info.get("format_version"))) if isinstance(info, dict) else 0.0
    except (TypeError, ValueError):
        return 0.0


def _validate_detection(
    det: Any, p: str, det_cats: dict[str, Any], cls_cats: dict[str, Any] | None, add: Any
) -> None:
    if not isinstance(det, dict):
        add(Problem(p, f"expected an object, got {type(det).__name__}"))
        return
    cat = det.get("category")
    if not isinstance(cat, str):
        add(
            Problem(
                f"{p}.category",
                "missing or not a string id",
                'categories are string ids such as "1"',
            )
        )
    elif det_cats and cat not in det_cats:
        add(
            Problem(
                f"{p}.category",
                f"{cat!r} is not in detection_categories",
                f"known: {', '.join(det_cats)}",
            )
        )
    conf = det.get("conf")
    if not _is_number(conf):
        add(Problem(f"{p}.conf", f"{conf!r} is not a finite number"))
    elif isinstance(conf, int | float) and not 0 <= conf <= 1:
        add(Problem(f"{p}.conf", f"{conf} outside [0, 1]"))
    bbox = det.get("bbox")
    if bbox is not None:
        add_bbox_problems(bbox, f"{p}.bbox", add)
    classes = det.get("classifications")
    if classes is not None:
        if not isinstance(classes, list):
            add(Problem(f"{p}.classifications", "expected a list of [class_id, conf]"))
            return
        prev = math.inf
        for c, pair in enumerate(classes):
            cp = f"{p}.classifications[{c}]"
            if not (
                isinstance(pair, list)
                and len(pair) == 2
                and isinstance(pair[0], str)
                and _is_number(pair[1])
            ):
                add(Problem(cp, f"{pair!r} is not [class_id string, conf]"))
                continue
            if cls_cats is not None and pair[0] not in cls_cats:
                add(Problem(cp, f"class {pair[0]!r} is not in classification_categories"))
            if _is_true_label(cls_cats, pair[0]):
                continue
            if pair[1] > prev:
                add(
                    Problem(
                        cp, "classifications not sorted by confidence", "sort descending", "warning"
                    )
                )
            prev = pair[1]


def _is_true_label(cls_cats: Any, class_id: str) -> bool:
    name = cls_cats.get(class_id) if isinstance(cls_cats, dict) else None
    return isinstance(name, str) and name.startswith(TRUE_LABEL_PREFIX)


def add_bbox_problems(bbox: Any, p: str, add: Any) -> None:
    """Problems of a normalized ``[x, y, w, h]`` box."""
    hint = "bbox must be normalized [x, y, w, h]"
    if not (isinstance(bbox, list) and len(bbox) == 4):
        add(Problem(p, f"{bbox!r} is not 4 numbers", hint))
        return
    if not all(_is_number(v) for v in bbox):
        add(Problem(p, f"{bbox!r} has a non-finite or non-numeric value", hint))
        return
    x, y, w, h = bbox
    tol = BBOX_TOLERANCE
    if w < 0 or h < 0:
        add(Problem(p, f"negative size (w={w}, h={h})", hint))
    if w > 1 + tol:
        add(Problem(p, f"width {w} > 1", hint))
    if h > 1 + tol:
        add(Problem(p, f"height {h} > 1", hint))
    if x < -tol or y < -tol or x > 1 + tol or y > 1 + tol:
        add(Problem(p, f"corner ({x}, {y}) outside the image", hint))
    elif x + w > 1 + tol or y + h > 1 + tol:
        add(
            Problem(
                p,
                f"box extends past the image edge (x+w={x + w:.4g}, y+h={y + h:.4g})",
                "will be clipped to the image",
                "warning",
            )
        )
