"""gradfast's optimizers as ``torch.optim.Optimizer`` subclasses over CPU tensors.

``import gradfast.torch as gft`` (needs torch: ``pip install "gradfast[torch]"``; ``import
gradfast`` alone never imports it). Each class takes torch's constructor arguments; where
torch has the optimizer, the class is a subclass of torch's own (``gft.AdamW`` is a
``torch.optim.AdamW``), so its argument checks, defaults, param groups, hooks,
``state_dict``/``load_state_dict`` and ``lr_scheduler`` support are torch's. Only ``step`` is
gradfast's: one fused Rust call per param group over zero-copy NumPy views of the parameters,
gradients and state tensors (bfloat16 through a 16-bit integer view), with the GIL released.

State is kept as torch keeps it: tensors in ``self.state[p]`` named as torch names them
(``step``, ``exp_avg``, ...), in the parameter's dtype unless ``state_dtype='bfloat16'`` is
given, so a state saved by ``torch.optim.AdamW`` loads into ``gft.AdamW`` and back, and
training continues as it would have. Parameters whose ``.grad`` is ``None`` are skipped;
each parameter keeps its own step count (parameters of one group at different counts take
one call per count). Gradients are only read.

Where the gradfast optimizer takes ``rounding=`` and ``seed=`` (``Adam``, ``AdamW``, ``SGD``,
``Lion``, ``RMSprop``, ``Adagrad``, ``Adamax``, ``NAdam``, ``RAdam``), so does the class:
``rounding='stochastic'`` with ``state_dtype='bfloat16'`` rounds the stored state
stochastically, as gradfast's optimizer does with the same seed over the parameters that
step together (a group's parameters with a gradient, of one dtype and step count, in the
group's order); param group ``i`` draws from ``(seed + i) % 2**64`` (one group:
``seed`` itself). ``seed=None`` draws a seed at construction. Each group keeps ``rounding``
and ``seed``, so ``state_dict`` carries them with the step counts and a resumed run
continues bitwise.

Every tensor of a step is checked before anything is written: CUDA, sparse, non-contiguous
or mixed-device tensors raise ``ValueError`` and a dtype other than float32, float64 and
bfloat16 raises ``TypeError``, naming the parameter, and the step changes nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch.optim.optimizer import _global_optimizer_post_hooks as _GLOBAL_POST_HOOKS
from torch.optim.optimizer import _global_optimizer_pre_hooks as _GLOBAL_PRE_HOOKS

from . import _validate, optim
from ._base.optim.adafactor import state_shapes as adafactor_state_shapes
from ._base.optim.low_precision import checked_rounding
from ._base.optim.muon import NS_DTYPES

__all__ = [
    "LAMB",
    "LARS",
    "SGD",
    "Adafactor",
    "Adagrad",
    "Adam",
    "Adamax",
    "AdamW",
    "Lion",
    "Muon",
    "NAdam",
    "RAdam",
    "RMSprop",
]

_DTYPES = (torch.float32, torch.float64, torch.bfloat16)


def _number(x: Any) -> Any:
    """A hyper-parameter as gradfast takes it: a one-element tensor (torch's tensor ``lr``)
    as its float."""
    return x.item() if isinstance(x, torch.Tensor) else x


def _view(t: torch.Tensor) -> np.ndarray:
    """The NumPy array sharing ``t``'s memory (bfloat16 as ``ml_dtypes.bfloat16``)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(_validate.bf16())
    return t.numpy()


_NUMPY = {torch.float32: np.float32, torch.float64: np.float64, torch.bfloat16: np.int16}


def _full(shape: tuple[int, ...], dtype: torch.dtype, value: float = 0.0) -> torch.Tensor:
    """A state tensor of ``shape`` filled with ``value``: its memory is NumPy's, which
    asks the kernel for huge pages for large arrays (torch's allocator does not), so that the
    step's pass over it does not stall on page-table walks."""
    t = torch.from_numpy(np.zeros(shape, _NUMPY[dtype]))
    if dtype == torch.bfloat16:
        t = t.view(torch.bfloat16)
    return t.fill_(value) if value else t


def _checked_rounding(where: str, group: dict, rounding: Any, seed: Any) -> tuple[str, int | None]:
    """``(rounding, seed)`` of a group (or the constructor) with ``state_dtype`` as in ``group``,
    checked as gradfast's optimizers check them; a stochastic one without a seed draws one."""
    state_dtype = group.get("state_dtype")
    state_dtype = "bfloat16" if state_dtype is torch.bfloat16 else state_dtype
    return checked_rounding(where, "rounding", rounding, "seed", seed, state_dtype)


class _Call:
    """One gradfast call of a step: the parameters of a group that share a storage layout and
    a step count, as dicts of NumPy views keyed by position, with their state."""

    __slots__ = ("count", "engine", "extra", "grads", "params", "state", "steps", "tensors")

    def __init__(self, engine, count: int, extra: Any) -> None:
        self.engine, self.count, self.extra = engine, count, extra
        self.params: dict[int, np.ndarray] = {}
        self.grads: dict[int, np.ndarray] = {}
        self.state: dict[int, dict[str, np.ndarray]] = {}
        self.steps: list[np.ndarray] = []  # the views of the parameters' ``step`` tensors
        self.tensors: list[dict[str, torch.Tensor]] = []  # their ``self.state[p]``, for ``extra``


class _Plan:
    """A param group's calls, kept between steps while its tensors stay the same."""

    __slots__ = ("calls", "checks", "layout")

    def __init__(self, layout: Any) -> None:
        self.layout = layout  # the group's ``_layout`` when the plan was made
        # per parameter with a gradient: [p, p.grad, p.data_ptr(), self.state[p], its items,
        # its call, its position in the group]
        self.checks: list[list] = []
        self.calls: list[_Call] = []


def _retune(engine, hyper: dict[str, Any]) -> None:
    """Set the hyper-parameters of ``engine`` that differ from ``hyper`` (each assignment is
    checked by the engine, and drops its packed copy)."""
    old = engine._gf_hyper
    if old != hyper:
        for h, v in hyper.items():
            if old.get(h) != v:
                setattr(engine, h, v)
        engine._gf_hyper = hyper


class GradfastOptimizer(torch.optim.Optimizer):
    """The ``step`` every ``gradfast.torch`` class shares; a class declares its engine (a
    ``gradfast.optim`` class), the map from a param group to the engine's hyper-parameters and,
    where torch's state differs from the engine's slots, how a parameter's state starts."""

    #: the ``gradfast.optim`` class that runs the step
    _engine: ClassVar[Any] = None
    #: whether the state keeps torch's per-parameter ``step`` tensor
    _counts_steps: ClassVar[bool] = True
    #: the state key of a per-parameter scalar the engine keeps once per call (NAdam's
    #: ``mu_product``), or None
    _extra_key: ClassVar[str | None] = None
    #: whether the engine offers ``state_dtype='bfloat16'`` and bfloat16 parameters
    _bfloat16: ClassVar[bool] = True
    #: gradfast's own keyword arguments of the constructor beyond torch's and ``state_dtype``
    _extra_keywords: ClassVar[tuple[inspect.Parameter, ...]] = ()
    #: whether the engine's constructor takes ``rounding=`` and ``seed=`` (set from it)
    _rounds: ClassVar[bool] = False

    @staticmethod
    def _hyper(group: dict) -> dict[str, Any]:
        """The engine's hyper-parameters (gradfast's names) from a torch param group."""
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # a wrapper rounds stochastically exactly where its gradfast optimizer does
        cls._rounds = cls._engine is not None and "rounding" in inspect.signature(cls._engine).parameters
        # help() and inspect show torch's constructor arguments, plus state_dtype where it has a
        # choice (and rounding, seed where the engine has them) and the class's own keywords
        base = next(b for b in cls.__mro__ if b.__module__.startswith("torch.optim"))
        if base is not torch.optim.Optimizer and cls._engine is not None:
            sig = inspect.signature(base.__init__)  # type: ignore[misc]
            extra = [inspect.Parameter("state_dtype", inspect.Parameter.KEYWORD_ONLY, default=None)]
            if cls._rounds:
                extra += [
                    inspect.Parameter("rounding", inspect.Parameter.KEYWORD_ONLY, default="nearest"),
                    inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY, default=None),
                ]
            params = [*list(sig.parameters.values())[1:], *(extra if cls._bfloat16 else []), *cls._extra_keywords]
            cls.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]

    def __init__(self, params, *args: Any, state_dtype: str | None = None, **kwargs: Any) -> None:
        """torch's constructor (of the torch class this one subclasses) with its arguments,
        plus ``state_dtype`` (and ``rounding``, ``seed`` where the engine takes them); torch's
        implementation switches gradfast does not have are refused."""
        for name in ("fused", "capturable", "differentiable"):
            if kwargs.get(name):
                raise ValueError(
                    f"gradfast.torch.{type(self).__name__}: {name} must be False or None (gradfast runs its own "
                    f"fused CPU step), got {kwargs[name]!r}"
                )
        # without an engine that takes them, rounding= and seed= reach torch's constructor,
        # which refuses them as unexpected keywords
        rounding = kwargs.pop("rounding", "nearest") if self._rounds else "nearest"
        seed = kwargs.pop("seed", None) if self._rounds else None
        self._check_setup(state_dtype, rounding, seed)
        super().__init__(params, *args, **kwargs)
        self._setup(state_dtype, rounding, seed)

    def _check_setup(self, state_dtype: Any, rounding: Any, seed: Any) -> None:
        """The constructor's gradfast arguments checked before torch's constructor runs."""
        fn = f"gradfast.torch.{type(self).__name__}"
        if state_dtype is not None and (not self._bfloat16 or state_dtype not in ("bfloat16", torch.bfloat16)):
            expected = "None or 'bfloat16'" if self._bfloat16 else "None (its state is kept as the parameters')"
            raise ValueError(f"{fn}: state_dtype must be {expected}, got {state_dtype!r}")
        if self._rounds:
            _checked_rounding(fn, {"state_dtype": None if state_dtype is None else "bfloat16"}, rounding, seed)

    def _setup(self, state_dtype: str | None, rounding: str = "nearest", seed: int | None = None) -> None:
        self.defaults["state_dtype"] = None if state_dtype is None else "bfloat16"
        if self._rounds:
            fn = f"gradfast.torch.{type(self).__name__}"
            # a seed drawn here is the one every group without its own keeps (and state_dict saves)
            rounding, seed = _checked_rounding(fn, self.defaults, rounding, seed)
            self.defaults["rounding"], self.defaults["seed"] = rounding, seed
        for i, group in enumerate(self.param_groups):
            self._group_defaults(group)
            if self._rounds:
                where = f"gradfast.torch.{type(self).__name__}: param_groups[{i}]"
                group["rounding"], group["seed"] = _checked_rounding(where, group, group["rounding"], group["seed"])
        self._forget()

    def _group_defaults(self, group: dict) -> None:
        """The gradfast settings a group without its own takes from the constructor's."""
        group.setdefault("state_dtype", self.defaults.get("state_dtype"))
        if self._rounds:
            group.setdefault("rounding", self.defaults.get("rounding", "nearest"))
            group.setdefault("seed", self.defaults.get("seed"))

    def _forget(self) -> None:
        """Drop the cached views and engines (the groups or the state were replaced)."""
        self._gf_name = f"gradfast.torch.{type(self).__name__}.step"
        self._gf_plans: list[_Plan | None] = []
        self._gf_engines: dict[tuple, Any] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """torch's; then the state of groups with ``state_dtype='bfloat16'`` is stored as bfloat16
        again (torch's ``load_state_dict`` casts state to the parameters' dtype, then calls this
        before its post-hooks, which so see the state as the steps keep it)."""
        super().__setstate__(state)
        for group in self.param_groups:
            self._group_defaults(group)
            if group["state_dtype"] == "bfloat16":
                for p in group["params"]:
                    st = self.state.get(p, {})
                    for k, v in st.items():
                        if k not in ("step", self._extra_key) and isinstance(v, torch.Tensor) and v.is_floating_point():
                            st[k] = v.to(torch.bfloat16)
        self._forget()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's ``add_param_group`` (the group takes the defaults, ``state_dtype``, ``rounding``
        and ``seed`` included; its own ``rounding`` and ``seed`` are checked first)."""
        if hasattr(self, "_gf_plans") and self._rounds and isinstance(param_group, dict):
            where = f"gradfast.torch.{type(self).__name__}.add_param_group: param_group"
            rounding = param_group.get("rounding", self.defaults["rounding"])
            seed = param_group.get("seed", self.defaults["seed"] if "rounding" not in param_group else None)
            st = {"state_dtype": param_group.get("state_dtype", self.defaults["state_dtype"])}
            rounding, seed = _checked_rounding(where, st, rounding, seed)
            param_group = {**param_group, "rounding": rounding, "seed": seed}
        super().add_param_group(param_group)
        if hasattr(self, "_gf_plans"):
            self._forget()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's ``load_state_dict``, a saved group's ``rounding`` and ``seed`` checked first
        (bfloat16 state is restored by ``__setstate__``, which torch's calls)."""
        if self._rounds and isinstance(state_dict, dict):
            for i, group in enumerate(state_dict.get("param_groups") or ()):
                if isinstance(group, dict) and ("rounding" in group or "seed" in group):
                    where = f"gradfast.torch.{type(self).__name__}.load_state_dict: state_dict['param_groups'][{i}]"
                    st = {"state_dtype": group.get("state_dtype", self.defaults["state_dtype"])}
                    _checked_rounding(where, st, group.get("rounding", "nearest"), group.get("seed"))
        super().load_state_dict(state_dict)

    # -- the step ----------------------------------------------------------------------

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One step of every param group (parameters with ``.grad`` None skipped); returns the
        loss ``closure()`` computed (with grad enabled) first, or None. Step hooks run around
        it, and the profiler sees it, as torch's: only with neither there is the step called
        directly (it writes through NumPy, so autograd has nothing to see)."""
        if (
            self._optimizer_step_pre_hooks
            or self._optimizer_step_post_hooks
            or _GLOBAL_PRE_HOOKS
            or _GLOBAL_POST_HOOKS
            or _profiler_enabled()
        ):
            return _HOOKED_STEP(self, closure)
        loss = self._step(closure)
        self._optimizer_step_code()
        return loss

    step.hooked = True  # type: ignore[attr-defined]  # torch.optim.Optimizer must not wrap it again

    def _step(self, closure: Callable[[], Any] | None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        plans = self._gf_plans
        while len(plans) < len(self.param_groups):
            plans.append(None)
        # Every group's tensors are checked before any state is made, and the state of every
        # group is made before the first call writes.
        stale = [
            (i, group, self._checked(i, group))
            for i, group in enumerate(self.param_groups)
            if plans[i] is None or not self._still(i, plans[i], group)  # type: ignore[arg-type]
        ]
        for i, group, found in stale:
            plans[i] = self._plan(i, group, found)
        for group, plan in zip(self.param_groups, plans):
            self._run(group, plan)  # type: ignore[arg-type]
        return loss

    def _still(self, i: int, plan: _Plan, group: dict) -> bool:
        """Whether ``plan`` still holds the views of group ``i``'s tensors; a new gradient
        tensor of a parameter (as every ``zero_grad()`` and ``backward()`` make) is checked and
        its view swapped in."""
        if plan.layout != self._plan_layout(group):
            return False
        checks, n = plan.checks, 0
        state = self.state
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if n == len(checks):
                return False
            c = checks[n]
            # an empty state is kept by the plan only (torch makes no entry for it)
            st = state.get(p, None if c[3] else c[3])
            if st is None or c[0] is not p or c[2] != p.data_ptr() or st is not c[3]:
                return False
            for k, t in c[4]:
                if st.get(k) is not t:
                    return False
            if c[1] is not g:
                call, j = c[5], c[6]
                self._check_grad(self._where(i, j, group), p, g)
                call.grads[j] = _view(g)
                c[1] = g
            n += 1
        return n == len(checks)

    def _layout(self, group: dict) -> Any:
        """What of ``group``'s settings decides which state its parameters keep (nothing here:
        torch's other optimizers make their state once)."""
        return None

    def _plan_layout(self, group: dict) -> Any:
        """What of ``group``'s settings a plan holds to: its ``_layout`` and its rounding."""
        return (self._layout(group), group.get("rounding"), group.get("seed"))

    def _where(self, i: int, j: int, group: dict) -> str:
        names = group.get("param_names")
        name = f" ({names[j]!r})" if names else ""
        return f"gradfast.torch.{type(self).__name__}.step: param_groups[{i}]['params'][{j}]{name}"

    def _check(self, where: str, what: str, t: torch.Tensor, shape: tuple[int, ...]) -> None:
        """``t`` (the parameter, its gradient or a state tensor) as a step can take it."""
        if t.layout != torch.strided:
            raise ValueError(f"{where}: {what} must be a dense tensor, got layout {t.layout}")
        if t.device.type != "cpu":
            raise ValueError(f"{where}: {what} must be a CPU tensor, got device {t.device}")
        if t.is_complex() or t.dtype not in _DTYPES or (t.dtype == torch.bfloat16 and not self._bfloat16):
            expected = "float32, float64 or bfloat16" if self._bfloat16 else "float32 or float64"
            raise TypeError(f"{where}: {what} must have dtype {expected}, got {t.dtype}")
        if tuple(t.shape) != shape:
            raise ValueError(f"{where}: {what} must have shape {shape}, got {tuple(t.shape)}")
        if not t.is_contiguous():
            raise ValueError(f"{where}: {what} must be contiguous, got strides {t.stride()}")

    def _check_grad(self, where: str, p: torch.Tensor, g: torch.Tensor) -> None:
        self._check(where, "its gradient", g, tuple(p.shape))
        if g.dtype != p.dtype:
            raise TypeError(f"{where}: its gradient must have the parameter's dtype {p.dtype}, got {g.dtype}")
        if g.device != p.device:
            raise ValueError(f"{where}: its gradient must be on the parameter's device {p.device}, got {g.device}")

    def _state_dtype(self, group: dict, p: torch.Tensor) -> torch.dtype:
        return torch.bfloat16 if group.get("state_dtype") == "bfloat16" else p.dtype

    def _engine_for(self, i: int, group: dict, bf16_state: bool):
        """The gradfast optimizer that steps group ``i`` with (or without) bfloat16 state,
        its hyper-parameters those of ``group``."""
        rounding = {}
        if bf16_state and self._rounds and group["rounding"] == "stochastic":
            # each group draws from its own seed, so that no two groups round with the same bits
            rounding = {"rounding": "stochastic", "seed": (group["seed"] + i) % 2**64}
        key = (i, bf16_state, *rounding.values())
        engine = self._gf_engines.get(key)
        hyper = type(self)._hyper(group)
        if engine is None:
            engine = self._gf_engines[key] = self._engines_new(hyper, bf16_state, rounding)
        _retune(engine, hyper)
        return engine

    def _engines_new(self, hyper: dict, bf16_state: bool, rounding: dict[str, Any]):
        engine = self._engine(**hyper, **({"state_dtype": "bfloat16"} if bf16_state else {}), **rounding)
        engine._gf_hyper = hyper
        return engine

    def _new_state(self, p: torch.Tensor, group: dict, engine) -> dict[str, torch.Tensor]:
        """The state of a parameter's first step, as torch makes it."""
        dtype = self._state_dtype(group, p)
        state = {"step": torch.tensor(0.0, dtype=torch.float32)} if self._counts_steps else {}
        for s in engine.slots:
            shape = self._slot_shape(p, s)
            if shape is not None:
                state[s] = _full(shape, dtype)
        return state

    def _slot_shape(self, p: torch.Tensor, slot: str) -> tuple[int, ...] | None:
        """The shape of state tensor ``slot`` of ``p``, or None if ``p`` has no such slot: the
        parameter's (an optimizer with factored state, as Adafactor's, says otherwise)."""
        return tuple(p.shape)

    def _checked(self, i: int, group: dict) -> list[tuple]:
        """Group ``i``'s parameters with a gradient, ``(position, p, grad, name)``, every tensor
        checked (its state's too)."""
        found = []
        device = None
        if self._rounds:  # a group changed since the constructor (or loaded) is checked again
            where = f"gradfast.torch.{type(self).__name__}.step: param_groups[{i}]"
            self._group_defaults(group)
            group["rounding"], group["seed"] = _checked_rounding(where, group, group["rounding"], group["seed"])
        for j, p in enumerate(group["params"]):
            g = p.grad
            if g is None:
                continue
            where = self._where(i, j, group)
            self._check(where, "the parameter", p, tuple(p.shape))
            self._check_grad(where, p, g)
            if device is not None and p.device != device:
                raise ValueError(f"{where}: the parameter must be on {device} like the others, got {p.device}")
            device = p.device
            st = self.state.get(p) or {}
            for k, t in st.items():
                if isinstance(t, torch.Tensor) and k != "step" and k != self._extra_key:
                    shape = self._slot_shape(p, k)
                    if shape is None:
                        raise ValueError(
                            f"{where}: its state must not have {k!r} (a parameter of shape {tuple(p.shape)} keeps "
                            f"{[s for s in self._engine.slots if self._slot_shape(p, s) is not None]}), "
                            f"got {sorted(st)}"
                        )
                    self._check(where, f"its state {k!r}", t, shape)
            self._check_more(where, p, st)
            found.append((j, p, g, where))
        return found

    def _check_more(self, where: str, p: torch.Tensor, st: dict) -> None:
        """What else an optimizer asks of a parameter and its state (nothing here)."""

    def _plan(self, i: int, group: dict, found: list[tuple]) -> _Plan:
        """The calls of group ``i`` over its checked parameters ``found``, making the state of
        those that have none; nothing is written to a parameter here."""
        plan = _Plan(self._plan_layout(group))
        calls: dict[tuple, _Call] = {}
        for j, p, g, _where in found:
            st = self.state[p] if p in self.state else {}
            new = not st
            bf16 = (self._state_dtype(group, p) if new else self._stored_dtype(st, p)) == torch.bfloat16
            engine = self._engine_for(i, group, bf16)
            count = 0 if new else self._count(st)
            if new:
                st.update(self._new_state(p, group, engine))
                if st and p not in self.state:  # as torch, no entry for a state that holds nothing (SGD)
                    self.state[p] = st
            extra = float(st[self._extra_key]) if self._extra_key else None
            key = (p.dtype, bf16, count, extra)
            call = calls.get(key)
            if call is None:
                call = calls[key] = _Call(engine, count, extra)
            call.params[j], call.grads[j] = _view(p), _view(g)
            call.state[j] = {s: _view(st[s]) for s in engine.slots if s in st}
            if "step" in st:
                call.steps.append(_view(st["step"]))
            call.tensors.append(st)
            plan.checks.append([p, g, p.data_ptr(), st, tuple(st.items()), call, j])
        plan.calls = list(calls.values())
        return plan

    def _stored_dtype(self, st: dict, p: torch.Tensor) -> torch.dtype:
        for k, t in st.items():
            if k not in ("step", self._extra_key) and isinstance(t, torch.Tensor):
                return t.dtype
        return p.dtype

    def _count(self, st: dict) -> int:
        """The number of steps a parameter's state has taken."""
        return int(st["step"]) if self._counts_steps else (1 if st else 0)

    def _run(self, group: dict, plan: _Plan) -> None:
        hyper = type(self)._hyper(group)  # a scheduler may have changed the group since the last step
        name = self._gf_name
        for call in plan.calls:
            engine = call.engine
            _retune(engine, hyper)
            # the engine's own update, minus what a call with its state ready needs not do
            steps = engine._steps
            steps.step, steps.state = call.count, call.state
            if call.extra is not None:
                steps.extra = call.extra
            type(engine)._step(name, steps, call.params, call.grads, None, engine._packed or engine._pack())
            call.count += 1
            for v in call.steps:
                v[()] = call.count
            key = self._extra_key
            if key is not None:
                call.extra = steps.extra
                for st in call.tensors:
                    st[key].fill_(call.extra)
        if not self._counts_steps:
            self._after_uncounted(plan)

    def _after_uncounted(self, plan: _Plan) -> None:
        """A step count kept nowhere in torch's state stays at 1 (SGD: the buffers have values);
        one kept in the state (SGD's, where it rounds stochastically) counts on."""
        for call in plan.calls:
            if not call.steps:
                call.count = 1


