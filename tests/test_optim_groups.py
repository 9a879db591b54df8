"""Parameter groups (``groups=`` of every optimizer): the Rust classes against the reference,
bitwise; the state_dict record and the refusal of other groups; bad group specs.
The reference's numbers against torch's param_groups: tests/reference/test_optim_groups_torch.py."""

from __future__ import annotations

import math

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from conftest import TOL
from hypothesis import given, settings
from hypothesis import strategies as st
from optim_contract import assert_threads_agree
from optim_pairs import _run

#: every optimizer class with an ``update(params, gradients)``, and a setting a group may change
GROUPED = {
    "Adadelta": {"rho": 0.5, "weight_decay": 0.1},
    "Adafactor": {"d": 2.0, "weight_decay": 0.1, "maximize": True},
    "Adagrad": {"lr_decay": 0.1, "weight_decay": 0.1},
    "Adam": {"beta1": 0.5, "weight_decay": 0.1, "decoupled": True},
    "Adamax": {"beta2": 0.9, "weight_decay": 0.1},
    "AdamW": {"weight_decay": 0.0},
    "ASGD": {"weight_decay": 0.1, "maximize": True},
    "LAMB": {"weight_decay": 0.0, "beta1": 0.5},
    "LARS": {"trust_coefficient": 0.01, "weight_decay": 0.0},
    "LayerAdaptiveLR": {"beta": 0.5, "epsilon": 1e-3},
    "Lion": {"beta1": 0.5, "weight_decay": 0.5},
    "MomentumOptimizer": {"momentum": 0.5, "nesterov": True},
    "Muon": {"momentum": 0.5, "ns_dtype": "float32", "adjust_lr_fn": "match_rms_adamw"},
    "NAdam": {"beta2": 0.9, "weight_decay": 0.1},
    "RAdam": {"beta1": 0.5, "weight_decay": 0.1},
    "RMSprop": {"alpha": 0.5, "weight_decay": 0.1},
    "Rprop": {"etaminus": 0.3, "step_size_max": 0.5},
    "ScheduleFreeAdamW": {"beta2": 0.9, "weight_decay": 0.1},
}
#: the optimizers whose learning rate is theirs only (kept once per optimizer)
NO_LR_SCALE = ("ASGD", "ScheduleFreeAdamW")


def test_every_optimizer_takes_groups():
    for name in gf.__all__:
        obj = getattr(gf, name)
        if isinstance(obj, type) and issubclass(obj, gf._base.optimizer.Optimizer):
            assert "groups" in __import__("inspect").signature(obj).parameters, name
            assert name in GROUPED, name


ANY_SHAPES = [(), (1,), (7,), (3, 5), (33,), (2, 3, 4)]
MATRICES = [(1, 1), (3, 5), (8, 2), (16, 16)]


@st.composite
def grouped_problems(draw, matrices_only=False):
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    pool = MATRICES if matrices_only else draw(st.sampled_from([ANY_SHAPES, MATRICES]))
    shapes = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    params = {f"k{i}": np.asarray(rng.standard_normal(s)).astype(dtype) for i, s in enumerate(shapes)}
    grads = [{k: np.asarray(rng.standard_normal(p.shape)).astype(dtype) for k, p in params.items()} for _ in range(3)]
    claimed = draw(st.lists(st.sampled_from(sorted(params)), unique=True))
    by_list = draw(st.booleans())
    return params, grads, claimed, by_list, draw(st.floats(0.0, 4.0))


@pytest.mark.parametrize("name", sorted(GROUPED))
@settings(max_examples=15, deadline=None)
@given(problem=grouped_problems())
def test_rust_equals_reference_with_groups(name, problem):
    params, grads, claimed, by_list, scale = problem
    if name == "Muon" and any(p.ndim != 2 for p in params.values()):
        return  # Muon takes matrices only: test_muon_equals_reference_with_groups
    _check_groups(name, params, grads, claimed, by_list, scale)


@settings(max_examples=15, deadline=None)
@given(problem=grouped_problems(matrices_only=True))
def test_muon_equals_reference_with_groups(problem):
    _check_groups("Muon", *problem)


