"""gradfast.torch against torch.optim: each class beside its torch counterpart on a small
``nn.Module`` (float32, float64, bfloat16), with two param groups and an lr scheduler; state
dicts passing both ways; torch's behaviours (closure, ``grad=None``, hooks, tensor ``lr``,
``add_param_group``); bad tensors refused, changing nothing.

torch runs its single-tensor path (``foreach=False``), the one gradfast's references are
proven against. Its vectorized CPU code fuses some multiply-adds, so the two agree to a few
units in the last place per step (float32 and float64 are compared to a tolerance that grows
with the steps); on bfloat16 parameters torch rounds every intermediate to bfloat16 where
gradfast rounds once, so they agree to a few bfloat16 units.
"""

from __future__ import annotations

import copy
import functools
import inspect
import io

import gradfast as gf
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradfast.torch as gft  # noqa: E402

STEPS = 6
DTYPES = [torch.float32, torch.float64, torch.bfloat16]
#: (gradfast.torch class, torch's, constructor kwargs, group 2's own settings)
PAIRS = [
    ("Adam", {"lr": 1e-2}, {"weight_decay": 0.1}),
    ("Adam", {"lr": 1e-2, "amsgrad": True, "maximize": True}, {"betas": (0.8, 0.99)}),
    ("Adam", {"lr": 1e-2, "decoupled_weight_decay": True, "weight_decay": 0.1}, {"eps": 1e-6}),
    ("AdamW", {"lr": 1e-2}, {"weight_decay": 0.0}),
    ("SGD", {"lr": 0.1}, {"weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}, {"dampening": 0.3}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "maximize": True}, {"weight_decay": 0.05}),
    ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.1}, {"lr_decay": 0.01, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 1e-2}, {"momentum": 0.9}),
    ("RMSprop", {"lr": 1e-2, "centered": True, "momentum": 0.5}, {"alpha": 0.9, "weight_decay": 0.1}),
    ("Adamax", {"lr": 1e-2}, {"weight_decay": 0.1}),
    ("NAdam", {"lr": 1e-2}, {"momentum_decay": 8e-3}),
    ("NAdam", {"lr": 1e-2, "decoupled_weight_decay": True, "weight_decay": 0.1}, {"betas": (0.8, 0.99)}),
    ("RAdam", {"lr": 1e-2}, {"weight_decay": 0.1}),
    ("RAdam", {"lr": 1e-2, "decoupled_weight_decay": True, "weight_decay": 0.1}, {}),
]


def model(dtype, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).to(dtype)


def groups(m, group2):
    first, second = m[0], m[2]
    return [{"params": list(first.parameters())}, {"params": list(second.parameters()), **group2}]


def batches(dtype, n=STEPS, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 5, generator=g).to(dtype), torch.randn(16, 3, generator=g).to(dtype)) for _ in range(n)]


def train(m, opt, data, sched=None):
    for x, y in data:
        opt.zero_grad()
        torch.nn.functional.mse_loss(m(x), y).backward()
        opt.step()
        if sched is not None:
            sched.step()


def tolerance(dtype, steps=STEPS):
    """Absolute agreement of parameters of magnitude about 1 after ``steps`` steps."""
    if dtype == torch.bfloat16:
        return 4 * 2.0**-8 * steps
    return (8 * steps * float(np.finfo(np.float32).eps)) if dtype == torch.float32 else 1e-12 * steps


def assert_models_close(a, b, dtype, steps=STEPS):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert p.dtype == q.dtype == dtype
        torch.testing.assert_close(
            p.detach().double(), q.detach().double(), atol=tolerance(dtype, steps), rtol=0, msg=name
        )


