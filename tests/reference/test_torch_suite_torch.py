"""PyTorch's own optimizer test inputs, run with each ``torch.optim`` class swapped for
``gradfast.torch``'s.

``torch.testing._internal.common_optimizers.optim_db`` (shipped in the torch wheel) is the
database PyTorch's ``TestOptimRenewed`` runs over: for every optimizer, the constructor
arguments it is tested with (``optim_inputs_func``) and the ones that must fail, with the
exception and message (``optim_error_inputs_func``). Here every entry is applied to the
gradfast class on CPU, default implementation, with the checks ``TestOptimRenewed`` makes of
it: torch's errors and messages, the same numbers as torch's class step for step (tensor ``lr``
included), the loss going the right way, ``state_dict`` through ``torch.save`` and
``torch.load(weights_only=True)`` resuming identically, older state dicts (no ``maximize`` or
``foreach``, a float ``step``) loading, state dicts equal after a load whether the parameters
were named or not, ``state_dict`` and ``load_state_dict`` hooks (pre-hooks prepended), step
hooks (global ones around the optimizer's, until removed), the loss going the right way under
each of optim_db's scheduler lists (also with a group's own float or tensor lr), no step without
gradients nor with zero ones, ``zero_grad`` either way, ``add_param_group``'s errors, gradients
never written, ``deepcopy`` keeping every public attribute, ``repr``.

Out of scope (gradfast.torch is CPU and its own fused step): CUDA, ``foreach``/``fused``,
``capturable``, ``differentiable``, complex and sparse inputs; and TestOptimRenewed's
non-contiguous parameters (``test_forloop_goes_right_direction`` with ``contiguous=False``),
which gradfast.torch refuses with ``ValueError`` as it steps zero-copy views (checked here
instead, over the same inputs). Every entry of optim_db left out
is in ``DESELECTED`` (or, for all of an optimizer's stepping inputs, ``NOT_STEPPED``) below,
with the reason; ``CHECK_EXCLUDED`` holds the inputs left out of one check only.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings

import pytest

torch = pytest.importorskip("torch")

import gradfast.torch as gft  # noqa: E402
from torch.optim.optimizer import (  # noqa: E402
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)
from torch.testing._internal.common_optimizers import (  # noqa: E402
    OptimizerErrorEnum,
    optim_db,
)

#: optim_db entries not applied, with the reason: (optimizer, input description) -> reason.
#: None: the classes subclass torch's, so even the inputs about torch's implementation
#: switches raise torch's errors; only the inputs that switch one on are not stepped (below).
DESELECTED: dict[tuple[str, str], str] = {
    (name, "does not support complex parameters"): (
        "gradfast.torch refuses a complex parameter at the step with its own TypeError (a dtype error), where "
        "torch raises RuntimeError; test_torch_optimizers_torch.py checks the refusal"
    )
    for name in ("Adafactor", "Muon")
}
#: optimizers whose inputs are not stepped here, with the reason (their errors are tested)
NOT_STEPPED = {
    "Muon": (
        "Muon takes 2-D parameters only and agrees with torch within bfloat16's error, so the weight-and-bias "
        "problem and tolerances here do not fit it; test_torch_optimizers_torch.py steps it against torch"
    ),
}
#: optim_db inputs left out of one check only: check -> (which (optimizer, kwargs), the reason)
CHECK_EXCLUDED = {
    "zero gradients": (
        lambda name, kwargs: name == "AdamW" or kwargs.get("weight_decay", 0) != 0,
        "weight decay moves the parameters whatever the gradient (AdamW's default weight_decay is 0.01)",
    ),
}
#: keyword arguments that select one of torch's implementations (out of scope)
IMPLEMENTATION_SWITCHES = ("foreach", "fused", "capturable", "differentiable")

INFOS = {info.optim_cls.__name__: info for info in optim_db if hasattr(gft, info.optim_cls.__name__)}
CLASSES = sorted(INFOS)


def _ours(name):
    return getattr(gft, name)


def _inputs(name, dtype=torch.float32):
    """(description, kwargs) of the optimizer's test inputs on CPU, deselected ones left out."""
    out = []
    if name in NOT_STEPPED:
        return out
    for oi in INFOS[name].optim_inputs_func(device="cpu", dtype=dtype):
        if (name, oi.desc) in DESELECTED or any(oi.kwargs.get(k) for k in IMPLEMENTATION_SWITCHES):
            continue
        out.append((oi.desc, oi.kwargs))
    return out