#: torch's wrapper of a step (the profiler's record and the hooks), for the steps that need it
_HOOKED_STEP = torch.optim.Optimizer.profile_hook_step(GradfastOptimizer._step)
_profiler_enabled = torch._C._autograd._profiler_enabled


def _adam_like(group: dict) -> dict[str, Any]:
    b1, b2 = group["betas"]
    return {
        "learning_rate": _number(group["lr"]),
        "beta1": _number(b1),
        "beta2": _number(b2),
        "epsilon": group["eps"],
        "weight_decay": _number(group["weight_decay"]),
    }


class Adam(GradfastOptimizer, torch.optim.Adam):
    """``torch.optim.Adam`` (its arguments, including ``decoupled_weight_decay``) stepped by
    ``gradfast.Adam``; ``state_dtype='bfloat16'`` keeps the moments as bfloat16
    (``rounding='stochastic'``: rounded stochastically)."""

    _engine = optim.Adam

    @staticmethod
    def _hyper(group: dict) -> dict[str, Any]:
        return {
            **_adam_like(group),
            "decoupled": group["decoupled_weight_decay"],
            "amsgrad": group["amsgrad"],
            "maximize": group["maximize"],
        }


class AdamW(GradfastOptimizer, torch.optim.AdamW):
    """``torch.optim.AdamW`` stepped by ``gradfast.AdamW``; ``state_dtype='bfloat16'`` keeps the
    moments as bfloat16 (``rounding='stochastic'``: rounded stochastically)."""

    _engine = optim.Adam
    _hyper = staticmethod(Adam._hyper)


