"""The runtime every optimizer class shares, reference and Rust-backed alike.

An optimizer owns per-parameter state arrays (``self.state[key][slot]``) created lazily at
the first ``update`` from the parameters' shapes and dtype, plus a global ``step`` count, both
kept in its ``StepState`` (``self._steps``) with the lock that serializes its steps.
Declarations (``_base/optim/``) name the slots and hyper-parameters (``Hyper`` attributes,
checked on every assignment); a reference class implements ``_apply`` in NumPy, a Rust-backed
class names the ``_core`` step that validates, updates and commits in one call.

Promises kept here: updates of one optimizer object are serialized (a second thread waits),
and ``load_state_dict`` refuses, naming what is wrong and changing nothing, every state that
could not resume correctly.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from .. import _validate
from . import groups as _groups

#: the largest step count a state may hold (far beyond any run; ``beta**step`` is 0 long before)
MAX_STEP = 2**62


def forget_packed(obj) -> None:
    """Drop the hyper-parameter objects cached for ``obj``'s steps, its own and its groups'
    (whose views copied its hyper-parameters), after one of them changed."""
    obj.__dict__.pop("_packed", None)
    obj.__dict__.pop("_packed_groups", None)


class StepState:
    """What an optimizer's step commits: ``state`` (the per-key state dicts), ``step`` (the
    count of steps taken) and ``extra`` (one more object some optimizers commit with them),
    and the lock that serializes steps (held with ``with``). ``_core.StepState`` is the same
    for the Rust-backed classes: their binding takes its lock without the GIL and commits
    before returning."""

    def __init__(self, state, step: int, extra=None) -> None:
        self._lock = threading.Lock()
        self.state, self.step, self.extra = state, step, extra

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()


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
        forget_packed(obj)


class Checked:
    """An attribute checked on every assignment by ``check(obj, value)``, which returns the
    value to keep or raises (naming the attribute); kept in the instance dict."""

    def __init__(self, check) -> None:
        self.check = check

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, owner=None):
        return self if obj is None else obj.__dict__[self.name]

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.name] = self.check(obj, value)


def next_step(fn: str, count: int, name: str = "step") -> int:
    """``count + 1``, or a ``ValueError`` when that is past ``MAX_STEP`` (a state that
    ``load_state_dict`` would refuse)."""
    if count >= MAX_STEP:
        raise ValueError(f"{fn}: {name} must be an int < 2**62 to take another step, got {count}")
    return count + 1


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
    #: whether ``step`` counts the steps every state array has taken (so that state exists
    #: exactly when ``step > 0``)
    _state_follows_step: ClassVar[bool] = True
    #: the ``_core`` class that carries the hyper-parameters into Rust, for Rust-backed classes
    _hyper_class: ClassVar[Any] = None
    #: the class of ``self._steps``: ``StepState``, or ``_core.StepState`` for Rust-backed classes
    _new_steps: ClassVar[Any] = StepState
    #: attributes a copy does not take as they are: the step state (copied by value) and the
    #: cached hyper-parameters
    _not_copied: ClassVar[tuple[str, ...]] = ("_steps", "_packed", "_packed_groups")
    #: hyper-parameters a parameter group may not set, each with the reason (``learning_rate``
    #: here means ``lr_scale``)
    _group_fixed: ClassVar[dict[str, str]] = {}

    learning_rate = Hyper(lo=0.0)
    _groups: list[_groups.Group] | None = None
    _claimed: tuple[Any, dict] | None = None
    _expected: dict | None = None

    def __init__(self, learning_rate: float) -> None:
        self._steps = self._new_steps({}, 0)
        self.learning_rate = learning_rate

    @property
    def state(self) -> dict[Any, dict[str, np.ndarray]]:
        """The per-parameter state arrays, ``{key: {slot: ndarray}}``."""
        return self._steps.state

    @state.setter
    def state(self, value: dict[Any, dict[str, np.ndarray]]) -> None:
        self._steps.state = value

    @property
    def step(self) -> int:
        """The number of steps taken."""
        return self._steps.step

    @step.setter
    def step(self, value: int) -> None:
        self._steps.step = _validate.integer(self._name, "step", value, lo=0, hi=MAX_STEP)

    # -- copies and pickles: a new lock, the committed values kept -------------------------

    def __getstate__(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in self._not_copied}
        d["_committed"] = (self._steps.state, self._steps.step, self._steps.extra)
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        d = dict(d)
        state, step, extra = d.pop("_committed")
        self.__dict__.update(d)
        self._steps = self._new_steps(state, step, extra)

    @property
    def _name(self) -> str:
        return type(self).__name__

    #: how error messages name the update, e.g. ``AdamW.update``
    _update_name = "Optimizer.update"

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._update_name = f"{cls.__name__}.update"
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_takes_groups", False):
            cls.__init__ = _groups.takes_groups(init)  # type: ignore[method-assign]

    # -- parameter groups ---------------------------------------------------------------

    def _set_groups(self, groups: object) -> None:
        self._groups = _groups.check_groups(self, groups)
        self._claimed: tuple[Any, dict] | None = None  # (the keys, their groups) last resolved
        self._expected: dict | None = None  # a loaded record still to compare, see _resolve
        self._recorded: dict = {}  # each key's group settings, as resolved or loaded

    @property
    def groups(self) -> list[dict[str, Any]] | None:
        """The parameter groups (``None`` without): ``[{"keys": KEYS, "lr_scale": s, **hyper}]``
        as given, key collections as lists. Each key of a dict takes the hyper-parameters of
        the first group that claims it, the optimizer's own otherwise; a group's learning rate
        is ``learning_rate * lr_scale``."""
        return None if self._groups is None else [g.spec() for g in self._groups]

    def _resolve(self, fn: str, params) -> dict:
        """``{key: group index}`` for the keys of ``params`` some group claims (kept while
        the keys stay the same), checked against a loaded ``state_dict``'s record."""
        if self._groups is None and self._expected is None:
            return {}
        if self._claimed is None or params.keys() != self._claimed[0]:
            claimed = _groups.assign(self._groups or [], params)
            expected = self._expected
            if expected is not None:  # the keys of this call that the loaded record names
                self._check_record(fn, expected, {k: claimed.get(k) for k in params if k in expected})
                left = {k: v for k, v in expected.items() if k not in params}
                self._expected = left or None
            self._claimed = (frozenset(params.keys()), claimed)
            self._recorded = {**self._recorded, **{k: self._settings(claimed.get(k)) for k in params}}
        return self._claimed[1]

    def _settings(self, group: int | None) -> dict[str, Any]:
        return {} if group is None or self._groups is None else dict(self._groups[group].settings)

    def _check_record(self, fn: str, record: dict | None, claimed: dict) -> None:
        """A ``ValueError`` unless each key of ``claimed`` (``{key: group index or None}``) has
        the settings ``record`` (a loaded ``state_dict()['groups']``) gives it."""
        if record is None:
            return
        for key, group in claimed.items():
            ours, theirs = self._settings(group), record[key]
            if ours != theirs:
                raise ValueError(
                    f"{fn}: the state loaded must come from an optimizer with the same groups, got "
                    f"key {key!r} with group settings {theirs} in the state and {ours} here"
                )

    def _views(self):
        """Per group, a copy of this optimizer with the group's hyper-parameters (cached until
        a hyper-parameter is assigned)."""
        views = self.__dict__.get("_packed_groups")
        if views is None:
            views = self._packed_groups = [_groups.group_view(self, g.settings) for g in self._groups or []]
        return views

    def _group_hypers(self) -> list:
        """Each group's ``_core`` hyper-parameter object, for the Rust-backed classes (cached
        with the group views)."""
        views = self._views()
        if views and views[0]._packed is None:
            for v in views:
                v._pack()
        return [v._packed for v in views]

    def _group_fresh_state(self, params, gradients, claimed: dict) -> dict:
        """Fresh state of a first step, each key's made by its group (Rprop's step sizes
        start at the group's learning rate)."""
        state = self._fresh_state(params, gradients)
        views = self._views()
        for i, view in enumerate(views):
            keys = [k for k, g in claimed.items() if g == i]
            if keys:
                state.update(view._fresh_state({k: params[k] for k in keys}, {k: gradients[k] for k in keys}))
        return state

    # -- the update ---------------------------------------------------------------------

    def update(self, params: Mapping[Any, np.ndarray], gradients: Mapping[Any, np.ndarray]):
        """Apply one step in place to ``params``; returns ``params``."""
        with self._steps:
            fn = self._update_name
            step = next_step(fn, self.step)
            claimed = self._resolve(fn, params)
            if not claimed:
                state = self.state or self._fresh_state(params, gradients)
                self._apply(params, gradients, state, step)
            else:
                state = self.state or self._group_fresh_state(params, gradients, claimed)
                self._apply_groups(params, gradients, state, step, claimed)
            self.state, self.step = state, step
        return params

    def _apply_groups(self, params, gradients, state, step: int, claimed: dict) -> None:
        """``_apply`` once for the keys of each group (the optimizer's own first), everything
        checked first. What a step commits besides the arrays (``extra``) depends only on
        hyper-parameters a group may not set, so each group starts from the same."""
        self._check_state(self._update_name, params, gradients, state)
        extra = self._steps.extra
        parts: list = [(self, [k for k in params if k not in claimed])]
        parts += [(v, [k for k in params if claimed.get(k) == i]) for i, v in enumerate(self._views())]
        for opt, keys in parts:
            if keys:
                self._steps.extra = extra
                opt._apply(*({k: d[k] for k in keys} for d in (params, gradients, state)), step)

    def _fresh_state(self, params, gradients) -> dict[Any, dict[str, np.ndarray]]:
        """Zero state for ``params``, after validating the call (so that a refused first call
        leaves the optimizer without state)."""
        _validate.params_and_grads(self._update_name, params, gradients, "params", "gradients")
        return {k: {s: _validate.zeros_like(p) for s in self.slots} for k, p in params.items()}

    def _apply(self, params, gradients, state, step: int) -> None:
        """Validate everything, then write ``params`` and ``state`` for step number ``step``."""
        raise NotImplementedError

    def _pack(self):
        """The hyper-parameters as a ``_core`` object, by name; cached until one is assigned."""
        packed = self._packed = self._hyper_class(**{h: getattr(self, h) for h in self.hyperparams})
        return packed

    _packed: Any = None

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
                _validate.like_state(fn, f"params[{key!r}]", p, state[key][slot])
        _validate.no_overlaps(
            fn,
            [(f"params[{k!r}]", p) for k, p in params.items()]
            + [(f"state[{k!r}][{s!r}]", state[k][s]) for k in params for s in self.slots],
            [(f"gradients[{k!r}]", g) for k, g in gradients.items()],
        )

    # -- saving and resuming -----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: ``{'step': int, 'hyperparams': {name: value}, 'state':
        {key: {slot: array}}}`` (copies of the state arrays), plus any entries the optimizer
        adds; ``load_state_dict`` of it continues bitwise identically."""
        with self._steps:
            d = {
                "step": self.step,
                "hyperparams": {h: getattr(self, h) for h in self.hyperparams},
                "state": {k: {s: a.copy() for s, a in slots.items()} for k, slots in self.state.items()},
                **self._extra_state(),
            }
            if self._groups is not None:
                d["groups"] = {k: dict(self._recorded.get(k, {})) for k in self.state}
            return d

    def _extra_state(self) -> dict[str, Any]:
        """Entries of ``state_dict()`` beyond the three above (plain numbers); none by default."""
        return {}

    def _load_extra_state(self, fn: str, d: Mapping[str, Any], state: dict) -> dict[str, Any]:
        """Validate the entries of ``d`` that ``_extra_state`` writes, against the loaded
        ``state``; return the attributes to set once everything is valid. None by default."""
        return {}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Replace the step count, hyper-parameters and state with those of ``d`` (a
        ``state_dict()``), copying the arrays. Everything is checked first: a state that could
        not resume correctly raises ``TypeError``/``ValueError`` and leaves the optimizer as it was.
        """
        fn = f"{self._name}.load_state_dict"
        if not isinstance(d, Mapping) or not {"step", "hyperparams", "state"} <= set(d):
            raise ValueError(f"{fn}: d must be a dict with keys 'step', 'hyperparams', 'state', got {d!r:.80}")
        step = _validate.integer(fn, "d['step']", d["step"], lo=0, hi=MAX_STEP)
        hyper = _validate.mapping(fn, "d['hyperparams']", d["hyperparams"], "numbers")
        for h in hyper:
            if h not in self.hyperparams:
                raise ValueError(
                    f"{fn}: d['hyperparams'] must have only the hyper-parameters of {self._name} "
                    f"({', '.join(self.hyperparams)}), got {h!r}"
                )
        # Assign through a scratch copy first so that a bad value changes nothing; the
        # Hyper descriptors validate each value.
        probe = object.__new__(type(self))
        probe.__dict__.update(self.__dict__)
        for h in self.hyperparams:
            if h in hyper:
                setattr(probe, h, hyper[h])
        state = self._load_state_arrays(fn, probe, d["state"])
        if self._state_follows_step and bool(state) != (step > 0):
            got = f"step {step} with {'no' if not state else 'some'} state arrays"
            raise ValueError(
                f"{fn}: d must have state arrays exactly when its step is > 0 (the moments and the "
                f"step count go together), got {got}"
            )
        extra = self._load_extra_state(fn, d, state)
        expected, loaded_record = self._load_record(fn, d, state)
        with self._steps:
            steps = self._steps
            self.__dict__.update(probe.__dict__)
            self._steps = steps
            forget_packed(self)  # the cached hyper-parameters are the old ones
            self._claimed, self._expected = None, expected
            self._recorded = loaded_record
            for name, value in extra.items():
                setattr(self, name, value)
            self.step = step
            self.state = state

    def _load_record(self, fn: str, d: Mapping[str, Any], state: dict) -> tuple[dict | None, dict]:
        """The group settings ``d`` records for each key of its state (``{}`` where it records
        none), checked against this optimizer's groups now when they are key lists; returned
        as ``(record still to compare at the next update or None, the record)``."""
        given = _validate.mapping(fn, "d['groups']", d.get("groups", {}), "group settings per key")
        given = {k: dict(_validate.mapping(fn, f"d['groups'][{k!r}]", v, "settings")) for k, v in given.items()}
        record = {k: given.get(k, {}) for k in state}
        if not state or (self._groups is None and not any(record.values())):
            return None, record
        if all(isinstance(g.keys, frozenset) for g in self._groups or []):
            self._check_record(fn, record, {k: _groups.assign(self._groups or [], {k: None}).get(k) for k in state})
            return None, record
        return record, record

    def _loaded_array(self, fn: str, name: str, a: object) -> np.ndarray:
        """A state array of ``load_state_dict``, checked for the dtypes this optimizer keeps."""
        return _validate.float_array(fn, name, a)

    def _load_state_arrays(self, fn: str, probe: Optimizer, loaded: object) -> dict:
        """The checked copy of ``d['state']``: for each key exactly the slots of the loaded
        hyper-parameters, float arrays of one shape per key and one dtype overall; and, when
        this optimizer already has state, the keys, shapes and dtypes of that state (an empty
        state, a reset, is checked against the step by the caller)."""
        loaded = _validate.mapping(fn, "d['state']", loaded, "per-parameter state dicts")
        state: dict = {}
        dtype = None
        for key, slots in loaded.items():
            where = f"d['state'][{key!r}]"
            slots = _validate.mapping(fn, where, slots, "state arrays")
            extra = [s for s in slots if s not in probe.slots]
            if extra:
                raise ValueError(f"{fn}: {where} must have only the slots {probe.slots}, got {extra[0]!r}")
            state[key] = {}
            shape = None
            for s in probe.slots:
                if s not in slots:
                    raise ValueError(f"{fn}: {where} must have slot {s!r}, got it missing")
                a = self._loaded_array(fn, f"{where}[{s!r}]", slots[s])
                dtype = dtype or a.dtype
                _validate.same_dtype(fn, f"{where}[{s!r}]", a, dtype)
                shape = a.shape if shape is None else shape
                _validate.same_shape(fn, f"{where}[{s!r}]", a, shape)
                state[key][s] = np.array(a, order="C", copy=True)
        if self.state and state:
            _validate.matching_keys(fn, "d['state']", state, "the optimizer's current state", self.state)
            for key, slots in state.items():
                for s, a in slots.items():
                    current = next(iter(self.state[key].values()), None)
                    if current is not None:
                        _validate.like_state(fn, f"d['state'][{key!r}][{s!r}]", a, current)
        return state