def side_by_side(name, kwargs, group2, dtype, scheduler=True):
    """Train a copy of one model with torch.optim.<name> and one with gradfast.torch.<name>."""
    ref, ours = model(dtype), model(dtype)
    t_opt = getattr(torch.optim, name)(groups(ref, group2), foreach=False, **kwargs)
    g_opt = getattr(gft, name)(groups(ours, group2), **kwargs)
    data = batches(dtype)
    scheds = [torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5) if scheduler else None for o in (t_opt, g_opt)]
    # torch keeps 0-d state (NAdam's mu_product) in its default dtype
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == torch.float64 else torch.float32)
    try:
        train(ref, t_opt, data, scheds[0])
    finally:
        torch.set_default_dtype(default)
    train(ours, g_opt, data, scheds[1])
    return ref, ours, t_opt, g_opt


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("momenta", [(0.0, 0.9, 0.0, 0.5), (0.9, 0.0, 0.9)], ids=["raised", "dropped"])
def test_sgd_momentum_changed_between_steps_as_torch(momenta, dtype):
    # torch makes a momentum buffer at the first step with momentum > 0 and keeps it while
    # momentum is 0; each setting runs for STEPS // len(momenta) steps
    ref, ours = model(dtype), model(dtype)
    t_opt = torch.optim.SGD(ref.parameters(), lr=0.05, foreach=False)
    g_opt = gft.SGD(ours.parameters(), lr=0.05)
    data = batches(dtype)
    phase = len(data) // len(momenta)
    for k, momentum in enumerate(momenta):
        for opt, m in ((t_opt, ref), (g_opt, ours)):
            opt.param_groups[0]["momentum"] = momentum
            train(m, opt, data[k * phase : (k + 1) * phase])
        for p, q in zip(ref.parameters(), ours.parameters()):  # .get: state is a defaultdict
            assert set(t_opt.state.get(p, {})) == set(g_opt.state.get(q, {})), (k, momentum)
    assert_models_close(ref, ours, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("name", "kwargs", "group2"), PAIRS)