class SGD(GradfastOptimizer, torch.optim.SGD):
    """``torch.optim.SGD`` (momentum, dampening, Nesterov, weight decay, maximize: torch's rule,
    not ``gradfast.MomentumOptimizer``'s); ``state_dtype='bfloat16'`` keeps the momentum buffer
    as bfloat16, rounded to nearest even or, with ``rounding='stochastic'`` and ``seed=``,
    stochastically. As torch, the state holds ``momentum_buffer`` only, with ``momentum > 0``,
    and a ``step`` count besides where the group rounds stochastically (torch's SGD ignores it)."""

    _engine = optim.SGD
    _counts_steps = False

    # Stochastic rounding draws each step's bits by its number, which torch's SGD state does
    # not keep: a parameter of a group that rounds stochastically keeps a ``step`` as the
    # counting optimizers do (a buffer made without one, by torch or under nearest rounding,
    # counts from 1), so that no two steps draw the same bits.
    def _new_state(self, p: torch.Tensor, group: dict, engine) -> dict[str, torch.Tensor]:
        state = super()._new_state(p, group, engine)
        if state and group.get("rounding") == "stochastic":
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
        return state

    def _plan(self, i: int, group: dict, found: list[tuple]) -> _Plan:
        if group.get("rounding") == "stochastic":
            for _j, p, _g, _where in found:
                st = self.state.get(p)
                if st and "step" not in st:
                    st["step"] = torch.tensor(1.0, dtype=torch.float32)
        return super()._plan(i, group, found)

    def _count(self, st: dict) -> int:
        return int(st["step"]) if "step" in st else (1 if st else 0)

    def _layout(self, group: dict) -> Any:
        # torch makes a parameter's momentum buffer at its first step with momentum > 0, so a
        # group's momentum raised from 0 starts buffers then (from the gradient, as a first step)
        return group["momentum"] > 0

    @staticmethod
    def _hyper(group: dict) -> dict[str, Any]:
        return {
            "learning_rate": _number(group["lr"]),
            "momentum": group["momentum"],
            "dampening": group["dampening"],
            "weight_decay": _number(group["weight_decay"]),
            "nesterov": group["nesterov"],
            "maximize": group["maximize"],
        }


