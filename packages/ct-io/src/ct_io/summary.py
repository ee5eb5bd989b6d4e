"""Human summaries of CCT and MD JSON files (``ct-io info``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table

from ct_io.md import MDResults

if TYPE_CHECKING:  # ct_io.cct imports pandas (seconds): an MD summary does without it
    from ct_io.cct import CocoCameraTraps


def cct_summary(ds: CocoCameraTraps, title: str) -> Group:
    """Counts of images, annotations per category, locations and sequences."""
    from ct_io.cct import BBOX_COLUMNS

    im, an = ds.images, ds.annotations
    overview = Table(title=title, show_header=False)
    overview.add_row("images", f"{len(im):,}")
    overview.add_row("annotations", f"{len(an):,}")
    overview.add_row("with boxes", f"{int(an[BBOX_COLUMNS[0]].notna().sum()):,}")
    overview.add_row("categories", f"{len(ds.categories):,}")
    overview.add_row("locations", f"{im['location'].nunique(dropna=True):,}")
    missing = int(im["location"].isna().sum())
    if missing:
        overview.add_row("images without location", f"[yellow]{missing:,}[/]")
    if "seq_id" in im.columns:
        overview.add_row("sequences", f"{im['seq_id'].nunique(dropna=True):,}")
    per_cat = Table(title="annotations per category")
    per_cat.add_column("category")
    per_cat.add_column("annotations", justify="right")
    per_cat.add_column("images", justify="right")
    per_cat.add_column("locations", justify="right")
    names = ds.category_names
    loc_of = im.set_index("id")["location"]
    loc_of = loc_of[~loc_of.index.duplicated()]
    grouped = an.assign(location=an["image_id"].map(loc_of)).groupby("category_id")
    stats = grouped.agg(
        annotations=("image_id", "size"),
        images=("image_id", "nunique"),
        locations=("location", "nunique"),
    )
    for cid, row in stats.sort_values("annotations", ascending=False).iterrows():
        per_cat.add_row(
            str(names.get(cid, f"? {cid}")),
            f"{row.annotations:,}",
            f"{row.images:,}",
            f"{row.locations:,}",
        )
    return Group(overview, per_cat)


def md_summary(md: MDResults, title: str) -> Group:
    """Images, failures, detections per category and a confidence histogram."""
    overview = Table(title=title, show_header=False)
    failed = sum(1 for im in md.images if im.failure)
    confs: list[float] = []
    per_cat: dict[str, int] = {}
    for _, _, det in md.iter_detections():
        confs.append(det.conf)
        per_cat[det.category] = per_cat.get(det.category, 0) + 1
    overview.add_row("format_version", md.info.format_version)
    overview.add_row("detector", str(md.info.detector or "?"))
    overview.add_row("images", f"{len(md.images):,}")
    overview.add_row("failed images", f"{failed:,}")
    overview.add_row("detections", f"{len(confs):,}")
    if md.classification_categories:
        overview.add_row("classification categories", f"{len(md.classification_categories):,}")
    cats = Table(title="detections per category")
    cats.add_column("category")
    cats.add_column("detections", justify="right")
    for cid, n in sorted(per_cat.items(), key=lambda kv: -kv[1]):
        cats.add_row(md.detection_categories.get(cid, f"? {cid}"), f"{n:,}")
    hist = Table(title="detection confidence")
    hist.add_column("conf")
    hist.add_column("detections", justify="right")
    hist.add_column("")
    import numpy as np

    counts, edges = np.histogram(np.asarray(confs, dtype=float), bins=10, range=(0.0, 1.0))
    top = max(int(counts.max()) if len(counts) else 0, 1)
    for n, lo, hi in zip(counts, edges[:-1], edges[1:], strict=True):
        hist.add_row(f"{lo:.1f}–{hi:.1f}", f"{int(n):,}", "█" * round(30 * n / top))
    return Group(overview, cats, hist)