def test_steps_as_torch(name, kwargs, group2, dtype):
    ref, ours, t_opt, g_opt = side_by_side(name, kwargs, group2, dtype)
    assert_models_close(ref, ours, dtype)
    assert [g["lr"] for g in g_opt.param_groups] == [g["lr"] for g in t_opt.param_groups]
    for p, q in zip(ref.parameters(), ours.parameters()):
        ts, gs = t_opt.state[p], g_opt.state[q]
        assert set(ts) == set(gs), name
        for k in ts:
            assert gs[k].dtype == ts[k].dtype or k in ("step", "mu_product"), (k, gs[k].dtype, ts[k].dtype)
        if "step" in ts:
            assert float(gs["step"]) == float(ts["step"]) == STEPS


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_lion_steps_as_lion_pytorch(dtype):
    lion_pytorch = pytest.importorskip("lion_pytorch")
    ref, ours = model(dtype), model(dtype)
    t_opt = lion_pytorch.Lion(groups(ref, {"weight_decay": 0.1}), lr=1e-3)
    g_opt = gft.Lion(groups(ours, {"weight_decay": 0.1}), lr=1e-3)
    data = batches(dtype)
    train(ref, t_opt, data, torch.optim.lr_scheduler.StepLR(t_opt, 2, 0.5))
    train(ours, g_opt, data, torch.optim.lr_scheduler.StepLR(g_opt, 2, 0.5))
    assert_models_close(ref, ours, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(
    ("name", "gf_kwargs", "torch_kwargs"),
    [
        ("LAMB", {"learning_rate": 1e-2, "beta1": 0.8, "weight_decay": 0.1}, {"lr": 1e-2, "betas": (0.8, 0.999)}),
        ("LARS", {"learning_rate": 0.1, "trust_coefficient": 0.01}, {"lr": 0.1, "trust_coefficient": 0.01}),
    ],
)
def test_layerwise_optimizers_step_as_gradfast(name, gf_kwargs, torch_kwargs, dtype):
    """LAMB and LARS (no torch peer): one gradfast.torch group each steps as gradfast's NumPy
    optimizer over the same arrays, bitwise."""
    m = model(dtype)
    arrays = {n: p.detach().numpy().copy() for n, p in m.named_parameters()}
    g_opt = getattr(gft, name)(m.parameters(), **{**torch_kwargs, "weight_decay": gf_kwargs.get("weight_decay", 1e-4)})
    np_opt = getattr(gf, name)(**{**gf_kwargs, "weight_decay": gf_kwargs.get("weight_decay", 1e-4)})
    for x, y in batches(dtype):
        g_opt.zero_grad()
        torch.nn.functional.mse_loss(m(x), y).backward()
        grads = {n: p.grad.numpy().copy() for n, p in m.named_parameters()}
        g_opt.step()
        np_opt.update(arrays, grads)
    for n, p in m.named_parameters():
        np.testing.assert_array_equal(p.detach().numpy(), arrays[n], err_msg=n)


#: Adafactor's settings (float32 and float64: gradfast's Adafactor has no bfloat16)
ADAFACTOR = [
    ({"lr": 1e-2}, {"weight_decay": 0.1}),
    ({"lr": 5e-2, "maximize": True, "eps": (1e-30, 1e-2)}, {"d": 2.0, "beta2_decay": -0.5}),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(("kwargs", "group2"), ADAFACTOR)
def test_adafactor_steps_as_torch(kwargs, group2, dtype):
    ref, ours, t_opt, g_opt = side_by_side("Adafactor", kwargs, group2, dtype)
    assert_models_close(ref, ours, dtype)
    for p, q in zip(ref.parameters(), ours.parameters()):
        ts, gs = t_opt.state[p], g_opt.state[q]
        assert set(ts) == set(gs) == ({"step", "row_var", "col_var"} if p.ndim == 2 else {"step", "variance"})
        for k in set(ts) - {"step"}:  # torch's step is in its default dtype
            assert gs[k].shape == ts[k].shape and gs[k].dtype == ts[k].dtype, k
            torch.testing.assert_close(gs[k], ts[k], atol=tolerance(dtype), rtol=tolerance(dtype), msg=k)
        assert float(gs["step"]) == float(ts["step"]) == STEPS


def test_adafactor_factors_the_last_two_dims_as_torch():
    """A 3-D parameter (factored over its last two dims), a scalar, a vector and a 1-row matrix."""
    shapes = [(2, 3, 4), (), (5,), (1, 6)]
    runs = []
    for cls, extra in ((torch.optim.Adafactor, {"foreach": False}), (gft.Adafactor, {})):
        torch.manual_seed(0)
        ps = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
        opt = cls(ps, lr=0.05, weight_decay=0.1, **extra)
        g = torch.Generator().manual_seed(1)
        for _ in range(STEPS):
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g)
            opt.step()
        runs.append((ps, opt))
    (t_ps, t_opt), (g_ps, g_opt) = runs
    for p, q in zip(t_ps, g_ps):
        torch.testing.assert_close(q.detach(), p.detach(), atol=tolerance(torch.float32), rtol=0)
        assert {k: v.shape for k, v in g_opt.state[q].items()} == {k: v.shape for k, v in t_opt.state[p].items()}
    assert g_opt.state[g_ps[0]]["row_var"].shape == (2, 3, 1) and g_opt.state[g_ps[0]]["col_var"].shape == (2, 1, 4)


def muon_model(dtype, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(5, 8, bias=False), torch.nn.Tanh(), torch.nn.Linear(8, 3, bias=False)
    ).to(dtype)


def exact_newton_schulz(grad, ns_coefficients, ns_steps, eps, dtype=torch.float64):
    """torch's orthogonalisation in ``dtype``, float64 by default (torch's runs in bfloat16)."""
    a, b, c = ns_coefficients
    x = grad.to(dtype)
    tall = grad.size(0) > grad.size(1)
    x = x.T if tall else x
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(grad.dtype)


MUON = [
    ({"lr": 0.02}, {"weight_decay": 0.0}),
    ({"lr": 0.05, "nesterov": False, "adjust_lr_fn": "match_rms_adamw"}, {"momentum": 0.5, "ns_steps": 3}),
]


def muon_runs(kwargs, group2, dtype, first, second, monkeypatch):
    """Parameters after 2 * STEPS steps of torch's Muon with the orthogonalisation exact, of
    torch's Muon, and of the run whose first STEPS steps ``first`` takes and whose last ``second``
    takes (the state passing through a saved state dict), each with two groups and a scheduler."""
    data = batches(dtype, 2 * STEPS)
    out = []
    for classes in ("exact", (torch.optim, torch.optim), (first, second)):
        m = muon_model(dtype)
        with monkeypatch.context() as mp:
            if classes == "exact":
                mp.setattr(torch.optim._muon, "_zeropower_via_newtonschulz", exact_newton_schulz)
                classes = (torch.optim, torch.optim)
            saved = None
            for half, cls in enumerate(classes):
                opt = cls.Muon(groups(m, group2), **kwargs)
                sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
                if saved is not None:
                    opt.load_state_dict(saved["opt"])
                    sched.load_state_dict(saved["sched"])
                train(m, opt, data[half * STEPS : (half + 1) * STEPS], sched)
                saved = _roundtrip({"opt": opt.state_dict(), "sched": sched.state_dict()})
        out.append([p.detach().double() for p in m.parameters()])
        for st in saved["opt"]["state"].values():
            assert set(st) == {"momentum_buffer"} and st["momentum_buffer"].dtype == dtype
    return out


def assert_within_torchs_bfloat16_error(exact, theirs, ours):
    """As tests/reference/test_optim_muon_peer.py: gradfast no farther from torch than twice
    torch's own distance from the exact iteration."""
    for e, t, o in zip(exact, theirs, ours):
        torch_err = (t - e).abs().max()
        assert torch_err > 0  # bfloat16 leaves an error to compare with
        assert (o - t).abs().max() <= 2 * torch_err


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(("kwargs", "group2"), MUON)
def test_muon_steps_as_torch_within_its_bfloat16_error(kwargs, group2, dtype, monkeypatch):
    assert_within_torchs_bfloat16_error(*muon_runs(kwargs, group2, dtype, gft, gft, monkeypatch))


@pytest.mark.parametrize("first", ["torch", "gradfast"])
def test_muon_state_dict_passes_between_torch_and_gradfast(first, monkeypatch):
    pair = (torch.optim, gft) if first == "torch" else (gft, torch.optim)
    assert_within_torchs_bfloat16_error(*muon_runs(*MUON[0], torch.float32, *pair, monkeypatch))


def test_muon_ns_dtype_float32_steps_as_torchs_iteration_in_float32(monkeypatch):
    # torch's Muon with its iteration run in float32 instead of bfloat16: gradfast's float32
    # iteration is as near to it as float32's rounding of 2 * STEPS steps allows, far nearer
    # than torch's own bfloat16 run
    exact, theirs, _ = muon_runs(*MUON[0], torch.float32, torch.optim, torch.optim, monkeypatch)
    with monkeypatch.context() as mp:
        f32 = functools.partial(exact_newton_schulz, dtype=torch.float32)
        mp.setattr(torch.optim._muon, "_zeropower_via_newtonschulz", f32)
        want = muon_runs(*MUON[0], torch.float32, torch.optim, torch.optim, monkeypatch)[1]
    ours = muon_model(torch.float32)
    opt = gft.Muon(groups(ours, MUON[0][1]), **MUON[0][0], ns_dtype="float32")
    train(ours, opt, batches(torch.float32, 2 * STEPS), torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5))
    for e, t, w, o in zip(exact, theirs, want, ours.parameters()):
        assert (o.detach().double() - w).abs().max() <= 1e-5 < (t - e).abs().max()
    assert [g["ns_dtype"] for g in opt.state_dict()["param_groups"]] == ["float32", "float32"]


