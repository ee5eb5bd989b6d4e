"""Epoch timing: start-up apart from the steady rate.

The first step of an epoch (or of a resumed epoch) waits for the data loader to start
its workers and fill its prefetch queue, and pays first-step costs (allocator, cuDNN
autotuning, ``torch.compile``): counted in the rate, it made epoch 0 look ten times slower
than epoch 1. :class:`EpochClock` books that first step as ``startup_s`` and the rest as
the rate ``images_per_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping, Sequence

#: The running sums this module keeps in the epoch's ``sums`` (saved in checkpoints).
TIMED_KEYS = ("seconds", "timed", "startup_s", "startup_images")


class EpochClock:
    """Books each step's wall time into ``sums``: the first step this process runs in the
    epoch as start-up, later ones as steady time with their image counts."""

    def __init__(
        self, sums: MutableMapping[str, float], clock: Callable[[], float] | None = None
    ) -> None:
        for key in TIMED_KEYS:
            sums.setdefault(key, 0.0)  # checkpoints from before these keys
        self.sums = sums
        self.clock = clock or time.perf_counter
        self._last = self.clock()
        self._first = True

    def step(self, images: float) -> None:
        """One step done with ``images`` images."""
        now = self.clock()
        elapsed, self._last = now - self._last, now
        if self._first:
            self.sums["startup_s"] += elapsed
            self.sums["startup_images"] += images
            self._first = False
        else:
            self.sums["seconds"] += elapsed
            self.sums["timed"] += images


def epoch_rates(per_rank: Sequence[MutableMapping[str, float]]) -> dict[str, float]:
    """``images_per_s`` and ``startup_s`` from every rank's sums.

    ``images_per_s`` is the whole job's steady rate: every rank's images over the slowest
    rank's time (the ranks of ``torchrun`` step together, so with N ranks it is about N
    times one process's rate). ``startup_s`` is the slowest rank's start-up. An epoch of a
    single step has only its start-up to measure.
    """
    seconds = max((s.get("seconds", 0.0) for s in per_rank), default=0.0)
    timed = sum(s.get("timed", 0.0) for s in per_rank)
    startup = max((s.get("startup_s", 0.0) for s in per_rank), default=0.0)
    if timed <= 0:  # one step: no steady part to measure
        timed = sum(s.get("startup_images", 0.0) for s in per_rank)
        seconds = startup
    return {"images_per_s": timed / max(seconds, 1e-9), "startup_s": startup}
