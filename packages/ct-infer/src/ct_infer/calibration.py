"""Temperature scaling: one number that makes a classifier's confidences honest.

Fitted on the validation split's outputs by minimising the negative log-likelihood of
``softmax(logits / T)``. Because softmax ignores a per-row constant, ``log(p)`` stands in
for the logits, so the fit works from ``outputs_val.csv.gz`` alone. The fitted T is
stored in the bundle (``temperature``) and applied by every command that uses it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from attrs import frozen

from ct_infer.metrics import expected_calibration_error

EPS = 1e-12
T_RANGE = (0.05, 20.0)


@frozen
class TemperatureFit:
    """A fitted temperature and what it changed."""

    temperature: float
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    count: int


def _scaled(log_p: np.ndarray, t: float) -> np.ndarray:
    z = log_p / t
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def nll(log_p: np.ndarray, targets: np.ndarray, t: float) -> float:
    """Mean negative log-likelihood of the true labels at temperature ``t``."""
    return float(-_scaled(log_p, t)[np.arange(len(targets)), targets].mean())


def fit_temperature(
    probs: np.ndarray, targets: Sequence[int] | np.ndarray, *, iterations: int = 60
) -> TemperatureFit:
    """Golden-section search for T over log-space in ``T_RANGE`` (NLL is unimodal in T)."""
    log_p = np.log(np.clip(np.asarray(probs, np.float64), EPS, 1.0))
    y = np.asarray(targets, np.int64)
    if len(y) == 0:
        raise ValueError("no examples to fit a temperature on")
    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(log_p, y, math.exp(a)), nll(log_p, y, math.exp(b))
    for _ in range(iterations):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(log_p, y, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(log_p, y, math.exp(b))
    t = math.exp((lo + hi) / 2)
    after = np.exp(_scaled(log_p, t))
    before = np.exp(_scaled(log_p, 1.0))
    correct_b = before.argmax(1) == y
    return TemperatureFit(
        temperature=t,
        nll_before=nll(log_p, y, 1.0),
        nll_after=nll(log_p, y, t),
        ece_before=expected_calibration_error(before.max(1), correct_b),
        ece_after=expected_calibration_error(after.max(1), after.argmax(1) == y),
        count=len(y),
    )


def apply_temperature(probs: np.ndarray, t: float) -> np.ndarray:
    """Re-scale probabilities as if their logits had been divided by ``t``."""
    log_p = np.log(np.clip(np.asarray(probs, np.float64), EPS, 1.0))
    return np.exp(_scaled(log_p, t))