def test_muon_ns_dtype_is_kept_by_groups_and_state_dicts():
    w, v = torch.nn.Parameter(torch.ones(3, 2)), torch.nn.Parameter(torch.ones(2, 2))
    opt = gft.Muon([{"params": [w]}, {"params": [v], "ns_dtype": "bfloat16"}], ns_dtype="float32")
    assert [g["ns_dtype"] for g in opt.param_groups] == ["float32", "bfloat16"]
    opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(2, 3))]})
    assert opt.param_groups[2]["ns_dtype"] == "float32"
    # a state dict of torch's Muon has no ns_dtype: its groups take the constructor's
    torch_opt = torch.optim.Muon([w, v])
    opt = gft.Muon([w, v], ns_dtype="float32")
    opt.load_state_dict(torch_opt.state_dict())
    assert opt.param_groups[0]["ns_dtype"] == "float32"
    assert "ns_dtype" in inspect.signature(gft.Muon).parameters


@pytest.mark.parametrize(("value", "error"), [("float16", ValueError), (torch.float32, TypeError)])
def test_muon_refuses_a_bad_ns_dtype_naming_it(value, error):
    w = torch.nn.Parameter(torch.ones(3, 2))
    with pytest.raises(error, match=r"gradfast.torch.Muon: ns_dtype must be one of \('bfloat16', 'float32'\)"):
        gft.Muon([w], ns_dtype=value)
    w.grad = torch.ones(3, 2)
    opt = gft.Muon([{"params": [w], "ns_dtype": "float16"}])
    with pytest.raises(ValueError, match="ns_dtype must be one of"):
        opt.step()
    assert torch.equal(w.detach(), torch.ones(3, 2)) and not opt.state[w]


