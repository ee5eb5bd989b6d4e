from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

from conftest import write_config
from ct_io import hookimpl
from ct_io.errors import CamtrapError, PluginError
from ct_io.hookspecs import ExperimentLogger, Register
from ct_io.plugins import make_plugin_manager
from ct_train.engine import start
from ct_train.loggers import comet_settings, list_loggers, make_loggers

SECRET = "sk-test-0123456789abcdef"


def test_builtin_loggers_registered() -> None:
    assert {r.name for r in list_loggers()} >= {"console", "tensorboard", "comet"}


class MetricsOnly:
    """A logger with the three metric methods but none of the progress ones."""

    def log_metrics(self, metrics: dict[str, float], step: int, *, prefix: str = "") -> None:
        pass

    def log_figure(self, tag: str, image: Any, step: int) -> None:
        pass

    def close(self) -> None:
        pass


class Subclassed(MetricsOnly, ExperimentLogger):
    """The same, subclassing the protocol: its progress methods are inherited no-ops."""


def test_a_logger_has_every_method_of_the_protocol(tmp_path: Path) -> None:
    class Plugin:
        @hookimpl
        def ct_register_loggers(self, register: Register) -> None:
            register("partial", lambda run_dir, config: MetricsOnly())
            register("subclassed", lambda run_dir, config: Subclassed())

    pm = make_plugin_manager(load_entry_points=False)
    pm.register_plugin(Plugin(), "mine", distribution="camtrap-mine")
    [logger] = make_loggers(
        [types.SimpleNamespace(name="subclassed", options={})], tmp_path, {}, pm
    )
    logger.start_epoch(0, 10)
    logger.log_step(5, {"loss": 1.0})
    logger.end_epoch()
    with pytest.raises(PluginError) as err:
        make_loggers([types.SimpleNamespace(name="partial", options={})], tmp_path, {}, pm)
    assert str(err.value).startswith(
        "logger 'partial' of plugin 'mine' (camtrap-mine) has no start_epoch, log_step, end_epoch"
    )


def test_tensorboard_gets_scalars_confusion_matrix_and_extreme_examples(
    dataset: Path, tmp_path: Path, pm
) -> None:  # type: ignore[no-untyped-def]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = write_config(
        tmp_path / "tb",
        dataset,
        {"train": {"epochs": 1, "log_extreme_examples": 2}, "loggers": [{"name": "tensorboard"}]},
    )
    start(cfg, pm=pm)
    acc = EventAccumulator(str(cfg.parent / "tensorboard"), size_guidance={"images": 0}).Reload()
    scalars, images = set(acc.Tags()["scalars"]), set(acc.Tags()["images"])
    assert {
        "train/loss",
        "train/lr",
        "val/acc_top1",
        "val/acc_top3",
        "val/recall_macro",
        "val/label_recall/bear",
    } <= scalars
    assert "val/confusion_matrix" in images
    assert any(tag.startswith("val/tp/") for tag in images)


class FakeExperiment:
    """Records what the Comet logger sends (the comet_ml API surface it uses)."""

    calls: ClassVar[list[tuple[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        FakeExperiment.calls.append(("init", kwargs))

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: FakeExperiment.calls.append((name, (a, k)))


def test_comet_reads_env_file_and_never_writes_the_key(
    dataset: Path, tmp_path: Path, pm, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    for var in ("COMET_API_KEY", "COMET_PROJECT_NAME", "COMET_WORKSPACE"):
        monkeypatch.delenv(var, raising=False)
    fake = type(sys)("comet_ml")
    fake.Experiment = FakeExperiment  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "comet_ml", fake)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / ".env").write_text(
        f"COMET_API_KEY={SECRET}\nCOMET_PROJECT_NAME=cams\nCOMET_WORKSPACE=lab\n"
    )
    cfg = write_config(
        runs / "tiny" / "comet", dataset, {"train": {"epochs": 1}, "loggers": [{"name": "comet"}]}
    )
    FakeExperiment.calls.clear()
    start(cfg, pm=pm)
    init = FakeExperiment.calls[0]
    assert init == ("init", {"api_key": SECRET, "project_name": "cams", "workspace": "lab"})
    assert any(name == "log_metrics" for name, _ in FakeExperiment.calls)
    assert any(name == "log_image" for name, _ in FakeExperiment.calls)
    for path in cfg.parent.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"API key written to {path}"


def test_comet_without_key_or_package_is_one_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("COMET_API_KEY", raising=False)
    with pytest.raises(CamtrapError, match="COMET_API_KEY is not set"):
        comet_settings(tmp_path, ".env")
    monkeypatch.setitem(sys.modules, "comet_ml", None)  # import fails
    from ct_train.loggers import CometLogger, CometOptions

    with pytest.raises(CamtrapError, match="pip install comet-ml"):
        CometLogger(tmp_path, {}, CometOptions())


def test_environment_wins_over_env_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".env").write_text("COMET_API_KEY=from-file\nCOMET_WORKSPACE=file-ws\n")
    monkeypatch.setenv("COMET_API_KEY", "from-env")
    monkeypatch.delenv("COMET_WORKSPACE", raising=False)
    s = comet_settings(tmp_path, ".env")
    assert s["COMET_API_KEY"] == "from-env" and s["COMET_WORKSPACE"] == "file-ws"
