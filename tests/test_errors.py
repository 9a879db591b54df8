"""Bad input raises the right error, names the argument, and changes nothing.

Every case runs against both implementations, on the first update (state not yet created)
and on a later one (state exists: the Rust path validates on its own).
"""

import copy

import numpy as np
import pytest

F32 = np.float32


def good():
    return {"a": np.ones((3, 4), F32), "b": np.ones(5, F32)}


def snapshot(*dicts):
    return copy.deepcopy(dicts)


def assert_unchanged(before, *dicts):
    for b, d in zip(before, dicts):
        assert b.keys() == d.keys()
        for k in b:
            if isinstance(b[k], dict):
                assert_unchanged((b[k],), d[k])
            else:
                np.testing.assert_array_equal(b[k], d[k])


def bad_cases():
    """(name, make(params, grads) -> (params, grads), error, message regex)."""

    def set_param(key, value):
        def make(p, g):
            p[key] = value(p[key])
            return p, g

        return make

    def set_grad(key, value):
        def make(p, g):
            g[key] = value(g[key])
            return p, g

        return make

    def readonly(a):
        a = a.copy()
        a.flags.writeable = False
        return a

    def same_as_param(p, g):
        g["b"] = p["b"]
        return p, g

    def missing_key(p, g):
        del g["b"]
        return p, g

    def extra_key(p, g):
        g["c"] = np.ones(2, F32)
        return p, g

    return [
        ("int param", set_param("b", lambda a: a.astype(np.int64)), TypeError, r"params\['b'\].*dtype"),
        ("int grad", set_grad("b", lambda a: a.astype(np.int64)), TypeError, r"gradients\['b'\].*dtype"),
        ("float16 grad", set_grad("b", lambda a: a.astype(np.float16)), TypeError, r"gradients\['b'\].*float16"),
        ("mixed dtypes", set_grad("b", lambda a: a.astype(np.float64)), TypeError, r"gradients\['b'\].*float"),
        ("list grad", set_grad("b", lambda a: a.tolist()), TypeError, r"gradients\['b'\].*ndarray"),
        ("byte-swapped grad", set_grad("b", lambda a: a.astype(">f4")), TypeError, r"gradients\['b'\].*>f4"),
        ("sliced param", set_param("b", lambda a: np.ones(10, F32)[::2]), ValueError, r"params\['b'\].*C-contiguous"),
        (
            "fortran param",
            set_param("b", lambda a: np.ones((5, 2), F32, order="F")),
            ValueError,
            r"params\['b'\].*C-contiguous",
        ),
        ("read-only param", set_param("b", readonly), ValueError, r"params\['b'\].*writeable"),
        ("param is grad", same_as_param, ValueError, r"\['b'\].*share memory"),
        ("shape mismatch", set_grad("b", lambda a: np.ones(6, F32)), ValueError, r"gradients\['b'\].*shape"),
        ("missing key", missing_key, ValueError, r"gradients.*'b'"),
        ("extra key", extra_key, ValueError, r"gradients.*'c'"),
    ]


OPTIMIZERS = [("Adam", {}), ("AdamW", {"amsgrad": True}), ("MomentumOptimizer", {"nesterov": True})]


@pytest.mark.parametrize("later_step", [False, True], ids=["first-step", "later-step"])
@pytest.mark.parametrize("case", bad_cases(), ids=lambda c: c[0])
@pytest.mark.parametrize("opt", OPTIMIZERS, ids=lambda o: o[0])
def test_optimizer_rejects_bad_input_and_changes_nothing(impl, opt, case, later_step):
    name, kw = opt
    optimizer = getattr(impl, name)(**kw)
    params, grads = good(), good()
    if later_step:
        optimizer.update(params, grads)
    _, make, error, message = case
    params, grads = make(params, grads)
    before = snapshot(params, grads, optimizer.state)
    step = optimizer.step
    with pytest.raises(error, match=message):
        optimizer.update(params, grads)
    assert_unchanged(before, params, grads, optimizer.state)
    assert optimizer.step == step


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"beta1": 1.0}, "beta1"),
        ({"beta1": -0.1}, "beta1"),
        ({"beta2": 1.5}, "beta2"),
        ({"weight_decay": -1e-3}, "weight_decay"),
        ({"epsilon": float("nan")}, "epsilon"),
    ],
)
def test_adam_rejects_bad_hyperparameters(impl, kw, message):
    with pytest.raises(ValueError, match=message):
        impl.Adam(**kw)
    opt = impl.Adam()
    key, value = next(iter(kw.items()))
    with pytest.raises(ValueError, match=message):
        setattr(opt, key, value)
    assert getattr(opt, key) == getattr(impl.Adam(), key)


