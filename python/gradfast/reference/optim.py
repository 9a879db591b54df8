"""Reference optimizers in plain NumPy: Adam/AdamW, momentum, and the layer-wise LAMB, LARS
and the seed's LayerAdaptiveLR.

Adam's arithmetic follows PyTorch's single-tensor CPU code operation by operation
(``torch.optim.Adam``/``AdamW`` with ``foreach=False``):
scalars are formed in float64 and rounded once to the array's dtype, element-wise work is
done in the array's dtype. NaN and inf propagate as they do in PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import _validate
from .._base.optim import AdamBase, AdamWBase, MomentumBase, adam_hypers
from .._base.optimizer import Hyper, Optimizer
from .clip import vector_norm


def _adam_arrays(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """One Adam step on one array, in place on ``p``, ``m``, ``v`` (and ``vmax``)."""
    t = p.dtype.type
    with np.errstate(all="ignore"):
        if weight_decay != 0.0:
            if decoupled:
                p *= t(1.0 - lr * weight_decay)
            else:
                g = g + t(weight_decay) * p
        # m.lerp_(g, 1 - beta1), with lerp's two branches as in ATen
        w = t(1.0 - beta1)
        if w < 0.5:
            m += w * (g - m)
        else:
            m[...] = g - (g - m) * (t(1) - w)
        v *= t(beta2)
        v += (t(1.0 - beta2) * g) * g
        src = v
        if vmax is not None:
            np.maximum(vmax, v, out=vmax)
            src = vmax
        step_size = lr / (1.0 - beta1**step)
        bc2_sqrt = math.sqrt(1.0 - beta2**step)
        denom = np.sqrt(src) / t(bc2_sqrt) + t(eps)
        p += (t(-step_size) * m) / denom  # addcdiv: self + value * t1 / t2, left to right


def adam_optimizer(params, gradients, state, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """The seed's functional Adam: one array, ``state`` holds ``m``, ``v`` and the step ``t``.

    Updates ``params`` and ``state['m']``, ``state['v']`` in place (the state arrays are
    created on the first call) and returns ``(params, state)``. Same numbers as
    ``torch.optim.Adam`` without weight decay.
    """
    fn = "adam_optimizer"
    _validate.float_array(fn, "params", params, writeable=True)
    _validate.float_array(fn, "gradients", gradients)
    _validate.same_dtype(fn, "gradients", gradients, params.dtype)
    _validate.same_shape(fn, "gradients", gradients, params.shape)
    _validate.no_alias(fn, "params", params, "gradients", gradients)
    if not isinstance(state, dict):
        raise TypeError(f"{fn}: state must be a dict, got {type(state).__name__}")
    lr, b1, b2, eps, _ = adam_hypers(fn, learning_rate, beta1, beta2, epsilon)
    if "m" in state:
        for slot in ("m", "v"):
            if slot not in state:
                raise ValueError(f"{fn}: state must have key {slot!r} alongside 'm', got it missing")
            a = _validate.float_array(fn, f"state[{slot!r}]", state[slot], writeable=True)
            _validate.same_dtype(fn, f"state[{slot!r}]", a, params.dtype)
            _validate.same_shape(fn, f"state[{slot!r}]", a, params.shape)
            for other, o in (("params", params), ("gradients", gradients)):
                _validate.no_alias(fn, f"state[{slot!r}]", a, other, o)
        _validate.no_alias(fn, "state['m']", state["m"], "state['v']", state["v"])
        t = _validate.integer(fn, "state['t']", state.get("t"), lo=0) + 1
    else:
        state["m"] = np.zeros_like(params, order="C")
        state["v"] = np.zeros_like(params, order="C")
        t = 1
    _adam_arrays(params, gradients, state["m"], state["v"], None, t, lr, b1, b2, eps, 0.0, False)
    state["t"] = t
    return params, state


class Adam(AdamBase):
    __doc__ = AdamBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        for key, p in params.items():
            s = state[key]
            _adam_arrays(
                p,
                gradients[key],
                s["exp_avg"],
                s["exp_avg_sq"],
                s.get("max_exp_avg_sq"),
                step,
                self.learning_rate,
                self.beta1,
                self.beta2,
                self.epsilon,
                self.weight_decay,
                self.decoupled,
            )


class AdamW(AdamWBase, Adam):
    __doc__ = AdamWBase.__doc__


class MomentumOptimizer(MomentumBase):
    __doc__ = MomentumBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(f"{self._name}.update", params, gradients, state)
        for key, p in params.items():
            t = p.dtype.type
            g, v = gradients[key], state[key]["velocity"]
            mu, lr = t(self.momentum), t(self.learning_rate)
            with np.errstate(all="ignore"):
                v[...] = mu * v - lr * g
                if self.nesterov:
                    p += mu * v - lr * g
                else:
                    p += v


def _named(prefix: str, d: Mapping[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    return [(f"{prefix}[{k!r}]", a) for k, a in d.items()]


def _state_arrays(state: Mapping, keys) -> list[tuple[str, np.ndarray]]:
    return [(f"state[{k!r}][{s!r}]", a) for k in keys if k in state for s, a in state[k].items()]


def _no_aliasing(fn: str, params, gradients, state) -> None:
    """Params and state are written in place: none may share memory with any other array."""
    _validate.no_overlaps(fn, _named("params", params) + _state_arrays(state, params), _named("gradients", gradients))


class LayerAdaptiveLR(Optimizer):
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

    def __init__(self, base_lr=0.01, beta=0.999, *, epsilon=1e-8) -> None:
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
        if in_place:
            _no_aliasing(fn, params, gradients, self.state)
        else:
            read = _named("params", params) + _named("gradients", gradients)
            _validate.no_overlaps(fn, _state_arrays(self.state, params), read)

    # -- the rule ------------------------------------------------------------------------

    def _advance(self, key: str, g: np.ndarray, state) -> np.ndarray:
        """Advance layer ``key`` by one step (creating its state) and return its rates."""
        s = state.get(key)
        if s is None:
            s = state[key] = {"square_avg": np.zeros(g.shape, g.dtype)}
        n = self.layer_steps.get(key, 0) + 1
        sq = s["square_avg"]
        t = sq.dtype.type
        with np.errstate(all="ignore"):
            sq *= t(self.beta)
            sq += t(1.0 - self.beta) * (g * g)
            corrected = sq / t(1.0 - self.beta**n)
            # np.asarray: a 0-d layer gives a 0-d array, not a NumPy scalar
            rate = np.asarray(t(self.learning_rate) / (np.sqrt(corrected) + t(self.epsilon)))
        self.layer_steps[key] = n
        return rate

    def compute_lr(self, layer_name, gradient) -> np.ndarray:
        """Advance ``layer_name`` by one step with ``gradient``; return the per-element rates."""
        fn = f"{self._name}.compute_lr"
        if not isinstance(layer_name, str):
            raise TypeError(f"{fn}: layer_name must be a str, got {type(layer_name).__name__}")
        _validate.float_array(fn, "gradient", gradient)
        self._check_against_state(fn, "gradient", layer_name, gradient)
        _validate.no_overlaps(fn, _state_arrays(self.state, [layer_name]), [("gradient", gradient)])
        return self._advance(layer_name, gradient, self.state)

    def apply_gradients(self, params, gradients) -> dict[str, np.ndarray]:
        """The seed's step: returns ``{key: params[key] - rate * gradients[key]}`` as new arrays."""
        fn = f"{self._name}.apply_gradients"
        self._check_call(fn, params, gradients, in_place=False)
        updates = {}
        for key, p in params.items():
            g = gradients[key]
            rate = self._advance(key, g, self.state)
            with np.errstate(all="ignore"):
                updates[key] = np.subtract(p, rate * g, out=np.empty(p.shape, p.dtype))
        self.step += 1
        return updates

    def _apply(self, params, gradients, state, step) -> None:
        fn = f"{self._name}.update"
        self._check_call(fn, params, gradients, in_place=True)
        for key, p in params.items():
            g = gradients[key]
            rate = self._advance(key, g, state)
            with np.errstate(all="ignore"):
                p -= rate * g

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
        return {"layer_steps": {k: _validate.integer(fn, f"d['layer_steps'][{k!r}]", steps[k], lo=0) for k in state}}


