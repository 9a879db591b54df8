"""``gradfast bench``: the command line, and the honesty of its NumPy baselines."""

import json
import subprocess
import sys

import gradfast as gf
import gradfast.reference as ref
import numpy as np
import pytest
from conftest import TOL
from gradfast import bench
from gradfast.__main__ import main

#: the optimizer kernels of the bench: their NumPy baseline, the gradfast name and its settings
OPTIMIZERS = {
    "adam": (bench.numpy.NumpyAdam, "Adam", {}),
    "adamw": (bench.numpy.NumpyAdamW, "AdamW", {}),
    "mlp": (bench.numpy.NumpyAdamW, "AdamW", {}),
    "latency": (bench.numpy.NumpyAdam, "Adam", {}),
    "nesterov": (bench.numpy.NumpyMomentum, "MomentumOptimizer", {"nesterov": True}),
    "momentum": (bench.numpy.NumpyMomentum, "MomentumOptimizer", {}),
}
ROW_FIELDS = {
    "kernel", "dtype", "arrays", "size", "elements", "calls", "label", "numpy_s", "gradfast_s", "torch_s",
    "speedup", "speedup_vs_torch", "roofline_s", "roofline_fraction",
}  # fmt: skip


@pytest.fixture(autouse=True)
def _keep_threads():
    """``--threads`` changes the process-wide pool; put it back."""
    n = gf.get_num_threads()
    yield
    gf.set_num_threads(n)


def run_json(capsys, *args):
    assert main(["bench", "--quick", "--json", "--repeat", "1", *args]) == 0
    out, err = capsys.readouterr()
    return json.loads(out), err


def test_json_has_every_field_and_progress_goes_to_stderr(capsys):
    report, err = run_json(capsys, "--kernels", "adam,clip", "--threads", "1")
    assert report["machine"]["gradfast_threads"] == 1
    assert {"cpu", "cpu_count", "numpy", "gradfast"} <= report["machine"].keys()
    assert report["repeat"] == 1 and report["quick"] is True
    rows = report["rows"]
    assert [r["kernel"] for r in rows] == ["adam"] * 3 + ["clip"]
    for r in rows:
        assert r.keys() == ROW_FIELDS
        assert r["numpy_s"] > 0 and r["gradfast_s"] > 0
        assert r["speedup"] == pytest.approx(r["numpy_s"] / r["gradfast_s"])
        if r["torch_s"] is not None:
            assert r["speedup_vs_torch"] == pytest.approx(r["torch_s"] / r["gradfast_s"])
        large = r["elements"] >= bench.LARGE
        assert (r["roofline_s"] is not None) == large
        if large:
            assert r["roofline_fraction"] == pytest.approx(r["roofline_s"] / r["gradfast_s"])
    assert "[4/4] clip float32 4 x 250,000 ..." in err


def test_every_optimizer_kernel_has_its_baseline_checked():
    assert {n for n in bench.KERNELS if n not in ("clip",)} <= set(OPTIMIZERS) | NOT_OPTIMIZERS


def test_quick_prints_one_table_per_kernel(capsys):
    assert main(["bench", "--quick"]) == 0
    out, err = capsys.readouterr()
    for name, kernel in bench.KERNELS.items():
        assert f"{name}: {kernel.title}" in out
    n = sum(len(k.quick) for k in bench.KERNELS.values())
    assert f"[{n}/{n}] " in err
    assert not any(line.startswith("[") for line in out.splitlines())


def test_unknown_kernel_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--kernels", "adam,adma"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown kernel 'adma'; choose from adam, adamw, mlp" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["bench", "--repeat", "0"], ["bench", "--threads", "x"], [], ["bnech"]])
def test_bad_arguments_are_usage_errors(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: gradfast" in capsys.readouterr().err


def test_help_lists_the_kernels(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in bench.KERNELS:
        assert name in out


def test_python_dash_m_runs():
    cmd = [sys.executable, "-m", "gradfast", "bench", "--quick", "--json", "--kernels", "latency"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["rows"][0]["kernel"] == "latency"


#: kernels of the bench whose NumPy baselines are checked by their own family's tests
NOT_OPTIMIZERS: set = {"bf16"}
# their baseline is gradfast.reference itself (tests/reference/, tests/test_layerwise_optimizers.py,
# tests/test_adaptive_clipping.py)
NOT_OPTIMIZERS |= {"lamb", "lars", "layer_adaptive", "agc", "adaptive_clipper"}
# its baseline is gradfast.reference too (tests/reference/test_optim_lion_peer.py, tests/test_optim_lion.py)
NOT_OPTIMIZERS |= {"lion"}
# the reference too, held to gradfast bit for bit by tests/test_optim_lowprec.py
NOT_OPTIMIZERS |= {"adam_lowprec"}
# their baseline is gradfast.reference too (tests/test_nn.py, test_init.py, test_regularization.py)
NOT_OPTIMIZERS |= {"batchnorm", "dropout", "init", "regularization"}
# its baseline is gradfast.reference's prune_network (tests/reference/test_prune_rule.py, tests/test_prune.py)
NOT_OPTIMIZERS |= {"prune"}
# their baseline is gradfast.reference too (tests/test_rnn.py, tests/test_linear.py)
NOT_OPTIMIZERS |= {"bptt", "gradient_descent", "gradient_descent_narrow", "sgd_optimizer"}

# -- the timed NumPy baselines compute what gradfast computes -----------------------------------------

SHAPES = [(3, 5), (7,), (3, 5), (2, 3, 4), ()]  # a repeated shape shares its scratch buffer


@pytest.mark.parametrize("twin", ["gradfast", "reference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_numpy_optimizer_matches(name, dtype, twin):
    numpy_cls, cls_name, kwargs = OPTIMIZERS[name]
    cls = getattr(gf if twin == "gradfast" else ref, cls_name)
    rng = np.random.default_rng(0)
    params = {f"w{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(SHAPES)}
    steps = [{k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()} for _ in range(5)]
    results = []
    for opt in (numpy_cls(**kwargs), cls(**kwargs)):
        p = {k: a.copy() for k, a in params.items()}
        for g in steps:
            opt.update(p, g)
        results.append(p)
    for k in params:
        np.testing.assert_allclose(results[0][k], results[1][k], **TOL[np.dtype(dtype)])


@pytest.mark.parametrize("max_norm", [1.0, 1e9])  # clips, and does not
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("clip", [gf.clip_grad_norm, ref.clip_grad_norm], ids=["gradfast", "reference"])
def test_numpy_clip_grad_norm_matches(clip, dtype, max_norm):
    rng = np.random.default_rng(0)
    # one array longer than a norm chunk, so the chunked sum is exercised
    grads = {"a": rng.standard_normal(300_000), "b": rng.standard_normal((3, 5)), "c": rng.standard_normal(7)}
    grads = {k: g.astype(dtype) for k, g in grads.items()}
    ours = {k: g.copy() for k, g in grads.items()}
    total = bench.numpy.numpy_clip_grad_norm(ours, max_norm)
    assert total == pytest.approx(clip(grads, max_norm), rel=TOL[np.dtype(dtype)]["rtol"])
    for k in grads:
        np.testing.assert_allclose(ours[k], grads[k], **TOL[np.dtype(dtype)])