def test_momentum_rejects_bad_hyperparameters(impl):
    with pytest.raises(ValueError, match="momentum"):
        impl.MomentumOptimizer(momentum=1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        impl.MomentumOptimizer(learning_rate=-1)
    with pytest.raises(TypeError, match="nesterov"):
        impl.MomentumOptimizer(nesterov="yes")


def test_changing_shapes_after_the_first_step_is_rejected(impl):
    opt = impl.Adam()
    opt.update(good(), good())
    params, grads = good(), good()
    params["b"], grads["b"] = np.ones(6, F32), np.ones(6, F32)
    with pytest.raises(ValueError, match=r"shape"):
        opt.update(params, grads)
    params, grads = good(), good()
    params["b"], grads["b"] = np.ones(5), np.ones(5)
    with pytest.raises(TypeError, match=r"dtype"):
        opt.update(params, grads)


def test_new_parameter_keys_after_the_first_step_are_rejected(impl):
    opt = impl.MomentumOptimizer()
    opt.update(good(), good())
    params, grads = good(), good()
    params["c"], grads["c"] = np.ones(2, F32), np.ones(2, F32)
    with pytest.raises(ValueError, match="'c'"):
        opt.update(params, grads)


@pytest.mark.parametrize("case", bad_cases()[:10], ids=lambda c: c[0])
def test_adam_optimizer_rejects_bad_input_and_changes_nothing(impl, case):
    _, make, error, message = case
    p, g = make(good(), good())
    state = {}
    impl.adam_optimizer(np.ones(5, F32), np.ones(5, F32), state)
    before = snapshot({"p": p["b"]}, {"g": g["b"]}, state)
    with pytest.raises(error, match=message.replace(r"\['b'\]", "")):
        impl.adam_optimizer(p["b"], g["b"], state)
    assert_unchanged(before, {"p": p["b"]}, {"g": g["b"]}, state)


def test_adam_optimizer_fresh_state_is_untouched_by_a_failed_call(impl):
    state = {}
    with pytest.raises(TypeError):
        impl.adam_optimizer(np.ones(3, F32), np.ones(3, np.float64), state)
    assert state == {}


@pytest.mark.parametrize(
    "grads, error, message",
    [
        ({"a": np.ones(3, np.int32)}, TypeError, r"gradients\['a'\].*dtype"),
        ({"a": np.ones(3, F32), "b": np.ones(3)}, TypeError, r"gradients\['b'\].*dtype"),
        ({"a": np.ones(3, F32), "b": np.ones(8, F32)[::2]}, ValueError, "C-contiguous"),
        ({"a": np.ones(3, F32), "b": np.ones((2, 2), F32, order="F")}, ValueError, "C-contiguous"),
        ([np.ones(3, F32)], TypeError, "gradients must be a dict"),
    ],
)
def test_clip_grad_norm_rejects_bad_input_and_changes_nothing(impl, grads, error, message):
    before = copy.deepcopy(grads)
    with pytest.raises(error, match=message):
        impl.clip_grad_norm(grads, 0.01)
    if isinstance(grads, dict):
        assert_unchanged((before,), grads)


def test_clip_grad_norm_rejects_the_same_array_twice(impl):
    a = np.full(4, 10.0, F32)
    with pytest.raises(ValueError, match="share memory"):
        impl.clip_grad_norm({"a": a, "b": a}, 1.0)
    np.testing.assert_array_equal(a, 10.0)


@pytest.mark.parametrize("kw, message", [({"max_norm": -1.0}, "max_norm"), ({"norm_type": 0.0}, "norm_type")])
def test_clip_grad_norm_rejects_bad_arguments(impl, kw, message):
    args = {"max_norm": 1.0, **kw}
    with pytest.raises(ValueError, match=message):
        impl.clip_grad_norm({"a": np.ones(3)}, **args)


def test_clip_grad_norm_error_if_nonfinite_raises_and_changes_nothing(impl):
    grads = {"a": np.array([1.0, np.nan]), "b": np.full(3, 100.0)}
    with pytest.raises(ValueError, match="finite"):
        impl.clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(grads["b"], 100.0)
    assert np.isnan(impl.clip_grad_norm(grads, 1.0))
    assert np.isnan(grads["b"]).all()


def unaligned(n):
    """A writeable, C-contiguous float32 array whose data is not 4-byte aligned."""
    a = np.zeros(4 * n + 1, np.uint8)[1:].view(F32)
    assert not a.flags.aligned and a.flags.c_contiguous and a.flags.writeable
    return a


def test_unaligned_output_is_refused_by_the_kernels():
    import gradfast as gf

    p = unaligned(5)
    p[...] = 1.0
    opt = gf.Adam()
    with pytest.raises(ValueError, match=r"params\['w'\] must be aligned"):
        opt.update({"w": p}, {"w": np.ones(5, F32)})
    np.testing.assert_array_equal(p, 1.0)
    assert opt.step == 0


def test_unaligned_gradient_is_copied_and_used():
    import gradfast as gf

    g = unaligned(5)
    g[...] = 2.0
    p_gf, p_ref = {"w": np.ones(5, F32)}, {"w": np.ones(5, F32)}
    gf.MomentumOptimizer().update(p_gf, {"w": g})
    gf.reference.MomentumOptimizer().update(p_ref, {"w": g})
    np.testing.assert_array_equal(p_gf["w"], p_ref["w"])


def test_switching_amsgrad_on_after_the_first_step_is_rejected(impl):
    opt = impl.Adam()
    params, grads = good(), good()
    opt.update(params, grads)
    before = snapshot(params, opt.state)
    opt.amsgrad = True
    with pytest.raises(ValueError, match=r"state\['a'\]\['max_exp_avg_sq'\] must be a state array"):
        opt.update(params, grads)
    assert_unchanged(before, params, opt.state)
