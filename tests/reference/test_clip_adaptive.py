"""AdaptiveClipper: per-tensor clipping, a threshold that adapts without collapsing, saved state."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradfast.reference import AdaptiveClipper
from hypothesis import given
from hypothesis import strategies as st

dtypes = st.sampled_from([np.float32, np.float64])


def with_norm(norm, shape=(3, 4), dtype=np.float64, seed=0):
    """A random array of the given L2 norm."""
    g = np.random.default_rng(seed).normal(size=shape)
    return (g * (norm / np.sqrt((g**2).sum()))).astype(dtype)


def norm(a):
    return math.sqrt(sum(float(x) ** 2 for x in np.ravel(a)))


def bias_corrected_average(xs, r):
    """sum_j r (1-r)^(n-1-j) x_j / sum_j r (1-r)^(n-1-j), written as explicit weights."""
    n = len(xs)
    w = [r * (1 - r) ** (n - 1 - j) for j in range(n)]
    return sum(wj * x for wj, x in zip(w, xs)) / sum(w)


def test_under_threshold_passes_through_unchanged():
    c = AdaptiveClipper(init_clip_value=1.0)
    g = {"a": with_norm(0.5)}
    before = g["a"].copy()
    out = c.clip_gradients(g)
    assert out is not g and out["a"] is g["a"]
    np.testing.assert_array_equal(g["a"], before)


@given(dtypes, st.floats(1.01, 1e3), st.floats(0.01, 0.99), st.floats(1e-3, 1.0))
def test_over_threshold_is_scaled_to_exactly_the_threshold(dtype, big, small, rate):
    c = AdaptiveClipper(init_clip_value=1.0, adaptation_rate=rate)
    g = {"big": with_norm(big, dtype=dtype), "small": with_norm(small, shape=(5,), dtype=dtype, seed=1)}
    before = {k: v.copy() for k, v in g.items()}
    out = c.clip_gradients(g)
    # first observation: the bias-corrected average is `big` itself, capped at 1.0
    assert c.clip_value == 1.0
    assert out["small"] is g["small"]
    assert out["big"].dtype == dtype and out["big"].flags.c_contiguous
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    assert norm(out["big"]) == pytest.approx(1.0, rel=rtol)
    # same direction
    np.testing.assert_allclose(out["big"] * big, before["big"].astype(np.float64), rtol=10 * rtol, atol=1e-12)
    for k in g:
        np.testing.assert_array_equal(g[k], before[k])


def test_update_happens_before_clipping_hand_values():
    c = AdaptiveClipper(init_clip_value=1.0, adaptation_rate=0.5)
    out = c.clip_gradients({"g": with_norm(0.3)})
    assert c.clip_value == pytest.approx(0.3, rel=1e-15)
    assert norm(out["g"]) == pytest.approx(0.3, rel=1e-14)
    # (0.25 * 0.3 + 0.5 * 0.6) / 0.75 = 0.5: the second call already uses its own norm
    g2 = with_norm(0.6, seed=3)
    out = c.clip_gradients({"g": g2})
    assert c.clip_value == pytest.approx(0.5, rel=1e-14)
    assert norm(out["g"]) == pytest.approx(0.5, rel=1e-14)


@given(st.lists(st.floats(0.0, 3.0), min_size=1, max_size=60), st.floats(1e-3, 1.0), st.floats(0.05, 2.0))
def test_threshold_is_the_capped_bias_corrected_average_of_max_norms(maxima, rate, cap):
    c = AdaptiveClipper(init_clip_value=cap, adaptation_rate=rate)
    for i, m in enumerate(maxima):
        c.clip_gradients({"a": with_norm(m, seed=i), "b": with_norm(m / 2, shape=(2,), seed=i)})
        avg = bias_corrected_average(maxima[: i + 1], rate)
        expected = min(cap, max(1e-3 * cap, avg))
        assert c.clip_value == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_steady_norms_do_not_collapse_the_threshold():
    # the original design's running max started at 0 and clip_value = min(clip_value, running_max) only fell
    c = AdaptiveClipper(init_clip_value=1.0, adaptation_rate=0.01)
    unit = [with_norm(1.0, seed=i) for i in range(7)]
    for i in range(3000):
        out = c.clip_gradients({"w": unit[i % 7] * 0.2})
    assert c.clip_value == pytest.approx(0.2, rel=1e-9)
    assert norm(out["w"]) == pytest.approx(0.2, rel=1e-9)
    # noisy steady norms: the threshold stays in the band they come from
    rng = np.random.default_rng(1)
    for i in range(2000):
        c.clip_gradients({"w": unit[i % 7] * rng.uniform(0.15, 0.25)})
        assert 0.15 <= c.clip_value <= 0.25
    # steady norms above the cap: the cap holds
    for i in range(100):
        out = c.clip_gradients({"w": unit[i % 7] * 7.0})
    assert c.clip_value == 1.0 and norm(out["w"]) == pytest.approx(1.0, rel=1e-12)


def test_all_zero_gradients_floor_the_threshold_without_nan():
    c = AdaptiveClipper(init_clip_value=2.0, adaptation_rate=0.1)
    for _ in range(500):
        out = c.clip_gradients({"z": np.zeros((4, 4), np.float32), "e": np.zeros(0, np.float32)})
        assert not np.isnan(out["z"]).any()
        np.testing.assert_array_equal(out["z"], 0)
    assert c.clip_value == pytest.approx(2e-3)  # the default floor 1e-3 * init_clip_value
    out = c.clip_gradients({"g": with_norm(1.0)})  # recovers from the floor
    assert c.clip_value > 0.09


def test_min_clip_value_and_rate_zero():
    c = AdaptiveClipper(1.0, 0.5, min_clip_value=0.25)
    c.clip_gradients({"g": with_norm(0.01)})
    assert c.clip_value == 0.25
    fixed = AdaptiveClipper(1.0, adaptation_rate=0.0)
    for i in range(5):
        fixed.clip_gradients({"g": with_norm(0.1, seed=i)})
    assert fixed.clip_value == 1.0


def test_non_finite_tensors_pass_through_and_are_not_observed():
    c = AdaptiveClipper(1.0, 0.5)
    c.clip_gradients({"g": with_norm(0.4)})
    bad = np.array([np.nan, 1.0])
    inf = np.array([np.inf, 1.0])
    big = with_norm(5.0)
    out = c.clip_gradients({"nan": bad, "inf": inf, "big": big})
    assert out["nan"] is bad and out["inf"] is inf
    # the observation was 5.0 only: (0.25 * 0.4 + 0.5 * 5) / 0.75 > cap
    assert c.clip_value == 1.0
    assert norm(out["big"]) == pytest.approx(1.0)
    state = c.state_dict()
    c.clip_gradients({"nan": bad})  # nothing finite: state unchanged
    assert c.state_dict() == state


def test_empty_dict_changes_nothing():
    c = AdaptiveClipper()
    assert c.clip_gradients({}) == {}
    assert c.state_dict() == {"running_max": 0.0, "running_weight": 0.0}


def test_state_dict_round_trip_continues_bitwise():
    rng = np.random.default_rng(5)
    grads = [{"a": rng.normal(size=(3, 3)) * s, "b": rng.normal(size=4) * s} for s in rng.uniform(0.1, 3, 30)]
    a = AdaptiveClipper(1.5, 0.05)
    for g in grads[:10]:
        a.clip_gradients(g)
    saved = a.state_dict()
    assert all(type(v) is float for v in saved.values())
    b = AdaptiveClipper(1.5, 0.05)
    b.load_state_dict(saved)
    assert b.clip_value == a.clip_value
    for g in grads[10:]:
        oa, ob = a.clip_gradients(g), b.clip_gradients(g)
        for k in g:
            np.testing.assert_array_equal(oa[k], ob[k])
    assert a.state_dict() == b.state_dict()


@pytest.mark.parametrize(
    ("d", "match"),
    [
        (
            {"running_max": 1.0},
            r"load_state_dict: d must be a dict with keys 'running_max', 'running_weight'",
        ),
        (
            {"running_max": -1.0, "running_weight": 0.5},
            r"d\['running_max'\] must be a finite number in \[0.0, inf\]",
        ),
        (
            {"running_max": 1.0, "running_weight": 1.5},
            r"d\['running_weight'\] must be a finite number in \[0.0, 1.0\]",
        ),
        ({"running_max": math.nan, "running_weight": 0.5}, r"d\['running_max'\] must be a finite number"),
    ],
)
def test_bad_state_changes_nothing(d, match):
    c = AdaptiveClipper(1.0, 0.5)
    c.clip_gradients({"g": with_norm(0.3)})
    saved = c.state_dict()
    with pytest.raises(ValueError, match=match):
        c.load_state_dict(d)
    assert c.state_dict() == saved


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (
            {"init_clip_value": 0.0},
            ValueError,
            r"AdaptiveClipper: init_clip_value must be a finite number in \(0.0, inf\]",
        ),
        (
            {"init_clip_value": math.inf},
            ValueError,
            r"AdaptiveClipper: init_clip_value must be a finite number",
        ),
        (
            {"adaptation_rate": 1.5},
            ValueError,
            r"AdaptiveClipper: adaptation_rate must be a finite number in \[0.0, 1.0\]",
        ),
        (
            {"adaptation_rate": "fast"},
            TypeError,
            r"AdaptiveClipper: adaptation_rate must be a real number, got str",
        ),
        (
            {"min_clip_value": 0.0},
            ValueError,
            r"AdaptiveClipper: min_clip_value must be a finite number in \(0.0, inf\]",
        ),
        (
            {"min_clip_value": 2.0},
            ValueError,
            r"AdaptiveClipper: min_clip_value must be <= init_clip_value \(1.0\), got 2.0",
        ),
    ],
)
def test_bad_construction(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        AdaptiveClipper(**kwargs)


@pytest.mark.parametrize(
    ("grads", "exc", "match"),
    [
        (
            [np.ones(2)],
            TypeError,
            r"AdaptiveClipper.clip_gradients: gradients must be a dict of numpy arrays",
        ),
        (
            {"a": np.ones(2, int)},
            TypeError,
            r"gradients\['a'\] must have dtype float32 or float64, got int64",
        ),
        (
            {"a": np.ones(2), "b": np.ones(2, np.float32)},
            TypeError,
            r"gradients\['b'\] must have dtype float64 like",
        ),
    ],
)
def test_bad_gradients_change_nothing(grads, exc, match):
    c = AdaptiveClipper(1.0, 0.5)
    c.clip_gradients({"g": with_norm(0.3)})
    saved = c.state_dict()
    with pytest.raises(exc, match=match):
        c.clip_gradients(grads)
    assert c.state_dict() == saved