def _cases(dtype=torch.float32, check=None):
    """The stepping inputs of every class, less those ``CHECK_EXCLUDED`` leaves out of ``check``."""
    out = CHECK_EXCLUDED[check][0] if check else lambda name, kwargs: False
    return [pytest.param(n, d, kw, id=f"{n}-{d}") for n in CLASSES for d, kw in _inputs(n, dtype) if not out(n, kw)]


def _error_cases():
    cases = []
    for name in CLASSES:
        for ei in INFOS[name].optim_error_inputs_func(device="cpu", dtype=torch.float32):
            desc = ei.optimizer_error_input.desc
            if (name, desc) in DESELECTED:
                continue
            cases.append(pytest.param(name, ei, id=f"{name}-{desc}"))
    return cases


def test_every_torch_class_of_gradfast_torch_is_covered():
    assert set(CLASSES) == {
        "Adafactor",
        "Adagrad",
        "Adam",
        "Adamax",
        "AdamW",
        "Muon",
        "NAdam",
        "RAdam",
        "RMSprop",
        "SGD",
    }


@pytest.mark.parametrize(("name", "error_input"), _error_cases())
def test_errors(name, error_input):
    """torch's error (type and message) for each of its bad inputs, at construction or step."""
    oi = error_input.optimizer_error_input
    params = oi.params if oi.params is not None else [torch.nn.Parameter(torch.randn(1, 1))]
    cls = _ours(name)
    if error_input.error_on == OptimizerErrorEnum.CONSTRUCTION_ERROR:
        if issubclass(error_input.error_type, Warning):
            with pytest.warns(error_input.error_type, match=error_input.error_regex):
                cls(params, **oi.kwargs)
        else:
            with pytest.raises(error_input.error_type, match=error_input.error_regex):
                cls(params, **oi.kwargs)
    else:
        opt = cls(params, **oi.kwargs)
        with pytest.raises(error_input.error_type, match=error_input.error_regex):
            opt.step()


# -- numbers ---------------------------------------------------------------------------


def _problem(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    weight = torch.nn.Parameter(torch.randn(10, 5, generator=g, dtype=dtype))
    bias = torch.nn.Parameter(torch.randn(10, generator=g, dtype=dtype))
    x = torch.randn(5, generator=g, dtype=dtype)
    return weight, bias, x


def _closure(opt, weight, bias, x):
    def closure():
        opt.zero_grad()
        loss = (weight.mv(x) + bias).pow(2).sum()
        loss.backward()
        return loss

    return closure


@contextlib.contextmanager
def _default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _kwargs(kwargs):
    return copy.deepcopy(kwargs)


def _groups(weight, bias, kwargs):
    """Two param groups, as TestOptimRenewed's: the bias with a tenth of the rate."""
    lr = kwargs.get("lr", 1e-3)
    lr = lr.item() if isinstance(lr, torch.Tensor) else lr
    return [{"params": [weight]}, {"params": [bias], "lr": lr / 10}]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_steps_as_torch(name, desc, kwargs, dtype):
    """Twenty steps of torch's class (single-tensor path) and gradfast's from one start."""
    runs = []
    for cls, extra in ((getattr(torch.optim, name), {"foreach": False}), (_ours(name), {})):
        weight, bias, x = _problem(dtype)
        opt = cls(_groups(weight, bias, kwargs), **extra, **_kwargs(kwargs))
        closure = _closure(opt, weight, bias, x)
        # torch keeps NAdam's mu_product in its default dtype, gradfast in the parameters'
        with _default_dtype(dtype):
            losses = [opt.step(closure).item() for _ in range(20)]
        runs.append((weight.detach(), bias.detach(), losses))
    (w_t, b_t, l_t), (w_g, b_g, l_g) = runs
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 1e-12}
    torch.testing.assert_close(w_g, w_t, **tol)
    torch.testing.assert_close(b_g, b_t, **tol)
    maximize = kwargs.get("maximize", False)
    assert (l_g[-1] > l_g[0]) if maximize else (l_g[-1] < l_g[0])


