"""The report as rich tables on the console."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ct_io.clitools import console as default_console
from ct_io.tables import SPLIT_NAMES
from ct_splits.report import Report


def print_report(report: Report, console: Console | None = None) -> None:
    """Splits summary, then one row per label with crops/locations per split."""
    con = console or default_console
    summary = Table(title="Splits")
    for col in ("split", "crops", "locations", "labels", "target", "fraction of crops"):
        summary.add_column(col, justify="right")
    for row in report.per_split.itertuples(index=False):
        summary.add_row(
            row.split,
            f"{row.crops:,}",
            f"{row.locations:,}",
            str(row.labels),
            f"{row.target:.2f}",
            f"{row.crop_frac:.3f}",
        )
    con.print(summary)
    table = Table(
        title=f"Labels (crop fraction / location fraction; flagged beyond ±{report.tolerance:.2f})"
    )
    table.add_column("label", justify="left")
    for s in SPLIT_NAMES:
        table.add_column(f"{s} crops", justify="right")
        table.add_column(f"{s} locs", justify="right")
    for label, rows in report.per_label.groupby("label", sort=True):
        cells = [str(label)]
        for r in rows.set_index("split").loc[list(SPLIT_NAMES)].itertuples():
            bad_c = "missing" in r.flags or "crops off" in r.flags
            bad_l = "missing" in r.flags or "locations off" in r.flags
            cells.append(_cell(f"{r.crops:,} ({r.crop_frac:.2f})", bad_c))
            cells.append(_cell(f"{r.locations:,} ({r.loc_frac:.2f})", bad_l))
        table.add_row(*cells)
    con.print(table)
    for problem in report.problems:
        con.print(f"[bold red]![/] {problem}", highlight=False)
    n = report.flagged["label"].nunique()
    con.print(
        f"{n} of {report.per_label['label'].nunique()} labels flagged" if n else "no label flagged",
        highlight=False,
    )


def _cell(text: str, bad: bool) -> str:
    return f"[bold red]{text}[/]" if bad else text
