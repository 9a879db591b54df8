"""Proofs for the reference LayerAdaptiveLR (the original design's), LAMB and LARS.

Expected values come from the original design's own code (copied below as the oracle for
LayerAdaptiveLR), hand-worked 2-element layers, closed forms, and the papers' formulas
written out here in float64 with np.linalg.norm.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import TOL, assert_bad_hyper_rejected
from gradfast.reference import LAMB, LARS, LayerAdaptiveLR
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = [np.float32, np.float64]
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def rand(rng, shape, dtype, scale=1.0):
    return np.asarray(rng.standard_normal(shape) * scale).astype(dtype)


def _readonly(a):
    a.flags.writeable = False
    return a


class SeedLayerAdaptiveLR:
    """The original design document's class (slide 14), verbatim apart from formatting."""

    def __init__(self, base_lr=0.01, beta=0.999):
        self.base_lr = base_lr
        self.beta = beta
        self.layer_stats = {}

    def compute_lr(self, layer_name, gradient):
        if layer_name not in self.layer_stats:
            self.layer_stats[layer_name] = {"square_avg": np.zeros_like(gradient), "step": 0}
        stats = self.layer_stats[layer_name]
        stats["step"] += 1
        stats["square_avg"] = self.beta * stats["square_avg"] + (1 - self.beta) * np.square(gradient)
        square_avg_corrected = stats["square_avg"] / (1 - self.beta ** stats["step"])
        adaptive_lr = self.base_lr / (np.sqrt(square_avg_corrected) + 1e-8)
        return adaptive_lr

    def apply_gradients(self, params, gradients):
        updates = {}
        for name in params:
            lr = self.compute_lr(name, gradients[name])
            updates[name] = params[name] - lr * gradients[name]
        return updates


def paper_lamb(params, grads_seq, lr, b1, b2, eps, wd):
    """LAMB in float64 from the paper's formulas; every dict entry is a layer."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    for t, grads in enumerate(grads_seq, start=1):
        for k in p:
            g = grads[k].astype(np.float64)
            m[k] = b1 * m[k] + (1 - b1) * g
            v2[k] = b2 * v2[k] + (1 - b2) * g**2
            r = (m[k] / (1 - b1**t)) / (np.sqrt(v2[k] / (1 - b2**t)) + eps) + wd * p[k]
            w_norm, r_norm = np.linalg.norm(p[k].ravel()), np.linalg.norm(r.ravel())
            trust = w_norm / r_norm if w_norm > 0 and r_norm > 0 else 1.0
            p[k] = p[k] - lr * trust * r
    return p


def paper_lars(params, grads_seq, lr, mu, wd, tc, eps):
    """LARS with momentum in float64 from the paper's Algorithm 1; every dict entry is a layer."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    vel = {k: np.zeros_like(v) for k, v in p.items()}
    for grads in grads_seq:
        for k in p:
            g = grads[k].astype(np.float64)
            w_norm, g_norm = np.linalg.norm(p[k].ravel()), np.linalg.norm(g.ravel())
            local = tc * w_norm / (g_norm + wd * w_norm + eps) if w_norm > 0 and g_norm > 0 else 1.0
            vel[k] = mu * vel[k] + lr * local * (g + wd * p[k])
            p[k] = p[k] - vel[k]
    return p


# -- LayerAdaptiveLR ------------------------------------------------------------------------


