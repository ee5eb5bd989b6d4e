"""``--runtime onnxruntime``: a bundle run by ONNX Runtime from a cached export gives the
same probabilities as torch (softmax, sigmoid, calibrated), and the export is made once."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ct_infer.cli import app
from ct_infer.runtime import Runtime, cached_onnx, choose_runtime
from ct_io.errors import CamtrapError

TOLERANCE = 1e-4


def _classify(bundle: Path, crops: Path, out: Path, *flags: str) -> str:
    result = CliRunner().invoke(
        app,
        [
            "classify",
            str(bundle),
            str(crops),
            str(out),
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--workers",
            "0",
            *flags,
        ],
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    "meta,flags",
    [
        ({}, []),
        ({"multilabel": True}, []),
        ({"temperature": 2.5}, []),
        ({"temperature": 2.5, "multilabel": True}, ["--no-calibration"]),
    ],
)
def test_onnxruntime_matches_torch(
    tiny_bundle_factory, crops_dir: Path, tmp_path: Path, meta: dict, flags: list[str]
) -> None:
    bundle = tiny_bundle_factory(f"rt-{len(meta)}-{len(flags)}", seed=3, **meta)
    said = _classify(bundle, crops_dir, tmp_path / "ort.csv", "--runtime", "onnxruntime", *flags)
    assert "with onnxruntime" in said
    _classify(bundle, crops_dir, tmp_path / "torch.csv", "--runtime", "torch", *flags)
    ort = pd.read_csv(tmp_path / "ort.csv").set_index("path").sort_index()
    torch = pd.read_csv(tmp_path / "torch.csv").set_index("path").sort_index()
    assert len(ort) == 24 and ort.index.equals(torch.index)
    assert float((ort - torch).abs().to_numpy().max()) < TOLERANCE


def test_real_network_matches_torch(lite0_bundle: Path, crops_dir: Path, tmp_path: Path) -> None:
    """EfficientNet-Lite0 with real ImageNet weights: peaked probabilities, same top-1."""
    _classify(lite0_bundle, crops_dir, tmp_path / "ort.csv", "--runtime", "onnxruntime")
    _classify(lite0_bundle, crops_dir, tmp_path / "torch.csv", "--runtime", "torch")
    ort = pd.read_csv(tmp_path / "ort.csv").set_index("path").sort_index()
    torch = pd.read_csv(tmp_path / "torch.csv").set_index("path").sort_index()
    assert float((ort - torch).abs().to_numpy().max()) < TOLERANCE
    assert (ort.to_numpy().argmax(1) == torch.to_numpy().argmax(1)).all()


def test_export_is_cached_by_content(
    tiny_bundle_factory, crops_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CT_INFER_CACHE", str(cache))
    bundle = tiny_bundle_factory("cached", seed=5)
    _classify(bundle, crops_dir, tmp_path / "a.csv", "--runtime", "onnxruntime")
    (made,) = cache.iterdir()
    stamp = made.stat().st_mtime_ns
    _classify(bundle, crops_dir, tmp_path / "b.csv", "--runtime", "onnxruntime")
    assert list(cache.iterdir()) == [made] and made.stat().st_mtime_ns == stamp  # not re-exported
    assert cached_onnx(bundle) == made
    other = cached_onnx(tiny_bundle_factory("cached-other", seed=6))
    assert other != made and len(list(cache.iterdir())) == 2  # other weights, other file


def test_missing_onnxruntime_is_one_clear_line(
    tiny_bundle, crops_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the extra were not installed
    result = CliRunner().invoke(
        app,
        [
            "classify",
            str(tiny_bundle),
            str(crops_dir),
            str(tmp_path / "o.csv"),
            "--runtime",
            "onnxruntime",
            "--workers",
            "0",
        ],
    )
    assert isinstance(result.exception, CamtrapError)  # the CLI prints it as one line
    assert str(result.exception) == (
        "--runtime onnxruntime needs onnxruntime and onnx: pip install 'ct-infer[onnx]'"
    )
    auto = choose_runtime("auto", kind="bundle", device_type="cpu", fp32=True, compile_model=False)
    assert auto.runtime is Runtime.TORCH and "not installed" in auto.reason


def test_auto_picks_by_device_and_precision() -> None:
    def pick(**kw: object) -> Runtime:
        args = {
            "kind": "bundle",
            "device_type": "cpu",
            "fp32": True,
            "compile_model": False,
            "available": True,
            **kw,
        }
        return choose_runtime("auto", **args).runtime  # type: ignore[arg-type]

    assert pick() is Runtime.ONNXRUNTIME
    assert pick(device_type="cuda") is Runtime.TORCH
    assert pick(fp32=False) is Runtime.TORCH
    assert pick(compile_model=True) is Runtime.TORCH
    assert pick(available=False) is Runtime.TORCH
    assert pick(kind="onnx") is Runtime.ONNXRUNTIME
    assert pick(kind="torchscript") is Runtime.TORCH


@pytest.mark.parametrize(
    "setting,kind,device",
    [
        ("onnxruntime", "bundle", "cuda"),
        ("onnxruntime", "torchscript", "cpu"),
        ("torch", "onnx", "cpu"),
    ],
)
def test_impossible_runtime_is_an_error(setting: str, kind: str, device: str) -> None:
    with pytest.raises(CamtrapError, match="--runtime"):
        choose_runtime(setting, kind=kind, device_type=device, fp32=True, compile_model=False)  # type: ignore[arg-type]


def test_run_on_onnxruntime_matches_torch(
    tiny_bundle_factory, md_dir: Path, md_json: Path, tmp_path: Path
) -> None:
    """``ct-infer run`` (photos → crops in memory → classify) gives torch's probabilities."""
    bundle = tiny_bundle_factory("rt-run", seed=7, temperature=1.5)
    probs = {}
    for runtime in ("onnxruntime", "torch"):
        out = tmp_path / runtime / "timelapse.json"
        result = CliRunner().invoke(
            app,
            [
                "run",
                str(md_dir / "images"),
                str(bundle),
                "-d",
                str(md_json),
                "-o",
                str(out),
                "--workers",
                "0",
                "--device",
                "cpu",
                "--precision",
                "fp32",
                "--runtime",
                runtime,
            ],
        )
        assert result.exit_code == 0, (result.output, result.exception)
        assert f"with {runtime}" in result.output
        table = pd.read_csv(out.with_name(out.name + ".classifications.csv.gz"))
        probs[runtime] = table.set_index(list(table.columns[:1])).sort_index()
    assert len(probs["torch"]) == 24 and probs["torch"].index.equals(probs["onnxruntime"].index)
    diff = probs["torch"].select_dtypes("number") - probs["onnxruntime"].select_dtypes("number")
    assert float(diff.abs().to_numpy().max()) < TOLERANCE