def _check_groups(name, params, grads, claimed, by_list, scale):
    setting = dict(GROUPED[name])
    if name not in NO_LR_SCALE:
        setting["lr_scale"] = scale
    keys = claimed if by_list else (lambda k, a, c=frozenset(claimed): k in c)
    groups = [
        {"keys": keys, **setting},
        {"keys": lambda k, a: a.ndim == 0, "lr_scale": 1.0} if name not in NO_LR_SCALE else {"keys": []},
    ]
    opt = getattr(gf, name)(groups=groups)
    got = _run(opt, params, grads)
    want = _run(getattr(ref, name)(groups=groups), params, grads)
    for k in params:
        if name == "Muon":
            # The products are summed in another order, and Newton-Schulz amplifies float32
            # rounding along small singular values (its slope at 0 is 3.4 per iteration), to
            # a few thousandths of the steps; a group's wrong rate or decay moves the params by a step.
            a, b = params[k].shape
            steps = opt.learning_rate * max(scale, 1.0) * 0.2 * math.sqrt(max(a, b)) * len(grads)
            rounding = 4 * np.finfo(want[k].dtype).eps * max(float(np.abs(want[k]).max()), 1.0)
            np.testing.assert_allclose(got[k], want[k], rtol=0, atol=0.02 * steps + rounding, err_msg=k)
        elif name in ("LAMB", "LARS", "Adafactor"):
            # their norms are summed in another order (test_layerwise_optimizers, test_optim_adafactor)
            np.testing.assert_allclose(got[k], want[k], **TOL[got[k].dtype], err_msg=k)
        else:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)


@pytest.mark.parametrize("module", [gf, ref], ids=["rust", "reference"])
def test_groups_change_only_their_keys(module):
    p0 = {"w": np.ones((3, 3)), "b": np.ones(3)}
    g = {"w": np.full((3, 3), 0.5), "b": np.full(3, 0.5)}
    a, b = (
        _run(module.AdamW(0.1, weight_decay=0.5), p0, [g]),
        _run(
            module.AdamW(0.1, weight_decay=0.5, groups=[{"keys": ["b"], "weight_decay": 0.0, "lr_scale": 0.5}]), p0, [g]
        ),
    )
    np.testing.assert_array_equal(a["w"], b["w"])
    # AdamW's first step moves by lr (m_hat / sqrt(v_hat) = 1) after the decay p *= 1 - lr * wd
    np.testing.assert_allclose(b["b"], 1.0 - 0.05)
    np.testing.assert_allclose(a["b"], (1.0 - 0.1 * 0.5) - 0.1)


@pytest.mark.parametrize("module", [gf, ref], ids=["rust", "reference"])
def test_lr_scale_follows_learning_rate(module):
    p0, g = {"b": np.ones(2)}, {"b": np.ones(2)}
    opt = module.MomentumOptimizer(0.1, momentum=0.0, groups=[{"keys": ["b"], "lr_scale": 0.5}])
    params = {k: v.copy() for k, v in p0.items()}
    opt.update(params, g)
    opt.learning_rate = 0.2  # what a schedule does: the group follows
    opt.update(params, g)
    np.testing.assert_allclose(params["b"], 1.0 - 0.05 - 0.1)


#: hyper-parameters that have setters of their own (not a plain ``Hyper``), and a new value
SET_BETWEEN_STEPS = [
    ("Adafactor", "epsilon", (1e-3, 10.0)),
    ("Muon", "ns_steps", 2),
    ("Muon", "ns_coefficients", (3.0, -4.0, 1.5)),
    ("Muon", "adjust_lr_fn", "match_rms_adamw"),
    ("ScheduleFreeAdamW", "warmup_steps", 3),
]


@pytest.mark.parametrize("module", [gf, ref], ids=["rust", "reference"])
@pytest.mark.parametrize(("name", "attr", "value"), SET_BETWEEN_STEPS, ids=lambda v: str(v))
def test_groups_follow_a_hyper_parameter_set_between_steps(module, name, attr, value):
    # a group repeating the optimizer's own setting steps its key as the optimizer does, also
    # after another hyper-parameter was set between steps (the group's copy must follow it)
    rng = np.random.default_rng(0)
    p0 = {k: rng.standard_normal((4, 3)) for k in ("w", "v")}
    grads = [{k: rng.standard_normal((4, 3)) for k in p0} for _ in range(3)]
    cls = getattr(module, name)
    plain = cls(1e-2)
    setting = next(iter(GROUPED[name]))
    grouped = cls(1e-2, groups=[{"keys": ["v"], setting: getattr(plain, setting)}])
    got = []
    for opt in (plain, grouped):
        params = _run(opt, p0, grads[:1])
        setattr(opt, attr, value)
        got.append(_run(opt, params, grads[1:]))
    for k in p0:
        np.testing.assert_array_equal(got[1][k], got[0][k], err_msg=k)


