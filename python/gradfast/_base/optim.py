"""Declarations of the optimizers: hyper-parameters, state slots, docstrings.

The siblings that subclass these (``gradfast.optim`` in Rust, ``gradfast.reference.optim`` in
NumPy) implement ``_apply``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import _validate
from .optimizer import MAX_STEP, Hyper, Optimizer

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


class LowPrecisionState(Optimizer):
    """Optimizers whose state may be stored as bfloat16, and whose params may be bfloat16.

    ``state_dtype=None`` keeps the state in the dtype of the arithmetic: float64 for float64
    params, float32 for float32 and ``ml_dtypes.bfloat16`` params. ``state_dtype='bfloat16'``
    stores it as ``ml_dtypes.bfloat16`` (float32 or bfloat16 params; float64 params are
    refused). Narrow values are widened to float32 exactly, the step is computed in float32
    in the order of the float32 optimizer, and every stored value (state, and bfloat16 params)
    is rounded to nearest even once, when written. The parameter update uses the state values
    as computed, before they are rounded for storage; the next step reads the rounded ones.
    """

    def _init_state_dtype(self, state_dtype: object) -> None:
        if state_dtype is None:
            self._state_dtype = None
            return
        bf16 = _validate.bf16()  # imports ml_dtypes, which gives NumPy the name 'bfloat16'
        try:
            dt = np.dtype(state_dtype)  # type: ignore[call-overload]
        except TypeError:
            dt = None
        if dt != bf16:
            raise ValueError(f"{self._name}: state_dtype must be None or 'bfloat16', got {state_dtype!r}")
        self._state_dtype = "bfloat16"

    @property
    def state_dtype(self) -> str | None:
        """``None`` (state in the arithmetic's dtype) or ``'bfloat16'``; fixed at construction."""
        return self._state_dtype

    def _state_dtype_for(self, fn: str, name: str, dtype: np.dtype) -> np.dtype:
        """The dtype of the state for params of ``dtype`` (``name`` is one of them)."""
        if self._state_dtype is None:
            return _F64 if dtype == _F64 else _F32
        if dtype == _F64:
            raise TypeError(
                f"{fn}: {name} must have dtype float32 or bfloat16 with state_dtype='bfloat16', "
                f"got float64 (bfloat16 state is computed in float32)"
            )
        return _validate.bf16()

    def _fresh_state(self, params, gradients) -> dict[Any, dict[str, np.ndarray]]:
        fn = self._update_name
        dtype = _validate.params_and_grads(fn, params, gradients, bf16=True)
        if dtype is None:
            return {}
        sd = self._state_dtype_for(fn, f"params[{next(iter(params))!r}]", dtype)
        return {k: {s: np.zeros(p.shape, sd) for s in self.slots} for k, p in params.items()}

    def _check_state(self, fn: str, params, gradients, state) -> None:
        dtype = _validate.params_and_grads(fn, params, gradients, bf16=True)
        _validate.matching_keys(fn, "params", params, "the optimizer state", state)
        if dtype is None:
            return
        sd = self._state_dtype_for(fn, f"params[{next(iter(params))!r}]", dtype)
        for key, p in params.items():
            for slot in self.slots:
                if slot not in state[key]:
                    raise ValueError(
                        f"{fn}: state[{key!r}]['{slot}'] must be a state array, got it missing "
                        f"(a setting that needs it was switched on after the state was created)"
                    )
                a = state[key][slot]
                if not (_validate.is_bf16(a.dtype) or _validate.is_bf16(p.dtype)):
                    _validate.like_state(fn, f"params[{key!r}]", p, a)
                elif a.dtype != sd or a.shape != p.shape:
                    raise ValueError(
                        f"{fn}: params[{key!r}] must have shape {a.shape} and a dtype that goes with "
                        f"{a.dtype} state as when the optimizer state was created, got shape {p.shape} "
                        f"and dtype {p.dtype}"
                    )
        _validate.no_overlaps(
            fn,
            [(f"params[{k!r}]", p) for k, p in params.items()]
            + [(f"state[{k!r}][{s!r}]", state[k][s]) for k in params for s in self.slots],
            [(f"gradients[{k!r}]", g) for k, g in gradients.items()],
        )

    def _loaded_array(self, fn: str, name: str, a: object) -> np.ndarray:
        if self._state_dtype is None:
            if isinstance(a, np.ndarray) and _validate.is_bf16(a.dtype):
                raise TypeError(
                    f"{fn}: {name} must have dtype float32 or float64 (this optimizer has state_dtype=None; "
                    f"construct it with state_dtype='bfloat16' to load bfloat16 state), got bfloat16"
                )
            return _validate.float_array(fn, name, a)
        a = _validate.ndarray(fn, name, a)
        if not _validate.is_bf16(a.dtype):
            raise TypeError(
                f"{fn}: {name} must have dtype bfloat16 (this optimizer has state_dtype='bfloat16'), got {a.dtype}"
            )
        return a

    def _pack(self):
        packed = self._packed = self._hyper_class(
            **{h: getattr(self, h) for h in self.hyperparams}, bf16_state=self._state_dtype is not None
        )
        return packed


class AdamBase(LowPrecisionState):
    """Adam (Kingma and Ba, 2015) over a dict of arrays, in place.

    Matches ``torch.optim.Adam`` step for step; with ``decoupled=True`` the weight decay is
    AdamW's (Loshchilov and Hutter, 2019) and matches ``torch.optim.AdamW``. With
    ``amsgrad=True`` the maximum of the second moments is kept, as in PyTorch.
    State slots per parameter: ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``).

    Low precision: ``state_dtype='bfloat16'`` stores the moments as ``ml_dtypes.bfloat16``
    (half the state memory, a third less traffic per step); params and gradients may be
    ``ml_dtypes.bfloat16`` arrays too, with float32 (``state_dtype=None``) or bfloat16 state.
    The step is computed in float32 and each stored value rounded to nearest even; the
    parameter update uses the moments before they are rounded (see ``LowPrecisionState``).
    """

    hyperparams = ("learning_rate", "beta1", "beta2", "epsilon", "weight_decay", "decoupled", "amsgrad")
    beta1 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    beta2 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    epsilon = Hyper(lo=0.0)
    weight_decay = Hyper(lo=0.0)
    decoupled = Hyper(flag=True)
    amsgrad = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        decoupled: bool = False,
        amsgrad: bool = False,
        state_dtype: str | None = None,
    ) -> None:
        super().__init__(learning_rate)
        self._init_state_dtype(state_dtype)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.weight_decay, self.decoupled, self.amsgrad = weight_decay, decoupled, amsgrad

    @property
    def slots(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if self.amsgrad else ("exp_avg", "exp_avg_sq")


class AdamWBase(AdamBase):
    """Adam with decoupled weight decay; matches ``torch.optim.AdamW`` (default decay 0.01)."""

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.01,
        *,
        amsgrad: bool = False,
        state_dtype: str | None = None,
    ) -> None:
        super().__init__(
            learning_rate, beta1, beta2, epsilon, weight_decay, decoupled=True, amsgrad=amsgrad, state_dtype=state_dtype
        )


