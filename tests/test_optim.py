"""gradfast's Rust optimizers against the NumPy reference, step for step."""

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from conftest import TOL
from hypothesis import given
from hypothesis import strategies as st

SHAPES = st.sampled_from([(), (0,), (1,), (7,), (3, 5), (2, 3, 4), (33,), (1000,)])


@st.composite
def problems(draw):
    """A dict of params and a list of gradient dicts, one per step."""
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    shapes = draw(st.lists(SHAPES, min_size=1, max_size=4))
    steps = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    params = {f"w{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes)}
    grads = [{k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()} for _ in range(steps)]
    return params, grads


def run(opt, params, grads):
    params = {k: p.copy() for k, p in params.items()}
    for g in grads:
        opt.update(params, g)
    return params, opt


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype
        np.testing.assert_allclose(a[k], b[k], **TOL[a[k].dtype])


def assert_runs_agree(make, problem):
    """``make(module)``'s optimizer from gradfast and from the reference, run over ``problem``:
    the same params and state (within ``TOL``); returns both optimizers."""
    params, grads = problem
    p_gf, o_gf = run(make(gf), params, grads)
    p_ref, o_ref = run(make(ref), params, grads)
    assert_same(p_gf, p_ref)
    for k in params:
        assert_same(o_gf.state[k], o_ref.state[k])
    return o_gf, o_ref


ADAM_HYPER = {
    "learning_rate": st.floats(0.0, 0.1),
    "beta1": st.floats(0.0, 0.999),
    "beta2": st.floats(0.0, 0.9999),
    "epsilon": st.floats(1e-10, 1e-3),
    "weight_decay": st.floats(0.0, 0.1),
    "decoupled": st.booleans(),
    "amsgrad": st.booleans(),
}


@given(problems(), st.fixed_dictionaries(ADAM_HYPER))
def test_adam_matches_reference(problem, hyper):
    assert_runs_agree(lambda m: m.Adam(**hyper), problem)


@given(problems(), st.floats(0.0, 0.1), st.floats(0.0, 0.2))
def test_adamw_matches_reference(problem, lr, wd):
    params, grads = problem
    assert_same(
        run(gf.AdamW(lr, weight_decay=wd), params, grads)[0],
        run(ref.AdamW(lr, weight_decay=wd), params, grads)[0],
    )


@given(problems(), st.floats(0.0, 0.5), st.floats(0.0, 0.99), st.booleans())
def test_momentum_matches_reference(problem, lr, mu, nesterov):
    params, grads = problem
    p_gf, o_gf = run(gf.MomentumOptimizer(lr, mu, nesterov), params, grads)
    p_ref, o_ref = run(ref.MomentumOptimizer(lr, mu, nesterov), params, grads)
    assert_same(p_gf, p_ref)
    assert_same(o_gf.velocities, o_ref.velocities)


@given(problems(), st.floats(0.0, 0.1))
def test_adam_optimizer_matches_reference(problem, lr):
    params, grads = problem
    for key, p0 in params.items():
        p_gf, p_ref, s_gf, s_ref = p0.copy(), p0.copy(), {}, {}
        for g in grads:
            gf.adam_optimizer(p_gf, g[key], s_gf, lr)
            ref.adam_optimizer(p_ref, g[key], s_ref, lr)
        np.testing.assert_allclose(p_gf, p_ref, **TOL[p0.dtype])
        assert s_gf["t"] == s_ref["t"] == len(grads)
        np.testing.assert_allclose(s_gf["v"], s_ref["v"], **TOL[p0.dtype])


@given(
    problems(),
    st.floats(0.0, 5.0),
    st.sampled_from([2.0, 1.0, 3.0, 0.5, float("inf")]),
)
def test_clip_grad_norm_matches_reference(problem, max_norm, norm_type):
    _, grads = problem
    g_gf = {k: v.copy() for k, v in grads[0].items()}
    g_ref = {k: v.copy() for k, v in grads[0].items()}
    n_gf = gf.clip_grad_norm(g_gf, max_norm, norm_type)
    n_ref = ref.clip_grad_norm(g_ref, max_norm, norm_type)
    assert n_gf == pytest.approx(n_ref, rel=1e-12, abs=1e-300)
    assert_same(g_gf, g_ref)


def test_large_multi_tensor_update_matches_reference():
    """Sizes above the parallel threshold, split across chunks and threads."""
    rng = np.random.default_rng(0)
    params = {"big": rng.standard_normal(300_001).astype(np.float32), "small": np.ones(3, np.float32)}
    grads = [{k: rng.standard_normal(p.shape).astype(np.float32) for k, p in params.items()} for _ in range(3)]
    for cls, kw in [("Adam", {"amsgrad": True, "weight_decay": 0.01}), ("MomentumOptimizer", {"nesterov": True})]:
        assert_same(run(getattr(gf, cls)(**kw), params, grads)[0], run(getattr(ref, cls)(**kw), params, grads)[0])


def test_zero_learning_rate_leaves_params_unchanged(impl):
    rng = np.random.default_rng(1)
    params = {"a": rng.standard_normal((4, 3)), "b": rng.standard_normal(5)}
    before = {k: v.copy() for k, v in params.items()}
    grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    for opt in (impl.Adam(0.0), impl.AdamW(0.0, weight_decay=0.5), impl.MomentumOptimizer(0.0, nesterov=True)):
        opt.update(params, grads)
        opt.update(params, grads)
        for k in params:
            np.testing.assert_array_equal(params[k], before[k])


def test_nan_and_inf_gradients_propagate_like_the_reference():
    g = {"w": np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)}
    for cls in ("Adam", "MomentumOptimizer"):
        p_gf = {"w": np.ones(4, np.float32)}
        p_ref = {"w": np.ones(4, np.float32)}
        getattr(gf, cls)().update(p_gf, g)
        getattr(ref, cls)().update(p_ref, g)
        np.testing.assert_array_equal(p_gf["w"], p_ref["w"])
        assert np.isnan(p_gf["w"][0]) and np.isfinite(p_gf["w"][3])


