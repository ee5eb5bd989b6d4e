from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ct_infer.backbones import model_from_bundle
from ct_infer.bundle import BundleError, load_bundle, read_bundle_meta, save_tensors
from ct_infer.cli import app


def test_round_trip_rebuilds_the_same_network(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    meta = bundle.meta
    assert meta.labels == ["antelope", "bird", "carnivore", "primate"]
    assert meta.backbone == "timm:test_efficientnet" and meta.preprocessing.input_size == 64
    assert meta.crop == {"square": True} and meta.temperature == 1.0
    model = model_from_bundle(bundle)
    for key, value in model.state_dict().items():
        assert torch.equal(value, bundle.state_dict[key])
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), model_from_bundle(load_bundle(tiny_bundle))(x))
    assert read_bundle_meta(tiny_bundle) == meta


def test_metadata_fields_are_kept(tiny_bundle_factory) -> None:  # type: ignore[no-untyped-def]
    path = tiny_bundle_factory(
        "meta",
        taxonomy={"bird": "animalia;chordata;aves"},
        config_digest="abc123",
        crop={"square": True, "padding": 8},
    )
    meta = read_bundle_meta(path)
    assert meta.taxonomy == {"bird": "animalia;chordata;aves"}
    assert meta.config_digest == "abc123" and meta.crop["padding"] == 8
    assert meta.producer.startswith("ct-infer ")


def test_tampered_weights_are_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    data = bytearray(tiny_bundle.read_bytes())
    data[-100] ^= 0xFF  # flip bits inside the last tensor
    bad = tmp_path / "tampered.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="modified or damaged"):
        load_bundle(bad)


def test_truncated_bundle_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(tiny_bundle.read_bytes()[:5000])
    with pytest.raises(BundleError, match=r"not a camtrap bundle|damaged"):
        load_bundle(bad)


def test_foreign_safetensors_and_pickles_are_refused_without_unpickling(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(BundleError, match="not a camtrap bundle"):
        load_bundle(plain)

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (marker.write_text, ("x",))

    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(BundleError, match="not a camtrap bundle"):
        load_bundle(evil)
    assert not marker.exists()


def test_metadata_that_does_not_fit_is_one_line(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    broken = bundle.with_meta(labels=["only", "two"])
    path = save_tensors(tmp_path / "two.safetensors", broken.state_dict, broken.meta)
    with pytest.raises(BundleError, match="weights do not fit") as err:
        model_from_bundle(load_bundle(path))
    assert "\n" not in str(err.value)


def test_cli_info_and_foreign_file_error(tiny_bundle: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["info", str(tiny_bundle)])
    assert result.exit_code == 0, result.output
    assert "test_efficientnet" in result.output and "carnivore" in result.output
    junk = tmp_path / "junk.safetensors"
    junk.write_text("hello")
    result = runner.invoke(app, ["info", str(junk)])
    assert result.exit_code != 0
    assert isinstance(result.exception, BundleError)


def test_bundle_from_another_format_version_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save

    with safe_open(str(tiny_bundle), framework="pt") as fh:
        header = dict(fh.metadata())
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    assert header["format_version"] == "1" and json.loads(header["camtrap"])["producer"]
    newer = tmp_path / "newer.safetensors"
    newer.write_bytes(save(tensors, metadata={**header, "format_version": "2"}))
    with pytest.raises(BundleError, match="format version '2'; this ct-infer reads 1"):
        read_bundle_meta(newer)
