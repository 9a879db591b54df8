"""gradfast's Rust BatchNorm and Dropout against the NumPy reference: outputs, gradients,
running statistics and masks over shapes, dtypes, hyper-parameters and modes; bad input;
threads."""

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from conftest import TOL
from hypothesis import given
from hypothesis import strategies as st


def assert_close(a, b):
    """Equal to rounding, measured against the array's scale: sums taken in another order
    round differently, and terms such as ``n g - grad_beta`` cancel."""
    assert a.dtype == b.dtype and a.shape == b.shape
    tol = TOL[a.dtype]
    np.testing.assert_allclose(a, b, rtol=tol["rtol"], atol=tol["atol"] + tol["rtol"] * np.abs(b).max(initial=0))


# -- BatchNorm -----------------------------------------------------------------------------


@st.composite
def batchnorm_cases(draw):
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    n, c = draw(st.integers(2, 9)), draw(st.integers(1, 5))
    length = draw(st.one_of(st.none(), st.integers(1, 7)))
    shape = (n, c) if length is None else (n, c, length)
    modes = draw(st.lists(st.booleans(), min_size=1, max_size=4))
    hyper = {"eps": draw(st.floats(1e-6, 1.0)), "momentum": draw(st.floats(0.0, 1.0))}
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    offset = draw(st.sampled_from([0.0, 3.0, -100.0]))
    xs = [(rng.standard_normal(shape) * rng.uniform(0.1, 5) + offset).astype(dtype) for _ in modes]
    gs = [rng.standard_normal(shape).astype(dtype) for _ in modes]
    return dtype, shape, modes, hyper, xs, gs


def run_batchnorm(mod, case):
    dtype, shape, modes, hyper, xs, gs = case
    bn = mod.BatchNorm(shape[1], dtype=dtype, **hyper)
    bn.gamma[...] = np.linspace(0.5, 2.0, shape[1])
    bn.beta[...] = np.linspace(-1.0, 1.0, shape[1])
    results = []
    for training, x, g in zip(modes, xs, gs):
        out = bn.forward(x, training=training)
        grad_x = bn.backward(g)
        results.append((out, grad_x, bn.grad_gamma, bn.grad_beta, bn.running_mean.copy(), bn.running_var.copy()))
    return results


@given(batchnorm_cases())
def test_batchnorm_matches_reference(case):
    for got, want in zip(run_batchnorm(gf, case), run_batchnorm(ref, case)):
        for a, b in zip(got, want):
            assert_close(a, b)


@pytest.mark.parametrize("shape", [(300, 257), (7, 5, 3000)])
def test_batchnorm_matches_reference_over_many_blocks(shape):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 2 + 50).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    case = (np.dtype(np.float32), shape, [True, False], {"eps": 1e-5, "momentum": 0.1}, [x, x], [g, g])
    for got, want in zip(run_batchnorm(gf, case), run_batchnorm(ref, case)):
        for a, b in zip(got, want):
            assert_close(a, b)


def test_batchnorm_takes_any_layout_of_x_and_grad_output():
    rng = np.random.default_rng(2)
    x = np.asfortranarray(rng.standard_normal((6, 4)))
    g = rng.standard_normal((4, 6)).T  # a transposed view
    a, b = gf.BatchNorm(4), ref.BatchNorm(4)
    assert_close(a.forward(x), b.forward(x))
    assert_close(a.backward(g), b.backward(g))


def test_batchnorm_running_statistics_are_updated_in_place_and_eval_leaves_them():
    bn = gf.BatchNorm(3)
    rm, rv = bn.running_mean, bn.running_var
    x = np.arange(12.0).reshape(4, 3)
    bn.forward(x)
    assert bn.running_mean is rm and bn.running_var is rv
    np.testing.assert_allclose(rm, 0.1 * x.mean(axis=0))
    before = rm.copy(), rv.copy()
    bn.forward(x, training=False)
    np.testing.assert_array_equal(rm, before[0])
    np.testing.assert_array_equal(rv, before[1])


def test_batchnorm_backward_uses_the_gamma_and_statistics_of_the_forward(impl):
    rng = np.random.default_rng(3)
    bn = impl.BatchNorm(2)
    x, g = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    bn.forward(x)
    want = bn.backward(g)
    bn.forward(x)
    bn.gamma *= 3.0
    bn.running_mean += 1.0
    np.testing.assert_array_equal(bn.backward(g), want)


def test_batchnorm_nan_propagates_per_channel(impl):
    bn = impl.BatchNorm(2)
    x = np.array([[np.nan, 1.0], [2.0, 3.0], [4.0, 5.0]])
    out = bn.forward(x)
    assert np.isnan(out[:, 0]).all() and np.isfinite(out[:, 1]).all()
    assert np.isnan(bn.backward(np.ones_like(x))[:, 0]).all()


def test_batchnorm_eval_on_an_empty_batch(impl):
    bn = impl.BatchNorm(3)
    assert bn.forward(np.ones((0, 3)), training=False).shape == (0, 3)
    assert bn.backward(np.ones((0, 3))).shape == (0, 3)
    np.testing.assert_array_equal(bn.grad_gamma, 0.0)