class Adagrad(GradfastOptimizer, torch.optim.Adagrad):
    """``torch.optim.Adagrad`` stepped by ``gradfast.Adagrad`` (``initial_accumulator_value``
    is the constructor's, as torch's state is made in its constructor)."""

    _engine = optim.Adagrad

    @staticmethod
    def _hyper(group: dict) -> dict[str, Any]:
        return {
            "learning_rate": _number(group["lr"]),
            "lr_decay": group["lr_decay"],
            "weight_decay": group["weight_decay"],
            "epsilon": group["eps"],
            "maximize": group["maximize"],
        }

    def __init__(self, params, *args: Any, state_dtype: str | None = None, **kwargs: Any) -> None:
        super().__init__(params, *args, state_dtype=state_dtype, **kwargs)
        if state_dtype is not None:  # torch made the sums in the parameters' dtype
            for st in self.state.values():
                st["sum"] = st["sum"].to(torch.bfloat16)

    def _new_state(self, p: torch.Tensor, group: dict, engine) -> dict[str, torch.Tensor]:
        dtype = self._state_dtype(group, p)
        init = self.defaults["initial_accumulator_value"]
        return {"step": torch.tensor(0.0, dtype=torch.float32), "sum": _full(tuple(p.shape), dtype, init)}


class RMSprop(GradfastOptimizer, torch.optim.RMSprop):
    """``torch.optim.RMSprop`` stepped by ``gradfast.RMSprop``."""

    _engine = optim.RMSprop

    @staticmethod
    def _hyper(group: dict) -> dict[str, Any]:
        return {
            "learning_rate": _number(group["lr"]),
            "alpha": group["alpha"],
            "epsilon": group["eps"],
            "weight_decay": group["weight_decay"],
            "momentum": group["momentum"],
            "centered": group["centered"],
            "maximize": group["maximize"],
        }


