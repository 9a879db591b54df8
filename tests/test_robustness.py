"""What a hostile or careless user can do to the Rust-backed names: array subclasses, fork,
Ctrl-C, threads, tampered checkpoints, odd mappings, odd arguments. Each promise is listed in
docs/robustness.md with the test that holds it. Risky cases run in a subprocess.
"""

import collections
import copy
import os
import subprocess
import sys
import textwrap
import threading
import types

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest

F32 = np.float32


def run_python(code, timeout=120):
    """Runs ``code`` in a fresh interpreter; returns its completed process."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )


# -- array subclasses ---------------------------------------------------------------------


class HostileCopy(np.ndarray):
    """A subclass whose own ``.copy()`` returns garbage of every kind."""

    kind = "str"

    def copy(self, *args, **kwargs):
        base = self.view(np.ndarray)
        return {
            "str": "not an array",
            "broadcast": np.broadcast_to(np.float32(1), base.shape),
            "float16": base.astype(np.float16),
        }[self.kind]


@pytest.mark.parametrize("kind", ["str", "broadcast", "float16"])
def test_non_contiguous_input_is_copied_by_numpy_not_by_its_own_copy(kind):
    g = np.arange(16, dtype=F32).reshape(4, 4).T  # non-contiguous: the kernel needs a copy
    HostileCopy.kind = kind
    hostile = g.view(HostileCopy)
    p_gf, p_ref = {"w": np.ones((4, 4), F32)}, {"w": np.ones((4, 4), F32)}
    gf.Adam(0.1).update(p_gf, {"w": hostile})
    ref.Adam(0.1).update(p_ref, {"w": np.ascontiguousarray(g)})
    np.testing.assert_array_equal(p_gf["w"], p_ref["w"])


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_masked_array_and_matrix_are_refused_by_both(impl):
    masked = np.ma.masked_array(np.ones(4, F32), mask=[0, 1, 0, 0])
    for bad, what in ((masked, "MaskedArray"), (np.matrix(np.ones((2, 2), F32)), "matrix")):
        params = {"w": np.ones(bad.shape, F32)}
        before = params["w"].copy()
        with pytest.raises(TypeError, match=f"gradients\\['w'\\] must be a numpy.ndarray, got a numpy.*{what}"):
            impl.Adam().update(params, {"w": bad})
        np.testing.assert_array_equal(params["w"], before)
        with pytest.raises(TypeError, match=f"params\\['w'\\] must be a numpy.ndarray, got a numpy.*{what}"):
            impl.MomentumOptimizer().update({"w": bad}, {"w": np.ones(bad.shape, F32)})


def test_memmap_params_are_updated_like_plain_arrays(impl, tmp_path):
    mm = np.memmap(tmp_path / "w.dat", dtype=F32, mode="w+", shape=(8,))
    mm[:] = 1.0
    plain = {"w": np.ones(8, F32)}
    grads = {"w": np.full(8, 0.5, F32)}
    impl.Adam(0.1).update({"w": mm}, grads)
    impl.Adam(0.1).update(plain, grads)
    np.testing.assert_array_equal(np.asarray(mm), plain["w"])


# -- fork ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["os.fork", "multiprocessing"])
def test_a_forked_child_gets_a_working_pool(how):
    code = f"""
        import os, sys, multiprocessing as mp
        import numpy as np, gradfast as gf
        gf.set_num_threads(2)
        def work():
            p, g = {{"w": np.ones(4_000_000, np.float32)}}, {{"w": np.ones(4_000_000, np.float32)}}
            gf.Adam().update(p, g)  # big enough to run on the pool
            return float(p["w"][0])
        parent = work()
        if "{how}" == "os.fork":
            pid = os.fork()
            if pid == 0:
                os._exit(0 if work() == parent else 3)
            _, status = os.waitpid(pid, 0)
            sys.exit(os.waitstatus_to_exitcode(status))
        with mp.get_context("fork").Pool(1) as pool:
            sys.exit(0 if pool.apply(work) == parent else 3)
    """
    assert run_python(code, timeout=60).returncode == 0


# -- Ctrl-C -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Adam", "MomentumOptimizer", "adam_optimizer", "LAMB", "LARS", "LayerAdaptiveLR"])
def test_an_interrupt_never_splits_a_step_from_its_counter(name):
    """A timer raises KeyboardInterrupt at random moments of a loop of updates; after each
    interrupt the step counter must say how many steps the arrays have taken, which a
    fresh run of that many steps checks bitwise."""
    code = f"""
        import random, signal, sys
        import numpy as np, gradfast as gf
        def interrupt(*_):
            raise KeyboardInterrupt
        signal.signal(signal.SIGALRM, interrupt)
        g = {{"w": np.linspace(-1, 1, 64, dtype=np.float32)}}
        def fresh():
            if "{name}" == "adam_optimizer":
                return {{}}, {{"w": np.ones(64, np.float32)}}
            return getattr(gf, "{name}")(0.01), {{"w": np.ones(64, np.float32)}}
        def step(opt, p):
            if "{name}" == "adam_optimizer":
                gf.adam_optimizer(p["w"], g["w"], opt, 0.01)
            else:
                opt.update(p, g)
        def count(opt):
            return opt.get("t", 0) if isinstance(opt, dict) else opt.step
        random.seed(0)
        for trial in range(40):
            opt, p = fresh()
            try:  # the timer is armed inside the try: it may fire at once
                signal.setitimer(signal.ITIMER_REAL, random.uniform(1e-4, 3e-3))
                while True:
                    step(opt, p)
            except KeyboardInterrupt:
                pass
            signal.setitimer(signal.ITIMER_REAL, 0)
            again, q = fresh()
            for _ in range(count(opt)):
                step(again, q)
            if not np.array_equal(p["w"], q["w"]):
                sys.exit(f"trial {{trial}}: arrays ahead of or behind step {{count(opt)}}")
    """
    out = run_python(code)
    assert out.returncode == 0, out.stderr[-2000:]


# -- threads ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Adam", "MomentumOptimizer", "LAMB", "LARS", "LayerAdaptiveLR"])
def test_concurrent_updates_of_one_optimizer_equal_serial_ones(name):
    n, steps = 1_000_000, 6  # large enough that the kernel runs without the GIL
    g = {"w": np.linspace(-1, 1, n, dtype=F32)}
    shared, p = getattr(gf, name)(0.01), {"w": np.ones(n, F32)}
    workers = [threading.Thread(target=lambda: [shared.update(p, g) for _ in range(steps)]) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    serial, q = getattr(gf, name)(0.01), {"w": np.ones(n, F32)}
    for _ in range(2 * steps):
        serial.update(q, g)
    assert shared.step == serial.step == 2 * steps
    np.testing.assert_array_equal(p["w"], q["w"])


def test_an_update_waits_for_the_step_lock_and_resumes_when_it_is_released(impl):
    """A step taken while another thread holds the optimizer's lock waits for it (no write,
    no count), then runs once the holder releases it: releasing wakes the waiter."""
    opt, p, g = impl.Adam(0.01), {"w": np.ones(8, F32)}, {"w": np.full(8, 0.5, F32)}
    worker = threading.Thread(target=opt.update, args=(p, g))
    with opt._steps:
        worker.start()
        worker.join(timeout=0.2)
        assert worker.is_alive() and opt._steps.step == 0 and np.all(p["w"] == 1)
    worker.join(timeout=30)
    assert not worker.is_alive() and opt.step == 1 and np.all(p["w"] < 1)


def test_an_optimizer_can_be_deep_copied_and_pickled(impl):
    import pickle

    opt = impl.Adam(0.1)
    p = {"w": np.ones(3, F32)}
    opt.update(p, {"w": np.ones(3, F32)})
    for clone in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        q = {"w": p["w"].copy()}
        clone.update(q, {"w": np.ones(3, F32)})
        opt2 = copy.deepcopy(opt)
        r = {"w": p["w"].copy()}
        opt2.update(r, {"w": np.ones(3, F32)})
        np.testing.assert_array_equal(q["w"], r["w"])
        assert clone.step == 2


# -- checkpoints --------------------------------------------------------------------------


def trained(impl):
    opt, p = impl.Adam(0.1), {"w": np.ones(3), "b": np.ones(2)}
    opt.update(p, {"w": np.ones(3), "b": np.ones(2)})
    return opt


def tampered():
    """(description, change to a good state_dict, error, message regex)."""

    def with_state(state):
        return lambda d: {**d, "state": state}

    good_slots = {"exp_avg": np.zeros(3), "exp_avg_sq": np.zeros(3)}
    return [
        ("step 2**64", lambda d: {**d, "step": 2**64}, ValueError, r"d\['step'\] must be an int in \[0, "),
        ("hyperparams not a dict", lambda d: {**d, "hyperparams": 3}, TypeError, r"d\['hyperparams'\] must be a dict"),
        (
            "unknown hyper-parameter",
            lambda d: {**d, "hyperparams": {"momentum": 0.9}},
            ValueError,
            r"d\['hyperparams'\] must have only the hyper-parameters of Adam .*got 'momentum'",
        ),
        ("huge hyper-parameter", lambda d: {**d, "hyperparams": {"beta1": 10**400}}, ValueError, r"beta1 must be"),
        ("state entry not a dict", with_state({"w": 3, "b": {}}), TypeError, r"d\['state'\]\['w'\] must be a dict"),
        (
            "slot of the wrong shape",
            with_state({"w": {"exp_avg": np.zeros(3), "exp_avg_sq": np.zeros(4)}, "b": good_slots}),
            ValueError,
            r"d\['state'\]\['w'\]\['exp_avg_sq'\] must have shape \(3,\)",
        ),
        (
            "slots unlike the current state",
            with_state({"w": {"exp_avg": np.zeros(5), "exp_avg_sq": np.zeros(5)}, "b": good_slots}),
            ValueError,
            r"d\['state'\]\['w'\]\['exp_avg'\] must have shape \(3,\) and dtype float64 as when",
        ),
        (
            "missing parameter entry",
            with_state({"w": good_slots}),
            ValueError,
            r"d\['state'\] must have key 'b' like the optimizer's current state",
        ),
        (
            "extra parameter entry",
            lambda d: {**d, "state": {**d["state"], "x": good_slots}},
            ValueError,
            r"d\['state'\] must have only the keys of the optimizer's current state, got extra key 'x'",
        ),
        (
            "extra slot",
            lambda d: {**d, "state": {**d["state"], "w": {**good_slots, "momentum": np.zeros(3)}}},
            ValueError,
            r"d\['state'\]\['w'\] must have only the slots",
        ),
        ("empty state with a step", with_state({}), ValueError, r"state arrays exactly when its step is > 0"),
        ("state at step 0", lambda d: {**d, "step": 0}, ValueError, r"state arrays exactly when its step is > 0"),
    ]


@pytest.mark.parametrize("case", tampered(), ids=lambda c: c[0])
def test_a_tampered_checkpoint_is_refused_and_changes_nothing(impl, case):
    _, change, exc, match = case
    opt = trained(impl)
    before = opt.state_dict()
    with pytest.raises(exc, match=match):
        opt.load_state_dict(change(opt.state_dict()))
    after = opt.state_dict()
    assert after["step"] == before["step"] and after["hyperparams"] == before["hyperparams"]
    for k in before["state"]:
        for s in before["state"][k]:
            np.testing.assert_array_equal(after["state"][k][s], before["state"][k][s])


def test_a_fresh_optimizer_takes_any_consistent_checkpoint(impl):
    d = trained(impl).state_dict()
    fresh = impl.Adam()
    fresh.load_state_dict(d)
    assert fresh.step == 1 and set(fresh.state) == {"w", "b"}


# -- every bad argument is a TypeError or ValueError naming it ----------------------------


def test_huge_hyper_parameters_are_value_errors(impl):
    with pytest.raises(ValueError, match="Adam: learning_rate must be a finite number"):
        impl.Adam(learning_rate=10**400)
    with pytest.raises(ValueError, match="clip_grad_norm: max_norm must be a finite number"):
        impl.clip_grad_norm({"g": np.ones(2)}, 10**400)


def test_error_if_nonfinite_must_be_a_bool(impl):
    g = {"g": np.ones(2)}
    with pytest.raises(TypeError, match="clip_grad_norm: error_if_nonfinite must be a bool, got int"):
        impl.clip_grad_norm(g, 1.0, error_if_nonfinite=1)
    np.testing.assert_array_equal(g["g"], np.ones(2))


def test_norm_type_inf_as_a_string_and_a_tiny_p(impl):
    g = {"g": np.array([3.0, -4.0])}
    assert impl.clip_grad_norm(g, 10.0, "inf") == 4.0
    assert impl.clip_grad_norm({"g": np.ones(3)}, 1.0, 1e-300) == np.inf


def test_a_huge_thread_count_in_the_environment_warns_and_keeps_the_default():
    out = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import gradfast; print(gradfast.get_num_threads())"],
        env={**os.environ, "GRADFAST_NUM_THREADS": "99999999999999999999"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout) >= 1
    assert "GRADFAST_NUM_THREADS must be an int in [1, 1024]" in out.stderr


# -- no panic reaches Python --------------------------------------------------------------


class Mutating:
    """A key equal to another key object of the same hash, whose ``__eq__`` grows a dict."""

    def __init__(self, name, victim):
        self.name, self.victim = name, victim

    def __hash__(self):
        return hash(self.name)

    def __eq__(self, other):
        for i in range(8):
            self.victim[f"junk{i}-{id(other)}"] = np.ones(1, F32)
        return isinstance(other, Mutating) and other.name == self.name


def test_a_key_mutating_the_dict_mid_call_is_an_ordinary_outcome(impl):
    params = {}
    params[Mutating("w", params)] = np.ones(3, F32)
    grads = {Mutating("w", params): np.ones(3, F32)}
    try:
        impl.Adam().update(params, grads)
    except Exception:  # noqa: BLE001 - any ordinary exception is fine; a BaseException is not
        pass


# -- both implementations accept the same mappings ----------------------------------------


class Doubling(dict):
    """A dict subclass whose lookups return twice the stored gradient."""

    def __getitem__(self, key):
        return 2 * super().__getitem__(key)


MAPPINGS = {
    "OrderedDict": collections.OrderedDict,
    "MappingProxyType": lambda d: types.MappingProxyType(dict(d)),
    "UserDict": collections.UserDict,
    "dict subclass": Doubling,
}


@pytest.mark.parametrize("kind", sorted(MAPPINGS))
def test_any_mapping_of_gradients_gives_the_same_result_in_both(kind):
    wrap = MAPPINGS[kind]
    results = []
    for impl in (gf, ref):
        p = {"a": np.ones(4, F32), "b": np.full(2, 2.0, F32)}
        g = wrap({"a": np.full(4, 0.5, F32), "b": np.ones(2, F32)})
        impl.Adam(0.1).update(p, g)
        gc = wrap({"a": np.full(4, 3.0, F32)})
        norm = impl.clip_grad_norm(gc, 1.0)
        results.append((p, norm))
    (p1, n1), (p2, n2) = results
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])
    assert n1 == n2


# -- the overlap sweep --------------------------------------------------------------------


def test_adjacent_but_disjoint_arrays_are_not_overlapping(impl):
    buf = np.zeros(8, F32)
    params, grads = {"a": buf[:4], "b": buf[4:]}, {"a": np.ones(4, F32), "b": np.ones(4, F32)}
    impl.MomentumOptimizer(0.1).update(params, grads)
    np.testing.assert_allclose(buf, -0.1)
    with pytest.raises(ValueError, match="must not share memory"):
        impl.MomentumOptimizer(0.1).update({"a": buf[:5], "b": buf[4:]}, {"a": np.ones(5, F32), "b": np.ones(4, F32)})


# -- a wrong shape is refused before any copy is made -------------------------------------

HUGE = (1 << 20, 1 << 18)  # 2**38 elements: a copy would need a TiB


def huge_view(dtype=np.float64):
    """A broadcast view of the wrong shape: the kernel would need a copy of it."""
    return np.broadcast_to(np.ones(1, dtype), HUGE)


def wrong_shape_calls(impl):
    """(name, call) of every input that needs a copy, given a huge view of the wrong shape."""
    bn = impl.BatchNorm(3)
    x = np.ones((4, 3))
    bn.forward(x)
    return [
        ("adam_optimizer gradients", lambda: impl.adam_optimizer(np.ones(3), huge_view(), {})),
        ("Adam gradients", lambda: impl.Adam().update({"w": np.ones(3)}, {"w": huge_view()})),
        (
            "adaptive_grad_clip params",
            lambda: impl.adaptive_grad_clip({"w": np.ones(3)}, {"w": huge_view()}),
        ),
        ("BatchNorm.forward x", lambda: bn.forward(np.broadcast_to(np.ones(1), (1 << 40, 7)))),
        ("BatchNorm.backward grad_output", lambda: bn.backward(huge_view())),
        ("apply_masks masks", lambda: impl.apply_masks({"w": np.ones(3)}, {"w": huge_view(bool)})),
    ]


@pytest.mark.parametrize("case", range(6))
def test_a_wrong_shaped_view_is_a_value_error_not_a_huge_copy(impl, case):
    name, call = wrong_shape_calls(impl)[case]
    with pytest.raises(ValueError, match="must have shape"):
        call()


# -- integers: bounded, never an OverflowError --------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: m.GradualPruning(0, 0.9, 0, 10**400), r"GradualPruning: end_step must be an int <= 2\*\*62"),
        (lambda m: m.GradualPruning(0, 0.9, 2**63, 2**64), r"GradualPruning: begin_step must be an int in \[0, "),
        (lambda m: m.initialize_weights([10**400, 2]), r"initialize_weights: layer_dims\[0\] must be an int in \[1, "),
        (lambda m: m.LRScheduler(0.1).cosine_annealing(5, 2**1024), r"total_epochs must be an int in \[1, "),
        (lambda m: m.LRScheduler(0.1).step_decay(5, 0.5, 2**1024), r"epochs_drop must be an int in \[1, "),
        (lambda m: m.LRScheduler(0.1).linear_warmup(5, 2**1024), r"warmup_epochs must be an int in \[0, "),
        (lambda m: m.LRScheduler(0.1).cosine_warm_restarts(5, 2**1024), r"T_0 must be an int in \[1, "),
        (lambda m: m.sgd_optimizer(np.ones((2, 1)), np.ones(2), np.ones(1), epochs=2**63), r"epochs must be an int in"),
    ],
)
def test_a_huge_integer_argument_is_a_value_error(impl, call, match):
    with pytest.raises(ValueError, match=match):
        call(impl)


def test_huge_steps_and_cycles_give_numbers_not_overflow_errors(impl):
    s = impl.GradualPruning(0.0, 0.9, 0, 2**62)
    assert s.compute_sparsity(5) == pytest.approx(0.9 * 5 / 2**62)
    assert s.compute_sparsity(1e300) == 0.9
    # the cycle that holds epoch 1e300 is longer than a float can hold
    assert impl.LRScheduler(0.1).cosine_warm_restarts(1e300, 1, 2**62) == pytest.approx(0.1)


# -- the step counter ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, exc", [(2**64 - 1, ValueError), (2**64, ValueError), (-1, ValueError), (1.0, TypeError), (True, TypeError)]
)
def test_assigning_a_bad_step_is_refused_and_changes_nothing(impl, value, exc):
    opt, p = impl.Adam(0.1), {"w": np.ones(3)}
    opt.update(p, {"w": np.ones(3)})
    with pytest.raises(exc, match=r"Adam: step must be an int"):
        opt.step = value
    assert opt.step == 1
    opt.update(p, {"w": np.ones(3)})
    assert opt.step == 2 and np.isfinite(p["w"]).all()


@pytest.mark.parametrize("name", ["Adam", "MomentumOptimizer", "LAMB", "LARS", "LayerAdaptiveLR"])
def test_an_optimizer_never_steps_past_the_step_it_can_load(impl, name):
    from gradfast._base.optimizer import MAX_STEP

    opt, p = getattr(impl, name)(), {"w": np.ones(3)}
    update = opt.apply_gradients if name == "LayerAdaptiveLR" else opt.update
    update(p, {"w": np.ones(3)})
    d = opt.state_dict()
    opt.load_state_dict({**d, "step": MAX_STEP})
    before = opt.state_dict()
    w = p["w"].copy()
    with pytest.raises(ValueError, match=r"step must be .*< 2\*\*62"):
        update(p, {"w": np.ones(3)})
    np.testing.assert_array_equal(p["w"], w)
    after = opt.state_dict()
    assert after["step"] == MAX_STEP
    for k in before["state"]:
        for s in before["state"][k]:
            np.testing.assert_array_equal(after["state"][k][s], before["state"][k][s])
    opt.load_state_dict(after)  # what it holds, it can load


# -- bfloat16 state through np.savez --------------------------------------------------------


def test_bfloat16_state_saved_with_numpy_alone_loads_and_resumes_bitwise(impl, tmp_path):
    """``np.savez`` stores bfloat16 as raw 2-byte voids; ``load_state_dict`` takes them (and
    uint16 bits) as bfloat16, so a checkpoint written with NumPy alone resumes bitwise."""
    p, g = {"w": np.linspace(-1, 1, 6, dtype=F32).reshape(2, 3)}, {"w": np.full((2, 3), 0.25, F32)}
    opt = impl.Adam(0.1, state_dtype="bfloat16")
    opt.update(p, g)
    d = opt.state_dict()
    np.savez(tmp_path / "ck.npz", **{s: a for s, a in d["state"]["w"].items()})
    with np.load(tmp_path / "ck.npz") as f:
        raw = {s: f[s] for s in f.files}
    assert raw["exp_avg"].dtype == np.dtype("V2")
    for slots in (raw, {s: a.view(np.uint16) for s, a in raw.items()}):
        fresh = impl.Adam(0.1, state_dtype="bfloat16")
        fresh.load_state_dict({**d, "state": {"w": slots}})
        q = {"w": p["w"].copy()}
        fresh.update(q, g)
        r = {"w": p["w"].copy()}
        opt2 = impl.Adam(0.1, state_dtype="bfloat16")
        opt2.load_state_dict(d)
        opt2.update(r, g)
        np.testing.assert_array_equal(q["w"], r["w"])
    with pytest.raises(ValueError, match=r"\['exp_avg_sq'\] must have shape \(4,\), got \(2, 3\)"):
        impl.Adam(0.1, state_dtype="bfloat16").load_state_dict(
            {**d, "state": {"w": {**raw, "exp_avg": np.zeros(4, np.uint16)}}}
        )
    with pytest.raises(TypeError, match="must have dtype bfloat16"):
        impl.Adam(0.1, state_dtype="bfloat16").load_state_dict(
            {**d, "state": {"w": {s: np.zeros((2, 3), "V4") for s in raw}}}
        )


# -- attributes are checked on assignment, as hyper-parameters are --------------------------


@pytest.mark.parametrize(
    "make, attr, value, exc, match",
    [
        (lambda m: m.GradualPruning(), "final_sparsity", 1.5, ValueError, r"GradualPruning: final_sparsity must be"),
        (lambda m: m.GradualPruning(), "initial_sparsity", -0.1, ValueError, r"initial_sparsity must be"),
        (lambda m: m.GradualPruning(), "final_sparsity", "0.5", TypeError, r"final_sparsity must be a real number"),
        (lambda m: m.GradualPruning(), "begin_step", 2**64, ValueError, r"begin_step must be an int"),
        (
            lambda m: m.GradualPruning(0, 0.9, 0, 10),
            "begin_step",
            10,
            ValueError,
            r"end_step must be an int > begin_step",
        ),
        (lambda m: m.GradualPruning(0, 0.9, 5, 10), "end_step", 5, ValueError, r"end_step must be an int > begin_step"),
        (lambda m: m.GradualPruning(), "end_step", 1.5, TypeError, r"end_step must be an int"),
        (lambda m: m.GradualPruning(), "schedule", "exp", ValueError, r"schedule must be 'linear' or 'cubic'"),
        (lambda m: m.BatchNorm(3), "eps", 0.0, ValueError, r"BatchNorm: eps must be a finite number in \(0"),
        (
            lambda m: m.Dropout(0.5, seed=1),
            "seed",
            -1,
            ValueError,
            r"Dropout: seed must be an int in \[0, 2\*\*64\), got -1",
        ),
        (
            lambda m: m.Dropout(0.5, seed=1),
            "seed",
            2**64,
            ValueError,
            r"Dropout: seed must be an int in \[0, 2\*\*64\), got 1",
        ),
        (lambda m: m.Dropout(0.5, seed=1), "seed", 1.0, TypeError, r"Dropout: seed must be an int"),
    ],
)
def test_a_bad_attribute_is_refused_on_assignment_and_kept(impl, make, attr, value, exc, match):
    obj = make(impl)
    old = getattr(obj, attr)
    with pytest.raises(exc, match=match):
        setattr(obj, attr, value)
    assert getattr(obj, attr) == old


def test_batchnorm_eps_must_be_positive_at_construction(impl):
    with pytest.raises(ValueError, match=r"BatchNorm: eps must be a finite number in \(0"):
        impl.BatchNorm(3, eps=0)


# -- Ctrl-C stops the training loops between epochs -----------------------------------------

INTERRUPTED_LOOP = """
import os, signal, threading, time
import numpy as np
import gradfast as gf, gradfast.reference as ref

