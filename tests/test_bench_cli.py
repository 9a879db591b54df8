"""``gradfast bench``: the command line, and the honesty of its NumPy baselines."""

import json
import subprocess
import sys
import time

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
    "speedup", "speedup_vs_torch", "traffic_bytes", "gradfast_bytes_per_s", "in_cache", "roofline_s",
    "roofline_fraction", "roofline_noise", "runs", "spread", "noisy",
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


def test_json_has_every_field_and_progress_goes_to_stderr(capsys, monkeypatch):
    # a cache of 8 MiB: adam's 1,000,000-element cases (16 and 32 MB) out of it, its 100 x 2,500
    # and clip's 4 x 250,000 (4 MB a pass) in it
    monkeypatch.setattr(bench.timing, "cache_bytes", lambda: 8 << 20)
    report, err = run_json(capsys, "--kernels", "adam,clip", "--threads", "1")
    assert report["machine"]["gradfast_threads"] == 1
    assert {"cpu", "cpu_count", "numpy", "gradfast"} <= report["machine"].keys()
    assert report["machine"]["cache_bytes"] == 8 << 20
    assert report["repeat"] == 1 and report["quick"] is True
    bw = report["bandwidth"]
    assert bw["copy"] > 0 and bw["triad"] > 0 and bw["limit"] == max(bw["copy"], bw["triad"])
    assert bw["array_bytes"] == 64 << 20
    rows = report["rows"]
    assert [r["kernel"] for r in rows] == ["adam"] * 3 + ["clip"]
    for r, case in zip(rows, bench.KERNELS["adam"].quick + bench.KERNELS["clip"].quick):
        assert r.keys() == ROW_FIELDS
        assert r["numpy_s"] > 0 and r["gradfast_s"] > 0
        assert r["speedup"] == pytest.approx(r["numpy_s"] / r["gradfast_s"])
        if r["torch_s"] is not None:
            assert r["speedup_vs_torch"] == pytest.approx(r["torch_s"] / r["gradfast_s"])
        moved, footprint = bench.traffic_bytes(case, bench.KERNELS[r["kernel"]].traffic(case))
        assert r["traffic_bytes"] == moved and r["gradfast_bytes_per_s"] == pytest.approx(moved / r["gradfast_s"])
        assert r["in_cache"] == (footprint <= 8 << 20)
        if r["in_cache"]:
            assert r["roofline_s"] is None and r["roofline_fraction"] is None
        else:
            assert r["roofline_s"] == pytest.approx(moved / bw["limit"])
            assert r["roofline_fraction"] == pytest.approx(r["roofline_s"] / r["gradfast_s"])
        assert r["roofline_noise"] == (not r["in_cache"] and r["roofline_fraction"] > bench.ROOFLINE_NOISE)
        timed = {"numpy", "gradfast"} | ({"torch"} if r["torch_s"] is not None else set())
        assert r["runs"].keys() == timed
        for impl, runs in r["runs"].items():
            assert len(runs) == 1 and r[f"{impl}_s"] == min(runs)
        assert r["spread"] == max(max(v) / min(v) for v in r["runs"].values())
        assert r["noisy"] == (r["spread"] > bench.NOISY)
    assert [r["in_cache"] for r in rows] == [False, True, False, True]
    assert "memory bandwidth (copy and triad) ..." in err
    assert "[4/4] clip float32 4 x 250,000 ..." in err


def test_traffic_counts_a_read_write_array_twice_and_the_largest_pass_once():
    case = bench.Case("float32", 2, 1000)  # 2,000 elements of 4 bytes
    assert bench.traffic_bytes(case, [(0, 1), (1, 0)]) == (3 * 8000, 8000)
    assert bench.traffic_bytes(case, [(2, 1), (0, 2)]) == (7 * 8000, 3 * 8000)
    assert bench.traffic_bytes(bench.Case("float64", 1, 10), [(1, 1)]) == (240, 160)


