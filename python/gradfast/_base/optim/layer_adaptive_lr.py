"""The declaration of the layer-wise adaptive learning rates (LayerAdaptiveLR)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ... import _validate
from ..optimizer import MAX_STEP, Hyper, Optimizer, next_step


def _named(prefix: str, d: Mapping) -> list[tuple[str, np.ndarray]]:
    return [(f"{prefix}[{k!r}]", a) for k, a in d.items()]


def _state_arrays(state: Mapping, keys) -> list[tuple[str, np.ndarray]]:
    return [(f"state[{k!r}][{s!r}]", a) for k in keys if k in state for s, a in state[k].items()]


class LayerAdaptiveLRBase(Optimizer):
    """The original design's layer-wise adaptive learning rates: bias-corrected per-element RMS scaling.

    Each layer (dict key) keeps ``square_avg`` and its own step count ``n``
    (``layer_steps[key]``, advanced by every ``compute_lr``, ``apply_gradients`` or
    ``update`` that includes the layer)::

        square_avg = beta * square_avg + (1 - beta) * (g * g)
        rate       = learning_rate / (sqrt(square_avg / (1 - beta**n)) + epsilon)

    ``compute_lr(layer_name, gradient)`` returns ``rate`` (a new array);
    ``apply_gradients(params, gradients)`` returns new arrays ``p - rate * g`` and leaves
    ``params`` untouched, as the original code; ``update(params, gradients)`` subtracts ``rate * g`` in
    place. As in the original code, a call may name any subset of the layers and new layers start
    fresh. ``base_lr`` is an alias of ``learning_rate``; ``step`` counts ``apply_gradients``
    and ``update`` calls. ``layer_stats`` is the original design's ``{layer: {'square_avg', 'step'}}``
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
        self.layer_steps = {}

    @property
    def layer_steps(self) -> dict[str, int]:
        """Each layer's step count ``n``, committed with every step (the ``extra`` of the step state)."""
        return self._steps.extra

    @layer_steps.setter
    def layer_steps(self, value: dict[str, int]) -> None:
        self._steps.extra = value

    @property
    def base_lr(self) -> float:
        """The original design's name for ``learning_rate``."""
        return self.learning_rate

    @base_lr.setter
    def base_lr(self, value) -> None:
        self.learning_rate = _validate.number(self._name, "base_lr", value, lo=0.0)

    @property
    def layer_stats(self) -> dict[str, dict[str, Any]]:
        """The original design's view ``{layer: {'square_avg': live state array, 'step': int}}``, rebuilt per access."""
        steps = self.layer_steps
        return {k: {"square_avg": s["square_avg"], "step": steps[k]} for k, s in self.state.items()}

    # -- the calls -----------------------------------------------------------------------

    def compute_lr(self, layer_name, gradient) -> np.ndarray:
        """Advance ``layer_name`` by one step with ``gradient``; return the per-element rates."""
        fn = f"{self._name}.compute_lr"
        if not isinstance(layer_name, str):
            raise TypeError(f"{fn}: layer_name must be a str, got {type(layer_name).__name__}")
        _validate.float_array(fn, "gradient", gradient)
        with self._steps:
            self._check_against_state(fn, "gradient", layer_name, gradient)
            _validate.no_overlaps(fn, _state_arrays(self.state, [layer_name]), [("gradient", gradient)])
            return self._advance(fn, None, {layer_name: gradient}, "rates")[layer_name]

    def apply_gradients(self, params, gradients) -> dict[str, np.ndarray]:
        """The original design's step: returns ``{key: params[key] - rate * gradients[key]}`` as new arrays."""
        fn = f"{self._name}.apply_gradients"
        with self._steps:
            self._check_call(fn, params, gradients, in_place=False)
            return self._advance(fn, params, gradients, "stepped")

    def update(self, params, gradients):
        """Apply one step in place to ``params``; returns ``params``."""
        fn = self._update_name
        with self._steps:
            self._check_call(fn, params, gradients, in_place=True)
            self._advance(fn, params, gradients, "in_place")
        return params

    def _advance(self, fn: str, params, gradients, write: str) -> dict[str, np.ndarray]:
        """Advance the layers of ``gradients`` by one step (validated) and commit it: the
        state, ``layer_steps`` and, unless ``write == 'rates'``, ``step``. ``write`` says what
        the step writes: ``'in_place'`` moves ``params``, ``'stepped'`` returns new arrays
        ``p - rate * g``, ``'rates'`` returns the rates."""
        raise NotImplementedError

    def _next(self, fn: str, gradients) -> tuple[dict, dict[str, int]]:
        """The state and layer step counts a step over the layers of ``gradients`` leads to:
        new layers get zero state (not yet part of the optimizer)."""
        state, steps = dict(self.state), dict(self.layer_steps)
        for key, g in gradients.items():
            if key not in state:
                state[key] = {"square_avg": np.zeros(g.shape, g.dtype)}
            steps[key] = next_step(fn, steps.get(key, 0), f"layer_steps[{key!r}]")
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
