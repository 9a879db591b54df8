"""Rust-backed optimizers: the classes of ``gradfast._base.optim`` with their arithmetic done by
``_core``. Each step is one call into Rust that validates every array of the dict, updates
them all in one fused pass with the GIL released, and commits the step (``state`` and
``step``) before returning, so that an interrupt cannot separate the arrays from the counter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _core, _validate
from ._base.optim import AdamBase, AdamWBase, LAMBBase, LARSBase, LayerAdaptiveLRBase, MomentumBase, adam_hypers
from ._base.optimizer import next_step
from .reference import optim as _ref


class Adam(AdamBase):
    __doc__ = AdamBase.__doc__
    _hyper_class = _core.AdamHyper
    _new_lock = _core.StepLock

    def update(self, params: Mapping[Any, np.ndarray], gradients: Mapping[Any, np.ndarray]):
        """Apply one step in place to ``params``; returns ``params``."""
        _core.adam(self._update_name, self, self._lock, params, gradients, self._packed or self._pack())
        return params


class AdamW(AdamWBase, Adam):
    __doc__ = AdamWBase.__doc__


class MomentumOptimizer(MomentumBase):
    __doc__ = MomentumBase.__doc__
    _hyper_class = _core.MomentumHyper
    _new_lock = _core.StepLock

    def update(self, params: Mapping[Any, np.ndarray], gradients: Mapping[Any, np.ndarray]):
        """Apply one step in place to ``params``; returns ``params``."""
        _core.momentum(self._update_name, self, self._lock, params, gradients, self._packed or self._pack())
        return params


class LAMB(LAMBBase):
    __doc__ = LAMBBase.__doc__
    _hyper_class = _core.LambHyper
    _new_lock = _core.StepLock

    def update(self, params: Mapping[Any, np.ndarray], gradients: Mapping[Any, np.ndarray]):
        """Apply one step in place to ``params``; returns ``params``."""
        _core.lamb(self._update_name, self, self._lock, params, gradients, self._packed or self._pack())
        return params


class LARS(LARSBase):
    __doc__ = LARSBase.__doc__
    _hyper_class = _core.LarsHyper
    _new_lock = _core.StepLock

    def update(self, params: Mapping[Any, np.ndarray], gradients: Mapping[Any, np.ndarray]):
        """Apply one step in place to ``params``; returns ``params``."""
        _core.lars(self._update_name, self, self._lock, params, gradients, self._packed or self._pack())
        return params


class LayerAdaptiveLR(LayerAdaptiveLRBase):
    __doc__ = LayerAdaptiveLRBase.__doc__
    _hyper_class = _core.LayerAdaptiveHyper
    _new_lock = _core.StepLock

    def _advance(self, fn, params, gradients, write):
        step = None if write == "rates" else next_step(fn, self.step)
        state, steps = self._next(fn, gradients)
        hyper = self._packed or self._pack()
        return _core.layer_adaptive(fn, self, params, gradients, state, steps, step, hyper, write)


def adam_optimizer(
    params: np.ndarray,
    gradients: np.ndarray,
    state: dict,
    learning_rate: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
) -> tuple[np.ndarray, dict]:
    fn = "adam_optimizer"
    if not isinstance(state, dict):
        raise TypeError(f"{fn}: state must be a dict, got {type(state).__name__}")
    lr, b1, b2, eps, _ = adam_hypers(fn, learning_rate, beta1, beta2, epsilon)
    hyper = _core.AdamHyper(
        learning_rate=lr,
        beta1=b1,
        beta2=b2,
        epsilon=eps,
        weight_decay=0.0,
        decoupled=False,
        amsgrad=False,
        bf16_state=False,
    )
    if "m" in state:
        if "v" not in state:
            raise ValueError(f"{fn}: state must have key 'v' alongside 'm', got it missing")
        t = _validate.integer(fn, "state['t']", state.get("t"), lo=0, hi=MAX_T - 1) + 1
        _core.adam_array(fn, params, gradients, state, state["m"], state["v"], t, hyper)
    else:
        # Fresh state joins the dict only once the step has succeeded (Rust sets m, v and t).
        _validate.float_array(fn, "params", params, writeable=True)
        m, v = _validate.zeros_like(params), _validate.zeros_like(params)
        _core.adam_array(fn, params, gradients, state, m, v, 1, hyper)
    return params, state


#: the largest step count ``state['t']`` may reach
MAX_T = 2**62

adam_optimizer.__doc__ = _ref.adam_optimizer.__doc__