class Adamax(GradfastOptimizer, torch.optim.Adamax):
    """``torch.optim.Adamax`` stepped by ``gradfast.Adamax``."""

    _engine = optim.Adamax

    @staticmethod
    def _hyper(group: dict) -> dict[str, Any]:
        return {**_adam_like(group), "maximize": group["maximize"]}


class NAdam(GradfastOptimizer, torch.optim.NAdam):
    """``torch.optim.NAdam`` stepped by ``gradfast.NAdam``; each parameter's ``mu_product`` is
    a tensor of its state, as torch's (float64 for float64 parameters)."""

    _engine = optim.NAdam
    _extra_key = "mu_product"

    @staticmethod
    def _hyper(group: dict) -> dict[str, Any]:
        return {
            **_adam_like(group),
            "momentum_decay": group["momentum_decay"],
            "decoupled": group["decoupled_weight_decay"],
            "maximize": group["maximize"],
        }

    def _new_state(self, p: torch.Tensor, group: dict, engine) -> dict[str, torch.Tensor]:
        state = super()._new_state(p, group, engine)
        scalar = torch.float64 if p.dtype == torch.float64 else torch.float32
        return {"step": state.pop("step"), "mu_product": torch.tensor(1.0, dtype=scalar), **state}


class RAdam(GradfastOptimizer, torch.optim.RAdam):
    """``torch.optim.RAdam`` stepped by ``gradfast.RAdam``."""

    _engine = optim.RAdam

    @staticmethod
    def _hyper(group: dict) -> dict[str, Any]:
        return {**_adam_like(group), "decoupled": group["decoupled_weight_decay"], "maximize": group["maximize"]}


