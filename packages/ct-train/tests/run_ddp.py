"""Subprocess entry (one per rank, under torchrun) for the DistributedDataParallel test.

Trains with the engine's own pieces, then each rank saves its final weights so the test
can check that the ranks trained one shared model.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import tinyplugin
import torch

from ct_train.config import load_config
from ct_train.distributed import cleanup, init_from_env
from ct_train.engine import final_evaluation, run_epochs
from ct_train.session import build_session

cfg = load_config(sys.argv[1])
dist = init_from_env("cpu")
s = build_session(cfg, dist, tinyplugin.plugin_manager())
run_epochs(s, [], cfg.run_dir / "checkpoints")
torch.save(
    {"model": s.model.module.state_dict(), "seen": s.sampler.order()[0].tolist()},
    cfg.run_dir / f"rank{dist.rank}.pt",
)
final_evaluation(s, cfg.run_dir / "checkpoints")
cleanup(dist)