class LAMB(Optimizer):
    """LAMB (You et al., 2019, arXiv 1904.00962) with Adam's bias correction, in place.

    Each dict entry is a layer. At step ``t`` (1-based), per layer, in the array's dtype::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + ((1 - beta2) * g) * g
        r = (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + epsilon) + weight_decay * p
        p = p - (learning_rate * trust) * r

    where the ``weight_decay * p`` term is omitted when ``weight_decay == 0`` and the trust
    ratio is formed in float64 from float64 norms::

        trust = ||p|| / ||r||   if ||p|| > 0 and ||r|| > 0   else 1.0

    (so a NaN norm also gives 1.0 and the NaN propagates element-wise through ``r``).
    ``||p||`` is taken before the update. Weight decay applies to every layer, biases too.
    State slots per parameter: ``exp_avg`` (m), ``exp_avg_sq`` (v).
    """

    slots = ("exp_avg", "exp_avg_sq")
    hyperparams = ("learning_rate", "beta1", "beta2", "epsilon", "weight_decay")
    beta1 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    beta2 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    epsilon = Hyper(lo=0.0)
    weight_decay = Hyper(lo=0.0)

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-6, weight_decay=0.01) -> None:
        super().__init__(learning_rate)
        self.beta1, self.beta2, self.epsilon, self.weight_decay = beta1, beta2, epsilon, weight_decay

    def _apply(self, params, gradients, state, step) -> None:
        fn = f"{self._name}.update"
        self._check_state(fn, params, gradients, state)
        bc1 = 1.0 - self.beta1**step
        bc2 = 1.0 - self.beta2**step
        for key, p in params.items():
            g, m, v = gradients[key], state[key]["exp_avg"], state[key]["exp_avg_sq"]
            t = p.dtype.type
            with np.errstate(all="ignore"):
                m *= t(self.beta1)
                m += t(1.0 - self.beta1) * g
                v *= t(self.beta2)
                v += (t(1.0 - self.beta2) * g) * g
                r = (m / t(bc1)) / (np.sqrt(v / t(bc2)) + t(self.epsilon))
                if self.weight_decay != 0.0:
                    r += t(self.weight_decay) * p
                p_norm, r_norm = vector_norm(p), vector_norm(r)
                trust = p_norm / r_norm if p_norm > 0.0 and r_norm > 0.0 else 1.0
                p -= t(self.learning_rate * trust) * r