class Adafactor(GradfastOptimizer, torch.optim.Adafactor):
    """``torch.optim.Adafactor`` stepped by ``gradfast.Adafactor`` (float32 and float64
    parameters). As torch's, a parameter of 2 or more dims keeps ``row_var`` of shape
    ``(..., m, 1)`` and ``col_var`` of shape ``(..., 1, n)``, a vector ``variance``."""

    _engine = optim.Adafactor
    _bfloat16 = False

    @staticmethod
    def _hyper(group: dict) -> dict[str, Any]:
        return {
            "learning_rate": _number(group["lr"]),
            "beta2_decay": group["beta2_decay"],
            "epsilon": tuple(group["eps"]),
            "d": group["d"],
            "weight_decay": group["weight_decay"],
            "maximize": group.get("maximize", False),  # older state dicts lack it (torch's loader adds none)
        }

    def _slot_shape(self, p: torch.Tensor, slot: str) -> tuple[int, ...] | None:
        return adafactor_state_shapes(tuple(p.shape)).get(slot)

    def _check_more(self, where: str, p: torch.Tensor, st: dict) -> None:
        missing = [s for s in adafactor_state_shapes(tuple(p.shape)) if st and s not in st]
        if missing:
            raise ValueError(f"{where}: its state must have {missing[0]!r}, got {sorted(st)}")


