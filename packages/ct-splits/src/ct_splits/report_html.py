"""The report as one self-contained HTML page: summary, per-label table with flagged
cells, and a grid of sample crops per label (thumbnails embedded as base64 JPEG)."""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ct_io.atomic import write_text_atomic
from ct_io.errors import UnsafePathError
from ct_io.paths import safe_join
from ct_io.tables import SPLIT_NAMES
from ct_splits.report import Report

log = logging.getLogger(__name__)

THUMB_SIZE = 160
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0} td.l{text-align:left}
td.bad{background:#fbd5d5;color:#900;font-weight:600}
.problems li{color:#900}
.grid{display:flex;flex-wrap:wrap;gap:6px;margin-bottom:1.5em}
.grid figure{margin:0;width:160px;font-size:11px;word-break:break-all}
.grid img{width:160px;height:160px;object-fit:contain;background:#eee}
.missing{width:160px;height:160px;background:#eee;display:flex;align-items:center;justify-content:center;color:#900}
"""


def thumbnail_data_uri(path: str | os.PathLike[str], size: int = THUMB_SIZE) -> str | None:
    """A JPEG thumbnail as a ``data:`` URI, or None when the file cannot be read."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as raw:
            im = ImageOps.exif_transpose(raw)
            im.thumbnail((size, size))
            buf = io.BytesIO()
            im.convert("RGB").save(buf, "JPEG", quality=80)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        log.warning("cannot make a thumbnail of %s: %s", path, exc)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return html.escape(str(v))


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    bad: Sequence[Sequence[bool]] | None = None,
) -> str:
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>"]
    for i, row in enumerate(rows):
        cells = []
        for j, v in enumerate(row):
            cls = "bad" if bad and bad[i][j] else ("l" if j == 0 else "")
            cells.append(f'<td class="{cls}">{_fmt(v)}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def render_html(
    report: Report,
    samples: Mapping[str, Sequence[str]] | None = None,
    crops_dir: str | os.PathLike[str] | None = None,
    *,
    title: str = "Classification dataset report",
) -> str:
    """The report page; ``samples`` (label → crop paths) are read under ``crops_dir``."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
    ]
    parts.append(f"<h1>{html.escape(title)}</h1>")
    if report.problems:
        parts.append(
            "<ul class='problems'>"
            + "".join(f"<li>{html.escape(p)}</li>" for p in report.problems)
            + "</ul>"
        )
    ps = report.per_split
    parts.append("<h2>Splits</h2>")
    parts.append(
        _table(
            ["split", "crops", "locations", "labels", "target", "fraction of crops"],
            ps[["split", "crops", "locations", "labels", "target", "crop_frac"]].itertuples(
                index=False
            ),
        )
    )
    parts.append(
        f"<h2>Labels</h2><p>Fractions are of each label's crops and locations; flagged when missing or more than {report.tolerance:.2f} from the target.</p>"
    )
    wide = report.per_label.pivot(index="label", columns="split")
    headers = ["label"] + [
        f"{s} {what}"
        for s in SPLIT_NAMES
        for what in ("crops", "crop frac", "locs", "loc frac", "share")
    ]
    rows, bad = [], []
    for label in wide.index:
        row: list[object] = [label]
        flags_row = [False]
        for s in SPLIT_NAMES:
            flags = str(wide.at[label, ("flags", s)])
            row += [
                int(wide.at[label, ("crops", s)]),
                float(wide.at[label, ("crop_frac", s)]),
                int(wide.at[label, ("locations", s)]),
                float(wide.at[label, ("loc_frac", s)]),
                float(wide.at[label, ("share_of_split", s)]),
            ]
            flags_row += [
                "missing" in flags or "crops off" in flags,
                "missing" in flags or "crops off" in flags,
                "missing" in flags or "locations off" in flags,
                "missing" in flags or "locations off" in flags,
                False,
            ]
        rows.append(row)
        bad.append(flags_row)
    parts.append(_table(headers, rows, bad))
    if samples:
        parts.append("<h2>Sample crops per label</h2>")
        for label, paths in samples.items():
            parts.append(f"<h3>{html.escape(label)}</h3><div class='grid'>")
            for p in paths:
                uri = None
                if crops_dir is not None:
                    try:
                        full = safe_join(crops_dir, p)
                    except UnsafePathError:  # a hostile path in the table: show it as missing
                        full = None
                    uri = (
                        thumbnail_data_uri(full)
                        if full is not None and Path(full).is_file()
                        else None
                    )
                img = (
                    f"<img src='{uri}' alt='{html.escape(p)}'>"
                    if uri
                    else "<div class='missing'>not found</div>"
                )
                parts.append(f"<figure>{img}<figcaption>{html.escape(p)}</figcaption></figure>")
            parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path: str | os.PathLike[str], page: str) -> None:
    write_text_atomic(path, page)
