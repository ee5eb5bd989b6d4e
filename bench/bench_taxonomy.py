"""Speed of ct-taxonomy's heavy paths on synthetic data.

- aggregate: a classifier-output CSV.gz (N rows × 50 labels) summed into 5 targets with
  rollup, streamed in chunks; reports rows/s and peak RSS.
- select: a CCT with M images (one species each, 2% two-species frames) selected by a
  3-label spec with a max_count; reports images/s.

Usage: python bench/bench_taxonomy.py [--rows 500000] [--images 500000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ct_io.cct import from_records
from ct_taxonomy.aggregate import RollupConfig, aggregate_csv
from ct_taxonomy.select import NamedDataset, select_images
from ct_taxonomy.spec import spec_from_dict
from ct_taxonomy.taxonomy import Taxon


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_aggregate(rows: int, folder: Path) -> tuple[float, str]:
    labels = [f"species_{i:02d}" for i in range(50)]
    rng = np.random.default_rng(0)
    src = folder / "classifier_output.csv.gz"
    frame = pd.DataFrame(
        rng.dirichlet(np.ones(50) * 0.3, size=rows).astype(np.float32), columns=labels
    )
    frame.insert(0, "path", [f"cam{i % 97}/img{i:07d}.jpg___crop00_mdv5a.jpg" for i in range(rows)])
    frame.to_csv(src, index=False, float_format="%.5g")
    del frame
    mapping = {f"group_{g}": labels[g * 10 : (g + 1) * 10] for g in range(5)}
    family = [Taxon("kingdom", "animalia"), Taxon("class", "mammalia")]
    lineages = {f"group_{g}": (*family, Taxon("family", f"family_{g % 2}")) for g in range(5)}
    before = peak_rss_mb()
    start = time.perf_counter()
    n = aggregate_csv(src, folder / "out.csv.gz", mapping, rollup=RollupConfig(0.9, lineages))
    took = time.perf_counter() - start
    line = f"aggregate: {n:,} rows x 50 labels -> 5 targets + rollup, gz in/out: {took:.1f}s ({n / took:,.0f} rows/s), peak RSS {max(before, peak_rss_mb()):.0f} MB"
    print(line)
    return n / took, line


def bench_select(images: int) -> tuple[float, str]:
    rng = np.random.default_rng(1)
    species = ["coyote", "gray_fox", "bobcat", "deer", "elk", "empty", "human", "turkey"]
    cls = rng.integers(0, len(species), size=images)
    image_records = [
        {
            "id": i,
            "file_name": f"cam{i % 500}/img{i:07d}.jpg",
            "location": f"cam{i % 500}",
            "width": 2048,
            "height": 1536,
        }
        for i in range(images)
    ]
    ann = [
        {"id": i, "image_id": i, "category_id": int(c), "bbox": [10.0, 20.0, 300.0, 200.0]}
        for i, c in enumerate(cls)
    ]
    extra = rng.choice(images, size=images // 50, replace=False)
    ann += [{"id": images + j, "image_id": int(i), "category_id": 2} for j, i in enumerate(extra)]
    cct = from_records(image_records, ann, [{"id": i, "name": n} for i, n in enumerate(species)])
    spec = spec_from_dict(
        {
            "canid": {"dataset_labels": {"bench": ["coyote", "gray_fox"]}},
            "cervid": {"dataset_labels": {"bench": ["deer", "elk"]}, "max_count": images // 10},
            "bobcat": {"dataset_labels": {"bench": ["bobcat"]}},
        }
    )
    start = time.perf_counter()
    sel = select_images(spec, [NamedDataset("bench", cct)], seed=1)
    took = time.perf_counter() - start
    line = f"select: {images:,} images -> {len(sel.images):,} selected, {len(sel.conflicts):,} conflicts: {took:.1f}s ({images / took:,.0f} images/s), peak RSS {peak_rss_mb():.0f} MB"
    print(line)
    return images / took, line


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--images", type=int, default=500_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        agg_rate, agg_line = bench_aggregate(args.rows, Path(tmp))
    sel_rate, sel_line = bench_select(args.images)
    from benchpage import Figure, Section, save

    save(
        Section(
            "taxonomy",
            "Label selection and classifier-output aggregation",
            [
                Figure("aggregate (50 labels → 5 + rollup, CSV.gz in and out)", agg_rate, "rows/s"),
                Figure("select by label spec", sel_rate, "images/s"),
            ],
            "No reference tool does these jobs in one step; figures only.\n\n"
            f"- {agg_line}\n- {sel_line}",
        )
    )


if __name__ == "__main__":
    main()
