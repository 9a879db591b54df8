"""``maximize=True`` on the optimizers that predate it (Adam, AdamW, MomentumOptimizer, LAMB,
LARS): a step ascends, as one on the negated gradient descends, in both implementations; Adam
and AdamW ascend as torch's do."""

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from conftest import TOL
from hypothesis import given
from hypothesis import strategies as st

MAKERS = {
    "Adam": lambda lib, m: lib.Adam(1e-2, weight_decay=0.1, maximize=m),
    "AdamW": lambda lib, m: lib.AdamW(1e-2, amsgrad=True, maximize=m),
    "MomentumOptimizer": lambda lib, m: lib.MomentumOptimizer(0.05, 0.9, nesterov=True, maximize=m),
    "LAMB": lambda lib, m: lib.LAMB(1e-2, maximize=m),
    "LARS": lambda lib, m: lib.LARS(0.1, weight_decay=1e-3, maximize=m),
}


def run(opt, params, grads):
    params = {k: p.copy() for k, p in params.items()}
    for g in grads:
        opt.update(params, g)
    return params


@pytest.mark.parametrize("name", sorted(MAKERS))
@pytest.mark.parametrize("lib", [gf, ref], ids=["gradfast", "reference"])
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]))
def test_ascending_is_descending_the_negated_gradient(name, lib, seed, dtype):
    rng = np.random.default_rng(seed)
    params = {"w": rng.standard_normal((20, 50)).astype(dtype), "b": rng.standard_normal(70).astype(dtype)}
    grads = [{k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()} for _ in range(3)]
    up = run(MAKERS[name](lib, True), params, grads)
    down = run(MAKERS[name](lib, False), params, [{k: -g for k, g in gs.items()} for gs in grads])
    for k in params:
        np.testing.assert_array_equal(up[k], down[k])
    assert not np.array_equal(up["w"], run(MAKERS[name](lib, False), params, grads)["w"])


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_rust_ascends_as_the_reference(name):
    rng = np.random.default_rng(1)
    params = {"w": rng.standard_normal(1000).astype(np.float32)}
    grads = [{"w": rng.standard_normal(1000).astype(np.float32)} for _ in range(4)]
    got, want = run(MAKERS[name](gf, True), params, grads), run(MAKERS[name](ref, True), params, grads)
    np.testing.assert_allclose(got["w"], want["w"], **TOL[np.dtype(np.float32)])


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_ascends_as_torch(decoupled):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    p0 = rng.standard_normal(64)
    grads = [rng.standard_normal(64) for _ in range(5)]
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    t = torch.tensor(p0.copy(), requires_grad=True)
    opt = cls([t], lr=1e-2, weight_decay=0.1, maximize=True, foreach=False)
    for g in grads:
        t.grad = torch.tensor(g)
        opt.step()
    ours = (gf.AdamW if decoupled else gf.Adam)(1e-2, weight_decay=0.1, maximize=True)
    params = {"w": p0.copy()}
    for g in grads:
        ours.update(params, {"w": g})
    np.testing.assert_allclose(params["w"], t.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_maximize_is_saved_and_checked():
    opt = gf.Adam(maximize=True)
    assert opt.state_dict()["hyperparams"]["maximize"] is True
    with pytest.raises(TypeError, match="maximize"):
        opt.maximize = "yes"
