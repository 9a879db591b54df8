"""Optimizers whose state may be stored as bfloat16, and whose params may be bfloat16."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ... import _validate
from ..optimizer import Optimizer
from . import quantized

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def checked_rounding(
    fn: str, rname: str, rounding: object, sname: str, seed: object, state_dtype: object
) -> tuple[str, int | None]:
    """``(rounding, seed)`` checked for state of ``state_dtype`` (and a fresh seed drawn for
    ``None`` if stochastic): gradfast's optimizers' and ``gradfast.torch``'s."""
    if not isinstance(rounding, str):
        raise TypeError(f"{fn}: {rname} must be 'nearest' or 'stochastic', got {type(rounding).__name__}")
    if rounding not in ("nearest", "stochastic"):
        raise ValueError(f"{fn}: {rname} must be 'nearest' or 'stochastic', got {rounding!r}")
    if rounding == "stochastic" and state_dtype != "bfloat16":
        raise ValueError(
            f"{fn}: {rname} must be 'nearest' with state_dtype={state_dtype!r} "
            f"(stochastic rounding is for bfloat16 state), got 'stochastic'"
        )
    if seed is not None:
        seed = _validate.u64(fn, sname, seed)
    elif rounding == "stochastic":
        seed = _validate.resolve_seed(None, fn)
    return rounding, seed


