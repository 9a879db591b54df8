"""gradfast's adaptive_grad_clip and AdaptiveClipper against the NumPy reference and optax, and
against themselves (resumed runs, thread counts, bad input)."""

import math

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from conftest import TOL, optax_peer
from hypothesis import given
from hypothesis import strategies as st

SHAPES = st.sampled_from([(), (0,), (1,), (7,), (3, 5), (5, 1), (3, 0), (0, 4), (2, 3, 4), (4, 2, 3, 3), (1000,)])


@st.composite
def problems(draw, *, with_params=True):
    """Gradients (and params) dicts of one dtype, norms spread so that some units clip."""
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    shapes = draw(st.lists(SHAPES, min_size=1, max_size=4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = lambda: 10.0 ** draw(st.integers(-3, 2))  # noqa: E731
    grads = {f"g{i}": np.asarray(rng.standard_normal(s) * scale(), dtype) for i, s in enumerate(shapes)}
    if not with_params:
        return grads
    params = {k: np.asarray(rng.standard_normal(g.shape) * scale(), dtype) for k, g in grads.items()}
    return grads, params


def copies(d):
    return {k: v.copy() for k, v in d.items()}


@given(problems(), st.floats(0.0, 1.0), st.floats(0.0, 0.1))
def test_agc_matches_reference(problem, clipping, eps):
    grads, params = problem
    ours, theirs = copies(grads), copies(grads)
    assert gf.adaptive_grad_clip(ours, params, clipping, eps) is ours
    ref.adaptive_grad_clip(theirs, params, clipping, eps)
    for k in grads:
        np.testing.assert_allclose(ours[k], theirs[k], **TOL[grads[k].dtype])


def test_agc_reads_params_of_any_layout_and_passes_nan_through():
    base = np.arange(1.0, 25.0).reshape(4, 6)
    params = {"w": base[:, ::2], "f": np.asfortranarray(base), "n": np.ones(3)}
    grads = {"w": np.full((4, 3), 50.0), "f": np.full((4, 6), 50.0), "n": np.array([np.nan, 1.0, 1e9])}
    ours, theirs = copies(grads), copies(grads)
    gf.adaptive_grad_clip(ours, params, 0.1)
    ref.adaptive_grad_clip(theirs, params, 0.1)
    for k in grads:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-15)
    assert np.isnan(ours["n"][0]) and ours["n"][2] == 1e9


@pytest.mark.parametrize("shape", [(6,), (5, 3), (4, 3, 2, 2)])
def test_agc_matches_optax_on_the_transposed_layout(shape):
    """Our units are rows along axis 0 ((out, in, ...)); optax's are the last axis of its
    (in, out) and HWIO layouts."""
    jax, jnp, optax = optax_peer()
    rng = np.random.default_rng(3)
    p = rng.standard_normal(shape)
    g = rng.standard_normal(shape) * np.linspace(0.001, 1.0, shape[0]).reshape((-1,) + (1,) * (len(shape) - 1))
    to_optax = {1: lambda a: a, 2: lambda a: a.T, 4: lambda a: np.transpose(a, (2, 3, 1, 0))}[len(shape)]
    with jax.enable_x64(True):
        tx = optax.adaptive_grad_clip(0.05, eps=1e-3)
        upd, _ = tx.update({"x": jnp.asarray(to_optax(g))}, tx.init(None), {"x": jnp.asarray(to_optax(p))})
        theirs = np.asarray(upd["x"])
    ours = {"x": g.copy()}
    gf.adaptive_grad_clip(ours, {"x": p}, 0.05, 1e-3)
    assert not np.array_equal(ours["x"], g)  # some units clipped
    np.testing.assert_allclose(to_optax(ours["x"]), theirs, rtol=1e-13)


def _agc_bad_cases():
    ones = lambda *s: np.ones(s)  # noqa: E731
    same = np.ones((2, 3))
    buf = np.ones(8)
    ro = np.ones((2, 3))
    ro.flags.writeable = False
    return [
        ({"w": np.ones((2, 3), np.int64)}, {"w": ones(2, 3)}, TypeError, r"gradients\['w'\] must have dtype float"),
        ({"w": ones(2, 3)}, {"w": np.ones((2, 3), np.float16)}, TypeError, r"params\['w'\] must have dtype"),
        ({"w": ones(2, 3)}, {"w": np.ones((2, 3), np.float32)}, TypeError, r"params\['w'\] must have dtype float64"),
        ({"w": ones(2, 6)[:, ::2]}, {"w": ones(2, 3)}, ValueError, r"gradients\['w'\] must be C-contiguous"),
        ({"w": ro}, {"w": ones(2, 3)}, ValueError, r"gradients\['w'\] must be writeable"),
        ({"w": same}, {"w": same}, ValueError, r"gradients\['w'\] must not share memory with params\['w'\]"),
        ({"a": buf[:5], "b": buf[4:]}, {"a": ones(5), "b": ones(4)}, ValueError, r"must not share memory"),
        ({"w": ones(2, 3)}, {"w": ones(3, 2)}, ValueError, r"params\['w'\] must have shape \(2, 3\)"),
        ({"w": ones(2, 3)}, {}, ValueError, r"params must have key 'w' like gradients"),
        ({"w": ones(2, 3)}, {"w": ones(2, 3), "x": ones(1)}, ValueError, r"params must have only the keys"),
        ([ones(2)], {"w": ones(2)}, TypeError, r"gradients must be a dict of numpy arrays"),
        ({"w": ones(2)}, None, TypeError, r"params must be a dict of numpy arrays, got NoneType"),
        ({"w": np.ma.masked_array(ones(2))}, {"w": ones(2)}, TypeError, r"gradients\['w'\].*MaskedArray"),
    ]


@pytest.mark.parametrize("case", _agc_bad_cases())
def test_agc_bad_input_changes_nothing(impl, case):
    grads, params, exc, match = case
    # with clipping 1e-3 every unit of ones against params of ones would be clipped
    arrays = [a for d in (grads, params) if isinstance(d, dict) for a in d.values()]
    before = [a.copy() for a in arrays]
    with pytest.raises(exc, match="adaptive_grad_clip: .*" + match):
        impl.adaptive_grad_clip(grads, params, clipping=1e-3)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"clipping": -0.1}, ValueError, r"clipping must be a finite number in \[0.0"),
        ({"eps": math.nan}, ValueError, r"eps must be a finite number"),
        ({"clipping": "0.1"}, TypeError, r"clipping must be a real number, got str"),
    ],
)
def test_agc_bad_hyperparameters_change_nothing(impl, kwargs, exc, match):
    grads = {"w": np.full((2, 2), 100.0)}
    with pytest.raises(exc, match=match):
        impl.adaptive_grad_clip(grads, {"w": np.ones((2, 2))}, **kwargs)
    np.testing.assert_array_equal(grads["w"], np.full((2, 2), 100.0))


