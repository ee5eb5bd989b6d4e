"""What every ``bench/`` script hands to the benchmark page (``docs/benchmarks.md``).

A script measures, prints its own detailed table, and calls :func:`save` with its
headline figures, each beside the reference it was measured against in the same run.
``bench/write_page.py`` (run last by ``nox -s bench``) gathers the saved files into
the page together with a description of the machine and the date.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "out" / "results"
ROOT = Path(__file__).resolve().parents[1]
SHARED_MD_TEST = ROOT.parent / "shared" / "data" / "md-test-images"
FIXTURE_MD_TEST = ROOT / "tests" / "data" / "md-test-images"


def md_test_images() -> Path:
    """The real-photo set benchmarks run on: ``$CAMTRAP_MD_TEST_IMAGES`` (a copy carried to
    another machine), the full 31 photos in ``../shared`` (beside a developer's or CI's
    checkout) or, where both are missing, the tests' 13 downscaled photos (said on stdout:
    figures from it are not comparable with the page's)."""
    for folder in (os.environ.get("CAMTRAP_MD_TEST_IMAGES"), SHARED_MD_TEST):
        if folder and (Path(folder) / "md_output_v5a.json").is_file():
            return Path(folder)
    print(
        f"note: {SHARED_MD_TEST} not found; benchmarking on the tests' 13 downscaled photos "
        f"({FIXTURE_MD_TEST}), so the figures are not comparable with docs/benchmarks.md"
    )
    return FIXTURE_MD_TEST


def console_script(name: str) -> str:
    """The ``ct-*`` command beside this interpreter (its venv), else the one on ``PATH`` (the
    packages installed with ``pip --target``, as on the GPU machine)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not installed beside {sys.executable} nor on PATH")
    return found


@dataclass
class Figure:
    """One measured figure, with the reference measured beside it (if there is one)."""

    what: str  #: e.g. "classify resnet18 @224, crops/s (whole process)"
    ours: float
    unit: str  #: "crops/s", "s", "MB", ...
    reference: float | None = None
    reference_name: str = ""  #: e.g. "plain fp32 batch-1 loop"
    higher_is_better: bool = True
    target: float | None = None  #: the issue's target, as a ratio over the reference
    #: when there is no reference: the target as an absolute bound in ``unit``
    bound: float | None = None

    @property
    def ratio(self) -> float | None:
        """How many times better than the reference (>1 = better), or None."""
        if not self.reference or not self.ours:
            return None
        return self.ours / self.reference if self.higher_is_better else self.reference / self.ours

    @property
    def met(self) -> bool | None:
        """Whether the issue's target is met (None: no target)."""
        if self.target is not None and self.ratio is not None:
            return self.ratio >= self.target
        if self.bound is not None:
            return self.ours >= self.bound if self.higher_is_better else self.ours <= self.bound
        return None


@dataclass
class Section:
    """One bench script's results: headline figures and its detailed Markdown."""

    name: str
    title: str
    figures: list[Figure]
    details: str = ""  #: Markdown (tables, notes) shown under the headline table
    device: str = field(default_factory=lambda: describe_cpu())
    gpu: bool = False
    measured: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    load_average: float = field(default_factory=lambda: round(os.getloadavg()[0], 2))


def describe_cpu() -> str:
    """e.g. "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz, 2 cores, 24 GiB, torch AVX512,
    native bf16: yes"."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        memory = f", {gib:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        memory = ""
    return f"{model}, {cores} cores{memory}{cpu_capability()}"


def cpu_capability() -> str:
    """e.g. ", torch AVX2, native bf16: no" (what ``--precision auto`` decides from); empty
    where torch is not installed (it is not imported then)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return ""
    import torch

    try:
        from ct_infer.precision import cpu_has_native_bf16

        native = "yes" if cpu_has_native_bf16() else "no"
    except ImportError:
        native = "unknown"
    return f", torch {torch.backends.cpu.get_cpu_capability()}, native bf16: {native}"


def save(section: Section) -> Path:
    """Write ``bench/out/results/<name>.json`` for the page writer; returns the path."""
    from ct_io.atomic import write_text_atomic

    path = RESULTS / f"{section.name}.json"
    write_text_atomic(path, json.dumps(asdict(section), indent=1, ensure_ascii=False) + "\n")
    return path


def load(path: Path) -> Section:
    """Read back what :func:`save` wrote."""
    data = json.loads(path.read_text())
    data["figures"] = [Figure(**f) for f in data["figures"]]
    return Section(**data)
