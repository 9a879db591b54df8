"""Checks shared by the tests of the Rust optimizers against their reference twins.

Each takes ``make(module, **kwargs)``, which builds the optimizer under test from ``gradfast``
or from ``gradfast.reference``. The two run the same operations in the same order, with
correctly rounded division and square root on both sides, so they agree bitwise.
"""

from __future__ import annotations

import gradfast as gf
import gradfast.reference as ref
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

SHAPES = st.sampled_from([(), (0,), (1,), (7,), (3, 5), (2, 3, 4), (33,), (1000,)])


@st.composite
def problems(draw, dtypes=(np.float32, np.float64)):
    """A dict of params and a list of gradient dicts, one per step."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shapes = draw(st.lists(SHAPES, min_size=1, max_size=4))
    steps = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    params = {f"w{i}": np.asarray(rng.standard_normal(s)).astype(dtype) for i, s in enumerate(shapes)}
    draw_grads = lambda: {k: np.asarray(rng.standard_normal(p.shape)).astype(dtype) for k, p in params.items()}  # noqa: E731
    grads = [draw_grads() for _ in range(steps)]
    return params, grads


def _run(opt, params, grads):
    params = {k: p.copy() for k, p in params.items()}
    for g in grads:
        opt.update(params, g)
    return params


def _assert_bitwise(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, f"{what}[{k!r}]"
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{what}[{k!r}]")


def assert_runs_bitwise(make, problem, **kwargs):
    """gradfast's and the reference's optimizer over ``problem``: the same params and state,
    bitwise; returns both optimizers."""
    params, grads = problem
    o_gf, o_ref = make(gf, **kwargs), make(ref, **kwargs)
    _assert_bitwise(_run(o_gf, params, grads), _run(o_ref, params, grads), "params")
    assert o_gf.step == o_ref.step == len(grads)
    for k in params:
        _assert_bitwise(o_gf.state[k], o_ref.state[k], f"state[{k!r}]")
    return o_gf, o_ref


def assert_thread_counts_agree(make, **kwargs):
    """One thread and four give the same bits on a step large enough for the pool."""
    rng = np.random.default_rng(5)
    params = {"a": rng.standard_normal(300_000).astype(np.float32), "b": rng.standard_normal((3, 7)).astype(np.float32)}
    grads = [{k: rng.standard_normal(p.shape).astype(np.float32) for k, p in params.items()} for _ in range(3)]
    results = []
    old = gf.get_num_threads()
    try:
        for threads in (1, 4):
            gf.set_num_threads(threads)
            opt = make(gf, **kwargs)
            results.append((_run(opt, params, grads), opt.state))
    finally:
        gf.set_num_threads(old)
    (p1, s1), (p4, s4) = results
    _assert_bitwise(p1, p4, "params")
    for k in params:
        _assert_bitwise(s1[k], s4[k], f"state[{k!r}]")


def _bad_calls(params, grads):
    """Calls that must be refused whole: (params, gradients, the exception type)."""
    p, g = params, grads
    yield p, {**g, "w1": g["w1"][:-1]}, ValueError  # a gradient of the wrong shape
    yield p, {k: v for k, v in g.items() if k != "w1"}, ValueError  # a key missing
    yield {**p, "w1": p["w1"][::2]}, {**g, "w1": g["w1"][::2]}, ValueError  # params not contiguous
    yield {**p, "w1": p["w0"]}, {**g, "w1": g["w0"]}, ValueError  # one array twice
    # mixed dtypes: last, as with state the two implementations word it differently (Adam's too)
    yield {**p, "w1": p["w1"].astype(np.float64)}, g, TypeError


def assert_bad_input_changes_nothing(make, **kwargs):
    """Every bad call raises the same error from both implementations and changes no array
    and no step count, on a fresh optimizer and on one with state."""
    rng = np.random.default_rng(3)
    for warm in (False, True):
        errors = []
        for module in (gf, ref):
            params = {f"w{i}": rng.standard_normal(6).astype(np.float32) for i in range(2)}
            grads = {k: rng.standard_normal(6).astype(np.float32) for k in params}
            opt = make(module, **kwargs)
            if warm:
                opt.update(params, grads)
            for bad_p, bad_g, exc in _bad_calls(params, grads):
                before = opt.state_dict()
                values = {k: v.copy() for k, v in params.items()}
                with pytest.raises(exc) as info:
                    opt.update(bad_p, bad_g)
                errors.append(str(info.value))
                after = opt.state_dict()
                assert after["step"] == before["step"] and after.get("mu_product") == before.get("mu_product")
                for k, slots in before["state"].items():
                    _assert_bitwise(slots, after["state"][k], f"state[{k!r}]")
                _assert_bitwise(values, params, "params")
        half = len(errors) // 2
        same = half if not warm else half - 1
        assert errors[:same] == errors[half : half + same]


def assert_resume_is_bitwise(make, **kwargs):
    """Three steps, ``state_dict``, a new optimizer loading it and three more steps: the same
    bits as six steps straight."""
    rng = np.random.default_rng(2)
    params = {"a": rng.standard_normal((6, 5)), "b": rng.standard_normal(4)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(6)]
    for module in (gf, ref):
        straight = _run(make(module, **kwargs), params, grads)
        first = make(module, **kwargs)
        p = _run(first, params, grads[:3])
        saved = first.state_dict()
        resumed = make(module, **{**kwargs, "learning_rate": 0.5})
        resumed.load_state_dict(saved)
        assert resumed.learning_rate == first.learning_rate
        _assert_bitwise(straight, _run(resumed, p, grads[3:]), "params")


def assert_learning_rate_is_settable(make, **kwargs):
    """A learning rate assigned between steps is the one the next step uses: the same as an
    optimizer built with it and loaded with the other's state."""
    g = {"w": np.linspace(-1.0, 1.0, 5)}
    a = make(gf, **kwargs)
    p_a = {"w": np.zeros(5)}
    a.update(p_a, g)
    b = make(gf, **{**kwargs, "learning_rate": 0.03})
    b.load_state_dict({**a.state_dict(), "hyperparams": {"learning_rate": 0.03}})
    a.learning_rate = 0.03
    p_b = {"w": p_a["w"].copy()}
    before = p_a["w"].copy()
    a.update(p_a, g)
    b.update(p_b, g)
    _assert_bitwise(p_a, p_b, "params")
    assert not np.array_equal(p_a["w"], before)


