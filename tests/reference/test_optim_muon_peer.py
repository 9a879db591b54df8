"""The reference Muon and gradfast's against ``torch.optim.Muon``.

torch orthogonalises in bfloat16, with its own GEMM's summation order; the reference rounds at
the same points but sums in another order, so the two agree within bfloat16's error, not to
the ulp: the test holds the reference's distance from torch to a fraction of torch's own
distance from the exact (float64) iteration. ``ns_dtype='float32'`` is held to the float64
iteration written out here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradfast.reference import Muon

torch = pytest.importorskip("torch")

SHAPES = {"sq": (16, 16), "wide": (8, 24), "tall": (30, 10)}
SETTINGS = [
    {},
    {"learning_rate": 0.02, "weight_decay": 0.0, "nesterov": False},
    {"learning_rate": 0.01, "momentum": 0.5, "adjust_lr_fn": "match_rms_adamw", "ns_steps": 3},
    {"learning_rate": 0.05, "weight_decay": 0.3, "adjust_lr_fn": "spectral_unclamped", "epsilon": 1e-3},
    {"learning_rate": 0.01, "ns_coefficients": (2.0, -1.5, 0.5), "ns_steps": 8, "adjust_lr_fn": "original"},
]
STEPS = 4


def exact_ns(u, coefficients, steps, eps):
    """The quintic iteration in float64."""
    a, b, c = coefficients
    x = u.astype(np.float64)
    tall = x.shape[0] > x.shape[1]
    x = x.T if tall else x
    x = x / max(np.linalg.norm(x), eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


def peer_for(opt, tensors):
    return torch.optim.Muon(
        tensors,
        lr=opt.learning_rate,
        weight_decay=opt.weight_decay,
        momentum=opt.momentum,
        nesterov=opt.nesterov,
        ns_coefficients=opt.ns_coefficients,
        eps=opt.epsilon,
        ns_steps=opt.ns_steps,
        adjust_lr_fn=opt.adjust_lr_fn,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "defaults")
def test_matches_torch_within_its_bfloat16_error(impl, dtype, setting):
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
    tp = {k: torch.tensor(p.copy()) for k, p in params.items()}
    exact = {k: p.astype(np.float64) for k, p in params.items()}
    buf = {k: np.zeros(s) for k, s in SHAPES.items()}
    opt = impl.Muon(**setting)
    peer = peer_for(opt, list(tp.values()))
    for _ in range(STEPS):
        g = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
        opt.update(params, g)
        for k, t in tp.items():
            t.grad = torch.tensor(g[k])
        peer.step()
        for k, s in SHAPES.items():  # torch's rule in float64, orthogonalised exactly
            buf[k] = buf[k] + (1 - opt.momentum) * (g[k] - buf[k])
            u = g[k] + opt.momentum * (buf[k] - g[k]) if opt.nesterov else buf[k]
            o = exact_ns(u, opt.ns_coefficients, opt.ns_steps, opt.epsilon)
            a, b = s
            ratio = {
                None: math.sqrt(max(1, a / b)),
                "original": math.sqrt(max(1, a / b)),
                "match_rms_adamw": 0.2 * math.sqrt(max(a, b)),
                "spectral_unclamped": math.sqrt(a / b),
            }[opt.adjust_lr_fn]
            exact[k] = exact[k] * (1 - opt.learning_rate * opt.weight_decay) - opt.learning_rate * ratio * o
        for k, t in tp.items():
            theirs = t.numpy()
            assert params[k].dtype == dtype
            torch_err = np.abs(theirs - exact[k]).max()
            assert torch_err > 0  # bfloat16 leaves an error to compare with
            assert np.abs(params[k] - theirs).max() <= 2 * torch_err, k
            np.testing.assert_allclose(
                opt.state[k]["momentum_buffer"], peer.state[t]["momentum_buffer"].numpy(), rtol=1e-6, atol=1e-7
            )


@pytest.mark.parametrize("shape", [(12, 12), (6, 20), (20, 6)])
def test_float32_iteration_is_the_exact_one_rounded(impl, shape):
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    opt = impl.Muon(0.1, weight_decay=0.0, momentum=0.0, nesterov=False, ns_dtype="float32")
    params = {"w": p0.copy()}
    opt.update(params, {"w": g})
    ratio = math.sqrt(max(1, shape[0] / shape[1]))
    want = p0 - 0.1 * ratio * exact_ns(g, opt.ns_coefficients, 5, 1e-7)
    np.testing.assert_allclose(params["w"], want, rtol=0, atol=1e-5)


def test_bfloat16_iteration_is_coarser_than_float32():
    rng = np.random.default_rng(2)
    g = rng.standard_normal((16, 16))
    out = {}
    for ns_dtype in ("bfloat16", "float32"):
        opt = Muon(1.0, weight_decay=0.0, momentum=0.0, nesterov=False, ns_dtype=ns_dtype)
        p = {"w": np.zeros((16, 16))}
        opt.update(p, {"w": g})
        out[ns_dtype] = -p["w"]
    exact = exact_ns(g, (3.4445, -4.775, 2.0315), 5, 1e-7)
    assert np.abs(out["float32"] - exact).max() < 1e-5 < np.abs(out["bfloat16"] - exact).max()
    # every value of the bfloat16 iteration is a bfloat16 number
    np.testing.assert_array_equal(out["bfloat16"], out["bfloat16"].astype(np.float32).astype("bfloat16").astype(float))


def test_a_key_that_is_not_a_matrix_is_named_and_nothing_changes():
    params = {"w": np.ones((3, 4)), "b": np.ones(4)}
    opt = Muon()
    with pytest.raises(ValueError, match=r"Muon.update: params\['b'\] must be a 2-D array .*got shape \(4,\)"):
        opt.update(params, {k: np.ones_like(a) for k, a in params.items()})
    assert opt.step == 0 and not opt.state
    np.testing.assert_array_equal(params["w"], np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"Muon: adjust_lr_fn must be one of"):
        Muon(adjust_lr_fn="nope")
    with pytest.raises(ValueError, match=r"Muon: ns_coefficients must be three numbers"):
        Muon(ns_coefficients=(1.0, 2.0))
    with pytest.raises(ValueError, match=r"Muon: ns_dtype must be one of"):
        Muon(ns_dtype="float16")
