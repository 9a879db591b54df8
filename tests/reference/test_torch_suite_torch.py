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
``foreach``, a float ``step``) loading, hooks fired once per step, no step without gradients,
gradients never written, ``deepcopy`` keeping every public attribute.

Out of scope (gradfast.torch is CPU and its own fused step): CUDA, ``foreach``/``fused``,
``capturable``, ``differentiable``, complex and sparse inputs; and TestOptimRenewed's
non-contiguous parameters (``test_forloop_goes_right_direction`` with ``contiguous=False``),
which gradfast.torch refuses with ``ValueError`` as it steps zero-copy views
(test_torch_optimizers_torch.py checks the refusal). Every entry of optim_db left out
is in ``DESELECTED`` (or, for all of an optimizer's stepping inputs, ``NOT_STEPPED``) below,
with the reason.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings

import pytest

torch = pytest.importorskip("torch")

import gradfast.torch as gft  # noqa: E402
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


def _cases(dtype=torch.float32):
    return [pytest.param(n, d, kw, id=f"{n}-{d}") for n in CLASSES for d, kw in _inputs(n, dtype)]


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
