"""LRScheduler: hand-computed values and PyTorch's closed forms (written out from its docs/source)."""

from __future__ import annotations

import math

import pytest
from gradfast.reference import LRScheduler
from hypothesis import assume, given
from hypothesis import strategies as st

lrs = st.floats(1e-6, 10.0)
epochs = st.integers(0, 500)


# -- PyTorch's closed forms (torch.optim.lr_scheduler, `_get_closed_form_lr` / docs) -----------


def torch_step_lr(base_lr, epoch, step_size, gamma):
    return base_lr * gamma ** (epoch // step_size)


def torch_exponential_lr(base_lr, epoch, gamma):
    return base_lr * gamma**epoch


def torch_cosine_annealing_lr(base_lr, epoch, T_max, eta_min):  # noqa: N803
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * epoch / T_max)) / 2


def torch_linear_lr(base_lr, epoch, start_factor, end_factor, total_iters):
    return base_lr * (start_factor + (end_factor - start_factor) * min(total_iters, epoch) / total_iters)


def torch_cosine_warm_restarts(base_lr, epoch, T_0, T_mult, eta_min):  # noqa: N803
    """CosineAnnealingWarmRestarts.step(epoch), verbatim logic."""
    if epoch >= T_0:
        if T_mult == 1:
            T_cur = epoch % T_0  # noqa: N806
            T_i = T_0  # noqa: N806
        else:
            n = int(math.log((epoch / T_0 * (T_mult - 1) + 1), T_mult))
            T_cur = epoch - T_0 * (T_mult**n - 1) / (T_mult - 1)  # noqa: N806
            T_i = T_0 * T_mult**n  # noqa: N806
    else:
        T_i = T_0  # noqa: N806
        T_cur = epoch  # noqa: N806
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2


def restart_epochs(T_0, T_mult, limit):  # noqa: N803
    """Epochs at which a new SGDR cycle begins, by adding cycle lengths (integers, exact)."""
    out, start, length = [], 0, T_0
    while start <= limit:
        out.append(start)
        start += length
        length *= T_mult
    return out


# -- hand-computed values ----------------------------------------------------------------------


def test_step_decay_hand_values():
    s = LRScheduler(0.1)
    assert [s.step_decay(e) for e in (0, 9, 10, 19, 20, 35)] == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.025, 0.0125], rel=1e-15
    )
    assert s.step_decay(7, drop_rate=0.1, epochs_drop=3) == pytest.approx(0.001, rel=1e-14)


def test_cosine_annealing_hand_values():
    s = LRScheduler(0.1)
    assert s.cosine_annealing(0, 100) == pytest.approx(0.1, rel=1e-15)
    assert s.cosine_annealing(50, 100) == pytest.approx(0.05, rel=1e-14)
    assert s.cosine_annealing(100, 100) == pytest.approx(0.0, abs=1e-17)
    # cos(pi/3) = 1/2: 0.01 + 0.09 * 1.5 / 2
    assert s.cosine_annealing(1, 3, eta_min=0.01) == pytest.approx(0.0775, rel=1e-14)


def test_exponential_and_warmup_hand_values():
    s = LRScheduler(2.0)
    assert s.exponential_decay(3, 0.5) == pytest.approx(0.25, rel=1e-15)
    assert [s.linear_warmup(e, 4) for e in (0, 1, 2, 4, 9)] == pytest.approx([0.0, 0.5, 1.0, 2.0, 2.0])
    assert s.linear_warmup(2, 4, start_factor=0.5) == pytest.approx(1.5)
    assert s.linear_warmup(3, 0) == 2.0


def test_sgdr_hand_values():
    s = LRScheduler(1.0)
    # cycles [0, 10), [10, 30), [30, 70): restarts at 10 and 30, mid-cycle at 20 and 50
    assert s.cosine_warm_restarts(0, 10, 2) == pytest.approx(1.0)
    assert s.cosine_warm_restarts(5, 10, 2) == pytest.approx(0.5)
    assert s.cosine_warm_restarts(10, 10, 2) == pytest.approx(1.0)
    assert s.cosine_warm_restarts(20, 10, 2, eta_min=0.2) == pytest.approx(0.6)
    assert s.cosine_warm_restarts(30, 10, 2) == pytest.approx(1.0)
    assert s.cosine_warm_restarts(50, 10, 2) == pytest.approx(0.5)
    # T_mult = 1: period T_0; fractional epochs are allowed
    assert s.cosine_warm_restarts(27.5, 5) == pytest.approx(0.5)


