"""``ct-train run`` end to end on a tiny synthetic dataset (the demo source, a tiny CNN).

Checks the orchestrator's contract: every stage runs and writes its files; a rerun skips
everything; a changed config section reruns only the stages that depend on it; --from /
--to bound the run; a failing stage stops the run with one line.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from ct_infer.backbones import BuiltBackbone, Preprocessing
from ct_infer.bundle import read_bundle_meta
from ct_io import hookimpl
from ct_io.plugins import get_plugin_manager
from ct_io.tables import read_classification_ds, read_label_index, read_splits
from ct_splits.counts import count_units
from ct_train.config import deep_merge, load_config
from ct_train.pipeline.runner import (
    NOT_NEEDED,
    NOT_RUN,
    RAN,
    SKIPPED,
    PipelineResult,
    run_pipeline,
)

DATA_STAGES = ["fetch", "select", "detect", "crop", "table", "split"]
MODEL_STAGES = ["train", "bundle", "evaluate", "export", "report"]


class TinyPlugin:
    """A tiny CNN backbone, registered through the backbone hook like any plugin."""

    @hookimpl
    def ct_register_backbones(self, register: Any) -> None:
        def make(num_classes: int, pretrained: object) -> BuiltBackbone:
            net = torch.nn.Sequential(
                torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),
                torch.nn.BatchNorm2d(8),
                torch.nn.ReLU(),
                torch.nn.AdaptiveAvgPool2d(1),
                torch.nn.Flatten(),
                torch.nn.Linear(8, num_classes),
            )
            return BuiltBackbone(net, Preprocessing(32))

        register("tiny-cnn", make, description="tiny CNN for the pipeline tests")


@pytest.fixture(autouse=True)
def tiny_backbone() -> Any:
    """The tiny backbone in the process-wide plugin manager (ct-infer loads bundles through it)."""
    shared = get_plugin_manager()
    name = shared.register_plugin(TinyPlugin(), "tiny-pipeline", distribution="tests")
    yield
    shared.unregister_plugin(name)


def config(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sources": [{"name": "demo", "options": {"num_images": 48, "num_locations": 6}}],
        "data": {"sources_dir": "data", "batch_size": 8, "num_workers": 0},
        "model": {"backbone": "tiny-cnn", "pretrained": "none"},
        "optim": {"lr": 0.01, "weight_decay": 0.0},
        "train": {"epochs": 1, "amp": "off", "early_stop": {"patience": 0}},
        "loggers": [{"name": "console", "options": {"progress": False}}],
        "crop": {"size": 48, "workers": 1},
        "splits": {"trials": 200},
        "evaluate": {"batch_size": 16},
        "export": {"formats": ["torchscript"]},
    }
    return deep_merge(base, extra or {})


def run(run_dir: Path, extra: dict[str, Any] | None = None, **kwargs: Any) -> PipelineResult:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yml").write_text(yaml.safe_dump(config(extra)))
    return run_pipeline(load_config(run_dir / "config.yml"), **kwargs)


def statuses(result: PipelineResult) -> dict[str, str]:
    return {s.name: s.status for s in result.stages}


def test_run_rerun_and_downstream_only(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "tiny" / "base"
    first = run(run_dir)
    assert first.ok, first.error
    st = statuses(first)
    assert st["detect"] == NOT_NEEDED  # the demo source brings MD JSON and GT boxes
    assert all(st[s] == RAN for s in DATA_STAGES + MODEL_STAGES if s != "detect")
    for rel in (
        "selection/queried_images.json",
        "crops/crops.csv",
        "classification_ds.csv",
        "label_index.json",
        "splits.json",
        "checkpoints/best.pt",
        "model/base.safetensors",
        "model/base.torchscript.pt",
        "evaluation/overall_metrics.csv",
        "evaluation/confusion_matrices.npz",
        "evaluation/label_stats.csv",
        "evaluation/outputs_test.csv.gz",
        "report/report.html",
        "pipeline_state.json",
    ):
        assert (run_dir / rel).is_file(), rel
    assert first.stage("crop").counts["crops"] > 0
    check_calibrated_bundle(run_dir)
    check_report_shows_crops(run_dir, "tiny-cnn")

    again = run(run_dir)
    assert again.ok and set(statuses(again).values()) == {SKIPPED}

    # a training option: the data stages are up to date, everything from train on reruns
    longer = run(run_dir, {"train": {"epochs": 2}})
    st = statuses(longer)
    assert [st[s] for s in DATA_STAGES] == [SKIPPED] * len(DATA_STAGES)
    assert [st[s] for s in MODEL_STAGES] == [RAN] * len(MODEL_STAGES)

    # a crop option: selection is kept, the crops are remade and the model retrained
    margin = run(run_dir, {"train": {"epochs": 2}, "crop": {"margin": 0.2}})
    st = statuses(margin)
    assert st["fetch"] == st["select"] == SKIPPED
    assert st["crop"] == RAN and st["train"] == RAN

    # a taxonomy: the bundle gets each label's lineage (the selection is redone with it)
    (run_dir / "taxonomy.csv").write_text(DEMO_TAXONOMY)
    with_taxonomy = {"train": {"epochs": 2}, "crop": {"margin": 0.2}}
    with_taxonomy["labels"] = {"taxonomy": "taxonomy.csv"}
    st = statuses(run(run_dir, with_taxonomy))
    assert st["select"] == RAN and st["bundle"] == RAN
    meta = read_bundle_meta(run_dir / "model" / "base.safetensors")
    assert meta.taxonomy["fox"] == "class:mammalia;order:carnivora;family:canidae;genus:vulpes"
    assert meta.taxonomy["hare"] == "class:mammalia;order:lagomorpha;family:leporidae"
    assert "boar" not in meta.taxonomy  # not in the taxonomy: no lineage

    # a deleted output is noticed
    (run_dir / "report" / "report.html").unlink()
    st = statuses(run(run_dir, with_taxonomy))
    assert st["report"] == RAN and st["train"] == SKIPPED


#: lineages for some of the demo source's species (own-CSV format)
DEMO_TAXONOMY = """dataset_name,query,class,order,family,genus
demo,fox,mammalia,carnivora,canidae,vulpes
demo,hare,mammalia,lagomorpha,leporidae,
demo,deer,mammalia,artiodactyla,cervidae,
demo,badger,mammalia,carnivora,mustelidae,meles
"""


def check_calibrated_bundle(run_dir: Path) -> None:
    """The bundle's temperature was fitted on val, and ct-infer's evaluation applies it:
    the val NLL of the evaluated (calibrated) outputs is the fit's NLL after scaling."""
    import numpy as np

    from ct_infer.evaluate import read_outputs
    from ct_infer.metrics import label_indices

    meta = read_bundle_meta(run_dir / "model" / "base.safetensors")
    fit = meta.extra["calibration"]
    assert meta.temperature == fit["temperature"] != 1.0
    assert fit["nll_after"] <= fit["nll_before"]
    frame, labels = read_outputs(run_dir / "evaluation" / "outputs_val.csv.gz")
    assert fit["count"] == len(frame)
    targets = label_indices(frame["label"].tolist(), labels)
    probs = frame[labels].to_numpy(np.float64)
    nll = -np.log(np.clip(probs[np.arange(len(targets)), targets], 1e-12, 1)).mean()
    assert nll == pytest.approx(fit["nll_after"], rel=0.05, abs=0.02)


