"""Thread count control, bitwise determinism across thread counts, and GIL release."""

import os
import subprocess
import sys
import threading
import time

import gradfast as gf
import numpy as np
import pytest


@pytest.fixture
def restore_threads():
    n = gf.get_num_threads()
    yield
    gf.set_num_threads(n)


def test_set_and_get_num_threads(restore_threads):
    gf.set_num_threads(3)
    assert gf.get_num_threads() == 3
    for bad in (0, -1, gf._core.MAX_THREADS + 1, 2**63, 10**30):
        with pytest.raises(ValueError, match=r"set_num_threads: n must be an int in \[1, 1024\], got"):
            gf.set_num_threads(bad)
    for bad in (2.0, "2", True, None):
        with pytest.raises(TypeError, match="set_num_threads: n must be an int, got"):
            gf.set_num_threads(bad)
    assert gf.get_num_threads() == 3
    gf.set_num_threads(gf._core.MAX_THREADS)
    assert gf.get_num_threads() == 1024


def run_python(code, **env):
    out = subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip(), out.stderr


def test_environment_variable_sets_the_thread_count():
    out, _ = run_python("import gradfast; print(gradfast.get_num_threads())", GRADFAST_NUM_THREADS="3")
    assert out == "3"


def test_bad_environment_variable_warns_and_falls_back():
    out, err = run_python("import gradfast; print(gradfast.get_num_threads())", GRADFAST_NUM_THREADS="lots")
    assert int(out) == os.cpu_count() or int(out) >= 1
    assert "GRADFAST_NUM_THREADS must be an int in [1, 1024], got 'lots'" in err


def steps(threads, name, kw, params, grads):
    gf.set_num_threads(threads)
    params = {k: v.copy() for k, v in params.items()}
    opt = getattr(gf, name)(**kw)
    for g in grads:
        opt.update(params, g)
    return params


@pytest.mark.parametrize(
    "name, kw", [("Adam", {"amsgrad": True, "weight_decay": 0.1}), ("AdamW", {}), ("MomentumOptimizer", {})]
)
def test_one_thread_equals_many_threads_bitwise(restore_threads, name, kw):
    rng = np.random.default_rng(0)
    # big enough that every kernel uses the pool (the tests lower its threshold to 1 MiB)
    params = {"big": rng.standard_normal(500_007).astype(np.float32), "tiny": np.ones((2, 2), np.float32)}
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()} for _ in range(3)]
    one = steps(1, name, kw, params, grads)
    for n in (2, 3, 5):
        many = steps(n, name, kw, params, grads)
        for k in params:
            np.testing.assert_array_equal(one[k], many[k])


def test_clip_grad_norm_is_bitwise_identical_for_any_thread_count(restore_threads):
    rng = np.random.default_rng(1)
    grads = {f"g{i}": rng.standard_normal(n).astype(np.float32) for i, n in enumerate([2_300_001, 7, 120_000])}
    results = []
    for n in (1, 2, 3, 4):
        gf.set_num_threads(n)
        g = {k: v.copy() for k, v in grads.items()}
        results.append((gf.clip_grad_norm(g, 1.0), g))
    for norm, g in results[1:]:
        assert norm == results[0][0]
        for k in grads:
            np.testing.assert_array_equal(g[k], results[0][1][k])


def _adam_call():
    n = 8_000_000
    params, grads = {"w": np.zeros(n, np.float32)}, {"w": np.ones(n, np.float32)}
    opt = gf.Adam()
    return lambda: opt.update(params, grads)


def _batchnorm_call():
    x = np.random.default_rng(0).standard_normal((8000, 1000), dtype=np.float32)
    bn = gf.BatchNorm(1000, dtype=np.float32)
    return lambda: bn.forward(x)


def _dropout_call():
    x = np.ones(4_000_000, np.float32)
    d = gf.Dropout(0.5, seed=0)
    return lambda: d.forward(x)


def _init_call():
    return lambda: gf.initialize_weights([2000, 2000], seed=0, dtype=np.float32)


def _prune_call():
    weights = {"w": np.random.default_rng(0).standard_normal(8_000_000, dtype=np.float32)}
    return lambda: gf.magnitude_masks(weights, 0.3)


def _regularization_call():
    w = {"w": np.ones(6_000_000, np.float32)}
    return lambda: gf.compute_regularization(w)


@pytest.mark.parametrize(
    "make", [_adam_call, _batchnorm_call, _dropout_call, _init_call, _prune_call, _regularization_call]
)
def test_kernels_release_the_gil(restore_threads, make):
    """A Python thread runs bytecode while a large call is inside Rust.

    The spinning thread could slip in during the Python code around the kernel (up to one
    switch interval), but never in the middle half of a call's span unless the kernel, which
    takes up nearly all of it, runs without the GIL. On a loaded machine the spinner may not
    get a core during some calls, so one call of five is enough.
    """
    gf.set_num_threads(1)
    call = make()
    call()
    stamps, spans, done = [], [], threading.Event()

    def spin():
        while not done.is_set():
            stamps.append(time.perf_counter())

    spinner = threading.Thread(target=spin)
    interval = sys.getswitchinterval()
    slip = 1e-4  # the spinner's slip-in window around the kernel
    sys.setswitchinterval(slip)
    spinner.start()
    try:
        for _ in range(5):
            t0 = time.perf_counter()
            call()
            spans.append((t0, time.perf_counter()))
    finally:
        done.set()
        spinner.join()
        sys.setswitchinterval(interval)
    middles = [(a + (b - a) / 4, b - (b - a) / 4) for a, b in spans]
    assert all(b - a > 2 * slip for a, b in middles)
    assert any(any(a < s < b for s in stamps) for a, b in middles)
