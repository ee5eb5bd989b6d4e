"""Every plugin a config names is resolved before any work, and keeps its contract on one
tiny batch before the first epoch (issue 15 items 5 and 7)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import write_config
from ct_io.errors import CamtrapError, PluginError
from ct_train import engine
from ct_train.engine import start


def _no_work(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("work started before the plugins were resolved")


def _trained_an_epoch(cfg: Path) -> bool:
    return (cfg.parent / "checkpoints" / "last.pt").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"loss": {"name": "scalar_ce"}},
            "loss 'scalar_ce' (plugin 'tinyplugin', distribution tests) returned shape () "
            "for a batch of 2: a loss returns one value per example",
        ),
        (
            {"loss": {"name": "nan_loss"}},
            "loss 'nan_loss' (plugin 'tinyplugin', distribution tests) returned non-finite",
        ),
        (
            {"model": {"backbone": "wide"}},
            "backbone 'wide' (plugin 'tinyplugin', distribution tests) returned (2, 4) for a batch "
            "of 2; expected logits of shape (2, 3)",
        ),
        (
            {"loggers": [{"name": "half"}]},
            "logger 'half' of plugin 'tinyplugin' (tests) has no log_figure",
        ),
    ],
    ids=["scalar-loss", "nan-loss", "wrong-logits", "logger-methods"],
)
def test_a_broken_plugin_stops_before_the_first_epoch(
    dataset: Path,
    tmp_path: Path,
    pm: Any,
    override: dict[str, Any],
    message: str,
) -> None:
    cfg = write_config(tmp_path / "run", dataset, override)
    with pytest.raises(PluginError) as caught:
        start(cfg, pm=pm)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not _trained_an_epoch(cfg)


def test_a_good_third_party_loss_passes_the_checks(dataset: Path, tmp_path: Path, pm: Any) -> None:
    cfg = write_config(
        tmp_path / "run", dataset, {"train": {"epochs": 1}, "loss": {"name": "doubled_ce"}}
    )
    assert start(cfg, pm=pm)["best_epoch"] == 0


def test_comet_without_its_package_fails_before_any_work(
    dataset: Path, tmp_path: Path, pm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "comet_ml", None)  # not installed
    monkeypatch.setenv("COMET_API_KEY", "k")
    monkeypatch.setattr(engine, "build_session", _no_work)
    cfg = write_config(tmp_path / "run", dataset, {"loggers": [{"name": "comet"}]})
    with pytest.raises(CamtrapError, match="pip install comet-ml"):
        start(cfg, pm=pm)


def test_comet_without_a_key_fails_before_any_work(
    dataset: Path, tmp_path: Path, pm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "comet_ml", type(sys)("comet_ml"))  # installed
    monkeypatch.delenv("COMET_API_KEY", raising=False)
    monkeypatch.setattr(engine, "build_session", _no_work)
    cfg = write_config(tmp_path / "run", dataset, {"loggers": [{"name": "comet"}]})
    with pytest.raises(CamtrapError, match="COMET_API_KEY is not set"):
        start(cfg, pm=pm)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"loss": {"name": "focall"}}, "unknown loss 'focall' — did you mean 'focal'"),
        ({"loss": {"name": "focal", "options": {"gama": 2}}}, "gama"),
        ({"model": {"backbone": "tinyy"}}, "unknown backbone 'tinyy'"),
        ({"loggers": [{"name": "tensorbord"}]}, "unknown logger 'tensorbord'"),
    ],
)
def test_unknown_or_misconfigured_plugins_fail_before_any_work(
    dataset: Path,
    tmp_path: Path,
    pm: Any,
    monkeypatch: pytest.MonkeyPatch,
    override: dict[str, Any],
    message: str,
) -> None:
    monkeypatch.setattr(engine, "build_session", _no_work)
    cfg = write_config(tmp_path / "run", dataset, override)
    with pytest.raises(CamtrapError, match=message):
        start(cfg, pm=pm)


def test_the_pipeline_resolves_plugins_before_its_first_stage(
    dataset: Path, tmp_path: Path, pm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ct_train.config import load_config
    from ct_train.pipeline import runner

    monkeypatch.setitem(sys.modules, "comet_ml", None)
    monkeypatch.setattr(runner, "run_stage", _no_work)
    cfg = load_config(write_config(tmp_path / "run", dataset, {"loggers": [{"name": "comet"}]}))
    with pytest.raises(CamtrapError, match="pip install comet-ml"):
        runner.run_pipeline(cfg, pm=pm)
    with pytest.raises(AssertionError, match="work started"):  # no training in range:
        runner.run_pipeline(cfg, pm=pm, stop="split")  # no logger to check, stages start