def test_muon_refuses_arrays_not_2d_before_any_write():
    with pytest.raises(ValueError, match="Muon only supports 2D parameters"):
        gft.Muon([one_param()])
    w = torch.nn.Parameter(torch.ones(3, 2))
    w.grad = torch.ones(3, 2)
    opt = gft.Muon([w], lr=0.1)
    opt.add_param_group({"params": [one_param()]})
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['params'\]\[0\]: the parameter must be 2-D"):
        opt.step()
    assert torch.equal(w.detach(), torch.ones(3, 2)) and not opt.state[w]


def test_adafactor_and_muon_refuse_bfloat16():
    w = torch.nn.Parameter(torch.ones(3, 2))
    for cls in (gft.Adafactor, gft.Muon):
        with pytest.raises(ValueError, match="state_dtype must be None"):
            cls([w], state_dtype="bfloat16")
    p = one_param(dtype=torch.bfloat16)
    opt = gft.Adafactor([p])
    with pytest.raises(TypeError, match="must have dtype float32 or float64, got torch.bfloat16"):
        opt.step()
    assert not opt.state[p]


@pytest.mark.parametrize("name", ["Adafactor", "Muon"])
def test_adafactor_and_muon_refuse_complex_parameters(name):
    p = torch.nn.Parameter(torch.ones(2, 3, dtype=torch.complex64))
    p.grad = torch.ones_like(p)
    opt = getattr(gft, name)([p])
    with pytest.raises(TypeError, match=r"the parameter must have dtype float32 or float64, got torch.complex64"):
        opt.step()
    assert torch.equal(p.detach(), torch.ones(2, 3, dtype=torch.complex64)) and not opt.state[p]


def test_adafactor_state_of_another_shape_is_refused_before_any_write():
    good, w = one_param(), torch.nn.Parameter(torch.ones(3, 2))
    w.grad = torch.ones(3, 2)
    opt = gft.Adafactor([{"params": [good]}, {"params": [w]}])
    opt.step()
    before = good.detach().clone()
    opt.state[w]["variance"] = opt.state[w].pop("row_var")
    with pytest.raises(ValueError, match=r"\['params'\]\[0\]: its state must not have 'variance'"):
        opt.step()
    del opt.state[w]["variance"]
    with pytest.raises(ValueError, match=r"\['params'\]\[0\]: its state must have 'row_var'"):
        opt.step()
    opt.state[w]["row_var"] = torch.zeros(1, 2)
    with pytest.raises(ValueError, match=r"its state 'row_var' must have shape \(3, 1\)"):
        opt.step()
    assert torch.equal(good.detach(), before) and float(opt.state[good]["step"]) == 1


# -- state dicts both ways --------------------------------------------------------------


def _roundtrip(sd):
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("AdamW", {"lr": 1e-2, "amsgrad": True}),
        ("SGD", {"lr": 0.05, "momentum": 0.9}),
        ("NAdam", {"lr": 1e-2}),
        ("Adafactor", {"lr": 5e-2, "weight_decay": 0.1}),
    ],
)
@pytest.mark.parametrize("direction", ["torch->gradfast", "gradfast->torch"])
def test_state_dict_passes_between_torch_and_gradfast(name, kwargs, direction):
    dtype = torch.float32
    data = batches(dtype, 2 * STEPS)
    straight = model(dtype)
    s_opt = getattr(torch.optim, name)(straight.parameters(), foreach=False, **kwargs)
    train(straight, s_opt, data)

    first, second = (torch.optim, gft) if direction == "torch->gradfast" else (gft, torch.optim)
    extra = {"foreach": False} if first is torch.optim else {}
    m = model(dtype)
    a = getattr(first, name)(m.parameters(), **extra, **kwargs)
    train(m, a, data[:STEPS])
    saved = _roundtrip(a.state_dict())
    extra = {"foreach": False} if second is torch.optim else {}
    b = getattr(second, name)(m.parameters(), **extra, **kwargs)
    b.load_state_dict(saved)
    train(m, b, data[STEPS:])
    assert_models_close(straight, m, dtype, 2 * STEPS)