class MomentumBase(LowPrecisionState):
    """The seed's momentum rule, in place: ``v = momentum*v - lr*g``, then
    ``p += v`` (classical) or ``p += momentum*v - lr*g`` (Nesterov).

    The velocities are the ``velocity`` state slot, also readable as ``velocities``.
    ``state_dtype='bfloat16'`` stores them as ``ml_dtypes.bfloat16``; params and gradients may
    be bfloat16 too. The step is computed in float32 and the parameter update uses the
    velocity before it is rounded for storage (see ``LowPrecisionState``).
    """

    slots = ("velocity",)
    hyperparams = ("learning_rate", "momentum", "nesterov")
    momentum = Hyper(lo=0.0, hi=1.0, hi_open=True)
    nesterov = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.9,
        nesterov: bool = False,
        *,
        state_dtype: str | None = None,
    ) -> None:
        super().__init__(learning_rate)
        self._init_state_dtype(state_dtype)
        self.momentum, self.nesterov = momentum, nesterov

    @property
    def velocities(self) -> dict[str, np.ndarray]:
        return {k: s["velocity"] for k, s in self.state.items()}


class LAMBBase(Optimizer):
    """LAMB (You et al., 2019, arXiv 1904.00962) with Adam's bias correction, in place.

    Each dict entry is a layer. At step ``t`` (1-based), per layer, in the array's dtype, with
    Adam's moment update (``torch.optim.Adam``'s arithmetic, as ``gradfast.Adam``)::

        m = m + (1 - beta1) * (g - m)
        v = beta2 * v + ((1 - beta2) * g) * g
        r = (m * c1) / (sqrt(v) * c2 + epsilon) + weight_decay * p
        p = p - (learning_rate * trust) * r

    with the bias corrections ``c1 = 1 / (1 - beta1**t)`` and ``c2 = 1 / sqrt(1 - beta2**t)``
    formed in float64 and rounded once (so ``r`` is the bias-corrected Adam direction
    ``m_hat / (sqrt(v_hat) + epsilon)``), where the ``weight_decay * p`` term is omitted when
    ``weight_decay == 0`` and the trust ratio is formed in float64 from float64 norms::

        trust = ||p|| / ||r||   if ||p|| > 0 and ||r|| > 0   else 1.0

    (so a NaN norm also gives 1.0 and the NaN propagates element-wise through ``r``).
    ``||p||`` is taken before the update. Weight decay applies to every layer, biases too.
    This is optax's ``lamb`` (``scale_by_adam``, ``add_decayed_weights``,
    ``scale_by_trust_ratio``) up to rounding; only the default ``weight_decay`` differs
    (optax: 0). State slots per parameter: ``exp_avg`` (m), ``exp_avg_sq`` (v).
    """

    slots = ("exp_avg", "exp_avg_sq")
    hyperparams = ("learning_rate", "beta1", "beta2", "epsilon", "weight_decay")
    beta1 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    beta2 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    epsilon = Hyper(lo=0.0)
    weight_decay = Hyper(lo=0.0)

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-6,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(learning_rate)
        self.beta1, self.beta2, self.epsilon, self.weight_decay = beta1, beta2, epsilon, weight_decay


