"""Every routine task of the camtrap workspace is a nox session.

    nox -s tests          # each package's tests, each in an environment of only its declared deps
    nox -s integration    # cross-package tests under tests/
    nox -s slow           # heavy tests: DDP, the full demo pipeline, every backbone
    nox -s faults         # every long command killed with SIGKILL, rerun, compared
    nox -s peer           # MegaDetector's own validator on the MD JSON ct-infer writes
    nox -s lint typecheck docs
    nox -s demo           # the README's main job on the built-in synthetic dataset
    nox -s bench          # benchmark scripts under bench/, writing docs/benchmarks.md

Environments come from ``uv.lock`` (``uv sync --frozen``), so they match CI exactly. The
test sessions install the outside tools they need (Azurite from npm into ``.nox/tools``,
Debian's Chromium when running as root) and fail on any skipped test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = [
    "lint", "typecheck", "tests", "integration", "docs", "slow", "faults", "peer",
]  # fmt: skip
nox.options.error_on_missing_interpreters = True  # a skipped session must not look like a pass

ROOT = Path(__file__).parent
PACKAGES = ["ct-io", "ct-taxonomy", "ct-crop", "ct-splits", "ct-infer", "ct-train"]
PYTHON = "3.11"
TOOLS = ROOT / ".nox" / "tools"  # test tools from npm (Azurite), installed once per clone
AZURITE_VERSION = "3.35.0"
MEGADETECTOR_VERSION = "10.0.28"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def _sync(session: nox.Session, *args: str) -> None:
    """Install exactly what ``uv.lock`` says for ``args`` into the session's environment."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        "--no-default-groups",
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        silent=True,
    )


def _pytest(session: nox.Session, *paths: str) -> None:
    """Run pytest with skip reasons shown (``-rs``); ``-- ARGS`` on the nox command line are
    passed through. A skipped test fails the run (the root ``conftest.py`` enforces it) unless
    ``CAMTRAP_ALLOW_SKIPS=1`` is set; "no tests collected" (exit 5) fails too."""
    session.run("python", "-m", "pytest", "-rs", *paths, *session.posargs)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _azurite(session: nox.Session) -> None:
    """Put ``azurite-blob`` (Microsoft's Azure Storage emulator) on the session's PATH.

    One already on PATH is used; otherwise Azurite is installed from npm into ``.nox/tools``
    (a project-local prefix: no ``-g``, no root) once and reused.
    """
    if shutil.which("azurite-blob"):
        return
    exe = TOOLS / "node_modules" / ".bin" / "azurite-blob"
    if not exe.exists():
        if not shutil.which("npm"):
            session.error(
                "the Azure tests need Azurite, installed from npm: install Node.js and npm "
                "(apt-get install nodejs npm, or https://nodejs.org), then rerun"
            )
        TOOLS.mkdir(parents=True, exist_ok=True)
        session.run(
            "npm", "install", "--prefix", str(TOOLS), "--no-audit", "--no-fund", "--silent",
            f"azurite@{AZURITE_VERSION}", external=True,
        )  # fmt: skip
    session.env["PATH"] = os.pathsep.join([str(exe.parent), os.environ.get("PATH", "")])


def _chromium(session: nox.Session) -> None:
    """Make sure a Chromium is on PATH for the browser tests of the report and the review
    page (Playwright drives the system's browser; it never downloads one): Debian's package
    when running as root with apt-get; otherwise say how to install it."""
    if any(shutil.which(name) for name in CHROMIUM_NAMES):
        return
    if _is_root() and shutil.which("apt-get"):
        session.run("apt-get", "update", "-qq", external=True)
        session.run(
            "apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium",
            external=True, env={"DEBIAN_FRONTEND": "noninteractive"},
        )  # fmt: skip
        if any(shutil.which(name) for name in CHROMIUM_NAMES):
            return
    session.error(
        "the report and review-page tests need a headless Chromium: `sudo apt-get install chromium` "
        "(or your system's chromium / google-chrome package on PATH), then rerun"
    )


@nox.session(python=PYTHON)
@nox.parametrize("package", PACKAGES, ids=PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """One package's tests in an environment holding only that package and its declared deps.

    An import of a sibling the package does not declare fails here, as it would for a user.
    """
    _sync(session, "--package", package, "--group", "test")
    if package == "ct-io":
        _azurite(session)  # the LILA source's Azure transport runs against Azurite
    if package == "ct-infer":
        _chromium(session)  # the report and the review page are driven in headless Chromium
    _pytest(session, f"packages/{package}/tests")


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """Cross-package tests (tests/ at the root) with the whole workspace installed, with
    the ``ray`` extra (the Ray engine's tests start a small local Ray cluster)."""
    _sync(session, "--all-packages", "--group", "dev", "--extra", "ray")
    _azurite(session)
    _pytest(session, "tests")


@nox.session(python=PYTHON)
def slow(session: nox.Session) -> None:
    """The heavy tests (marked ``slow``): two-process DDP training, the full demo pipeline,
    every backbone variant. Excluded from the other sessions to keep them quick."""
    _sync(session, "--all-packages", "--group", "dev", "--extra", "ray")
    _azurite(session)
    _pytest(session, "packages", "tests", "-m", "slow")


@nox.session(python=PYTHON)
def faults(session: nox.Session) -> None:
    """Fault injection (marked ``faults``): each long command SIGKILLed at seeded random
    points, rerun, and compared with an uninterrupted run."""
    _sync(session, "--all-packages", "--group", "dev")
    _pytest(session, "tests/faults", "-m", "faults")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the workspace."""
    _sync(session, "--only-group", "dev")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy over every package's source."""
    _sync(session, "--all-packages", "--group", "dev")
    session.run("mypy", *[f"packages/{p}/src" for p in PACKAGES])


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Check docs/: links resolve, every hook is documented, runnable examples run."""
    _sync(session, "--all-packages", "--group", "dev")
    _pytest(session, "tests/test_docs.py")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job on the built-in synthetic demo dataset, into ./demo-run (offline)."""
    _sync(session, "--all-packages")
    out = Path(os.environ.get("CAMTRAP_DEMO_DIR", str(ROOT / "demo-run")))
    session.run("ct-train", "demo", str(out), *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Run every bench/ script (reference tools installed in their own venvs by the scripts),
    then write docs/benchmarks.md from their results. ``nox -s bench -- crop train`` runs
    only those scripts (the page keeps the other scripts' last saved results)."""
    _sync(session, "--all-packages", "--group", "dev")
    scripts = sorted((ROOT / "bench").glob("bench_*.py"))
    if session.posargs:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in session.posargs]
    for script in scripts:
        session.run("python", str(script))
    session.run("python", str(ROOT / "bench" / "write_page.py"))


@nox.session(python=PYTHON)
def peer(session: nox.Session) -> None:
    """MegaDetector's own validator (megadetector.postprocessing.validate_batch_results)
    checks the MD JSON files ct-infer merges from the committed real-photo fixture.

    megadetector is installed with --no-deps (its full deps pull in a detector stack),
    plus exactly what the validator module imports. The tests are marked ``peer``, so the
    other sessions deselect them.
    """
    _sync(session, "--package", "ct-infer", "--group", "test")
    session.install("--no-deps", f"megadetector=={MEGADETECTOR_VERSION}")
    session.install("tqdm", "jsonpickle", "requests", "opencv-python-headless")
    _pytest(session, "packages/ct-infer/tests", "-m", "peer")
