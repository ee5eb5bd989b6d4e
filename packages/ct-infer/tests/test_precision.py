"""``--precision auto`` runs bf16 only where the hardware computes it (emulated bf16 on an
AVX2-only CPU is about 4x slower than fp32), fp16 on CUDA without bf16, fp32 elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ct_infer.cli import app
from ct_infer.precision import Precision, cpu_has_native_bf16, resolve_precision


@pytest.mark.parametrize(
    ("device", "cpu_bf16", "cuda_bf16", "expected", "reason"),
    [
        ("cpu", True, None, Precision.BF16, "this CPU has native bf16"),
        ("cpu", False, None, Precision.FP32, "this CPU has no native bf16"),
        ("cuda", None, True, Precision.BF16, "this CUDA device supports bf16"),
        ("cuda", None, False, Precision.FP16, "this CUDA device has no bf16"),
        ("mps", True, True, Precision.FP32, "autocast is not used on Apple MPS"),
    ],
)
def test_auto_follows_the_capability(
    device: str, cpu_bf16: bool | None, cuda_bf16: bool | None, expected: Precision, reason: str
) -> None:
    got = resolve_precision("auto", device, cpu_native_bf16=cpu_bf16, cuda_bf16=cuda_bf16)
    assert got.precision is expected
    assert got.describe() == f"{expected.value}: {reason}"


@pytest.mark.parametrize("setting", ["fp32", "bf16", "fp16"])
def test_an_explicit_precision_is_kept(setting: str) -> None:
    got = resolve_precision(setting, "cpu", cpu_native_bf16=False)
    assert got.precision.value == setting and got.reason == "as asked"
    assert got.autocast == (setting != "fp32")


def test_auto_on_this_cpu_matches_its_flags() -> None:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    assert cpu_has_native_bf16() is native
    expected = Precision.BF16 if native else Precision.FP32
    assert resolve_precision("auto", "cpu").precision is expected


def test_cli_says_which_precision_ran_and_why(
    tiny_bundle: Path, crops_dir: Path, tmp_path: Path
) -> None:
    args = ["classify", str(tiny_bundle), str(crops_dir), str(tmp_path / "a.csv")]
    result = CliRunner().invoke(app, [*args, "--workers", "0", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert resolve_precision("auto", "cpu").describe() in result.output


def test_deprecated_bf16_flag_means_precision_bf16(
    tiny_bundle: Path, crops_dir: Path, tmp_path: Path
) -> None:
    args = ["classify", str(tiny_bundle), str(crops_dir), str(tmp_path / "b.csv")]
    result = CliRunner().invoke(app, [*args, "--workers", "0", "--device", "cpu", "--bf16"])
    assert result.exit_code == 0, result.output
    assert "--bf16 is deprecated" in result.output and "bf16: as asked" in result.output


def test_an_unknown_precision_is_refused(
    tiny_bundle: Path, crops_dir: Path, tmp_path: Path
) -> None:
    args = ["classify", str(tiny_bundle), str(crops_dir), str(tmp_path / "c.csv")]
    result = CliRunner().invoke(app, [*args, "--precision", "int8"])
    assert result.exit_code == 2 and "int8" in result.output
