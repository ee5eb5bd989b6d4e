"""Rich tables for the CLI: what a spec resolves to, what a selection holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.console import Group
from rich.table import Table

from ct_io.problems import Problem
from ct_taxonomy.resolve import Resolution
from ct_taxonomy.select import Selection


def problems_table(problems: Sequence[Problem], limit: int = 50) -> Table:
    """Errors and warnings, one per row."""
    table = Table(show_header=True, header_style="bold", title=f"{len(problems)} problem(s)")
    table.add_column("severity")
    table.add_column("where", overflow="fold")
    table.add_column("problem")
    for p in problems[:limit]:
        colour = "red" if p.is_error else "yellow"
        table.add_row(
            f"[{colour}]{p.severity}[/]", p.path, p.message + (f" — {p.hint}" if p.hint else "")
        )
    if len(problems) > limit:
        table.add_row("", "", f"… {len(problems) - limit} more")
    return table


def resolution_table(resolution: Resolution) -> Table:
    """Per label: how many dataset labels it claims, from how many datasets, examples."""
    table = Table(title="labels → dataset labels")
    for col, justify in (
        ("label", "left"),
        ("dataset labels", "right"),
        ("datasets", "right"),
        ("examples", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for label, keys in resolution.labels.items():
        ordered = sorted(keys)
        examples = ", ".join(f"{ds}|{lb}" for ds, lb in ordered[:3]) + (
            " …" if len(ordered) > 3 else ""
        )
        table.add_row(label, f"{len(keys):,}", f"{len({ds for ds, _ in keys}):,}", examples)
    return table


def selection_summary(selection: Selection) -> Group:
    """Images per label and dataset, before and after sampling, plus conflicts and fixes."""
    counts = selection.counts()
    per_label = Table(title=f"selected images: {len(selection.images):,}")
    per_label.add_column("label")
    for ds in counts.columns:
        per_label.add_column(str(ds), justify="right")
    per_label.add_column("total", justify="right")
    per_label.add_column("before sampling", justify="right")
    for label, row in counts.iterrows():
        total = int(row.sum())
        style = "yellow" if total == 0 else ""
        per_label.add_row(
            str(label),
            *(f"{int(v):,}" for v in row),
            f"[{style}]{total:,}[/]" if style else f"{total:,}",
            f"{selection.before_sampling.get(str(label), 0):,}",
        )
    per_dataset = Table(title="datasets")
    for col in (
        "dataset",
        "images",
        "matched",
        "mislabeled fixed",
        "mislabeled dropped",
        "unsafe names",
        "boxes w/o size",
    ):
        per_dataset.add_column(col, justify="left" if col == "dataset" else "right")
    for name, st in selection.datasets.items():
        per_dataset.add_row(
            name,
            f"{st.images:,}",
            f"{st.matched:,}",
            f"{st.mislabeled_corrected:,}",
            f"{st.mislabeled_removed:,}",
            f"{st.unsafe_file_names:,}",
            f"{st.boxes_without_image_size:,}",
        )
    parts: list[Table] = [per_label, per_dataset]
    if selection.conflicts:
        kinds = Counter(c.kind for c in selection.conflicts)
        conflicts = Table(
            title=f"conflicts: {len(selection.conflicts):,} image(s) ({', '.join(f'{n:,} {k}' for k, n in sorted(kinds.items()))})"
        )
        conflicts.add_column("image")
        conflicts.add_column("kind")
        conflicts.add_column("labels")
        conflicts.add_column("classes")
        for c in selection.conflicts[:10]:
            conflicts.add_row(c.image, c.kind, ", ".join(c.labels), ", ".join(c.classes))
        if len(selection.conflicts) > 10:
            conflicts.add_row(
                f"… {len(selection.conflicts) - 10:,} more in selection_report.json", "", "", ""
            )
        parts.append(conflicts)
    return Group(*parts)