def test_bfloat16_state_saves_and_loads_as_bfloat16():
    m = model(torch.float32)
    opt = gft.Adam(m.parameters(), lr=1e-2, state_dtype="bfloat16")
    train(m, opt, batches(torch.float32, 2))
    saved = _roundtrip(opt.state_dict())
    assert saved["state"][0]["exp_avg"].dtype == torch.bfloat16
    resumed = gft.Adam(m.parameters(), lr=1e-2, state_dtype="bfloat16")
    # a post-hook of the load sees the state as the steps keep it
    seen = []
    resumed.register_load_state_dict_post_hook(lambda o: seen.extend(st["exp_avg"].dtype for st in o.state.values()))
    resumed.load_state_dict(saved)
    assert seen == [torch.bfloat16] * len(list(m.parameters()))
    for p in m.parameters():
        assert resumed.state[p]["exp_avg"].dtype == torch.bfloat16
        torch.testing.assert_close(resumed.state[p]["exp_avg_sq"], opt.state[p]["exp_avg_sq"], atol=0, rtol=0)
    before = [p.detach().clone() for p in m.parameters()]
    train(m, resumed, batches(torch.float32, 1, seed=7))
    assert all(not torch.equal(b, p) for b, p in zip(before, m.parameters()))


def test_bfloat16_state_is_float32_adam_within_bfloat16_rounding():
    ref, ours = model(torch.float32), model(torch.float32)
    data = batches(torch.float32)
    train(ref, torch.optim.Adam(ref.parameters(), lr=1e-2, foreach=False), data)
    train(ours, gft.Adam(ours.parameters(), lr=1e-2, state_dtype="bfloat16"), data)
    for p, q in zip(ref.parameters(), ours.parameters()):
        torch.testing.assert_close(q, p, atol=1e-2 * STEPS * 2.0**-6, rtol=0)


# -- torch's behaviours -------------------------------------------------------------------


def one_param(values=(1.0, -2.0, 3.0), grad=(0.5, 0.5, -1.0), dtype=torch.float32):
    p = torch.nn.Parameter(torch.tensor(values, dtype=dtype))
    p.grad = torch.tensor(grad, dtype=dtype)
    return p


def test_is_a_torch_optimizer_of_torchs_class():
    p = one_param()
    assert isinstance(gft.AdamW([p]), torch.optim.AdamW)
    assert isinstance(gft.LAMB([p]), torch.optim.Optimizer)


def test_the_signature_is_torchs_with_state_dtype():
    names = list(inspect.signature(gft.AdamW).parameters)
    assert names[:6] == ["params", "lr", "betas", "eps", "weight_decay", "amsgrad"]
    assert names[-3:] == ["state_dtype", "rounding", "seed"]
    for name in ("Adam", "AdamW", "SGD", "Adagrad", "RMSprop", "Adamax", "NAdam", "RAdam"):
        cls = getattr(gft, name)
        # rounding= and seed= exactly where gradfast's optimizer of the class takes them
        rounds = "rounding" in inspect.signature(cls._engine).parameters
        tail = ["state_dtype", "rounding", "seed"] if rounds else ["state_dtype"]
        assert list(inspect.signature(cls).parameters)[-len(tail) :] == tail, name
        assert list(inspect.signature(cls).parameters)[: -len(tail)] == list(
            inspect.signature(getattr(torch.optim, name)).parameters
        )
    assert list(inspect.signature(gft.LARS).parameters)[:3] == ["params", "lr", "momentum"]
    muon = list(inspect.signature(gft.Muon).parameters)
    assert muon == [*inspect.signature(torch.optim.Muon).parameters, "ns_dtype"]


