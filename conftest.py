"""Fixtures and rules every test suite of the workspace shares (pytest loads this rootdir
conftest for ``packages/*/tests`` and ``tests/`` alike): the committed real-photo set, and
no silent skips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: 13 real camera-trap photos (downscaled) with their real MegaDetector boxes; see its README.
MD_TEST_IMAGES = Path(__file__).resolve().parent / "tests" / "data" / "md-test-images"


@pytest.fixture(scope="session")
def md_test() -> Path:
    """The real-photo fixture folder: ``images/`` and ``md_output_v5a.json`` (format 1.1)."""
    return MD_TEST_IMAGES


def pytest_configure(config: pytest.Config) -> None:
    """ct-infer's ONNX export cache (``--runtime``) goes to a folder of this run, never the
    user's ``~/.cache`` (subprocesses inherit it)."""
    import tempfile

    os.environ["CT_INFER_CACHE"] = tempfile.mkdtemp(prefix="ct-infer-onnx-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    shutil.rmtree(os.environ.pop("CT_INFER_CACHE", ""), ignore_errors=True)


# ---------------------------------------------------------------- no silent skips

#: Set to 1 to let a run with skipped tests pass (the summary names it when a skip fails one).
ALLOW_SKIPS = "CAMTRAP_ALLOW_SKIPS"


def _skipped(config: pytest.Config) -> list[pytest.TestReport]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return list(reporter.stats.get("skipped", [])) if reporter is not None else []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test fails the run: every test must run on a fresh clone."""
    if exitstatus == pytest.ExitCode.OK and _skipped(session.config) and not _skips_allowed():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(
    terminalreporter: object, exitstatus: int, config: pytest.Config
) -> None:
    skipped = _skipped(config)
    if skipped and not _skips_allowed():
        config.pluginmanager.get_plugin("terminalreporter").write_line(  # type: ignore[union-attr]
            f"{len(skipped)} test(s) skipped, which fails this run: every test must run here "
            f"(the reasons are listed above; set {ALLOW_SKIPS}=1 to let skips pass)",
            red=True,
            bold=True,
        )


def _skips_allowed() -> bool:
    return os.environ.get(ALLOW_SKIPS, "") not in ("", "0")