@given(
    dtype=st.sampled_from(DTYPES),
    layer_shapes=st.lists(shapes, min_size=1, max_size=3),
    base_lr=st.floats(1e-4, 1.0),
    beta=st.floats(0.0, 0.9999),
    steps=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_layer_adaptive_lr_matches_the_seed_bitwise(dtype, layer_shapes, base_lr, beta, steps, seed):
    rng = np.random.default_rng(seed)
    params = {f"l{i}": rand(rng, s, dtype) for i, s in enumerate(layer_shapes)}
    ours, seed_opt = LayerAdaptiveLR(base_lr, beta), SeedLayerAdaptiveLR(base_lr, beta)
    in_place = LayerAdaptiveLR(base_lr, beta)
    # The seed's arithmetic is NumPy 2's: in NumPy 1 a 0-d float32 array times a Python float is
    # float64, a 1-element array stays float32. The seed runs on 1-element arrays on both.
    p_seed = {k: np.atleast_1d(p.copy()) for k, p in params.items()}
    p_ours = {k: p.copy() for k, p in params.items()}
    p_in_place = {k: p.copy() for k, p in params.items()}
    for step in range(steps):
        grads = {k: rand(rng, p.shape, dtype) for k, p in params.items()}
        if step % 2:  # an extra compute_lr on the first layer only: per-layer step counts
            g = rand(rng, params["l0"].shape, dtype)
            seed_lr = seed_opt.compute_lr("l0", np.atleast_1d(g)).reshape(g.shape)
            np.testing.assert_array_equal(ours.compute_lr("l0", g), seed_lr)
            in_place.compute_lr("l0", g)
        before = {k: p.copy() for k, p in p_ours.items()}
        new_ours = ours.apply_gradients(p_ours, grads)
        p_seed = seed_opt.apply_gradients(p_seed, {k: np.atleast_1d(g) for k, g in grads.items()})
        for k in params:
            np.testing.assert_array_equal(p_ours[k], before[k])  # apply_gradients writes nothing
            assert new_ours[k] is not p_ours[k] and new_ours[k].dtype == dtype
            np.testing.assert_array_equal(new_ours[k], p_seed[k].reshape(new_ours[k].shape))
        p_ours = new_ours
        assert in_place.update(p_in_place, grads) is p_in_place
        for k in params:
            np.testing.assert_array_equal(p_in_place[k], p_seed[k].reshape(p_in_place[k].shape))
    for k, stats in seed_opt.layer_stats.items():
        assert ours.layer_stats[k]["step"] == stats["step"] == ours.layer_steps[k]
        np.testing.assert_array_equal(ours.layer_stats[k]["square_avg"], stats["square_avg"])


def test_layer_adaptive_lr_by_hand():
    opt = LayerAdaptiveLR(base_lr=0.1, beta=0.5, epsilon=0.0)
    # step 1: square_avg = 0.5 * 4 = 2, corrected = 2 / (1 - 0.5) = 4, rate = 0.1 / 2
    np.testing.assert_allclose(opt.compute_lr("w", np.array([2.0])), [0.05], rtol=1e-15)
    # step 2: square_avg = 0.5 * 2 + 0.5 * 16 = 9, corrected = 9 / 0.75 = 12
    np.testing.assert_allclose(opt.compute_lr("w", np.array([4.0])), [0.1 / math.sqrt(12.0)], rtol=1e-15)
    np.testing.assert_allclose(opt.state["w"]["square_avg"], [9.0])
    assert opt.layer_steps == {"w": 2} and opt.step == 0


def test_layer_adaptive_lr_steps_are_per_layer():
    # with a constant gradient the bias correction is exact at every step of that layer:
    # square_avg = (1 - beta^n) g^2, so rate = lr / (|g| + eps). A layer that starts late
    # only gets this if it is corrected with its own step count.
    opt = LayerAdaptiveLR(base_lr=0.1, beta=0.5, epsilon=1e-3)
    for _ in range(4):
        opt.compute_lr("a", np.array([2.0, -2.0]))
    p = {"a": np.array([1.0, 1.0]), "b": np.array([0.0])}
    out = opt.apply_gradients(p, {"a": np.array([2.0, -2.0]), "b": np.array([3.0])})
    assert opt.layer_steps == {"a": 5, "b": 1} and opt.step == 1
    np.testing.assert_allclose(out["a"], [1.0 - 0.2 / 2.001, 1.0 + 0.2 / 2.001], rtol=1e-14)
    np.testing.assert_allclose(out["b"], [-0.3 / 3.001], rtol=1e-14)
    # an update may name any subset of the layers, as the original design's apply_gradients
    opt.update({"b": p["b"]}, {"b": np.array([3.0])})
    assert opt.layer_steps == {"a": 5, "b": 2} and opt.step == 2
    np.testing.assert_allclose(p["b"], [-0.3 / 3.001], rtol=1e-14)


def test_layer_adaptive_lr_names_and_views():
    opt = LayerAdaptiveLR(base_lr=0.2, beta=0.9)
    assert opt.learning_rate == opt.base_lr == 0.2
    opt.base_lr = 0.3
    assert opt.learning_rate == 0.3
    opt.learning_rate = 0.4
    assert opt.base_lr == 0.4
    with pytest.raises(ValueError, match=r"LayerAdaptiveLR: base_lr must be a finite number in \[0.0, inf\]"):
        opt.base_lr = -1.0
    with pytest.raises(ValueError, match=r"LayerAdaptiveLR: learning_rate must be a finite number"):
        opt.learning_rate = -1.0
    assert opt.learning_rate == 0.4
    with pytest.raises(ValueError, match=r"LayerAdaptiveLR: base_lr must be a finite number"):
        LayerAdaptiveLR(base_lr=-0.1)
    with pytest.raises(ValueError, match=r"LayerAdaptiveLR: beta must be a finite number in \[0.0, 1.0\)"):
        LayerAdaptiveLR(beta=1.0)
    with pytest.raises(ValueError, match=r"LayerAdaptiveLR: epsilon must be a finite number in \[0.0, inf\]"):
        LayerAdaptiveLR(epsilon=-1e-8)
    opt.compute_lr("w", np.ones(2))
    view = opt.layer_stats
    assert set(view) == {"w"} and view["w"]["step"] == 1
    assert view["w"]["square_avg"] is opt.state["w"]["square_avg"]


def test_layer_adaptive_lr_apply_gradients_reads_any_layout():
    g = np.arange(1.0, 7.0).reshape(2, 3)
    p = np.linspace(-1, 1, 6).reshape(2, 3)
    a = LayerAdaptiveLR().apply_gradients({"w": p}, {"w": g})["w"]
    p_f, g_f = _readonly(np.asfortranarray(p)), np.asfortranarray(g)
    b = LayerAdaptiveLR().apply_gradients({"w": p_f}, {"w": g_f})["w"]
    np.testing.assert_array_equal(a, b)
    assert b.flags.c_contiguous


def test_layer_adaptive_lr_state_dict_round_trip():
    rng = np.random.default_rng(11)
    params = {"a": rng.standard_normal((3, 2)), "b": rng.standard_normal(4)}
    grads = [{k: rng.standard_normal(p.shape) for k, p in params.items()} for _ in range(5)]
    extra = rng.standard_normal((3, 2))

    def run(opt, p, gs, with_extra):
        for i, g in enumerate(gs):
            opt.update(p, g)
            if with_extra and i == 0:
                opt.compute_lr("a", extra)

    straight, p_straight = LayerAdaptiveLR(0.05, 0.9), {k: v.copy() for k, v in params.items()}
    run(straight, p_straight, grads, True)
    first, p_res = LayerAdaptiveLR(0.05, 0.9), {k: v.copy() for k, v in params.items()}
    run(first, p_res, grads[:2], True)
    saved = first.state_dict()
    assert saved["layer_steps"] == {"a": 3, "b": 2} and saved["step"] == 2
    assert saved["hyperparams"] == {"learning_rate": 0.05, "beta": 0.9, "epsilon": 1e-8}
    second = LayerAdaptiveLR(1.0, 0.1, epsilon=1.0)
    second.load_state_dict(saved)
    saved["state"]["a"]["square_avg"] += 1.0  # the loaded state is a copy
    saved["layer_steps"]["a"] = 100
    run(second, p_res, grads[2:], False)
    assert second.layer_steps == straight.layer_steps and second.step == straight.step
    assert second.base_lr == 0.05 and second.epsilon == 1e-8
    for k in params:
        np.testing.assert_array_equal(p_res[k], p_straight[k])
        np.testing.assert_array_equal(second.state[k]["square_avg"], straight.state[k]["square_avg"])


def test_layer_adaptive_lr_load_bad_state_changes_nothing():
    opt = LayerAdaptiveLR()
    opt.compute_lr("a", np.ones(2))
    good = opt.state_dict()
    cases = [
        ({k: v for k, v in good.items() if k != "layer_steps"}, ValueError, r"d must have key 'layer_steps'"),
        ({**good, "layer_steps": [1]}, TypeError, r"d\['layer_steps'\] must be a dict of ints, got list"),
        ({**good, "layer_steps": {}}, ValueError, r"d\['layer_steps'\] must have key 'a' like d\['state'\]"),
        (
            {**good, "layer_steps": {"a": 1, "b": 1}},
            ValueError,
            r"d\['layer_steps'\] must have only the keys of d\['state'\], got extra key 'b'",
        ),
        ({**good, "layer_steps": {"a": -1}}, ValueError, r"d\['layer_steps'\]\['a'\] must be an int in \[0, "),
        ({**good, "layer_steps": {"a": 2**64}}, ValueError, r"d\['layer_steps'\]\['a'\] must be an int in \[0, "),
        ({**good, "layer_steps": {"a": 1.5}}, TypeError, r"d\['layer_steps'\]\['a'\] must be an int"),
    ]
    fresh = LayerAdaptiveLR()
    with pytest.raises(ValueError, match=r"LayerAdaptiveLR: beta must be a finite number in \[0.0, 1.0\)"):
        fresh.load_state_dict({**good, "hyperparams": {"beta": 1.0}})
    for d, exc, match in cases:
        with pytest.raises(exc, match=r"LayerAdaptiveLR\.load_state_dict: " + match):
            fresh.load_state_dict(d)
        assert fresh.state == {} and fresh.layer_steps == {} and fresh.step == 0 and fresh.beta == 0.999


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_adaptive_lr_bad_compute_lr_changes_nothing(dtype):
    opt = LayerAdaptiveLR()
    opt.compute_lr("w", np.ones((2, 3), dtype))
    sq = opt.state["w"]["square_avg"].copy()
    other = np.float32 if dtype == np.float64 else np.float64
    cases = [
        (3, np.ones((2, 3), dtype), TypeError, r"layer_name must be a str, got int"),
        ("w", np.ones((2, 3), np.int32), TypeError, r"gradient must have dtype float32 or float64, got int"),
        ("w", np.ones((2, 3), np.float16), TypeError, r"gradient must have dtype float32 or float64, got f"),
        ("w", [1.0, 2.0], TypeError, r"gradient must be a numpy.ndarray, got list"),
        ("w", np.ones((3, 2), dtype), ValueError, r"gradient must have shape \(2, 3\) and dtype"),
        (
            "w",
            np.ones((2, 3), other),
            ValueError,
            rf"gradient must have shape \(2, 3\) and dtype {np.dtype(dtype)} as when",
        ),
        (
            "w",
            opt.state["w"]["square_avg"],
            ValueError,
            r"state\['w'\]\['square_avg'\] must not share memory with gradient",
        ),
    ]
    for name, g, exc, match in cases:
        with pytest.raises(exc, match=r"LayerAdaptiveLR\.compute_lr: " + match):
            opt.compute_lr(name, g)
        assert opt.layer_steps == {"w": 1}
        np.testing.assert_array_equal(opt.state["w"]["square_avg"], sq)


def test_layer_adaptive_lr_bad_apply_gradients_changes_nothing():
    opt = LayerAdaptiveLR()
    opt.apply_gradients({"w": np.ones(3)}, {"w": np.ones(3)})
    cases = [
        (
            {"w": np.ones(3), "b": np.ones(2, np.float32)},
            {"w": np.ones(3), "b": np.ones(2, np.float32)},
            TypeError,
            r"params\['b'\] must have dtype float64 like the others",
        ),
        ({"w": np.ones(3)}, {"w": np.ones(3, np.float32)}, TypeError, r"gradients\['w'\] must have dtype f"),
        ({"w": np.ones(3)}, {"w": np.ones(4)}, ValueError, r"gradients\['w'\] must have shape \(3,\)"),
        ({"w": np.ones(3), "x": np.ones(1)}, {"w": np.ones(3)}, ValueError, r"gradients must have key 'x'"),
        (
            {"w": np.ones(3, np.float32)},
            {"w": np.ones(3, np.float32)},
            ValueError,
            r"params\['w'\] must have shape \(3,\) and dtype float64 as when the optimizer state was created",
        ),
        ({"w": np.ones(3, np.int64)}, {"w": np.ones(3)}, TypeError, r"params\['w'\] must have dtype float"),
        ({"w": opt.state["w"]["square_avg"]}, {"w": np.ones(3)}, ValueError, r"must not share memory"),
    ]
    sq = opt.state["w"]["square_avg"].copy()
    for params, grads, exc, match in cases:
        with pytest.raises(exc, match=r"LayerAdaptiveLR.apply_gradients: .*" + match):
            opt.apply_gradients(params, grads)
        assert opt.layer_steps == {"w": 1} and opt.step == 1 and set(opt.state) == {"w"}
        np.testing.assert_array_equal(opt.state["w"]["square_avg"], sq)


# -- LAMB -----------------------------------------------------------------------------------


def test_lamb_one_step_by_hand():
    # step 1 with eps = 0: m_hat = g, v_hat = g^2, so r = sign(g) + wd * p
    p = {"w": np.array([3.0, 4.0])}  # ||p|| = 5
    LAMB(learning_rate=0.1, epsilon=0.0, weight_decay=0.0).update(p, {"w": np.array([1.0, -2.0])})
    # r = [1, -1], ||r|| = sqrt(2), trust = 5 / sqrt(2), p -= 0.1 * trust * r
    step = 0.1 * 5.0 / math.sqrt(2.0)
    np.testing.assert_allclose(p["w"], [3.0 - step, 4.0 + step], rtol=1e-15)

    p = {"w": np.array([3.0, 4.0])}
    LAMB(learning_rate=0.1, epsilon=0.0, weight_decay=0.5).update(p, {"w": np.array([1.0, -2.0])})
    # r = [1 + 1.5, -1 + 2] = [2.5, 1], ||r|| = sqrt(7.25)
    trust = 5.0 / math.sqrt(7.25)
    np.testing.assert_allclose(p["w"], [3.0 - 0.1 * trust * 2.5, 4.0 - 0.1 * trust * 1.0], rtol=1e-15)


def test_lamb_trust_ratio_is_one_for_zero_norms():
    # zero weights: ||p|| = 0, trust 1, and with eps = 0 r = sign(g): p = -lr * sign(g)
    p = {"z": np.zeros(2)}
    LAMB(learning_rate=0.1, epsilon=0.0).update(p, {"z": np.array([5.0, -0.5])})
    np.testing.assert_allclose(p["z"], [-0.1, 0.1], rtol=1e-15)
    # zero gradient and state: r = 0 / (0 + eps) + wd * p = wd * p, trust = ||p|| / ||wd p|| = 1 / wd,
    # so p -= lr * (1 / wd) * wd * p: p *= 1 - lr
    p = {"g0": np.array([1.0, -1.0])}
    LAMB(learning_rate=0.1, weight_decay=0.01).update(p, {"g0": np.zeros(2)})
    np.testing.assert_allclose(p["g0"], [0.9, -0.9], rtol=1e-15)
    # both zero: trust 1 and r = 0, nothing moves
    p = {"0": np.zeros(3)}
    LAMB(learning_rate=0.1).update(p, {"0": np.zeros(3)})
    np.testing.assert_array_equal(p["0"], np.zeros(3))


@pytest.mark.parametrize("wd", [0.0, 0.3])
def test_lamb_several_steps_closed_form(wd):
    # a constant gradient keeps m_hat = g and v_hat = g^2 exactly (bias correction), so with
    # eps = 0 every step has r = sign(g) + wd * p: iterate that without any moment arithmetic
    g = np.array([0.5, -3.0, 2.0])
    p = np.array([1.0, 2.0, -2.0])
    opt = LAMB(learning_rate=0.05, beta1=0.8, beta2=0.9, epsilon=0.0, weight_decay=wd)
    params = {"w": p.copy()}
    want = p.copy()
    for _ in range(6):
        opt.update(params, {"w": g})
        r = np.sign(g) + wd * want
        want = want - 0.05 * (math.hypot(*want) / math.hypot(*r)) * r
    np.testing.assert_allclose(params["w"], want, rtol=1e-13)


@given(
    dtype=st.sampled_from(DTYPES),
    layer_shapes=st.lists(shapes, min_size=1, max_size=3),
    lr=st.floats(1e-4, 0.1),
    b1=st.floats(0.0, 0.99),
    b2=st.floats(0.5, 0.9999),
    eps=st.floats(1e-8, 1e-3),
    wd=st.sampled_from([0.0, 0.01, 0.5]),
    steps=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_lamb_matches_paper_formulas(dtype, layer_shapes, lr, b1, b2, eps, wd, steps, seed):
    rng = np.random.default_rng(seed)
    params = {f"l{i}": rand(rng, s, dtype) for i, s in enumerate(layer_shapes)}
    grads_seq = [{k: rand(rng, p.shape, dtype) for k, p in params.items()} for _ in range(steps)]
    want = paper_lamb(params, grads_seq, lr, b1, b2, eps, wd)
    opt = LAMB(lr, b1, b2, eps, wd)
    for grads in grads_seq:
        opt.update(params, grads)
    tol = TOL[np.dtype(dtype)]
    for k, p in params.items():
        assert p.dtype == dtype
        np.testing.assert_allclose(p, want[k], rtol=tol["rtol"] * steps, atol=tol["atol"] * 10 * steps)


def test_lamb_layers_are_independent():
    rng = np.random.default_rng(2)
    params = {"big": rng.standard_normal((4, 4)) * 10, "small": rng.standard_normal(3) * 0.01}
    grads = [{k: rng.standard_normal(p.shape) for k, p in params.items()} for _ in range(3)]
    together = LAMB(0.01)
    p_together = {k: p.copy() for k, p in params.items()}
    for g in grads:
        together.update(p_together, g)
    for k in params:
        alone, p_alone = LAMB(0.01), {k: params[k].copy()}
        for g in grads:
            alone.update(p_alone, {k: g[k]})
        np.testing.assert_array_equal(p_alone[k], p_together[k])


# -- LARS -----------------------------------------------------------------------------------


def test_lars_two_steps_by_hand():
    # ||p|| = 5, ||g|| = 1, eps = wd = 0: local_lr = 0.01 * 5 / 1 = 0.05
    opt = LARS(learning_rate=1.0, momentum=0.9, weight_decay=0.0, trust_coefficient=0.01, epsilon=0.0)
    p, g = {"w": np.array([3.0, 4.0])}, {"w": np.array([0.6, 0.8])}
    opt.update(p, g)
    np.testing.assert_allclose(opt.state["w"]["velocity"], [0.03, 0.04], rtol=1e-14)
    np.testing.assert_allclose(p["w"], [2.97, 3.96], rtol=1e-15)
    # ||p|| = 4.95: local_lr = 0.0495, v = 0.9 * [0.03, 0.04] + 0.0495 * [0.6, 0.8]
    opt.update(p, g)
    np.testing.assert_allclose(opt.state["w"]["velocity"], [0.0567, 0.0756], rtol=1e-14)
    np.testing.assert_allclose(p["w"], [2.9133, 3.8844], rtol=1e-14)


def test_lars_weight_decay_by_hand():
    # local_lr = 0.01 * 5 / (1 + 0.5 * 5 + 1e-3); d = g + 0.5 p = [2.1, 2.8]
    p = {"w": np.array([3.0, 4.0])}
    LARS(learning_rate=2.0, weight_decay=0.5, trust_coefficient=0.01, epsilon=1e-3).update(
        p, {"w": np.array([0.6, 0.8])}
    )
    local = 0.05 / 3.501
    np.testing.assert_allclose(p["w"], [3.0 - 2.0 * local * 2.1, 4.0 - 2.0 * local * 2.8], rtol=1e-15)


def test_lars_local_lr_is_one_for_zero_norms():
    p = {"z": np.zeros(2), "g0": np.array([1.0, -2.0])}
    LARS(learning_rate=0.1, weight_decay=0.5).update(p, {"z": np.array([3.0, -1.0]), "g0": np.zeros(2)})
    np.testing.assert_allclose(p["z"], [-0.3, 0.1], rtol=1e-15)  # v = lr * g
    np.testing.assert_allclose(p["g0"], [1.0 - 0.05, -2.0 + 0.1], rtol=1e-15)  # v = lr * wd * p


@given(
    dtype=st.sampled_from(DTYPES),
    layer_shapes=st.lists(shapes, min_size=1, max_size=3),
    lr=st.floats(1e-3, 1.0),
    mu=st.floats(0.0, 0.99),
    wd=st.sampled_from([0.0, 1e-4, 0.1]),
    tc=st.floats(1e-4, 0.1),
    eps=st.sampled_from([0.0, 1e-9, 1e-3]),
    steps=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_lars_matches_paper_formulas(dtype, layer_shapes, lr, mu, wd, tc, eps, steps, seed):
    rng = np.random.default_rng(seed)
    params = {f"l{i}": rand(rng, s, dtype) for i, s in enumerate(layer_shapes)}
    grads_seq = [{k: rand(rng, p.shape, dtype) for k, p in params.items()} for _ in range(steps)]
    want = paper_lars(params, grads_seq, lr, mu, wd, tc, eps)
    opt = LARS(lr, mu, wd, tc, eps)
    for grads in grads_seq:
        opt.update(params, grads)
    tol = TOL[np.dtype(dtype)]
    for k, p in params.items():
        assert p.dtype == dtype
        np.testing.assert_allclose(p, want[k], rtol=tol["rtol"] * steps, atol=tol["atol"] * steps)


# -- all three: resuming, lr = 0, bad input ----------------------------------------------------


OPTIMIZERS = [
    lambda lr=0.05: LayerAdaptiveLR(lr, 0.9),
    lambda lr=0.05: LAMB(lr, 0.8, 0.95, 1e-6, 0.1),
    lambda lr=0.05: LARS(lr, 0.8, 1e-3, 0.01, 1e-9),
]
NAMES = ["LayerAdaptiveLR", "LAMB", "LARS"]


@pytest.mark.parametrize("make", OPTIMIZERS, ids=NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_state_dict_round_trip_resumes_bitwise(make, dtype):
    rng = np.random.default_rng(4)
    params = {"w": rand(rng, (3, 4), dtype), "b": rand(rng, (4,), dtype)}
    grads = [{k: rand(rng, p.shape, dtype) for k, p in params.items()} for _ in range(6)]
    straight, p_straight = make(), {k: p.copy() for k, p in params.items()}
    for g in grads:
        straight.update(p_straight, g)
    first, p_res = make(), {k: p.copy() for k, p in params.items()}
    for g in grads[:3]:
        first.update(p_res, g)
    saved = first.state_dict()
    assert saved["step"] == 3 and all(type(v) in (float, bool) for v in saved["hyperparams"].values())
    second = make(lr=123.0)
    second.load_state_dict(saved)
    for slots in saved["state"].values():
        for a in slots.values():
            a += 1.0  # the loaded arrays are copies
    for g in grads[3:]:
        second.update(p_res, g)
    assert second.step == 6 and second.learning_rate == 0.05
    for k in params:
        np.testing.assert_array_equal(p_res[k], p_straight[k])
        for s, a in straight.state[k].items():
            np.testing.assert_array_equal(second.state[k][s], a)


@pytest.mark.parametrize("make", OPTIMIZERS, ids=NAMES)
@given(dtype=st.sampled_from(DTYPES), shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_zero_learning_rate_leaves_params_unchanged(make, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    p = {"w": rand(rng, shape, dtype)}
    before = p["w"].copy()
    opt = make(lr=0.0)
    for _ in range(3):
        opt.update(p, {"w": rand(rng, shape, dtype)})
    np.testing.assert_array_equal(p["w"], before)


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (LAMB, dict(learning_rate=-1e-3), r"LAMB: learning_rate must be a finite number in \[0.0, inf\]"),
        (LAMB, dict(beta1=1.0), r"LAMB: beta1 must be a finite number in \[0.0, 1.0\), got 1.0"),
        (LAMB, dict(beta2=-0.5), r"LAMB: beta2 must be a finite number in \[0.0, 1.0\)"),
        (LAMB, dict(epsilon=-1.0), r"LAMB: epsilon must be a finite number in \[0.0, inf\]"),
        (LAMB, dict(weight_decay=-0.01), r"LAMB: weight_decay must be a finite number in \[0.0, inf\]"),
        (LAMB, dict(learning_rate=math.nan), r"LAMB: learning_rate must be a finite number"),
        (LARS, dict(learning_rate=-0.1), r"LARS: learning_rate must be a finite number in \[0.0, inf\]"),
        (LARS, dict(momentum=1.0), r"LARS: momentum must be a finite number in \[0.0, 1.0\)"),
        (LARS, dict(weight_decay=-1e-4), r"LARS: weight_decay must be a finite number in \[0.0, inf\]"),
        (LARS, dict(trust_coefficient=-1e-3), r"LARS: trust_coefficient must be a finite number"),
        (LARS, dict(epsilon=math.inf), r"LARS: epsilon must be a finite number"),
    ],
)
def test_bad_hyperparameters(cls, kwargs, match):
    opt, name = assert_bad_hyper_rejected(cls, kwargs, match)
    with pytest.raises(TypeError, match=rf"{cls.__name__}: {name} must be a real number, got str"):
        setattr(opt, name, "0.1")


def _bad_update_cases():
    ok = lambda: np.ones((2, 3))  # noqa: E731
    same = np.ones((2, 3))
    buf = np.ones(12)
    return [
        (
            {"w": np.ones((2, 3), np.int32)},
            {"w": ok()},
            TypeError,
            r"params\['w'\] must have dtype float32 or float64, got int32",
        ),
        (
            {"w": ok()},
            {"w": np.ones((2, 3), np.float16)},
            TypeError,
            r"gradients\['w'\] must have dtype float32 or float64, got float16",
        ),
        (
            {"w": ok()},
            {"w": np.ones((2, 3), np.float32)},
            TypeError,
            r"gradients\['w'\] must have dtype float64 like the others, got float32",
        ),
        ({"w": np.ones((2, 6))[:, ::2]}, {"w": ok()}, ValueError, r"params\['w'\] must be C-contiguous"),
        ({"w": np.asfortranarray(ok())}, {"w": ok()}, ValueError, r"params\['w'\] must be C-contiguous"),
        ({"w": _readonly(ok())}, {"w": ok()}, ValueError, r"params\['w'\] must be writeable"),
        ({"w": same}, {"w": same}, ValueError, r"params\['w'\] must not share memory with gradients\['w'\]"),
        (
            {"w": buf[:6].reshape(2, 3), "v": ok()},
            {"w": ok(), "v": buf[5:11].reshape(2, 3)},
            ValueError,
            r"params\['w'\] must not share memory with gradients\['v'\]",
        ),
        ({"w": buf[:6].reshape(2, 3), "v": buf[6:].reshape(2, 3)}, {"w": ok(), "v": ok()}, None, None),
        ({"w": ok()}, {"w": np.ones((3, 2))}, ValueError, r"gradients\['w'\] must have shape \(2, 3\)"),
        ({"w": ok()}, {}, ValueError, r"gradients must have key 'w' like params"),
        ({"w": ok()}, {"w": ok(), "x": ok()}, ValueError, r"gradients must have only the keys of params"),
        ([np.ones(3)], {"w": ok()}, TypeError, r"params must be a dict of numpy arrays"),
    ]


@pytest.mark.parametrize("make", OPTIMIZERS, ids=NAMES)
@pytest.mark.parametrize("fresh", [True, False])
def test_update_bad_input_changes_nothing(make, fresh):
    for params, grads, exc, match in _bad_update_cases():
        opt = make()
        if not fresh:
            first = {"w": np.full((2, 3), 2.0), "v": np.ones((2, 3))}
            opt.update(first, {"w": np.ones((2, 3)), "v": np.ones((2, 3))})
        saved = opt.state_dict()
        arrays = [a for d in (params, grads) if isinstance(d, dict) for a in d.values()]
        before = [a.copy() for a in arrays]
        if exc is None:  # disjoint views of one buffer are fine
            if fresh:
                opt.update(params, grads)
            continue
        with pytest.raises(exc, match=rf"{type(opt).__name__}.update: " + match):
            opt.update(params, grads)
        for a, b in zip(arrays, before):
            np.testing.assert_array_equal(a, b)
        now = opt.state_dict()
        assert now["step"] == saved["step"] and now.get("layer_steps") == saved.get("layer_steps")
        assert now["state"].keys() == saved["state"].keys()
        for k in saved["state"]:
            for s in saved["state"][k]:
                np.testing.assert_array_equal(now["state"][k][s], saved["state"][k][s])


@pytest.mark.parametrize("make", OPTIMIZERS, ids=NAMES)
def test_update_against_existing_state(make):
    opt = make()
    opt.update({"w": np.ones((2, 3))}, {"w": np.ones((2, 3))})
    state = opt.state["w"]
    slot = next(iter(state))
    cases = [
        ({"w": np.zeros((3, 2))}, None, ValueError, r"params\['w'\] must have shape \(2, 3\) and dtype"),
        ({"w": np.zeros((2, 3), np.float32)}, None, ValueError, r"dtype float64 as when the optimizer state"),
        ({"w": state[slot]}, None, ValueError, r"must not share memory"),
        (
            {"w": np.zeros((2, 3))},
            {"w": state[slot]},
            ValueError,
            rf"state\['w'\]\['{slot}'\] must not share memory with gradients\['w'\]",
        ),
    ]
    if not isinstance(opt, LayerAdaptiveLR):  # the original design's rule takes any subset of layers
        cases += [
            ({"w": np.zeros((2, 3)), "x": np.zeros(1)}, None, ValueError, r"params must have only the keys"),
            ({}, None, ValueError, r"params must have key 'w' like the optimizer state"),
        ]
    saved = {s: a.copy() for s, a in state.items()}
    for params, grads, exc, match in cases:
        grads = grads if grads is not None else {k: np.ones_like(p) for k, p in params.items()}
        before = {k: p.copy() for k, p in params.items()}
        with pytest.raises(exc, match=match):
            opt.update(params, grads)
        for k in params:
            np.testing.assert_array_equal(params[k], before[k])
        assert opt.step == 1 and set(opt.state) == {"w"}
        for s, a in saved.items():
            np.testing.assert_array_equal(opt.state["w"][s], a)


@pytest.mark.parametrize("make", OPTIMIZERS, ids=NAMES)
def test_nan_propagates_without_warnings(make):
    p = {"w": np.array([1.0, 2.0]), "v": np.array([1.0, 2.0])}
    make().update(p, {"w": np.array([np.nan, 1.0]), "v": np.array([np.inf, 1.0])})
    assert np.isnan(p["w"][0]) and not np.isfinite(p["v"]).all()


@pytest.mark.parametrize("make", OPTIMIZERS, ids=NAMES)
def test_fortran_order_gradients_are_read_by_index(make):
    g = np.arange(1.0, 7.0).reshape(2, 3)
    a, b = {"w": np.full((2, 3), 0.5)}, {"w": np.full((2, 3), 0.5)}
    make().update(a, {"w": g})
    make().update(b, {"w": _readonly(np.asfortranarray(g))})
    np.testing.assert_array_equal(a["w"], b["w"])