def test_closure_loss_is_returned_and_its_gradients_used():
    ref, ours = model(torch.float64), model(torch.float64)
    x, y = batches(torch.float64, 1)[0]
    losses = []
    for m, opt in ((ref, torch.optim.SGD(ref.parameters(), lr=0.1)), (ours, gft.SGD(ours.parameters(), lr=0.1))):

        def closure(m=m, opt=opt):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(m(x), y)
            loss.backward()
            return loss

        losses.append(opt.step(closure))
    assert losses[0].item() == losses[1].item()
    assert_models_close(ref, ours, torch.float64, 1)


def test_parameters_without_gradient_are_skipped():
    p, q = one_param(), one_param()
    q.grad = None
    opt = gft.Adam([p, q], lr=0.1)
    opt.step()
    assert torch.equal(q.detach(), torch.tensor([1.0, -2.0, 3.0])) and len(opt.state[q]) == 0
    assert float(opt.state[p]["step"]) == 1
    q.grad = torch.ones(3)
    opt.step()  # q's first step, p's second: one call per step count
    assert float(opt.state[p]["step"]) == 2 and float(opt.state[q]["step"]) == 1
    t_p, t_q = one_param(), one_param()
    t_q.grad = None
    t = torch.optim.Adam([t_p, t_q], lr=0.1, foreach=False)
    t.step()
    t_q.grad = torch.ones(3)
    t.step()
    torch.testing.assert_close(p, t_p)
    torch.testing.assert_close(q, t_q)


def test_gradients_are_not_modified():
    p = one_param()
    g = p.grad.clone()
    for cls in (gft.Adam, gft.SGD, gft.NAdam, gft.LAMB):
        kwargs = {"momentum": 0.9, "weight_decay": 0.1, "maximize": True} if cls is gft.SGD else {"weight_decay": 0.1}
        cls([p], lr=0.1, **kwargs).step()
        assert torch.equal(p.grad, g)


def test_hooks_fire_once_per_step():
    p = one_param()
    opt = gft.AdamW([p], lr=0.1)
    seen = []
    opt.register_step_pre_hook(lambda o, a, k: seen.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: seen.append("post"))
    opt.step()
    opt.step()
    assert seen == ["pre", "post", "pre", "post"]


def test_global_hooks_and_the_profiler_see_the_step():
    from torch.optim.optimizer import register_optimizer_step_post_hook

    p = one_param()
    opt = gft.SGD([p], lr=0.1)
    seen = []
    handle = register_optimizer_step_post_hook(lambda o, a, k: seen.append(type(o).__name__))
    try:
        opt.step()
    finally:
        handle.remove()
    opt.step()
    assert seen == ["SGD"]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        opt.step()
    assert "Optimizer.step#SGD.step" in {e.key for e in prof.key_averages()}


def test_tensor_lr_and_zero_grad():
    p, q = one_param(), one_param()
    gft.SGD([p], lr=torch.tensor(0.1)).step()
    gft.SGD([q], lr=0.1).step()
    assert torch.equal(p, q)
    opt = gft.SGD([p], lr=0.1)
    opt.zero_grad()
    assert p.grad is None


def test_add_param_group_takes_the_defaults():
    p, q = one_param(), one_param()
    opt = gft.Adam([p], lr=0.1, state_dtype="bfloat16")
    opt.step()
    opt.add_param_group({"params": [q], "lr": 0.01})
    opt.step()
    assert opt.param_groups[1]["state_dtype"] == "bfloat16" and opt.param_groups[1]["betas"] == (0.9, 0.999)
    assert opt.state[q]["exp_avg"].dtype == torch.bfloat16 and float(opt.state[q]["step"]) == 1


def test_changed_tensors_are_seen():
    """The cached views follow a parameter whose data is replaced and a new gradient tensor."""
    p, ref = one_param(), one_param()
    opt, t = gft.SGD([p], lr=0.1, momentum=0.9), torch.optim.SGD([ref], lr=0.1, momentum=0.9)
    for o in (opt, t):
        o.step()
    for x in (p, ref):
        x.data = torch.tensor([4.0, 5.0, 6.0])
        x.grad = torch.tensor([1.0, 1.0, 1.0])
    for o in (opt, t):
        o.step()
    torch.testing.assert_close(p, ref)


# -- refused input: ValueError/TypeError naming the parameter, nothing changed -------------


