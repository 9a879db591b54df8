"""Declarations of pruning: the sparsity schedule, the checks and the log both implementations share.

``GradualPruning`` is declared here; its siblings (``gradfast.prune`` in Rust,
``gradfast.reference.prune`` in NumPy) implement ``_prune``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import _validate
from .locked import Locked
from .optimizer import Checked


def scope_is_global(fn: str, scope: object) -> bool:
    """``scope`` is ``'layer'`` (one threshold per array) or ``'global'`` (one for all)."""
    if not isinstance(scope, str):
        raise TypeError(f"{fn}: scope must be 'layer' or 'global', got {type(scope).__name__}")
    if scope not in ("layer", "global"):
        raise ValueError(f"{fn}: scope must be 'layer' or 'global', got {scope!r}")
    return scope == "global"


def fraction(fn: str, name: str, value: object) -> float:
    """A pruning ratio or sparsity: a finite number in [0, 1]."""
    return _validate.number(fn, name, value, lo=0.0, hi=1.0)


def log_pruned(fn: str, pruned: Mapping[Any, np.ndarray], thresholds) -> None:
    """Each array's sparsity at INFO (the original code printed it); a NaN threshold at WARNING.

    ``pruned`` holds the pruned arrays (or masks): a kept weight is never zero, since it
    exceeds a threshold >= 0, so the pruned count is the count of zeros (of ``False``).
    """
    import logging  # here, not at the top: it slows `import gradfast` and most calls log nothing

    logger = logging.getLogger("gradfast")
    for (key, out), threshold in zip(pruned.items(), thresholds):
        if threshold is not None and math.isnan(threshold):
            logger.warning("%s: layer %r has a NaN pruning threshold; every weight is pruned", fn, key)
        if logger.isEnabledFor(logging.INFO):
            removed = out.size - int(np.count_nonzero(out))
            logger.info(
                "%s: layer %r sparsity %.2f%% (%d of %d weights pruned, threshold %.6g)",
                fn,
                key,
                100.0 * removed / max(out.size, 1),
                removed,
                out.size,
                math.nan if threshold is None else threshold,
            )


def _begin_step(obj, value) -> int:
    t0 = _validate.integer("GradualPruning", "begin_step", value, lo=0)
    _ordered(t0, obj.__dict__.get("end_step"))
    return t0


def _end_step(obj, value) -> int:
    t1 = _validate.integer("GradualPruning", "end_step", value)
    _ordered(obj.__dict__.get("begin_step", 0), t1)
    return t1


def _ordered(t0: int, t1: int | None) -> None:
    if t1 is not None and t1 <= t0:
        raise ValueError(f"GradualPruning: end_step must be an int > begin_step ({t0}), got {t1!r}")


def _schedule(value: object) -> str:
    if value not in ("linear", "cubic"):
        raise ValueError(f"GradualPruning: schedule must be 'linear' or 'cubic', got {value!r}")
    return value


class GradualPruning(Locked):
    """Target sparsity as a function of the training step, and the pruning that follows it.

    Before ``begin_step`` it is ``initial_sparsity``, from ``end_step`` on ``final_sparsity``;
    in between, with ``s_i``, ``s_f``, ``t0``, ``t1`` the arguments:

    - ``schedule='linear'`` (the original code): ``(s_f - s_i) / (t1 - t0) * (t - t0) + s_i``;
    - ``schedule='cubic'`` (Zhu and Gupta, 2017): ``s_f + (s_i - s_f) * (1 - (t - t0) / (t1 - t0)) ** 3``,
      which prunes fast early and slowly near the end.

    Sparsities are in [0, 1]; ``begin_step`` >= 0 and ``end_step`` > ``begin_step`` are ints.

    ``update(params, step, *, scope='layer')`` prunes ``params`` in place to
    ``compute_sparsity(step)`` and returns the masks, which it keeps in ``.masks``
    (``dict`` of bool arrays, ``True`` = kept; ``None`` before the first update). A weight
    once pruned stays pruned: pruned weights are zeroed first, then the rule of
    ``magnitude_masks`` runs on the result, and zero never exceeds a threshold. So masks
    only shrink, even when the target sparsity goes down. As in ``prune_network``, ties at
    the threshold are pruned together: pass the weights to prune, not biases that are still
    all zero (they would be pruned, for good). Between updates, keep pruned weights at zero
    with ``apply_masks(params, pruner.masks)`` after each optimizer step.
    """

    # checked on every assignment, as the optimizers' hyper-parameters
    initial_sparsity = Checked(lambda obj, v: fraction("GradualPruning", "initial_sparsity", v))
    final_sparsity = Checked(lambda obj, v: fraction("GradualPruning", "final_sparsity", v))
    begin_step = Checked(_begin_step)
    end_step = Checked(_end_step)
    schedule = Checked(lambda obj, v: _schedule(v))

    def __init__(
        self, initial_sparsity=0.0, final_sparsity=0.9, begin_step=0, end_step=100, *, schedule="linear"
    ) -> None:
        super().__init__()
        self.initial_sparsity, self.final_sparsity = initial_sparsity, final_sparsity
        self.begin_step, self.end_step = begin_step, end_step
        self.schedule = schedule
        self.masks: dict[Any, np.ndarray] | None = None

    def compute_sparsity(self, step) -> float:
        """The target sparsity at ``step`` (an int or float >= 0), a Python float."""
        return self._sparsity("GradualPruning.compute_sparsity", step)

    def _sparsity(self, fn: str, step) -> float:
        t = _validate.number(fn, "step", step, lo=0.0)
        s_i, s_f, t0, t1 = self.initial_sparsity, self.final_sparsity, self.begin_step, self.end_step
        if t < t0:
            return s_i
        if t >= t1:
            return s_f
        if self.schedule == "linear":
            return (s_f - s_i) / (t1 - t0) * (t - t0) + s_i
        return s_f + (s_i - s_f) * (1.0 - (t - t0) / (t1 - t0)) ** 3

    def update(self, params, step, *, scope="layer") -> dict[Any, np.ndarray]:
        """Prune ``params`` in place to ``compute_sparsity(step)`` and return the masks (also
        kept in ``masks``). Already pruned weights stay pruned: masks only shrink. ``scope``
        is ``'layer'`` (one threshold per array) or ``'global'`` (one over all of them)."""
        fn = "GradualPruning.update"
        with self._lock:
            return self._update(fn, params, step, scope)

    def _update(self, fn: str, params, step, scope) -> dict[Any, np.ndarray]:
        sparsity = self._sparsity(fn, step)
        is_global = scope_is_global(fn, scope)
        params = _validate.array_dict(fn, "params", params)
        masks = self.masks
        if masks is None:
            # kept only once the first update has succeeded
            masks = {}
            for key, p in params.items():
                _validate.ndarray(fn, f"params[{key!r}]", p)
                masks[key] = np.ones(p.shape, dtype=bool)
        thresholds = self._prune(fn, params, masks, sparsity, is_global)
        self.masks = masks
        log_pruned(fn, masks, thresholds)
        return masks

    def _prune(self, fn: str, params, masks, sparsity: float, is_global: bool) -> list:
        """Zero ``params`` where ``masks`` is False, prune to ``sparsity`` and narrow the masks,
        in place; validate everything first. Returns the thresholds (one per array)."""
        raise NotImplementedError
