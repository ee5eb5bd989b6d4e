"""Temperature scaling: one number that makes a classifier's confidences honest.

Fitted on the validation split's outputs by minimising the negative log-likelihood of
``softmax(logits / T)``. Because softmax ignores a per-row constant, ``log(p)`` stands in
for the logits, so the fit works from ``outputs_val.csv.gz`` alone. The fitted T is
stored in the bundle (``temperature``) and applied by every command that uses it.

A multi-label model (a sigmoid per label) gets one temperature over all labels, fitted
by minimising the binary NLL of ``sigmoid(logit / T)`` over every (crop, label) cell;
``log(p / (1 - p))`` gives back the logits. Its fit is :func:`fit_sigmoid_temperature`.
One shared T, not one per label: a val split holds few positives of most labels, too few
for a per-label fit, and the bundle and its exports divide the logits by one number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

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


def _golden_search(loss: Callable[[float], float], iterations: int) -> float:
    """The T in ``T_RANGE`` minimising a unimodal ``loss`` (golden section in log T)."""
    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(math.exp(a)), loss(math.exp(b))
    for _ in range(iterations):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(math.exp(b))
    return math.exp((lo + hi) / 2)


def fit_temperature(
    probs: np.ndarray, targets: Sequence[int] | np.ndarray, *, iterations: int = 60
) -> TemperatureFit:
    """Golden-section search for T over log-space in ``T_RANGE`` (NLL is unimodal in T)."""
    log_p = np.log(np.clip(np.asarray(probs, np.float64), EPS, 1.0))
    y = np.asarray(targets, np.int64)
    if len(y) == 0:
        raise ValueError("no examples to fit a temperature on")
    t = _golden_search(lambda x: nll(log_p, y, x), iterations)
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


# ---------------------------------------------------------------- multi-label (sigmoid)


def sigmoid_logits(probs: np.ndarray) -> np.ndarray:
    """The logits of sigmoid probabilities: ``log(p / (1 - p))``, clipped away from 0 and 1."""
    p = np.clip(np.asarray(probs, np.float64), EPS, 1.0 - 1e-7)
    return np.log(p) - np.log1p(-p)


def binary_nll(logits: np.ndarray, targets: np.ndarray, t: float) -> float:
    """Mean binary NLL over every (crop, label) cell of ``sigmoid(logits / t)``."""
    z = logits / t
    # -[y log σ(z) + (1 - y) log(1 - σ(z))] = softplus(z) - y z, computed stably
    return float((np.logaddexp(0.0, z) - targets * z).mean())


def sigmoid_mistakes(probs: np.ndarray, targets: np.ndarray) -> int:
    """(crop, label) cells on the wrong side of 0.5. With none, the binary NLL falls for
    ever as T falls, so there is no temperature to fit."""
    return int(((np.asarray(probs) > 0.5) != (np.asarray(targets) > 0.5)).sum())


def fit_sigmoid_temperature(
    probs: np.ndarray, targets: np.ndarray, *, iterations: int = 60
) -> TemperatureFit:
    """One T for every label's sigmoid, minimising the binary NLL (unimodal in T).

    ``probs`` and ``targets`` are (crops, labels): sigmoid outputs and 0/1 truth. The
    ECE is over every cell: a cell's confidence is its probability, "correct" its truth.
    """
    logits = sigmoid_logits(probs)
    y = np.asarray(targets, np.float64)
    if logits.ndim != 2 or y.shape != logits.shape:
        raise ValueError(f"probabilities {logits.shape} and 0/1 targets {y.shape} differ in shape")
    if len(y) == 0:
        raise ValueError("no examples to fit a temperature on")
    t = _golden_search(lambda x: binary_nll(logits, y, x), iterations)
    truth = y.ravel() > 0.5
    return TemperatureFit(
        temperature=t,
        nll_before=binary_nll(logits, y, 1.0),
        nll_after=binary_nll(logits, y, t),
        ece_before=expected_calibration_error(_sigmoid(logits).ravel(), truth),
        ece_after=expected_calibration_error(_sigmoid(logits / t).ravel(), truth),
        count=len(y),
    )


def apply_sigmoid_temperature(probs: np.ndarray, t: float) -> np.ndarray:
    """Re-scale sigmoid probabilities as if their logits had been divided by ``t``."""
    return _sigmoid(sigmoid_logits(probs) / t)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def apply_temperature(probs: np.ndarray, t: float) -> np.ndarray:
    """Re-scale probabilities as if their logits had been divided by ``t``."""
    log_p = np.log(np.clip(np.asarray(probs, np.float64), EPS, 1.0))
    return np.exp(_scaled(log_p, t))