def _bad_params():
    yield "contiguous", ValueError, torch.nn.Parameter(torch.ones(3, 4).t()), None
    sparse = torch.nn.Parameter(torch.ones(3))
    yield "dense", ValueError, sparse, torch.ones(3).to_sparse()
    yield "CPU", ValueError, torch.nn.Parameter(torch.ones(3, device="meta")), None
    yield "dtype", TypeError, torch.nn.Parameter(torch.ones(3, dtype=torch.float16)), None
    mixed = torch.nn.Parameter(torch.ones(3))
    mixed.grad_dtype = None  # torch refuses a gradient of another dtype unless told
    yield "dtype", TypeError, mixed, torch.ones(3, dtype=torch.float64)


@pytest.mark.parametrize("case", list(range(5)))
def test_bad_tensors_raise_naming_the_parameter_and_change_nothing(case):
    match, exc, bad, grad = list(_bad_params())[case]
    if grad is None:
        grad = torch.ones_like(bad)
    bad.grad = grad
    good = one_param()
    opt = gft.Adam([{"params": [good]}, {"params": [bad]}], lr=0.1)
    with pytest.raises(exc, match=rf"param_groups\[1\]\['params'\]\[0\].*{match}"):
        opt.step()
    assert torch.equal(good.detach(), torch.tensor([1.0, -2.0, 3.0]))
    assert len(opt.state) == 0 or all(len(s) == 0 for s in opt.state.values())


def test_unsupported_switches_and_bad_hyper_parameters():
    p = one_param()
    for kwargs in ({"fused": True}, {"capturable": True}, {"differentiable": True}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            gft.Adam([p], **kwargs)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        gft.AdamW([p], lr=-1.0)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):
        gft.LAMB([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="state_dtype"):
        gft.SGD([p], lr=0.1, state_dtype="float16")


def test_a_deepcopy_steps():
    m = model(torch.float32)
    opt = gft.NAdam(m.parameters(), lr=1e-2)
    train(m, opt, batches(torch.float32, 1))
    twin = copy.deepcopy((m, opt))
    data = batches(torch.float32, 2, seed=3)
    train(m, opt, data)
    train(*twin, data)
    for p, q in zip(m.parameters(), twin[0].parameters()):
        assert torch.equal(p, q)


def test_deepcopy_steps_on_its_own_tensors():
    m = model(torch.float32)
    opt = gft.Adam(m.parameters(), lr=1e-2)
    train(m, opt, batches(torch.float32, 1))
    m2 = copy.deepcopy(m)
    opt2 = gft.Adam(m2.parameters(), lr=1e-2)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    data = batches(torch.float32, 2, seed=3)
    train(m, opt, data)
    train(m2, opt2, data)
    for p, q in zip(m.parameters(), m2.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("new_grads", [False, True])
def test_scheduler_acts_when_the_tensors_stay_the_same(new_grads):
    """A training loop that writes gradients into the same tensors (cached views) or makes new
    ones (zero_grad, backward): a scheduler's lr is the next step's, as in torch."""
    results = []
    for cls, extra in ((torch.optim.Adam, {"foreach": False}), (gft.Adam, {})):
        p = one_param()
        opt = cls([p], lr=0.1, **extra)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
        for k in range(4):
            g = torch.tensor([0.5, -1.0, 2.0]) * (k + 1)
            if new_grads:
                p.grad = g
            else:
                p.grad.copy_(g)
            opt.step()
            sched.step()
        results.append(p.detach().clone())
    torch.testing.assert_close(results[1], results[0])


def test_a_state_tensor_of_the_wrong_shape_is_refused_before_any_write():
    good, bad = one_param(), one_param()
    opt = gft.Adam([{"params": [good]}, {"params": [bad]}], lr=0.1)
    opt.step()
    opt.state[bad]["exp_avg"] = torch.zeros(4)
    before = good.detach().clone(), float(opt.state[good]["step"])
    with pytest.raises(
        ValueError, match=r"param_groups\[1\]\['params'\]\[0\]: its state 'exp_avg' must have shape \(3,\)"
    ):
        opt.step()
    assert torch.equal(good.detach(), before[0]) and float(opt.state[good]["step"]) == before[1]