@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_tensor_lr_steps_as_float_lr(name, desc, kwargs):
    tensor_lr = torch.tensor(0.01)
    results = []
    for lr in (tensor_lr.item(), tensor_lr):
        weight, bias, x = _problem(torch.float32)
        opt = _ours(name)([weight, bias], **{**_kwargs(kwargs), "lr": lr})
        closure = _closure(opt, weight, bias, x)
        for _ in range(3):
            opt.step(closure)
        results.append(weight.detach().clone())
    assert torch.equal(results[0], results[1])


# -- state -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_state_dict_loads_with_weights_only_and_resumes(name, desc, kwargs):
    weight, bias, x = _problem(torch.float32)
    opt = _ours(name)([weight, bias], **_kwargs(kwargs))
    closure = _closure(opt, weight, bias, x)
    for _ in range(5):
        opt.step(closure)
    for p in (weight, bias):
        assert all(isinstance(v, torch.Tensor) for v in opt.state[p].values())
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    weight_c, bias_c = (torch.nn.Parameter(p.detach().clone()) for p in (weight, bias))
    opt_c = _ours(name)([weight_c, bias_c], **_kwargs(kwargs))
    opt_c.load_state_dict(loaded)
    closure_c = _closure(opt_c, weight_c, bias_c, x)
    for _ in range(5):
        opt.step(closure)
        opt_c.step(closure_c)
        assert torch.equal(weight, weight_c) and torch.equal(bias, bias_c)
    # equal states give equal state dicts
    torch.testing.assert_close(opt.state_dict()["state"], opt_c.state_dict()["state"], atol=0, rtol=0)


@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_older_state_dicts_load(name, desc, kwargs):
    """A state dict without ``maximize``/``foreach`` and with a float ``step`` (older torch)."""
    weight, bias, x = _problem(torch.float32)
    opt = _ours(name)([weight, bias], **_kwargs(kwargs))
    closure = _closure(opt, weight, bias, x)
    opt.step(closure)
    sd = copy.deepcopy(opt.state_dict())
    for group in sd["param_groups"]:
        group.pop("maximize", None)
        group.pop("foreach", None)
    for st in sd["state"].values():
        if "step" in st:
            st["step"] = st["step"].item()
    opt.load_state_dict(sd)
    opt.step(closure)
    for p in (weight, bias):
        if "step" in opt.state[p]:
            assert isinstance(opt.state[p]["step"], torch.Tensor) and opt.state[p]["step"].item() == 2


@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_deepcopy_copies_all_public_attributes(name, desc, kwargs):
    weight, bias, x = _problem(torch.float32)
    opt = _ours(name)([weight, bias], **_kwargs(kwargs))
    opt.step(_closure(opt, weight, bias, x))
    public = lambda o: {k for k in o.__dict__ if not k.startswith("_")}  # noqa: E731
    assert public(opt) == public(copy.deepcopy(opt))
    repr(opt)


# -- behaviour -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_step_is_a_no_op_without_gradients(name, desc, kwargs):
    weight, bias, _ = _problem(torch.float32)
    before = [weight.detach().clone(), bias.detach().clone()]
    opt = _ours(name)([weight, bias], **_kwargs(kwargs))
    state_before = copy.deepcopy(opt.state_dict()["state"])
    opt.step()
    assert torch.equal(weight, before[0]) and torch.equal(bias, before[1])
    torch.testing.assert_close(opt.state_dict()["state"], state_before, atol=0, rtol=0)


