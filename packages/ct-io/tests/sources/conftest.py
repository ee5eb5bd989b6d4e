"""Real protocol servers for the data-source tests, started and stopped by the tests:
a local HTTP file server (with injectable faults and request counts), moto's S3 server
and Azurite (Microsoft's Azure Storage emulator, from npm). The servers themselves live
in :mod:`ct_io.testing`, shared with the workspace's other test suites."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ct_io.testing import (
    AWS_ENV_UNSET,
    Azurite,
    FileServer,
    ServerError,
    azurite_blob_server,
    fake_aws_env,
    moto_s3_server,
)


def _ensure_demo_source() -> None:
    """Until this branch is merged with the foundation branch that adds ``ct_io.sources.demo``,
    give the built-in plugin module the import it expects so the registry loads."""
    try:
        importlib.import_module("ct_io.sources.demo")
    except ModuleNotFoundError:
        mod = types.ModuleType("ct_io.sources.demo")

        class DemoOptions:  # placeholder; the real demo source comes from the foundation branch
            pass

        class DemoSource:
            def __init__(self, options: Any) -> None:
                raise RuntimeError("demo source not available on this branch")

        mod.DemoOptions = DemoOptions  # type: ignore[attr-defined]
        mod.DemoSource = DemoSource  # type: ignore[attr-defined]
        sys.modules["ct_io.sources.demo"] = mod


_ensure_demo_source()


@pytest.fixture(scope="session")
def md_images(md_test: Path) -> list[Path]:
    """The 13 real camera-trap JPEGs of the committed fixture set (smallest first)."""
    return sorted((p for p in (md_test / "images").iterdir()), key=lambda p: p.stat().st_size)


# ---------------------------------------------------------------------- HTTP


@pytest.fixture(scope="session")
def file_server_class() -> type[FileServer]:
    """For fixtures that need their own server (module scope)."""
    return FileServer


@pytest.fixture()
def http_server() -> Iterator[FileServer]:
    server = FileServer().start()
    yield server
    server.stop()


# ---------------------------------------------------------------------- S3 (moto server mode)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's S3-compatible server on a loopback port; yields its endpoint URL."""
    with moto_s3_server() as url:
        yield url


@pytest.fixture()
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials for the moto server, and no real AWS config files."""
    for var, value in fake_aws_env(tmp_path).items():
        monkeypatch.setenv(var, value)
    for var in AWS_ENV_UNSET:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture()
def s3(moto_server: str, aws_env: None) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=moto_server, region_name="us-west-2")


# ---------------------------------------------------------------------- Azure (Azurite)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's blob service on a loopback port, in memory; stopped after the session.

    Fails (does not skip) when ``azurite-blob`` is missing: install it with
    ``npm install -g azurite`` (CI's .ci/run does).
    """
    try:
        with azurite_blob_server(tmp_path_factory.mktemp("azurite")) as server:
            yield server
    except ServerError as exc:
        pytest.fail(str(exc))