impl = {impl}
gd = "{name}" == "gradient_descent"
rng = np.random.default_rng(0)
n = 20_000 if gd else 100_000  # fewer, longer SGD epochs: each candidate below is a new run
X, y = rng.standard_normal((n, 40)), rng.standard_normal(n)
w0 = np.zeros(40)
def run(w, epochs):
    if gd:
        return impl.gradient_descent(X, y, w, 1e-3, epochs=epochs)
    return impl.sgd_optimizer(X, y, w, 1e-4, batch_size=4_000, momentum=0.5, epochs=epochs, seed=3)
w = w0.copy()
threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
start = time.monotonic()
try:
    run(w, 10**9)
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted after", time.monotonic() - start)
stepped = w0.copy()
for e in range(100_000):
    # gradient descent has no state between calls: e calls of one epoch are e epochs
    if np.array_equal(run(stepped, 1) if gd and e else stepped if gd else run(w0.copy(), e), w):
        print("whole epochs:", e)
        break
"""


@pytest.mark.parametrize("name", ["gradient_descent", "sgd_optimizer"])
@pytest.mark.parametrize("which", ["gf", "ref"])
def test_ctrl_c_stops_a_training_loop_with_whole_epochs_in_the_weights(which, name):
    out = run_python(INTERRUPTED_LOOP.format(impl=which, name=name), timeout=300)
    assert "interrupted after" in out.stdout, out.stdout + out.stderr
    assert float(out.stdout.split("interrupted after")[1].split()[0]) < 10, out.stdout
    assert "whole epochs:" in out.stdout, out.stdout + out.stderr
