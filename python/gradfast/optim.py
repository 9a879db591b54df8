"""Rust-backed optimizers: the declarations of ``gradfast._base.optim`` with their step done by
``_core``. Each step is one call into Rust that validates every array of the dict, updates
them all in one fused pass with the GIL released, and commits the step (``state`` and
``step``) before returning, so that an interrupt cannot separate the arrays from the counter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _core, _validate
from ._base.optim import (
    AdadeltaBase,
    AdafactorBase,
    AdagradBase,
    AdamaxBase,
    AdamBase,
    AdamWBase,
    ASGDBase,
    LAMBBase,
    LARSBase,
    LayerAdaptiveLRBase,
    LionBase,
    MomentumBase,
    MuonBase,
    NAdamBase,
    RAdamBase,
    RMSpropBase,
    RpropBase,
    ScheduleFreeAdamWBase,
    SGDBase,
    adam_hypers,
)
from ._base.optimizer import next_step


class RustStep:
    """The update of a Rust-backed optimizer: one ``_core`` step (``_step``) that validates
    every array, updates the whole dict in one fused pass with the GIL released, and commits
    the state and step count to ``self._steps`` before returning. Python makes the state of a
    first step (``_fresh_state``); the binding keeps it only if the step succeeds."""

    _new_steps = _core.StepState
    _step: Any = None
    #: the step with ``state_dtype='8bit'``, where the optimizer offers it
    _step_8bit: Any = None
    #: ``'8bit'`` selects ``_step_8bit`` (set by the optimizers that store low-precision state)
    _state_dtype: str | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__doc__ is None:  # the declaration's docstring, for help() and the API docs
            cls.__doc__ = next(b.__doc__ for b in cls.__mro__[1:] if b.__doc__ and b is not RustStep)

    def update(self, params: Mapping[Any, np.ndarray], gradients: Mapping[Any, np.ndarray]):
        """Apply one step in place to ``params``; returns ``params``."""
        steps, fn = self._steps, self._update_name  # type: ignore[attr-defined]
        hyper = self._packed or self._pack()  # type: ignore[attr-defined]
        step = self._step_8bit if self._state_dtype == "8bit" else self._step
        # without groups (nor a loaded record to compare) there is nothing to resolve
        plain = self._groups is None and self._expected is None  # type: ignore[attr-defined]
        claimed = None if plain else self._resolve(fn, params)  # type: ignore[attr-defined]
        if not claimed:
            fresh = None if steps.state else self._fresh_state(params, gradients)  # type: ignore[attr-defined]
            step(fn, steps, params, gradients, fresh, hyper)
            return params
        fresh = None if steps.state else self._group_fresh_state(params, gradients, claimed)  # type: ignore[attr-defined]
        groups = (self._group_hypers(), claimed)  # type: ignore[attr-defined]
        step(fn, steps, params, gradients, fresh, hyper, groups)
        return params


class Adam(RustStep, AdamBase):
    _step = _core.adam
    _step_8bit = _core.adam_8bit
    _hyper_class = _core.AdamHyper


class AdamW(AdamWBase, Adam):
    pass


class Adagrad(RustStep, AdagradBase):
    _step = _core.adagrad
    _hyper_class = _core.AdagradHyper


class Adamax(RustStep, AdamaxBase):
    _step = _core.adamax
    _hyper_class = _core.AdamaxHyper


class NAdam(RustStep, NAdamBase):
    _step = _core.nadam
    _hyper_class = _core.NAdamHyper


class RMSprop(RustStep, RMSpropBase):
    _step = _core.rmsprop
    _hyper_class = _core.RMSpropHyper


class MomentumOptimizer(RustStep, MomentumBase):
    _step = _core.momentum
    _step_8bit = _core.momentum_8bit
    _hyper_class = _core.MomentumHyper


class Lion(RustStep, LionBase):
    _step = _core.lion
    _step_8bit = _core.lion_8bit
    _hyper_class = _core.LionHyper


class LAMB(RustStep, LAMBBase):
    _step = _core.lamb
    _hyper_class = _core.LambHyper


class LARS(RustStep, LARSBase):
    _step = _core.lars
    _hyper_class = _core.LarsHyper


class RAdam(RustStep, RAdamBase):
    _step = _core.radam
    _hyper_class = _core.RAdamHyper


class Adadelta(RustStep, AdadeltaBase):
    _step = _core.adadelta
    _hyper_class = _core.AdadeltaHyper


class Rprop(RustStep, RpropBase):
    _step = _core.rprop
    _hyper_class = _core.RpropHyper


class ASGD(RustStep, ASGDBase):
    _step = _core.asgd
    _hyper_class = _core.ASGDHyper


class SGD(RustStep, SGDBase):
    # internal (not in ``gradfast.__all__``): the engine of ``gradfast.torch.SGD``
    _step = _core.sgd_step
    _hyper_class = _core.SgdStepHyper


class Adafactor(RustStep, AdafactorBase):
    _step = _core.adafactor
    _hyper_class = _core.AdafactorHyper


class Muon(RustStep, MuonBase):
    _step = _core.muon
    _hyper_class = _core.MuonHyper


class ScheduleFreeAdamW(RustStep, ScheduleFreeAdamWBase):
    _step = _core.schedule_free_adamw
    _hyper_class = _core.ScheduleFreeAdamWHyper

    def _lerp_to_z(self, fn, params, weight):
        _core.schedule_free_switch(fn, params, self.state, weight)


class LayerAdaptiveLR(LayerAdaptiveLRBase):
    __doc__ = LayerAdaptiveLRBase.__doc__
    _new_steps = _core.StepState
    _hyper_class = _core.LayerAdaptiveLRHyper

    def _advance(self, fn, params, gradients, write):
        step = None if write == "rates" else next_step(fn, self.step)
        state, steps = self._next(fn, gradients)
        hyper = self._packed or self._pack()
        claimed = self._resolve(fn, gradients)
        groups = (self._group_hypers(), claimed) if claimed else None
        return _core.layer_adaptive_lr(fn, self._steps, params, gradients, state, steps, step, hyper, write, groups)


def adam_optimizer(
    params: np.ndarray,
    gradients: np.ndarray,
    state: dict,
    learning_rate: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
) -> tuple[np.ndarray, dict]:
    """The original functional Adam: one array, ``state`` holds ``m``, ``v`` and the step ``t``.

    Updates ``params`` and ``state['m']``, ``state['v']`` in place (the state arrays are
    created on the first call) and returns ``(params, state)``. Same numbers as
    ``torch.optim.Adam`` without weight decay.
    """
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
        maximize=False,
        bf16_state=False,
        rounding_seed=None,
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