def check_report_shows_crops(run_dir: Path, backbone: str) -> None:
    """The report names the model and data, and shows crops (thumbnails beside it)."""
    html = (run_dir / "report" / "report.html").read_text()
    assert backbone in html and "<th>locations</th>" in html and "demo" in html
    assert "Top confusions" in html and "Crops by label (test), grouped by prediction" in html
    thumbs = set(re.findall(r"src='(thumbs/[0-9a-f]+\.jpg)'", html))
    assert thumbs and all((run_dir / "report" / t).is_file() for t in thumbs)


def test_from_and_to_bound_the_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    upto = run(run_dir, stop="table")
    st = statuses(upto)
    assert st["table"] == RAN and st["split"] == NOT_RUN and st["train"] == NOT_RUN
    assert (run_dir / "classification_ds.csv").is_file()
    assert not (run_dir / "splits.json").exists()

    only = run(run_dir, start="split", stop="split")
    st = statuses(only)
    assert st["split"] == RAN
    assert all(st[s] == NOT_RUN for s in st if s != "split")

    # train without splits: one-line failure naming the missing input, later stages not run
    missing = run(tmp_path / "empty", start="train")
    assert not missing.ok and "missing" in (missing.error or "")
    assert statuses(missing)["bundle"] == NOT_RUN


def test_failing_stage_stops_with_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "bad"
    run_dir.mkdir()
    (run_dir / "spec.json").write_text('{"cat": {"dataset_labels": {"demo": ["no-such-label"]}}}')
    cfg = config({"labels": {"spec": "spec.json"}})
    (run_dir / "config.yml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [sys.executable, "-m", "ct_train", "run", str(run_dir / "config.yml"), "--to", "crop"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: stage select failed:")
    assert "no-such-label" in errors[0]
    assert "failed" in proc.stdout and "not run" in proc.stdout  # the summary table
    assert not (run_dir / "crops").exists()


