"""Low-precision optimizer state and bfloat16 params: gradfast against the reference, bit for
bit, resuming, refusing what cannot work, and training as well as float32 state."""

import gradfast as gf
import gradfast.reference as ref
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_optim import ADAM_HYPER

BF16 = np.dtype(ml_dtypes.bfloat16)
F32 = np.dtype(np.float32)
SHAPES = st.sampled_from([(), (0,), (1,), (7,), (3, 5), (33,), (1000,)])
#: (params dtype, state_dtype): the operating points other than plain float32 and float64
LAYOUTS = [(F32, "bfloat16"), (BF16, "bfloat16"), (BF16, None)]


@st.composite
def problems(draw):
    """A layout, a dict of params and a list of gradient dicts, one per step."""
    dtype, state_dtype = draw(st.sampled_from(LAYOUTS))
    shapes = draw(st.lists(SHAPES, min_size=1, max_size=3))
    steps = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    params = {f"w{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes)}
    grads = [{k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()} for _ in range(steps)]
    return state_dtype, params, grads


def run(opt, params, grads):
    params = {k: p.copy() for k, p in params.items()}
    for g in grads:
        opt.update(params, g)
    return params, opt


def assert_bitwise(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype
        assert a[k].tobytes() == b[k].tobytes(), k


def assert_runs_agree(make, problem):
    state_dtype, params, grads = problem
    p_gf, o_gf = run(make(gf, state_dtype), params, grads)
    p_ref, o_ref = run(make(ref, state_dtype), params, grads)
    assert_bitwise(p_gf, p_ref)
    expected = BF16 if state_dtype else F32
    for k in params:
        assert all(a.dtype == expected for a in o_gf.state[k].values())
        assert_bitwise(o_gf.state[k], o_ref.state[k])


@given(problems(), st.fixed_dictionaries(ADAM_HYPER))
def test_adam_matches_reference_bitwise(problem, hyper):
    assert_runs_agree(lambda m, sd: m.Adam(**hyper, state_dtype=sd), problem)


@given(problems(), st.floats(0.0, 0.1), st.floats(0.0, 0.2))
def test_adamw_matches_reference_bitwise(problem, lr, wd):
    assert_runs_agree(lambda m, sd: m.AdamW(lr, weight_decay=wd, state_dtype=sd), problem)


@given(problems(), st.floats(0.0, 0.5), st.floats(0.0, 0.99), st.booleans())
def test_momentum_matches_reference_bitwise(problem, lr, mu, nesterov):
    assert_runs_agree(lambda m, sd: m.MomentumOptimizer(lr, mu, nesterov, state_dtype=sd), problem)


def test_large_update_is_bitwise_on_any_thread_count():
    rng = np.random.default_rng(4)
    n = 300_000  # above the parallel threshold
    params = {"w": rng.standard_normal(n).astype(BF16), "b": rng.standard_normal(5).astype(BF16)}
    grads = [{k: rng.standard_normal(p.shape).astype(BF16) for k, p in params.items()} for _ in range(2)]
    threads = gf.get_num_threads()
    try:
        results = []
        for t in (1, 3):
            gf.set_num_threads(t)
            results.append(run(gf.Adam(1e-2, amsgrad=True, state_dtype="bfloat16"), params, grads))
    finally:
        gf.set_num_threads(threads)
    (p1, o1), (p3, o3) = results
    assert_bitwise(p1, p3)
    assert_bitwise(o1.state["w"], o3.state["w"])
    p_ref, _ = run(ref.Adam(1e-2, amsgrad=True, state_dtype="bfloat16"), params, grads)
    assert_bitwise(p1, p_ref)


OPTIMIZERS = {
    "Adam": lambda m, **k: m.Adam(1e-2, amsgrad=True, **k),
    "AdamW": lambda m, **k: m.AdamW(1e-2, **k),
    "Nesterov": lambda m, **k: m.MomentumOptimizer(0.05, 0.9, nesterov=True, **k),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype, state_dtype", LAYOUTS)
def test_resumed_run_is_bitwise_identical(impl, name, dtype, state_dtype):
    make = OPTIMIZERS[name]
    rng = np.random.default_rng(2)
    params = {"a": rng.standard_normal((6, 5)).astype(dtype), "b": rng.standard_normal(4).astype(dtype)}
    grads = [{k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()} for _ in range(6)]
    p1, _ = run(make(impl, state_dtype=state_dtype), params, grads)

    first = make(impl, state_dtype=state_dtype)
    p2, first = run(first, params, grads[:3])
    saved = first.state_dict()
    assert all(a.dtype == (BF16 if state_dtype else F32) for s in saved["state"].values() for a in s.values())
    first.update({k: v.copy() for k, v in p2.items()}, grads[3])  # the saved dict is a copy
    resumed = make(impl, state_dtype=state_dtype)
    resumed.load_state_dict(saved)
    for g in grads[3:]:
        resumed.update(p2, g)
    assert_bitwise(p1, p2)


def state_of(opt):
    return {k: {s: a.copy() for s, a in slots.items()} for k, slots in opt.state.items()}, opt.step


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_of_the_other_precision_is_refused_on_load(impl, name):
    make = OPTIMIZERS[name]
    p, g = {"w": np.ones(4, F32)}, {"w": np.full(4, 0.5, F32)}
    full, low = make(impl), make(impl, state_dtype="bfloat16")
    full.update(p, g)
    low.update(p, g)
    f_saved, l_saved = full.state_dict(), low.state_dict()
    for target, d, match in [
        (
            make(impl, state_dtype="bfloat16"),
            f_saved,
            r"must have dtype bfloat16 \(this optimizer has state_dtype='bfl",
        ),
        (low, f_saved, r"must have dtype bfloat16"),
        (make(impl), l_saved, r"must have dtype float32 or float64 \(this optimizer has state_dtype=None; construct"),
        (full, l_saved, r"state_dtype='bfloat16' to load bfloat16 state\), got bfloat16"),
    ]:
        before = state_of(target)
        with pytest.raises(TypeError, match=match):
            target.load_state_dict(d)
        after = state_of(target)
        assert after[1] == before[1] and after[0].keys() == before[0].keys()
        for k in before[0]:
            assert_bitwise(after[0][k], before[0][k])


def bad_calls():
    f, b = np.float32, BF16
    return [
        # bfloat16 mixed with float32, in params or between params and gradients
        (
            {"w": np.ones(3, f), "v": np.ones(2, b)},
            {"w": np.ones(3, f), "v": np.ones(2, b)},
            r"params\['v'\] must have dtype float32",
        ),
        ({"w": np.ones(3, b)}, {"w": np.ones(3, f)}, r"gradients\['w'\] must have dtype bfloat16"),
        ({"w": np.ones(3, f)}, {"w": np.ones(3, b)}, r"gradients\['w'\] must have dtype float32"),
        (
            {"w": np.ones(3, np.float16)},
            {"w": np.ones(3, np.float16)},
            r"params\['w'\] must have dtype float32, float64 or bfl",
        ),
    ]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("state_dtype", [None, "bfloat16"])
@pytest.mark.parametrize("fresh", [True, False])
def test_mixed_precision_calls_are_refused_and_change_nothing(impl, name, state_dtype, fresh):
    for params, grads, match in bad_calls():
        opt = OPTIMIZERS[name](impl, state_dtype=state_dtype)
        if not fresh:
            opt.update(
                {k: np.zeros(p.shape, F32) for k, p in params.items()},
                {k: np.ones(p.shape, F32) for k in params for p in [params[k]]},
            )
        before, kept = state_of(opt), {k: p.copy() for k, p in params.items()}
        with pytest.raises((TypeError, ValueError), match=match if fresh else None):
            opt.update(params, grads)
        assert state_of(opt)[1] == before[1]
        assert_bitwise(params, kept)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_bfloat16_state_with_float64_params_is_refused(impl, name):
    opt = OPTIMIZERS[name](impl, state_dtype="bfloat16")
    p = {"w": np.ones(3)}
    with pytest.raises(
        TypeError, match=r"params\['w'\] must have dtype float32 or bfloat16 with state_dtype='bfloat16', got float64"
    ):
        opt.update(p, {"w": np.ones(3)})
    assert opt.step == 0 and not opt.state and np.all(p["w"] == 1.0)


@pytest.mark.parametrize("bad", ["float16", "float32", "bf16x", 3, np.float64])
def test_state_dtype_is_none_or_bfloat16(impl, bad):
    for cls in (impl.Adam, impl.AdamW, impl.MomentumOptimizer):
        with pytest.raises(ValueError, match=r"state_dtype must be None, 'bfloat16' or '8bit', got"):
            cls(state_dtype=bad)
    with pytest.raises(ValueError, match=r"state_dtype must be None or 'bfloat16', got"):
        impl.RAdam(state_dtype=bad)
    assert impl.Adam(state_dtype=ml_dtypes.bfloat16).state_dtype == "bfloat16"
    assert impl.MomentumOptimizer().state_dtype is None


def test_a_state_swapped_for_the_wrong_dtype_is_refused_by_rust():
    opt = gf.Adam(state_dtype="bfloat16")
    p = {"w": np.ones(4, F32)}
    opt.update(p, {"w": np.ones(4, F32)})
    opt.state["w"]["exp_avg"] = opt.state["w"]["exp_avg"].astype(F32)
    with pytest.raises(TypeError, match=r"state\['w'\]\['exp_avg'\] must have dtype bfloat16 like the other arrays"):
        opt.update(p, {"w": np.ones(4, F32)})
    assert opt.step == 1


def regression_problem():
    """A least-squares problem whose minimum is near 1e-4 (the noise variance)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 16)).astype(F32)
    y = x @ rng.standard_normal(16).astype(F32) + 0.01 * rng.standard_normal(256).astype(F32)
    return x, y


def regression_loss(make, steps=400):
    """Mean squared error after ``steps`` full-batch steps from zero."""
    x, y = regression_problem()
    params = {"w": np.zeros(16, F32)}
    opt = make()
    for _ in range(steps):
        r = x @ params["w"] - y
        opt.update(params, {"w": (2.0 / len(y)) * (x.T @ r)})
    x, y, w = x.astype(np.float64), y.astype(np.float64), params["w"].astype(np.float64)
    return float(np.mean((x @ w - y) ** 2))


@pytest.mark.parametrize(
    "make",
    [
        lambda **k: gf.Adam(0.05, **k),
        lambda **k: gf.AdamW(0.05, weight_decay=0.0, **k),
        lambda **k: gf.MomentumOptimizer(0.05, 0.9, nesterov=True, **k),
    ],
)
def test_bfloat16_state_converges_to_the_float32_loss(make):
    # The stated tolerance: both within 1% of the least-squares minimum (float64 lstsq), and
    # within 0.1% of each other.
    x, y = regression_problem()
    x, y = x.astype(np.float64), y.astype(np.float64)
    best = float(np.mean((x @ np.linalg.lstsq(x, y, rcond=None)[0] - y) ** 2))
    f32 = regression_loss(make)
    bf16 = regression_loss(lambda: make(state_dtype="bfloat16"))
    assert best <= f32 <= 1.01 * best and best <= bf16 <= 1.01 * best
    assert abs(bf16 - f32) <= 1e-3 * f32
