"""``EMA``: Rust against the reference (bitwise), both against torch's ``AveragedModel`` with
``get_ema_multi_avg_fn``, resume, bad input, threads."""

from __future__ import annotations

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from conftest import TOL
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

SHAPES = {"w": (5, 3), "b": (5,), "s": ()}


def _params(dtype, seed):
    rng = np.random.default_rng(seed)
    return {k: np.array(rng.standard_normal(s), dtype=dtype) for k, s in SHAPES.items()}


@given(
    st.sampled_from([np.float32, np.float64]),
    st.sampled_from([0.0, 0.3, 0.5, 0.75, 0.9, 0.999, 1.0]),
    st.integers(0, 2**32 - 1),
)
def test_rust_is_the_reference_bitwise_and_torch(dtype, decay, seed):
    dtype = np.dtype(dtype)
    emas = [gf.EMA(decay), ref.EMA(decay)]
    module = torch.nn.Module()
    for k, v in _params(dtype, seed).items():
        module.register_parameter(k, torch.nn.Parameter(torch.from_numpy(v)))
    peer = torch.optim.swa_utils.AveragedModel(
        module, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay), use_buffers=False
    )
    for step in range(6):
        params = _params(dtype, seed + step + 1)
        for ema in emas:
            ema.update(params)
        with torch.no_grad():
            for k, v in params.items():
                getattr(module, k).copy_(torch.from_numpy(v))
        peer.update_parameters(module)
        for k in SHAPES:
            np.testing.assert_array_equal(emas[0].averaged[k], emas[1].averaged[k])
            np.testing.assert_allclose(emas[0].averaged[k], getattr(peer.module, k).detach().numpy(), **TOL[dtype])
    assert emas[0].n_averaged == 6


def test_first_update_copies_and_copy_to_writes(impl):
    ema = impl.EMA(0.5)
    p = {"a": np.array([2.0, 4.0])}
    ema.update(p)
    assert ema.averaged["a"] is not p["a"]
    np.testing.assert_array_equal(ema.averaged["a"], [2.0, 4.0])
    ema.update({"a": np.array([4.0, 0.0])})
    np.testing.assert_array_equal(ema.averaged["a"], [3.0, 2.0])
    out = {"a": np.zeros(2)}
    assert ema.copy_to(out) is out
    np.testing.assert_array_equal(out["a"], [3.0, 2.0])


def test_resume_is_bitwise(impl):
    a, b = impl.EMA(0.9), impl.EMA(0.1)
    for s in range(4):
        a.update(_params(np.float32, s))
    b.load_state_dict(a.state_dict())
    assert b.decay == 0.9
    for s in range(4, 9):
        a.update(_params(np.float32, s))
        b.update(_params(np.float32, s))
    for k in SHAPES:
        np.testing.assert_array_equal(a.averaged[k], b.averaged[k])
    assert a.state_dict()["n_averaged"] == b.state_dict()["n_averaged"] == 9


@pytest.mark.parametrize(
    ("spoil", "error", "words"),
    [
        (lambda d: d.pop("decay"), ValueError, "keys"),
        (lambda d: d.update(decay=1.5), ValueError, "decay"),
        (lambda d: d.update(n_averaged=0), ValueError, "n_averaged"),
        (lambda d: d["averaged"].update(b=np.ones(5, np.float64)), TypeError, "averaged"),
        (lambda d: d["averaged"].update(b="x"), TypeError, "averaged"),
    ],
)
def test_bad_state_changes_nothing(impl, spoil, error, words):
    ema = impl.EMA(0.9)
    ema.update(_params(np.float32, 0))
    before = ema.state_dict()
    d = ema.state_dict()
    spoil(d)
    with pytest.raises(error, match=words):
        ema.load_state_dict(d)
    after = ema.state_dict()
    assert after["decay"] == before["decay"] and after["n_averaged"] == before["n_averaged"]
    for k in SHAPES:
        np.testing.assert_array_equal(after["averaged"][k], before["averaged"][k])


@pytest.mark.parametrize(
    ("params", "error", "words"),
    [
        ({"w": np.ones((5, 3), np.float32), "b": np.ones(5, np.float32)}, ValueError, "params"),
        ({**_params(np.float32, 1), "w": np.ones((3, 5), np.float32)}, ValueError, "params\\['w'\\]"),
        ({**_params(np.float32, 1), "b": np.ones(5)}, TypeError, "params\\['b'\\]"),
        ({**_params(np.float32, 1), "b": np.ones(5, np.int32)}, TypeError, "params\\['b'\\]"),
    ],
)
def test_bad_update_changes_nothing(impl, params, error, words):
    ema = impl.EMA(0.9)
    ema.update(_params(np.float32, 0))
    before = {k: a.copy() for k, a in ema.averaged.items()}
    with pytest.raises(error, match=words):
        ema.update(params)
    assert ema.n_averaged == 1
    for k in SHAPES:
        np.testing.assert_array_equal(ema.averaged[k], before[k])


def test_bad_decay(impl):
    with pytest.raises(ValueError, match="decay"):
        impl.EMA(1.5)
    ema = impl.EMA(0.5)
    with pytest.raises(TypeError, match="decay"):
        ema.decay = "0.9"
    assert ema.decay == 0.5


def test_copy_to_refuses_before_an_update_and_read_only(impl):
    ema = impl.EMA()
    with pytest.raises(ValueError, match="copy_to"):
        ema.copy_to({"a": np.ones(2)})
    ema.update({"a": np.ones(2)})
    ro = np.zeros(2)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        ema.copy_to({"a": ro})


def test_averaged_weights_as_params_are_refused(impl):
    ema = impl.EMA()
    ema.update({"a": np.ones(3)})
    with pytest.raises(ValueError, match="averaged"):
        ema.update(ema.averaged)


def test_bitwise_for_any_thread_count():
    rng = np.random.default_rng(4)
    steps = [{f"w{i}": rng.standard_normal(300_000).astype(np.float32) for i in range(3)} for _ in range(3)]
    previous = gf.get_num_threads()
    results = []
    try:
        for n in (1, 2, 4):
            gf.set_num_threads(n)
            ema = gf.EMA(0.99)
            for s in steps:
                ema.update(s)
            results.append(ema.averaged)
    finally:
        gf.set_num_threads(previous)
    for r in results[1:]:
        for k in r:
            np.testing.assert_array_equal(r[k], results[0][k])
