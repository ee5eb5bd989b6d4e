"""Checkpoints: written atomically, read without unpickling arbitrary objects.

``checkpoints/last.pt`` holds everything needed to continue exactly (model, optimizer,
scheduler, grad scaler, sampler position, RNG states, progress); ``checkpoints/best.pt``
holds the best weights and what is needed to use them (labels, backbone, input size,
normalisation, the metric that made it best).
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ct_io.atomic import write_bytes_atomic
from ct_io.errors import CamtrapError

LAST = "last.pt"
BEST = "best.pt"


def rng_state() -> dict[str, Any]:
    """Every global RNG the training loop touches, in plain types."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, gauss],
        "python": [py_version, list(py_state), py_gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the Python, NumPy, torch (and CUDA) RNG states ``rng_state`` captured."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def load(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save` (``weights_only``: no arbitrary code)."""
    if not path.is_file():
        raise CamtrapError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CamtrapError(
            f"{path}: not a readable ct-train checkpoint ({str(exc).splitlines()[0]})"
        ) from None
    if not isinstance(data, dict) or "model" not in data:
        raise CamtrapError(f"{path}: not a ct-train checkpoint (no model weights)")
    return data