class LARSBase(Optimizer):
    """LARS (You, Gitman and Ginsburg, 2017, arXiv 1708.03888) with momentum, in place.

    Each dict entry is a layer. Per layer, the local rate is formed in float64 from float64
    norms of ``p`` and ``g`` (taken before the update), with the paper's norm convention
    ``||g|| + weight_decay * ||p||`` (optax's ``lars`` takes ``||g + weight_decay * p||``
    instead; the two agree when ``weight_decay == 0``)::

        local_lr = trust_coefficient * ||p|| / ((||g|| + weight_decay * ||p||) + epsilon)
                   if ||p|| > 0 and ||g|| > 0 else 1.0

    (a NaN norm also gives 1.0), then, in the array's dtype::

        d = g + weight_decay * p                     (d = g when weight_decay == 0)
        velocity = momentum * velocity + (learning_rate * local_lr) * d
        p = p - velocity

    With ``weight_decay == 0`` this is optax's ``lars`` (``nesterov=False``) up to rounding,
    whose momentum trace is ``-velocity``. State slot per parameter: ``velocity``.
    """

    slots = ("velocity",)
    hyperparams = ("learning_rate", "momentum", "weight_decay", "trust_coefficient", "epsilon")
    momentum = Hyper(lo=0.0, hi=1.0, hi_open=True)
    weight_decay = Hyper(lo=0.0)
    trust_coefficient = Hyper(lo=0.0)
    epsilon = Hyper(lo=0.0)

    def __init__(
        self,
        learning_rate: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        trust_coefficient: float = 0.001,
        epsilon: float = 1e-9,
    ) -> None:
        super().__init__(learning_rate)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.trust_coefficient, self.epsilon = trust_coefficient, epsilon


def _named(prefix: str, d: Mapping) -> list[tuple[str, np.ndarray]]:
    return [(f"{prefix}[{k!r}]", a) for k, a in d.items()]