class LowPrecisionState(Optimizer):
    """Optimizers whose state may be stored as bfloat16, and whose params may be bfloat16.

    ``state_dtype=None`` keeps the state in the dtype of the arithmetic: float64 for float64
    params, float32 for float32 and ``ml_dtypes.bfloat16`` params. ``state_dtype='bfloat16'``
    stores it as ``ml_dtypes.bfloat16`` (float32 or bfloat16 params; float64 params are
    refused). Narrow values are widened to float32 exactly, the step is computed in float32
    in the order of the float32 optimizer, and every stored value (state, and bfloat16 params)
    is rounded to nearest even once, when written. The parameter update uses the state values
    as computed, before they are rounded for storage; the next step reads the rounded ones.

    ``state_dtype='8bit'`` (where ``_eight_bit`` is set; float32 params) keeps each slot of an
    array of 4,096 or more elements as bitsandbytes' block-wise 8-bit state: ``uint8`` codes
    under the slot's name and float32 block maxima under ``<slot>_absmax`` (see
    ``gradfast._base.optim.quantized``); smaller arrays keep float32 state. Each step decodes a
    block of 256 values to float32, updates it as the float32 optimizer does, and encodes it
    with the maximum of the updated values, as bitsandbytes' CPU encoder does.

    ``rounding='stochastic'`` (where ``_stochastic`` is set; with ``state_dtype='bfloat16'``)
    rounds each stored state value stochastically instead: up (in magnitude) with
    probability equal to the fraction of a bfloat16 ulp it lies above the value below, so
    the mean of many roundings is the float32 value and small increments that nearest
    rounding would drop accumulate in expectation. The 16 random bits of a value are drawn
    from the counter-based stream of ``gradfast.reference._random``: element ``e`` of the
    call (element ``j``, in C order, of a parameter starting at ``at`` in the concatenation of
    all the step's parameters in the order of ``params``: ``e = at + j``) in state slot ``k``
    (its position in ``slots``) at step ``t`` (1-based) takes bits ``16 (e % 4)`` to
    ``16 (e % 4) + 15`` of word ``bits(seed, 4 t + k, e // 4)`` (stream ``4 t + k`` mod
    2**64), which are added to the float32 bits before the low 16 are dropped (NaN stays
    NaN). So every element, slot and step draws its own bits, the same for any thread count,
    and one word of the stream serves four elements. Only the state is rounded
    stochastically: bfloat16 params keep nearest rounding, like the stores of torch's
    optimizers and of optax (stochastic rounding of the weights themselves is a separate
    choice of the training loop). ``seed=None`` draws a fresh seed once at construction;
    ``state_dict()`` records ``rounding`` and ``seed`` (with the step) so a resumed run
    continues bitwise, and ``load_state_dict`` restores them.
    """

    #: whether ``state_dtype='8bit'`` is offered
    _eight_bit = False
    #: whether ``rounding='stochastic'`` is offered
    _stochastic = False
    _rounding = "nearest"
    _seed: int | None = None

    def _init_state_dtype(self, state_dtype: object, rounding: object = "nearest", seed: object = None) -> None:
        self._init_dtype(state_dtype)
        if self._stochastic:
            self._rounding, self._seed = self._checked_rounding(self._name, "rounding", rounding, "seed", seed)

    def _checked_rounding(self, fn: str, rname: str, rounding: object, sname: str, seed: object):
        return checked_rounding(fn, rname, rounding, sname, seed, self._state_dtype)

    @property
    def rounding(self) -> str:
        """How bfloat16 state is rounded when stored: ``'nearest'`` (even) or ``'stochastic'``."""
        return self._rounding

    @property
    def seed(self) -> int | None:
        """The seed of stochastic rounding (``None`` with nearest rounding and no seed given)."""
        return self._seed

    def _extra_state(self) -> dict[str, Any]:
        extra = super()._extra_state()
        if self._rounding == "stochastic":
            extra.update(rounding=self._rounding, seed=self._seed)
        return extra

    def _load_extra_state(self, fn: str, d: Mapping[str, Any], state: dict) -> dict[str, Any]:
        extra = super()._load_extra_state(fn, d, state)
        if "rounding" in d or "seed" in d:
            if not self._stochastic:
                raise ValueError(
                    f"{fn}: d must not have 'rounding' or 'seed' ({self._name} rounds to nearest), got them"
                )
            rounding = d.get("rounding", self._rounding)
            seed = d.get("seed", self._seed)
            extra["_rounding"], extra["_seed"] = self._checked_rounding(
                fn, "d['rounding']", rounding, "d['seed']", seed
            )
        return extra

    def _apply_groups(self, params, gradients, state, step: int, claimed: dict) -> None:
        # Stochastic rounding numbers the elements over all of ``params``, whatever the group
        # of each key: the group views that apply their keys are told where each one starts.
        starts = element_starts(params)
        views = (self, *self._views())
        for v in views:
            v._starts = starts
        try:
            super()._apply_groups(params, gradients, state, step, claimed)
        finally:
            for v in views:
                v._starts = None

    _starts: dict | None = None

    def _init_dtype(self, state_dtype: object) -> None:
        if state_dtype is None:
            self._state_dtype = None
            return
        if self._eight_bit and isinstance(state_dtype, str) and state_dtype == "8bit":
            self._state_dtype = "8bit"
            return
        bf16 = _validate.bf16()  # imports ml_dtypes, which gives NumPy the name 'bfloat16'
        try:
            dt = np.dtype(state_dtype)  # type: ignore[call-overload]
        except TypeError:
            dt = None
        if dt != bf16:
            offered = "None, 'bfloat16' or '8bit'" if self._eight_bit else "None or 'bfloat16'"
            raise ValueError(f"{self._name}: state_dtype must be {offered}, got {state_dtype!r}")
        self._state_dtype = "bfloat16"

    @property
    def state_dtype(self) -> str | None:
        """``None`` (state in the arithmetic's dtype), ``'bfloat16'`` or ``'8bit'``; fixed at construction."""
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

    def _check_8bit(self, fn: str, params, gradients) -> None:
        """The checks of an 8-bit step before its state: float32 params (and the optimizer's
        own conditions, in subclasses)."""
        dtype = _validate.params_and_grads(fn, params, gradients)
        if dtype is not None and dtype != _F32:
            raise TypeError(
                f"{fn}: params[{next(iter(params))!r}] must have dtype float32 with state_dtype='8bit', got {dtype}"
            )

    def _fresh_state(self, params, gradients) -> dict[Any, dict[str, np.ndarray]]:
        fn = self._update_name
        if self._state_dtype == "8bit":
            self._check_8bit(fn, params, gradients)
            return {k: quantized.fresh(self.slots, p.shape) for k, p in params.items()}
        dtype = _validate.params_and_grads(fn, params, gradients, bf16=True)
        if dtype is None:
            return {}
        sd = self._state_dtype_for(fn, f"params[{next(iter(params))!r}]", dtype)
        return {k: {s: np.zeros(p.shape, sd) for s in self.slots} for k, p in params.items()}

    def _check_state(self, fn: str, params, gradients, state) -> None:
        if self._state_dtype == "8bit":
            self._check_8bit(fn, params, gradients)
            _validate.matching_keys(fn, "params", params, "the optimizer state", state)
            for key, p in params.items():
                quantized.check(fn, key, self.slots, p, state[key])
            _validate.no_overlaps(
                fn,
                [(f"params[{k!r}]", p) for k, p in params.items()]
                + [(f"state[{k!r}][{s!r}]", a) for k in params for s, a in state[k].items()],
                [(f"gradients[{k!r}]", g) for k, g in gradients.items()],
            )
            return
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
        arr = _validate.ndarray(fn, name, a)
        if _bfloat16_bits(arr.dtype):
            # NumPy alone (np.savez, np.load) keeps bfloat16 as raw 2-byte voids, or as its bits
            arr = arr.view(_validate.bf16())
        if not _validate.is_bf16(arr.dtype):
            raise TypeError(
                f"{fn}: {name} must have dtype bfloat16 (this optimizer has state_dtype='bfloat16'), got {arr.dtype}"
            )
        return arr

    def _load_state_arrays(self, fn: str, probe: Optimizer, loaded: object) -> dict:
        if self._state_dtype != "8bit":
            return super()._load_state_arrays(fn, probe, loaded)
        # 8-bit state: per key the arrays of ``quantized.layout`` for the shape of its codes
        loaded = _validate.mapping(fn, "d['state']", loaded, "per-parameter state dicts")
        state: dict = {}
        for key, slots in loaded.items():
            where = f"d['state'][{key!r}]"
            slots = _validate.mapping(fn, where, slots, "state arrays")
            first = probe.slots[0]
            if first not in slots:
                raise ValueError(f"{fn}: {where} must have slot {first!r}, got it missing")
            shape = _validate.ndarray(fn, f"{where}[{first!r}]", slots[first]).shape
            want = quantized.layout(probe.slots, shape)
            extra = [s for s in slots if s not in want]
            if extra:
                raise ValueError(f"{fn}: {where} must have only the arrays {tuple(want)}, got {extra[0]!r}")
            quantized.check(fn, key, probe.slots, np.empty(shape, _F32), slots)
            state[key] = {s: np.array(slots[s], order="C", copy=True) for s in want}
        if self.state and state:
            _validate.matching_keys(fn, "d['state']", state, "the optimizer's current state", self.state)
            for key, slots in state.items():
                for s, a in slots.items():
                    current = self.state[key].get(s)
                    if current is not None and current.shape != a.shape:
                        raise ValueError(
                            f"{fn}: d['state'][{key!r}][{s!r}] must have shape {current.shape}, got {a.shape}"
                        )
        return state

    def _pack(self):
        extra = {}
        if self._stochastic:
            extra["rounding_seed"] = self._seed if self._rounding == "stochastic" else None
        packed = self._packed = self._hyper_class(
            **{h: getattr(self, h) for h in self.hyperparams}, bf16_state=self._state_dtype == "bfloat16", **extra
        )
        return packed


def element_starts(params) -> dict:
    """Where each key's elements start in the concatenation of ``params`` (in its order)."""
    starts, at = {}, 0
    for key, p in params.items():
        starts[key] = at
        at += p.size
    return starts


def _bfloat16_bits(dt: np.dtype) -> bool:
    """Whether ``dt`` holds bfloat16 values as bare 16-bit words: a 2-byte void without
    fields (what ``np.savez`` writes for bfloat16) or native uint16."""
    return (dt.kind == "V" and dt.itemsize == 2 and dt.fields is None) or dt == np.dtype(np.uint16)