@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_hooks_fire_once_per_step_and_gradients_stay(name, desc, kwargs):
    weight, bias, x = _problem(torch.float32)
    opt = _ours(name)([weight, bias], **_kwargs(kwargs))
    calls = []
    opt.register_step_pre_hook(lambda *a: calls.append("pre"))
    opt.register_step_post_hook(lambda *a: calls.append("post"))
    closure = _closure(opt, weight, bias, x)
    closure()
    grads = [weight.grad.clone(), bias.grad.clone()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
    assert calls == ["pre", "post"]
    assert torch.equal(weight.grad, grads[0]) and torch.equal(bias.grad, grads[1])


@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_param_group_settings_apply_per_group(name, desc, kwargs):
    """A group's own lr (and weight decay) act on it alone, as in torch."""
    runs = []
    for cls, extra in ((getattr(torch.optim, name), {"foreach": False}), (_ours(name), {})):
        weight, bias, x = _problem(torch.float32)
        groups = [{"params": [weight], "lr": 0.05}, {"params": [bias], "weight_decay": 0.5, "lr": 0.002}]
        opt = cls(groups, **extra, **_kwargs(kwargs))
        closure = _closure(opt, weight, bias, x)
        for _ in range(3):
            opt.step(closure)
        runs.append((weight.detach(), bias.detach()))
    torch.testing.assert_close(runs[1], runs[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_state_entries_are_torchs(name, desc, kwargs):
    """After a step the same parameters have state, under the same keys, as with torch's class
    (torch's SGD without momentum makes no entry at all), and none is empty."""
    entries = []
    for cls, extra in ((getattr(torch.optim, name), {"foreach": False}), (_ours(name), {})):
        weight, bias, x = _problem(torch.float32)
        opt = cls([weight, bias], **extra, **_kwargs(kwargs))
        opt.step(_closure(opt, weight, bias, x))
        assert all(len(st) > 0 for st in opt.state.values())
        entries.append({i: sorted(st) for i, st in opt.state_dict()["state"].items()})
    assert entries[1] == entries[0]


# -- schedulers ------------------------------------------------------------------------


def _scheduled_steps(opt, closure, schedulers, steps=20):
    """``steps`` steps, each followed by every scheduler's (ReduceLROnPlateau given the loss)."""
    for _ in range(steps):
        loss = opt.step(closure)
        for s in schedulers:
            if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
                s.step(loss.item())
            else:
                s.step()


def _scheduler_cases():
    return [
        pytest.param(n, d, kw, k, id=f"{n}-{d}-schedulers{k}")
        for n in CLASSES
        for d, kw in _inputs(n)
        for k in range(len(INFOS[n].scheduler_inputs))
    ]


@pytest.mark.parametrize(("name", "desc", "kwargs", "k"), _scheduler_cases())
def test_goes_the_right_way_under_lr_schedulers(name, desc, kwargs, k):
    """optim_db's scheduler lists: the loss after twenty scheduled steps is on the right side
    of the first, and the parameters are torch's class's under the same schedule."""
    runs = []
    for cls, extra in ((getattr(torch.optim, name), {"foreach": False}), (_ours(name), {})):
        weight, bias, x = _problem(torch.float32)
        opt = cls([weight, bias], **extra, **_kwargs(kwargs))  # a fresh tensor lr per run
        closure = _closure(opt, weight, bias, x)
        first = closure().item()
        _scheduled_steps(opt, closure, [make(opt) for make in INFOS[name].scheduler_inputs[k]])
        last = closure().item()
        assert (last > first) if kwargs.get("maximize", False) else (last < first)
        runs.append((weight.detach(), bias.detach()))
    torch.testing.assert_close(runs[1], runs[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tensor_lr", [False, True], ids=["float-lr", "tensor-lr"])
@pytest.mark.parametrize(
    ("name", "k"), [(n, k) for n in CLASSES if n not in NOT_STEPPED for k in range(len(INFOS[n].scheduler_inputs))]
)
def test_a_param_group_with_its_own_lr_goes_the_right_way_under_lr_schedulers(name, k, tensor_lr):
    """Two groups (the bias with its own lr, a float or a tensor) under each scheduler list."""
    weight, bias, x = _problem(torch.float32)
    lr = torch.tensor(0.01) if tensor_lr else 0.01
    opt = _ours(name)([{"params": [weight]}, {"params": [bias], "lr": lr}])
    closure = _closure(opt, weight, bias, x)
    first = closure().item()
    _scheduled_steps(opt, closure, [make(opt) for make in INFOS[name].scheduler_inputs[k]])
    assert closure().item() < first


# -- gradients -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases(check="zero gradients"))
def test_zero_gradients_leave_the_parameters(name, desc, kwargs):
    param = torch.nn.Parameter(torch.randn(5, 1))
    before = param.detach().clone()
    opt = _ours(name)([param], **_kwargs(kwargs))
    param.grad = torch.zeros_like(param)
    opt.step()
    opt.step()
    assert torch.equal(param, before)


@pytest.mark.parametrize("set_to_none", [True, False])
@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_zero_grad_either_way_steps_as_torch(name, desc, kwargs, set_to_none):
    """``zero_grad(set_to_none=...)``: None gradients (a new tensor at each backward) or the
    same gradient tensors zeroed in place and accumulated into, as torch steps them."""
    runs = []
    for cls, extra in ((getattr(torch.optim, name), {"foreach": False}), (_ours(name), {})):
        weight, bias, x = _problem(torch.float32)
        opt = cls([weight, bias], **extra, **_kwargs(kwargs))
        grads = []
        for _ in range(4):
            opt.zero_grad(set_to_none=set_to_none)
            assert (weight.grad is None) if set_to_none else (weight.grad is None or not weight.grad.any())
            (weight.mv(x) + bias).pow(2).sum().backward()
            grads.append(weight.grad)
            opt.step()
        if not set_to_none:  # the same tensor throughout
            assert all(g is grads[0] for g in grads)
        runs.append((weight.detach(), bias.detach()))
    torch.testing.assert_close(runs[1], runs[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_non_contiguous_parameters_are_refused_and_nothing_changes(name, desc, kwargs):
    """In place of TestOptimRenewed's non-contiguous run (see the module docstring)."""
    weight = torch.nn.Parameter(torch.randn(10, 5, 2)[..., 0])
    bias = torch.nn.Parameter(torch.randn(10))
    x = torch.randn(5)
    opt = _ours(name)([weight, bias], **_kwargs(kwargs))
    (weight.mv(x) + bias).pow(2).sum().backward()
    before = weight.detach().clone(), bias.detach().clone()
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[0\]: the parameter must be contiguous"):
        opt.step()
    assert torch.equal(weight, before[0]) and torch.equal(bias, before[1])
    assert not opt.state_dict()["state"] or name == "Adagrad"  # Adagrad makes its sums at construction


# -- state dicts -----------------------------------------------------------------------


def _named(params, named):
    return [(f"name{i}", p) for i, p in enumerate(params)] if named else params


def _without_names(sd):
    sd = copy.deepcopy(sd)
    for g in sd["param_groups"]:
        g.pop("param_names", None)
    return sd


@pytest.mark.parametrize("named", [(False, False), (False, True), (True, False), (True, True)], ids=str)
@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_state_dict_is_deterministic_named_or_not(name, desc, kwargs, named):
    """Ten steps, the state dict loaded (deep-copied) into an optimizer of cloned parameters,
    ten more steps of both: equal parameters and equal state dicts, whether either optimizer
    was given named parameters; repeated groups give the same group entries."""
    weight, bias, x = _problem(torch.float32)
    opt = _ours(name)(_named([weight, bias], named[0]), **_kwargs(kwargs))
    closure = _closure(opt, weight, bias, x)
    for _ in range(10):
        opt.step(closure)
    weight_c, bias_c = (torch.nn.Parameter(p.detach().clone()) for p in (weight, bias))
    opt_c = _ours(name)(_named([weight_c, bias_c], named[1]), **_kwargs(kwargs))
    opt_c.load_state_dict(copy.deepcopy(opt.state_dict()))
    if any(named):
        assert opt_c.state_dict()["param_groups"][0]["param_names"] == ["name0", "name1"]
    closure_c = _closure(opt_c, weight_c, bias_c, x)
    for _ in range(10):
        opt.step(closure)
        opt_c.step(closure_c)
        assert torch.equal(weight, weight_c) and torch.equal(bias, bias_c)
    sd, sd_c = _without_names(opt.state_dict()), _without_names(opt_c.state_dict())
    torch.testing.assert_close(sd_c["state"], sd["state"], atol=0, rtol=0)
    assert _plain(sd_c["param_groups"]) == _plain(sd["param_groups"])
    opt_c.param_groups.extend(opt_c.param_groups)
    last = _without_names(opt_c.state_dict())["param_groups"][-1]
    assert _plain([last]) == _plain([sd["param_groups"][-1]])


def _plain(groups):
    """Param group entries with tensor values (a tensor lr) as floats, for ``==``."""
    return [{k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in g.items()} for g in groups]


@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_state_dict_hooks_run(name, desc, kwargs):
    opt = _ours(name)([torch.nn.Parameter(torch.rand(2, 3))], **_kwargs(kwargs))
    opt.register_state_dict_pre_hook(lambda o: o.state.__setitem__("marker", 1))
    assert opt.state_dict()["state"]["marker"] == 1

    def post(o, sd):
        sd["saw_marker"] = sd["state"].pop("marker", None) == 1
        return sd

    opt.register_state_dict_post_hook(post)
    sd = opt.state_dict()
    assert sd["saw_marker"] and "marker" not in sd["state"]


@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_load_state_dict_hooks_run_in_order(name, desc, kwargs):
    opt = _ours(name)([torch.nn.Parameter(torch.rand(2, 3))], **_kwargs(kwargs))
    sd = opt.state_dict()

    def set_lr(value, copy_first):
        def hook(o, d):
            if copy_first:  # a hook may return the dict to load instead
                d = copy.deepcopy(d)
            d["param_groups"][0]["lr"] = value
            return d if copy_first else None

        return hook

    opt.register_load_state_dict_pre_hook(set_lr(0.002, False))
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.002
    # prepended, so the hook registered before has the last word
    opt.register_load_state_dict_pre_hook(set_lr(0.003, True), prepend=True)
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.002
    seen = []
    opt.register_load_state_dict_post_hook(lambda o: seen.append(o.param_groups[0]["lr"]))
    opt.load_state_dict(sd)
    assert seen == [0.002]


# -- step hooks ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_step_hooks_run_until_removed_global_ones_around_local_ones(name, desc, kwargs):
    params = [torch.tensor([1.0, 1.0])]
    opt = _ours(name)(params, **_kwargs(kwargs))
    other = torch.optim.SGD(params)
    calls = []
    handles = [
        register_optimizer_step_pre_hook(lambda *a: calls.append("global pre")),
        register_optimizer_step_post_hook(lambda *a: calls.append("global post")),
    ]
    for o in (opt, other):
        handles.append(o.register_step_pre_hook(lambda *a: calls.append("pre")))
        handles.append(o.register_step_post_hook(lambda *a: calls.append("post")))
    try:
        opt.step()
        other.step()
        opt.step()
    finally:
        for h in handles:
            h.remove()
    assert calls == ["global pre", "pre", "post", "global post"] * 3
    opt.step()
    other.step()
    assert len(calls) == 12


# -- param groups ----------------------------------------------------------------------


@pytest.mark.parametrize("name", CLASSES)
def test_add_param_group_refuses_as_torch_and_adds_nothing(name):
    """torch's errors (type and message) for bad groups; the optimizer steps as before."""
    weight, bias, x = _problem(torch.float32)
    if name == "Muon":
        bias = torch.nn.Parameter(torch.randn(10, 2))
        x = torch.randn(5)
    leaf = torch.nn.Parameter(torch.randn(3))
    bad = {
        "the same parameter in two groups": {"params": [weight]},
        "a non-tensor": {"params": [1.0]},
        "a non-leaf tensor": {"params": [leaf * 2]},
        "a set of parameters": {"params": {leaf}},
    }
    for desc, group in bad.items():
        outcomes = []
        for cls in (getattr(torch.optim, name), _ours(name)):
            opt = cls([weight])
            with pytest.raises(Exception) as info:
                opt.add_param_group(group)
            assert len(opt.param_groups) == 1, desc
            outcomes.append((type(info.value), str(info.value)))
        assert outcomes[1] == outcomes[0], desc
    opt = _ours(name)([weight])
    with contextlib.suppress(ValueError):
        opt.add_param_group({"params": [weight]})
    opt.add_param_group({"params": [bias]})
    if name != "Muon":
        closure = _closure(opt, weight, bias, x)
        first = closure().item()
        for _ in range(5):
            opt.step(closure)
        assert closure().item() < first


@pytest.mark.parametrize(("name", "desc", "kwargs"), _cases())
def test_can_be_printed(name, desc, kwargs):
    """``repr`` as torch's: the class name, then each group's settings."""
    opt = _ours(name)([torch.nn.Parameter(torch.randn(2, 3)) for _ in range(2)], **_kwargs(kwargs))
    text = repr(opt)
    assert text.startswith(f"{name} (") and "Parameter Group 0" in text and "lr:" in text