@given(st.lists(problems(with_params=False), min_size=1, max_size=5), st.floats(0.01, 10.0), st.floats(0.0, 1.0))
def test_adaptive_clipper_matches_reference(calls, init, rate):
    ours, theirs = gf.AdaptiveClipper(init, rate), ref.AdaptiveClipper(init, rate)
    for grads in calls:
        a, b = ours.clip_gradients(grads), theirs.clip_gradients(grads)
        assert a.keys() == b.keys() == grads.keys()
        clip = theirs.clip_value
        for k, g in grads.items():
            # the same tensors pass through, except at the threshold, where the two norms' last
            # bits decide (the largest norm sits there when the average has caught up with it)
            if not math.isclose(np.linalg.norm(g.astype(np.float64)), clip, rel_tol=1e-9):
                assert (a[k] is g) == (b[k] is g)
            np.testing.assert_allclose(a[k], b[k], **TOL[g.dtype])
            if a[k] is not g:
                assert a[k].flags.c_contiguous and a[k].dtype == g.dtype
        for s, v in theirs.state_dict().items():
            assert math.isclose(ours.state_dict()[s], v, rel_tol=1e-12)


def test_adaptive_clipper_non_finite_tensors_pass_through_unobserved():
    c = gf.AdaptiveClipper(1.0, 0.5)
    grads = {"nan": np.array([np.nan, 1.0]), "inf": np.array([np.inf]), "big": np.full(4, 10.0)}
    out = c.clip_gradients(grads)
    assert out["nan"] is grads["nan"] and out["inf"] is grads["inf"]
    assert c.state_dict() == {"running_max": 10.0, "running_weight": 0.5}
    np.testing.assert_allclose(np.linalg.norm(out["big"]), 1.0, rtol=1e-15)
    np.testing.assert_array_equal(grads["big"], np.full(4, 10.0))  # the input is not written


