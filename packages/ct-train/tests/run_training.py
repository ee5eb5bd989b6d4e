"""Subprocess entry for tests: train one config with the tiny test plugin loaded.

Usage: python run_training.py CONFIG [--no-resume] [--set k=v ...]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import tinyplugin

from ct_train.engine import start

args = sys.argv[1:]
resume = "--no-resume" not in args
overrides = [a for a in args[1:] if a not in ("--no-resume", "--set")]
start(args[0], overrides, resume=resume, pm=tinyplugin.plugin_manager())
