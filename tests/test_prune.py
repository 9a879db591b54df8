"""Rust pruning against the reference, bit for bit: thresholds by selection equal np.percentile's
by sorting (ties, infinities, NaN, every size path), masks, in-place pruning that stays pruned,
bad input that changes nothing, and thread counts that change no bit."""

from __future__ import annotations

import collections.abc
import copy
import functools

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

SCOPES = ("layer", "global")
SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan]


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same_dicts(a, b):
    assert list(a) == list(b)
    for key in a:
        assert same(a[key], b[key]), key


@st.composite
def weight_dicts(draw, special=True):
    """1-3 arrays of one dtype: few magnitude levels (ties) or continuous values, some specials."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    out = {}
    for i in range(draw(st.integers(1, 3))):
        shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=9))
        if draw(st.booleans()):
            levels = draw(hnp.arrays(np.int8, shape, elements=st.integers(-3, 3)))
            a = (levels * 0.5).astype(dtype)
        else:
            a = draw(hnp.arrays(dtype, shape, elements=st.floats(-1e3, 1e3, width=32)))
        if special and a.size and draw(st.integers(0, 4)) == 0:
            a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from(SPECIAL))
        out[f"w{i}"] = a
    return out


@functools.cache
def large_cases():
    """Arrays past every size threshold of the selection (sampled bracket, radix fallback)."""
    rng = np.random.default_rng(7)
    n = 70_001
    normal = rng.standard_normal(n)
    return {
        "normal": normal,
        "few levels": np.round(normal * 2) / 2,
        "all equal": np.full(n, -0.75),
        "half zero": np.where(rng.random(n) < 0.5, 0.0, normal),
        "sorted": np.sort(normal),
        "periodic": np.tile(np.arange(7.0) - 3, n // 7),
        "wide range": rng.lognormal(0, 8, n) * np.sign(normal),
        "with inf": np.concatenate([normal, [np.inf, -np.inf]]),
        "with nan": np.concatenate([normal, [np.nan]]),
        "subnormal": normal * 1e-310,
    }


@given(weight_dicts(), st.floats(0.0, 1.0), st.sampled_from(SCOPES))
def test_prune_network_equals_the_reference(weights, ratio, scope):
    before = copy.deepcopy(weights)
    got = gf.prune_network(weights, ratio, scope=scope)
    assert_same_dicts(got, ref.prune_network(weights, ratio, scope=scope))
    assert_same_dicts(weights, before)


@given(weight_dicts(), st.floats(0.0, 1.0), st.sampled_from(SCOPES))
def test_magnitude_masks_equal_the_reference(weights, sparsity, scope):
    got = gf.magnitude_masks(weights, sparsity, scope=scope)
    assert_same_dicts(got, ref.magnitude_masks(weights, sparsity, scope=scope))
    assert all(m.flags.c_contiguous for m in got.values())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(large_cases()))
def test_large_arrays_match_np_percentile(case, dtype):
    w = large_cases()[case].astype(dtype)
    mags = np.abs(w.astype(np.float64))
    for ratio in (0.0, 1e-6, 0.3, 0.5, 0.999, 1.0):
        with np.errstate(invalid="ignore"):  # interpolating into inf gives NaN
            threshold = np.percentile(mags, 100 * ratio)
        masks = gf.magnitude_masks({"w": w}, ratio)
        np.testing.assert_array_equal(masks["w"], mags > threshold, err_msg=f"ratio {ratio}")
        assert same(gf.prune_network({"w": w}, ratio)["w"], ref.prune_network({"w": w}, ratio)["w"])


def test_global_threshold_of_many_layers_matches_np_percentile():
    rng = np.random.default_rng(3)
    weights = {f"l{i}": rng.standard_normal(rng.integers(0, 9000)).astype(np.float32) * (i + 1) for i in range(12)}
    every = np.concatenate([np.abs(w.astype(np.float64)) for w in weights.values()])
    for ratio in (0.0, 0.25, 0.9, 1.0):
        threshold = np.percentile(every, 100 * ratio)
        masks = gf.magnitude_masks(weights, ratio, scope="global")
        for key, w in weights.items():
            np.testing.assert_array_equal(masks[key], np.abs(w.astype(np.float64)) > threshold)


def test_any_input_layout_is_read():
    base = np.arange(1.0, 13.0, dtype=np.float32).reshape(3, 4)
    view = base[:, ::2]
    view.flags.writeable = False
    weights = {"f": np.asfortranarray(base), "v": view}
    assert_same_dicts(gf.prune_network(weights, 0.5), ref.prune_network(weights, 0.5))
    assert_same_dicts(gf.magnitude_masks(weights, 0.5), ref.magnitude_masks(weights, 0.5))


class Frozen(collections.abc.Mapping):
    """A read-only Mapping that is not a dict."""

    def __init__(self, d):
        self._d = d

    def __getitem__(self, k):
        return self._d[k]

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)


def test_any_mapping_is_taken(impl):
    w = {"a": np.array([3.0, -1.0, 2.0]), "b": np.array([0.5, 4.0])}
    out = impl.prune_network(Frozen(w), 0.5)
    np.testing.assert_array_equal(out["a"], [3.0, 0.0, 0.0])
    masks = impl.magnitude_masks(Frozen(w), 0.5)
    impl.apply_masks(Frozen(w), Frozen(masks))
    np.testing.assert_array_equal(w["b"], [0.0, 4.0])


def test_empty(impl):
    assert impl.prune_network({}) == {}
    assert impl.magnitude_masks({}, 0.5) == {}
    assert impl.apply_masks({}, {}) == {}
    w = {"e": np.zeros((0, 3), np.float32), "x": np.array([1.0, 2.0], np.float32)}
    for scope in SCOPES:
        out = impl.prune_network(w, 0.5, scope=scope)
        assert out["e"].shape == (0, 3) and out["e"].dtype == np.float32
        np.testing.assert_array_equal(out["x"], [0.0, 2.0])
        assert impl.magnitude_masks(w, 0.5, scope=scope)["e"].shape == (0, 3)
    g = impl.GradualPruning()
    assert g.update({}, 5) == {} and g.masks == {}


@given(weight_dicts(), st.data())
def test_apply_masks_equals_the_reference(weights, data):
    masks = {k: data.draw(hnp.arrays(np.bool_, w.shape)) for k, w in weights.items()}
    got = copy.deepcopy(weights)
    want = copy.deepcopy(weights)
    assert gf.apply_masks(got, masks) is got
    ref.apply_masks(want, masks)
    assert_same_dicts(got, want)
    for key, w in got.items():
        assert not np.signbit(w[~masks[key]]).any()


def test_apply_masks_reads_mask_bytes_as_numpy_does(impl):
    # a bool view of bytes other than 0 and 1: nonzero is True, as np.logical_not reads it
    m = np.frombuffer(bytes([0, 1, 2, 255]), dtype=np.bool_)
    p = np.array([1.0, 2.0, 3.0, 4.0])
    impl.apply_masks({"p": p}, {"p": m})
    np.testing.assert_array_equal(p, [0.0, 2.0, 3.0, 4.0])


def train(impl, steps, scope, seed=0):
    """A pruning schedule with weight changes between updates that ignore the masks."""
    rng = np.random.default_rng(seed)
    params = {"a": rng.standard_normal((40, 30)), "b": rng.standard_normal(77)}
    g = impl.GradualPruning(0.1, 0.8, begin_step=1, end_step=steps - 1, schedule="cubic")
    history = []
    for step in range(steps):
        g.update(params, step, scope=scope)
        history.append((copy.deepcopy(params), copy.deepcopy(g.masks)))
        for p in params.values():
            p += 0.3 * rng.standard_normal(p.shape)
    return history, g


@pytest.mark.parametrize("scope", SCOPES)
def test_gradual_pruning_equals_the_reference_and_only_shrinks(scope):
    got, pruner = train(gf, 8, scope)
    want, _ = train(ref, 8, scope)
    previous = None
    for step, ((params, masks), (ref_params, ref_masks)) in enumerate(zip(got, want)):
        assert_same_dicts(params, ref_params)
        assert_same_dicts(masks, ref_masks)
        target = pruner.compute_sparsity(step)
        for key, m in masks.items():
            assert m.dtype == np.bool_
            assert not params[key][~m].any() and not np.signbit(params[key][~m]).any()
            if previous is not None:
                assert not (m & ~previous[key]).any(), "a pruned weight came back"
            if scope == "layer":
                # distinct magnitudes: the rule prunes floor((n - 1) * s) + 1 of them, or more
                assert (~m).sum() >= np.floor((m.size - 1) * target) + 1
        previous = masks


def bad_calls():
    """(name, call(impl, params, masks, pruner), error, message): params and masks are fresh."""

    def readonly(a):
        a = a.copy()
        a.flags.writeable = False
        return a

    def overlapping(impl, p, m, g):
        raw = np.zeros(64, np.uint8)
        p["b"] = raw[:40].view(np.float64)
        m["b"] = raw[:5].view(np.bool_)
        return impl.apply_masks(p, m)

    def set_(d, key, value):
        d[key] = value
        return d

    return [
        (
            "weights not a dict",
            lambda i, p, m, g: i.prune_network([1.0]),
            TypeError,
            r"prune_network: weights must be a dict",
        ),
        (
            "int weights",
            lambda i, p, m, g: i.magnitude_masks(set_(p, "b", np.arange(5)), 0.5),
            TypeError,
            r"magnitude_masks: weights\['b'\] must have dtype float32 or float64",
        ),
        (
            "mixed dtypes",
            lambda i, p, m, g: i.prune_network(set_(p, "b", np.ones(5, np.float32))),
            TypeError,
            r"weights\['b'\] must have dtype float64",
        ),
        (
            "masked array",
            lambda i, p, m, g: i.prune_network(set_(p, "b", np.ma.masked_array(np.ones(5)))),
            TypeError,
            r"weights\['b'\] must be a numpy.ndarray, got a numpy.ma.MaskedArray",
        ),
        (
            "ratio > 1",
            lambda i, p, m, g: i.prune_network(p, 1.5),
            ValueError,
            r"prune_ratio must be a finite number in",
        ),
        (
            "nan sparsity",
            lambda i, p, m, g: i.magnitude_masks(p, float("nan")),
            ValueError,
            r"sparsity must be a finite",
        ),
        (
            "scope",
            lambda i, p, m, g: i.magnitude_masks(p, 0.5, scope="all"),
            ValueError,
            r"scope must be 'layer' or 'global', got 'all'",
        ),
        (
            "scope type",
            lambda i, p, m, g: i.prune_network(p, 0.5, scope=None),
            TypeError,
            r"scope must be 'layer' or 'global'",
        ),
        (
            "read-only param",
            lambda i, p, m, g: i.apply_masks(set_(p, "b", readonly(p["b"])), m),
            ValueError,
            r"apply_masks: params\['b'\] must be writeable",
        ),
        (
            "strided param",
            lambda i, p, m, g: i.apply_masks(set_(p, "b", np.ones(10)[::2]), m),
            ValueError,
            r"params\['b'\] must be C-contiguous",
        ),
        (
            "uint8 mask",
            lambda i, p, m, g: i.apply_masks(p, set_(m, "b", m["b"].astype(np.uint8))),
            TypeError,
            r"apply_masks: masks\['b'\] must have dtype bool, got uint8",
        ),
        (
            "mask shape",
            lambda i, p, m, g: i.apply_masks(p, set_(m, "b", np.ones(6, bool))),
            ValueError,
            r"masks\['b'\] must have shape \(5,\), got \(6,\)",
        ),
        (
            "mask missing",
            lambda i, p, m, g: i.apply_masks(p, {"a": m["a"]}),
            ValueError,
            r"masks must have key 'b' like params, got it missing",
        ),
        (
            "mask extra",
            lambda i, p, m, g: i.apply_masks(p, set_(m, "c", np.ones(1, bool))),
            ValueError,
            r"masks must have only the keys of params, got extra key 'c'",
        ),
        ("masks not a dict", lambda i, p, m, g: i.apply_masks(p, [m["a"]]), TypeError, r"masks must be a dict"),
        ("mask overlaps a param", overlapping, ValueError, r"must not share memory"),
        ("step", lambda i, p, m, g: g.update(p, -1), ValueError, r"GradualPruning.update: step must be a finite"),
        ("update scope", lambda i, p, m, g: g.update(p, 3, scope="net"), ValueError, r"update: scope must be"),
        (
            "update int param",
            lambda i, p, m, g: g.update(set_(p, "b", np.arange(5)), 3),
            TypeError,
            r"GradualPruning.update: params\['b'\] must have dtype float32 or float64",
        ),
        (
            "update read-only param",
            lambda i, p, m, g: g.update(set_(p, "b", readonly(p["b"])), 3),
            ValueError,
            r"params\['b'\] must be writeable",
        ),
    ]


def fresh():
    p = {"a": np.array([[3.0, -1.0], [2.0, -0.0]]), "b": np.array([np.nan, 5.0, -6.0, 0.5, 7.0])}
    m = {"a": np.array([[True, False], [True, False]]), "b": np.array([False, True, True, False, True])}
    return p, m


@pytest.mark.parametrize("after_first_update", [False, True])
@pytest.mark.parametrize(("name", "call", "error", "message"), bad_calls(), ids=[c[0] for c in bad_calls()])
def test_bad_input_raises_and_changes_nothing(impl, name, call, error, message, after_first_update):
    p, m = fresh()
    g = impl.GradualPruning(0.2, 0.6, begin_step=0, end_step=4)
    if after_first_update:
        g.update(fresh()[0], 0)
    pruner_masks = copy.deepcopy(g.masks)
    originals = [dict(p), dict(m)]  # the call may swap bad arrays in: these must stay as they are
    before = copy.deepcopy(originals)
    with pytest.raises(error, match=message):
        call(impl, p, m, g)
    for now, then in zip(originals, before):
        assert_same_dicts(now, then)
    if pruner_masks is None:
        assert g.masks is None
    else:
        assert_same_dicts(g.masks, pruner_masks)


def test_update_rejects_params_unlike_the_masks(impl):
    g = impl.GradualPruning()
    p, _ = fresh()
    g.update(p, 50)
    kept = copy.deepcopy(g.masks)
    p2, _ = fresh()
    with pytest.raises(ValueError, match=r"masks\['b'\] must have shape \(4,\), got \(5,\)"):
        g.update({"a": p2["a"], "b": np.ones(4)}, 60)
    with pytest.raises(ValueError, match=r"masks must have key 'c' like params, got it missing"):
        g.update({**p2, "c": np.ones(2)}, 60)
    assert_same_dicts(g.masks, kept)
    np.testing.assert_array_equal(p2["a"], fresh()[0]["a"])


@pytest.mark.parametrize("scope", SCOPES)
def test_one_thread_equals_many(restore_threads, scope):
    rng = np.random.default_rng(11)
    # above the bytes where the pool is used; one layer large enough to be split
    weights = {
        "big": rng.standard_normal(2_500_000).astype(np.float32),
        "small": rng.standard_normal(3000).astype(np.float32),
    }
    weights.update({f"l{i}": rng.standard_normal(40_000).astype(np.float32) for i in range(8)})
    runs = []
    for threads in (1, 2, 3):
        gf.set_num_threads(threads)
        params = copy.deepcopy(weights)
        g = gf.GradualPruning(0.5, 0.5, 0, 1)
        g.update(params, 0, scope=scope)
        runs.append(
            (
                gf.prune_network(weights, 0.3, scope=scope),
                gf.magnitude_masks(weights, 0.7, scope=scope),
                params,
                g.masks,
            )
        )
    for run in runs[1:]:
        for a, b in zip(runs[0], run):
            assert_same_dicts(a, b)
    assert_same_dicts(runs[0][0], ref.prune_network(weights, 0.3, scope=scope))


@pytest.fixture
def restore_threads():
    n = gf.get_num_threads()
    yield
    gf.set_num_threads(n)


def test_results_are_new_writeable_arrays_of_their_own(impl):
    w = {"a": np.arange(6.0).reshape(2, 3), "b": np.ones(()), "c": np.arange(5.0)}
    for out in (impl.prune_network(w, 0.3), impl.magnitude_masks(w, 0.3)):
        arrays = list(out.values())
        for key, a in out.items():
            assert a.shape == w[key].shape and a.flags.c_contiguous and a.flags.writeable
            assert not np.shares_memory(a, w[key])
        for i, a in enumerate(arrays):
            assert not any(np.shares_memory(a, b) for b in arrays[i + 1 :])


def test_concurrent_updates_of_one_pruner_take_turns():
    import threading

    def params():
        return {"w": np.linspace(-1, 1, 2_000_000).astype(np.float32), "v": np.arange(1.0, 50.0, dtype=np.float32)}

    shared, p = gf.GradualPruning(0.0, 0.9, 0, 12), params()
    start, returned, order = threading.Barrier(2), [], iter(range(12))
    take = threading.Lock()

    def work():
        start.wait()  # both threads start with no masks yet: the first updates race
        for _ in range(6):
            with take:
                t = next(order)
            returned.append(shared.update(p, t))

    workers = [threading.Thread(target=work) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    # one set of masks, made by the first update and narrowed by the others in turn
    assert all(m is shared.masks for m in returned)
    serial, q = gf.GradualPruning(0.0, 0.9, 0, 12), params()
    for t in range(12):
        serial.update(q, t)
    # masks only shrink, so whatever order the steps took, the end state is the largest target's
    for k in q:
        np.testing.assert_array_equal(p[k], q[k])
        np.testing.assert_array_equal(shared.masks[k], serial.masks[k])


def test_a_pruner_can_be_deep_copied_and_pickled(impl):
    import copy
    import pickle

    g = impl.GradualPruning(0.2, 0.6, begin_step=0, end_step=4)
    g.update({"w": np.linspace(-1, 1, 40)}, 1)
    for twin in (copy.deepcopy(g), pickle.loads(pickle.dumps(g))):
        a, b = {"w": np.linspace(-1, 1, 40)}, {"w": np.linspace(-1, 1, 40)}
        np.testing.assert_array_equal(twin.update(a, 3)["w"], copy.deepcopy(g).update(b, 3)["w"])
        np.testing.assert_array_equal(a["w"], b["w"])
