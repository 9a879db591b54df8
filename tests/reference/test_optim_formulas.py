"""Proofs for the reference Adam/AdamW, adam_optimizer, MomentumOptimizer and clip_grad_norm.

Expected values come from the papers' formulas written out here in float64 (Kingma and Ba's
m_hat / (sqrt(v_hat) + eps)), from hand-worked numbers, and from np.linalg.norm.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import TOL, assert_bad_hyper_rejected
from gradfast.reference import Adam, AdamW, MomentumOptimizer, adam_optimizer, clip_grad_norm
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = [np.float32, np.float64]
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)


def rand(rng, shape, dtype, scale=1.0):
    return np.asarray(rng.standard_normal(shape) * scale).astype(dtype)


def paper_adam(p, grads, lr, b1, b2, eps, wd=0.0, decoupled=False, amsgrad=False):
    """Adam from the paper in float64, one step per gradient; returns the final p, m, v."""
    p = p.astype(np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vmax = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if decoupled:
            p = p - lr * wd * p
        elif wd:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        vmax = np.maximum(vmax, v)
        m_hat = m / (1 - b1**t)
        v_hat = (vmax if amsgrad else v) / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, m, v


def snapshot(*dicts):
    return [{k: np.array(a, copy=True) for k, a in d.items()} for d in dicts]


def assert_same(before, *dicts):
    for snap, d in zip(before, dicts):
        assert snap.keys() == d.keys()
        for k in snap:
            np.testing.assert_array_equal(d[k], snap[k])


def _readonly(a):
    a.flags.writeable = False
    return a


def _aliased_pair():
    buf = np.ones(6)
    return {"a": buf[:4], "b": buf[2:]}


# -- Adam against the paper ---------------------------------------------------------------


@given(
    dtype=st.sampled_from(DTYPES),
    shape=shapes,
    steps=st.integers(1, 5),
    lr=st.floats(1e-4, 1e-1),
    b1=st.floats(0.0, 0.99),
    b2=st.floats(0.5, 0.9999),
    eps=st.floats(1e-8, 1e-3),
    wd=st.sampled_from([0.0, 1e-2, 0.3]),
    decoupled=st.booleans(),
    amsgrad=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_adam_matches_paper_formulas(dtype, shape, steps, lr, b1, b2, eps, wd, decoupled, amsgrad, seed):
    rng = np.random.default_rng(seed)
    p0 = rand(rng, shape, dtype)
    grads = [rand(rng, shape, dtype) for _ in range(steps)]
    opt = Adam(lr, b1, b2, eps, wd, decoupled=decoupled, amsgrad=amsgrad)
    params = {"w": p0.copy()}
    for g in grads:
        opt.update(params, {"w": g})
    assert opt.step == steps
    want_p, want_m, want_v = paper_adam(p0, grads, lr, b1, b2, eps, wd, decoupled, amsgrad)
    tol = TOL[np.dtype(dtype)]
    assert params["w"].dtype == dtype
    # float32 drifts a little more over several steps than one comparison's tolerance
    scale = steps if dtype == np.float32 else 1
    rtol, atol = tol["rtol"] * scale, tol["atol"]
    np.testing.assert_allclose(params["w"], want_p, rtol=rtol, atol=atol * 10 * scale)
    np.testing.assert_allclose(opt.state["w"]["exp_avg"], want_m, rtol=rtol, atol=atol)
    np.testing.assert_allclose(opt.state["w"]["exp_avg_sq"], want_v, rtol=rtol, atol=atol)


def test_adam_first_step_by_hand():
    # step 1: m_hat = g, v_hat = g^2, so p moves by lr * g / (|g| + eps) = lr * sign(g) (eps = 0)
    params = {"w": np.array([1.0, -2.0, 0.5]), "b": np.array([0.0])}
    grads = {"w": np.array([3.0, -0.25, 0.0]), "b": np.array([-7.0])}
    Adam(learning_rate=0.1, epsilon=0.0).update(params, {k: g.copy() for k, g in grads.items()})
    np.testing.assert_allclose(params["w"][:2], [0.9, -1.9], rtol=1e-15)
    assert np.isnan(params["w"][2])  # 0 / (0 + 0): NaN propagates, no warning raised
    np.testing.assert_allclose(params["b"], [0.1], rtol=1e-15)


def test_amsgrad_keeps_the_largest_second_moment():
    # a big gradient then small ones: AMSGrad's denominator remembers the big one
    opt = Adam(learning_rate=1.0, beta1=0.0, beta2=0.5, epsilon=0.0, amsgrad=True)
    p = {"w": np.array([0.0])}
    opt.update(p, {"w": np.array([4.0])})  # v = 8, v_hat = 16, step = 4 / 4 = 1
    np.testing.assert_allclose(p["w"], [-1.0], rtol=1e-15)
    opt.update(p, {"w": np.array([1.0])})  # v = 4.5 < vmax = 8, v_hat = 8 / 0.75
    np.testing.assert_allclose(opt.state["w"]["max_exp_avg_sq"], [8.0])
    np.testing.assert_allclose(p["w"], [-1.0 - 1.0 / math.sqrt(8.0 / 0.75)], rtol=1e-15)


def test_adamw_is_decoupled_adam():
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(4)]
    a, b = {"w": p0.copy()}, {"w": p0.copy()}
    opt_w = AdamW(learning_rate=0.01)
    assert opt_w.weight_decay == 0.01 and opt_w.decoupled
    for g in grads:
        opt_w.update(a, {"w": g})
    opt = Adam(0.01, weight_decay=0.01, decoupled=True)
    for g in grads:
        opt.update(b, {"w": g})
    np.testing.assert_array_equal(a["w"], b["w"])
    want, _, _ = paper_adam(p0, grads, 0.01, 0.9, 0.999, 1e-8, 0.01, decoupled=True)
    np.testing.assert_allclose(a["w"], want, **TOL[np.dtype(np.float64)])
    # decoupled decay differs from L2 decay folded into the gradient
    coupled, _, _ = paper_adam(p0, grads, 0.01, 0.9, 0.999, 1e-8, 0.01, decoupled=False)
    assert not np.allclose(a["w"], coupled, rtol=1e-9, atol=0)


def test_adamw_decay_alone_shrinks_params():
    # zero gradients: m = v = 0, the Adam step is 0 / eps = 0, only p *= 1 - lr * wd remains
    p = {"w": np.array([2.0, -4.0])}
    AdamW(learning_rate=0.1, weight_decay=0.5).update(p, {"w": np.zeros(2)})
    np.testing.assert_allclose(p["w"], [2.0 * 0.95, -4.0 * 0.95], rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_optimizer_functional_matches_paper_and_class(dtype):
    rng = np.random.default_rng(7)
    p0 = rand(rng, (5, 2), dtype)
    grads = [rand(rng, (5, 2), dtype) for _ in range(4)]
    p, state = p0.copy(), {}
    for t, g in enumerate(grads, start=1):
        out, st_out = adam_optimizer(p, g, state, 0.01, 0.8, 0.99, 1e-7)
        assert out is p and st_out is state and state["t"] == t
    want, want_m, want_v = paper_adam(p0, grads, 0.01, 0.8, 0.99, 1e-7)
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(p, want, rtol=tol["rtol"] * 4, atol=tol["atol"] * 10)
    np.testing.assert_allclose(state["m"], want_m, rtol=tol["rtol"] * 4, atol=tol["atol"])
    # the class runs the same arithmetic: bitwise equal
    q = {"w": p0.copy()}
    opt = Adam(0.01, 0.8, 0.99, 1e-7)
    for g in grads:
        opt.update(q, {"w": g})
    np.testing.assert_array_equal(q["w"], p)


def test_adam_optimizer_bad_state_changes_nothing():
    p, g = np.ones(3), np.full(3, 0.5)
    state = {"m": np.zeros(3), "t": 2}  # 'v' missing
    with pytest.raises(ValueError, match=r"adam_optimizer: state must have key 'v'"):
        adam_optimizer(p, g, state)
    np.testing.assert_array_equal(p, np.ones(3))
    assert set(state) == {"m", "t"} and state["t"] == 2
    state = {"m": np.zeros(4), "v": np.zeros(4), "t": 1}
    with pytest.raises(ValueError, match=r"state\['m'\] must have shape \(3,\)"):
        adam_optimizer(p, g, state)
    with pytest.raises(ValueError, match=r"params must not share memory with gradients"):
        adam_optimizer(p, p, {})
    with pytest.raises(ValueError, match=r"beta1 must be a finite number in \[0.0, 1.0\)"):
        adam_optimizer(p, g, {}, beta1=1.0)
    with pytest.raises(TypeError, match=r"state must be a dict"):
        adam_optimizer(p, g, [])
    np.testing.assert_array_equal(p, np.ones(3))


# -- momentum by hand ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_classical_momentum_two_steps_by_hand(dtype):
    # v1 = -0.1*1 = -0.1, p1 = 1 - 0.1 = 0.9; v2 = 0.9*(-0.1) - 0.1*2 = -0.29, p2 = 0.61
    opt = MomentumOptimizer(learning_rate=0.1, momentum=0.9)
    p = {"w": np.array([1.0, -3.0], dtype)}
    opt.update(p, {"w": np.array([1.0, 0.0], dtype)})
    np.testing.assert_allclose(p["w"], [0.9, -3.0], rtol=1e-6)
    opt.update(p, {"w": np.array([2.0, -1.0], dtype)})
    # second element: v1 = 0, v2 = 0.1, p2 = -2.9
    np.testing.assert_allclose(p["w"], [0.61, -2.9], rtol=1e-6)
    np.testing.assert_allclose(opt.velocities["w"], [-0.29, 0.1], rtol=1e-6)
    assert opt.velocities["w"] is opt.state["w"]["velocity"]


def test_nesterov_momentum_two_steps_by_hand():
    # the original design's rule: v = mu v - lr g; p += mu v - lr g
    # step 1: v1 = -0.1, p1 = 1 + 0.9*(-0.1) - 0.1 = 0.81
    # step 2: v2 = 0.9*(-0.1) - 0.2 = -0.29, p2 = 0.81 + 0.9*(-0.29) - 0.2 = 0.349
    opt = MomentumOptimizer(learning_rate=0.1, momentum=0.9, nesterov=True)
    p = {"w": np.array([1.0])}
    opt.update(p, {"w": np.array([1.0])})
    np.testing.assert_allclose(p["w"], [0.81], rtol=1e-14)
    opt.update(p, {"w": np.array([2.0])})
    np.testing.assert_allclose(p["w"], [0.349], rtol=1e-14)


# -- clip_grad_norm against np.linalg.norm --------------------------------------------------


@pytest.mark.parametrize("norm_type", [2.0, math.inf, 1.0, 3.0])
@given(
    dtype=st.sampled_from(DTYPES),
    shapes_=st.lists(shapes, min_size=1, max_size=4),
    max_norm=st.floats(1e-3, 10.0),
    scale=st.sampled_from([1e-2, 1.0, 10.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_clip_grad_norm_matches_linalg_norm(norm_type, dtype, shapes_, max_norm, scale, seed):
    rng = np.random.default_rng(seed)
    grads = {f"g{i}": rand(rng, s, dtype, scale) for i, s in enumerate(shapes_)}
    before = {k: g.astype(np.float64) for k, g in grads.items()}
    flat = np.concatenate([g.ravel() for g in before.values()])
    want = float(np.linalg.norm(flat, ord=norm_type)) if flat.size else 0.0
    total = clip_grad_norm(grads, max_norm, norm_type)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, want, rtol=1e-12)
    coef = min(1.0, max_norm / (want + 1e-6))
    for k, g in grads.items():
        assert g.dtype == dtype
        np.testing.assert_allclose(g, before[k] * coef, **TOL[np.dtype(dtype)])
    if coef == 1.0:
        for k, g in grads.items():
            np.testing.assert_array_equal(g, before[k].astype(dtype))


def test_clip_grad_norm_by_hand():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert clip_grad_norm(grads, 1.0) == 5.0
    np.testing.assert_allclose(grads["a"], [3.0 / (5.0 + 1e-6), 0.0], rtol=1e-15)
    np.testing.assert_allclose(grads["b"], [[4.0 / (5.0 + 1e-6)]], rtol=1e-15)
    assert clip_grad_norm({}, 1.0) == 0.0


def test_clip_grad_norm_nonfinite():
    grads = {"a": np.array([1.0, np.nan])}
    with pytest.raises(ValueError, match=r"clip_grad_norm: gradients must have a finite total norm"):
        clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(grads["a"], [1.0, np.nan])
    assert math.isnan(clip_grad_norm(grads, 1.0))  # propagates without a warning
    assert np.isnan(grads["a"]).all()


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: {"a": np.ones(3, np.int64)}, TypeError, r"gradients\['a'\] must have dtype float32 or"),
        (lambda: {"a": np.ones(3, np.float16)}, TypeError, r"dtype float32 or float64, got float16"),
        (
            lambda: {"a": np.ones(3), "b": np.ones(3, np.float32)},
            TypeError,
            r"gradients\['b'\] must have dtype float64 like the others",
        ),
        (lambda: {"a": np.ones((3, 4))[:, ::2]}, ValueError, r"gradients\['a'\] must be C-contiguous"),
        (lambda: {"a": np.asfortranarray(np.ones((3, 4)))}, ValueError, r"must be C-contiguous"),
        (lambda: {"a": _readonly(np.ones(3))}, ValueError, r"gradients\['a'\] must be writeable"),
        (_aliased_pair, ValueError, r"gradients\['b'\] must not share memory with gradients\['a'\]"),
        (lambda: [np.ones(3)], TypeError, r"gradients must be a dict of numpy arrays"),
        (lambda: {"a": [1.0, 2.0]}, TypeError, r"gradients\['a'\] must be a numpy.ndarray, got list"),
    ],
)
def test_clip_grad_norm_bad_input_changes_nothing(make, exc, match):
    grads = make()
    arrays = isinstance(grads, dict) and all(isinstance(g, np.ndarray) for g in grads.values())
    before = snapshot(grads) if arrays else None
    with pytest.raises(exc, match=match):
        clip_grad_norm(grads, 0.1)
    if arrays:
        assert_same(before, grads)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"max_norm": -1.0}, ValueError, r"max_norm must be a finite number in \[0.0, inf\]"),
        ({"max_norm": math.nan}, ValueError, r"max_norm must be a finite number"),
        ({"max_norm": "1"}, TypeError, r"max_norm must be a real number, got str"),
        ({"max_norm": 1.0, "norm_type": 0.0}, ValueError, r"norm_type must be a finite number in \(0.0, inf"),
        ({"max_norm": 1.0, "norm_type": -2.0}, ValueError, r"norm_type must be a finite number"),
        ({"max_norm": 1.0, "norm_type": "2"}, TypeError, r"norm_type must be a real number, got str"),
    ],
)
def test_clip_grad_norm_bad_hyperparameters(kwargs, exc, match):
    grads = {"a": np.full(3, 10.0)}
    with pytest.raises(exc, match=match):
        clip_grad_norm(grads, **kwargs)
    np.testing.assert_array_equal(grads["a"], np.full(3, 10.0))


# -- saving and resuming --------------------------------------------------------------------


OPTIMIZERS = [
    lambda: Adam(0.01, 0.8, 0.95, 1e-6, 0.1),
    lambda: Adam(0.01, amsgrad=True, weight_decay=0.05, decoupled=True),
    lambda: AdamW(0.02, amsgrad=True),
    lambda: MomentumOptimizer(0.05, 0.8),
    lambda: MomentumOptimizer(0.05, 0.8, nesterov=True),
]


def _run(opt, params, grads):
    for g in grads:
        opt.update(params, g)


@pytest.mark.parametrize("make", OPTIMIZERS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_state_dict_round_trip_resumes_bitwise(make, dtype):
    rng = np.random.default_rng(3)
    params = {"w": rand(rng, (4, 3), dtype), "b": rand(rng, (3,), dtype)}
    grads = [{k: rand(rng, p.shape, dtype) for k, p in params.items()} for _ in range(6)]
    straight = make()
    p_straight = {k: p.copy() for k, p in params.items()}
    _run(straight, p_straight, grads)

    first = make()
    p_resumed = {k: p.copy() for k, p in params.items()}
    _run(first, p_resumed, grads[:3])
    saved = first.state_dict()
    assert isinstance(saved["step"], int) and saved["step"] == 3
    assert all(type(v) in (float, bool) for v in saved["hyperparams"].values())
    for slots in saved["state"].values():
        for a in slots.values():
            a += 1000.0  # the saved arrays are copies: this must not reach ``first``
    _run(first, {k: p.copy() for k, p in p_resumed.items()}, grads[3:])
    for k in straight.state:
        for s in straight.state[k]:
            np.testing.assert_array_equal(first.state[k][s], straight.state[k][s])

    first = make()
    p_resumed = {k: p.copy() for k, p in params.items()}
    _run(first, p_resumed, grads[:3])
    saved = first.state_dict()
    second = make()
    second.load_state_dict(saved)
    for slots in saved["state"].values():
        for a in slots.values():
            a += 1000.0  # and the loaded state is a copy too
    _run(second, p_resumed, grads[3:])
    assert second.step == 6
    for k in params:
        np.testing.assert_array_equal(p_resumed[k], p_straight[k])
    for k in straight.state:
        for s in straight.state[k]:
            np.testing.assert_array_equal(second.state[k][s], straight.state[k][s])


def test_load_state_dict_follows_the_saved_amsgrad():
    # a state saved with amsgrad=True carries max_exp_avg_sq, which an optimizer built with
    # amsgrad=False must load (it used to drop the slot and fail on the next step), and back
    rng = np.random.default_rng(5)
    p0 = {"w": rng.standard_normal(4)}
    grads = [{"w": rng.standard_normal(4)} for _ in range(4)]
    for saved_amsgrad in (True, False):
        ref, p_ref = Adam(0.01, amsgrad=saved_amsgrad), {"w": p0["w"].copy()}
        _run(ref, p_ref, grads)
        src, p = Adam(0.01, amsgrad=saved_amsgrad), {"w": p0["w"].copy()}
        _run(src, p, grads[:2])
        dst = Adam(0.01, amsgrad=not saved_amsgrad)
        dst.load_state_dict(src.state_dict())
        assert dst.amsgrad is saved_amsgrad
        _run(dst, p, grads[2:])
        np.testing.assert_array_equal(p["w"], p_ref["w"])


def test_load_state_dict_bad_input_changes_nothing():
    opt = Adam(0.01)
    p = {"w": np.ones(3)}
    opt.update(p, {"w": np.full(3, 0.5)})
    before = opt.state_dict()
    bad = [
        ({"step": 1}, ValueError, r"Adam.load_state_dict: d must be a dict with keys"),
        ({**before, "step": -1}, ValueError, r"d\['step'\] must be an int in \[0, "),
        ({**before, "step": 1.0}, TypeError, r"d\['step'\] must be an int"),
        ({**before, "hyperparams": {"beta1": 1.5}}, ValueError, r"Adam: beta1 must be a finite number"),
        ({**before, "hyperparams": {"learning_rate": -1}}, ValueError, r"learning_rate must be a finite"),
        (
            {**before, "state": {"w": {"exp_avg": np.zeros(3)}}},
            ValueError,
            r"d\['state'\]\['w'\] must have slot 'exp_avg_sq'",
        ),
        (
            {**before, "state": {"w": {"exp_avg": np.zeros(3), "exp_avg_sq": np.zeros(3, np.int32)}}},
            TypeError,
            r"d\['state'\]\['w'\]\['exp_avg_sq'\] must have dtype float32 or float64",
        ),
        (
            {**before, "state": {"w": {"exp_avg": np.zeros(3), "exp_avg_sq": np.zeros(3, np.float32)}}},
            TypeError,
            r"d\['state'\]\['w'\]\['exp_avg_sq'\] must have dtype float64 like the others",
        ),
    ]
    for d, exc, match in bad:
        with pytest.raises(exc, match=match):
            opt.load_state_dict(d)
        now = opt.state_dict()
        assert now["step"] == before["step"] and now["hyperparams"] == before["hyperparams"]
        np.testing.assert_array_equal(now["state"]["w"]["exp_avg"], before["state"]["w"]["exp_avg"])


# -- lr = 0 and settable hyper-parameters ---------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Adam(0.0, weight_decay=0.1),
        lambda: AdamW(0.0),
        lambda: Adam(0.0, amsgrad=True),
        lambda: MomentumOptimizer(0.0),
        lambda: MomentumOptimizer(0.0, nesterov=True),
    ],
)
@given(dtype=st.sampled_from(DTYPES), shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_zero_learning_rate_leaves_params_unchanged(make, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    p = {"w": rand(rng, shape, dtype)}
    before = p["w"].copy()
    opt = make()
    for _ in range(3):
        opt.update(p, {"w": rand(rng, shape, dtype)})
    np.testing.assert_array_equal(p["w"], before)


def test_learning_rate_is_settable_and_checked():
    opt = Adam()
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5 and opt.state_dict()["hyperparams"]["learning_rate"] == 0.5
    with pytest.raises(ValueError, match=r"Adam: learning_rate must be a finite number in \[0.0, inf\]"):
        opt.learning_rate = -0.1
    with pytest.raises(TypeError, match=r"MomentumOptimizer: nesterov must be a bool"):
        MomentumOptimizer(nesterov=1)
    assert opt.learning_rate == 0.5


# -- bad input to update: right error, nothing changed ------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(learning_rate=-1e-3), r"learning_rate must be a finite number in \[0.0, inf\]"),
        (dict(learning_rate=math.inf), r"learning_rate must be a finite number"),
        (dict(beta1=1.0), r"beta1 must be a finite number in \[0.0, 1.0\), got 1.0"),
        (dict(beta1=-0.1), r"beta1 must be a finite number in \[0.0, 1.0\)"),
        (dict(beta2=1.0), r"beta2 must be a finite number in \[0.0, 1.0\)"),
        (dict(epsilon=-1e-8), r"epsilon must be a finite number in \[0.0, inf\]"),
        (dict(weight_decay=-0.1), r"weight_decay must be a finite number in \[0.0, inf\]"),
    ],
)
def test_adam_bad_hyperparameters(kwargs, match):
    assert_bad_hyper_rejected(Adam, kwargs, r"Adam: " + match)


def test_momentum_bad_hyperparameters():
    with pytest.raises(ValueError, match=r"MomentumOptimizer: momentum must be a finite number in \[0.0, 1"):
        MomentumOptimizer(momentum=1.0)
    with pytest.raises(ValueError, match=r"MomentumOptimizer: learning_rate must be a finite number"):
        MomentumOptimizer(learning_rate=-1.0)


def _bad_update_cases():
    f = np.float64
    ok = lambda: np.ones((2, 3))  # noqa: E731
    ro = _readonly(np.ones((2, 3)))
    same = np.ones((2, 3))
    return [
        (
            {"w": np.ones((2, 3), np.int32)},
            {"w": ok()},
            TypeError,
            r"params\['w'\] must have dtype float32(, float64 or bfloat16| or float64), got int32",
        ),
        (
            {"w": ok()},
            {"w": np.ones((2, 3), np.float16)},
            TypeError,
            r"gradients\['w'\] must have dtype float32(, float64 or bfloat16| or float64), got float16",
        ),
        (
            {"w": ok()},
            {"w": np.ones((2, 3), np.float32)},
            TypeError,
            r"gradients\['w'\] must have dtype float64 like the others, got float32",
        ),
        (
            {"w": ok(), "b": np.ones(3, np.float32)},
            {"w": ok(), "b": np.ones(3, np.float32)},
            TypeError,
            r"params\['b'\] must have dtype float64 like the others",
        ),
        ({"w": np.ones((2, 6))[:, ::2]}, {"w": ok()}, ValueError, r"params\['w'\] must be C-contiguous"),
        ({"w": np.asfortranarray(ok())}, {"w": ok()}, ValueError, r"params\['w'\] must be C-contiguous"),
        ({"w": ro}, {"w": ok()}, ValueError, r"params\['w'\] must be writeable, got a read-only array"),
        ({"w": same}, {"w": same}, ValueError, r"params\['w'\] must not share memory with gradients\['w'\]"),
        ({"w": ok()}, {"w": np.ones((3, 2), f)}, ValueError, r"gradients\['w'\] must have shape \(2, 3\)"),
        ({"w": ok()}, {}, ValueError, r"gradients must have key 'w' like params"),
        ({"w": ok()}, {"w": ok(), "x": ok()}, ValueError, r"gradients must have only the keys of params"),
        ([np.ones(3)], {"w": ok()}, TypeError, r"params must be a dict of numpy arrays"),
        ({"w": [1.0]}, {"w": ok()}, TypeError, r"params\['w'\] must be a numpy.ndarray, got list"),
    ]


@pytest.mark.parametrize("make", OPTIMIZERS)
@pytest.mark.parametrize("fresh", [True, False])
def test_update_bad_input_changes_nothing(make, fresh):
    for params, grads, exc, match in _bad_update_cases():
        opt = make()
        if not fresh:
            opt.update({"w": np.zeros((2, 3))}, {"w": np.full((2, 3), 0.5)})
        saved = opt.state_dict()
        before = snapshot(params, grads) if isinstance(params, dict) else None
        with pytest.raises(exc, match=match):
            opt.update(params, grads)
        if before is not None and all(isinstance(a, np.ndarray) for a in params.values()):
            assert_same(before, params, grads)
        now = opt.state_dict()
        assert now["step"] == saved["step"]
        assert now["state"].keys() == saved["state"].keys()
        for k in saved["state"]:
            for s in saved["state"][k]:
                np.testing.assert_array_equal(now["state"][k][s], saved["state"][k][s])


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_update_against_existing_state(make):
    opt = make()
    opt.update({"w": np.zeros((2, 3))}, {"w": np.ones((2, 3))})
    for params, exc, match in [
        ({"w": np.zeros((3, 2))}, ValueError, r"params\['w'\] must have shape \(2, 3\) and dtype float64"),
        ({"w": np.zeros((2, 3), np.float32)}, ValueError, r"dtype float64 as when the optimizer state was"),
        ({"w": np.zeros((2, 3)), "x": np.zeros(1)}, ValueError, r"params must have only the keys of the"),
        ({}, ValueError, r"params must have key 'w' like the optimizer state"),
    ]:
        grads = {k: np.ones_like(p) for k, p in params.items()}
        before = snapshot(params)
        with pytest.raises(exc, match=match):
            opt.update(params, grads)
        assert_same(before, params)
        assert opt.step == 1


def test_fortran_order_gradient_is_read_by_index():
    # gradients are only read, so any layout works and pairs elements by index, not by memory
    g = np.arange(6.0).reshape(2, 3)
    a, b = {"w": np.zeros((2, 3))}, {"w": np.zeros((2, 3))}
    Adam(0.1).update(a, {"w": g})
    Adam(0.1).update(b, {"w": np.asfortranarray(g)})
    np.testing.assert_array_equal(a["w"], b["w"])
    MomentumOptimizer(0.1).update(a, {"w": np.asfortranarray(g)[:, ::-1]})
    np.testing.assert_array_equal(b["w"] - 0.1 * g[:, ::-1], a["w"])