class Muon(GradfastOptimizer, torch.optim.Muon):
    """``torch.optim.Muon`` stepped by ``gradfast.Muon`` (float32 and float64 matrices; the
    Newton-Schulz iteration in bfloat16, as torch's, so the two agree within bfloat16's
    error). As torch, every parameter must be 2-D: one added later with ``add_param_group``
    is refused by ``step`` before anything is written. State ``momentum_buffer`` only.

    gradfast's own keyword ``ns_dtype='float32'`` runs the iteration in float32 throughout
    (a param group may set its own); a state dict loaded from torch keeps the constructor's."""

    _engine = optim.Muon
    _counts_steps = False
    _bfloat16 = False
    _extra_keywords = (inspect.Parameter("ns_dtype", inspect.Parameter.KEYWORD_ONLY, default="bfloat16"),)

    def __init__(self, params, *args: Any, ns_dtype: str = "bfloat16", **kwargs: Any) -> None:
        _validate.choice("gradfast.torch.Muon", "ns_dtype", ns_dtype, NS_DTYPES)
        self._ns_dtype = ns_dtype
        super().__init__(params, *args, **kwargs)

    def _forget(self) -> None:
        # every group has an ns_dtype: torch's state dicts and groups added before the
        # constructor finished have none
        ns_dtype = self.defaults.setdefault("ns_dtype", getattr(self, "_ns_dtype", "bfloat16"))
        for group in self.param_groups:
            group.setdefault("ns_dtype", ns_dtype)
        super()._forget()

    @staticmethod
    def _hyper(group: dict) -> dict[str, Any]:
        return {
            "learning_rate": _number(group["lr"]),
            "weight_decay": group["weight_decay"],
            "momentum": group["momentum"],
            "nesterov": group["nesterov"],
            "ns_coefficients": tuple(group["ns_coefficients"]),
            "epsilon": group["eps"],
            "ns_steps": group["ns_steps"],
            "adjust_lr_fn": group["adjust_lr_fn"],
            "ns_dtype": group["ns_dtype"],
        }

    def _check_more(self, where: str, p: torch.Tensor, st: dict) -> None:
        if p.ndim != 2:
            raise ValueError(
                f"{where}: the parameter must be 2-D (Muon only supports 2D parameters: give biases, norms and "
                f"embeddings to another optimizer such as AdamW), got size {tuple(p.shape)}"
            )


