"""prune_network, magnitude_masks, apply_masks and GradualPruning: hand-computed thresholds, ties,
scopes, the NaN policy, logging, schedules, and pruning that stays pruned."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from gradfast.reference import GradualPruning, apply_masks, magnitude_masks, prune_network
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

dtypes = st.sampled_from([np.float32, np.float64])
ratios = st.floats(0.0, 1.0)


def type7_threshold(magnitudes, ratio):
    """Hyndman-Fan type 7 (linear) percentile of the sorted magnitudes, written plainly."""
    a = np.sort(np.asarray(magnitudes, dtype=np.float64).ravel())
    h = (a.size - 1) * ratio
    lo = math.floor(h)
    if lo >= a.size - 1:
        return float(a[-1])
    return float(a[lo] + (h - lo) * (a[lo + 1] - a[lo]))


@st.composite
def layers(draw, n_layers=None):
    """Layers of one dtype with many repeated magnitudes (ties) and both signs."""
    dtype = draw(dtypes)
    n = n_layers or draw(st.integers(1, 3))
    out = {}
    for i in range(n):
        shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=6))
        levels = draw(hnp.arrays(np.int8, shape, elements=st.integers(-4, 4)))
        out[f"L{i}"] = (levels * 0.25).astype(dtype)
    return out


# -- hand-computed cases -----------------------------------------------------------------------


def test_hand_thresholds_with_ties():
    w = np.array([1.0, -1.0, 2.0, 2.0, -2.0, 3.0])  # sorted |w|: 1 1 2 2 2 3
    # ratio 0.4: h = 5 * 0.4 = 2 -> threshold 2: the three 2s tie and go together
    np.testing.assert_array_equal(prune_network({"w": w}, 0.4)["w"], [0, 0, 0, 0, 0, 3.0])
    # ratio 0.3: h = 1.5 -> threshold 1.5 -> the 1s go
    np.testing.assert_array_equal(prune_network({"w": w}, 0.3)["w"], [0, 0, 2.0, 2.0, -2.0, 3.0])
    # ratio 0: threshold = min |w| = 1, which is not > itself: the smallest still go
    np.testing.assert_array_equal(prune_network({"w": w}, 0.0)["w"], [0, 0, 2.0, 2.0, -2.0, 3.0])
    # ratio 1: threshold = max |w|: nothing is kept
    np.testing.assert_array_equal(prune_network({"w": w}, 1.0)["w"], np.zeros(6))


def test_hand_threshold_interpolated():
    w = np.arange(1.0, 11.0).reshape(2, 5)  # h = 9 * 0.3 = 2.7 -> threshold 3.7: 4..10 stay
    out = prune_network({"w": w}, 0.3)["w"]
    np.testing.assert_array_equal(out, np.where(w > 3.7, w, 0.0))
    assert np.count_nonzero(out) == 7


def test_hand_global_scope():
    weights = {"A": np.array([1.0, -2.0]), "B": np.array([3.0, 4.0, -5.0, 6.0])}
    # global: magnitudes 1..6, h = 5 * 0.5 = 2.5 -> threshold 3.5
    out = prune_network(weights, 0.5, scope="global")
    np.testing.assert_array_equal(out["A"], [0.0, 0.0])
    np.testing.assert_array_equal(out["B"], [0.0, 4.0, -5.0, 6.0])
    # per layer: A's threshold 1.5, B's 4.5
    out = prune_network(weights, 0.5)
    np.testing.assert_array_equal(out["A"], [0.0, -2.0])
    np.testing.assert_array_equal(out["B"], [0.0, 0.0, -5.0, 6.0])


# -- against direct computation ----------------------------------------------------------------


@given(layers(), ratios)
def test_layer_scope_against_direct_percentile(weights, ratio):
    before = {k: w.copy() for k, w in weights.items()}
    out = prune_network(weights, ratio)
    assert list(out) == list(weights)
    for key, w in weights.items():
        np.testing.assert_array_equal(w, before[key])  # input untouched
        mags = np.abs(w.astype(np.float64))
        # the original design's formula, computed on float64 magnitudes
        expected = np.where(mags > np.percentile(mags, 100 * ratio), w, 0)
        np.testing.assert_array_equal(out[key], expected)
        # a plain type-7 percentile agrees on every weight not within rounding of the threshold
        thr = type7_threshold(mags, ratio)
        clear = np.abs(mags - thr) > 1e-12
        np.testing.assert_array_equal((out[key] != 0)[clear], (mags > thr)[clear])
        assert out[key].dtype == w.dtype and out[key].flags.c_contiguous
        assert not np.shares_memory(out[key], w)


@given(layers(), ratios)
def test_global_scope_against_direct_percentile(weights, ratio):
    out = prune_network(weights, ratio, scope="global")
    every = np.concatenate([np.abs(w.astype(np.float64)).ravel() for w in weights.values()])
    thr = np.percentile(every, 100 * ratio)
    thr7 = type7_threshold(every, ratio)
    kept = 0
    for key, w in weights.items():
        mags = np.abs(w.astype(np.float64))
        np.testing.assert_array_equal(out[key], np.where(mags > thr, w, 0))
        clear = np.abs(mags - thr7) > 1e-12
        np.testing.assert_array_equal((out[key] != 0)[clear], (mags > thr7)[clear])
        kept += np.count_nonzero(mags > thr)
    # only weights above the floor(h)-th smallest magnitude can survive, h = (n - 1) * ratio
    n = every.size
    assert kept <= n - 1 - math.floor((n - 1) * ratio - 1e-9)


def test_pruned_entries_are_positive_zero_and_kept_bits_exact():
    w = np.array([-0.0, -1e-3, 5.0, -7.0, np.float64(2.0) ** -1070], dtype=np.float64)
    out = prune_network({"w": w}, 0.5)["w"]
    assert not np.signbit(out[:2]).any() and (out[:2] == 0).all()
    assert out[3] == -7.0


def test_any_layout_is_read():
    base = np.arange(1.0, 13.0, dtype=np.float32).reshape(3, 4)
    f = np.asfortranarray(base)
    view = base[:, ::2]
    view.flags.writeable = False
    out = prune_network({"f": f, "v": view}, 0.5)
    np.testing.assert_array_equal(out["f"], np.where(base > 6.5, base, 0))
    np.testing.assert_array_equal(out["v"], np.where(view > 6.0, view, 0))  # |v| 1 3 5 7 9 11 -> 6
    assert out["f"].flags.c_contiguous and out["v"].flags.c_contiguous


def test_empty_layer_and_empty_dict():
    assert prune_network({}) == {}
    out = prune_network({"e": np.zeros((0, 3), dtype=np.float32), "w": np.array([1.0, 2.0], np.float32)})
    assert out["e"].shape == (0, 3) and out["e"].dtype == np.float32
    out = prune_network({"e": np.zeros(0)}, 0.5, scope="global")
    assert out["e"].shape == (0,)


def test_nan_threshold_prunes_all_and_warns(caplog):
    w = np.array([1.0, np.nan, 3.0])
    with caplog.at_level(logging.INFO, logger="gradfast"):
        out = prune_network({"w": w, "ok": np.array([1.0, 2.0])}, 0.5, scope="global")
    np.testing.assert_array_equal(out["w"], np.zeros(3))
    assert any(r.levelno == logging.WARNING and "NaN pruning threshold" in r.getMessage() for r in caplog.records)


def test_sparsity_is_logged_not_printed(caplog, capsys):
    w = np.array([1.0, -1.0, 2.0, 2.0, -2.0, 3.0])
    with caplog.at_level(logging.INFO, logger="gradfast"):
        prune_network({"dense": w, "other": np.arange(4.0)}, 0.4)
    assert capsys.readouterr().out == ""
    records = [r for r in caplog.records if r.name == "gradfast" and r.levelno == logging.INFO]
    assert len(records) == 2
    msg = records[0].getMessage()
    # 5 of 6 pruned -> 83.33%
    assert "'dense'" in msg and "83.33%" in msg and "5 of 6" in msg
    # other: |w| 0 1 2 3, h = 1.2 -> threshold 1.2: 0 and 1 pruned
    assert "'other'" in records[1].getMessage() and "50.00%" in records[1].getMessage()


@pytest.mark.parametrize(
    ("weights", "kwargs", "exc", "match"),
    [
        (np.ones(3), {}, TypeError, r"prune_network: weights must be a dict of numpy arrays, got array"),
        (
            {"a": np.ones(3, dtype=np.int32)},
            {},
            TypeError,
            r"weights\['a'\] must have dtype float32 or float64",
        ),
        (
            {"a": np.ones(3, np.float32), "b": np.ones(3)},
            {},
            TypeError,
            r"weights\['b'\] must have dtype float32 like the others",
        ),
        (
            {"a": np.ones(3)},
            {"prune_ratio": 1.5},
            ValueError,
            r"prune_ratio must be a finite number in \[0.0, 1.0\]",
        ),
        ({"a": np.ones(3)}, {"prune_ratio": -0.1}, ValueError, r"prune_ratio must be a finite number"),
        (
            {"a": np.ones(3)},
            {"prune_ratio": None},
            TypeError,
            r"prune_ratio must be a real number, got NoneType",
        ),
        (
            {"a": np.ones(3)},
            {"scope": "model"},
            ValueError,
            r"scope must be 'layer' or 'global', got 'model'",
        ),
    ],
)
def test_prune_bad_input(weights, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        prune_network(weights, **kwargs)


# -- GradualPruning ----------------------------------------------------------------------------


def test_linear_schedule_hand_values():
    g = GradualPruning()  # 0 -> 0.9 over steps [0, 100)
    assert [g.compute_sparsity(t) for t in (0, 25, 50, 99, 100, 1000)] == pytest.approx(
        [0.0, 0.225, 0.45, 0.891, 0.9, 0.9], rel=1e-14
    )
    g = GradualPruning(0.2, 0.6, begin_step=10, end_step=30)
    assert [g.compute_sparsity(t) for t in (0, 9, 10, 20, 30, 31)] == pytest.approx(
        [0.2, 0.2, 0.2, 0.4, 0.6, 0.6], rel=1e-14
    )


def test_cubic_schedule_hand_values():
    g = GradualPruning(0.1, 0.9, begin_step=10, end_step=30, schedule="cubic")
    # s_f + (s_i - s_f) * (1 - (t - 10) / 20)**3
    assert g.compute_sparsity(5) == 0.1
    assert g.compute_sparsity(10) == pytest.approx(0.1, rel=1e-15)
    assert g.compute_sparsity(20) == pytest.approx(0.9 - 0.8 / 8, rel=1e-14)
    assert g.compute_sparsity(29) == pytest.approx(0.9 - 0.8 * 0.05**3, rel=1e-14)
    assert g.compute_sparsity(30) == 0.9
    assert g.compute_sparsity(12.5) == pytest.approx(0.9 - 0.8 * 0.875**3, rel=1e-14)
    # cubic prunes faster early than linear
    assert g.compute_sparsity(15) > GradualPruning(0.1, 0.9, 10, 30).compute_sparsity(15)


@given(
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.integers(0, 50),
    st.integers(1, 100),
    st.sampled_from(["linear", "cubic"]),
)
def test_schedules_are_monotone_and_continuous(s_a, s_b, t0, length, schedule):
    s_i, s_f = min(s_a, s_b), max(s_a, s_b)
    g = GradualPruning(s_i, s_f, t0, t0 + length, schedule=schedule)
    values = [g.compute_sparsity(t) for t in range(t0 + length + 3)]
    assert all(type(v) is float for v in values)
    assert all(b >= a - 1e-15 for a, b in zip(values, values[1:]))
    assert all(s_i - 1e-15 <= v <= s_f + 1e-15 for v in values)
    assert g.compute_sparsity(t0) == pytest.approx(s_i, abs=1e-15)
    assert g.compute_sparsity(t0 + length - 1e-9) == pytest.approx(s_f, abs=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (
            {"initial_sparsity": -0.1},
            ValueError,
            r"GradualPruning: initial_sparsity must be a finite number in \[0.0, 1.0\]",
        ),
        (
            {"final_sparsity": 1.01},
            ValueError,
            r"GradualPruning: final_sparsity must be a finite number in \[0.0, 1.0\]",
        ),
        ({"begin_step": -1}, ValueError, r"GradualPruning: begin_step must be an int >= 0, got -1"),
        ({"begin_step": 1.5}, TypeError, r"GradualPruning: begin_step must be an int, got float"),
        (
            {"begin_step": 10, "end_step": 10},
            ValueError,
            r"GradualPruning: end_step must be an int > begin_step \(10\), got 10",
        ),
        ({"end_step": -5}, ValueError, r"end_step must be an int > begin_step \(0\), got -5"),
        (
            {"schedule": "exponential"},
            ValueError,
            r"GradualPruning: schedule must be 'linear' or 'cubic', got 'exponential'",
        ),
    ],
)
def test_gradual_bad_construction(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        GradualPruning(**kwargs)


def test_gradual_bad_step():
    g = GradualPruning()
    with pytest.raises(ValueError, match=r"GradualPruning.compute_sparsity: step must be a finite number in \[0.0"):
        g.compute_sparsity(-1)
    with pytest.raises(TypeError, match=r"compute_sparsity: step must be a real number, got str"):
        g.compute_sparsity("5")


# -- magnitude_masks -------------------------------------------------------------------------


def test_hand_masks():
    w = np.array([[1.0, -1.0, 2.0], [2.0, -2.0, 3.0]], dtype=np.float32)
    m = magnitude_masks({"w": w}, 0.3)["w"]  # threshold 1.5, as in test_hand_thresholds_with_ties
    assert m.dtype == np.bool_ and m.shape == (2, 3) and m.flags.c_contiguous
    np.testing.assert_array_equal(m, [[False, False, True], [True, True, True]])
    np.testing.assert_array_equal(magnitude_masks({"w": w}, 0.4)["w"], [[0, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(magnitude_masks({"w": w}, 1.0)["w"], np.zeros((2, 3), bool))
    weights = {"A": np.array([1.0, -2.0]), "B": np.array([3.0, 4.0, -5.0, 6.0])}
    m = magnitude_masks(weights, 0.5, scope="global")  # threshold 3.5
    np.testing.assert_array_equal(m["A"], [False, False])
    np.testing.assert_array_equal(m["B"], [False, True, True, True])


@given(layers(), ratios, st.sampled_from(["layer", "global"]))
def test_masks_against_direct_percentile(weights, sparsity, scope):
    before = {k: w.copy() for k, w in weights.items()}
    masks = magnitude_masks(weights, sparsity, scope=scope)
    mags = {k: np.abs(w.astype(np.float64)) for k, w in weights.items()}
    every = np.concatenate([m.ravel() for m in mags.values()])
    for key, w in weights.items():
        np.testing.assert_array_equal(w, before[key])
        thr = np.percentile(every if scope == "global" else mags[key], 100 * sparsity)
        np.testing.assert_array_equal(masks[key], mags[key] > thr)
        # exactly the weights prune_network keeps (a kept weight is never zero)
        np.testing.assert_array_equal(masks[key], prune_network(weights, sparsity, scope=scope)[key] != 0)


def test_masks_nan_policy_and_empty():
    w = np.array([1.0, np.nan, 3.0, 4.0])
    ok = np.array([1.0, 2.0])
    m = magnitude_masks({"w": w, "ok": ok}, 0.0)
    np.testing.assert_array_equal(m["w"], [False] * 4)  # NaN threshold: nothing kept
    np.testing.assert_array_equal(m["ok"], [False, True])
    m = magnitude_masks({"w": w, "ok": ok}, 0.0, scope="global")  # one NaN prunes every layer
    assert not m["w"].any() and not m["ok"].any()
    m = magnitude_masks({"e": np.zeros((0, 2)), "w": np.array([2.0, 1.0])}, 0.5, scope="global")
    assert m["e"].shape == (0, 2) and m["e"].dtype == np.bool_
    np.testing.assert_array_equal(m["w"], [True, False])
    assert magnitude_masks({}, 0.5) == {}


# -- apply_masks -------------------------------------------------------------------------------


def test_apply_masks_zeroes_exactly():
    p = np.array([np.nan, -0.0, -3.0, np.inf, np.nan, -0.0, 7.5], dtype=np.float32)
    m = np.array([False, False, False, False, True, True, True])
    params = {"p": p}
    assert apply_masks(params, {"p": m}) is params
    assert p[:4].tobytes() == np.zeros(4, np.float32).tobytes()  # +0.0, bit for bit
    assert np.isnan(p[4]) and np.signbit(p[5]) and p[6] == 7.5


def test_apply_masks_reads_any_mask_layout():
    p = np.arange(1.0, 7.0).reshape(2, 3)
    m = np.asfortranarray(np.array([[True, False, True], [False, True, False]]))
    apply_masks({"p": p}, {"p": m})
    np.testing.assert_array_equal(p, [[1, 0, 3], [0, 5, 0]])
    q = np.arange(1.0, 4.0)
    apply_masks({"q": q}, {"q": np.array([True, False, True, True, False, True])[::2]})
    np.testing.assert_array_equal(q, [1, 2, 0])


# -- GradualPruning.update ---------------------------------------------------------------------


def test_update_prunes_to_the_scheduled_sparsity():
    g = GradualPruning(0.0, 0.5, begin_step=0, end_step=10)
    w = np.array([0.5, -4.0, 3.0, -1.0, 2.0, 6.0, -7.0, 8.0, 9.0])  # |w| distinct
    params = {"w": w}
    masks = g.update(params, 10)  # sparsity 0.5: h = 8 * 0.5 = 4 -> threshold 4 (the 5th smallest)
    assert masks is g.masks
    np.testing.assert_array_equal(masks["w"], [0, 0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(w, [0, 0, 0, 0, 0, 6.0, -7.0, 8.0, 9.0])


def test_update_never_revives():
    g = GradualPruning(0.6, 0.2, begin_step=0, end_step=4)  # the target goes down
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    g.update({"w": w}, 0)  # h = 3 -> threshold 4: four pruned
    np.testing.assert_array_equal(w, [0, 0, 0, 0, 5.0, 6.0])
    w[:4] = [10.0, 20.0, 30.0, 40.0]  # an optimizer step that forgot the masks
    g.update({"w": w}, 4)  # zeroed again first; the sparsity 0.2 prunes no more
    np.testing.assert_array_equal(g.masks["w"], [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(w, [0, 0, 0, 0, 5.0, 6.0])


def test_update_global_scope():
    g = GradualPruning(0.5, 0.5, 0, 1)
    params = {"A": np.array([1.0, -2.0]), "B": np.array([3.0, 4.0, -5.0, 6.0])}
    g.update(params, 0, scope="global")  # threshold 3.5
    np.testing.assert_array_equal(params["A"], [0.0, 0.0])
    np.testing.assert_array_equal(params["B"], [0.0, 4.0, -5.0, 6.0])