class RustMatchesReference:
    """The tests of one Rust optimizer against its reference twin; a test module subclasses it
    as ``TestFoo`` with ``name`` (the class), ``hyper`` (a strategy per hyper-parameter) and
    ``every_option`` (a setting with every option on)."""

    name: str
    hyper: dict
    every_option: dict

    def make(self, module, **kwargs):
        return getattr(module, self.name)(**kwargs)

    # hypothesis runs inside each test, so that every subclass has its own test function
    def test_matches_reference_bitwise(self):
        @given(problems(), st.fixed_dictionaries(self.hyper))
        def check(problem, hyper):
            assert_runs_bitwise(self.make, problem, **hyper)

        check()

    def test_bfloat16_storage_matches_reference_bitwise(self):
        @given(problems(dtypes=(np.float32,)), st.sampled_from(["bfloat16", None]), st.booleans())
        def check(problem, state_dtype, bf16_params):
            params, grads = problem
            if bf16_params:
                bf16 = np.dtype(ml_dtypes.bfloat16)
                params = {k: p.astype(bf16) for k, p in params.items()}
                grads = [{k: g.astype(bf16) for k, g in gs.items()} for gs in grads]
            assert_runs_bitwise(self.make, (params, grads), state_dtype=state_dtype, **self.every_option)

        check()

    @pytest.mark.parametrize("every_option", [False, True])
    def test_one_thread_equals_four(self, every_option):
        assert_thread_counts_agree(self.make, **(self.every_option if every_option else {}))

    @pytest.mark.parametrize("every_option", [False, True])
    def test_bad_input_changes_nothing(self, every_option):
        assert_bad_input_changes_nothing(self.make, **(self.every_option if every_option else {}))

    @pytest.mark.parametrize("every_option", [False, True])
    def test_resumes_bitwise(self, every_option):
        assert_resume_is_bitwise(self.make, **(self.every_option if every_option else {}))

    def test_learning_rate_is_settable(self):
        assert_learning_rate_is_settable(self.make, **self.every_option)
