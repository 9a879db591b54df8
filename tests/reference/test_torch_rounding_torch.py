"""``rounding=`` and ``seed=`` of ``gradfast.torch``'s classes: the same stochastic rounding as
gradfast's own optimizer with the seed, bitwise, resumed bitwise from a ``state_dict``.

Every class whose gradfast optimizer takes ``rounding=`` is tested (found from the
constructors, so classes that gain it are covered as they do).
"""

from __future__ import annotations

import copy
import inspect
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradfast  # noqa: E402
import gradfast.torch as gft  # noqa: E402

ALL = sorted(gft.__all__)
ROUNDING = [n for n in ALL if "rounding" in inspect.signature(getattr(gft, n)).parameters]
PLAIN = [n for n in ALL if n not in ROUNDING]
SEED = 20261207
#: what a class needs beyond its defaults to keep state (torch's SGD has none without momentum)
NEEDS = {"SGD": {"momentum": 0.9}}


def make(name, *args, **kwargs):
    """gradfast.torch's class ``name`` with torch's arguments and what it needs to keep state."""
    return getattr(gft, name)(*args, **NEEDS.get(name, {}), **kwargs)


def test_a_class_takes_rounding_exactly_where_its_gradfast_optimizer_does():
    for name in ALL:
        cls = getattr(gft, name)
        assert (name in ROUNDING) == ("rounding" in inspect.signature(cls._engine).parameters), name
    assert {"Adam", "AdamW", "SGD", "Lion"} <= set(ROUNDING)


def _params(dtype=torch.float32, shapes=((37, 5), (11,))):
    g = torch.Generator().manual_seed(3)
    return [torch.nn.Parameter(torch.randn(s, generator=g).to(dtype)) for s in shapes]


def _grads(params, t):
    g = torch.Generator().manual_seed(100 + t)
    return [torch.randn(p.shape, generator=g).to(p.dtype) for p in params]


def _numpy(t):
    return gft._view(t).copy()


def _engine_like(opt, group=0, **rounding):
    """gradfast's own optimizer with the hyper-parameters of the class's group."""
    cls = type(opt)
    return cls._engine(**cls._hyper(opt.param_groups[group]), state_dtype="bfloat16", **rounding)


def _run_torch(opt, params, steps, start=0):
    for t in range(start, start + steps):
        for p, g in zip(params, _grads(params, t)):
            p.grad = g
        opt.step()


def _run_numpy(engine, arrays, params, steps):
    for t in range(steps):
        grads = {k: _numpy(g) for k, g in zip(arrays, _grads(params, t))}
        engine.update(arrays, grads)
    return engine


