"""State handling shared by every optimizer class, reference and Rust-backed alike.

An optimizer owns per-parameter state arrays (``self.state[key][slot]``) created lazily at
the first ``update`` from the parameters' shapes and dtype, plus a global ``step`` count.
Subclasses declare their slots and hyper-parameters and implement ``_apply``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from .. import _validate


class Hyper:
    """A hyper-parameter attribute checked on every assignment (the error names it)."""

    def __init__(self, lo=None, hi=None, *, lo_open=False, hi_open=False, flag=False) -> None:
        self.bounds = {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open}
        self.flag = flag

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, owner=None):
        return self if obj is None else obj.__dict__[self.name]

    def __set__(self, obj, value) -> None:
        fn = type(obj).__name__
        if self.flag:
            obj.__dict__[self.name] = _validate.flag(fn, self.name, value)
        else:
            obj.__dict__[self.name] = _validate.number(fn, self.name, value, **self.bounds)
        obj.__dict__.pop("_packed", None)


class Optimizer:
    """Base class: settable ``learning_rate``, ``state_dict()`` and ``load_state_dict()``.

    ``state_dict()`` returns plain numbers and copies of the state arrays::

        {"step": int, "hyperparams": {name: number}, "state": {key: {slot: ndarray}}}

    and ``load_state_dict`` copies them back, so a resumed run continues bitwise
    identically to one that never stopped.
    """

    #: per-parameter state arrays, created as zeros like the parameter
    slots: ClassVar[tuple[str, ...]] = ()
    #: names of the hyper-parameters saved in ``state_dict`` (attributes of the instance)
    hyperparams: ClassVar[tuple[str, ...]] = ("learning_rate",)

    learning_rate = Hyper(lo=0.0)

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.step = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    @property
    def _name(self) -> str:
        return type(self).__name__

    # -- the update ---------------------------------------------------------------------

    def update(self, params: dict[str, np.ndarray], gradients: dict[str, np.ndarray]):
        """Apply one step in place to ``params``; returns ``params``."""
        fn = self._update_name
        if not self.state:
            _validate.params_and_grads(fn, params, gradients, "params", "gradients")
            new_state = {k: {s: np.zeros_like(p) for s in self.slots} for k, p in params.items()}
            self._apply(params, gradients, new_state, self.step + 1)
            self.state = new_state
        else:
            self._apply(params, gradients, self.state, self.step + 1)
        self.step += 1
        return params

    def _apply(self, params, gradients, state, step: int) -> None:
        """Validate everything, then write ``params`` and ``state`` for step number ``step``."""
        raise NotImplementedError

    def _check_state(self, fn: str, params, gradients, state) -> None:
        """Validation of a call against existing state: shapes, dtypes and keys."""
        _validate.params_and_grads(fn, params, gradients, "params", "gradients")
        _validate.matching_keys(fn, "params", params, "the optimizer state", state)
        for key, p in params.items():
            for slot in self.slots:
                if slot not in state[key]:
                    raise ValueError(
                        f"{fn}: state[{key!r}]['{slot}'] must be a state array, got it missing "
                        f"(a setting that needs it was switched on after the state was created)"
                    )
                s = state[key][slot]
                if s.shape != p.shape or s.dtype != p.dtype:
                    raise ValueError(
                        f"{fn}: params[{key!r}] must have shape {s.shape} and dtype {s.dtype} "
                        f"as when the optimizer state was created, got shape {p.shape} and dtype {p.dtype}"
                    )
        _validate.no_overlaps(
            fn,
            [(f"params[{k!r}]", p) for k, p in params.items()]
            + [(f"state[{k!r}][{s!r}]", state[k][s]) for k in params for s in self.slots],
            [(f"gradients[{k!r}]", g) for k, g in gradients.items()],
        )

    #: the hyper-parameters in ``hyperparams`` order, cached until one is assigned
    _packed: tuple | None = None
    #: how error messages name the update, e.g. ``AdamW.update``
    _update_name = "Optimizer.update"

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._update_name = f"{cls.__name__}.update"

    @property
    def _hyper_values(self) -> tuple:
        packed = self._packed
        if packed is None:
            packed = self._packed = tuple(getattr(self, h) for h in self.hyperparams)
        return packed

    # -- saving and resuming -----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "hyperparams": {h: getattr(self, h) for h in self.hyperparams},
            "state": {k: {s: a.copy() for s, a in slots.items()} for k, slots in self.state.items()},
            **self._extra_state(),
        }

    def _extra_state(self) -> dict[str, Any]:
        """Entries of ``state_dict()`` beyond the three above (plain numbers); none by default."""
        return {}

    def _load_extra_state(self, fn: str, d: Mapping[str, Any], state: dict) -> dict[str, Any]:
        """Validate the entries of ``d`` that ``_extra_state`` writes, against the loaded
        ``state``; return the attributes to set once everything is valid. None by default."""
        return {}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        fn = f"{self._name}.load_state_dict"
        if not isinstance(d, Mapping) or not {"step", "hyperparams", "state"} <= set(d):
            raise ValueError(f"{fn}: d must be a dict with keys 'step', 'hyperparams', 'state', got {d!r:.80}")
        step = _validate.integer(fn, "d['step']", d["step"], lo=0)
        hyper = dict(d["hyperparams"])
        # Assign through a scratch copy first so that a bad value changes nothing; the
        # Hyper descriptors validate each value.
        probe = object.__new__(type(self))
        probe.__dict__.update(self.__dict__)
        for h in self.hyperparams:
            if h in hyper:
                setattr(probe, h, hyper[h])
        state = {}
        for key, slots in _validate.array_dict(fn, "d['state']", d["state"]).items():
            state[key] = {}
            dtype = None
            # the slots follow the loaded hyper-parameters (Adam's amsgrad adds one)
            for s in probe.slots:
                if s not in slots:
                    raise ValueError(f"{fn}: d['state'][{key!r}] must have slot {s!r}, got it missing")
                a = _validate.float_array(fn, f"d['state'][{key!r}][{s!r}]", slots[s])
                dtype = dtype or a.dtype
                _validate.same_dtype(fn, f"d['state'][{key!r}][{s!r}]", a, dtype)
                state[key][s] = np.array(a, order="C", copy=True)
        probe.__dict__.update(self._load_extra_state(fn, d, state))
        self.__dict__.update(probe.__dict__)
        self.__dict__.pop("_packed", None)  # the cached hyper-parameters are the old ones
        self.step = step
        self.state = state
