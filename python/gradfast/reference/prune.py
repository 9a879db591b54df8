"""Reference magnitude pruning (the seed's percentile rule) and gradual sparsity schedules."""

from __future__ import annotations

import logging
import math

import numpy as np

from .. import _validate

logger = logging.getLogger("gradfast")

_SCOPES = ("layer", "global")


def _threshold(magnitudes: np.ndarray, ratio: float) -> float:
    """``np.percentile(magnitudes, 100 * ratio)`` of a non-empty float64 array.

    numpy's default 'linear' method, spelled out for ports: ``q = (100 * ratio) / 100``,
    ``a`` sorted ascending, ``v = (n - 1) * q``; if ``v >= n - 1`` the result is ``a[n-1]``,
    else ``i = floor(v)``, ``g = v - i``, ``d = a[i+1] - a[i]`` and the result is
    ``a[i+1] - d * (1 - g)`` when ``g >= 0.5``, else ``a[i] + d * g``. A NaN makes it NaN.
    """
    return float(np.percentile(magnitudes, 100.0 * ratio))


def prune_network(weights, prune_ratio=0.3, *, scope="layer"):
    """Magnitude pruning: a new dict of new arrays where ``|w| <= threshold`` is set to 0.

    ``threshold = np.percentile(|w|, 100 * prune_ratio)``, computed on the magnitudes in
    float64 (see ``_threshold``), per array for ``scope='layer'`` (the seed) or once over all
    arrays' magnitudes together for ``scope='global'``. A weight is kept iff ``|w| > threshold``
    (strictly), so ties at the threshold are pruned together: the realized sparsity can exceed
    ``prune_ratio``, ``prune_ratio=0`` still prunes the weights of smallest magnitude and
    ``prune_ratio=1`` prunes everything. Kept weights are copied bit for bit, pruned ones are
    ``+0.0``; results are C-contiguous and ``weights`` is not modified (any layout is read).
    Each array's sparsity is logged at INFO on the ``"gradfast"`` logger (the seed printed it).
    A NaN threshold (NaN weights, or interpolating between infinities) keeps nothing; that is
    logged at WARNING.
    """
    fn = "prune_network"
    weights, _ = _validate.float_dict(fn, "weights", weights)
    ratio = _validate.number(fn, "prune_ratio", prune_ratio, lo=0.0, hi=1.0)
    if scope not in _SCOPES:
        raise ValueError(f"{fn}: scope must be 'layer' or 'global', got {scope!r}")

    # float64 magnitudes: exact for both dtypes, so the threshold arithmetic is one precision
    mags = {key: np.abs(np.asarray(w, dtype=np.float64)) for key, w in weights.items()}
    global_threshold = None
    if scope == "global":
        every = np.concatenate([m.ravel() for m in mags.values()]) if mags else np.empty(0)
        global_threshold = _threshold(every, ratio) if every.size else math.nan
    pruned = {}
    for key, w in weights.items():
        out = np.zeros(w.shape, dtype=w.dtype)
        threshold, removed = math.nan, 0
        if w.size:
            threshold = _threshold(mags[key], ratio) if global_threshold is None else global_threshold
            keep = mags[key] > threshold
            np.copyto(out, w, where=keep)
            removed = w.size - int(np.count_nonzero(keep))
            if math.isnan(threshold):
                logger.warning("%s: layer %r has a NaN pruning threshold; every weight is pruned", fn, key)
        logger.info(
            "%s: layer %r sparsity %.2f%% (%d of %d weights pruned, threshold %.6g)",
            fn,
            key,
            100.0 * removed / max(w.size, 1),
            removed,
            w.size,
            threshold,
        )
        pruned[key] = out
    return pruned


class GradualPruning:
    """Target sparsity as a function of the training step.

    Before ``begin_step`` it is ``initial_sparsity``, from ``end_step`` on ``final_sparsity``;
    in between, with ``s_i``, ``s_f``, ``t0``, ``t1`` the arguments:

    - ``schedule='linear'`` (the seed): ``(s_f - s_i) / (t1 - t0) * (t - t0) + s_i``;
    - ``schedule='cubic'`` (Zhu and Gupta, 2017): ``s_f + (s_i - s_f) * (1 - (t - t0) / (t1 - t0)) ** 3``,
      which prunes fast early and slowly near the end.

    Sparsities are in [0, 1]; ``begin_step`` >= 0 and ``end_step`` > ``begin_step`` are ints.
    """

    def __init__(
        self, initial_sparsity=0.0, final_sparsity=0.9, begin_step=0, end_step=100, *, schedule="linear"
    ) -> None:
        fn = "GradualPruning"
        s_i = _validate.number(fn, "initial_sparsity", initial_sparsity, lo=0.0, hi=1.0)
        s_f = _validate.number(fn, "final_sparsity", final_sparsity, lo=0.0, hi=1.0)
        t0 = _validate.integer(fn, "begin_step", begin_step, lo=0)
        t1 = _validate.integer(fn, "end_step", end_step)
        if t1 <= t0:
            raise ValueError(f"{fn}: end_step must be an int > begin_step ({t0}), got {t1!r}")
        if schedule not in ("linear", "cubic"):
            raise ValueError(f"{fn}: schedule must be 'linear' or 'cubic', got {schedule!r}")
        self.initial_sparsity, self.final_sparsity = s_i, s_f
        self.begin_step, self.end_step = t0, t1
        self.schedule = schedule

    def compute_sparsity(self, step) -> float:
        """The target sparsity at ``step`` (an int or float >= 0), a Python float."""
        t = _validate.number("GradualPruning.compute_sparsity", "step", step, lo=0.0)
        s_i, s_f, t0, t1 = self.initial_sparsity, self.final_sparsity, self.begin_step, self.end_step
        if t < t0:
            return s_i
        if t >= t1:
            return s_f
        if self.schedule == "linear":
            return (s_f - s_i) / (t1 - t0) * (t - t0) + s_i
        return s_f + (s_i - s_f) * (1.0 - (t - t0) / (t1 - t0)) ** 3