def test_updates_are_in_place_on_the_callers_arrays():
    p = np.zeros(10, np.float32)
    params = {"w": p}
    out = gf.Adam(0.1).update(params, {"w": np.ones(10, np.float32)})
    assert out is params and out["w"] is p and np.all(p < 0)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "MomentumOptimizer"])
def test_resumed_run_is_bitwise_identical(impl, name):
    rng = np.random.default_rng(2)
    params = {"a": rng.standard_normal((6, 5)).astype(np.float32), "b": rng.standard_normal(4).astype(np.float32)}
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()} for _ in range(6)]
    kw = {"amsgrad": True} if name == "Adam" else {}
    straight = getattr(impl, name)(learning_rate=0.01, **kw)
    p1 = {k: v.copy() for k, v in params.items()}
    for g in grads:
        straight.update(p1, g)

    first = getattr(impl, name)(learning_rate=0.01, **kw)
    p2 = {k: v.copy() for k, v in params.items()}
    for g in grads[:3]:
        first.update(p2, g)
    saved = first.state_dict()
    for g in grads[3:]:  # the saved dict is a copy: later steps do not change it
        first.update({k: v.copy() for k, v in p2.items()}, g)
    resumed = getattr(impl, name)(learning_rate=0.5, **kw)
    resumed.load_state_dict(saved)
    assert resumed.learning_rate == 0.01
    for g in grads[3:]:
        resumed.update(p2, g)
    for k in params:
        np.testing.assert_array_equal(p1[k], p2[k])


def test_state_dict_holds_plain_arrays_and_numbers():
    opt = gf.Adam(amsgrad=True)
    opt.update({"w": np.ones(3)}, {"w": np.ones(3)})
    d = opt.state_dict()
    assert d["step"] == 1 and isinstance(d["hyperparams"]["learning_rate"], float)
    assert set(d["state"]["w"]) == {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert all(type(a) is np.ndarray for a in d["state"]["w"].values())


def test_learning_rate_is_settable_and_takes_effect():
    p_a, p_b = {"w": np.zeros(3)}, {"w": np.zeros(3)}
    g = {"w": np.ones(3)}
    a, b = gf.MomentumOptimizer(0.1, 0.0), gf.MomentumOptimizer(0.1, 0.0)
    a.update(p_a, g)
    b.update(p_b, g)
    b.learning_rate = 0.2
    a.update(p_a, g)
    b.update(p_b, g)
    np.testing.assert_allclose(p_a["w"], -0.2)
    np.testing.assert_allclose(p_b["w"], -0.3)


@pytest.mark.parametrize("name", ["Adam", "MomentumOptimizer"])
def test_loaded_hyperparameters_replace_those_of_a_used_optimizer(impl, name):
    g = {"w": np.ones(3)}
    source = getattr(impl, name)(learning_rate=0.05)
    source.update({"w": np.zeros(3)}, g)
    used = getattr(impl, name)(learning_rate=0.5)
    used.update({"w": np.zeros(3)}, g)  # caches its own hyper-parameters
    used.load_state_dict(source.state_dict())
    p_used, p_source = {"w": np.zeros(3)}, {"w": np.zeros(3)}
    used.update(p_used, g)
    source.update(p_source, g)
    np.testing.assert_array_equal(p_used["w"], p_source["w"])


def test_gradients_of_any_layout_are_read_in_logical_order():
    """Read-only gradients need not be C-contiguous: strided and Fortran-order ones are copied once."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal((6, 8))
    grads = {"strided": base[::2, ::3], "fortran": np.asfortranarray(base[:4, :5]), "reversed": base[0, ::-1]}
    p_gf = {k: np.zeros(g.shape) for k, g in grads.items()}
    p_ref = {k: np.zeros(g.shape) for k, g in grads.items()}
    gf.Adam(0.1).update(p_gf, grads)
    ref.Adam(0.1).update(p_ref, grads)
    assert_same(p_gf, p_ref)
