"""The declaration of Adafactor."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _validate
from ..optimizer import Hyper, Optimizer, forget_packed


def factored(shape: tuple[int, ...]) -> bool:
    """Whether an array of ``shape`` keeps factored state (2 or more dims, as torch)."""
    return len(shape) > 1


def state_shapes(shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """torch's state arrays for a parameter of ``shape``: ``row_var`` ``(..., m, 1)`` and
    ``col_var`` ``(..., 1, n)`` over the last two dims, or ``variance`` like a vector."""
    if factored(shape):
        return {"row_var": shape[:-1] + (1,), "col_var": shape[:-2] + (1, shape[-1])}
    return {"variance": shape}


class AdafactorBase(Optimizer):
    """Adafactor (Shazeer and Stern, 2018) over a dict of arrays, in place; matches
    ``torch.optim.Adafactor`` (its single-tensor path) step for step.

    For an array of 2 or more dims the second moment is kept as row and column factors over
    its last two dims (state ``row_var`` of shape ``(..., m, 1)`` and ``col_var`` of shape
    ``(..., 1, n)``: ``m + n`` values per matrix, not ``m * n``); vectors and scalars keep a full
    ``variance``. Step ``t``, ``g`` negated when ``maximize``, ``eps1`` the dtype's machine
    epsilon when ``epsilon[0]`` is None, in float64 scalars::

        beta2_t = t ** beta2_decay;  rho = min(learning_rate, 1 / sqrt(t))
        alpha = max(epsilon[1], ||p|| / sqrt(p.size)) * rho      # ||p|| before the decay
        p = p * (1 - learning_rate * weight_decay)

    then, with ``lerp`` as torch's::

        row_var = lerp(row_var, ||g||_rows**2 / n, beta2_t)      # (row norms, squared)
        col_var = lerp(col_var, ||g||_cols**2 / m, beta2_t)
        v = (row_var * col_var) / max(mean(row_var over m), eps1)   # or variance = lerp(variance, g*g, beta2_t)
        u = rsqrt(max(v, eps1**2)) * g
        p = p + (-alpha / max(1, ||u|| / (sqrt(u.size) * d))) * u

    Empty arrays are left as they are (torch divides by their size).
    """

    slots = ("row_var", "col_var", "variance")
    hyperparams = ("learning_rate", "beta2_decay", "epsilon", "d", "weight_decay", "maximize")
    beta2_decay = Hyper(hi=0.0)
    d = Hyper(lo=1.0)
    weight_decay = Hyper(lo=0.0)
    maximize = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 1e-2,
        beta2_decay: float = -0.8,
        epsilon: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(learning_rate)
        self.beta2_decay, self.epsilon, self.d = beta2_decay, epsilon, d
        self.weight_decay, self.maximize = weight_decay, maximize

    @property
    def epsilon(self) -> tuple[float | None, float]:
        """``(eps1, eps2)``: the floor of the second moment (None: the dtype's machine
        epsilon) and of the parameters' RMS in the step size."""
        return self.__dict__["epsilon"]

    @epsilon.setter
    def epsilon(self, value: Any) -> None:
        fn = self._name
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise ValueError(f"{fn}: epsilon must be a pair (eps1 or None, eps2), got {value!r}")
        eps1 = None if value[0] is None else _validate.number(fn, "epsilon[0]", value[0], lo=0.0)
        self.__dict__["epsilon"] = (eps1, _validate.number(fn, "epsilon[1]", value[1], lo=0.0))
        forget_packed(self)

    def _eps1(self, dtype: np.dtype) -> float:
        eps1 = self.epsilon[0]
        return float(np.finfo(dtype).eps) if eps1 is None else eps1

    # -- state of per-parameter shapes ------------------------------------------------

    def _fresh_state(self, params, gradients):
        fn = self._update_name
        _validate.params_and_grads(fn, params, gradients, "params", "gradients")
        return {
            k: {s: np.zeros(shape, p.dtype) for s, shape in state_shapes(p.shape).items()} for k, p in params.items()
        }

    def _check_state(self, fn: str, params, gradients, state) -> None:
        _validate.params_and_grads(fn, params, gradients, "params", "gradients")
        _validate.matching_keys(fn, "params", params, "the optimizer state", state)
        for key, p in params.items():
            for slot, shape in state_shapes(p.shape).items():
                a = state[key].get(slot)
                if a is None or a.shape != shape or a.dtype != p.dtype:
                    got = "no such slot" if a is None else f"{slot} of shape {a.shape} and dtype {a.dtype}"
                    raise ValueError(
                        f"{fn}: params[{key!r}] must have the shape and dtype of the optimizer state "
                        f"({slot} of shape {shape} and dtype {p.dtype} goes with shape {p.shape}), got {got}"
                    )
        _validate.no_overlaps(
            fn,
            [(f"params[{k!r}]", p) for k, p in params.items()]
            + [(f"state[{k!r}][{s!r}]", a) for k in params for s, a in state[k].items()],
            [(f"gradients[{k!r}]", g) for k, g in gradients.items()],
        )

    def _load_state_arrays(self, fn: str, probe: Optimizer, loaded: object) -> dict:
        """``d['state']``: per key either ``row_var`` and ``col_var`` (shapes ``(..., m, 1)``
        and ``(..., 1, n)``) or ``variance``, float arrays of one dtype; and, when this optimizer
        has state, its keys, shapes and dtype."""
        loaded = _validate.mapping(fn, "d['state']", loaded, "per-parameter state dicts")
        state: dict = {}
        dtype = None
        for key, slots in loaded.items():
            where = f"d['state'][{key!r}]"
            slots = _validate.mapping(fn, where, slots, "state arrays")
            if set(slots) not in ({"row_var", "col_var"}, {"variance"}):
                raise ValueError(
                    f"{fn}: {where} must have the slots 'row_var' and 'col_var', or 'variance', got {sorted(slots)}"
                )
            arrays = {s: _validate.float_array(fn, f"{where}[{s!r}]", a) for s, a in slots.items()}
            for s, a in arrays.items():
                dtype = dtype or a.dtype
                _validate.same_dtype(fn, f"{where}[{s!r}]", a, dtype)
            if "row_var" in arrays:
                r, c = arrays["row_var"].shape, arrays["col_var"].shape
                if len(r) < 2 or len(c) != len(r) or r[-1] != 1 or c[-2] != 1 or r[:-2] != c[:-2]:
                    raise ValueError(
                        f"{fn}: {where} must have row_var of shape (..., m, 1) and col_var of shape (..., 1, n), "
                        f"got {r} and {c}"
                    )
            elif factored(arrays["variance"].shape):
                raise ValueError(
                    f"{fn}: {where}['variance'] must have fewer than 2 dims (matrices keep row_var and col_var), "
                    f"got shape {arrays['variance'].shape}"
                )
            state[key] = {s: np.array(a, order="C", copy=True) for s, a in arrays.items()}
        if self.state and state:
            _validate.matching_keys(fn, "d['state']", state, "the optimizer's current state", self.state)
            for key, slots in state.items():
                now = self.state[key]
                for s, a in slots.items():
                    if s not in now or now[s].shape != a.shape or now[s].dtype != a.dtype:
                        raise ValueError(
                            f"{fn}: d['state'][{key!r}][{s!r}] must match the optimizer's current state "
                            f"(shape and dtype), got shape {a.shape} and dtype {a.dtype}"
                        )
        return state