def test_sgdr_exact_at_restart_where_torch_log_rounds_down():
    # T_0=1, T_mult=10: cycles of 1, 10, 100 epochs, so epoch 111 starts a new cycle. torch's
    # log(1000, 10) = 2.9999999999999996 puts it at the end of the previous one instead.
    assert math.log(111 / 1 * 9 + 1, 10) < 3
    assert torch_cosine_warm_restarts(1.0, 111, 1, 10, 0.0) == pytest.approx(0.0, abs=1e-15)
    assert LRScheduler(1.0).cosine_warm_restarts(111, 1, 10) == 1.0


def test_returns_python_floats():
    s = LRScheduler(0.1)
    values = [
        s.step_decay(3),
        s.cosine_annealing(3, 10),
        s.exponential_decay(3, 0.9),
        s.cosine_warm_restarts(3, 2, 2),
        s.linear_warmup(1, 5),
        s.with_warmup(7, 5, "step_decay"),
    ]
    assert all(type(v) is float for v in values)


# -- PyTorch equivalence -----------------------------------------------------------------------


@given(lrs, epochs, st.integers(1, 40), st.floats(0.0, 1.0))
def test_step_decay_is_torch_steplr(lr, epoch, step_size, gamma):
    expected = torch_step_lr(lr, epoch, step_size, gamma)
    assert LRScheduler(lr).step_decay(epoch, gamma, step_size) == pytest.approx(expected, rel=1e-12, abs=0)


@given(lrs, epochs, st.floats(0.0, 1.0))
def test_exponential_decay_is_torch_exponentiallr(lr, epoch, gamma):
    expected = torch_exponential_lr(lr, epoch, gamma)
    assert LRScheduler(lr).exponential_decay(epoch, gamma) == pytest.approx(expected, rel=1e-12, abs=0)


@given(lrs, epochs, st.integers(1, 300), st.floats(0.0, 1.0))
def test_cosine_annealing_is_torch_cosineannealinglr(lr, epoch, t_max, eta_min):
    expected = torch_cosine_annealing_lr(lr, epoch, t_max, eta_min)
    got = LRScheduler(lr).cosine_annealing(epoch, t_max, eta_min)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15 * max(lr, eta_min))


@given(lrs, epochs, st.integers(1, 30), st.integers(1, 4), st.floats(0.0, 1.0))
def test_cosine_warm_restarts_is_torch_sgdr(lr, epoch, t_0, t_mult, eta_min):
    # away from restarts, where torch's floating-point logarithm can pick the wrong cycle
    assume(epoch not in restart_epochs(t_0, t_mult, epoch))
    expected = torch_cosine_warm_restarts(lr, epoch, t_0, t_mult, eta_min)
    got = LRScheduler(lr).cosine_warm_restarts(epoch, t_0, t_mult, eta_min)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15 * max(lr, eta_min))


@given(lrs, st.integers(1, 30), st.integers(1, 4), st.floats(0.0, 1.0))
def test_cosine_warm_restarts_restart_at_initial_lr(lr, t_0, t_mult, eta_min):
    s = LRScheduler(lr)
    for e in restart_epochs(t_0, t_mult, 2000):
        assert s.cosine_warm_restarts(e, t_0, t_mult, eta_min) == pytest.approx(lr, rel=1e-14)


@given(lrs, epochs, st.integers(1, 50), st.floats(0.0, 1.0))
def test_linear_warmup_is_torch_linearlr(lr, epoch, total_iters, start_factor):
    expected = torch_linear_lr(lr, epoch, start_factor, 1.0, total_iters)
    got = LRScheduler(lr).linear_warmup(epoch, total_iters, start_factor)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-300)


# -- warm-up chained into a decay --------------------------------------------------------------


def test_with_warmup_then_cosine():
    s = LRScheduler(0.1)
    warm, total = 5, 100
    lrs_ = [s.with_warmup(e, warm, "cosine_annealing", total_epochs=total - warm) for e in range(total + 1)]
    assert lrs_[:warm] == pytest.approx([0.1 * e / warm for e in range(warm)])
    assert lrs_[warm] == pytest.approx(0.1)  # continuous at the hand-over
    for e in range(warm, total + 1):
        expected = torch_cosine_annealing_lr(0.1, e - warm, total - warm, 0.0)
        assert lrs_[e] == pytest.approx(expected, rel=1e-12, abs=1e-17)
    assert lrs_[-1] == pytest.approx(0.0, abs=1e-17)


@given(lrs, epochs, st.integers(0, 20), st.floats(0.0, 1.0))
def test_with_warmup_matches_parts(lr, epoch, warm, start_factor):
    s = LRScheduler(lr)
    got = s.with_warmup(epoch, warm, "step_decay", start_factor=start_factor, drop_rate=0.3, epochs_drop=7)
    if epoch < warm:
        expected = torch_linear_lr(lr, epoch, start_factor, 1.0, warm)
    else:
        expected = torch_step_lr(lr, epoch - warm, 7, 0.3)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_with_warmup_callable_and_restarts():
    s = LRScheduler(1.0)
    assert s.with_warmup(13, 3, lambda e, k: k * e, k=0.5) == 5.0
    assert s.with_warmup(3 + 10, 3, "cosine_warm_restarts", T_0=10) == pytest.approx(1.0)