def test_first_group_claims_first():
    opt = ref.MomentumOptimizer(
        0.1, momentum=0.0, groups=[{"keys": ["b"], "lr_scale": 0.0}, {"keys": ["b", "w"], "lr_scale": 2.0}]
    )
    p = {"b": np.ones(1), "w": np.ones(1), "x": np.ones(1)}
    opt.update(p, {k: np.ones(1) for k in p})
    assert (p["b"][0], p["w"][0], p["x"][0]) == (1.0, 1.0 - 0.2, 1.0 - 0.1)


# -- state_dict ------------------------------------------------------------------------


@pytest.mark.parametrize("module", [gf, ref], ids=["rust", "reference"])
def test_state_dict_records_each_keys_group_and_resumes_bitwise(module):
    groups = [{"keys": lambda k, a: a.ndim < 2, "weight_decay": 0.0}]
    rng = np.random.default_rng(0)
    p0 = {"w": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in p0.items()} for _ in range(4)]
    full = _run(module.AdamW(1e-2, groups=groups), p0, grads)
    first = module.AdamW(1e-2, groups=groups)
    half = _run(first, p0, grads[:2])
    d = first.state_dict()
    assert d["groups"] == {"w": {}, "b": {"lr_scale": 1.0, "weight_decay": 0.0}}
    second = module.AdamW(1e-2, groups=groups)
    second.load_state_dict(d)
    for g in grads[2:]:
        second.update(half, g)
    for k in p0:
        np.testing.assert_array_equal(half[k], full[k])


@pytest.mark.parametrize("module", [gf, ref], ids=["rust", "reference"])
def test_other_key_list_groups_are_refused_at_load(module):
    p, g = {"w": np.ones((2, 2)), "b": np.ones(2)}, {"w": np.ones((2, 2)), "b": np.ones(2)}
    saved = module.AdamW(groups=[{"keys": ["b"], "weight_decay": 0.0}])
    saved.update(p, g)
    d = saved.state_dict()
    for other in (
        module.AdamW(),
        module.AdamW(groups=[{"keys": ["w"], "weight_decay": 0.0}]),
        module.AdamW(groups=[{"keys": ["b"], "weight_decay": 0.1}]),
    ):
        before = other.state_dict()
        with pytest.raises(ValueError, match="same groups.*'b'|same groups.*'w'"):
            other.load_state_dict(d)
        assert other.state_dict()["step"] == before["step"] == 0
    same = module.AdamW(groups=[{"keys": ("b",), "weight_decay": 0.0}])
    same.load_state_dict(d)
    # an ungrouped state into a grouped optimizer: every key was on the optimizer's own
    plain = module.AdamW()
    plain.update({k: v.copy() for k, v in p.items()}, g)
    with pytest.raises(ValueError, match="same groups"):
        module.AdamW(groups=[{"keys": ["b"], "weight_decay": 0.0}]).load_state_dict(plain.state_dict())


@pytest.mark.parametrize("module", [gf, ref], ids=["rust", "reference"])
def test_other_callable_groups_are_refused_at_the_next_update_before_any_write(module):
    p, g = {"w": np.ones((2, 2)), "b": np.ones(2)}, {"w": np.ones((2, 2)), "b": np.ones(2)}
    saved = module.AdamW(groups=[{"keys": lambda k, a: a.ndim < 2, "weight_decay": 0.0}])
    saved.update({k: v.copy() for k, v in p.items()}, g)
    d = saved.state_dict()
    other = module.AdamW(groups=[{"keys": lambda k, a: a.ndim == 2, "weight_decay": 0.0}])
    other.load_state_dict(d)  # a callable cannot be told apart until it sees the arrays
    before = {k: v.copy() for k, v in p.items()}
    with pytest.raises(ValueError, match="same groups"):
        other.update(p, g)
    for k in p:
        np.testing.assert_array_equal(p[k], before[k])
    assert other.step == 1
    np.testing.assert_array_equal(other.state["w"]["exp_avg"], d["state"]["w"]["exp_avg"])
    same = module.AdamW(groups=[{"keys": lambda k, a: k == "b", "weight_decay": 0.0}])
    same.load_state_dict(d)
    same.update(p, g)
    assert same.step == 2


# -- bad group specs ---------------------------------------------------------------------


