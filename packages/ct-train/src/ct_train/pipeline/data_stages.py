"""Stages from data sources to the split dataset table: fetch, select, detect, crop, table, split."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ct_io.errors import CamtrapError
from ct_io.jsonio import read_json, write_json
from ct_train.pipeline.stages import Context, Outcome, Stage, data_record, sections

if TYPE_CHECKING:
    from ct_io.md import MDResults

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- fetch


def fetch(ctx: Context) -> Outcome:
    """Fetch every source; several are combined into one dataset (``ct-io combine``)."""
    from ct_io.sources import fetch as fetch_source

    cfg, paths = ctx.cfg, ctx.paths
    fetched = []
    for src in cfg.sources:
        got = fetch_source(src.name, paths.sources_dir, src.options, pm=ctx.pm)
        fetched.append((src.dataset or got.name, got))
    if len(fetched) == 1:
        name, got = fetched[0]
        record: dict[str, Any] = {
            "name": name,
            "cct": str(got.cct_path),
            "images_dir": str(got.images_dir),
            "detections": str(got.detections_path) if got.detections_path else None,
        }
    else:
        record = _combine(fetched, paths.data_json.parent)
    record.update(source_taxonomy(ctx, fetched))
    write_json(paths.data_json, record)
    from ct_io.cct import read_cct

    ds = read_cct(str(record["cct"]))
    return Outcome(
        {"datasets": len(fetched), "images": len(ds.images), "categories": len(ds.categories)}
    )


def source_taxonomy(ctx: Context, fetched: list[tuple[str, Any]]) -> dict[str, Any]:
    """The taxonomy the sources bring (LILA's taxonomy mapping), for the bundle's label
    lineages: ``{"taxonomy": local CSV or None, "aliases": dataset → names in it}``."""
    from ct_io.cct import read_cct
    from ct_io.sources.lila_meta import TAXONOMY_URL, local_copy

    taxonomy: str | None = None
    aliases: dict[str, list[str]] = {}
    for src, (name, got) in zip(ctx.cfg.sources, fetched, strict=True):
        if src.name != "lila":
            continue
        lila_name = str(read_cct(got.cct_path).info.get("lila_dataset", "") or "")
        if lila_name:
            aliases[name] = [lila_name]
            aliases.setdefault("combined", []).extend([name, lila_name])
        if taxonomy is None:
            opts = src.options
            cache = Path(opts.get("metadata_dir") or ctx.paths.sources_dir / "_lila_metadata")
            try:
                taxonomy = str(local_copy(str(opts.get("taxonomy") or TAXONOMY_URL), cache))
            except CamtrapError as exc:
                log.warning(
                    "LILA taxonomy mapping not available (%s); bundle labels get no taxonomy", exc
                )
    return {"taxonomy": taxonomy, "aliases": aliases}


def _combine(fetched: list[tuple[str, Any]], out: Path) -> dict[str, Any]:
    """One CCT (and MD JSON) over several fetched datasets, images under ``out/images/<name>``."""
    from ct_io.cct import write_cct
    from ct_io.combine import CombineInput, combine
    from ct_io.md import MDResults, read_md, write_md

    images_root = out / "images"
    images_root.mkdir(parents=True, exist_ok=True)
    inputs, md_images, md_info, md_cats = [], [], None, None
    for name, got in fetched:
        link = images_root / name
        target = Path(got.images_dir).resolve()
        if link.is_symlink() and link.resolve() != target:
            link.unlink()
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)
        inputs.append(CombineInput(Path(got.cct_path), name, Path(got.images_dir)))
        if got.detections_path:
            md = read_md(got.detections_path)
            md_info, md_cats = md_info or md.info, md_cats or md.detection_categories
            for im in md.images:
                im.file = f"{name}/{im.file}"
                md_images.append(im)
    ds, _report = combine(inputs)
    write_cct(ds, out / "combined_cct.json")
    detections = None
    if md_images:
        assert md_info is not None and md_cats is not None
        detections = out / "combined_md.json"
        write_md(
            MDResults(info=md_info, detection_categories=md_cats, images=md_images), detections
        )
    return {
        "name": "combined",
        "cct": str(out / "combined_cct.json"),
        "images_dir": str(images_root),
        "detections": str(detections) if detections else None,
    }


def _fetch_outputs(ctx: Context) -> list[Path]:
    out = [ctx.paths.data_json]
    if ctx.paths.data_json.is_file():
        rec = read_json(ctx.paths.data_json)
        out += [Path(rec["cct"])] + ([Path(rec["detections"])] if rec.get("detections") else [])
    return out


# ---------------------------------------------------------------- select


def select(ctx: Context) -> Outcome:
    """Label-spec selection (ct-taxonomy) → ``queried_images.json``."""
    from ct_io.cct import read_cct
    from ct_io.tables import write_queried_images
    from ct_taxonomy.mislabeled import read_mislabeled_dir
    from ct_taxonomy.select import NamedDataset, select_images, selection_report
    from ct_taxonomy.spec import every_category_spec, read_spec
    from ct_taxonomy.taxonomy import read_taxonomy

    lab = ctx.cfg.labels
    rec = data_record(ctx)
    ds = read_cct(rec["cct"])
    if lab.spec:
        spec = read_spec(lab.spec)
    else:
        spec = every_category_spec(ds.categories["name"].tolist(), rec["name"])
    taxonomy = read_taxonomy(lab.taxonomy) if lab.taxonomy else None
    fixes = read_mislabeled_dir(lab.mislabeled, [rec["name"]]) if lab.mislabeled else None
    selection = select_images(
        spec,
        [NamedDataset(name=rec["name"], cct=ds)],
        taxonomy,
        mislabeled=fixes,
        allow_multilabel=lab.allow_multilabel,
        seed=lab.seed,
    )
    if not selection.images:
        raise CamtrapError("the label spec selects no image — check labels.spec against the data")
    write_queried_images(selection.images, ctx.paths.queried_images)
    write_json(ctx.paths.selection_report, selection_report(selection, seed=lab.seed))
    return Outcome(
        {
            "images": len(selection.images),
            "labels": len(spec.labels),
            "conflicts": len(selection.conflicts),
        }
    )


def _select_inputs(ctx: Context) -> list[Path]:
    lab = ctx.cfg.labels
    files = [Path(data_record(ctx)["cct"])]
    files += [p for p in (lab.spec, lab.taxonomy) if p is not None]
    if lab.mislabeled is not None and lab.mislabeled.is_dir():
        files += sorted(lab.mislabeled.glob("*.csv"))
    return files


# ---------------------------------------------------------------- detect


def selected_files(ctx: Context) -> set[str]:
    """File names (relative to the images folder) of the selected images."""
    from ct_io.tables import read_queried_images

    name = data_record(ctx)["name"]
    prefix = f"{name}/"
    return {
        key[len(prefix) :] if key.startswith(prefix) else key
        for key in read_queried_images(ctx.paths.queried_images)
    }


def detect(ctx: Context) -> Outcome:
    """The detector on selected images with neither GT boxes nor source detections."""
    from ct_crop.detect import detect_cached, images_without_boxes
    from ct_crop.detectors import get_detector
    from ct_io.cct import read_cct
    from ct_io.md import read_md, write_md

    rec, det_cfg = data_record(ctx), ctx.cfg.detector
    ctx.paths.detections.unlink(missing_ok=True)
    chosen = selected_files(ctx)
    covered: set[str] = set()
    if rec.get("detections"):
        covered = {im.file for im in read_md(rec["detections"]).images}
    todo = sorted(set(images_without_boxes(read_cct(rec["cct"]))) & chosen - covered)
    if not todo:
        why = "the source brought MD JSON" if covered else "every selected image has GT boxes"
        return Outcome(note=why, needed=False)
    if not det_cfg.enabled:
        return Outcome(
            {"left out": len(todo)}, note="detector disabled: images without boxes left out"
        )
    detector = get_detector(det_cfg.name, det_cfg.options, ctx.pm)
    results, new = detect_cached(
        detector, Path(rec["images_dir"]), todo, det_cfg.cache_dir, dataset=rec["name"]
    )
    write_md(results, ctx.paths.detections)
    failed = sum(1 for im in results.images if im.detections is None)
    return Outcome({"images": len(todo), "new": new, "failed": failed})


def _detect_outputs(ctx: Context) -> list[Path]:
    return [ctx.paths.detections] if ctx.paths.detections.is_file() else []


# ---------------------------------------------------------------- crop


def crop(ctx: Context) -> Outcome:
    """GT boxes where an image has any, else detector boxes (ct-crop) → ``crops/crops.csv``."""
    from ct_crop.boxes import BoxChoice, BoxSelection
    from ct_crop.crop import CropSettings, RunOptions, crop_boxes, settings_changed
    from ct_crop.geometry import Strategy
    from ct_io.cct import read_cct
    from ct_io.engines import EngineChoice

    c, rec = ctx.cfg.crop, data_record(ctx)
    settings = CropSettings(
        strategy=Strategy(c.strategy),
        margin=c.margin,
        min_size=c.min_size,
        size=c.size,
        quality=c.quality,
    )
    changed = settings_changed(ctx.paths.crops_dir, settings)
    summary = crop_boxes(
        Path(rec["images_dir"]),
        ctx.paths.crops_dir,
        cct=read_cct(rec["cct"]),
        md=merged_detections(rec, ctx.paths.detections),
        boxes=BoxSelection(
            threshold=c.threshold, categories=c.categories, choice=BoxChoice(c.boxes)
        ),
        settings=settings,
        options=RunOptions(workers=c.workers, overwrite=changed),
        images=selected_files(ctx),
        engine=EngineChoice(c.engine, c.ray_address, c.shard_size),
    )
    return Outcome(
        {
            "images": summary.images,
            "crops": summary.crops_made + summary.crops_existing,
            "made": summary.crops_made,
            "failed": summary.images_failed,
        },
        note="settings changed: every crop remade" if changed else "",
    )


def merged_detections(rec: dict[str, Any], detected: Path) -> MDResults | None:
    """The source's MD JSON plus the detect stage's results (one MDResults, or None)."""
    from ct_io.md import read_md

    parts = [read_md(p) for p in (rec.get("detections"), detected) if p and Path(p).is_file()]
    if not parts:
        return None
    first = parts[0]
    seen = {im.file for im in first.images}
    for more in parts[1:]:
        first.images.extend(im for im in more.images if im.file not in seen)
    return first


def _crop_inputs(ctx: Context) -> list[Path]:
    rec = data_record(ctx)
    files = [Path(rec["cct"]), ctx.paths.queried_images]
    if rec.get("detections"):
        files.append(Path(rec["detections"]))
    return files + _detect_outputs(ctx)


# ---------------------------------------------------------------- table


def table(ctx: Context) -> Outcome:
    """Selected images + crops → ``classification_ds.csv`` and ``label_index.json``."""
    from ct_io.tables import read_queried_images, write_classification_ds, write_label_index
    from ct_splits import dataset as ds_mod
    from ct_splits.manifest import read_crops_manifest

    t, paths = ctx.cfg.table, ctx.paths
    images = ds_mod.images_from_queried(
        read_queried_images(paths.queried_images), pseudo=t.pseudo_locations
    )
    frame, report = ds_mod.build_dataset(
        images,
        read_crops_manifest(paths.crops_manifest),
        threshold=t.threshold,
        crops_dir=paths.crops_dir,
        detector_categories=tuple(ctx.cfg.crop.categories),
    )
    if t.min_locs:
        frame, report.dropped_labels = ds_mod.drop_rare_labels(frame, t.min_locs)
    if frame.empty:
        raise CamtrapError(
            "no crops left for the dataset table — " + ("; ".join(report.lines()) or "no crops")
        )
    for line in report.lines():
        log.info("table: %s", line)
    labels = ds_mod.label_names(frame)
    write_classification_ds(frame, paths.dataset_csv)
    write_label_index(labels, paths.label_index)
    locations = (frame["dataset"] + "\x1f" + frame["location"]).nunique()
    return Outcome({"crops": len(frame), "labels": len(labels), "locations": locations})


# ---------------------------------------------------------------- split


def split(ctx: Context) -> Outcome:
    """Split the table by location (ct-splits) → ``splits.json``."""
    from ct_io.tables import read_classification_ds, write_splits
    from ct_splits.splitting import SplitOptions, make_splits, split_of_rows

    s = ctx.cfg.splits
    frame = read_classification_ds(ctx.paths.dataset_csv)
    result = make_splits(
        frame,
        SplitOptions(
            method=s.method,
            val_frac=s.val_frac,
            test_frac=s.test_frac,
            trials=s.trials,
            seed=s.seed,
            group_by=tuple(s.group_by),
        ),
    )
    write_splits(result.splits, ctx.paths.splits)
    rows = split_of_rows(frame, result.splits).value_counts()
    return Outcome(
        {f"{name} crops": int(rows.get(name, 0)) for name in ("train", "val", "test")}
        | {"locations": sum(len(v) for v in result.splits.as_dict().values())}
    )


STAGES = [
    Stage(
        "fetch",
        "fetch the data sources (several: combine them)",
        fetch,
        sections("sources", "data.sources_dir"),
        lambda ctx: [],
        _fetch_outputs,
        needs_sources=True,
    ),
    Stage(
        "select",
        "label-spec selection → queried_images.json",
        select,
        sections("labels"),
        _select_inputs,
        lambda ctx: [ctx.paths.queried_images, ctx.paths.selection_report],
        needs_sources=True,
    ),
    Stage(
        "detect",
        "detector on selected images without boxes",
        detect,
        sections("detector"),
        lambda ctx: [Path(data_record(ctx)["cct"]), ctx.paths.queried_images],
        _detect_outputs,
        needs_sources=True,
    ),
    Stage(
        "crop",
        "crops of GT and detector boxes",
        crop,
        sections("crop", "data.crops_dir"),
        _crop_inputs,
        lambda ctx: [ctx.paths.crops_manifest],
        needs_sources=True,
    ),
    Stage(
        "table",
        "classification_ds.csv + label_index.json",
        table,
        sections("table", "crop.categories"),
        lambda ctx: [ctx.paths.queried_images, ctx.paths.crops_manifest],
        lambda ctx: [ctx.paths.dataset_csv, ctx.paths.label_index],
        needs_sources=True,
    ),
    Stage(
        "split",
        "location split → splits.json",
        split,
        sections("splits"),
        lambda ctx: [ctx.paths.dataset_csv],
        lambda ctx: [ctx.paths.splits],
    ),
]
