"""MegaDetector's own scripts, installed in their own venv for the benchmarks to run.

``megadetector`` is installed with ``--no-deps`` (its full dependencies pull in a detector
stack), pinned to the version the ``peer`` nox session checks against, plus exactly what
the classification scripts import (``crop_detections``, ``run_classifier``,
``merge_classification_detection_output``; ``run_classifier`` imports ``train_classifier``,
which imports scikit-learn, TensorBoard and matplotlib at module level; ``train_classifier``
itself, with the ``evaluate_model`` run it ends with, needs nothing more). The libraries both
sides use (torch, torchvision, pandas, numpy, Pillow, tqdm) are pinned to the versions of the
interpreter running the benchmark, so both run the same kernels. ``crop_detections``
imports ``azure.storage.blob.ContainerClient`` at module level for Azure downloads the
benchmarks never make; that one import is stubbed (``PYTHONPATH`` = :data:`STUBS`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "bench" / ".venvs" / "megadetector"
STUBS = ROOT / "bench" / ".venvs" / "megadetector-stubs"
VERSION = "10.0.28"  # as noxfile.MEGADETECTOR_VERSION
#: installed at the benchmark interpreter's own versions
SAME_AS_OURS = ("torch", "torchvision", "pandas", "numpy", "pillow", "tqdm")
#: only MegaDetector imports these
THEIRS_ONLY = ("scikit-learn", "tensorboard", "matplotlib", "jsonpickle", "requests")


def _pinned(dist: str) -> str:
    try:
        return f"{dist}=={metadata.version(dist).split('+')[0]}"
    except metadata.PackageNotFoundError:
        return dist


def md_python() -> Path:
    """The venv's interpreter, made on first use (from the uv cache: seconds when warm), or
    ``$CAMTRAP_BENCH_MD_PYTHON``: an interpreter that already has megadetector (the GPU
    machine, which reaches no package registry, gets it as wheels beside its own torch)."""
    python = Path(os.environ.get("CAMTRAP_BENCH_MD_PYTHON") or VENV / "bin" / "python")
    marker = VENV / f".camtrap-bench-{VERSION}"
    if "CAMTRAP_BENCH_MD_PYTHON" not in os.environ and not marker.exists():
        if not python.exists():
            subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(VENV)], check=True)
        pip = ["uv", "pip", "install", "-q", "--python", str(python)]
        subprocess.run([*pip, "--no-deps", f"megadetector=={VERSION}"], check=True)
        subprocess.run([*pip, *map(_pinned, SAME_AS_OURS), *THEIRS_ONLY], check=True)
        marker.write_text("")
    blob = STUBS / "azure" / "storage" / "blob.py"
    if not blob.exists():
        blob.parent.mkdir(parents=True, exist_ok=True)
        (STUBS / "azure" / "__init__.py").write_text("")
        (STUBS / "azure" / "storage" / "__init__.py").write_text("")
        blob.write_text("class ContainerClient:  # stub: only used for Azure downloads\n    pass\n")
    return python


def md_env(**extra: str) -> dict[str, str]:
    """This process's environment with the import stubs first on ``PYTHONPATH``."""
    path = os.pathsep.join(filter(None, [str(STUBS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def compile_bytecode(python: Path, *folders: Path) -> None:
    """Write .pyc files as an ordinary install does (this machine sets
    PYTHONDONTWRITEBYTECODE, which would make every run recompile every imported module:
    unfair to the tool that imports more). Done for both tools alike."""
    if "CAMTRAP_BENCH_MD_PYTHON" in os.environ:  # an installed interpreter: compiled already
        return
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run(
        [str(python), "-m", "compileall", "-q", "-j", "0", site, *map(str, folders)],
        check=False,  # a few files in third-party packages do not compile; that is fine
        stdout=subprocess.DEVNULL,
    )