def _batchnorm_errors(x):
    fwd = "BatchNorm.forward: "
    return [
        (TypeError, fwd + r"x must have dtype float64 like the layer, got float32", (x.astype(np.float32),)),
        (TypeError, fwd + r"x must be a numpy.ndarray, got list", ([[1.0, 2.0, 3.0]],)),
        (TypeError, fwd + r"x must be a numpy.ndarray, got a numpy.ma.MaskedArray", (np.ma.asarray(x),)),
        (TypeError, fwd + r"x must have dtype float32 or float64, got int64", (x.astype(np.int64),)),
        (ValueError, fwd + r"x must have shape \(N, 3\) or \(N, 3, L\), got \(4, 2\)", (x[:, :2],)),
        (ValueError, fwd + r"x must have shape \(N, 3\) or \(N, 3, L\), got \(3,\)", (x[0],)),
        (ValueError, r"got \(2, 3, 2, 2\)", (np.ones((2, 3, 2, 2)),)),
        (ValueError, fwd + r"x must have more than 1 value per channel when training, got shape \(1, 3\)", (x[:1],)),
        (TypeError, fwd + r"training must be a bool, got int", (x, 1)),
    ]


def test_batchnorm_bad_input_changes_nothing(impl):
    rng = np.random.default_rng(4)
    bn = impl.BatchNorm(3)
    x, g = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    bn.forward(x)
    want = bn.backward(g)
    state = {a: getattr(bn, a).copy() for a in ("gamma", "beta", "running_mean", "running_var")}
    for exc, match, args in _batchnorm_errors(x):
        with pytest.raises(exc, match=match):
            bn.forward(*args)
    for a, v in state.items():
        np.testing.assert_array_equal(getattr(bn, a), v)
    np.testing.assert_array_equal(bn.backward(g), want)  # the cache of the good forward is intact


def test_batchnorm_bad_attributes(impl):
    bn = impl.BatchNorm(3)
    x = np.random.default_rng(5).standard_normal((4, 3))
    bn.running_mean.flags.writeable = False
    with pytest.raises(ValueError, match=r"BatchNorm.forward: self.running_mean must be writeable"):
        bn.forward(x)
    np.testing.assert_array_equal(bn.running_var, 1.0)
    bn.forward(x, training=False)  # eval only reads the running statistics
    bn.running_mean = np.zeros(3)
    bn.gamma = np.ones(4)
    with pytest.raises(ValueError, match=r"BatchNorm.forward: self.gamma must have shape \(3,\), got \(4,\)"):
        bn.forward(x)
    bn.gamma = np.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match=r"BatchNorm.forward: self.gamma must have dtype float64 like the"):
        bn.forward(x)
    bn.gamma = np.ones(3)
    bn.running_var = bn.running_mean
    with pytest.raises(ValueError, match=r"self.running_(var|mean) must not share memory with self.running_"):
        bn.forward(x)
    for name in ("num_features", "dtype"):
        with pytest.raises(AttributeError):
            setattr(bn, name, 4)


def test_batchnorm_bad_backward(impl):
    bn = impl.BatchNorm(3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"BatchNorm.backward: forward must be called before backward"):
        bn.backward(np.ones((4, 3), dtype=np.float32))
    bn.forward(np.arange(24, dtype=np.float32).reshape(4, 3, 2))
    with pytest.raises(ValueError, match=r"BatchNorm.backward: grad_output must have shape \(4, 3, 2\) like"):
        bn.backward(np.ones((4, 3), dtype=np.float32))
    with pytest.raises(TypeError, match=r"BatchNorm.backward: grad_output must have dtype float32 like"):
        bn.backward(np.ones((4, 3, 2)))
    assert bn.grad_gamma is None and bn.grad_beta is None


# -- Dropout -------------------------------------------------------------------------------

DROPOUT_SHAPES = st.sampled_from([(), (0,), (1,), (7,), (3, 5), (2, 3, 4), (1000,)])


@given(
    shape=DROPOUT_SHAPES,
    dtype=st.sampled_from([np.float32, np.float64]),
    p=st.one_of(st.just(0.0), st.floats(0.0, 0.999)),
    seed=st.integers(0, 2**64 - 1),
    modes=st.lists(st.booleans(), min_size=1, max_size=4),
)
def test_dropout_matches_reference_bitwise(shape, dtype, p, seed, modes):
    rng = np.random.default_rng(seed % 2**32)
    a, b = gf.Dropout(p, seed=seed), ref.Dropout(p, seed=seed)
    for training in modes:
        x = rng.standard_normal(shape).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        out_a, out_b = a.forward(x, training=training), b.forward(x, training=training)
        grad_a, grad_b = a.backward(g), b.backward(g)
        for u, v in ((out_a, out_b), (grad_a, grad_b)):
            assert u.dtype == v.dtype and u.shape == v.shape
            assert u.tobytes() == v.tobytes()
        assert a.num_training_calls == b.num_training_calls
        if training:
            assert a.kept.dtype == np.bool_ and np.array_equal(a.kept, b.kept)
            assert a.mask.tobytes() == b.mask.tobytes()
        else:
            assert a.kept is None and a.mask is None
            assert out_a is not x and np.shares_memory(out_a, x) is False