#: overlapping labels: fox and badger crops carry two labels (``carnivore,fox``)
MULTI_SPEC = {
    "carnivore": {"dataset_labels": {"demo": ["fox", "badger"]}},
    "fox": {"dataset_labels": {"demo": ["fox"]}},
    "badger": {"dataset_labels": {"demo": ["badger"]}},
    "deer": {"dataset_labels": {"demo": ["deer"]}},
    "boar": {"dataset_labels": {"demo": ["boar"]}},
    "hare": {"dataset_labels": {"demo": ["hare"]}},
}

MULTILABEL = {
    "labels": {"spec": "spec.json", "allow_multilabel": True},
    "train": {"multilabel": True, "epochs": 2},
    "loss": {"name": "bce"},
    "sampling": {"method": "label_weighted"},
    "export": {"formats": []},
}


def test_multilabel_selection_runs_end_to_end(tmp_path: Path) -> None:
    """Overlapping labels kept with ``labels.allow_multilabel`` give rows with several
    labels; they go through every stage to a multi-label bundle, evaluation and report."""
    run_dir = tmp_path / "runs" / "tiny" / "multi"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text(json.dumps(MULTI_SPEC))
    result = run(run_dir, MULTILABEL)
    assert result.ok, result.error
    st = statuses(result)
    assert st["detect"] == NOT_NEEDED
    for name in ("select", "crop", "table", "split", "train", "bundle", "evaluate", "report"):
        assert st[name] == RAN, name

    frame = read_classification_ds(run_dir / "classification_ds.csv")
    assert {"carnivore,fox", "badger,carnivore"} & set(frame["label"])
    labels = read_label_index(run_dir / "label_index.json")
    assert labels == sorted(MULTI_SPEC)  # each label once, not the joined rows

    # split by location: no location in two splits, and every row's labels are counted
    splits = read_splits(run_dir / "splits.json")
    seen: dict[tuple[str, str], str] = {}
    for name, locs in splits.as_dict().items():
        for loc in locs:
            assert tuple(loc) not in seen
            seen[tuple(loc)] = name
    assert len(seen) == frame.groupby(["dataset", "location"]).ngroups
    assert count_units(frame).labels == sorted(MULTI_SPEC)

    meta = read_bundle_meta(run_dir / "model" / "multi.safetensors")
    assert meta.multilabel and sorted(meta.labels) == sorted(MULTI_SPEC)
    check_calibrated_multilabel_bundle(run_dir / "model" / "multi.safetensors", run_dir)

    outputs = pd.read_csv(run_dir / "evaluation" / "outputs_test.csv.gz")
    sums = outputs[sorted(MULTI_SPEC)].sum(axis=1)
    assert not np.allclose(sums, 1.0)  # a sigmoid per label
    stats = pd.read_csv(run_dir / "evaluation" / "label_stats.csv")
    assert set(stats["label"]) == set(MULTI_SPEC)  # each label scored, not the joined rows
    html = (run_dir / "report" / "report.html").read_text()
    assert "mAP" in html


def check_calibrated_multilabel_bundle(bundle: Path, run_dir: Path) -> None:
    """One temperature for every sigmoid, fitted on val; ct-infer's evaluation applies
    it: the binary NLL of the evaluated val outputs is the fit's NLL after scaling."""
    from ct_infer.calibration import binary_nll, sigmoid_logits
    from ct_infer.evaluate import read_outputs
    from ct_infer.multilabel import multi_hot

    meta = read_bundle_meta(bundle)
    fit = meta.extra["calibration"]
    assert fit["method"].startswith("sigmoid")
    assert meta.temperature == fit["temperature"] != 1.0
    assert fit["nll_after"] <= fit["nll_before"]
    frame, labels = read_outputs(run_dir / "evaluation" / "outputs_val.csv.gz")
    assert fit["count"] == len(frame)
    truth = multi_hot(frame["label"].tolist(), labels)
    nll = binary_nll(sigmoid_logits(frame[labels].to_numpy(np.float64)), truth, 1.0)
    assert nll == pytest.approx(fit["nll_after"], rel=0.05, abs=0.02)


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    """The README's main job (minutes): location split vs random split, every file written."""
    proc = subprocess.run(
        [sys.executable, "-m", "ct_train", "demo", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = tmp_path / "demo" / "location-split"
    for rel in (
        "report/report.html",
        "model/location-split.onnx",
        "evaluation/outputs_test.csv.gz",
    ):
        assert (run_dir / rel).is_file(), rel
    assert "location split vs naive random split" in proc.stdout
    check_report_shows_crops(run_dir, "efficientnet-lite0")
    assert (tmp_path / "demo" / "random-split" / "evaluation" / "overall_metrics.csv").is_file()
