"""``ct-infer classify --precision bf16`` and ``--compile`` on real MegaDetector crops: the fast
paths give the probabilities the plain fp32 run gives (bf16 within its precision)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ct_infer.cli import app

# bf16 keeps 8 bits of mantissa: on the fixture's 24 crops ImageNet Lite0's probabilities move
# by at most 0.05 (mean 1e-4), and top-1 flips only where fp32's two best classes are a near
# tie (seen: 0.035 vs 0.034, 0.052 vs 0.049, 0.133 vs 0.123). A wiring mistake (no softmax,
# wrong normalisation, rows out of order) moves them by far more.
BF16_MAX_ABS_DIFF = 0.1
BF16_MEAN_ABS_DIFF = 1e-3
NEAR_TIE = 0.02  # fp32's two best classes closer than this may swap under bf16 rounding
CLEAR_AGREEMENT = 0.9  # share of clear calls bf16 must keep
CONFIDENT = 0.5  # where fp32 is at least this sure, bf16 must name the same class


def _classify(bundle: Path, crops_dir: Path, out: Path, *flags: str) -> pd.DataFrame:
    args = ["classify", str(bundle), str(crops_dir), str(out), "--workers", "0"]
    result = CliRunner().invoke(app, [*args, "--device", "cpu", "-b", "16", *flags])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "24 crops classified" in result.output
    if "bf16" in flags:
        assert "bf16: as asked" in result.output
    return pd.read_csv(out).sort_values("path", ignore_index=True)


@pytest.fixture(scope="module")
def fp32(
    lite0_bundle: Path, crops_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("fp32") / "fp32.csv"
    return _classify(lite0_bundle, crops_dir, out, "--precision", "fp32")


def _probabilities(frame: pd.DataFrame) -> np.ndarray:
    return frame.iloc[:, 1:].to_numpy(np.float64)


def test_bf16_gives_probabilities_close_to_fp32(
    fp32: pd.DataFrame, lite0_bundle: Path, crops_dir: Path, tmp_path: Path
) -> None:
    bf16 = _classify(lite0_bundle, crops_dir, tmp_path / "bf16.csv", "--precision", "bf16")
    assert bf16["path"].tolist() == fp32["path"].tolist()
    a, b = _probabilities(fp32), _probabilities(bf16)
    np.testing.assert_allclose(b.sum(axis=1), 1.0, atol=1e-3)
    diff = np.abs(a - b)
    assert 0 < diff.max() <= BF16_MAX_ABS_DIFF  # bf16 really ran (it rounds), and stayed close
    assert diff.mean() <= BF16_MEAN_ABS_DIFF
    same = a.argmax(axis=1) == b.argmax(axis=1)
    best_two = np.sort(a, axis=1)[:, -2:]
    clear = best_two[:, 1] - best_two[:, 0] >= NEAR_TIE
    # Native bf16 (AVX-512 bf16) rounds every matmul input: over 1,000 ImageNet classes a
    # crop whose fp32 lead is a few hundredths may still swap; most clear calls must hold.
    assert clear.sum() >= len(a) // 2 and same[clear].mean() >= CLEAR_AGREEMENT, (
        f"top-1 changed on {(~same[clear]).sum()} of {clear.sum()} crops whose fp32 top-1 "
        f"led by >= {NEAR_TIE}"
    )
    confident = a.max(axis=1) >= CONFIDENT
    assert confident.sum() >= 5 and same[confident].all()


@pytest.mark.slow
def test_compile_runs_and_matches_fp32(
    fp32: pd.DataFrame,
    lite0_bundle: Path,
    crops_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    compiled: list[object] = []
    real_compile = torch.compile

    def spy(model, *args, **kwargs):  # type: ignore[no-untyped-def]
        compiled.append(model)
        return real_compile(model, *args, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    out = _classify(
        lite0_bundle, crops_dir, tmp_path / "compiled.csv", "--compile", "--precision", "fp32"
    )
    assert len(compiled) == 1  # the network really went through torch.compile
    assert out["path"].tolist() == fp32["path"].tolist()
    a, b = _probabilities(fp32), _probabilities(out)
    np.testing.assert_allclose(b, a, atol=1e-4)
    assert (a.argmax(axis=1) == b.argmax(axis=1)).all()