def test_a_kernel_without_traffic_gets_no_bandwidth_measure(capsys):
    report, err = run_json(capsys, "--kernels", "gradient_descent")
    assert report["bandwidth"] is None and "memory bandwidth" not in err
    [row] = report["rows"]
    assert row["traffic_bytes"] is None and row["roofline_fraction"] is None and not row["in_cache"]


def test_the_machines_cache_is_read_from_the_system():
    cache = bench.cache_bytes()
    assert cache >= 1 << 16 and cache % 1024 == 0


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


def test_help_lists_the_kernels_apart_from_their_descriptions(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    listing = out.split("kernels:\n", 1)[1].splitlines()
    starts = {line.split()[0]: line for line in listing if not line.startswith("   ")}
    assert list(starts) == list(bench.KERNELS)
    column = {line.index(bench.KERNELS[name].title.split()[0], len(name) + 2) for name, line in starts.items()}
    assert len(column) == 1  # every description starts in one column, past the longest name
    assert column.pop() >= 2 + max(map(len, bench.KERNELS)) + 2


def test_quick_headers_give_the_quick_sizes(capsys):
    assert main(["bench", "--quick", "--repeat", "1", "--kernels", "sgd_optimizer"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gradfast ") and " bench at the --quick sizes on " in out.splitlines()[0]
    [case] = bench.KERNELS["sgd_optimizer"].quick
    assert f"\n  {case.label} " in out
    [full] = bench.KERNELS["sgd_optimizer"].cases
    assert full.label not in out


def _row(**changes) -> dict:
    row = {
        "kernel": "clip", "dtype": "float32", "label": "4 x 4,000,000", "numpy_s": 3e-3, "gradfast_s": 2e-3,
        "torch_s": None, "speedup": 1.5, "speedup_vs_torch": None, "in_cache": False, "roofline_s": 2e-3,
        "roofline_fraction": 1.0, "roofline_noise": False, "spread": 1.1, "noisy": False,
    }  # fmt: skip
    return {**row, **changes}


MACHINE = {
    "gradfast": "0", "cpu": "cpu", "cpu_count": 2, "gradfast_threads": 2, "numpy": "2", "torch": None,
    "cache_bytes": 32 << 20,
}  # fmt: skip
BANDWIDTH = {"copy": 61.2e9, "triad": 70.04e9, "limit": 70.04e9, "array_bytes": 128 << 20}


def test_the_table_marks_noisy_rows_cached_rows_and_a_roofline_past_memory_speed():
    rows = [
        _row(label="quiet", roofline_fraction=0.834),
        _row(label="busy", spread=2.37, noisy=True),
        _row(label="too fast", roofline_s=3.68e-3, roofline_fraction=1.84, roofline_noise=True),
        _row(label="small", in_cache=True, roofline_s=None, roofline_fraction=None),
    ]
    report = {
        "machine": MACHINE, "bandwidth": BANDWIDTH, "repeat": 5, "quick": False, "noisy_factor": 1.25,
        "roofline_noise_above": 1.05,
    }  # fmt: skip
    lines = bench.format_report({**report, "rows": rows}).splitlines()
    quiet, busy, fast, small = (next(line for line in lines if line.startswith(f"  {r['label']} ")) for r in rows)
    assert quiet.endswith("83%  1.10") and "noisy" not in quiet
    assert busy.endswith("100%  2.37 noisy")
    assert "noise" in fast.split() and "184%" not in fast
    assert small.endswith("in cache  1.10")
    assert 'pip install "gradfast[bench]"' in lines[0]
    assert "70.0 GB/s (copy 61.2, triad 70.0, write-allocate counted)" in lines[2]
    assert "fits in the 32 MiB cache" in lines[2]
    report["bandwidth"] = None
    assert "roofline: not measured" in bench.format_report({**report, "rows": rows[:1]})


def test_runs_that_disagree_mark_the_row_noisy(monkeypatch):
    # every other call sleeps four times longer: the runs cannot agree
    slow = iter([0.004, 0.001] * 10)
    kernel = bench.Kernel("uneven", "sleeps", (), (), lambda case, impl: (lambda: time.sleep(next(slow)), None))
    monkeypatch.setitem(bench.KERNELS, "uneven", kernel)
    row = bench.measure("uneven", bench.Case("float32", 1, 10), repeat=2)
    assert row["spread"] >= 2 and row["noisy"]


def test_each_implementation_runs_after_a_rest_except_in_quick_runs(monkeypatch):
    # the spinning threads of the implementation before must not share the next one's cores
    events = []
    case = bench.Case("float32", 1, 10)

    def prepare(case, impl):
        return (lambda: events.append(impl)), None

    monkeypatch.setitem(bench.KERNELS, "rest", bench.Kernel("rest", "records", (case,), (case,), prepare))
    monkeypatch.setattr(bench.timing.time, "sleep", lambda s: events.append(s))
    bench.measure("rest", case, repeat=1)
    rest = bench.timing.SETTLE_S
    assert rest >= 0.2
    assert events == [rest, "numpy", "numpy", rest, "gradfast", "gradfast", rest, "torch", "torch"]
    events.clear()
    bench.run(["rest"], quick=True, repeat=1)
    assert events == [0.0, "numpy", "numpy", 0.0, "gradfast", "gradfast", 0.0, "torch", "torch"]


def test_mpi_without_mpi4py_says_which_extra(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now raises ImportError
    assert main(["bench", "--mpi", "--quick"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "gradfast[mpi]"' in err and "Traceback" not in err


def test_mpi_on_one_rank_says_so():
    pytest.importorskip("mpi4py", reason='needs mpi4py: pip install "gradfast[mpi]"')
    cmd = [sys.executable, "-m", "gradfast", "bench", "--mpi", "--quick", "--repeat", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout
    assert "measured on one rank" in out


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
# the reference too (tests/reference/test_optim_<name>_peer.py, tests/test_optim_<name>.py)
NOT_OPTIMIZERS |= {"adafactor", "muon", "schedulefree"}
# the reference too, held to gradfast bit for bit by tests/test_optim_lowprec.py
NOT_OPTIMIZERS |= {"adam_lowprec"}
# the reference too, held to gradfast bit for bit by tests/test_optim_<name>.py
NOT_OPTIMIZERS |= {
    f"{n}{s}" for n in ("adagrad", "adamax", "nadam", "rmsprop", "rmsprop_centered") for s in ("", "_mlp")
}
# their baseline is gradfast.reference too (tests/test_nn.py, test_init.py, test_regularization.py)
NOT_OPTIMIZERS |= {"batchnorm", "dropout", "init", "regularization"}
# its baseline is gradfast.reference's prune_network (tests/reference/test_prune_rule.py, tests/test_prune.py)
NOT_OPTIMIZERS |= {"prune"}
# their baseline is gradfast.reference too (tests/test_rnn.py, tests/test_linear.py)
NOT_OPTIMIZERS |= {"bptt", "gradient_descent", "gradient_descent_narrow", "sgd_optimizer"}
# its baseline is gradfast.reference's EMA (tests/test_average.py)
NOT_OPTIMIZERS |= {"ema"}
# its baseline is gradfast.reference's Accumulate (tests/test_accumulate.py)
NOT_OPTIMIZERS |= {"accumulate"}
# checked below (test_numpy_total_norm_and_value_clipping_match)
NOT_OPTIMIZERS |= {"get_total_norm", "clip_grad_value"}
# their baseline is gradfast.reference (tests/reference/test_optim_*_torch.py, tests/test_optim_*.py)
NOT_OPTIMIZERS |= {"adadelta", "adadelta_mlp", "asgd", "asgd_mlp", "radam", "radam_mlp", "rprop", "rprop_mlp"}
# torch's SGD rule: its baseline is gradfast.reference's (tests/reference/test_optim_sgd_torch.py,
# tests/test_optim_sgd.py)
NOT_OPTIMIZERS |= {"sgd", "sgd_mlp"}

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


def test_thread_sweep_times_one_thread_against_the_default_and_restores_it(capsys):
    gf.set_num_threads(2)
    assert main(["bench", "--thread-sweep", "--quick", "--json", "--repeat", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert gf.get_num_threads() == 2 and report["threads"] == 2
    rows = report["rows"]
    assert {(r["kernel"], r["size"]) for r in rows} == {
        (k, n) for k in ("adam", "nesterov", "clip") for n in bench.threads.QUICK_SIZES
    }
    for r in rows:
        assert r["one_s"] > 0 and r["ratio"] == pytest.approx(r["default_s"] / r["one_s"])
    assert main(["bench", "--thread-sweep", "--quick", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 thread against 2" in out and out.splitlines()[-1].startswith("worst ratio: ")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_total_norm_and_value_clipping_match(dtype):
    rng = np.random.default_rng(1)
    grads = {"a": rng.standard_normal(300_000), "b": rng.standard_normal((3, 5))}
    grads = {k: g.astype(dtype) for k, g in grads.items()}
    assert bench.numpy.numpy_total_norm(grads) == pytest.approx(
        gf.get_total_norm(grads), rel=TOL[np.dtype(dtype)]["rtol"]
    )
    ours = {k: g.copy() for k, g in grads.items()}
    bench.numpy.numpy_clip_grad_value(ours, 0.5)
    gf.clip_grad_value(grads, 0.5)
    for k in grads:
        np.testing.assert_array_equal(ours[k], grads[k])


# -- gradfast bench --scale ------------------------------------------------------------------------------


def test_scale_times_both_states_at_each_size_against_the_reference_size(capsys, monkeypatch):
    monkeypatch.setattr(bench.scale, "REFERENCE", 10**5)
    assert main(["bench", "--scale", "--quick", "--json", "--repeat", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["reference"] == 10**5 and report["repeat"] == 1
    rows = report["rows"]
    assert [(r["params"], r["state"]) for r in rows] == [
        (n, s) for n in bench.scale.QUICK_SIZES for s in ("float32", "bfloat16")
    ]
    for r in rows:
        assert r["skipped"] is None and r["seconds"] > 0
        assert r["bytes_per_param"] == {"float32": 28, "bfloat16": 20}[r["state"]]
        assert r["params_per_s"] == pytest.approx(r["params"] / r["seconds"])
        assert r["bytes_per_s"] == pytest.approx(r["bytes_per_param"] * r["params"] / r["seconds"])
        ref = next(x for x in rows if x["state"] == r["state"] and x["params"] == 10**5)
        assert r["vs_reference"] == pytest.approx(r["params_per_s"] / ref["params_per_s"])


def test_scale_skips_sizes_that_do_not_fit_and_prints_a_line_per_size(capsys, monkeypatch):
    # 1e5 parameters with float32 state hold 1.6 MB, with bfloat16 state 1.2 MB, beside the headroom
    monkeypatch.setattr(bench.scale, "available_memory", lambda: bench.scale.HEADROOM + 1_400_000)
    assert main(["bench", "--scale", "--quick", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("gradfast ") and " scale on " in lines[0]
    body = lines[2:]
    assert len(body) == 2 * len(bench.scale.QUICK_SIZES)
    assert body[0].split()[:2] == ["100,000", "float32"] and "skipped: needs 1.1 GB, 1.1 GB available" in body[0]
    assert body[1].split()[:2] == ["100,000", "bfloat16"] and "GB/s" in body[1] and "skipped" not in body[1]
    assert all("skipped" in line for line in body[2:])
    assert "x" not in body[1].split()[-1]  # no ratio: the reference size did not run