def test_initial_lr_is_settable_and_checked():
    s = LRScheduler(0.1)
    s.initial_lr = 0.2
    assert s.step_decay(0) == 0.2
    with pytest.raises(ValueError, match=r"LRScheduler: initial_lr must be a finite number in \[0.0, inf\]"):
        s.initial_lr = -1.0
    assert s.initial_lr == 0.2


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda s: LRScheduler(-0.1), ValueError, r"LRScheduler: initial_lr must be a finite number"),
        (lambda s: LRScheduler(math.nan), ValueError, r"initial_lr must be a finite number"),
        (
            lambda s: s.step_decay(-1),
            ValueError,
            r"LRScheduler.step_decay: epoch must be a finite number in \[0.0",
        ),
        (
            lambda s: s.step_decay(True),
            TypeError,
            r"LRScheduler.step_decay: epoch must be a real number, got bool",
        ),
        (lambda s: s.step_decay("3"), TypeError, r"epoch must be a real number, got str"),
        (
            lambda s: s.step_decay(3, drop_rate=1.5),
            ValueError,
            r"step_decay: drop_rate must be a finite number in \[0.0, 1.0\]",
        ),
        (
            lambda s: s.step_decay(3, epochs_drop=0),
            ValueError,
            r"step_decay: epochs_drop must be an int >= 1, got 0",
        ),
        (
            lambda s: s.step_decay(3, epochs_drop=2.5),
            TypeError,
            r"step_decay: epochs_drop must be an int, got float",
        ),
        (
            lambda s: s.cosine_annealing(3, 0),
            ValueError,
            r"cosine_annealing: total_epochs must be an int >= 1, got 0",
        ),
        (lambda s: s.cosine_annealing(3, -5), ValueError, r"total_epochs must be an int >= 1, got -5"),
        (
            lambda s: s.cosine_annealing(-0.5, 10),
            ValueError,
            r"cosine_annealing: epoch must be a finite number",
        ),
        (lambda s: s.cosine_annealing(3, 10, eta_min=-1), ValueError, r"cosine_annealing: eta_min must be"),
        (
            lambda s: s.exponential_decay(3, 1.1),
            ValueError,
            r"exponential_decay: gamma must be a finite number in \[0.0, 1.0\]",
        ),
        (
            lambda s: s.exponential_decay(math.inf, 0.5),
            ValueError,
            r"exponential_decay: epoch must be a finite number",
        ),
        (
            lambda s: s.cosine_warm_restarts(3, 0),
            ValueError,
            r"cosine_warm_restarts: T_0 must be an int >= 1, got 0",
        ),
        (
            lambda s: s.cosine_warm_restarts(3, 5, 0),
            ValueError,
            r"cosine_warm_restarts: T_mult must be an int >= 1",
        ),
        (
            lambda s: s.cosine_warm_restarts(3, 5, 1.5),
            TypeError,
            r"cosine_warm_restarts: T_mult must be an int",
        ),
        (lambda s: s.linear_warmup(3, -1), ValueError, r"linear_warmup: warmup_epochs must be an int >= 0"),
        (
            lambda s: s.linear_warmup(3, 5, 2.0),
            ValueError,
            r"linear_warmup: start_factor must be a finite number in \[0.0, 1.0\]",
        ),
        (
            lambda s: s.with_warmup(3, 5, "cosine"),
            ValueError,
            r"with_warmup: schedule must be one of 'step_decay'.*got 'cosine'",
        ),
        (
            lambda s: s.with_warmup(3, 5, 7),
            TypeError,
            r"with_warmup: schedule must be a str or a callable, got int",
        ),
        (
            lambda s: s.with_warmup(-3, 5, "step_decay"),
            ValueError,
            r"with_warmup: epoch must be a finite number",
        ),
        # decay arguments are checked during the ramp too
        (
            lambda s: s.with_warmup(1, 5, "cosine_annealing", total_epochs=0),
            ValueError,
            r"total_epochs must be an int >= 1",
        ),
        (lambda s: s.with_warmup(1, 5, "cosine_annealing"), TypeError, r"total_epochs"),
        (
            lambda s: s.with_warmup(9, 5, lambda e: -1.0),
            ValueError,
            r"with_warmup: the schedule's rate must be a finite number",
        ),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call(LRScheduler(0.1))