@pytest.mark.parametrize("module", [gf, ref], ids=["rust", "reference"])
@pytest.mark.parametrize(
    ("groups", "error", "match"),
    [
        ([{"keys": ["b"], "weight_dacay": 0.0}], ValueError, r"AdamW: groups\[0\] must set only .*got 'weight_dacay'"),
        (
            [{"keys": ["b"]}, {"keys": ["w"], "learning_rate": 0.1}],
            ValueError,
            r"AdamW: groups\[1\] must not set 'learning_rate'.*lr_scale",
        ),
        (
            [{"keys": ["b"], "weight_decay": -1.0}],
            ValueError,
            r"AdamW: groups\[0\]\['weight_decay'\] must be a finite number in \[0.0, inf\], got -1.0",
        ),
        ([{"keys": ["b"], "beta1": 1.0}], ValueError, r"groups\[0\]\['beta1'\]"),
        ([{"keys": ["b"], "weight_decay": "x"}], TypeError, r"groups\[0\]\['weight_decay'\]"),
        ([{"keys": ["b"], "lr_scale": -0.5}], ValueError, r"groups\[0\]\['lr_scale'\] must be"),
        ([{"keys": ["b"], "amsgrad": True}], ValueError, r"groups\[0\] must keep the optimizer's state slots"),
        ([{"weight_decay": 0.0}], ValueError, r"groups\[0\] must have 'keys'"),
        ([{"keys": "b"}], TypeError, r"groups\[0\]\['keys'\] must be a collection.*one key in a list"),
        ([["b"]], TypeError, r"groups\[0\] must be a dict"),
        ({"keys": ["b"]}, TypeError, r"groups must be None or a list of dicts"),
    ],
)
def test_bad_groups_are_refused_naming_the_group(module, groups, error, match):
    with pytest.raises(error, match=match):
        module.AdamW(groups=groups)


@pytest.mark.parametrize("module", [gf, ref], ids=["rust", "reference"])
def test_hyper_parameters_kept_once_are_refused_in_a_group(module):
    with pytest.raises(ValueError, match=r"NAdam: groups\[0\] must set only .*mu_product.*got 'beta1'"):
        module.NAdam(groups=[{"keys": ["b"], "beta1": 0.5}])
    with pytest.raises(ValueError, match=r"ASGD: groups\[0\] must set only .*eta and mu.*got 'lr_scale'"):
        module.ASGD(groups=[{"keys": ["b"], "lr_scale": 0.5}])
    with pytest.raises(ValueError, match=r"Adagrad: groups\[0\] .*initial_accumulator_value"):
        module.Adagrad(groups=[{"keys": ["b"], "initial_accumulator_value": 0.5}])


@pytest.mark.parametrize("module", [gf, ref], ids=["rust", "reference"])
def test_bad_input_with_groups_changes_nothing(module):
    opt = module.AdamW(groups=[{"keys": ["b"], "weight_decay": 0.0}])
    p = {"b": np.ones(2), "w": np.ones((2, 2))}
    bad = {"b": np.ones(2), "w": np.ones((2, 3))}  # the second group's key is the wrong shape
    with pytest.raises(ValueError, match=r"gradients\['w'\]"):
        opt.update(p, bad)
    np.testing.assert_array_equal(p["b"], np.ones(2))
    assert opt.step == 0 and not opt.state


def test_groups_property_lists_the_groups():
    f = lambda k, a: a.ndim < 2  # noqa: E731
    opt = gf.AdamW(groups=[{"keys": {"b", "a"}, "weight_decay": 0.0}, {"keys": f, "lr_scale": 0.5}])
    assert opt.groups == [
        {"keys": ["a", "b"], "lr_scale": 1.0, "weight_decay": 0.0},
        {"keys": f, "lr_scale": 0.5},
    ]
    assert gf.AdamW().groups is None


@pytest.mark.parametrize("name", ["AdamW", "RMSprop", "LARS"])
def test_one_thread_equals_many_threads_with_groups(name):
    assert_threads_agree(lambda m: getattr(m, name)(groups=[{"keys": ["a"], "weight_decay": 0.0, "lr_scale": 0.5}]))


@pytest.mark.parametrize("module", [gf, ref], ids=["rust", "reference"])
def test_layer_adaptive_lr_rates_follow_the_layers_group(module):
    opt = module.LayerAdaptiveLR(0.1, beta=0.9, epsilon=0.0, groups=[{"keys": ["b"], "lr_scale": 0.5}])
    # at a layer's first step the bias-corrected square average is g**2: rate = lr / |g|
    np.testing.assert_allclose(opt.compute_lr("b", np.array([2.0])), [0.05 / 2.0])
    np.testing.assert_allclose(opt.compute_lr("w", np.array([2.0])), [0.1 / 2.0])
    assert opt.state_dict()["groups"] == {"b": {"lr_scale": 0.5}, "w": {}}
