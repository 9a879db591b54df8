"""The reference ScheduleFreeAdamW (and gradfast's) against ``schedulefree.AdamWScheduleFree`` (single-tensor
path) step for step, with train/eval switches between steps: params, ``z``, ``exp_avg_sq``,
``lr_max`` and ``weight_sum`` (float32 within a few ulps, float64 to 1e-12 relative)."""

from __future__ import annotations

import numpy as np
import pytest
from gradfast.reference import ScheduleFreeAdamW

torch = pytest.importorskip("torch")
schedulefree = pytest.importorskip("schedulefree")

DTYPES = [np.float32, np.float64]
SHAPES = {"w": (6, 5), "b": (5,), "s": (), "t": (2, 3, 2)}
SETTINGS = [
    {},
    {"learning_rate": 1e-2, "weight_decay": 0.1},
    {"learning_rate": 5e-3, "warmup_steps": 3, "r": 0.5},
    {"learning_rate": 2e-2, "beta1": 0.5, "beta2": 0.9, "epsilon": 1e-3, "weight_lr_power": 0.0},
    {"learning_rate": 1e-2, "beta1": 0.3, "warmup_steps": 10, "r": 2.0, "weight_lr_power": 1.0},
]
STEPS = 7


def close(dtype):
    return {"rtol": 1e-12, "atol": 1e-14} if dtype == np.float64 else {"rtol": 1e-6, "atol": 1e-7}


def peer_for(opt, tensors):
    return schedulefree.AdamWScheduleFree(
        tensors,
        lr=opt.learning_rate,
        betas=(opt.beta1, opt.beta2),
        eps=opt.epsilon,
        weight_decay=opt.weight_decay,
        warmup_steps=opt.warmup_steps,
        r=opt.r,
        weight_lr_power=opt.weight_lr_power,
        foreach=False,
    )


def assert_matches(opt, params, peer, tp, dtype):
    group = peer.param_groups[0]
    assert opt.lr_max == group["lr_max"] and opt.weight_sum == group["weight_sum"]
    assert opt.train_mode == group["train_mode"]
    for k, t in tp.items():
        np.testing.assert_allclose(params[k], t.numpy(), **close(dtype))
        for slot in ("z", "exp_avg_sq"):
            np.testing.assert_allclose(opt.state[k][slot], peer.state[t][slot].numpy(), **close(dtype))
            assert opt.state[k][slot].dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "defaults")
def test_matches_schedulefree_with_mode_switches(impl, dtype, setting):
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
    tp = {k: torch.tensor(p.copy()) for k, p in params.items()}
    opt = impl.ScheduleFreeAdamW(**setting)
    peer = peer_for(opt, list(tp.values()))
    peer.train()
    for step in range(1, STEPS + 1):
        g = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
        opt.update(params, g)
        for k, t in tp.items():
            t.grad = torch.tensor(g[k])  # the peer divides its gradients in place: a copy
        peer.step()
        assert_matches(opt, params, peer, tp, dtype)
        if step % 3 == 0:  # evaluate, then resume training
            opt.eval(params)
            peer.eval()
            assert_matches(opt, params, peer, tp, dtype)
            opt.train(params)
            peer.train()
            assert_matches(opt, params, peer, tp, dtype)
    assert opt.step == STEPS


def test_switches_are_idempotent_and_refuse_to_step_in_eval_mode():
    rng = np.random.default_rng(1)
    params = {"w": rng.standard_normal((4, 3))}
    opt = ScheduleFreeAdamW(1e-2)
    assert opt.train_mode
    opt.train(params)  # already training: nothing moves
    for _ in range(3):
        opt.update(params, {"w": rng.standard_normal((4, 3))})
    y = params["w"].copy()
    opt.eval(params)
    x = params["w"].copy()
    assert not np.array_equal(x, y)
    opt.eval(params)
    np.testing.assert_array_equal(params["w"], x)
    state = {s: a.copy() for s, a in opt.state["w"].items()}
    with pytest.raises(ValueError, match=r"ScheduleFreeAdamW.update: the optimizer must be in train mode"):
        opt.update(params, {"w": np.ones((4, 3))})
    np.testing.assert_array_equal(params["w"], x)
    assert opt.step == 3 and all(np.array_equal(opt.state["w"][s], state[s]) for s in state)
    opt.train(params)
    opt.train(params)
    np.testing.assert_allclose(params["w"], y, rtol=1e-12)


def test_state_dict_records_the_mode_and_schedule_and_resumes_bitwise():
    rng = np.random.default_rng(2)
    gs = [{"w": rng.standard_normal(5)} for _ in range(6)]
    a = ScheduleFreeAdamW(1e-2, warmup_steps=4)
    pa = {"w": np.linspace(-1, 1, 5)}
    for g in gs[:3]:
        a.update(pa, g)
    a.eval(pa)
    saved, saved_p = a.state_dict(), {"w": pa["w"].copy()}
    assert saved["train_mode"] is False and saved["weight_sum"] == a.weight_sum > 0 and saved["lr_max"] == a.lr_max
    b = ScheduleFreeAdamW(1e-2, warmup_steps=4)
    b.load_state_dict(saved)
    assert not b.train_mode
    for opt, p in ((a, pa), (b, saved_p)):
        opt.train(p)
        for g in gs[3:]:
            opt.update(p, g)
    np.testing.assert_array_equal(pa["w"], saved_p["w"])
    assert (a.lr_max, a.weight_sum) == (b.lr_max, b.weight_sum)


def test_a_bad_switch_changes_nothing():
    params = {"w": np.ones(3)}
    opt = ScheduleFreeAdamW()
    opt.update(params, {"w": np.ones(3)})
    with pytest.raises(ValueError, match=r"ScheduleFreeAdamW.eval: params must have key 'w'"):
        opt.eval({"v": np.ones(3)})
    assert opt.train_mode
    with pytest.raises(ValueError, match=r"ScheduleFreeAdamW.eval: params\['w'\]"):
        opt.eval({"w": np.ones(4)})
    assert opt.train_mode
