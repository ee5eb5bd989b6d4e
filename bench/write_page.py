"""Write ``docs/benchmarks.md`` from the results the ``bench/bench_*.py`` scripts saved.

    python bench/write_page.py [--output docs/benchmarks.md]

Run last by ``nox -s bench``. Every headline figure stands beside the reference it was
measured against in the same run on the same machine; GPU figures get their own table
with the device named.
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

from benchpage import RESULTS, Figure, Section, describe_cpu, load

from ct_io.atomic import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
_MEASURED = re.compile(r"^Measured (\d{4}-\d\d-\d\d)", re.M)
ORDER = [
    "cct_load",
    "splits",
    "scale",
    "taxonomy",
    "download",
    "crop",
    "video",
    "classify",
    "chain",
    "train",
    "train_peer",
    "ray",
]


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:,.0f}"
    if value < 0.1:
        return f"{value:.2g}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _target(f: Figure) -> str:
    if f.target is not None:
        return f"≥ {f.target:g}×"
    if f.bound is not None:
        return f"{'≥' if f.higher_is_better else '≤'} {_num(f.bound)} {f.unit}"
    return ""


def _verdict(f: Figure) -> str:
    return {True: "met", False: "**missed**", None: ""}[f.met]


def summary_table(sections: list[Section]) -> list[str]:
    lines = [
        "| benchmark | figure | ours | reference | reference tool | × reference | target | |",
        "|---|---|---:|---:|---|---:|---|---|",
    ]
    for s in sections:
        for f in s.figures:
            ratio = f"{_num(f.ratio)}×" if f.ratio is not None else "–"
            lines.append(
                f"| {s.title} | {f.what} | {_num(f.ours)} {f.unit} | "
                f"{_num(f.reference)}{' ' + f.unit if f.reference is not None else ''} | "
                f"{f.reference_name or '–'} | {ratio} | {_target(f)} | {_verdict(f)} |"
            )
    return lines


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _demote(markdown: str) -> str:
    """Headings inside a section's details sit below the page's ``###`` section heading."""
    return "\n".join(
        "##" + line if line.startswith("#") else line for line in markdown.splitlines()
    )


def earlier_sections(page: Path) -> dict[str, tuple[list[str], str]]:
    """CPU sections of a page this script wrote before: title → (its rows of the summary
    table, its details), verbatim. Results live in ``bench/out`` (not in git), so a run of
    some scripts keeps the page's other figures this way; each carries its own date."""
    if not page.is_file() or "\n## Details\n" not in (text := page.read_text()):
        return {}
    head, details = text.split("\n## Details\n", 1)
    head = head.split("\n## GPU\n", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in head.splitlines():
        if line.startswith("| ") and not line.startswith(("| benchmark |", "|---")):
            rows.setdefault(line[2:].split(" | ", 1)[0], []).append(line)
    out = {}
    for block in ("\n" + details).split("\n### ")[1:]:
        title, _, body = block.partition("\n")
        if not title.endswith("(GPU)") and title in rows:
            out[title] = (rows[title], body.strip())
    return out


def render(
    sections: list[Section],
    missing: list[str],
    carried: dict[str, tuple[list[str], str]] | None = None,
) -> str:
    carried = {t: v for t, v in (carried or {}).items() if t not in {s.title for s in sections}}
    cpu = [s for s in sections if not s.gpu]
    gpu = [s for s in sections if s.gpu]
    dates = sorted(
        {s.measured[:10] for s in sections}
        | {m.group(1) for _r, body in carried.values() if (m := _MEASURED.search(body))}
    )
    out = [
        "# Benchmarks",
        "",
        "Written by `nox -s bench` (every `bench/bench_*.py`, then `bench/write_page.py`); "
        "do not edit by hand. Each figure stands beside its reference, measured in the same "
        'run on the same machine; ratios are "times better than the reference" (faster, or '
        "less memory). Targets are the ones the project's issues set.",
        "",
        f"- Measured: {', '.join(dates) or '–'}",
        f"- Machine: {describe_cpu()}, no GPU used for the CPU table; "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, torch {_version('torch')}, "
        f"torchvision {_version('torchvision')}, Pillow {_version('pillow')}, "
        f"pandas {_version('pandas')}",
        "",
    ]
    if cpu or carried:
        rows = [row for r, _body in carried.values() for row in r]
        out += ["## CPU", "", *summary_table(cpu), *rows, ""]
    if gpu:
        out += ["## GPU", ""]
        for device in sorted({s.device for s in gpu}):
            out += [f"Device: {device}", "", *summary_table([s for s in gpu if s.device == device])]
            out.append("")
    if missing:
        out += [f"Not measured in this run: {', '.join(missing)}.", ""]
    if carried:
        out += [
            "Carried from the page's earlier run (each with its own date below): "
            f"{', '.join(carried)}.",
            "",
        ]
    out += ["## Details", ""]
    for s in sections:
        out += [
            f"### {s.title}{' (GPU)' if s.gpu else ''}",
            "",
            f"Measured {s.measured} on {s.device}; load average {s.load_average:.1f} at the end.",
            "",
            _demote(s.details.strip()),
            "",
        ]
    for title, (_rows, body) in carried.items():
        out += [f"### {title}", "", body, ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="Only this run's results (default: keep the page's other sections as they were).",
    )
    args = parser.parse_args()
    found = {p.stem: load(p) for p in sorted(args.results.glob("*.json"))}
    if not found:
        raise SystemExit(f"no results under {args.results}: run the bench/bench_*.py scripts first")
    names = [n for n in ORDER if n in found] + sorted(set(found) - set(ORDER))
    expected = {p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py")}
    missing = sorted(expected - set(found))
    carried = {} if args.fresh else earlier_sections(args.output)
    write_text_atomic(args.output, render([found[n] for n in names], missing, carried))
    print(f"wrote {args.output} ({len(names)} benchmarks)", file=sys.stderr)


if __name__ == "__main__":
    main()
