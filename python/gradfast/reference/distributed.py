"""Reference gradient accumulation: the local half of the seed's ``DistributedOptimizer`` (no MPI)."""

from __future__ import annotations

import numpy as np

from .. import _validate


class DistributedOptimizer:
    """Sum gradient contributions and hand back their average every ``update_frequency`` calls.

    ``accumulate_gradients(g)`` adds one contribution (one micro-batch or one worker's
    gradients) to float arrays of ``g``'s dtype owned by the optimizer: the first call copies
    (the caller's arrays are never aliased or written), later calls must have the same keys,
    shapes and dtype. It returns ``step_count >= update_frequency``.
    ``compute_updates()`` returns ``{key: sum / step_count}`` (the accumulator arrays
    themselves, divided in place and handed over) and resets, or ``None`` before any
    contribution. The seed divided by ``step_count * num_workers`` although each call is one
    contribution; ``num_workers`` is kept as the MPI world-size hint and is not used here.
    """

    def __init__(self, num_workers=4, update_frequency=16) -> None:
        fn = "DistributedOptimizer"
        self.num_workers = _validate.integer(fn, "num_workers", num_workers, lo=1)
        self.update_frequency = _validate.integer(fn, "update_frequency", update_frequency, lo=1)
        self.accumulated_gradients: dict[str, np.ndarray] | None = None
        self.step_count = 0

    def accumulate_gradients(self, worker_gradients) -> bool:
        """Add one contribution; True once ``update_frequency`` of them are accumulated."""
        fn = "DistributedOptimizer.accumulate_gradients"
        grads, dtype = _validate.float_dict(fn, "worker_gradients", worker_gradients)
        acc = self.accumulated_gradients
        if acc is None:
            self.accumulated_gradients = {k: np.array(g, order="C", copy=True) for k, g in grads.items()}
        else:
            _validate.matching_keys(fn, "worker_gradients", grads, "the accumulated gradients", acc)
            for key, g in grads.items():
                a = acc[key]
                if g.shape != a.shape or g.dtype != a.dtype:
                    raise ValueError(
                        f"{fn}: worker_gradients[{key!r}] must have shape {a.shape} and dtype {a.dtype} "
                        f"as the accumulated gradients, got shape {g.shape} and dtype {g.dtype}"
                    )
            with np.errstate(all="ignore"):
                for key, g in grads.items():
                    acc[key] += g
        self.step_count += 1
        return self.step_count >= self.update_frequency

    def compute_updates(self) -> dict[str, np.ndarray] | None:
        """The average of the accumulated contributions (then reset), or None if there are none."""
        acc = self.accumulated_gradients
        if acc is None:
            return None
        with np.errstate(all="ignore"):
            for a in acc.values():
                a /= a.dtype.type(self.step_count)
        self.accumulated_gradients = None
        self.step_count = 0
        return acc
