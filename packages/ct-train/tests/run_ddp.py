"""Subprocess entry (one per rank, under torchrun) for the DistributedDataParallel test.

Trains with the engine's own pieces, then each rank saves its final weights so the test
can check that the ranks trained one shared model.
"""

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import tinyplugin
import torch

import ct_train.engine as engine
from ct_train.config import load_config
from ct_train.distributed import cleanup, init_from_env
from ct_train.engine import final_evaluation, run_epochs
from ct_train.session import build_session

cfg = load_config(sys.argv[1])
dist = init_from_env("cpu")
rates: list[dict[str, float]] = []
train_one_epoch = engine.train_one_epoch


def recording_epoch(s: Any, *args: Any) -> dict[str, float]:
    """The epoch's metrics as every rank returns them, beside this rank's own rate."""
    metrics = train_one_epoch(s, *args)
    own = s.progress.sums
    rates.append({"reported": metrics["images_per_s"], "own": own["timed"] / own["seconds"]})
    return metrics


engine.train_one_epoch = recording_epoch
s = build_session(cfg, dist, tinyplugin.plugin_manager())
run_epochs(s, [], cfg.run_dir / "checkpoints")
torch.save(
    {"model": s.model.module.state_dict(), "seen": s.sampler.order()[0].tolist()},
    cfg.run_dir / f"rank{dist.rank}.pt",
)
(cfg.run_dir / f"rates{dist.rank}.json").write_text(json.dumps(rates))
final_evaluation(s, cfg.run_dir / "checkpoints")
cleanup(dist)
