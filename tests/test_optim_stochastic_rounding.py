"""Stochastic rounding of bfloat16 optimizer state: gradfast against the reference bit for bit,
on any thread count, unbiased, deterministic per seed, tracking float32 state where nearest
rounding stalls, resuming bitwise, and refusing bad settings before anything is written."""

import gradfast as gf
import gradfast.reference as ref
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_optim import ADAM_HYPER
from test_optim_lowprec import assert_bitwise, run

BF16 = np.dtype(ml_dtypes.bfloat16)
F32 = np.dtype(np.float32)
SHAPES = st.sampled_from([(), (0,), (1,), (7,), (3, 5), (33,), (1000,)])
SEEDS = st.integers(0, 2**64 - 1)

#: every optimizer that takes rounding='stochastic', built with the given keyword arguments
OPTIMIZERS = {
    "Adam": lambda m, **k: m.Adam(1e-2, **k),
    "AMSGrad": lambda m, **k: m.Adam(1e-2, amsgrad=True, weight_decay=0.1, **k),
    "AdamW": lambda m, **k: m.AdamW(1e-2, **k),
    "Momentum": lambda m, **k: m.MomentumOptimizer(0.05, 0.9, **k),
    "Nesterov": lambda m, **k: m.MomentumOptimizer(0.05, 0.9, nesterov=True, **k),
    "Lion": lambda m, **k: m.Lion(1e-3, weight_decay=0.1, **k),
    # torch's rule (gradfast.torch.SGD's engine)
    "SGD": lambda m, **k: m.optim.SGD(0.05, momentum=0.9, dampening=0.1, weight_decay=0.1, **k),
    "SGDNesterov": lambda m, **k: m.optim.SGD(0.05, momentum=0.9, nesterov=True, maximize=True, **k),
    "RMSprop": lambda m, **k: m.RMSprop(1e-3, weight_decay=0.1, **k),
    # grad_avg is slot 1 without momentum and slot 2 with it
    "RMSpropCentered": lambda m, **k: m.RMSprop(1e-3, centered=True, **k),
    "RMSpropMomentumCentered": lambda m, **k: m.RMSprop(1e-3, momentum=0.9, centered=True, maximize=True, **k),
    "Adagrad": lambda m, **k: m.Adagrad(1e-2, lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.1, **k),
    "Adamax": lambda m, **k: m.Adamax(2e-3, weight_decay=0.1, maximize=True, **k),
    "NAdam": lambda m, **k: m.NAdam(2e-3, weight_decay=0.1, **k),
    "NAdamDecoupled": lambda m, **k: m.NAdam(2e-3, weight_decay=0.1, decoupled=True, **k),
    # with beta2 = 0.9 the steps from the 6th on are rectified
    "RAdam": lambda m, **k: m.RAdam(1e-2, beta2=0.9, weight_decay=0.1, **k),
    "RAdamDecoupled": lambda m, **k: m.RAdam(1e-2, beta2=0.9, weight_decay=0.1, decoupled=True, maximize=True, **k),
    "Adadelta": lambda m, **k: m.Adadelta(1.0, weight_decay=0.1, **k),
    "AdadeltaMaximize": lambda m, **k: m.Adadelta(0.5, rho=0.5, maximize=True, **k),
}

#: steps of the runs that check thread counts and resuming (RAdam's rectified steps start at 6)
STEPS = {"RAdam": 7}


def sr(seed):
    return {"state_dtype": "bfloat16", "rounding": "stochastic", "seed": seed}


def assert_same_run(a, b):
    (pa, oa), (pb, ob) = a, b
    assert_bitwise(pa, pb)
    assert oa.state.keys() == ob.state.keys()
    for k in oa.state:
        assert_bitwise(oa.state[k], ob.state[k])


