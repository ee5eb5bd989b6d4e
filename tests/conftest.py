"""Fixtures the workspace tests share: Azurite (one server for the session) and a tiny
classifier bundle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ct_io.testing import Azurite, ServerError, azurite_blob_server


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's blob service (give each test module its own container names)."""
    try:
        with azurite_blob_server(tmp_path_factory.mktemp("azurite")) as server:
            yield server
    except ServerError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised tiny timm network (64 px) saved as a bundle."""
    import torch

    from ct_infer.backbones import build_backbone
    from ct_infer.bundle import make_meta, save_bundle

    torch.manual_seed(0)
    labels = ["antelope", "bird", "carnivore", "primate"]
    built = build_backbone("timm:test_efficientnet", len(labels), None, {"input_size": 64})
    path = tmp_path_factory.mktemp("bundle") / "tiny.safetensors"
    meta = make_meta("timm:test_efficientnet", labels, built.preprocessing, built.options)
    save_bundle(path, built.module, meta)  # type: ignore[arg-type]
    return path