def _same_state(opt, params, engine, keys):
    """Whether the class's state of ``params`` is bitwise the engine's of ``keys``."""
    return all(
        np.array_equal(_numpy(opt.state[p][s]).view(np.uint16), a.view(np.uint16))
        for p, k in zip(params, keys)
        for s, a in engine.state[k].items()
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", ROUNDING)
def test_stochastic_rounding_is_gradfasts_with_the_seed_bitwise(name, dtype):
    params = _params(dtype)
    arrays = {k: _numpy(p) for k, p in zip("wb", params)}
    nearest = {k: a.copy() for k, a in arrays.items()}
    opt = make(name, params, lr=1e-3, state_dtype="bfloat16", rounding="stochastic", seed=SEED)
    assert opt.param_groups[0]["rounding"] == "stochastic" and opt.param_groups[0]["seed"] == SEED
    _run_torch(opt, params, 6)
    engine = _run_numpy(_engine_like(opt, rounding="stochastic", seed=SEED), arrays, params, 6)
    for k, p in zip("wb", params):
        np.testing.assert_array_equal(_numpy(p.detach()), arrays[k])
    assert _same_state(opt, params, engine, "wb")
    # and the rounding was stochastic: nearest rounding keeps other state
    assert not _same_state(opt, params, _run_numpy(_engine_like(opt), nearest, params, 6), "wb")


@pytest.mark.parametrize("name", ROUNDING)
def test_group_i_draws_from_seed_plus_i(name):
    w, b = _params()
    twin = torch.nn.Parameter(w.detach().clone())
    opt = make(
        name, [{"params": [w]}, {"params": [twin]}], lr=1e-3, state_dtype="bfloat16", rounding="stochastic", seed=SEED
    )
    arrays = [{"w": _numpy(w)}, {"w": _numpy(twin)}]
    for t in range(6):
        (g,) = _grads([w], t)
        w.grad, twin.grad = g, g.clone()
        opt.step()
    engines = [
        _run_numpy(_engine_like(opt, i, rounding="stochastic", seed=SEED + i), a, [w], 6) for i, a in enumerate(arrays)
    ]
    np.testing.assert_array_equal(_numpy(w.detach()), arrays[0]["w"])
    np.testing.assert_array_equal(_numpy(twin.detach()), arrays[1]["w"])
    assert _same_state(opt, [w], engines[0], "w") and _same_state(opt, [twin], engines[1], "w")
    # the same parameter, gradients and settings in two groups: different draws
    assert not _same_state(opt, [twin], engines[0], "w")


def _saved(opt):
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("name", ROUNDING)
def test_a_resumed_run_continues_bitwise(name):
    params = _params()
    opt = make(name, params, lr=1e-3, state_dtype="bfloat16", rounding="stochastic", seed=SEED)
    _run_torch(opt, params, 3)
    saved = _saved(opt)
    resumed = [torch.nn.Parameter(p.detach().clone()) for p in params]
    # a seed the constructor draws is replaced by the saved one
    opt_r = make(name, resumed, lr=1e-3, state_dtype="bfloat16", rounding="stochastic")
    opt_r.load_state_dict(saved)
    assert opt_r.param_groups[0]["seed"] == SEED
    _run_torch(opt, params, 4, start=3)
    _run_torch(opt_r, resumed, 4, start=3)
    for p, q in zip(params, resumed):
        assert torch.equal(p, q)
    torch.testing.assert_close(opt_r.state_dict()["state"], opt.state_dict()["state"], atol=0, rtol=0)
    assert opt_r.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


@pytest.mark.parametrize("name", ROUNDING)
def test_a_drawn_seed_is_kept_and_saved(name):
    params = _params()
    opt = make(name, params, state_dtype="bfloat16", rounding="stochastic")
    seed = opt.param_groups[0]["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**64
    assert opt.state_dict()["param_groups"][0]["seed"] == seed
    extra = torch.nn.Parameter(torch.zeros(3))
    opt.add_param_group({"params": [extra]})
    assert opt.param_groups[1]["rounding"] == "stochastic" and opt.param_groups[1]["seed"] == seed


@pytest.mark.parametrize("name", ROUNDING)
def test_the_same_for_any_thread_count(name):
    params = _params(shapes=((700, 600),))
    before = gradfast.get_num_threads()
    out = []
    try:
        for threads in (1, 2, 3):
            gradfast.set_num_threads(threads)
            ps = [torch.nn.Parameter(p.detach().clone()) for p in params]
            opt = make(name, ps, lr=1e-3, state_dtype="bfloat16", rounding="stochastic", seed=SEED)
            _run_torch(opt, ps, 2)
            out.append((ps[0].detach(), opt.state_dict()["state"]))
    finally:
        gradfast.set_num_threads(before)
    for params_t, state_t in out[1:]:  # (the tests' threshold for threads is below this size)
        assert torch.equal(out[0][0], params_t)
        torch.testing.assert_close(state_t, out[0][1], atol=0, rtol=0)


BAD = [
    ({"rounding": "stochastic"}, ValueError, r"rounding must be 'nearest' with state_dtype=None"),
    (
        {"state_dtype": "bfloat16", "rounding": "up"},
        ValueError,
        r"rounding must be 'nearest' or 'stochastic', got 'up'",
    ),
    ({"state_dtype": "bfloat16", "rounding": 1}, TypeError, r"rounding must be 'nearest' or 'stochastic', got int"),
    ({"state_dtype": "bfloat16", "rounding": "stochastic", "seed": -1}, ValueError, r"seed must be an int in"),
    ({"state_dtype": "bfloat16", "rounding": "stochastic", "seed": 1.5}, TypeError, r"seed must be an int in"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD)
@pytest.mark.parametrize("name", ROUNDING)
def test_bad_rounding_is_refused_at_construction(name, kwargs, error, match):
    with pytest.raises(error, match=rf"gradfast\.torch\.{name}: {match}"):
        make(name, _params(), **kwargs)


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD)
@pytest.mark.parametrize("name", ROUNDING)
def test_bad_rounding_of_an_added_group_is_refused_and_adds_nothing(name, kwargs, error, match):
    opt = make(name, _params())
    extra = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(error, match=match):
        opt.add_param_group({"params": [extra], **kwargs})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("name", ROUNDING)
def test_bad_rounding_in_a_loaded_state_dict_is_refused_and_loads_nothing(name):
    params = _params()
    opt = make(name, params, lr=1e-3, state_dtype="bfloat16", rounding="stochastic", seed=SEED)
    _run_torch(opt, params, 1)
    before = copy.deepcopy(opt.state_dict())
    bad = copy.deepcopy(before)
    bad["param_groups"][0]["rounding"] = "up"
    with pytest.raises(ValueError, match=r"state_dict\['param_groups'\]\[0\]: rounding must be"):
        opt.load_state_dict(bad)
    torch.testing.assert_close(opt.state_dict()["state"], before["state"], atol=0, rtol=0)
    assert opt.state_dict()["param_groups"] == before["param_groups"]


@pytest.mark.parametrize("name", ROUNDING)
def test_a_group_set_to_bad_rounding_is_refused_at_the_step_which_changes_nothing(name):
    params = _params()
    opt = make(name, params, lr=1e-3, state_dtype="bfloat16", rounding="stochastic", seed=SEED)
    _run_torch(opt, params, 1)
    opt.param_groups[0]["rounding"] = "up"
    before = [p.detach().clone() for p in params], copy.deepcopy(opt.state_dict()["state"])
    with pytest.raises(ValueError, match=r"step: param_groups\[0\]: rounding must be 'nearest' or 'stochastic'"):
        _run_torch(opt, params, 1, start=1)
    assert all(torch.equal(p, q) for p, q in zip(params, before[0]))
    torch.testing.assert_close(opt.state_dict()["state"], before[1], atol=0, rtol=0)


@pytest.mark.parametrize("name", ROUNDING)
def test_a_group_switched_to_nearest_rounds_to_nearest(name):
    params = _params()
    arrays = {k: _numpy(p) for k, p in zip("wb", params)}
    opt = make(name, params, lr=1e-3, state_dtype="bfloat16", rounding="stochastic", seed=SEED)
    opt.param_groups[0]["rounding"] = "nearest"
    _run_torch(opt, params, 4)
    engine = _run_numpy(_engine_like(opt), arrays, params, 4)
    for k, p in zip("wb", params):
        np.testing.assert_array_equal(_numpy(p.detach()), arrays[k])
    assert _same_state(opt, params, engine, "wb")


@pytest.mark.parametrize("name", PLAIN)
def test_classes_without_stochastic_rounding_refuse_the_keywords(name):
    for kw in ({"rounding": "nearest"}, {"seed": 1}):
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            getattr(gft, name)(_params(shapes=((3, 4),)), **kw)


def test_sgd_keeps_a_step_count_only_where_it_rounds_stochastically():
    # torch's SGD state has no count; stochastic rounding needs one so that every step draws anew
    counted, plain = _params(), _params()
    kw = {"lr": 1e-3, "momentum": 0.9, "state_dtype": "bfloat16"}
    opt = gft.SGD(counted, rounding="stochastic", seed=SEED, **kw)
    near = gft.SGD(plain, **kw)
    _run_torch(opt, counted, 3)
    _run_torch(near, plain, 3)
    assert all(set(near.state[p]) == {"momentum_buffer"} for p in plain)
    assert all(set(opt.state[p]) == {"momentum_buffer", "step"} and int(opt.state[p]["step"]) == 3 for p in counted)
    # torch's SGD loads the counted state and steps on, keeping the count as it was
    twin = [torch.nn.Parameter(p.detach().clone()) for p in counted]
    theirs = torch.optim.SGD(twin, lr=1e-3, momentum=0.9)
    theirs.load_state_dict(_saved(opt))
    _run_torch(theirs, twin, 1, start=3)
    assert all(int(theirs.state[p]["step"]) == 3 for p in twin)
    # a buffer made without a count (by torch's SGD) counts from 1 once rounded stochastically
    pure = torch.optim.SGD(plain, lr=1e-3, momentum=0.9)
    _run_torch(pure, plain, 1)
    opt_r = gft.SGD(plain, rounding="stochastic", seed=SEED, **kw)
    opt_r.load_state_dict(pure.state_dict())
    assert opt_r.param_groups[0]["rounding"] == "stochastic"
    _run_torch(opt_r, plain, 2, start=4)
    assert all(int(opt_r.state[p]["step"]) == 3 for p in plain)