def test_adaptive_clipper_resumes_bitwise(impl):
    rng = np.random.default_rng(5)
    grads = [{"a": rng.normal(size=(3, 3)) * s, "b": rng.normal(size=4) * s} for s in rng.uniform(0.1, 3, 20)]
    a = impl.AdaptiveClipper(1.5, 0.05)
    for g in grads[:10]:
        a.clip_gradients(g)
    b = impl.AdaptiveClipper(1.5, 0.05)
    b.load_state_dict(a.state_dict())
    for g in grads[10:]:
        oa, ob = a.clip_gradients(g), b.clip_gradients(g)
        for k in g:
            np.testing.assert_array_equal(oa[k], ob[k])
    assert a.state_dict() == b.state_dict()


@pytest.mark.parametrize(
    "grads, exc, match",
    [
        ([np.ones(2)], TypeError, r"gradients must be a dict of numpy arrays"),
        ({"a": np.ones(2, int)}, TypeError, r"gradients\['a'\] must have dtype float32 or float64, got int64"),
        ({"a": np.ones(2), "b": np.ones(2, np.float32)}, TypeError, r"gradients\['b'\] must have dtype float64"),
        ({"a": np.ma.masked_array(np.ones(2))}, TypeError, r"gradients\['a'\].*MaskedArray"),
    ],
)
def test_adaptive_clipper_bad_gradients_change_nothing(impl, grads, exc, match):
    c = impl.AdaptiveClipper(1.0, 0.5)
    c.clip_gradients({"g": np.full(3, 2.0)})
    saved = c.state_dict()
    with pytest.raises(exc, match="AdaptiveClipper.clip_gradients: " + match):
        c.clip_gradients(grads)
    assert c.state_dict() == saved


def test_one_thread_equals_many_threads_bitwise():
    rng = np.random.default_rng(1)
    sizes = [(1_300_001,), (700, 1500), (7,)]
    grads = {f"g{i}": rng.standard_normal(s).astype(np.float32) for i, s in enumerate(sizes)}
    params = {k: rng.standard_normal(g.shape).astype(np.float32) * 0.01 for k, g in grads.items()}
    threads = gf.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3, 4):
            gf.set_num_threads(n)
            g = copies(grads)
            gf.adaptive_grad_clip(g, params, 0.05)
            c = gf.AdaptiveClipper(1.0, 0.1)
            results.append((g, c.clip_gradients(grads), c.state_dict()))
    finally:
        gf.set_num_threads(threads)
    for g, out, state in results[1:]:
        assert state == results[0][2]
        for k in grads:
            np.testing.assert_array_equal(g[k], results[0][0][k])
            np.testing.assert_array_equal(out[k], results[0][1][k])


def test_concurrent_calls_of_one_clipper_equal_serial_ones():
    import threading

    g = {"a": np.linspace(-1, 1, 1_000_000), "b": np.full(10, 3.0)}
    shared, serial = gf.AdaptiveClipper(1.0, 0.3), gf.AdaptiveClipper(1.0, 0.3)
    workers = [threading.Thread(target=lambda: [shared.clip_gradients(g) for _ in range(5)]) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for _ in range(10):
        serial.clip_gradients(g)
    assert shared.state_dict() == serial.state_dict()


def test_a_clipper_can_be_deep_copied_and_pickled(impl):
    import copy
    import pickle

    c = impl.AdaptiveClipper(1.0, 0.5)
    c.clip_gradients({"a": np.full(4, 2.0)})
    twins = [copy.deepcopy(c), pickle.loads(pickle.dumps(c))]
    g = {"a": np.full(4, 3.0)}
    want = c.clip_gradients(g)["a"]
    for twin in twins:
        np.testing.assert_array_equal(twin.clip_gradients(g)["a"], want)
        assert twin.state_dict() == c.state_dict()