class LARS(Optimizer):
    """LARS (You, Gitman and Ginsburg, 2017, arXiv 1708.03888) with momentum, in place.

    Each dict entry is a layer. Per layer, the local rate is formed in float64 from float64
    norms of ``p`` and ``g`` (taken before the update)::

        local_lr = trust_coefficient * ||p|| / ((||g|| + weight_decay * ||p||) + epsilon)
                   if ||p|| > 0 and ||g|| > 0 else 1.0

    (a NaN norm also gives 1.0), then, in the array's dtype::

        d = g + weight_decay * p                     (d = g when weight_decay == 0)
        velocity = momentum * velocity + (learning_rate * local_lr) * d
        p = p - velocity

    State slot per parameter: ``velocity``.
    """

    slots = ("velocity",)
    hyperparams = ("learning_rate", "momentum", "weight_decay", "trust_coefficient", "epsilon")
    momentum = Hyper(lo=0.0, hi=1.0, hi_open=True)
    weight_decay = Hyper(lo=0.0)
    trust_coefficient = Hyper(lo=0.0)
    epsilon = Hyper(lo=0.0)

    def __init__(
        self, learning_rate=0.1, momentum=0.9, weight_decay=1e-4, trust_coefficient=0.001, epsilon=1e-9
    ) -> None:
        super().__init__(learning_rate)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.trust_coefficient, self.epsilon = trust_coefficient, epsilon

    def _apply(self, params, gradients, state, step) -> None:
        fn = f"{self._name}.update"
        self._check_state(fn, params, gradients, state)
        for key, p in params.items():
            g, v = gradients[key], state[key]["velocity"]
            t = p.dtype.type
            with np.errstate(all="ignore"):
                p_norm, g_norm = vector_norm(p), vector_norm(g)
                if p_norm > 0.0 and g_norm > 0.0:
                    denom = g_norm + self.weight_decay * p_norm + self.epsilon
                    local_lr = self.trust_coefficient * p_norm / denom
                else:
                    local_lr = 1.0
                d = g + t(self.weight_decay) * p if self.weight_decay != 0.0 else g
                v *= t(self.momentum)
                v += t(self.learning_rate * local_lr) * d
                p -= v