def test_dropout_of_nan_and_inf_gives_nan_where_dropped(impl):
    d = impl.Dropout(0.5, seed=3)
    x = np.full(64, np.inf)
    out = d.forward(x)
    assert np.isnan(out[~d.kept]).all() and np.isinf(out[d.kept]).all()


def test_dropout_takes_any_layout():
    x = np.arange(24.0).reshape(4, 6)[:, ::2]
    a, b = gf.Dropout(0.4, seed=9), ref.Dropout(0.4, seed=9)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    np.testing.assert_array_equal(a.backward(x), b.backward(x))


def test_dropout_backward_uses_the_rate_of_the_forward(impl):
    d = impl.Dropout(0.5, seed=1)
    x = np.ones(100)
    d.forward(x)
    d.drop_rate = 0.2
    np.testing.assert_array_equal(np.unique(d.backward(x)), [0.0, 2.0])


def test_dropout_bad_input_changes_nothing(impl):
    d = impl.Dropout(0.5, seed=2)
    x = np.ones((4, 4))
    d.forward(x)
    kept = d.kept.copy()
    for bad, exc, match in [
        ([1.0], TypeError, r"Dropout.forward: x must be a numpy.ndarray, got list"),
        (np.ones(3, np.int32), TypeError, r"Dropout.forward: x must have dtype float32 or float64, got int32"),
        (np.ma.ones(3), TypeError, r"Dropout.forward: x must be a numpy.ndarray, got a numpy.ma.MaskedArray"),
    ]:
        with pytest.raises(exc, match=match):
            d.forward(bad)
    with pytest.raises(TypeError, match=r"Dropout.forward: training must be a bool, got str"):
        d.forward(x, training="yes")
    assert d.num_training_calls == 1
    np.testing.assert_array_equal(d.kept, kept)
    with pytest.raises(ValueError, match=r"Dropout.backward: grad_output must have shape \(4, 4\) like"):
        d.backward(np.ones(16))
    with pytest.raises(TypeError, match=r"Dropout.backward: grad_output must have dtype float64 like"):
        d.backward(np.ones((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"Dropout.backward: forward must be called before backward"):
        impl.Dropout(0.5).backward(x)


# -- threads -------------------------------------------------------------------------------


@pytest.fixture
def restore_threads():
    n = gf.get_num_threads()
    yield
    gf.set_num_threads(n)


def test_layers_are_bitwise_identical_for_any_thread_count(restore_threads):
    rng = np.random.default_rng(6)
    cases = [rng.standard_normal((1100, 1000), dtype=np.float32), rng.standard_normal((9, 60, 2001))]
    results = []
    for threads in (1, 2, 3):
        gf.set_num_threads(threads)
        run = []
        for x in cases:
            bn = gf.BatchNorm(x.shape[1], dtype=x.dtype)
            run += [bn.forward(x), bn.backward(x[::-1].copy()), bn.grad_gamma, bn.running_var.copy()]
            d = gf.Dropout(0.3, seed=4)
            run += [d.forward(x), d.backward(x), d.kept]
        results.append(run)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.tobytes() == b.tobytes()


# -- copies and threads sharing a layer ------------------------------------------------------


def test_layers_copy_and_pickle_without_their_lock_or_cache(impl):
    import copy
    import pickle

    rng = np.random.default_rng(7)
    bn, d = impl.BatchNorm(3), impl.Dropout(0.3, seed=5)
    x = rng.standard_normal((4, 3))
    bn.forward(x)
    d.forward(x)
    for clone in (copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))):
        b2, d2 = clone(bn), clone(d)
        np.testing.assert_array_equal(b2.running_var, bn.running_var)
        with pytest.raises(ValueError, match="forward must be called before backward"):
            b2.backward(x)
        np.testing.assert_array_equal(b2.forward(x), bn.forward(x))
        np.testing.assert_array_equal(d2.backward(x), d.backward(x))
        assert d2.num_training_calls == d.num_training_calls == 1


def test_threads_sharing_a_layer_take_calls_in_turn(impl):
    import threading

    d = impl.Dropout(0.5, seed=11)
    bn = impl.BatchNorm(64, momentum=1.0)
    x = np.random.default_rng(8).standard_normal((512, 64))
    masks = []

    def work():
        for _ in range(20):
            # the mask of this call (d.kept may already be another thread's): x has no zeros
            masks.append(d.forward(x) != 0)
            bn.forward(x)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert d.num_training_calls == 60
    # every mask was drawn from its own stream
    assert len({m.tobytes() for m in masks}) == 60
    np.testing.assert_allclose(bn.running_mean, x.mean(axis=0), rtol=1e-12, atol=1e-15)
