"""gradfast's LAMB, LARS and LayerAdaptiveLR against the NumPy reference, optax, and themselves
(resumed runs, thread counts, bad input)."""

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
import test_errors
from conftest import optax_peer
from hypothesis import given
from hypothesis import strategies as st
from test_optim import assert_runs_agree, problems, run

LAMB_HYPER = {
    "learning_rate": st.floats(0.0, 0.1),
    "beta1": st.floats(0.0, 0.999),
    "beta2": st.floats(0.0, 0.9999),
    "epsilon": st.floats(1e-10, 1e-3),
    "weight_decay": st.sampled_from([0.0, 1e-4, 0.1]),
}
LARS_HYPER = {
    "learning_rate": st.floats(0.0, 1.0),
    "momentum": st.floats(0.0, 0.99),
    "weight_decay": st.sampled_from([0.0, 1e-4, 0.1]),
    "trust_coefficient": st.floats(1e-4, 1.0),
    "epsilon": st.floats(0.0, 1e-3),
}


@given(problems(), st.fixed_dictionaries(LAMB_HYPER))
def test_lamb_matches_reference(problem, hyper):
    o_gf, o_ref = assert_runs_agree(lambda m: m.LAMB(**hyper), problem)
    assert o_gf.step == o_ref.step == len(problem[1])


@given(problems(), st.fixed_dictionaries(LARS_HYPER))
def test_lars_matches_reference(problem, hyper):
    assert_runs_agree(lambda m: m.LARS(**hyper), problem)


@given(problems(), st.floats(0.0, 1.0), st.floats(0.0, 0.9999), st.floats(0.0, 1e-3), st.data())
def test_layer_adaptive_lr_matches_reference_bitwise(problem, lr, beta, eps, data):
    """No norms, so nothing to round differently: every call of each kind agrees bit for bit,
    with calls naming different subsets of the layers."""
    params, grads = problem
    opts = gf.LayerAdaptiveLR(lr, beta, epsilon=eps), ref.LayerAdaptiveLR(lr, beta, epsilon=eps)
    ps = [{k: p.copy() for k, p in params.items()} for _ in opts]
    for g in grads:
        kind = data.draw(st.sampled_from(["update", "apply_gradients", "compute_lr"]))
        keys = data.draw(st.lists(st.sampled_from(sorted(params)), min_size=1, unique=True))
        sub_g = {k: g[k] for k in keys}
        if kind == "compute_lr":
            r = [o.compute_lr(keys[0], g[keys[0]]) for o in opts]
            np.testing.assert_array_equal(r[0], r[1])
            assert r[0].dtype == g[keys[0]].dtype
        elif kind == "apply_gradients":
            new = [o.apply_gradients({k: p[k] for k in keys}, sub_g) for o, p in zip(opts, ps)]
            for k in keys:
                np.testing.assert_array_equal(new[0][k], new[1][k])
                assert new[0][k] is not ps[0][k]
        else:
            for o, p in zip(opts, ps):
                o.update({k: p[k] for k in keys}, sub_g)
        for k in params:
            np.testing.assert_array_equal(ps[0][k], ps[1][k])
        assert opts[0].step == opts[1].step and opts[0].layer_steps == opts[1].layer_steps
        assert opts[0].state.keys() == opts[1].state.keys()
        for k in opts[0].state:
            np.testing.assert_array_equal(opts[0].state[k]["square_avg"], opts[1].state[k]["square_avg"])


def _optax_steps(make_tx, params, grads):
    """``params`` after optax's ``make_tx(optax)`` has applied ``grads`` in float64."""
    jax, jnp, optax = optax_peer()
    tx = make_tx(optax)
    with jax.enable_x64(True):
        p = {k: jnp.asarray(v) for k, v in params.items()}
        state = tx.init(p)
        for g in grads:
            updates, state = tx.update({k: jnp.asarray(v) for k, v in g.items()}, state, p)
            p = optax.apply_updates(p, updates)
        return {k: np.asarray(v) for k, v in p.items()}


def _float64_problem(seed, steps=4):
    rng = np.random.default_rng(seed)
    params = {"w": rng.standard_normal((8, 5)), "b": rng.standard_normal(5), "z": np.zeros(3)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(steps)]
    return params, grads


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_lamb_matches_optax(weight_decay):
    params, grads = _float64_problem(0)
    theirs = _optax_steps(lambda optax: optax.lamb(0.05, 0.8, 0.99, eps=1e-6, weight_decay=weight_decay), params, grads)
    ours, _ = run(gf.LAMB(0.05, 0.8, 0.99, 1e-6, weight_decay), params, grads)
    for k in params:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-12, atol=1e-14)


