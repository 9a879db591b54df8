"""gradfast.schedules against torch.optim.lr_scheduler, step for step.

The module is pure Python and its own reference (there is no Rust twin), so the peer is the
specification: a torch optimizer driven by torch's scheduler and a gradfast optimizer driven
by gradfast's must hold the same rate (and, for ``OneCycleLR``, the same momentum) after
every step, for several hundred steps.
"""

from __future__ import annotations

import math

import gradfast as gf
import gradfast.schedules as gs
import numpy as np
import pytest

torch = pytest.importorskip("torch")
tls = torch.optim.lr_scheduler

REL = 1e-12


def _pair(kind: str, lr: float):
    p = torch.zeros(1, requires_grad=True)
    p.grad = torch.zeros(1)
    if kind == "adam":
        return torch.optim.Adam([p], lr=lr), gf.Adam(lr)
    return torch.optim.SGD([p], lr=lr, momentum=0.9), gf.MomentumOptimizer(lr)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-18)


def _same(t_opt, g_opt, ts, gsched, where: str) -> None:
    group = t_opt.param_groups[0]
    assert _close(g_opt.learning_rate, group["lr"]), (where, g_opt.learning_rate, group["lr"])
    last = gsched.get_last_lr()
    assert isinstance(last, list) and len(last) == 1 and isinstance(last[0], float)
    assert _close(last[0], ts.get_last_lr()[0]), (where, last, ts.get_last_lr())
    if "betas" in group:
        assert _close(g_opt.beta1, group["betas"][0]), where
    elif "momentum" in group:
        assert _close(g_opt.momentum, group["momentum"]), where


def _drive(make, steps=300, kind="sgd", lr=0.1, metrics=None):
    """Build the same scheduler(s) on both sides with ``make(module, optimizer)`` (a list: all
    stepped each step, torch's chaining) and step them together."""
    t_opt, g_opt = _pair(kind, lr)
    ts_all, gs_all = make(tls, t_opt), make(gs, g_opt)
    ts_all = ts_all if isinstance(ts_all, list) else [ts_all]
    gs_all = gs_all if isinstance(gs_all, list) else [gs_all]
    _same(t_opt, g_opt, ts_all[-1], gs_all[-1], "constructor")
    for i in range(steps):
        t_opt.step()
        args = () if metrics is None else (metrics[i],)
        for t, g in zip(ts_all, gs_all):
            t.step(*args)
            g.step(*args)
        _same(t_opt, g_opt, ts_all[-1], gs_all[-1], f"step {i + 1}")
    return g_opt, gs_all