@st.composite
def problems(draw, min_steps=1, max_steps=4):
    """Params of float32 or bfloat16 (several keys) and a list of gradient dicts, one per step."""
    dtype = draw(st.sampled_from([F32, BF16]))
    shapes = draw(st.lists(SHAPES, min_size=1, max_size=3))
    steps = draw(st.integers(min_steps, max_steps))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    params = {f"w{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes)}
    grads = [{k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()} for _ in range(steps)]
    return params, grads


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@given(problem=problems(), seed=SEEDS)
def test_matches_reference_bitwise(name, problem, seed):
    make = OPTIMIZERS[name]
    params, grads = problem
    got = run(make(gf, **sr(seed)), params, grads)
    assert all(a.dtype == BF16 for s in got[1].state.values() for a in s.values())
    assert_same_run(got, run(make(ref, **sr(seed)), params, grads))


@given(problem=problems(), seed=SEEDS, hyper=st.fixed_dictionaries(ADAM_HYPER))
def test_adam_of_any_hyper_parameters_matches_reference_bitwise(problem, seed, hyper):
    params, grads = problem
    got = run(gf.Adam(**hyper, **sr(seed)), params, grads)
    assert_same_run(got, run(ref.Adam(**hyper, **sr(seed)), params, grads))


@pytest.mark.parametrize("name", ["RAdam", "RAdamDecoupled"])
@given(problem=problems(min_steps=6, max_steps=8), seed=SEEDS)
def test_radam_rectified_steps_match_reference_bitwise(name, problem, seed):
    make = OPTIMIZERS[name]
    params, grads = problem
    assert make(gf).beta2 == 0.9  # so that steps 6 on are rectified
    assert_same_run(run(make(gf, **sr(seed)), params, grads), run(make(ref, **sr(seed)), params, grads))


@given(problem=problems(), seed=SEEDS)
def test_groups_number_elements_over_all_params(problem, seed):
    # a group's keys draw the words of their place among all the params, as without groups
    params, grads = problem
    groups = [{"keys": list(params)[::2], "lr_scale": 1.0}]
    got = run(gf.AdamW(1e-2, groups=groups, **sr(seed)), params, grads)
    assert_same_run(got, run(ref.AdamW(1e-2, groups=groups, **sr(seed)), params, grads))
    assert_same_run(got, run(gf.AdamW(1e-2, **sr(seed)), params, grads))


@pytest.mark.parametrize(
    "name",
    [
        "AMSGrad",
        "Nesterov",
        "Lion",
        "SGD",
        "RMSpropMomentumCentered",
        "Adagrad",
        "Adamax",
        "NAdam",
        "RAdam",
        "Adadelta",
    ],
)
def test_bitwise_on_any_thread_count(name):
    make = OPTIMIZERS[name]
    rng = np.random.default_rng(4)
    # above the parallel threshold, cut into several chunks, and a small key after it
    params = {"w": rng.standard_normal(300_001).astype(F32), "b": rng.standard_normal(5).astype(F32)}
    steps = STEPS.get(name, 2)
    grads = [{k: rng.standard_normal(p.shape).astype(F32) for k, p in params.items()} for _ in range(steps)]
    threads = gf.get_num_threads()
    try:
        runs = []
        for t in (1, 2, 3):
            gf.set_num_threads(t)
            runs.append(run(make(gf, **sr(11)), params, grads))
    finally:
        gf.set_num_threads(threads)
    for r in runs[1:]:
        assert_same_run(runs[0], r)
    assert_same_run(runs[0], run(make(ref, **sr(11)), params, grads))


def stored_velocity(impl, x, n, steps, seed=5):
    """The bfloat16 velocities of ``n`` elements after each of ``steps`` steps that store
    exactly ``x`` (momentum 0, rate 1, gradient -x), as float64, shape (steps, n)."""
    opt = impl.MomentumOptimizer(1.0, 0.0, **sr(seed))
    params, grads = {"w": np.zeros(n, F32)}, {"w": np.full(n, -x, F32)}
    out = []
    for _ in range(steps):
        opt.update(params, grads)
        out.append(opt.state["w"]["velocity"].astype(np.float64))
    return np.array(out)


def test_unbiased_over_elements_and_over_steps():
    # x lies about 0.3 of the way between its bfloat16 neighbours 1 + 2^-7 and 1 + 2^-6
    lo, ulp = 1.0 + 2.0**-7, 2.0**-7
    x = float(np.float32(lo + 0.3 * ulp))
    p = (x - lo) / ulp  # each stored value is lo + ulp * Bernoulli(p)
    v = stored_velocity(gf, x, 50_000, 4)
    assert set(np.unique(v)) == {lo, lo + ulp}
    # the mean over elements and steps within 5 standard errors of x
    assert abs(v.mean() - x) <= 5 * ulp * np.sqrt(p * (1 - p) / v.size)
    # one element over many steps: fresh draws each step, the same unbiased mean
    w = stored_velocity(gf, x, 3, 4000)[:, 1]
    assert abs(w.mean() - x) <= 5 * ulp * np.sqrt(p * (1 - p) / w.size)
    # (nearest rounding would store lo every time, far outside that tolerance)
    assert abs(lo - x) > 20 * ulp * np.sqrt(p * (1 - p) / w.size)


def test_same_seed_same_bits_other_seed_other_bits():
    rng = np.random.default_rng(1)
    params = {"w": rng.standard_normal(2000).astype(F32)}
    grads = [{"w": rng.standard_normal(2000).astype(F32)} for _ in range(3)]
    a, b = run(gf.Adam(**sr(1)), params, grads), run(gf.Adam(**sr(1)), params, grads)
    assert_same_run(a, b)
    c = run(gf.Adam(**sr(2)), params, grads)
    nearest = run(gf.Adam(state_dtype="bfloat16"), params, grads)
    for other in (c, nearest):
        for slot in ("exp_avg", "exp_avg_sq"):
            differ = a[1].state["w"][slot].view(np.uint16) != other[1].state["w"][slot].view(np.uint16)
            assert differ.mean() > 0.2, slot


def test_bfloat16_params_keep_nearest_rounding():
    # after one step from zero state the update uses the unrounded moments, so the params
    # are those of nearest rounding while the state is not
    rng = np.random.default_rng(3)
    params = {"w": rng.standard_normal(5000).astype(BF16)}
    grads = [{"w": rng.standard_normal(5000).astype(BF16)}]
    for impl in (gf, ref):
        p_sr, o_sr = run(impl.Adam(1e-2, **sr(9)), params, grads)
        p_rn, o_rn = run(impl.Adam(1e-2, state_dtype="bfloat16"), params, grads)
        assert_bitwise(p_sr, p_rn)
        assert o_sr.state["w"]["exp_avg_sq"].tobytes() != o_rn.state["w"]["exp_avg_sq"].tobytes()


def test_tiny_second_moment_updates_track_float32_where_nearest_stalls():
    # v = 0.999 v + 0.001 g^2 with constant g: once v passes about g^2 / 3 its increment is
    # below half a bfloat16 ulp, so nearest rounding stops there; float32 state goes on to
    # g^2 (1 - 0.999^t), and stochastic rounding follows it in the mean.
    n, steps, g = 4096, 4000, 0.5
    params, grads = {"w": np.zeros(n, F32)}, {"w": np.full(n, g, F32)}

    def final_v(**kw):
        opt = gf.Adam(0.0, beta2=0.999, **kw)
        for _ in range(steps):
            opt.update(params, grads)
        return opt.state["w"]["exp_avg_sq"].astype(np.float64)

    exact = g * g * (1 - 0.999**steps)
    v32, vrn, vsr = final_v(), final_v(state_dtype="bfloat16"), final_v(**sr(3))
    np.testing.assert_allclose(v32, exact, rtol=1e-3)
    assert vrn.max() < 0.5 * exact  # nearest rounding stalled
    # per element the rounding noise leaves a spread of a few percent; the mean is within 1%
    assert abs(vsr.mean() / v32.mean() - 1) < 0.01
    assert np.all(np.abs(vsr / v32 - 1) < 0.25)


@pytest.mark.parametrize(
    "name",
    ["AMSGrad", "AdamW", "Momentum", "Lion", "RMSpropCentered", "Adagrad", "Adamax", "NAdam", "RAdam", "Adadelta"],
)
def test_resume_from_state_dict_is_bitwise(impl, name):
    make = OPTIMIZERS[name]
    rng = np.random.default_rng(2)
    params = {"a": rng.standard_normal((6, 5)).astype(F32), "b": rng.standard_normal(4).astype(F32)}
    steps = STEPS.get(name, 6)
    grads = [{k: rng.standard_normal(v.shape).astype(F32) for k, v in params.items()} for _ in range(steps)]
    first = make(impl, state_dtype="bfloat16", rounding="stochastic")  # a fresh seed
    p_half, first = run(first, params, grads[:3])
    saved = first.state_dict()
    assert saved["rounding"] == "stochastic" and saved["seed"] == first.seed
    resumed = make(impl, state_dtype="bfloat16", rounding="stochastic", seed=first.seed ^ 1)
    resumed.load_state_dict(saved)
    assert resumed.seed == first.seed
    p_resumed, resumed = run(resumed, p_half, grads[3:])
    full = run(make(impl, **sr(first.seed)), params, grads)
    assert_same_run(full, (p_resumed, resumed))
    # a nearest-rounding optimizer of the same dtype takes the recorded rounding too
    nearest = make(impl, state_dtype="bfloat16")
    nearest.load_state_dict(saved)
    assert (nearest.rounding, nearest.seed) == ("stochastic", first.seed)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"state_dtype": "bfloat16", "rounding": "up"}, ValueError, "rounding must be 'nearest' or 'stochastic'"),
        ({"state_dtype": "bfloat16", "rounding": 1}, TypeError, "rounding must be 'nearest' or 'stochastic'"),
        ({"rounding": "stochastic"}, ValueError, "stochastic rounding is for bfloat16 state"),
        ({"state_dtype": "bfloat16", "rounding": "stochastic", "seed": -1}, ValueError, r"seed must be an int"),
        ({"state_dtype": "bfloat16", "rounding": "stochastic", "seed": 2**64}, ValueError, r"seed must be an int"),
        ({"state_dtype": "bfloat16", "rounding": "stochastic", "seed": 1.5}, TypeError, r"seed must be an int"),
        ({"state_dtype": "bfloat16", "rounding": "stochastic", "seed": True}, TypeError, r"seed must be an int"),
    ],
)
@pytest.mark.parametrize(
    "name", ["Adam", "Momentum", "Lion", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam", "Adadelta"]
)
def test_bad_settings_are_refused(impl, name, kwargs, error, match):
    with pytest.raises(error, match=match):
        OPTIMIZERS[name](impl, **kwargs)


@pytest.mark.parametrize(
    "name", ["Adam", "Momentum", "Lion", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam", "Adadelta"]
)
def test_8bit_state_refuses_stochastic_rounding(impl, name):
    # where 8-bit state is offered the rounding is refused, elsewhere the state dtype is
    eight_bit = OPTIMIZERS[name](impl)._eight_bit
    match = "stochastic rounding is for bfloat16" if eight_bit else r"state_dtype must be None or 'bfloat16'"
    with pytest.raises(ValueError, match=match):
        OPTIMIZERS[name](impl, state_dtype="8bit", rounding="stochastic")


@pytest.mark.parametrize(
    "extra, error, match",
    [
        ({"rounding": "sometimes"}, ValueError, r"d\['rounding'\] must be 'nearest' or 'stochastic'"),
        ({"seed": "x"}, TypeError, r"d\['seed'\] must be an int"),
    ],
)
def test_bad_loaded_rounding_changes_nothing(impl, extra, error, match):
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal(10).astype(F32)}
    opt = impl.Adam(**sr(4))
    opt.update(params, {"w": rng.standard_normal(10).astype(F32)})
    before = {k: a.copy() for k, a in opt.state["w"].items()}
    d = {**opt.state_dict(), **extra, "step": 7}
    with pytest.raises(error, match=match):
        opt.load_state_dict(d)
    assert (opt.step, opt.rounding, opt.seed) == (1, "stochastic", 4)
    assert_bitwise(opt.state["w"], before)
    # and float32 state refuses a stochastic record
    f32 = impl.Adam()
    with pytest.raises(ValueError, match="stochastic rounding is for bfloat16 state"):
        f32.load_state_dict({**opt.state_dict(), "state": {}, "step": 0})