def test_lars_matches_optax_without_weight_decay():
    # the norm conventions (ours ||g|| + wd ||p||, optax ||g + wd p||) agree at wd = 0
    params, grads = _float64_problem(1)
    theirs = _optax_steps(
        lambda optax: optax.lars(0.5, weight_decay=0.0, trust_coefficient=0.02, eps=1e-9, momentum=0.7), params, grads
    )
    ours, _ = run(gf.LARS(0.5, 0.7, 0.0, 0.02, 1e-9), params, grads)
    for k in params:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["LAMB", "LARS", "LayerAdaptiveLR"])
def test_resumed_run_is_bitwise_identical(impl, name):
    rng = np.random.default_rng(2)
    params = {"a": rng.standard_normal((6, 5)).astype(np.float32), "b": rng.standard_normal(4).astype(np.float32)}
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()} for _ in range(6)]
    make = getattr(impl, name)
    straight = make(0.01)
    p1 = {k: v.copy() for k, v in params.items()}
    for g in grads:
        straight.update(p1, g)

    first = make(0.01)
    p2 = {k: v.copy() for k, v in params.items()}
    for g in grads[:3]:
        first.update(p2, g)
    saved = first.state_dict()
    for g in grads[3:]:  # the saved dict is a copy: later steps do not change it
        first.update({k: v.copy() for k, v in p2.items()}, g)
    resumed = make(0.5)
    resumed.load_state_dict(saved)
    assert resumed.learning_rate == 0.01
    for g in grads[3:]:
        resumed.update(p2, g)
    for k in params:
        np.testing.assert_array_equal(p1[k], p2[k])
    assert resumed.step == straight.step == 6


@pytest.mark.parametrize("name", ["LAMB", "LARS", "LayerAdaptiveLR"])
def test_assigned_hyperparameters_take_effect(impl, name):
    opt = getattr(impl, name)(0.1)
    params = {"w": np.ones(4)}
    opt.update(params, {"w": np.full(4, 0.5)})
    before = params["w"].copy()
    opt.learning_rate = 0.0
    opt.update(params, {"w": np.full(4, 0.5)})
    if name == "LARS":  # the velocity still moves the weights at lr = 0
        assert not np.array_equal(params["w"], before)
        opt.momentum = 0.0
        before = params["w"].copy()
        opt.update(params, {"w": np.full(4, 0.5)})
    np.testing.assert_array_equal(params["w"], before)


def test_layer_adaptive_lr_counts_steps_and_layers_as_the_reference():
    opt = gf.LayerAdaptiveLR(0.1, 0.5)
    opt.compute_lr("a", np.ones(3))
    assert (opt.step, opt.layer_steps) == (0, {"a": 1})
    out = opt.apply_gradients({"a": np.ones(3), "b": np.ones(2)}, {"a": np.ones(3), "b": np.ones(2)})
    assert (opt.step, opt.layer_steps) == (1, {"a": 2, "b": 1}) and out.keys() == {"a", "b"}
    p = {"b": np.ones(2)}
    assert opt.update(p, {"b": np.ones(2)}) is p
    assert (opt.step, opt.layer_steps) == (2, {"a": 2, "b": 2})
    assert opt.layer_stats["b"]["square_avg"] is opt.state["b"]["square_avg"]


def steps_with(threads, name, params, grads):
    gf.set_num_threads(threads)
    params = {k: v.copy() for k, v in params.items()}
    opt = getattr(gf, name)(0.01)
    outs = []
    for g in grads:
        opt.update(params, g)
        if name == "LayerAdaptiveLR":
            outs.append(opt.apply_gradients(params, g))
    return params, outs


@pytest.mark.parametrize("name", ["LAMB", "LARS", "LayerAdaptiveLR"])
def test_one_thread_equals_many_threads_bitwise(name):
    rng = np.random.default_rng(0)
    # big enough that every kernel uses the pool (the tests lower its threshold to 1 MiB)
    params = {"big": rng.standard_normal(700_007).astype(np.float32), "tiny": np.ones((2, 2), np.float32)}
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()} for _ in range(3)]
    threads = gf.get_num_threads()
    try:
        one = steps_with(1, name, params, grads)
        for n in (2, 3, 5):
            many = steps_with(n, name, params, grads)
            for k in params:
                np.testing.assert_array_equal(one[0][k], many[0][k])
            for a, b in zip(one[1], many[1]):
                for k in a:
                    np.testing.assert_array_equal(a[k], b[k])
    finally:
        gf.set_num_threads(threads)