def _state_arrays(state: Mapping, keys) -> list[tuple[str, np.ndarray]]:
    return [(f"state[{k!r}][{s!r}]", a) for k in keys if k in state for s, a in state[k].items()]


class LayerAdaptiveLRBase(Optimizer):
    """The seed's layer-wise adaptive learning rates: bias-corrected per-element RMS scaling.

    Each layer (dict key) keeps ``square_avg`` and its own step count ``n``
    (``layer_steps[key]``, advanced by every ``compute_lr``, ``apply_gradients`` or
    ``update`` that includes the layer)::

        square_avg = beta * square_avg + (1 - beta) * (g * g)
        rate       = learning_rate / (sqrt(square_avg / (1 - beta**n)) + epsilon)

    ``compute_lr(layer_name, gradient)`` returns ``rate`` (a new array);
    ``apply_gradients(params, gradients)`` returns new arrays ``p - rate * g`` and leaves
    ``params`` untouched, as the seed; ``update(params, gradients)`` subtracts ``rate * g`` in
    place. As in the seed, a call may name any subset of the layers and new layers start
    fresh. ``base_lr`` is an alias of ``learning_rate``; ``step`` counts ``apply_gradients``
    and ``update`` calls. ``layer_stats`` is the seed's ``{layer: {'square_avg', 'step'}}``
    view of the state. ``state_dict()`` adds ``'layer_steps': {layer: int}``.
    """

    slots = ("square_avg",)
    hyperparams = ("learning_rate", "beta", "epsilon")
    _state_follows_step = False  # compute_lr advances layers without counting a step
    beta = Hyper(lo=0.0, hi=1.0, hi_open=True)
    epsilon = Hyper(lo=0.0)

    def __init__(self, base_lr: float = 0.01, beta: float = 0.999, *, epsilon: float = 1e-8) -> None:
        super().__init__(_validate.number(self._name, "base_lr", base_lr, lo=0.0))
        self.beta, self.epsilon = beta, epsilon
        self.layer_steps: dict[str, int] = {}

    @property
    def base_lr(self) -> float:
        """The seed's name for ``learning_rate``."""
        return self.learning_rate

    @base_lr.setter
    def base_lr(self, value) -> None:
        self.learning_rate = _validate.number(self._name, "base_lr", value, lo=0.0)

    @property
    def layer_stats(self) -> dict[str, dict[str, Any]]:
        """The seed's view ``{layer: {'square_avg': live state array, 'step': int}}``, rebuilt per access."""
        steps = self.layer_steps
        return {k: {"square_avg": s["square_avg"], "step": steps[k]} for k, s in self.state.items()}

    # -- the calls -----------------------------------------------------------------------

    def compute_lr(self, layer_name, gradient) -> np.ndarray:
        """Advance ``layer_name`` by one step with ``gradient``; return the per-element rates."""
        fn = f"{self._name}.compute_lr"
        if not isinstance(layer_name, str):
            raise TypeError(f"{fn}: layer_name must be a str, got {type(layer_name).__name__}")
        _validate.float_array(fn, "gradient", gradient)
        with self._lock:
            self._check_against_state(fn, "gradient", layer_name, gradient)
            _validate.no_overlaps(fn, _state_arrays(self.state, [layer_name]), [("gradient", gradient)])
            return self._advance(fn, None, {layer_name: gradient}, "rates")[layer_name]

    def apply_gradients(self, params, gradients) -> dict[str, np.ndarray]:
        """The seed's step: returns ``{key: params[key] - rate * gradients[key]}`` as new arrays."""
        fn = f"{self._name}.apply_gradients"
        with self._lock:
            self._check_call(fn, params, gradients, in_place=False)
            return self._advance(fn, params, gradients, "stepped")

    def update(self, params, gradients):
        """Apply one step in place to ``params``; returns ``params``."""
        fn = self._update_name
        with self._lock:
            self._check_call(fn, params, gradients, in_place=True)
            self._advance(fn, params, gradients, "in_place")
        return params

    def _advance(self, fn: str, params, gradients, write: str) -> dict[str, np.ndarray]:
        """Advance the layers of ``gradients`` by one step (validated) and commit it: the
        state, ``layer_steps`` and, unless ``write == 'rates'``, ``step``. ``write`` says what
        the step writes: ``'in_place'`` moves ``params``, ``'stepped'`` returns new arrays
        ``p - rate * g``, ``'rates'`` returns the rates."""
        raise NotImplementedError

    def _next(self, gradients) -> tuple[dict, dict[str, int]]:
        """The state and layer step counts a step over the layers of ``gradients`` leads to:
        new layers get zero state (not yet part of the optimizer)."""
        state, steps = dict(self.state), dict(self.layer_steps)
        for key, g in gradients.items():
            if key not in state:
                state[key] = {"square_avg": np.zeros(g.shape, g.dtype)}
            steps[key] = steps.get(key, 0) + 1
        return state, steps

    # -- validation ----------------------------------------------------------------------

    def _check_against_state(self, fn: str, name: str, key: str, a: np.ndarray) -> None:
        s = self.state.get(key)
        if s is not None:
            _validate.like_state(fn, name, a, s["square_avg"])

    def _check_call(self, fn: str, params, gradients, *, in_place: bool) -> None:
        if in_place:
            _validate.params_and_grads(fn, params, gradients)
        else:  # params are only read: any layout, read-only allowed
            params = _validate.array_dict(fn, "params", params)
            gradients = _validate.array_dict(fn, "gradients", gradients)
            _validate.matching_keys(fn, "gradients", gradients, "params", params)
            dtype = None
            for key, p in params.items():
                g = gradients[key]
                _validate.float_array(fn, f"params[{key!r}]", p)
                _validate.float_array(fn, f"gradients[{key!r}]", g)
                dtype = p.dtype if dtype is None else dtype
                _validate.same_dtype(fn, f"params[{key!r}]", p, dtype)
                _validate.same_dtype(fn, f"gradients[{key!r}]", g, dtype)
                _validate.same_shape(fn, f"gradients[{key!r}]", g, p.shape)
        for key, p in params.items():
            if not isinstance(key, str):
                raise TypeError(f"{fn}: params keys must be str, got {type(key).__name__}")
            self._check_against_state(fn, f"params[{key!r}]", key, p)
        state = self.state
        if in_place:
            # params and state are written: none may share memory with any other array
            written = _named("params", params) + _state_arrays(state, params)
            _validate.no_overlaps(fn, written, _named("gradients", gradients))
        else:
            read = _named("params", params) + _named("gradients", gradients)
            _validate.no_overlaps(fn, _state_arrays(state, params), read)

    # -- saving and resuming -------------------------------------------------------------

    def _extra_state(self) -> dict[str, Any]:
        return {"layer_steps": dict(self.layer_steps)}

    def _load_extra_state(self, fn: str, d: Mapping[str, Any], state: dict) -> dict[str, Any]:
        if "layer_steps" not in d:
            raise ValueError(f"{fn}: d must have key 'layer_steps' (per-layer step counts), got it missing")
        steps = d["layer_steps"]
        if not isinstance(steps, Mapping):
            raise TypeError(f"{fn}: d['layer_steps'] must be a dict of ints, got {type(steps).__name__}")
        _validate.matching_keys(fn, "d['layer_steps']", steps, "d['state']", state)
        check = _validate.integer
        return {"layer_steps": {k: check(fn, f"d['layer_steps'][{k!r}]", steps[k], lo=0, hi=MAX_STEP) for k in state}}


def adam_hypers(fn: str, learning_rate, beta1, beta2, epsilon, weight_decay=0.0) -> tuple[float, ...]:
    """The checked hyper-parameters of the functional ``adam_optimizer``."""
    return (
        _validate.number(fn, "learning_rate", learning_rate, lo=0.0),
        _validate.number(fn, "beta1", beta1, lo=0.0, hi=1.0, hi_open=True),
        _validate.number(fn, "beta2", beta2, lo=0.0, hi=1.0, hi_open=True),
        _validate.number(fn, "epsilon", epsilon, lo=0.0),
        _validate.number(fn, "weight_decay", weight_decay, lo=0.0),
    )