def _check_number(name: str, value: Any, hi: float | None = None, *, hi_closed: bool = False) -> None:
    """torch's check of a hyper-parameter (at least 0, below ``hi``), with its message."""
    v = _number(value)
    if not (0.0 <= v and (hi is None or v < hi or (hi_closed and v == hi))):
        raise ValueError(f"Invalid {name}: {v}")


class _Plain(GradfastOptimizer):
    """A gradfast optimizer torch does not have, over ``torch.optim.Optimizer`` itself."""

    def _start(self, params, defaults: dict[str, Any], state_dtype: str | None, **rounding: Any) -> None:
        super().__init__(params, defaults, state_dtype=state_dtype, **rounding)


class Lion(_Plain):
    """Lion (``lion_pytorch.Lion``'s arguments and numbers) stepped by ``gradfast.Lion``:
    ``betas`` are gradfast's ``beta1``, ``beta2``; state ``exp_avg`` (and ``step``).
    ``rounding='stochastic'`` with ``state_dtype='bfloat16'`` rounds ``exp_avg`` stochastically."""

    _engine = optim.Lion

    @staticmethod
    def _hyper(group: dict) -> dict[str, Any]:
        b1, b2 = group["betas"]
        return {
            "learning_rate": _number(group["lr"]),
            "beta1": b1,
            "beta2": b2,
            "weight_decay": group["weight_decay"],
        }

    def __init__(
        self,
        params,
        lr: float = 1e-4,
        betas=(0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        state_dtype=None,
        rounding: str = "nearest",
        seed: int | None = None,
    ) -> None:
        _check_number("learning rate", lr)
        _check_number("beta parameter at index 0", betas[0], 1.0, hi_closed=True)
        _check_number("beta parameter at index 1", betas[1], 1.0, hi_closed=True)
        _check_number("weight_decay value", weight_decay)
        defaults = {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay}
        self._start(params, defaults, state_dtype, rounding=rounding, seed=seed)


class LAMB(_Plain):
    """``gradfast.LAMB`` (optax's ``lamb``) in torch's spelling: ``lr``, ``betas``, ``eps``,
    ``weight_decay``, ``maximize``; state ``step``, ``exp_avg``, ``exp_avg_sq``."""

    _engine = optim.LAMB

    @staticmethod
    def _hyper(group: dict) -> dict[str, Any]:
        return {**_adam_like(group), "maximize": group["maximize"]}

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.01,
        *,
        maximize: bool = False,
    ) -> None:
        _check_number("learning rate", lr)
        _check_number("epsilon value", eps)
        _check_number("beta parameter at index 0", betas[0], 1.0)
        _check_number("beta parameter at index 1", betas[1], 1.0)
        _check_number("weight_decay value", weight_decay)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "maximize": maximize}
        self._start(params, defaults, None)


class LARS(_Plain):
    """``gradfast.LARS`` in torch's spelling: ``lr``, ``momentum``, ``weight_decay``,
    ``trust_coefficient``, ``eps``, ``maximize``; state ``step``, ``velocity``."""

    _engine = optim.LARS

    @staticmethod
    def _hyper(group: dict) -> dict[str, Any]:
        return {
            "learning_rate": _number(group["lr"]),
            "momentum": group["momentum"],
            "weight_decay": group["weight_decay"],
            "trust_coefficient": group["trust_coefficient"],
            "epsilon": group["eps"],
            "maximize": group["maximize"],
        }

    def __init__(
        self,
        params,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        trust_coefficient: float = 0.001,
        eps: float = 1e-9,
        *,
        maximize: bool = False,
    ) -> None:
        _check_number("learning rate", lr)
        _check_number("momentum value", momentum, 1.0)
        _check_number("weight_decay value", weight_decay)
        _check_number("trust_coefficient value", trust_coefficient)
        _check_number("epsilon value", eps)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "trust_coefficient": trust_coefficient,
            "eps": eps,
            "maximize": maximize,
        }
        self._start(params, defaults, None)