@pytest.mark.parametrize("later_step", [False, True], ids=["first-step", "later-step"])
@pytest.mark.parametrize("case", test_errors.bad_cases(), ids=lambda c: c[0])
@pytest.mark.parametrize("name", ["LAMB", "LARS", "LayerAdaptiveLR"])
def test_bad_input_raises_and_changes_nothing(impl, name, case, later_step):
    optimizer = getattr(impl, name)()
    params, grads = test_errors.good(), test_errors.good()
    if later_step:
        optimizer.update(params, grads)
    _, make, error, message = case
    params, grads = make(params, grads)
    before = test_errors.snapshot(params, grads, optimizer.state)
    step, layer_steps = optimizer.step, dict(getattr(optimizer, "layer_steps", {}))
    with pytest.raises(error, match=message):
        optimizer.update(params, grads)
    test_errors.assert_unchanged(before, params, grads, optimizer.state)
    assert optimizer.step == step and getattr(optimizer, "layer_steps", {}) == layer_steps


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda o: o.apply_gradients({"a": np.ones(3)}, {"a": np.ones(3, np.float32)}), TypeError, "gradients"),
        (lambda o: o.apply_gradients({"a": np.ones(3)}, {"b": np.ones(3)}), ValueError, "gradients"),
        (lambda o: o.apply_gradients({"a": np.ones(4)}, {"a": np.ones(4)}), ValueError, r"params\['a'\]"),
        (lambda o: o.apply_gradients({"a": o.state["a"]["square_avg"]}, {"a": np.ones(3)}), ValueError, "share"),
        (lambda o: o.compute_lr("a", np.ones(3, np.float32)), ValueError, "gradient must have"),
        (lambda o: o.compute_lr(1, np.ones(3)), TypeError, "layer_name"),
        (lambda o: o.compute_lr("a", o.state["a"]["square_avg"]), ValueError, "share"),
    ],
)
def test_layer_adaptive_lr_bad_calls_change_nothing(impl, call, error, message):
    opt = impl.LayerAdaptiveLR()
    opt.compute_lr("a", np.full(3, 2.0))
    saved = opt.state_dict()
    with pytest.raises(error, match=message):
        call(opt)
    now = opt.state_dict()
    assert (now["step"], now["layer_steps"]) == (saved["step"], saved["layer_steps"])
    np.testing.assert_array_equal(now["state"]["a"]["square_avg"], saved["state"]["a"]["square_avg"])


def test_apply_gradients_reads_params_of_any_layout():
    base = np.arange(24.0).reshape(4, 6)
    params = {"w": base[:, ::2], "f": np.asfortranarray(base)}
    grads = {"w": np.ones((4, 3)), "f": np.full((4, 6), 0.5)}
    ours = gf.LayerAdaptiveLR(0.1).apply_gradients(params, grads)
    theirs = ref.LayerAdaptiveLR(0.1).apply_gradients(params, grads)
    for k in params:
        np.testing.assert_array_equal(ours[k], theirs[k])


@pytest.mark.parametrize("name", ["LAMB", "LARS", "LayerAdaptiveLR"])
def test_an_optimizer_can_be_deep_copied_and_pickled(impl, name):
    import copy
    import pickle

    opt, p = getattr(impl, name)(0.1), {"w": np.ones(3)}
    opt.update(p, {"w": np.full(3, 0.5)})
    for twin in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        q, r = {"w": p["w"].copy()}, {"w": p["w"].copy()}
        twin.update(q, {"w": np.full(3, 0.25)})
        copy.deepcopy(opt).update(r, {"w": np.full(3, 0.25)})
        np.testing.assert_array_equal(q["w"], r["w"])
        assert twin.step == 2


@pytest.mark.parametrize("kind", ["OrderedDict", "MappingProxyType", "UserDict"])
def test_any_mapping_works_and_agrees_with_the_reference(kind):
    import collections
    import types

    wrap = {
        "OrderedDict": collections.OrderedDict,
        "MappingProxyType": types.MappingProxyType,
        "UserDict": collections.UserDict,
    }[kind]
    rng = np.random.default_rng(4)
    params = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    for name in ("LAMB", "LARS", "LayerAdaptiveLR"):
        ps = [{k: v.copy() for k, v in params.items()} for _ in range(2)]
        for mod, p in zip((gf, ref), ps):
            opt = getattr(mod, name)(0.1)
            opt.update(wrap(p), wrap(grads))
            opt.update(wrap(p), wrap(grads))
        for k in params:
            np.testing.assert_allclose(ps[0][k], ps[1][k], rtol=1e-12)
    new = [mod.LayerAdaptiveLR(0.1).apply_gradients(wrap(params), wrap(grads)) for mod in (gf, ref)]
    for k in params:
        np.testing.assert_array_equal(new[0][k], new[1][k])
    clipped = [{k: v.copy() for k, v in grads.items()} for _ in range(2)]
    for mod, g in zip((gf, ref), clipped):
        mod.adaptive_grad_clip(wrap(g), wrap(params), 0.01)
        out = mod.AdaptiveClipper(0.1, 0.5).clip_gradients(wrap(g))
        assert out.keys() == params.keys()
    for k in params:
        np.testing.assert_allclose(clipped[0][k], clipped[1][k], rtol=1e-12)