class Decay:
    """A callable object: its ``__dict__`` is what LambdaLR's state_dict saves."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def __call__(self, epoch: int) -> float:
        return self.rate**epoch


CASES = {
    "lambda": lambda m, o: m.LambdaLR(o, lambda e: 0.97**e),
    "lambda-object": lambda m, o: m.LambdaLR(o, Decay(0.99)),
    "multiplicative": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.995),
    "step": lambda m, o: m.StepLR(o, step_size=30, gamma=0.5),
    "step-7": lambda m, o: m.StepLR(o, 7, 0.9),
    "multistep": lambda m, o: m.MultiStepLR(o, [30, 80, 80, 150], gamma=0.5),
    "constant": lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=40),
    "linear-warmup": lambda m, o: m.LinearLR(o, start_factor=0.01, total_iters=100),
    "linear-to-zero": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=250),
    "linear-default": lambda m, o: m.LinearLR(o),
    "exponential": lambda m, o: m.ExponentialLR(o, gamma=0.99),
    "polynomial": lambda m, o: m.PolynomialLR(o, total_iters=200, power=2.0),
    "polynomial-sqrt": lambda m, o: m.PolynomialLR(o, total_iters=300, power=0.5),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, T_max=100, eta_min=0.001),
    "cosine-zero": lambda m, o: m.CosineAnnealingLR(o, T_max=50),
    "warm-restarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=1e-4),
    "warm-restarts-1": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=25),
    "onecycle": lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=300),
    "onecycle-three-linear": lambda m, o: m.OneCycleLR(
        o, max_lr=1.0, total_steps=301, three_phase=True, anneal_strategy="linear", pct_start=0.25
    ),
    "onecycle-epochs-no-momentum": lambda m, o: m.OneCycleLR(
        o, max_lr=0.3, epochs=10, steps_per_epoch=30, cycle_momentum=False, div_factor=10.0
    ),
    "sequential-warmup-cosine": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=20), m.CosineAnnealingLR(o, T_max=280)], milestones=[20]
    ),
    "sequential-three": lambda m, o: m.SequentialLR(
        o,
        [m.ConstantLR(o, factor=0.25, total_iters=10), m.ExponentialLR(o, 0.98), m.StepLR(o, 25, 0.5)],
        milestones=[10, 100],
    ),
    "sequential-polynomial-restarts": lambda m, o: m.SequentialLR(
        o,
        [m.PolynomialLR(o, total_iters=50, power=3.0), m.CosineAnnealingWarmRestarts(o, T_0=30, T_mult=2)],
        milestones=[60],
    ),
    "chained-step-exponential": lambda m, o: [m.StepLR(o, 20, 0.5), m.ExponentialLR(o, 0.995)],
    "chained-constant-cosine": lambda m, o: [m.ConstantLR(o, 0.1, 15), m.CosineAnnealingLR(o, T_max=120)],
    "chained-scheduler": lambda m, o: m.ChainedScheduler(
        [m.LinearLR(o, 0.2, total_iters=30), m.ExponentialLR(o, 0.99)]
    ),
}


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch_step_for_step(name, kind):
    _drive(CASES[name], kind=kind)


def _metrics(n: int, seed: int) -> list[float]:
    """A loss that falls, plateaus and wobbles: every branch of the plateau rule fires."""
    rng = np.random.default_rng(seed)
    base = np.concatenate([np.linspace(1.0, 0.5, n // 3), np.full(n - n // 3, 0.5)])
    return [float(x) for x in base + rng.normal(0.0, 1e-3, n)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"mode": "max", "patience": 2},
        {"threshold_mode": "abs", "threshold": 1e-3, "patience": 3, "cooldown": 4},
        {"mode": "max", "threshold_mode": "abs", "threshold": 0.0, "factor": 0.5, "patience": 0},
        {"patience": 1, "min_lr": 1e-3, "factor": 0.3, "cooldown": 2},
        {"patience": 1, "min_lr": [1e-2], "eps": 1e-3},
    ],
)
def test_plateau_matches_torch(kwargs):
    sign = -1.0 if kwargs.get("mode") == "max" else 1.0
    metrics = [sign * m for m in _metrics(300, 5)]
    g_opt, _ = _drive(lambda m, o: m.ReduceLROnPlateau(o, **kwargs), metrics=metrics)
    assert g_opt.learning_rate < 0.1  # the rule did cut the rate


def test_plateau_does_not_set_the_rate_in_its_constructor():
    opt = gf.MomentumOptimizer(0.1)
    gs.ReduceLROnPlateau(opt)
    assert opt.learning_rate == 0.1


# -- saving and resuming ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(k for k in CASES if not k.startswith("chained-") or k == "chained-scheduler"))
def test_resume_continues_bitwise(name):
    make = CASES[name]
    opt = gf.Adam(0.1)
    s = make(gs, opt)
    for _ in range(110):
        s.step()
    saved, lr, beta1 = s.state_dict(), opt.learning_rate, opt.beta1
    opt2 = gf.Adam(0.1)
    s2 = make(gs, opt2)
    fresh_lr = opt2.learning_rate
    s2.load_state_dict(saved)
    assert opt2.learning_rate == fresh_lr  # the rate is not restored ...
    opt2.learning_rate, opt2.beta1 = lr, beta1  # ... it is the optimizer's state
    for i in range(150):
        s.step()
        s2.step()
        assert opt.learning_rate == opt2.learning_rate, (name, i)
        assert opt.beta1 == opt2.beta1
        assert s.get_last_lr() == s2.get_last_lr()
    assert s.state_dict() == s2.state_dict()


def test_plateau_resume_continues_bitwise():
    metrics = _metrics(300, 9)
    opt, opt2 = gf.MomentumOptimizer(0.1), gf.MomentumOptimizer(0.1)
    s = gs.ReduceLROnPlateau(opt, patience=2, cooldown=3)
    for m in metrics[:150]:
        s.step(m)
    s2 = gs.ReduceLROnPlateau(opt2, patience=2, cooldown=3)
    s2.load_state_dict(s.state_dict())
    opt2.learning_rate = opt.learning_rate
    for m in metrics[150:]:
        s.step(m)
        s2.step(m)
        assert opt.learning_rate == opt2.learning_rate
    assert s.state_dict() == s2.state_dict()


def test_state_dict_is_plain_and_a_copy():
    s = gs.MultiStepLR(gf.Adam(0.1), [3, 1, 3])
    d = s.state_dict()
    assert d["milestones"] == [1, 3, 3]
    d["base_lrs"].append(1.0)
    assert s.state_dict()["base_lrs"] == [0.1]


def test_lambda_object_state_is_restored():
    f = Decay(0.9)
    s = gs.LambdaLR(gf.Adam(0.1), f)
    d = s.state_dict()
    assert d["lr_lambdas"] == [{"rate": 0.9}]
    f.rate = 0.5
    s.load_state_dict(d)
    assert f.rate == 0.9
    assert gs.LambdaLR(gf.Adam(0.1), lambda e: 1.0).state_dict()["lr_lambdas"] == [None]


BAD_STATES = [
    ("step", lambda d: d.pop("gamma"), ValueError, "gamma"),
    ("step", lambda d: d.update(extra=1), ValueError, "extra"),
    ("step", lambda d: d.update(gamma=-1.0), ValueError, "gamma"),
    ("step", lambda d: d.update(step_size="3"), TypeError, "step_size"),
    ("step", lambda d: d.update(last_epoch=-5), ValueError, "last_epoch"),
    ("step", lambda d: d.update(base_lrs=[0.1, 0.2]), ValueError, "base_lrs"),
    ("onecycle", lambda d: d.update(anneal_strategy="cubic"), ValueError, "anneal_strategy"),
    ("sequential-three", lambda d: d["_schedulers"][2].update(gamma=float("nan")), ValueError, "gamma"),
    ("sequential-three", lambda d: d["_schedulers"].pop(), ValueError, "_schedulers"),
]


@pytest.mark.parametrize(("name", "spoil", "error", "word"), BAD_STATES)
def test_bad_state_changes_nothing(name, spoil, error, word):
    s = CASES[name](gs, gf.Adam(0.1))
    for _ in range(12):
        s.step()
    before = s.state_dict()
    d = s.state_dict()
    s.step()
    spoil(d)
    after_step = s.state_dict()
    with pytest.raises(error, match=word):
        s.load_state_dict(d)
    assert s.state_dict() == after_step != before


def test_plateau_bad_state_changes_nothing():
    s = gs.ReduceLROnPlateau(gf.Adam(0.1))
    s.step(1.0)
    d = s.state_dict()
    d["threshold_mode"] = "relative"
    with pytest.raises(ValueError, match="threshold_mode"):
        s.load_state_dict(d)
    assert s.state_dict()["threshold_mode"] == "rel"


# -- bad arguments ------------------------------------------------------------------------

BAD_ARGS = [
    (lambda o: gs.StepLR(o, 0), ValueError, "StepLR: step_size"),
    (lambda o: gs.StepLR(o, 2.5), TypeError, "StepLR: step_size"),
    (lambda o: gs.StepLR(o, 3, gamma=-0.1), ValueError, "StepLR: gamma"),
    (lambda o: gs.ExponentialLR(o, float("inf")), ValueError, "ExponentialLR: gamma"),
    (lambda o: gs.LinearLR(o, start_factor=0.0), ValueError, "LinearLR: start_factor"),
    (lambda o: gs.LinearLR(o, end_factor=1.5), ValueError, "LinearLR: end_factor"),
    (lambda o: gs.LinearLR(o, total_iters=0), ValueError, "LinearLR: total_iters"),
    (lambda o: gs.ConstantLR(o, factor=2.0), ValueError, "ConstantLR: factor"),
    (lambda o: gs.MultiStepLR(o, [2, -1]), ValueError, "MultiStepLR: milestones"),
    (lambda o: gs.MultiStepLR(o, "12"), TypeError, "MultiStepLR: milestones"),
    (lambda o: gs.PolynomialLR(o, power=-1.0), ValueError, "PolynomialLR: power"),
    (lambda o: gs.CosineAnnealingLR(o, T_max=0), ValueError, "CosineAnnealingLR: T_max"),
    (lambda o: gs.CosineAnnealingLR(o, 10, eta_min=-1.0), ValueError, "CosineAnnealingLR: eta_min"),
    (lambda o: gs.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "CosineAnnealingWarmRestarts: T_0"),
    (lambda o: gs.CosineAnnealingWarmRestarts(o, 5, T_mult=0), ValueError, "T_mult"),
    (lambda o: gs.OneCycleLR(o, 0.1), ValueError, "OneCycleLR: total_steps"),
    (lambda o: gs.OneCycleLR(o, 0.1, total_steps=10, pct_start=1), TypeError, "pct_start"),
    (lambda o: gs.OneCycleLR(o, 0.1, total_steps=10, pct_start=1.5), ValueError, "pct_start"),
    (lambda o: gs.OneCycleLR(o, 0.1, total_steps=10, max_momentum=1.0), ValueError, "max_momentum"),
    (lambda o: gs.OneCycleLR(o, 0.1, total_steps=10, anneal_strategy="exp"), ValueError, "anneal_strategy"),
    (lambda o: gs.OneCycleLR(o, [0.1, 0.2], total_steps=10), ValueError, "max_lr"),
    (lambda o: gs.OneCycleLR(o, -0.1, total_steps=10), ValueError, "max_lr"),
    (lambda o: gs.LambdaLR(o, 0.5), TypeError, "lr_lambda"),
    (lambda o: gs.StepLR(o, 3, last_epoch=4), ValueError, "last_epoch"),
    (lambda o: gs.StepLR(o, 3, last_epoch=-2), ValueError, "last_epoch"),
    (lambda o: gs.SequentialLR(o, [], []), ValueError, "schedulers"),
    (lambda o: gs.SequentialLR(o, [gs.StepLR(o, 2)], [3]), ValueError, "milestones"),
    (lambda o: gs.SequentialLR(o, [gs.ReduceLROnPlateau(o)], []), TypeError, "ReduceLROnPlateau"),
    (lambda o: gs.SequentialLR(o, [gs.StepLR(gf.Adam(0.1), 2)], []), ValueError, "schedulers\\[0\\]"),
    (lambda o: gs.ReduceLROnPlateau(o, mode="least"), ValueError, "mode"),
    (lambda o: gs.ReduceLROnPlateau(o, threshold_mode="relative"), ValueError, "threshold_mode"),
    (lambda o: gs.ReduceLROnPlateau(o, factor=1.0), ValueError, "factor"),
    (lambda o: gs.ReduceLROnPlateau(o, min_lr=[0.1, 0.2]), ValueError, "min_lr"),
    (lambda o: gs.ReduceLROnPlateau(o, patience=-1), ValueError, "patience"),
]


@pytest.mark.parametrize(("make", "error", "words"), BAD_ARGS)
def test_bad_arguments_change_nothing(make, error, words):
    opt = gf.Adam(0.3, beta1=0.8)
    with pytest.raises(error, match=words):
        make(opt)
    assert opt.learning_rate == 0.3 and opt.beta1 == 0.8


def test_not_an_optimizer():
    with pytest.raises(TypeError, match="StepLR: optimizer must be a gradfast optimizer"):
        gs.StepLR(object(), 3)


def test_onecycle_needs_momentum_to_cycle():
    opt = gf.LayerAdaptiveLR(0.1)
    with pytest.raises(ValueError, match="beta1 or momentum"):
        gs.OneCycleLR(opt, 0.1, total_steps=10)
    gs.OneCycleLR(opt, 0.1, total_steps=10, cycle_momentum=False)


def test_onecycle_past_total_steps_changes_nothing():
    opt = gf.Adam(0.1)
    s = gs.OneCycleLR(opt, 0.1, total_steps=5)
    for _ in range(5):
        s.step()
    before = s.state_dict(), opt.learning_rate, opt.beta1
    with pytest.raises(ValueError, match="total_steps=5"):
        s.step()
    assert (s.state_dict(), opt.learning_rate, opt.beta1) == before


def test_a_refused_rate_takes_no_step():
    opt = gf.Adam(0.1)
    s = gs.LambdaLR(opt, lambda e: float("nan") if e == 3 else 1.0)
    s.step()
    s.step()
    before = s.state_dict()
    with pytest.raises(ValueError, match="learning_rate"):
        s.step()
    assert s.state_dict() == before and opt.learning_rate == 0.1


def test_plateau_metric_must_be_a_number():
    s = gs.ReduceLROnPlateau(gf.Adam(0.1))
    with pytest.raises(TypeError, match="metrics"):
        s.step("low")
    assert s.state_dict()["last_epoch"] == 0


def test_warm_restarts_fractional_epochs_match_torch():
    t_opt, g_opt = _pair("sgd", 0.1)
    ts, g = tls.CosineAnnealingWarmRestarts(t_opt, T_0=3, T_mult=2), gs.CosineAnnealingWarmRestarts(g_opt, 3, 2)
    for epoch in range(40):
        for i in range(7):
            t_opt.step()
            ts.step(epoch + i / 7)
            g.step(epoch + i / 7)
            _same(t_opt, g_opt, ts, g, f"epoch {epoch + i / 7}")


def test_module_is_exported():
    assert gf.schedules is gs
    assert {"LambdaLR", "OneCycleLR", "ReduceLROnPlateau", "SequentialLR"} <= set(gs.__all__)
