"""Parameter groups of the reference optimizers against torch's ``param_groups`` with the same
assignment of keys, step for step (the Rust classes are held to the reference in
tests/test_optim_groups.py)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import gradfast.reference as ref  # noqa: E402
import torch  # noqa: E402
from torch_stepper import assert_close, default_dtype, random_run  # noqa: E402

SHAPES = {"w1": (6, 4), "b1": (4,), "w2": (4, 3), "b2": (3,), "gamma": (3,)}
STEPS = 6


def torch_group_steps(name, kwargs, groups, params, grads):
    """``params`` after ``torch.optim.<name>`` with one param group per entry of ``groups``
    (``(keys, torch group options)``, the keys no group lists in a first group of their own)
    took a step per entry of ``grads``."""
    with default_dtype(next(iter(params.values())).dtype):
        tp = {k: torch.tensor(a) for k, a in params.items()}
        listed = {k for keys, _ in groups for k in keys}
        param_groups = [{"params": [tp[k] for k in tp if k not in listed]}]
        param_groups += [{"params": [tp[k] for k in keys], **opts} for keys, opts in groups]
        opt = getattr(torch.optim, name)(param_groups, foreach=False, **kwargs)
        for g in grads:
            for k, t in tp.items():
                t.grad = torch.tensor(g[k])
            opt.step()
        return {k: t.detach().numpy().copy() for k, t in tp.items()}


#: (gradfast class, its arguments, its groups, torch's name, its arguments, its groups)
CASES = [
    # the canonical no-decay group, by a callable
    (
        "AdamW",
        {"learning_rate": 1e-2, "weight_decay": 0.1},
        [{"keys": lambda k, a: a.ndim < 2, "weight_decay": 0.0}],
        "AdamW",
        {"lr": 1e-2, "weight_decay": 0.1},
        [(["b1", "b2", "gamma"], {"weight_decay": 0.0})],
    ),
    # two groups, the first claiming first: lr_scale and betas
    (
        "Adam",
        {"learning_rate": 1e-2, "weight_decay": 0.05},
        [
            {"keys": ["b1"], "lr_scale": 0.5, "beta1": 0.5},
            {"keys": ["b1", "gamma"], "weight_decay": 0.0, "beta2": 0.9},
        ],
        "Adam",
        {"lr": 1e-2, "weight_decay": 0.05},
        [(["b1"], {"lr": 5e-3, "betas": (0.5, 0.999)}), (["gamma"], {"weight_decay": 0.0, "betas": (0.9, 0.9)})],
    ),
    (
        "RMSprop",
        {"learning_rate": 1e-2, "momentum": 0.9, "weight_decay": 0.1},
        [{"keys": ["w2"], "lr_scale": 2.0, "alpha": 0.9, "weight_decay": 0.0}],
        "RMSprop",
        {"lr": 1e-2, "momentum": 0.9, "weight_decay": 0.1},
        [(["w2"], {"lr": 2e-2, "alpha": 0.9, "weight_decay": 0.0})],
    ),
    # Rprop's step sizes start at each group's learning rate
    (
        "Rprop",
        {"learning_rate": 1e-2},
        [{"keys": ["w1", "b1"], "lr_scale": 3.0}],
        "Rprop",
        {"lr": 1e-2},
        [(["w1", "b1"], {"lr": 3e-2})],
    ),
    (
        "NAdam",
        {"learning_rate": 1e-2, "weight_decay": 0.1, "decoupled": True},
        [{"keys": lambda k, a: k.startswith("b"), "lr_scale": 0.1, "weight_decay": 0.0}],
        "NAdam",
        {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": True},
        [(["b1", "b2"], {"lr": 1e-3, "weight_decay": 0.0})],
    ),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_groups_match_torch_param_groups(case, dtype):
    name, kw, groups, torch_name, torch_kw, torch_groups = CASES[case]
    p0, grads = random_run(SHAPES, dtype, STEPS, seed=case)
    want = torch_group_steps(torch_name, torch_kw, torch_groups, p0, grads)
    opt = getattr(ref, name)(**kw, groups=groups)
    params = {k: a.copy() for k, a in p0.items()}
    for g in grads:
        opt.update(params, g)
    for k in SHAPES:
        assert_close(params[k], want[k], dtype, ulps=8, err_msg=k)


def test_groups_differ_from_no_groups():
    # the groups above change the numbers (the comparison would not pass without them)
    name, kw, groups, *_ = CASES[0]
    p0, grads = random_run(SHAPES, np.float64, STEPS, seed=0)
    a, b = ({k: v.copy() for k, v in p0.items()} for _ in range(2))
    with_groups, without = getattr(ref, name)(**kw, groups=groups), getattr(ref, name)(**kw)
    for g in grads:
        with_groups.update(a, g)
        without.update(b, g)
    assert not np.array_equal(a["b1"], b["b1"])
    np.testing.assert_array_equal(a["w1"], b["w1"])
